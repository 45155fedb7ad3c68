"""HPC execution on a real single-node Slurm (slurm/start.sh: munged, slurmctld, slurmd on localhost):
the sbatch jobs users submit (jobs/ihs-mpi.sbatch, jobs/ihs-slurm.sbatch) and a SLURMCluster of worker
jobs, each compared array by array with the LocalCluster run of the same scene (``tiny_local_run``)."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import TINY_RUN_YAML
from slurm_local import REPO_ROOT

pytestmark = pytest.mark.slow

STORES = ("cubes.zarr", "prep.zarr", "stage1.zarr", "stage2.zarr", "stage3.zarr")
STORE_STAGES = "input,prep,stage1,stage2,stage3"  # the stages that write stores (stats/report: tables, figures)
# a progress line of a job log: tasks done/total, rate, elapsed, ETA (ihs_hpc/progress.py)
PROGRESS_LINE = re.compile(r"^(?P<desc>[^:\n]+): (?P<done>\d+)/(?P<total>\d+) (?P<unit>\w+) \(\d+ %\), "
                           r"(?:[\d.e+-]+|\?) \w+/s, elapsed \d+:\d\d:\d\d, ETA (?:\d+:\d\d:\d\d|\?)$", re.M)


def assert_stores_equal(run_dir: Path, reference_dir: Path, stores=STORES) -> None:
    """Every variable (coordinates included) of every store holds the same values, NaNs in the same places."""
    for store in stores:
        got, ref = xr.open_zarr(run_dir / store), xr.open_zarr(reference_dir / store)
        assert got.attrs.get("ihs_complete") is True, f"{store} of {run_dir} is not complete"
        assert sorted(got.variables) == sorted(ref.variables), store
        differing = []
        for name in ref.variables:
            a, b = got[name].values, ref[name].values
            same = a.shape == b.shape and (np.array_equal(a, b, equal_nan=True) if a.dtype.kind in "fc"
                                           else np.array_equal(a, b))
            if not same:
                detail = (f"max |diff| {np.nanmax(np.abs(a.astype(float) - b.astype(float)))}"
                          if a.shape == b.shape and a.dtype.kind in "fiu" else f"shapes {a.shape} {b.shape}")
                differing.append(f"{name} ({detail})")
        assert not differing, f"{store}: {differing} differ from the LocalCluster run"


def _config(path: Path, extra: str) -> Path:
    path.write_text(TINY_RUN_YAML + extra)
    return path


@pytest.fixture(scope="module")
def pipeline_jobs(local_slurm, tmp_path_factory):
    """Both sbatch pipeline jobs, submitted together (they overlap on the node: the dask-mpi job takes
    one overcommitted CPU, the head job one and its two worker jobs one each); each test waits for its own.
    Returns ``{name: (job_id, directory)}``."""
    jobs = {}
    tmp = tmp_path_factory.mktemp("mpi")
    config = _config(tmp / "mpi.yaml", "cluster: {interface: lo, threads_per_worker: 1}\nprogress: {interval_s: 0}\n")
    jobs["mpi"] = (local_slurm.sbatch("--ntasks=4", "--overcommit", f"--chdir={tmp}", f"--output={tmp}/mpi-%j.out",
                                      REPO_ROOT / "jobs" / "ihs-mpi.sbatch", config, "--stages", STORE_STAGES), tmp)
    tmp = tmp_path_factory.mktemp("head")
    workers = tmp / "workers"
    config = _config(tmp / "head.yaml",
                     f"cluster: {{n_workers: 2, interface: lo, slurm: {{cores: 1, memory: 1GiB, walltime: '00:20:00', "
                     f"log_directory: {workers}}}}}\nprogress: {{interval_s: 0}}\n")
    jobs["head"] = (local_slurm.sbatch(f"--chdir={tmp}", f"--output={tmp}/head-%j.out",
                                       REPO_ROOT / "jobs" / "ihs-slurm.sbatch", config, "--stages", STORE_STAGES), tmp)
    return jobs


def test_local_slurm_runs_an_mpi_step_and_accounts_for_the_job(local_slurm, tmp_path):
    """The daemons serve sbatch and srun (PMIx, 3 tasks overcommitted on one CPU); sacct -c records
    the job; a second start.sh leaves the running daemons alone and the node idle."""
    pids = local_slurm.daemon_pids()
    assert set(pids) == {"munged", "slurmctld", "slurmd"}
    local_slurm.start()
    assert local_slurm.daemon_pids() == pids
    assert local_slurm.run("sinfo", "-h", "-N", "-o", "%T").stdout.split() == ["idle"]

    out = tmp_path / "hello-%j.out"
    job = local_slurm.sbatch("--ntasks=3", "--overcommit", f"--output={out}", "--wrap",
                             "echo job=$SLURM_JOB_ID; srun bash -c 'echo rank=$PMIX_RANK'")
    record = local_slurm.wait(job, timeout=60)
    assert (record.state, record.exit_code, record.name) == ("COMPLETED", "0:0", "wrap")
    log = local_slurm.log(tmp_path / f"hello-{job}.out")
    assert f"job={job}" in log
    assert sorted(re.findall(r"rank=(\d+)", log)) == ["0", "1", "2"]


def test_a_running_job_is_seen_in_its_log_and_cancelled(local_slurm, tmp_path):
    """The helpers the interruption tests build on: wait for a line of a running job's log, scancel it."""
    out = tmp_path / "sleeper.out"
    job = local_slurm.sbatch(f"--output={out}", "--wrap", "echo started $SLURM_JOB_ID; sleep 120")
    assert local_slurm.wait_for_log(out, r"^started (\d+)$", timeout=60).group(1) == job
    assert job in local_slurm.queued()
    local_slurm.scancel(job)
    assert local_slurm.wait(job, timeout=60).state.startswith("CANCELLED")


