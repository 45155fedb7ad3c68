"""The full-size run: the ``bth`` preset (660 × 630 px × 3653 days, 474 IHS) from raw files through every stage.

Runs ``ihs ingest``, ``ihs prep``, ``ihs stage1``, ``ihs stage2``, ``ihs stage3``, ``ihs stats`` and
``ihs report`` one after the other on a run YAML over a directory written by
``ihs synth --preset bth --layout files`` (CHAP daily NetCDF, ERA5 yearly NetCDF, DEM, IHS, cities), each as
its own process (so each stage's resources are its own, its local Dask cluster included), and records per
stage:

* wall seconds of the command, and the stage's own seconds from ``run.json`` (without process and cluster
  start);
* CPU user and system seconds of the command and every process it waited for (``os.wait4``: the Dask
  workers and the nanny included);
* peak RSS: of the whole process tree at once (sampled every 0.5 s with psutil, the figure the ≤ 8 GiB
  acceptance is about) and of the largest single process (``ru_maxrss``);
* bytes read and written: from storage (``/proc/<pid>/io`` ``read_bytes``/``write_bytes``, summed over the
  tree's processes as last sampled) and through system calls (``rchar``/``wchar``, page cache included).

Writes ``benchmarks/results/bth_full.json`` and the Markdown table ``benchmarks/BTH_FULL.md``. Scene
generation is not timed here (``benchmarks/bench_synth.py`` times it). On a machine shared with other jobs
the wall figures are contended: pass ``--label contended`` (recorded with the load average).

Usage::

    ihs synth --preset bth --layout files --out /scratch/bth_files          # ~10 min, ~5 GB
    python benchmarks/bench_bth_full.py /scratch/bth_files --run-dir /scratch/bth_run [--stage3 kriging]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

STAGES = [("ingest", "input"), ("prep", "prep"), ("stage1", "stage1"), ("stage2", "stage2"),
          ("stage3", "stage3"), ("stats", "stats"), ("report", "report")]
OUTPUTS = {"input": "cubes.zarr", "prep": "prep.zarr", "stage1": "stage1.zarr", "stage2": "stage2.zarr",
           "stage3": "stage3.zarr", "stats": "stats", "report": "report"}
MARKDOWN = Path(__file__).resolve().parent / "BTH_FULL.md"


class TreeSampler:
    """Samples a process and its descendants: peak summed RSS, last I/O counters per process."""

    def __init__(self, pid: int, interval: float = 0.5):
        import psutil

        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_rss = 0
        self.io: dict[int, tuple] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self.root] + self.root.children(recursive=True)
            except psutil.Error:
                break
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                    io = p.io_counters()
                    self.io[p.pid] = (io.read_bytes, io.write_bytes, io.read_chars, io.write_chars)
                except psutil.Error:
                    continue
            self.peak_rss = max(self.peak_rss, total)
            self._stop.wait(self.interval)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        sums = [sum(v[i] for v in self.io.values()) for i in range(4)]
        return {"peak_rss_tree_gib": self.peak_rss / 2**30, "read_gb": sums[0] / 1e9, "written_gb": sums[1] / 1e9,
                "read_syscall_gb": sums[2] / 1e9, "written_syscall_gb": sums[3] / 1e9, "processes_seen": len(self.io)}


def run_stage(ihs: str, command: str, config: Path, log: Path) -> dict:
    """One ``ihs <command> CONFIG`` with its resources (see the module docstring)."""
    with log.open("a") as out:
        out.write(f"\n===== ihs {command} {config} ({time.strftime('%H:%M:%S')})\n")
        out.flush()
        w0 = time.perf_counter()
        proc = subprocess.Popen([ihs, command, str(config)], stdout=out, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - w0
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampled = sampler.stop()
    return {"command": f"ihs {command}", "exit_code": proc.returncode, "wall_s": round(wall, 1),
            "cpu_user_s": round(usage.ru_utime, 1), "cpu_sys_s": round(usage.ru_stime, 1),
            "max_process_rss_gib": round(usage.ru_maxrss / 2**20, 2),
            "block_in_gb": round(usage.ru_inblock * 512 / 1e9, 2), "block_out_gb": round(usage.ru_oublock * 512 / 1e9, 2),
            "minor_faults": usage.ru_minflt, **{k: round(v, 2) if isinstance(v, float) else v for k, v in sampled.items()}}


def markdown(doc: dict) -> str:
    m = doc["machine"]
    lines = [f"# Full-size BTH run ({doc['label']})", "",
             f"`bth` preset in the files layout (660 × 630 px × 3653 days, 474 IHS) through `ihs ingest` and every "
             f"stage, `stage3.method: {doc['stage3_method']}` (`stage3.fill_error.placements: "
             f"{doc.get('fill_error_placements', 0)}`), LocalCluster of {doc['workers']} workers × 1 thread, "
             f"on {m.get('cpu_model', '?')} ({m['cpu_count']} cores, {m.get('memory_gib', '?')} GiB). "
             f"Load average before: {doc['load_before']}, after: {doc['load_after']}. Commit {m.get('git_commit')}. "
             f"Produced by `benchmarks/bench_bth_full.py`; JSON: `benchmarks/results/bth_full.json`.", "",
             "| stage | wall s | stage s | CPU user s | CPU sys s | sys % | peak RSS, tree GiB | max process RSS GiB "
             "| read GB (disk) | written GB (disk) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in doc["stages"].items():
        cpu = r["cpu_user_s"] + r["cpu_sys_s"]
        lines.append(f"| {name} | {r['wall_s']:.0f} | {r.get('stage_s', '')} | {r['cpu_user_s']:.0f} | "
                     f"{r['cpu_sys_s']:.0f} | {100 * r['cpu_sys_s'] / cpu if cpu else 0:.0f} | "
                     f"{r['peak_rss_tree_gib']:.2f} | {r['max_process_rss_gib']:.2f} | {r['read_gb']:.1f} | "
                     f"{r['written_gb']:.1f} |")
    t = doc["total"]
    lines += [f"| **ingest → report** | **{t['wall_s']:.0f}** | {t['stage_s']:.0f} | {t['cpu_user_s']:.0f} | "
              f"{t['cpu_sys_s']:.0f} | {t['sys_percent']:.0f} | {t['peak_rss_tree_gib']:.2f} | "
              f"{t['max_process_rss_gib']:.2f} | {t['read_gb']:.1f} | {t['written_gb']:.1f} |", "",
              f"Acceptance (issue 15): ingest to report ≤ 30 min: **{t['wall_s'] / 60:.1f} min** "
              f"({'holds' if t['wall_s'] <= 1800 else 'does not hold'}); peak RSS ≤ 8 GiB: "
              f"**{t['peak_rss_tree_gib']:.2f} GiB** ({'holds' if t['peak_rss_tree_gib'] <= 8 else 'does not hold'}).", ""]
    if doc.get("notes"):
        lines += [f"- {n}" for n in doc["notes"]] + [""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", type=Path, help="directory written by `ihs synth --preset bth --layout files`")
    parser.add_argument("--run-dir", type=Path, required=True, help="run directory (its stores are replaced)")
    parser.add_argument("--stage3", choices=["kriging", "uconvlstm"], default="kriging")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stages", default=",".join(s for s, _ in STAGES), help="subset, comma-separated")
    parser.add_argument("--label", default="quiet machine", help="e.g. 'contended' on a shared machine")
    parser.add_argument("--note", action="append", default=[], help="a line for the Markdown notes")
    parser.add_argument("--out", type=Path, default=harness.RESULTS / "bth_full.json")
    parser.add_argument("--markdown", type=Path, default=MARKDOWN)
    args = parser.parse_args(argv)
    ingest = args.files / "ingest.json"
    if not ingest.is_file():
        parser.error(f"{ingest} not found: pass a directory written by `ihs synth --preset bth --layout files`")
    wanted = [s.strip() for s in args.stages.split(",")]
    run_dir = args.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir.parent / f"{run_dir.name}.yaml"
    config.write_text(json.dumps({
        "run_dir": str(run_dir), "input": {"kind": "files", "files": json.loads(ingest.read_text())},
        "cluster": {"kind": "local", "n_workers": args.workers, "threads_per_worker": 1},
        "stage3": {"method": args.stage3}, "progress": {"interval_s": 60.0}}, indent=1))
    ihs = shutil.which("ihs", path=str(Path(sys.executable).parent)) or "ihs"
    log = run_dir.parent / f"{run_dir.name}.log"
    import dask.config

    import ihs_hpc.config  # noqa: F401  (the package defaults: what the run YAML leaves unset)

    doc = {"benchmark": "full-size BTH run (issue 15)", "label": args.label, "files": str(args.files),
           "run_dir": str(run_dir), "stage3_method": args.stage3, "workers": args.workers,
           "fill_error_placements": int(dask.config.get("ihs.stage3.fill_error.placements")),
           "load_before": [round(v, 2) for v in os.getloadavg()], "machine": harness.machine_info(),
           "stages": {}, "notes": args.note, "log": str(log)}
    if args.out.is_file():  # stages measured by an earlier call are kept (a subset can be rerun)
        previous = json.loads(args.out.read_text())
        if previous.get("run_dir") == str(run_dir):
            doc["stages"] = previous.get("stages", {})
    for command, stage in STAGES:
        if command not in wanted:
            continue
        print(f"[{time.strftime('%H:%M:%S')}] ihs {command} ...", flush=True)
        result = run_stage(ihs, command, config, log)
        record = json.loads((run_dir / "run.json").read_text())["stages"].get(stage, {}) if (
            run_dir / "run.json").is_file() else {}
        result["stage_s"] = record.get("seconds")
        doc["stages"][command] = result
        print(f"    {json.dumps(result)}", flush=True)
        if result["exit_code"] != 0:
            print(f"ihs {command} failed (exit {result['exit_code']}); see {log}", flush=True)
            break
    stages = doc["stages"].values()
    doc["outputs_gb"] = {name: round(sum(f.stat().st_size for f in (run_dir / out).rglob("*") if f.is_file()) / 1e9, 3)
                         for name, out in OUTPUTS.items() if (run_dir / out).exists()}
    doc["grid"] = {"pixels": 660 * 630, "days": 3653}
    doc["load_after"] = [round(v, 2) for v in os.getloadavg()]
    user, sys_ = sum(r["cpu_user_s"] for r in stages), sum(r["cpu_sys_s"] for r in stages)
    doc["total"] = {"wall_s": sum(r["wall_s"] for r in stages),
                    "stage_s": sum(r.get("stage_s") or 0 for r in stages),
                    "cpu_user_s": user, "cpu_sys_s": sys_, "sys_percent": 100 * sys_ / (user + sys_ or 1),
                    "peak_rss_tree_gib": max((r["peak_rss_tree_gib"] for r in stages), default=0),
                    "max_process_rss_gib": max((r["max_process_rss_gib"] for r in stages), default=0),
                    "read_gb": sum(r["read_gb"] for r in stages), "written_gb": sum(r["written_gb"] for r in stages)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    args.markdown.write_text(markdown(doc))
    print(markdown(doc))
    return 0 if all(r["exit_code"] == 0 for r in stages) else 1


if __name__ == "__main__":
    sys.exit(main())
