"""Stage 2's ``met_fit: background`` mode: eq. 3 fitted where no IHS is active, carried into IHS areas.

Why: fitted on an IHS-area pixel's own series (the paper's per-pixel fit, ``met_fit: pixel``), the
regression of eq. 3 lets the six *seasonal* meteorological baselines absorb the seasonal cycle of the
IHS contribution itself, and eq. 4 then removes it with the weather (measured on known truth: the
month-of-year profile of the estimate is flat where the truth's winter is far above its summer).

How, in three passes over the tiles (each resumable through its own tile records):

A. one task per tile (records named by the tile): the PM2.5 baseline of every pixel (eq. 2); eq. 3 fitted on
   the whole series of every **background** pixel; an **IHS-area** pixel is fitted on its own days only
   where it has at least ``stage2.met_fit_idle_days`` days on which none of its sources operated (per-year
   masks of stage 1), counting only days beyond half the STL trend window from any operating day (the
   trend smoother spreads a source's start or stop that far). Writes ``pm25_bl``, the coefficient maps
   (float64) and ``short_term_level``;
B. one small 2-D step: the coefficient maps ``a0 … a6`` of the background pixels are carried into the
   remaining IHS-area pixels by inverse-distance weighting of the ``stage2.met_fit_neighbours``
   nearest background pixels, the same weights for every coefficient
   (:func:`ihs_hpc.ops.carry.carry_maps`);
C. per tile (``apply_`` records): eq. 3 evaluated and eq. 4 applied for every pixel with coefficients,
   own or carried (:func:`ihs_hpc.ops.met_removal.apply_met_block`), ``pm25_bl_tem`` written once.
   (Pass A does not write it: a tile's IHS-area pixels only get their coefficients in pass B, and a Zarr
   chunk holds the whole tile, so writing it in A meant reading and rewriting it in C.) A tile none of whose
   pixels is carried is finished in pass A instead, with the same function on the same values
   (:func:`met_removed_tile`), and pass C skips it: on BTH most tiles hold no IHS area. Eq. 3 evaluated,
   ``pm25_bl_mlr``, is not stored: it is the stored coefficients and met baselines, derived on read
   (:data:`ihs_hpc.pipeline.stage2.MET_EXPLAINED`).

Pass B is repeated before every pass C (it is cheap and deterministic), so a run killed anywhere, or a
tile whose chunks ``ihs check --verify`` found damaged (all its records are removed), resumes to the
same arrays.

``met_fit_source`` records per pixel where its coefficients came from (:data:`FIT_OWN`,
:data:`FIT_IDLE`, :data:`FIT_CARRIED`; :data:`FIT_NONE` for pixels not analysed) and
``met_fit_days`` the number of days its own fit used.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from ..grid import Grid
from ..io.chunk_cache import recall_tile, remember_tile
from ..io.cube import read_tile, write_array, write_tile
from ..ops.carry import carry_maps
from ..ops.met_removal import apply_met_block, remove_met_block
from ..ops.mlr import mlr_bilinear

#: ``met_fit_source`` values
FIT_NONE, FIT_OWN, FIT_IDLE, FIT_CARRIED = 0, 1, 2, 3
SOURCE_MEANING = ("0 not analysed, 1 fitted on the pixel's whole series, 2 fitted on the days on which none of "
                  "the pixel's sources operated, 3 carried from the background")
MODES = ("background", "pixel")
#: tile records of pass C
APPLY_PREFIX = "apply_"


def idle_days(operating_years: np.ndarray, year_of_day: np.ndarray, margin: int) -> np.ndarray:
    """Days usable for an own fit of an IHS-area pixel: no source of it operates that year, and the
    nearest day of an operating year is at least ``margin`` days away. ``(time,)`` bool."""
    operating_day = np.asarray(operating_years, dtype=bool)[year_of_day]
    on = np.flatnonzero(operating_day)
    idle = ~operating_day
    if on.size == 0:
        return idle
    t = np.arange(year_of_day.size)
    pos = np.searchsorted(on, t)
    left = np.abs(t - on[np.clip(pos - 1, 0, on.size - 1)])
    right = np.abs(on[np.clip(pos, 0, on.size - 1)] - t)
    return idle & (np.minimum(left, right) >= margin)


def fit_tile(tile, *, pm25_source: Path, out: Path, stage1: Path, variables: tuple[str, ...], settings: dict,
             met_lat: np.ndarray, met_lon: np.ndarray, grid: Grid, level: dict, mask_year_of_day: np.ndarray,
             idle_min_days: int, idle_margin: int, pm25_var: str = "pm25") -> None:
    """Pass A for one tile (see the module docstring); records the tile.

    Baselines of every pixel and the whole-series fits of the background pixels in chunks of pixels
    (:func:`~ihs_hpc.ops.met_removal.remove_met_block`); the idle-day fits with the regressors interpolated
    on the fly (:func:`~ihs_hpc.ops.mlr.mlr_bilinear`). ``mask_year_of_day`` indexes each day into stage 1's
    per-year masks (``ihs_count_year``); ``level["year_of_day"]`` is the calendar-year index of the level kept.
    """
    from .stage2 import block_outputs, tile_met_rows, tile_series

    series, analysed = tile_series(tile, pm25_source=pm25_source, grid=grid, pm25_var=pm25_var)
    rows, index, weight = tile_met_rows(tile, out=out, variables=variables, met_lat=met_lat, met_lon=met_lon,
                                        grid=grid)
    n_time, n_pix = series.shape
    areas = read_tile(stage1, tile, ["background"])
    background = areas["background"].astype(bool).ravel()
    group = zarr.open_group(stage1, mode="r")
    count_year = np.asarray(group["ihs_count_year"][:, tile.rows, tile.cols]).reshape(-1, n_pix)

    # eq. 2 everywhere; eq. 3 fitted on the whole series of the background pixels (evaluated in pass C, or
    # below for a tile with no carried pixel)
    result = remove_met_block(series, rows, index, weight, fit=background & analysed, met_removed=False,
                              analysed=analysed, **level, **settings)
    coef, r2 = result.coef, result.r2
    source = np.full(n_pix, FIT_NONE, dtype=np.int8)
    days = np.zeros(n_pix, dtype=np.int32)
    bg = background & analysed & np.isfinite(r2)
    source[bg] = FIT_OWN
    days[bg] = n_time
    inside = np.flatnonzero(~background & analysed)
    source[inside] = FIT_CARRIED
    if inside.size and idle_min_days > 0:
        patterns, which = np.unique(count_year[:, inside] > 0, axis=1, return_inverse=True)
        for j in range(patterns.shape[1]):
            usable = idle_days(patterns[:, j], mask_year_of_day, idle_margin)
            if usable.sum() < idle_min_days:
                continue
            pix = inside[np.ravel(which) == j]
            y = result.pm25_bl[:, pix].T[:, usable].astype(np.float64)
            fit = mlr_bilinear(y, rows[:, :, usable], index[pix], weight[pix])  # eq. 3 on idle days
            ok = np.isfinite(fit.r2)
            coef[pix[ok]], r2[pix[ok]] = fit.coef[ok], fit.r2[ok]
            source[pix[ok]] = FIT_IDLE
            days[pix[ok]] = int(usable.sum())

    blocks = block_outputs(tile, result)
    blocks["met_fit_source"] = source.reshape(tile.shape)
    blocks["met_fit_days"] = days.reshape(tile.shape)
    complete = not (source == FIT_CARRIED).any()
    if complete and analysed.any():  # no pixel waits for pass B: pass C's work done here, the baseline in memory
        blocks["pm25_bl_tem"] = met_removed_tile(tile, result.pm25_bl, source, coef, result.short_term_level,
                                                 rows, index, weight, level)
    write_tile(out, tile, blocks)
    if complete:
        write_tile(out, tile, {}, record=APPLY_PREFIX + tile.name)
    else:  # pass C reads the baseline back; from memory when it runs in this process (chunk file unchanged)
        remember_tile(out, "pm25_bl", tile, blocks["pm25_bl"])


def carry_coefficients(out: Path, grid: Grid, n_coef: int, neighbours: int) -> dict:
    """Pass B: carry the background pixels' coefficients into the IHS-area pixels that have none."""
    group = zarr.open_group(out, mode="r")
    source = np.asarray(group["met_fit_source"][:])
    coefs = np.stack([np.asarray(group[f"coef_a{k}"][:], dtype=np.float64) for k in range(n_coef)])
    donors = source == FIT_OWN
    target = source == FIT_CARRIED
    counts = {"own": int(donors.sum()), "idle": int((source == FIT_IDLE).sum()), "carried": int(target.sum())}
    if not target.any():
        return counts
    if not donors.any():
        from ..errors import StoreError

        raise StoreError(f"{out}: no background pixel has a regression fit to carry into the IHS areas")
    carried = carry_maps(coefs, donors, target, grid.lat, grid.lon, k=neighbours)
    for k in range(n_coef):
        write_array(out, f"coef_a{k}", np.where(target, carried[k], coefs[k]))
    return counts


