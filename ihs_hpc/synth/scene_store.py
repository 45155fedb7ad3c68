"""Writing a synthetic scene (:class:`~ihs_hpc.synth.scene.Scene`) as the run's input store plus the truth.

Meteorology by met tiles, PM2.5 and the IHS truth by analysis tiles (one ``(time, tile, tile)`` chunk each,
never a whole cube in memory), the truth tables last; an unfinished store of the same scene is resumed.
Annual sums are accumulated per pixel in time order and reduced over pixels only at the end, so any tile
size gives identical arrays.
"""
from __future__ import annotations

import mmap
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..io.cube import (StoreError, VarSpec, create_store, cube_spec, finished_tiles, is_complete, map_spec,
                       mark_complete, met_spec, store_tiles, write_array, write_tile)
from .cities import settlement_density
from .meteorology import MET_VARIABLES
from .pm25 import compute_tile, missing_mask, year_sums
from .presets import GENERATOR_VERSION
from .terrain import base_source

if TYPE_CHECKING:
    from .scene import Scene

PM25_UNITS = "ug m-3"
PM25_STANDARD_NAME = "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"
ACC_DIR = "_synth_acc"

TRUTH_DEFINITION = (
    "pm25_ihs_true is the PM2.5 the industrial heat sources add: pm25 = max(1, other) + pm25_ihs_true, "
    "where other is background x meteorology + urban + noise; it is zero outside the radiation areas "
    "(region growing downhill <= 10 km, ihs_area_true_pixel) and outside each source's operating years"
)


def _variables() -> dict:
    specs = {
        "pm25": cube_spec(PM25_UNITS, "PM2.5 concentration (synthetic, daily mean)", PM25_STANDARD_NAME),
        "pm25_ihs_true": cube_spec(PM25_UNITS, "PM2.5 added by industrial heat sources (injected truth)",
                                   PM25_STANDARD_NAME),
    }
    for name, (units, long_name, standard_name) in MET_VARIABLES.items():
        specs[name] = met_spec(units, long_name, standard_name)
    specs["dem"] = map_spec("m", "surface elevation", "surface_altitude")
    specs["urban"] = map_spec("1", "settlement density index (synthetic stand-in for a built-up / population map)")
    specs["city_id"] = VarSpec(("lat", "lon"), {"long_name": "index of the city holding the cell centre (-1: none)",
                                                "flag_values": -1, "units": "1"}, "int16")
    specs["ihs_area_true"] = VarSpec(("lat", "lon"), {"long_name": "number of true IHS radiation areas covering the pixel",
                                                      "units": "1"}, "int16")
    return specs