def test_mpi_job_runs_the_pipeline_and_its_stores_equal_the_local_run(local_slurm, pipeline_jobs, tiny_local_run):
    """sbatch jobs/ihs-mpi.sbatch: 4 dask-mpi ranks (scheduler, client, 2 workers) in one allocation."""
    reference, _ = tiny_local_run
    job, tmp_path = pipeline_jobs["mpi"]
    record = local_slurm.wait(job, timeout=600)
    log = local_slurm.log(tmp_path / f"mpi-{job}.out")
    assert (record.state, record.exit_code) == ("COMPLETED", "0:0"), log[-5000:]
    assert_stores_equal(tmp_path / "mpi", reference)
    # the log of a job: its id, the dashboard, whole progress lines (no carriage-return bars)
    assert f"Slurm job {job}" in log and re.search(r"dashboard: http://127\.0\.0\.1:\d+/status", log)
    assert "Dask mpi cluster" in log and "2 workers up" in log
    assert "\r" not in log
    lines = {(m["desc"], m["done"], m["total"]) for m in PROGRESS_LINE.finditer(log)}
    assert ("prep IQR tiles", "0", "4") in lines and ("prep IQR tiles", "4", "4") in lines
    assert ("stage2 PM2.5 tiles", "4", "4") in lines
    assert any(desc.startswith("stage3") and done == total for desc, done, total in lines)


def test_head_job_with_slurm_cluster_runs_the_pipeline_and_its_stores_equal_the_local_run(
        local_slurm, pipeline_jobs, tiny_local_run):
    """sbatch jobs/ihs-slurm.sbatch: a 1-CPU head job whose SLURMCluster submits 2 worker jobs."""
    reference, _ = tiny_local_run
    job, tmp_path = pipeline_jobs["head"]
    workers = tmp_path / "workers"
    record = local_slurm.wait(job, timeout=600)
    log = local_slurm.log(tmp_path / f"head-{job}.out")
    assert (record.state, record.exit_code, record.cpus) == ("COMPLETED", "0:0", 1), log[-5000:]
    assert_stores_equal(tmp_path / "head", reference)
    assert f"Slurm job {job}" in log and re.search(r"dashboard: http://127\.0\.0\.1:\d+/status", log)
    assert "\r" not in log and PROGRESS_LINE.search(log)
    # the workers were two separate 1-CPU jobs, ended once the head closed its cluster
    worker_jobs = {p.stem.rsplit("-", 1)[-1] for p in workers.glob("*.err")}
    assert len(worker_jobs) == 2
    for worker in worker_jobs:
        rec = local_slurm.wait(worker, timeout=60)
        assert (rec.name, rec.cpus) == ("ihs-worker", 1)
        assert rec.start >= record.start and rec.end <= record.end


def test_slurm_cluster_of_two_single_core_jobs_runs_stage2(local_slurm, tiny_local_run, tmp_path, monkeypatch):
    """get_client('slurm') here, adaptive between 2 and 2 jobs of 1 core: each worker job runs 1 Dask
    thread with numba and BLAS capped at 1, and stage 2 on their tiles equals the local run's."""
    from ihs_hpc.cluster import get_client, worker_threads
    from ihs_hpc.config import load_config
    from ihs_hpc.pipeline.run import run_pipeline

    reference, _ = tiny_local_run
    run_dir = tmp_path / "run"
    for store in ("cubes.zarr", "prep.zarr", "stage1.zarr"):
        shutil.copytree(reference / store, run_dir / store)
    config = load_config(_config(tmp_path / "s2.yaml", f"run_dir: {run_dir}\n"))
    for key, value in local_slurm.env.items():
        monkeypatch.setenv(key, value)
    workers = tmp_path / "workers"
    with get_client("slurm", adapt_minimum_jobs=2, adapt_maximum_jobs=2, interface="lo", echo=print,
                    slurm={"cores": 1, "processes": 1, "memory": "1GiB", "walltime": "00:10:00",
                           "log_directory": str(workers)}) as client:
        client.wait_for_workers(2, timeout=120)
        threads = client.run(worker_threads)
        # cluster.distributed, exported by the job script: no stack sampler in the workers
        profiling = client.run(lambda: __import__("dask").config.get("distributed.worker.profile.enabled"))
        run_pipeline(config, client, stages=["stage2"], echo=print)
    assert len(threads) == 2
    assert set(profiling.values()) == {False}
    assert {t["nthreads"] for t in threads.values()} == {1}
    assert {t["numba"] for t in threads.values()} == {1}
    assert {t["blas"] for t in threads.values()} <= {1, None}
    job_ids = {t["slurm_job_id"] for t in threads.values()}
    assert len(job_ids) == 2 and None not in job_ids
    for job in job_ids:
        record = local_slurm.wait(job, timeout=60)
        assert (record.name, record.cpus) == ("ihs-worker", 1)
    assert_stores_equal(run_dir, reference, stores=("stage2.zarr",))
