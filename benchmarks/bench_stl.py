"""STL speed: ihs_hpc vs statsmodels, side by side in one run, ONE thread.

Paper setting (seed 000, sect. 2.3.3): daily series of N = 3652 days (2012-2021), period 365,
statsmodels' defaults (seasonal=7), float64. statsmodels decomposes one series at a time; ours
takes a tile of series. Reported: statsmodels seconds per series / ours, for

  (a) the non-robust baseline trend + seasonal (eq. 2), operator path (the STL operator is
      built once per (N, settings) and cached on disk; its build time is reported apart),
  (b) the full non-robust decomposition (trend, seasonal, resid), operator path (and, for
      reference, the direct numba kernel),
  (c) robust STL (robust=True: 15 outer loops), direct numba kernel.

Every timed result is also checked against statsmodels (max |difference| / max |x|).

Usage: python benchmarks/bench_stl.py [--tile 256] [--sm-series 3] [--repeats 3]
Writes benchmarks/results/stl.json.
"""
import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
import statsmodels  # noqa: E402
from statsmodels.tsa.seasonal import STL  # noqa: E402

from ihs_hpc.ops import stl_operator  # noqa: E402
from ihs_hpc.ops.stl import stl, stl_baseline  # noqa: E402

N, PERIOD = 3652, 365
TARGETS = {"a": 1000.0, "b": 500.0, "c": 30.0}


def pm25_like(n_series, seed=0):
    """Daily PM2.5-like series: seasonal cycle, slow decline, skewed noise, pollution episodes."""
    rng = np.random.default_rng(seed)
    t = np.arange(N)
    level = rng.uniform(30, 90, (n_series, 1))
    x = level * (1 + 0.5 * np.cos(2 * np.pi * (t - 15) / PERIOD)) * np.exp(-t / 5000.0)
    x = x + rng.gamma(2.0, 0.1, (n_series, N)) * level
    spikes = rng.random((n_series, N)) < 0.01
    return x + spikes * rng.uniform(50, 250, (n_series, N))


