"""The ``ihs`` command line: version, synth → open_zarr, info, run with config errors and a tiny run."""
import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import ihs_hpc
from ihs_hpc.cli import main


def test_version_and_help():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and ihs_hpc.__version__ in result.output
    result = CliRunner().invoke(main, ["--help"])
    for command in ("run", "synth", "info", "allocate"):
        assert command in result.output


def test_public_api_imports_no_torch():
    code = "import sys, ihs_hpc; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_synth_tiny_then_open_zarr_shows_cf_variables(tmp_path):
    out = tmp_path / "scene.zarr"
    result = CliRunner().invoke(main, ["synth", "--preset", "tiny", "--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    ds = xr.open_zarr(out)
    expected_units = {"pm25": "ug m-3", "pm25_ihs_true": "ug m-3", "dem": "m", "t2m": "K", "d2m": "K",
                      "rh": "%", "tp": "m", "sp": "Pa", "u10": "m s-1", "v10": "m s-1"}
    for name, units in expected_units.items():
        assert name in ds, name
        assert ds[name].attrs.get("units") == units, (name, ds[name].attrs)
    assert "city_id" in ds and ds.city_id.dims == ("lat", "lon")
    assert ds.pm25.dims == ("time", "lat", "lon") and ds.t2m.dims == ("time", "met_lat", "met_lon")
    assert ds.pm25.dtype == np.float32


def test_info_describes_a_store(tiny_scene):
    result = CliRunner().invoke(main, ["info", str(tiny_scene)])
    assert result.exit_code == 0, result.output
    assert "complete" in result.output and "pm25" in result.output and "ug m-3" in result.output


def test_run_with_misspelt_key_exits_nonzero_naming_key_and_leaves_run_dir_untouched(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "keep.txt").write_text("earlier output")
    config = tmp_path / "bad.yaml"
    config.write_text(f"run_dir: {run_dir}\nstage2:\n  stl:\n    perod: 365\n")
    result = subprocess.run([sys.executable, "-m", "ihs_hpc.cli", "run", str(config)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "'stage2.stl.perod'" in result.stderr and str(config) in result.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == ["keep.txt"]
    assert (run_dir / "keep.txt").read_text() == "earlier output"


def test_run_with_missing_store_fails_cleanly(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"run_dir: {tmp_path / 'r'}\ninput: {{kind: store, store: {tmp_path / 'nope.zarr'}}}\ncluster: {{kind: none}}\n")
    result = CliRunner().invoke(main, ["run", str(config), "--stages", "input"])
    assert result.exit_code != 0
    assert "nope.zarr" in result.output


def test_sbatch_script_body_runs_the_pipeline(tiny_scene, tmp_path):
    """The job script's body (its #SBATCH lines are comments to bash) runs a real run; Slurm submission
    itself is not exercised here."""
    import os
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    config = tmp_path / "job.yaml"
    config.write_text(f"input: {{kind: store, store: {tiny_scene}}}\n")
    env = dict(os.environ, SLURM_CPUS_PER_TASK="1", IHS=str(Path(sys.executable).parent / "ihs"))
    result = subprocess.run(["bash", str(repo / "jobs" / "ihs-run.sbatch"), str(config), "--stages", "stage1"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "with 1 local workers" in result.stdout
    assert xr.open_zarr(tmp_path / "job" / "stage1.zarr").attrs["ihs_complete"] is True
