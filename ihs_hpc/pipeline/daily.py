"""Day-by-day spatial filling over a time-contiguous cube, with bounded memory.

Kriging needs whole days while cubes are stored with whole series per chunk. The fill runs in three
steps: blocks of days are read over the full grid (one task per block; each task holds
``block_days × ny × nx`` values), the filled values come back sparse (day, pixel, value) — gaps and
holes are a small share of a cube — and a final pass per tile merges them into the output cube with
the usual atomic, resumable tile writes.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import zarr

from ..grid import Grid
from ..io.cube import is_recorded, pending_tiles, read_region, read_tile, record_done, write_tile
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
    return [DayBlock(s, min(s + block_days, n_days)) for s in range(0, n_days, block_days)]


def block_days(grid: Grid, budget_values: int = 20_000_000) -> int:
    """Days per kriging task so a block holds at most ``budget_values`` float64 values (160 MB)."""
    return int(max(1, min(366, budget_values // grid.size)))


def fill_block(block: DayBlock, *, store: Path, variable: str, lat, lon, holes=None, fill_mask=None,
               model: str = "exponential", k: int = 16, seed: int = 0, original=None, variogram: str = "global",
               variogram_cells: int = 8) -> dict:
    """Krige the NaN pixels (and ``holes``) of every day of a block; return the fills, sparse.

    ``original=(store, variable)`` also counts, per day, the values missing before outlier removal.
    """
    span = slice(block.start, block.stop)
    data = np.asarray(read_region(zarr.open_group(store, mode="r")[variable], (span,), store=store, name=variable,
                                  where=f"days {block.start}..{block.stop - 1}"), dtype=np.float64)
    if original is not None:
        raw = read_region(zarr.open_group(original[0], mode="r")[original[1]], (span,), store=original[0],
                          name=original[1], where=f"days {block.start}..{block.stop - 1}")
        missing_input = np.isnan(raw).reshape(len(raw), -1).sum(axis=1)
    days, pixels, values, infos = [], [], [], []
    for offset, field in enumerate(data):
        if holes is not None:
            field = np.where(holes, np.nan, field)
        target = np.isnan(field) if fill_mask is None else np.isnan(field) & fill_mask
        params = _day_variogram(field, lat, lon, model, seed=(seed, block.start + offset), estimator=variogram,
                                max_cells=variogram_cells)
        filled, info = fill_gaps(field, lat, lon, model=model, k=k, fill_mask=fill_mask,
                                 variogram_parameters=params, seed=(seed, block.start + offset))
        info["params"] = params
        flat = np.flatnonzero(target.ravel())
        days.append(np.full(flat.size, block.start + offset, dtype=np.int32))
        pixels.append(flat.astype(np.int64))
        values.append(filled.ravel()[flat].astype(np.float32))
        info["day"] = block.start + offset
        if original is not None:
            info["n_missing_input"] = int(missing_input[offset])
        infos.append(info)
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


def _block_file(scratch: Path, block: DayBlock) -> Path:
    return Path(scratch) / f"{block.name}.npz"


def block_done(block: DayBlock, *, scratch: Path) -> bool:
    """Whether a block of days was kriged and its fills saved (by this run or an interrupted one)."""
    return _block_file(scratch, block).is_file()


def fill_block_to_file(block: DayBlock, *, scratch: Path, **kwargs) -> None:
    """:func:`fill_block`, saved atomically to ``scratch/<block>.npz`` (the block's completion record)."""
    import json
    import os

    result = fill_block(block, **kwargs)
    target = _block_file(scratch, block)
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp.npz")
    info = json.dumps(result["info"], default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))
    np.savez(tmp, day=result["day"], pixel=result["pixel"], value=result["value"], info=np.array(info))
    os.replace(tmp, target)
    if Path(scratch).parent.joinpath("zarr.json").is_file():  # the store the fills belong to
        record_done(Path(scratch).parent, f"kriging_{block.name}", days=[block.start, block.stop])


def krige_cube(store: Path, variable: str, grid: Grid, client, *, block_days: int, scratch: Path, holes=None,
               fill_mask=None, model: str = "exponential", k: int = 16, original=None, desc: str = "kriging days",
               variogram: str = "global", variogram_cells: int = 8) -> tuple[dict, list]:
    """Run :func:`fill_block` over all days, one task per block of days; return the sparse fills and
    per-day info.

    Each block's fills are saved in ``scratch`` as it finishes, so a killed run resumes with the blocks
    not yet done (the same executor, retries and progress as every tile map).
    """
    import json

    scratch = Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    n_days = zarr.open_group(store, mode="r")[variable].shape[0]
    blocks = day_blocks(n_days, block_days)
    func = partial(fill_block_to_file, scratch=scratch, store=store, variable=variable, lat=grid.lat, lon=grid.lon,
                   holes=holes, fill_mask=fill_mask, model=model, k=k, original=original, variogram=variogram,
                   variogram_cells=variogram_cells)
    todo = [b for b in blocks if not block_done(b, scratch=scratch)]
    map_tiles(func, todo, client, desc=desc, unit="block", done=partial(block_done, scratch=scratch))
    parts = {key: [] for key in ("day", "pixel", "value")}
    infos = []
    for block in blocks:
        with np.load(_block_file(scratch, block)) as saved:
            for key in parts:
                parts[key].append(saved[key])
            infos.extend(json.loads(str(saved["info"])))
    fills = {key: np.concatenate(v) if v else np.zeros(0) for key, v in parts.items()}
    return fills, sorted(infos, key=lambda i: i["day"])


def merge_tile(tile, *, source: Path, source_var: str, out: Path, out_var: str, grid: Grid, fills: dict,
               holes=None, record_prefix: str = "", extra=None) -> None:
    """Write one tile of ``out_var`` = source values with the sparse fills put in."""
    block = read_tile(source, tile, [source_var])[source_var].astype(np.float32)
    if holes is not None:
        block = np.where(holes[tile.rows, tile.cols][None], np.nan, block)
    rows, cols = np.divmod(fills["pixel"], grid.nx)
    inside = (rows >= tile.rows.start) & (rows < tile.rows.stop) & (cols >= tile.cols.start) & (cols < tile.cols.stop)
    block[fills["day"][inside], rows[inside] - tile.rows.start, cols[inside] - tile.cols.start] = fills["value"][inside]
    data = {out_var: block}
    if extra is not None:
        data.update(extra(tile, block))
    write_tile(out, tile, data, record=record_prefix + tile.name)


def merge_cube(source: Path, source_var: str, out: Path, out_var: str, grid: Grid, tile_size: int, fills: dict,
               *, holes=None, record_prefix: str = "", extra=None, desc: str = "merging fills") -> dict:
    """Merge sparse fills into ``out_var`` tile by tile (in-process: the fills stay in this memory)."""
    tiles = pending_tiles(out, grid.tiles(tile_size), prefix=record_prefix)
    return map_tiles(partial(merge_tile, source=source, source_var=source_var, out=out, out_var=out_var, grid=grid,
                             fills=fills, holes=holes, record_prefix=record_prefix, extra=extra),
                     tiles, None, desc=desc, done=partial(is_recorded, out, prefix=record_prefix))