def _static(scene: Scene) -> "xr.Dataset":  # noqa: F821
    import xarray as xr

    s, c, a = scene.sources, scene.cities, scene.areas
    n, ny_ = s.n, len(scene.years)
    nan_iy = np.full((n, ny_), np.nan)
    nan_y = np.full(ny_, np.nan)
    offsets = np.concatenate([[0], np.cumsum([len(m) for m in a.members])]).astype(np.int64)
    pixels = np.concatenate(a.members).astype(np.int64) if n else np.zeros(0, np.int64)
    pm = PM25_UNITS
    ds = xr.Dataset(
        {
            "ihs_id": ("ihs", s.ids.astype(object), {"long_name": "IHS identifier"}),
            "ihs_name": ("ihs", s.names.astype(object), {"long_name": "IHS name"}),
            "ihs_category": ("ihs", s.category.astype(object), {"long_name": "IHS category"}),
            "ihs_lat": ("ihs", s.lat, {"units": "degrees_north", "long_name": "IHS latitude (WGS84)"}),
            "ihs_lon": ("ihs", s.lon, {"units": "degrees_east", "long_name": "IHS longitude (WGS84)"}),
            "ihs_row": ("ihs", s.row.astype(np.int32), {"long_name": "row of the IHS cell on the analysis grid"}),
            "ihs_col": ("ihs", s.col.astype(np.int32), {"long_name": "column of the IHS cell on the analysis grid"}),
            "ihs_operating": (("ihs", "year"), s.operating(scene.years), {"long_name": "IHS in operation during the year"}),
            "ihs_start_year": ("ihs", s.start_year.astype(np.int32), {"long_name": "first operating year"}),
            "ihs_end_year": ("ihs", s.end_year.astype(np.int32), {"long_name": "last operating year"}),
            "ihs_decay_km": ("ihs", s.decay_km, {"units": "km", "long_name": "e-folding distance of the plume weight exp(-d/L)"}),
            "ihs_emission": (("ihs", "time"), scene.emission,
                             {"units": pm, "long_name": "IHS emission strength: PM2.5 added at the source pixel "
                                                        "under reference meteorology (zero when not operating)"}),
            "ihs_area_true_offset": ("ihs_edge", offsets,
                                     {"long_name": "start of each IHS's members in ihs_area_true_pixel"}),
            "ihs_area_true_pixel": ("ihs_member", pixels,
                                    {"long_name": "flat pixel index row*nx+col of the true IHS area members (sorted per IHS)"}),
            "ihs_true_annual_mean": (("ihs", "year"), nan_iy.copy(),
                                     {"units": pm, "long_name": "annual mean over the IHS's area of its own PM2.5 contribution"}),
            "ihs_area_annual_mean": (("ihs", "year"), nan_iy.copy(),
                                     {"units": pm, "long_name": "annual mean of pm25_ihs_true over the IHS's area "
                                                                "(all sources; comparable to a single-area estimate)"}),
            "pm25_ihs_true_annual_mean": ("year", nan_y.copy(),
                                          {"units": pm, "long_name": "annual mean of pm25_ihs_true over the union of all IHS areas"}),
            "pm25_ihs_true_annual_mean_operating": ("year", nan_y.copy(),
                                                    {"units": pm, "long_name": "annual mean of pm25_ihs_true over the union of "
                                                                               "the areas of the IHS operating that year"}),
            "pm25_annual_mean_in_areas": ("year", nan_y.copy(),
                                          {"units": pm, "long_name": "annual mean of pm25 over the union of all IHS areas"}),
            "ihs_share_true": ("year", nan_y.copy(),
                               {"units": "1", "long_name": "share of pm25 due to IHS over the union of all IHS areas"}),
            "pm25_annual_mean": ("year", nan_y.copy(), {"units": pm, "long_name": "annual mean of pm25 over the scene"}),
            "city_name": ("city", c.name.astype(object), {"long_name": "city name"}),
            "city_name_en": ("city", c.name_en.astype(object), {"long_name": "city name (English)"}),
            "city_adcode": ("city", c.adcode.astype(np.int64), {"long_name": "administrative division code"}),
            "city_cells": ("city", np.array([(c.city_id == k).sum() for k in range(len(c.name))], dtype=np.int64),
                           {"long_name": "number of grid cells in the city"}),
        },
        coords={"year": ("year", scene.years.astype(np.int64), {"long_name": "calendar year"}),
                "city": ("city", np.arange(len(c.name), dtype=np.int16), {"long_name": "city index (value of city_id)"})},
    )
    return ds


