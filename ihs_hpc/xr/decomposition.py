"""STL of labelled series: :func:`stl` (eq. 1 of seed 000) and :func:`stl_baseline` (eq. 2).

Seed 000 (DOI 10.3390/atmos15010131), section 2.3.3: ``PM2.5(t) = T(t) + S(t) + R(t)`` (eq. 1) and
the baseline ``PM2.5_bl(t) = T(t) + S(t)`` (eq. 2). The numbers come from :mod:`ihs_hpc.ops.stl`
(statsmodels' STL, numba kernel or cached linear operator), one call per dask chunk.
"""
from __future__ import annotations

from ihs_hpc.ops import stl as ops_stl
from ihs_hpc.ops.stl_core import stl_settings
from ihs_hpc.xr.apply import (
    PAPER_DOI,
    apply_to_dataset,
    check_core_dims,
    describe,
    float_dtype,
    is_labelled,
    reject_dim_for_arrays,
    require_dataarray,
)

__all__ = ["stl", "stl_baseline"]

COMPONENTS = ("trend", "seasonal", "resid", "weights")
_LONG_NAMES = {"trend": "STL trend T (eq. 1)", "seasonal": "STL seasonal component S (eq. 1)",
               "resid": "STL remainder R = x - T - S (eq. 1)", "weights": "STL robustness weights"}


def _components(values, *, n_out, **kwargs):
    """The first ``n_out`` STL components of a numpy block (series on the last axis)."""
    result = ops_stl.stl(values, **kwargs)
    return tuple(getattr(result, name) for name in COMPONENTS[:n_out])


def _baseline(values, **kwargs):
    return (ops_stl.stl_baseline(values, **kwargs),)


def _check_length(func_name: str, obj, dim: str, period: int) -> None:
    n = obj.sizes[dim]
    if n < 2 * period:
        raise ValueError(f"{func_name}: dimension {dim!r} has length {n}; STL needs at least 2 * period = "
                         f"{2 * period} observations")


def _variable_attrs(obj, long_name: str) -> dict:
    """The input's attributes (units, grid_mapping, ...) with a new long_name; standard_name dropped."""
    attrs = {k: v for k, v in obj.attrs.items() if k != "standard_name"}
    source = obj.attrs.get("long_name") or obj.name
    attrs["long_name"] = f"{long_name} of {source}" if source else long_name
    return attrs


def stl(x, period, seasonal=7, trend=None, low_pass=None, seasonal_deg=1, trend_deg=1, low_pass_deg=1,
        robust=False, seasonal_jump=1, trend_jump=1, low_pass_jump=1, inner_iter=None, outer_iter=None,
        method="auto", *, backend="auto", device=None, dim=None):
    """STL decomposition of every series (seed 000, eq. 1), for numpy arrays and xarray DataArrays.

    ``x(t) = T(t) + S(t) + R(t)`` with statsmodels' STL parameters, defaults and results (seed 000,
    DOI 10.3390/atmos15010131, section 2.3.3, eq. 1).

    Parameters
    ----------
    x : numpy.ndarray or xarray.DataArray
        numpy: series on the last axis (exactly :func:`ihs_hpc.ops.stl.stl`). DataArray: series
        along ``dim``, any other dimensions; dask-backed data stays lazy and must hold ``dim`` in
        one chunk (chunk the other dimensions). No NaN.
    period, seasonal, trend, low_pass, seasonal_deg, trend_deg, low_pass_deg, robust, \
seasonal_jump, trend_jump, low_pass_jump, inner_iter, outer_iter, method, backend, device
        As :func:`ihs_hpc.ops.stl.stl` (statsmodels' ``STL`` and ``STL.fit``).
    dim : str, optional
        DataArray only: the time dimension (default ``"time"``).

    Returns
    -------
    STLResult or xarray.Dataset
        numpy input: :class:`ihs_hpc.ops.stl.STLResult`. DataArray input: a Dataset with
        ``trend``, ``seasonal`` and ``resid`` (plus ``weights`` with robustness loops), each
        with the dimensions (in the same order), coordinates, units and dtype of ``x``; the
        resolved settings in its attributes (``stl_period``, ...).

    Raises
    ------
    ValueError
        Invalid settings, ``dim`` missing or split into several dask chunks, too short series;
        NaN or inf (on a dask input: when computed).
    TypeError
        ``dim`` with numpy input, or an xarray Dataset (use :func:`stl_baseline` or one variable).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = np.arange(3 * 365)
    >>> da = xr.DataArray(np.sin(2 * np.pi * t / 365)[:, None] + np.zeros((1, 4)), dims=("time", "x"),
    ...                   attrs={"units": "ug m-3"}).chunk({"x": 2})
    >>> parts = stl(da, period=365)  # lazy
    >>> parts.trend.dims, parts.trend.attrs["units"]
    (('time', 'x'), 'ug m-3')
    """
    kwargs = dict(period=period, seasonal=seasonal, trend=trend, low_pass=low_pass, seasonal_deg=seasonal_deg,
                  trend_deg=trend_deg, low_pass_deg=low_pass_deg, robust=robust, seasonal_jump=seasonal_jump,
                  trend_jump=trend_jump, low_pass_jump=low_pass_jump, inner_iter=inner_iter, outer_iter=outer_iter)
    if not is_labelled(x):
        reject_dim_for_arrays("stl", dim)
        return ops_stl.stl(x, method=method, backend=backend, device=device, **kwargs)
    x = require_dataarray("stl", x)
    dim = dim or "time"
    settings = stl_settings(**kwargs)  # fails before any graph is built
    check_core_dims("stl", x, [dim])
    _check_length("stl", x, dim, settings.period)
    n_out = 3 if settings.is_linear else 4
    dtype = float_dtype(x)
    ds = apply_to_dataset(_components, [x], input_core_dims=[[dim]],
                          outputs={name: ([dim], dtype) for name in COMPONENTS[:n_out]},
                          kwargs=dict(n_out=n_out, method=method, backend=backend, device=device, **kwargs),
                          template=x)
    for name in COMPONENTS[:n_out]:
        ds[name].attrs = _variable_attrs(x, _LONG_NAMES[name])
    if n_out == 4:
        ds["weights"].attrs["units"] = "1"
    settings_attrs = {f"stl_{k}": int(v) for k, v in settings.as_dict().items()}
    ds.attrs.update(settings_attrs, stl_method=method, references=f"{PAPER_DOI} (eq. 1); statsmodels STL")
    return ds


