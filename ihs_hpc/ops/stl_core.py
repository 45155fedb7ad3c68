"""Resolved STL settings, series validation and the numba-kernel path, shared by both STL paths.

:mod:`ihs_hpc.ops.stl` (the public decomposition, eqs. 1–2 of seed 000, DOI 10.3390/atmos15010131)
and :mod:`ihs_hpc.ops.stl_operator` (non-robust STL as a linear operator) both import from here,
and neither imports the other's internals: :func:`stl_settings` validates statsmodels' parameters,
:func:`as_series_batch` turns any input into a float64 ``(n_series, N)`` batch, and
:func:`stl_direct` runs the kernel :mod:`ihs_hpc.kernels.stl` (which the operator path also uses to
build its matrices from impulse responses).
"""
from __future__ import annotations

import dataclasses
import functools
import numbers

import numba
import numpy as np

from ihs_hpc.kernels import stl as _kernel

__all__ = ["STLSettings", "stl_settings", "as_series_batch", "kernel_plans", "stl_direct"]


# --------------------------------------------------------------------------- settings
@dataclasses.dataclass(frozen=True)
class STLSettings:
    """Resolved STL settings (statsmodels' meanings; every default filled in).

    Attributes
    ----------
    period : int
        Period of the seasonal component (>= 2).
    seasonal, trend, low_pass : int
        Odd window lengths of the seasonal, trend and low-pass loess smoothers.
    seasonal_deg, trend_deg, low_pass_deg : int
        Degrees (0 or 1) of the local polynomials.
    seasonal_jump, trend_jump, low_pass_jump : int
        Loess evaluated every ``*_jump`` points, linear interpolation between.
    inner_iter : int
        Seasonal/trend loops per outer loop.
    outer_iter : int
        Robustness loops (0: non-robust, linear in the data).
    robust : bool
        The ``robust`` flag as given (it only sets the iteration defaults).
    """

    period: int
    seasonal: int
    trend: int
    low_pass: int
    seasonal_deg: int
    trend_deg: int
    low_pass_deg: int
    seasonal_jump: int
    trend_jump: int
    low_pass_jump: int
    inner_iter: int
    outer_iter: int
    robust: bool

    @property
    def is_linear(self) -> bool:
        """True when the decomposition is linear in the data (no robustness loops)."""
        return self.outer_iter == 0

    def as_dict(self) -> dict:
        """The settings as a plain dict (statsmodels' ``STL.config`` keys plus the iterations)."""
        return dataclasses.asdict(self)


def _is_int(value) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_pos_int(name: str, value, odd: bool, minimum: int, message: str) -> int:
    if not _is_int(value) or value < minimum or (odd and value % 2 == 0):
        raise ValueError(f"{message}; got {name}={value!r}")
    return int(value)


def stl_settings(period, seasonal=7, trend=None, low_pass=None, seasonal_deg=1, trend_deg=1, low_pass_deg=1,
                 robust=False, seasonal_jump=1, trend_jump=1, low_pass_jump=1, inner_iter=None,
                 outer_iter=None) -> STLSettings:
    """Validate STL settings and fill in statsmodels' defaults.

    Parameters
    ----------
    period : int
        Period of the seasonal component, >= 2.
    seasonal : int, default 7
        Seasonal smoother length, odd, >= 3.
    trend : int, optional
        Trend smoother length, odd, >= 3, > ``period``. Default: the smallest odd integer
        >= ``1.5 * period / (1 - 1.5 / seasonal)``.
    low_pass : int, optional
        Low-pass filter length, odd, >= 3, > ``period``. Default: the smallest odd integer
        > ``period``.
    seasonal_deg, trend_deg, low_pass_deg : {0, 1}
        Local polynomial degrees.
    robust : bool, default False
        Robust fitting: sets the iteration defaults to ``inner_iter=2, outer_iter=15``
        (otherwise ``5, 0``), exactly as statsmodels.
    seasonal_jump, trend_jump, low_pass_jump : int, default 1
        Positive loess jumps.
    inner_iter : int, optional
        Positive number of inner loops.
    outer_iter : int, optional
        Non-negative number of robustness loops.

    Returns
    -------
    STLSettings

    Raises
    ------
    ValueError
        Naming the offending argument and value, with statsmodels' wording.
    """
    period = _check_pos_int("period", period, False, 2, "period must be a positive integer >= 2")
    seasonal = _check_pos_int("seasonal", seasonal, True, 3, "seasonal must be an odd positive integer >= 3")
    if trend is None:
        trend = int(np.ceil(1.5 * period / (1 - 1.5 / seasonal)))
        trend += (trend % 2) == 0
    trend = _check_pos_int("trend", trend, True, max(3, period + 1),
                           "trend must be an odd positive integer >= 3 where trend > period")
    if low_pass is None:
        low_pass = period + 1
        low_pass += (low_pass % 2) == 0
    low_pass = _check_pos_int("low_pass", low_pass, True, max(3, period + 1),
                              "low_pass must be an odd positive integer >= 3 where low_pass > period")
    degrees = {}
    for name, value in (("seasonal_deg", seasonal_deg), ("trend_deg", trend_deg), ("low_pass_deg", low_pass_deg)):
        if not _is_int(value) or value not in (0, 1):
            raise ValueError(f"{name} must be 0 or 1; got {name}={value!r}")
        degrees[name] = int(value)
    jumps = {}
    for name, value in (("low_pass_jump", low_pass_jump), ("seasonal_jump", seasonal_jump),
                        ("trend_jump", trend_jump)):
        jumps[name] = _check_pos_int(name, value, False, 1, f"{name} must be a positive integer")
    if not isinstance(robust, (bool, np.bool_)):
        raise TypeError(f"robust must be a bool; got robust={robust!r}")
    robust = bool(robust)
    if inner_iter is None:
        inner_iter = 2 if robust else 5
    if outer_iter is None:
        outer_iter = 15 if robust else 0
    inner_iter = _check_pos_int("inner_iter", inner_iter, False, 1, "inner_iter must be a positive integer")
    outer_iter = _check_pos_int("outer_iter", outer_iter, False, 0, "outer_iter must be a non-negative integer")
    return STLSettings(period=period, seasonal=seasonal, trend=trend, low_pass=low_pass, robust=robust,
                       inner_iter=inner_iter, outer_iter=outer_iter, **degrees, **jumps)


