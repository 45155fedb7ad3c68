"""End-to-end ingest: real-format files written here → a complete ``cubes.zarr``; failures leave nothing valid."""
from __future__ import annotations

import json
import shutil

import netCDF4
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
import zarr
from affine import Affine

from ihs_hpc.grid import Grid
from ihs_hpc.io import rechunk as ingest_module  # the rechunk writes the tiles
from ihs_hpc.io.cube import StoreError, is_complete, open_store
from ihs_hpc.io.errors import IngestError, IngestWarning
from ihs_hpc.io.ingest import ingest
from ihs_hpc.io.ingest_config import check_config, grid_from_config
from ihs_hpc.ops.humidity import relative_humidity

pytestmark = pytest.mark.filterwarnings("ignore:.*cities cover no cell")

# a small box in Hebei that straddles Baoding / Langfang / Beijing (GCJ-02 BTH boundaries rasterised on it)
GRID = Grid(39.3, 39.7, 115.9, 116.4, 0.01)  # 40 x 50 cells
MET = GRID.enclosing(0.1, margin_cells=1)
DAYS = pd.date_range("2015-12-30", periods=5)  # crosses a year boundary: years 2015, 2016
TILE = 16


def pm_truth(i, lat, lon):
    return (60.0 + 30.0 * np.cos(lat * 11.0) + 4.0 * (lon - 116.0) + 2.0 * i).astype(np.float32)


MET_FIELDS = {
    "t2m": lambda d, la, lo: 290.0 + 0.5 * la - 0.2 * lo + d,
    "d2m": lambda d, la, lo: 275.0 + 0.3 * la - 0.1 * lo + 0.5 * d,
    "tp": lambda d, la, lo: 1e-3 * (2.0 + 0.1 * la - 0.03 * lo + 0.1 * d),
    "sp": lambda d, la, lo: 95000.0 - 300.0 * (la - 39.0) + 50.0 * (lo - 116.0) + 5 * d,
    "u10": lambda d, la, lo: 0.5 + 0.2 * la - 0.1 * lo + 0.1 * d,
    "v10": lambda d, la, lo: -1.0 + 0.1 * la + 0.05 * lo - 0.1 * d,
}


def write_chap_files(folder, *, bad_day=None):
    folder.mkdir(parents=True, exist_ok=True)
    lat = (np.arange(39.0, 40.0, 0.01) + 0.005)[::-1]
    lon = np.arange(115.5, 116.8, 0.01) + 0.005
    for i, d in enumerate(DAYS):
        path = folder / f"CHAP_PM2.5_D1K_{d:%Y%m%d}_V4.nc"
        if i == bad_day:
            path.write_bytes(b"\x89HDF garbage")
            continue
        ds = netCDF4.Dataset(path, "w")
        ds.createDimension("lat", lat.size)
        ds.createDimension("lon", lon.size)
        ds.createVariable("lat", "f8", ("lat",))[:] = lat
        ds.createVariable("lon", "f8", ("lon",))[:] = lon
        v = ds.createVariable("PM2.5", "f4", ("lat", "lon"))
        data = pm_truth(i, lat[:, None], lon[None, :])
        data[45, 50] = 65535.0
        v[:] = data
        ds.close()
    return folder


def write_cds(path):
    lat = np.arange(40.5, 38.49, -0.25)
    lon = np.arange(115.0, 117.01, 0.25)
    data = {v: (("valid_time", "latitude", "longitude"),
                np.stack([f(i, lat[:, None], lon[None, :]) + 0 * lon[None, :] for i in range(len(DAYS))]).astype(np.float32),
                {"units": {"t2m": "K", "d2m": "K", "tp": "m", "sp": "Pa"}.get(v, "m s**-1")})
            for v, f in MET_FIELDS.items()}
    xr.Dataset(data, coords={"valid_time": DAYS.values, "latitude": lat, "longitude": lon}).to_netcdf(path)
    return path


def write_gee(folder):
    folder.mkdir(parents=True, exist_ok=True)
    names = {"t2m": "temperature_2m", "d2m": "dewpoint_temperature_2m", "tp": "total_precipitation_sum",
             "sp": "surface_pressure", "u10": "u_component_of_wind_10m", "v10": "v_component_of_wind_10m"}
    lat = np.arange(40.5, 38.49, -0.1)
    lon = np.arange(115.0, 117.01, 0.1)
    for i, d in enumerate(DAYS):
        with rasterio.open(folder / f"ERA5_LAND_{d:%Y%m%d}.tif", "w", driver="GTiff", width=lon.size, height=lat.size,
                           count=6, dtype="float32", crs="EPSG:4326",
                           transform=Affine(0.1, 0, lon[0] - 0.05, 0, -0.1, lat[0] + 0.05)) as dst:
            for b, (v, f) in enumerate(MET_FIELDS.items()):
                dst.write((f(i, lat[:, None], lon[None, :]) + 0 * lon[None, :]).astype(np.float32), b + 1)
                dst.set_band_description(b + 1, names[v])
    return folder


