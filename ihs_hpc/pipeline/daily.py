"""Day-by-day spatial filling over a time-contiguous cube, with bounded memory.

Kriging needs whole days while cubes are stored with whole series per chunk (a Zarr chunk is a tile's
full record). Reading a block of days straight from such a store decodes every chunk of the cube in full
for every block — on the BTH grid (48-day blocks, 110 tiles of ten years) 76 decodes of the whole cube
per kriging pass, which with the page faults of its 60 MB chunk buffers was most of a 50-minute run
(issue 15). :func:`krige_cube` therefore goes through a day-major copy, the two-level rechunk the ingest
uses:

1. per tile (one task each): the tile's series are copied into a scratch store chunked
   ``(block_days, tile, tile)`` (``_ihs_fills/days.zarr``, LZ4), each tile writing only its own chunks;
   with ``original``, the tile's count of input values missing per day is kept too;
2. per block of days (one task each): the block is read from the copy (its own chunks only), each day is
   kriged (:func:`fill_days`) and the kriged values — NaN everywhere else, so their chunks compress to
   almost nothing — written to a second array of the copy; the per-day figures are saved as the block's
   completion record. Once every block is done the copy of the source is deleted (disk);
3. per tile (:func:`merge_cube`): the tile's source series (one chunk) with the kriged values put in (a
   tile's chunks of every block) are written to the output store with the usual atomic, resumable tile
   writes.

Every step skips what an interrupted run finished. The result equals kriging each day of the source
and putting the fills in (the same values, converted to float32 once).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import zarr

from ..grid import Grid
from ..io.cube import is_recorded, pending_tiles, read_region, read_tile, record_done, write_tile
from ..io.local_store import writable_group
from ..ops.gapfill import VariogramFitError, fill_gaps
from ..ops.variogram import fit_variogram_fast, fit_variogram_local
from .executor import map_tiles


@dataclass(frozen=True)
class DayBlock:
    """A run of days; quacks like a Tile for :func:`map_tiles` (name, shape)."""

    start: int
    stop: int

    @property
    def name(self) -> str:
        return f"d{self.start:05d}_{self.stop:05d}"

    @property
    def shape(self) -> tuple[int, int]:
        return (self.stop - self.start, 1)


def day_blocks(n_days: int, block_days: int) -> list[DayBlock]:
    """``n_days`` cut into consecutive blocks of at most ``block_days`` days."""
    return [DayBlock(s, min(s + block_days, n_days)) for s in range(0, n_days, block_days)]


def block_days(grid: Grid, budget_values: int = 20_000_000) -> int:
    """Days per kriging task so a block holds at most ``budget_values`` float64 values (160 MB)."""
    return int(max(1, min(366, budget_values // grid.size)))


def fill_days(data, first_day: int, *, lat, lon, holes=None, fill_mask=None, model: str = "exponential", k: int = 16,
              seed: int = 0, variogram: str = "global", variogram_cells: int = 8, drift=None, out=None) -> list[dict]:
    """Krige the NaN pixels (and ``holes``) of every day of ``data (days, ny, nx)``; day ``i`` is day
    ``first_day + i`` of the record (it seeds the variogram subsample).

    ``drift``: standardised covariate maps ``(p, ny, nx)`` (:func:`~ihs_hpc.ops.drift.standardise`);
    given, each day is filled by regression kriging — its least-squares trend on the covariates
    (:func:`~ihs_hpc.ops.drift.drift_trend`) plus the ordinary kriging of the residual — and the
    day's coefficients are in its figures (``drift``, intercept first). Values that were there are
    kept as they were.

    Writes each filled day into ``out[i]`` when given (any float dtype) and returns the per-day figures
    of :func:`~ihs_hpc.ops.gapfill.fill_gaps` (with ``params`` and ``day``). A day's result does not
    depend on the other days of the block.
    """
    from ..ops.drift import drift_trend

    infos = []
    for offset in range(len(data)):
        field = np.asarray(data[offset], dtype=np.float64)
        if holes is not None:
            field = np.where(holes, np.nan, field)
        day = first_day + offset
        trend, beta = drift_trend(field, drift) if drift is not None else (None, None)
        kriged = field if trend is None else field - trend
        params = _day_variogram(kriged, lat, lon, model, seed=(seed, day), estimator=variogram,
                                max_cells=variogram_cells)
        filled, info = fill_gaps(kriged, lat, lon, model=model, k=k, fill_mask=fill_mask,
                                 variogram_parameters=params, seed=(seed, day))
        if trend is not None:
            filled = np.where(np.isnan(field), filled + trend, field)
            info["drift"] = beta
        info["params"] = params
        info["day"] = day
        if out is not None:
            out[offset] = filled
        infos.append(info)
    return infos


def fill_block(block: DayBlock, *, store: Path, variable: str, lat, lon, holes=None, fill_mask=None,
               model: str = "exponential", k: int = 16, seed: int = 0, original=None, variogram: str = "global",
               variogram_cells: int = 8, drift=None) -> dict:
    """Krige the NaN pixels (and ``holes``) of every day of a block read from ``store``; return the fills,
    sparse (``day``, flat ``pixel``, ``value``) with the per-day ``info``.

    ``original=(store, variable)`` also counts, per day, the values missing before outlier removal.
    Reads the block straight from ``store``: cheap for a day-chunked store or a few blocks (the stage-3
    validation); :func:`krige_cube` is the pipeline's path over whole time-contiguous cubes.
    """
    span = slice(block.start, block.stop)
    data = np.asarray(read_region(zarr.open_group(store, mode="r")[variable], (span,), store=store, name=variable,
                                  where=f"days {block.start}..{block.stop - 1}"), dtype=np.float64)
    if original is not None:
        raw = read_region(zarr.open_group(original[0], mode="r")[original[1]], (span,), store=original[0],
                          name=original[1], where=f"days {block.start}..{block.stop - 1}")
        missing_input = np.isnan(raw).reshape(len(raw), -1).sum(axis=1)
    filled = np.empty_like(data)
    infos = fill_days(data, block.start, lat=lat, lon=lon, holes=holes, fill_mask=fill_mask, model=model, k=k,
                      seed=seed, variogram=variogram, variogram_cells=variogram_cells, drift=drift, out=filled)
    days, pixels, values = [], [], []
    for offset, (field, info) in enumerate(zip(data, infos)):
        if holes is not None:
            field = np.where(holes, np.nan, field)
        target = np.isnan(field) if fill_mask is None else np.isnan(field) & fill_mask
        flat = np.flatnonzero(target.ravel())
        days.append(np.full(flat.size, block.start + offset, dtype=np.int32))
        pixels.append(flat.astype(np.int64))
        values.append(filled[offset].ravel()[flat].astype(np.float32))
        if original is not None:
            info["n_missing_input"] = int(missing_input[offset])
    return {"day": np.concatenate(days), "pixel": np.concatenate(pixels), "value": np.concatenate(values),
            "info": infos}


def local_stride(shape, max_anchors: int = 40_000) -> int:
    """Anchor thinning of the local variogram: about ``max_anchors`` anchor pixels per day."""
    return max(1, int(round(np.sqrt(shape[0] * shape[1] / max_anchors))))


def _day_variogram(field, lat, lon, model, seed, estimator: str = "global", max_cells: int = 8):
    """This day's variogram (``local``: short-lag pixel pairs; ``global``: PyKrige's binning of a
    subsample); None lets fill_gaps apply its fallbacks."""
    valid = np.isfinite(field)
    if valid.sum() < 10:
        return None
    try:
        if estimator == "local":
            return fit_variogram_local(field, lat, lon, model=model, max_cells=max_cells,
                                       stride=local_stride(field.shape))
        rows, cols = np.nonzero(valid)
        return fit_variogram_fast(np.asarray(lon)[cols], np.asarray(lat)[rows], field[valid], model=model, seed=seed)
    except VariogramFitError:
        return None


FILLS_DIR = "_ihs_fills"
DAYS_STORE = "days.zarr"
SOURCE, FILLS, MISSING = "source", "fills", "n_missing"


@dataclass(frozen=True)
class DayMajorFills:
    """Where :func:`krige_cube` left the kriged values: the ``fills`` array (NaN where nothing was kriged)
    of a day-major scratch store."""

    store: Path


def _days_group(scratch: Path, shape, tile: int, block: int, count_missing: bool):
    """The scratch store of the day-major copy (created once; reused as is by a resumed run)."""
    from ..io.rechunk import SCRATCH_COMPRESSOR

    path = Path(scratch) / DAYS_STORE
    layout = {"shape": list(shape), "tile": tile, "block": block, "count_missing": count_missing}
    if path.is_dir():
        group = writable_group(path)
        if group.attrs.get("layout") == layout:
            return group
    group = writable_group(path, mode="w", zarr_format=3)
    compressor = zarr.codecs.BloscCodec(**SCRATCH_COMPRESSOR)
    n_days, ny, nx = shape
    chunks = (block, min(tile, ny), min(tile, nx))
    for name in (SOURCE, FILLS):
        group.create_array(name, shape=tuple(shape), chunks=chunks, dtype="float32", fill_value=np.nan,
                           compressors=compressor)
    if count_missing:
        tiles = (-(-ny // tile), -(-nx // tile))
        group.create_array(MISSING, shape=(n_days,) + tiles, chunks=(n_days, 1, 1), dtype="int32", fill_value=0)
    group.attrs["layout"] = layout
    return group


def copy_tile_day_major(tile, *, store: Path, variable: str, days: Path, original=None, tile_size: int) -> None:
    """Step 1 of :func:`krige_cube` for one tile: its series into the day-major copy (and, with
    ``original=(store, variable)``, the tile's count of values missing there per day)."""
    group = writable_group(days)
    block = read_tile(store, tile, [variable])[variable]
    group[SOURCE][:, tile.rows, tile.cols] = block.astype(np.float32, copy=False)
    if original is not None:
        raw = read_tile(original[0], tile, [original[1]])[original[1]]
        counts = np.isnan(raw).reshape(len(raw), -1).sum(axis=1).astype(np.int32)
        iy, ix = tile.rows.start // tile_size, tile.cols.start // tile_size
        group[MISSING][:, iy, ix] = counts
    record_done(days, "copy_" + tile.name, tile=tile.name)


def _block_record(days: Path, block: DayBlock) -> Path:
    return Path(days) / "blocks" / f"{block.name}.json"


def block_done(block: DayBlock, *, days: Path) -> bool:
    """Whether a block of days was kriged and written to the copy (by this run or an interrupted one)."""
    return _block_record(days, block).is_file()


def fill_block_day_major(block: DayBlock, *, days: Path, lat, lon, stage_store: Path | None = None, holes=None,
                         fill_mask=None, **kwargs) -> None:
    """Step 2 of :func:`krige_cube` for one block: read it from the copy, krige every day (:func:`fill_days`),
    write the kriged values (NaN elsewhere), then save the per-day figures (the block's completion record)
    and record the block in ``stage_store`` (``kriging_<block>``, with a count of writes)."""
    group = writable_group(days)
    span = slice(block.start, block.stop)
    data = read_region(group[SOURCE], (span,), store=days, name=SOURCE, where=f"days {block.start}..{block.stop - 1}")
    filled = np.empty(data.shape, dtype=np.float32)
    infos = fill_days(data, block.start, lat=lat, lon=lon, out=filled, holes=holes, fill_mask=fill_mask, **kwargs)
    target = np.isnan(data) if holes is None else np.isnan(data) | holes
    if fill_mask is not None:
        target &= fill_mask
    group[FILLS][span] = np.where(target, filled, np.float32(np.nan))
    target = _block_record(days, block)
    target.parent.mkdir(exist_ok=True)
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(infos, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))
    os.replace(tmp, target)
    if stage_store is not None and Path(stage_store).joinpath("zarr.json").is_file():
        record_done(stage_store, f"kriging_{block.name}", days=[block.start, block.stop])


