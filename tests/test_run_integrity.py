"""Runs that never lie: fingerprints, the run-directory lock, gap handling that completes, clear errors.

Real ``ihs`` processes on real files (the ``tiny`` scene in the files layout), real SIGKILLs; nothing
mocked. The kill points use the executor's fault hook (``IHS_FAULT_KILL_AFTER``) so they cannot race.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import yaml
import zarr

STAGES = "input,prep,stage1,stage2"
STORES = ("cubes.zarr", "prep.zarr", "stage1.zarr", "stage2.zarr")


# ------------------------------------------------------------------------------------------ helpers
def ihs(*args, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "ihs_hpc.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def write_config(path: Path, files: Path, run_dir: Path, *, files_overrides=None, **sections) -> Path:
    """A run YAML reading the scene files of ``files`` (their ingest.json), with overrides."""
    ingest = json.loads((files / "ingest.json").read_text())
    for key, value in (files_overrides or {}).items():
        node = ingest
        parts = key.split(".")
        for part in parts[:-1]:
            node = node[part]
        if value is _DELETE:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    doc = {"run_dir": str(run_dir), "input": {"kind": "files", "files": ingest}, "grid": {"tile_size": 32},
           "cluster": {"kind": "none"}, **sections}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


_DELETE = object()


def tree_digest(run_dir: Path) -> dict[str, str]:
    """sha256 of every file under a run directory (the lock directory excluded)."""
    out = {}
    for p in sorted(run_dir.rglob("*")):
        if p.is_file() and ".ihs-lock" not in p.parts:
            out[str(p.relative_to(run_dir))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def store_arrays(path: Path) -> dict[str, np.ndarray]:
    group = zarr.open_group(path, mode="r")
    return {name: array[...] for name, array in group.arrays()}


def assert_same_stores(a: Path, b: Path, stores=STORES):
    for store in stores:
        x, y = store_arrays(a / store), store_arrays(b / store)
        assert x.keys() == y.keys(), store
        for name in x:
            np.testing.assert_array_equal(x[name], y[name], err_msg=f"{store}/{name}")
        fa = zarr.open_group(a / store, mode="r").attrs["ihs_fingerprint"]
        fb = zarr.open_group(b / store, mode="r").attrs["ihs_fingerprint"]
        assert fa == fb, store


def no_partials(run_dir: Path):
    left = [p.name for p in run_dir.iterdir() if ".partial" in p.name or ".old-" in p.name or ".stale-" in p.name]
    assert left == []


def copy_files(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    ingest = json.loads((dst / "ingest.json").read_text())
    text = json.dumps(ingest).replace(str(src), str(dst))
    (dst / "ingest.json").write_text(text)
    return dst


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """The ``tiny`` scene as raw files (CHAP NetCDF days, ERA5 years, DEM, IHS, cities)."""
    from ihs_hpc.synth import generate_scene

    out = tmp_path_factory.mktemp("files") / "tiny"
    generate_scene("tiny", out, seed=0, layout="files", progress=False)
    return out


@pytest.fixture(scope="module")
def clean_new(files, tmp_path_factory) -> Path:
    """A lone, uninterrupted run of the 'new' configuration (stage2 seasonal 13)."""
    tmp = tmp_path_factory.mktemp("clean")
    cfg = write_config(tmp / "new.yaml", files, tmp / "run", stage2={"stl": {"seasonal": 13}})
    result = ihs("run", cfg, "--stages", STAGES)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return tmp / "run"


# ------------------------------------------------------------------------------------------ fingerprints
def test_killed_in_stage2_then_changed_key_is_refused_then_rerun_changed_equals_a_clean_run(files, clean_new, tmp_path):
    run = tmp_path / "run"
    old = write_config(tmp_path / "old.yaml", files, run, stage2={"stl": {"seasonal": 7}})
    new = write_config(tmp_path / "new.yaml", files, run, stage2={"stl": {"seasonal": 13}})
    killed = ihs("run", old, "--stages", STAGES, env={"IHS_FAULT_KILL_AFTER": "stage2 PM2.5 tiles:2"})
    assert killed.returncode == -signal.SIGKILL
    partial = run / "stage2.zarr.partial"
    assert len(list((partial / "_ihs_tiles").glob("t*"))) == 2  # half of the 4 tiles
    before = tree_digest(run)

    refused = ihs("run", new, "--stages", STAGES)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "stage2.zarr.partial" in refused.stderr
    assert "stage2.stl.seasonal: 7 → 13" in refused.stderr
    assert "--rerun-changed" in refused.stderr
    assert "took over a stale lock" in refused.stdout and "is gone" in refused.stdout  # the killed run's lock
    assert tree_digest(run) == before  # nothing written: stores, config.yaml, run.json

    rerun = ihs("run", new, "--stages", STAGES, "--rerun-changed")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert_same_stores(run, clean_new)
    no_partials(run)
    assert yaml.safe_load((run / "config.yaml").read_text())["ihs"]["stage2"]["stl"]["seasonal"] == 13
    record = json.loads((run / "run.json").read_text())["stages"]["input"]
    assert record["mb_per_s"] > 0  # the ingest figures survive later runs that keep the store


def test_changed_input_path_is_refused_then_rerun_changed_equals_a_clean_run(files, clean_new, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(clean_new, run)
    cfg_old = write_config(tmp_path / "old.yaml", files, run, stage2={"stl": {"seasonal": 13}})
    assert ihs("run", cfg_old, "--stages", STAGES).returncode == 0  # all kept: same fingerprints
    other = copy_files(files, tmp_path / "other")
    first_day = sorted((other / "chap").glob("*.nc"))[0]
    with netCDF4.Dataset(first_day, "r+") as ds:  # another PM2.5 product: one day differs
        values = ds["PM2.5"][:]
        ds["PM2.5"][:] = np.where(values < 65530, values + 5.0, values)
    new_path = str(other / "chap")
    cfg = write_config(tmp_path / "new.yaml", files, run, files_overrides={"pm25.path": new_path},
                       stage2={"stl": {"seasonal": 13}})
    before = tree_digest(run)
    refused = ihs("run", cfg, "--stages", STAGES)
    assert refused.returncode == 2
    assert f"input.files.pm25.path: '{files / 'chap'}' → '{new_path}'" in refused.stderr
    assert "input files of 'pm25'" in refused.stderr
    assert tree_digest(run) == before

    assert ihs("run", cfg, "--stages", STAGES, "--rerun-changed").returncode == 0
    clean = write_config(tmp_path / "clean.yaml", files, tmp_path / "clean", files_overrides={"pm25.path": new_path},
                         stage2={"stl": {"seasonal": 13}})
    assert ihs("run", clean, "--stages", STAGES).returncode == 0
    assert_same_stores(run, tmp_path / "clean")
    no_partials(run)
    pm_a = store_arrays(run / "cubes.zarr")["pm25"]
    pm_b = store_arrays(clean_new / "cubes.zarr")["pm25"]
    assert not np.array_equal(pm_a, pm_b, equal_nan=True)  # the new input really made other stores


# ------------------------------------------------------------------------------------------ lock
def test_two_concurrent_runs_one_exits_4_at_once_naming_the_holder(files, clean_new, tmp_path):
    cfg = write_config(tmp_path / "c.yaml", files, tmp_path / "run", stage2={"stl": {"seasonal": 13}})
    procs, started = [], []
    for _ in range(2):
        started.append(time.monotonic())
        procs.append(subprocess.Popen([sys.executable, "-m", "ihs_hpc.cli", "run", str(cfg), "--stages", "input,prep"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    ended = [None, None]
    while any(e is None for e in ended):
        for i, p in enumerate(procs):
            if ended[i] is None and p.poll() is not None:
                ended[i] = time.monotonic()
        time.sleep(0.02)
    outs = [p.communicate() for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 4], outs
    loser, winner = (0, 1) if codes[0] == 4 else (1, 0)
    assert ended[loser] - started[loser] < 2.0
    assert f"in use by PID {procs[winner].pid} on host {socket.gethostname()}" in outs[loser][1]
    assert_same_stores(tmp_path / "run", clean_new, ("cubes.zarr", "prep.zarr"))
    no_partials(tmp_path / "run")
    assert not (tmp_path / "run" / ".ihs-lock").exists()


def _plant_lock(run: Path, *, pid: int, host: str, heartbeat_age_s: float = 0.0):
    lock = run / ".ihs-lock"
    lock.mkdir()
    (lock / "owner.json").write_text(json.dumps({"pid": pid, "host": host, "started": "2026-01-01T00:00:00",
                                                 "process_start": None, "token": "planted"}))
    (lock / "heartbeat").touch()
    stamp = time.time() - heartbeat_age_s
    for f in (lock / "heartbeat", lock / "owner.json", lock):
        os.utime(f, (stamp, stamp))


def test_stale_locks_are_taken_over_and_live_ones_respected(files, clean_new, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(clean_new, run)
    cfg = write_config(tmp_path / "c.yaml", files, run, stage2={"stl": {"seasonal": 13}})
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _plant_lock(run, pid=gone.pid, host=socket.gethostname())
    dead = ihs("run", cfg, "--stages", "input")
    assert dead.returncode == 0 and f"process {gone.pid} on {socket.gethostname()} is gone" in dead.stdout

    _plant_lock(run, pid=4242, host="node-017.cluster", heartbeat_age_s=3600)
    silent = ihs("run", cfg, "--stages", "input")
    assert silent.returncode == 0 and "no heartbeat from node-017.cluster" in silent.stdout

    _plant_lock(run, pid=4242, host="node-017.cluster", heartbeat_age_s=5)
    live = ihs("run", cfg, "--stages", "input")
    assert live.returncode == 4 and "in use by PID 4242 on host node-017.cluster" in live.stderr
    assert (run / ".ihs-lock" / "owner.json").is_file()  # the live holder's lock is left alone
    shutil.rmtree(run / ".ihs-lock")


# ------------------------------------------------------------------------------------------ gaps
def _drop_variable(path: Path, var: str):
    import xarray as xr

    ds = xr.open_dataset(path).load()
    ds.close()
    ds.drop_vars(var).to_netcdf(path)


def test_allow_gaps_with_a_missing_day_and_a_missing_era5_variable_completes_and_reports_fills(files, tmp_path):
    data = copy_files(files, tmp_path / "files")
    missing_day = sorted((data / "chap").glob("*.nc"))[400]
    missing_day.unlink()
    _drop_variable(data / "era5" / "era5_daily_2020.nc", "tp")

    strict = write_config(tmp_path / "strict.yaml", data, tmp_path / "strict")
    refused = ihs("ingest", strict)
    assert refused.returncode == 2
    assert "set allow_gaps" in refused.stderr and "day 2020-02-05" in refused.stderr  # the missing CHAP day

    cfg = write_config(tmp_path / "gaps.yaml", data, tmp_path / "run", files_overrides={"allow_gaps": True})
    result = ihs("run", cfg)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "variable 'tp': 366 of 1096 days have no ERA5 data" in result.stderr
    assert "era5_daily_2020.nc" in result.stderr
    assert "run the prep stage" not in result.stdout + result.stderr
    stages = json.loads((tmp_path / "run" / "run.json").read_text())["stages"]
    fills = stages["prep"]["fills"]
    assert fills["days_without_data"] == 1
    assert fills["time_filled_values"] == 48 * 64  # every pixel of the missing day, along time
    met_cells = zarr.open_group(tmp_path / "run" / "cubes.zarr", mode="r")["tp"].shape[1:]
    assert stages["stage2"]["fills"]["met_time_filled_values"]["tp"] == 366 * met_cells[0] * met_cells[1]
    assert stages["stage2"]["fills"]["met_time_filled_values"]["t2m"] == 0
    assert stages["input"]["gap_days"] == {"pm25": 1, "tp": 366}
    html = (tmp_path / "run" / "report" / "index.html").read_text()
    assert "Gaps, fills and implausible values" in html and "tp values filled along time" in html
    assert str(366 * met_cells[0] * met_cells[1]) in html
    est = store_arrays(tmp_path / "run" / "stage3.zarr")["pm25_ihs"]
    area = store_arrays(tmp_path / "run" / "stage1.zarr")["ihs_mask"].astype(bool)
    assert np.isfinite(est[:, area]).all()


def test_missing_era5_variable_names_the_variable_and_the_file(files, tmp_path):
    data = copy_files(files, tmp_path / "files")
    _drop_variable(data / "era5" / "era5_daily_2020.nc", "tp")
    cfg = write_config(tmp_path / "c.yaml", data, tmp_path / "run")
    result = ihs("ingest", cfg)
    assert result.returncode == 2
    assert "variable 'tp'" in result.stderr and "era5_daily_2020.nc" in result.stderr
    assert "Earth Engine" not in result.stderr  # no unrelated hint for CDS files


def test_pixels_missing_on_every_day_are_counted_located_and_masked(files, tmp_path):
    data = copy_files(files, tmp_path / "files")
    for path in (data / "chap").glob("*.nc"):
        with netCDF4.Dataset(path, "r+") as ds:
            ds["PM2.5"][5, 7] = 65535  # row 5 (north to south), column 7
    cfg = write_config(tmp_path / "c.yaml", data, tmp_path / "run")
    result = ihs("run", cfg, "--stages", STAGES)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lat = zarr.open_group(tmp_path / "run" / "cubes.zarr", mode="r")["lat"][5]
    assert f"1 pixel(s) have no PM2.5 on any day (first: ({lat:.3f} °N" in result.stdout
    assert "masked out of the analysis" in result.stdout
    prep = store_arrays(tmp_path / "run" / "prep.zarr")
    assert prep["analysed"][5, 7] == 0 and prep["analysed"].sum() == 48 * 64 - 1
    assert np.isnan(prep["pm25"][:, 5, 7]).all()
    assert np.isfinite(np.delete(prep["pm25"].reshape(len(prep["pm25"]), -1), 5 * 64 + 7, axis=1)).all()
    stage2 = store_arrays(tmp_path / "run" / "stage2.zarr")
    assert np.isnan(stage2["pm25_bl_tem"][:, 5, 7]).all() and np.isfinite(stage2["pm25_bl_tem"][:, 5, 8]).all()
    fills = json.loads((tmp_path / "run" / "run.json").read_text())["stages"]["prep"]["fills"]
    assert fills["empty_pixels"] == 1 and fills["empty_pixels_masked"] == 1


# ------------------------------------------------------------------------------------------ plausibility
def test_negative_pm25_and_implausible_wind_are_counted_per_file_or_refused_when_strict(files, tmp_path):
    data = copy_files(files, tmp_path / "files")
    day = sorted((data / "chap").glob("*.nc"))[10]
    with netCDF4.Dataset(day, "r+") as ds:
        ds["PM2.5"][0, 0:3] = -7.0
    with netCDF4.Dataset(data / "era5" / "era5_daily_2019.nc", "r+") as ds:
        u = ds["u10"]
        block = u[3]
        block[0:2, 0:2] = 150.0
        u[3] = block
    cfg = write_config(tmp_path / "c.yaml", data, tmp_path / "run")
    result = ihs("ingest", cfg)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"implausible pm25: 3 value(s) in 1 file(s) outside 0..2000 ug m-3 set to missing (first {day}" in result.stdout
    assert "implausible u10: 4 value(s)" in result.stdout and "era5_daily_2019.nc" in result.stdout
    record = json.loads((tmp_path / "run" / "run.json").read_text())["stages"]["input"]
    assert record["implausible"]["pm25"]["values"] == 3 and record["implausible"]["u10"]["values"] == 4
    pm25 = zarr.open_group(tmp_path / "run" / "cubes.zarr", mode="r")["pm25"]
    assert np.isnan(pm25[10, 0, 0:3]).all() and np.isfinite(pm25[10, 1, 0:3]).all()

    strict = write_config(tmp_path / "s.yaml", data, tmp_path / "strict", files_overrides={"strict": True})
    refused = ihs("ingest", strict)
    assert refused.returncode == 2
    assert str(day) in refused.stderr and "variable 'pm25'" in refused.stderr and "e.g. -7" in refused.stderr
    assert not (tmp_path / "strict" / "cubes.zarr").exists()


# ------------------------------------------------------------------------------------------ config errors
@pytest.mark.parametrize("override,expected", [
    ({"colour": "red"}, ["input.files.colour", "unknown ingest configuration key"]),
    ({"pm25.varaible": "PM2.5"}, ["input.files.pm25.varaible"]),
    ({"start": "2019-13-45"}, ["input.files.start = '2019-13-45' is not a date"]),
    ({"end": "2018-01-01"}, ["input.files.end = 2018-01-01 is before input.files.start"]),
])
def test_bad_input_files_keys_and_dates_are_named_before_anything_is_written(files, tmp_path, override, expected):
    cfg = write_config(tmp_path / "bad.yaml", files, tmp_path / "run", files_overrides=override)
    result = ihs("run", cfg)
    assert result.returncode == 2
    for text in expected + [str(cfg)]:
        assert text in result.stderr
    assert not (tmp_path / "run").exists()


def test_cities_with_only_a_name_and_a_grid_taken_from_the_pm25_files(files, tmp_path):
    data = copy_files(files, tmp_path / "files")
    doc = json.loads((data / "cities.geojson").read_text())
    for feature in doc["features"]:
        feature["properties"] = {"name": feature["properties"]["name"]}
    (data / "cities.geojson").write_text(json.dumps(doc))
    cfg = write_config(tmp_path / "c.yaml", data, tmp_path / "run", files_overrides={"grid": _DELETE})
    result = ihs("ingest", cfg)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "input.files.grid not set: using the PM2.5 files' own grid" in result.stdout
    cubes = zarr.open_group(tmp_path / "run" / "cubes.zarr", mode="r")
    truth = zarr.open_group(files / "truth.zarr", mode="r")
    np.testing.assert_allclose(cubes["lat"][:], truth["lat"][:], atol=1e-9)
    np.testing.assert_allclose(cubes["lon"][:], truth["lon"][:], atol=1e-9)
    names = [str(v) for v in cubes["city_name_en"][:]]
    assert names == [f["properties"]["name"] for f in doc["features"]]  # English name = name when absent

    explicit = write_config(tmp_path / "e.yaml", files, tmp_path / "run2",
                            files_overrides={"cities.adcode": None, "cities.name_en": None})
    result = ihs("ingest", explicit)
    assert result.returncode == 0, result.stderr[-3000:]
    cubes = zarr.open_group(tmp_path / "run2" / "cubes.zarr", mode="r")
    assert list(cubes["city_adcode"][:]) == list(range(len(cubes["city_adcode"][:])))  # null: no adcodes


# ------------------------------------------------------------------------------------------ damaged stores
def test_corrupt_chunk_is_named_then_check_lists_it_and_a_rerun_repairs_only_its_tile(files, clean_new, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(clean_new, run)
    cfg = write_config(tmp_path / "c.yaml", files, run, stage2={"stl": {"seasonal": 13}})
    chunk = run / "stage2.zarr" / "pm25_bl_tem" / "c" / "0" / "1" / "0"
    chunk.write_bytes(b"not a zstd frame")
    broken = ihs("run", cfg, "--stages", "stage3")
    assert broken.returncode == 2
    for text in ("stage2.zarr", "variable 'pm25_bl_tem'", "pm25_bl_tem/c/0/1/0", "tile t0001_0000"):
        assert text in broken.stderr
    assert not (run / "stage3.zarr").exists()

    info = ihs("info", run / "stage2.zarr")
    assert "complete" in info.stdout.splitlines()[0] and "DAMAGED" not in info.stdout
    check = ihs("check", run, "--verify")
    assert check.returncode == 3
    assert "pm25_bl_tem/c/0/1/0" in check.stdout and "damaged" in check.stdout
    assert "DAMAGED" in ihs("info", run / "stage2.zarr").stdout

    records = run / "stage2.zarr" / "_ihs_tiles"
    assert not (records / "t0001_0000").exists() and (records / "t0000_0000").exists()
    repaired = ihs("run", cfg, "--stages", "stage2")
    assert repaired.returncode == 0 and "resuming" in repaired.stdout
    assert_same_stores(run, clean_new, ("stage2.zarr",))
    after = ihs("check", run, "--verify")
    line = next(l for l in after.stdout.splitlines() if l.strip().startswith("stage2"))
    assert "complete" in line and "matches the configuration" in line and "bad chunk" not in after.stdout


# ------------------------------------------------------------------------------------------ failed tiles
def test_a_tile_failing_twice_is_named_the_rest_kept_exit_3_and_a_rerun_redoes_only_it(files, clean_new, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(clean_new, run)
    shutil.rmtree(run / "stage2.zarr")
    cfg = write_config(tmp_path / "c.yaml", files, run, stage2={"stl": {"seasonal": 13}})
    failed = ihs("run", cfg, "--stages", "stage2", env={"IHS_FAULT_FAIL_TILE": "stage2 PM2.5 tiles:t0001_0000"})
    assert failed.returncode == 3, failed.stdout[-2000:] + failed.stderr[-2000:]
    assert "1 of 4 tiles failed twice" in failed.stderr
    assert "tile t0001_0000 (rows 32:48, cols 0:32): RuntimeError: injected failure" in failed.stderr
    records = run / "stage2.zarr.partial" / "_ihs_tiles"
    assert sorted(p.name for p in records.glob("t*")) == ["t0000_0000", "t0000_0001", "t0001_0001"]
    status = ihs("status", cfg)
    line = next(l for l in status.stdout.splitlines() if l.strip().startswith("stage2"))
    assert "unfinished" in line and "matches the configuration" in line and "; tiles 3/4" in line and "met tiles 1/1" in line

    rerun = ihs("run", cfg, "--stages", "stage2")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "stage2 PM2.5 tiles: 0/1 tile" in rerun.stderr  # only the failed tile is redone
    assert_same_stores(run, clean_new, ("stage2.zarr",))
    writes = [json.loads(p.read_text())["writes"] for p in (run / "stage2.zarr" / "_ihs_tiles").glob("t*")]
    assert writes == [1, 1, 1, 1]
