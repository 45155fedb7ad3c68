"""Rank sums for the Mann–Whitney U test (numba kernels).

Seed 000, eq. 11: ``U = n1 n2 + n1 (n1 + 1) / 2 - R1``, with ``R1`` the rank sum of one sample
in the pooled sample (average ranks for ties).  scipy's ``mannwhitneyu`` reports the other
member of the pair, ``U1 = R1 - n1 (n1 + 1) / 2`` (the U of the first sample), and so do we; the
two are related by ``U + U1 = n1 n2``.

The samples arrive sorted (numpy's SIMD sort is several times faster than a numba sort, so the
caller sorts); one merge walk over the two sorted samples visits each group of tied values
once, giving its pooled average rank and size: O(n1 + n2).  ``2 R1`` is accumulated as an exact
int64 (average ranks are half-integers), so ``U1`` is exact for any sample size that fits in
memory.  The tie term ``sum(t^3 - t)`` over tie groups is accumulated in float64 as scipy does.
"""
from __future__ import annotations

import numba


@numba.njit(cache=True)
def _rank_sum_sorted(x_sorted, n1, y_sorted, n2, result):
    """``result[:] = U1, tie_term, n1, n2`` for the sorted samples ``x_sorted[:n1]`` and
    ``y_sorted[:n2]`` (no NaN in these prefixes)."""
    i = 0
    j = 0
    before = 0  # number of pooled values below the current tie group
    twice_rank_sum = 0  # 2 * R1, exact
    tie_term = 0.0
    while i < n1 or j < n2:
        if j >= n2 or (i < n1 and x_sorted[i] <= y_sorted[j]):
            value = x_sorted[i]
        else:
            value = y_sorted[j]
        in_x = 0
        while i < n1 and x_sorted[i] == value:
            in_x += 1
            i += 1
        in_y = 0
        while j < n2 and y_sorted[j] == value:
            in_y += 1
            j += 1
        size = in_x + in_y
        # pooled ranks before + 1 .. before + size: average before + (size + 1) / 2
        twice_rank_sum += in_x * (2 * before + size + 1)
        if size > 1:
            g = float(size)
            tie_term += g * g * g - g
        before += size
    result[0] = (twice_rank_sum - n1 * (n1 + 1)) / 2.0
    result[1] = tie_term
    result[2] = n1
    result[3] = n2


@numba.njit(parallel=True, cache=True)
def rank_sum_sorted_rows(x_sorted, n1, y_sorted, n2, out):
    """Mann–Whitney ``U1`` and tie term for every row pair of sorted samples.

    Parameters
    ----------
    x_sorted : ndarray of float64, shape (rows, m1)
        Each row sorted ascending; only its first ``n1[row]`` values are used (numpy sorts NaN
        to the end, so ``n1`` = the number of non-NaN values drops them).
    n1 : ndarray of int64, shape (rows,)
    y_sorted : ndarray of float64, shape (rows, m2)
    n2 : ndarray of int64, shape (rows,)
    out : ndarray of float64, shape (rows, 4)
        Per row: ``U1 = R1 - n1 (n1 + 1) / 2`` (U of the first sample), ``sum(t^3 - t)`` over
        the tie groups of the pooled sample, ``n1`` and ``n2``.
    """
    for row in numba.prange(x_sorted.shape[0]):
        _rank_sum_sorted(x_sorted[row], n1[row], y_sorted[row], n2[row], out[row])
