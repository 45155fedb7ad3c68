"""Per-pixel interquartile-range outlier rule (numba kernels).

Seed 000, section 2.3.1 ("anomalies ... removed using a quartile-based method"), as the design
notes state it: within one pixel's series, a value below ``Q1 - factor * IQR`` or above
``Q3 + factor * IQR`` (``IQR = Q3 - Q1``) becomes NaN.

Quartiles follow :func:`numpy.nanpercentile`'s default ``method="linear"`` on the non-NaN values
of the series: with ``n`` values sorted as ``a``, the virtual index
is ``v = (n - 1) * p``, ``i = floor(v)``, ``g = v - i`` and the quartile is numpy's ``_lerp``:
``a[i] + (a[i+1] - a[i]) * g``, or ``a[i+1] - (a[i+1] - a[i]) * (1 - g)`` when ``g >= 0.5``.
Arithmetic is float64 whatever the input dtype.  The needed order statistics come from an
in-place quickselect on a per-thread buffer (no full sort).
"""
from __future__ import annotations

import numba
import numpy as np

from .select import count_below, select_kth

#: pixels handled together when series run down the columns of a (time, pixel) array
_BLOCK = 32


@numba.njit(cache=True)
def _min_from(a, start, stop):
    m = a[start]
    for j in range(start + 1, stop):
        if a[j] < m:
            m = a[j]
    return m


@numba.njit(cache=True)
def _lerp(lower, upper, gamma):
    """numpy's ``_lerp`` (the exact float operations numpy.percentile performs)."""
    diff = upper - lower
    if gamma >= 0.5:
        return upper - diff * (1.0 - gamma)
    return lower + diff * gamma


@numba.njit(cache=True)
def _quantile_pair(buf, n, p_low, p_high):
    """Two linear-method quantiles (``p_low <= p_high`` in [0, 1]) of ``buf[:n]`` (no NaN).

    ``buf`` is reordered in place.
    """
    v1 = (n - 1) * p_low
    i1 = int(np.floor(v1))
    g1 = v1 - i1
    v2 = (n - 1) * p_high
    i2 = int(np.floor(v2))
    g2 = v2 - i2
    a1 = select_kth(buf, 0, n - 1, i1)
    b1 = _min_from(buf, i1 + 1, n) if i1 + 1 < n else a1
    if i2 > i1:
        a2 = select_kth(buf, i1 + 1, n - 1, i2)
    else:
        a2 = a1
    b2 = _min_from(buf, i2 + 1, n) if i2 + 1 < n else a2
    return _lerp(a1, b1, g1), _lerp(a2, b2, g2)


@numba.njit(cache=True)
def iqr_bounds(series, factor, buf):
    """Lower and upper IQR fences of one series (seed 000, section 2.3.1).

    Parameters
    ----------
    series : ndarray, shape (T,), float
        One pixel's series; NaN values are ignored.
    factor : float
        Fence multiplier ``k`` in ``Q1 - k * IQR`` and ``Q3 + k * IQR``.
    buf : ndarray, shape (>= T,), float64
        Scratch space.

    Returns
    -------
    (float, float, int)
        ``(lower, upper, n_valid)``; both fences are NaN when the series has no valid value.
    """
    n = 0
    for t in range(series.shape[0]):
        v = series[t]
        if not np.isnan(v):
            buf[n] = v
            n += 1
    if n == 0:
        return np.nan, np.nan, 0
    q1, q3 = _quantile_pair(buf, n, 0.25, 0.75)
    spread = q3 - q1
    return q1 - factor * spread, q3 + factor * spread, n


@numba.njit(cache=True, parallel=True)
def iqr_outliers_2d(data, series_along_rows, factor, cleaned, removed):
    """Apply the IQR rule to every series of a 2-D array (seed 000, section 2.3.1).

    Parameters
    ----------
    data : ndarray, shape (P, T) or (T, P), float32 or float64, C-contiguous
        Series along the rows (``series_along_rows=True``: series ``p`` is ``data[p, :]``) or down
        the columns (``False``: series ``p`` is ``data[:, p]``, e.g. a (time, ny*nx) cube view).
    series_along_rows : bool
        Layout flag, see ``data``.
    factor : float
        Fence multiplier.
    cleaned : ndarray, same shape and dtype as ``data``
        Output: ``data`` with the outliers replaced by NaN.
    removed : ndarray of bool, same shape as ``data``
        Output: True where a value was an outlier.
    """
    if series_along_rows:
        n_series, length = data.shape
        for p in numba.prange(n_series):
            series = np.empty(length, dtype=np.float64)
            for t in range(length):
                series[t] = data[p, t]
            buf = np.empty(length, dtype=np.float64)
            lower, upper, n = iqr_bounds(series, factor, buf)
            for t in range(length):
                v = data[p, t]
                out = (v < lower) or (v > upper)
                removed[p, t] = out
                cleaned[p, t] = np.nan if out else v
    else:
        length, n_series = data.shape
        n_blocks = (n_series + _BLOCK - 1) // _BLOCK
        for b in numba.prange(n_blocks):
            p0 = b * _BLOCK
            width = min(_BLOCK, n_series - p0)
            block = np.empty((width, length), dtype=np.float64)
            for t in range(length):
                for j in range(width):
                    block[j, t] = data[t, p0 + j]
            buf = np.empty(length, dtype=np.float64)
            lowers = np.empty(width)
            uppers = np.empty(width)
            for j in range(width):
                lowers[j], uppers[j], n = iqr_bounds(block[j], factor, buf)
            for t in range(length):
                for j in range(width):
                    v = data[t, p0 + j]
                    out = (v < lowers[j]) or (v > uppers[j])
                    removed[t, p0 + j] = out
                    cleaned[t, p0 + j] = np.nan if out else v


