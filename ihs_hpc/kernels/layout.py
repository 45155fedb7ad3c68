"""Blocked transposes between a tile's time-major cube and series-major chunks of pixels (numba).

Tiles are stored time-major, ``(time, pixels)`` (a Zarr chunk holds a tile's whole record), while the
per-pixel kernels (STL operator, regression) want one pixel's series contiguous, ``(pixels, time)``.
Transposing in blocks of :data:`BLOCK` × :data:`BLOCK` keeps both sides in cache (a plain
``a.T.copy()`` of a 3652 × 4096 tile is about five times slower), with the dtype converted on the way.
"""
from __future__ import annotations

import numba

#: edge of the square blocks the transposes walk
BLOCK = 32


@numba.njit(cache=True)
def gather_series(cube, columns, out):
    """``out[p, t] = cube[t, columns[p]]``: the series of the listed pixels, one per row.

    Parameters
    ----------
    cube : ndarray, shape (n_time, n_pixels)
        Time-major values.
    columns : ndarray, shape (n,), int64
        Pixels (columns of ``cube``) to gather.
    out : ndarray, shape (n, n_time)
        Output (any float dtype; values are converted).
    """
    n, n_time = out.shape
    for t0 in range(0, n_time, BLOCK):
        t1 = min(t0 + BLOCK, n_time)
        for p0 in range(0, n, BLOCK):
            p1 = min(p0 + BLOCK, n)
            for p in range(p0, p1):
                c = columns[p]
                for t in range(t0, t1):
                    out[p, t] = cube[t, c]


@numba.njit(cache=True)
def scatter_series(series, columns, cube):
    """``cube[t, columns[p]] = series[p, t]``: the inverse of :func:`gather_series`.

    Parameters
    ----------
    series : ndarray, shape (n, n_time)
        One pixel's series per row.
    columns : ndarray, shape (n,), int64
        Destination pixels (columns of ``cube``).
    cube : ndarray, shape (n_time, n_pixels)
        Time-major output (any float dtype; values are converted).
    """
    n, n_time = series.shape
    for t0 in range(0, n_time, BLOCK):
        t1 = min(t0 + BLOCK, n_time)
        for p0 in range(0, n, BLOCK):
            p1 = min(p0 + BLOCK, n)
            for t in range(t0, t1):
                for p in range(p0, p1):
                    cube[t, columns[p]] = series[p, t]


@numba.njit(cache=True, inline="always")
def _met_removed(bl, fitted, offset, level, keep_level):
    """Eq. 4 for one value, ``bl - fitted``, plus ``offset`` then ``level`` (in that order) when ``keep_level``."""
    removed = bl - fitted
    if keep_level:
        removed = (removed + offset) + level
    return removed


@numba.njit(cache=True)
def scatter_met_removed(bl, fitted, offset, level, year_of_day, keep_level, columns, out_fitted, out_removed):
    """Eqs. 3-4 back to time-major in one walk: ``out_fitted[t, col] = fitted[p, t]`` and
    ``out_removed[t, col] = bl[p, t] - fitted[p, t]``, plus ``offset[p]`` then ``level[p, year_of_day[t]]``
    when ``keep_level`` (added in that order), for ``col = columns[p]``.

    Parameters
    ----------
    bl, fitted : ndarray, shape (n, n_time)
        Baselines (eq. 2) and fitted meteorological parts (eq. 3), one pixel's series per row.
    offset : ndarray, shape (n,)
        Added to every day of a pixel's met-removed baseline (the mean of its ``fitted``).
    level : ndarray, shape (n, n_years)
        Added on the days of each year (the kept level of :mod:`ihs_hpc.ops.met_removal`).
    year_of_day : ndarray, shape (n_time,), int64
        Column of ``level`` of each day.
    keep_level : bool
        Without it ``offset`` and ``level`` are not read.
    columns : ndarray, shape (n,), int64
        Destination pixels (columns of the outputs).
    out_fitted, out_removed : ndarray, shape (n_time, n_pixels)
        Time-major outputs (any float dtype; values are converted).
    """
    n, n_time = bl.shape
    for t0 in range(0, n_time, BLOCK):
        t1 = min(t0 + BLOCK, n_time)
        for p0 in range(0, n, BLOCK):
            p1 = min(p0 + BLOCK, n)
            for t in range(t0, t1):
                year = year_of_day[t]
                for p in range(p0, p1):
                    col = columns[p]
                    out_fitted[t, col] = fitted[p, t]
                    out_removed[t, col] = _met_removed(bl[p, t], fitted[p, t], offset[p], level[p, year], keep_level)


@numba.njit(cache=True)
def put_met_removed(bl, fitted, offset, level, year_of_day, keep_level, columns, out_fitted, out_removed):
    """:func:`scatter_met_removed` for time-major inputs (no transpose): ``fitted`` is ``(n_time, n)``, its
    column ``p`` going to column ``columns[p]`` of the outputs; ``bl`` is the time-major cube itself,
    ``bl[t, columns[p]]``. ``out_removed[t, col] = bl[t, col] - fitted[t, p]``, plus ``offset[p]`` then
    ``level[p, year_of_day[t]]`` when ``keep_level``."""
    n_time, n = fitted.shape
    for t in range(n_time):
        year = year_of_day[t]
        for p in range(n):
            col = columns[p]
            out_fitted[t, col] = fitted[t, p]
            out_removed[t, col] = _met_removed(bl[t, col], fitted[t, p], offset[p], level[p, year], keep_level)
