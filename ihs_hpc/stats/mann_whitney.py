"""Mann–Whitney U test (seed 000, section 2.3.5, eq. 11), batched over leading axes.

Public numpy API over :mod:`ihs_hpc.kernels.rank_stats`; semantics of
``scipy.stats.mannwhitneyu(x, y, use_continuity, alternative, method="asymptotic")``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import special

from ihs_hpc.kernels.rank_stats import rank_sum_sorted_rows
from ihs_hpc.stats._arrays import (
    as_float64,
    check_choice,
    numba_threads,
    scalar_or_array,
    series_last,
)

__all__ = ["MannWhitneyUResult", "mann_whitney_u"]

_ALTERNATIVES = {"two-sided", "less", "greater"}
#: below this many values in all, the merge walks run on one thread
_PARALLEL_MIN_VALUES = 1_000_000


class MannWhitneyUResult(NamedTuple):
    """Result of :func:`mann_whitney_u` (unpacks like scipy's ``MannwhitneyuResult``)."""

    #: U of the first sample, ``R1 - n1 (n1 + 1) / 2``
    statistic: float | np.ndarray
    #: p-value of the normal approximation for the chosen alternative
    pvalue: float | np.ndarray


def mann_whitney_u(x, y, alternative="two-sided", use_continuity=True, axis=-1):
    """Mann–Whitney U rank test of two independent samples (seed 000, eq. 11).

    Same results as ``scipy.stats.mannwhitneyu(x, y, use_continuity=use_continuity,
    alternative=alternative, method="asymptotic")``: the statistic is the U of the FIRST
    sample, ``U1 = R1 - n1 (n1 + 1) / 2`` (eq. 11 gives ``n1 n2 - U1``), with average ranks for
    ties; the p-value comes from the normal approximation with the tie-corrected variance
    ``n1 n2 / 12 * ((n + 1) - sum(t^3 - t) / (n (n - 1)))`` and, if ``use_continuity``, a
    continuity correction of 1/2.  For ``"two-sided"`` it is twice the upper tail of
    ``max(U1, U2)``, clipped to 1.

    Cost is O(n log n): numpy sorts both samples, then one merge walk (numba) visits each
    group of tied values once; samples of millions of values are fine.

    Parameters
    ----------
    x, y : array_like, shape (..., n1) and (..., n2)
        The samples, along ``axis``; the other (leading) axes are batch axes and broadcast
        against each other.  NaN values are dropped, like scipy's ``nan_policy="omit"``;
        +-inf are ranked like any other value (as scipy does).
    alternative : {"two-sided", "less", "greater"}, default "two-sided"
        ``"less"``: the distribution underlying ``x`` is stochastically less than that of ``y``.
    use_continuity : bool, default True
    axis : int, default -1
        Axis of ``x`` and ``y`` holding the samples.

    Returns
    -------
    MannWhitneyUResult
        ``statistic`` and ``pvalue``: floats for 1-D samples, arrays of the broadcast batch
        shape otherwise.  NaN where a sample has no non-NaN value.

    Raises
    ------
    ValueError
        If ``alternative`` is unknown, ``use_continuity`` is not a bool, ``axis`` is invalid, a
        sample is empty along ``axis`` or the batch shapes do not broadcast.
    TypeError
        If a sample is not real numeric.
    """
    alternative = check_choice(alternative, "alternative", _ALTERNATIVES)
    if not isinstance(use_continuity, (bool, np.bool_)):
        raise ValueError(f"use_continuity must be True or False, got {use_continuity!r}")
    x = series_last(as_float64(x, "x"), "x", axis)
    y = series_last(as_float64(y, "y"), "y", axis)
    try:
        batch_shape = np.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    except ValueError:
        raise ValueError(
            f"the batch (leading) shapes of x {x.shape[:-1]} and y {y.shape[:-1]} do not "
            "broadcast"
        ) from None
    x = np.broadcast_to(x, batch_shape + x.shape[-1:])
    y = np.broadcast_to(y, batch_shape + y.shape[-1:])
    # numpy sorts each row (NaN last); the kernel walks the non-NaN prefixes
    x_sorted = np.ascontiguousarray(np.sort(x.reshape(-1, x.shape[-1]), axis=-1))
    y_sorted = np.ascontiguousarray(np.sort(y.reshape(-1, y.shape[-1]), axis=-1))
    x_count = np.count_nonzero(~np.isnan(x_sorted), axis=-1).astype(np.int64)
    y_count = np.count_nonzero(~np.isnan(y_sorted), axis=-1).astype(np.int64)
    sums = np.empty((x_sorted.shape[0], 4))
    with numba_threads(x_sorted.shape[0] == 1 or x.size + y.size < _PARALLEL_MIN_VALUES):
        rank_sum_sorted_rows(x_sorted, x_count, y_sorted, y_count, sums)
    u1, tie_term, n1, n2 = sums.T
    u2 = n1 * n2 - u1
    if alternative == "greater":
        u, factor = u1, 1.0
    elif alternative == "less":
        u, factor = u2, 1.0
    else:
        u, factor = np.maximum(u1, u2), 2.0
    n = n1 + n2
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = np.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
        numerator = u - n1 * n2 / 2
        if use_continuity:
            numerator = numerator - 0.5
        z = numerator / sd
    pvalue = np.clip(special.ndtr(-z) * factor, 0.0, 1.0)
    empty = (n1 == 0) | (n2 == 0)
    statistic = np.where(empty, np.nan, u1)
    pvalue = np.where(empty, np.nan, pvalue)
    return MannWhitneyUResult(
        scalar_or_array(statistic, batch_shape), scalar_or_array(pvalue, batch_shape)
    )
