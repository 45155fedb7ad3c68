"""CHAP daily NetCDF / GeoTIFF readers and the bounded-memory PM2.5 ingest."""
from __future__ import annotations

import warnings

import netCDF4
from affine import Affine
import numpy as np
import pandas as pd
import pytest
import zarr

from ihs_hpc.grid import Grid
from ihs_hpc.io import ingest as ingest_module
from ihs_hpc.io import rechunk as rechunk_module  # the rechunk writes the tiles
from ihs_hpc.io.chap import DailyPM25Source, read_chap_day, read_geotiff_day
from ihs_hpc.io.daily_files import day_from_name, index_daily_files
from ihs_hpc.io.cube import StoreError, is_complete, open_store
from ihs_hpc.io.errors import IngestError, IngestWarning
from ihs_hpc.io.ingest import ingest_pm25

GRID = Grid(39.0, 39.3, 116.0, 116.4, 0.01)  # 30 x 40 cells


def truth(day_index, lat, lon):
    return (40.0 + 20.0 * np.sin(lat * 9.0) + 5.0 * (lon - 116.0) + 3.0 * day_index).astype(np.float32)


def file_axes(lat0=38.8, lat1=39.5, lon0=115.8, lon1=116.6, res=0.01, descending=True, offset=0.0):
    lat = np.arange(round((lat1 - lat0) / res)) * res + lat0 + res / 2 + offset
    lon = np.arange(round((lon1 - lon0) / res)) * res + lon0 + res / 2 + offset
    return (lat[::-1] if descending else lat), lon


def write_chap(path, day_index, *, lat_name="lat", lon_name="lon", descending=True, encoding="float",
               offset=0.0, res=0.01, missing=((0, 5), (3, 7)), variable="PM2.5", extent=None, float32_coords=False):
    """A CHAP-layout daily file; ``missing`` cells (file indices) hold 65535."""
    lat, lon = file_axes(descending=descending, offset=offset, res=res, **(extent or {}))
    data = truth(day_index, lat[:, None], lon[None, :])
    ds = netCDF4.Dataset(path, "w")
    ds.createDimension(lat_name, lat.size)
    ds.createDimension(lon_name, lon.size)
    ctype = "f4" if float32_coords else "f8"
    ds.createVariable(lat_name, ctype, (lat_name,))[:] = lat
    ds.createVariable(lon_name, ctype, (lon_name,))[:] = lon
    if encoding == "float":  # 65535 stored as a plain float: survives CF decoding
        v = ds.createVariable(variable, "f4", (lat_name, lon_name))
        raw = data.copy()
    else:  # uint16 scaled by 0.1, 65535 = missing, not declared as _FillValue
        v = ds.createVariable(variable, "u2", (lat_name, lon_name))
        v.set_auto_maskandscale(False)
        v.scale_factor = np.float32(0.1)
        v.add_offset = np.float32(0.0)
        raw = np.round(data / 0.1).astype(np.uint16)
    v.units = "µg/m3"
    for r, c in missing:
        raw[r, c] = 65535
    v[:] = raw
    ds.close()
    return lat, lon


def expected_day(day_index, lat_file, lon_file, missing, grid=GRID):
    exp = truth(day_index, grid.lat[:, None], grid.lon[None, :])
    for r, c in missing:
        la, lo = lat_file[r], lon_file[c]
        if grid.contains(la, lo):
            i, j = grid.index_of(la, lo)
            exp[i, j] = np.nan
    return exp


@pytest.mark.parametrize("descending,names,encoding", [
    (True, ("lat", "lon"), "float"),
    (False, ("Lat", "Lon"), "float"),
    (True, ("lat", "lon"), "uint16"),
    (False, ("Lat", "Lon"), "uint16"),
])
def test_read_chap_day_layouts(tmp_path, descending, names, encoding):
    missing = ((30, 35), (40, 42), (0, 0))  # (30,35),(40,42) fall inside the grid, (0,0) outside
    path = tmp_path / "CHAP_PM2.5_D1K_20150102_V4.nc"
    lat, lon = write_chap(path, 1, lat_name=names[0], lon_name=names[1], descending=descending, encoding=encoding,
                          missing=missing)
    got = read_chap_day(path, GRID)
    exp = expected_day(1, lat, lon, missing)
    assert got.dtype == np.float32 and got.shape == GRID.shape
    assert np.array_equal(np.isnan(got), np.isnan(exp))
    assert np.isnan(got).sum() == 2
    np.testing.assert_allclose(got, exp, atol=0.051 if encoding == "uint16" else 1e-5)
    assert np.nanmax(got) < 1000  # no 65535 or 6553.5 left


