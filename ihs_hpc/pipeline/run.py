"""The whole pipeline over one run directory: input → prep → stage 1 → stage 2 → stage 3 → stats → report.

Run directory layout::

    RUN/config.yaml      the merged, validated configuration of the last run that got past its checks
    RUN/cubes.zarr       inputs on the analysis grid (synthetic scene, ingested files, or a given store)
    RUN/prep.zarr        PM2.5 after outlier removal (prep.outliers) and gap filling
    RUN/stage1.zarr      IHS radiation areas (region growing)
    RUN/stage2.zarr      STL baselines, regression on meteorology, pm25_bl_tem
    RUN/stage3.zarr      pm25_bl_oem and pm25_ihs
    RUN/stats/           tables (CSV, Markdown) and JSON
    RUN/allocation/      city reduction targets (when allocation.index is set)
    RUN/report/          PNG figures and index.html
    RUN/run.json         each stage's latest record: what ran, how long, the headline numbers
    RUN/.ihs-lock/       present while an ``ihs`` process works on the directory

Every output records its fingerprint (:mod:`ihs_hpc.pipeline.provenance`); the plan
(:mod:`ihs_hpc.pipeline.plan`) keeps or resumes outputs whose fingerprint matches the configuration and
refuses, before writing anything, to mix in outputs made otherwise. Every stage skips the tiles its
store records as finished, so a rerun after a crash resumes.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from importlib import import_module
from pathlib import Path
from typing import Callable

from ..config import RunConfig
from .stages import STAGE_NAMES, STAGES, Stage  # noqa: F401  (re-exported)

STORE_NAMES = {s.name: s.output for s in STAGES if s.output and s.output.endswith(".zarr")}


def needs_cluster(stages) -> bool:
    """Whether any of ``stages`` (default: all) uses the Dask client."""
    selected = set(stages) if stages else set(STAGE_NAMES)
    return any(s.needs_cluster for s in STAGES if s.name in selected)


def store_path(config: RunConfig, stage: str) -> Path:
    """Path of ``stage``'s output in the run directory."""
    return config.run_dir / STORE_NAMES[stage]


def _resolve(entry: str) -> Callable:
    module, func = entry.split(":")
    return getattr(import_module(module), func)


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    os.replace(tmp, path)


def run_pipeline(config: RunConfig, client=None, *, stages=None, echo=print, rerun_changed: bool = False,
                 cluster: Callable | None = None, lock: bool = True) -> dict:
    """Run the selected stages (default: all) in order; merge their records into ``run.json``.

    Parameters
    ----------
    config : RunConfig
    client : distributed.Client, optional
        Where tile tasks run; None runs them in this process (unless ``cluster`` is given).
    stages : sequence of str, optional
        Stage names (default: all).
    echo : callable
        Progress messages.
    rerun_changed : bool
        Recompute outputs made from other settings or inputs, and everything downstream of them,
        instead of refusing (:class:`~ihs_hpc.errors.FingerprintMismatch`).
    cluster : callable, optional
        A zero-argument function returning a context manager that yields a client; entered only when
        some stage needing workers has work to do (after the lock is held and the plan checked).
    lock : bool
        Hold the run directory's lock (:class:`~ihs_hpc.pipeline.lock.RunLock`) while running.

    Returns the summary (also merged into ``RUN/run.json``).
    """
    from .lock import RunLock
    from .plan import plan_run, prepare

    selected = tuple(stages) if stages else STAGE_NAMES
    unknown = [s for s in selected if s not in STAGE_NAMES]
    if unknown:
        from ..errors import ConfigError

        raise ConfigError(f"unknown stage(s) {unknown}; stages are {list(STAGE_NAMES)}")
    config.run_dir.mkdir(parents=True, exist_ok=True)
    from ..malloc import reuse_freed_memory

    reuse_freed_memory(config["cluster.reuse_freed_mb"])  # stages that run here reuse freed memory too
    with (RunLock(config.run_dir, echo=echo) if lock else contextlib.nullcontext()):
        plan = plan_run(config, selected, rerun_changed=rerun_changed)
        for note in plan.notes:
            echo(f"  note: {note}")
        (config.run_dir / "config.yaml").write_text(config.to_yaml())
        run_json = config.run_dir / "run.json"
        previous = json.loads(run_json.read_text()) if run_json.is_file() else {}
        summary = {"run_dir": str(config.run_dir), "config": config.source,
                   "stages": dict(previous.get("stages", {}))}
        names = {s.name: s for s in STAGES}
        busy = [step for step in plan.steps if step.action not in ("keep",) and names[step.stage].needs_cluster]
        with contextlib.ExitStack() as stack:
            if client is None and cluster is not None and busy:
                client = stack.enter_context(cluster())
            for step in plan.steps:
                stage = names[step.stage]
                if step.action == "keep":
                    prepare(step)
                    echo(f"[{stage.name}] {step.output} is complete and matches this configuration — kept")
                    record = dict(summary["stages"].get(stage.name) or {"status": "done"})
                    record["kept"] = True
                    summary["stages"][stage.name] = record
                    continue
                prepare(step)
                verb = {"resume": "resuming", "rebuild": "recomputing"}.get(step.action, "")
                echo(f"[{stage.name}] {stage.title} {('(' + verb + ') ') if verb else ''}…")
                start = time.perf_counter()
                result = _resolve(stage.entry)(config, client, echo) or {}
                elapsed = time.perf_counter() - start
                summary["stages"][stage.name] = {"status": "done", "seconds": round(elapsed, 2),
                                                 "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **result}
                _write_json(run_json, summary)
                echo(f"[{stage.name}] done in {elapsed:.1f} s")
        _write_json(run_json, summary)
    summary["ran"] = [s.stage for s in plan.steps]
    return summary
