"""The report section of the per-source attribution (beyond the paper; issue 13): ``stats/ihs_attribution.csv``
as tables with intervals, and a case study of sources that share one radiation area.

The case-study cluster (sources whose areas overlap, :func:`~ihs_hpc.ops.attribution.overlap_clusters`)
is, among clusters of two or more sources where a source starts or stops operating within the record
(the paper's She County case: two sources, one starting in 2017), one where a source starts if any,
then the one with the fewest sources, then the highest area mean; without such a cluster, the largest
shared cluster.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ...report.attribution_figures import plot_source_cluster
from ...report.html import Section
from ..attribution import ATTRIBUTION_CSV
from .context import ReportContext

#: columns of the per-source year-by-year tables, as in ``ihs_attribution.csv``
TABLE_COLUMNS = ("operating", "method", "pm25_ihs_own", "pm25_ihs_own_lower", "pm25_ihs_own_upper",
                 "share_of_area_pct", "pm25_ihs_area", "pm25_ihs_area_lower", "pm25_ihs_area_upper",
                 "ihs_true_annual_mean")


def operating_changes(table: pd.DataFrame) -> pd.DataFrame:
    """Per source: ``starts`` / ``stops`` (it begins / ceases operating within the record)."""
    out = {}
    for ihs_id, rows in table.sort_values("year").groupby("ihs_id", sort=False):
        op = rows["operating"].astype(bool).to_numpy()
        step = np.diff(op.astype(int))
        out[ihs_id] = {"starts": bool((step > 0).any()), "stops": bool((step < 0).any())}
    return pd.DataFrame.from_dict(out, orient="index")


def case_cluster(table: pd.DataFrame) -> int | None:
    """The cluster of the case study (module docstring); None when no source shares its area."""
    shared = table[table["shares_area"].astype(bool)]
    if shared.empty:
        return None
    change = operating_changes(shared)
    per_source = shared.groupby("ihs_id").agg(cluster=("cluster", "first"), size=("cluster_size", "first"),
                                              area=("pm25_ihs_area", "mean")).join(change)
    clusters = per_source.groupby("cluster").agg(size=("size", "first"), starts=("starts", "any"),
                                                 stops=("stops", "any"), area=("area", "mean"))
    changing = clusters[clusters["starts"] | clusters["stops"]]
    if len(changing):
        ranked = changing.assign(no_start=~changing["starts"], neg_area=-changing["area"])
        return int(ranked.sort_values(["no_start", "size", "neg_area"]).index[0])
    return int(clusters.sort_values(["size", "area"], ascending=False).index[0])


def source_table(table: pd.DataFrame, ihs_id: str) -> pd.DataFrame:
    """One source's year-by-year rows of ``ihs_attribution.csv`` (the :data:`TABLE_COLUMNS` present)."""
    rows = table[table["ihs_id"] == ihs_id].sort_values("year").set_index("year")
    return rows[[c for c in TABLE_COLUMNS if c in rows]]


def source_summary(table: pd.DataFrame, names: dict) -> pd.DataFrame:
    """One row per source: its cluster, operating years and the means of its operating years."""
    rows = []
    for ihs_id, g in table.sort_values("year").groupby("ihs_id"):
        on = g[g["operating"].astype(bool)]
        years = on["year"].to_numpy()
        row = {"ihs_id": ihs_id, "name": names.get(ihs_id, ""), "cluster": int(g["cluster"].iloc[0]),
               "cluster_size": int(g["cluster_size"].iloc[0]),
               "operating_years": f"{years.min()}–{years.max()}" if years.size else "none",
               "methods": ", ".join(sorted(set(on["method"].astype(str)))),
               "pm25_ihs_own_mean": on["pm25_ihs_own"].mean(), "share_of_area_pct_mean": on["share_of_area_pct"].mean()}
        if "ihs_true_annual_mean" in g:
            row["ihs_true_annual_mean_mean"] = on["ihs_true_annual_mean"].mean()
        rows.append(row)
    return pd.DataFrame(rows).set_index("ihs_id")