def krige_cube(store: Path, variable: str, grid: Grid, client, *, block_days: int, scratch: Path, holes=None,
               fill_mask=None, model: str = "exponential", k: int = 16, original=None, desc: str = "kriging days",
               variogram: str = "global", variogram_cells: int = 8, drift=None,
               keep_source: bool = False) -> tuple[DayMajorFills, list]:
    """Krige every day of ``store[variable]`` (NaN pixels inside ``fill_mask``, and ``holes``), one task per
    tile to copy the cube day-major and one per block of days to krige (see the module docstring).

    ``drift``: covariate maps for regression kriging (see :func:`fill_days`). ``keep_source``: leave the
    day-major copy of the input in ``scratch`` for the caller (stage 3's fill error), which removes it.

    Returns the :class:`DayMajorFills` for :func:`merge_cube` and the per-day figures sorted by day
    (``n_missing_input`` too when ``original=(store, variable)`` is given). Everything lives in
    ``scratch`` (inside the stage's store, under ``_ihs_fills``), so a killed run resumes with the tiles
    and blocks not yet done, under the same executor, retries and progress as every tile map.
    """
    scratch = Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    array = zarr.open_group(store, mode="r")[variable]
    n_days = array.shape[0]
    tile_size = int(array.chunks[-1])
    days = scratch / DAYS_STORE
    blocks = day_blocks(n_days, block_days)
    if (days / "zarr.json").is_file() and not (days / SOURCE).is_dir() and not all(
            block_done(b, days=days) for b in blocks):
        import shutil

        shutil.rmtree(days)  # the copy was deleted but a block's record is missing: start the scratch afresh
    _days_group(scratch, array.shape, tile_size, block_days, original is not None)
    tiles = pending_tiles(days, grid.tiles(tile_size), prefix="copy_")
    map_tiles(partial(copy_tile_day_major, store=store, variable=variable, days=days, original=original,
                      tile_size=tile_size),
              tiles, client, desc=desc.replace("days", "day-major copy") if "days" in desc else desc + " copy",
              done=partial(is_recorded, days, prefix="copy_"))
    func = partial(fill_block_day_major, days=days, lat=grid.lat, lon=grid.lon, stage_store=scratch.parent,
                   holes=holes, fill_mask=fill_mask, model=model, k=k, variogram=variogram,
                   variogram_cells=variogram_cells, drift=drift)
    todo = [b for b in blocks if not block_done(b, days=days)]
    map_tiles(func, todo, client, desc=desc, unit="block", done=partial(block_done, days=days))
    if not keep_source:
        import shutil

        shutil.rmtree(days / SOURCE, ignore_errors=True)  # every block is kriged: the copy has served (disk)
    infos = []
    for block in blocks:
        infos.extend(json.loads(_block_record(days, block).read_text()))
    if original is not None:
        missing = np.asarray(zarr.open_group(days, mode="r")[MISSING][...]).reshape(n_days, -1).sum(axis=1)
        for info in infos:
            info["n_missing_input"] = int(missing[info["day"]])
    return DayMajorFills(days), sorted(infos, key=lambda i: i["day"])


