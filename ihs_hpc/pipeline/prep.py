"""Data preparation (seed 000 §2.3.1): per-pixel outlier removal, then gap filling that completes.

1. Per tile: the outlier rule per pixel series (outliers → NaN; ``prep.outliers``: ``residual`` — on
   the residual from a running median of ``prep.outlier_window`` days, days standing out from both
   neighbouring days by more than ``prep.residual_factor`` IQR, unless the neighbouring pixels share
   the jump (``prep.neighbour_share``; the tile read with a one-pixel halo): isolated spikes go, the
   high season, plume episodes and regional one-day episodes stay — or ``iqr``, the paper's fences on
   the raw series,
   :mod:`ihs_hpc.ops.outliers`) and, per pixel, the days missing in the
   input. Pixels missing on *every* day are counted and, by default (``prep.fill_empty_pixels:
   false``), masked out of the analysis: they stay NaN in every later store instead of being kriged
   into invented series.
2. Per block of days: ordinary kriging of each day's gaps from the k nearest valid pixels, variogram
   fitted per day (:mod:`ihs_hpc.pipeline.daily`).
3. Per tile: the fills merged in; what kriging could not fill — days on which every pixel is missing —
   filled along time per pixel (:mod:`ihs_hpc.kernels.timefill`: linear for short runs, climatology
   plus interpolated anomaly for long ones).

Writes ``prep.zarr``: ``pm25_clean`` (outliers and input gaps as NaN), ``pm25`` (filled),
``n_outliers``, ``n_missing_input``, ``n_time_filled`` and ``analysed`` maps, and the per-day table
``prep_daily.csv`` inside the store (copied to ``RUN/stats/`` by the stats stage). Every kind of fill
is counted in the store's attributes and the stage's record in ``run.json``.
"""
from __future__ import annotations

import json
import shutil
from functools import partial

import numpy as np
import pandas as pd
import zarr

from ..config import RunConfig
from ..grid import Grid
from ..io.cube import (create_store, cube_spec, is_recorded, map_spec, mark_complete, open_store, pending_tiles, publish,
                       read_region, write_tile)
from ..ops.outliers import iqr_outliers, residual_outliers
from ..ops.timefill import fill_time_gaps
from .daily import FILLS_DIR, block_days, krige_cube, merge_cube
from .executor import map_tiles
from .inputs import input_store

PM25 = ("ug m-3", "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air")
DAILY_TABLE = "prep_daily.csv"


def outlier_settings(config: RunConfig) -> dict:
    """The configured outlier rule as keywords of :func:`remove_outliers`: ``rule`` (``prep.outliers``),
    ``factor``, ``window`` and ``shared`` (the residual rule's neighbour test; None for ``iqr``)."""
    rule, window = config["prep.outliers"], int(config["prep.outlier_window"])
    factor = float(config["prep.residual_factor"] if rule == "residual" else config["prep.iqr_factor"])
    if rule == "residual" and (window < 3 or window % 2 == 0):
        from ..errors import ConfigError

        raise ConfigError(f"{config.source}: key 'prep.outlier_window' must be an odd integer >= 3, got {window}")
    shared = config["prep.neighbour_share"] if rule == "residual" else None  # in [0, 1] or None (config.py)
    return {"rule": rule, "factor": factor, "window": window, "shared": shared}


def remove_outliers(pm25: np.ndarray, *, rule: str, factor: float, window: int = 31, shared=None):
    """The outlier rule on a time-major ``(time, rows, cols)`` block: ``residual``
    (:func:`~ihs_hpc.ops.outliers.residual_outliers`) or the paper's ``iqr``
    (:func:`~ihs_hpc.ops.outliers.iqr_outliers`, seed 000 §2.3.1); returns ``(cleaned, removed)``."""
    if rule == "residual":
        return residual_outliers(pm25, factor=factor, window=window, axis=0, shared=shared)
    return iqr_outliers(pm25, factor=factor, axis=0)