def _attrs(scene: Scene, tile_size: int) -> dict:
    import json

    p = scene.preset
    variant = {}
    if scene.options is not None and not scene.options.is_default:
        # only variants carry these attributes: a preset's default scene keeps its bytes
        variant = {"scene_options": json.dumps(scene.options.set(), sort_keys=True)}
        if scene.options.noise == "multiplicative" or scene.options.spikes:
            variant["truth_definition_observed"] = (
                "the observed pm25 is the true PM2.5 times a log-normal retrieval factor (noise: multiplicative) "
                "and/or with isolated spikes (x3-6 on a fraction 'spikes' of pixel-days); pm25_ihs_true is what the "
                "sources add to the air, unaffected")
        if scene.options.ihs_share is not None:
            variant["target_ihs_share"] = float(scene.options.ihs_share)
    return {
        "title": "ihs_hpc synthetic scene with known IHS truth (observing-system simulation)",
        "source": "synthetic: ihs_hpc.synth",
        "generator": "ihs_hpc.synth",
        "synth_version": GENERATOR_VERSION,
        "preset": p.name,
        "seed": scene.seed,
        "description": p.description,
        "truth_definition": TRUTH_DEFINITION,
        "dem_base": base_source(),
        "time_coverage_start": str(scene.time[0].astype("datetime64[D]")),
        "time_coverage_end": str(scene.time[-1].astype("datetime64[D]")),
        "days_in": "Beijing time (UTC+8)",
        "n_ihs": int(scene.sources.n),
        "ihs_emission_scale": float(scene.emission_scale),
        "target_ihs_share": float(p.target_ihs_share),
        "synth_tile_size": int(tile_size),
        **variant,
    }


def _check_resumable(path: Path, scene: Scene, tile_size: int) -> None:
    import zarr

    attrs = dict(zarr.open_group(path, mode="r").attrs)
    want = {"preset": scene.preset.name, "seed": scene.seed, "synth_version": GENERATOR_VERSION,
            "synth_tile_size": int(tile_size), "scene_options": _attrs(scene, tile_size).get("scene_options")}
    for key, value in want.items():
        if attrs.get(key) != value:
            raise StoreError(
                f"{path} is an unfinished store of another scene ({key}={attrs.get(key)!r}, wanted {value!r}); "
                f"pass overwrite=True to replace it"
            )


class _Progress:
    def __init__(self, progress, total: int, desc: str):
        self.progress, self.total, self.done = progress, total, 0
        self._bar = None
        if progress is None:
            from ..progress import progress as reporter  # a bar on a terminal, lines in a log

            self._bar = reporter(total, desc, "tile")
        elif callable(progress):
            progress(0, total)

    def step(self):
        self.done += 1
        if self._bar is not None:
            self._bar.update(1)
        elif callable(self.progress):
            self.progress(self.done, self.total)

    def close(self):
        if self._bar is not None:
            self._bar.close()


class DayScratch:
    """A ``(time, ny, nx)`` float32 scratch file mapped into memory, whose pages can be handed back.

    The ``files`` layout writes PM2.5 by tile (all days of a tile at once) but the CHAP files by day,
    so the cube passes through this file once. Pages written through a shared mapping stay in the
    process's resident set until unmapped; :meth:`release` drops them (``MADV_DONTNEED``: for a shared
    file mapping the data stays in the page cache and the file), so the resident memory of the
    generator stays about one tile-row band (or a few days) instead of the whole cube.
    """

    def __init__(self, path, shape):
        self.path = Path(path)
        self.shape = tuple(int(n) for n in shape)
        nbytes = int(np.prod(self.shape)) * 4
        with open(self.path, "w+b") as fh:
            fh.truncate(nbytes)
            self._mmap = mmap.mmap(fh.fileno(), nbytes, access=mmap.ACCESS_WRITE)
        self.array = np.frombuffer(self._mmap, dtype=np.float32).reshape(self.shape)

    def __getitem__(self, index):
        return self.array[index]

    def __setitem__(self, index, value):
        self.array[index] = value

    def __len__(self):
        return self.shape[0]

    def release(self) -> None:
        """Hand the mapped pages back to the kernel (the data stays in the file)."""
        if hasattr(mmap, "MADV_DONTNEED"):
            self._mmap.madvise(mmap.MADV_DONTNEED)

    def close(self) -> None:
        self.array = None
        self._mmap.close()


