"""The whole pipeline over one run directory: input → prep → stage 1 → stage 2 → stage 3 → stats → report.

Run directory layout::

    RUN/config.yaml      the merged, validated configuration of the last run
    RUN/cubes.zarr       inputs on the analysis grid (synthetic scene, ingested files, or a given store)
    RUN/prep.zarr        PM2.5 after IQR outlier removal and kriging gap fill
    RUN/stage1.zarr      IHS radiation areas (region growing)
    RUN/stage2.zarr      STL baselines, regression on meteorology, pm25_bl_tem
    RUN/stage3.zarr      pm25_bl_oem and pm25_ihs
    RUN/stats/           tables (CSV, Markdown) and JSON
    RUN/allocation/      city reduction targets (when allocation.index is set)
    RUN/report/          PNG figures and index.html
    RUN/run.json         what ran, how long, and the headline numbers

Every stage skips work its store records as finished, so a rerun after a crash resumes.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Callable

from ..config import RunConfig

STORE_NAMES = {"input": "cubes.zarr", "prep": "prep.zarr", "stage1": "stage1.zarr", "stage2": "stage2.zarr", "stage3": "stage3.zarr"}


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    entry: str | None  # "module:function" taking (config, client, echo) -> dict; None = not built yet
    needs_cluster: bool = True  # False: runs in this process; a command running only such stages starts no cluster


STAGES: tuple[Stage, ...] = (
    Stage("input", "inputs (synthetic scene, ingest, or an existing store)", "ihs_hpc.pipeline.inputs:run_input",
          needs_cluster=False),
    Stage("prep", "IQR outliers and kriging gap fill", "ihs_hpc.pipeline.prep:run_prep"),
    Stage("stage1", "IHS radiation areas by region growing", "ihs_hpc.pipeline.stage1:run_stage1"),
    Stage("stage2", "STL baselines and regression on meteorology", "ihs_hpc.pipeline.stage2:run_stage2"),
    Stage("stage3", "background fill of IHS areas (bl_oem) and pm25_ihs", "ihs_hpc.pipeline.stage3:run_stage3"),
    Stage("stats", "statistics tables", "ihs_hpc.pipeline.stats:run_stats"),
    Stage("allocate", "reduction targets by minimised Gini (seed 003)", "ihs_hpc.pipeline.allocate:run_allocation",
          needs_cluster=False),
    Stage("report", "figures and HTML report", "ihs_hpc.pipeline.report:run_report",
          needs_cluster=False),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


def needs_cluster(stages) -> bool:
    """Whether any of ``stages`` (default: all) uses the Dask client."""
    selected = set(stages) if stages else set(STAGE_NAMES)
    return any(s.needs_cluster for s in STAGES if s.name in selected)


def store_path(config: RunConfig, stage: str) -> Path:
    return config.run_dir / STORE_NAMES[stage]


def _resolve(entry: str) -> Callable:
    module, func = entry.split(":")
    return getattr(import_module(module), func)


def run_pipeline(config: RunConfig, client=None, *, stages=None, echo=print) -> dict:
    """Run the selected stages (default: all) in order and write ``run.json``; return the summary."""
    selected = tuple(stages) if stages else STAGE_NAMES
    unknown = [s for s in selected if s not in STAGE_NAMES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages are {list(STAGE_NAMES)}")
    config.run_dir.mkdir(parents=True, exist_ok=True)
    (config.run_dir / "config.yaml").write_text(config.to_yaml())
    summary = {"run_dir": str(config.run_dir), "config": config.source, "stages": {}}
    for stage in STAGES:
        if stage.name not in selected:
            continue
        if stage.entry is None:
            echo(f"[{stage.name}] {stage.title}: not built yet in this version — skipped")
            summary["stages"][stage.name] = {"status": "not built yet"}
            continue
        echo(f"[{stage.name}] {stage.title} …")
        start = time.perf_counter()
        result = _resolve(stage.entry)(config, client, echo) or {}
        elapsed = time.perf_counter() - start
        summary["stages"][stage.name] = {"status": "done", "seconds": round(elapsed, 2), **result}
        echo(f"[{stage.name}] done in {elapsed:.1f} s")
    (config.run_dir / "run.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
