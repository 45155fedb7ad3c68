"""Benchmark of the synthetic scene generator (``ihs synth``).

Runs :func:`ihs_hpc.synth.generate_scene` for each preset asked, in a fresh child process each (so
import and numba-cache loading are counted, as for a user), and reports wall and CPU time, the peak
RSS of the child, pixel-days per second and the store size.  Memory model: the 0.1° meteorology of the
whole period (7 variables + 2 derived fields, ``n_days × met_ny × met_nx × 4 B`` each), the small maps
(DEM, annual sums ``2 × n_years × ny × nx × 8 B``) and one tile (a few ``n_days × tile² × 4 B`` cubes) —
never a whole ``(time, ny, nx)`` cube, so ``bth`` runs in well under 2 GiB.

Usage::

    python benchmarks/bench_synth.py                    # tiny and demo
    python benchmarks/bench_synth.py --presets bth --keep --dir /scratch/synth
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter(); c0 = time.process_time()
from ihs_hpc.synth import generate_scene, get_preset
t1 = time.perf_counter()
preset, out, layout = sys.argv[1], sys.argv[2], sys.argv[3]
generate_scene(preset, out, seed=0, layout=layout, overwrite=True, progress=False)
t2 = time.perf_counter()
p = get_preset(preset)
print(json.dumps({"import_s": t1 - t0, "generate_s": t2 - t1, "wall_s": t2 - t0,
                  "cpu_s": time.process_time() - c0,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "pixel_days": len(p.time) * p.grid.size}))
"""


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="tiny,demo", help="comma-separated presets (tiny,demo,bth)")
    ap.add_argument("--layout", default="zarr", choices=["zarr", "files"])
    ap.add_argument("--dir", default=None, help="where to write (default: a temporary directory)")
    ap.add_argument("--keep", action="store_true", help="keep the generated scenes")
    args = ap.parse_args(argv)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench_synth_"))
    root.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for preset in args.presets.split(","):
            out = root / (f"{preset}.zarr" if args.layout == "zarr" else preset)
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", CHILD, preset, str(out), args.layout],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"{preset}: generation failed\n{proc.stderr}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            r.update(preset=preset, layout=args.layout, process_s=time.perf_counter() - start,
                     store_mib=du(out) / 2**20, mpixel_days_per_s=r["pixel_days"] / r["generate_s"] / 1e6)
            results.append(r)
            print(f"{preset:5s} {args.layout}: wall {r['wall_s']:6.1f} s (import {r['import_s']:.1f} s), "
                  f"CPU {r['cpu_s']:6.1f} s, peak RSS {r['peak_rss_mib']:7.0f} MiB, "
                  f"{r['mpixel_days_per_s']:.2f} M pixel-days/s, output {r['store_mib']:.0f} MiB")
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
