"""STL speed: ihs_hpc vs statsmodels (and R's ``stl`` when Rscript exists), side by side in one run, ONE thread.

Paper setting (seed 000, sect. 2.3.3): daily series of N = 3652 days (2012-2021), period 365,
statsmodels' defaults (seasonal=7), float64. statsmodels decomposes one series at a time; ours
takes a tile of series. Ratios are statsmodels seconds per series / ours, for

  (a) the non-robust baseline trend + seasonal (eq. 2), operator path (the STL operator is
      built once per (N, settings) and cached on disk; its build time is reported apart),
  (b) the full non-robust decomposition (trend, seasonal, resid), operator path (and, for
      reference, the direct numba kernel),
  (c) robust STL (robust=True: 15 outer loops), direct numba kernel,
  (d) the baseline on the torch backend, float64 and float32 (error of float32 against float64 and
      statsmodels reported), on the CPU and, when torch sees one, on the GPU (its name is recorded),
  (e) R's ``stats::stl`` (Fortran) on the same series when ``Rscript`` is installed (``s.window=7``,
      the same windows as statsmodels' defaults), timed inside R.

Every timed result is also checked against statsmodels (max |difference| / max |x|).

Usage: python benchmarks/bench_stl.py [--quick]
"""
import os
import sys

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

NAME = "stl"
N, PERIOD = 3652, 365
#: floors of the ratios (statsmodels s/series over ours), well under what a shared 2-core machine measures
FLOORS = {"a": 200.0, "b": 100.0, "c": 5.0}


def pm25_like(n_series, seed=0):
    """Daily PM2.5-like series: seasonal cycle, slow decline, skewed noise, pollution episodes."""
    rng = np.random.default_rng(seed)
    t = np.arange(N)
    level = rng.uniform(30, 90, (n_series, 1))
    x = level * (1 + 0.5 * np.cos(2 * np.pi * (t - 15) / PERIOD)) * np.exp(-t / 5000.0)
    x = x + rng.gamma(2.0, 0.1, (n_series, N)) * level
    spikes = rng.random((n_series, N)) < 0.01
    return x + spikes * rng.uniform(50, 250, (n_series, N))


def statsmodels_per_series(x, robust):
    """Median wall / CPU seconds of statsmodels STL(...).fit() per series, and the results."""
    import statistics

    from statsmodels.tsa.seasonal import STL

    walls, cpus, results = [], [], []
    for series in x:
        wall, cpu, res = harness.clock(lambda: STL(series, period=PERIOD, robust=robust).fit())
        walls.append(wall)
        cpus.append(cpu)
        results.append(res)
    return statistics.median(walls), statistics.median(cpus), results


def max_rel_diff(pairs, scale):
    return float(max(np.abs(a - b).max() for a, b in pairs) / scale)


R_SCRIPT = r"""
x <- as.matrix(read.csv(commandArgs(TRUE)[1], header = FALSE))
out <- matrix(0, nrow(x), ncol(x))
t <- system.time(for (i in seq_len(nrow(x))) {
  d <- stl(ts(x[i, ], frequency = 365), s.window = 7, robust = FALSE)
  out[i, ] <- d$time.series[, "trend"] + d$time.series[, "seasonal"]
})
write.table(out, commandArgs(TRUE)[2], sep = ",", row.names = FALSE, col.names = FALSE)
cat(t[["elapsed"]], t[["user.self"]] + t[["sys.self"]], "\n")
"""


def r_stl(x):
    """R's stl baseline of each series and the seconds per series inside R (None without Rscript)."""
    rscript = harness.rscript()
    if rscript is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src, dst, script = Path(tmp) / "x.csv", Path(tmp) / "bl.csv", Path(tmp) / "stl.R"
        np.savetxt(src, x, delimiter=",")
        script.write_text(R_SCRIPT)
        proc = subprocess.run([rscript, str(script), str(src), str(dst)], capture_output=True, text=True, check=True)
        wall, cpu = (float(v) for v in proc.stdout.split()[:2])
        return wall / len(x), cpu / len(x), np.loadtxt(dst, delimiter=",", ndmin=2)


def torch_rows(tile, reference, scale, repeats):
    """Rows (d): the operator baseline on torch, float64 and float32, CPU and GPU when present."""
    try:
        import torch
    except ImportError:
        return [], {"torch": None}
    from ihs_hpc.ops.stl import stl_baseline

    torch.set_num_threads(1)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows, details = [], {"torch": torch.__version__, "gpu": harness.gpu_name(), "runs": []}
    numpy_wall, numpy_cpu, numpy_bl = harness.clock(lambda: stl_baseline(tile, PERIOD, method="operator",
                                                                         backend="numpy"), repeats, warmup=True)
    for device in devices:
        results = {}
        for precision in ("float64", "float32"):
            def call():
                out = stl_baseline(tile, PERIOD, method="operator", backend="torch", device=device, precision=precision)
                if device == "cuda":
                    torch.cuda.synchronize()
                return out
            wall, cpu, bl = harness.clock(call, repeats, warmup=True)
            results[precision] = (wall, cpu, bl)
            err_sm = max_rel_diff([(bl[i], r) for i, r in enumerate(reference)], scale)
            err_64 = float(np.abs(bl - numpy_bl).max() / scale)
            label = f"{device}:{harness.gpu_name()}" if device == "cuda" else "cpu, 1 thread"
            rows.append(harness.row(
                f"d-torch-{device}-{precision}", f"baseline on torch {label}, {precision} (vs numpy float64 BLAS)",
                ours=wall / len(tile), reference=numpy_wall / len(tile), unit="s",
                reference_name="ihs operator path, numpy float64, 1 thread", max_rel_diff_vs_statsmodels=err_sm,
                max_rel_diff_vs_float64=err_64))
            details["runs"].append({"device": device, "precision": precision, "s_per_series": wall / len(tile),
                                    "cpu_s_per_series": cpu / len(tile), "max_rel_diff_vs_statsmodels": err_sm,
                                    "max_rel_diff_vs_numpy_float64": err_64})
    return rows, details