def iqr_tile(tile, *, cubes, out, factor: float, rule: str = "iqr", window: int = 31, shared=None) -> None:
    """Outlier removal of one tile's PM2.5 series (:func:`remove_outliers`); writes the cleaned cube and
    counts. With ``shared`` (the residual rule's neighbour test) the tile is read with a one-pixel halo, so
    every pixel is judged against all its neighbours whatever the tiling."""
    shared = shared if rule == "residual" else None
    pm25, inner = _read_tile_with_halo(cubes, tile, halo=0 if shared is None else 1)
    cleaned, removed = remove_outliers(pm25, rule=rule, factor=factor, window=window, shared=shared)
    pm25, cleaned, removed = pm25[inner], cleaned[inner], removed[inner]
    write_tile(out, tile, {"pm25_clean": cleaned.astype(np.float32),
                           "n_outliers": removed.sum(axis=0).astype(np.int32),
                           "n_missing_input": np.isnan(pm25).sum(axis=0).astype(np.int32)},
               record="iqr_" + tile.name)


def _read_tile_with_halo(cubes, tile, halo: int):
    """``pm25`` of ``tile`` and the ring of ``halo`` pixels around it (clipped at the grid's edges), and the
    index of the tile inside that block."""
    array = zarr.open_group(cubes, mode="r")["pm25"]
    _, ny, nx = array.shape
    r0, r1 = max(tile.rows.start - halo, 0), min(tile.rows.stop + halo, ny)
    c0, c1 = max(tile.cols.start - halo, 0), min(tile.cols.stop + halo, nx)
    block = read_region(array, (slice(None), slice(r0, r1), slice(c0, c1)), store=cubes, name="pm25",
                        where=f"tile {tile.name}" + (f" and its {halo}-pixel halo" if halo else ""))
    inner = (slice(None), slice(tile.rows.start - r0, tile.rows.stop - r0),
             slice(tile.cols.start - c0, tile.cols.stop - c0))
    return block, inner


def time_fill_extra(tile, block, *, analysed):
    """Fill along time what kriging left (days with no valid pixel) in the analysed pixels of a tile."""
    keep = analysed[tile.rows, tile.cols]
    filled, counts = fill_time_gaps(np.where(keep[None], block, np.nan), axis=0)
    block[...] = np.where(keep[None], filled, np.nan)
    return {"n_time_filled": counts.astype(np.int32), "analysed": keep.astype(np.int8)}


