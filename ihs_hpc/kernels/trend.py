"""Mann–Kendall score and Theil–Sen slope order statistics (numba kernels).

Seed 000, section 2.3.5 (Mann–Kendall test, slope of the trend and its 95% confidence interval),
with the semantics of ``pymannkendall.original_test`` / ``pymannkendall.sens_slope`` and of
``scipy.stats.theilslopes`` for the confidence interval (Gilbert 1987, Sen 1968).

One series is a pair ``(t, v)``: the time positions (original indices of the non-NaN values,
float64, strictly increasing) and the values.  Nothing here allocates per pair of observations
unless a fallback needs it:

* the Mann–Kendall score ``S`` and the tie-corrected ``var(S)`` come from one stable merge sort
  of the values that counts strict inversions (Knight 1966), O(m log m);
* the pairwise slopes ``(v[j] - v[i]) / (t[j] - t[i])`` are never all formed.  The number of
  slopes below a threshold ``theta`` is the number of time-inverted pairs once the series is
  sorted by ``w = v - theta * t``: a merge sort from time order, O(m log m), or an insertion
  sort from the order of a nearby threshold already counted, O(m + slopes in between).  A
  random sample of slopes and a few interpolated counts bracket the wanted order statistics in
  a window ``[theta_lo, theta_hi)`` of a few hundred slopes; those slopes are enumerated as the
  inversions of the ``theta_hi`` keys in ``theta_lo`` order (Dillencourt, Mount & Netanyahu
  1992) and the order statistics are selected among them.  Every slope returned is the float64
  value of ``(v[j] - v[i]) / (t[j] - t[i])`` itself, the operation numpy performs in
  pymannkendall and scipy, so medians and interval limits agree bit for bit.  The thresholds
  are moved away from the window by a bound on the float rounding of the keys, and the selected
  values are checked against the safe part of the window; if a check fails (or the wanted rank
  lies outside the sample, e.g. the smallest slope), all slopes are formed and selected exactly
  (O(m^2) time and memory: a fallback, not the rule).

Public entry points are :func:`trend_rows` (one series per row of a 2-D array, NaN = missing,
``prange`` over rows) and :func:`theil_sen_order_statistics` (one compressed series).
"""
from __future__ import annotations

import math

import numba
import numpy as np

from .select import count_below, select_kth

#: runs sorted by insertion before merging
_INSERTION_RUN = 16
#: at most this many pairwise slopes: form them all and select (cheaper than the window search)
_BRUTE_FORCE_MAX_PAIRS = 20_000
#: random pairwise slopes drawn to bracket the wanted order statistics
_SAMPLE_SIZE = 2048
#: interpolation steps that narrow a bracket before its slopes are enumerated
_MAX_REFINE_STEPS = 24
_EPS = 2.220446049250313e-16


# Element loops rather than slice assignment and numpy helpers: the kernels compile much faster.
@numba.njit(cache=True)
def _copy_into(source, target, n):
    """``target[:n] = source[:n]``."""
    for k in range(n):
        target[k] = source[k]


