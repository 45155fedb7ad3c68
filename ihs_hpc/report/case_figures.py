"""The single-IHS case study (Fig. 12) and the estimate against the synthetic truth."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .canvas import PM_LABEL, UNITS, new_figure, save_figure
from .maps import MapFrame


def plot_case_ihs(frame: MapFrame, field, outline, points, years, annual, slope, intercept, time, daily_share,
                  path, *, name: str) -> Path:
    """One IHS radiation area (Fig. 12): (a) location and mean map, (b) annual means with Sen's line,
    (c) daily contribution with its trend."""
    fig = new_figure("panels")
    grid = fig.add_gridspec(2, 2)
    ax_map = fig.add_subplot(grid[0, 0])
    ax_year = fig.add_subplot(grid[0, 1])
    ax_day = fig.add_subplot(grid[1, :])
    frame.draw(ax_map, field, title=f"(a) {name}: mean IHS-related PM$_{{2.5}}$", cmap="YlOrRd", outline=outline,
               points=points, names=False)
    years = np.asarray(years)
    ax_year.plot(years, annual, "o-", color="tab:red", label="Annual mean")
    if np.isfinite(slope):
        ax_year.plot(years, intercept + slope * np.arange(len(years)), "k--",
                     label=f"Sen's slope {slope:+.2f} per year")
    ax_year.set_xticks(years)
    ax_year.set_xlabel("Year")
    ax_year.set_ylabel(PM_LABEL)
    ax_year.set_title("(b) Annual mean IHS-related PM$_{2.5}$")
    ax_year.legend(fontsize="small")
    t = pd.DatetimeIndex(time)
    v = np.asarray(daily_share, float)
    ax_day.plot(t, v, linewidth=0.5, color="tab:purple", alpha=0.6, label="Daily contribution")
    ok = np.isfinite(v)
    if ok.sum() > 2:
        x = (t - t[0]).days.to_numpy(dtype=float)
        b, a = np.polyfit(x[ok], v[ok], 1)
        ax_day.plot(t, a + b * x, "k--", label=f"Trend ({365.25 * b:+.2f} percentage points per year)")
    ax_day.set_xlabel("Date")
    ax_day.set_ylabel("Contribution (%)")
    ax_day.set_title("(c) Daily contribution of IHS-related PM$_{2.5}$")
    ax_day.legend(fontsize="small")
    return save_figure(fig, path)


def plot_truth(est_map, true_map, time, est_daily, true_daily, path) -> Path:
    """Estimate against the synthetic truth: pixel period means (scatter) and IHS-area daily means."""
    fig = new_figure("wide")
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 2])
    ok = np.isfinite(est_map) & np.isfinite(true_map)
    ax1.scatter(true_map[ok], est_map[ok], s=4, alpha=0.5)
    if ok.any():
        lo = float(min(true_map[ok].min(), est_map[ok].min()))
        hi = float(max(true_map[ok].max(), est_map[ok].max()))
        ax1.plot([lo, hi], [lo, hi], "k--", linewidth=1, label="1:1")
        ax1.legend(fontsize="small")
    ax1.set_xlabel(f"True IHS PM$_{{2.5}}$ ({UNITS})")
    ax1.set_ylabel(f"Estimated IHS-related PM$_{{2.5}}$ ({UNITS})")
    ax1.set_title("Pixel period means, IHS areas")
    t = pd.DatetimeIndex(time)
    ax2.plot(t, true_daily, linewidth=0.8, label="Truth")
    ax2.plot(t, est_daily, linewidth=0.8, label="Estimate")
    ax2.set_xlabel("Date")
    ax2.set_ylabel(PM_LABEL)
    ax2.set_title("IHS-area mean daily IHS-related PM$_{2.5}$")
    ax2.legend(fontsize="small")
    return save_figure(fig, path)
