"""Benchmark of the PM2.5 ingest: CHAP-style daily NetCDF files → time-contiguous Zarr cube.

Writes a synthetic BTH-sized stack (660 × 630 cells at 0.01°, ``--days`` files, default 365) in the
CHAP layout (``CHAP_PM2.5_D1K_YYYYMMDD_V4.nc``, ``PM2.5`` float32, zlib-compressed NetCDF4, latitude
north → south, 65535 for missing cells), then runs :func:`ihs_hpc.io.ingest.ingest_pm25` in a fresh
child process and reports, for that process only:

* wall and CPU time, throughput in MB/s of float32 cube (days × ny × nx × 4 B) and of input files;
* peak RSS from ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` and from a psutil sampler (every 20 ms),
  the RSS after imports (baseline), and optionally the tracemalloc peak (``--tracemalloc``; slower);
* the memory model: pass 1 holds ``batch_days × ny × nx × 4 B`` plus one decoded day and Zarr's encode
  copies; pass 2 holds one tile with all days ``n_days × tile² × 4 B``. Neither grows with the number
  of days beyond that one-tile term, so the peak is independent of the length of the record.

Reference, same run: a fresh process that only opens each file and decodes its PM2.5 (the ratio is that
time over the ingest's: the share of the ingest spent reading).

Usage::

    python benchmarks/bench_ingest.py [--quick]            # 365 days (quick: 20), through benchmarks/harness.py
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

BTH = (36.0, 42.6, 113.5, 119.8, 0.01)


def field(day: int, row, col, lat, lon) -> np.ndarray:
    """Deterministic PM2.5-like field (µg/m³) at 0.1 precision: smooth pattern + seasonal cycle + hashed
    noise of ±2 µg/m³, computable for any single pixel (the spot check recomputes it)."""
    season = 30.0 * np.cos(2 * np.pi * (day - 15) / 365.0)
    base = 55.0 + season + 25.0 * np.sin(lat * 1.7) * np.cos(lon * 1.3)
    noise = ((np.asarray(row) * 7919 + np.asarray(col) * 104729 + day * 1299709) % 41 - 20) / 10.0
    return np.round(base + noise, 1).astype(np.float32)


def generate(folder: Path, days: int, grid) -> float:
    import netCDF4

    folder.mkdir(parents=True, exist_ok=True)
    lat, lon = grid.lat, grid.lon
    t0 = time.perf_counter()
    start = np.datetime64("2015-01-01")
    rows, cols = np.arange(lat.size)[:, None], np.arange(lon.size)[None, :]
    for i in range(days):
        day = start + np.timedelta64(i, "D")
        path = folder / f"CHAP_PM2.5_D1K_{str(day).replace('-', '')}_V4.nc"
        if path.exists():
            continue
        data = field(i, rows, cols, lat[:, None], lon[None, :])
        data[::97, ::89] = 65535.0
        tmp = path.with_suffix(".tmp")
        with netCDF4.Dataset(tmp, "w") as ds:
            ds.createDimension("lat", lat.size)
            ds.createDimension("lon", lon.size)
            ds.createVariable("lat", "f8", ("lat",))[:] = lat
            ds.createVariable("lon", "f8", ("lon",))[:] = lon
            v = ds.createVariable("PM2.5", "f4", ("lat", "lon"), zlib=True, complevel=4, chunksizes=(lat.size // 4, lon.size // 4))
            v.units = "µg/m3"
            v[:] = data
        os.replace(tmp, path)
    return time.perf_counter() - t0


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def run_child(args) -> dict:
    """Runs in a fresh process: imports, then the ingest, measuring only this process."""
    import psutil

    from ihs_hpc.grid import Grid
    from ihs_hpc.io.cube import open_store
    from ihs_hpc.io.ingest import ingest_pm25
    from ihs_hpc.io.rechunk import days_per_batch

    import netCDF4  # noqa: F401 - imported before the baseline, like every library the ingest uses
    import dask.array  # noqa: F401
    import xarray  # noqa: F401
    import zarr  # noqa: F401

    grid = Grid(*BTH)
    baseline = rss_mb()
    peak = {"rss": baseline}
    stop = threading.Event()
    proc = psutil.Process()

    def sampler():
        while not stop.is_set():
            peak["rss"] = max(peak["rss"], proc.memory_info().rss / 2**20)
            time.sleep(0.02)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start()
    out = Path(args.out)
    end = str(np.datetime64("2015-01-01") + np.timedelta64(args.days - 1, "D"))
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    ingest_pm25(args.data, out, grid, start="2015-01-01", end=end, tile_size=args.tile_size, batch_days=args.batch_days,
                memory_mb=args.memory_mb, workers=args.workers, progress=False, overwrite=True)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    traced = None
    if args.tracemalloc:
        import tracemalloc

        traced = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    stop.set()
    thread.join()
    children_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    ds = open_store(out)
    stats = json.loads(ds.attrs["ihs_ingest_stats"])
    # spot check: whole series of some pixels against the generator, and the 65535 cells masked
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(8):
        r, c = int(rng.integers(grid.ny)), int(rng.integers(grid.nx))
        series = ds.pm25[:, r, c].values
        expect = np.array([field(i, r, c, grid.lat[r], grid.lon[c]) for i in range(args.days)])
        if r % 97 == 0 and c % 89 == 0:
            expect[:] = np.nan
        worst = max(worst, float(np.nanmax(np.abs(series - expect))) if np.isfinite(expect).any() else 0.0)
        assert np.array_equal(np.isnan(series), np.isnan(expect)), (r, c)
    masked = ds.pm25[0, ::97, ::89].values
    assert np.all(np.isnan(masked)), "65535 cells not masked"
    cube_mb = args.days * grid.size * 4 / 2**20
    files_mb = sum(p.stat().st_size for p in sorted(Path(args.data).glob("CHAP_*.nc"))[:args.days]) / 2**20
    batch = days_per_batch(args.days, grid.size * 4, args.batch_days, args.memory_mb)
    pass1_model = batch * grid.size * 4 / 2**20
    pass2_model = args.days * args.tile_size**2 * 4 / 2**20
    return {
        "days": args.days, "grid": list(grid.shape), "tile_size": args.tile_size, "batch_days": batch,
        "workers": args.workers,
        "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "workers_cpu_s": round(children_cpu.ru_utime + children_cpu.ru_stime, 2),
        "pass1_s": round(stats["pass1_s"], 2), "pass2_s": round(stats["pass2_s"], 2),
        "cube_mb": round(cube_mb, 1), "input_files_mb": round(files_mb, 1),
        "throughput_cube_mb_s": round(cube_mb / wall, 1), "throughput_files_mb_s": round(files_mb / wall, 1),
        "rss_baseline_mb": round(baseline, 1), "rss_peak_sampled_mb": round(peak["rss"], 1),
        "ru_maxrss_mb": round(maxrss, 1), "tracemalloc_peak_mb": None if traced is None else round(traced, 1),
        "model_pass1_buffer_mb": round(pass1_model, 1), "model_pass2_tile_mb": round(pass2_model, 1),
        "rss_above_baseline_mb": round(peak["rss"] - baseline, 1),
        "max_abs_error_vs_generator": round(worst, 3),
        "store_mb": round(sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20, 1),
    }


#: floor of the ingest's efficiency: seconds to only read and decode the files / seconds of the whole ingest
FLOOR = 0.05


def ingest_child(**options) -> dict:
    """Runs in a fresh process: :func:`run_child` with keyword options."""
    return run_child(argparse.Namespace(**options))


def read_only_child(data: str, days: int) -> dict:
    """Runs in a fresh process: open each file and decode its PM2.5 field, nothing else (the reference)."""
    import netCDF4

    files = sorted(Path(data).glob("CHAP_*.nc"))[:days]
    cpu0, t0 = time.process_time(), time.perf_counter()
    total = 0.0
    for path in files:
        with netCDF4.Dataset(path) as ds:
            total += float(np.asarray(ds["PM2.5"][:]).ravel()[0])
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - cpu0, "files": len(files)}


def _child(kind: str, args: dict) -> dict:
    code = (f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_ingest as b; "
            f"print(json.dumps(b.{kind}(**json.loads(sys.argv[1]))))")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool, *, workdir: str | None = None, keep: bool = False) -> dict:
    from ihs_hpc.grid import Grid

    days = 20 if quick else 365
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    try:
        data = work / "chap"
        gen_s = generate(data, days, Grid(*BTH))
        ns = argparse.Namespace(days=days, tile_size=64, batch_days=None, memory_mb=None, workers=1,
                                tracemalloc=False, data=str(data), out=str(work / "pm25.zarr"))
        report = _child("ingest_child", vars(ns))
        reference = _child("read_only_child", {"data": str(data), "days": days})
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    report["generate_s"] = round(gen_s, 1)
    report["read_only"] = reference
    rows = [harness.row("ingest_vs_read", f"PM2.5 ingest of {days} CHAP daily files (660x630) to the Zarr cube, "
                                          f"vs only reading them", ours=report["wall_s"], reference=reference["wall_s"],
                        unit="s", floor=FLOOR, reference_name="netCDF4 read+decode of the same files",
                        cube_mb_per_s=report["throughput_cube_mb_s"], files_mb_per_s=report["throughput_files_mb_s"]),
            harness.row("ingest_mb_per_s", "ingest throughput, MB/s of float32 cube (no reference)",
                        ours=report["throughput_cube_mb_s"], unit="MB/s"),
            harness.row("ingest_peak_rss", "ingest peak RSS above baseline, MB (bound: pass-1 buffer + one tile)",
                        ours=report["rss_above_baseline_mb"], unit="MB")]
    return {"rows": rows, "details": report}


if __name__ == "__main__":
    sys.exit(harness.main_single(run, "ingest"))
