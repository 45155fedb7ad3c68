"""Per-source attribution of the annual IHS-related PM2.5 (stats stage; :mod:`ihs_hpc.ops.attribution`).

Reads the annual ``pm25_ihs`` maps the stats stage wrote (``stats/maps.zarr`` ``annual_pm25_ihs``),
the radiation areas of stage 1 (``member_offset``/``member_pixel``) and the IHS table of the input
store (``ihs_row``, ``ihs_col``, ``ihs_operating``), and writes ``stats/ihs_attribution.csv``: one row
per source and year with the source's own annual contribution averaged over its radiation area
(µg m⁻³), its share of the area's IHS-related PM2.5, how it was obtained (``method``) and, on
synthetic scenes, the injected truth (``ihs_true_annual_mean``).

Scores against the truth (:func:`attribution_scores`) are taken over the operating years of the
sources whose area overlaps another source's area (the cases the seed paper cannot split).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import config as _config  # noqa: F401  (registers the ihs.yaml defaults with dask.config)

from ..ops.attribution import (METHOD_ALONE, METHOD_NONE, fit_strengths, footprints, nnls_residual2, overlap_clusters,
                               split_by_footprint)

#: candidate footprint e-folding distances (km) when ``stats.attribution.decay_km`` is not set
DECAY_CANDIDATES = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0, 12.0)

ATTRIBUTION_CSV = "ihs_attribution.csv"

COLUMN_DESCRIPTIONS = {
    "pm25_ihs_own": "the source's own IHS-related PM2.5, annual mean over its radiation area (µg m⁻³)",
    "pm25_ihs_area": "annual mean of the estimated IHS-related PM2.5 over the source's area, all sources (µg m⁻³)",
    "share_of_area_pct": "pm25_ihs_own / pm25_ihs_area × 100",
    "method": "alone | nnls | equal_strength (indistinguishable, flagged) | not_operating",
    "unique_fraction": "share of the source's footprint column outside the span of the others (0–1)",
    "pm25_ihs_own_lower": "lower / upper (…_upper) bound of pm25_ihs_own: for a source sharing its area, the "
                          "spread of its split of replicate annual maps; for a source alone, its area mean's "
                          "interval (replicates: `interval`)",
    "idle_bias": "fill_error intervals: the estimate's mean over its area's idle days, where the truth is 0 "
                 "(µg m⁻³; the mean over every idle IHS pixel when the area has too few); on the side it points to "
                 "the interval's reach d from the estimate becomes √(d² + b²), b the bias (a source's share of it)",
    "interval": "what the intervals' replicates are: fill_error (stage 3's fill error on placements of the IHS "
                "mask, scaled to the real areas' contrast in elevation and settlement density unless "
                "stats.intervals.scale_by_contrast is none) | bootstrap (circular block bootstrap over days)",
    "decay_km": "footprint e-folding distance L used for the source (km; fitted unless "
                "stats.attribution.decay_km is set)",
}


class _ClusterProblem:
    """The per-year NNLS problems of one cluster of sources, for any per-source footprint decays."""

    def __init__(self, cluster, members, flat, operating, lat, lon, src_row, src_col, nx):
        self.cluster = cluster
        self.members = members
        self.flat = flat
        self.operating = operating
        self.geo = (lat, lon, src_row, src_col, nx)
        self._fp: dict = {}
        self._last: dict = {}
        self._normal: dict = {}
        n_year = flat.shape[0]
        self.years = []
        for y in range(n_year):
            active = [int(j) for j in cluster if operating[j, y]]
            if not active:
                self.years.append((active, np.zeros(0, np.int64), []))
                continue
            pix = np.unique(np.concatenate([members[j] for j in active]))
            pix = pix[np.isfinite(flat[y, pix])]
            rows = []
            for j in active:
                r = np.searchsorted(pix, members[j])
                ok = r < pix.size
                ok[ok] = pix[r[ok]] == members[j][ok]
                rows.append((r[ok], np.flatnonzero(ok)))
            self.years.append((active, pix, rows))

    def footprint(self, j: int, length: float) -> np.ndarray:
        """Source ``j``'s footprint over its area for the decay ``length``; the last one per source is kept
        (a search over the decays changes one source's at a time, and every year uses the same)."""
        if j not in self._fp:  # distances from the source, once
            lat, lon, src_row, src_col, nx = self.geo
            self._fp[j] = -np.log(footprints(lat, lon, src_row[[j]], src_col[[j]], [self.members[j]], nx, 1.0)[0])
        kept = self._last.get(j)
        if kept is None or kept[0] != float(length):
            kept = self._last[j] = (float(length), np.exp(-self._fp[j] / float(length)))
        return kept[1]

    def design(self, y: int, decay: dict) -> np.ndarray:
        active, pix, _ = self.years[y]
        out = np.zeros((pix.size, len(active)))
        for k, j in enumerate(active):
            self._put_column(out, y, k, decay[j])
        return out

    def _put_column(self, design: np.ndarray, y: int, k: int, length: float) -> None:
        """Column ``k`` of year ``y``'s design: its source's footprint for the decay ``length`` on the
        pixels of its area, 0 elsewhere."""
        active, _, rows = self.years[y]
        r, ok = rows[k]
        design[:, k] = 0.0
        design[r, k] = self.footprint(active[k], length)[ok]

    def normal_equations(self, y: int, decay: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Year ``y``'s design ``X`` (:meth:`design`), ``XᵀX`` and ``Xᵀv`` for these decays, kept from the
        previous call and updated in the columns whose decay changed (a search over the decays changes
        one source's at a time). The arrays are this problem's own: read them, do not change them."""
        active, pix, _ = self.years[y]
        want = np.array([float(decay[j]) for j in active])
        values = self.flat[y, pix]
        kept = self._normal.get(y)
        if kept is None:
            design = self.design(y, decay)
            kept = self._normal[y] = [want, design, design.T @ design, design.T @ values]
            return tuple(kept[1:])
        have, design, gram, rhs = kept
        changed = np.flatnonzero(have != want)
        if changed.size:
            for k in changed:
                self._put_column(design, y, k, want[k])
            cross = design.T @ design[:, changed]
            gram[:, changed] = cross
            gram[changed, :] = cross.T
            rhs[changed] = design[:, changed].T @ values
            have[changed] = want[changed]
        return design, gram, rhs

    def residual2(self, decay: dict) -> float:
        """Σ over years of the squared residual of the NNLS fit of the footprints with these decays
        (:func:`~ihs_hpc.ops.attribution.nnls_residual2` on :meth:`normal_equations`)."""
        total = 0.0
        for y, (active, pix, _) in enumerate(self.years):
            if not active or pix.size == 0:
                continue
            design, gram, rhs = self.normal_equations(y, decay)
            total += nnls_residual2(design, self.flat[y, pix], gram=gram, rhs=rhs)
        return total

    def fit_decay(self, candidates, refine: bool = True, max_evals: int = 4000) -> dict:
        """A common decay (the candidate with the smallest residual, :meth:`residual2`), then, with
        ``refine``, per-source decays minimising the residual by Powell's method over log L within the
        candidates' range (:func:`scipy.optimize.minimize`)."""
        from scipy.optimize import minimize

        keys = [int(j) for j in self.cluster]
        best = min(candidates, key=lambda L: self.residual2({j: L for j in keys}))
        decay = {j: float(best) for j in keys}
        if not refine:
            return decay
        lo, hi = np.log(min(candidates)), np.log(max(candidates))
        result = minimize(lambda x: self.residual2(dict(zip(keys, np.exp(x)))), np.full(len(keys), np.log(best)),
                          method="Powell", bounds=[(lo, hi)] * len(keys),
                          options={"xtol": 1e-3, "ftol": 1e-6, "maxfev": max_evals})
        if result.fun < self.residual2(decay):
            decay = dict(zip(keys, (float(v) for v in np.exp(result.x))))
        return decay


def attribute_annual(*, annual_ihs: np.ndarray, members: list, src_row, src_col, lat, lon, operating: np.ndarray,
                     years, ihs_ids, decay_km=None, min_unique: float = 0.05,
                     candidates=DECAY_CANDIDATES, refine_max_sources: int = 60,
                     problems: list | None = None) -> pd.DataFrame:
    """Split each year's ``pm25_ihs`` map among the sources of every overlap cluster.

    Parameters
    ----------
    annual_ihs : (n_years, ny, nx) array
        Annual mean IHS-related PM2.5 (NaN outside IHS areas or without data).
    members : list of int arrays
        Radiation area of each source (flat indices, stage 1).
    src_row, src_col : (n,) int arrays
        Grid cell of each source.
    lat, lon : 1-D arrays
        Grid coordinates.
    operating : (n, n_years) bool
        Operating flags aligned to ``years``.
    decay_km : float or (n,) array, optional
        Footprint e-folding distance(s); None: fitted per cluster (:meth:`_ClusterProblem.fit_decay`:
        a common value among ``candidates`` by the smallest NNLS residual over all years, then per
        source in clusters of at most ``refine_max_sources`` sources — the search grows with the square
        of the cluster's size; larger clusters keep the common value).
    min_unique : float
        Threshold of :func:`~ihs_hpc.ops.attribution.unique_fraction` below which a source is fitted
        jointly with the others it cannot be told from (flagged ``equal_strength``).
    problems : list, optional
        Receives ``(problem, decays)`` of every cluster of more than one source (the split's intervals,
        :func:`ihs_hpc.pipeline.split_intervals.split_intervals`).

    Returns
    -------
    DataFrame with one row per source and year (columns in :data:`COLUMN_DESCRIPTIONS` plus
    ``ihs_id, year, operating, cluster, cluster_size, shares_area``).
    """
    n_year, ny, nx = annual_ihs.shape
    flat = annual_ihs.reshape(n_year, -1).astype(np.float64)
    n = len(members)
    members = [np.asarray(m, dtype=np.int64) for m in members]
    operating = np.asarray(operating, dtype=bool)
    src_row, src_col = np.asarray(src_row), np.asarray(src_col)
    fixed = None if decay_km is None else np.broadcast_to(np.asarray(decay_km, dtype=np.float64), (n,))
    clusters = overlap_clusters(members, ny * nx)
    own = np.full((n, n_year), np.nan)
    area_mean = np.full((n, n_year), np.nan)
    method = np.full((n, n_year), METHOD_NONE, dtype=object)
    unique = np.full((n, n_year), np.nan)
    decay_used = np.full(n, np.nan)
    cluster_of = np.zeros(n, dtype=np.int64)
    cluster_size = np.zeros(n, dtype=np.int64)
    for ci, cluster in enumerate(clusters):
        cluster_of[cluster] = ci
        cluster_size[cluster] = cluster.size
        for j in cluster:
            if members[j].size:
                with np.errstate(invalid="ignore"):
                    import warnings

                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        area_mean[j] = np.nanmean(flat[:, members[j]], axis=1)
        problem = _ClusterProblem(cluster, members, flat, operating, lat, lon, src_row, src_col, nx)
        if fixed is not None:
            decay = {int(j): float(fixed[j]) for j in cluster}
        elif cluster.size > 1:
            decay = problem.fit_decay(candidates, refine=cluster.size <= refine_max_sources)
        else:
            decay = {int(j): float("nan") for j in cluster}
        for j in cluster:
            decay_used[j] = decay[int(j)]
        if problems is not None and cluster.size > 1:
            problems.append((problem, decay))
        for y, (active, pix, rows) in enumerate(problem.years):
            if not active:
                continue
            values = flat[y, pix]
            if len(active) == 1 or pix.size == 0:
                for j in active:
                    own[j, y] = area_mean[j, y]
                    method[j, y] = METHOD_ALONE
                    unique[j, y] = 1.0
                continue
            design = problem.design(y, decay)
            fit = fit_strengths(values, design, min_unique=min_unique)
            parts = split_by_footprint(values, design, fit.coef)
            for k, (j, (r, _)) in enumerate(zip(active, rows)):
                own[j, y] = parts[r, k].mean() if r.size else np.nan
                method[j, y] = fit.method[k]
                unique[j, y] = fit.unique[k]
        for j in cluster:
            own[j, ~operating[j]] = 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        share = 100.0 * own / area_mean
    shares_area = cluster_size > 1
    rows = []
    for j in range(n):
        for y, year in enumerate(years):
            rows.append({"ihs_id": ihs_ids[j], "year": int(year), "operating": bool(operating[j, y]),
                         "cluster": int(cluster_of[j]), "cluster_size": int(cluster_size[j]),
                         "shares_area": bool(shares_area[j]), "method": method[j, y],
                         "unique_fraction": unique[j, y], "decay_km": decay_used[j],
                         "pm25_ihs_own": own[j, y], "pm25_ihs_area": area_mean[j, y],
                         "share_of_area_pct": share[j, y]})
    return pd.DataFrame(rows)


def attribution_scores(table: pd.DataFrame) -> dict:
    """``attribution_r`` and ``attribution_mdape_pct`` of ``pm25_ihs_own`` against the truth
    ``ihs_true_annual_mean`` over operating years of sources that share an area, and their count."""
    sel = table["shares_area"] & table["operating"] & np.isfinite(table["pm25_ihs_own"])
    if "ihs_true_annual_mean" in table:
        sel &= np.isfinite(table["ihs_true_annual_mean"]) & (table["ihs_true_annual_mean"] > 0)
    else:
        return {}
    est = table.loc[sel, "pm25_ihs_own"].to_numpy(dtype=float)
    true = table.loc[sel, "ihs_true_annual_mean"].to_numpy(dtype=float)
    if est.size < 3:
        return {"attribution_r": np.nan, "attribution_mdape_pct": np.nan, "attribution_n": float(est.size)}
    return {"attribution_r": float(np.corrcoef(est, true)[0, 1]),
            "attribution_mdape_pct": float(np.median(np.abs(est - true) / true) * 100.0),
            "attribution_n": float(est.size)}


SCORE_DESCRIPTIONS = {
    "attribution_r": "Pearson r of per-source annual own contributions (area means) against the truth, "
                     "operating years of sources sharing an area",
    "attribution_mdape_pct": "median absolute % error of those per-source annual contributions",
    "attribution_n": "number of source-years scored by attribution_r and attribution_mdape_pct",
}


def write_attribution(writer, *, cubes, areas, maps, years, operating, ihs_ids, decay_km=None,
                      min_unique=None, refine_max_sources=None, sums=None, cal=None, layout=None,
                      city_names=(), intervals=None, read_daily_ihs=None,
                      fill_errors=None, source_fill_errors=None) -> tuple[pd.DataFrame, dict, dict]:
    """Attribute the run's annual ``pm25_ihs`` maps to sources and write ``ihs_attribution.csv``
    (through the stats :class:`~ihs_hpc.stats.tables.TableWriter`); return the table, its scores
    against the synthetic truth (empty without truth or without sources) and their descriptions.

    ``operating``: (n_ihs, n_years) float flags from the input store (NaN, a year the table does not
    cover, counts as operating). ``decay_km`` / ``min_unique`` default to ``stats.attribution.*``.

    With the stats stage's daily group ``sums`` (``cal``, ``layout``), the annual figures of every city's
    IHS areas (``city_ihs_intervals.csv``) and of every source get bootstrap intervals
    (:mod:`ihs_hpc.pipeline.intervals`, settings ``stats.intervals`` updated by ``intervals``), and the
    scores gain their coverage of the truth. ``read_daily_ihs(pixels)``: the ``(time, pixels)`` daily ``pm25_ihs``
    at flat pixel indices, for the intervals of the sources split among several
    (:func:`ihs_hpc.pipeline.split_intervals.split_intervals`). ``fill_errors``: stage 3's fill error replicates
    (:func:`ihs_hpc.pipeline.intervals.fill_error_replicates`); given, and with ``stats.intervals.method:
    auto`` (default), the intervals come from them instead of the day bootstrap. ``source_fill_errors``:
    the replicates scaled to the areas' contrast (:func:`ihs_hpc.pipeline.intervals.contrast_scaled_replicates`)
    behind the sources' intervals (and the cities' too when ``fill_errors`` is the same array); None: the
    sources' come from ``fill_errors`` as well.
    """
    import dask.config

    n_ihs = len(ihs_ids)
    if n_ihs == 0 or "annual_pm25_ihs" not in maps or "member_offset" not in areas:
        return pd.DataFrame(), {}, {}
    if decay_km is None:
        decay_km = dask.config.get("ihs.stats.attribution.decay_km")
    if min_unique is None:
        min_unique = float(dask.config.get("ihs.stats.attribution.min_unique"))
    if refine_max_sources is None:
        refine_max_sources = int(dask.config.get("ihs.stats.attribution.refine_max_sources"))
    if decay_km is not None and not float(decay_km) > 0:
        from ..errors import ConfigError

        raise ConfigError(f"stats.attribution.decay_km must be > 0 km, got {decay_km!r}")
    offsets = areas["member_offset"].values.astype(np.int64)
    pixels = areas["member_pixel"].values.astype(np.int64)
    members = [pixels[offsets[i]:offsets[i + 1]] for i in range(n_ihs)]
    map_years = [int(y) for y in maps["year"].values]
    annual = maps["annual_pm25_ihs"].values[[map_years.index(int(y)) for y in years]]
    op = np.ones((n_ihs, len(years)), dtype=bool) if operating is None else (np.nan_to_num(operating, nan=1.0) > 0)
    problems: list = []
    table = attribute_annual(annual_ihs=annual, members=members, src_row=cubes["ihs_row"].values,
                             src_col=cubes["ihs_col"].values, lat=cubes["lat"].values, lon=cubes["lon"].values,
                             operating=op, years=years, ihs_ids=ihs_ids, decay_km=decay_km,
                             min_unique=min_unique, refine_max_sources=refine_max_sources, problems=problems)
    if "ihs_true_annual_mean" in cubes:
        rec = cubes["ihs_true_annual_mean"]
        rec_years = [int(y) for y in rec["year"].values]
        vals = rec.values
        table["ihs_true_annual_mean"] = [float(vals[k, rec_years.index(y)]) if y in rec_years else np.nan
                                         for k in range(n_ihs) for y in years]
    scores = attribution_scores(table)
    descriptions = {k: SCORE_DESCRIPTIONS[k] for k in scores}
    if sums is not None and "s_ihs" in sums:
        from . import intervals as iv
        from .split_intervals import split_fill_intervals, split_intervals

        settings = iv.interval_settings(intervals)
        split = None
        errors = fill_errors if settings["method"] == "auto" else None
        source_errors = None if errors is None else (fill_errors if source_fill_errors is None else source_fill_errors)
        city_pixels = bias_map = None
        if errors is not None:
            ihs_flat = areas["ihs_mask"].values.astype(bool).ravel()
            city_id = cubes["city_id"].values.ravel() if "city_id" in cubes else np.full(ihs_flat.size, -1)
            city_pixels = [np.flatnonzero((city_id == c) & ihs_flat) for c in range(layout.n_city)]
            if read_daily_ihs is not None and "ihs_count_year" in areas:
                count_years = [int(y) for y in areas["year"].values]
                count = areas["ihs_count_year"].values[[count_years.index(int(y)) for y in years]]
                year_index = np.searchsorted(np.asarray(years, dtype=np.int64), cal["year"].to_numpy())
                bias_map = iv.idle_bias_map(read_daily_ihs, count, year_index, settings)
            if problems:
                split = split_fill_intervals([p for p, _ in problems], [d for _, d in problems], source_errors,
                                                settings,
                                                n_sources=n_ihs, n_years=len(years), min_unique=min_unique)
        elif read_daily_ihs is not None and problems:
            pixels = np.unique(np.concatenate([p.years[y][1] for p, _ in problems for y in range(len(years))]))
            year_of_day = cal["year"].to_numpy()
            year_days = [np.flatnonzero(year_of_day == int(y)) for y in years]
            split = split_intervals([p for p, _ in problems], [d for _, d in problems], read_daily_ihs(pixels),
                                       pixels, year_days, settings, n_sources=n_ihs, min_unique=min_unique)
        table = iv.add_source_intervals(table, sums, cal, years, layout, settings, split=split, errors=source_errors,
                                        source_pixels=members, bias_map=bias_map)
        city = iv.city_intervals(sums, cal, years, layout, list(city_names), settings, errors=errors,
                                 city_pixels=city_pixels, bias_map=bias_map)
        area = None
        if "s_totp" in sums:
            ihs_pixels = np.flatnonzero(areas["ihs_mask"].values.astype(bool).ravel())
            area = iv.area_intervals(sums, cal, years, layout, settings, errors=errors, ihs_pixels=ihs_pixels,
                                     bias_map=bias_map)
            how_area = ("stage 3's fill error on its placements of the IHS mask, widened in quadrature by the idle "
                        "bias" if errors is not None else
                        "circular block bootstrap over days (per year only); day-to-day sampling only")
            writer.add("ihs_area_intervals", area,
                       f"The headline figures with their {100 * settings['level']:g} % intervals: IHS-related PM2.5 "
                       f"of all IHS areas and its share of their total PM2.5, per year and over all years (year 0) "
                       f"({how_area}; the share's interval is the mean's over the areas' observed total)",
                       index=False, digits=3)
        if not city.empty:
            how = ("stage 3's fill error on its placements of the IHS mask"
                   + (", scaled to the real areas' contrast in elevation and settlement density"
                      if source_fill_errors is not None and fill_errors is source_fill_errors else "")
                   + ", widened in quadrature by the idle bias "
                   "(`idle_bias`: the estimate on days none of the area's sources operated, where the truth is 0)"
                   if errors is not None else
                   f"circular block bootstrap over days, blocks of {settings['block_days']} days; day-to-day "
                   f"sampling only")
            writer.add("city_ihs_intervals", city,
                       f"Annual IHS-related PM2.5 of each city's IHS areas with its {100 * settings['level']:g} % "
                       f"interval ({how})", index=False, digits=3)
        table["interval"] = "fill_error" if errors is not None else "bootstrap"
        coverage = iv.coverage_scores(city, table, float(settings["level"]), area)
        scores.update(coverage)
        descriptions.update(iv.describe(coverage, float(settings["level"])))
    writer.add("ihs_attribution", table,
               "Per-source attribution inside shared radiation areas (beyond the paper): each source's own "
               "annual IHS-related PM2.5 over its area, from a non-negative fit of the annual pm25_ihs map on "
               "per-source footprints exp(−d/L) × operating years; the parts of every pixel add up to its "
               "estimate", note="; ".join(f"`{k}`: {v}" for k, v in COLUMN_DESCRIPTIONS.items()),
               index=False, digits=3)
    return table, scores, descriptions


def append_truth_scores(path, scores: dict, descriptions: dict) -> None:
    """Add rows to an existing ``truth_scores.csv`` (metric, value, description)."""
    from pathlib import Path

    path = Path(path)
    if not scores or not path.is_file():
        return
    table = pd.read_csv(path)
    table = table[~table["metric"].isin(list(scores))]
    extra = pd.DataFrame({"metric": list(scores), "value": [scores[k] for k in scores],
                          "description": [descriptions[k] for k in scores]})
    pd.concat([table, extra], ignore_index=True).to_csv(path, index=False)
