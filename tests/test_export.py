"""``ihs export`` on the small fake run of test_stats_tables: every file checked against the run's stores
read here independently with xarray, against rasterio's rasteriser, pymannkendall, and the IOOS
compliance-checker's CF 1.8 suite (offline, with its packaged standard-name table)."""
from __future__ import annotations

import json
import shutil
import socket
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from test_stats_tables import shared_run  # the fake run of the stats tests, built once per session

NETCDF_REQUESTS = ["pm25_ihs", "cubes:pm25", "dem"]


def _invoke(*args):
    from click.testing import CliRunner

    from ihs_hpc.cli import main

    return CliRunner().invoke(main, ["export", *map(str, args)])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    config, arrays, _, _ = shared_run(tmp_path_factory)
    out = tmp_path_factory.mktemp("export") / "out"
    requests = [a for r in NETCDF_REQUESTS for a in ("--netcdf", r)]
    result = _invoke(config.run_dir, "--out", out, *requests)
    assert result.exit_code == 0, result.output
    return config.run_dir, out, arrays


@pytest.fixture(scope="module")
def stores(exported):
    run, _, _ = exported
    # float64 throughout: float32 sums over ~1000 days drift by ~1e-6 relative
    f64 = lambda v: v.astype("float64") if v.dtype.kind == "f" else v  # noqa: E731
    return {name: xr.open_zarr(run / path).map(f64) for name, path in (
        ("cubes", "cubes.zarr"), ("stage1", "stage1.zarr"), ("stage3", "stage3.zarr"))}


def _paired(stores):
    """Pixel-days where total, estimated IHS and true IHS PM2.5 are all finite (the stats definition)."""
    c, s3 = stores["cubes"], stores["stage3"]
    return c.pm25.notnull() & s3.pm25_ihs.notnull() & c.pm25_ihs_true.notnull()


def _read(path, band=None):
    import rasterio

    with rasterio.open(path) as src:
        return src.read() if band is None else src.read(band)


# --------------------------------------------------------------------------- GeoTIFF
def test_cogs_are_georeferenced_cloud_optimized_and_tagged(exported):
    import rasterio

    from ihs_hpc.grid import Grid

    run, out, _ = exported
    grid = Grid.from_dataset(xr.open_zarr(run / "stage1.zarr"))
    manifest = json.loads((out / "export.json").read_text())
    tifs = sorted(out.glob("*.tif"))
    expected = {"pm25_mean", "pm25_ihs_mean", "pm25_ihs_share_mean", "pm25_background_mean", "pm25_annual_mean",
                "pm25_ihs_annual_mean", "pm25_trend_sen_slope", "pm25_trend_significant",
                "pm25_ihs_trend_sen_slope", "pm25_ihs_trend_mk_p", "pm25_ihs_trend_significant"}
    assert expected <= {p.stem for p in tifs}
    for path in tifs:
        assert path.name in manifest["files"]
        with rasterio.open(path) as src:
            assert src.crs.to_epsg() == 4326, path.name
            assert src.transform.almost_equals(grid.transform), path.name
            assert (src.height, src.width) == grid.shape
            assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG", path.name
            assert src.nodata is not None and src.tags()["units"] and src.units[0] == src.tags()["units"]
    with rasterio.open(out / "pm25_annual_mean.tif") as src:
        assert src.descriptions == ("2012", "2013", "2014") and src.tags()["units"] == "ug m-3"
    with rasterio.open(out / "pm25_ihs_trend_significant.tif") as src:
        assert src.dtypes[0] == "int8" and src.nodata == -128