# ---------------------------------------------------------------------------------------------
# sorting with inversion counting (merge sort from scratch, insertion sort from a nearby order)
# and enumeration of the inverted pairs
# ---------------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _sort_count_inversions(keys, tags, keys_buf, tags_buf, n):
    """Stable ascending sort of ``keys[:n]`` (``tags`` follow); return the number of strict
    inversions, i.e. pairs of positions ``p < q`` with ``keys[q] < keys[p]``."""
    inversions = 0
    for start in range(0, n, _INSERTION_RUN):
        stop = min(start + _INSERTION_RUN, n)
        for i in range(start + 1, stop):
            key = keys[i]
            tag = tags[i]
            j = i - 1
            while j >= start and keys[j] > key:
                keys[j + 1] = keys[j]
                tags[j + 1] = tags[j]
                j -= 1
            inversions += i - 1 - j
            keys[j + 1] = key
            tags[j + 1] = tag
    src_k, src_t, dst_k, dst_t = keys, tags, keys_buf, tags_buf
    in_buffer = False
    width = _INSERTION_RUN
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            p = lo
            q = mid
            o = lo
            while p < mid and q < hi:
                if src_k[q] < src_k[p]:
                    dst_k[o] = src_k[q]
                    dst_t[o] = src_t[q]
                    inversions += mid - p
                    q += 1
                else:
                    dst_k[o] = src_k[p]
                    dst_t[o] = src_t[p]
                    p += 1
                o += 1
            while p < mid:
                dst_k[o] = src_k[p]
                dst_t[o] = src_t[p]
                p += 1
                o += 1
            while q < hi:
                dst_k[o] = src_k[q]
                dst_t[o] = src_t[q]
                q += 1
                o += 1
        src_k, dst_k = dst_k, src_k
        src_t, dst_t = dst_t, src_t
        in_buffer = not in_buffer
        width *= 2
    if in_buffer:
        _copy_into(keys_buf, keys, n)
        _copy_into(tags_buf, tags, n)
    return inversions


@numba.njit(cache=True)
def _insertion_count_flips(keys, tags, n):
    """Insertion sort of ``keys[:n]`` (``tags`` follow, stable); return the change in the
    number of tag-inverted pairs (pairs ordered larger tag first).  O(n + key inversions)."""
    change = 0
    for i in range(1, n):
        key = keys[i]
        tag = tags[i]
        j = i - 1
        while j >= 0 and keys[j] > key:
            passed = tags[j]
            change += 1 if passed < tag else -1
            keys[j + 1] = keys[j]
            tags[j + 1] = passed
            j -= 1
        keys[j + 1] = key
        tags[j + 1] = tag
    return change


@numba.njit(cache=True)
def _insertion_enumerate_pairs(keys, tags, n, t, v, out):
    """Insertion sort of ``keys[:n]`` (``tags`` = time indices follow).  Every key inversion
    whose earlier element has the earlier time index ``a < b`` appends the slope
    ``(v[b] - v[a]) / (t[b] - t[a])`` to ``out``.  Return ``(count, out)``; O(n + inversions)."""
    count = 0
    for i in range(1, n):
        key = keys[i]
        b = tags[i]
        tb = t[b]
        vb = v[b]
        j = i - 1
        while j >= 0 and keys[j] > key:
            a = tags[j]
            if a < b:
                if count == out.shape[0]:
                    grown = np.empty(max(2 * count, 1024), dtype=np.float64)
                    _copy_into(out, grown, count)
                    out = grown
                out[count] = (vb - v[a]) / (tb - t[a])
                count += 1
            keys[j + 1] = keys[j]
            tags[j + 1] = a
            j -= 1
        keys[j + 1] = key
        tags[j + 1] = b
    return count, out


# ---------------------------------------------------------------------------------------------
# selection
# ---------------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _select_sorted_ranks(a, n, ranks, offset, out):
    """``out[q] = `` the ``(ranks[q] - offset)``-th smallest of ``a[:n]``; ranks ascending."""
    lo = offset - offset  # 0, as a plain int64 (a literal would compile a second _select)
    for q in range(ranks.shape[0]):
        k = ranks[q] - offset
        out[q] = select_kth(a, lo, n - 1, k)
        lo = k


@numba.njit(cache=True)
def _all_slopes_order_statistics(t, v, ranks, out):
    """Exact fallback: form all ``m (m - 1) / 2`` slopes and select ``ranks`` among them."""
    m = v.shape[0]
    n_pairs = m * (m - 1) // 2
    slopes = np.empty(n_pairs, dtype=np.float64)
    k = 0
    for i in range(m - 1):
        vi = v[i]
        ti = t[i]
        for j in range(i + 1, m):
            slopes[k] = (v[j] - vi) / (t[j] - ti)
            k += 1
    offset = ranks[0] - ranks[0]  # 0, typed like the window offsets (no literal specialisation)
    _select_sorted_ranks(slopes, n_pairs, ranks, offset, out)