def cluster_area_total(ctx: ReportContext, indices, years) -> np.ndarray:
    """Annual mean IHS-related PM2.5 over the union of the radiation areas of ``indices`` (all sources)."""
    pixels = np.unique(np.concatenate([ctx.members(int(i)) for i in indices]))
    maps = ctx.maps
    map_years = [int(y) for y in maps["year"].values]
    annual = maps["annual_pm25_ihs"].values.reshape(len(map_years), -1)
    out = np.full(len(years), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for k, y in enumerate(years):
            if int(y) in map_years:
                out[k] = np.nanmean(annual[map_years.index(int(y)), pixels])
    return out


def coverage_note(ctx: ReportContext, level: float) -> str:
    """``" (coverage of the truth on this run: …)"`` from ``truth_scores.csv``; empty without it."""
    truth = ctx.csv("truth_scores")
    tag = f"coverage{int(round(100 * level))}_source_annual"
    if truth is None or tag not in set(truth["metric"]):
        return ""
    value = float(truth.loc[truth["metric"] == tag, "value"].iloc[0])
    return f" (their coverage of the synthetic truth on this run, `{tag}`: {value:.2f})"


def attribution_section(ctx: ReportContext) -> Section | None:
    """Per-source tables with intervals and the multi-source case study (None without the CSV)."""
    table = ctx.csv(ATTRIBUTION_CSV.removesuffix(".csv"), dtype={"ihs_id": str})
    if table is None or table.empty:
        return None
    level = float(ctx.config.get("stats.intervals.level", 0.9))
    ids = [str(v) for v in ctx.cubes["ihs_id"].values]
    names = ({i: str(n) for i, n in zip(ids, ctx.cubes["ihs_name"].values)} if "ihs_name" in ctx.cubes else {})
    methods = table.loc[table["operating"].astype(bool), "method"].value_counts()
    if "interval" in table and (table["interval"] == "fill_error").any():
        scaled = str(ctx.config.get("stats.intervals.scale_by_contrast", "sources")) != "none"
        intervals = (f"lower/upper: the {100 * level:g} % interval of stage 3's fill error, measured on the IHS "
                     "mask moved into the background"
                     + (" and scaled to the real areas' contrast in elevation and settlement density (a town or a "
                        "valley floor under an area, which the fill sees only from its edge)" if scaled else "")
                     + " (a source sharing its area: the spread of its split of the "
                     "annual map plus each placement's error map), widened on one side by the idle bias (the "
                     "estimate where the area's sources were all idle and the truth is 0) — what the fill got "
                     "wrong, as far as the placements and the idle days see it")
    else:
        intervals = (f"lower/upper: the {100 * level:g} % bootstrap interval over days (a source sharing its area: "
                     "the spread of its split of the bootstrap-replicate annual maps) — day-to-day sampling, not "
                     "the systematic error of the background fill")
    s = Section("Per-source attribution",
                "Beyond the paper, which cannot split IHS-related PM2.5 among sources whose radiation areas "
                "overlap: each year's IHS-related PM2.5 map is split among the operating sources of every cluster "
                "of overlapping areas by a non-negative fit on per-source footprints exp(−d/L); the parts of every "
                "pixel add up to its estimate. `pm25_ihs_own` is a source's own contribution averaged over its "
                "radiation area (µg m⁻³), `share_of_area_pct` its share of the area's IHS-related PM2.5; "
                + intervals + coverage_note(ctx, level) + ". `method`: alone (no other "
                "source in the area), nnls (fitted), equal_strength (the sources cannot be told apart: split "
                "with equal strengths, flagged), not_operating. Operating source-years by method: "
                + ", ".join(f"{k} {v}" for k, v in methods.items()) + ". All rows: `../stats/ihs_attribution.csv`.")
    cluster = case_cluster(table)
    if cluster is not None:
        in_cluster = table[table["cluster"] == cluster]
        members = list(dict.fromkeys(in_cluster["ihs_id"]))
        change = operating_changes(in_cluster)
        years = np.sort(in_cluster["year"].unique())
        indices = [ids.index(i) for i in members]
        total = cluster_area_total(ctx, indices, years)
        sources = {}
        for ihs_id in members:
            t = source_table(table, ihs_id).reindex(years)
            sources[ihs_id] = {"own": t["pm25_ihs_own"].to_numpy(float), "lower": t["pm25_ihs_own_lower"].to_numpy(float),
                               "upper": t["pm25_ihs_own_upper"].to_numpy(float),
                               "share": t["share_of_area_pct"].to_numpy(float),
                               "truth": t["ihs_true_annual_mean"].to_numpy(float)
                               if "ihs_true_annual_mean" in t else None}
        pixels = np.unique(np.concatenate([ctx.members(i) for i in indices]))
        rows, cols, area = ctx.window(pixels)
        field = np.where(area, ctx.maps["mean_pm25_ihs"].values, np.nan)[rows, cols]
        sub = ctx.frame.window(rows, cols)
        points = None if ctx.points is None else (ctx.points[0][indices], ctx.points[1][indices])
        events = [f"{i} {'starts' if change.loc[i, 'starts'] else ''}{' and ' if change.loc[i].all() else ''}"
                  f"{'stops' if change.loc[i, 'stops'] else ''}".strip() for i in members if change.loc[i].any()]
        title = f"Sources sharing one radiation area: {', '.join(members)}"
        s.figures.append((ctx.figure("attribution_case", "panels", plot_source_cluster, sub, field,
                                     area[rows, cols], points, members, years, sources, total, title=title,
                                     level=level),
                          f"Case study (cluster {cluster}, {len(members)} sources"
                          + (f"; {'; '.join(events)} operating within the record" if events else "")
                          + f"): annual own contribution of each source with its {100 * level:g} % interval band, "
                            "the truth where known (×) and the area's total IHS-related PM2.5."))
        s.tables.append((f"Case study: the shared area's total IHS-related PM2.5 (cluster {cluster}, all sources)",
                         pd.DataFrame({"year": years, "pm25_ihs_area_total": total}).set_index("year")))
        for ihs_id in members:
            label = f"{names[ihs_id]} ({ihs_id})" if ihs_id in names else ihs_id
            s.tables.append((f"Case study: {label}, year by year", source_table(table, ihs_id)))
    s.tables.append(("Every source: operating years and means over them (intervals per year below)",
                     source_summary(table, names)))
    full = table.sort_values(["ihs_id", "year"]).set_index(["ihs_id", "year"])
    s.tables.append(("Every source, year by year", full[["cluster"] + [c for c in TABLE_COLUMNS if c in full]]))
    return s
