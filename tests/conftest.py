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
