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


@numba.njit(cache=True)
def scatter_series3(a, b, c, columns, out_a, out_b, out_c):
    """:func:`scatter_series` of three same-shaped arrays at once (one walk over the blocks)."""
    n, n_time = a.shape
    for t0 in range(0, n_time, BLOCK):
        t1 = min(t0 + BLOCK, n_time)
        for p0 in range(0, n, BLOCK):
            p1 = min(p0 + BLOCK, n)
            for t in range(t0, t1):
                for p in range(p0, p1):
                    col = columns[p]
                    out_a[t, col] = a[p, t]
                    out_b[t, col] = b[p, t]
                    out_c[t, col] = c[p, t]
