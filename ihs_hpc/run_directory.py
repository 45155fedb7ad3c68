"""One run of the pipeline as a Python object: :class:`Run` (a run YAML, or the run directory it made).

::

    import ihs_hpc
    run = ihs_hpc.Run("my-run.yaml")      # or Run("my-run/"): the run directory's config.yaml
    run.run()                             # every stage (ihs run my-run.yaml)
    run.stage2()                          # one stage (ihs stage2 my-run.yaml)
    run.status()                          # each stage's state (ihs status)
    ds = run.open("stage2")               # the stage's store as an xarray Dataset (lazy, dask)
    run.export("my-run-export/")          # GeoTIFF, NetCDF-CF, GeoPackage, CSV (ihs export)

The ``ihs`` command is a thin layer over this class: it parses arguments, builds a :class:`Run` and
turns its exceptions (:mod:`ihs_hpc.errors`) into messages and exit codes. The stages are those of
seed 000 (DOI 10.3390/atmos15010131): stage 1 region growing (section 2.3.2), stage 2 STL and
regression on meteorology (eqs. 1–4), stage 3 background fill and eq. 10.
"""
from __future__ import annotations

import contextlib

import os
from pathlib import Path
from typing import Callable, Iterable, Mapping

__all__ = ["Run"]


class Run:
    """A run of the pipeline: its validated configuration and its run directory.

    Parameters
    ----------
    source : str or path-like
        A run YAML (any key of the package defaults, ``ihs_hpc/ihs.yaml``), or a run directory
        holding the ``config.yaml`` an earlier run wrote.
    cluster : {"local", "slurm", "mpi", "none"}, optional
        Overrides ``cluster.kind`` (``"none"``: stages run in this process, no Dask workers).
    workers : int, optional
        Overrides ``cluster.n_workers``.
    overrides : mapping, optional
        Further settings over the YAML (nested, as in the YAML), validated like it.
    echo : callable, optional
        Where progress messages go (default :func:`print`).

    Attributes
    ----------
    config : ihs_hpc.config.RunConfig
        The merged, validated settings (``run.config["stage2.stl.period"]``).
    run_dir : pathlib.Path
        Where the stores, tables and report are written.

    Raises
    ------
    ihs_hpc.errors.ConfigError
        A missing or invalid YAML (unknown key, wrong type), or a directory without ``config.yaml``.

    Examples
    --------
    >>> run = Run("my-run.yaml", cluster="none")                    # doctest: +SKIP
    >>> run.run(stages=["input", "prep", "stage1", "stage2"])      # doctest: +SKIP
    >>> run.open("stage2").pm25_bl_tem                              # doctest: +SKIP
    """

    def __init__(self, source, *, cluster: str | None = None, workers: int | None = None,
                 overrides: Mapping | None = None, echo: Callable[[str], None] | None = None):
        from .config import load_config
        from .errors import ConfigError

        settings = dict(overrides or {})
        cluster_keys = {**({"kind": cluster} if cluster else {}), **({"n_workers": workers} if workers else {})}
        if cluster_keys:
            settings["cluster"] = {**settings.get("cluster", {}), **cluster_keys}
        path = Path(source)
        self.echo = echo or print
        if path.is_dir():
            if not (path / "config.yaml").is_file():
                raise ConfigError(f"{path}: no config.yaml (not a run directory, or no run got past its checks yet)")
            self.config = load_config(path / "config.yaml", overrides=settings or None)
            self.config.run_dir = path.resolve()
        else:
            self.config = load_config(path, overrides=settings or None)

    @property
    def run_dir(self) -> Path:
        """The run directory (``run_dir`` of the YAML, else beside it, named after it)."""
        return self.config.run_dir

    def __repr__(self) -> str:
        return f"Run({self.config.source!r}, run_dir={str(self.run_dir)!r})"

    # ------------------------------------------------------------------ running
    def _cluster(self, echo):
        """A zero-argument factory of the configured Dask client (entered only when a stage needs workers)."""
        from .cluster import get_client

        config = self.config

        def start():
            return get_client(config["cluster.kind"], n_workers=config["cluster.n_workers"],
                              threads_per_worker=config["cluster.threads_per_worker"],
                              memory_limit=config["cluster.memory_limit"],
                              dashboard_address=config["cluster.dashboard_address"],
                              interface=config["cluster.interface"], slurm=config["cluster.slurm"],
                              adapt_minimum_jobs=config["cluster.adapt_minimum_jobs"],
                              adapt_maximum_jobs=config["cluster.adapt_maximum_jobs"],
                              distributed=config["cluster.distributed"], echo=echo)

        return start

    def run(self, stages: Iterable[str] | None = None, *, rerun_changed: bool = False, client=None,
            echo: Callable[[str], None] | None = None) -> dict:
        """Run the selected stages (default: all) over the run directory; what ``ihs run`` does.

        Finished outputs made from the same settings are kept, unfinished ones resumed; outputs made
        from other settings stop the run before anything is written, unless ``rerun_changed``.

        Parameters
        ----------
        stages : iterable of str, optional
            Stage names in any order (``input``, ``prep``, ``stage1``, ``stage2``, ``stage3``,
            ``stats``, ``allocate``, ``report``); they run in pipeline order. Default: all.
        rerun_changed : bool, default False
            Recompute outputs made from other settings or inputs, and everything downstream.
        client : distributed.Client, optional
            Run the tile tasks on this client instead of starting the configured cluster.
        echo : callable, optional
            Progress messages (default: the Run's ``echo``).

        Returns
        -------
        dict
            The run summary (also merged into ``RUN/run.json``): ``stages`` maps each stage to its
            record (status, seconds, headline figures), ``ran`` lists the stages of this call.

        Raises
        ------
        ihs_hpc.errors.ConfigError
            An unknown stage, or outputs made from other settings (``FingerprintMismatch``, exit 2).
        ihs_hpc.errors.IncompleteRunError
            Tiles that failed twice (exit 3); the rest is kept and a rerun redoes only them.
        ihs_hpc.errors.RunLockedError
            Another process holds the run directory's lock (exit 4).
        """
        import dask.config

        from .pipeline.run import run_pipeline

        echo = echo or self.echo
        selected = list(stages) if stages is not None else None
        with dask.config.set({"ihs.progress": self.config["progress"]}), contextlib.ExitStack() as stack:
            if client is None and self.config["cluster.kind"] == "mpi":
                # dask-mpi: inside get_client the ranks other than 1 become the scheduler and the workers
                # and never return; only the client rank goes on to take the run directory's lock
                client = stack.enter_context(self._cluster(echo)())
            return run_pipeline(self.config, client, stages=selected, echo=echo, rerun_changed=rerun_changed,
                                cluster=None if client is not None else self._cluster(echo))

    # One method per stage: ``run.stage2()`` is ``run.run(["stage2"])`` (keywords and the summary
    # returned as :meth:`run`); the CLI's stage commands (``ihs stage2 my.yaml``) call the same.
    def input(self, **kwargs) -> dict:
        """Make ``RUN/cubes.zarr`` from the configured input (``ihs ingest``); see :meth:`run`."""
        return self.run(["input"], **kwargs)

    def prep(self, **kwargs) -> dict:
        """IQR outlier removal and kriging gap fill (seed 000 §2.3.1, ``RUN/prep.zarr``); see :meth:`run`."""
        return self.run(["prep"], **kwargs)

    def stage1(self, **kwargs) -> dict:
        """IHS radiation areas by region growing (seed 000 §2.3.2, ``RUN/stage1.zarr``); see :meth:`run`."""
        return self.run(["stage1"], **kwargs)

    def stage2(self, **kwargs) -> dict:
        """STL baselines, regression on meteorology (seed 000 eqs. 1–4, ``RUN/stage2.zarr``); see :meth:`run`."""
        return self.run(["stage2"], **kwargs)

    def stage3(self, **kwargs) -> dict:
        """Background fill of IHS areas and IHS PM2.5 (seed 000 eq. 10, ``RUN/stage3.zarr``); see :meth:`run`."""
        return self.run(["stage3"], **kwargs)

    def stats(self, **kwargs) -> dict:
        """Statistics tables (seed 000 §2.3.5, ``RUN/stats/``); see :meth:`run`."""
        return self.run(["stats"], **kwargs)

    def allocate(self, **kwargs) -> dict:
        """City reduction targets by minimised Gini (seed 003, ``RUN/allocation/``); see :meth:`run`."""
        return self.run(["allocate"], **kwargs)

    def report(self, **kwargs) -> dict:
        """Figures and the HTML report (``RUN/report/``); see :meth:`run`."""
        return self.run(["report"], **kwargs)

    # ------------------------------------------------------------------ reading
    def status(self, *, verify: bool = False) -> list:
        """Each stage output's state, whether it matches the configuration, its tiles done (``ihs status``).

        Parameters
        ----------
        verify : bool, default False
            Decode every chunk of every store (``ihs check --verify``); damaged stores are marked so
            a rerun recomputes only the affected tiles.

        Returns
        -------
        list of ihs_hpc.pipeline.check.StoreReport
            One per stage output: ``stage``, ``path``, ``state`` (absent, complete, unfinished,
            damaged), ``matches``, ``tiles_done``, ``tiles_total``, ``bad_chunks``, ``note``.
        """
        from .pipeline.check import check_run

        return check_run(self.config, verify=verify)

    def lock_holder(self) -> dict | None:
        """Who holds the run directory's lock.

        Returns
        -------
        dict or None
            PID, host and start time of the holder (:class:`ihs_hpc.pipeline.lock.RunLock`); None when free.
        """
        from .pipeline.lock import RunLock

        return RunLock(self.run_dir).holder()

    def store_path(self, stage: str) -> Path:
        """Path of the Zarr store a stage writes.

        Parameters
        ----------
        stage : str
            ``input`` (``cubes.zarr``), ``prep``, ``stage1``, ``stage2`` or ``stage3``.

        Returns
        -------
        pathlib.Path

        Raises
        ------
        ihs_hpc.errors.ConfigError
            ``stage`` writes no Zarr store.
        """
        from .errors import ConfigError
        from .pipeline.run import STORE_NAMES, store_path

        if stage not in STORE_NAMES:
            raise ConfigError(f"{stage!r} writes no Zarr store; stores are written by {sorted(STORE_NAMES)}")
        return store_path(self.config, stage)

    def open(self, stage: str = "stage2", *, chunks="auto"):
        """The store a stage wrote, as a lazy :class:`xarray.Dataset` (CF attributes, dask arrays).

        ``stage2`` also has ``pm25_bl_mlr`` (eq. 3 evaluated), which the store does not keep: derived on
        read from the coefficient maps and met baselines, one dask task per tile
        (:func:`ihs_hpc.pipeline.stage2.open_stage2`).

        Parameters
        ----------
        stage : str, default "stage2"
            ``input`` (``cubes.zarr``), ``prep``, ``stage1``, ``stage2`` or ``stage3``.
        chunks : optional
            As :func:`xarray.open_zarr` (default: the store's own chunks, one tile each).

        Returns
        -------
        xarray.Dataset

        Raises
        ------
        ihs_hpc.errors.ConfigError
            ``stage`` writes no store.
        ihs_hpc.errors.StoreError
            The store is missing or its writer did not finish.
        """
        from .io.cube import open_store

        if stage == "stage2":  # with eq. 3 evaluated, derived on read (not stored)
            from .pipeline.stage2 import open_stage2

            return open_stage2(self.store_path(stage), chunks=chunks)
        return open_store(self.store_path(stage), chunks=chunks)

    def export(self, out, **kwargs) -> dict:
        """Export the finished run's results (``ihs export``): GeoTIFF, NetCDF-CF, GeoPackage, CSV/Excel.

        Parameters
        ----------
        out : path-like
            Output folder (not the run directory).
        **kwargs
            ``netcdf``, ``excel``, ``echo`` of :func:`ihs_hpc.export.run.export_run`.

        Returns
        -------
        dict
            The manifest written to ``OUT/export.json``.
        """
        from .export.run import export_run

        kwargs.setdefault("echo", self.echo)
        return export_run(self.run_dir, os.fspath(out), **kwargs)
