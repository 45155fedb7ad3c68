"""Stage 3 (seed 000 §2.3.4, eq. 10): the background PM2.5 inside IHS areas, and ``pm25_ihs``.

The seed fills IHS areas of the met-removed baseline ``pm25_bl_tem`` from the background with a
U-ConvLSTM. This version's method (``stage3.method: kriging``) fills them, day by day, by kriging
from the k nearest background pixels with a variogram fitted per day — the same spatial learning
problem solved by geostatistics, and a transparent benchmark for any learned filler. With
``stage3.drift: covariates`` (default) it is regression kriging (:mod:`ihs_hpc.ops.drift`): the day's
least-squares trend on elevation and, where the input has one, an urban (built-up) map, plus the
ordinary kriging of the residual, so a town or a valley inside an area is not read as IHS PM2.5;
``none`` is the ordinary kriging of the field itself.

* ``pm25_bl_oem`` = ``pm25_bl_tem`` outside IHS areas; the kriged background inside them;
* ``pm25_ihs`` = ``pm25_bl_tem − pm25_bl_oem`` inside IHS areas (eq. 10), NaN outside.

IHS areas are the union of all radiation areas from stage 1 (every year), so the background never
includes a pixel downhill of a source, whether or not it operated that year.
"""
from __future__ import annotations

import json
import shutil
from functools import partial

import numpy as np
import pandas as pd
import xarray as xr

from ..config import RunConfig
from ..errors import StoreError
from ..grid import Grid
from ..io.cube import VarSpec, create_store, cube_spec, mark_complete, open_store, publish, read_tile, write_array
from ..ops.fill_error import placement_shifts
from .daily import DAYS_STORE, FILLS_DIR, SOURCE, block_days, krige_cube, merge_cube
from .fill_error import fill_error_settings, measure_fill_error, placement_background
from .inputs import drift_covariates

UNITS = "ug m-3"


def ihs_related(tile, bl_oem, *, stage2, areas: np.ndarray) -> dict:
    """Eq. 10 for one tile: ``pm25_ihs = pm25_bl_tem − pm25_bl_oem`` inside ``areas`` (the IHS areas
    filled), NaN outside; ``bl_oem`` is the tile's filled background ``(time, rows, cols)``."""
    bl_tem = read_tile(stage2, tile, ["pm25_bl_tem"])["pm25_bl_tem"]
    inside = areas[tile.rows, tile.cols][None]
    return {"pm25_ihs": np.where(inside, bl_tem - bl_oem, np.nan).astype(np.float32)}


