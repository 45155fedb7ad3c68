"""One function to get a Dask client: LocalCluster (default), dask-jobqueue SLURMCluster, or dask-mpi.

Keyword arguments default to ``None`` and fall back to ``dask.config``: ``ihs.cluster.*`` (the shipped
``ihs.yaml``) and, for a Slurm cluster, ``jobqueue.slurm.*`` (the shipped ``jobqueue.yaml``, also
``slurm/jobqueue.yaml`` in the source tree), the dask-jobqueue convention.

Threads. On every kind, each worker process runs ``threads_per_worker`` tasks at once and each task's
numba and BLAS get ``cores_per_worker // threads_per_worker`` threads (at least one), so Dask threads
× numba/BLAS threads never exceeds the cores a worker has. A LocalCluster worker has
``threads_per_worker`` cores; a SLURMCluster worker has ``cores // processes`` of its job; a dask-mpi
rank has ``SLURM_CPUS_PER_TASK``. numba reads ``NUMBA_NUM_THREADS`` once, at import, so the limits are
environment variables set before the worker processes start: the nanny's ``pre-spawn-environ``
(local), the job script's prologue (slurm), the sbatch script (mpi; checked here, an error if unset).
The same places set glibc's malloc to keep freed memory for the next task (``cluster.reuse_freed_mb``,
:mod:`ihs_hpc.malloc`), and Dask's own settings for the processes started here (``cluster.distributed``,
:func:`distributed_settings`: by default no per-worker stack sampler, slower system sampling).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
from importlib.resources import files
from typing import Iterator

import dask.config
import yaml

from . import config as _config  # noqa: F401  (registers the package defaults)
from .malloc import malloc_environment

log = logging.getLogger(__name__)

JOBQUEUE_DEFAULTS_FILE = files("ihs_hpc") / "jobqueue.yaml"
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_jobqueue_registered = False


def inner_threads(cores_per_worker: int, threads_per_worker: int) -> int:
    """numba/BLAS threads per task so that ``threads_per_worker`` × this ≤ ``cores_per_worker``."""
    return max(1, int(cores_per_worker) // max(1, int(threads_per_worker)))


def thread_environment(n_threads: int) -> dict[str, str]:
    """The environment variables that cap numba's and the BLAS libraries' threads at ``n_threads``."""
    return {name: str(int(n_threads)) for name in THREAD_VARIABLES}


def walltime_seconds(walltime: str) -> int:
    """Seconds in a Slurm time limit: ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``."""
    text = str(walltime).strip()
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not match:
        raise ValueError(f"walltime {walltime!r} is not a Slurm time limit (e.g. '01:00:00' or '1-00:00:00')")
    days, a, b, c = (int(g) if g is not None else None for g in match.groups())
    if days is not None:  # D-HH[:MM[:SS]]
        return days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    if c is not None:  # HH:MM:SS
        return a * 3600 + b * 60 + c
    if b is not None:  # MM:SS
        return a * 60 + b
    return a * 60  # MM


def worker_lifetime(walltime: str) -> tuple[int, int]:
    """``(lifetime, stagger)`` in seconds for ``dask worker --lifetime/--lifetime-stagger``.

    Each worker retires gracefully (hands its data over, finishes nothing half-way) a margin before
    its job's walltime instead of being killed by Slurm: margin = 10 % of the walltime, at least one
    minute and at most 15; the stagger (a quarter of the margin) spreads the workers' ends so they do
    not all leave at once. ``lifetime + stagger < walltime`` always.
    """
    total = walltime_seconds(walltime)
    margin = min(900, max(60, total // 10))
    if total <= margin + 10:
        raise ValueError(f"walltime {walltime!r} is too short for a worker: leave more than {margin + 10} s")
    return total - margin, margin // 4


def _register_jobqueue_defaults() -> None:
    """Put ``jobqueue.yaml`` into dask.config after dask-jobqueue's own defaults (so it wins over them)."""
    global _jobqueue_registered
    if _jobqueue_registered:
        return
    import dask_jobqueue  # noqa: F401  (registers its defaults first)

    with JOBQUEUE_DEFAULTS_FILE.open() as fh:
        dask.config.update_defaults(yaml.safe_load(fh))
    _jobqueue_registered = True