# ---------------------------------------------------------------------------------------------
# window search for order statistics of the pairwise slopes
# ---------------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _rounding_margin(theta, v_max, t_max):
    """Bound on how far from ``theta`` a slope can be and still be misclassified by the float
    comparison of ``v - theta * t`` keys (with a safety factor of about 2)."""
    return 8.0 * _EPS * (v_max + abs(theta) * (t_max + 1.0)) + 1e-300


@numba.njit(cache=True)
def _xorshift(state):
    state ^= state << np.uint64(13)
    state ^= state >> np.uint64(7)
    state ^= state << np.uint64(17)
    return state


@numba.njit(cache=True)
def _sample_slopes(t, v, size):
    """Sorted slopes of ``size`` random pairs (fixed-seed generator: results are exact anyway,
    only the work done depends on the sample)."""
    m = v.shape[0]
    sample = np.empty(size, dtype=np.float64)
    state = np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(m)
    for k in range(size):
        state = _xorshift(state)
        i = np.int64(state % np.uint64(m))
        state = _xorshift(state)
        j = np.int64(state % np.uint64(m - 1))
        if j >= i:
            j += 1
        if j < i:
            i, j = j, i
        sample[k] = (v[j] - v[i]) / (t[j] - t[i])
    tags = np.empty(size, dtype=np.int64)
    _sort_count_inversions(sample, tags, np.empty(size, dtype=np.float64),
                           np.empty(size, dtype=np.int64), size)
    return sample


@numba.njit(cache=True)
def _smallest_nonzero_magnitude(v):
    smallest = np.inf
    for k in range(v.shape[0]):
        magnitude = abs(v[k])
        if 0.0 < magnitude < smallest:
            smallest = magnitude
    return smallest


#: thresholds already counted for one series are remembered (ring buffer) with their counts and
#: the time indices sorted by their keys: a new count starts from the nearest one
_MAX_KNOWN = 48


@numba.njit(cache=True)
def _count_slopes_below(t, v, theta, sample, known, work):
    """Number of pairwise slopes classified ``< theta`` by the keys ``w = v - theta * t``
    (exact up to slopes within :func:`_rounding_margin` of ``theta``).

    The count is the number of time-inverted pairs once the time indices are sorted by ``w``.
    It starts from the remembered threshold nearest to ``theta`` (distance estimated from the
    sample) by an insertion sort of that order, O(m + slopes in between), or, when none is
    near, by a merge sort from time order, O(m log m).  The new threshold, its count and its
    order are remembered; ``work[2]`` (the tags) is left holding the order.
    """
    known_theta, known_count, known_order, n_known = known
    keys, keys_buf, tags, tags_buf = work
    m = v.shape[0]
    n_pairs = m * (m - 1) // 2
    s = sample.shape[0]
    position = count_below(sample, sample.shape[0], theta)
    best = -1
    best_gap = s + 1
    for slot in range(min(n_known[0], _MAX_KNOWN)):
        gap = abs(count_below(sample, sample.shape[0], known_theta[slot]) - position)
        if gap < best_gap:
            best, best_gap = slot, gap
    log2_m = 1
    while (1 << log2_m) < m:
        log2_m += 1
    if best >= 0 and (best_gap + 1.0) * n_pairs / s < m * log2_m:
        base = known_order[best]
        for p in range(m):
            k = base[p]
            keys[p] = v[k] - theta * t[k]
            tags[p] = k
        count = known_count[best] + _insertion_count_flips(keys, tags, m)
    else:
        for k in range(m):
            keys[k] = v[k] - theta * t[k]
            tags[k] = k
        count = _sort_count_inversions(keys, tags, keys_buf, tags_buf, m)
    slot = n_known[0] % _MAX_KNOWN
    known_theta[slot] = theta
    known_count[slot] = count
    _copy_into(tags, known_order[slot], m)
    n_known[0] += 1
    return count


