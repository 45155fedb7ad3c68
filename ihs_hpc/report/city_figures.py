"""City figures (Fig. 10, 11) and the correlation with an indicator (Fig. 7c)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .canvas import PM_LABEL, new_figure, save_figure


def plot_city_boxes(boxes: pd.DataFrame, path, *, periods: Sequence[str], cities: Sequence[str]) -> Path:
    """Box plots of pixel means of IHS-related PM2.5 per city (Fig. 11), drawn from precomputed numbers
    (quartiles, 1.5-IQR whiskers) — one panel per period."""
    fig = new_figure("panels")
    n = len(periods)
    ncols = 2 if n > 1 else 1
    nrows = -(-n // ncols)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, period in zip(axes, periods):
        sub = boxes[boxes["period"].astype(str) == str(period)].set_index("city")
        stats, labels = [], []
        for city in cities:
            if city not in sub.index or not np.isfinite(sub.loc[city, "median"]):
                continue
            row = sub.loc[city]
            stats.append({"med": row["median"], "q1": row["q1"], "q3": row["q3"], "whislo": row["whislo"],
                          "whishi": row["whishi"], "mean": row["mean"], "fliers": [], "label": city})
            labels.append(city)
        if stats:
            ax.bxp(stats, showmeans=True, showfliers=False, patch_artist=True,
                   boxprops={"facecolor": "#f4a582"}, meanprops={"marker": "D", "markersize": 4})
            ax.tick_params(axis="x", labelrotation=45 if len(stats) > 4 else 0)
        ax.set_title("Whole period" if str(period) == "all" else f"{period}")
        ax.set_ylabel(PM_LABEL)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle("IHS-related PM$_{2.5}$ in the IHS radiation areas of each city (pixel means; whiskers 1.5 IQR)")
    return save_figure(fig, path)


def plot_city_annual(years, cities: Sequence[str], values: np.ndarray, shares: np.ndarray, path) -> Path:
    """Annual IHS-related PM2.5 and contribution per city (Fig. 10, Table 2)."""
    fig = new_figure("wide")
    ax1, ax2 = fig.subplots(1, 2)
    for k, city in enumerate(cities):
        line, = ax1.plot(years, values[k], marker="o", markersize=3, label=city)
        ax2.plot(years, shares[k], marker="o", markersize=3, color=line.get_color(), label=city)
    ax1.set_title("Annual mean IHS-related PM$_{2.5}$ by city (IHS areas)")
    ax1.set_ylabel(PM_LABEL)
    ax2.set_title("Annual contribution of IHS-related PM$_{2.5}$ by city")
    ax2.set_ylabel("Contribution (%)")
    for ax in (ax1, ax2):
        ax.set_xlabel("Year")
        ax.set_xticks(list(years))
    if len(cities) <= 20:
        ax2.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save_figure(fig, path)


def plot_correlation(x, y, path, *, xlabel: str, r: float, p: float, labels=None) -> Path:
    """Scatter of annual IHS-related PM2.5 against an indicator with the least-squares line (Fig. 7c)."""
    fig = new_figure("series")
    ax = fig.add_subplot()
    x, y = np.asarray(x, float), np.asarray(y, float)
    ax.scatter(x, y, color="tab:red", zorder=3)
    if labels is not None:
        for xi, yi, lab in zip(x, y, labels):
            ax.annotate(str(lab), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() >= 2 and np.ptp(x[ok]) > 0:
        b, a = np.polyfit(x[ok], y[ok], 1)
        xs = np.linspace(x[ok].min(), x[ok].max(), 50)
        ax.plot(xs, a + b * xs, "k--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"Annual IHS-related {PM_LABEL}")
    ax.set_title(f"IHS-related PM$_{{2.5}}$ against {xlabel}: r = {r:.2f}, p = {p:.3g}")
    return save_figure(fig, path)
