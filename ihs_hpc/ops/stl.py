"""STL decomposition of many series at once, with statsmodels' parameters and results.

``stl(x, period, ...)`` decomposes every series along the last axis of ``x`` into trend,
seasonal component and remainder (seed 000, sect. 2.3.3, eq. 1:
``PM2.5(t) = T(t) + S(t) + R(t)``); :attr:`STLResult.baseline` is eq. (2),
``PM2.5_bl(t) = T(t) + S(t)``. Parameter names, defaults and results are those of
``statsmodels.tsa.seasonal.STL(...).fit(inner_iter, outer_iter)``.

Two exact paths (same numbers up to float rounding):

* ``"direct"``: the numba kernel :mod:`ihs_hpc.kernels.stl`, any settings, parallel
  over series.
* ``"operator"``: non-robust STL (``outer_iter == 0``) is linear in ``x``, so a batch is a
  matrix product with operators built once per ``(N, settings)`` and cached
  (:mod:`ihs_hpc.ops.stl_operator`).

``method="auto"`` (default) takes the operator path when the STL is linear and the
operator pays: it is already cached (memory or disk), or the batch holds at least
``N / 8`` series (so building it costs at most a few batches), and one series costs
less as a GEMM than in the kernel (true for the usual daily series with a yearly
period; false for short windows on long series). See
:func:`ihs_hpc.ops.stl_operator.operator_pays`.

Settings (:func:`stl_settings`), input validation and the kernel path (:func:`stl_direct`) live in
:mod:`ihs_hpc.ops.stl_core`, which the operator module uses too: neither STL module imports the
other's internals. Labelled (xarray) input: :func:`ihs_hpc.stl`.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ihs_hpc.ops import stl_apply, stl_operator
from ihs_hpc.ops.stl_core import STLSettings, as_series_batch, stl_direct, stl_settings

__all__ = ["STLSettings", "STLResult", "stl_settings", "stl", "stl_baseline", "stl_direct"]

METHODS = ("auto", "direct", "operator")


def _choose_method(method: str, settings: STLSettings, n: int, n_series: int) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got method={method!r}")
    if method == "operator" and not settings.is_linear:
        raise ValueError("method='operator' needs the linear (non-robust) STL, i.e. outer_iter == 0 "
                         f"(robust=False and outer_iter=None); got robust={settings.robust}, "
                         f"outer_iter={settings.outer_iter}")
    if method != "auto":
        return method
    if not settings.is_linear:
        return "direct"
    return "operator" if stl_operator.operator_pays(n, n_series, settings) else "direct"


# --------------------------------------------------------------------------- public API
@dataclasses.dataclass(frozen=True, eq=False)
class STLResult:
    """STL components, each shaped like the input (eq. 1 of seed 000: ``x = T + S + R``).

    Attributes
    ----------
    trend, seasonal, resid : ndarray
        Trend ``T``, seasonal ``S`` and remainder ``R = x - T - S``.
    weights : ndarray
        Final robustness weights (all ones without robustness loops).
    settings : STLSettings
        The resolved settings.
    method : str
        ``"direct"`` (numba kernel) or ``"operator"`` (matrix product).
    """

    trend: np.ndarray
    seasonal: np.ndarray
    resid: np.ndarray
    weights: np.ndarray
    settings: STLSettings
    method: str

    @property
    def baseline(self) -> np.ndarray:
        """Baseline ``T + S`` (eq. 2 of seed 000: ``PM2.5_bl(t) = T(t) + S(t)``)."""
        return self.trend + self.seasonal


def stl(x, period, seasonal=7, trend=None, low_pass=None, seasonal_deg=1, trend_deg=1, low_pass_deg=1,
        robust=False, seasonal_jump=1, trend_jump=1, low_pass_jump=1, inner_iter=None, outer_iter=None,
        method="auto", *, backend="auto", device=None, precision="float64") -> STLResult:
    """STL decomposition of every series along the last axis of ``x``.

    Same parameters, defaults and results (to float rounding) as
    ``statsmodels.tsa.seasonal.STL(x_i, period, seasonal, trend, low_pass, seasonal_deg,
    trend_deg, low_pass_deg, robust, seasonal_jump, trend_jump, low_pass_jump)
    .fit(inner_iter, outer_iter)`` for each series ``x_i`` (eq. 1 of seed 000).

    Parameters
    ----------
    x : array_like, shape (..., N)
        Series on the last axis, any leading shape; float32 or float64 (integers are
        read as float64). Computed in float64, returned in the input float dtype. No NaN.
    period, seasonal, trend, low_pass, seasonal_deg, trend_deg, low_pass_deg, robust, \
