"""Benchmark of the daily kriging gap fill (seed 000, section 2.3.1) against PyKrige.

One synthetic 256 × 256 day at 0.01° (smooth PM2.5-like field plus pixel noise) with 20 % of
the pixels removed at random.  Ours: :func:`ihs_hpc.ops.gapfill.fill_gaps` on the whole day
(variogram fit + neighbour search + ordinary kriging, k = 16), best of ``--repeat`` after a
warm-up, with all numba threads and with one; also the kriging alone with the fitted parameters
fixed.  Reference: PyKrige ``OrdinaryKriging(...).execute("points", ..., backend="loop",
n_closest_points=16)`` with the same variogram parameters, on a 64 × 64 window of the day (PyKrige
builds an n × n matrix over all data points, about 21 GB for the full day) for the first
``--reference-points`` gaps at least 8 pixels inside the window.  The ratio is per filled point;
PyKrige's constructor time is reported apart.  Agreement on those points is reported too (on a
regular grid equal-distance ties may pick different neighbours, so a few points can differ).
Results go through :mod:`harness` (``--quick``: a 128 × 128 day, 100 reference points).

Usage::

    python benchmarks/bench_kriging.py [--quick]
"""
from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np

from ihs_hpc.ops.gapfill import fill_gaps

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def synthetic_day(rng, size, gap_fraction):
    lat = 40.0 - 0.01 * np.arange(size)
    lon = 115.0 + 0.01 * np.arange(size)
    lon2, lat2 = np.meshgrid(lon, lat)
    truth = 60 + 15 * np.sin(4 * lon2) * np.cos(3 * lat2)
    for _ in range(20):
        cx, cy = rng.uniform(lon[0], lon[-1]), rng.uniform(lat[-1], lat[0])
        s = rng.uniform(0.05, 0.4)
        truth += rng.uniform(10, 60) * np.exp(-((lon2 - cx) ** 2 + (lat2 - cy) ** 2) / (2 * s * s))
    field = (truth + 2.0 * rng.normal(size=truth.shape)).astype(np.float32)
    gaps = rng.random(field.shape) < gap_fraction
    field[gaps] = np.nan
    return lat, lon, field, gaps


def best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


#: floor of the per-point ratio (PyKrige seconds per point / ours, one thread)
FLOOR = 10.0


def run(quick: bool) -> dict:
    size, gap_fraction, k, window, reference_points, repeat = (
        (128, 0.2, 16, 64, 100, 2) if quick else (256, 0.2, 16, 64, 300, 3))
    rng = np.random.default_rng(0)
    lat, lon, field, gaps = synthetic_day(rng, size, gap_fraction)
    n_gaps = int(gaps.sum())

    t0 = time.perf_counter()
    filled, info = fill_gaps(field, lat, lon, k=k)
    first_call_s = time.perf_counter() - t0
    params = info["params"]
    threads = numba.get_num_threads()
    full_s = best_time(lambda: fill_gaps(field, lat, lon, k=k), repeat)
    krige_s = best_time(lambda: fill_gaps(field, lat, lon, k=k,
                                          variogram_parameters=params), repeat)
    numba.set_num_threads(1)
    full_1_s = best_time(lambda: fill_gaps(field, lat, lon, k=k), repeat)
    krige_1_s = best_time(lambda: fill_gaps(field, lat, lon, k=k,
                                            variogram_parameters=params), repeat)
    numba.set_num_threads(threads)

    from pykrige.ok import OrdinaryKriging

    r0 = c0 = (size - window) // 2
    win = (slice(r0, r0 + window), slice(c0, c0 + window))
    lon2, lat2 = np.meshgrid(lon, lat)
    w_field, w_gaps = field[win].astype(np.float64), gaps[win]
    inner = np.zeros_like(w_gaps)
    inner[8:-8, 8:-8] = True
    rows, cols = np.nonzero(w_gaps & inner)
    rows, cols = rows[:reference_points], cols[:reference_points]
    xq, yq = lon2[win][rows, cols], lat2[win][rows, cols]
    t0 = time.perf_counter()
    ok = OrdinaryKriging(lon2[win][~w_gaps], lat2[win][~w_gaps], w_field[~w_gaps],
                         variogram_model="exponential", variogram_parameters=params)
    ctor_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    z_ref, _ = ok.execute("points", xq, yq, backend="loop", n_closest_points=k)
    ref_s = time.perf_counter() - t0
    ours_vals = filled[win][rows, cols].astype(np.float64)
    rel = np.abs(ours_vals - z_ref) / np.abs(z_ref)

    ours_pp = full_s / n_gaps
    ref_pp = ref_s / rows.size
    report = {
        "benchmark": "daily ordinary-kriging gap fill (seed 000, section 2.3.1)",
        "grid": [size, size], "gap_fraction": gap_fraction, "gaps": n_gaps,
        "valid": info["n_valid"], "k": k, "model": "exponential", "params": params,
        "dtype": str(field.dtype),
        "first_call_s_incl_compile_or_cache_load": first_call_s,
        "numba_threads": threads,
        "ours_fill_gaps_s": full_s, "ours_fill_gaps_1_thread_s": full_1_s,
        "ours_fixed_params_s": krige_s, "ours_fixed_params_1_thread_s": krige_1_s,
        "ours_variogram_fit_s_estimate": full_s - krige_s,
        "ours_per_point_us": 1e6 * ours_pp,
        "ours_fixed_params_per_point_us": 1e6 * krige_s / n_gaps,
        "reference": "PyKrige OrdinaryKriging.execute('points', backend='loop', "
                     "n_closest_points=k), same params, 64x64 window, same process",
        "reference_points": int(rows.size),
        "reference_window_data_points": int((~w_gaps).sum()),
        "reference_constructor_s": ctor_s, "reference_execute_s": ref_s,
        "reference_per_point_us": 1e6 * ref_pp,
        "speedup_per_point_fill_gaps": ref_pp / ours_pp,
        "speedup_per_point_fill_gaps_1_thread": ref_pp / (full_1_s / n_gaps),
        "speedup_per_point_fixed_params": ref_pp / (krige_s / n_gaps),
        "max_rel_diff_vs_reference": float(rel.max()),
        "points_within_1e-6_rel": int(np.count_nonzero(rel <= 1e-6)),
        "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()),
        "machine": platform.machine(), "python": platform.python_version(),
        "numba": numba.__version__, "numpy": np.__version__,
    }
    rows = [harness.row("fill_gaps_1_thread", f"kriging gap fill per point (variogram fit + k={k} OK), "
                                              f"{size}x{size} day, {gap_fraction:.0%} gaps, 1 thread",
                        ours=full_1_s / n_gaps, reference=ref_pp, unit="s", floor=FLOOR,
                        reference_name="PyKrige OrdinaryKriging.execute(points, loop, n_closest_points=k)",
                        max_rel_diff_vs_reference=float(rel.max())),
            harness.row("fixed_params_1_thread", "kriging per point with the variogram given, 1 thread",
                        ours=krige_1_s / n_gaps, reference=ref_pp, unit="s", reference_name="PyKrige, same params")]
    return {"rows": rows, "details": report}


if __name__ == "__main__":
    sys.exit(harness.main_single(run, "kriging"))