def write_scene(scene: Scene, path, *, tile_size: int | None = None, progress=False, overwrite: bool = False,
                chap_scratch: DayScratch | None = None, attrs=None) -> Path:
    """Write a built scene as a complete store (input layout + truth); resumes an unfinished one."""
    path = Path(path)
    tile_size = int(tile_size or scene.preset.tile_size)
    if tile_size < 1:
        raise ValueError(f"tile_size must be >= 1, got {tile_size}")
    grid, met_grid = scene.grid, scene.met_grid
    if path.exists() and not overwrite:
        if is_complete(path):
            raise StoreError(f"{path} already holds a complete store; pass overwrite=True to replace it")
        if (path / "zarr.json").exists():
            _check_resumable(path, scene, tile_size)
    create_store(path, grid, _variables(), tile_size=tile_size, time=scene.time, met_grid=met_grid,
                 static=_static(scene), attrs={**_attrs(scene, tile_size), **(attrs or {})}, overwrite=overwrite)
    write_array(path, "dem", scene.dem)
    write_array(path, "urban", settlement_density(scene.grid, scene.model.blobs))
    write_array(path, "city_id", scene.cities.city_id)
    write_array(path, "ihs_area_true", scene.areas.count)

    done = finished_tiles(path)
    met_tiles = store_tiles(path, met_grid, next(iter(MET_VARIABLES)))
    tiles = grid.tiles(tile_size)
    bar = _Progress(progress, len(tiles), f"synth {scene.preset.name}")
    for tile in met_tiles:
        if "met_" + tile.name in done:
            continue
        write_tile(path, tile, {v: scene.met.fields[v][:, tile.rows, tile.cols] for v in MET_VARIABLES},
                   record="met_" + tile.name)

    n_years = len(scene.years)
    truth_sum = np.zeros((n_years,) + grid.shape, dtype=np.float64)
    pm_sum = np.zeros((n_years,) + grid.shape, dtype=np.float64)
    own_sum = [np.zeros((n_years, len(m)), dtype=np.float64) for m in scene.areas.members]
    acc_dir = path / ACC_DIR
    acc_dir.mkdir(exist_ok=True)
    fraction = scene.preset.missing_fraction
    for tile in tiles:
        acc_file = acc_dir / f"{tile.name}.npz"
        if tile.name in done and acc_file.exists() and chap_scratch is None:
            with np.load(acc_file) as acc:
                truth_sum[:, tile.rows, tile.cols] = acc["truth"]
                pm_sum[:, tile.rows, tile.cols] = acc["pm"]
                for k, i in enumerate(acc["own_index"]):
                    own_sum[int(i)][:, acc[f"own_sel_{k}"]] = acc[f"own_sum_{k}"]
            bar.step()
            continue
        pm25, truth, own = compute_tile(scene.model, tile.rows, tile.cols)
        t_sum = year_sums(truth, scene.model.year_of_t, n_years)
        p_sum = year_sums(pm25, scene.model.year_of_t, n_years)
        truth_sum[:, tile.rows, tile.cols] = t_sum
        pm_sum[:, tile.rows, tile.cols] = p_sum
        arrays = {"truth": t_sum, "pm": p_sum, "own_index": np.array([o[0] for o in own], dtype=np.int64)}
        for k, (i, sel, sums) in enumerate(own):
            own_sum[i][:, sel] = sums
            arrays[f"own_sel_{k}"] = sel
            arrays[f"own_sum_{k}"] = sums
        tmp = acc_dir / f".{tile.name}.tmp.npz"
        np.savez(tmp, **arrays)
        tmp.replace(acc_file)
        if chap_scratch is not None:
            block = pm25
            if fraction > 0:
                block = np.where(missing_mask(scene.seed, scene.n_time, tile.rows, tile.cols, fraction),
                                 np.float32(65535.0), pm25)
            chap_scratch[:, tile.rows, tile.cols] = block
            if tile.cols.stop == grid.nx:  # end of a tile-row band: its pages go back to the kernel
                chap_scratch.release()
        write_tile(path, tile, {"pm25": pm25, "pm25_ihs_true": truth})
        del pm25, truth, own
        bar.step()
    bar.close()

    tables = truth_tables(scene, truth_sum, pm_sum, own_sum)
    for name, values in tables.items():
        write_array(path, name, values)
    summary = summary_attrs(scene, tables, truth_sum, pm_sum)
    shutil.rmtree(acc_dir, ignore_errors=True)
    mark_complete(path, **summary)
    return path


