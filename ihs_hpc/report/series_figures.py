"""Time-series figures of a run: annual (Fig. 7b, 8a–b), seasonal (Fig. 8c) and daily area means."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from .canvas import PM_LABEL, new_figure, save_figure


def plot_annual(annual: pd.DataFrame, path) -> Path:
    """Annual means (Fig. 7b, 8a–b): IHS-related PM2.5 and its contribution; total in IHS areas and background;
    year-on-year change of IHS-related PM2.5."""
    fig = new_figure("panels")
    ax1, ax2, ax3 = fig.subplots(3, 1, sharex=True)
    years = annual["year"].to_numpy()
    ax1.bar(years, annual["pm25_ihs"], color="tab:red", alpha=0.8, label="IHS-related PM$_{2.5}$ (IHS areas)")
    ax1.set_ylabel(PM_LABEL)
    ax1.set_title("Annual mean IHS-related PM$_{2.5}$ and its contribution in IHS radiation areas")
    twin = ax1.twinx()
    twin.plot(years, annual["share_pct"], color="k", marker="o", label="Contribution (%)")
    twin.set_ylabel("Contribution (%)")
    if "pm25_ihs_true" in annual:
        ax1.plot(years, annual["pm25_ihs_true"], "D--", color="tab:blue", label="Truth (synthetic)")
    handles = ax1.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax1.legend(handles, [h.get_label() for h in handles], loc="lower left", fontsize="small", framealpha=0.8)
    totals = (("pm25_ihs_area", "Total, IHS areas", "-o"), ("pm25_background", "Total, background", "-s"),
              ("pm25_region", "Total, region", "--"),
              ("pm25_bl_oem_ihs_area", "Other sources (bl_oem), IHS areas", ":^"))
    for col, label, style in totals:
        if col in annual:
            ax2.plot(years, annual[col], style, label=label)
    ax2.set_ylabel(PM_LABEL)
    ax2.set_title("Annual mean total PM$_{2.5}$")
    ax2.legend(fontsize="small", ncol=2)
    yoy = annual["pm25_ihs_yoy_pct"].to_numpy(dtype=float)
    ax3.bar(years, np.nan_to_num(yoy), color=np.where(np.nan_to_num(yoy) < 0, "tab:green", "tab:orange"))
    ax3.axhline(0, color="k", linewidth=0.6)
    ax3.set_ylabel("Change (%)")
    ax3.set_title("Year-on-year change of IHS-related PM$_{2.5}$")
    ax3.set_xlabel("Year")
    ax3.set_xticks(years)
    return save_figure(fig, path)


def plot_seasonal(seasonal: pd.DataFrame, path) -> Path:
    """Seasonal means per season-year (Fig. 8c): one line per season, open markers on incomplete seasons."""
    fig = new_figure("series")
    ax = fig.add_subplot()
    colours = {"DJF": "tab:blue", "MAM": "tab:green", "JJA": "tab:red", "SON": "tab:orange"}
    names = {"DJF": "Winter (DJF)", "MAM": "Spring (MAM)", "JJA": "Summer (JJA)", "SON": "Autumn (SON)"}
    for season, colour in colours.items():
        sub = seasonal[seasonal["season"] == season]
        if sub.empty:
            continue
        complete = sub["complete"].astype(bool).to_numpy()
        ax.plot(sub["season_year"], sub["pm25_ihs"], "-", color=colour, label=names[season])
        ax.plot(sub["season_year"][complete], sub["pm25_ihs"][complete], "o", color=colour)
        ax.plot(sub["season_year"][~complete], sub["pm25_ihs"][~complete], "o", mfc="white", color=colour)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("Season year (December counts toward the next year's DJF; open markers: incomplete season)")
    ax.set_ylabel(PM_LABEL)
    ax.set_title("Seasonal mean IHS-related PM$_{2.5}$ in IHS radiation areas")
    ax.legend(fontsize="small", ncol=4)
    return save_figure(fig, path)


def plot_daily(time, series: Mapping[str, np.ndarray], path, *, title: str, ylabel: str = PM_LABEL,
               trend: bool = False) -> Path:
    """Daily area-mean series (Fig. 7b, 12c) with a 30-day running mean; optional linear trend line."""
    fig = new_figure("series")
    ax = fig.add_subplot()
    t = pd.DatetimeIndex(time)
    for label, values in series.items():
        v = np.asarray(values, dtype=float)
        line, = ax.plot(t, v, linewidth=0.5, alpha=0.45)
        ax.plot(t, pd.Series(v).rolling(30, min_periods=5, center=True).mean(), color=line.get_color(),
                linewidth=1.5, label=f"{label} (30-day mean)")
        ok = np.isfinite(v)
        if trend and ok.sum() > 2:
            x = (t - t[0]).days.to_numpy(dtype=float)
            b, a = np.polyfit(x[ok], v[ok], 1)
            ax.plot(t, a + b * x, "--", color="k", linewidth=1.0, label=f"linear trend ({365.25 * b:+.2f} per year)")
    ax.set_xlabel("Date")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    return save_figure(fig, path)
