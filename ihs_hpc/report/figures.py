"""PNG figures of a run, in the shapes of the seed paper's Figures 6–12.

Every figure is drawn on a plain :class:`matplotlib.figure.Figure` (Agg canvas: no pyplot state, no
display needed), with a fixed size and resolution so its pixel size is known in advance
(:data:`SIZES` × :data:`DPI`). Maps are drawn in lon/lat with the aspect of the local metre (1/cos φ),
a colour bar with units, city borders and English city names.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 100
#: figure sizes in inches by kind; pixels = inches × DPI
SIZES = {"map": (8.0, 6.5), "series": (10.0, 5.0), "panels": (12.0, 9.0), "wide": (14.0, 5.0)}
UNITS = "µg m⁻³"
PM_LABEL = f"PM$_{{2.5}}$ ({UNITS})"


def pixel_size(kind: str) -> tuple[int, int]:
    """(height, width) in pixels of a figure of this kind."""
    w, h = SIZES[kind]
    return int(round(h * DPI)), int(round(w * DPI))


def _figure(kind: str) -> Figure:
    return Figure(figsize=SIZES[kind], dpi=DPI, layout="constrained")


def _save(fig: Figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def _limits(values, lo=2, hi=98, symmetric=False):
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (-1.0, 1.0) if symmetric else (0.0, 1.0)
    if symmetric:
        m = float(np.percentile(np.abs(v), hi)) or 1.0
        return -m, m
    a, b = (float(x) for x in np.percentile(v, [lo, hi]))
    return (a, b) if b > a else (a - 0.5, a + 0.5)


# --------------------------------------------------------------------------- maps
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

    def _coarse(self, field):
        k = self.step
        return self.lon[::k], self.lat[::k], np.asarray(field)[::k, ::k]

    def window(self, rows: slice, cols: slice) -> "MapFrame":
        cid = None if self.city_id is None else self.city_id[rows, cols]
        return MapFrame(self.lat[rows], self.lon[cols], cid, self.city_names)

    def draw(self, ax, field, *, title: str, cmap="viridis", label=PM_LABEL, vmin=None, vmax=None, norm=None,
             outline=None, points=None, point_label="IHS", names=True):
        if norm is None and (vmin is None or vmax is None):
            a, b = _limits(field)
            vmin = a if vmin is None else vmin
            vmax = b if vmax is None else vmax
        image = ax.imshow(np.ma.masked_invalid(field), extent=self.extent, origin="upper", cmap=cmap,
                          vmin=None if norm is not None else vmin, vmax=None if norm is not None else vmax,
                          norm=norm, interpolation="nearest", aspect=self.aspect)
        ax.figure.colorbar(image, ax=ax, label=label, shrink=0.85)
        if outline is not None and np.any(outline) and not np.all(outline):
            ax.contour(*self._coarse(np.asarray(outline, dtype=float)), levels=[0.5], colors="0.15",
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
            lon, lat, coarse = self._coarse(cid)
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
    fig = _figure("map")
    ax = fig.add_subplot()
    frame.draw(ax, field, title=title, cmap=cmap, label=label, outline=outline, points=points, vmin=vmin, vmax=vmax)
    return _save(fig, path)


def plot_trend_maps(frame: MapFrame, slope, z, p, path, *, what="IHS-related PM$_{2.5}$", alpha=0.05,
                    outline=None) -> Path:
    """Sen's slope (with significant pixels hatched) and Mann–Kendall z of annual means."""
    fig = _figure("wide")
    ax1, ax2 = fig.subplots(1, 2)
    lo, hi = _limits(slope, symmetric=True)
    frame.draw(ax1, slope, title=f"Sen's slope of annual-mean {what}", cmap="RdBu_r",
               norm=TwoSlopeNorm(0.0, lo, hi), label=f"{UNITS} yr⁻¹", outline=outline, names=False)
    sig = np.isfinite(p) & (np.nan_to_num(p, nan=1.0) < alpha)
    if sig.any() and not sig.all() and min(sig.shape) > 1:
        ax1.contourf(*frame._coarse(sig.astype(float)), levels=[0.5, 1.5], colors="none", hatches=["...."])
    zl = max(abs(_limits(z, symmetric=True)[0]), 2.0)
    frame.draw(ax2, z, title=f"Mann–Kendall z (hatched: p < {alpha:g})", cmap="RdBu_r",
               norm=TwoSlopeNorm(0.0, -zl, zl), label="z", outline=outline, names=False)
    return _save(fig, path)


# --------------------------------------------------------------------------- series
def plot_annual(annual: pd.DataFrame, path) -> Path:
    """Annual means (Fig. 7b, 8a–b): IHS-related PM2.5 and its contribution; total in IHS areas and background;
    year-on-year change of IHS-related PM2.5."""
    fig = _figure("panels")
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
    return _save(fig, path)


def plot_seasonal(seasonal: pd.DataFrame, path) -> Path:
    """Seasonal means per season-year (Fig. 8c): one line per season, open markers on incomplete seasons."""
    fig = _figure("series")
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
    return _save(fig, path)


def plot_daily(time, series: Mapping[str, np.ndarray], path, *, title: str, ylabel: str = PM_LABEL,
               trend: bool = False) -> Path:
    """Daily area-mean series (Fig. 7b, 12c) with a 30-day running mean; optional linear trend line."""
    fig = _figure("series")
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
    return _save(fig, path)


# --------------------------------------------------------------------------- cities
def plot_city_boxes(boxes: pd.DataFrame, path, *, periods: Sequence[str], cities: Sequence[str]) -> Path:
    """Box plots of pixel means of IHS-related PM2.5 per city (Fig. 11), drawn from precomputed numbers
    (quartiles, 1.5-IQR whiskers) — one panel per period."""
    fig = _figure("panels")
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
    return _save(fig, path)


def plot_city_annual(years, cities: Sequence[str], values: np.ndarray, shares: np.ndarray, path) -> Path:
    """Annual IHS-related PM2.5 and contribution per city (Fig. 10, Table 2)."""
    fig = _figure("wide")
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
    return _save(fig, path)


def plot_correlation(x, y, path, *, xlabel: str, r: float, p: float, labels=None) -> Path:
    """Scatter of annual IHS-related PM2.5 against an indicator with the least-squares line (Fig. 7c)."""
    fig = _figure("series")
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
    return _save(fig, path)


def plot_case_ihs(frame: MapFrame, field, outline, points, years, annual, slope, intercept, time, daily_share,
                  path, *, name: str) -> Path:
    """One IHS radiation area (Fig. 12): (a) location and mean map, (b) annual means with Sen's line,
    (c) daily contribution with its trend."""
    fig = _figure("panels")
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
    return _save(fig, path)


def plot_truth(est_map, true_map, time, est_daily, true_daily, path) -> Path:
    """Estimate against the synthetic truth: pixel period means (scatter) and IHS-area daily means."""
    fig = _figure("wide")
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
    return _save(fig, path)
