"""Peak memory and throughput of the full ``ihs ingest`` (PM2.5 + ERA5 + DEM + IHS + cities), per phase.

Runs :func:`ihs_hpc.io.ingest.ingest` — the function ``ihs ingest`` calls — on the raw files of a
synthetic scene written by ``ihs synth --layout files`` (CHAP daily NetCDF, CDS-style ERA5 yearly
NetCDF, DEM GeoTIFF, IHS CSV, cities GeoJSON), in a fresh child process, and reports for that process:

* wall and CPU time; throughput in MB/s of float32 PM2.5 cube (days × ny × nx × 4 B) and of input files;
* the RSS after imports (baseline), the peak RSS overall (psutil sampler every 20 ms, and
  ``ru_maxrss``) and the peak RSS in each phase (``static inputs``, ``pm25: read days`` = pass 1,
  ``pm25: write tiles`` = pass 2, the same for ``era5``, and the indexing/finishing in between);
* the memory bound stated in :mod:`ihs_hpc.io.ingest`, evaluated for this run, and whether the
  measured peak stays inside it;
* a spot check: whole series of random pixels equal the scene's ``truth.zarr`` PM2.5 where the
  ingested cube is valid (the files hold 65535 at the injected missing pixel-days).

Usage::

    ihs synth --preset bth --layout files --out /scratch/bthfiles       # ~7 min, 5.5 GB of files
    python benchmarks/bench_ingest_full.py /scratch/bthfiles             # ingest + report
    python benchmarks/bench_ingest_full.py /scratch/bthfiles --memory-mb 256
    python benchmarks/bench_ingest_full.py --preset demo --dir /tmp/x     # generate, then ingest

The report is printed and written to ``benchmarks/results/ingest_full_<preset>.json``.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def run_child(args) -> dict:
    import psutil

    import dask.array  # noqa: F401 - every library the ingest uses is imported before the baseline
    import geopandas  # noqa: F401
    import netCDF4  # noqa: F401
    import rasterio  # noqa: F401
    import xarray as xr
    import zarr

    from ihs_hpc.io.ingest import grid_from_config, ingest, memory_bound_mb

    config = json.loads(Path(args.config).read_text())
    if args.memory_mb:
        config["memory_mb"] = args.memory_mb
    if args.batch_days:
        config["batch_days"] = args.batch_days
    proc = psutil.Process()
    baseline = proc.memory_info().rss / 2**20
    state = {"phase": "index files", "peak": baseline}
    phases: dict[str, float] = {}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            rss = proc.memory_info().rss / 2**20
            state["peak"] = max(state["peak"], rss)
            phases[state["phase"]] = max(phases.get(state["phase"], 0.0), rss)
            time.sleep(0.02)

    def progress(stage, done, total):
        state["phase"] = stage if done < total else f"after {stage}"

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out = Path(args.out)
    cpu0, t0 = time.process_time(), time.perf_counter()
    ingest(config, out, progress=progress, overwrite=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    stop.set()
    thread.join()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    ds = xr.open_zarr(out)
    grid = grid_from_config(config.get("grid"))
    n_days = ds.sizes["time"]
    met_shape = (ds.sizes["met_lat"], ds.sizes["met_lon"])
    n_met = sum(1 for v in ds.data_vars if ds[v].dims == ("time", "met_lat", "met_lon"))
    stats = json.loads(ds.attrs["ihs_ingest_stats"])
    tile = int(zarr.open_group(out, mode="r")["pm25"].chunks[1])
    bound = memory_bound_mb(grid_shape=grid.shape, met_shape=met_shape, n_days=n_days, tile_size=tile,
                            n_met=n_met, batch_days=stats["pm25"]["batch_days"], baseline_mb=baseline)

    truth_path = Path(args.config).parent / "truth.zarr"
    worst, checked, valid = None, 0, 0
    if truth_path.exists():
        truth = xr.open_zarr(truth_path)
        rng = np.random.default_rng(0)
        worst = 0.0
        for _ in range(6):
            r, c = int(rng.integers(grid.ny)), int(rng.integers(grid.nx))
            got = ds.pm25[:, r, c].values
            want = truth.pm25[:, r, c].values
            ok = np.isfinite(got)
            valid += int(ok.sum())
            checked += got.size
            worst = max(worst, float(np.max(np.abs(got[ok] - want[ok]))) if ok.any() else 0.0)
    cube_mb = n_days * grid.size * 4 / 2**20
    files_mb = sum(p.stat().st_size for p in Path(config["pm25"]["path"]).rglob("*") if p.is_file()) / 2**20
    report = {
        "config": str(args.config), "days": n_days, "grid": list(grid.shape), "met_grid": list(met_shape),
        "met_variables": n_met, "tile_size": tile,
        "batch_days_pm25": stats["pm25"]["batch_days"], "batch_days_met": stats["met"]["batch_days"],
        "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
        "pm25_pass1_s": round(stats["pm25"]["pass1_s"], 1), "pm25_pass2_s": round(stats["pm25"]["pass2_s"], 1),
        "met_pass1_s": round(stats["met"]["pass1_s"], 1), "met_pass2_s": round(stats["met"]["pass2_s"], 1),
        "pm25_cube_mb": round(cube_mb, 1), "pm25_files_mb": round(files_mb, 1),
        "throughput_cube_mb_s": round(cube_mb / wall, 1), "throughput_files_mb_s": round(files_mb / wall, 1),
        "rss_baseline_mb": round(baseline, 1), "rss_peak_mb": round(state["peak"], 1), "ru_maxrss_mb": round(maxrss, 1),
        "rss_peak_by_phase_mb": {k: round(v, 1) for k, v in phases.items()},
        "bound_mb": {k: round(v, 1) for k, v in bound.items()},
        "within_bound": bool(max(state["peak"], maxrss) <= bound["total"]),
        "spot_check_max_abs_diff_vs_truth": worst, "spot_check_valid_fraction": round(valid / checked, 4) if checked else None,
    }
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="?", default=None, help="a directory written by `ihs synth --layout files`")
    parser.add_argument("--preset", default="bth", help="generate this preset when no directory is given")
    parser.add_argument("--dir", default=None, help="where to generate (default: a temporary directory)")
    parser.add_argument("--memory-mb", type=float, default=None)
    parser.add_argument("--batch-days", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the ingested store")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args)))
        return 0
    generated = None
    if args.files is None:
        import tempfile

        from ihs_hpc.synth import generate_scene

        generated = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench_ingest_full_"))
        files = generated / f"{args.preset}_files"
        if not (files / "ingest.json").exists():
            print(f"generating the {args.preset} scene as raw files in {files} ...", flush=True)
            t0 = time.perf_counter()
            generate_scene(args.preset, files, layout="files", overwrite=True)
            print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)
    else:
        files = Path(args.files)
    config = files / "ingest.json"
    if not config.exists():
        parser.error(f"{config} not found: pass a directory written by `ihs synth --layout files`")
    out = files.parent / f"{files.name}_ingested.zarr"
    cmd = [sys.executable, __file__, "--child", "--config", str(config), "--out", str(out)]
    if args.memory_mb:
        cmd += ["--memory-mb", str(args.memory_mb)]
    if args.batch_days:
        cmd += ["--batch-days", str(args.batch_days)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr[-5000:])
        return result.returncode
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(json.dumps(report, indent=2))
    RESULTS.mkdir(exist_ok=True)
    name = files.name.replace("_files", "") if generated else files.name
    (RESULTS / f"ingest_full_{name}.json").write_text(json.dumps(report, indent=2))
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    if generated is not None and not args.dir:
        shutil.rmtree(generated, ignore_errors=True)
    return 0 if report["within_bound"] else 1


if __name__ == "__main__":
    sys.exit(main())
