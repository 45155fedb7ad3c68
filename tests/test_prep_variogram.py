"""``prep.variogram: local``: the per-day short-lag fit reaches the kriging of the prep stage."""
from __future__ import annotations

import numpy as np
import xarray as xr
from click.testing import CliRunner

from ihs_hpc.cli import main
from ihs_hpc.ops.gapfill import fill_gaps
from ihs_hpc.ops.variogram import fit_variogram_local
from ihs_hpc.pipeline.daily import local_stride


def test_prep_with_local_gaussian_variogram(tiny_scene, tmp_path):
    run_dir = tmp_path / "run"
    config = tmp_path / "run.yaml"
    config.write_text(f"run_dir: {run_dir}\ninput: {{kind: store, store: {tiny_scene}}}\ncluster: {{kind: none}}\n"
                      "prep: {kriging_model: gaussian, variogram: local, variogram_cells: 6}\n")
    result = CliRunner().invoke(main, ["prep", str(config)])
    assert result.exit_code == 0, result.output
    prep = xr.open_zarr(run_dir / "prep.zarr")
    assert prep.attrs["variogram"] == "local" and prep.attrs["kriging_model"] == "gaussian"
    clean = prep.pm25_clean.values
    filled = prep.pm25.values
    days = np.flatnonzero(np.isnan(clean).any(axis=(1, 2)))
    assert days.size > 0 and np.isfinite(filled).all()
    lat, lon = prep.lat.values, prep.lon.values
    for t in days[:3]:  # the stage's fill equals a direct fill with this day's local fit
        params = fit_variogram_local(clean[t], lat, lon, model="gaussian", max_cells=6, stride=local_stride(clean[t].shape))
        expect, _ = fill_gaps(clean[t], lat, lon, model="gaussian", variogram_parameters=params, seed=(0, int(t)))
        np.testing.assert_allclose(filled[t], expect, rtol=1e-5, atol=1e-4)


def test_bad_variogram_choice_is_named(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("prep: {variogram: nearby}\n")
    result = CliRunner().invoke(main, ["prep", str(config)])
    assert result.exit_code == 2
    assert "prep.variogram" in result.output and "nearby" in result.output