seasonal_jump, trend_jump, low_pass_jump, inner_iter, outer_iter
        As :func:`stl_settings` (statsmodels' ``STL`` and ``STL.fit``). ``N >= 2 * period``.
    method : {"auto", "direct", "operator"}
        ``"direct"``: numba kernel. ``"operator"``: matrix product with the cached linear
        operators (only when ``outer_iter == 0``). ``"auto"``: the operator when linear and
        it pays (cached, or at least ``N / 8`` series), else the kernel.
    backend : {"auto", "numpy", "torch"}
        Matrix-product backend of the operator path (see
        :func:`ihs_hpc.ops.stl_apply.apply_stl_operator`).
    device : str, optional
        Torch device of the operator path (default: CUDA when available).
    precision : {"float64", "float32"}
        Arithmetic of the operator path's products (float32: faster, error about 1e-6 of the series'
        scale; see :data:`ihs_hpc.ops.stl_apply.PRECISIONS`). The direct kernel is always float64.

    Returns
    -------
    STLResult
        ``trend``, ``seasonal``, ``resid``, ``weights`` shaped like ``x``; ``baseline``
        (eq. 2) on demand.

    Raises
    ------
    ValueError
        Invalid settings, too short series, NaN or inf in ``x`` (with the number of
        series affected), or ``method="operator"`` with robustness loops.
    TypeError
        Non-numeric ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(3 * 365)
    >>> x = np.sin(2 * np.pi * t / 365) + 0.001 * t + np.random.default_rng(0).normal(0, 0.1, (2, t.size))
    >>> res = stl(x, period=365)
    >>> res.trend.shape
    (2, 1095)
    """
    settings = stl_settings(period, seasonal, trend, low_pass, seasonal_deg, trend_deg, low_pass_deg, robust,
                            seasonal_jump, trend_jump, low_pass_jump, inner_iter, outer_iter)
    batch, lead, out_dtype = as_series_batch(x, settings.period)
    n_series, n = batch.shape
    chosen = _choose_method(method, settings, n, n_series)
    if chosen == "operator":
        op = stl_operator.operator_for(n, settings)
        trend_, season_ = stl_apply.apply_operator_batch(op, batch, "trend_seasonal", backend, device,
                                                                  precision)
        weights = np.ones_like(batch)
    else:
        trend_, season_, weights = stl_direct(batch, settings)
    resid = batch - trend_ - season_
    shape = lead + (n,)

    def out(a):
        return a.reshape(shape).astype(out_dtype, copy=False)

    return STLResult(trend=out(trend_), seasonal=out(season_), resid=out(resid), weights=out(weights),
                     settings=settings, method=chosen)


def stl_baseline(x, period, *, method="auto", backend="auto", device=None, precision="float64",
                 **settings) -> np.ndarray:
    """STL baseline ``T + S`` (eq. 2 of seed 000) of every series on the last axis of ``x``.

    The stage-2 entry point: on a tile shaped (n_series, N) with non-robust settings this
    is one matrix product with the cached baseline operator (two half-size products
    when the operator is centrosymmetric, i.e. all jumps are 1); with robust settings it
    runs the numba kernel.

    Parameters
    ----------
    x : array_like, shape (..., N)
        Series on the last axis; float32 / float64 (integers read as float64).
    period : int
        Period of the seasonal component.
    method : {"auto", "direct", "operator"}
        As in :func:`stl`.
    backend, device, precision
        Operator-path matrix-product backend, torch device and arithmetic, as in :func:`stl`.
    **settings
        Any of :func:`stl_settings`' keywords (seasonal, trend, low_pass, *_deg, robust,
        *_jump, inner_iter, outer_iter).

    Returns
    -------
    ndarray
        ``trend + seasonal``, shaped like ``x``, in the input float dtype.
    """
    resolved = stl_settings(period, **settings)
    batch, lead, out_dtype = as_series_batch(x, resolved.period)
    n_series, n = batch.shape
    chosen = _choose_method(method, resolved, n, n_series)
    if chosen == "operator":
        op = stl_operator.operator_for(n, resolved)
        baseline = stl_apply.apply_operator_batch(op, batch, "baseline", backend, device, precision)
    else:
        trend_, season_, _ = stl_direct(batch, resolved)
        baseline = trend_ + season_
    return baseline.reshape(lead + (n,)).astype(out_dtype, copy=False)
