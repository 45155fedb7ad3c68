"""Stage 2 (seed 000 §2.3.3): STL baselines, regression on meteorological baselines, ``pm25_bl_tem``.

1. Meteorological baselines (trend + seasonal, eq. 2) on the native 0.1° grid, one task per met tile.
2. Per analysis tile, one task: the PM2.5 baseline of every pixel (eq. 2, one GEMM with the cached
   STL operator when ``robust`` is false), the six met baselines interpolated bilinearly to the
   tile's pixels on the fly (exact: interpolation commutes with non-robust STL), the regression
   (eq. 3) and the met-removed baseline ``pm25_bl_tem = pm25_bl − pm25_bl_mlr`` (eq. 4).

Where eq. 3 is fitted is ``stage2.met_fit``: ``pixel`` fits every pixel on its own series (the paper
taken literally); ``background`` (default) fits where no IHS is active and carries the coefficients
into the IHS areas (:mod:`ihs_hpc.pipeline.met_fit`), so that the IHS signal's own seasonal cycle is
not absorbed by the seasonal met baselines and removed with the weather.

STL settings: the paper's "seasonal window set to 365 days" is the seasonal *period* of 365 days
(``stage2.stl.period: 365``, statsmodels' ``period``); ``stage2.stl.seasonal`` is the length of the
seasonal smoother in *cycles* (years), statsmodels' default 7. ``seasonal`` set to an odd number at
least as large as the number of years (e.g. 11 for 2012–2021) makes the seasonal component nearly
the same every year (R's ``s.window = "periodic"`` in the limit).

Writes ``stage2.zarr``: ``met_bl_<var>`` on the met grid; ``pm25_bl``, ``pm25_bl_mlr``, ``pm25_bl_tem``
cubes; ``coef_a0`` (intercept) … ``coef_a6``, ``r2``, ``met_fit_source`` and ``met_fit_days`` maps; the
mode in the root attribute ``met_fit``. Tiles already recorded are skipped.
"""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import zarr

from ..config import RunConfig
from ..grid import Grid
from ..errors import StoreError
from ..io.cube import (VarSpec, create_store, cube_spec, is_recorded, map_spec, mark_complete, met_spec, open_store, pending_tiles,
                       publish, read_region, read_tile, write_tile)
from ..ops.interp import apply_bilinear, bilinear_weights
from ..ops.mlr import remove_met
from ..ops.stl import stl_baseline
from ..ops.stl_operator import get_stl_operator
from ..ops.timefill import fill_time_gaps
from .executor import map_tiles
from .inputs import input_store, pm25_store
from .met_fit import FIT_NONE, FIT_OWN, SOURCE_MEANING

PM25_UNITS = "ug m-3"


def stl_settings(config: RunConfig) -> dict:
    return dict(config["stage2.stl"])


def _met_grid_of(cubes: Path) -> Grid:
    attrs = zarr.open_group(cubes, mode="r").attrs
    south, north, west, east, res = attrs["ihs_met_grid"]
    return Grid(south, north, west, east, res)


def met_baseline_tile(tile, *, cubes: Path, out: Path, variables: tuple[str, ...], settings: dict) -> None:
    """Baselines of every met variable over one tile of the native met grid.

    Days missing in the input (tolerated ERA5 gaps) are filled along time first
    (:func:`~ihs_hpc.ops.timefill.fill_time_gaps`); how many per cell is kept in ``met_filled_<var>``.
    """
    group = zarr.open_group(cubes, mode="r")
    blocks = {}
    for var in variables:
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
        blocks[f"met_bl_{var}"] = baseline.T.reshape(block.shape).astype(np.float32)
        blocks[f"met_filled_{var}"] = filled.reshape(block.shape[1:]).astype(np.int32)
    write_tile(out, tile, blocks, record="met_" + tile.name)


def tile_baseline(tile, *, pm25_source: Path, settings: dict, grid: Grid, pm25_var: str = "pm25"):
    """The PM2.5 baseline (eq. 2) of every pixel of one tile: ``(pm25_bl (pixels, time), analysed (pixels,),
    short_term_mean (pixels,))``, the last the mean over the record of the short-term component ``R`` of
    eq. 1 (series minus baseline), which a finite record's STL leaves non-zero.

    Pixels with no value on any day (masked out by prep) stay NaN; a pixel with only some days
    missing is an error (prep fills every gap).
    """
    pm25 = read_tile(pm25_source, tile, [pm25_var])[pm25_var]
    n_time, ny, nx = pm25.shape
    series = pm25.reshape(n_time, -1).T.astype(np.float64)
    valid = np.isfinite(series)
    analysed = valid.any(axis=1)
    partial_gaps = analysed & ~valid.all(axis=1)
    if partial_gaps.any():
        row, col = np.unravel_index(int(np.flatnonzero(partial_gaps)[0]), (ny, nx))
        raise StoreError(
            f"{pm25_source}: variable {pm25_var!r} has {int(partial_gaps.sum())} pixel series with missing days in "
            f"tile {tile.name} (first: lat {grid.lat[tile.rows][row]:.3f}, lon {grid.lon[tile.cols][col]:.3f}); "
            f"stage 2 needs complete series: enable prep (prep.enabled: true), which fills every gap")
    pm25_bl = np.full_like(series, np.nan)
    short_term_mean = np.full(series.shape[0], np.nan)
    if analysed.any():
        pm25_bl[analysed] = stl_baseline(series[analysed], **settings)  # eq. 2
        short_term_mean[analysed] = (series[analysed] - pm25_bl[analysed]).mean(axis=1)
    return pm25_bl, analysed, short_term_mean