@numba.njit(cache=True)
def _insert_sorted(buf, n, v):
    """Insert ``v`` into the ascending ``buf[:n]``; returns ``n + 1``."""
    at = count_below(buf, n, v)
    for j in range(n, at, -1):
        buf[j] = buf[j - 1]
    buf[at] = v
    return n + 1


@numba.njit(cache=True)
def _remove_sorted(buf, n, v):
    """Remove one value equal to ``v`` (present) from the ascending ``buf[:n]``; returns ``n - 1``."""
    for j in range(count_below(buf, n, v), n - 1):
        buf[j] = buf[j + 1]
    return n - 1


@numba.njit(cache=True)
def _replace_sorted(buf, n, old, new):
    """Replace one value equal to ``old`` (present) in the ascending ``buf[:n]`` by ``new``, keeping it
    sorted: only the values between the two positions move."""
    i = count_below(buf, n, old)
    while i + 1 < n and buf[i + 1] < new:
        buf[i] = buf[i + 1]
        i += 1
    while i > 0 and buf[i - 1] > new:
        buf[i] = buf[i - 1]
        i -= 1
    buf[i] = new


@numba.njit(cache=True)
def running_median(series, half, buf, out):
    """Centred running median of one series over ``2 * half + 1`` days, NaN-aware.

    ``out[t]`` is the median of the non-NaN values of ``series[t - half : t + half + 1]`` (the
    window truncated at both ends), NaN when that window holds none — the semantics of
    ``pandas.Series.rolling(2 * half + 1, center=True, min_periods=1).median()``; for an even count
    the mean of the two middle values, as :func:`numpy.median`.

    The window's valid values are kept sorted in ``buf`` as it slides: each day the value leaving is
    found by binary search and the value entering takes its place, moving only the values between
    the two positions, instead of selecting the median of a fresh copy of the window every day. The
    medians are the same elements, so the same numbers (``tests/test_outliers.py`` checks them
    against pandas), several times faster for the 31-day window of ``prep.outlier_window``.

    Parameters
    ----------
    series : ndarray, shape (T,), float
    half : int
        Half-width of the window (days on each side).
    buf : ndarray, shape (>= 2 * half + 1,), float64
        Scratch space.
    out : ndarray, shape (T,), float64
        Output.
    """
    n_t = series.shape[0]
    n = 0  # valid values of the current window, ascending in buf[:n]
    entered = 0  # days entered so far: the window of day t is series[t - half : t + half + 1]
    for t in range(n_t):
        leaving = t - half - 1
        stop = min(t + half + 1, n_t)
        if leaving >= 0 and entered < stop and not np.isnan(series[leaving]) and not np.isnan(series[entered]):
            _replace_sorted(buf, n, series[leaving], series[entered])  # the usual day: one out, one in
            entered += 1
        elif leaving >= 0 and not np.isnan(series[leaving]):  # out first: buf never holds more than the window
            n = _remove_sorted(buf, n, series[leaving])
        while entered < stop:
            v = series[entered]
            if not np.isnan(v):
                n = _insert_sorted(buf, n, v)
            entered += 1
        if n == 0:
            out[t] = np.nan
        elif n % 2 == 1:
            out[t] = buf[n // 2]
        else:
            out[t] = 0.5 * (buf[n // 2 - 1] + buf[n // 2])


@numba.njit(cache=True)
def _jumps(resid, t):
    """How far ``resid[t]`` stands above both neighbouring valid days and below both (the larger of
    the two neighbours subtracted, resp. from the smaller): ``(up, down)``, NaN when ``resid[t]`` is
    NaN or the series has no other valid day; at either end the one neighbour stands for both."""
    r = resid[t]
    length = resid.shape[0]
    if np.isnan(r):
        return np.nan, np.nan
    prev = t - 1
    while prev >= 0 and np.isnan(resid[prev]):
        prev -= 1
    nxt = t + 1
    while nxt < length and np.isnan(resid[nxt]):
        nxt += 1
    if prev < 0 and nxt >= length:
        return np.nan, np.nan
    a = resid[prev] if prev >= 0 else resid[nxt]
    b = resid[nxt] if nxt < length else resid[prev]
    return r - max(a, b), min(a, b) - r


@numba.njit(cache=True)
def isolated_outliers(series, half, factor, window, base, resid, buf, removed):
    """The residual spike rule on one series (see :func:`residual_outliers_rows`); writes ``removed``.

    ``window`` (>= 2 * half + 1), ``base``, ``resid``, ``buf`` (>= T) are scratch space.
    """
    length = series.shape[0]
    running_median(series, half, window, base)
    for t in range(length):
        resid[t] = series[t] - base[t]
        removed[t] = False
    lower, upper, n = iqr_bounds(resid, 1.0, buf)
    if n < 3:
        return
    # iqr_bounds with factor 1 gives Q1 - IQR and Q3 + IQR: their distance is 3 IQR
    limit = factor * (upper - lower) / 3.0
    for t in range(length):
        up, down = _jumps(resid, t)
        removed[t] = (up > limit) or (down > limit)  # False where NaN


@numba.njit(cache=True, parallel=True)
def residual_outliers_rows(data, half, factor, cleaned, removed, resid_out):
    """The residual spike rule on every row of a (series, time) array.

    For each series: the residual from its centred running median over ``2 * half + 1`` days
    (:func:`running_median`) and the IQR of those residuals (linear quartiles, as
    :func:`iqr_bounds`); a value is an outlier when its residual stands out from the residuals of
    *both* neighbouring valid days by more than ``factor × IQR`` (above both, or below both). An
    isolated spike does; a day inside a pollution episode, whose neighbours are high too, and the
    seasonal swing, carried by the running median, do not — unlike the fences of the raw series
    (:func:`iqr_outliers_2d`), which cut the high season's days first.

    Parameters
    ----------
    data : ndarray, shape (P, T), float32 or float64, C-contiguous
    half : int
        Half-width of the running-median window (days).
    factor : float
        Multiplier of the residuals' IQR that a day must stand out from both neighbours by.
    cleaned : ndarray, same shape and dtype as ``data``
        Output: ``data`` with the outliers replaced by NaN.
    removed : ndarray of bool, same shape as ``data``
        Output: True where a value was an outlier.
    resid_out : ndarray, same shape as ``data`` (float32 or float64)
        Output: the residuals from the running median (what :func:`keep_shared_jumps` compares
        between neighbouring pixels).
    """
    n_series, length = data.shape
    for p in numba.prange(n_series):
        series = np.empty(length, dtype=np.float64)
        for t in range(length):
            series[t] = data[p, t]
        window = np.empty(2 * half + 1, dtype=np.float64)
        base = np.empty(length, dtype=np.float64)
        resid = np.empty(length, dtype=np.float64)
        buf = np.empty(length, dtype=np.float64)
        flags = np.empty(length, dtype=np.bool_)
        isolated_outliers(series, half, factor, window, base, resid, buf, flags)
        for t in range(length):
            resid_out[p, t] = resid[t]
            removed[p, t] = flags[t]
            cleaned[p, t] = np.nan if flags[t] else data[p, t]


@numba.njit(cache=True, parallel=True)
def keep_shared_jumps(data, resid, share, cleaned, removed):
    """Put back the flagged days that the neighbouring pixels share (a regional episode, not a spike).

    Arrays are ``(ny, nx, T)``. For every flagged pixel-day of :func:`residual_outliers_rows` with
    own jump ``J`` (how far its residual stands above both neighbouring days, or below both), the
    same-direction jumps of its (up to 8) neighbouring pixels on that day are taken from ``resid``;
    when at least two of them reach ``share × J``, the day stays: a retrieval spike is a single
    pixel's, a weather or emission episode lifts its neighbours too — at a plume's edge or a corner
    of the grid only some of them, hence two rather than a majority.

    Parameters
    ----------
    data : ndarray, shape (ny, nx, T)
        The series before removal (restored into ``cleaned`` where a day stays).
    resid : ndarray, shape (ny, nx, T)
        Residuals from the running median (``resid_out`` of :func:`residual_outliers_rows`).
    share : float
        Fraction of its own jump that a neighbour's jump must reach to count as sharing it.
    cleaned, removed : ndarray, shape (ny, nx, T)
        Updated in place.
    """
    ny, nx, length = resid.shape
    for i in numba.prange(ny):
        for j in range(nx):
            for t in range(length):
                if not removed[i, j, t]:
                    continue
                up, down = _jumps(resid[i, j], t)
                upward = up >= down
                own = up if upward else down
                n_share = 0
                for di in range(-1, 2):
                    for dj in range(-1, 2):
                        a, b = i + di, j + dj
                        if (di == 0 and dj == 0) or a < 0 or a >= ny or b < 0 or b >= nx:
                            continue
                        n_up, n_down = _jumps(resid[a, b], t)
                        v = n_up if upward else n_down
                        if v >= share * own:  # False for NaN
                            n_share += 1
                if n_share >= 2:
                    removed[i, j, t] = False
                    cleaned[i, j, t] = data[i, j, t]
