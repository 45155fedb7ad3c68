"""The multi-source case study of the per-source attribution (beyond the paper; issue 13)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from .canvas import PM_LABEL, new_figure, save_figure
from .maps import MapFrame


def plot_source_cluster(frame: MapFrame, field, outline, points, names, years, sources: Mapping[str, dict],
                        area_total, path, *, title: str, level: float = 0.9) -> Path:
    """Sources sharing one radiation area: (a) the area's mean IHS-related PM2.5 with the sources,
    (b) each source's annual own contribution with its interval band (and the truth where given) and the
    area's total, (c) each source's share of the IHS-related PM2.5 over its own area.

    Parameters
    ----------
    frame, field, outline : MapFrame, 2-D array, 2-D bool
        Window around the cluster, its period-mean IHS-related PM2.5 and the cluster's area.
    points, names : (lat, lon) arrays, list of str
        The sources of the cluster and their labels.
    years : 1-D int array
    sources : mapping
        Per source label: ``own``, ``lower``, ``upper``, ``share`` (%) and optionally ``truth`` arrays
        aligned to ``years`` (µg m⁻³).
    area_total : 1-D array
        Annual mean IHS-related PM2.5 over the cluster's whole area (all sources).
    level : float
        Nominal level of the intervals, for the legend.
    """
    fig = new_figure("panels")
    grid = fig.add_gridspec(2, 2)
    ax_map = fig.add_subplot(grid[0, 0])
    ax_share = fig.add_subplot(grid[0, 1])
    ax_own = fig.add_subplot(grid[1, :])
    frame.draw(ax_map, field, title="(a) Mean IHS-related PM$_{2.5}$ of the shared area", cmap="YlOrRd",
               outline=outline, points=points, point_label="sources", names=False)
    if points is not None:
        for lat, lon, name in zip(points[0], points[1], names):
            ax_map.annotate(name, (lon, lat), textcoords="offset points", xytext=(4, 4), fontsize=8)
    years = np.asarray(years)
    ax_own.plot(years, np.asarray(area_total, float), "k-", linewidth=2, marker="s", markersize=4,
                label="Area total (all sources, whole shared area)")
    for label, s in sources.items():
        line, = ax_own.plot(years, s["own"], "o-", markersize=4, label=f"{label}: own contribution")
        ax_own.fill_between(years, s["lower"], s["upper"], color=line.get_color(), alpha=0.25, linewidth=0)
        if s.get("truth") is not None and np.isfinite(s["truth"]).any():
            ax_own.plot(years, s["truth"], "x", color=line.get_color(), markersize=7, label=f"{label}: truth")
        ax_share.plot(years, s["share"], "o-", markersize=4, color=line.get_color(), label=label)
    ax_own.set_xticks(years)
    ax_own.set_xlabel("Year")
    ax_own.set_ylabel(PM_LABEL)
    ax_own.set_title(f"(c) Annual own contribution over each source's area (bands: {100 * level:g} % interval)")
    ax_own.legend(fontsize="small", ncol=2 if len(sources) < 6 else 3)
    ax_share.set_xticks(years)
    ax_share.tick_params(axis="x", labelrotation=45)
    ax_share.set_ylim(-2, 102)
    ax_share.set_xlabel("Year")
    ax_share.set_ylabel("Share of the area's IHS-related PM$_{2.5}$ (%)")
    ax_share.set_title("(b) Share of each source over its own area")
    ax_share.legend(fontsize="small")
    fig.suptitle(title)
    return save_figure(fig, path)