def restore_level(bl_tem: np.ndarray, short_term_mean: np.ndarray, keep_level: bool) -> np.ndarray:
    """``keep_level``: ``pm25_bl_tem`` keeps the mean of the pixel's PM2.5 series — the regression's mean
    (added back by :func:`~ihs_hpc.ops.mlr.remove_met`) and the mean the STL short-term component
    took with it."""
    if keep_level:
        bl_tem = bl_tem + short_term_mean[:, None]
    return bl_tem


def tile_regressors(tile, *, out: Path, variables: tuple[str, ...], met_lat: np.ndarray, met_lon: np.ndarray,
                    grid: Grid) -> np.ndarray:
    """The met baselines interpolated bilinearly to the tile's cell centres: ``(pixels, k, time)``."""
    lat, lon = grid.lat[tile.rows], grid.lon[tile.cols]
    r0 = max(int(np.searchsorted(-met_lat, -lat.max(), side="right")) - 2, 0)
    r1 = min(int(np.searchsorted(-met_lat, -lat.min(), side="left")) + 2, len(met_lat))
    c0 = max(int(np.searchsorted(met_lon, lon.min(), side="right")) - 2, 0)
    c1 = min(int(np.searchsorted(met_lon, lon.max(), side="left")) + 2, len(met_lon))
    index, weight = bilinear_weights(met_lat[r0:r1], met_lon[c0:c1], lat, lon)
    group = zarr.open_group(out, mode="r")
    regressors = None
    for k, var in enumerate(variables):
        window = np.asarray(read_region(group[f"met_bl_{var}"], (slice(None), slice(r0, r1), slice(c0, c1)),
                                        store=out, name=f"met_bl_{var}", where=f"around tile {tile.name}"),
                            dtype=np.float64)
        if regressors is None:
            regressors = np.empty((len(lat) * len(lon), len(variables), window.shape[0]))
        regressors[:, k, :] = apply_bilinear(window, index, weight).T
    return regressors


def _cube(a: np.ndarray, shape) -> np.ndarray:
    return a.T.reshape((a.shape[1],) + tuple(shape)).astype(np.float32)


def pm25_tile(tile, *, pm25_source: Path, out: Path, variables: tuple[str, ...], settings: dict,
              met_lat: np.ndarray, met_lon: np.ndarray, grid: Grid, keep_level: bool = True,
              pm25_var: str = "pm25") -> None:
    """``met_fit: pixel`` — baseline, per-pixel regression and met removal for one analysis tile.

    The paper's method taken literally (seed 000 §2.3.3): eq. 3 fitted on every pixel's own series.
    """
    pm25_bl, _, short_term_mean = tile_baseline(tile, pm25_source=pm25_source, settings=settings, grid=grid,
                                                pm25_var=pm25_var)
    regressors = tile_regressors(tile, out=out, variables=variables, met_lat=met_lat, met_lon=met_lon, grid=grid)
    pm25_bl_tem, fit = remove_met(pm25_bl, regressors, keep_level=keep_level)  # eqs. 3 and 4
    pm25_bl_tem = restore_level(pm25_bl_tem, short_term_mean, keep_level)
    shape = tile.shape
    blocks = {"pm25_bl": _cube(pm25_bl, shape), "pm25_bl_mlr": _cube(fit.fitted, shape),
              "pm25_bl_tem": _cube(pm25_bl_tem, shape), "r2": fit.r2.reshape(shape).astype(np.float32),
              "short_term_mean": short_term_mean.reshape(shape).astype(np.float32),
              "met_fit_source": np.where(np.isfinite(fit.r2), FIT_OWN, FIT_NONE).reshape(shape).astype(np.int8),
              "met_fit_days": np.where(np.isfinite(fit.r2), pm25_bl.shape[1], 0).reshape(shape).astype(np.int32)}
    for k in range(fit.coef.shape[-1]):
        blocks[f"coef_a{k}"] = fit.coef[:, k].reshape(shape).astype(np.float32)
    write_tile(out, tile, blocks)


