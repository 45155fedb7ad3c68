"""The statistics stage (seed 000 §2.3.5, §3): aggregates, tests and tables of total and IHS-related PM2.5.

Reads ``cubes.zarr`` (total ``pm25``, cities, IHS table, and the synthetic truth when present),
``stage1.zarr`` (IHS areas, background, per-IHS membership) and ``stage3.zarr`` (``pm25_ihs``,
``pm25_bl_oem``). One pass over the tiles (one task per tile, never a whole cube in memory) writes:

* ``stats/maps.zarr`` — period-mean maps (``mean_pm25``, ``mean_pm25_ihs``, ``share_pct``,
  ``mean_pm25_bl_oem``, ``mean_pm25_ihs_true``) and annual-mean maps ``annual_pm25``/``annual_pm25_ihs``
  ``(year, lat, lon)``;
* ``stats/trend_maps.zarr`` — per-pixel Mann–Kendall z, p, Sen slope and significant trend sign of the
  annual means of ``pm25_ihs`` (IHS-area pixels) and ``pm25`` (all pixels);
* ``stats/series.zarr`` — per-group, per-day sums and counts (groups: region, IHS areas, background,
  each city, each city's IHS areas, each single IHS area), from which every mean below is exact.

From these it builds the tables (CSV + ``tables.md``) and ``stats.json``. The definitions (pooled
means, share = Σ IHS / Σ total over paired pixel-days, December → next year's DJF, decline and
year-on-year change) are those of :mod:`ihs_hpc.stats.aggregate`. The Mann–Whitney U test compares
**per-pixel means of total PM2.5** between background and IHS-area pixels: the period mean (the
paper's Fig. 6b) and each year's annual mean.

The tile pass is :mod:`~ihs_hpc.pipeline.stats_store`, the tables :mod:`~ihs_hpc.pipeline.stats_tables`,
the truth scores :mod:`~ihs_hpc.pipeline.truth_scores`.

A rerun reuses the three stores when they are complete and were made from the same input stores
(their tile pass is the expensive part; a rerun of stage 3 invalidates them) and rebuilds the tables,
so a changed ``stats.indicators`` file costs seconds.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from ..config import RunConfig
from ..grid import Grid
from ..io.cube import is_complete, mark_complete, open_store, read_pixels
from ..stats.aggregate import GroupLayout, calendar
from .executor import map_tiles
from .inputs import input_store
from .stats_inputs import read_indicators
from .stats_store import (MAPS_STORE, MEAN_DEFINITION, SHARE_DEFINITION, SUM_STORE, TRENDS_STORE,  # noqa: F401
                          TileMembers, create_stat_stores, inputs_fingerprint, load_sums, members_by_tile, stats_task,
                          stored_inputs_fingerprint, write_sums)
from .stats_tables import MWU_BASIS, build_tables

__all__ = ["run_stats", "read_indicators", "load_sums", "MAPS_STORE", "SUM_STORE", "TRENDS_STORE", "MWU_BASIS",
           "MEAN_DEFINITION", "SHARE_DEFINITION"]


# --------------------------------------------------------------------------- inputs
def _names(cubes) -> tuple[list[str], list[str], list]:
    if "city_name" not in cubes and "city_name_en" not in cubes:
        n = int(cubes.sizes.get("city", 0))
        return [f"City {i}" for i in range(n)], [f"City {i}" for i in range(n)], [None] * n
    en = [str(v) for v in (cubes["city_name_en"].values if "city_name_en" in cubes else cubes["city_name"].values)]
    local = [str(v) for v in (cubes["city_name"].values if "city_name" in cubes else en)]
    en = [e if e and e != "nan" else loc for e, loc in zip(en, local)]
    adcode = list(cubes["city_adcode"].values) if "city_adcode" in cubes else [None] * len(en)
    return en, local, adcode



# --------------------------------------------------------------------------- the stage
def run_stats(config: RunConfig, client, echo) -> dict:
    """Compute the statistics of a run and write ``RUN/stats/``; return the headline numbers."""
    from .run import store_path

    from .plan import begin_output_dir, finish_output_dir

    cubes_path = input_store(config)
    stage1_path, stage3_path = store_path(config, "stage1"), store_path(config, "stage3")
    cubes = open_store(cubes_path)
    areas = open_store(stage1_path)
    est = open_store(stage3_path)
    for store, path, names in ((cubes, cubes_path, ("pm25",)), (areas, stage1_path, ("ihs_mask", "background")),
                               (est, stage3_path, ("pm25_ihs",))):
        for name in names:
            if name not in store:
                raise ValueError(f"{path}: the stats stage needs variable {name!r}, not found")
    grid = Grid.from_dataset(cubes)
    if Grid.from_dataset(est) != grid or Grid.from_dataset(areas) != grid:
        raise ValueError(f"{cubes_path}, {stage1_path} and {stage3_path} are not on the same grid")
    time = cubes.time.values
    if len(est.time) != len(time) or not np.array_equal(est.time.values, time):
        raise ValueError(f"{stage3_path} and {cubes_path} do not share the same days")
    if np.any(np.diff(time.astype("datetime64[ns]").astype(np.int64)) <= 0):
        raise ValueError(f"{cubes_path}: the time axis is not strictly increasing")
    cal = calendar(time)
    years = sorted(int(y) for y in cal["year"].unique())
    day_slices = tuple((int(np.flatnonzero(cal["year"].to_numpy() == y)[0]),
                        int(np.flatnonzero(cal["year"].to_numpy() == y)[-1]) + 1) for y in years)
    tile_size = int(config["grid.tile_size"])
    tiles = grid.tiles(tile_size)
    has_city = "city_id" in cubes
    city_en, city_local, city_adcode = _names(cubes) if has_city else ([], [], [])
    n_city = len(city_en)
    n_ihs = int(cubes.sizes.get("ihs", 0))
    has_oem = "pm25_bl_oem" in est
    has_truth = "pm25_ihs_true" in cubes
    layout = GroupLayout(n_city, n_ihs)
    offsets = areas["member_offset"].values.astype(np.int64) if "member_offset" in areas else np.zeros(1, np.int64)
    pixels = areas["member_pixel"].values.astype(np.int64) if "member_pixel" in areas else np.zeros(0, np.int64)
    if offsets.size - 1 != n_ihs:
        raise ValueError(f"{stage1_path}: membership lists {offsets.size - 1} IHS but {cubes_path} has {n_ihs}")
    ihs_ids = [str(v) for v in cubes["ihs_id"].values] if "ihs_id" in cubes else [str(i) for i in range(n_ihs)]
    ihs_names = [str(v) for v in cubes["ihs_name"].values] if "ihs_name" in cubes else ihs_ids
    group_names = (["Region", "IHS areas", "Background"] + city_en + [f"{c} (IHS areas)" for c in city_en]
                   + [f"IHS {i}" for i in ihs_ids])

    out_dir = begin_output_dir(config, "stats")
    _copy_stage_tables(config, out_dir)
    sums_path, maps_path, trends_path = out_dir / SUM_STORE, out_dir / MAPS_STORE, out_dir / TRENDS_STORE
    truth_totals = None
    fingerprint = inputs_fingerprint((cubes_path, stage1_path, stage3_path), tile_size)
    if (all(is_complete(p) for p in (sums_path, maps_path, trends_path))
            and stored_inputs_fingerprint(sums_path) == fingerprint):
        echo(f"  {sums_path.name}, {maps_path.name}, {trends_path.name} are complete — kept; rebuilding the tables")
        sums, sums_ds = load_sums(sums_path)
        if "truth_s_err" in sums_ds.attrs:
            truth_totals = {k: float(sums_ds.attrs[f"truth_{k}"]) for k in ("s_err", "s_err2", "n_pair")}
    else:
        create_stat_stores(out_dir, grid, years, tile_size, has_oem, has_truth)
        members = members_by_tile(offsets, pixels, grid, tiles, tile_size)
        func = partial(stats_task, cubes=cubes_path, stage1=stage1_path, stage3=stage3_path, maps=maps_path,
                       trends=trends_path, day_slices=day_slices, n_city=n_city, n_ihs=n_ihs, has_city=has_city,
                       has_oem=has_oem, has_truth=has_truth)
        sums = {}
        truth_totals = {"s_err": 0.0, "s_err2": 0.0, "n_pair": 0.0} if has_truth else None

        def add(_task, part):
            for k, v in part["sums"].items():
                if k not in sums:
                    sums[k] = np.zeros((layout.size, len(time)))
                sums[k][part["groups"]] += v
            if truth_totals is not None:
                for k in truth_totals:
                    truth_totals[k] += part["truth"][k]

        map_tiles(func, [TileMembers(t, m) for t, m in zip(tiles, members)], client, desc="stats tiles", on_result=add)
        mark_complete(maps_path)
        mark_complete(trends_path)
        extra = {f"truth_{k}": v for k, v in (truth_totals or {}).items()} | {"ihs_inputs": fingerprint}
        write_sums(sums_path, sums, time, layout, group_names, extra)

    maps = open_store(maps_path)
    from .inputs import static_covariates
    from .intervals import contrast_scaled_replicates, fill_error_replicates, interval_settings

    scale_info: dict = {}
    fill_errors, source_fill_errors = fill_error_replicates(est), None
    interval_choice = interval_settings(config.get("stats.intervals"))
    covariates = None
    if (fill_errors is not None and interval_choice["method"] == "auto"
            and interval_choice["scale_by_contrast"] != "none" and "placement_shift" in est.coords):
        covariates = static_covariates(config)[1]
    if covariates is not None:
        source_fill_errors = contrast_scaled_replicates(fill_errors, est, areas, covariates, info=scale_info,
                                                        k=int(config["stage3.kriging_neighbours"]))
        if interval_choice["scale_by_contrast"] == "all":
            fill_errors = source_fill_errors
    if scale_info:
        echo(f"  fill error scaled to the IHS areas' contrast in elevation and settlement density (intervals of the "
             f"{'sources and cities' if fill_errors is source_fill_errors else 'sources'}): mean |error| "
             f"{scale_info['scale_placements']:.3g} at the placements, {scale_info['scale_areas']:.3g} predicted "
             f"at the IHS areas")

    headline = build_tables(
        out_dir=out_dir, sums=sums, cal=cal, years=years, layout=layout, grid=grid, cubes=cubes, areas=areas,
        maps=maps, city_en=city_en, city_local=city_local, city_adcode=city_adcode, ihs_ids=ihs_ids,
        ihs_names=ihs_names, truth_totals=truth_totals, indicators=config.get("stats.indicators"), echo=echo,
        attribution=config.get("stats.attribution"), intervals=config.get("stats.intervals"),
        read_daily_ihs=partial(read_pixels, stage3_path, "pm25_ihs", tile_size=tile_size),
        fill_errors=fill_errors, source_fill_errors=source_fill_errors,
    )
    headline["dir"] = str(out_dir)
    if scale_info:
        headline["fill_error_scale"] = scale_info
    finish_output_dir(config, "stats")
    return headline


def _copy_stage_tables(config: RunConfig, out_dir: Path) -> None:
    """Tables other stages keep with their outputs, beside the statistics: prep's per-day removed and
    filled values, stage 3's held-out-hole validation (U-ConvLSTM against kriging)."""
    import shutil

    from .prep import DAILY_TABLE
    from .run import store_path
    from .stage3_model import VALIDATION_CSV, model_dir

    tables = [model_dir(config) / VALIDATION_CSV] if config["stage3.method"] in ("uconvlstm", "auto") else []
    if config["prep.enabled"]:
        tables.append(store_path(config, "prep") / DAILY_TABLE)
    for table in tables:
        if table.is_file():
            shutil.copyfile(table, out_dir / table.name)
