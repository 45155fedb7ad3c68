"""Per-pixel outlier removal (seed 000, section 2.3.1): the paper's IQR rule and a residual IQR rule.

Public numpy API over :mod:`ihs_hpc.kernels.outliers`:

* :func:`iqr_outliers` — the quartile rule on each pixel's raw series (``prep.outliers: iqr``);
* :func:`residual_outliers` — on the residual from a running median of a few weeks, days that stand
  out from both neighbouring days by more than a multiple of the residuals' IQR
  (``prep.outliers: residual``): isolated spikes go, the high season and plume episodes stay; with
  ``shared``, a day that the neighbouring pixels share (a regional episode) stays as well.
"""
from __future__ import annotations

import numpy as np

from ihs_hpc.kernels.outliers import iqr_outliers_2d, keep_shared_jumps, residual_outliers_rows

__all__ = ["iqr_outliers", "residual_outliers"]


def iqr_outliers(cube, factor=1.5, axis=-1):
    """Replace each series' IQR outliers by NaN (seed 000, section 2.3.1).

    For every series along ``axis`` (one pixel's time series), values below
    ``Q1 - factor * IQR`` or above ``Q3 + factor * IQR`` become NaN, with ``IQR = Q3 - Q1`` and
    the quartiles of the series' non-NaN values computed like
    ``numpy.nanpercentile(series, [25, 75])`` (default linear method, in float64).  NaN values
    stay NaN and are not counted as removed.  A series without any valid value is left as is.

    Parameters
    ----------
    cube : array_like, float32 or float64
        Any shape; the series run along ``axis``.  Typical: ``(ny, nx, time)`` with
        ``axis=-1`` or ``(time, ny, nx)`` with ``axis=0``.
    factor : float, default 1.5
        Fence multiplier ``k``.
    axis : {0, -1, ndim - 1}, default -1
        Axis holding the series: the first or the last.

    Returns
    -------
    cleaned : ndarray
        Copy of ``cube`` (same shape and dtype; integer input becomes float64) with the outliers
        set to NaN.
    removed_mask : ndarray of bool
        True where a value was removed.

    Raises
    ------
    ValueError
        If ``factor`` is negative or not finite, or ``axis`` is neither the first nor the last
        axis of ``cube``.
    """
    data, factor, axis = _prepare(cube, factor, axis)
    ndim = data.ndim
    shape = data.shape
    if ndim == 1 or axis == ndim - 1:
        flat = data.reshape(-1, shape[-1])
        along_rows = True
    else:
        flat = data.reshape(shape[0], -1)
        along_rows = False
    cleaned = np.empty_like(flat)
    removed = np.empty(flat.shape, dtype=np.bool_)
    if flat.size:
        iqr_outliers_2d(flat, along_rows, factor, cleaned, removed)
    return cleaned.reshape(shape), removed.reshape(shape)


def _prepare(cube, factor, axis):
    data = np.asarray(cube)
    if data.ndim == 0:
        raise ValueError("cube must have at least one dimension (the series axis)")
    factor = float(factor)
    if not np.isfinite(factor) or factor < 0:
        raise ValueError(f"factor must be a finite non-negative number, got {factor}")
    if not isinstance(axis, (int, np.integer)):
        raise ValueError(f"axis must be an integer, got {axis!r}")
    ndim = data.ndim
    if axis < -ndim or axis >= ndim:
        raise ValueError(f"axis {axis} is out of range for cube with {ndim} dimensions")
    axis = int(axis) % ndim
    if axis not in (0, ndim - 1):
        raise ValueError(
            f"axis must be the first (0) or the last (-1) axis of cube, got {axis} for "
            f"shape {data.shape}"
        )
    if data.dtype not in (np.float32, np.float64):
        data = data.astype(np.float64)
    return np.ascontiguousarray(data), factor, axis


def residual_outliers(cube, factor=3.0, window=31, axis=-1, shared=None):
    """Replace isolated spikes by NaN: days that stand out from both neighbouring days (residual rule).

    For every series along ``axis``: the residual ``r(t) = x(t) - m(t)`` from the centred running
    median ``m`` over ``window`` days (NaN-aware, window truncated at the ends — pandas'
    ``rolling(window, center=True, min_periods=1).median()``) and the interquartile range ``IQR`` of
    the residuals (quartiles as ``numpy.nanpercentile``). A value is an outlier when its residual
    exceeds the residuals of both neighbouring valid days by more than ``factor × IQR``, or lies
    below both by more than that.

    The paper's rule (:func:`iqr_outliers`, seed 000 §2.3.1) puts the fences on the raw series, so
    it removes the days of the high season first — in IHS areas the days the sources add most —
    and lowers the IHS signal. Here a day is judged against its own weeks (the running median
    carries the seasonal cycle and slow changes) and against its neighbouring days: an isolated
    spike goes, while a day inside a pollution or plume episode (whose neighbours are high too)
    stays.

    Parameters
    ----------
    cube : array_like, float32 or float64
        Any shape; the series run along ``axis``.
    factor : float, default 3.0
        Multiplier of the residuals' IQR.
    window : int, default 31
        Odd running-median window (days), >= 3.
    axis : {0, -1, ndim - 1}, default -1
        Axis holding the series.
    shared : float or None, default None
        With a 3-D ``cube`` (the series axis first or last, the other two the grid's rows and
        columns): a flagged day stays when at least two of its 8 neighbouring pixels jump that day
        (same direction, each from its own residual series) by at least ``shared`` times its own
        jump — a weather or emission episode lifts a neighbourhood, a retrieval spike one pixel. Edge
        pixels of ``cube`` see fewer neighbours (a caller that tiles the grid reads a one-pixel
        halo). ``None``: each pixel is judged alone.

    Returns
    -------
    cleaned : ndarray
        Copy of ``cube`` with the outliers set to NaN.
    removed_mask : ndarray of bool
        True where a value was removed.

    Raises
    ------
    ValueError
        If ``factor`` is negative or not finite, ``window`` is not an odd integer >= 3, ``axis``
        is neither the first nor the last axis, or ``shared`` is given for a cube that is not 3-D
        or is not a number in [0, 1].
    """
    data, factor, axis = _prepare(cube, factor, axis)
    if shared is not None:
        shared = float(shared)
        if not 0.0 <= shared <= 1.0:
            raise ValueError(f"shared must be a number in [0, 1] or None, got {shared}")
        if data.ndim != 3:
            raise ValueError(f"shared needs a 3-D cube (time and the grid's two axes), got shape {data.shape}")
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 3 or window % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 3, got {window!r}")
    moved = np.moveaxis(data, axis, -1)
    flat = np.ascontiguousarray(moved.reshape(-1, moved.shape[-1]))
    cleaned = np.empty_like(flat)
    removed = np.empty(flat.shape, dtype=np.bool_)
    resid = np.empty(flat.shape, dtype=np.float32)
    if flat.size:
        residual_outliers_rows(flat, int(window) // 2, factor, cleaned, removed, resid)
        if shared is not None:
            keep_shared_jumps(flat.reshape(moved.shape), resid.reshape(moved.shape), shared,
                              cleaned.reshape(moved.shape), removed.reshape(moved.shape))
    cleaned = np.moveaxis(cleaned.reshape(moved.shape), -1, axis)
    removed = np.moveaxis(removed.reshape(moved.shape), -1, axis)
    return np.ascontiguousarray(cleaned), np.ascontiguousarray(removed)