def stage2_variables(met_vars) -> dict:
    specs = {
        "pm25_bl": cube_spec(PM25_UNITS, "PM2.5 baseline: STL trend + seasonal (eq. 2)"),
        "pm25_bl_mlr": cube_spec(PM25_UNITS, "PM2.5 baseline explained by meteorological baselines (eq. 3)"),
        "pm25_bl_tem": cube_spec(PM25_UNITS, "PM2.5 baseline with meteorology removed (eq. 4; see keep_level)"),
        "r2": map_spec("1", "coefficient of determination of the regression (eq. 3)"),
        "short_term_mean": map_spec(PM25_UNITS, "mean over the record of the STL short-term component R (eq. 1); "
                                                "added back to pm25_bl_tem with keep_level"),
        "coef_a0": map_spec(PM25_UNITS, "regression intercept a0 (eq. 3)"),
        "met_fit_source": map_spec("1", f"where the pixel's coefficients come from: {SOURCE_MEANING}", dtype="int8"),
        "met_fit_days": map_spec("1", "days the pixel's own regression (eq. 3) was fitted on (0: carried or none)",
                                 dtype="int32"),
    }
    for k, var in enumerate(met_vars, start=1):
        specs[f"coef_a{k}"] = map_spec(f"{PM25_UNITS} per unit of {var}", f"regression coefficient a{k} of {var} baseline (eq. 3)")
        specs[f"met_bl_{var}"] = met_spec("same as input", f"{var} baseline: STL trend + seasonal (eq. 2)")
        specs[f"met_filled_{var}"] = VarSpec(("met_lat", "met_lon"), {
            "units": "1", "long_name": f"days of {var} missing in the input and filled along time"}, "int32")
    return specs


def run_stage2(config: RunConfig, client, echo) -> dict:
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
    create_store(out, grid, specs, tile_size=tile_size, time=source.time.values, met_grid=met_grid,
                 attrs={"stl_settings": dict(settings), "met_variables": list(variables),
                        "keep_level": bool(config["stage2.keep_level"]), "met_fit": mode,
                        "source": str(cubes), "pm25_source": str(pm25_source), **stamp(config, "stage2")})
    n_time = source.sizes["time"]
    # build (or load) the STL operator once here so workers find it cached on disk
    if not settings.get("robust"):
        get_stl_operator(n_time, **settings)

    met_tiles = pending_tiles(out, met_grid.tiles(tile_size), prefix="met_")
    met_stats = map_tiles(partial(met_baseline_tile, cubes=cubes, out=out, variables=variables, settings=settings),
                          met_tiles, client, desc="stage2 met baselines", done=partial(is_recorded, out, prefix="met_"))
    keep_level = bool(config["stage2.keep_level"])
    common = dict(out=out, variables=variables, met_lat=met_grid.lat, met_lon=met_grid.lon, grid=grid)
    fit_counts = None
    if mode == "pixel":
        tiles = pending_tiles(out, grid.tiles(tile_size))
        stats = map_tiles(partial(pm25_tile, pm25_source=pm25_source, settings=settings, keep_level=keep_level,
                                  **common), tiles, client, desc="stage2 PM2.5 tiles", done=partial(is_recorded, out))
    else:
        from . import met_fit
        from ..ops.stl import stl_settings as resolve_stl

        stage1 = store_path(config, "stage1")
        areas = open_store(stage1)
        if Grid.from_dataset(areas) != grid:
            raise StoreError(f"{stage1} and {cubes} are not on the same grid")
        day_years = source.time.dt.year.values
        stage1_years = [int(y) for y in areas["year"].values]
        missing_years = sorted(set(int(y) for y in day_years) - set(stage1_years))
        if missing_years:
            raise StoreError(f"{stage1}: ihs_count_year has no mask for the years {missing_years} of {cubes}")
        year_of_day = np.searchsorted(np.asarray(stage1_years), day_years).astype(np.int64)
        margin = resolve_stl(**settings).trend // 2
        tiles = pending_tiles(out, grid.tiles(tile_size))
        stats = map_tiles(partial(met_fit.fit_tile, pm25_source=pm25_source, stage1=stage1, settings=settings,
                                  keep_level=keep_level, year_of_day=year_of_day,
                                  idle_min_days=int(config["stage2.met_fit_idle_days"]), idle_margin=int(margin),
                                  **common), tiles, client, desc="stage2 PM2.5 tiles", done=partial(is_recorded, out))
        fit_counts = met_fit.carry_coefficients(out, grid, len(variables) + 1, int(config["stage2.met_fit_neighbours"]))
        tiles = pending_tiles(out, grid.tiles(tile_size), prefix=met_fit.APPLY_PREFIX)
        map_tiles(partial(met_fit.apply_tile, keep_level=keep_level, **common), tiles, client,
                  desc="stage2 IHS-area tiles", done=partial(is_recorded, out, prefix=met_fit.APPLY_PREFIX))
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