def stl_baseline(x, period, *, method="auto", backend="auto", device=None, dim=None, **settings):
    """STL baseline ``T + S`` (seed 000, eq. 2) of every series, for numpy arrays and xarray objects.

    ``PM2.5_bl(t) = T(t) + S(t)`` (seed 000, DOI 10.3390/atmos15010131, eq. 2): one matrix product
    per chunk with the cached baseline operator for non-robust settings, the numba kernel otherwise.

    Parameters
    ----------
    x : numpy.ndarray, xarray.DataArray or xarray.Dataset
        numpy: series on the last axis (exactly :func:`ihs_hpc.ops.stl.stl_baseline`). xarray:
        series along ``dim`` (every data variable of a Dataset); dask-backed data stays lazy and
        must hold ``dim`` in one chunk.
    period : int
        Period of the seasonal component.
    method, backend, device
        As :func:`ihs_hpc.ops.stl.stl`.
    dim : str, optional
        xarray only: the time dimension (default ``"time"``).
    **settings
        :func:`ihs_hpc.ops.stl_core.stl_settings` keywords.

    Returns
    -------
    numpy.ndarray, xarray.DataArray or xarray.Dataset
        Like ``x``: baselines with its dimensions (same order), coordinates, units and float dtype.

    Raises
    ------
    ValueError
        Invalid settings, ``dim`` missing or split into several dask chunks, too short series.
    TypeError
        ``dim`` with numpy input.
    """
    if not is_labelled(x):
        reject_dim_for_arrays("stl_baseline", dim)
        return ops_stl.stl_baseline(x, period, method=method, backend=backend, device=device, **settings)
    import xarray as xr

    dim = dim or "time"
    resolved = stl_settings(period, **settings)  # fails before any graph is built
    if isinstance(x, xr.Dataset):
        return x.map(lambda v: stl_baseline(v, period, method=method, backend=backend, device=device, dim=dim,
                                            **settings), keep_attrs=True)
    check_core_dims("stl_baseline", x, [dim], arg=str(x.name or "x"))
    _check_length("stl_baseline", x, dim, resolved.period)
    ds = apply_to_dataset(_baseline, [x], input_core_dims=[[dim]], outputs={"baseline": ([dim], float_dtype(x))},
                          kwargs=dict(period=period, method=method, backend=backend, device=device, **settings),
                          template=x)
    out = ds["baseline"].rename(x.name)
    out.attrs = _variable_attrs(x, "STL baseline T + S (eq. 2)")
    return describe(out, out.attrs["long_name"], references=f"{PAPER_DOI} (eq. 2)")
