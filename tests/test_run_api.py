"""ihs_hpc.Run: the Python object of a run, which the ``ihs`` command is a thin layer over."""
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from conftest import TINY_RUN_YAML

import ihs_hpc
from ihs_hpc.errors import ConfigError, FingerprintMismatch, StoreError


@pytest.fixture(scope="module")
def tiny_api_run(tmp_path_factory):
    """Ingest and stage 1 of the tiny scene run through the API, in this process (cluster none)."""
    tmp = tmp_path_factory.mktemp("api")
    config = tmp / "tiny.yaml"
    config.write_text(TINY_RUN_YAML)
    lines = []
    run = ihs_hpc.Run(config, cluster="none", echo=lines.append)
    summary = run.run(["stage1", "input"])  # any order: they run in pipeline order
    return run, summary, lines


def test_run_runs_stages_and_reports_them(tiny_api_run):
    run, summary, lines = tiny_api_run
    assert run.run_dir == run.config.run_dir and run.run_dir.name == "tiny"
    assert run.config["cluster.kind"] == "none" and run.config["grid.tile_size"] == 32
    assert summary["ran"] == ["input", "stage1"]
    assert summary["stages"]["stage1"]["n_ihs"] == 8 and (run.run_dir / "run.json").is_file()
    assert any(line.startswith("[stage1] done") for line in lines)
    states = {r.stage: (r.state, r.matches) for r in run.status()}
    assert states["input"] == ("complete", True) and states["stage1"] == ("complete", True)
    assert states["stage2"] == ("absent", None)


def test_open_returns_the_stage_store_as_xarray(tiny_api_run):
    run, _, _ = tiny_api_run
    stage1 = run.open("stage1")
    assert isinstance(stage1, xr.Dataset) and stage1.attrs["ihs_complete"] is True
    on_disk = xr.open_zarr(run.run_dir / "stage1.zarr")
    np.testing.assert_array_equal(stage1.ihs_mask.values, on_disk.ihs_mask.values)
    cubes = run.open("input")
    assert cubes.pm25.chunks is not None and cubes.pm25.attrs["units"] == "ug m-3"
    with pytest.raises(StoreError, match="stage2.zarr is not a Zarr store"):
        run.open("stage2")
    with pytest.raises(ConfigError, match="'stats' writes no Zarr store"):
        run.open("stats")


def test_a_second_run_keeps_and_a_changed_key_is_refused_until_rerun_changed(tiny_api_run):
    run, _, _ = tiny_api_run
    lines = []
    kept = ihs_hpc.Run(run.run_dir, echo=lines.append).stage1()  # a run directory works as well as its YAML
    assert kept["stages"]["stage1"]["kept"] is True
    assert f"[stage1] {run.run_dir / 'stage1.zarr'} is complete and matches this configuration — kept" in lines
    changed = ihs_hpc.Run(run.config.source, cluster="none", overrides={"stage1": {"max_km": 5.0}}, echo=lines.append)
    with pytest.raises(FingerprintMismatch, match="stage1.max_km: 10.0 → 5.0") as info:
        changed.stage1()
    assert info.value.exit_code == 2
    redone = changed.stage1(rerun_changed=True)
    assert redone["stages"]["stage1"]["status"] == "done" and "kept" not in redone["stages"]["stage1"]
    assert changed.open("stage1").attrs["max_km"] == 5.0
    assert ihs_hpc.Run(run.config.source, cluster="none").stage1(rerun_changed=True)["stages"]["stage1"]["area_pixels"] \
        == run.run(["stage1"])["stages"]["stage1"]["area_pixels"]


def test_cli_status_is_the_run_status(tiny_api_run):
    run, _, _ = tiny_api_run
    result = subprocess.run([sys.executable, "-m", "ihs_hpc.cli", "status", str(run.run_dir)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    for report in run.status():
        line = next(x for x in result.stdout.splitlines() if x.strip().startswith(report.stage + " "))
        assert report.state in line


def test_bad_sources_and_stages_raise_the_errors_the_cli_turns_into_exit_codes(tmp_path):
    with pytest.raises(ConfigError, match="no config.yaml"):
        ihs_hpc.Run(tmp_path)
    with pytest.raises(ConfigError, match="configuration file not found"):
        ihs_hpc.Run(tmp_path / "nope.yaml")
    config = tmp_path / "bad.yaml"
    config.write_text(TINY_RUN_YAML + "stage2: {stl: {perod: 7}}\n")
    with pytest.raises(ConfigError, match="'stage2.stl.perod'"):
        ihs_hpc.Run(config)
    config.write_text(TINY_RUN_YAML)
    with pytest.raises(ConfigError, match=r"unknown stage\(s\) \['stage9'\]"):
        ihs_hpc.Run(config, cluster="none").run(["stage9"])
    cli = subprocess.run([sys.executable, "-m", "ihs_hpc.cli", "run", str(config), "--stages", "stage9"],
                         capture_output=True, text=True)
    assert cli.returncode == 2 and "error: unknown stage(s) ['stage9']" in cli.stderr
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").glob("*.zarr"))
