"""Bounded-memory rechunk of daily, time-sliced inputs into time-contiguous tiles (the ingest's two passes).

Pass 1 reads ``batch_days`` days at a time into a buffer of ``batch_days × ny × nx`` float32 and writes
it, one tile-row band at a time, to a scratch Zarr chunked ``(batch_days, tile, tile)``; pass 2 reads one
variable of one tile with all days and writes it with :func:`~ihs_hpc.io.cube.write_tile`. Both passes
resume: finished batches and tiles are recorded. :func:`memory_bound_mb` states the peak memory.
"""
from __future__ import annotations

import json
import shutil
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..grid import Grid
from .cube import pending_tiles, store_tiles, write_tile
from .errors import IngestError, IngestWarning
from .local_store import writable_group

DEFAULT_MEMORY_MB = 1024
SCRATCH_COMPRESSOR = {"cname": "lz4", "clevel": 1, "shuffle": "shuffle"}


# ---------------------------------------------------------------------------------------------- progress
class Progress:
    """Progress reporting: ``None`` → tqdm bars on a terminal, one line per interval in a log (rate and
    ETA; :mod:`ihs_hpc.progress`), ``False`` → silent, or a callable
    ``progress(stage: str, done: int, total: int)`` called after every step."""

    def __init__(self, progress=None):
        self.progress = progress

    def bar(self, stage: str, total: int, unit: str):
        return _Bar(self.progress, stage, total, unit)


class _Bar:
    def __init__(self, progress, stage, total, unit):
        self.progress, self.stage, self.total, self.done = progress, stage, int(total), 0
        self._tqdm = None
        if progress is None:
            from ..progress import progress as reporter  # a bar on a terminal, lines in a log

            self._tqdm = reporter(total, stage, unit)
        elif callable(progress):
            progress(stage, 0, self.total)

    def update(self, n: int = 1):
        self.done += n
        if self._tqdm is not None:
            self._tqdm.update(n)
        elif callable(self.progress):
            self.progress(self.stage, self.done, self.total)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._tqdm is not None:
            self._tqdm.close()


