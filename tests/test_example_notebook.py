"""examples/notebook_tiny.py, the notebook-style tour of the Python API, runs top to bottom on the tiny run."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import REPO_ROOT, TINY_RUN_YAML


def test_notebook_example_runs_on_the_tiny_run(tiny_local_run, tmp_path):
    run_dir, _ = tiny_local_run
    # a copy of the session's finished tiny run (same settings: its stores are kept, not recomputed);
    # allocate and report are left out so the example's run.run() computes those two stages itself
    shutil.copytree(run_dir, tmp_path / "tiny", ignore=shutil.ignore_patterns(".ihs-lock", "allocation", "report"))
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_RUN_YAML + "cluster: {kind: none}\n")
    env = {**os.environ, "IHS_EXAMPLE_DIR": str(tmp_path), "IHS_EXAMPLE_CONFIG": str(config),
           "IHS_EXAMPLE_OUT": str(tmp_path / "export")}
    result = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / "notebook_tiny.py")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = json.loads((tmp_path / "notebook_result.json").read_text())
    assert set(out["stages"].values()) == {"done"} and len(out["stages"]) == 8
    assert "stage2.zarr is complete and matches this configuration — kept" in result.stdout
    assert "[report] done" in result.stdout  # computed by the example's run.run()
    assert (tmp_path / "tiny" / "report" / "index.html").is_file()
    # the lazy xarray STL baseline equals stage 2's pm25_bl, the decomposition closes
    assert out["baseline_gap"] <= 1e-4 and out["closure"] <= 1e-3
    assert out["trend_dims"] == ["lat", "lon"]
    # the Moran's I printed is that of the prep cube's mean map (dask and numpy means differ in rounding only)
    mean_map = xr.open_zarr(tmp_path / "tiny" / "prep.zarr").pm25.values.astype(np.float64).mean(axis=0)
    from ihs_hpc.stats import morans_i

    assert out["moran_i"] == pytest.approx(morans_i(mean_map).I, rel=1e-6)
    exported = set(out["export_files"])
    assert {"pm25_ihs_mean.tif", "ihs_radiation_areas.gpkg", "pm25_period_mean_maps.nc"} <= exported
    manifest = json.loads((tmp_path / "export" / "export.json").read_text())
    assert sorted(manifest["files"]) == out["export_files"]
    with xr.open_dataset(tmp_path / "export" / "pm25_period_mean_maps.nc") as nc:
        assert np.isfinite(nc["pm25_ihs_mean"].values).any()
    assert Path(manifest["run_dir"]) == (tmp_path / "tiny").resolve()
