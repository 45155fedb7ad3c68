"""The one harness of ``benchmarks/``: timing, rows of ratios with floors, one table, one JSON with machine info.

Each ``bench_*.py`` module defines ``run(quick: bool) -> dict`` returning ``{"rows": [...], "details": {...}}``
(:func:`row` makes a row) and ends with ``if __name__ == "__main__": harness.main_single(run, NAME)``.
``benchmarks/run.py`` runs them all (``make bench``) or their quick variants (``make bench-quick``, run by
CI), prints one table and writes ``benchmarks/results/bench[-quick].json``.

A row compares ours with a reference measured in the same run (``ratio`` > 1: ours is faster or more
efficient); its ``floor`` is the smallest ratio accepted. Floors are ratios, never absolute times, set well
below what the shared 2-core CI machine measures so that only a real regression (a fast path lost, a
pipeline overhead come back) falls under them. A run with a ratio under its floor exits with status 1.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).resolve().parent / "results"


# ---------------------------------------------------------------------------------------------- timing
def clock(fn: Callable, repeat: int = 1, *, warmup: bool = False, best: bool = True):
    """Wall and CPU seconds (best, or median with ``best=False``) of ``repeat`` calls of ``fn``, and its last result.

    CPU seconds are this process's (all threads); on a shared machine they are less disturbed by other
    jobs than wall seconds, so both are kept.
    """
    if warmup:
        fn()
    walls, cpus, out = [], [], None
    for _ in range(max(1, int(repeat))):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    pick = min if best else statistics.median
    return pick(walls), pick(cpus), out


def single_thread_environment() -> dict[str, str]:
    """numba and BLAS limited to one thread: per-core rates (set before numpy/numba are imported)."""
    return {name: "1" for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


# ---------------------------------------------------------------------------------------------- rows
def row(name: str, what: str, *, ours: float, reference: float | None = None, unit: str = "s",
        higher_is_better: bool = False, floor: float | None = None, reference_name: str | None = None,
        **extra) -> dict:
    """One line of the table: ours against a reference measured in the same run.

    Parameters
    ----------
    name : str
        Short id (unique within its benchmark).
    what : str
        What is compared, in words.
    ours, reference : float
        The measured values, in ``unit``; ``reference`` None: reported without a ratio.
    higher_is_better : bool
        False for times (ratio = reference / ours), True for rates and efficiencies (ratio = ours / reference).
    floor : float, optional
        Smallest acceptable ratio.
    """
    ratio = None
    if reference is not None and ours and reference:
        ratio = ours / reference if higher_is_better else reference / ours
    out = {"name": name, "what": what, "ours": ours, "reference": reference, "reference_name": reference_name,
           "unit": unit, "ratio": ratio, "floor": floor,
           "ok": None if floor is None or ratio is None else bool(ratio >= floor)}
    out.update(extra)
    return out


# ---------------------------------------------------------------------------------------------- machine
def machine_info() -> dict:
    """What the figures were measured on (CPU, cores, memory, load, library versions, GPU if any)."""
    import numpy as np

    info = {"platform": platform.platform(), "machine": platform.machine(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "numpy": np.__version__,
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        pass
    for module in ("numba", "scipy", "zarr", "dask", "torch"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    info["gpu"] = gpu_name()
    info["rscript"] = rscript()
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                            cwd=Path(__file__).parent).stdout.strip() or None
    except OSError:
        info["git_commit"] = None
    return info


def gpu_name() -> str | None:
    """The CUDA device's name when torch sees one, else None (no GPU figure is then measured)."""
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def rscript() -> str | None:
    """Path of ``Rscript`` when installed (R's ``stl`` is then a reference too), else None."""
    import shutil

    return shutil.which("Rscript")


# ---------------------------------------------------------------------------------------------- output
def _fmt(value, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1e3:.3g} ms" if value < 1 else f"{value:.3g} s"
    if unit == "%":
        return f"{100 * value:.0f} %"
    return f"{value:.3g} {unit}"


def table(results: dict) -> str:
    """One table of every row of every benchmark."""
    lines = [f"{'benchmark':14} {'case':30} {'ours':>16} {'reference':>16} {'ratio':>9} {'floor':>7}  ok   what",
             "-" * 132]
    for bench, result in results.items():
        if "error" in result:
            lines.append(f"{bench:14} {'(failed)':30} {result['error'][:80]}")
            continue
        for r in result["rows"]:
            ratio = "-" if r["ratio"] is None else f"{r['ratio']:.3g}x"
            floor = "" if r["floor"] is None else f"{r['floor']:g}x"
            ok = {True: "yes", False: "NO", None: ""}[r["ok"]]
            lines.append(f"{bench:14} {r['name']:30} {_fmt(r['ours'], r['unit']):>16} "
                         f"{_fmt(r['reference'], r['unit']):>16} {ratio:>9} {floor:>7}  {ok:4} {r['what']}")
    return "\n".join(lines)


def failures(results: dict) -> list[str]:
    """Rows under their floor, and benchmarks that failed."""
    out = []
    for bench, result in results.items():
        if "error" in result:
            out.append(f"{bench}: failed: {result['error']}")
            continue
        out += [f"{bench}/{r['name']}: ratio {r['ratio']:.3g} < floor {r['floor']:g}"
                for r in result["rows"] if r["ok"] is False]
    return out


def run_in_process(name: str, run: Callable, quick: bool) -> dict:
    """``run(quick)`` with its wall/CPU seconds and peak RSS added; an exception becomes ``{"error": ...}``."""
    import traceback

    print(f"== {name} ({'quick' if quick else 'full'}) ...", flush=True)
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        result = run(quick)
    except Exception as err:  # noqa: BLE001 - reported in the table and the exit status
        traceback.print_exc()
        result = {"error": f"{type(err).__name__}: {err}"}
    result["seconds"] = round(time.perf_counter() - w0, 1)
    result["cpu_seconds_this_process"] = round(time.process_time() - c0, 1)
    result["peak_rss_mb_this_process"] = round(peak_rss_mb(), 1)
    return result


def write_results(results: dict, *, quick: bool, out: Path | None, started: str, show: bool = True) -> int:
    """Print the table, write the JSON (with machine info); 1 if a floor is missed or a benchmark failed."""
    if show:
        print(table(results))
    missed = failures(results)
    doc = {"started": started, "quick": quick, "machine": machine_info(), "benchmarks": results,
           "failures": missed,
           "note": "ratio = reference / ours for times, ours / reference for rates; floors are ratios measured "
                   "in the same run; wall figures on a shared machine are contended (CPU figures less so)"}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, indent=2, default=_json_default) + "\n")
        os.replace(tmp, out)
        print(f"wrote {out}")
    for line in missed if show else ():
        print(f"BELOW FLOOR: {line}")
    return 1 if missed else 0


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def main_single(run: Callable, name: str, argv=None) -> int:
    """``python benchmarks/bench_x.py [--quick] [--out FILE]``: one benchmark through the same harness."""
    parser = argparse.ArgumentParser(description=(sys.modules["__main__"].__doc__ or name).splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small, fast variant run by CI")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON (default: benchmarks/results/{name}.json)")
    parser.add_argument("--no-table", action="store_true", help=argparse.SUPPRESS)  # benchmarks/run.py prints it
    args = parser.parse_args(argv)
    out = args.out or RESULTS / f"{name}{'-quick' if args.quick else ''}.json"
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    result = run_in_process(name, run, args.quick)
    return write_results({name: result}, quick=args.quick, out=out, started=started, show=not args.no_table)
