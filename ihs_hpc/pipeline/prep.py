"""Data preparation (seed 000 §2.3.1): per-pixel IQR outlier removal, then per-day ordinary kriging.

Writes ``prep.zarr``: ``pm25_clean`` (outliers and input gaps as NaN), ``pm25`` (gaps filled by
ordinary kriging from the k nearest valid pixels, variogram fitted per day), ``n_outliers`` and
``n_missing_input`` maps; and ``RUN/stats/prep_daily.csv`` with, per day, the values removed and filled.
"""
from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from ..config import RunConfig
from ..grid import Grid
from ..io.cube import (create_store, cube_spec, is_complete, map_spec, mark_complete, open_store, pending_tiles,
                       read_tile, write_tile)
from ..ops.outliers import iqr_outliers
from .daily import krige_cube, merge_cube
from .executor import map_tiles
from .inputs import input_store

PM25 = ("ug m-3", "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air")


def iqr_tile(tile, *, cubes, out, factor: float) -> None:
    pm25 = read_tile(cubes, tile, ["pm25"])["pm25"]
    cleaned, removed = iqr_outliers(pm25, factor=factor, axis=0)
    write_tile(out, tile, {"pm25_clean": cleaned.astype(np.float32),
                           "n_outliers": removed.sum(axis=0).astype(np.int32),
                           "n_missing_input": np.isnan(pm25).sum(axis=0).astype(np.int32)},
               record="iqr_" + tile.name)


def run_prep(config: RunConfig, client, echo) -> dict:
    from .run import store_path

    if not config["prep.enabled"]:
        echo("  prep disabled in the configuration (prep.enabled: false) — stage 2 reads the input PM2.5 as is")
        return {"enabled": False}
    cubes = input_store(config)
    out = store_path(config, "prep")
    if is_complete(out):
        echo(f"  {out} is complete — kept")
        return {"store": str(out), "reused": True}
    source = open_store(cubes)
    grid = Grid.from_dataset(source)
    tile_size = config["grid.tile_size"]
    factor = float(config["prep.iqr_factor"])
    create_store(out, grid, {
        "pm25_clean": cube_spec(PM25[0], "PM2.5 with IQR outliers removed (seed 000 §2.3.1)"),
        "pm25": cube_spec(PM25[0], "PM2.5 after IQR outlier removal and kriging gap fill", PM25[1]),
        "n_outliers": map_spec("1", f"days removed by the IQR rule (factor {factor})", dtype="int32"),
        "n_missing_input": map_spec("1", "days missing in the input", dtype="int32"),
    }, tile_size=tile_size, time=source.time.values,
        attrs={"iqr_factor": factor, "kriging_model": config["prep.kriging_model"],
               "kriging_neighbours": config["prep.kriging_neighbours"],
               "variogram": config["prep.variogram"], "variogram_cells": config["prep.variogram_cells"]})
    tiles = pending_tiles(out, grid.tiles(tile_size), prefix="iqr_")
    map_tiles(partial(iqr_tile, cubes=cubes, out=out, factor=factor), tiles, client, desc="prep IQR tiles")
    fills, infos = krige_cube(out, "pm25_clean", grid, client, block_days=_block_days(grid),
                              model=config["prep.kriging_model"], k=config["prep.kriging_neighbours"],
                              variogram=config["prep.variogram"], variogram_cells=config["prep.variogram_cells"],
                              original=(cubes, "pm25"), desc="prep kriging days")
    merge_cube(out, "pm25_clean", out, "pm25", grid, tile_size, fills, desc="prep merge")
    table = pd.DataFrame(infos)
    table.insert(0, "date", pd.to_datetime(source.time.values[table["day"].to_numpy()]).strftime("%Y-%m-%d"))
    table["n_removed"] = table["n_missing"] - table["n_missing_input"]
    table["fraction_removed"] = table["n_removed"] / grid.size
    table["fraction_filled"] = table["n_filled"] / grid.size
    stats_dir = config.run_dir / "stats"
    stats_dir.mkdir(parents=True, exist_ok=True)
    table.drop(columns=["params"]).to_csv(stats_dir / "prep_daily.csv", index=False)
    n_values = grid.size * len(table)
    summary = {"removed_fraction": float(table["n_removed"].sum() / n_values),
               "filled_fraction": float(table["n_filled"].sum() / n_values),
               "input_missing_fraction": float(table["n_missing_input"].sum() / n_values),
               "fallback_days": int(table["fallback"].notna().sum())}
    mark_complete(out, **summary)
    echo(f"  removed {100 * summary['removed_fraction']:.2f} % of values as IQR outliers, filled "
         f"{100 * summary['filled_fraction']:.2f} % by kriging ({summary['fallback_days']} days used a fallback); "
         f"per day: {stats_dir / 'prep_daily.csv'}")
    return {"store": str(out), **summary}


def _block_days(grid: Grid, budget_values: int = 20_000_000) -> int:
    """Days per kriging task so a block holds at most ``budget_values`` float64 values (160 MB)."""
    return int(max(1, min(366, budget_values // grid.size)))
