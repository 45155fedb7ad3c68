"""The report section of one IHS radiation area (§3.3, Fig. 12: the She County case-study shape).

The case-study IHS is ``report.case_ihs`` when the configuration has it (an ``ihs_id`` or an index),
else the IHS with the highest period-mean IHS-related PM2.5.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...config import RunConfig
from ...report.case_figures import plot_case_ihs
from ...report.html import Section
from ...stats.group_tests import trend_test
from .context import ReportContext


def case_index(config: RunConfig, ihs_summary: pd.DataFrame | None) -> int | None:
    """Row of ``ihs_summary`` to show: ``report.case_ihs`` (ihs_id or index), else the highest
    period-mean IHS-related PM2.5; None without IHS."""
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


def case_ihs_section(ctx: ReportContext) -> Section | None:
    """Location, annual means with Sen's line and daily contribution of one IHS; the top-25 table."""
    ihs_summary = ctx.csv("ihs_summary", dtype={"ihs_id": str})
    case = case_index(ctx.config, ihs_summary)
    if case is None:
        return None
    ihs_annual = ctx.csv("ihs_annual", dtype={"ihs_id": str})
    row = ihs_summary.iloc[case]
    name = f"{row['ihs_name']} ({row['ihs_id']})" if "ihs_name" in row else str(row["ihs_id"])
    rows, cols, area = ctx.window(ctx.members(case))
    field = np.where(area, ctx.maps["mean_pm25_ihs"].values, np.nan)[rows, cols]
    sub = ctx.frame.window(rows, cols)
    yearly = ihs_annual[ihs_annual["ihs_id"] == row["ihs_id"]]
    series = ctx.series
    group = int(np.flatnonzero((ctx.group_kinds == "ihs") & (series["group_index"].values == case))[0])
    daily_share = ctx.daily_means(group)["share_pct"]
    fit = trend_test(yearly["pm25_ihs"].to_numpy(float))
    s = Section(f"Single IHS radiation area: {name}",
                f"The She County case-study shape (§3.3). City: {row.get('city', '')}; area "
                f"{float(row.get('area_km2', np.nan)):.1f} km²; period mean IHS-related PM2.5 "
                f"{float(row['pm25_ihs']):.2f} µg m⁻³, contribution {float(row['share_pct']):.1f} %.")
    s.figures.append((ctx.figure("case_ihs", "panels", plot_case_ihs, sub, field, area[rows, cols],
                                 ctx.points_in(sub), yearly["year"].to_numpy(), yearly["pm25_ihs"].to_numpy(float),
                                 float(fit["slope"]), float(fit["intercept"]), series["time"].values, daily_share,
                                 name=name),
                      f"IHS-related PM2.5 of {name}: location, annual means, daily contribution (Fig. 12)."))
    s.tables.append(("Year by year", yearly.set_index("year")))
    top = ihs_summary.sort_values("pm25_ihs", ascending=False).head(25).set_index("ihs_id")
    s.tables.append(("IHS areas with the highest IHS-related PM2.5 (top 25; all in stats/ihs_summary.csv)", top))
    return s
