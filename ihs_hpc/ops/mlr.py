"""Per-pixel multiple linear regression of PM2.5 baselines on meteorological baselines.

Seed 000, section 2.3.3:

* eq. 3: ``PM2.5_bl_mlr(t) = a0 + sum_i a_i met_bl_i(t)`` — :func:`mlr`;
* eq. 4: ``PM2.5_bl_tem(t) = PM2.5_bl(t) - PM2.5_bl_mlr(t)`` — :func:`remove_met` (fit and remove),
  :func:`apply_met` (remove with coefficients fitted elsewhere, e.g. carried into IHS areas from
  the background, ``stage2.met_fit: background``);
* :func:`mlr_bilinear` and :func:`remove_met_bilinear`: eqs. 3–4 with each pixel's regressors
  interpolated bilinearly from coarse series as it is fitted (stage 2's chunked path,
  :mod:`ihs_hpc.ops.met_removal`).

Every pixel (every index of the leading axes) gets its own fit.  The numerics live in
:mod:`ihs_hpc.kernels.mlr` (centred normal equations solved by Cholesky in numba, in parallel over
pixels, with a LAPACK gelsd fallback that reproduces :func:`numpy.linalg.lstsq`'s minimum-norm answer on rank-deficient or
ill-conditioned pixels).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ihs_hpc.kernels.mlr import INVALID_RANK, NEEDS_MIN_NORM, mlr_bilinear_pixels, mlr_min_norm_pixels, mlr_pixels

__all__ = ["MLRResult", "mlr", "mlr_bilinear", "remove_met", "remove_met_bilinear", "apply_met", "INVALID_RANK"]

#: default relative pivot tolerance of the Cholesky factorisation
DEFAULT_RTOL = 1e-10


@dataclass(frozen=True)
class MLRResult:
    """Per-pixel result of :func:`mlr`.

    Attributes
    ----------
    coef : ndarray, shape (..., k + 1), float64
        ``a0`` (intercept) then ``a1 .. ak`` in the order of the regressors (eq. 3).
    fitted : ndarray, shape (..., time), float64
        ``a0 + sum_i a_i X_i(t)`` (eq. 3).
    r2 : ndarray, shape (...), float64
        ``1 - SS_res / SS_tot``; NaN where ``y`` is constant or the pixel is invalid.
    rank : ndarray, shape (...), int64
        ``k + 1`` for a full-rank pixel, the numerical rank of the design ``[1, X]`` (as
        :func:`numpy.linalg.lstsq` reports it) for a pixel solved by the minimum-norm fallback,
        ``-1`` (:data:`INVALID_RANK`) for a pixel whose input holds a NaN or an infinity.
    """

    coef: np.ndarray
    fitted: np.ndarray
    r2: np.ndarray
    rank: np.ndarray

    @property
    def intercept(self) -> np.ndarray:
        """``a0``, shape (...)."""
        return self.coef[..., 0]

    @property
    def slopes(self) -> np.ndarray:
        """``a1 .. ak``, shape (..., k)."""
        return self.coef[..., 1:]

    @property
    def rank_deficient(self) -> np.ndarray:
        """Boolean mask of valid pixels whose design ``[1, X]`` is numerically rank-deficient."""
        k1 = self.coef.shape[-1]
        return (self.rank >= 0) & (self.rank < k1)


def _as_float_array(name: str, a, keep_float32: bool) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if not (a.dtype == np.float64 or (keep_float32 and a.dtype == np.float32)):
        a = a.astype(np.float64)
    return a


def mlr(y, X, *, rtol: float = DEFAULT_RTOL) -> MLRResult:
    """Multiple linear regression with an intercept, independently per pixel (seed 000, eq. 3).

    Fits ``y(t) = a0 + sum_i a_i X_i(t)`` by least squares for every pixel.

    Parameters
    ----------
    y : array_like, shape (..., time)
        Response series (e.g. the PM2.5 baseline, eq. 2), time on the last axis.
    X : array_like, shape (..., k, time) or (k, time)
        Regressor series (e.g. the six meteorological baselines t2m, tp, sp, u10, v10, rh).
        Either one set per pixel, with leading axes equal to ``y.shape[:-1]``, or a 2-D array
        shared by all pixels.
    rtol : float, optional
        Relative pivot tolerance in ``[0, 1)``.  A pixel whose Cholesky pivot for regressor j
        falls to ``rtol`` times its starting value (regressor j nearly a combination of earlier
        ones), or whose centred sum of squares for a regressor is at most ``rtol`` times its raw
        sum of squares (regressor nearly constant, i.e. nearly the intercept), is solved instead
        by LAPACK gelsd on the full design ``[1, X]`` — the routine and cut-off
        (``eps * max(time, k + 1)``) of :func:`numpy.linalg.lstsq`, so such pixels get its finite
        minimum-norm solution and their numerical rank in ``.rank``.

    Returns
    -------
    MLRResult
        ``coef (..., k + 1)`` intercept first, ``fitted (..., time)``, ``r2 (...)``,
        ``rank (...)``; float64 whatever the input dtype.

    Notes
    -----
    A pixel whose ``y`` or ``X`` holds any NaN or infinity gets NaN coefficients, fitted values
    and R², and rank -1; no other pixel is affected.  Fill gaps before fitting if a partial fit is
    wanted.  Full-rank pixels are solved from the centred normal equations (regressors and
    response centred per pixel, cross products accumulated in float64), which agree with
    :func:`numpy.linalg.lstsq` to a relative error of about ``eps * cond(Xc)²``.

    Raises
    ------
    ValueError
        If the shapes of ``y`` and ``X`` do not fit together, ``time`` is 0, ``k`` is 0, or
        ``rtol`` is outside ``[0, 1)``.
    TypeError
        If an input does not hold real numbers.
    """
    # y is small next to X: always float64; X stays float32 when given so (two compiled variants)
    y = _as_float_array("y", y, keep_float32=False)
    X = _as_float_array("X", X, keep_float32=True)
    if y.ndim < 1:
        raise ValueError("y must have a time axis (shape (..., time)), got a scalar")
    if X.ndim < 2:
        raise ValueError(f"X must have shape (..., k, time) or (k, time), got shape {X.shape}")
    n_time = y.shape[-1]
    if n_time == 0:
        raise ValueError(f"y has an empty time axis (shape {y.shape})")
    if X.shape[-1] != n_time:
        raise ValueError(
            f"X's last (time) axis has length {X.shape[-1]} but y's has {n_time}: "
            f"y.shape={y.shape}, X.shape={X.shape}"
        )
    k = X.shape[-2]
    if k == 0:
        raise ValueError(f"X has no regressors (k = 0): X.shape={X.shape}")
    lead = y.shape[:-1]
    if X.ndim == 2:
        X3 = X.reshape(1, k, n_time)
    elif X.shape[:-2] == lead:
        X3 = X.reshape(-1, k, n_time)
    else:
        raise ValueError(
            f"X's leading axes {X.shape[:-2]} must equal y's {lead} (per-pixel regressors) or X "
            f"must be 2-D (k, time) (shared regressors): y.shape={y.shape}, X.shape={X.shape}"
        )
    rtol = float(rtol)
    if not (0.0 <= rtol < 1.0):
        raise ValueError(f"rtol must lie in [0, 1), got {rtol}")

    y2 = np.ascontiguousarray(y.reshape(-1, n_time))
    X3 = np.ascontiguousarray(X3)
    n_pixels = y2.shape[0]
    coef = np.empty((n_pixels, k + 1), dtype=np.float64)
    fitted = np.empty((n_pixels, n_time), dtype=np.float64)
    r2 = np.empty(n_pixels, dtype=np.float64)
    rank = np.empty(n_pixels, dtype=np.int64)
    if n_pixels:
        mlr_pixels(y2, X3, rtol, coef, fitted, r2, rank)
        mlr_min_norm_pixels(y2, X3, coef, fitted, r2, rank)
    return MLRResult(
        coef=coef.reshape(lead + (k + 1,)),
        fitted=fitted.reshape(lead + (n_time,)),
        r2=r2.reshape(lead),
        rank=rank.reshape(lead),
    )


def remove_met(y, X, *, rtol: float = DEFAULT_RTOL, keep_level: bool = False) -> tuple[np.ndarray, MLRResult]:
    """Remove the meteorology-driven part of a baseline (seed 000, eq. 4).

    ``bl_tem(t) = bl(t) - bl_mlr(t)`` with ``bl_mlr`` the fit of eq. 3 from :func:`mlr`.

    Parameters
    ----------
    y : array_like, shape (..., time)
        PM2.5 baseline ``bl`` (eq. 2).
    X : array_like, shape (..., k, time) or (k, time)
        Meteorological baselines, as for :func:`mlr`.
    rtol : float, optional
        Passed to :func:`mlr`.
    keep_level : bool, optional
        Add each pixel's mean fitted value back, removing only the meteorological *variation*:
        eq. 4 taken literally (False, the default here) also removes the intercept, so every
        pixel's ``bl_tem`` has mean zero and an IHS area's higher level is lost.

    Returns
    -------
    bl_tem : ndarray, shape (..., time), float64
        The baseline with the fitted meteorological part removed; with ``keep_level=False`` it has
        zero mean over time per pixel (the intercept absorbs the mean).  NaN for invalid pixels.
    result : MLRResult
        The regression behind it.
    """
    result = mlr(y, X, rtol=rtol)
    return _remove(y, result.fitted, keep_level), result


def _remove(y, fitted: np.ndarray, keep_level: bool) -> np.ndarray:
    """Eq. 4: ``bl - bl_mlr``, plus the mean of ``bl_mlr`` per pixel when ``keep_level``."""
    bl_tem = np.asarray(y, dtype=np.float64) - fitted
    if keep_level:
        bl_tem += fitted.mean(axis=-1, keepdims=True)
    return bl_tem


def apply_met(y, X, coef, *, keep_level: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Remove the meteorology-driven part of a baseline with given coefficients (seed 000, eqs. 3–4).

    ``bl_mlr(t) = a0 + sum_i a_i X_i(t)`` (eq. 3 evaluated, not fitted) and ``bl_tem = bl - bl_mlr``
    (eq. 4), for coefficients estimated elsewhere — e.g. fitted where no IHS is active and carried
    into IHS areas (``stage2.met_fit: background``), so that the IHS signal's own seasonal cycle is
    not absorbed by the seasonal meteorological baselines.

    Parameters
    ----------
    y : array_like, shape (..., time)
        PM2.5 baseline ``bl`` (eq. 2).
    X : array_like, shape (..., k, time) or (k, time)
        Meteorological baselines, as for :func:`mlr`.
    coef : array_like, shape (..., k + 1)
        ``a0`` then ``a1 .. ak`` per pixel (the layout of :attr:`MLRResult.coef`).
    keep_level : bool, optional
        As for :func:`remove_met`: add back each pixel's mean of ``bl_mlr``, removing only the
        meteorological variation (``a0`` then has no effect).

    Returns
    -------
    bl_tem : ndarray, shape (..., time), float64
    fitted : ndarray, shape (..., time), float64
        ``bl_mlr``; NaN where a coefficient or an input is NaN.
    """
    y = _as_float_array("y", y, keep_float32=False)
    X = _as_float_array("X", X, keep_float32=False)
    coef = _as_float_array("coef", coef, keep_float32=False)
    if y.ndim < 1 or X.ndim < 2:
        raise ValueError(f"y must be (..., time) and X (..., k, time) or (k, time); got {y.shape} and {X.shape}")
    k = X.shape[-2]
    if X.shape[-1] != y.shape[-1]:
        raise ValueError(f"X's time axis has length {X.shape[-1]} but y's has {y.shape[-1]}")
    if coef.shape != y.shape[:-1] + (k + 1,):
        raise ValueError(f"coef must have shape {y.shape[:-1] + (k + 1,)} (intercept then {k} slopes), got {coef.shape}")
    if X.ndim > 2 and X.shape[:-2] != y.shape[:-1]:
        raise ValueError(f"X's leading axes {X.shape[:-2]} must equal y's {y.shape[:-1]}, or X must be 2-D")
    fitted = coef[..., :1] + np.einsum("...k,...kt->...t", coef[..., 1:], X)
    return _remove(y, fitted, keep_level), fitted


