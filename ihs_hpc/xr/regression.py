"""Per-pixel regression on meteorology for labelled data: :func:`mlr` (eq. 3) and :func:`remove_met` (eq. 4).

Seed 000 (DOI 10.3390/atmos15010131), section 2.3.3: ``PM2.5_bl_mlr(t) = a0 + sum_i a_i met_bl_i(t)``
(eq. 3) and ``PM2.5_bl_tem(t) = PM2.5_bl(t) - PM2.5_bl_mlr(t)`` (eq. 4). The numbers come from
:mod:`ihs_hpc.ops.mlr`, one call per dask chunk.
"""
from __future__ import annotations

import numpy as np

from ihs_hpc.ops import mlr as ops_mlr
from ihs_hpc.xr.apply import (
    PAPER_DOI,
    apply_to_dataset,
    check_core_dims,
    describe,
    is_labelled,
    reject_dim_for_arrays,
    require_dataarray,
)

__all__ = ["mlr", "remove_met"]

#: Dimension of the coefficients (``intercept`` first, then the regressor names); not "coef", the variable.
COEF_DIM = "term"


def _regressors_of_block(y, X):
    """``X`` of a numpy block as :func:`ihs_hpc.ops.mlr.mlr` takes it: 2-D when shared by every pixel,
    else with ``y``'s leading shape (xarray inserts size-1 axes for dimensions ``X`` lacks)."""
    lead = X.shape[:-2]
    if all(s == 1 for s in lead):
        return X.reshape(X.shape[-2:])
    return np.broadcast_to(X, y.shape[:-1] + X.shape[-2:])


def _fit_block(y, X, *, rtol, keep_level, with_tem):
    regressors = _regressors_of_block(y, X)
    if with_tem:
        bl_tem, result = ops_mlr.remove_met(y, regressors, rtol=rtol, keep_level=keep_level)
    else:
        result = ops_mlr.mlr(y, regressors, rtol=rtol)
    fields = (result.coef, result.fitted, result.r2, result.rank)
    return fields + (bl_tem,) if with_tem else fields


def _as_regressors(X, regressor_dim: str):
    """Regressors as one DataArray with ``regressor_dim``: a Dataset's variables are stacked in order.

    Dask chunks along ``regressor_dim`` are joined (a pixel's regressors are fitted together; this
    concatenates blocks, it does not touch the time chunking).
    """
    import xarray as xr

    if isinstance(X, xr.Dataset):
        X = X.to_dataarray(dim=regressor_dim) if hasattr(X, "to_dataarray") else X.to_array(dim=regressor_dim)
    X = require_dataarray("mlr", X, "X")
    if regressor_dim not in X.dims:
        raise ValueError(f"mlr: X has no dimension regressor_dim={regressor_dim!r} (dims: {tuple(X.dims)}); pass "
                         f"the name of the dimension that lists the regressors, or X as a Dataset of regressors")
    return X.chunk({regressor_dim: -1}) if X.chunks is not None else X


def _fit(y, X, *, dim, regressor_dim, rtol, keep_level, with_tem):
    """The regression Dataset (and ``bl_tem`` when ``with_tem``) of labelled ``y`` on ``X``."""
    y = require_dataarray("mlr", y, "y")
    dim = dim or "time"
    regressors = _as_regressors(X, regressor_dim)
    check_core_dims("mlr", y, [dim], arg="y")
    check_core_dims("mlr", regressors, [regressor_dim, dim], arg="X")
    k = regressors.sizes[regressor_dim]
    labels = (regressors[regressor_dim].values.tolist() if regressor_dim in regressors.coords
              else [f"a{i}" for i in range(1, k + 1)])
    outputs = {"coef": ([COEF_DIM], np.dtype(np.float64)), "fitted": ([dim], np.dtype(np.float64)),
               "r2": ([], np.dtype(np.float64)), "rank": ([], np.dtype(np.int64))}
    if with_tem:
        outputs["bl_tem"] = ([dim], np.dtype(np.float64))
    ds = apply_to_dataset(_fit_block, [y, regressors], input_core_dims=[[dim], [regressor_dim, dim]],
                          outputs=outputs, output_sizes={COEF_DIM: k + 1}, template=y,
                          kwargs=dict(rtol=ops_mlr.DEFAULT_RTOL if rtol is None else rtol, keep_level=keep_level,
                                      with_tem=with_tem))
    ds = ds.assign_coords({COEF_DIM: ["intercept", *[str(v) for v in labels]]})
    units = y.attrs.get("units")
    describe(ds["coef"], "regression coefficients a0 (intercept), a1..ak (eq. 3)")
    describe(ds["fitted"], "fitted meteorological part bl_mlr (eq. 3)", units)
    describe(ds["r2"], "coefficient of determination R2 of eq. 3", "1")
    describe(ds["rank"], "numerical rank of the design [1, X] (-1: NaN or inf in the input)", "1")
    if with_tem:
        describe(ds["bl_tem"], "baseline without the meteorological part bl_tem (eq. 4)", units)
    ds.attrs.update(references=f"{PAPER_DOI} (eqs. 3-4)", regressor_dim=regressor_dim)
    return ds


