"""The report section of time series: annual, seasonal and daily IHS-area means (Fig. 7b, 8)."""
from __future__ import annotations

from ...report.html import Section
from ...report.series_figures import plot_annual, plot_daily, plot_seasonal
from ...stats.aggregate import DECEMBER_RULE
from ..stats import SHARE_DEFINITION
from .context import ReportContext


def temporal_section(ctx: ReportContext) -> Section:
    """Annual and seasonal means, the daily IHS-area series and their tables."""
    annual, seasonal = ctx.csv("annual"), ctx.csv("seasonal")
    s = Section("Temporal variation", f"Seasons: {DECEMBER_RULE}. Contribution: {SHARE_DEFINITION}.")
    if annual is not None:
        s.figures.append((ctx.figure("series_annual", "panels", plot_annual, annual),
                          "Annual means and year-on-year change (Fig. 7b, 8a–b)."))
    if seasonal is not None:
        s.figures.append((ctx.figure("series_seasonal", "series", plot_seasonal, seasonal),
                          "Seasonal mean IHS-related PM2.5 per season-year (Fig. 8c)."))
    daily = ctx.area_daily()
    lines = {"IHS-related PM$_{2.5}$": daily["pm25_ihs"]}
    if "pm25_bl_oem" in daily:
        lines["Other sources (bl_oem)"] = daily["pm25_bl_oem"]
    s.figures.append((ctx.figure("series_daily", "series", plot_daily, ctx.series["time"].values, lines,
                                 title="Daily mean PM$_{2.5}$ components in IHS radiation areas"),
                      "Daily IHS-area means with 30-day running means (Fig. 7b)."))
    if annual is not None:
        s.tables.append(("Annual means", annual.set_index("year")))
    for name, caption in (("seasonal_summary", "Seasons over the whole period"), ("trends", "Trend tests")):
        df = ctx.csv(name)
        if df is not None:
            s.tables.append((caption, df.set_index(df.columns[0])))
    return s