def test_float32_coordinates_and_partial_cover(tmp_path):
    path = tmp_path / "CHAP_PM2.5_D1K_20150101_V4.nc"
    lat, lon = write_chap(path, 0, float32_coords=True, missing=(), extent={"lat0": 39.1, "lat1": 39.5, "lon0": 115.8, "lon1": 116.6})
    got = read_chap_day(path, GRID)
    covered = GRID.lat > 39.1
    assert np.all(np.isnan(got[~covered]))  # cells the file does not cover
    np.testing.assert_allclose(got[covered], truth(0, GRID.lat[covered][:, None], GRID.lon[None, :]), atol=1e-4)


def test_fractional_offset_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "CHAP_PM2.5_D1K_20150101_V4.nc"
    write_chap(path, 0, offset=0.005)
    with pytest.raises(IngestError, match="non-integer number of cells") as info:
        read_chap_day(path, GRID)
    assert info.value.path == str(path)


def test_other_resolution_is_an_error(tmp_path):
    path = tmp_path / "CHAP_PM2.5_D1K_20150101_V4.nc"
    write_chap(path, 0, res=0.02, missing=())
    with pytest.raises(IngestError, match="not a regular 0.01° axis") as info:
        read_chap_day(path, GRID)
    assert str(path) in str(info.value)


def test_no_overlap_names_file_and_both_extents(tmp_path):
    path = tmp_path / "CHAP_PM2.5_D1K_20150101_V4.nc"
    write_chap(path, 0, missing=(), extent={"lat0": 30.0, "lat1": 30.5, "lon0": 100.0, "lon1": 100.5})
    with pytest.raises(IngestError, match="does not overlap") as info:
        read_chap_day(path, GRID)
    text = str(info.value)
    assert str(path) in text and "30.0050..30.4950" in text and "39.0050..39.2950" in text


def test_wrong_variable_lists_variables(tmp_path):
    path = tmp_path / "CHAP_PM2.5_D1K_20150101_V4.nc"
    write_chap(path, 0, variable="PM25")
    with pytest.raises(IngestError, match=r"no variable 'PM2.5'; the file has .*'PM25'") as info:
        read_chap_day(path, GRID)
    assert info.value.variable == "PM2.5" and info.value.path == str(path)


def test_unreadable_file_is_named(tmp_path):
    path = tmp_path / "CHAP_PM2.5_D1K_20150101_V4.nc"
    path.write_bytes(b"this is not netcdf" * 10)
    with pytest.raises(IngestError, match="cannot be read as NetCDF") as info:
        read_chap_day(path, GRID)
    assert info.value.path == str(path)


def test_dates_from_names():
    assert day_from_name("x/CHAP_PM2.5_D1K_20150102_V4.nc") == np.datetime64("2015-01-02")
    assert day_from_name("pm_2015-03-04.tif", r"(\d{4}-\d{2}-\d{2})", "%Y-%m-%d") == np.datetime64("2015-03-04")
    assert day_from_name("A2015032.tif", r"A(\d{7})", "%Y%j") == np.datetime64("2015-02-01")
    with pytest.raises(IngestError, match="no date"):
        day_from_name("CHAP_PM2.5_D1K_V4.nc")


def make_stack(tmp_path, n=10, start="2015-01-01", skip=()):
    folder = tmp_path / "chap"
    (folder / "2015").mkdir(parents=True)
    days = pd.date_range(start, periods=n)
    for i, d in enumerate(days):
        if i in skip:
            continue
        write_chap(folder / "2015" / f"CHAP_PM2.5_D1K_{d:%Y%m%d}_V4.nc", i, missing=((30 + i, 35),))
    return folder, days


