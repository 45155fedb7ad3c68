"""Report sections of maps: period-mean maps with the headline numbers (Fig. 6a, 7a, 7d, 9a) and the
per-pixel trend maps."""
from __future__ import annotations

import pandas as pd

from ...report.html import Section
from ...report.maps import plot_map, plot_trend_maps
from ..stats import MWU_BASIS
from .context import ReportContext


def maps_section(ctx: ReportContext, headline: dict) -> Section:
    """Mean total, IHS-related, contribution and background maps; headline, Mann–Whitney and Moran tables."""
    maps, frame, inside, points = ctx.maps, ctx.frame, ctx.inside, ctx.points
    s = Section("PM2.5 and IHS-related PM2.5 maps",
                "Period means over every day of the run. IHS radiation areas are outlined; triangles mark the IHS.")
    s.figures.append((ctx.figure("map_mean_pm25", "map", plot_map, frame, maps["mean_pm25"].values,
                                 title="Mean total PM$_{2.5}$", cmap="viridis", outline=inside),
                      "Mean total PM2.5 (µg m⁻³) with the IHS radiation areas outlined (Fig. 6a)."))
    s.figures.append((ctx.figure("map_mean_pm25_ihs", "map", plot_map, frame, maps["mean_pm25_ihs"].values,
                                 title="Mean IHS-related PM$_{2.5}$ in IHS radiation areas", cmap="YlOrRd",
                                 outline=inside, points=points),
                      "Mean IHS-related PM2.5 (µg m⁻³) inside the IHS radiation areas, with the IHS points "
                      "(Fig. 9a)."))
    s.figures.append((ctx.figure("map_share", "map", plot_map, frame, maps["share_pct"].values,
                                 title="Contribution of IHS-related PM$_{2.5}$ to total PM$_{2.5}$", cmap="magma_r",
                                 label="Contribution (%)", outline=inside, points=points),
                      "Contribution (%) of IHS-related PM2.5 to total PM2.5 per pixel (Fig. 7d)."))
    if "mean_pm25_bl_oem" in maps:
        s.figures.append((ctx.figure("map_background", "map", plot_map, frame, maps["mean_pm25_bl_oem"].values,
                                     title="Mean PM$_{2.5}$ from other sources (pm25_bl_oem)", cmap="viridis",
                                     outline=inside),
                          "Mean PM2.5 from meteorology-removed other sources, background filled into IHS areas "
                          "(Fig. 7a)."))
    s.tables.append(("Headline numbers", pd.DataFrame({
        "quantity": ["Total PM2.5, region", "Total PM2.5, background", "Total PM2.5, IHS areas",
                     "IHS-related PM2.5, IHS areas", "Contribution in IHS areas (%)",
                     "Mann–Whitney U p (background vs IHS areas)", "Moran's I of mean IHS-related PM2.5"],
        "value": [headline.get("pm25_region"), headline.get("pm25_background"), headline.get("pm25_ihs_area"),
                  headline.get("pm25_ihs"), headline.get("share_pct"), headline.get("mwu_p"), headline.get("morans_i")],
    }).set_index("quantity")))
    mwu = ctx.csv("mwu")
    if mwu is not None:
        s.tables.append(("Mann–Whitney U test (" + MWU_BASIS + ")", mwu.set_index("basis")))
    moran = ctx.csv("moran")
    if moran is not None and not moran.empty:
        s.tables.append(("Moran's I (queen contiguity)", moran))
    return s


def trend_section(ctx: ReportContext) -> Section:
    """Sen's slope and Mann–Kendall z maps of annual-mean IHS-related and total PM2.5."""
    trends, frame, inside = ctx.trends, ctx.frame, ctx.inside
    s = Section("Per-pixel trends", "Mann–Kendall test and Sen's slope of each pixel's annual means.")
    if "pm25_ihs_sen_slope" in trends:
        s.figures.append((ctx.figure("map_trend_pm25_ihs", "wide", plot_trend_maps, frame,
                                     trends["pm25_ihs_sen_slope"].values, trends["pm25_ihs_mk_z"].values,
                                     trends["pm25_ihs_mk_p"].values, outline=inside),
                          "Trend of annual-mean IHS-related PM2.5 (IHS areas)."))
        s.figures.append((ctx.figure("map_trend_pm25", "wide", plot_trend_maps, frame,
                                     trends["pm25_sen_slope"].values, trends["pm25_mk_z"].values,
                                     trends["pm25_mk_p"].values, what="total PM$_{2.5}$", outline=inside),
                          "Trend of annual-mean total PM2.5 (all pixels)."))
    return s
