"""Shared test helpers: reference-data location, optional-dependency markers, eager-compute guard."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

# OpenMP threads that spin while waiting make torch 10x slower on shared cores; must precede torch's import
# (requires_torch below imports it); ihs_hpc.ml sets the same default for the ihs command.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("IHS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
REFERENCE_FIXTURES = SHARED_DATA / "reference_fixtures"
if SHARED_DATA.is_dir():
    # the library finds shared data only through this setting (ihs_hpc.shared_data); the processes the
    # tests start inherit it
    os.environ.setdefault("IHS_SHARED_DATA", str(SHARED_DATA))


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except Exception:  # pragma: no cover - depends on the environment
        return False
    return True


def requires(name: str):
    """Mark a test as needing the optional module ``name`` (xarray's ``requires_X`` helpers)."""
    return pytest.mark.skipif(not _importable(name), reason=f"requires {name}")


requires_torch = requires("torch")
requires_statsmodels = requires("statsmodels")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set IHS_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def reference_fixtures(shared_data) -> Path:
    return shared_data / "reference_fixtures"


@pytest.fixture(scope="session")
def tiny_scene(tmp_path_factory) -> Path:
    """The ``tiny`` synthetic scene (seed 0), generated once per test session."""
    from ihs_hpc.synth import generate_scene

    out = tmp_path_factory.mktemp("scene") / "tiny.zarr"
    generate_scene("tiny", out, seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_local_run(tmp_path_factory):
    """The whole pipeline on ``tiny`` (seed 0, 32-pixel tiles) on a LocalCluster of 2 workers, run once
    per session; returns ``(run_dir, stdout)``. The reference the Slurm and MPI runs are compared to."""
    import subprocess
    import sys

    tmp = tmp_path_factory.mktemp("e2e")
    config = tmp / "tiny.yaml"
    config.write_text(TINY_RUN_YAML + "cluster: {kind: local, n_workers: 2, threads_per_worker: 1}\n")
    result = subprocess.run([sys.executable, "-m", "ihs_hpc.cli", "run", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return tmp / "tiny", result.stdout


#: The run YAML of tiny_local_run without its cluster (runs on other clusters add their own).
TINY_RUN_YAML = "input: {kind: synthetic, synthetic: {preset: tiny, seed: 0}}\ngrid: {tile_size: 32}\n"


@pytest.fixture(scope="session")
def local_slurm(tmp_path_factory):
    """A real single-node Slurm (munged, slurmctld, slurmd on localhost), started once per session
    and stopped at its end; a :class:`slurm_local.LocalSlurm` (sbatch, wait, records, log).

    Its directory is ``$IHS_SLURM_DIR`` when set, else a session temporary directory. The node
    declares at least 4 CPUs (more than a 2-core machine has: a head job and two 1-CPU worker jobs
    run at once; slurm/start.sh then sets config_overrides so the node is not drained).
    """
    from slurm_local import LocalSlurm

    root = Path(os.environ["IHS_SLURM_DIR"]) if os.environ.get("IHS_SLURM_DIR") else tmp_path_factory.mktemp("slurm")
    slurm = LocalSlurm(root, cpus=max(4, os.cpu_count() or 1),
                       port=int(os.environ["IHS_SLURM_PORT"]) if os.environ.get("IHS_SLURM_PORT") else None)
    slurm.start()
    try:
        yield slurm
    finally:
        slurm.stop()
