"""Benchmark of the synthetic scene generator (``ihs synth``).

Runs :func:`ihs_hpc.synth.generate_scene` for each preset asked, in a fresh child process each (so
import and numba-cache loading are counted, as for a user), and reports wall and CPU time, the peak
RSS of the child, pixel-days per second and the store size.  Memory model: the 0.1° meteorology of the
whole period (7 variables + 2 derived fields, ``n_days × met_ny × met_nx × 4 B`` each), the small maps
(DEM, annual sums ``2 × n_years × ny × nx × 8 B``) and one tile (a few ``n_days × tile² × 4 B`` cubes) —
never a whole ``(time, ny, nx)`` cube, so ``bth`` runs in well under 2 GiB.

Usage::

    python benchmarks/bench_synth.py [--quick]          # tiny and demo (quick: tiny), through benchmarks/harness.py
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

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


def run(quick: bool, *, presets=None, layout: str = "zarr") -> dict:
    presets = presets or (["tiny"] if quick else ["tiny", "demo"])
    root = Path(tempfile.mkdtemp(prefix="bench_synth_"))
    results, rows = [], []
    try:
        for preset in presets:
            out = root / (f"{preset}.zarr" if layout == "zarr" else preset)
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", CHILD, preset, str(out), layout],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"{preset}: generation failed\n{proc.stderr[-3000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            r.update(preset=preset, layout=layout, process_s=time.perf_counter() - start,
                     store_mib=du(out) / 2**20, mpixel_days_per_s=r["pixel_days"] / r["generate_s"] / 1e6)
            results.append(r)
            rows.append(harness.row(f"{preset}_{layout}", f"synthetic scene '{preset}' ({layout}): M pixel-days/s "
                                                          f"(peak RSS {r['peak_rss_mib']:.0f} MiB; no reference)",
                                    ours=r["mpixel_days_per_s"], unit="Mpx-days/s"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"rows": rows, "details": {"runs": results}}


if __name__ == "__main__":
    sys.exit(harness.main_single(run, "synth"))