def distributed_settings(settings: dict | None = None) -> dict[str, object]:
    """``ihs.cluster.distributed`` (or ``settings``), a nested mapping of Dask settings, as flat
    ``distributed.<dotted.key>`` keys for :func:`dask.config.set`."""
    settings = dask.config.get("ihs.cluster.distributed", {}) if settings is None else settings
    flat: dict[str, object] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}", inner)
        else:
            flat[prefix] = value

    walk("distributed", settings or {})
    return flat


def dask_environment(settings: dict[str, object]) -> dict[str, str]:
    """Flat Dask settings as ``DASK_*`` environment variables (read by ``dask.config`` at import), for the
    job script of a Slurm worker: ``distributed.worker.profile.enabled`` → ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED``."""
    return {"DASK_" + "__".join(part.upper().replace("-", "_") for part in key.split(".")): str(value)
            for key, value in settings.items()}


def slurm_cluster_options(slurm: dict | None = None, threads_per_worker: int | None = None,
                          distributed: dict | None = None) -> dict:
    """Keyword arguments for ``dask_jobqueue.SLURMCluster``: the given ones (``None`` values dropped)
    over ``jobqueue.slurm``, plus ``--lifetime`` below walltime, and the thread caps, malloc settings and
    Dask settings ``distributed`` (default ``ihs.cluster.distributed``) exported in the job prologue."""
    _register_jobqueue_defaults()
    options = {k: v for k, v in (slurm or {}).items() if v is not None}
    defaults = dask.config.get("jobqueue.slurm")

    def get(key):
        return _option(options, defaults, key)

    cores, processes = int(get("cores")), int(get("processes") or 1)
    nthreads = max(1, cores // processes)
    if threads_per_worker is not None and threads_per_worker != nthreads:
        log.info("slurm workers run cores // processes = %d threads each (threads_per_worker=%s ignored)",
                 nthreads, threads_per_worker)
    extra_args = list(get("worker_extra_args") or [])
    if not any(str(a).startswith("--lifetime") for a in extra_args):
        lifetime, stagger = worker_lifetime(get("walltime"))
        extra_args += ["--lifetime", f"{lifetime}s", "--lifetime-stagger", f"{stagger}s"]
    options["worker_extra_args"] = extra_args
    environ = thread_environment(inner_threads(nthreads, nthreads))
    environ.update(malloc_environment(dask.config.get("ihs.cluster.reuse_freed_mb", 0)))
    environ.update(dask_environment(distributed_settings(distributed)))
    prologue = list(get("job_script_prologue") or [])
    prologue += [f"export {k}={v}" for k, v in environ.items()]
    options["job_script_prologue"] = prologue
    return options


def _option(options: dict, defaults: dict, key: str):
    """``options[key]`` else the dask-jobqueue config value (whose keys are spelled with dashes)."""
    if key in options:
        return options[key]
    return defaults.get(key.replace("_", "-"), defaults.get(key))


def _cores_per_rank() -> int:
    value = os.environ.get("SLURM_CPUS_PER_TASK", "")
    return int(value) if value.isdigit() else 1


def _check_rank_threads(threads_per_worker: int) -> int:
    """In an MPI rank: cap BLAS now (threadpoolctl acts at run time) and refuse a numba thread pool
    larger than the rank's share of cores (numba fixed it at import, from NUMBA_NUM_THREADS)."""
    import numba
    from threadpoolctl import threadpool_limits

    allowed = inner_threads(_cores_per_rank(), threads_per_worker)
    threadpool_limits(allowed)
    if numba.config.NUMBA_NUM_THREADS > allowed:
        raise RuntimeError(
            f"cluster kind 'mpi': NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS} × threads_per_worker="
            f"{threads_per_worker} exceeds the {_cores_per_rank()} CPUs of this rank (SLURM_CPUS_PER_TASK); "
            f"export NUMBA_NUM_THREADS={allowed} before srun (jobs/ihs-mpi.sbatch does)")
    return allowed


def worker_threads(dask_worker=None) -> dict:
    """What one worker process runs with: Dask threads, numba threads, BLAS threads (for checks)."""
    import numba
    from threadpoolctl import threadpool_info

    blas = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return {"nthreads": dask_worker.state.nthreads if dask_worker is not None else None,
            "numba": numba.config.NUMBA_NUM_THREADS, "blas": max(blas) if blas else None,
            "slurm_job_id": os.environ.get("SLURM_JOB_ID")}


def _describe_job() -> str:
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return ""
    step = os.environ.get("SLURM_STEP_ID")
    node = os.environ.get("SLURMD_NODENAME", "")
    return f"; Slurm job {job}{'.' + step if step else ''}{' on ' + node if node else ''}"


@contextlib.contextmanager
def get_client(kind: str | None = None, *, n_workers: int | None = None, threads_per_worker: int | None = None,
               memory_limit=None, dashboard_address: str | None = None, interface: str | None = None,
               slurm: dict | None = None, adapt_minimum_jobs: int | None = None, adapt_maximum_jobs: int | None = None,
               distributed: dict | None = None, echo=print) -> Iterator[object | None]:
    """Start (and afterwards close) a Dask client of the requested kind.

    Parameters
    ----------
    kind : {"local", "slurm", "mpi", "none"}, optional
        ``local``: a ``distributed.LocalCluster`` of ``n_workers`` worker processes; ``slurm``: a
        ``dask_jobqueue.SLURMCluster`` of ``n_workers`` jobs, or adaptive between
        ``adapt_minimum_jobs`` and ``adapt_maximum_jobs`` when the latter is set; ``mpi``:
        ``dask_mpi.initialize`` inside ``srun``/``mpirun`` (rank 0 the scheduler, rank 1 goes on as this
        client, the rest are workers; needs at least 3 ranks); ``none``: no client, stages run
        synchronously in this process (yields ``None``).
    interface : str, optional
        Network interface (``ib0``, ``lo``, ...) the scheduler and workers of kinds ``slurm`` and
        ``mpi`` listen on; for ``slurm``, ``slurm["interface"]`` wins over it.
    distributed : dict, optional
        Dask settings (nested, under ``distributed.``) for the scheduler and workers started here; default
        ``ihs.cluster.distributed`` (:func:`distributed_settings`).
    slurm : dict, optional
        Keyword arguments for ``SLURMCluster`` (cores, memory, processes, walltime, queue, account,
        interface, ...); unset ones come from ``jobqueue.slurm`` (see :func:`slurm_cluster_options`).
    echo : callable
        Where the cluster, its dashboard address and the Slurm job id are printed.

    Notes
    -----
    Upstream limits designed around: under ``adapt`` a job ended by ``--lifetime`` is not always
    replaced (dask-jobqueue #611, #691), and in dask-mpi one dead rank ends the cluster (dask-mpi #31);
    a run is made whole again by rerunning it, which skips the tiles its stores record as finished.
    """
    cfg = dask.config.get("ihs.cluster")
    kind = kind or cfg["kind"]
    n_workers = n_workers if n_workers is not None else cfg["n_workers"]
    threads_per_worker = threads_per_worker if threads_per_worker is not None else cfg["threads_per_worker"]
    memory_limit = memory_limit if memory_limit is not None else cfg["memory_limit"]
    dashboard_address = dashboard_address if dashboard_address is not None else cfg["dashboard_address"]
    interface = interface if interface is not None else cfg.get("interface")
    slurm = slurm if slurm is not None else cfg.get("slurm", {})
    adapt_minimum_jobs = adapt_minimum_jobs if adapt_minimum_jobs is not None else cfg.get("adapt_minimum_jobs")
    adapt_maximum_jobs = adapt_maximum_jobs if adapt_maximum_jobs is not None else cfg.get("adapt_maximum_jobs")
    distributed = distributed if distributed is not None else cfg.get("distributed")

    if kind == "none":
        yield None
        return
    from distributed import Client

    # Dask settings of the scheduler and workers started here (cluster.distributed): a nanny hands the
    # config current when it starts to its worker; the scheduler reads it when it starts
    settings = distributed_settings(distributed)

    if kind == "local":
        from distributed import LocalCluster

        # A worker has threads_per_worker cores: its tasks' numba and BLAS get the rest of them (one
        # thread each when every core runs a task). Set before the worker processes spawn
        # (pre-spawn-environ): numba reads NUMBA_NUM_THREADS once, at import.
        environ = thread_environment(inner_threads(threads_per_worker, threads_per_worker))
        # and keep freed memory for the next task instead of page-faulting it in again (ihs_hpc/malloc.py);
        # this also replaces Dask's own MALLOC_TRIM_THRESHOLD_=65536
        environ.update(malloc_environment(cfg.get("reuse_freed_mb", 0)))
        # The nanny writes pre-spawn-environ into *this* process's environment too; numba here has
        # already read its thread count, and a later compile would see the change and fail, so the
        # environment is restored once the workers have started.
        saved = {key: os.environ.get(key) for key in environ}
        try:
            with dask.config.set({**settings,
                                  **{f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in environ.items()}}):
                cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                                       memory_limit=memory_limit, dashboard_address=dashboard_address)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        describe = f"{n_workers} workers × {threads_per_worker} threads"
    elif kind == "slurm":
        try:
            from dask_jobqueue import SLURMCluster
        except ImportError as err:  # pragma: no cover - optional dependency
            raise RuntimeError("cluster kind 'slurm' needs dask-jobqueue: pip install 'ihs_hpc[slurm]'") from err
        options = slurm_cluster_options(slurm, threads_per_worker, distributed)
        if interface is not None:
            options.setdefault("interface", interface)
        options.setdefault("scheduler_options", {}).setdefault("dashboard_address", dashboard_address)
        with dask.config.set(settings):  # the scheduler, here (the workers: the job script's environment)
            cluster = SLURMCluster(**options)
        if adapt_maximum_jobs:
            cluster.adapt(minimum_jobs=adapt_minimum_jobs or 0, maximum_jobs=adapt_maximum_jobs)
            describe = f"adaptive {adapt_minimum_jobs or 0}..{adapt_maximum_jobs} jobs"
        else:
            cluster.scale(jobs=n_workers)
            describe = f"{n_workers} jobs"
        jobqueue = dask.config.get("jobqueue.slurm")
        describe += "".join(f", {key} {_option(options, jobqueue, key)}"
                            for key in ("cores", "processes", "memory", "walltime", "queue", "account")
                            if _option(options, jobqueue, key) is not None)
    elif kind == "mpi":
        try:
            import dask_mpi
        except ImportError as err:  # pragma: no cover - optional dependency
            raise RuntimeError("cluster kind 'mpi' needs dask-mpi and mpi4py: pip install 'ihs_hpc[mpi]'") from err
        inner = _check_rank_threads(threads_per_worker)
        dask.config.set(settings)  # this rank's scheduler, worker or client: the process ends with the run
        # rank 0 serves the scheduler and rank ≥ 2 a worker until this client (rank 1) ends; they
        # leave the process from inside initialize (sys.exit)
        dask_mpi.initialize(nthreads=threads_per_worker, memory_limit=memory_limit,
                            dashboard_address=dashboard_address, interface=interface)
        from mpi4py import MPI

        cluster = None
        mpi_workers = MPI.COMM_WORLD.Get_size() - 2
        describe = f"{threads_per_worker} threads per rank, numba/BLAS {inner}"
    else:
        raise ValueError(f"unknown cluster kind {kind!r}; choose local, slurm, mpi or none")

    client = Client(cluster) if cluster is not None else Client()
    try:
        if kind == "mpi":  # every rank was started with this one: wait until the workers have registered
            client.wait_for_workers(mpi_workers, timeout=120)
        echo(f"Dask {kind} cluster: {describe}; {len(client.scheduler_info().get('workers', {}))} workers up; "
             f"dashboard: {client.dashboard_link}{_describe_job()}")
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
