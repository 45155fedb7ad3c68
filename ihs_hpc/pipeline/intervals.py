"""Sampling intervals of the annual per-city and per-source figures (stats stage, beyond seed 000).

Each year's pooled IHS-related PM2.5 of a city's IHS areas and of each single IHS area is
resampled by a circular block bootstrap over the year's days (:mod:`ihs_hpc.stats.bootstrap`) from
the stats stage's per-group daily sums (``series.zarr``). A source alone in its area that year gets
its area's interval. A source that shares its area (:mod:`ihs_hpc.pipeline.attribution`) gets the
interval of its split: every replicate's days make a replicate annual map of the cluster's pixels,
which is split again with the same footprints (:func:`ihs_hpc.pipeline.split_intervals.split_intervals`),
so the interval carries how the day-to-day pattern of the map moves the share of each source, not only
the area's level; it is centred on the estimate (``own + quantile − median`` of the replicates). The
headline figures, all IHS areas' IHS-related PM2.5 and share per year and over all years, get theirs
like a city's (:func:`area_intervals`). On synthetic scenes the coverage of the nominal interval on the
truth is scored (``coverage90_city_annual``, ``coverage90_source_annual``, ``coverage90_area_annual``).

``stats.intervals.method: auto`` (default) replaces the day bootstrap wherever stage 3 measured its
fill's error (``stage3.fill_error.placements`` > 0: ``stage3.zarr/fill_error``,
:mod:`ihs_hpc.ops.fill_error`): the interval of a group's annual mean is the estimate plus the 5th and
95th percentiles of the same group's mean error on every placement of the IHS mask in every year
(:func:`fill_error_offsets`), and a source that shares its area gets the spread of its own part when the
cluster's fitted map, plus a circularly shifted copy of the split's residual and each placement's error
map, is split again (:func:`ihs_hpc.pipeline.split_intervals.split_fill_intervals`).
The placements lie in the background, so they cannot see what is different under the real IHS areas
(a town, a valley floor the kriging's drift misses). Two things bring that in. With
``scale_by_contrast: sources`` (default), the placements' error maps behind every source's interval are
scaled pixel by pixel to the real areas' contrast in the static covariates, elevation and settlement
density (what a fill from an area's edge cannot see of them; :func:`contrast_scaled_replicates`,
:func:`ihs_hpc.ops.fill_error.rescale_to_areas`): on the demo's seed 7 the placements' mean absolute error
is 0.48 µg m⁻³, the scale model predicts 1.10 at the real IHS pixels, and the truth says 1.08. One area
moved lands on whatever lies there, so its own conditions (a town under the plant) must be brought to
it. A city's IHS areas, moved together, land on a mix of conditions like the one they hold, and their
pooled error needs no such reweighting: on 19 demo seeds the real cities' errors rank among their
placements' as a uniform draw would (mean |PIT − ½| 0.252, uniform 0.25), and scaled they cover 368 of
370 city-years, too wide (``all`` scales the cities' too; ``none`` neither). Where an IHS area has
idle days (none of its sources operates, ``idle_margin_days`` away from any operating day, at least
``idle_min_days`` of them), its estimate should be 0 and is the fill's error there, measured at the real pixels
(:func:`idle_bias_map`). A group's *idle bias* is the mean of that map over its pixels when at least
``min_fraction`` of them have it, else the mean over every IHS pixel that has it (:func:`group_idle_bias`);
the fill-error interval is widened on the side it points to by that bias, added in quadrature
(:func:`widen_by_bias`; a source's by its share of its area's), and stays as it is where no area was
ever idle.
These intervals are about the realised annual figures (what the fill got wrong), not about which days
the year had. The bootstrap (``method: bootstrap``, or a stage 3 without ``fill_error``, e.g. the
U-ConvLSTM's) describes the day-to-day sampling of an annual figure; the fill's error is not in it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import config as _config  # noqa: F401  (registers the ihs.yaml defaults with dask.config)

from ..stats.bootstrap import pooled_mean_interval


def interval_settings(intervals: dict | None) -> dict:
    """``stats.intervals`` (``intervals``, possibly partial, over the package defaults), range-checked.

    Raises
    ------
    ConfigError
        Naming every requirement and the values given.
    """
    import dask.config

    out = dict(dask.config.get("ihs.stats.intervals"))
    out.update({k: v for k, v in (intervals or {}).items() if v is not None})
    if (int(out["block_days"]) < 1 or int(out["n_boot"]) < 10 or not 0 < float(out["level"]) < 1
            or out["method"] not in ("auto", "bootstrap") or not 0 < float(out["min_fraction"]) <= 1
            or int(out["idle_margin_days"]) < 0 or int(out["idle_min_days"]) < 1
            or out["scale_by_contrast"] not in SCALE_CHOICES):
        from ..errors import ConfigError

        raise ConfigError(f"stats.intervals: block_days >= 1, n_boot >= 10, 0 < level < 1, method auto or "
                          f"bootstrap, 0 < min_fraction <= 1, idle_margin_days >= 0, idle_min_days >= 1 and "
                          f"scale_by_contrast one of {', '.join(SCALE_CHOICES)} are required, got {out}")
    return out


def fill_error_replicates(stage3) -> np.ndarray | None:
    """The ``(placements × years, ny × nx)`` annual error maps of stage 3's fill (``fill_error``), or None
    when stage 3 did not measure them."""
    if stage3 is None or "fill_error" not in stage3:
        return None
    values = np.asarray(stage3["fill_error"].values, dtype=np.float32)
    return values.reshape(values.shape[0] * values.shape[1], -1)


#: ``stats.intervals.scale_by_contrast``: which intervals take the placements' errors scaled to the areas
SCALE_CHOICES = ("sources", "all", "none")


def contrast_scaled_replicates(errors: np.ndarray, stage3, areas, covariates, *, k: int = 16,
                               info: dict | None = None) -> np.ndarray:
    """The fill ``errors`` of :func:`fill_error_replicates` scaled pixel by pixel to the real IHS areas'
    contrast in the static ``covariates`` ``(p, ny, nx)`` (elevation, settlement density:
    :func:`ihs_hpc.pipeline.inputs.static_covariates`; :func:`ihs_hpc.ops.fill_error.rescale_to_areas`;
    ``stage3``: its placement shifts and grid; ``k``: stage 3's kriging neighbours).

    ``info``, when given, receives the scale model's coefficients (``coef``) and the mean absolute error it
    predicts at the placements (``scale_placements``) and at the real IHS pixels (``scale_areas``)."""
    from ..ops.fill_error import error_scale, placement_contrast, rescale_to_areas
    from .fill_error import placement_background

    mask = areas["ihs_mask"].values.astype(bool)
    real, moved = placement_contrast(covariates, mask, placement_background(areas), stage3["placement_shift"].values,
                                     stage3["lat"].values, stage3["lon"].values, k=k)
    values, coef, ratio = rescale_to_areas(errors.reshape(stage3["fill_error"].shape), real, moved)
    if info is not None:
        s_moved = error_scale(coef, moved, axis=1)
        info.update({"coef": [float(c) for c in coef],
                     "scale_placements": float(np.nanmean(np.where(np.isfinite(ratio), s_moved, np.nan))),
                     "scale_areas": float(np.nanmean(error_scale(coef, real)[mask]))})
    return values.reshape(errors.shape)


def idle_bias_map(read_daily_ihs, count_year, year_of_day, settings: dict, chunk: int = 4096) -> np.ndarray:
    """The fill's error measured at the real IHS pixels on their idle days: ``(ny * nx,)`` mean daily
    ``pm25_ihs`` over each pixel's idle days (its truth there is 0), NaN where a pixel has fewer than
    ``idle_min_days`` of them or is no IHS pixel.

    Parameters
    ----------
    read_daily_ihs : callable
        ``read_daily_ihs(pixels)``: the ``(time, len(pixels))`` daily ``pm25_ihs`` at flat pixel indices.
    count_year : ndarray, shape (n_years, ny, nx)
        Operating sources covering each pixel in each year (stage 1's ``ihs_count_year``) of the years of
        ``year_of_day``.
    year_of_day : int ndarray, shape (time,)
        Index into ``count_year``'s years of every day.
    settings : dict
        ``stats.intervals`` (``idle_margin_days``: days kept away from any operating day; ``idle_min_days``).
    """
    from .met_fit import idle_days

    count = np.asarray(count_year)
    operating = count.reshape(count.shape[0], -1) > 0
    out = np.full(operating.shape[1], np.nan)
    candidates = np.flatnonzero(operating.any(axis=0) & ~operating.all(axis=0))
    if not candidates.size:
        return out
    margin, min_days = int(settings["idle_margin_days"]), int(settings["idle_min_days"])
    patterns, which = np.unique(operating[:, candidates].T, axis=0, return_inverse=True)
    which = which.ravel()
    idle = np.stack([idle_days(pattern, year_of_day, margin) for pattern in patterns])  # (patterns, time)
    keep = idle.sum(axis=1)[which] >= min_days
    pixels, pattern = candidates[keep], which[keep]
    for c0 in range(0, pixels.size, chunk):  # (time, chunk) blocks: a few hundred MB on ten years of BTH
        part = slice(c0, c0 + chunk)
        daily = np.asarray(read_daily_ihs(pixels[part]))
        valid = idle[pattern[part]].T & np.isfinite(daily)
        n = valid.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(valid, daily, 0).sum(axis=0, dtype=np.float64) / n
        out[pixels[part]] = np.where(n >= min_days, mean, np.nan)
    return out


def group_idle_bias(bias: np.ndarray, group_pixels, min_fraction: float) -> np.ndarray:
    """Every group's idle bias: the mean of :func:`idle_bias_map` over its pixels where at least
    ``min_fraction`` of them have it, else the mean over every pixel that has it (0 when none has)."""
    from ..ops.fill_error import group_replicates

    bias = np.asarray(bias, dtype=np.float64)
    known = np.isfinite(bias)
    own = np.array([group_replicates(bias[None], pix, min_fraction=min_fraction)[0] for pix in group_pixels])
    return np.where(np.isfinite(own), own, float(bias[known].mean()) if known.any() else 0.0)


def widen_by_bias(lower, upper, bias, weight=1.0):
    """Offsets ``lower``, ``upper`` of an interval widened on the side the idle ``bias`` (estimate minus
    truth where the truth is 0) points to, below when the estimate runs high, above when it runs low.

    The uncorrected bias ``b = weight × bias`` is added to that side's reach ``d`` from the estimate in
    quadrature, ``√(d² + b²)`` (root-sum-square of the fill's random error and an uncorrected systematic
    one, O'Donnell & Hibbert 2005, *Analyst* 130, 721); the other side is kept."""
    shift = np.asarray(weight) * np.asarray(bias)
    below, above = np.maximum(-np.asarray(lower), 0.0), np.maximum(np.asarray(upper), 0.0)
    return (lower - (np.hypot(below, np.maximum(shift, 0.0)) - below),
            upper + (np.hypot(above, np.maximum(-shift, 0.0)) - above))


def fill_error_offsets(errors: np.ndarray, group_pixels, settings: dict) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper offsets ``quantile(e)`` of every group's mean fill error ``e`` over all replicates
    (:func:`~ihs_hpc.ops.fill_error.group_replicates`); NaN for a group no replicate covers."""
    from ..ops.fill_error import error_interval, group_replicates

    reps = np.stack([group_replicates(errors, pix, min_fraction=float(settings["min_fraction"]))
                     for pix in group_pixels]) if len(group_pixels) else np.zeros((0, len(errors)))
    return error_interval(np.zeros(len(group_pixels)), reps, float(settings["level"]))


def annual_group_intervals(sums: dict, cal: pd.DataFrame, years, groups: np.ndarray, settings: dict,
                           errors: np.ndarray | None = None, group_pixels=None, bias=None) -> dict:
    """Estimate, lower, upper (and truth when the sums carry it) of the pooled annual IHS-related
    PM2.5 of ``groups``: arrays (len(groups), n_years). With fill ``errors`` (:func:`fill_error_replicates`)
    and each group's flat pixels, the interval is the estimate plus :func:`fill_error_offsets`, widened by
    each group's idle ``bias`` when given (:func:`widen_by_bias`), else the day bootstrap's."""
    year_of_day = cal["year"].to_numpy()
    n_g, n_y = len(groups), len(years)
    out = {k: np.full((n_g, n_y), np.nan) for k in ("estimate", "lower", "upper", "truth")}
    for y, year in enumerate(years):
        days = np.flatnonzero(year_of_day == int(year))
        s = sums["s_ihs"][np.ix_(groups, days)]
        n = sums["n_pair"][np.ix_(groups, days)]
        if errors is None:
            out["lower"][:, y], out["upper"][:, y] = pooled_mean_interval(
                s, n, block=int(settings["block_days"]), n_boot=int(settings["n_boot"]),
                level=float(settings["level"]), seed=int(settings["seed"]) + y)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["estimate"][:, y] = s.sum(axis=1) / n.sum(axis=1)
            if "s_true" in sums:
                out["truth"][:, y] = sums["s_true"][np.ix_(groups, days)].sum(axis=1) / n.sum(axis=1)
    if errors is not None:
        lo, hi = fill_error_offsets(errors, group_pixels, settings)
        if bias is not None:
            lo, hi = widen_by_bias(lo, hi, bias)
        out["lower"], out["upper"] = out["estimate"] + lo[:, None], out["estimate"] + hi[:, None]
    return out


def city_intervals(sums, cal, years, layout, city_names, settings, errors=None, city_pixels=None,
                   bias_map=None) -> pd.DataFrame:
    """One row per city and year: pooled IHS-related PM2.5 of the city's IHS areas with its interval
    (from the fill ``errors`` at each city's IHS pixels when given, widened by the cities' idle bias from
    ``bias_map`` (:func:`idle_bias_map`), see :func:`annual_group_intervals`)."""
    if layout.n_city == 0:
        return pd.DataFrame()
    bias = None
    if errors is not None and bias_map is not None:
        bias = group_idle_bias(bias_map, city_pixels, float(settings["min_fraction"]))
    res = annual_group_intervals(sums, cal, years, layout.city_ihs(np.arange(layout.n_city)), settings,
                                 errors=errors, group_pixels=city_pixels, bias=bias)
    rows = []
    for c, name in enumerate(city_names):
        for y, year in enumerate(years):
            row = {"city": name, "year": int(year), "pm25_ihs": res["estimate"][c, y],
                   "pm25_ihs_lower": res["lower"][c, y], "pm25_ihs_upper": res["upper"][c, y]}
            if bias is not None:
                row["idle_bias"] = bias[c]
            if "s_true" in sums:
                row["pm25_ihs_true"] = res["truth"][c, y]
            rows.append(row)
    return pd.DataFrame(rows)


def area_intervals(sums, cal, years, layout, settings, errors=None, ihs_pixels=None, bias_map=None) -> pd.DataFrame:
    """The headline figures with their intervals: one row per year and one for all years (``year`` 0) of the
    pooled IHS-related PM2.5 of all IHS areas (``pm25_ihs``) and its share of their total PM2.5
    (``share_pct``), each with ``…_lower`` / ``…_upper`` (and ``…_true`` where the sums carry the truth).

    With the fill ``errors`` and ``ihs_pixels`` (flat indices of every IHS pixel) the interval is the
    estimate plus the ``level`` quantiles of the IHS pixels' mean error over the placements (all years: each
    placement's years weighted by their pixel-days), widened by the areas' idle bias from ``bias_map``
    (:func:`widen_by_bias`); else the day bootstrap's, per year only. The share's interval is the mean's
    divided by the areas' mean total PM2.5 (observed, not filled)."""
    from ..ops.fill_error import error_interval, group_replicates

    group = np.array([layout.IHS_AREA])
    bias = None
    if errors is not None and bias_map is not None:
        bias = group_idle_bias(bias_map, [ihs_pixels], float(settings["min_fraction"]))
    res = annual_group_intervals(sums, cal, years, group, settings, errors=errors,
                                 group_pixels=None if errors is None else [ihs_pixels], bias=bias)
    year_of_day = cal["year"].to_numpy()
    n_year = np.array([sums["n_pair"][layout.IHS_AREA, year_of_day == int(y)].sum() for y in years])
    tot_year = np.array([sums["s_totp"][layout.IHS_AREA, year_of_day == int(y)].sum() for y in years])
    rows = []
    for y, year in enumerate(years):
        rows.append({"year": int(year), "pm25_ihs": res["estimate"][0, y], "pm25_ihs_lower": res["lower"][0, y],
                     "pm25_ihs_upper": res["upper"][0, y], "pm25_ihs_true": res["truth"][0, y]})
    with np.errstate(invalid="ignore", divide="ignore"):
        total = {"year": 0, "pm25_ihs": float(np.nansum(res["estimate"][0] * n_year) / n_year.sum()),
                 "pm25_ihs_true": float(np.nansum(res["truth"][0] * n_year) / n_year.sum())}
        if errors is not None and len(errors) % len(years) == 0:
            reps = group_replicates(errors, ihs_pixels, min_fraction=float(settings["min_fraction"]))
            reps = reps.reshape(-1, len(years))  # (placements, years): the replicates are placement-major
            weight = np.where(np.isfinite(reps), n_year[None, :], 0.0)
            pooled = np.nansum(reps * weight, axis=1) / weight.sum(axis=1)
            lo, hi = error_interval(0.0, pooled, float(settings["level"]))
            if bias is not None:
                lo, hi = widen_by_bias(lo, hi, bias[0])
            total["pm25_ihs_lower"], total["pm25_ihs_upper"] = total["pm25_ihs"] + lo, total["pm25_ihs"] + hi
        else:
            total["pm25_ihs_lower"] = total["pm25_ihs_upper"] = np.nan
    rows.append(total)
    out = pd.DataFrame(rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_total = np.append(tot_year / n_year, tot_year.sum() / n_year.sum())
    for col in ("", "_lower", "_upper", "_true"):
        out[f"share_pct{col}"] = 100.0 * out[f"pm25_ihs{col}"] / mean_total
    if "s_true" not in sums:
        out = out.drop(columns=["pm25_ihs_true", "share_pct_true"])
    if bias is not None:
        out["idle_bias"] = bias[0]
    return out


def add_source_intervals(table: pd.DataFrame, sums, cal, years, layout, settings, split=None, errors=None,
                         source_pixels=None, bias_map=None) -> pd.DataFrame:
    """Add ``pm25_ihs_area_lower/upper`` (the single-area pooled mean's interval) and
    ``pm25_ihs_own_lower/upper`` to the attribution table (rows ordered by source, then year).

    ``split``: the (n_ihs, n_years) lower and upper replicate offsets of :mod:`ihs_hpc.pipeline.split_intervals`
    for the source-years split among several sources (NaN elsewhere); without it, or where it is NaN, a source's
    interval is its area's scaled by its share of the area. ``errors`` and ``source_pixels`` (each source's
    area): the area's interval from the fill errors (:func:`annual_group_intervals`); with ``bias_map``
    (:func:`idle_bias_map`) too, the area's interval is widened by its idle bias and a split source's by
    its share of it (column ``idle_bias``: the area's)."""
    n_ihs = layout.n_ihs
    bias = None
    if errors is not None and bias_map is not None:
        bias = group_idle_bias(bias_map, source_pixels, float(settings["min_fraction"]))
    res = annual_group_intervals(sums, cal, years, layout.ihs(np.arange(n_ihs)), settings, errors=errors,
                                 group_pixels=source_pixels, bias=bias)
    est, lo, hi = (res[k].ravel() for k in ("estimate", "lower", "upper"))
    table = table.copy()
    table["pm25_ihs_area_lower"], table["pm25_ihs_area_upper"] = lo, hi
    own = table["pm25_ihs_own"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip(np.nan_to_num(own / table["pm25_ihs_area"].to_numpy(dtype=float), nan=1.0), 0.0, 1.0)
    low, high = frac * (lo - est), frac * (hi - est)
    if split is not None:
        below, above = (np.asarray(a, dtype=float).ravel() for a in split)
        use = np.isfinite(below) & np.isfinite(above)
        if bias is not None:  # the area's interval carries the bias already; a split one gets its share
            below, above = widen_by_bias(below, above, np.repeat(bias, len(years)), frac)
        low, high = np.where(use, below, low), np.where(use, above, high)
    if bias is not None:
        table["idle_bias"] = np.repeat(bias, len(years))
    operating = table["operating"].to_numpy(dtype=bool)
    table["pm25_ihs_own_lower"] = np.where(operating, own + low, 0.0)
    table["pm25_ihs_own_upper"] = np.where(operating, own + high, 0.0)
    return table


def coverage_scores(city: pd.DataFrame, table: pd.DataFrame, level: float, area: pd.DataFrame | None = None) -> dict:
    """Fraction of per-city and per-source annual truths inside their intervals (operating source-years
    with a positive truth), and how many were judged; with ``area`` (:func:`area_intervals`), of the
    IHS areas' annual truths too."""
    tag = f"coverage{int(round(100 * level))}"
    out = {}
    if area is not None and "pm25_ihs_true" in area:
        ok = area[(area["year"] > 0) & np.isfinite(area["pm25_ihs_true"]) & np.isfinite(area["pm25_ihs_lower"])]
        inside = (ok["pm25_ihs_lower"] <= ok["pm25_ihs_true"]) & (ok["pm25_ihs_true"] <= ok["pm25_ihs_upper"])
        out[f"{tag}_area_annual"] = float(inside.mean()) if len(ok) else np.nan
    if not city.empty and "pm25_ihs_true" in city:
        ok = city[np.isfinite(city["pm25_ihs_true"]) & np.isfinite(city["pm25_ihs_lower"])]
        inside = (ok["pm25_ihs_lower"] <= ok["pm25_ihs_true"]) & (ok["pm25_ihs_true"] <= ok["pm25_ihs_upper"])
        out[f"{tag}_city_annual"] = float(inside.mean()) if len(ok) else np.nan
        out[f"{tag}_city_n"] = float(len(ok))
    if "ihs_true_annual_mean" in table and "pm25_ihs_own_lower" in table:
        t = table["ihs_true_annual_mean"]
        ok = table[table["operating"] & np.isfinite(t) & (t > 0) & np.isfinite(table["pm25_ihs_own_lower"])]
        tt = ok["ihs_true_annual_mean"]
        inside = (ok["pm25_ihs_own_lower"] <= tt) & (tt <= ok["pm25_ihs_own_upper"])
        out[f"{tag}_source_annual"] = float(inside.mean()) if len(ok) else np.nan
        out[f"{tag}_source_n"] = float(len(ok))
    return out


def describe(scores: dict, level: float) -> dict:
    """Descriptions of the coverage rows of ``truth_scores.csv``."""
    pct = f"{100 * level:g} %"
    text = {"city_annual": f"fraction of per-city annual IHS-related PM2.5 truths inside their nominal {pct} interval",
            "city_n": "number of city-years judged by the city coverage",
            "source_annual": f"fraction of per-source annual own-contribution truths inside their nominal {pct} "
                             f"interval (operating years)",
            "source_n": "number of source-years judged by the source coverage",
            "area_annual": f"fraction of the IHS areas' annual IHS-related PM2.5 truths inside their nominal {pct} "
                           f"interval (ihs_area_intervals.csv)"}
    return {k: next(v for s, v in text.items() if k.endswith(s)) for k in scores}
