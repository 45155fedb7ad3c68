"""ihs_hpc.cluster without a Slurm: thread caps of LocalCluster workers, the SLURMCluster job script that
dask-jobqueue writes from our options, the MPI rank's refusal of an oversubscribed numba, and the
progress lines of a job log."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest

from ihs_hpc.cluster import get_client, slurm_cluster_options, walltime_seconds, worker_lifetime, worker_threads
from ihs_hpc.progress import LineProgress, progress


@pytest.mark.parametrize("text, seconds", [("30", 1800), ("05:30", 330), ("01:00:00", 3600), ("2-0", 172800),
                                           ("1-02:03", 93780), ("1-02:03:04", 93784), ("00:20:00", 1200)])
def test_walltime_seconds_reads_slurms_time_formats(text, seconds):
    assert walltime_seconds(text) == seconds


def test_walltime_seconds_rejects_garbage():
    with pytest.raises(ValueError, match="'1h'"):
        walltime_seconds("1h")


def test_slurm_job_script_retires_workers_before_walltime_and_caps_threads():
    """The script dask-jobqueue writes: --lifetime + --lifetime-stagger end before the -t limit, the
    thread variables are exported before the worker starts, and the shipped jobqueue.yaml applies."""
    from dask_jobqueue import SLURMCluster

    for walltime in ("00:05:00", "00:20:00", "01:00:00", "1-00:00:00"):
        cluster = SLURMCluster(**slurm_cluster_options({"walltime": walltime, "queue": "debug", "account": "proj"}))
        try:
            script = cluster.job_script()
        finally:
            cluster.close()
        limit = re.search(r"#SBATCH -t (\S+)", script).group(1)
        lifetime = int(re.search(r"--lifetime (\d+)s", script).group(1))
        stagger = int(re.search(r"--lifetime-stagger (\d+)s", script).group(1))
        assert 0 < stagger and lifetime + stagger < walltime_seconds(limit) == walltime_seconds(walltime)
        assert (lifetime, stagger) == worker_lifetime(walltime)
        for line in ("#SBATCH -p debug", "#SBATCH -A proj", "#SBATCH -J ihs-worker", "#SBATCH --cpus-per-task=1",
                     "--nthreads 1", "export NUMBA_NUM_THREADS=1", "export OPENBLAS_NUM_THREADS=1"):
            assert line in script, (line, script)
        assert script.index("export NUMBA_NUM_THREADS") < script.index("dask_worker")


def test_explicit_lifetime_is_kept():
    options = slurm_cluster_options({"walltime": "01:00:00", "worker_extra_args": ["--lifetime", "10m"]})
    assert options["worker_extra_args"] == ["--lifetime", "10m"]


def test_too_short_walltime_is_an_error():
    with pytest.raises(ValueError, match="too short"):
        worker_lifetime("00:01:00")


@pytest.mark.slow
def test_local_workers_run_numba_and_blas_within_their_cores():
    """2 Dask threads per worker: each task's numba and BLAS get 1 thread (2 × 1 ≤ 2 cores)."""
    with get_client("local", n_workers=1, threads_per_worker=2, echo=lambda *_: None) as client:
        info = list(client.run(worker_threads).values())
    assert len(info) == 1
    assert info[0]["nthreads"] == 2 and info[0]["numba"] == 1 and info[0]["blas"] in (1, None)


def test_mpi_rank_refuses_more_numba_threads_than_its_cores():
    """An MPI rank cannot change numba's pool after import: a too large NUMBA_NUM_THREADS is an error
    that says what to export, raised before MPI starts."""
    env = dict(os.environ, NUMBA_NUM_THREADS="2", SLURM_CPUS_PER_TASK="1")
    code = "from ihs_hpc.cluster import get_client\nwith get_client('mpi', threads_per_worker=1): pass\n"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "NUMBA_NUM_THREADS=2" in result.stderr and "export NUMBA_NUM_THREADS=1" in result.stderr


