"""Pipeline efficiency: each stage's throughput per core next to its bare kernel's, measured in the same run.

On the demo scene (128 × 160 px, 2012-2021, 3653 days; seed 000's pipeline), each stage runs end to end
through :class:`ihs_hpc.Run` — reading its inputs from the stores, Dask tasks, writing its store — and its
bare kernel runs on the same data held in memory, on one core (numba and BLAS at one thread):

* **stage 2** (eqs. 2-4): ``stl_baseline`` + ``remove_met`` on a full 64 × 64 tile with its regressors
  interpolated beforehand; the stage's pixel series per second per worker over the kernel's series per
  second is stage 2's *pipeline efficiency*. Measured with 1 and 2 local workers, the two clusters taking
  turns (:func:`alternating_stage`, best of 5 each), so the 1 → 2 worker speed-up of the stage is measured
  too, both sides under the same spells of a shared machine's load. Next to it, the stage's cube I/O alone
  (:func:`stage2_io`: the same reads and writes through the store layer, no computation), so the table
  shows how much of the gap is moving the data and how much the pipeline adds beyond kernel + I/O;
* **prep**: the configured outlier rule (``prep.outliers``) on a full tile and the day's kriging
  (:func:`ihs_hpc.pipeline.daily.fill_days`) on a sample of days, scaled to the whole cube;
* **stage 1**: region growing from every source over the DEM;
* **stage 3** (``stage3.method: kriging``): the kriging of the IHS areas on a sample of days, scaled.

Efficiency = (kernel seconds for the stage's work) / (stage seconds × workers); by wall clock, and by CPU
seconds (the stage's CPU over the driver and every worker process, less disturbed by other jobs on a
shared machine). ``--quick`` (CI): stage 2 alone, in-process (cluster ``none``, one core), on the demo
scene read straight from the input store (prep disabled: the synthetic input has no gaps), best of two
runs, against the floor :data:`FLOORS`; no worker scaling (a shared 2-core CI machine cannot time it).

Usage::

    python benchmarks/bench_pipeline.py [--quick]
"""
from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import resource  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

NAME = "pipeline"
#: floors of stage 2's CPU efficiency (kernel CPU / stage CPU: steadier than wall clock on a shared machine),
#: in-process (quick) and with one worker (full); wall efficiencies and scaling are reported, not floored.
#: The quick ratio spread over 0.60-0.67 in three runs of one and the same code on this 2-core machine
#: (2026-11-28, after chunk files were written in pieces and the met cubes chunked evenly; 0.52-0.61 before,
#: 0.418-0.481 before pm25_bl_mlr stopped being stored), so its floor sits an eighth below that spread, as
#: before (a CI run once fell 4 % or more below the lowest of nine local runs): a loss of a sixth fails it
FLOORS = {"stage2_efficiency_cpu": 0.52, "stage2_efficiency_1_worker_cpu": 0.45}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _write_config(root: Path, quick: bool) -> Path:
    config = root / "bench.yaml"
    prep = "prep: {enabled: false}\n" if quick else ""
    config.write_text("input:\n  kind: synthetic\n  synthetic: {preset: demo, seed: 0}\n"
                      "stage3: {method: kriging}\nreport: {enabled: false}\nprogress: {interval_s: 1000}\n" + prep)
    return config


def timed_stage(run, stage: str, client=None, repeats: int = 1) -> dict:
    """Run ``stage`` afresh ``repeats`` times; its seconds (from the run record) and CPU over all processes
    (best run by wall clock)."""
    from ihs_hpc.pipeline.run import STORE_NAMES

    best = None
    for _ in range(repeats):
        shutil.rmtree(run.run_dir / STORE_NAMES.get(stage, stage), ignore_errors=True)
        workers0 = client.run(_cpu_seconds) if client is not None else {}
        cpu0 = _cpu_seconds()
        summary = run.run([stage], client=client, echo=lambda *_: None)
        cpu = _cpu_seconds() - cpu0
        if client is not None:
            workers1 = client.run(_cpu_seconds)
            cpu += sum(workers1[w] - workers0.get(w, 0.0) for w in workers1)
        record = dict(summary["stages"][stage])
        result = {"seconds": float(record["seconds"]), "cpu_s": cpu, "record": record}
        if best is None or result["seconds"] < best["seconds"]:
            best = result
    return best


