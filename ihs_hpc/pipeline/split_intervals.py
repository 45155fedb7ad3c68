"""The intervals of the sources that share their radiation area (beyond seed 000; issue 13).

A source's own part of a shared area is a non-negative split of the cluster's annual map
(:mod:`ihs_hpc.pipeline.attribution`); its interval is the spread of the split of replicate maps: the
day bootstrap's replicate annual maps (:func:`split_intervals`), or the fitted map plus a shifted copy
of the split's residual plus each placement's fill error map (:func:`split_fill_intervals`). The
offsets go into the attribution table through :func:`ihs_hpc.pipeline.intervals.add_source_intervals`.
"""
from __future__ import annotations

import numpy as np


def split_intervals(problems, decays, daily, pixels, year_days, settings, *, n_sources: int, min_unique: float,
                    batch: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap offsets of the per-source split of every shared area (see the module docstring).

    Parameters
    ----------
    problems : list of :class:`~ihs_hpc.pipeline.attribution._ClusterProblem`
        The clusters of more than one source, built on the point estimate's annual maps (which pixels
        count in each year).
    decays : list of dict
        The footprint decay of every source of each problem (as fitted for the point estimate).
    daily : ndarray, shape (time, len(pixels))
        Daily ``pm25_ihs`` of ``pixels`` (sorted flat indices: every pixel of the problems).
    year_days : list of int arrays
        The days (rows of ``daily``) of each year of the problems' maps.
    settings : dict
        ``stats.intervals`` (``block_days``, ``n_boot``, ``level``, ``seed``); the days of the
        replicates are those of :func:`~ihs_hpc.stats.bootstrap.pooled_mean_interval` (same seeds).
    n_sources : int
        Number of sources (rows of the result).

    Returns
    -------
    below, above : (n_sources, n_years) arrays
        ``quantile − median`` of the replicate own contributions at the lower and upper tail; NaN for
        source-years not split (alone, not operating, or not in a problem).
    """
    from ..ops.attribution import fit_strengths_many, own_means_many
    from ..stats.bootstrap import block_multiplicities

    below = np.full((n_sources, len(year_days)), np.nan)
    above = np.full_like(below, np.nan)
    alpha = (1.0 - float(settings["level"])) / 2.0
    n_boot, block = int(settings["n_boot"]), int(settings["block_days"])
    for y, days in enumerate(year_days):
        split_here = [(p, d) for p, d in zip(problems, decays) if len(p.years[y][0]) > 1 and p.years[y][1].size]
        if not split_here:
            continue
        mult = block_multiplicities(days.size, block, n_boot, int(settings["seed"]) + y)
        x = daily[days]
        with np.errstate(invalid="ignore", divide="ignore"):
            replicate = (mult @ np.nan_to_num(x)) / (mult @ np.isfinite(x))  # (n_boot, pixels): annual maps
        for problem, decay in split_here:
            active, pix, rows = problem.years[y]
            design = problem.design(y, decay)
            values = replicate[:, np.searchsorted(pixels, pix)].T  # (pixels of the year, n_boot)
            point = problem.flat[y, pix]
            values = np.where(np.isfinite(values), values, point[:, None])
            own = np.empty((len(active), n_boot))
            for b0 in range(0, n_boot, batch):
                part = values[:, b0:b0 + batch]
                coef = fit_strengths_many(part, design, min_unique=min_unique)
                own[:, b0:b0 + batch] = own_means_many(part, design, coef, [r for r, _ in rows])
            lo, mid, hi = np.nanpercentile(own, [100 * alpha, 50, 100 * (1 - alpha)], axis=1)
            below[active, y], above[active, y] = lo - mid, hi - mid
    return below, above


def split_fill_intervals(problems, decays, errors: np.ndarray, settings: dict, *, n_sources: int, n_years: int,
                         min_unique: float, batch: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Fill-error offsets of the per-source split of every shared area (the ``split`` of
    :func:`add_source_intervals`).

    Every replicate ``r`` of the fill ``errors`` (:func:`fill_error_replicates`) makes a replicate annual
    map of a cluster's pixels in year ``y``: the split's fitted map, plus its residual shifted circularly
    along the cluster's pixels by a seeded offset (the split's own misfit, neighbours kept together), plus
    the replicate's error map (where a replicate has no value at a pixel, its mean over the cluster). The
    map is split again with the same footprints; the offsets are the ``level`` percentiles of the
    replicate own contributions minus the split of the fitted map plus residual (the point estimate).

    Returns
    -------
    below, above : (n_sources, n_years) arrays; NaN for source-years not split.
    """
    from ..ops.attribution import fit_strengths_many, own_means_many
    from ..ops.fill_error import error_interval

    below = np.full((n_sources, n_years), np.nan)
    above = np.full_like(below, np.nan)
    level = float(settings["level"])
    for y in range(n_years):
        rng = np.random.default_rng([int(settings["seed"]), y])
        for problem, decay in zip(problems, decays):
            active, pix, rows = problem.years[y]
            if len(active) < 2 or not pix.size:
                continue
            design = problem.design(y, decay)
            point = problem.flat[y, pix]
            own_rows = [r for r, _ in rows]
            coef = fit_strengths_many(point[:, None], design, min_unique=min_unique)
            fitted = design @ coef[:, 0]
            resid = point - fitted
            own0 = own_means_many(point[:, None], design, coef, own_rows)[:, 0]
            reps = np.asarray(errors[:, pix], dtype=np.float64)
            present = np.isfinite(reps).sum(axis=1)
            reps = reps[present >= float(settings["min_fraction"]) * pix.size]
            if not len(reps):
                continue
            with np.errstate(invalid="ignore"):
                reps = np.where(np.isfinite(reps), reps, np.nanmean(reps, axis=1, keepdims=True))
            offsets = rng.integers(0, pix.size, size=len(reps))
            ring = (np.arange(pix.size)[:, None] - offsets[None, :]) % pix.size
            values = fitted[:, None] + resid[ring] + reps.T  # (pixels, replicates)
            own = np.empty((len(active), values.shape[1]))
            for b0 in range(0, values.shape[1], batch):
                part = values[:, b0:b0 + batch]
                own[:, b0:b0 + batch] = own_means_many(part, design, fit_strengths_many(part, design,
                                                                                        min_unique=min_unique),
                                                       own_rows)
            lo, hi = error_interval(np.zeros(len(active)), own - own0[:, None], level)
            below[active, y], above[active, y] = lo, hi
    return below, above
