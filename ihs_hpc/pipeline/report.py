"""The report stage: PNG figures and ``RUN/report/index.html`` + ``report.md`` from ``RUN/stats/``.

Needs the statistics stage's outputs (tables, ``maps.zarr``, ``trend_maps.zarr``, ``series.zarr``)
and reads the cities and IHS points from the input cubes and the IHS areas from ``stage1.zarr``. When
``RUN/allocation/lorenz_curves.png`` exists (the allocation of seed 003), it is copied in and shown.

Each section is built by its own module of :mod:`ihs_hpc.pipeline.report_sections` (maps and trend maps,
time series, cities and correlation, the single-IHS case study, data quality, synthetic truth, stage 3
validation, per-source attribution, allocation); figures are drawn by :mod:`ihs_hpc.report` (sizes fixed
by :data:`ihs_hpc.report.canvas.SIZES` at :data:`~ihs_hpc.report.canvas.DPI`). This module runs the
stage: it opens the run, orders the sections and writes the HTML and Markdown pages.
"""
from __future__ import annotations

import json
import shutil

from ..config import RunConfig
from ..report.canvas import SIZES, pixel_size
from ..report.html import write_html, write_markdown
from ..report.webmap import write_run_map
from .inputs import input_store
from .report_sections.attribution import attribution_section
from .report_sections.case_ihs import case_ihs_section
from .report_sections.cities import cities_section, correlation_section
from .report_sections.context import ReportContext
from .report_sections.methods import allocation_section, stage3_section
from .report_sections.overview import maps_section, trend_section
from .report_sections.quality import data_quality, quality_section
from .report_sections.temporal import temporal_section
from .report_sections.truth import truth_matrix_row, truth_section

__all__ = ["run_report", "data_quality", "truth_matrix_row"]


def report_intro(config: RunConfig, headline: dict) -> str:
    """The report's opening paragraph: run directory, period, counts and the methods chosen."""
    period = headline.get("period", ["", ""])
    return (f"Run directory `{config.run_dir}`; period {period[0]} – {period[1]}; {headline.get('n_cities', 0)} "
            f"cities, {headline.get('n_ihs', 0)} IHS, {headline.get('ihs_area_pixels', 0)} pixels in IHS radiation "
            f"areas. Concentrations in µg m⁻³. Tables as CSV in `../stats/`. Methods: outliers "
            f"`prep.outliers: {config['prep.outliers'] if config['prep.enabled'] else 'none (prep disabled)'}`, "
            f"meteorology removal `stage2.met_fit: {config['stage2.met_fit']}`, background fill "
            f"`stage3.method: {config['stage3.method']}`{stage3_fill(config)}.")


def stage3_fill(config: RunConfig) -> str:
    """How stage 3 filled, from its store: the method ``auto`` chose and the kriging drift."""
    import zarr

    from .run import store_path

    try:
        attrs = dict(zarr.open_group(store_path(config, "stage3"), mode="r").attrs)
    except Exception:  # noqa: BLE001 - no stage 3 store: nothing to add
        return ""
    parts = []
    if config["stage3.method"] == "auto" and attrs.get("method"):
        parts.append(f"chose {attrs['method']} on the held-out holes")
    if attrs.get("method") == "kriging" and attrs.get("drift"):
        parts.append(f"kriging drift: {attrs['drift']}")
    return f" ({'; '.join(parts)})" if parts else ""


def run_report(config: RunConfig, client, echo) -> dict:
    """Draw the figures and write ``RUN/report/index.html`` and ``report.md``; return what was written."""
    if not config.get("report.enabled", True):
        echo("  report.enabled is false — skipped")
        return {"enabled": False}
    stats_dir = config.run_dir / "stats"
    if not (stats_dir / "stats.json").is_file():
        raise ValueError(f"{stats_dir}/stats.json not found; run the stats stage (`ihs stats`) first")
    headline = json.loads((stats_dir / "stats.json").read_text())["headline"]
    from .plan import begin_output_dir, finish_output_dir

    out = begin_output_dir(config, "report")
    fig_dir = out / "figures"
    if fig_dir.exists():
        shutil.rmtree(fig_dir)
    fig_dir.mkdir(parents=True)
    ctx = ReportContext.open(config, fig_dir)
    built = [maps_section(ctx, headline), temporal_section(ctx), trend_section(ctx), cities_section(ctx),
             correlation_section(ctx), case_ihs_section(ctx), attribution_section(ctx), quality_section(config),
             truth_section(ctx), stage3_section(ctx), allocation_section(ctx)]
    sections = [s for s in built if s is not None]

    title = "IHS-related PM2.5 report"
    intro = report_intro(config, headline)
    map_page = write_run_map(config.run_dir, out / "map.html", cubes=input_store(config))
    index = write_html(out / "index.html", title, intro, sections, links=[(
        map_page.name, "Interactive map: every map, the IHS radiation areas and city boundaries (works offline)")])
    md = write_markdown(out / "report.md", title, intro, sections)
    (out / "figures.json").write_text(json.dumps(
        {name: {"kind": kind, "height_px": pixel_size(kind)[0], "width_px": pixel_size(kind)[1]}
         for name, kind in ctx.made.items() if kind in SIZES}, indent=2))
    echo(f"  {len(ctx.made)} figures, {index}, {map_page.name} and {md.name}")
    finish_output_dir(config, "report")
    lorenz = (config.run_dir / "allocation" / "lorenz_curves.png").is_file()
    return {"index": str(index), "map": str(map_page), "figures": len(ctx.made) + int(lorenz)}