def alternating_stage(run, stage: str, clients: dict, repeats: int) -> dict:
    """Run ``stage`` ``repeats`` times on each client of ``clients`` (name -> client), the clients taking
    turns, so that every client sees the same spells of a shared machine's noise; the best run (by wall
    clock) per client, with every run's seconds in ``runs``. A ratio of two clients' times measured so
    (1 and 2 workers) is not skewed by one of them having run in a slower minute."""
    best, runs = {}, {name: [] for name in clients}
    for _ in range(repeats):
        for name, client in clients.items():
            result = timed_stage(run, stage, client)
            runs[name].append(round(result["seconds"], 2))
            if name not in best or result["seconds"] < best[name]["seconds"]:
                best[name] = result
    return {name: {**best[name], "runs_s": runs[name]} for name in clients}


def stage2_kernel(run, repeats: int = 3) -> dict:
    """Seconds per series of eqs. 2-4 on one full tile held in memory, one core (best of ``repeats``).

    Two bare kernels, both on float64 series in chunks of the pipeline's size: *eqs. 2-4* — the STL
    baseline and the regression with each pixel's regressors interpolated from the coarse met baselines
    (``stl_baseline`` + ``remove_met_bilinear``: the stage's numerical work from its inputs) — and *STL +
    MLR* — the same with the ``(pixels, 6, days)`` regressors interpolated beforehand, outside the timing
    (``stl_baseline`` + ``remove_met``: only the two kernels).
    """
    import zarr

    from ihs_hpc.grid import Grid
    from ihs_hpc.io.cube import open_store, read_tile
    from ihs_hpc.ops.interp import apply_bilinear_rows, bilinear_weights
    from ihs_hpc.ops.met_removal import DEFAULT_CHUNK
    from ihs_hpc.ops.mlr import remove_met, remove_met_bilinear
    from ihs_hpc.ops.stl import stl_baseline
    from ihs_hpc.pipeline.inputs import pm25_store
    from ihs_hpc.pipeline.run import store_path
    from ihs_hpc.pipeline.stage2 import _met_grid_of, stl_settings

    config = run.config
    stage2 = store_path(config, "stage2")
    grid = Grid.from_dataset(open_store(stage2))
    met = _met_grid_of(run.run_dir / "cubes.zarr")
    tile = next(t for t in grid.tiles(config["grid.tile_size"]) if t.shape == (config["grid.tile_size"],) * 2)
    pm25 = read_tile(pm25_store(config), tile, ["pm25"])["pm25"]
    y = np.ascontiguousarray(pm25.reshape(pm25.shape[0], -1).T, dtype=np.float64)
    group = zarr.open_group(stage2, mode="r")
    rows = np.stack([np.asarray(group[f"met_bl_{v}"][...], dtype=np.float64).reshape(y.shape[1], -1).T
                     for v in config["stage2.met_variables"]])
    index, weight = bilinear_weights(met.lat, met.lon, grid.lat[tile.rows], grid.lon[tile.cols])
    X = apply_bilinear_rows(rows, index, weight)
    settings = stl_settings(config)
    keep_level = bool(config["stage2.keep_level"])
    chunks = [slice(s, s + DEFAULT_CHUNK) for s in range(0, len(y), DEFAULT_CHUNK)]

    def eqs_2_to_4():
        for c in chunks:
            remove_met_bilinear(stl_baseline(y[c], **settings), rows, index[c], weight[c], keep_level=keep_level)

    def stl_and_mlr():
        for c in chunks:
            remove_met(stl_baseline(y[c], **settings), X[c], keep_level=keep_level)

    wall, cpu, _ = harness.clock(eqs_2_to_4, repeats, warmup=True)
    wall_k, cpu_k, _ = harness.clock(stl_and_mlr, repeats, warmup=True)
    n = len(y)
    return {"tile": tile.name, "series": n, "days": y.shape[1], "chunk": DEFAULT_CHUNK,
            "s_per_series": wall / n, "cpu_s_per_series": cpu / n,
            "stl_mlr_only_s_per_series": wall_k / n, "stl_mlr_only_cpu_s_per_series": cpu_k / n}


