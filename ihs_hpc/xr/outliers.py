"""Per-pixel IQR outlier removal for labelled data (seed 000, section 2.3.1): :func:`iqr_outliers`.

The numbers come from :func:`ihs_hpc.ops.outliers.iqr_outliers`, one call per dask chunk.
"""
from __future__ import annotations

import numpy as np

from ihs_hpc.ops import outliers as ops_outliers
from ihs_hpc.xr.apply import (
    PAPER_DOI,
    apply_to_dataset,
    check_core_dims,
    describe,
    float_dtype,
    is_labelled,
    reject_axis_for_labelled,
    reject_dim_for_arrays,
    require_dataarray,
)

__all__ = ["iqr_outliers"]


def _clean_block(values, *, factor):
    return ops_outliers.iqr_outliers(values, factor=factor, axis=-1)


def iqr_outliers(cube, factor=1.5, axis=-1, *, dim=None):
    """Replace each series' IQR outliers by NaN (seed 000, section 2.3.1), numpy or xarray.

    Values below ``Q1 - factor * IQR`` or above ``Q3 + factor * IQR`` of their own series become NaN
    (seed 000, DOI 10.3390/atmos15010131, section 2.3.1), with
    :func:`ihs_hpc.ops.outliers.iqr_outliers`.

    Parameters
    ----------
    cube : numpy.ndarray or xarray.DataArray
        numpy: exactly :func:`ihs_hpc.ops.outliers.iqr_outliers` (series along ``axis``).
        DataArray: series along ``dim``; dask-backed data stays lazy (``dim`` in one chunk).
    factor : float, default 1.5
        Fence multiplier.
    axis : {0, -1}
        numpy only: the series axis.
    dim : str, optional
        DataArray only: the series dimension (default ``"time"``).

    Returns
    -------
    tuple
        ``(cleaned, removed_mask)``: ndarrays for numpy input; for a DataArray, DataArrays with its
        dimensions (same order), coordinates and attributes (``cleaned`` keeps its units and float
        dtype; ``removed`` is boolean).

    Raises
    ------
    ValueError
        Negative or non-finite ``factor``, a bad axis, or ``dim`` missing or split into dask chunks.
    TypeError
        ``dim`` with numpy input, ``axis`` with xarray input.
    """
    if not is_labelled(cube):
        reject_dim_for_arrays("iqr_outliers", dim)
        return ops_outliers.iqr_outliers(cube, factor=factor, axis=axis)
    reject_axis_for_labelled("iqr_outliers", axis)
    cube = require_dataarray("iqr_outliers", cube, "cube")
    dim = dim or "time"
    factor = float(factor)
    if not np.isfinite(factor) or factor < 0:
        raise ValueError(f"iqr_outliers: factor must be a finite non-negative number, got {factor}")
    check_core_dims("iqr_outliers", cube, [dim], arg="cube")
    ds = apply_to_dataset(_clean_block, [cube], input_core_dims=[[dim]], kwargs={"factor": factor}, template=cube,
                          outputs={"cleaned": ([dim], float_dtype(cube)), "removed": ([dim], np.dtype(bool))})
    cleaned = ds["cleaned"].rename(cube.name)
    cleaned.attrs = dict(cube.attrs)
    removed = describe(ds["removed"].rename(f"{cube.name or 'x'}_removed"),
                       f"removed as an IQR outlier (factor {factor:g}; {PAPER_DOI} section 2.3.1)")
    return cleaned, removed
