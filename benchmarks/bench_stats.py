"""Benchmark of ihs_hpc.stats against its reference implementations, measured in the same run.

* Mann–Kendall on one 3652-day series: ``mann_kendall`` vs ``pymannkendall.original_test``
  (target ratio >= 50);
* Sen's slope on one 3652-day series: ``sens_slope`` (with its 95% interval) vs
  ``pymannkendall.sens_slope`` (slope and intercept only; target ratio >= 20);
* Mann–Whitney U on 1e6 vs 1e6 values: ``mann_whitney_u`` vs ``scipy.stats.mannwhitneyu``
  (method="asymptotic");
* Moran's I on a 2000 x 2000 raster (queen, row-standardised, 10% missing): seconds; and on a
  smaller raster ``morans_i`` vs ``esda.Moran`` with libpysal lattice weights (weights
  construction timed separately, not in the ratio).

Times are the median of repeated calls (after a warm-up call that compiles the kernels) in
wall-clock seconds; CPU seconds (process time) are reported too because the machine may be
shared.  Results are checked against the reference before timing.  JSON goes to
``benchmarks/results/stats.json`` (through :mod:`harness`).

Usage::

    python benchmarks/bench_stats.py [--quick]          (or benchmarks/run.py, make bench)
"""
from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def _time(func, repeat):
    """Median wall and CPU seconds of ``repeat`` calls (after one warm-up call)."""
    func()
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        func()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def _entry(ours, reference, target=None, **extra):
    entry = {"ours_s": ours[0], "ours_cpu_s": ours[1]}
    if reference is not None:
        entry.update(
            reference_s=reference[0],
            reference_cpu_s=reference[1],
            ratio=reference[0] / ours[0],
            ratio_cpu=reference[1] / ours[1],
        )
    if target is not None:
        entry["target_ratio"] = target
        entry["meets_target"] = bool(entry["ratio"] >= target)
    entry.update(extra)
    return entry


def _daily_series(rng, n=3652):
    """A PM2.5-like daily series: seasonal cycle, slow decline, noise, a few gaps."""
    days = np.arange(n)
    series = 60 + 25 * np.cos(2 * np.pi * days / 365.25) - 0.004 * days
    series = series + rng.gamma(2.0, 8.0, size=n)
    series[rng.random(n) < 0.02] = np.nan
    return series