def _fills_by_tile(fills: dict, grid: Grid, tile_size: int) -> dict:
    """Sparse fills ``(day, pixel, value)`` grouped by tile, each tile's in day order: one sort, so a
    tile's merge touches only its own fills."""
    rows, cols = np.divmod(np.asarray(fills["pixel"], dtype=np.int64), grid.nx)
    n_tx = -(-grid.nx // tile_size)
    tile_id = (rows // tile_size) * n_tx + cols // tile_size
    order = np.argsort(tile_id, kind="stable")
    ids, starts = np.unique(tile_id[order], return_index=True)
    stops = np.append(starts[1:], order.size)
    groups = {}
    for tid, a, b in zip(ids, starts, stops):
        sel = order[a:b]
        groups[(int(tid) // n_tx, int(tid) % n_tx)] = {"day": fills["day"][sel], "row": rows[sel], "col": cols[sel],
                                                       "value": fills["value"][sel]}
    return groups


def merge_tile(tile, *, source: Path, source_var: str, out: Path, out_var: str, grid: Grid, fills, holes=None,
               record_prefix: str = "", extra=None) -> None:
    """Write one tile of ``out_var``: the source values (``holes`` set to NaN) with the fills put in — the
    kriged values of a :class:`DayMajorFills`, or sparse ones (``fills``: this tile's ``day, row, col,
    value`` from :func:`_fills_by_tile`, or the whole sparse ``day, pixel, value`` set)."""
    block = read_tile(source, tile, [source_var])[source_var].astype(np.float32)
    if holes is not None:
        block = np.where(holes[tile.rows, tile.cols][None], np.nan, block)
    if isinstance(fills, DayMajorFills):
        group = zarr.open_group(fills.store, mode="r")
        kriged = read_region(group[FILLS], (slice(None), tile.rows, tile.cols), store=fills.store, name=FILLS,
                             where=f"tile {tile.name}")
        np.copyto(block, kriged, where=~np.isnan(kriged))
    else:
        if "row" in fills:
            rows, cols = fills["row"], fills["col"]
        else:
            rows, cols = np.divmod(fills["pixel"], grid.nx)
        inside = (rows >= tile.rows.start) & (rows < tile.rows.stop) & (cols >= tile.cols.start) & (cols < tile.cols.stop)
        block[fills["day"][inside], rows[inside] - tile.rows.start, cols[inside] - tile.cols.start] = fills["value"][inside]
    data = {out_var: block}
    if extra is not None:
        data.update(extra(tile, block))
    write_tile(out, tile, data, record=record_prefix + tile.name)


def _merge_sparse_tile(tile, *, groups: dict, **kwargs) -> None:
    empty = {"day": np.zeros(0, np.int32), "row": np.zeros(0, np.int64), "col": np.zeros(0, np.int64),
             "value": np.zeros(0, np.float32)}
    merge_tile(tile, fills=groups.get((tile.iy, tile.ix), empty), **kwargs)


def merge_cube(source: Path, source_var: str, out: Path, out_var: str, grid: Grid, tile_size: int, fills,
               *, holes=None, record_prefix: str = "", extra=None, desc: str = "merging fills", client=None) -> dict:
    """Write ``out_var`` tile by tile from the fills: a :class:`DayMajorFills` (one task per tile on
    ``client``, which needs a picklable ``extra``) or sparse ``(day, pixel, value)`` arrays (in-process:
    they stay in this memory, grouped by tile once)."""
    tiles = pending_tiles(out, grid.tiles(tile_size), prefix=record_prefix)
    common = dict(source=source, source_var=source_var, out=out, out_var=out_var, grid=grid, holes=holes,
                  record_prefix=record_prefix, extra=extra)
    if isinstance(fills, DayMajorFills):
        func = partial(merge_tile, fills=fills, **common)
    else:
        func = partial(_merge_sparse_tile, groups=_fills_by_tile(fills, grid, tile_size), **common)
        client = None
    return map_tiles(func, tiles, client, desc=desc, done=partial(is_recorded, out, prefix=record_prefix))