def run(quick: bool) -> dict:
    from ihs_hpc.ops import stl_operator
    from ihs_hpc.ops.stl import stl, stl_baseline

    n_tile, n_sm, repeats = (64, 2, 3) if quick else (256, 3, 3)
    if not quick:  # time the operator's build in an empty cache; quick runs use (and fill) the user's cache
        os.environ["IHS_CACHE_DIR"] = tempfile.mkdtemp(prefix="ihs_bench_cache_")
    tile = pm25_like(n_tile)
    sample = tile[:n_sm]
    scale = float(np.abs(sample).max())
    stl(tile[:2], PERIOD, method="direct")  # numba compilation or cache load, outside the timings
    stl(tile[:2], PERIOD, robust=True, method="direct")
    cached = stl_operator.operator_pays(N, 1, stl_operator.stl_settings(PERIOD))
    w0, c0 = time.perf_counter(), time.process_time()
    op = stl_operator.get_stl_operator(N, PERIOD)
    build_wall, build_cpu = time.perf_counter() - w0, time.process_time() - c0
    stl_baseline(tile[:8], PERIOD, method="operator")  # factors derived once, kept in memory

    sm_nr_wall, sm_nr_cpu, sm_nr = statsmodels_per_series(sample, robust=False)
    sm_r_wall, sm_r_cpu, sm_r = statsmodels_per_series(sample[:1] if quick else sample, robust=True)
    rows = []

    def record(key, what, sm_wall, wall, cpu, diff, path):
        rows.append(harness.row(key, what, ours=wall / n_tile, reference=sm_wall, unit="s",
                                reference_name="statsmodels STL per series", floor=FLOORS.get(key),
                                cpu_s_per_series=cpu / n_tile, path=path, max_rel_diff_vs_statsmodels=diff))

    wall, cpu, bl = harness.clock(lambda: stl_baseline(tile, PERIOD, method="operator"), repeats, warmup=True)
    record("a", "STL baseline (eq. 2), operator path, per series", sm_nr_wall, wall, cpu,
           max_rel_diff([(bl[i], r.trend + r.seasonal) for i, r in enumerate(sm_nr)], scale), "operator")
    wall, cpu, res = harness.clock(lambda: stl(tile, PERIOD, method="operator"), repeats, warmup=True)
    record("b", "STL decomposition (T, S, R), operator path", sm_nr_wall, wall, cpu,
           max_rel_diff([(getattr(res, c)[i], getattr(r, c)) for i, r in enumerate(sm_nr)
                         for c in ("trend", "seasonal", "resid")], scale), res.method)
    wall, cpu, res = harness.clock(lambda: stl(tile, PERIOD, method="direct"), 1)
    record("b-direct", "STL decomposition, direct numba kernel", sm_nr_wall, wall, cpu,
           max_rel_diff([(getattr(res, c)[i], getattr(r, c)) for i, r in enumerate(sm_nr)
                         for c in ("trend", "seasonal")], scale), res.method)
    robust_tile = tile[:16] if quick else tile
    wall, cpu, res = harness.clock(lambda: stl(robust_tile, PERIOD, robust=True, method="direct"), 1)
    rows.append(harness.row(
        "c", "robust STL (15 outer loops), direct kernel", ours=wall / len(robust_tile), reference=sm_r_wall,
        unit="s", reference_name="statsmodels STL(robust=True) per series", floor=FLOORS["c"],
        cpu_s_per_series=cpu / len(robust_tile),
        max_rel_diff_vs_statsmodels=max(
            max_rel_diff([(res.trend[i], r.trend) for i, r in enumerate(sm_r)]
                         + [(res.seasonal[i], r.seasonal) for i, r in enumerate(sm_r)], scale),
            float(max(np.abs(res.weights[i] - r.weights).max() for i, r in enumerate(sm_r))))))

    reference = [r.trend + r.seasonal for r in sm_nr]
    extra, torch_details = torch_rows(tile, reference, scale, repeats)
    rows += extra
    r_result = r_stl(sample)
    if r_result is not None:
        r_wall, r_cpu, r_bl = r_result
        ours = next(r for r in rows if r["name"] == "a")
        rows.append(harness.row("e-R", "STL baseline, operator path, vs R stats::stl (timed in R)",
                                ours=ours["ours"], reference=r_wall, unit="s", reference_name="R stl per series",
                                max_rel_diff_ours_vs_R=max_rel_diff([(bl[i], r_bl[i]) for i in range(len(sample))],
                                                                    scale)))
    return {"rows": rows, "details": {
        "n": N, "period": PERIOD, "settings": "statsmodels defaults (seasonal=7)", "dtype": "float64",
        "tile_series": n_tile, "statsmodels_series": n_sm, "repeats": repeats, "threads": 1,
        "operator_was_cached": bool(cached), "operator_get_s": build_wall, "operator_get_cpu_s": build_cpu,
        "operator_centrosymmetric": bool(op.symmetric), "rscript": harness.rscript(),
        "r_stl": "measured" if r_result is not None else "not measured: Rscript not installed",
        "torch_backend": torch_details}}


if __name__ == "__main__":
    sys.exit(harness.main_single(run, NAME))
