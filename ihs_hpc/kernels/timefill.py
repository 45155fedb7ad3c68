"""Gap filling along time, one pixel's daily series at a time (numba kernels).

Used where spatial kriging cannot fill: days on which every pixel is missing, and meteorology, which
is never kriged. For each run of missing days ``[a, b)``:

* runs of at most ``max_linear`` days, or with no climatology: linear interpolation between the
  valid days ``a - 1`` and ``b`` (the nearest valid value at either end of the record);
* longer runs: the series' own climatology — the mean of the valid values ``period`` days apart
  (``t ± k·period``, ``k ≥ 1``) — plus the anomaly at the edges of the run, interpolated linearly
  across it, so a missing year of precipitation gets a seasonal cycle instead of a straight line.

A series without any valid value is left as it is (all NaN).
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _climatology(x, t, period):
    total = 0.0
    count = 0
    k = t - period
    while k >= 0:
        if not np.isnan(x[k]):
            total += x[k]
            count += 1
        k -= period
    k = t + period
    while k < x.size:
        if not np.isnan(x[k]):
            total += x[k]
            count += 1
        k += period
    if count == 0:
        return np.nan
    return total / count


@numba.njit(cache=True)
def fill_series(x, out, period, max_linear):
    """Write ``x`` with its NaN runs filled (module docstring) into ``out``; return the number filled."""
    n = x.size
    for t in range(n):
        out[t] = x[t]
    first = -1
    for t in range(n):
        if not np.isnan(x[t]):
            first = t
            break
    if first < 0:
        return 0
    filled = 0
    t = 0
    while t < n:
        if not np.isnan(x[t]):
            t += 1
            continue
        a = t
        while t < n and np.isnan(x[t]):
            t += 1
        b = t  # the run is [a, b); a - 1 and b are valid where they exist
        left = x[a - 1] if a > 0 else np.nan
        right = x[b] if b < n else np.nan
        use_clim = (b - a) > max_linear and period > 0
        if use_clim:
            cl = _climatology(x, a - 1, period) if a > 0 else np.nan
            cr = _climatology(x, b, period) if b < n else np.nan
            anom_l = left - cl if a > 0 else np.nan
            anom_r = right - cr if b < n else np.nan
            if np.isnan(anom_l):
                anom_l = anom_r
            if np.isnan(anom_r):
                anom_r = anom_l
            if np.isnan(anom_l):
                anom_l = 0.0
                anom_r = 0.0
        for i in range(a, b):
            if np.isnan(left):
                lin = right
            elif np.isnan(right):
                lin = left
            else:
                w = (i - a + 1) / (b - a + 1)
                lin = left + (right - left) * w
            value = lin
            if use_clim:
                c = _climatology(x, i, period)
                if not np.isnan(c):
                    w = (i - a + 1) / (b - a + 1)
                    value = c + anom_l + (anom_r - anom_l) * w
            out[i] = value
            filled += 1
    return filled


@numba.njit(cache=True, parallel=True)
def fill_columns(data, out, counts, period, max_linear):
    """:func:`fill_series` for every column of a ``(time, pixels)`` array, in parallel over pixels."""
    n_time, n_pix = data.shape
    for j in numba.prange(n_pix):
        x = np.empty(n_time)
        y = np.empty(n_time)
        for t in range(n_time):
            x[t] = data[t, j]
        counts[j] = fill_series(x, y, period, max_linear)
        for t in range(n_time):
            out[t, j] = y[t]
