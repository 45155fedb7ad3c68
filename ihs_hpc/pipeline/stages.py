"""The stages of a run: what each one writes, which configuration keys and outputs it reads, its version.

This table is the one place that says what decides an output's content (see
:mod:`ihs_hpc.pipeline.provenance`): a stage's fingerprint is made of the ``keys`` listed here, the
fingerprints of its ``upstream`` outputs and its ``version``. Bump ``version`` whenever a change of
code makes the same inputs give other numbers; every run directory then notices.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline.

    Parameters
    ----------
    name : str
        Stage name on the command line (``ihs run --stages stage2``).
    title : str
        One line for progress messages.
    entry : str or None
        ``"module:function"`` taking ``(config, client, echo)`` and returning a dict of figures.
    output : str or None
        What the stage writes under the run directory (a ``*.zarr`` store or a directory).
    keys : tuple of str
        Configuration keys (or key prefixes) the stage reads.
    upstream : tuple of str
        Stages whose outputs it reads.
    version : int
        Algorithm version of the stage.
    needs_cluster : bool
        False: runs in this process; a command running only such stages starts no cluster.
    """

    name: str
    title: str
    entry: str | None
    output: str | None = None
    keys: tuple[str, ...] = ()
    upstream: tuple[str, ...] = ()
    version: int = 1
    needs_cluster: bool = True


STAGES: tuple[Stage, ...] = (
    Stage("input", "inputs (synthetic scene, ingest, or an existing store)", "ihs_hpc.pipeline.inputs:run_input",
          "cubes.zarr", ("input", "grid.tile_size"), (), 2, needs_cluster=False),
    Stage("prep", "outlier removal and kriging gap fill", "ihs_hpc.pipeline.prep:run_prep",
          "prep.zarr", ("prep", "grid.tile_size"), ("input",), 4),
    Stage("stage1", "IHS radiation areas by region growing", "ihs_hpc.pipeline.stage1:run_stage1",
          "stage1.zarr", ("stage1", "grid.tile_size"), ("input",), 1),
    Stage("stage2", "STL baselines and regression on meteorology", "ihs_hpc.pipeline.stage2:run_stage2",
          "stage2.zarr", ("stage2", "grid.tile_size"), ("input", "prep", "stage1"), 6),
    Stage("stage3", "background fill of IHS areas (bl_oem) and pm25_ihs", "ihs_hpc.pipeline.stage3:run_stage3",
          "stage3.zarr", ("stage3", "grid.tile_size"), ("input", "stage1", "stage2"), 4),
    Stage("stats", "statistics tables", "ihs_hpc.pipeline.stats:run_stats",
          "stats", ("stats", "grid.tile_size"), ("input", "prep", "stage1", "stage3"), 7),
    Stage("allocate", "reduction targets by minimised Gini (seed 003)", "ihs_hpc.pipeline.allocate:run_allocation",
          "allocation", ("allocation",), ("stats",), 1, needs_cluster=False),
    Stage("report", "figures and HTML report", "ihs_hpc.pipeline.report:run_report",
          "report", ("report",), ("input", "stage1", "stats", "allocate"), 3, needs_cluster=False),
)
STAGE_NAMES = tuple(s.name for s in STAGES)
BY_NAME = {s.name: s for s in STAGES}


def downstream(names) -> list[str]:
    """Every stage that reads, directly or not, the output of one of ``names`` (in pipeline order)."""
    found = set(names)
    for stage in STAGES:
        if found & set(stage.upstream):
            found.add(stage.name)
    return [s.name for s in STAGES if s.name in found and s.name not in set(names)]


def upstream_closure(names) -> list[str]:
    """Every stage whose output ``names`` read, directly or not (in pipeline order)."""
    found: set[str] = set()
    todo = list(names)
    while todo:
        for up in BY_NAME[todo.pop()].upstream:
            if up not in found:
                found.add(up)
                todo.append(up)
    return [s.name for s in STAGES if s.name in found]