def run_prep(config: RunConfig, client, echo) -> dict:
    """The prep stage (seed 000 §2.3.1): outlier removal, then per-day ordinary kriging of the gaps, into
    ``prep.zarr``."""
    from .plan import stamp, staging_path
    from .run import store_path

    if not config["prep.enabled"]:
        echo("  prep disabled in the configuration (prep.enabled: false) — stage 2 reads the input PM2.5 as is")
        return {"enabled": False}
    cubes = input_store(config)
    final = store_path(config, "prep")
    out = staging_path(final)
    source = open_store(cubes)
    grid = Grid.from_dataset(source)
    n_days = source.sizes["time"]
    tile_size = config["grid.tile_size"]
    rules = outlier_settings(config)
    rule, factor, window, shared = rules["rule"], rules["factor"], rules["window"], rules["shared"]
    rule_text = (f"residual rule: days standing out from both neighbouring days by more than {factor} IQR of the "
                 f"residuals from a {window}-day running median" if rule == "residual"
                 else f"IQR rule (factor {factor}) on the raw series")
    if shared is not None:
        rule_text += (f", unless at least two of the 8 neighbouring pixels jump that day by {shared} of the pixel's "
                      f"own jump or more (a shared episode, not a spike)")
    create_store(out, grid, {
        "pm25_clean": cube_spec(PM25[0], f"PM2.5 with outliers removed (seed 000 §2.3.1; {rule_text})"),
        "pm25": cube_spec(PM25[0], "PM2.5 after outlier removal and gap filling", PM25[1]),
        "n_outliers": map_spec("1", f"days removed by the {rule_text}", dtype="int32"),
        "n_missing_input": map_spec("1", "days missing in the input", dtype="int32"),
        "n_time_filled": map_spec("1", "days filled along time (no valid pixel that day to krige from)",
                                  dtype="int32"),
        "analysed": map_spec("1", "pixel analysed (0: missing on every day, masked out)", dtype="int8"),
    }, tile_size=tile_size, time=source.time.values,
        attrs={"iqr_factor": factor, "outliers": rule, "outlier_window": window, "outlier_rule": rule_text,
               "neighbour_share": shared,
               "kriging_model": config["prep.kriging_model"],
               "kriging_neighbours": config["prep.kriging_neighbours"],
               "variogram": config["prep.variogram"], "variogram_cells": config["prep.variogram_cells"],
               "fill_empty_pixels": bool(config["prep.fill_empty_pixels"]), **stamp(config, "prep")})
    tiles = pending_tiles(out, grid.tiles(tile_size), prefix="iqr_")
    map_tiles(partial(iqr_tile, cubes=cubes, out=out, factor=factor, rule=rule, window=window, shared=shared),
              tiles, client,
              desc="prep IQR tiles", done=partial(is_recorded, out, prefix="iqr_"))

    missing_input = zarr.open_group(out, mode="r")["n_missing_input"][:]
    empty = missing_input >= n_days
    fill_empty = bool(config["prep.fill_empty_pixels"])
    analysed = np.ones(grid.shape, dtype=bool) if fill_empty else ~empty
    if empty.all():
        from ..errors import IngestError

        raise IngestError("every pixel of pm25 is missing on every day: nothing to analyse", path=str(cubes),
                          variable="pm25")
    if empty.any():
        rows, cols = np.nonzero(empty)
        where = ", ".join(f"({grid.lat[r]:.3f} °N, {grid.lon[c]:.3f} °E)" for r, c in zip(rows[:5], cols[:5]))
        echo(f"  {int(empty.sum())} pixel(s) have no PM2.5 on any day (first: {where}" + (" …" if empty.sum() > 5 else "")
             + ("); filled from their neighbours (prep.fill_empty_pixels: true)" if fill_empty
                else "); masked out of the analysis (set prep.fill_empty_pixels: true to fill them)"))
    fills, infos = krige_cube(out, "pm25_clean", grid, client, block_days=block_days(grid), scratch=out / FILLS_DIR,
                              model=config["prep.kriging_model"], k=config["prep.kriging_neighbours"],
                              variogram=config["prep.variogram"], variogram_cells=config["prep.variogram_cells"],
                              fill_mask=analysed, original=(cubes, "pm25"), desc="prep kriging days")
    merge_cube(out, "pm25_clean", out, "pm25", grid, tile_size, fills, desc="prep merge",
               extra=partial(time_fill_extra, analysed=analysed), client=client)
    table = pd.DataFrame(infos)
    table.insert(0, "date", pd.to_datetime(source.time.values[table["day"].to_numpy()]).strftime("%Y-%m-%d"))
    table["n_removed"] = table["n_missing"] - table["n_missing_input"]
    table["fraction_removed"] = table["n_removed"] / grid.size
    table["fraction_filled"] = table["n_filled"] / grid.size
    table.drop(columns=["params"]).to_csv(out / DAILY_TABLE, index=False)
    group = zarr.open_group(out, mode="r")
    n_time_filled = int(group["n_time_filled"][:].sum())
    n_values = grid.size * len(table)
    summary = {"removed_fraction": float(table["n_removed"].sum() / n_values),
               "filled_fraction": float(table["n_filled"].sum() / n_values),
               "input_missing_fraction": float(table["n_missing_input"].sum() / n_values),
               "fallback_days": int(table["fallback"].notna().sum()),
               "fills": {"kriged_values": int(table["n_filled"].sum()),
                         "time_filled_values": n_time_filled,
                         "days_without_data": int((table["n_missing_input"] >= grid.size).sum()),
                         "empty_pixels": int(empty.sum()),
                         "empty_pixels_masked": 0 if fill_empty else int(empty.sum())}}
    shutil.rmtree(out / FILLS_DIR, ignore_errors=True)  # merged: the per-block fills are no longer needed
    mark_complete(out, **{k: v for k, v in summary.items() if k != "fills"},
                  ihs_fills=json.dumps(summary["fills"]))
    publish(out, final)
    f = summary["fills"]
    echo(f"  removed {100 * summary['removed_fraction']:.2f} % of values as outliers ({rule_text}); filled "
         f"{f['kriged_values']} values by kriging ({summary['fallback_days']} days used a fallback) and "
         f"{f['time_filled_values']} along time ({f['days_without_data']} days without any data); "
         f"{f['empty_pixels']} empty pixels {'filled' if fill_empty else 'masked'}; per day: {final / DAILY_TABLE}")
    return {"store": str(final), "outliers": rule, **summary}
