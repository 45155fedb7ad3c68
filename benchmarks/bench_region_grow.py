"""Benchmark of stage-1 region growing (seed 000, section 2.3.2) on a BTH-sized DEM.

A synthetic 660 × 630 DEM at 0.01° (lat 42.6 → 36.01 N descending, lon 113.5 → 119.79 E; hills
of several scales plus metre-level noise, 0.5 % NaN) and 300 random source pixels.  Reports the
time of :func:`ihs_hpc.ops.region_grow.region_grow` (best of ``--repeat`` after a warm-up that
compiles, with all numba threads and with one), seeds/s and member pixels/s, and the same per
seed for a plain-Python breadth-first reference (``collections.deque``, ``math`` haversine) run on
a subset of the seeds in the same process; the ratio is per seed.  The reference's members are
compared with ours on that subset.  Results go through :mod:`harness` (``--quick``: 100 seeds).

Usage::

    python benchmarks/bench_region_grow.py [--quick]
"""
from __future__ import annotations

import math
import os
import platform
import sys
import time
from collections import deque
from pathlib import Path

import numba
import numpy as np

from ihs_hpc.ops.region_grow import EARTH_RADIUS_KM, region_grow

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def synthetic_dem(rng, ny=660, nx=630):
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    dem = 200.0 + 1200.0 * np.clip((nx - xx) / nx + (ny - yy) / ny - 0.9, 0, None)  # NW uplands
    for n_hills, size, height in ((30, 60.0, 400.0), (120, 15.0, 80.0), (400, 4.0, 15.0)):
        for _ in range(n_hills):
            cy, cx = rng.uniform(0, ny), rng.uniform(0, nx)
            s = rng.uniform(0.5, 1.5) * size
            y0, y1 = int(max(cy - 4 * s, 0)), int(min(cy + 4 * s + 1, ny))
            x0, x1 = int(max(cx - 4 * s, 0)), int(min(cx + 4 * s + 1, nx))
            dem[y0:y1, x0:x1] += rng.uniform(0.3, 1.0) * height * np.exp(
                -((yy[y0:y1, x0:x1] - cy) ** 2 + (xx[y0:y1, x0:x1] - cx) ** 2) / (2 * s * s))
    dem += rng.normal(0, 1.0, size=(ny, nx))
    dem[rng.random((ny, nx)) < 0.005] = np.nan
    lat = 42.6 - 0.01 * np.arange(ny)
    lon = 113.5 + 0.01 * np.arange(nx)
    return dem, lat, lon


def haversine_km(lat1, lon1, lat2, lon2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2) - math.radians(lon1)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(a, 1.0)))


def reference_grow(dem, lat, lon, seed, max_km):
    ny, nx = dem.shape
    r0, c0 = seed
    members = {(r0, c0)}
    queue = deque([(r0, c0)])
    while queue:
        r, c = queue.popleft()
        for dr, dc in NEIGHBOURS:
            rr, cc = r + dr, c + dc
            if not (0 <= rr < ny and 0 <= cc < nx) or (rr, cc) in members:
                continue
            if math.isnan(dem[rr, cc]) or not dem[rr, cc] < dem[r, c]:
                continue
            if haversine_km(lat[r0], lon[c0], lat[rr], lon[cc]) > max_km:
                continue
            members.add((rr, cc))
            queue.append((rr, cc))
    return np.sort(np.array([r * nx + c for r, c in members], dtype=np.int64))


def best_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


#: floor of the per-seed ratio (BFS seconds per seed / ours, one thread)
FLOOR = 10.0


def run(quick: bool) -> dict:
    seeds_n, reference_seeds, max_km, repeat = (100, 10, 10.0, 2) if quick else (300, 30, 10.0, 3)
    rng = np.random.default_rng(0)
    dem, lat, lon = synthetic_dem(rng)
    finite = np.argwhere(~np.isnan(dem))
    seeds = finite[rng.choice(len(finite), size=seeds_n, replace=False)]

    t0 = time.perf_counter()
    result = region_grow(dem, lat, lon, seeds, max_km=max_km)
    first_call_s = time.perf_counter() - t0
    threads = numba.get_num_threads()
    ours_s = best_time(lambda: region_grow(dem, lat, lon, seeds, max_km=max_km), repeat)
    numba.set_num_threads(1)
    ours_1_s = best_time(lambda: region_grow(dem, lat, lon, seeds, max_km=max_km), repeat)
    numba.set_num_threads(threads)

    n_members = int(sum(m.size for m in result.members))
    sub = np.arange(min(reference_seeds, seeds_n))
    t0 = time.perf_counter()
    ref = [reference_grow(dem, lat, lon, tuple(seeds[i]), max_km) for i in sub]
    ref_s = time.perf_counter() - t0
    agree = all(np.array_equal(ref[j], result.members[i]) for j, i in enumerate(sub))
    ref_per_seed = ref_s / sub.size
    ours_per_seed = ours_s / seeds_n

    report = {
        "benchmark": "stage-1 region growing (seed 000, section 2.3.2)",
        "grid": list(dem.shape), "seeds": seeds_n, "max_km": max_km,
        "member_pixels_total": n_members,
        "member_pixels_per_seed_mean": n_members / seeds_n,
        "member_pixels_per_seed_max": int(max(m.size for m in result.members)),
        "union_pixels": int(np.count_nonzero(result.count)),
        "first_call_s_incl_compile_or_cache_load": first_call_s,
        "numba_threads": threads,
        "ours_s": ours_s, "ours_1_thread_s": ours_1_s,
        "seeds_per_s": seeds_n / ours_s,
        "member_pixels_per_s": n_members / ours_s,
        "grid_pixels_per_s": dem.size / ours_s,
        "reference": "plain-Python BFS (collections.deque, math haversine), same process",
        "reference_seeds": int(sub.size), "reference_s": ref_s,
        "reference_per_seed_ms": 1e3 * ref_per_seed, "ours_per_seed_ms": 1e3 * ours_per_seed,
        "speedup_per_seed": ref_per_seed / ours_per_seed,
        "speedup_per_seed_1_thread": ref_per_seed / (ours_1_s / seeds_n),
        "members_equal_reference_on_subset": bool(agree),
        "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()),
        "machine": platform.machine(), "python": platform.python_version(),
        "numba": numba.__version__, "numpy": np.__version__,
    }
    rows = [harness.row("per_seed_1_thread", f"stage-1 region growing per seed, 660x630 DEM, {seeds_n} seeds, "
                                             f"{max_km:g} km, 1 thread",
                        ours=ours_1_s / seeds_n, reference=ref_per_seed, unit="s", floor=FLOOR,
                        reference_name="plain-Python BFS (deque, math haversine)",
                        members_equal_reference=bool(agree))]
    if not agree:
        raise AssertionError("region growing members differ from the BFS reference")
    return {"rows": rows, "details": report}


if __name__ == "__main__":
    sys.exit(harness.main_single(run, "region_grow"))
