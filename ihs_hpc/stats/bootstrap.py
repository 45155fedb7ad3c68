"""Circular block bootstrap over days of pooled group means (sampling intervals of annual figures).

A pooled mean of a group over a period is ``Σ_t s(t) / Σ_t n(t)`` with ``s`` the daily sum and ``n``
the daily count of valid pixel-days (:mod:`ihs_hpc.stats.aggregate`). Resampling whole blocks of
consecutive days (circularly, Politis & Romano 1992) keeps the day-to-day correlation of the series
(weather spells, shutdown spells); every group is resampled with the same days, so figures that
share days stay correlated. The percentile interval of the resampled means is returned.

This measures how much an annual figure depends on *which* days the year happened to have; it does
not model the systematic part of the estimation error (the fill of IHS areas from the background).
"""
from __future__ import annotations

import numpy as np


def block_indices(n_days: int, block: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_days) day indices of circular block resamples: ⌈n_days / block⌉ blocks of ``block``
    consecutive days (wrapping at the end) starting at uniform random days, cut to ``n_days``."""
    if n_days < 1 or block < 1 or n_boot < 1:
        raise ValueError(f"n_days, block and n_boot must be >= 1, got {n_days}, {block}, {n_boot}")
    block = min(block, n_days)
    n_blocks = -(-n_days // block)
    starts = rng.integers(0, n_days, size=(n_boot, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]) % n_days
    return idx.reshape(n_boot, -1)[:, :n_days]


def block_multiplicities(n_days: int, block: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_days) how often each day occurs in each circular block resample of
    :func:`block_indices` drawn with ``numpy.random.default_rng(seed)``: a replicate's mean of any daily
    series ``x`` is ``(mult @ x) / n_days``."""
    idx = block_indices(n_days, int(block), int(n_boot), np.random.default_rng(seed))
    mult = np.zeros((idx.shape[0], n_days))
    np.add.at(mult, (np.repeat(np.arange(idx.shape[0]), n_days), idx.ravel()), 1.0)
    return mult


def pooled_mean_interval(sums: np.ndarray, counts: np.ndarray, *, block: int = 10, n_boot: int = 1000,
                         level: float = 0.9, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of the pooled means ``Σ sums / Σ counts`` of every group.

    Parameters
    ----------
    sums, counts : (groups, days) arrays
        Daily sums and counts of each group over one period (e.g. a year).
    block : int
        Block length (days).
    n_boot : int
        Number of resamples.
    level : float
        Nominal coverage of the interval (0.9: the 5th and 95th percentiles).
    seed : int
        Seed of the resampling.

    Returns
    -------
    lower, upper : (groups,) arrays (NaN for a group with no valid day).
    """
    sums = np.atleast_2d(np.asarray(sums, dtype=np.float64))
    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    if sums.shape != counts.shape:
        raise ValueError(f"sums {sums.shape} and counts {counts.shape} differ in shape")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    n_groups, n_days = sums.shape
    # resampled totals as products with day multiplicities: (n_boot, days) @ (days, groups)
    mult = block_multiplicities(n_days, block, n_boot, seed)
    s = np.nan_to_num(sums).T
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (mult @ s) / (mult @ counts.T)
    alpha = (1.0 - level) / 2.0
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lower, upper = np.nanpercentile(means, [100 * alpha, 100 * (1 - alpha)], axis=0)
    empty = counts.sum(axis=1) == 0
    lower[empty] = np.nan
    upper[empty] = np.nan
    return lower, upper
