"""Synthetic scenes (ihs_hpc.synth): CF layout, truth invariants, physics ranges, determinism, tile-size
independence, resumption, the raw-files layout and the CLI — all on the ``tiny`` preset."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from ihs_hpc.grid import Grid
from ihs_hpc.synth import PRESETS, build_scene, generate_scene, get_preset
from ihs_hpc.synth.cli import synth_command

MET = {"t2m": "K", "d2m": "K", "rh": "%", "tp": "m", "sp": "Pa", "u10": "m s-1", "v10": "m s-1"}
STANDARD = {"t2m": "air_temperature", "d2m": "dew_point_temperature", "rh": "relative_humidity",
            "tp": "lwe_thickness_of_precipitation_amount", "sp": "surface_air_pressure", "u10": "eastward_wind", "v10": "northward_wind"}
# the tiny preset shortened to one month, for the slower file-layout test
TINY_JAN = PRESETS["tiny"].with_(end="2019-01-31")


@pytest.fixture(scope="module")
def scene_path(tmp_path_factory):
    """tiny, seed 0, default tile size — generated through the CLI command."""
    from click.testing import CliRunner

    out = tmp_path_factory.mktemp("synth") / "tiny.zarr"
    result = CliRunner().invoke(synth_command, ["--preset", "tiny", "--out", str(out), "--seed", "0"])
    assert result.exit_code == 0, result.output
    assert "IHS share" in result.output and str(out) in result.output
    return out


@pytest.fixture(scope="module")
def built():
    """The global parts of tiny, seed 0 (nothing written)."""
    return build_scene("tiny", 0)


@pytest.fixture(scope="module")
def ds(scene_path):
    with xr.open_zarr(scene_path) as d:
        yield d.load()


def members(ds):
    off = ds.ihs_area_true_offset.values
    pix = ds.ihs_area_true_pixel.values
    return [pix[off[i]:off[i + 1]] for i in range(ds.sizes["ihs"])]


# ---------------------------------------------------------------------------------------------- layout
def test_open_zarr_shows_cf_variables(ds):
    assert ds.pm25.dims == ("time", "lat", "lon") and ds.pm25.shape == (1096, 48, 64)
    assert ds.pm25.attrs["units"] == "ug m-3"
    assert ds.pm25.attrs["standard_name"] == "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"
    assert ds.pm25_ihs_true.attrs["units"] == "ug m-3" and ds.pm25_ihs_true.dims == ("time", "lat", "lon")
    for name, units in MET.items():
        assert ds[name].dims == ("time", "met_lat", "met_lon"), name
        assert ds[name].attrs["units"] == units and ds[name].attrs["standard_name"] == STANDARD[name]
    assert ds.dem.attrs["units"] == "m" and ds.dem.attrs["standard_name"] == "surface_altitude"
    assert ds.city_id.dtype == np.int16 and ds.city_id.dims == ("lat", "lon")
    assert set(np.unique(ds.city_id.values)) <= set(range(-1, ds.sizes["city"]))
    assert list(ds.city_name_en.values) == ["City A", "City B", "City C"]
    for name in ("ihs_id", "ihs_name", "ihs_category", "ihs_lat", "ihs_lon", "ihs_row", "ihs_col"):
        assert ds[name].dims == ("ihs",)
    assert ds.ihs_operating.dims == ("ihs", "year") and ds.ihs_operating.dtype == bool
    assert list(ds.year.values) == [2019, 2020, 2021]
    assert ds.ihs_id.values[0] == "IHS0001" and ds.sizes["ihs"] == 8
    assert set(ds.ihs_category.values) <= {"steel", "cement", "coke", "power", "refinery"}
    assert ds.ihs_emission.dims == ("ihs", "time")
    assert ds.attrs["preset"] == "tiny" and ds.attrs["seed"] == 0 and ds.attrs["ihs_complete"]
    assert "synth_version" in ds.attrs and ds.attrs["description"]
    # the stored grids are the preset's and the met grid encloses it
    grid = Grid.from_dataset(ds)
    assert grid == PRESETS["tiny"].grid
    assert ds.met_lat.values.max() > ds.lat.values.max() and ds.met_lat.values.min() < ds.lat.values.min()
    # ihs_row/col point at the cell holding each source point
    rows, cols = grid.index_of(ds.ihs_lat.values, ds.ihs_lon.values)
    np.testing.assert_array_equal(rows, ds.ihs_row.values)
    np.testing.assert_array_equal(cols, ds.ihs_col.values)


def test_dem_has_slope_and_rough_terrain(ds):
    dem = ds.dem.values
    assert np.isfinite(dem).all()
    west, east = dem[:, :20], dem[:, -20:]
    assert west.mean() > east.mean() + 200           # mountains in the west, plain in the east
    rough = lambda z: np.abs(np.diff(z, axis=0)).mean()  # noqa: E731
    assert rough(west) > 5 * rough(east)               # rough mountains, smooth plain
    assert east.max() < 250


# ---------------------------------------------------------------------------------------------- truth
def test_truth_nonnegative_and_zero_outside_areas(ds):
    truth = ds.pm25_ihs_true.values
    assert np.isfinite(truth).all() and (truth >= 0).all()
    outside = ds.ihs_area_true.values == 0
    assert (truth[:, outside] == 0).all()
    assert (truth[:, ~outside].max(axis=0) > 0).all()  # every area pixel gets some plume
    pm = ds.pm25.values
    assert (pm >= truth).all() and (pm >= 1).all()
    assert ((pm - truth) >= 1 - 1e-4).all()           # the non-IHS part has its floor of 1


def test_areas_are_region_grow_areas(ds):
    from ihs_hpc.ops.region_grow import region_grow

    grid = Grid.from_dataset(ds)
    seeds = np.column_stack([ds.ihs_row.values, ds.ihs_col.values])
    res = region_grow(ds.dem.values, grid.lat, grid.lon, seeds, max_km=10.0)
    for i, m in enumerate(members(ds)):
        np.testing.assert_array_equal(res.members[i], m)
    np.testing.assert_array_equal(res.count, ds.ihs_area_true.values)


def test_truth_zero_outside_operating_years(ds):
    truth = ds.pm25_ihs_true.values.reshape(ds.sizes["time"], -1)
    years = ds.time.dt.year.values
    op = ds.ihs_operating.values
    mem = members(ds)
    assert (~op).any(), "the tiny scene should hold a source that is not operating some year"
    checked = 0
    for y_idx, year in enumerate(ds.year.values):
        days = years == year
        on = np.zeros(truth.shape[1], dtype=bool)
        for i in np.flatnonzero(op[:, y_idx]):
            on[mem[i]] = True
        for i in np.flatnonzero(~op[:, y_idx]):
            only_off = mem[i][~on[mem[i]]]
            assert (truth[np.ix_(days, only_off)] == 0).all()
            checked += only_off.size
            # the emission series is zero too
            assert (ds.ihs_emission.values[i, days] == 0).all()
    assert checked > 0
    # and an operating source does emit
    for i in range(ds.sizes["ihs"]):
        for y_idx, year in enumerate(ds.year.values):
            if op[i, y_idx]:
                assert ds.ihs_emission.values[i, years == year].max() > 0


def test_truth_tables_match_the_cube(ds):
    truth = ds.pm25_ihs_true.values.astype(np.float64).reshape(ds.sizes["time"], -1)
    pm = ds.pm25.values.astype(np.float64).reshape(ds.sizes["time"], -1)
    years = ds.time.dt.year.values
    mem = members(ds)
    union = ds.ihs_area_true.values.ravel() > 0
    op = ds.ihs_operating.values
    for y_idx, year in enumerate(ds.year.values):
        d = years == year
        t_y, p_y = truth[d], pm[d]
        np.testing.assert_allclose(ds.pm25_ihs_true_annual_mean.values[y_idx], t_y[:, union].mean(), rtol=1e-9)
        np.testing.assert_allclose(ds.pm25_annual_mean_in_areas.values[y_idx], p_y[:, union].mean(), rtol=1e-9)
        np.testing.assert_allclose(ds.pm25_annual_mean.values[y_idx], p_y.mean(), rtol=1e-9)
        np.testing.assert_allclose(ds.ihs_share_true.values[y_idx], t_y[:, union].sum() / p_y[:, union].sum(), rtol=1e-9)
        on = np.zeros(union.size, dtype=bool)
        for i in np.flatnonzero(op[:, y_idx]):
            on[mem[i]] = True
        np.testing.assert_allclose(ds.pm25_ihs_true_annual_mean_operating.values[y_idx], t_y[:, on].mean(), rtol=1e-9)
        for i, m in enumerate(mem):
            np.testing.assert_allclose(ds.ihs_area_annual_mean.values[i, y_idx], t_y[:, m].mean(), rtol=1e-9)
    own, area = ds.ihs_true_annual_mean.values, ds.ihs_area_annual_mean.values
    assert (own >= 0).all() and (own <= area * (1 + 1e-6) + 1e-9).all()
    assert (own[~op] == 0).all() and (own[op] > 0).all()
    # a source whose area no other area touches: its own contribution is the whole truth there
    count = ds.ihs_area_true.values.ravel()
    alone = [i for i, m in enumerate(mem) if (count[m] == 1).all()]
    for i in alone:
        np.testing.assert_allclose(own[i], area[i], rtol=1e-5)
    # the truth share is in the paper's range and the stored attrs agree
    share = ds.attrs["ihs_share_true"]
    assert 0.15 < share < 0.45
    np.testing.assert_allclose(share, truth[:, union].sum() / pm[:, union].sum(), rtol=1e-9)


def test_emission_series_shape(ds):
    e = ds.ihs_emission.values
    month = ds.time.dt.month.values
    on = e > 0
    winter = np.where(on[:, np.isin(month, (12, 1, 2))], e[:, np.isin(month, (12, 1, 2))], np.nan)
    summer = np.where(on[:, np.isin(month, (6, 7, 8))], e[:, np.isin(month, (6, 7, 8))], np.nan)
    assert np.nanmean(winter) > np.nanmean(summer)
    # shutdown spells: some operating-year days are (near) zero
    op_days = ds.ihs_operating.values[:, np.searchsorted(ds.year.values, ds.time.dt.year.values)]
    assert ((e == 0) & op_days).any()


# ---------------------------------------------------------------------------------------------- physics
def test_met_physical_ranges(ds):
    t2m, d2m, rh, tp = (ds[v].values for v in ("t2m", "d2m", "rh", "tp"))
    assert (d2m <= t2m).all()
    assert (tp >= 0).all() and 0.05 < (tp > 0).mean() < 0.4  # intermittent
    assert (rh >= 0).all() and (rh <= 100).all()
    assert 230 < t2m.min() and t2m.max() < 320
    assert 70000 < ds.sp.values.min() and ds.sp.values.max() < 106000
    assert np.abs(ds.u10.values).max() < 30 and np.abs(ds.v10.values).max() < 30
    # RH is the Magnus formula of t2m and d2m
    t, td = t2m.astype(np.float64) - 273.15, d2m.astype(np.float64) - 273.15
    magnus = 100 * np.exp(17.625 * td / (243.04 + td)) / np.exp(17.625 * t / (243.04 + t))
    np.testing.assert_allclose(rh, np.clip(magnus, 0, 100), rtol=1e-4, atol=1e-3)
    # seasonal cycles: cold winters, wet summers, higher winter pressure
    month = ds.time.dt.month.values
    jan, jul = month == 1, month == 7
    assert t2m[jan].mean() + 15 < t2m[jul].mean()
    assert tp[jul].mean() > 5 * tp[jan].mean()
    assert ds.sp.values[jan].mean() > ds.sp.values[jul].mean()
    # pressure falls with elevation
    sp_mean = ds.sp.values.mean(axis=0)
    assert sp_mean[:, 0].mean() < sp_mean[:, -1].mean()


def test_pm25_magnitudes(ds):
    pm = ds.pm25.values
    month = ds.time.dt.month.values
    assert pm[np.isin(month, (12, 1, 2))].mean() > 1.3 * pm[np.isin(month, (6, 7, 8))].mean()
    assert 20 < pm.mean() < 90
    inside = ds.ihs_area_true.values > 0
    assert pm[:, inside].mean() > pm[:, ~inside].mean()


# ---------------------------------------------------------------------------------------------- determinism
def _chunk_files(path: Path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_even_after_an_interrupted_run(scene_path, tmp_path):
    """Rerun with the same seed, interrupted after two tiles then resumed: byte-identical store."""
    out = tmp_path / "again.zarr"
    calls = []

    class Stop(Exception):
        pass

    def stop_after_two(done, total):
        calls.append((done, total))
        if done == 2:
            raise Stop

    with pytest.raises(Stop):
        generate_scene("tiny", out, seed=0, progress=stop_after_two)
    assert not zarr.open_group(out, mode="r").attrs["ihs_complete"]
    from ihs_hpc.io.cube import StoreError, open_store

    with pytest.raises(StoreError, match="incomplete"):
        open_store(out)
    seen = []
    generate_scene("tiny", out, seed=0, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (4, 4) and calls[0] == (0, 4)
    a, b = _chunk_files(scene_path), _chunk_files(out)
    assert a.keys() == b.keys()
    different = [k for k in a if a[k] != b[k]]
    assert not different, different[:5]


def test_different_seed_differs(built):
    s0, s1 = built, build_scene("tiny", 1)
    assert not np.array_equal(s0.dem, s1.dem)
    assert not np.array_equal(s0.met.fields["t2m"], s1.met.fields["t2m"])
    assert not np.array_equal(s0.sources.row, s1.sources.row) or not np.array_equal(s0.sources.col, s1.sources.col)
    from ihs_hpc.synth.pm25 import compute_tile

    p0, _, _ = compute_tile(s0.model, slice(0, 8), slice(40, 48))
    p1, _, _ = compute_tile(s1.model, slice(0, 8), slice(40, 48))
    assert not np.array_equal(p0, p1)


def test_tile_size_does_not_change_arrays(ds, built, tmp_path):
    from ihs_hpc.synth import write_scene

    out = write_scene(built, tmp_path / "t20.zarr", tile_size=20)
    with xr.open_zarr(out) as other:
        assert other.pm25.encoding["chunks"] == (1096, 20, 20)
        for name in ds.data_vars:
            np.testing.assert_array_equal(other[name].values, ds[name].values, err_msg=name)


def test_existing_complete_store_needs_overwrite(scene_path):
    from ihs_hpc.io.cube import StoreError

    with pytest.raises(StoreError, match="overwrite"):
        generate_scene("tiny", scene_path, seed=0)


def test_presets():
    tiny, demo, bth = (get_preset(n) for n in ("tiny", "demo", "bth"))
    assert tiny.grid.shape == (48, 64) and len(tiny.years) == 3
    assert demo.grid.shape == (128, 160) and demo.start == "2012-01-01" and demo.end == "2021-12-31"
    assert bth.grid.shape == (660, 630) and len(bth.time) == 3653
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("huge")


# ---------------------------------------------------------------------------------------------- files
def test_files_layout(tmp_path):
    import rasterio
    import pandas as pd

    out = generate_scene(TINY_JAN, tmp_path / "raw", seed=0, layout="files", progress=False)
    with xr.open_zarr(out / "truth.zarr") as truth:
        truth = truth.load()
    chap = sorted((out / "chap").glob("CHAP_PM2.5_D1K_*_V4.nc"))
    assert len(chap) == 31 and chap[0].name == "CHAP_PM2.5_D1K_20190101_V4.nc"
    n_missing = 0
    for t in (0, 15, 30):
        with xr.open_dataset(chap[t]) as day:
            assert day["PM2.5"].dims == ("lat", "lon")
            assert day.lat.values[0] > day.lat.values[-1]                      # north to south
            np.testing.assert_allclose(day.lat.values, truth.lat.values)
            np.testing.assert_allclose(day.lon.values, truth.lon.values)
            v = day["PM2.5"].values
            missing = v == 65535                                               # survives CF decoding
            n_missing += missing.sum()
            np.testing.assert_array_equal(v[~missing], truth.pm25.values[t][~missing])
    assert n_missing > 0
    with xr.open_dataset(out / "era5" / "era5_daily_2019.nc") as era5:
        assert set(era5.data_vars) == {"t2m", "d2m", "tp", "sp", "u10", "v10"}
        assert era5.t2m.dims == ("valid_time", "latitude", "longitude")
        assert era5.tp.attrs["units"] == "m" and era5.t2m.attrs["units"] == "K"
        np.testing.assert_array_equal(era5.valid_time.values, truth.time.values)
        for v in era5.data_vars:
            np.testing.assert_array_equal(era5[v].values, truth[v].values)
    with rasterio.open(out / "dem.tif") as src:
        assert src.crs.to_epsg() == 4326
        np.testing.assert_array_equal(src.read(1), truth.dem.values)
        assert src.transform == Grid.from_dataset(truth).transform
    table = pd.read_csv(out / "ihs.csv")
    assert list(table.columns) == ["id", "name", "category", "lon", "lat", "start_year", "end_year"]
    assert list(table.id) == list(truth.ihs_id.values)
    from rasterio.features import rasterize

    geo = json.loads((out / "cities.geojson").read_text())
    assert [f["properties"]["name_en"] for f in geo["features"]] == list(truth.city_name_en.values)
    grid = Grid.from_dataset(truth)
    raster = rasterize(((f["geometry"], i) for i, f in enumerate(geo["features"])), out_shape=grid.shape,
                       transform=grid.transform, fill=-1, dtype="int16")
    np.testing.assert_array_equal(raster, truth.city_id.values)
    assert not (out / ".synth_scratch").exists()
    # the ingest path reads the files back onto the same grid: identical inputs, NaN at the gaps
    ingest = pytest.importorskip("ihs_hpc.io.ingest")
    config = json.loads((out / "ingest.json").read_text())
    assert config["pm25"]["variable"] == "PM2.5"
    ingest.ingest(config, tmp_path / "cubes.zarr", tile_size=32, progress=False)
    with xr.open_zarr(tmp_path / "cubes.zarr") as back:
        pm = back.pm25.values
        gaps = np.isnan(pm)
        assert gaps.any() and abs(gaps.mean() - TINY_JAN.missing_fraction) < 0.002
        np.testing.assert_array_equal(pm[~gaps], truth.pm25.values[~gaps])
        for name in ("t2m", "d2m", "rh", "tp", "sp", "u10", "v10", "dem", "city_id", "ihs_row", "ihs_col",
                     "ihs_operating"):
            np.testing.assert_array_equal(back[name].values, truth[name].values, err_msg=name)
        assert list(back.ihs_id.values) == list(truth.ihs_id.values)


def test_ihs_ingest_command_reads_files_and_reports_cost(tmp_path):
    """``ihs ingest RUN.yaml`` with ``input.kind: files``: the store, and wall, MB/s and peak RSS in run.json."""
    import yaml
    from click.testing import CliRunner

    from ihs_hpc.cli import main

    raw = generate_scene(TINY_JAN, tmp_path / "raw", seed=0, layout="files", progress=False)
    run_dir = tmp_path / "run"
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "run_dir": str(run_dir), "grid": {"tile_size": 32}, "cluster": {"kind": "local", "n_workers": 2},
        "input": {"kind": "files", "files": json.loads((raw / "ingest.json").read_text())},
    }))
    result = CliRunner().invoke(main, ["ingest", str(config)])
    assert result.exit_code == 0, result.output
    assert "Dask local cluster" not in result.output  # ingesting runs in this process: no workers started
    record = json.loads((run_dir / "run.json").read_text())["stages"]["input"]
    assert record["status"] == "done"
    assert record["pm25_cube_mb"] == pytest.approx(31 * 48 * 64 * 4 / 2**20, abs=0.05)
    assert record["mb_per_s"] > 0 and record["peak_rss_mb"] > 50 and record["batch_days"] == 31
    assert "mb_per_s=" in result.output and "peak_rss_mb=" in result.output
    with xr.open_zarr(run_dir / "cubes.zarr") as cubes, xr.open_zarr(raw / "truth.zarr") as truth:
        pm = cubes.pm25.values
        valid = np.isfinite(pm)
        np.testing.assert_array_equal(pm[valid], truth.pm25.values[valid])