def dem_plane(lon, lat):
    return 20.0 + 80.0 * (lon - 115.9) + 50.0 * (39.7 - lat)


def write_dem(path):
    res = 0.05
    lon = 115.5 + (np.arange(24) + 0.5) * res
    lat = 40.0 - (np.arange(16) + 0.5) * res
    with rasterio.open(path, "w", driver="GTiff", width=lon.size, height=lat.size, count=1, dtype="float32",
                       crs="EPSG:4326", transform=Affine(res, 0, 115.5, 0, -res, 40.0)) as dst:
        dst.write(dem_plane(lon[None, :], lat[:, None]).astype(np.float32), 1)
    return path


def write_ihs_csv(path):
    pd.DataFrame({"id": ["S1", "S2"], "longitude": [116.005, 116.305], "latitude": [39.605, 39.405],
                  "name": ["steel", "coke"], "start_year": [2015, 2016], "end_year": [2015, ""]}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def input_files(tmp_path_factory, shared_data):
    """Every input written once per module; the city file is the real GCJ-02 BTH GeoJSON cut to the box
    (its name keeps 'cnmaps', so crs_offset='auto' converts it)."""
    from ihs_hpc.io.cities import read_city_polygons

    root = tmp_path_factory.mktemp("in")
    cities = read_city_polygons(shared_data / "bth_boundaries" / "bth_13_cities_cnmaps.geojson", crs_offset=None)
    cities = cities.rename(columns={"city_name": "name", "city_name_en": "name_en", "city_adcode": "adcode"})
    clipped = cities.geometry.clip_by_rect(GRID.west - 0.3, GRID.south - 0.3, GRID.east + 0.3, GRID.north + 0.3)
    far = clipped.is_empty  # cities away from the box: a coarse outline keeps all 13 in the table
    cities["geometry"] = clipped.where(~far, cities.geometry.simplify(0.05))
    cities_path = root / "bth_cnmaps_box.geojson"
    cities.to_file(cities_path, driver="GeoJSON")
    return {
        "root": root,
        "chap": write_chap_files(root / "chap"),
        "cds": write_cds(root / "era5.nc"),
        "dem": write_dem(root / "dem.tif"),
        "ihs": write_ihs_csv(root / "ihs.csv"),
        "cities": cities_path,
    }


@pytest.fixture
def inputs(input_files):
    return {
        "start": str(DAYS[0].date()), "end": str(DAYS[-1].date()),
        "grid": [GRID.south, GRID.north, GRID.west, GRID.east, GRID.res], "tile_size": TILE, "batch_days": 2,
        "pm25": {"path": str(input_files["chap"]), "format": "chap-netcdf"},
        "era5": {"path": str(input_files["cds"]), "format": "cds-netcdf"},
        "dem": {"path": str(input_files["dem"])},
        "ihs": {"path": str(input_files["ihs"])},
        "cities": {"path": str(input_files["cities"])},
    }


@pytest.fixture(scope="module")
def base_store(tmp_path_factory, input_files):
    """One complete store from the CDS/CSV inputs (tests copy it when they need an existing store)."""
    out = tmp_path_factory.mktemp("base") / "cubes.zarr"
    config = {
        "start": str(DAYS[0].date()), "end": str(DAYS[-1].date()),
        "grid": [GRID.south, GRID.north, GRID.west, GRID.east, GRID.res], "tile_size": TILE, "batch_days": 2,
        "pm25": {"path": str(input_files["chap"])}, "era5": {"path": str(input_files["cds"])},
        "dem": {"path": str(input_files["dem"])}, "ihs": {"path": str(input_files["ihs"])},
        "cities": {"path": str(input_files["cities"])},
    }
    return ingest(config, out, progress=False)


def expected_met(var, i):
    la, lo = MET.lat[:, None], MET.lon[None, :]
    if var == "rh":
        return relative_humidity(expected_met("t2m", i), expected_met("d2m", i), units="K")
    return np.broadcast_to(MET_FIELDS[var](i, la, lo), MET.shape)


def check_store(path, *, clipped=False):
    ds = open_store(path)
    assert ds.attrs["ihs_complete"] is True
    # PM2.5 cube: values, layout, CF attributes
    assert ds.pm25.dims == ("time", "lat", "lon") and ds.pm25.dtype == np.float32
    assert ds.pm25.encoding["chunks"] == (len(DAYS), TILE, TILE)
    assert ds.pm25.attrs["units"] == "ug m-3" and ds.pm25.attrs["grid_mapping"] == "crs"
    exp = np.stack([pm_truth(i, GRID.lat[:, None], GRID.lon[None, :]) for i in range(len(DAYS))])
    r, c = GRID.index_of(39.995 - 0.45, 115.505 + 0.50)
    exp[:, r, c] = np.nan  # the 65535 cell
    if clipped:
        exp[:, ds.city_id.values < 0] = np.nan
    np.testing.assert_allclose(ds.pm25.values, exp, atol=1e-5)
    np.testing.assert_array_equal(ds.time.values, DAYS.values)
    # meteorology on the native 0.1° grid
    np.testing.assert_allclose(ds.met_lat.values, MET.lat)
    np.testing.assert_allclose(ds.met_lon.values, MET.lon)
    tol = {"t2m": 1e-3, "d2m": 1e-3, "rh": 1e-3, "tp": 1e-8, "sp": 0.02, "u10": 1e-5, "v10": 1e-5}
    units = {"t2m": "K", "d2m": "K", "rh": "%", "tp": "m", "sp": "Pa", "u10": "m s-1", "v10": "m s-1"}
    for var in ("t2m", "d2m", "rh", "tp", "sp", "u10", "v10"):
        assert ds[var].dims == ("time", "met_lat", "met_lon") and ds[var].attrs["units"] == units[var]
        for i in range(len(DAYS)):
            np.testing.assert_allclose(ds[var].values[i], expected_met(var, i), atol=tol[var], err_msg=var)
    # static maps and tables
    np.testing.assert_allclose(ds.dem.values, dem_plane(GRID.lon[None, :], GRID.lat[:, None]), atol=0.05)
    assert ds.dem.attrs["units"] == "m" and ds.dem.attrs["ihs_resampling"] == "bilinear"
    assert ds.city_id.dtype == np.int16
    present = {str(ds.city_name_en.values[k]) for k in np.unique(ds.city_id.values) if k >= 0}
    assert {"Beijing", "Baoding", "Langfang"} <= present
    assert ds.sizes["city"] == 13 and int(ds.city_adcode.values[0]) == 110000
    assert list(ds.ihs_id.values) == ["S1", "S2"]
    np.testing.assert_array_equal(ds.ihs_row.values, [9, 29])
    np.testing.assert_array_equal(ds.ihs_col.values, [10, 40])
    np.testing.assert_array_equal(ds.year.values, [2015, 2016])
    np.testing.assert_array_equal(ds.ihs_operating.values, [[True, False], [False, True]])
    return ds


def test_ingest_chap_cds_csv(base_store):
    ds = check_store(base_store)
    assert json.loads(ds.attrs["ihs_era5_source_units"])["t2m"] == "K (attribute)"
    assert ds.city_id.attrs["ihs_crs_offset_removed"] == "gcj02"  # auto: the file name says cnmaps
    assert sorted(p.name for p in base_store.parent.iterdir()) == ["cubes.zarr"]  # no partial or scratch left


def test_ingest_gee_geojson_status_clip_and_overwrite(tmp_path, inputs, base_store):
    out = tmp_path / "cubes.zarr"
    shutil.copytree(base_store, out)
    inputs["era5"] = {"path": str(write_gee(tmp_path / "gee")), "format": "gee-geotiff"}
    pts = tmp_path / "ihs.geojson"
    pts.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"ihs_id": i, "name": n}, "geometry": {"type": "Point", "coordinates": xy}}
        for i, n, xy in (("S1", "steel", [116.005, 39.605]), ("S2", "coke", [116.305, 39.405]))]}))
    status = tmp_path / "status.csv"
    pd.DataFrame({"ihs_id": ["S1", "S1", "S2", "S2"], "year": [2015, 2016, 2015, 2016],
                  "operating": [1, 0, 0, 1]}).to_csv(status, index=False)
    inputs["ihs"] = {"path": str(pts), "status": str(status)}
    inputs["clip_to_boundary"] = True
    inputs["workers"] = 2
    with pytest.raises(IngestError, match="already holds a complete store"):
        ingest(inputs, out, progress=False)
    ingest(inputs, out, progress=False, overwrite=True)
    ds = open_store(out)
    assert json.loads(ds.attrs["ihs_era5_source_units"])["t2m"] == "K (assumed)"
    assert ds.attrs["ihs_ingest_config"] != open_store(base_store).attrs["ihs_ingest_config"]
    ds.close()
    # GEE ERA5-Land pixel centres sit on multiples of 0.1°, half a cell from the met grid: bilinear is exact on planes
    check_store(out, clipped=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cubes.zarr", "gee", "ihs.geojson", "status.csv"]


def test_failed_ingest_leaves_nothing_valid_and_keeps_old_store(tmp_path, inputs, base_store):
    out = tmp_path / "cubes.zarr"
    shutil.copytree(base_store, out)
    before = open_store(out).pm25.values.copy()
    # a corrupt daily file in a second set of inputs: the error names it, the old store stays as it was
    inputs["pm25"] = {"path": str(write_chap_files(tmp_path / "chap2", bad_day=3))}
    with pytest.raises(IngestError, match="CHAP_PM2.5_D1K_20160102_V4.nc: day 2016-01-02: cannot be read") as info:
        ingest(inputs, out, progress=False, overwrite=True)
    assert info.value.day == "2016-01-02"
    np.testing.assert_array_equal(open_store(out).pm25.values, before)
    partial = tmp_path / "cubes.zarr.partial"
    assert partial.exists() and not is_complete(partial)
    with pytest.raises(StoreError):
        open_store(partial)


def test_failed_first_ingest_then_resume(tmp_path, inputs, monkeypatch):
    out = tmp_path / "cubes.zarr"
    real = ingest_module.write_tile

    def flaky(path, tile, data, record=None):
        if record and record.startswith("met_"):
            raise KeyboardInterrupt  # interrupted during the meteorology pass
        return real(path, tile, data, record=record)

    monkeypatch.setattr(ingest_module, "write_tile", flaky)
    with pytest.raises(KeyboardInterrupt):
        ingest(inputs, out, progress=False)
    assert not out.exists() and not is_complete(tmp_path / "cubes.zarr.partial")
    done = set((tmp_path / "cubes.zarr.partial" / "_ihs_tiles").iterdir())
    assert len(done) == len(GRID.tiles(TILE))  # the PM2.5 tiles were finished
    monkeypatch.setattr(ingest_module, "write_tile", real)
    pm_reads = {"n": 0}
    from ihs_hpc.io.chap import DailyPM25Source

    real_read = DailyPM25Source.read_days

    def counting(self, days, out=None):
        pm_reads["n"] += 1
        return real_read(self, days, out)

    monkeypatch.setattr(DailyPM25Source, "read_days", counting)
    check_store(ingest(inputs, out, progress=False))
    assert pm_reads["n"] == 0  # PM2.5 was not read again


@pytest.mark.parametrize("mutate,match", [
    (lambda c: c.update(colour="red"), r"unknown ingest configuration key\(s\) \['colour'\]"),
    (lambda c: c.pop("era5"), "needs a 'era5' section"),
    (lambda c: c["pm25"].update(varaible="PM2.5"), r"unknown key\(s\) \['varaible'\] in configuration section 'pm25'"),
    (lambda c: c.pop("start"), "needs 'start'"),
    (lambda c: c["pm25"].update(variable="pm25_mean"), r"variable 'pm25_mean': no variable 'pm25_mean'; the file has 'lat', 'lon', 'PM2.5'"),
    (lambda c: c["era5"].update(units={"t2m": "degC"}), "variable 't2m': values .* outside the plausible"),
    (lambda c: c.update(end="2016-01-05"), "2016-01-04"),
])
def test_bad_configurations(tmp_path, inputs, mutate, match):
    mutate(inputs)
    with pytest.raises(IngestError, match=match):
        ingest(inputs, tmp_path / "cubes.zarr", progress=False)
    assert not (tmp_path / "cubes.zarr").exists()


def test_grid_from_config():
    assert grid_from_config("bth").shape == (660, 630)
    assert grid_from_config({"south": 39, "north": 40, "west": 116, "east": 117}).shape == (100, 100)
    assert grid_from_config([39, 40, 116, 117, 0.1]).shape == (10, 10)
    with pytest.raises(IngestError):
        check_config([1, 2])


def test_urban_map_is_averaged_onto_the_grid(tmp_path, inputs):
    """``urban`` (stage 3's drift covariate): a raster at twice the grid's resolution arrives as the mean
    of the four source cells of each grid cell; a path with no raster is an error naming it."""
    res = GRID.res / 2
    ny, nx = 2 * GRID.ny, 2 * GRID.nx
    values = np.random.default_rng(3).gamma(2.0, 50.0, (ny, nx)).astype(np.float32)
    with rasterio.open(tmp_path / "built.tif", "w", driver="GTiff", width=nx, height=ny, count=1, dtype="float32",
                       crs="EPSG:4326", transform=Affine(res, 0, GRID.west, 0, -res, GRID.north)) as dst:
        dst.write(values, 1)
    inputs["urban"] = {"path": str(tmp_path / "built.tif")}
    ds = open_store(ingest(inputs, tmp_path / "cubes.zarr", progress=False))
    expected = values.reshape(GRID.ny, 2, GRID.nx, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(ds.urban.values, expected, rtol=1e-5)
    assert ds.urban.attrs["ihs_resampling"] == "average"
    inputs["urban"] = {"path": str(tmp_path / "nothing_here")}
    with pytest.raises(IngestError, match="urban map: .*nothing_here: no such file"):
        ingest(inputs, tmp_path / "other.zarr", progress=False)