def stage2_io(run, repeats: int = 2) -> dict:
    """Seconds of stage 2's cube traffic alone, one core (best of ``repeats``): no computation.

    Through the product's store layer (:func:`ihs_hpc.io.cube.read_tile` / ``write_tile``, the same layout
    and codec), every tile's PM2.5 is read from the stage's input and its ``pm25_bl`` written (pass A);
    then ``pm25_bl`` is read back and ``pm25_bl_tem`` written (pass C). The values
    written are the stage's own outputs (read from the stage-2 store beforehand, outside the timing), so
    the bytes encoded and written are those of the stage. The coefficient maps and met baselines
    (< 1 % of the bytes) are left out. Stage seconds over kernel + I/O seconds is what the stage adds
    beyond computing and moving its data.
    """
    from ihs_hpc.grid import Grid
    from ihs_hpc.io.cube import create_store, open_store, read_tile, write_tile
    from ihs_hpc.pipeline.inputs import pm25_store
    from ihs_hpc.pipeline.run import store_path
    from ihs_hpc.pipeline.stage2 import stage2_variables

    config = run.config
    source, stage2 = pm25_store(config), store_path(config, "stage2")
    inputs = open_store(source)
    grid = Grid.from_dataset(inputs)
    cubes = ("pm25_bl", "pm25_bl_tem")
    specs = {k: v for k, v in stage2_variables(()).items() if k in cubes}
    tiles = list(grid.tiles(config["grid.tile_size"]))
    scratch = run.run_dir / "bench_stage2_io.zarr"
    passes = ((source, ("pm25",), ("pm25_bl",)),  # pass A: read the input, write the baseline
              (scratch, ("pm25_bl",), ("pm25_bl_tem",)))  # pass C: read it back, write eq. 4
    best = None
    for _ in range(max(1, int(repeats))):
        shutil.rmtree(scratch, ignore_errors=True)
        create_store(scratch, grid, specs, tile_size=config["grid.tile_size"], time=inputs.time.values)
        wall = cpu = 0.0
        for store, read_vars, write_vars in passes:
            for tile in tiles:
                outputs = read_tile(stage2, tile, write_vars)  # not timed: the values to write
                w0, c0 = time.perf_counter(), time.process_time()
                read_tile(store, tile, read_vars)
                write_tile(scratch, tile, outputs)
                wall += time.perf_counter() - w0
                cpu += time.process_time() - c0
                del outputs
        if best is None or wall < best["seconds"]:
            best = {"seconds": wall, "cpu_s": cpu}
    shutil.rmtree(scratch, ignore_errors=True)
    return best


def io_rows(kernel: dict, io: dict, series: int, timing: dict, workers: int, what: str, name: str) -> list[dict]:
    """The stage's bare I/O next to its kernel, and the stage's wall (× workers) over kernel + I/O."""
    k = series * kernel["s_per_series"]
    return [harness.row(f"{name}_io_share", f"{what}: bare cube I/O / (bare kernel + bare cube I/O), one core",
                        ours=io["seconds"] / (k + io["seconds"]), unit="%", io_s=io["seconds"],
                        io_cpu_s=io["cpu_s"], kernel_s=k),
            harness.row(f"{name}_vs_kernel_plus_io", f"{what}: (bare kernel + bare cube I/O) / (stage wall × "
                        f"{workers} worker{'s' * (workers > 1)}): what the pipeline adds beyond computing and moving "
                        "its data", ours=(k + io["seconds"]) / (timing["seconds"] * workers), reference=1.0, unit="%",
                        higher_is_better=True, reference_name="kernel + I/O, same data, 1 core",
                        stage_s=timing["seconds"], workers=workers)]


def kriging_kernel(store: Path, variable: str, grid, *, holes=None, fill_mask=None, n_sample: int = 12, **kwargs):
    """Seconds per day of the day's kriging (variogram + fill) on ``n_sample`` days spread over the record."""
    import zarr

    from ihs_hpc.pipeline.daily import fill_days

    array = zarr.open_group(store, mode="r")[variable]
    days = np.linspace(0, array.shape[0] - 1, n_sample).round().astype(int)
    data = np.stack([np.asarray(array[int(d)]) for d in days])
    fill_days(data[:1], int(days[0]), lat=grid.lat, lon=grid.lon, holes=holes, fill_mask=fill_mask, **kwargs)

    def kernel():
        for i, d in enumerate(days):
            fill_days(data[i:i + 1], int(d), lat=grid.lat, lon=grid.lon, holes=holes, fill_mask=fill_mask, **kwargs)

    wall, cpu, _ = harness.clock(kernel, 2)
    return {"sample_days": len(days), "s_per_day": wall / len(days), "cpu_s_per_day": cpu / len(days)}