def run_stage3(config: RunConfig, client, echo) -> dict:
    """Stage 3 (seed 000 §2.3.4, eq. 10): background filled into the IHS areas (kriging or the U-ConvLSTM) and
    ``pm25_ihs``."""
    from .run import store_path

    method, chosen_by = config["stage3.method"], None
    fill_error_settings(config)  # bad settings fail before any work, whichever fill runs
    if method == "auto":  # the model only when its held-out RMSE is auto_margin_pct below kriging's (trains first)
        from .stage3_model import choose_method

        method, validation = choose_method(config, client, echo)
        chosen_by = {k: v["rmse"] for k, v in validation["scores"].items()}
    if method == "uconvlstm":  # the seed's U-ConvLSTM: ihs_hpc/pipeline/stage3_model.py
        from .stage3_model import run_stage3_uconvlstm

        if int(config["stage3.fill_error.placements"]):
            echo("  stage3.fill_error: measured for the kriging fill only; the stats' intervals use the bootstrap")
        result = run_stage3_uconvlstm(config, client, echo)
        return result | ({"method": "uconvlstm", "chosen_by_rmse": chosen_by} if chosen_by else {})

    from .plan import stamp, staging_path

    final = store_path(config, "stage3")
    out = staging_path(final)
    stage1, stage2 = store_path(config, "stage1"), store_path(config, "stage2")
    areas = open_store(stage1)
    baseline = open_store(stage2)
    grid = Grid.from_dataset(baseline)
    holes = areas.ihs_mask.values.astype(bool)
    if not holes.any():
        raise StoreError(f"{stage1}: no pixel lies in an IHS radiation area; nothing for stage 3 to estimate")
    if holes.all():
        raise StoreError(f"{stage1}: every pixel lies in an IHS area; no background to learn from")
    tile_size = config["grid.tile_size"]
    drift_names, drift = drift_covariates(config)
    kriging = {"model": config["stage3.kriging_model"], "k": config["stage3.kriging_neighbours"],
               "variogram": config["stage3.variogram"], "variogram_cells": config["stage3.variogram_cells"],
               "drift": drift}
    years_of_day = pd.DatetimeIndex(baseline.time.values).year.to_numpy()
    variables = {
        "pm25_bl_oem": cube_spec(UNITS, "PM2.5 from other (non-IHS) anthropogenic sources: background kriged into IHS areas"),
        "pm25_ihs": cube_spec(UNITS, "IHS-related PM2.5 (eq. 10), inside IHS radiation areas"),
    }
    static = None
    placing = fill_error_settings(config)
    placements = int(placing["placements"])
    if placements:
        valid = placement_background(areas)
        shifts = placement_shifts(holes, valid, placements, seed=int(placing["seed"]),
                                  min_shift=float(placing["min_shift"]), at_least=1)
        if len(shifts) < placements:
            echo(f"  fill error: only {len(shifts)} of {placements} placements of the IHS mask land mostly on "
                 f"background; the intervals rest on those")
        variables["fill_error"] = VarSpec(("placement", "year", "lat", "lon"), {
            "units": UNITS, "long_name": "annual mean of (kriged − observed) pm25_bl_tem on the IHS mask moved by "
                                         "placement_shift into the background, at the real IHS pixels"})
        static = xr.Dataset(coords={"placement_shift": (("placement", "shift_axis"), shifts, {
            "long_name": "shift (rows, columns) of the IHS mask in each placement"})})
    create_store(out, grid, variables, tile_size=tile_size, time=baseline.time.values,
                 years=np.unique(years_of_day) if placements else None, static=static,
        attrs={"method": "kriging", **({"chosen_by_heldout_rmse": json.dumps(chosen_by)} if chosen_by else {}),
               "kriging_model": config["stage3.kriging_model"],
               "kriging_neighbours": config["stage3.kriging_neighbours"],
               "variogram": config["stage3.variogram"], "variogram_cells": config["stage3.variogram_cells"],
               "drift": ",".join(drift_names) or "none", **stamp(config, "stage3")})
    # only the holes are filled: pixels that prep masked out (no data on any day) stay NaN
    fills, infos = krige_cube(stage2, "pm25_bl_tem", grid, client, block_days=block_days(grid), holes=holes,
                              scratch=out / FILLS_DIR,
                              fill_mask=holes, desc="stage3 kriging days", keep_source=bool(placements), **kriging)
    if placements:  # the fill's error on the IHS mask moved into the background (intervals of the stats)
        errors = measure_fill_error(scratch=out / FILLS_DIR, years=np.unique(years_of_day), year_of_day=years_of_day,
                                    holes=holes, valid=valid, shifts=shifts, lat=grid.lat, lon=grid.lon,
                                    day_step=int(placing["day_step"]), client=client, **kriging)
        write_array(out, "fill_error", errors)
        shutil.rmtree(out / FILLS_DIR / DAYS_STORE / SOURCE, ignore_errors=True)  # the copy has served (disk)
    merge_cube(stage2, "pm25_bl_tem", out, "pm25_bl_oem", grid, tile_size, fills, holes=holes,
               extra=partial(ihs_related, stage2=stage2, areas=holes), desc="stage3 merge", client=client)
    n_fallback = sum(1 for i in infos if i.get("fallback"))
    shutil.rmtree(out / FILLS_DIR, ignore_errors=True)  # merged: the per-block fills are no longer needed
    mark_complete(out, fallback_days=n_fallback)
    publish(out, final)
    drift_text = ",".join(drift_names) or "none"
    echo(f"  kriged {int(holes.sum())} IHS-area pixels on {len(infos)} days ({n_fallback} days used a fallback; "
         f"drift: {drift_text})")
    return {"store": str(final), "area_pixels": int(holes.sum()), "fallback_days": n_fallback, "drift": drift_text,
            **({"method": "kriging", "chosen_by_rmse": chosen_by} if chosen_by else {})}
