"""The report stage: PNG figures and ``RUN/report/index.html`` + ``report.md`` from ``RUN/stats/``.

Needs the statistics stage's outputs (tables, ``maps.zarr``, ``trend_maps.zarr``, ``series.zarr``)
and reads the cities and IHS points from the input cubes and the IHS areas from ``stage1.zarr``. When
``RUN/allocation/lorenz_curves.png`` exists (the allocation of seed 003), it is copied in and shown.

Figures (``report/figures/``; sizes fixed by :data:`ihs_hpc.report.figures.SIZES` at
:data:`~ihs_hpc.report.figures.DPI`): mean total PM2.5 map, mean IHS-related map with the IHS
points, contribution map, background (other sources) map, trend maps, annual and seasonal series,
daily IHS-area series, city box plots and city annual lines, correlation with the number of operating
IHS, one single IHS area (the She County case-study shape) and, for synthetic scenes, estimate vs truth.
The case-study IHS is ``report.case_ihs`` when the configuration has it (an ``ihs_id`` or an index),
else the IHS with the highest period-mean IHS-related PM2.5.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import RunConfig
from ..io.cube import open_store
from ..report import figures as F
from ..report.html import Section, write_html, write_markdown
from ..report.webmap import write_run_map
from ..stats.aggregate import DECEMBER_RULE, means_from_sums
from ..stats.group_tests import trend_test
from .inputs import input_store
from .stats import MAPS_STORE, MWU_BASIS, SHARE_DEFINITION, SUM_STORE, TRENDS_STORE, load_sums


def _csv(stats_dir: Path, name: str, **kw) -> pd.DataFrame | None:
    path = stats_dir / f"{name}.csv"
    return pd.read_csv(path, **kw) if path.is_file() else None


def data_quality(config: RunConfig) -> pd.DataFrame | None:
    """Counts of gaps, fills and implausible values recorded by ingest, prep and stage 2 (None: no stores)."""
    import zarr

    from .run import store_path

    rows = []

    def attrs(path):
        try:
            return dict(zarr.open_group(path, mode="r").attrs)
        except Exception:  # noqa: BLE001 - a missing store just has nothing to report
            return {}

    cubes = attrs(input_store(config))
    for var, n in json.loads(cubes.get("ihs_gap_days", "{}")).items():
        rows.append(("input", f"days without {var} data (tolerated gaps)", n))
    for var, e in json.loads(cubes.get("ihs_plausibility", "{}")).items():
        rows.append(("input", f"implausible {var} values set to missing (outside {e['range'][0]:g}..{e['range'][1]:g} "
                              f"{e['units']}; {e['files']} files)", e["values"]))
    if config["prep.enabled"]:
        for key, n in json.loads(attrs(store_path(config, "prep")).get("ihs_fills", "{}")).items():
            rows.append(("prep", key.replace("_", " "), n))
    fills = json.loads(attrs(store_path(config, "stage2")).get("ihs_fills", "{}"))
    for var, n in fills.get("met_time_filled_values", {}).items():
        rows.append(("stage2", f"{var} values filled along time", n))
    stats_json = config.run_dir / "stats" / "stats.json"
    if stats_json.is_file():
        head = json.loads(stats_json.read_text()).get("headline", {})
        if head.get("negative_pixel_days") is not None:
            rows.append(("stats", f"IHS-area pixel-days with a negative IHS-related estimate, kept as they are "
                                  f"({head.get('negative_pct') or 0:.2f} %)", head["negative_pixel_days"]))
        if head.get("ihs_days_share_over_100") is not None:
            rows.append(("stats", "single-IHS-area days with a contribution above 100 % (ihs_summary.csv)",
                         head["ihs_days_share_over_100"]))
    if not rows:
        return None
    return pd.DataFrame(rows, columns=["stage", "what", "count"]).set_index(["stage", "what"])


def truth_matrix_row(config: RunConfig, truth: pd.DataFrame) -> pd.DataFrame:
    """This run's row of the score matrix (``benchmarks/bench_truth_matrix.py``), judged against the bounds."""
    from ..synth.variants import SceneOptions
    from ..validate import bounds_text, failures, matrix_row

    row = matrix_row(dict(zip(truth["metric"], truth["value"])))
    bad = failures(row)
    variant = (SceneOptions.from_mapping(config["input.synthetic"]).set()
               if config["input.kind"] == "synthetic" else {})
    head = {"scene": (f"{config['input.synthetic.preset']} seed {config['input.synthetic.seed']}"
                      + (f" {variant}" if variant else "") if config["input.kind"] == "synthetic" else "input store"),
            "met_fit": config["stage2.met_fit"], "outliers": config["prep.outliers"]}
    verdict = {"within bounds": "yes" if not bad else "no: " + ", ".join(bad), "bounds": bounds_text()}
    return pd.DataFrame([head | row | verdict]).set_index("scene")


