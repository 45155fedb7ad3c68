"""Report sections of cities (Table 2, 4, Fig. 9b–11) and of the correlation with indicators (Fig. 7c,
Table 3)."""
from __future__ import annotations

from ...report.city_figures import plot_city_annual, plot_city_boxes, plot_correlation
from ...report.html import Section
from .context import ReportContext


def cities_section(ctx: ReportContext) -> Section | None:
    """Annual IHS-related PM2.5 and contribution per city, box plots, Table 2 and the contribution windows."""
    t2 = ctx.csv("city_pm25_ihs_annual")
    if t2 is None or not len(t2):
        return None
    s = Section("Cities", "City values are over the IHS radiation areas inside each city.")
    t2 = t2.set_index("city")
    share = ctx.csv("city_share_annual").set_index("city")
    years = [c for c in t2.columns if c.isdigit()]
    s.figures.append((ctx.figure("city_annual", "wide", plot_city_annual, [int(y) for y in years], list(t2.index),
                                 t2[years].to_numpy(float), share[years].to_numpy(float)),
                      "Annual IHS-related PM2.5 and contribution per city (Fig. 10)."))
    boxes = ctx.csv("city_boxplot", dtype={"period": str})
    periods = [years[0], years[len(years) // 2], years[-1], "all"] if len(years) > 2 else years + ["all"]
    periods = list(dict.fromkeys(periods))
    s.figures.append((ctx.figure("city_boxplots", "panels", plot_city_boxes, boxes, periods=periods,
                                 cities=list(t2.index)),
                      "Box plots of pixel means of IHS-related PM2.5 per city (Fig. 11)."))
    s.tables.append(("Table 2 — annual mean IHS-related PM2.5 (µg m⁻³) by city", t2))
    s.tables.append(("Annual contribution (%) by city", share))
    intervals = ctx.csv("city_ihs_intervals")
    if intervals is not None and len(intervals):
        s.tables.append(("Annual IHS-related PM2.5 by city with its interval (stats/city_ihs_intervals.csv)",
                         intervals.set_index(["city", "year"])))
    summary = ctx.csv("city_summary")
    if summary is not None:
        s.tables.append(("City summary", summary.set_index("city")))
    windows = ctx.csv("contribution_windows")
    if windows is not None and len(windows):
        wide = windows.pivot(index="region", columns="period", values="share_pct")
        wide = wide.reindex(index=list(dict.fromkeys(windows["region"])),
                            columns=list(dict.fromkeys(windows["period"])))
        s.tables.append(("Table 4 shape — contribution (%) in January–February and July windows", wide))
    return s


def correlation_section(ctx: ReportContext) -> Section | None:
    """Annual IHS-related PM2.5 against the number of operating IHS, Table 3 and every correlation."""
    corr, annual = ctx.csv("correlation"), ctx.csv("annual")
    if corr is None or corr.empty or annual is None:
        return None
    s = Section("Correlation with indicators", "Pearson correlation of annual IHS-related PM2.5.")
    row = corr[(corr["indicator"] == "Operational IHSs") & (corr["region"] == "All")]
    if len(row) and "n_operating_ihs" in annual:
        s.figures.append((ctx.figure("correlation_operating", "series", plot_correlation,
                                     annual["n_operating_ihs"], annual["pm25_ihs"],
                                     xlabel="number of operating IHS", r=float(row["r"].iloc[0]),
                                     p=float(row["p"].iloc[0]), labels=annual["year"]),
                          "Annual IHS-related PM2.5 against the number of operating IHS (Fig. 7c)."))
    table3 = ctx.csv("correlation_table")
    if table3 is not None:
        s.tables.append(("Table 3 — Pearson r", table3.set_index("indicator")))
    s.tables.append(("All correlations", corr))
    return s