def met_removed_tile(tile, bl: np.ndarray, source: np.ndarray, coef: np.ndarray, short_term_level: np.ndarray,
                     met_rows: np.ndarray, index: np.ndarray, weight: np.ndarray, level: dict) -> np.ndarray:
    """Eqs. 3–4 on one tile for every pixel with coefficients (own, idle-day or carried), ``pm25_bl_tem``
    as ``(time, rows, cols)`` float32, NaN elsewhere.

    ``bl`` is the tile's ``pm25_bl`` ``(time, pixels)``; ``source`` its ``met_fit_source``, ``coef``
    ``(pixels, k + 1)`` its coefficient maps and ``short_term_level`` ``(pixels, years)``, all flattened
    row-major; ``met_rows``, ``index``, ``weight`` from :func:`~ihs_hpc.pipeline.stage2.tile_met_rows`;
    ``level`` as pass A's. Pass C calls it with what it reads back from the store, pass A (a tile none of
    whose pixels is carried) with the same values still in memory, so both give the same array.
    """
    todo = np.flatnonzero(np.isin(source, (FIT_OWN, FIT_IDLE, FIT_CARRIED)))
    n_time = bl.shape[0]
    if todo.size == 0:
        return np.full((n_time,) + tile.shape, np.nan, dtype=np.float32)
    _, tem = apply_met_block(bl.reshape(n_time, -1), met_rows, index[todo], weight[todo],
                             np.asarray(coef, dtype=np.float64)[todo], short_term_level[todo], todo,
                             keep_level=level["keep_level"], year_of_day=level["year_of_day"],
                             fitted=False)  # eqs. 3 and 4; eq. 3 alone is not stored (stage2.MET_EXPLAINED)
    return tem.reshape((n_time,) + tile.shape)