def test_missing_day_is_named_or_filled(tmp_path):
    folder, days = make_stack(tmp_path, n=5, skip=(2,))
    with pytest.raises(IngestError, match="2015-01-03") as info:
        index_daily_files(folder, "2015-01-01", "2015-01-05", default_glob="*.nc")
    assert info.value.day == "2015-01-03"
    with pytest.warns(IngestWarning, match="2015-01-03"):
        src = DailyPM25Source(folder, GRID, "2015-01-01", "2015-01-05", allow_gaps=True)
    data = src.read_days(src.days)["pm25"]
    assert np.all(np.isnan(data[2])) and np.isfinite(data[1]).sum() > 1000


def test_two_files_one_day(tmp_path):
    folder, _ = make_stack(tmp_path, n=2)
    write_chap(folder / "CHAP_PM2.5_D1K_20150101_V5.nc", 0)
    with pytest.raises(IngestError, match="two PM2.5 files for day 2015-01-01"):
        DailyPM25Source(folder, GRID, "2015-01-01", "2015-01-02")


def test_geotiff_stack(tmp_path):
    import rasterio

    folder = tmp_path / "tif"
    folder.mkdir()
    lat, lon = file_axes(descending=True)
    for i in range(3):
        data = truth(i, lat[:, None], lon[None, :])
        data[20, 30] = -9999.0
        with rasterio.open(folder / f"pm25_2015-01-0{i + 1}.tif", "w", driver="GTiff", width=lon.size, height=lat.size,
                           count=1, dtype="float32", crs="EPSG:4326", nodata=-9999.0,
                           transform=Affine(0.01, 0, 115.8, 0, -0.01, 39.5)) as dst:
            dst.write(data, 1)
    src = DailyPM25Source(folder, GRID, "2015-01-01", "2015-01-03", format="geotiff",
                          date_regex=r"(\d{4}-\d{2}-\d{2})", date_format="%Y-%m-%d")
    got = src.read_days(src.days)["pm25"]
    for i in range(3):
        exp = expected_day(i, lat, lon, ((20, 30),))
        np.testing.assert_allclose(got[i], exp, atol=1e-4)
    assert np.isnan(got[:, :, :]).sum() == 3


def test_geotiff_offset_grid_is_an_error(tmp_path):
    import rasterio

    path = tmp_path / "pm25_20150101.tif"
    with rasterio.open(path, "w", driver="GTiff", width=50, height=50, count=1, dtype="float32", crs="EPSG:4326",
                       transform=Affine(0.01, 0, 115.9033, 0, -0.01, 39.5)) as dst:
        dst.write(np.zeros((50, 50), np.float32), 1)
    with pytest.raises(IngestError, match="non-integer") as info:
        read_geotiff_day(path, GRID)
    assert info.value.path == str(path)


@pytest.mark.parametrize("batch_days,tile_size", [(3, 16), (4, 7)])
def test_ingest_pm25_two_pass(tmp_path, batch_days, tile_size):
    folder, days = make_stack(tmp_path, n=10)
    out = ingest_pm25(folder, tmp_path / "pm.zarr", GRID, start="2015-01-01", end="2015-01-10", tile_size=tile_size,
                      batch_days=batch_days, progress=False)
    ds = open_store(out)
    assert ds.pm25.dims == ("time", "lat", "lon")
    assert ds.pm25.encoding["chunks"] == (10, tile_size, tile_size)
    assert ds.attrs["ihs_complete"] is True
    lat, lon = file_axes()
    got = ds.pm25.values
    for i in range(10):
        np.testing.assert_allclose(got[i], expected_day(i, lat, lon, ((30 + i, 35),)), atol=1e-5)
    np.testing.assert_array_equal(ds.time.values, days.values)
    assert not (tmp_path / "pm.zarr.partial").exists() and not (tmp_path / "pm.zarr.work").exists()


def test_ingest_pm25_workers_and_mask(tmp_path):
    folder, _ = make_stack(tmp_path, n=6)
    mask = np.zeros(GRID.shape, bool)
    mask[5:20, 10:30] = True
    out = ingest_pm25(folder, tmp_path / "pm.zarr", GRID, start="2015-01-01", end="2015-01-06", tile_size=16,
                      batch_days=4, workers=2, mask=mask, progress=False)
    got = open_store(out).pm25.values
    assert np.all(np.isnan(got[:, ~mask]))
    lat, lon = file_axes()
    for i in range(6):
        exp = expected_day(i, lat, lon, ((30 + i, 35),))
        np.testing.assert_allclose(got[i][mask], exp[mask], atol=1e-5)