def efficiency_rows(stage: str, kernel_s: float, kernel_cpu_s: float, timing: dict, workers: int, what: str,
                    name=None) -> list[dict]:
    """Wall and CPU efficiency rows: kernel seconds for the stage's work over the stage's (× workers)."""
    wall_eff = kernel_s / (timing["seconds"] * workers)
    cpu_eff = kernel_cpu_s / timing["cpu_s"] if timing["cpu_s"] > 0 else None
    name = name or f"{stage}_efficiency"
    return [harness.row(name, f"{what}: kernel time / (stage wall × {workers} worker{'s' * (workers > 1)})",
                        ours=wall_eff, reference=1.0, unit="%", higher_is_better=True, floor=FLOORS.get(name),
                        reference_name="bare kernel, same data, 1 core", stage_s=timing["seconds"],
                        kernel_s=kernel_s, workers=workers),
            harness.row(f"{name}_cpu", f"{what}: kernel CPU / stage CPU over all processes", ours=cpu_eff,
                        reference=1.0, unit="%", higher_is_better=True, stage_cpu_s=timing["cpu_s"],
                        floor=FLOORS.get(f"{name}_cpu"),
                        kernel_cpu_s=kernel_cpu_s)]


def run(quick: bool) -> dict:
    from ihs_hpc import Run
    from ihs_hpc.cluster import get_client
    from ihs_hpc.grid import Grid
    from ihs_hpc.io.cube import open_store, read_tile
    from ihs_hpc.pipeline.prep import outlier_settings, remove_outliers
    from ihs_hpc.pipeline.run import store_path

    root = Path(tempfile.mkdtemp(prefix="ihs_bench_pipeline_"))
    rows, details = [], {"scene": "demo (128 x 160 px, 3653 days)", "quick": quick}
    try:
        config = _write_config(root, quick)
        local = Run(config, cluster="none", echo=lambda *_: None)
        t0 = time.perf_counter()
        local.run(["input"])
        details["input_s"] = round(time.perf_counter() - t0, 1)
        grid = Grid.from_dataset(open_store(local.run_dir / "cubes.zarr"))
        if quick:
            local.run(["stage1"])  # stage 2's default met_fit (background) reads the IHS areas
            local.run(["stage2"])  # warm: operator cache, numba caches, imports
            timing = timed_stage(local, "stage2", repeats=2)
            kernel = stage2_kernel(local)
            io = stage2_io(local)
            series = timing["record"]["pixel_series"]
            rows += efficiency_rows("stage2", series * kernel["s_per_series"], series * kernel["cpu_s_per_series"],
                                    timing, 1, "stage 2 in-process, demo, vs eqs. 2-4 in memory")
            rows += efficiency_rows("stage2", series * kernel["stl_mlr_only_s_per_series"],
                                    series * kernel["stl_mlr_only_cpu_s_per_series"], timing, 1,
                                    "stage 2 in-process, demo, vs STL + MLR kernels alone", name="stage2_vs_stl_mlr")
            rows += io_rows(kernel, io, series, timing, 1, "stage 2 in-process, demo", "stage2")
            details.update(stage2_kernel=kernel, stage2=timing, stage2_io=io)
            return {"rows": rows, "details": details}

        # stage 2 with 1 and 2 workers taking turns, best of 5 each: on this shared 2-core machine the same
        # run's time drifts by 10-20 % from minute to minute, and the first run after a warm-up is often
        # the slowest by seconds
        repeats = 5
        with get_client("local", n_workers=2, threads_per_worker=1, echo=lambda *_: None) as client2:
            prep = timed_stage(local, "prep", client2)
            local.run(["stage1"])
            stage1 = timed_stage(local, "stage1")
            with get_client("local", n_workers=1, threads_per_worker=1, echo=lambda *_: None) as client1:
                for client in (client1, client2):  # warm the workers
                    local.run(["stage2"], client=client)
                stage2 = alternating_stage(local, "stage2", {"1": client1, "2": client2}, repeats)
            stage2_one, stage2_two = stage2["1"], stage2["2"]
            stage3 = timed_stage(local, "stage3", client2)

        # bare kernels on the same data, in memory, one core
        kernel2 = stage2_kernel(local)
        io2 = stage2_io(local)
        series = stage2_one["record"]["pixel_series"]
        k2, k2_cpu = series * kernel2["s_per_series"], series * kernel2["cpu_s_per_series"]
        rows += efficiency_rows("stage2", k2, k2_cpu, stage2_one, 1, "stage 2, 1 worker, vs eqs. 2-4 in memory",
                                name="stage2_efficiency_1_worker")
        rows += efficiency_rows("stage2", k2, k2_cpu, stage2_two, 2, "stage 2, 2 workers, vs eqs. 2-4 in memory",
                                name="stage2_efficiency_2_workers")
        rows += efficiency_rows("stage2", series * kernel2["stl_mlr_only_s_per_series"],
                                series * kernel2["stl_mlr_only_cpu_s_per_series"], stage2_one, 1,
                                "stage 2, 1 worker, vs STL + MLR kernels alone", name="stage2_1_worker_vs_stl_mlr")
        rows += io_rows(kernel2, io2, series, stage2_one, 1, "stage 2, 1 worker", "stage2_1_worker")
        rows += io_rows(kernel2, io2, series, stage2_two, 2, "stage 2, 2 workers", "stage2_2_workers")[1:]
        pairs = [one / two for one, two in zip(stage2_one["runs_s"], stage2_two["runs_s"])]
        rows.append(harness.row("stage2_scaling_1_to_2", "stage 2 wall, 1 worker / 2 workers, best of "
                                f"{repeats} each, taking turns (target >= 1.6)",
                                ours=stage2_one["seconds"], reference=stage2_two["seconds"], unit="s",
                                higher_is_better=True, reference_name="same stage, 2 workers",
                                runs_1_worker_s=stage2_one["runs_s"], runs_2_workers_s=stage2_two["runs_s"],
                                median_turn_ratio=float(np.median(pairs))))

        prep_store = store_path(local.config, "prep")
        tile = next(t for t in grid.tiles(64) if t.shape == (64, 64))
        cube = read_tile(local.run_dir / "cubes.zarr", tile, ["pm25"])["pm25"]
        rules = outlier_settings(local.config)  # the stage's rule (prep.outliers), on a tile with no halo
        outlier_wall, outlier_cpu, _ = harness.clock(lambda: remove_outliers(cube, **rules), 3, warmup=True)
        krig = kriging_kernel(prep_store, "pm25_clean", grid, model=local.config["prep.kriging_model"],
                              k=local.config["prep.kriging_neighbours"], variogram=local.config["prep.variogram"],
                              variogram_cells=local.config["prep.variogram_cells"])
        n_days = len(open_store(prep_store).time)
        tiles_equiv = grid.size / cube[0].size
        kp = tiles_equiv * outlier_wall + n_days * krig["s_per_day"]
        kp_cpu = tiles_equiv * outlier_cpu + n_days * krig["cpu_s_per_day"]
        rows += efficiency_rows("prep", kp, kp_cpu, prep, 2,
                                f"prep ({rules['rule']} outlier rule + daily kriging), 2 workers")

        holes = open_store(store_path(local.config, "stage1")).ihs_mask.values.astype(bool)
        krig3 = kriging_kernel(store_path(local.config, "stage2"), "pm25_bl_tem", grid, holes=holes, fill_mask=holes,
                               model=local.config["stage3.kriging_model"], k=local.config["stage3.kriging_neighbours"],
                               variogram=local.config["stage3.variogram"],
                               variogram_cells=local.config["stage3.variogram_cells"])
        rows += efficiency_rows("stage3", n_days * krig3["s_per_day"], n_days * krig3["cpu_s_per_day"], stage3, 2,
                                "stage 3 (kriging of IHS areas), 2 workers")

        from ihs_hpc.ops.region_grow import region_grow
        from ihs_hpc.pipeline.inputs import input_store

        cubes = open_store(input_store(local.config))
        seeds = np.column_stack([cubes.ihs_row.values, cubes.ihs_col.values]).astype(np.int64)
        dem = cubes.dem.values.astype(np.float64)
        k1_wall, k1_cpu, _ = harness.clock(lambda: region_grow(dem, grid.lat, grid.lon, seeds,
                                                               max_km=local.config["stage1.max_km"]), 3, warmup=True)
        rows += efficiency_rows("stage1", k1_wall, k1_cpu, stage1, 1, "stage 1 (region growing), in-process")
        details.update(prep=prep, stage1=stage1, stage2_1_worker=stage2_one, stage2_2_workers=stage2_two,
                       stage3=stage3, stage2_kernel=kernel2, stage2_io=io2,
                       prep_kernel={"outlier_tile_s": outlier_wall, "outlier_rule": rules["rule"], **krig},
                       stage3_kernel=krig3, stage1_kernel_s=k1_wall)
        return {"rows": rows, "details": details}
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(harness.main_single(run, NAME))