def bench_trend(rng, repeat):
    import pymannkendall as pmk

    from ihs_hpc.stats import mann_kendall, sens_slope

    series = _daily_series(rng)
    ours = mann_kendall(series)
    ref = pmk.original_test(series)
    assert ours.s == ref.s and ours.slope == ref.slope and ours.trend == ref.trend
    mk = _entry(_time(lambda: mann_kendall(series), repeat),
                _time(lambda: pmk.original_test(series), max(3, repeat // 4)), target=50,
                n=series.size)
    sen_ours = sens_slope(series)
    assert sen_ours.slope == pmk.sens_slope(series).slope
    sen = _entry(_time(lambda: sens_slope(series), repeat),
                 _time(lambda: pmk.sens_slope(series), max(3, repeat // 4)), target=20,
                 n=series.size, note="ours includes the 95% confidence interval of the slope")
    # many series at once (per-pixel trend maps), for the record: series per second
    cube = np.stack([_daily_series(rng) for _ in range(64)])
    wall, cpu = _time(lambda: mann_kendall(cube), 1)
    maps = {"series": cube.shape[0], "n": cube.shape[1], "seconds": wall,
            "series_per_s": cube.shape[0] / wall, "threads": numba.get_num_threads()}
    return {"mann_kendall_3652": mk, "sens_slope_3652": sen, "mann_kendall_map_64x3652": maps}


def bench_mwu(rng, repeat, size):
    from scipy import stats

    from ihs_hpc.stats import mann_whitney_u

    x = np.round(rng.gamma(2.0, 20.0, size=size), 1)  # PM2.5-like, many ties
    y = np.round(rng.gamma(2.05, 20.0, size=size), 1)
    ours = mann_whitney_u(x, y)
    ref = stats.mannwhitneyu(x, y, method="asymptotic")
    assert ours.statistic == ref.statistic
    assert np.isclose(ours.pvalue, ref.pvalue, rtol=1e-9)
    return {f"mann_whitney_u_{size:.0e}_vs_{size:.0e}": _entry(
        _time(lambda: mann_whitney_u(x, y), repeat),
        _time(lambda: stats.mannwhitneyu(x, y, method="asymptotic"), max(2, repeat // 2)),
    )}


def _raster(rng, shape, missing=0.1):
    raster = rng.gamma(2.0, 10.0, size=shape) + np.cumsum(rng.normal(size=shape), axis=1)
    raster[rng.random(shape) < missing] = np.nan
    return raster


def bench_moran(rng, repeat, big_side, small_side):
    from esda.moran import Moran
    from libpysal.weights import lat2W, w_subset

    from ihs_hpc.stats import morans_i

    big = _raster(rng, (big_side, big_side))
    big_time = _time(lambda: morans_i(big), max(2, repeat // 4))
    small = _raster(rng, (small_side, small_side))
    w0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = w_subset(lat2W(small_side, small_side, rook=False),
                     np.flatnonzero(~np.isnan(small.ravel())).tolist(), silence_warnings=True)
    weights_s = time.perf_counter() - w0
    y = small.ravel()[~np.isnan(small.ravel())]
    ours = morans_i(small)
    ref = Moran(y, w, permutations=0)
    assert np.isclose(ours.I, ref.I, rtol=1e-7) and np.isclose(ours.z_rand, ref.z_rand, rtol=1e-7)
    return {
        f"morans_i_{big_side}x{big_side}": _entry(big_time, None, cells=big.size),
        f"morans_i_vs_esda_{small_side}x{small_side}": _entry(
            _time(lambda: morans_i(small), repeat),
            _time(lambda: Moran(y, w, permutations=0), max(2, repeat // 2)),
            cells=small.size, esda_weights_construction_s=weights_s,
            note="esda time excludes building the libpysal weights",
        ),
    }


#: floors of the ratios (reference seconds / ours) checked by the harness
FLOORS = {"mann_kendall": 10.0, "sens_slope": 3.0, "mann_whitney_u": 1.0, "morans_i": 2.0}


def run(quick: bool) -> dict:
    rng = np.random.default_rng(20240601)
    repeat = 5 if quick else 21
    details = {"timing": "median of repeated calls after a warm-up call; seconds",
               "numba_threads": numba.get_num_threads()}
    details.update(bench_trend(rng, repeat))
    details.update(bench_mwu(rng, max(3, repeat // 3), 100_000 if quick else 1_000_000))
    details.update(bench_moran(rng, max(3, repeat // 3), 500 if quick else 2000, 60 if quick else 150))

    def ratio_row(name, key, what, reference_name):
        e = details[key]
        return harness.row(name, what, ours=e["ours_s"], reference=e["reference_s"], unit="s",
                           reference_name=reference_name, floor=FLOORS[name], cpu_ratio=e.get("ratio_cpu"))

    mwu = next(k for k in details if k.startswith("mann_whitney_u"))
    moran = next(k for k in details if k.startswith("morans_i_vs_esda"))
    rows = [ratio_row("mann_kendall", "mann_kendall_3652", "Mann-Kendall, one 3652-day series",
                      "pymannkendall.original_test"),
            ratio_row("sens_slope", "sens_slope_3652", "Sen's slope (+95 % CI), one 3652-day series",
                      "pymannkendall.sens_slope"),
            ratio_row("mann_whitney_u", mwu, f"Mann-Whitney U, {mwu.split('_', 3)[-1]} values",
                      "scipy.stats.mannwhitneyu(asymptotic)"),
            ratio_row("morans_i", moran, f"Moran's I (queen), {moran.rsplit('_', 1)[-1]} raster",
                      "esda.Moran (weights built apart)")]
    big = next(k for k in details if k.startswith("morans_i_") and "esda" not in k)
    rows.append(harness.row("morans_i_big", f"Moran's I, {big.rsplit('_', 1)[-1]} raster (no reference)",
                            ours=details[big]["ours_s"], unit="s"))
    return {"rows": rows, "details": details}


if __name__ == "__main__":
    sys.exit(harness.main_single(run, "stats"))
