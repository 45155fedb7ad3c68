"""The finished stores of a run directory, opened for export with clear errors.

A run directory (``ihs run``) holds ``cubes.zarr``, ``prep.zarr``, ``stage1.zarr``, ``stage2.zarr``,
``stage3.zarr`` and ``stats/`` (``maps.zarr``, ``trend_maps.zarr`` and the CSV tables). Exports read
only *complete* stores (:func:`ihs_hpc.io.cube.open_store` refuses one whose writer did not finish),
so a run that was killed half-way is never exported as if it were valid.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import EXIT_BAD_INPUT, IhsError
from ..grid import Grid
from ..io.cube import StoreError, open_store
from ..pipeline.run import STORE_NAMES
from ..pipeline.stats import MAPS_STORE, TRENDS_STORE


class ExportError(IhsError, ValueError):
    """A request the run cannot satisfy: unknown variable, missing or unfinished store, bad output path
    (exit code 2)."""

    exit_code = EXIT_BAD_INPUT


#: Stores that may hold a variable to write as NetCDF, by the short name used in ``STORE:VARIABLE``.
VARIABLE_STORES = {
    "cubes": STORE_NAMES["input"], "prep": STORE_NAMES["prep"], "stage1": STORE_NAMES["stage1"],
    "stage2": STORE_NAMES["stage2"], "stage3": STORE_NAMES["stage3"],
    "maps": f"stats/{MAPS_STORE}", "trend_maps": f"stats/{TRENDS_STORE}",
}


@dataclass
class RunOutputs:
    """Lazy access to the finished stores and tables of one run directory.

    Parameters
    ----------
    run_dir : path-like
        The run directory (``RUN`` of ``ihs run``).
    cubes : path-like, optional
        The input cubes; default ``RUN/cubes.zarr``, or the ``input.store`` recorded in
        ``RUN/config.yaml`` for a run made with ``input.kind: store``.
    """

    run_dir: Path
    cubes: Path | None = None
    _open: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.run_dir = Path(self.run_dir)
        if not self.run_dir.is_dir():
            raise ExportError(f"{self.run_dir}: no such run directory")
        self.cubes = Path(self.cubes) if self.cubes is not None else self._configured_cubes()

    def _configured_cubes(self) -> Path:
        default = self.run_dir / VARIABLE_STORES["cubes"]
        config = self.run_dir / "config.yaml"
        if default.exists() or not config.is_file():
            return default
        import yaml

        settings = (yaml.safe_load(config.read_text()) or {}).get("ihs", {})
        source = settings.get("input", {})
        if source.get("kind") == "store" and source.get("store"):
            return Path(source["store"]).expanduser()
        return default

    # ------------------------------------------------------------------ stores
    def path(self, store: str) -> Path:
        """Path of a store by short name (``cubes``, ``stage1``, ``maps`` …)."""
        return self.cubes if store == "cubes" else self.run_dir / VARIABLE_STORES[store]

    def store(self, store: str, what: str = "export"):
        """The store ``store`` opened with xarray; an :class:`ExportError` naming the stage that writes it
        when it is missing or unfinished."""
        if store not in self._open:
            path = self.path(store)
            stage = {"cubes": "ingest", "maps": "stats", "trend_maps": "stats"}.get(store, store)
            if not path.exists():
                raise ExportError(f"{path} not found: {what} needs it; run `ihs {stage}` on this run first")
            try:
                if store == "stage2":  # with eq. 3 evaluated, derived on read (not stored)
                    from ..pipeline.stage2 import open_stage2

                    self._open[store] = open_stage2(path)
                else:
                    self._open[store] = open_store(path)
            except StoreError as err:
                raise ExportError(f"{what}: {err}") from None
        return self._open[store]

    @cached_property
    def grid(self) -> Grid:
        return Grid.from_dataset(self.store("stage1"))

    def table(self, name: str, **kw) -> pd.DataFrame | None:
        """A CSV table of ``RUN/stats/`` (``None`` when the run has none of that name)."""
        path = self.run_dir / "stats" / f"{name}.csv"
        return pd.read_csv(path, **kw) if path.is_file() else None

    @property
    def stats_dir(self) -> Path:
        return self.run_dir / "stats"

    # ------------------------------------------------------------------ IHS and cities
    def membership(self) -> list[np.ndarray]:
        """Flat pixel indices (``row * nx + col``) of every IHS radiation area (stage 1, CSR layout)."""
        s1 = self.store("stage1")
        offsets = s1["member_offset"].values.astype(np.int64)
        pixels = s1["member_pixel"].values.astype(np.int64)
        return [pixels[offsets[i]:offsets[i + 1]] for i in range(offsets.size - 1)]

    def union_mask(self) -> np.ndarray:
        """Stage 1's ``ihs_mask``: pixels inside at least one IHS radiation area."""
        return self.store("stage1")["ihs_mask"].values.astype(bool)

    def ihs_table(self) -> pd.DataFrame:
        """One row per IHS, in stage 1's order: id, name, category, location, operating years, area, and
        the per-source statistics of ``stats/ihs_summary.csv`` (mean IHS PM2.5, share, trend)."""
        cubes = self.store("cubes")
        s1 = self.store("stage1")
        n = int(s1.sizes.get("ihs_edge", 1)) - 1

        def text(name, default):
            return [str(v) for v in cubes[name].values] if name in cubes else [default(i) for i in range(n)]

        frame = pd.DataFrame({
            "ihs_id": text("ihs_id", lambda i: str(i)),
            "name": text("ihs_name", lambda i: ""),
            "category": text("ihs_category", lambda i: ""),
        })
        if "ihs_lat" in cubes:
            frame["lat"] = cubes["ihs_lat"].values.astype(float)
            frame["lon"] = cubes["ihs_lon"].values.astype(float)
        else:
            frame["lat"] = self.grid.lat[cubes["ihs_row"].values]
            frame["lon"] = self.grid.lon[cubes["ihs_col"].values]
        if "ihs_operating" in cubes:
            operating = cubes["ihs_operating"].transpose("ihs", "year").values.astype(bool)
            years = cubes["year"].values.astype(int)
            frame["first_year"] = [int(years[r].min()) if r.any() else -1 for r in operating]
            frame["last_year"] = [int(years[r].max()) if r.any() else -1 for r in operating]
            frame["n_years_operating"] = operating.sum(axis=1).astype(int)
            frame["operating_years"] = [year_ranges(years[r]) for r in operating]
        members = self.membership()
        frame["n_pixels"] = [m.size for m in members]
        frame["area_km2"] = (s1["ihs_area_km2"].values.astype(float) if "ihs_area_km2" in s1
                             else [float(self.grid.cell_area_km2().ravel()[m].sum()) for m in members])
        summary = self.table("ihs_summary", dtype={"ihs_id": str})
        if summary is not None:
            keep = {"city": "city", "pm25_ihs": "pm25_ihs_mean", "pm25": "pm25_mean", "share_pct": "share_pct",
                    "sen_slope": "pm25_ihs_sen_slope", "mk_p": "pm25_ihs_mk_p", "mk_trend": "pm25_ihs_trend"}
            part = summary[["ihs_id"] + [c for c in keep if c in summary]].rename(columns=keep)
            frame = frame.merge(part, on="ihs_id", how="left", validate="one_to_one")
        return frame

    def cities(self) -> tuple[np.ndarray, list[str]] | None:
        """``(city_id map, English names)`` of the input cubes, or ``None`` when the run has no cities."""
        cubes = self.store("cubes")
        if "city_id" not in cubes:
            return None
        names_var = "city_name_en" if "city_name_en" in cubes else "city_name"
        names = [str(v) for v in cubes[names_var].values] if names_var in cubes else []
        return cubes["city_id"].values.astype(np.int32), names


def year_ranges(years) -> str:
    """``[2012, 2013, 2014, 2017]`` → ``"2012-2014, 2017"`` (empty string for no year)."""
    years = sorted(int(y) for y in years)
    parts, start = [], None
    for i, y in enumerate(years):
        if start is None:
            start = y
        if i + 1 == len(years) or years[i + 1] != y + 1:
            parts.append(str(y) if y == start else f"{start}-{y}")
            start = None
    return ", ".join(parts)


def atomic_path(path: Path) -> Path:
    """A temporary sibling of ``path`` to write first and :func:`os.replace` onto ``path`` when complete,
    so an earlier file of that name is never left half-overwritten."""
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