def clock(fn, repeats):
    """Median wall and CPU seconds of ``fn()`` over ``repeats`` runs, and its last result."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), out


def statsmodels_per_series(x, robust):
    """Median wall / CPU seconds of statsmodels STL(...).fit() per series, and the results."""
    walls, cpus, results = [], [], []
    for series in x:
        wall, cpu, res = clock(lambda: STL(series, period=PERIOD, robust=robust).fit(), 1)
        walls.append(wall)
        cpus.append(cpu)
        results.append(res)
    return statistics.median(walls), statistics.median(cpus), results


def max_rel_diff(pairs, scale):
    return float(max(np.abs(a - b).max() for a, b in pairs) / scale)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tile", type=int, default=256, help="series in our tile (default 256)")
    parser.add_argument("--sm-series", type=int, default=3, help="series timed with statsmodels (3-5)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each of our timings (median)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "stl.json")
    args = parser.parse_args()
    os.environ.setdefault("IHS_CACHE_DIR", tempfile.mkdtemp(prefix="ihs_bench_cache_"))

    tile = pm25_like(args.tile)
    sample = tile[:args.sm_series]
    scale = float(np.abs(sample).max())
    print(f"N={N}, period={PERIOD}, seasonal=7 (statsmodels defaults), float64, threads: numba="
          f"{numba.get_num_threads()}, BLAS=1; our tile: {args.tile} series; statsmodels: {args.sm_series} series")

    # warm up: numba compilation (cached on disk after the first run) and plan building
    stl(tile[:2], PERIOD, method="direct")
    stl(tile[:2], PERIOD, robust=True, method="direct")

    # operator build, once per (N, settings); later runs load it from the disk cache
    stl_operator.clear_operator_cache(disk=True)
    w0, c0 = time.perf_counter(), time.process_time()
    op = stl_operator.get_stl_operator(N, PERIOD)
    build_wall, build_cpu = time.perf_counter() - w0, time.process_time() - c0
    stl_operator.clear_operator_cache()
    w0 = time.perf_counter()
    stl_operator.get_stl_operator(N, PERIOD)
    load_wall = time.perf_counter() - w0
    print(f"operator build: {build_wall:.1f} s wall ({build_cpu:.1f} s CPU), centrosymmetric={op.symmetric}; "
          f"load from disk cache: {load_wall:.2f} s")
    stl_baseline(tile[:8], PERIOD, method="operator")  # factors derived once, kept in memory

    # statsmodels, one series at a time
    sm_nr_wall, sm_nr_cpu, sm_nr = statsmodels_per_series(sample, robust=False)
    sm_r_wall, sm_r_cpu, sm_r = statsmodels_per_series(sample, robust=True)

    rows = []

    def record(key, what, path, sm_wall, sm_cpu, wall, cpu, diff):
        per_wall, per_cpu = wall / args.tile, cpu / args.tile
        row = dict(case=key, what=what, path=path, statsmodels_s_per_series=sm_wall,
                   statsmodels_cpu_s_per_series=sm_cpu, ours_s_per_series=per_wall, ours_cpu_s_per_series=per_cpu,
                   speedup=sm_wall / per_wall, speedup_cpu=sm_cpu / per_cpu, target=TARGETS.get(key),
                   max_rel_diff_vs_statsmodels=diff)
        row["meets_target"] = None if row["target"] is None else bool(row["speedup"] >= row["target"])
        rows.append(row)

    wall, cpu, bl = clock(lambda: stl_baseline(tile, PERIOD, method="operator"), args.repeats)
    diff = max_rel_diff([(bl[i], r.trend + r.seasonal) for i, r in enumerate(sm_nr)], scale)
    record("a", "non-robust baseline trend+seasonal", "operator", sm_nr_wall, sm_nr_cpu, wall, cpu, diff)

    wall, cpu, res = clock(lambda: stl(tile, PERIOD, method="operator"), args.repeats)
    diff = max_rel_diff([(res.trend[i], r.trend) for i, r in enumerate(sm_nr)]
                        + [(res.seasonal[i], r.seasonal) for i, r in enumerate(sm_nr)]
                        + [(res.resid[i], r.resid) for i, r in enumerate(sm_nr)], scale)
    record("b", "non-robust decomposition (trend, seasonal, resid)", res.method, sm_nr_wall, sm_nr_cpu, wall, cpu,
           diff)

    wall, cpu, res = clock(lambda: stl(tile, PERIOD, method="direct"), 1)
    diff = max_rel_diff([(res.trend[i], r.trend) for i, r in enumerate(sm_nr)]
                        + [(res.seasonal[i], r.seasonal) for i, r in enumerate(sm_nr)], scale)
    record("b-direct", "non-robust decomposition, direct kernel (reference)", res.method, sm_nr_wall, sm_nr_cpu,
           wall, cpu, diff)

    wall, cpu, res = clock(lambda: stl(tile, PERIOD, robust=True, method="direct"), 1)
    diff = max(max_rel_diff([(res.trend[i], r.trend) for i, r in enumerate(sm_r)]
                            + [(res.seasonal[i], r.seasonal) for i, r in enumerate(sm_r)], scale),
               float(max(np.abs(res.weights[i] - r.weights).max() for i, r in enumerate(sm_r))))
    record("c", "robust decomposition (robust=True)", res.method, sm_r_wall, sm_r_cpu, wall, cpu, diff)

    header = f"{'case':9} {'path':9} {'statsmodels s/series':>21} {'ours ms/series':>15} {'speedup':>9} " \
             f"{'(CPU)':>8} {'target':>7} {'max|d|/max|x|':>14}  what"
    print(header)
    print("-" * len(header))
    for r in rows:
        target = "" if r["target"] is None else f">={r['target']:.0f}"
        print(f"{r['case']:9} {r['path']:9} {r['statsmodels_s_per_series']:21.3f} {1e3 * r['ours_s_per_series']:15.3f} "
              f"{r['speedup']:8.0f}x {r['speedup_cpu']:7.0f}x {target:>7} {r['max_rel_diff_vs_statsmodels']:14.1e}  "
              f"{r['what']}")
    report = dict(
        benchmark="stl", n=N, period=PERIOD, settings="statsmodels defaults (seasonal=7)", dtype="float64",
        tile_series=args.tile, statsmodels_series=args.sm_series, repeats=args.repeats, threads=1,
        operator_build_s=build_wall, operator_build_cpu_s=build_cpu, operator_load_s=load_wall,
        operator_centrosymmetric=bool(op.symmetric), cases=rows,
        environment=dict(python=platform.python_version(), numpy=np.__version__, numba=numba.__version__,
                         statsmodels=statsmodels.__version__, machine=platform.machine(),
                         processor=platform.processor(), cpu_count=os.cpu_count(),
                         load_average=os.getloadavg() if hasattr(os, "getloadavg") else None),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
