"""Gap filling along time (public numpy API over :mod:`ihs_hpc.kernels.timefill`)."""
from __future__ import annotations

import numpy as np

from ..kernels.timefill import fill_columns

#: Runs of missing days up to this length are filled by linear interpolation; longer ones use the
#: series' climatology plus the interpolated anomaly (see :mod:`ihs_hpc.kernels.timefill`).
MAX_LINEAR_DAYS = 5


def fill_time_gaps(data, *, period: int = 365, max_linear: int = MAX_LINEAR_DAYS, axis: int = 0):
    """Fill NaN runs of daily series along ``axis``.

    Parameters
    ----------
    data : array_like
        Series along ``axis`` (any other dims are pixels).
    period : int
        Days in the seasonal cycle the climatology of long gaps uses (365; 0 disables it).
    max_linear : int
        Longest run of missing days filled by plain linear interpolation.
    axis : int
        The time axis.

    Returns
    -------
    filled : ndarray
        ``data`` with its gaps filled, float64, same shape; all-NaN series stay all NaN.
    counts : ndarray of int64
        Values filled per series (shape of ``data`` without ``axis``).
    """
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 0:
        raise ValueError("fill_time_gaps needs at least one axis (time)")
    if period < 0 or max_linear < 0:
        raise ValueError(f"period and max_linear must be >= 0, got {period} and {max_linear}")
    moved = np.moveaxis(data, axis, 0)
    flat = np.ascontiguousarray(moved.reshape(moved.shape[0], -1))
    out = np.empty_like(flat)
    counts = np.zeros(flat.shape[1], dtype=np.int64)
    if flat.size:
        fill_columns(flat, out, counts, int(period), int(max_linear))
    filled = np.moveaxis(out.reshape(moved.shape), 0, axis)
    return filled, counts.reshape(moved.shape[1:])
