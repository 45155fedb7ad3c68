"""Stage 2 (seed 000 §2.3.3): STL baselines, regression on meteorological baselines, ``pm25_bl_tem``.

1. Meteorological baselines (trend + seasonal, eq. 2) on the native 0.1° grid, one task per met tile and
   variable (:class:`MetTile`).
2. Per analysis tile, one task, in chunks of pixels (:func:`~ihs_hpc.ops.met_removal.remove_met_block`):
   the PM2.5 baseline of every pixel (eq. 2, one GEMM with the cached STL operator when ``robust`` is
   false), the six met baselines interpolated bilinearly to the pixels as they are fitted (exact:
   interpolation commutes with non-robust STL; the met windows come from decoded chunks kept per
   process, :mod:`ihs_hpc.io.chunk_cache`), the regression (eq. 3) and the met-removed baseline
   ``pm25_bl_tem = pm25_bl − pm25_bl_mlr`` (eq. 4). With ``keep_level`` (default) ``pm25_bl_tem`` keeps
   the level of the pixel's series (the kept level of :mod:`ihs_hpc.ops.met_removal`), each year's with
   ``stage2.level_window: year`` (default), the record's with ``record``.

Where eq. 3 is fitted is ``stage2.met_fit``: ``pixel`` fits every pixel on its own series (the paper
taken literally); ``background`` (default) fits where no IHS is active and carries the coefficients
into the IHS areas (:mod:`ihs_hpc.pipeline.met_fit`), so that the IHS signal's own seasonal cycle is
not absorbed by the seasonal met baselines and removed with the weather.

STL settings: the paper's "seasonal window set to 365 days" is the seasonal *period* of 365 days
(``stage2.stl.period: 365``, statsmodels' ``period``); ``stage2.stl.seasonal`` is the length of the
seasonal smoother in *cycles* (years), statsmodels' default 7. ``seasonal`` set to an odd number at
least as large as the number of years (e.g. 11 for 2012–2021) makes the seasonal component nearly
the same every year (R's ``s.window = "periodic"`` in the limit).

Writes ``stage2.zarr``: ``met_bl_<var>`` on the met grid; ``pm25_bl`` and ``pm25_bl_tem`` cubes;
``coef_a0`` (intercept) … ``coef_a6``, ``r2``, ``met_fit_source`` and ``met_fit_days`` maps;
``short_term_level`` per year; the mode in the root attribute ``met_fit``. Tiles already recorded are
skipped. Eq. 3 evaluated, ``pm25_bl_mlr`` (:data:`MET_EXPLAINED`), is not stored: it is ``a0 + sum_i a_i
met_bl_i`` of the stored maps and met baselines, a third of the stage's cube bytes that nothing downstream
reads; :func:`open_stage2` (``Run.open("stage2")``, ``ihs export``) derives it per tile on read
(:func:`met_explained_tile`), lazily.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import zarr

from ..config import RunConfig
from ..grid import Grid, Tile
from ..errors import StoreError
from ..io.cube import (VarSpec, create_store, cube_spec, is_recorded, map_spec, mark_complete, met_spec, open_store, pending_tiles,
                       publish, read_region, read_tile, store_tiles, write_tile)
from ..io.chunk_cache import read_region_cached
from ..ops.interp import bilinear_weights
from ..ops.met_removal import MetRemovalBlock, apply_met_block, remove_met_block, warm
from ..ops.stl import stl_baseline
from ..ops.stl_operator import ensure_stl_operator
from ..ops.timefill import fill_time_gaps
from .executor import map_tiles, warm_workers
from .inputs import input_store, pm25_store
from .met_fit import FIT_NONE, FIT_OWN, SOURCE_MEANING

PM25_UNITS = "ug m-3"
#: eq. 3 evaluated: derived on read from the coefficient maps and met baselines, not stored (module docstring)
MET_EXPLAINED = "pm25_bl_mlr"
MET_EXPLAINED_ATTRS = {"units": PM25_UNITS, "long_name": "PM2.5 baseline explained by meteorological baselines "
                       "(eq. 3), derived on read from coef_a* and met_bl_*"}
#: prefix of the records of the met-baseline tasks (:class:`MetTile`)
MET_PREFIX = "met_"


def stl_settings(config: RunConfig) -> dict:
    """The ``stage2.stl`` settings of ``config`` as keyword arguments of :func:`ihs_hpc.ops.stl.stl_baseline`."""
    return dict(config["stage2.stl"])


def _met_grid_of(cubes: Path) -> Grid:
    attrs = zarr.open_group(cubes, mode="r").attrs
    south, north, west, east, res = attrs["ihs_met_grid"]
    return Grid(south, north, west, east, res)


@dataclass(frozen=True)
class MetTile:
    """One meteorological variable over one tile of the met grid: a task of the met baselines.

    One task per variable, so that a met grid of a single tile (the demo's, 13 × 16 cells) still keeps
    every worker busy; recorded as ``met_<variable>_<tile>``.
    """

    tile: Tile
    variable: str

    @property
    def name(self) -> str:
        return f"{self.variable}_{self.tile.name}"

    @property
    def rows(self) -> slice:
        return self.tile.rows

    @property
    def cols(self) -> slice:
        return self.tile.cols

    @property
    def shape(self) -> tuple[int, int]:
        return self.tile.shape


def met_baseline_tile(task: MetTile, *, cubes: Path, out: Path, settings: dict) -> None:
    """The baseline of one met variable over one tile of the native met grid (eq. 2).

    Days missing in the input (tolerated ERA5 gaps) are filled along time first
    (:func:`~ihs_hpc.ops.timefill.fill_time_gaps`); how many per cell is kept in ``met_filled_<var>``.
    """
    tile, var = task.tile, task.variable
    group = zarr.open_group(cubes, mode="r")
    block = np.asarray(read_region(group[var], (slice(None), tile.rows, tile.cols), store=cubes, name=var,
                                   where=f"met tile {tile.name}"), dtype=np.float64)
    n_time = block.shape[0]
    series = block.reshape(n_time, -1).T
    filled = np.zeros(series.shape[0], dtype=np.int64)
    if not np.isfinite(series).all():
        series, filled = fill_time_gaps(series, period=int(settings.get("period") or 365), axis=1)
        empty = ~np.isfinite(series).all(axis=1)
        if empty.any():
            row, col = np.unravel_index(int(np.flatnonzero(empty)[0]), block.shape[1:])
            raise StoreError(f"{cubes}: variable {var!r} has no value on any day at {int(empty.sum())} "
                             f"meteorology cell(s) of met tile {tile.name} (first: row {tile.rows.start + row}, "
                             f"col {tile.cols.start + col}); the ERA5 files do not cover the grid there")
    baseline = stl_baseline(series, **settings)
    write_tile(out, tile, {f"met_bl_{var}": baseline.T.reshape(block.shape).astype(np.float32),
                           f"met_filled_{var}": filled.reshape(block.shape[1:]).astype(np.int32)},
               record=MET_PREFIX + task.name)


def tile_series(tile, *, pm25_source: Path, grid: Grid, pm25_var: str = "pm25") -> tuple[np.ndarray, np.ndarray]:
    """The PM2.5 series of one tile, time-major ``(time, pixels)`` as stored, and which pixels are analysed.

    Pixels with no value on any day (masked out by prep) are not analysed; a pixel with only some days
    missing is an error (prep fills every gap).
    """
    pm25 = read_tile(pm25_source, tile, [pm25_var])[pm25_var]
    n_time, ny, nx = pm25.shape
    series = pm25.reshape(n_time, -1)  # time-major; the chunks of remove_met_block take pixel columns
    valid = np.isfinite(series)
    analysed = valid.any(axis=0)
    partial_gaps = analysed & ~valid.all(axis=0)
    del valid
    if partial_gaps.any():
        row, col = np.unravel_index(int(np.flatnonzero(partial_gaps)[0]), (ny, nx))
        raise StoreError(
            f"{pm25_source}: variable {pm25_var!r} has {int(partial_gaps.sum())} pixel series with missing days in "
            f"tile {tile.name} (first: lat {grid.lat[tile.rows][row]:.3f}, lon {grid.lon[tile.cols][col]:.3f}); "
            f"stage 2 needs complete series: enable prep (prep.enabled: true), which fills every gap")
    return series, analysed


def tile_met_rows(tile, *, out: Path, variables: tuple[str, ...], met_lat: np.ndarray, met_lon: np.ndarray,
                  grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The met baselines around a tile and the bilinear weights of its cell centres in them.

    Returns ``rows (k, cells, time)`` (one met cell's series per row, the window around the tile + 1 cell)
    and ``index, weight (pixels, 4)`` (:func:`~ihs_hpc.ops.interp.bilinear_weights`): a pixel's regressors
    are :func:`~ihs_hpc.ops.interp.apply_bilinear_rows` of them, or never stored
    (:func:`~ihs_hpc.ops.mlr.mlr_bilinear`).
    """
    lat, lon = grid.lat[tile.rows], grid.lon[tile.cols]
    r0 = max(int(np.searchsorted(-met_lat, -lat.max(), side="right")) - 2, 0)
    r1 = min(int(np.searchsorted(-met_lat, -lat.min(), side="left")) + 2, len(met_lat))
    c0 = max(int(np.searchsorted(met_lon, lon.min(), side="right")) - 2, 0)
    c1 = min(int(np.searchsorted(met_lon, lon.max(), side="left")) + 2, len(met_lon))
    index, weight = bilinear_weights(met_lat[r0:r1], met_lon[c0:c1], lat, lon)
    met_rows = []
    for var in variables:
        # decoded met chunks are kept in this process: neighbouring tiles read the same ones (io.chunk_cache)
        window = read_region_cached(out, f"met_bl_{var}", (slice(None), slice(r0, r1), slice(c0, c1)))
        met_rows.append(window.reshape(window.shape[0], -1).T)  # one met cell's series per row
    return np.stack(met_rows), index, weight


def block_outputs(tile, result: MetRemovalBlock) -> dict:
    """The tile's arrays of a :class:`~ihs_hpc.ops.met_removal.MetRemovalBlock` that the store keeps: the
    cubes it holds but ``pm25_bl_mlr`` (derived on read, :data:`MET_EXPLAINED`), the coefficient maps,
    ``r2`` and ``short_term_level``."""
    ny, nx = tile.shape
    n_time = result.pm25_bl.shape[0]
    blocks = {name: getattr(result, name).reshape(n_time, ny, nx) for name in ("pm25_bl", "pm25_bl_tem")
              if getattr(result, name) is not None}
    blocks["r2"] = result.r2.reshape(ny, nx)
    blocks["short_term_level"] = result.short_term_level.T.reshape(-1, ny, nx)
    for k in range(result.coef.shape[-1]):
        blocks[f"coef_a{k}"] = result.coef[:, k].reshape(ny, nx)
    return blocks


def pm25_tile(tile, *, pm25_source: Path, out: Path, variables: tuple[str, ...], settings: dict,
              met_lat: np.ndarray, met_lon: np.ndarray, grid: Grid, level: dict, pm25_var: str = "pm25") -> None:
    """``met_fit: pixel`` — baseline, per-pixel regression and met removal for one analysis tile.

    The paper's method taken literally (seed 000 §2.3.3): eq. 3 fitted on every pixel's own series, in
    chunks of pixels (:func:`~ihs_hpc.ops.met_removal.remove_met_block`).
    """
    series, analysed = tile_series(tile, pm25_source=pm25_source, grid=grid, pm25_var=pm25_var)
    rows, index, weight = tile_met_rows(tile, out=out, variables=variables, met_lat=met_lat, met_lon=met_lon,
                                        grid=grid)
    result = remove_met_block(series, rows, index, weight, analysed=analysed, **level, **settings)  # eqs. 2-4
    blocks = block_outputs(tile, result)
    fitted = np.isfinite(result.r2).reshape(tile.shape)
    blocks["met_fit_source"] = np.where(fitted, FIT_OWN, FIT_NONE).astype(np.int8)
    blocks["met_fit_days"] = np.where(fitted, series.shape[0], 0).astype(np.int32)
    write_tile(out, tile, blocks)


def stage2_variables(met_vars) -> dict:
    """Variable specs of ``stage2.zarr`` for the meteorological variables ``met_vars``."""
    specs = {
        "pm25_bl": cube_spec(PM25_UNITS, "PM2.5 baseline: STL trend + seasonal (eq. 2)"),
        "pm25_bl_tem": cube_spec(PM25_UNITS, "PM2.5 baseline with meteorology removed (eq. 4; see keep_level)"),
        "r2": map_spec("1", "coefficient of determination of the regression (eq. 3)"),
        "short_term_level": VarSpec(("year", "lat", "lon"), {
            "units": PM25_UNITS, "long_name": "mean of the STL short-term component R (eq. 1) over each year "
                                              "(level_window: year) or the record; added back to pm25_bl_tem with "
                                              "keep_level"}, "float32"),
        "coef_a0": map_spec(PM25_UNITS, "regression intercept a0 (eq. 3)", dtype="float64"),
        "met_fit_source": map_spec("1", f"where the pixel's coefficients come from: {SOURCE_MEANING}", dtype="int8"),
        "met_fit_days": map_spec("1", "days the pixel's own regression (eq. 3) was fitted on (0: carried or none)",
                                 dtype="int32"),
    }
    for k, var in enumerate(met_vars, start=1):
        specs[f"coef_a{k}"] = map_spec(f"{PM25_UNITS} per unit of {var}",
                                       f"regression coefficient a{k} of {var} baseline (eq. 3)", dtype="float64")
        specs[f"met_bl_{var}"] = met_spec("same as input", f"{var} baseline: STL trend + seasonal (eq. 2)")
        specs[f"met_filled_{var}"] = VarSpec(("met_lat", "met_lon"), {
            "units": "1", "long_name": f"days of {var} missing in the input and filled along time"}, "int32")
    return specs


def run_stage2(config: RunConfig, client, echo) -> dict:
    """Stage 2 (seed 000 §2.3.3, eqs. 1–4): STL baselines, regression on the met baselines and met removal into
    ``stage2.zarr``."""
    from .plan import stamp, staging_path
    from .run import store_path

    cubes = input_store(config)
    pm25_source = pm25_store(config)
    open_store(pm25_source)  # a clear error when the store is missing or unfinished
    final = store_path(config, "stage2")
    out = staging_path(final)
    source = open_store(cubes)
    grid = Grid.from_dataset(source)
    met_grid = _met_grid_of(cubes)
    variables = tuple(config["stage2.met_variables"])
    missing = [v for v in ("pm25",) + variables if v not in source]
    if missing:
        raise StoreError(f"{cubes}: stage 2 needs variables {missing}, not found (have {sorted(source.data_vars)})")
    units = {v: source[v].attrs.get("units", "") for v in variables}
    settings = stl_settings(config)
    mode = config["stage2.met_fit"]
    tile_size = config["grid.tile_size"]
    specs = stage2_variables(variables)
    for var in variables:
        specs[f"met_bl_{var}"] = met_spec(units[var], specs[f"met_bl_{var}"].attrs["long_name"])
    day_years = source.time.dt.year.values
    years, level_year = np.unique(day_years, return_inverse=True)
    create_store(out, grid, specs, tile_size=tile_size, time=source.time.values, met_grid=met_grid, years=years,
                 attrs={"stl_settings": dict(settings), "met_variables": list(variables),
                        "keep_level": bool(config["stage2.keep_level"]),
                        "level_window": config["stage2.level_window"], "met_fit": mode,
                        "source": str(cubes), "pm25_source": str(pm25_source), **stamp(config, "stage2")})
    n_time = source.sizes["time"]
    # build the STL operator once here (unless cached on disk) so workers find it there; and let every worker
    # load it, and its kernels, while the met baselines run on one of them (ihs_hpc.ops.met_removal.warm)
    if not settings.get("robust"):
        ensure_stl_operator(n_time, **settings)
    warming = warm_workers(client, partial(warm, n_time, settings, len(variables)))

    met_tiles = store_tiles(out, met_grid, f"met_bl_{variables[0]}")
    met_tasks = pending_tiles(out, [MetTile(tile, var) for tile in met_tiles for var in variables], prefix=MET_PREFIX)
    met_stats = map_tiles(partial(met_baseline_tile, cubes=cubes, out=out, settings=settings), met_tasks, client,
                          desc="stage2 met baselines", done=partial(is_recorded, out, prefix=MET_PREFIX))
    # the level of R kept in pm25_bl_tem (ihs_hpc.ops.met_removal): per year or over the record
    level = dict(keep_level=bool(config["stage2.keep_level"]), year_of_day=level_year.astype(np.int64),
                 level_by_year=config["stage2.level_window"] == "year")
    common = dict(out=out, variables=variables, met_lat=met_grid.lat, met_lon=met_grid.lon, grid=grid, level=level)
    fit_counts = None
    if mode == "pixel":
        tiles = pending_tiles(out, grid.tiles(tile_size))
        stats = map_tiles(partial(pm25_tile, pm25_source=pm25_source, settings=settings, **common), tiles, client,
                          desc="stage2 PM2.5 tiles", done=partial(is_recorded, out))
    else:
        from . import met_fit
        from ..ops.stl import stl_settings as resolve_stl

        stage1 = store_path(config, "stage1")
        areas = open_store(stage1)
        if Grid.from_dataset(areas) != grid:
            raise StoreError(f"{stage1} and {cubes} are not on the same grid")
        stage1_years = [int(y) for y in areas["year"].values]
        missing_years = sorted(set(int(y) for y in day_years) - set(stage1_years))
        if missing_years:
            raise StoreError(f"{stage1}: ihs_count_year has no mask for the years {missing_years} of {cubes}")
        mask_year_of_day = np.searchsorted(np.asarray(stage1_years), day_years).astype(np.int64)
        margin = resolve_stl(**settings).trend // 2
        tiles = pending_tiles(out, grid.tiles(tile_size))
        stats = map_tiles(partial(met_fit.fit_tile, pm25_source=pm25_source, stage1=stage1, settings=settings,
                                  mask_year_of_day=mask_year_of_day,
                                  idle_min_days=int(config["stage2.met_fit_idle_days"]), idle_margin=int(margin),
                                  **common), tiles, client, desc="stage2 PM2.5 tiles", done=partial(is_recorded, out))
        fit_counts = met_fit.carry_coefficients(out, grid, len(variables) + 1, int(config["stage2.met_fit_neighbours"]))
        tiles = pending_tiles(out, grid.tiles(tile_size), prefix=met_fit.APPLY_PREFIX)
        map_tiles(partial(met_fit.apply_tile, **common), tiles, client,
                  desc="stage2 IHS-area tiles", done=partial(is_recorded, out, prefix=met_fit.APPLY_PREFIX))
    del warming
    group = zarr.open_group(out, mode="r")
    met_filled = {var: int(group[f"met_filled_{var}"][:].sum()) for var in variables}
    if fit_counts is None:
        src = group["met_fit_source"][:]
        fit_counts = {"own": int((src == FIT_OWN).sum()), "idle": 0, "carried": 0}
    mark_complete(out, ihs_fills=json.dumps({"met_time_filled_values": met_filled}),
                  met_fit_pixels=json.dumps(fit_counts))
    publish(out, final)
    rate = stats["pixels_per_s"]
    echo(f"  met_fit: {mode} (pixels fitted on their whole series: {fit_counts['own']}, on idle days: "
         f"{fit_counts['idle']}, coefficients carried from the background: {fit_counts['carried']}); "
         f"{stats['pixels']} pixel series in {stats['seconds']:.1f} s ({rate:.0f} series/s); "
         f"met baselines: {met_stats['pixels']} series"
         + (f"; met values filled along time: {met_filled}" if any(met_filled.values()) else ""))
    return {"store": str(final), "met_fit": mode, "met_fit_pixels": fit_counts, "pixel_series": stats["pixels"],
            "series_per_s": round(rate, 1), "fills": {"met_time_filled_values": met_filled}}


def met_explained_tile(store: Path, tile: Tile) -> np.ndarray:
    """Eq. 3 evaluated on one tile of a finished stage-2 store: ``a0 + sum_i a_i met_bl_i``.

    The coefficients are the stored maps (``coef_a0`` …, each pixel's own fit or the one carried to it)
    and each pixel's regressors the stored met baselines interpolated bilinearly, as stage 2 evaluated
    them for ``pm25_bl_tem`` (:func:`~ihs_hpc.ops.met_removal.apply_met_block`).

    Returns
    -------
    ndarray, shape (time, rows, cols), float32
        NaN where the pixel has no coefficients (not analysed).
    """
    store = Path(store)
    group = zarr.open_group(store, mode="r")
    variables = tuple(group.attrs["met_variables"])
    grid = Grid.from_coords(np.asarray(group["lat"][:]), np.asarray(group["lon"][:]))
    n_coef = len(variables) + 1
    maps = read_tile(store, tile, [f"coef_a{k}" for k in range(n_coef)])
    coef = np.stack([maps[f"coef_a{k}"].ravel() for k in range(n_coef)], axis=1).astype(np.float64)
    todo = np.flatnonzero(np.isfinite(coef).all(axis=1))
    n_time = group["time"].shape[0]
    rows, index, weight = tile_met_rows(tile, out=store, variables=variables, met_lat=np.asarray(group["met_lat"][:]),
                                        met_lon=np.asarray(group["met_lon"][:]), grid=grid)
    shape_only = np.broadcast_to(np.float32(np.nan), (n_time, coef.shape[0]))  # removed=False reads no baseline
    fitted, _ = apply_met_block(shape_only, rows, index[todo], weight[todo], coef[todo], np.zeros((todo.size, 1)),
                                todo, keep_level=False, removed=False)
    return fitted.reshape((n_time,) + tile.shape)


def with_met_explained(ds, store: Path):
    """``ds`` (a stage-2 store opened with xarray) with :data:`MET_EXPLAINED` added as a lazy dask variable,
    one task per tile of the store (:func:`met_explained_tile`).

    A store written before eq. 3 was derived holds it: it is replaced by the derived one, the same numbers,
    so that a stage begun by that version and finished by this one (whose tiles written since lack it)
    reads whole."""
    import dask
    import dask.array as da

    ds = ds.drop_vars(MET_EXPLAINED, errors="ignore")
    chunks = zarr.open_group(store, mode="r")["pm25_bl_tem"].chunks
    grid = Grid.from_dataset(ds)
    n_time = ds.sizes["time"]
    tiles = grid.tiles(tuple(chunks[-2:]))
    rows = sorted({t.rows.start for t in tiles})
    blocks = [[da.from_delayed(dask.delayed(met_explained_tile, pure=True)(Path(store), t), (n_time,) + t.shape,
                               dtype=np.float32) for t in tiles if t.rows.start == r] for r in rows]
    return ds.assign({MET_EXPLAINED: (("time", "lat", "lon"), da.block(blocks), dict(MET_EXPLAINED_ATTRS))})


def open_stage2(path: Path, *, chunks="auto"):
    """A finished stage-2 store as a lazy :class:`xarray.Dataset` (:func:`ihs_hpc.io.cube.open_store`),
    with eq. 3 evaluated, :data:`MET_EXPLAINED`, derived on read."""
    return with_met_explained(open_store(path, chunks=chunks), Path(path))