def apply_tile(tile, *, out: Path, variables: tuple[str, ...], met_lat: np.ndarray, met_lon: np.ndarray, grid: Grid,
               level: dict) -> None:
    """Pass C for one tile: eqs. 3–4 for every pixel with coefficients (its own whole-series or idle-day fit,
    or carried); ``level`` as pass A's (:func:`~ihs_hpc.ops.met_removal.remove_met_block` keywords).
    A tile none of whose pixels is carried was finished by pass A (:func:`fit_tile`)."""
    from .stage2 import tile_met_rows

    n_coef = len(variables) + 1
    kept = recall_tile(out, "pm25_bl", tile)  # pass A's baseline, when this process wrote it (issue 15)
    fields = read_tile(out, tile, ["met_fit_source", "short_term_level"] + ["pm25_bl"] * (kept is None)
                       + [f"coef_a{k}" for k in range(n_coef)])
    if kept is not None:
        fields["pm25_bl"] = kept
    source = fields["met_fit_source"].ravel()
    if not np.isin(source, (FIT_OWN, FIT_IDLE, FIT_CARRIED)).any():  # nothing analysed: the cube keeps NaN
        write_tile(out, tile, {}, record=APPLY_PREFIX + tile.name)
        return
    bl = fields["pm25_bl"]
    coef = np.stack([fields[f"coef_a{k}"].ravel() for k in range(n_coef)], axis=1).astype(np.float64)
    levels = fields["short_term_level"].reshape(-1, source.size).T
    rows, index, weight = tile_met_rows(tile, out=out, variables=variables, met_lat=met_lat, met_lon=met_lon,
                                        grid=grid)
    tem = met_removed_tile(tile, bl.reshape(bl.shape[0], -1), source, coef, levels, rows, index, weight, level)
    write_tile(out, tile, {"pm25_bl_tem": tem}, record=APPLY_PREFIX + tile.name)