def test_line_progress_prints_one_line_per_interval_with_rate_and_eta():
    now = [100.0]
    out = io.StringIO()
    bar = LineProgress(10, "stage2 PM2.5 tiles", "tile", interval=30, stream=out, clock=lambda: now[0])
    for step in range(10):
        now[0] += 10.0  # one tile every 10 s
        bar.update(1)
    bar.close()
    lines = out.getvalue().splitlines()
    # the first line, then at 30, 60, 90 s (3, 6, 9 tiles), then the last (10 tiles): no duplicate at close
    assert [line.split(": ")[1].split(" ")[0] for line in lines] == ["0/10", "3/10", "6/10", "9/10", "10/10"]
    assert lines[0] == "stage2 PM2.5 tiles: 0/10 tile (0 %), ? tile/s, elapsed 0:00:00, ETA ?"
    assert lines[2] == "stage2 PM2.5 tiles: 6/10 tile (60 %), 0.1 tile/s, elapsed 0:01:00, ETA 0:00:40"
    assert lines[-1] == "stage2 PM2.5 tiles: 10/10 tile (100 %), 0.1 tile/s, elapsed 0:01:40, ETA 0:00:00"
    assert "\r" not in out.getvalue()


def test_progress_is_lines_in_a_log_a_bar_on_a_terminal_and_nothing_when_disabled():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    log = io.StringIO()
    assert isinstance(progress(3, "x", stream=log, interval=0), LineProgress)
    terminal = Terminal()
    bar = progress(3, "x", stream=terminal)
    bar.update(3)
    bar.close()
    assert "\r" in terminal.getvalue() and "3/3" in terminal.getvalue()
    silent = progress(3, "x", disable=True, stream=log)
    silent.update(3)
    silent.close()
    assert log.getvalue() == "x: 0/3 tile (0 %), ? tile/s, elapsed 0:00:00, ETA ?\n"


def test_dask_settings_reach_the_worker_job_script_as_dask_reads_them():
    """cluster.distributed flattened to distributed.* keys, and exported in the Slurm job script under the
    names dask.config itself reads back into the same values (dask.config.collect_env)."""
    import dask.config

    from ihs_hpc.cluster import dask_environment, distributed_settings

    nested = {"worker": {"profile": {"enabled": False}}, "admin": {"system-monitor": {"interval": "2s"},
                                                                     "tick": {"interval": "200ms"}}}
    flat = distributed_settings(nested)
    assert flat == {"distributed.worker.profile.enabled": False, "distributed.admin.system-monitor.interval": "2s",
                    "distributed.admin.tick.interval": "200ms"}
    assert distributed_settings({}) == {}
    read_back = dask.config.collect_env(dask_environment(flat))
    assert read_back == {"distributed": {"worker": {"profile": {"enabled": False}},
                                         "admin": {"system_monitor": {"interval": "2s"}, "tick": {"interval": "200ms"}}}}
    # the shipped defaults, in the script dask-jobqueue writes
    from dask_jobqueue import SLURMCluster

    cluster = SLURMCluster(**slurm_cluster_options({"walltime": "00:20:00"}))
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "export DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False" in script, script
    assert script.index("DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED") < script.index("dask_worker")


def _worker_dask_settings():
    import dask.config

    return (dask.config.get("distributed.worker.profile.enabled"),
            dask.config.get("distributed.admin.system-monitor.interval"))


@pytest.mark.slow
def test_local_workers_run_with_the_configured_dask_settings():
    """The shipped cluster.distributed reaches LocalCluster workers (no stack sampler); given settings win."""
    with get_client("local", n_workers=1, echo=lambda *_: None) as client:
        assert list(client.run(_worker_dask_settings).values()) == [(False, "2s")]
    with get_client("local", n_workers=1, echo=lambda *_: None,
                    distributed={"worker": {"profile": {"enabled": True}}}) as client:
        assert list(client.run(_worker_dask_settings).values())[0][0] is True