def truth_tables(scene: Scene, truth_sum, pm_sum, own_sum) -> dict:
    """Annual truth tables from per-pixel annual sums (reduced over pixels in a fixed order)."""
    days = np.array([b - a for a, b in scene.year_bounds], dtype=np.float64)
    n_years = len(days)
    members = scene.areas.members
    n = len(members)
    flat_truth = truth_sum.reshape(n_years, -1)
    flat_pm = pm_sum.reshape(n_years, -1)
    union = (scene.areas.count > 0).ravel()
    area_mean = np.full((n, n_years), np.nan)
    own_mean = np.full((n, n_years), np.nan)
    for i, m in enumerate(members):
        area_mean[i] = flat_truth[:, m].sum(axis=1) / (days * len(m))
        own_mean[i] = own_sum[i].sum(axis=1) / (days * len(m))
    operating = scene.sources.operating(scene.years)
    op_mean = np.zeros(n_years)
    for y in range(n_years):
        mask = np.zeros(union.size, dtype=bool)
        for i in np.flatnonzero(operating[:, y]):
            mask[members[i]] = True
        op_mean[y] = flat_truth[y, mask].sum() / (days[y] * mask.sum()) if mask.any() else np.nan
    truth_u = flat_truth[:, union].sum(axis=1) / (days * union.sum())
    pm_u = flat_pm[:, union].sum(axis=1) / (days * union.sum())
    return {
        "ihs_true_annual_mean": own_mean,
        "ihs_area_annual_mean": area_mean,
        "pm25_ihs_true_annual_mean": truth_u,
        "pm25_ihs_true_annual_mean_operating": op_mean,
        "pm25_annual_mean_in_areas": pm_u,
        "ihs_share_true": truth_u / pm_u,
        "pm25_annual_mean": flat_pm.sum(axis=1) / (days * flat_pm.shape[1]),
    }


def summary_attrs(scene: Scene, tables: dict, truth_sum, pm_sum) -> dict:
    """Headline attributes of a written scene: true IHS share, mean PM2.5, mean IHS PM2.5 in the areas."""
    union = (scene.areas.count > 0)
    t = float(truth_sum[:, union].sum())
    p = float(pm_sum[:, union].sum())
    return {
        "ihs_share_true": t / p,
        "pm25_mean": float(pm_sum.sum() / (scene.n_time * scene.grid.size)),
        "pm25_ihs_true_mean_in_areas": t / (scene.n_time * int(union.sum())),
        "n_area_pixels": int(union.sum()),
    }


def scene_summary(path) -> dict:
    """Headline numbers of a generated scene (for the CLI)."""
    import zarr

    path = Path(path)
    store = path / "truth.zarr" if (path / "truth.zarr").exists() else path
    group = zarr.open_group(store, mode="r")
    attrs = dict(group.attrs)
    return {
        "store": str(store),
        "preset": attrs.get("preset"),
        "seed": attrs.get("seed"),
        "shape": tuple(group["pm25"].shape),
        "met_shape": tuple(group["t2m"].shape),
        "n_ihs": attrs.get("n_ihs"),
        "ihs_share_true": attrs.get("ihs_share_true"),
        "pm25_mean": attrs.get("pm25_mean"),
        "n_area_pixels": attrs.get("n_area_pixels"),
        "time_coverage": (attrs.get("time_coverage_start"), attrs.get("time_coverage_end")),
        "lat": [float(group["lat"][-1]), float(group["lat"][0])],
        "lon": [float(group["lon"][0]), float(group["lon"][-1])],
        "pm25_annual_mean": dict(zip(map(int, group["year"][:]), map(float, group["pm25_annual_mean"][:]))),
        "ihs_share_by_year": dict(zip(map(int, group["year"][:]), map(float, group["ihs_share_true"][:]))),
    }
