"""One function to get a Dask client: LocalCluster (default), dask-jobqueue SLURMCluster, or dask-mpi.

Keyword arguments default to ``None`` and fall back to ``dask.config`` (``ihs.cluster.*``), the
dask-jobqueue convention.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

import dask.config

from . import config as _config  # noqa: F401  (registers the package defaults)

log = logging.getLogger(__name__)


@contextlib.contextmanager
def get_client(kind: str | None = None, *, n_workers: int | None = None, threads_per_worker: int | None = None,
               memory_limit=None, dashboard_address: str | None = None, slurm: dict | None = None,
               echo=print) -> Iterator[object | None]:
    """Start (and afterwards close) a Dask client of the requested kind.

    Parameters
    ----------
    kind : {"local", "slurm", "mpi", "none"}, optional
        ``local``: a ``distributed.LocalCluster`` of worker processes; ``slurm``: a
        ``dask_jobqueue.SLURMCluster`` scaled to ``n_workers`` jobs; ``mpi``: ``dask_mpi.initialize``
        inside an ``mpirun`` (rank 0 scheduler, rank 1 client, the rest workers); ``none``: no client,
        stages run synchronously in this process (yields ``None``).
    echo : callable
        Where the dashboard address is printed.
    """
    cfg = dask.config.get("ihs.cluster")
    kind = kind or cfg["kind"]
    n_workers = n_workers if n_workers is not None else cfg["n_workers"]
    threads_per_worker = threads_per_worker if threads_per_worker is not None else cfg["threads_per_worker"]
    memory_limit = memory_limit if memory_limit is not None else cfg["memory_limit"]
    dashboard_address = dashboard_address if dashboard_address is not None else cfg["dashboard_address"]
    slurm = slurm if slurm is not None else cfg.get("slurm", {})

    if kind == "none":
        yield None
        return
    from distributed import Client

    if kind == "local":
        from distributed import LocalCluster

        # the parallelism is the workers': each worker's numba and BLAS get its own threads only, so
        # n_workers × threads_per_worker never oversubscribes the cores. Set before the worker
        # processes spawn (pre-spawn-environ): numba reads NUMBA_NUM_THREADS once, at import.
        threads = str(threads_per_worker)
        environ = {"NUMBA_NUM_THREADS": threads, "OMP_NUM_THREADS": threads,
                   "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        # The nanny writes pre-spawn-environ into *this* process's environment too; numba here has
        # already read its thread count, and a later compile would see the change and fail, so the
        # environment is restored once the workers have started.
        saved = {key: os.environ.get(key) for key in environ}
        try:
            with dask.config.set({f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in environ.items()}):
                cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                                       memory_limit=memory_limit, dashboard_address=dashboard_address)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    elif kind == "slurm":
        try:
            from dask_jobqueue import SLURMCluster
        except ImportError as err:  # pragma: no cover - optional dependency
            raise RuntimeError("cluster kind 'slurm' needs dask-jobqueue: pip install 'ihs_hpc[slurm]'") from err
        cluster = SLURMCluster(**slurm)
        cluster.scale(jobs=n_workers)
    elif kind == "mpi":
        try:
            import dask_mpi
        except ImportError as err:  # pragma: no cover - optional dependency
            raise RuntimeError("cluster kind 'mpi' needs dask-mpi and mpi4py: pip install 'ihs_hpc[mpi]'") from err
        dask_mpi.initialize(nthreads=threads_per_worker, memory_limit=memory_limit, dashboard_address=dashboard_address)
        cluster = None
    else:
        raise ValueError(f"unknown cluster kind {kind!r}; choose local, slurm, mpi or none")

    client = Client(cluster) if cluster is not None else Client()
    try:
        echo(f"Dask {kind} cluster: {len(client.scheduler_info().get('workers', {}))} workers; "
             f"dashboard: {client.dashboard_link}")
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