# ---------------------------------------------------------------------------------------------- rechunk
def days_per_batch(n_days: int, bytes_per_day: int, batch_days, memory_mb) -> int:
    """Days per pass-1 batch: ``batch_days`` when given (at most ``n_days``), else as many as ``memory_mb``
    holds (a day costs ``bytes_per_day`` twice), between 1 and 128."""
    if batch_days is not None:
        b = int(batch_days)
        if b < 1:
            raise IngestError(f"batch_days must be >= 1, got {batch_days!r}")
        return min(b, n_days)
    budget = float(memory_mb or DEFAULT_MEMORY_MB) * 2**20
    b = int(budget // (2 * max(bytes_per_day, 1)))  # factor 2: the batch buffer plus Zarr's encode copies
    return int(max(1, min(128, b, n_days)))


# Memory model of ingest() (module docstring); calibrated by benchmarks/bench_ingest_full.py.
PASS1_BUFFER_FACTOR = 1.0   # the batch buffer itself
ENCODE_FACTOR = 3.0         # a tile-row band: its slice, the chunk Zarr assembles and the compressed bytes
PASS2_FACTOR = 3.0          # one variable's tile: read from scratch, Zarr's chunk copy, compressed bytes
WARMUP_MB = 128.0           # libraries warming up after import: GDAL/rasterio, shapely, numba, HDF5
SLACK_MB = 64.0             # one decoded day, reader caches, allocator slack


def memory_bound_mb(*, grid_shape, met_shape, n_days: int, tile_size: int, n_met: int, batch_days: int,
                    baseline_mb: float, met_batch_days: int | None = None) -> dict[str, float]:
    """The stated peak resident memory (MiB) of :func:`ingest` for one configuration (``workers=1``).

    ``peak ≤ baseline + warm-up + max(pass 1 of PM2.5, pass 1 of ERA5, pass 2) + slack`` with

    * pass 1: ``batch_days·ny·nx·4 B`` (the batch buffer) ``+ 3 · batch_days·tile·nx·4 B`` (one
      tile-row band being encoded), for ERA5 times the number of variables on the met grid;
    * pass 2: ``3 · n_days·tile²·4 B`` (one variable of one tile with all days: the meteorological
      variables are written one at a time);
    * warm-up: 128 MiB (GDAL, shapely, numba and HDF5 state created by the first reads);
    * slack: 64 MiB (one decoded day, reader caches, allocator slack).

    ``baseline_mb`` is the resident size after imports (about 270 MiB with xarray, zarr, dask,
    netCDF4, rasterio and geopandas loaded). With ``workers > 1`` each reader process adds its own
    baseline and its share of the batch. Returns every term and ``total``.

    Example: the full ``bth`` scene (3653 days of 660 × 630, 68 × 65 met cells, tile 64, batch 128)
    gives 270 + 128 + 262 + 64 ≈ 724 MiB; ``benchmarks/bench_ingest_full.py`` measures it.
    """
    mib = 2.0**20
    ny, nx = grid_shape
    my, mx = met_shape
    met_batch = int(met_batch_days or batch_days)

    def pass1(rows, cols, batch, n_vars):
        band = batch * min(tile_size, rows) * cols * 4 * n_vars
        return (PASS1_BUFFER_FACTOR * batch * rows * cols * 4 * n_vars + ENCODE_FACTOR * band) / mib

    terms = {
        "baseline": float(baseline_mb),
        "warmup": WARMUP_MB,
        "pm25_pass1": pass1(ny, nx, batch_days, 1),
        "met_pass1": pass1(my, mx, met_batch, n_met),
        "pass2": PASS2_FACTOR * n_days * min(tile_size, ny) * min(tile_size, nx) * 4 / mib,
        "slack": SLACK_MB,
    }
    terms["total"] = (terms["baseline"] + terms["warmup"] + max(terms["pm25_pass1"], terms["met_pass1"], terms["pass2"])
                      + terms["slack"])
    return terms


_WORKER_SOURCE = None


def _init_worker(source):
    global _WORKER_SOURCE
    _WORKER_SOURCE = source
    warnings.simplefilter("ignore", IngestWarning)


def _read_in_worker(days):
    return _WORKER_SOURCE.read_days(days)


def write_daily_cube(store, source, grid: Grid, *, tile_size: int, work_dir, record_prefix: str = "",
                     batch_days: int | None = None, memory_mb: float | None = None, workers: int = 1,
                     progress=None, plausibility=None) -> dict:
    """Two-pass rechunk of a daily ``source`` into the time-contiguous variables of ``store``.

    ``source`` provides ``days`` (datetime64[D]), ``variables`` ({name: attrs}), ``nbytes_per_day``,
    ``read_days(days) -> {name: (n, ny, nx) float32}`` on ``grid`` (the analysis grid, or the met grid
    with ``record_prefix="met_"``) and ``file_of(day, variable)``. ``plausibility``
    (:class:`~ihs_hpc.io.plausibility.Plausibility`) masks and counts implausible values of each batch;
    its counts survive a resumed run (they are kept with each finished batch). Returns timing and
    size figures.
    """
    import zarr

    store, work_dir = Path(store), Path(work_dir)
    bar = Progress(progress).bar
    tiles = store_tiles(store, grid, next(iter(source.variables)))  # the store's chunks (met grid: io.cube.even_chunk)
    todo = pending_tiles(store, tiles, prefix=record_prefix)
    n = len(source.days)
    names = list(source.variables)
    batch = days_per_batch(n, source.nbytes_per_day, batch_days, memory_mb)
    stats = {"days": n, "batch_days": batch, "variables": names, "pass1_s": 0.0, "pass2_s": 0.0,
             "bytes": n * grid.size * 4 * len(names)}
    if not todo:
        return stats
    scratch = work_dir / f"{source.name}.zarr"
    done_dir = work_dir / f"{source.name}.batches"
    done_dir.mkdir(parents=True, exist_ok=True)
    meta = {"shape": [n, grid.ny, grid.nx], "batch": batch, "variables": names}
    meta_file = work_dir / f"{source.name}.json"
    if not meta_file.exists() or json.loads(meta_file.read_text()) != meta:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(done_dir, ignore_errors=True)
        done_dir.mkdir(parents=True)
        group = writable_group(scratch, mode="w", zarr_format=3)
        compressor = zarr.codecs.BloscCodec(**SCRATCH_COMPRESSOR)
        ty = min(tile_size, grid.ny)
        tx = min(tile_size, grid.nx)
        for name in names:
            group.create_array(name, shape=(n, grid.ny, grid.nx), chunks=(batch, ty, tx), dtype="float32",
                               fill_value=np.nan, compressors=compressor)
        meta_file.write_text(json.dumps(meta))
    group = writable_group(scratch, zarr_format=3)
    arrays = {name: group[name] for name in names}

    # pass 1: days in batches -> scratch (batch, tile, tile) chunks
    starts = list(range(0, n, batch))
    pending_batches = [b0 for b0 in starts if not (done_dir / f"b{b0:07d}").exists()]
    if plausibility is not None:  # counts of batches finished by an earlier, interrupted run
        for b0 in set(starts) - set(pending_batches):
            text = (done_dir / f"b{b0:07d}").read_text()
            for entry in (json.loads(text) if text else []):
                plausibility.counts[(entry[0], entry[1])] += entry[2]
                plausibility.examples.setdefault((entry[0], entry[1]), entry[3])
    t0 = time.perf_counter()
    with bar(f"{source.name}: read days", len(starts), "batch") as pbar:
        pbar.update(len(starts) - len(pending_batches))
        pool = None
        if workers and int(workers) > 1 and len(pending_batches) > 0:
            pool = ProcessPoolExecutor(int(workers), initializer=_init_worker, initargs=(source,))
        try:
            for b0 in pending_batches:
                b1 = min(b0 + batch, n)
                days = source.days[b0:b1]
                if pool is None:
                    data = source.read_days(days)
                else:
                    parts = np.array_split(np.arange(b1 - b0), int(workers))
                    results = list(pool.map(_read_in_worker, [days[p] for p in parts if p.size]))
                    data = {name: np.concatenate([r[name] for r in results]) for name in names}
                    del results
                batch_counts = []
                if plausibility is not None:
                    before = dict(plausibility.counts)
                    plausibility.apply(data, days, source.file_of)
                    batch_counts = [[f, v, n - before.get((f, v), 0), plausibility.examples[(f, v)]]
                                    for (f, v), n in plausibility.counts.items() if n != before.get((f, v), 0)]
                for name in names:  # one tile-row band at a time: Zarr's encode copies stay band-sized
                    for r0 in range(0, grid.ny, tile_size):
                        arrays[name][b0:b1, r0:r0 + tile_size] = data[name][:, r0:r0 + tile_size]
                del data
                (done_dir / f"b{b0:07d}").write_text(json.dumps(batch_counts))
                pbar.update(1)
        finally:
            if pool is not None:
                pool.shutdown()
    stats["pass1_s"] = time.perf_counter() - t0

    # pass 2: one tile with all days -> the store's (time, tile, tile) chunk
    t0 = time.perf_counter()
    with bar(f"{source.name}: write tiles", len(tiles), "tile") as pbar:
        pbar.update(len(tiles) - len(todo))
        for tile in todo:
            # one variable at a time: seven met variables x all days would otherwise sit in memory together
            block = {name: (lambda a=arrays[name], t=tile: a[:, t.rows, t.cols]) for name in names}
            write_tile(store, tile, block, record=record_prefix + tile.name)
            pbar.update(1)
    stats["pass2_s"] = time.perf_counter() - t0
    return stats
