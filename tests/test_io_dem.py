"""DEM reader: any CRS and resolution → analysis grid (block mean when finer, bilinear when coarser)."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine
from pyproj import Transformer

from ihs_hpc.grid import Grid
from ihs_hpc.io.dem import read_dem
from ihs_hpc.io.errors import IngestError

GRID = Grid(39.6, 39.9, 116.2, 116.6, 0.01)  # 30 x 40 cells near Beijing (UTM zone 50N)


def elevation(lon, lat):
    """Smooth analytic terrain (m): ~300 m of relief over tens of km, gentle at the 1 km scale."""
    return 500.0 + 150.0 * np.sin((lon - 116.0) * 6.0) * np.cos((lat - 39.0) * 5.0) + 40.0 * (lat - 39.6)


def test_projected_utm_dem_block_mean(tmp_path):
    """A 100 m DEM in EPSG:32650 sampled from elevation(lon, lat): the grid values must be the cell means."""
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32650", always_xy=True)
    to_geo = Transformer.from_crs("EPSG:32650", "EPSG:4326", always_xy=True)
    x0, y0 = to_utm.transform(116.1, 40.0)
    x1, y1 = to_utm.transform(116.7, 39.5)
    res = 100.0
    x0, y0 = np.floor(x0 / res) * res, np.ceil(y0 / res) * res
    width, height = int((x1 - x0) / res) + 20, int((y0 - y1) / res) + 20
    xs = x0 + (np.arange(width) + 0.5) * res
    ys = y0 - (np.arange(height) + 0.5) * res
    X, Y = np.meshgrid(xs, ys)
    lon, lat = to_geo.transform(X, Y)
    data = elevation(lon, lat).astype(np.float32)
    data[:5, :5] = -32767.0  # nodata corner, far outside the grid
    path = tmp_path / "dem_utm50.tif"
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype="float32",
                       crs="EPSG:32650", transform=Affine(res, 0, x0, 0, -res, y0), nodata=-32767.0) as dst:
        dst.write(data, 1)
    dem, info = read_dem(path, GRID, return_info=True)
    assert info["resampling"] == "average" and info["source_res_deg"] < GRID.res
    # independent expectation: mean of elevation() over each 0.01° cell (7x7 sub-samples)
    sub = (np.arange(7) + 0.5) / 7 * GRID.res
    lat_s = (GRID.lat[:, None] + GRID.res / 2 - sub[None, :]).ravel()
    lon_s = (GRID.lon[:, None] - GRID.res / 2 + sub[None, :]).ravel()
    fine = elevation(lon_s[None, :], lat_s[:, None]).reshape(GRID.ny, 7, GRID.nx, 7).mean(axis=(1, 3))
    assert dem.shape == GRID.shape and dem.dtype == np.float32
    assert np.all(np.isfinite(dem))
    err = np.abs(dem - fine)
    assert err.max() < 1.5 and err.mean() < 0.5, (err.max(), err.mean())


def test_coarse_geographic_dem_is_bilinear(tmp_path):
    res = 0.05
    lon = 116.0 + (np.arange(20) + 0.5) * res
    lat = 40.2 - (np.arange(16) + 0.5) * res
    plane = lambda lo, la: 100.0 + 200.0 * (lo - 116.0) - 300.0 * (la - 39.5)  # noqa: E731 - bilinear is exact on planes
    data = plane(lon[None, :], lat[:, None]).astype(np.float32)
    path = tmp_path / "coarse.tif"
    with rasterio.open(path, "w", driver="GTiff", width=20, height=16, count=1, dtype="float32", crs="EPSG:4326",
                       transform=Affine(res, 0, 116.0, 0, -res, 40.2)) as dst:
        dst.write(data, 1)
    dem, info = read_dem(path, GRID, return_info=True)
    assert info["resampling"] == "bilinear"
    np.testing.assert_allclose(dem, plane(GRID.lon[None, :], GRID.lat[:, None]), atol=0.05)


def test_nodata_becomes_nan(tmp_path):
    res = 0.002
    width, height = 250, 200
    data = np.full((height, width), 800.0, dtype=np.float32)
    data[50:100, 50:100] = -9999.0  # a 0.1° hole aligned with the grid: 10x10 cells fully inside it
    data[120:122, 120:121] = -9999.0  # a small hole: its cell averages the valid rest
    path = tmp_path / "hole.tif"
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype="float32", crs="EPSG:4326",
                       transform=Affine(res, 0, 116.2, 0, -res, 39.9), nodata=-9999.0) as dst:
        dst.write(data, 1)
    dem = read_dem(path, GRID)
    r, c = GRID.index_of(39.9 - 75 * res, 116.2 + 75 * res)
    assert np.isnan(dem[r, c])
    assert np.nanmax(dem) == pytest.approx(800.0) and np.nanmin(dem) == pytest.approx(800.0)
    assert np.isnan(dem).sum() == 100
    # cells not covered by the raster at all are NaN as well
    small = Grid(39.5, 39.9, 116.2, 116.8, 0.01)
    assert np.isnan(read_dem(path, small)[:, -5:]).all()


def test_netcdf_dem_like_china_dem(tmp_path):
    lat = np.arange(38.03, 41.5, 0.2)  # ascending, 0.2°, offset like china-dem.nc
    lon = np.arange(115.0, 118.0, 0.2)
    plane = lambda lo, la: 50.0 + 100.0 * (lo - 115.0) + 60.0 * (la - 38.0)  # noqa: E731
    ds = xr.Dataset({"dem": (("lat", "lon"), plane(lon[None, :], lat[:, None]))}, coords={"lat": lat, "lon": lon})
    ds.to_netcdf(tmp_path / "dem.nc")
    dem = read_dem(tmp_path / "dem.nc", GRID)
    np.testing.assert_allclose(dem, plane(GRID.lon[None, :], GRID.lat[:, None]), atol=0.05)


def test_real_china_dem_matches_independent_bilinear(shared_data):
    from scipy.interpolate import RegularGridInterpolator

    path = shared_data / "dem" / "china-dem.nc"
    grid = Grid(36.0, 42.6, 113.5, 119.8, 0.05)
    dem = read_dem(path, grid)
    with xr.open_dataset(path) as ds:
        lat, lon, values = ds.lat.values, ds.lon.values, ds.dem.values
    interp = RegularGridInterpolator((lat, lon), values, method="linear")
    la, lo = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    exp = interp(np.stack([la.ravel(), lo.ravel()], axis=-1)).reshape(grid.shape)
    ok = np.isfinite(exp) & np.isfinite(dem)
    assert ok.mean() > 0.95
    assert np.nanmax(dem) > 1500 and np.nanmin(dem) < 100  # Taihang/Yanshan mountains and the North China Plain
    np.testing.assert_allclose(dem[ok], exp[ok], atol=0.5, rtol=1e-3)


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "far.tif"
    with rasterio.open(path, "w", driver="GTiff", width=10, height=10, count=1, dtype="float32", crs="EPSG:4326",
                       transform=Affine(0.01, 0, 100.0, 0, -0.01, 30.0)) as dst:
        dst.write(np.ones((10, 10), np.float32), 1)
    with pytest.raises(IngestError, match="does not cover the grid") as info:
        read_dem(path, GRID)
    assert info.value.path == str(path)
    ds = xr.Dataset({"a": (("lat", "lon"), np.zeros((3, 3))), "b": (("lat", "lon"), np.zeros((3, 3)))},
                    coords={"lat": [39.0, 39.5, 40.0], "lon": [116.0, 116.5, 117.0]})
    ds.to_netcdf(tmp_path / "two.nc")
    with pytest.raises(IngestError, match=r"which variable.*\['a', 'b'\]"):
        read_dem(tmp_path / "two.nc", GRID)
    bad = tmp_path / "bad.tif"
    bad.write_text("nope")
    with pytest.raises(IngestError, match="cannot be read") as info:
        read_dem(bad, GRID)
    assert info.value.path == str(bad)
