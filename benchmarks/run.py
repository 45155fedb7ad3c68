"""Run every benchmark (``make bench``) or its quick variant (``make bench-quick``, run by CI); one table, one JSON.

Each benchmark runs in its own process (its thread settings are made before numpy/numba load, and its peak
RSS is its own) through :mod:`harness`; this script gathers their results, prints one table of every ratio
and writes ``benchmarks/results/bench.json`` (``bench-quick.json`` with ``--quick``) with the machine's
description. Exit status 1 when a ratio is below its floor or a benchmark failed.

Usage::

    python benchmarks/run.py [--quick] [--only stl,stats] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402

#: every benchmark, in the order of the table; "full" ones do not run with --quick
BENCHMARKS = {
    "stl": "bench_stl.py",
    "stats": "bench_stats.py",
    "mlr": "bench_mlr.py",
    "kriging": "bench_kriging.py",
    "region_grow": "bench_region_grow.py",
    "ingest": "bench_ingest.py",
    "uconvlstm": "bench_uconvlstm.py",
    "pipeline": "bench_pipeline.py",
    "synth": "bench_synth.py",
}
FULL_ONLY = {"synth"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small inputs: the CI variant (a few minutes)")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--out", type=Path, default=None, help="JSON (default: benchmarks/results/bench[-quick].json)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else [
        n for n in BENCHMARKS if not (args.quick and n in FULL_ONLY)]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    out = args.out or harness.RESULTS / f"bench{'-quick' if args.quick else ''}.json"
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    results = {}
    with tempfile.TemporaryDirectory(prefix="ihs_bench_") as tmp:
        for name in names:
            part = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(HERE / BENCHMARKS[name]), "--out", str(part), "--no-table"]
            if args.quick:
                cmd.append("--quick")
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=dict(os.environ))
            if part.is_file():
                results[name] = json.loads(part.read_text())["benchmarks"][name]
            else:
                results[name] = {"error": f"exited with status {proc.returncode} and no results"}
            results[name].setdefault("seconds", round(time.perf_counter() - t0, 1))
    return harness.write_results(results, quick=args.quick, out=out, started=started)


if __name__ == "__main__":
    sys.exit(main())