def test_cog_values_equal_the_stores_means(exported, stores):
    _, out, _ = exported
    c, s3 = stores["cubes"], stores["stage3"]
    pair = _paired(stores)
    checks = {
        "pm25_mean": c.pm25.mean("time"),
        "pm25_ihs_mean": s3.pm25_ihs.where(pair).mean("time"),
        "pm25_background_mean": s3.pm25_bl_oem.mean("time"),
        "pm25_ihs_share_mean": 100 * s3.pm25_ihs.where(pair).sum("time") / c.pm25.where(pair).sum("time"),
    }
    inside = stores["stage1"].ihs_mask.values.astype(bool)
    for name, expected in checks.items():
        with np.errstate(invalid="ignore"):  # 0 / 0 outside the IHS areas
            expected = expected.values
        if name == "pm25_ihs_share_mean":
            expected = np.where(inside, expected, np.nan)
        got = _read(out / f"{name}.tif", 1)
        assert np.array_equal(np.isnan(got), np.isnan(expected)), name
        np.testing.assert_allclose(got, expected, rtol=2e-6, equal_nan=True, err_msg=name)
    annual = c.pm25.groupby("time.year").mean("time")
    np.testing.assert_allclose(_read(out / "pm25_annual_mean.tif"), annual.values, rtol=2e-6)
    annual_ihs = s3.pm25_ihs.where(pair).groupby("time.year").mean("time")
    np.testing.assert_allclose(_read(out / "pm25_ihs_annual_mean.tif"), annual_ihs.values, rtol=2e-6, equal_nan=True)
    assert np.isnan(_read(out / "pm25_ihs_mean.tif", 1)[~inside]).all()


def test_cog_trend_maps_against_pymannkendall(exported, stores):
    import pymannkendall as pmk

    _, out, _ = exported
    annual = stores["cubes"].pm25.groupby("time.year").mean("time").values
    slope, p = _read(out / "pm25_trend_sen_slope.tif", 1), _read(out / "pm25_trend_mk_p.tif", 1)
    sign = _read(out / "pm25_trend_significant.tif", 1)
    rng = np.random.default_rng(1)
    for r, c in zip(rng.integers(0, slope.shape[0], 12), rng.integers(0, slope.shape[1], 12)):
        ref = pmk.original_test(annual[:, r, c])
        assert np.isclose(slope[r, c], ref.slope, rtol=1e-5) and np.isclose(p[r, c], ref.p, rtol=1e-5)
        assert sign[r, c] == {"increasing": 1, "decreasing": -1, "no trend": 0}[ref.trend]
    inside = stores["stage1"].ihs_mask.values.astype(bool)
    assert (_read(out / "pm25_ihs_trend_significant.tif", 1)[~inside] == -128).all()  # no estimate: nodata


# --------------------------------------------------------------------------- NetCDF
def _check_cf(path):
    """IOOS compliance-checker, CF 1.8 suite; returns {priority: [failed check names and messages]}."""
    from compliance_checker.runner import CheckSuite

    CheckSuite.load_all_available_checkers()
    suite = CheckSuite()
    results = suite.run_all(suite.load_dataset(str(path)), ["cf:1.8"], skip_checks=[])
    groups, errors = results["cf:1.8"]
    assert not errors, errors
    failed = {3: [], 2: [], 1: []}
    for g in groups:
        score, possible = g.value if isinstance(g.value, tuple) else (int(bool(g.value)), 1)
        if score < possible:
            failed[g.weight].append(f"{g.name}: {g.msgs}")
    return failed