@numba.njit(cache=True)
def _window_order_statistics(t, v, ranks, out, sample, v_max, t_max, known, work, tags_lo):
    """Order statistics ``ranks`` (ascending, close together) through one enumerated window.
    Return False when the exact fallback is needed."""
    known_theta, known_count, known_order, n_known = known
    keys = work[0]
    tags = work[2]
    m = v.shape[0]
    n_pairs = m * (m - 1) // 2
    r_first = ranks[0]
    r_last = ranks[ranks.shape[0] - 1]
    s = sample.shape[0]

    # 1. bracket: the tightest thresholds already counted (for another rank group), else from
    #    the sample, about +-3 (then +-6) binomial standard deviations around the ranks.  A
    #    new threshold is moved away from the window by twice its rounding margin, so that a
    #    slope equal to the sampled (or interpolated) value lies in the verified part.
    lo = -np.inf
    hi = np.inf
    c_lo = r_first - r_first - 1  # -1 = not found yet (typed int64, not a literal)
    c_hi = c_lo
    for spread in (0.0, 3.0, 6.0):
        if spread > 0.0:
            if c_lo < 0:
                p_lo = r_first / n_pairs
                i_lo = int(math.floor(
                    p_lo * s - spread * math.sqrt(s * p_lo * (1.0 - p_lo)) - 2.0))
                if i_lo < 0:
                    return False
                theta = sample[i_lo] - 2.0 * _rounding_margin(sample[i_lo], v_max, t_max)
                _count_slopes_below(t, v, theta, sample, known, work)
            if c_hi < 0:
                p_hi = (r_last + 1.0) / n_pairs
                i_hi = int(math.ceil(
                    p_hi * s + spread * math.sqrt(s * p_hi * (1.0 - p_hi)) + 2.0))
                if i_hi > s - 1:
                    return False
                theta = sample[i_hi] + 2.0 * _rounding_margin(sample[i_hi], v_max, t_max)
                _count_slopes_below(t, v, theta, sample, known, work)
        for slot in range(min(n_known[0], _MAX_KNOWN)):
            c = known_count[slot]
            theta = known_theta[slot]
            if c <= r_first and (c_lo < 0 or theta > lo):
                lo, c_lo = theta, c
                _copy_into(known_order[slot], tags_lo, m)
            elif c > r_last and (c_hi < 0 or theta < hi):
                hi, c_hi = theta, c
        if c_lo >= 0 and c_hi >= 0:
            break
    if c_lo < 0 or c_hi < 0:
        return False

    # 2. narrow by interpolating the count between the bracket ends (each count is an
    #    insertion sort from the nearer end: cheap once the window is small).  Stop when the
    #    window holds few slopes, stops shrinking (many equal slopes, e.g. 0 for integer
    #    data, cannot be split), or gets as narrow as the rounding margins.
    slack = max(m // 8, 16)
    previous_span = n_pairs + 1
    for _ in range(_MAX_REFINE_STEPS):
        span = c_hi - c_lo
        resolution = _rounding_margin(lo, v_max, t_max) + _rounding_margin(hi, v_max, t_max)
        if (span <= (r_last - r_first) + 4 * slack or span >= previous_span
                or hi - lo <= 64.0 * resolution):
            break
        previous_span = span
        offset = max(span // 16, slack)
        target = r_first - offset
        if target > c_lo:
            guess = lo + (hi - lo) * ((target - c_lo) / span)
            guess -= 2.0 * _rounding_margin(guess, v_max, t_max)
            if lo < guess < hi:
                c = _count_slopes_below(t, v, guess, sample, known, work)
                if c <= r_first:
                    lo, c_lo = guess, c
                    _copy_into(tags, tags_lo, m)
                elif c > r_last:
                    hi, c_hi = guess, c
        target = r_last + offset
        if target < c_hi:
            guess = lo + (hi - lo) * ((target - c_lo) / (c_hi - c_lo))
            guess += 2.0 * _rounding_margin(guess, v_max, t_max)
            if lo < guess < hi:
                c = _count_slopes_below(t, v, guess, sample, known, work)
                if c > r_last:
                    hi, c_hi = guess, c
                elif c <= r_first:
                    lo, c_lo = guess, c
                    _copy_into(tags, tags_lo, m)

    # 3. enumerate the slopes in the window: the inversions of the hi keys in lo order (the
    #    time-inverted pairs of lo order, c_lo of them, are the slopes below lo); select the
    #    ranks among them and check that the values lie in the safe part of the window
    for p in range(m):
        k = tags_lo[p]
        keys[p] = v[k] - hi * t[k]
        tags[p] = k
    window = np.empty(max(c_hi - c_lo + 64, 1024), dtype=np.float64)
    count, window = _insertion_enumerate_pairs(keys, tags, m, t, v, window)
    if r_last - c_lo >= count:
        return False
    _select_sorted_ranks(window, count, ranks, c_lo, out)
    safe_lo = lo + _rounding_margin(lo, v_max, t_max)
    safe_hi = hi - _rounding_margin(hi, v_max, t_max)
    for q in range(ranks.shape[0]):
        if not (safe_lo <= out[q] <= safe_hi):
            return False
    return True


@numba.njit(cache=True)
def theil_sen_order_statistics(t, v, ranks, out):
    """Order statistics of the pairwise slopes of one series.

    Parameters
    ----------
    t : ndarray of float64, shape (m,)
        Time positions, strictly increasing (integers stored as float).
    v : ndarray of float64, shape (m,)
        Finite values.
    ranks : ndarray of int64
        0-based ranks in ``[0, m (m - 1) / 2)``, ascending.
    out : ndarray of float64, same shape as ``ranks``
        Receives the ``ranks[q]``-th smallest of the slopes ``(v[j] - v[i]) / (t[j] - t[i])``,
        ``i < j`` (each the exact float64 value of that expression).
    """
    m = v.shape[0]
    n_pairs = m * (m - 1) // 2
    if n_pairs <= _BRUTE_FORCE_MAX_PAIRS:
        _all_slopes_order_statistics(t, v, ranks, out)
        return
    v_max = 0.0
    for k in range(m):
        if abs(v[k]) > v_max:
            v_max = abs(v[k])
    t_max = max(abs(t[0]), abs(t[m - 1]))
    sample = _sample_slopes(t, v, min(_SAMPLE_SIZE, n_pairs))
    work = (
        np.empty(m, dtype=np.float64),
        np.empty(m, dtype=np.float64),
        np.empty(m, dtype=np.int64),
        np.empty(m, dtype=np.int64),
    )
    known = (
        np.empty(_MAX_KNOWN, dtype=np.float64),
        np.empty(_MAX_KNOWN, dtype=np.int64),
        np.empty((_MAX_KNOWN, m), dtype=np.int64),
        np.zeros(1, dtype=np.int64),
    )
    tags_lo = np.empty(m, dtype=np.int64)
    group_span = 2 * m
    n_ranks = ranks.shape[0]
    done = np.zeros(n_ranks, dtype=np.bool_)
    # slopes of exactly 0 (pairs of equal values; many for integer-valued data, and the
    # median when there is no trend) are counted exactly: at theta = 0 the keys are the values
    # themselves, so the count of slopes < 0 is exact, and the sorted keys give the ties.
    # (Unless values are so small that a difference could underflow to a zero slope.)
    below_zero = _count_slopes_below(t, v, 0.0, sample, known, work)
    if _smallest_nonzero_magnitude(v) > 1e-280:
        sorted_values = work[0]
        zero_pairs = 0
        k = 0
        while k < m:
            j = k + 1
            while j < m and sorted_values[j] == sorted_values[k]:
                j += 1
            zero_pairs += (j - k) * (j - k - 1) // 2
            k = j
        for q in range(n_ranks):
            if below_zero <= ranks[q] < below_zero + zero_pairs:
                out[q] = 0.0
                done[q] = True
    # the group nearest the median first: its bracket usually brackets the other ranks too
    for _ in range(n_ranks):
        chosen = -1
        for q in range(n_ranks):
            if not done[q] and (chosen < 0 or abs(2 * ranks[q] - n_pairs)
                                < abs(2 * ranks[chosen] - n_pairs)):
                chosen = q
        if chosen < 0:
            break
        first = chosen
        while first > 0 and not done[first - 1] and ranks[chosen] - ranks[first - 1] <= group_span:
            first -= 1
        last = chosen
        while (last + 1 < n_ranks and not done[last + 1]
               and ranks[last + 1] - ranks[first] <= group_span):
            last += 1
        ok = _window_order_statistics(
            t, v, ranks[first:last + 1], out[first:last + 1], sample, v_max, t_max, known,
            work, tags_lo,
        )
        if not ok:
            _all_slopes_order_statistics(t, v, ranks, out)
            return
        for q in range(first, last + 1):
            done[q] = True


# ---------------------------------------------------------------------------------------------
# one series: Mann–Kendall score, variance, Sen's slope, intercept, confidence ranks
# ---------------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _compress_series(row, t, v):
    """Copy the non-NaN values of ``row`` to ``v`` and their indices to ``t``; return count."""
    m = 0
    for k in range(row.shape[0]):
        value = row[k]
        if not math.isnan(value):
            t[m] = k
            v[m] = value
            m += 1
    return m


@numba.njit(cache=True)
def _mk_score_and_sorted(v, sorted_v):
    """Mann–Kendall ``S`` and tie-corrected ``var(S)`` (seed 000 section 2.3.5; Gilbert 1987
    eqs. 16.3-16.4): ``var(S) = [m(m-1)(2m+5) - sum t_p (t_p - 1)(2 t_p + 5)] / 18``.
    ``sorted_v`` receives ``v`` sorted ascending."""
    m = v.shape[0]
    tags = np.empty(m, dtype=np.int64)
    tags_buf = np.empty(m, dtype=np.int64)
    keys_buf = np.empty(m, dtype=np.float64)
    for k in range(m):
        sorted_v[k] = v[k]
        tags[k] = k
    decreasing_pairs = _sort_count_inversions(sorted_v, tags, keys_buf, tags_buf, m)
    tied_pairs = 0
    tie_term = 0
    k = 0
    while k < m:
        j = k + 1
        while j < m and sorted_v[j] == sorted_v[k]:
            j += 1
        g = j - k
        if g > 1:
            tied_pairs += g * (g - 1) // 2
            tie_term += g * (g - 1) * (2 * g + 5)
        k = j
    n_pairs = m * (m - 1) // 2
    s = n_pairs - tied_pairs - 2 * decreasing_pairs
    var_s = (m * (m - 1) * (2 * m + 5) - tie_term) / 18.0
    return float(s), var_s


@numba.njit(cache=True)
def _median_of_sorted(a, m):
    if m % 2 == 1:
        return a[m // 2]
    return (a[m // 2 - 1] + a[m // 2]) / 2.0


@numba.njit(cache=True)
def _round_half_even(x):
    f = math.floor(x)
    d = x - f
    if d > 0.5:
        return f + 1.0
    if d < 0.5:
        return f
    return f + 1.0 if f % 2.0 != 0.0 else f


@numba.njit(cache=True)
def _sen_slope_series(t, v, sorted_v, var_s, z_crit, result):
    """Sen's slope (median pairwise slope), Conover intercept and Gilbert's interval.

    ``result[:4]`` receives ``slope, intercept, slope_low, slope_high``.  Intercept as
    pymannkendall: ``median(v) - median(t) * slope``.  Interval (only if ``z_crit > 0``, else
    NaN): with ``N`` slopes and ``C = z_crit * sqrt(var_s)``, the 1-based ranks
    ``round((N - C) / 2)`` and ``round((N + C) / 2) + 1`` (``numpy.round``: half to even),
    clipped to ``[1, N]``, exactly as ``scipy.stats.theilslopes``.
    """
    m = v.shape[0]
    n_pairs = m * (m - 1) // 2
    mid_low = (n_pairs - 1) // 2
    mid_high = n_pairs // 2
    wanted = np.empty(4, dtype=np.int64)  # median ranks, then interval ranks if any
    wanted[0] = mid_low
    wanted[1] = mid_high
    n_wanted = 2
    if z_crit > 0.0:
        c = z_crit * math.sqrt(var_s)
        wanted[2] = max(int(_round_half_even((n_pairs - c) / 2.0)) - 1, 0)
        wanted[3] = min(int(_round_half_even((n_pairs + c) / 2.0)), n_pairs - 1)
        n_wanted = 4
    # distinct ranks, ascending (at most 4: insertion)
    ranks = np.empty(n_wanted, dtype=np.int64)
    n_ranks = 0
    for q in range(n_wanted):
        rank = wanted[q]
        duplicate = False
        for k in range(n_ranks):
            if ranks[k] == rank:
                duplicate = True
        if duplicate:
            continue
        k = n_ranks
        while k > 0 and ranks[k - 1] > rank:
            ranks[k] = ranks[k - 1]
            k -= 1
        ranks[k] = rank
        n_ranks += 1
    values = np.empty(n_ranks, dtype=np.float64)
    theil_sen_order_statistics(t, v, ranks[:n_ranks], values)
    found = np.empty(4, dtype=np.float64)
    for q in range(n_wanted):
        for k in range(n_ranks):
            if ranks[k] == wanted[q]:
                found[q] = values[k]
    slope = found[0] if n_pairs % 2 == 1 else (found[0] + found[1]) / 2.0
    result[0] = slope
    result[1] = _median_of_sorted(sorted_v, m) - _median_of_sorted(t, m) * slope
    result[2] = found[2] if n_wanted == 4 else np.nan
    result[3] = found[3] if n_wanted == 4 else np.nan


@numba.njit(cache=True)
def _trend_row(row, z_crit, result):
    """One series (NaN = missing): ``result[:] = S, var(S), slope, intercept, slope_low,
    slope_high, count`` (NaN except the count when fewer than two values are valid; the
    interval only if ``z_crit > 0``)."""
    n = row.shape[0]
    t = np.empty(n, dtype=np.float64)
    v = np.empty(n, dtype=np.float64)
    m = _compress_series(row, t, v)
    for q in range(6):
        result[q] = np.nan
    result[6] = m
    if m < 2:
        return
    sorted_v = np.empty(m, dtype=np.float64)
    s, var_s = _mk_score_and_sorted(v[:m], sorted_v)
    result[0] = s
    result[1] = var_s
    line = np.empty(4, dtype=np.float64)
    _sen_slope_series(t[:m], v[:m], sorted_v, var_s, z_crit, line)
    for q in range(4):
        result[2 + q] = line[q]


#: columns of the ``out`` array of :func:`trend_rows`
TREND_COLUMNS = ("s", "var_s", "slope", "intercept", "slope_low", "slope_high", "count")


@numba.njit(parallel=True, cache=True)
def trend_rows(x, z_crit, out):
    """Mann–Kendall score and variance, Sen's slope, intercept and interval for every row.

    Parameters
    ----------
    x : ndarray of float64, shape (rows, n)
        One series per row, NaN = missing.
    z_crit : float
        ``z_{1 - alpha / 2}`` for the slope's confidence interval; 0 skips the interval
        (``slope_low`` and ``slope_high`` NaN), which saves about two thirds of the work.
    out : ndarray of float64, shape (rows, 7)
        Per row, the :data:`TREND_COLUMNS`: ``S``, tie-corrected ``var(S)``, Sen's slope,
        intercept, lower and upper interval limits (NaN when fewer than two values are valid)
        and the number of non-NaN values.
    """
    for row in numba.prange(x.shape[0]):
        _trend_row(x[row], z_crit, out[row])
