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
"""
from __future__ import annotations

import dataclasses
import functools
import numbers

import numba
import numpy as np

from ihs_hpc.kernels import stl as _kernel

__all__ = ["STLSettings", "STLResult", "stl_settings", "stl", "stl_baseline", "stl_baseline_xarray", "stl_direct"]

METHODS = ("auto", "direct", "operator")


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
def _as_series_batch(x, period: int):
    """``x`` as a C-contiguous float64 (n_series, n) array, plus its leading shape and dtype."""
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
def _plans(n: int, period: int, seasonal: int, seasonal_deg: int, seasonal_jump: int, trend: int,
           trend_deg: int, trend_jump: int, low_pass: int, low_pass_deg: int, low_pass_jump: int):
    """Kernel plans (seasonal, low-pass, trend smoothers) for series of length ``n``, cached."""
    plans = (_kernel.seasonal_plans(n, period, seasonal, seasonal_deg, seasonal_jump)
             + _kernel.smoother_plan(n, low_pass, low_pass_deg, low_pass_jump)
             + _kernel.smoother_plan(n, trend, trend_deg, trend_jump))
    for array in plans:
        array.setflags(write=False)
    return plans


def stl_direct(batch: np.ndarray, settings: STLSettings):
    """Run the numba kernel on a float64 (n_series, n) batch (no validation: internal fast path).

    Returns
    -------
    trend, seasonal, weights : ndarray of float64, shape (n_series, n)
    """
    n_series, n = batch.shape
    s = settings
    plans = _plans(n, s.period, s.seasonal, s.seasonal_deg, s.seasonal_jump, s.trend, s.trend_deg, s.trend_jump,
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
    from ihs_hpc.ops import stl_operator  # lazy: stl_operator imports this module

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
        method="auto", *, backend="auto", device=None) -> STLResult:
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
        :func:`ihs_hpc.ops.stl_operator.apply_stl_operator`).
    device : str, optional
        Torch device of the operator path (default: CUDA when available).

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
    batch, lead, out_dtype = _as_series_batch(x, settings.period)
    n_series, n = batch.shape
    chosen = _choose_method(method, settings, n, n_series)
    if chosen == "operator":
        from ihs_hpc.ops import stl_operator

        op = stl_operator.operator_for(n, settings)
        trend_, season_ = stl_operator.apply_operator_batch(op, batch, "trend_seasonal", backend, device)
        weights = np.ones_like(batch)
    else:
        trend_, season_, weights = stl_direct(batch, settings)
    resid = batch - trend_ - season_
    shape = lead + (n,)

    def out(a):
        return a.reshape(shape).astype(out_dtype, copy=False)

    return STLResult(trend=out(trend_), seasonal=out(season_), resid=out(resid), weights=out(weights),
                     settings=settings, method=chosen)


def stl_baseline(x, period, *, method="auto", backend="auto", device=None, **settings) -> np.ndarray:
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
    backend, device
        Operator-path matrix-product backend and torch device, as in :func:`stl`.
    **settings
        Any of :func:`stl_settings`' keywords (seasonal, trend, low_pass, *_deg, robust,
        *_jump, inner_iter, outer_iter).

    Returns
    -------
    ndarray
        ``trend + seasonal``, shaped like ``x``, in the input float dtype.
    """
    resolved = stl_settings(period, **settings)
    batch, lead, out_dtype = _as_series_batch(x, resolved.period)
    n_series, n = batch.shape
    chosen = _choose_method(method, resolved, n, n_series)
    if chosen == "operator":
        from ihs_hpc.ops import stl_operator

        op = stl_operator.operator_for(n, resolved)
        baseline = stl_operator.apply_operator_batch(op, batch, "baseline", backend, device)
    else:
        trend_, season_, _ = stl_direct(batch, resolved)
        baseline = trend_ + season_
    return baseline.reshape(lead + (n,)).astype(out_dtype, copy=False)


def stl_baseline_xarray(obj, period, *, dim="time", method="auto", **settings):
    """:func:`stl_baseline` along dimension ``dim`` of an xarray DataArray or Dataset.

    A thin ``xarray.apply_ufunc`` wrapper (``dask="parallelized"``): with dask-backed data
    every chunk must hold the whole ``dim`` (chunk the other dimensions only), and each
    chunk is one call of :func:`stl_baseline`.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        Data with dimension ``dim``; float32 / float64 (integers give float64).
    period : int
        Period of the seasonal component.
    dim : str, default "time"
        The time dimension.
    method : {"auto", "direct", "operator"}
        As in :func:`stl`.
    **settings
        :func:`stl_settings` keywords.

    Returns
    -------
    Same type as ``obj``
        Baselines ``T + S`` (eq. 2 of seed 000), ``dim`` last.
    """
    import xarray as xr

    if dim not in obj.dims:
        raise ValueError(f"dim={dim!r} is not a dimension of obj (dims: {tuple(obj.dims)})")
    stl_settings(period, **settings)  # fail early, before any dask graph is built

    def dtype_of(a):
        return a.dtype if a.dtype in (np.float32, np.float64) else np.dtype(np.float64)

    dtypes = [dtype_of(v) for v in obj.data_vars.values()] if isinstance(obj, xr.Dataset) else [dtype_of(obj)]
    return xr.apply_ufunc(stl_baseline, obj, kwargs=dict(period=period, method=method, **settings),
                          input_core_dims=[[dim]], output_core_dims=[[dim]], dask="parallelized",
                          output_dtypes=[np.result_type(*dtypes)], keep_attrs=True)
