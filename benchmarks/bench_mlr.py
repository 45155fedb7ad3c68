"""Benchmark: per-pixel MLR (seed 000, eq. 3) — ihs_hpc.ops.mlr.mlr vs a numpy.linalg.lstsq loop.

Default case: 4096 pixels × 3652 days × k = 6 regressors per pixel (float64), the size of one
64 × 64 tile of ten years of daily data.  The reference (lstsq on ``[1, X]`` per pixel) is timed
on a subset of pixels and scaled per pixel.  Both run in this process; the ratio is what is
reported (through :mod:`harness`; ``--quick``: 512 pixels).

The reference runs with single-threaded BLAS (``OPENBLAS_NUM_THREADS=1`` etc., set before numpy
is imported): for one small (3652 × 7) problem at a time threaded BLAS only adds overhead, and on a
busy machine its spinning threads can make it slower by an order of magnitude.  Ours is timed with
one numba thread and with all of them, so both the per-core and the whole-machine ratio are shown.

Run: ``python benchmarks/bench_mlr.py [--quick]`` (or ``benchmarks/run.py``, ``make bench``).
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

from ihs_hpc.ops.mlr import mlr  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def lstsq_loop(y, X):
    """Trusted peer: numpy lstsq with an intercept column, one pixel at a time."""
    coef = np.empty((y.shape[0], X.shape[-2] + 1))
    ones = np.ones(y.shape[-1])
    for p in range(y.shape[0]):
        Xp = X[p] if X.ndim == 3 else X
        coef[p] = np.linalg.lstsq(np.column_stack([ones, Xp.T]), y[p], rcond=None)[0]
    return coef


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def run_case(y, X, ref_pixels, repeat):
    n_pixels = y.shape[0]
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    ours_1t_s, _ = best_of(lambda: mlr(y, X), repeat)
    numba.set_num_threads(threads)
    ours_s, res = best_of(lambda: mlr(y, X), repeat)
    sub = slice(0, ref_pixels)
    ref_s, ref_coef = best_of(lambda: lstsq_loop(y[sub], X[sub] if X.ndim == 3 else X), repeat)
    ref_per_pixel = ref_s / ref_pixels
    err = np.max(np.abs(res.coef[sub] - ref_coef) / np.max(np.abs(ref_coef), axis=1, keepdims=True))
    return {
        "ours_1_thread_s": ours_1t_s,
        "speedup_1_thread": ref_per_pixel * n_pixels / ours_1t_s,
        "ours_s": ours_s,
        "ours_per_pixel_us": 1e6 * ours_s / n_pixels,
        "lstsq_subset_pixels": ref_pixels,
        "lstsq_subset_s": ref_s,
        "lstsq_per_pixel_us": 1e6 * ref_per_pixel,
        "lstsq_scaled_s": ref_per_pixel * n_pixels,
        "speedup": ref_per_pixel * n_pixels / ours_s,
        "max_rel_coef_diff_on_subset": float(err),
    }


#: floor of the per-core ratio (lstsq seconds / ours, one thread each)
FLOOR = 3.0


def run(quick: bool) -> dict:
    P, n, k, ref_pixels, repeat = (512, 3652, 6, 32, 3) if quick else (4096, 3652, 6, 128, 3)
    rng = np.random.default_rng(0)
    scales = 10.0 ** rng.uniform(-2, 2, size=k)
    offsets = scales * rng.uniform(-50, 50, size=k)
    X = rng.normal(size=(P, k, n)) * scales[:, None] + offsets[:, None]
    y = 60.0 + np.einsum("pkn,pk->pn", X - offsets[:, None], rng.normal(size=(P, k)) / scales)
    y += rng.normal(scale=10.0, size=y.shape)

    mlr(y[:2, :50], X[:2, :, :50])  # compile / load the numba cache outside the timings
    mlr(y[:2, :50], X[:2, :, :50].astype(np.float32))
    cases = {
        "per_pixel_X_float64": run_case(y, X, ref_pixels, repeat),
        "per_pixel_X_float32": run_case(y, X.astype(np.float32), ref_pixels, repeat),
        "shared_X_float64": run_case(y, X[0], ref_pixels, repeat),
    }
    rows = [harness.row(name, f"per-pixel MLR (eq. 3), {P} px x {n} days x {k} regressors, 1 thread",
                        ours=c["ours_1_thread_s"] / P, reference=c["lstsq_per_pixel_us"] * 1e-6, unit="s",
                        reference_name="numpy.linalg.lstsq per pixel, 1-thread BLAS",
                        floor=FLOOR if name == "per_pixel_X_float64" else None,
                        max_rel_coef_diff=c["max_rel_coef_diff_on_subset"])
            for name, c in cases.items()]
    return {"rows": rows, "details": {
        "pixels": P, "days": n, "k": k, "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS"),
        "numba_threads": numba.get_num_threads(), "cases": cases}}


if __name__ == "__main__":
    sys.exit(harness.main_single(run, "mlr"))