def mlr(y, X, *, rtol=None, dim=None, regressor_dim="variable"):
    """Multiple linear regression with an intercept per pixel (seed 000, eq. 3), numpy or xarray.

    Fits ``y(t) = a0 + sum_i a_i X_i(t)`` by least squares for every pixel (seed 000,
    DOI 10.3390/atmos15010131, eq. 3), with :func:`ihs_hpc.ops.mlr.mlr`.

    Parameters
    ----------
    y : numpy.ndarray or xarray.DataArray
        numpy: exactly :func:`ihs_hpc.ops.mlr.mlr`. DataArray: the response (e.g. the PM2.5 baseline)
        with dimension ``dim``; dask-backed data stays lazy (``dim`` in one chunk).
    X : numpy.ndarray, xarray.DataArray or xarray.Dataset
        Regressors. xarray: a Dataset whose variables are the regressors (e.g. ``t2m tp sp u10 v10
        rh`` baselines), or a DataArray with dimension ``regressor_dim``; with or without the pixel
        dimensions of ``y`` (shared regressors), aligned with ``y``.
    rtol : float, optional
        Relative pivot tolerance (default :data:`ihs_hpc.ops.mlr.DEFAULT_RTOL`).
    dim : str, optional
        xarray only: the time dimension (default ``"time"``).
    regressor_dim : str, default "variable"
        xarray only: the dimension of ``X`` that lists the regressors.

    Returns
    -------
    MLRResult or xarray.Dataset
        numpy input: :class:`ihs_hpc.ops.mlr.MLRResult`. xarray input: a Dataset with ``coef``
        (pixel dims, ``term``: ``intercept`` and the regressor names), ``fitted`` (like
        ``y``, its units), ``r2`` and ``rank``, all float64 except ``rank``.

    Raises
    ------
    ValueError
        Shapes that do not fit, a missing dimension, or ``dim`` split into several dask chunks.
    TypeError
        ``dim`` with numpy input.
    """
    if not is_labelled(y):
        reject_dim_for_arrays("mlr", dim)
        return ops_mlr.mlr(y, X, rtol=ops_mlr.DEFAULT_RTOL if rtol is None else rtol)
    return _fit(y, X, dim=dim, regressor_dim=regressor_dim, rtol=rtol, keep_level=False, with_tem=False)


def remove_met(y, X, *, rtol=None, keep_level=False, dim=None, regressor_dim="variable"):
    """Remove the meteorology-driven part of a baseline (seed 000, eq. 4), numpy or xarray.

    ``bl_tem(t) = bl(t) - bl_mlr(t)`` with ``bl_mlr`` the fit of eq. 3 (seed 000,
    DOI 10.3390/atmos15010131), with :func:`ihs_hpc.ops.mlr.remove_met`.

    Parameters
    ----------
    y, X, rtol, dim, regressor_dim
        As :func:`mlr`.
    keep_level : bool, default False
        Add each pixel's mean fitted value back (only the meteorological variation is removed).

    Returns
    -------
    tuple
        numpy input: ``(bl_tem ndarray, MLRResult)`` exactly as :func:`ihs_hpc.ops.mlr.remove_met`.
        xarray input: ``(bl_tem DataArray like y, Dataset as returned by mlr)``.

    Raises
    ------
    ValueError, TypeError
        As :func:`mlr`.
    """
    if not is_labelled(y):
        reject_dim_for_arrays("remove_met", dim)
        return ops_mlr.remove_met(y, X, rtol=ops_mlr.DEFAULT_RTOL if rtol is None else rtol, keep_level=keep_level)
    ds = _fit(y, X, dim=dim, regressor_dim=regressor_dim, rtol=rtol, keep_level=keep_level, with_tem=True)
    return ds["bl_tem"].rename(y.name), ds.drop_vars("bl_tem")