@pytest.fixture
def loopback_only(monkeypatch):
    """Refuse every connection off this machine (the checker must work offline)."""
    attempts = []
    real_connect = socket.socket.connect

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in ("::1", "localhost")):
            attempts.append(address)
            raise OSError(f"network disabled in this test: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


def test_netcdf_files_pass_the_cf_checker_offline(exported, loopback_only):
    from compliance_checker.cf.util import StandardNameTable

    _, out, _ = exported
    files = sorted(out.glob("*.nc"))
    assert {p.name for p in files} == {"pm25_period_mean_maps.nc", "pm25_annual_mean_maps.nc", "pm25_trend_maps.nc",
                                       "pm25_ihs_daily.nc", "pm25_cubes_daily.nc", "dem.nc"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for path in files:
            failed = _check_cf(path)
            assert failed[3] == [], f"{path.name}: high-priority CF failures {failed[3]}"
            assert failed[2] == [], f"{path.name}: medium-priority CF failures {failed[2]}"
    assert loopback_only == []
    assert not [w for w in caught if "standard name table" in str(w.message).lower()]
    assert StandardNameTable()._version  # the packaged table the checker used


def test_netcdf_values_time_and_grid_mapping(exported, stores):
    _, out, _ = exported
    s3 = stores["stage3"]
    nc = xr.open_dataset(out / "pm25_ihs_daily.nc")
    assert nc.attrs["Conventions"] == "CF-1.8" and nc.pm25_ihs.attrs["grid_mapping"] == "crs"
    assert nc.crs.attrs["grid_mapping_name"] == "latitude_longitude"
    np.testing.assert_array_equal(nc.time.values, s3.time.values + np.timedelta64(12, "h"))
    np.testing.assert_array_equal(nc.time_bnds.values[:, 0], s3.time.values)
    np.testing.assert_array_equal(nc.pm25_ihs.values, s3.pm25_ihs.values)  # NaN <-> _FillValue round trip
    with xr.open_dataset(out / "pm25_ihs_daily.nc", decode_times=False, mask_and_scale=False) as raw:
        assert raw.time.attrs["units"].startswith("days since 1970-01-01") and raw.time.attrs["calendar"] == "standard"
        assert raw.pm25_ihs.attrs["_FillValue"] == np.float32(9.969209968386869e36)
        assert not np.isnan(raw.pm25_ihs.values).any()
    maps = xr.open_dataset(out / "pm25_period_mean_maps.nc")
    np.testing.assert_array_equal(maps.pm25_ihs_mean.values[0], _read(out / "pm25_ihs_mean.tif", 1))
    assert maps.pm25_mean.attrs["standard_name"] == "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"
    assert maps.pm25_mean.attrs["cell_methods"] == "time: mean"
    first, last = stores["cubes"].time.values[[0, -1]]
    np.testing.assert_array_equal(maps.time_bnds.values[0], [first, last + np.timedelta64(1, "D")])
    trends = xr.open_dataset(out / "pm25_trend_maps.nc")
    np.testing.assert_array_equal(trends.pm25_trend_significant.values, _read(out / "pm25_trend_significant.tif", 1))


# --------------------------------------------------------------------------- vectors
def test_geopackage_polygons_rasterise_to_the_stage1_areas(exported, stores):
    import geopandas as gpd
    from rasterio.features import rasterize

    from ihs_hpc.grid import Grid

    run, out, arrays = exported
    s1 = stores["stage1"]
    grid = Grid.from_dataset(s1)
    areas = gpd.read_file(out / "ihs_radiation_areas.gpkg", layer="ihs_radiation_areas")
    assert areas.crs.to_epsg() == 4326 and len(areas) == len(arrays["members"])
    union = rasterize(((g, 1) for g in areas.geometry), out_shape=grid.shape, transform=grid.transform, fill=0,
                      dtype="uint8")
    np.testing.assert_array_equal(union.astype(bool), s1.ihs_mask.values.astype(bool))
    offsets, pixels = s1.member_offset.values, s1.member_pixel.values
    pair = _paired(stores).values
    ihs = stores["stage3"].pm25_ihs.values
    total = stores["cubes"].pm25.values
    cubes = stores["cubes"]
    for i, row in areas.iterrows():
        own = rasterize([(row.geometry, 1)], out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8")
        members = np.sort(pixels[offsets[i]:offsets[i + 1]])
        np.testing.assert_array_equal(np.flatnonzero(own.ravel()), members)
        assert row.ihs_id == str(cubes.ihs_id.values[i]) and row["name"] == str(cubes.ihs_name.values[i])
        assert row.category == str(cubes.ihs_category.values[i])
        years = cubes.year.values[cubes.ihs_operating.values[i].astype(bool)]
        assert (row.first_year, row.last_year, row.n_years_operating) == (years.min(), years.max(), years.size)
        assert np.isclose(row.area_km2, s1.ihs_area_km2.values[i])
        p = pair.reshape(pair.shape[0], -1)[:, members]
        assert np.isclose(row.pm25_ihs_mean, ihs.reshape(ihs.shape[0], -1)[:, members][p].mean())
        assert np.isclose(row.share_pct, 100 * ihs.reshape(ihs.shape[0], -1)[:, members][p].sum()
                          / total.reshape(total.shape[0], -1)[:, members][p].sum())
    assert areas.loc[1, "operating_years"] == "2013-2014" and areas.loc[2, "operating_years"] == "2012-2013"
    geojson = gpd.read_file(out / "ihs_radiation_areas.geojson")
    assert len(geojson) == len(areas) and geojson.geometry.geom_equals_exact(areas.geometry, 1e-9).all()
    cities = gpd.read_file(out / "ihs_radiation_areas.gpkg", layer="cities")
    city_id = cubes.city_id.values
    for _, row in cities.iterrows():
        raster = rasterize([(row.geometry, 1)], out_shape=grid.shape, transform=grid.transform, fill=0, dtype="uint8")
        np.testing.assert_array_equal(raster.astype(bool), city_id == row.city_index)
    assert list(cities.city) == ["Alpha City", "Beta City"]
    points = gpd.read_file(out / "ihs_sources.geojson")
    np.testing.assert_allclose(points.geometry.y, cubes.ihs_lat.values)


# --------------------------------------------------------------------------- tables
def test_tables_as_csv_and_excel(exported):
    run, out, _ = exported
    tables = out / "tables"
    for src in (run / "stats").glob("*.csv"):
        assert (tables / src.name).read_bytes() == src.read_bytes()
    book = pd.read_excel(tables / "ihs_tables.xlsx", sheet_name=None)
    pd.testing.assert_frame_equal(book["annual"], pd.read_csv(run / "stats" / "annual.csv"), check_dtype=False)
    assert "ihs_radiation_areas" in book and len(book["ihs_radiation_areas"]) == 3
    assert "city_pm25_ihs_annual" in book


# --------------------------------------------------------------------------- bad requests
def test_bad_requests_fail_clearly_and_touch_nothing(exported, tmp_path):
    run, _, _ = exported
    out = tmp_path / "out"
    out.mkdir()
    earlier = out / "pm25_mean.tif"
    earlier.write_bytes(b"an earlier export")

    result = _invoke(run, "--out", out, "--netcdf", "pm25_nonexistent")
    assert result.exit_code != 0 and "pm25_nonexistent" in result.output and "pm25_ihs" in result.output
    result = _invoke(run, "--out", out, "--netcdf", "stage9:pm25")
    assert result.exit_code != 0 and "unknown store 'stage9'" in result.output
    result = _invoke(run, "--out", out, "--netcdf", "ihs_operating")
    assert result.exit_code != 0 and "only maps" in result.output
    assert earlier.read_bytes() == b"an earlier export"
    assert sorted(p.name for p in out.iterdir()) == ["pm25_mean.tif"]

    import zarr

    broken = tmp_path / "run"
    shutil.copytree(run, broken, ignore=shutil.ignore_patterns("report", "allocation"))
    shutil.copytree(broken / "cubes.zarr", broken / "prep.zarr")  # pm25 now in two stores
    result = _invoke(broken, "--out", out, "--netcdf", "pm25")
    assert result.exit_code != 0 and "several stores (cubes, prep)" in result.output and "cubes:pm25" in result.output
    zarr.open_group(broken / "stage3.zarr", mode="r+").attrs["ihs_complete"] = False  # stage 3 did not finish
    result = _invoke(broken, "--out", out, "--netcdf", "pm25_ihs")
    assert result.exit_code != 0 and "stage3.zarr is incomplete" in result.output
    zarr.open_group(broken / "stats" / "maps.zarr", mode="r+").attrs["ihs_complete"] = False  # nor did stats
    result = _invoke(broken, "--out", out)
    assert result.exit_code != 0 and "maps.zarr is incomplete" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["pm25_mean.tif"]
    assert earlier.read_bytes() == b"an earlier export"
    result = _invoke(tmp_path / "nowhere", "--out", out)
    assert result.exit_code != 0 and "no such run directory" in result.output


def test_export_run_is_the_plain_function_behind_the_command(exported, tmp_path):
    from ihs_hpc.export import ExportError, export_run

    run, out, _ = exported
    manifest = export_run(run, tmp_path / "again", excel=False)
    assert manifest["files"].keys() <= json.loads((out / "export.json").read_text())["files"].keys()
    assert not (tmp_path / "again" / "tables" / "ihs_tables.xlsx").exists()
    with pytest.raises(ExportError, match="run directory itself"):
        export_run(run, run)
