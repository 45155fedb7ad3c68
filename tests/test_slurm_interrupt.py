"""Runs that survive cancelled jobs and killed workers, on the real local Slurm.

One run directory goes through what a shared cluster does to a job: the head job (jobs/ihs-slurm.sbatch,
whose SLURMCluster workers are Slurm jobs) is cancelled with ``scancel`` in the middle of prep's per-day
kriging, resubmitted and cancelled again at about half of stage 2, resubmitted once more while one of
its Dask workers is SIGKILLed during stage 3. The final stores equal the uninterrupted LocalCluster run
of the same scene bit for bit, and the completion records show that no tile and no block of days was
computed twice (each record counts its writes).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import TINY_RUN_YAML
from slurm_local import REPO_ROOT
from test_slurm import PROGRESS_LINE, STORE_STAGES, STORES, assert_stores_equal

pytestmark = pytest.mark.slow


def _records(run_dir: Path) -> dict[str, dict]:
    out = {}
    for store in STORES:
        for path in (run_dir / store / "_ihs_tiles").glob("*"):
            if not path.name.startswith("."):
                out[f"{store}/{path.name}"] = json.loads(path.read_text())
    return out


def _cancel(local_slurm, job: str) -> None:
    local_slurm.scancel(job)
    local_slurm.wait(job, timeout=120)
    _end_workers(local_slurm)


def _end_workers(local_slurm) -> None:
    # the head's worker jobs lose their scheduler; end them now rather than at their death timeout
    local_slurm.run("scancel", "--name", "ihs-worker", check=False)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and local_slurm.queued():
        time.sleep(0.5)


def _worker_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-f", "distributed.cli.dask_worker|dask-worker|dask worker"],
                           capture_output=True, text=True).stdout.split()
    return [int(p) for p in found if int(p) != os.getpid()]


def test_cancelled_jobs_and_a_killed_worker_then_rerun_equal_an_uninterrupted_run(local_slurm, tiny_local_run,
                                                                                  tmp_path):
    reference, _ = tiny_local_run
    workers = tmp_path / "workers"
    config = tmp_path / "head.yaml"
    config.write_text(TINY_RUN_YAML + f"cluster: {{n_workers: 2, interface: lo, slurm: {{cores: 1, memory: 1GiB, "
                                      f"walltime: '00:20:00', log_directory: {workers}}}}}\n"
                                      "progress: {interval_s: 0}\n")
    run_dir = tmp_path / "head"

    def submit(n: int, env: dict | None = None) -> tuple[str, Path]:
        log = tmp_path / f"head-{n}.out"
        job = local_slurm.sbatch(f"--chdir={tmp_path}", f"--output={log}", REPO_ROOT / "jobs" / "ihs-slurm.sbatch",
                                 config, "--stages", STORE_STAGES, env=env)
        return job, log

    # 1. cancelled in the middle of prep's kriging (one block of days of three done)
    job, log = submit(1)
    local_slurm.wait_for_log(log, r"^prep kriging days: 1/3 block", timeout=400)
    _cancel(local_slurm, job)
    assert not (run_dir / "prep.zarr").exists()
    kriged = [p.name for p in (run_dir / "prep.zarr.partial" / "_ihs_tiles").glob("kriging_*")]
    assert 1 <= len(kriged) < 3

    # 2. resubmitted: the kriged blocks are not redone; the head job SIGKILLed at half of stage 2 (after 2 of its
    # 4 tiles, by the head itself: a scancel at a log line raced the rest of a stage that takes seconds)
    job, log = submit(2, env={"IHS_FAULT_KILL_AFTER": "stage2 PM2.5 tiles:2"})
    local_slurm.wait(job, timeout=400)
    _end_workers(local_slurm)
    text = local_slurm.log(log)
    assert re.search(r"^stage2 PM2\.5 tiles: 2/4 tile", text, re.M), text[-3000:]
    assert f"prep kriging days: 0/{3 - len(kriged)} block" in text  # only the blocks not yet kriged
    assert (run_dir / "prep.zarr").exists() and not (run_dir / "stage2.zarr").exists()
    assert "took over a stale lock" in text  # the cancelled head job's lock

    # 3. resubmitted; one Dask worker SIGKILLed during stage 3; the job still completes
    job, log = submit(3)
    local_slurm.wait_for_log(log, r"^stage3 kriging days: 0/", timeout=400)
    nannies = _worker_pids()
    assert nannies, "no Dask worker process found"
    children = subprocess.run(["pgrep", "-P", str(nannies[0])], capture_output=True, text=True).stdout.split()
    os.kill(int(children[0]) if children else nannies[0], signal.SIGKILL)  # the worker under its nanny
    record = local_slurm.wait(job, timeout=600)
    text = local_slurm.log(log)
    assert (record.state, record.exit_code) == ("COMPLETED", "0:0"), text[-5000:]
    assert "\r" not in text and PROGRESS_LINE.search(text)

    assert_stores_equal(run_dir, reference)
    records = _records(run_dir)
    assert any(name.startswith("stage2.zarr/t") for name in records)
    twice = {name: r["writes"] for name, r in records.items() if r.get("writes") != 1}
    assert twice == {}, f"computed more than once: {twice}"
    local_slurm.run("scancel", "--name", "ihs-worker", check=False)