# --------------------------------------------------------------------------- input handling
def as_series_batch(x, period: int):
    """Validate STL input and flatten it to a batch of series.

    Parameters
    ----------
    x : array_like, shape (..., N)
        Series on the last axis; float32, float64 or integers.
    period : int
        Seasonal period (``N >= 2 * period`` is required).

    Returns
    -------
    batch : ndarray of float64, shape (n_series, N)
        C-contiguous.
    lead : tuple of int
        The leading shape of ``x``.
    out_dtype : numpy.dtype
        The dtype results are returned in (float32 or float64).

    Raises
    ------
    TypeError
        Non-numeric input.
    ValueError
        A 0-d input, too short series, NaN or inf (with the number of series affected).
    """
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"x must be an array of real numbers; got {type(x).__name__} ({exc})") from None
    if arr.dtype in (np.float32, np.float64):
        out_dtype = arr.dtype
    elif arr.dtype.kind in "iu":
        out_dtype = np.dtype(np.float64)
    else:
        raise TypeError(f"x must hold float32, float64 or integer values; got dtype {arr.dtype}")
    if arr.ndim < 1:
        raise ValueError("x must have at least one dimension (time on the last axis); got a 0-d array")
    n = arr.shape[-1]
    if n < 2 * period:
        raise ValueError(f"x's last axis (time) has length {n}; STL needs at least 2 * period = {2 * period} "
                         f"observations (x.shape={arr.shape})")
    lead = arr.shape[:-1]
    batch = np.ascontiguousarray(arr.reshape(-1, n), dtype=np.float64)
    if batch.size and not np.isfinite(batch).all():
        n_nan = int(np.isnan(batch).any(axis=1).sum())
        if n_nan:
            raise ValueError(f"x holds NaN in {n_nan} of {batch.shape[0]} series (x.shape={arr.shape}); "
                             "STL needs gap-free series: fill the gaps first")
        n_inf = int(np.isinf(batch).any(axis=1).sum())
        raise ValueError(f"x holds +/-inf in {n_inf} of {batch.shape[0]} series (x.shape={arr.shape}); "
                         "STL needs finite values")
    return batch, lead, out_dtype


@functools.lru_cache(maxsize=32)
def kernel_plans(n: int, period: int, seasonal: int, seasonal_deg: int, seasonal_jump: int, trend: int,
           trend_deg: int, trend_jump: int, low_pass: int, low_pass_deg: int, low_pass_jump: int):
    """Loess plans of the numba kernel for series of length ``n`` (cached, read-only).

    Parameters
    ----------
    n : int
        Series length.
    period, seasonal, seasonal_deg, seasonal_jump, trend, trend_deg, trend_jump, low_pass, low_pass_deg, \
low_pass_jump : int
        Resolved settings (:class:`STLSettings`).

    Returns
    -------
    tuple of ndarray
        Seasonal plans, then the low-pass and trend smoother plans
        (:func:`ihs_hpc.kernels.stl.seasonal_plans`, :func:`ihs_hpc.kernels.stl.smoother_plan`).
    """
    plans = (_kernel.seasonal_plans(n, period, seasonal, seasonal_deg, seasonal_jump)
             + _kernel.smoother_plan(n, low_pass, low_pass_deg, low_pass_jump)
             + _kernel.smoother_plan(n, trend, trend_deg, trend_jump))
    for array in plans:
        array.setflags(write=False)
    return plans


def stl_direct(batch: np.ndarray, settings: STLSettings):
    """Run the numba kernel on a float64 (n_series, n) batch (no validation: internal fast path).

    Parameters
    ----------
    batch : ndarray of float64, shape (n_series, n)
        C-contiguous series, as :func:`as_series_batch` returns them.
    settings : STLSettings

    Returns
    -------
    trend, seasonal, weights : ndarray of float64, shape (n_series, n)
    """
    n_series, n = batch.shape
    s = settings
    plans = kernel_plans(n, s.period, s.seasonal, s.seasonal_deg, s.seasonal_jump, s.trend, s.trend_deg, s.trend_jump,
                   s.low_pass, s.low_pass_deg, s.low_pass_jump)
    trend = np.empty_like(batch)
    season = np.empty_like(batch)
    weights = np.empty_like(batch)
    if n_series:
        threads = numba.get_num_threads()
        if n_series < threads:  # waking idle workers costs more than a few series
            numba.set_num_threads(n_series)
        try:
            _kernel.stl_batch(batch, s.period, s.inner_iter, s.outer_iter, *plans, trend, season, weights)
        finally:
            numba.set_num_threads(threads)
    return trend, season, weights