def test_ingest_pm25_failure_then_resume(tmp_path, monkeypatch):
    folder, _ = make_stack(tmp_path, n=8)
    out = tmp_path / "pm.zarr"
    calls = {"n": 0}
    real_write_tile = rechunk_module.write_tile

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        return real_write_tile(*args, **kwargs)

    monkeypatch.setattr(rechunk_module, "write_tile", flaky)
    with pytest.raises(OSError, match="simulated"):
        ingest_pm25(folder, out, GRID, start="2015-01-01", end="2015-01-08", tile_size=16, batch_days=3, progress=False)
    assert not out.exists()
    partial = tmp_path / "pm.zarr.partial"
    assert partial.exists() and not is_complete(partial)
    with pytest.raises(StoreError, match="incomplete"):
        open_store(partial)
    # resume: pass 1 is not redone, finished tiles are kept
    monkeypatch.setattr(rechunk_module, "write_tile", real_write_tile)
    read_calls = {"n": 0}
    real_read = DailyPM25Source.read_days

    def counting(self, days, out=None):
        read_calls["n"] += 1
        return real_read(self, days, out)

    monkeypatch.setattr(DailyPM25Source, "read_days", counting)
    result = ingest_pm25(folder, out, GRID, start="2015-01-01", end="2015-01-08", tile_size=16, batch_days=3,
                         progress=False)
    assert read_calls["n"] == 0
    got = open_store(result).pm25.values
    lat, lon = file_axes()
    for i in range(8):
        np.testing.assert_allclose(got[i], expected_day(i, lat, lon, ((30 + i, 35),)), atol=1e-5)


def test_progress_callable(tmp_path):
    folder, _ = make_stack(tmp_path, n=4)
    seen = []
    ingest_pm25(folder, tmp_path / "pm.zarr", GRID, start="2015-01-01", end="2015-01-04", tile_size=16, batch_days=2,
                progress=lambda stage, done, total: seen.append((stage, done, total)))
    stages = {s for s, _, _ in seen}
    assert stages == {"pm25: read days", "pm25: write tiles"}
    assert ("pm25: read days", 2, 2) in seen and ("pm25: write tiles", 6, 6) in seen


def test_scratch_store_layout(tmp_path, monkeypatch):
    """Pass 1 writes (batch, tile, tile) chunks, so pass 2 reads each tile without amplification."""
    folder, _ = make_stack(tmp_path, n=5)
    seen = {}
    real = ingest_module.write_daily_cube

    def spy(store, source, grid, **kw):
        stats = real(store, source, grid, **kw)
        arr = zarr.open_group(kw["work_dir"] / "pm25.zarr", mode="r")["pm25"]
        seen["chunks"] = arr.chunks
        return stats

    monkeypatch.setattr(ingest_module, "write_daily_cube", spy)
    ingest_pm25(folder, tmp_path / "pm.zarr", GRID, start="2015-01-01", end="2015-01-05", tile_size=16, batch_days=2,
                progress=False)
    assert seen["chunks"] == (2, 16, 16)


def test_transposed_and_time_dim_layouts(tmp_path):
    """Variables stored as (lon, lat) or with a leading size-1 time dim are read the same way."""
    lat, lon = file_axes(descending=True)
    data = truth(2, lat[:, None], lon[None, :])
    for layout in ("lonlat", "time"):
        path = tmp_path / f"CHAP_PM2.5_D1K_2015010{'3' if layout == 'lonlat' else '4'}_V4.nc"
        with netCDF4.Dataset(path, "w") as ds:
            ds.createDimension("lat", lat.size)
            ds.createDimension("lon", lon.size)
            ds.createVariable("lat", "f8", ("lat",))[:] = lat
            ds.createVariable("lon", "f8", ("lon",))[:] = lon
            if layout == "lonlat":
                ds.createVariable("PM2.5", "f4", ("lon", "lat"), fill_value=np.float32(65535))[:] = data.T
            else:
                ds.createDimension("time", 1)
                ds.createVariable("PM2.5", "f4", ("time", "lat", "lon"))[:] = data[None]
        np.testing.assert_allclose(read_chap_day(path, GRID), truth(2, GRID.lat[:, None], GRID.lon[None, :]), atol=1e-5)