def mlr_bilinear(y, rows, index, weight, *, rtol: float = DEFAULT_RTOL) -> MLRResult:
    """:func:`mlr` with each pixel's regressors interpolated from coarse series on the fly (eq. 3).

    Pixel ``p`` is regressed on ``X[j] = sum_c weight[p, c] * rows[j, index[p, c]]``, the bilinear
    interpolation of :func:`ihs_hpc.ops.interp.apply_bilinear_rows` — stage 2's 0.1° meteorological
    baselines at a 1 km pixel — without storing the ``(pixels, k, time)`` regressors: the same results
    as ``mlr(y, apply_bilinear_rows(rows, index, weight))``.

    Parameters
    ----------
    y : array_like, shape (pixels, time)
        Response series.
    rows : array_like, shape (k, n_src, time)
        Coarse regressor series, one row per source cell.
    index, weight : array_like, shape (pixels, 4)
        Corners and weights of each pixel (:func:`ihs_hpc.ops.interp.bilinear_weights`).
    rtol : float, optional
        As :func:`mlr`.

    Returns
    -------
    MLRResult
    """
    from .interp import apply_bilinear_rows

    y2 = np.ascontiguousarray(_as_float_array("y", y, keep_float32=False))
    rows = np.ascontiguousarray(rows, dtype=np.float64)
    index = np.ascontiguousarray(index, dtype=np.int64)
    weight = np.ascontiguousarray(weight, dtype=np.float64)
    if y2.ndim != 2 or rows.ndim != 3 or rows.shape[2] != y2.shape[1]:
        raise ValueError(f"y must be (pixels, time) and rows (k, cells, time) with the same time axis, got "
                         f"{y2.shape} and {rows.shape}")
    if index.shape != weight.shape or index.shape[0] != y2.shape[0]:
        raise ValueError(f"index and weight must be ({y2.shape[0]}, corners), got {index.shape} and {weight.shape}")
    if index.size and (index.min() < 0 or index.max() >= rows.shape[1]):
        raise ValueError(f"index refers to source rows outside 0..{rows.shape[1] - 1}")
    rtol = float(rtol)
    if not (0.0 <= rtol < 1.0):
        raise ValueError(f"rtol must lie in [0, 1), got {rtol}")
    n_pixels, n_time = y2.shape
    k = rows.shape[0]
    coef = np.empty((n_pixels, k + 1))
    fitted = np.empty((n_pixels, n_time))
    r2 = np.empty(n_pixels)
    rank = np.empty(n_pixels, dtype=np.int64)
    if n_pixels:
        mlr_bilinear_pixels(y2, rows, index, weight, rtol, coef, fitted, r2, rank)
        flagged = np.flatnonzero(rank == NEEDS_MIN_NORM)
        if flagged.size:  # rare: rank-deficient pixels, solved by lstsq on their materialised regressors
            X = apply_bilinear_rows(rows, index[flagged], weight[flagged])
            sub = (coef[flagged], fitted[flagged], r2[flagged], rank[flagged])
            mlr_min_norm_pixels(y2[flagged], X, *sub)
            coef[flagged], fitted[flagged], r2[flagged], rank[flagged] = sub
    return MLRResult(coef=coef, fitted=fitted, r2=r2, rank=rank)


def remove_met_bilinear(y, rows, index, weight, *, rtol: float = DEFAULT_RTOL,
                        keep_level: bool = False) -> tuple[np.ndarray, MLRResult]:
    """:func:`remove_met` (eq. 4) with the regressors interpolated on the fly (:func:`mlr_bilinear`)."""
    result = mlr_bilinear(y, rows, index, weight, rtol=rtol)
    return _remove(y, result.fitted, keep_level), result
