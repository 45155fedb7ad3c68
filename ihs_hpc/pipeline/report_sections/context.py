"""What every report section reads: the run's stores and tables, and where its figures go."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ...config import RunConfig
from ...io.cube import open_store
from ...report.maps import MapFrame
from ...stats.aggregate import means_from_sums
from ..inputs import input_store
from ..stats import MAPS_STORE, SUM_STORE, TRENDS_STORE, load_sums


def read_stats_csv(stats_dir: Path, name: str, **kw) -> pd.DataFrame | None:
    """``stats/<name>.csv`` as a DataFrame, None when the statistics stage did not write it."""
    path = Path(stats_dir) / f"{name}.csv"
    return pd.read_csv(path, **kw) if path.is_file() else None


@dataclass
class ReportContext:
    """The inputs of the report sections and the figures drawn so far.

    Attributes
    ----------
    config : RunConfig
    stats_dir, fig_dir : Path
        ``RUN/stats`` and ``RUN/report/figures``.
    cubes, areas, maps, trends : xarray.Dataset
        Input store, ``stage1.zarr``, ``stats/maps.zarr`` and ``stats/trend_maps.zarr``.
    sums, series : dict, xarray.Dataset
        Daily group sums of ``stats/series.zarr`` (:func:`~ihs_hpc.pipeline.stats.load_sums`).
    made : dict
        PNG file name → size kind (:data:`ihs_hpc.report.canvas.SIZES`) of every figure drawn.
    """

    config: RunConfig
    stats_dir: Path
    fig_dir: Path
    cubes: object
    areas: object
    maps: object
    trends: object
    sums: dict
    series: object
    made: dict = field(default_factory=dict)

    @classmethod
    def open(cls, config: RunConfig, fig_dir: Path) -> "ReportContext":
        """Open the stores of a run whose statistics stage has finished."""
        from ..run import store_path

        stats_dir = config.run_dir / "stats"
        sums, series = load_sums(stats_dir / SUM_STORE)
        return cls(config, stats_dir, fig_dir, open_store(input_store(config)), open_store(store_path(config, "stage1")),
                   open_store(stats_dir / MAPS_STORE), open_store(stats_dir / TRENDS_STORE), sums, series)

    @property
    def run_dir(self) -> Path:
        return self.config.run_dir

    def csv(self, name: str, **kw) -> pd.DataFrame | None:
        """A table of ``RUN/stats`` (None when absent)."""
        return read_stats_csv(self.stats_dir, name, **kw)

    @property
    def inside(self) -> np.ndarray:
        """Pixels inside any IHS radiation area (bool map)."""
        return self.areas["ihs_mask"].values.astype(bool)

    @property
    def frame(self) -> MapFrame:
        cubes = self.cubes
        city_en = [str(v) for v in cubes["city_name_en"].values] if "city_name_en" in cubes else []
        return MapFrame(self.maps["lat"].values, self.maps["lon"].values,
                        cubes["city_id"].values if "city_id" in cubes else None, city_en)

    @property
    def points(self):
        """(lat, lon) of every IHS, None without an IHS table."""
        return (self.cubes["ihs_lat"].values, self.cubes["ihs_lon"].values) if "ihs_lat" in self.cubes else None

    @property
    def group_kinds(self) -> np.ndarray:
        return np.array([str(v) for v in self.series["group_kind"].values])

    def daily_means(self, group: int) -> dict:
        """Daily means of one group of ``series.zarr`` (:func:`~ihs_hpc.stats.aggregate.means_from_sums`)."""
        return means_from_sums({k: v[group] for k, v in self.sums.items()})

    def area_daily(self) -> dict:
        """Daily means over all IHS radiation areas together."""
        return self.daily_means(int(np.flatnonzero(self.group_kinds == "ihs_area")[0]))

    def members(self, index: int) -> np.ndarray:
        """Flat pixel indices of the radiation area of IHS ``index`` (stage 1)."""
        offsets = self.areas["member_offset"].values
        return self.areas["member_pixel"].values[offsets[index]:offsets[index + 1]].astype(np.int64)

    def window(self, pixels: np.ndarray, pad: int = 5):
        """``(rows, cols, area)``: slices around ``pixels`` (flat indices) padded by ``pad`` cells, and the
        bool map of those pixels."""
        ny, nx = self.inside.shape
        rr, cc = np.divmod(np.asarray(pixels, np.int64), nx)
        rows = slice(max(int(rr.min()) - pad, 0), min(int(rr.max()) + pad + 1, ny))
        cols = slice(max(int(cc.min()) - pad, 0), min(int(cc.max()) + pad + 1, nx))
        area = np.zeros((ny, nx), bool)
        area[rr, cc] = True
        return rows, cols, area

    def points_in(self, frame: MapFrame, which=None):
        """The IHS points (``which``: indices, default all) that fall inside ``frame``'s extent."""
        if self.points is None:
            return None
        lat, lon = self.points
        if which is not None:
            lat, lon = lat[which], lon[which]
        keep = ((lat >= frame.extent[2]) & (lat <= frame.extent[3]) & (lon >= frame.extent[0])
                & (lon <= frame.extent[1]))
        return lat[keep], lon[keep]

    def figure(self, file_stem: str, kind: str, draw, *args, **kw) -> str:
        """Draw ``draw(*args, path=…, **kw)`` into ``figures/<file_stem>.png``; return its relative path."""
        path = self.fig_dir / f"{file_stem}.png"
        draw(*args, path=path, **kw)
        self.made[path.name] = kind
        return f"figures/{path.name}"
