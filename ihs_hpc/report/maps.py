"""Maps of a run (Fig. 6a, 7a, 7d, 9a and the trend maps): lon/lat with the aspect of the local metre
(1/cos φ), a colour bar with units, city borders and English city names."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.ticker import MaxNLocator

from .canvas import PM_LABEL, UNITS, color_limits, new_figure, save_figure


class MapFrame:
    """Geometry shared by the maps of one grid: extent, aspect, city borders and labels."""

    def __init__(self, lat, lon, city_id=None, city_names: Sequence[str] = ()):
        self.lat, self.lon = np.asarray(lat, float), np.asarray(lon, float)
        res_y = abs(self.lat[0] - self.lat[1]) if self.lat.size > 1 else 0.01
        res_x = abs(self.lon[1] - self.lon[0]) if self.lon.size > 1 else 0.01
        self.extent = (self.lon.min() - res_x / 2, self.lon.max() + res_x / 2,
                       self.lat.min() - res_y / 2, self.lat.max() + res_y / 2)
        self.aspect = 1.0 / np.cos(np.radians(self.lat.mean()))
        self.city_id = None if city_id is None else np.asarray(city_id)
        self.city_names = list(city_names)
        #: stride of the grids handed to ``contour`` (borders, outlines): at most ~800 cells a side
        self.step = max(1, int(np.ceil(max(self.lat.size, self.lon.size) / 800)))

    def coarse(self, field):
        """``(lon, lat, field)`` thinned by :attr:`step` for ``contour``."""
        k = self.step
        return self.lon[::k], self.lat[::k], np.asarray(field)[::k, ::k]

    def window(self, rows: slice, cols: slice) -> "MapFrame":
        cid = None if self.city_id is None else self.city_id[rows, cols]
        return MapFrame(self.lat[rows], self.lon[cols], cid, self.city_names)

    def draw(self, ax, field, *, title: str, cmap="viridis", label=PM_LABEL, vmin=None, vmax=None, norm=None,
             outline=None, points=None, point_label="IHS", names=True):
        if norm is None and (vmin is None or vmax is None):
            a, b = color_limits(field)
            vmin = a if vmin is None else vmin
            vmax = b if vmax is None else vmax
        image = ax.imshow(np.ma.masked_invalid(field), extent=self.extent, origin="upper", cmap=cmap,
                          vmin=None if norm is not None else vmin, vmax=None if norm is not None else vmax,
                          norm=norm, interpolation="nearest", aspect=self.aspect)
        ax.figure.colorbar(image, ax=ax, label=label, shrink=0.85)
        if outline is not None and np.any(outline) and not np.all(outline):
            ax.contour(*self.coarse(np.asarray(outline, dtype=float)), levels=[0.5], colors="0.15",
                       linewidths=0.6)
        self._cities(ax, names)
        if points is not None and len(points[0]):
            ax.scatter(points[1], points[0], s=36, marker="^", facecolor="tab:blue", edgecolor="white", linewidth=0.8,
                       label=point_label, zorder=5)
            ax.legend(loc="lower right", fontsize="small")
        ax.set_xlim(self.extent[0], self.extent[1])
        ax.set_ylim(self.extent[2], self.extent[3])
        narrow = (self.extent[1] - self.extent[0]) < 0.6 * (self.extent[3] - self.extent[2]) * self.aspect
        ax.xaxis.set_major_locator(MaxNLocator(3 if narrow else 5))
        ax.yaxis.set_major_locator(MaxNLocator(6))
        ax.set_xlabel("Longitude (°E)")
        ax.set_ylabel("Latitude (°N)")
        ax.set_title(title)
        return image

    def _cities(self, ax, names: bool):
        cid = self.city_id
        if cid is None or cid.size == 0 or (cid < 0).all():
            return
        present = np.unique(cid[cid >= 0])
        if present.size > 1 and min(cid.shape) > 1:
            lon, lat, coarse = self.coarse(cid)
            for c in present:  # borders: one 0.5 contour of every city's indicator
                if (coarse == c).any():
                    ax.contour(lon, lat, (coarse == c).astype(float), levels=[0.5], colors="0.45",
                               linewidths=0.5, linestyles="-")
        if not names or present.size > 40:
            return
        flat = cid.ravel()
        ok = flat >= 0
        labels = flat[ok].astype(np.int64)
        rows, cols = np.divmod(np.flatnonzero(ok), cid.shape[1])
        count = np.bincount(labels)
        row_c = np.bincount(labels, weights=rows) / np.maximum(count, 1)
        col_c = np.bincount(labels, weights=cols) / np.maximum(count, 1)
        for c in present:  # names at the centroid of each city's cells
            if int(c) >= len(self.city_names):
                continue
            ax.text(self.lon[int(round(col_c[c]))], self.lat[int(round(row_c[c]))], self.city_names[int(c)],
                    ha="center", va="center", fontsize=8, color="k",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.6})


def plot_map(frame: MapFrame, field, path, *, title: str, cmap="viridis", label=PM_LABEL, outline=None,
             points=None, vmin=None, vmax=None) -> Path:
    """One map with its colour bar (mean PM2.5, IHS-related PM2.5 with the IHS points, share …)."""
    fig = new_figure("map")
    ax = fig.add_subplot()
    frame.draw(ax, field, title=title, cmap=cmap, label=label, outline=outline, points=points, vmin=vmin, vmax=vmax)
    return save_figure(fig, path)


def plot_trend_maps(frame: MapFrame, slope, z, p, path, *, what="IHS-related PM$_{2.5}$", alpha=0.05,
                    outline=None) -> Path:
    """Sen's slope (with significant pixels hatched) and Mann–Kendall z of annual means."""
    fig = new_figure("wide")
    ax1, ax2 = fig.subplots(1, 2)
    lo, hi = color_limits(slope, symmetric=True)
    frame.draw(ax1, slope, title=f"Sen's slope of annual-mean {what}", cmap="RdBu_r",
               norm=TwoSlopeNorm(0.0, lo, hi), label=f"{UNITS} yr⁻¹", outline=outline, names=False)
    sig = np.isfinite(p) & (np.nan_to_num(p, nan=1.0) < alpha)
    if sig.any() and not sig.all() and min(sig.shape) > 1:
        ax1.contourf(*frame.coarse(sig.astype(float)), levels=[0.5, 1.5], colors="none", hatches=["...."])
    zl = max(abs(color_limits(z, symmetric=True)[0]), 2.0)
    frame.draw(ax2, z, title=f"Mann–Kendall z (hatched: p < {alpha:g})", cmap="RdBu_r",
               norm=TwoSlopeNorm(0.0, -zl, zl), label="z", outline=outline, names=False)
    return save_figure(fig, path)