def _case_index(config: RunConfig, ihs_summary: pd.DataFrame) -> int | None:
    if ihs_summary is None or ihs_summary.empty:
        return None
    wanted = config.get("report.case_ihs")
    ids = ihs_summary["ihs_id"].astype(str).tolist()
    if wanted is not None:
        if str(wanted) in ids:
            return ids.index(str(wanted))
        if isinstance(wanted, int) and 0 <= wanted < len(ids):
            return wanted
        raise ValueError(f"report.case_ihs = {wanted!r} is neither an ihs_id nor an index of this run")
    values = ihs_summary["pm25_ihs"].to_numpy(dtype=float)
    if not np.isfinite(values).any():
        return None
    return int(np.nanargmax(values))


def run_report(config: RunConfig, client, echo) -> dict:
    """Draw the figures and write ``RUN/report/index.html`` and ``report.md``; return what was written."""
    from .run import store_path

    if not config.get("report.enabled", True):
        echo("  report.enabled is false — skipped")
        return {"enabled": False}
    run_dir = config.run_dir
    stats_dir = run_dir / "stats"
    if not (stats_dir / "stats.json").is_file():
        raise ValueError(f"{stats_dir}/stats.json not found; run the stats stage (`ihs stats`) first")
    doc = json.loads((stats_dir / "stats.json").read_text())
    headline = doc["headline"]
    from .plan import begin_output_dir, finish_output_dir

    out = begin_output_dir(config, "report")
    fig_dir = out / "figures"
    if fig_dir.exists():
        shutil.rmtree(fig_dir)
    fig_dir.mkdir(parents=True)

    cubes = open_store(input_store(config))
    areas = open_store(store_path(config, "stage1"))
    maps = open_store(stats_dir / MAPS_STORE)
    trends = open_store(stats_dir / TRENDS_STORE)
    sums, series = load_sums(stats_dir / SUM_STORE)
    inside = areas["ihs_mask"].values.astype(bool)
    city_en = [str(v) for v in cubes["city_name_en"].values] if "city_name_en" in cubes else []
    frame = F.MapFrame(maps["lat"].values, maps["lon"].values,
                       cubes["city_id"].values if "city_id" in cubes else None, city_en)
    points = ((cubes["ihs_lat"].values, cubes["ihs_lon"].values) if "ihs_lat" in cubes else None)

    made: dict[str, str] = {}  # file name -> size kind

    def fig(file_stem: str, kind: str, draw, *args, **kw) -> str:
        path = fig_dir / f"{file_stem}.png"
        draw(*args, path=path, **kw)
        made[path.name] = kind
        return f"figures/{path.name}"

    annual = _csv(stats_dir, "annual")
    seasonal = _csv(stats_dir, "seasonal")
    sections: list[Section] = []

    # --- overview maps (Fig. 6a, 7a, 7d, 9a)
    s = Section("PM2.5 and IHS-related PM2.5 maps",
                "Period means over every day of the run. IHS radiation areas are outlined; triangles mark the IHS.")
    s.figures.append((fig("map_mean_pm25", "map", F.plot_map, frame, maps["mean_pm25"].values,
                          title="Mean total PM$_{2.5}$", cmap="viridis", outline=inside),
                      "Mean total PM2.5 (µg m⁻³) with the IHS radiation areas outlined (Fig. 6a)."))
    s.figures.append((fig("map_mean_pm25_ihs", "map", F.plot_map, frame, maps["mean_pm25_ihs"].values,
                          title="Mean IHS-related PM$_{2.5}$ in IHS radiation areas", cmap="YlOrRd", outline=inside,
                          points=points),
                      "Mean IHS-related PM2.5 (µg m⁻³) inside the IHS radiation areas, with the IHS points "
                      "(Fig. 9a)."))
    s.figures.append((fig("map_share", "map", F.plot_map, frame, maps["share_pct"].values,
                          title="Contribution of IHS-related PM$_{2.5}$ to total PM$_{2.5}$", cmap="magma_r",
                          label="Contribution (%)", outline=inside, points=points),
                      "Contribution (%) of IHS-related PM2.5 to total PM2.5 per pixel (Fig. 7d)."))
    if "mean_pm25_bl_oem" in maps:
        s.figures.append((fig("map_background", "map", F.plot_map, frame, maps["mean_pm25_bl_oem"].values,
                              title="Mean PM$_{2.5}$ from other sources (pm25_bl_oem)", cmap="viridis", outline=inside),
                          "Mean PM2.5 from meteorology-removed other sources, background filled into IHS areas "
                          "(Fig. 7a)."))
    s.tables.append(("Headline numbers", pd.DataFrame({
        "quantity": ["Total PM2.5, region", "Total PM2.5, background", "Total PM2.5, IHS areas",
                     "IHS-related PM2.5, IHS areas", "Contribution in IHS areas (%)",
                     "Mann–Whitney U p (background vs IHS areas)", "Moran's I of mean IHS-related PM2.5"],
        "value": [headline.get("pm25_region"), headline.get("pm25_background"), headline.get("pm25_ihs_area"),
                  headline.get("pm25_ihs"), headline.get("share_pct"), headline.get("mwu_p"), headline.get("morans_i")],
    }).set_index("quantity")))
    mwu = _csv(stats_dir, "mwu")
    if mwu is not None:
        s.tables.append(("Mann–Whitney U test (" + MWU_BASIS + ")", mwu.set_index("basis")))
    moran = _csv(stats_dir, "moran")
    if moran is not None and not moran.empty:
        s.tables.append(("Moran's I (queen contiguity)", moran))
    sections.append(s)

    # --- time series (Fig. 7b, 8)
    s = Section("Temporal variation", f"Seasons: {DECEMBER_RULE}. Contribution: {SHARE_DEFINITION}.")
    if annual is not None:
        s.figures.append((fig("series_annual", "panels", F.plot_annual, annual),
                          "Annual means and year-on-year change (Fig. 7b, 8a–b)."))
    if seasonal is not None:
        s.figures.append((fig("series_seasonal", "series", F.plot_seasonal, seasonal),
                          "Seasonal mean IHS-related PM2.5 per season-year (Fig. 8c)."))
    kinds = np.array([str(v) for v in series["group_kind"].values])
    area_group = int(np.flatnonzero(kinds == "ihs_area")[0])
    daily = means_from_sums({k: v[area_group] for k, v in sums.items()})
    lines = {"IHS-related PM$_{2.5}$": daily["pm25_ihs"]}
    if "pm25_bl_oem" in daily:
        lines["Other sources (bl_oem)"] = daily["pm25_bl_oem"]
    s.figures.append((fig("series_daily", "series", F.plot_daily, series["time"].values, lines,
                          title="Daily mean PM$_{2.5}$ components in IHS radiation areas"),
                      "Daily IHS-area means with 30-day running means (Fig. 7b)."))
    if annual is not None:
        s.tables.append(("Annual means", annual.set_index("year")))
    for name, caption in (("seasonal_summary", "Seasons over the whole period"), ("trends", "Trend tests")):
        df = _csv(stats_dir, name)
        if df is not None:
            s.tables.append((caption, df.set_index(df.columns[0])))
    sections.append(s)

    # --- trend maps
    s = Section("Per-pixel trends", "Mann–Kendall test and Sen's slope of each pixel's annual means.")
    if "pm25_ihs_sen_slope" in trends:
        s.figures.append((fig("map_trend_pm25_ihs", "wide", F.plot_trend_maps, frame,
                              trends["pm25_ihs_sen_slope"].values, trends["pm25_ihs_mk_z"].values,
                              trends["pm25_ihs_mk_p"].values, outline=inside),
                          "Trend of annual-mean IHS-related PM2.5 (IHS areas)."))
        s.figures.append((fig("map_trend_pm25", "wide", F.plot_trend_maps, frame, trends["pm25_sen_slope"].values,
                              trends["pm25_mk_z"].values, trends["pm25_mk_p"].values, what="total PM$_{2.5}$",
                              outline=inside),
                          "Trend of annual-mean total PM2.5 (all pixels)."))
    sections.append(s)

    # --- cities (Table 2, Fig. 9b–11)
    t2 = _csv(stats_dir, "city_pm25_ihs_annual")
    if t2 is not None and len(t2):
        s = Section("Cities", "City values are over the IHS radiation areas inside each city.")
        t2 = t2.set_index("city")
        share = _csv(stats_dir, "city_share_annual").set_index("city")
        years = [c for c in t2.columns if c.isdigit()]
        s.figures.append((fig("city_annual", "wide", F.plot_city_annual, [int(y) for y in years], list(t2.index),
                              t2[years].to_numpy(float), share[years].to_numpy(float)),
                          "Annual IHS-related PM2.5 and contribution per city (Fig. 10)."))
        boxes = _csv(stats_dir, "city_boxplot", dtype={"period": str})
        periods = [years[0], years[len(years) // 2], years[-1], "all"] if len(years) > 2 else years + ["all"]
        periods = list(dict.fromkeys(periods))
        s.figures.append((fig("city_boxplots", "panels", F.plot_city_boxes, boxes, periods=periods,
                              cities=list(t2.index)),
                          "Box plots of pixel means of IHS-related PM2.5 per city (Fig. 11)."))
        s.tables.append(("Table 2 — annual mean IHS-related PM2.5 (µg m⁻³) by city", t2))
        s.tables.append(("Annual contribution (%) by city", share))
        summary = _csv(stats_dir, "city_summary")
        if summary is not None:
            s.tables.append(("City summary", summary.set_index("city")))
        windows = _csv(stats_dir, "contribution_windows")
        if windows is not None and len(windows):
            wide = windows.pivot(index="region", columns="period", values="share_pct")
            wide = wide.reindex(index=list(dict.fromkeys(windows["region"])),
                                columns=list(dict.fromkeys(windows["period"])))
            s.tables.append(("Table 4 shape — contribution (%) in January–February and July windows", wide))
        sections.append(s)

    # --- correlation (Fig. 7c, Table 3)
    corr = _csv(stats_dir, "correlation")
    if corr is not None and not corr.empty and annual is not None:
        s = Section("Correlation with indicators", "Pearson correlation of annual IHS-related PM2.5.")
        row = corr[(corr["indicator"] == "Operational IHSs") & (corr["region"] == "All")]
        if len(row) and "n_operating_ihs" in annual:
            s.figures.append((fig("correlation_operating", "series", F.plot_correlation,
                                  annual["n_operating_ihs"], annual["pm25_ihs"], xlabel="number of operating IHS",
                                  r=float(row["r"].iloc[0]), p=float(row["p"].iloc[0]), labels=annual["year"]),
                              "Annual IHS-related PM2.5 against the number of operating IHS (Fig. 7c)."))
        table3 = _csv(stats_dir, "correlation_table")
        if table3 is not None:
            s.tables.append(("Table 3 — Pearson r", table3.set_index("indicator")))
        s.tables.append(("All correlations", corr))
        sections.append(s)

    # --- single IHS (§3.3, Fig. 12)
    ihs_summary = _csv(stats_dir, "ihs_summary", dtype={"ihs_id": str})
    case = _case_index(config, ihs_summary)
    if case is not None:
        ihs_annual = _csv(stats_dir, "ihs_annual", dtype={"ihs_id": str})
        row = ihs_summary.iloc[case]
        name = f"{row['ihs_name']} ({row['ihs_id']})" if "ihs_name" in row else str(row["ihs_id"])
        offsets = areas["member_offset"].values
        members = areas["member_pixel"].values[offsets[case]:offsets[case + 1]]
        ny, nx = inside.shape
        rr, cc = np.divmod(members.astype(np.int64), nx)
        pad = 5
        rows = slice(max(int(rr.min()) - pad, 0), min(int(rr.max()) + pad + 1, ny))
        cols = slice(max(int(cc.min()) - pad, 0), min(int(cc.max()) + pad + 1, nx))
        area = np.zeros(inside.shape, bool)
        area[rr, cc] = True
        field = np.where(area, maps["mean_pm25_ihs"].values, np.nan)[rows, cols]
        sub = frame.window(rows, cols)
        pts = None
        if points is not None:
            lat, lon = points
            keep = ((lat >= sub.extent[2]) & (lat <= sub.extent[3]) & (lon >= sub.extent[0]) & (lon <= sub.extent[1]))
            pts = (lat[keep], lon[keep])
        yearly = ihs_annual[ihs_annual["ihs_id"] == row["ihs_id"]]
        group = int(np.flatnonzero((kinds == "ihs") & (series["group_index"].values == case))[0])
        daily_share = means_from_sums({k: v[group] for k, v in sums.items()})["share_pct"]
        fit = trend_test(yearly["pm25_ihs"].to_numpy(float))
        s = Section(f"Single IHS radiation area: {name}",
                    f"The She County case-study shape (§3.3). City: {row.get('city', '')}; area "
                    f"{float(row.get('area_km2', np.nan)):.1f} km²; period mean IHS-related PM2.5 "
                    f"{float(row['pm25_ihs']):.2f} µg m⁻³, contribution {float(row['share_pct']):.1f} %.")
        s.figures.append((fig("case_ihs", "panels", F.plot_case_ihs, sub, field, area[rows, cols], pts,
                              yearly["year"].to_numpy(), yearly["pm25_ihs"].to_numpy(float), float(fit["slope"]),
                              float(fit["intercept"]), series["time"].values, daily_share, name=name),
                          f"IHS-related PM2.5 of {name}: location, annual means, daily contribution (Fig. 12)."))
        s.tables.append(("Year by year", yearly.set_index("year")))
        top = ihs_summary.sort_values("pm25_ihs", ascending=False).head(25).set_index("ihs_id")
        s.tables.append(("IHS areas with the highest IHS-related PM2.5 (top 25; all in stats/ihs_summary.csv)", top))
        sections.append(s)

    # --- data quality: gaps, fills, implausible values
    quality = data_quality(config)
    if quality is not None:
        s = Section("Gaps, fills and implausible values",
                    "What the inputs lacked and how it was filled: kriging per day (prep), along time per pixel where "
                    "a day had no data at all, meteorology along time (stage 2); implausible input values were set "
                    "to missing first. Pixels with no data on any day are masked out of every figure and table. "
                    "Negative IHS-related values and daily contributions above 100 % are estimation noise around "
                    "small true values: counted here, never clipped or hidden.")
        s.tables.append(("Counts", quality))
        sections.append(s)

    # --- truth (synthetic scenes)
    truth = _csv(stats_dir, "truth_scores")
    if truth is not None and "mean_pm25_ihs_true" in maps and "s_true" in sums:
        s = Section("Estimate against the synthetic truth", "Scores inside IHS areas.")
        s.figures.append((fig("truth", "wide", F.plot_truth, maps["mean_pm25_ihs"].values[inside],
                              maps["mean_pm25_ihs_true"].values[inside], series["time"].values, daily["pm25_ihs"],
                              daily["pm25_ihs_true"]),
                          "Estimated against true IHS PM2.5: pixel period means and IHS-area daily means."))
        s.tables.append(("This run's row of the score matrix", truth_matrix_row(config, truth)))
        s.tables.append(("Truth scores", truth.set_index("metric")))
        ta = _csv(stats_dir, "truth_annual")
        if ta is not None:
            s.tables.append(("Annual, estimate against truth", ta.set_index("year")))
        sections.append(s)

    # --- stage 3: the U-ConvLSTM and kriging on the same held-out holes (ihs_hpc/pipeline/stage3_model.py)
    validation = _csv(stats_dir, "stage3_validation")
    if validation is not None:
        s = Section("Stage 3: U-ConvLSTM and kriging on held-out background holes",
                    "Both methods fill the same holes, cut in the shapes of real IHS areas into the background of "
                    "validation blocks, on every day of a year the model never trained on; scores over the hidden "
                    "background pixel-days (µg m⁻³). The method with the lower RMSE is the default of stage3.method.")
        for name, caption in (("validation.png", "Held-out holes and fills against the hidden values."),
                              ("training.png", "Training and validation loss of the U-ConvLSTM.")):
            if (run_dir / "uconvlstm" / name).is_file():
                shutil.copyfile(run_dir / "uconvlstm" / name, fig_dir / f"stage3_{name}")
                s.figures.append((f"figures/stage3_{name}", caption))
        s.tables.append(("Held-out holes", validation.set_index("method")))
        sections.append(s)

    # --- allocation (seed 003), optional
    lorenz = run_dir / "allocation" / "lorenz_curves.png"
    if lorenz.is_file():
        shutil.copyfile(lorenz, fig_dir / "lorenz_curves.png")
        s = Section("Allocation of reduction targets", "Lorenz curves of the minimised-Gini reduction plan (seed 003).")
        s.figures.append(("figures/lorenz_curves.png", "Lorenz curves before and after the reduction plan."))
        plan = run_dir / "allocation" / "plan.csv"
        if plan.is_file():
            s.tables.append(("Reduction plan", pd.read_csv(plan).set_index("city")
                             if "city" in pd.read_csv(plan, nrows=0).columns else pd.read_csv(plan)))
        sections.append(s)

    period = headline.get("period", ["", ""])
    title = "IHS-related PM2.5 report"
    intro = (f"Run directory `{run_dir}`; period {period[0]} – {period[1]}; {headline.get('n_cities', 0)} cities, "
             f"{headline.get('n_ihs', 0)} IHS, {headline.get('ihs_area_pixels', 0)} pixels in IHS radiation areas. "
             f"Concentrations in µg m⁻³. Tables as CSV in `../stats/`. Methods: outliers "
             f"`prep.outliers: {config['prep.outliers'] if config['prep.enabled'] else 'none (prep disabled)'}`, "
             f"meteorology removal `stage2.met_fit: {config['stage2.met_fit']}`, background fill "
             f"`stage3.method: {config['stage3.method']}`.")
    map_page = write_run_map(run_dir, out / "map.html", cubes=input_store(config))
    index = write_html(out / "index.html", title, intro, sections, links=[(
        map_page.name, "Interactive map: every map, the IHS radiation areas and city boundaries (works offline)")])
    md = write_markdown(out / "report.md", title, intro, sections)
    (out / "figures.json").write_text(json.dumps(
        {name: {"kind": kind, "height_px": F.pixel_size(kind)[0], "width_px": F.pixel_size(kind)[1]}
         for name, kind in made.items() if kind in F.SIZES}, indent=2))
    echo(f"  {len(made)} figures, {index}, {map_page.name} and {md.name}")
    finish_output_dir(config, "report")
    return {"index": str(index), "map": str(map_page), "figures": len(made) + int(lorenz.is_file())}
