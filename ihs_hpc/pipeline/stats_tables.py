"""The statistics tables (CSV + ``tables.md``) and ``stats.json`` from the reduced sums and the map stores
(seed 000 §3; definitions in :mod:`ihs_hpc.stats.aggregate`)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..grid import Grid
from ..stats.aggregate import (DECEMBER_RULE, SEASONS, GroupLayout, box_stats, decline_pct, means_from_sums,
                               operating_decline, reduce_by, season_completeness, yoy_pct)
from ..stats.group_tests import describe, moran_test, mwu_test, pearson_test, trend_test
from ..stats.tables import TableWriter, city_year_table, correlation_table, trend_table
from .stats_format import finite_or_none as _f
from .stats_format import fmt_number as _num
from .stats_format import json_default as _json_default
from .stats_store import ALPHA, MAPS_STORE, MEAN_DEFINITION, SHARE_DEFINITION, SUM_STORE, TRENDS_STORE
from .stats_inputs import city_of_ihs, city_operating, count_operating, operating_flags, read_indicators
from .truth_scores import truth_scores

MWU_BASIS = ("per-pixel means of total PM2.5 (period mean, and each year's annual mean): "
             "background pixels vs IHS-area pixels, two-sided, continuity-corrected (scipy semantics)")


def build_tables(*, out_dir: Path, sums: dict, cal: pd.DataFrame, years: list[int], layout: GroupLayout, grid: Grid,
                 cubes, areas, maps, city_en, city_local, city_adcode, ihs_ids, ihs_names, truth_totals,
                 indicators, echo, attribution: dict | None = None, intervals: dict | None = None,
                 read_daily_ihs=None, fill_errors=None, source_fill_errors=None) -> dict:
    """All tables, ``tables.md`` and ``stats.json`` from the reduced sums and the map stores;
    ``read_daily_ihs``, ``fill_errors``, ``source_fill_errors``: the daily ``pm25_ihs`` reader and stage 3's
    fill error replicates of :func:`ihs_hpc.pipeline.attribution.write_attribution`."""
    n_city, n_ihs = layout.n_city, layout.n_ihs
    writer = TableWriter(out_dir, "Statistics of IHS-related PM2.5")
    has_oem = "s_oem" in sums
    has_truth = "s_true" in sums
    R, A, B = layout.REGION, layout.IHS_AREA, layout.BACKGROUND
    cities = np.arange(n_city)
    writer.text(
        f"Period {cal['date'].iloc[0]:%Y-%m-%d} – {cal['date'].iloc[-1]:%Y-%m-%d}, {len(cal)} days, "
        f"grid {grid.ny} × {grid.nx} cells of {grid.res:g}°. Concentrations in µg m⁻³.\n\n"
        f"* Means: {MEAN_DEFINITION}.\n* Contribution: {SHARE_DEFINITION}.\n* Seasons: {DECEMBER_RULE}.\n"
        f"* Mann–Whitney U: {MWU_BASIS}.\n* Trends: Mann–Kendall (α = {ALPHA}) and Sen's slope (per year) "
        f"of annual means.\n* Decline: (first − last) / first × 100; year-on-year change: "
        f"(v_y − v_(y−1)) / v_(y−1) × 100.")

    # ---- annual, region-wide
    _, by_year = reduce_by(sums, cal["year"].to_numpy(), order=years)
    ym = means_from_sums(by_year)
    n_days = cal.groupby("year").size().reindex(years).to_numpy()
    operating = operating_flags(cubes, years)
    n_operating = count_operating(operating) if operating is not None else np.full(len(years), np.nan)
    annual = pd.DataFrame({
        "year": years, "n_days": n_days,
        "pm25_region": ym["pm25"][R], "pm25_background": ym["pm25"][B], "pm25_ihs_area": ym["pm25"][A],
        "pm25_ihs": ym["pm25_ihs"][A],
    })
    if has_oem:
        annual["pm25_bl_oem_ihs_area"] = ym["pm25_bl_oem"][A]
    annual["share_pct"] = ym["share_pct"][A]
    # year-on-year changes and declines only between years in which some source of the areas operated
    any_operating = (np.nan_to_num(n_operating, nan=1.0) > 0) if operating is not None else None
    annual["pm25_ihs_yoy_pct"] = yoy_pct(annual["pm25_ihs"].to_numpy(), any_operating)
    annual["share_yoy_pct"] = yoy_pct(annual["share_pct"].to_numpy(), any_operating)
    if "negative_pct" in ym:
        annual["negative_pct"] = ym["negative_pct"][A]
    annual["n_operating_ihs"] = n_operating.astype(int) if np.isfinite(n_operating).all() else n_operating
    if has_truth:
        annual["pm25_ihs_true"] = ym["pm25_ihs_true"][A]
        annual["share_true_pct"] = ym["share_true_pct"][A]
        if "pm25_ihs_true_annual_mean" in cubes:
            recorded = cubes["pm25_ihs_true_annual_mean"].to_series()
            annual["pm25_ihs_true_scene"] = [float(recorded.get(y, np.nan)) for y in years]
    writer.add("annual", annual.set_index("year"),
               "Annual means: total PM2.5 (region, background, IHS areas), IHS-related PM2.5 and its contribution "
               "inside IHS areas (Fig. 7, Fig. 8a–b)")

    # ---- seasons
    season_index = season_completeness(cal)
    keys = list(zip(season_index["season_year"], season_index["season"]))
    _, by_season = reduce_by(sums, list(zip(cal["season_year"], cal["season"])), order=keys)
    sm = means_from_sums(by_season)
    seasonal = season_index.copy()
    seasonal["pm25_ihs_area"] = sm["pm25"][A]
    seasonal["pm25_ihs"] = sm["pm25_ihs"][A]
    seasonal["share_pct"] = sm["share_pct"][A]
    if has_truth:
        seasonal["pm25_ihs_true"] = sm["pm25_ihs_true"][A]
    writer.add("seasonal", seasonal,
               "Seasonal means inside IHS areas per season-year (Fig. 8c); December counts toward the next "
               "year's DJF", index=False)
    _, by_clim = reduce_by(sums, cal["season"].to_numpy(), order=list(SEASONS))
    cm = means_from_sums(by_clim)
    clim_rows, season_series = [], {}
    op_year = dict(zip(years, any_operating)) if any_operating is not None else {}
    for j, season in enumerate(SEASONS):
        sub = seasonal[(seasonal["season"] == season) & seasonal["complete"]]
        sub_op = sub[[bool(op_year.get(int(y), True)) for y in sub["season_year"]]] if len(sub) else sub
        season_series[f"IHS-related PM2.5, IHS areas, {season}"] = sub["pm25_ihs"].to_numpy()
        trend = trend_test(sub["pm25_ihs"].to_numpy(), alpha=ALPHA)
        row = {"season": season, "n_days": int((cal["season"] == season).sum()), "pm25_ihs": cm["pm25_ihs"][A][j],
               "share_pct": cm["share_pct"][A][j], "pm25_ihs_area": cm["pm25"][A][j],
               "first_complete": sub["season_year"].iloc[0] if len(sub) else np.nan,
               "last_complete": sub["season_year"].iloc[-1] if len(sub) else np.nan,
               "decline_pct": (float(decline_pct(sub_op["pm25_ihs"].iloc[0], sub_op["pm25_ihs"].iloc[-1]))
                               if len(sub_op) else np.nan),
               "sen_slope": trend["slope"], "mk_p": trend["p"], "mk_trend": trend["trend"]}
        clim_rows.append(row)
    writer.add("seasonal_summary", pd.DataFrame(clim_rows).set_index("season"),
               "Season means over the whole period and their change between the first and last complete season "
               "(Fig. 8c–d); trends over complete seasons only")

    # ---- monthly contributions and the paper's comparison windows (Table 4 shape)
    month_labels = list(zip(cal["year"], cal["month"]))
    month_keys, by_month = reduce_by(sums, month_labels)
    mm = means_from_sums(by_month)
    window_labels = [f"{y}.1–{y}.2" if m in (1, 2) else (f"{y}.7" if m == 7 else None)
                     for y, m in month_labels]
    window_keys = [w for w in dict.fromkeys(window_labels) if w is not None]
    _, by_window = reduce_by(sums, window_labels, order=window_keys)
    wm = means_from_sums(by_window)
    region_groups = [("All IHS areas", A)] + [(city_en[c], int(layout.city_ihs(c))) for c in range(n_city)]
    monthly_rows, window_rows = [], []
    for name, g in region_groups:
        for k, (y, m) in enumerate(month_keys):
            monthly_rows.append({"region": name, "year": int(y), "month": int(m), "pm25_ihs": mm["pm25_ihs"][g, k],
                                 "pm25": mm["pm25_paired"][g, k], "share_pct": mm["share_pct"][g, k]})
        for k, w in enumerate(window_keys):
            window_rows.append({"period": w, "region": name, "share_pct": wm["share_pct"][g, k],
                                "pm25_ihs": wm["pm25_ihs"][g, k], "pm25": wm["pm25_paired"][g, k]})
    pd.DataFrame(monthly_rows).to_csv(out_dir / "monthly.csv", index=False)
    writer.files["monthly"] = "monthly.csv"
    writer.text("## Monthly means\n\nFile: `monthly.csv` (IHS-related and total PM2.5 and the contribution, per month, "
                "for all IHS areas and the IHS areas of each city).")
    if window_rows:
        windows = pd.DataFrame(window_rows).set_index(["period", "region"])
        writer.add("contribution_windows", windows,
                   "Table 4 shape — contribution of IHS-related PM2.5 (%) in the comparison windows of the paper "
                   "(January–February and July of every year), IHS areas of each city")

    # ---- trends region-wide
    trend_series = {
        "IHS-related PM2.5, IHS areas, annual": annual["pm25_ihs"].to_numpy(),
        "IHS share (%), IHS areas, annual": annual["share_pct"].to_numpy(),
        "Total PM2.5, region, annual": annual["pm25_region"].to_numpy(),
        "Total PM2.5, IHS areas, annual": annual["pm25_ihs_area"].to_numpy(),
        "Total PM2.5, background, annual": annual["pm25_background"].to_numpy(),
        **season_series,
    }
    trends = trend_table(trend_series, alpha=ALPHA)
    writer.add("trends", trends.set_index("series"),
               "Mann–Kendall tests and Sen's slopes (per year) of annual and seasonal means", digits=4)

    # ---- cities (Table 2, Fig. 9b, 10)
    city_ids = cubes["city_id"].values.astype(np.int64) if "city_id" in cubes else np.full(grid.shape, -1)
    inside = areas["ihs_mask"].values.astype(bool)
    background = areas["background"].values.astype(bool)
    cell_area = grid.cell_area_km2()
    ihs_city = city_of_ihs(cubes, n_city)
    mean_ihs_map = maps["mean_pm25_ihs"].values
    # IHS-area pixels grouped by city once (one pass per map instead of one mask per city)
    area_idx = np.flatnonzero(inside.ravel())
    area_city = city_ids.ravel()[area_idx]
    order = np.argsort(area_city, kind="stable")
    area_idx = area_idx[order]
    bounds = np.searchsorted(area_city[order], np.arange(n_city + 1))

    def by_city(field):
        values = np.asarray(field).ravel()[area_idx]
        return [values[bounds[c]:bounds[c + 1]] for c in range(n_city)]

    period_sums = {k: v.sum(axis=1) for k, v in sums.items()}
    pm = means_from_sums(period_sums)
    headline_city = {}
    if n_city:
        gi, ga = layout.city_ihs(cities), layout.city(cities)
        operating_city = city_operating(operating, areas, city_ids, n_city)
        t2 = city_year_table(city_en, years, ym["pm25_ihs"][gi], alpha=ALPHA, operating=operating_city)
        writer.add("city_pm25_ihs_annual", t2,
                   "Table 2 — annual mean IHS-related PM2.5 (µg m⁻³) in the IHS areas of each city, decline "
                   "between the first and the last year in which a source of the city's areas operated (%), and "
                   "Mann–Kendall/Sen trend")
        writer.add("city_share_annual", city_year_table(city_en, years, ym["share_pct"][gi], alpha=ALPHA,
                                                        operating=operating_city),
                   "Annual contribution of IHS-related PM2.5 (%) in the IHS areas of each city (Fig. 10)")
        writer.add("city_pm25_annual", city_year_table(city_en, years, ym["pm25"][ga], alpha=ALPHA),
                   "Annual mean total PM2.5 (µg m⁻³) over all pixels of each city")
        n_pix = np.bincount(city_ids[city_ids >= 0].ravel(), minlength=n_city)[:n_city]
        in_city_area = np.bincount(city_ids[inside & (city_ids >= 0)].ravel(), minlength=n_city)[:n_city]
        km2 = np.bincount(city_ids[inside & (city_ids >= 0)].ravel(), weights=cell_area[inside & (city_ids >= 0)],
                          minlength=n_city)[:n_city]
        summary = pd.DataFrame({
            "city": city_en, "city_name": city_local, "adcode": city_adcode, "n_pixels": n_pix,
            "ihs_area_pixels": in_city_area, "ihs_area_km2": km2,
            "n_ihs": np.bincount(ihs_city[ihs_city >= 0], minlength=n_city)[:n_city] if n_ihs else 0,
            "pm25_city": pm["pm25"][ga], "pm25_ihs_area": pm["pm25"][gi], "pm25_ihs": pm["pm25_ihs"][gi],
            "share_pct": pm["share_pct"][gi],
        }).set_index("city")
        period_boxes = [box_stats(v) for v in by_city(mean_ihs_map)]
        for col, key in (("pixel_median", "median"), ("pixel_q1", "q1"), ("pixel_q3", "q3")):
            summary[col] = [b[key] for b in period_boxes]
        writer.add("city_summary", summary,
                   "Cities: period means of total PM2.5 (all pixels, IHS areas), IHS-related PM2.5 and contribution "
                   "in IHS areas, and the quartiles of the pixel period means (Fig. 9b)")
        pd.DataFrame({"city": city_en, "pm25": pm["pm25"][ga]}).to_csv(out_dir / "city_pm25.csv", index=False)
        order = np.argsort(-np.nan_to_num(pm["pm25_ihs"][gi], nan=-np.inf))
        headline_city = {"highest_pm25_ihs_city": city_en[order[0]],
                         "highest_pm25_ihs": _f(pm["pm25_ihs"][gi][order[0]])}

    # ---- box plots (Fig. 11): pixel annual means / period means of IHS-related PM2.5 in IHS areas
    rows = []
    periods = [(str(y), maps["annual_pm25_ihs"].isel(year=j).values) for j, y in enumerate(years)]
    periods.append(("all", mean_ihs_map))
    for label, field in periods:
        rows.append({"city": "All IHS areas", "period": label} | box_stats(field[inside]))
        for c, values in zip(cities, by_city(field)):
            rows.append({"city": city_en[c], "period": label} | box_stats(values))
    boxes = pd.DataFrame(rows)
    writer.add("city_boxplot", boxes,
               "Box-plot numbers of the pixel means of IHS-related PM2.5 in the IHS areas of each city, per year "
               "and over the period (Fig. 11; whiskers at 1.5 IQR)", index=False)

    # ---- Mann–Whitney U (Fig. 6b)
    mean_tot = maps["mean_pm25"].values
    mwu_rows = []
    for label, field in [("period mean", mean_tot)] + [(str(y), maps["annual_pm25"].isel(year=j).values)
                                                       for j, y in enumerate(years)]:
        bg, ia = describe(field[background]), describe(field[inside])
        row = {"basis": label} | mwu_test(field[background], field[inside])
        row |= {f"background_{k}": v for k, v in bg.items() if k != "n"}
        row |= {f"ihs_area_{k}": v for k, v in ia.items() if k != "n"}
        mwu_rows.append(row)
    mwu = pd.DataFrame(mwu_rows).set_index("basis")
    writer.add("mwu", mwu, "Mann–Whitney U test of per-pixel mean total PM2.5: background vs IHS-area pixels "
               "(Fig. 6b); u_eq11 is eq. 11 with R1 the background rank sum", digits=4)

    # ---- single IHS areas (She County case study, §3.3 / Fig. 12)
    ihs_summary = pd.DataFrame()
    if n_ihs:
        gi = layout.ihs(np.arange(n_ihs))
        daily = means_from_sums({k: v[gi] for k, v in sums.items()})
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                dmin, dmax = np.nanmin(daily["share_pct"], axis=1), np.nanmax(daily["share_pct"], axis=1)
        offsets = areas["member_offset"].values
        ihs_op = (np.nan_to_num(operating, nan=1.0) > 0) if operating is not None else None
        ihs_table = city_year_table(ihs_ids, years, ym["pm25_ihs"][gi], alpha=ALPHA, index_name="ihs_id",
                                    operating=ihs_op)
        with np.errstate(invalid="ignore"):
            over_100 = (daily["share_pct"] > 100.0).sum(axis=1)
            negative_days = (daily["pm25_ihs"] < 0.0).sum(axis=1)
        ihs_summary = pd.DataFrame({
            "ihs_id": ihs_ids, "ihs_name": ihs_names,
            "category": [str(v) for v in cubes["ihs_category"].values] if "ihs_category" in cubes else "",
            "city": [city_en[c] if 0 <= c < n_city else "" for c in ihs_city],
            "lat": cubes["ihs_lat"].values if "ihs_lat" in cubes else np.nan,
            "lon": cubes["ihs_lon"].values if "ihs_lon" in cubes else np.nan,
            "area_km2": areas["ihs_area_km2"].values if "ihs_area_km2" in areas else np.nan,
            "n_pixels": np.diff(offsets),
            "years_operating": np.nansum(operating, axis=1).astype(int) if operating is not None else np.nan,
            "pm25_ihs": pm["pm25_ihs"][gi], "pm25": pm["pm25_paired"][gi], "share_pct": pm["share_pct"][gi],
            "daily_share_min_pct": dmin, "daily_share_max_pct": dmax,
            "days_share_over_100": over_100, "days_negative": negative_days,
            "negative_pct": pm["negative_pct"][gi] if "negative_pct" in pm else np.nan,
        }).set_index("ihs_id")
        for col in ihs_table.columns:
            if not isinstance(col, (int, np.integer)) and col != "mean":
                ihs_summary[col] = ihs_table[col].to_numpy()
        writer.add("ihs_summary", ihs_summary,
                   "Single IHS radiation areas (§3.3, Fig. 12): period mean IHS-related PM2.5, contribution, range of "
                   "the daily contribution, days on which the area's daily contribution exceeds 100 % or its "
                   "daily mean is negative, the share of negative pixel-days (kept, not clipped), decline "
                   "between the first and last operating year and trend of the annual means")
        long_rows = []
        for k, i in enumerate(ihs_ids):
            yoy = yoy_pct(ym["pm25_ihs"][gi[k]], None if ihs_op is None else ihs_op[k])
            for j, y in enumerate(years):
                row = {"ihs_id": i, "year": y,
                       "operating": (bool(operating[k, j])
                                     if operating is not None and np.isfinite(operating[k, j]) else None),
                       "pm25_ihs": ym["pm25_ihs"][gi[k], j], "pm25": ym["pm25_paired"][gi[k], j],
                       "share_pct": ym["share_pct"][gi[k], j], "pm25_ihs_yoy_pct": yoy[j]}
                if has_truth:
                    row["pm25_ihs_true"] = ym["pm25_ihs_true"][gi[k], j]
                long_rows.append(row)
        ihs_annual = pd.DataFrame(long_rows)
        if has_truth and "ihs_true_annual_mean" in cubes:
            rec = cubes["ihs_true_annual_mean"]
            rec_years = [int(y) for y in rec["year"].values]
            vals = rec.values
            ihs_annual["ihs_true_annual_mean_scene"] = [
                float(vals[k, rec_years.index(y)]) if y in rec_years else np.nan
                for k in range(n_ihs) for y in years]
        ihs_annual.to_csv(out_dir / "ihs_annual.csv", index=False)
        writer.files["ihs_annual"] = "ihs_annual.csv"
        writer.text("## Single IHS areas, year by year\n\nFile: `ihs_annual.csv` (one row per IHS and year: "
                    "operating flag, annual mean IHS-related and total PM2.5, contribution, year-on-year change).")

    # ---- Pearson (Fig. 7c, Table 3)
    corr_rows = []
    ann_all = annual["pm25_ihs"].to_numpy()
    if operating is not None:
        corr_rows.append({"indicator": "Operational IHSs", "region": "All"} | pearson_test(n_operating, ann_all))
        for c in cities:
            count = count_operating(operating[ihs_city == c])
            corr_rows.append({"indicator": "Operational IHSs", "region": city_en[c]}
                             | pearson_test(count, ym["pm25_ihs"][layout.city_ihs(c)]))
    if indicators:
        known = {}
        for c in cities:
            for key in (city_en[c], city_local[c], city_adcode[c]):
                if key is not None and str(key) != "nan":
                    known[str(key).strip().lower()] = city_en[c]
        ind = read_indicators(indicators, known)
        for (name, region), sub in ind.groupby(["indicator", "region"], sort=False):
            target = ann_all if region == "All" else ym["pm25_ihs"][layout.city_ihs(city_en.index(region))]
            by_year = dict(zip(sub["year"], sub["value"]))
            x = np.array([by_year.get(y, np.nan) for y in years], dtype=float)
            corr_rows.append({"indicator": name, "region": region} | pearson_test(x, target))
        echo(f"  indicators: {ind['indicator'].nunique()} from {indicators}")
    corr = pd.DataFrame(corr_rows, columns=["indicator", "region", "n", "r", "p"])
    writer.add("correlation", corr, "Pearson correlation of annual IHS-related PM2.5 with indicators (long form)",
               index=False, digits=4)
    if not corr.empty:
        writer.add("correlation_table", correlation_table(corr),
                   "Table 3 — Pearson r between annual IHS-related PM2.5 and indicators (regions as columns)")

    # ---- Moran's I of the mean IHS-related map
    moran_rows = []
    if np.isfinite(mean_ihs_map).sum() >= 4:
        moran_rows.append({"variable": "mean IHS-related PM2.5 (IHS-area pixels)"}
                          | moran_test(mean_ihs_map, contiguity="queen", transform="r"))
    moran = pd.DataFrame(moran_rows)
    writer.add("moran", moran, "Global Moran's I of the period-mean IHS-related PM2.5 map (queen contiguity, "
               "row-standardised weights, NaN cells outside IHS areas left out; §3.2.2)", index=False, digits=4)

    # ---- truth scores
    # ---- per-source attribution inside shared areas (beyond the paper; pipeline/attribution.py)
    from .attribution import append_truth_scores, write_attribution

    _, attribution_truth, attribution_text = write_attribution(
        writer, cubes=cubes, areas=areas, maps=maps, years=years, operating=operating, ihs_ids=ihs_ids,
        **(attribution or {}), sums=sums, cal=cal, layout=layout, city_names=city_en, intervals=intervals,
        read_daily_ihs=read_daily_ihs, fill_errors=fill_errors, source_fill_errors=source_fill_errors)

    truth = {}
    if has_truth:
        truth = truth_scores(sums, layout, maps, inside, truth_totals, ym, years, writer, cal=cal)
        append_truth_scores(out_dir / "truth_scores.csv", attribution_truth, attribution_text)
        truth.update({k: _f(v) for k, v in attribution_truth.items()})

    md = writer.write_markdown()
    period_trend = trends.set_index("series").loc["IHS-related PM2.5, IHS areas, annual"]
    headline = {
        "period": [str(cal["date"].iloc[0].date()), str(cal["date"].iloc[-1].date())],
        "years": years, "n_days": int(len(cal)), "n_cities": n_city, "n_ihs": n_ihs,
        "ihs_area_pixels": int(inside.sum()), "background_pixels": int(background.sum()),
        "pm25_region": _f(pm["pm25"][R]), "pm25_background": _f(pm["pm25"][B]), "pm25_ihs_area": _f(pm["pm25"][A]),
        "pm25_ihs": _f(pm["pm25_ihs"][A]), "share_pct": _f(pm["share_pct"][A]),
        "pm25_ihs_decline_pct": _f(operating_decline(annual["pm25_ihs"].to_numpy(), any_operating)[0]),
        "negative_pct": _f(pm["negative_pct"][A]) if "negative_pct" in pm else None,
        "negative_pixel_days": int(period_sums["n_neg"][A]) if "n_neg" in period_sums else None,
        "ihs_days_share_over_100": int(ihs_summary["days_share_over_100"].sum()) if not ihs_summary.empty else 0,
        "pm25_ihs_trend": {"trend": period_trend["trend"], "z": _f(period_trend["z"]), "p": _f(period_trend["p"]),
                           "sen_slope": _f(period_trend["slope"])},
        "mwu_p": _f(mwu["p"].iloc[0]),
        "pearson_operating_r": _f(corr["r"].iloc[0]) if not corr.empty else None,
        "morans_i": _f(moran["I"].iloc[0]) if not moran.empty else None,
        **headline_city,
    }
    if truth:
        headline["truth"] = truth
    doc = {
        "definitions": {"mean": MEAN_DEFINITION, "share": SHARE_DEFINITION, "seasons": DECEMBER_RULE,
                        "mwu": MWU_BASIS, "alpha": ALPHA, "units": "ug m-3 (shares in %)",
                        "decline": "(first - last) / first * 100 between the first and last year in which the "
                                   "source (or any source of the area) operated",
                        "yoy": "(v_y - v_(y-1)) / v_(y-1) * 100, only when both years are operating years",
                        "negative": "IHS-related values below 0 are kept (estimation noise) and counted"},
        "headline": headline,
        "files": {"markdown": md.name, **writer.files, "maps": MAPS_STORE, "trend_maps": TRENDS_STORE,
                  "series": SUM_STORE, "city_pm25": "city_pm25.csv"},
    }
    (out_dir / "stats.json").write_text(json.dumps(doc, indent=2, default=_json_default))
    echo(f"  IHS-related PM2.5 {_num(headline['pm25_ihs'])} µg/m³ in IHS areas, contribution "
         f"{_num(headline['share_pct'], 1)} %, {len(writer.files)} tables in {out_dir}")
    return {k: headline[k] for k in ("pm25_ihs", "share_pct", "pm25_ihs_area", "pm25_background", "mwu_p",
                                     "morans_i")} | ({"truth": truth} if truth else {})
