"""ERA5 readers: CDS NetCDF (daily and hourly) and Earth Engine multi-band GeoTIFFs → native met grid."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from affine import Affine

from ihs_hpc.grid import Grid
from ihs_hpc.io.era5 import Bilinear, Era5GeotiffSource, Era5NetcdfSource, open_era5
from ihs_hpc.io.errors import IngestError, IngestWarning
from ihs_hpc.ops.humidity import relative_humidity

GRID = Grid(39.0, 39.5, 116.0, 116.6, 0.01)
MET = GRID.enclosing(0.1, margin_cells=1)  # 38.9..39.6, 115.9..116.7 -> centres .x5
DAYS = pd.date_range("2016-03-01", periods=4)

# fields linear in lon/lat (bilinear interpolation reproduces them exactly) + a day term
FIELDS = {
    "t2m": lambda d, la, lo: 300.0 + 0.8 * la - 0.5 * lo + d,
    "d2m": lambda d, la, lo: 280.0 + 0.5 * la - 0.3 * lo + 0.5 * d,
    "tp": lambda d, la, lo: 1e-3 * (7.0 + 0.1 * la - 0.05 * lo + 0.2 * d),
    "sp": lambda d, la, lo: 88000.0 - 500.0 * (la - 39.0) + 100.0 * lo + 10 * d,
    "u10": lambda d, la, lo: 1.0 + 0.3 * la - 0.1 * lo + 0.1 * d,
    "v10": lambda d, la, lo: -2.0 + 0.2 * la + 0.05 * lo - 0.1 * d,
}
CDS_LONG = {"t2m": "2m_temperature", "d2m": "2m_dewpoint_temperature", "tp": "total_precipitation",
            "sp": "surface_pressure", "u10": "10m_u_component_of_wind", "v10": "10m_v_component_of_wind"}
UNITS = {"t2m": "K", "d2m": "K", "tp": "m", "sp": "Pa", "u10": "m s**-1", "v10": "m s**-1"}


def expected(var, d):
    la, lo = MET.lat[:, None], MET.lon[None, :]
    if var == "rh":
        return relative_humidity(expected("t2m", d), expected("d2m", d), units="K")
    return np.broadcast_to(FIELDS[var](d, la, lo), MET.shape).astype(np.float64)


def cds_dataset(res=0.25, descending=True, names=None, tname="valid_time", lat_name="latitude", lon_name="longitude",
                units=None, transform=None, days=DAYS):
    lat = np.arange(38.0, 40.5 + 1e-9, res)
    lon = np.arange(115.0, 117.5 + 1e-9, res)
    if descending:
        lat = lat[::-1]
    data = {}
    for var, f in FIELDS.items():
        values = np.stack([f(i, lat[:, None], lon[None, :]) + 0 * lon[None, :] for i in range(len(days))]).astype(np.float32)
        if transform and var in transform:
            values = transform[var][0](values)
        unit = (transform[var][1] if transform and var in transform else (units or UNITS)[var])
        name = (names or {}).get(var, var)
        data[name] = ((tname, lat_name, lon_name), values, {"units": unit} if unit else {})
    return xr.Dataset(data, coords={tname: np.array(days, dtype="datetime64[ns]"), lat_name: lat, lon_name: lon})


def check_all(data, days=range(len(DAYS)), atol=None):
    tol = {"t2m": 1e-3, "d2m": 1e-3, "tp": 1e-8, "sp": 0.05, "u10": 1e-5, "v10": 1e-5, "rh": 1e-3}
    for var in ("t2m", "d2m", "tp", "sp", "u10", "v10", "rh"):
        assert data[var].shape == (len(days),) + MET.shape and data[var].dtype == np.float32
        for k, d in enumerate(days):
            np.testing.assert_allclose(data[var][k], expected(var, d), atol=atol or tol[var], err_msg=var)


def test_cds_daily_valid_time_descending(tmp_path):
    path = tmp_path / "era5_2016.nc"
    cds_dataset().to_netcdf(path)
    src = Era5NetcdfSource(path, MET, DAYS[0], DAYS[-1])
    check_all(src.read_days(src.days))
    assert src.source_units()["t2m"] == "K (attribute)"


def test_cds_long_names_time_ascending_and_unit_conversion(tmp_path):
    conv = {"t2m": (lambda v: v - 273.15, "degC"), "d2m": (lambda v: v - 273.15, "°C"), "tp": (lambda v: v * 1000, "mm"),
            "sp": (lambda v: v / 100, "hPa"), "u10": (lambda v: v * 3.6, "km/h")}
    ds = cds_dataset(res=0.1, descending=False, names=CDS_LONG, tname="time", transform=conv)
    # split the variables over two files, like the new CDS (instant / accum streams)
    ds[[CDS_LONG["tp"]]].to_netcdf(tmp_path / "accum.nc")
    ds.drop_vars(CDS_LONG["tp"]).to_netcdf(tmp_path / "instant.nc")
    src = open_era5(tmp_path, MET, DAYS[0], DAYS[-1], format="cds-netcdf")
    check_all(src.read_days(src.days))
    units = src.source_units()
    assert units["t2m"].startswith("degC") and units["sp"].startswith("hPa") and units["tp"].startswith("mm")


def test_cds_hourly_aggregated_to_beijing_days(tmp_path):
    """Hourly UTC data → local (UTC+8) days: mean of the 24 steps, tp summed over the hours ending in the day."""
    days = pd.date_range("2016-03-01", periods=3)
    hours = pd.date_range("2016-02-29 16:00", "2016-03-03 16:00", freq="h")  # covers 3 Beijing days + 1 h
    lat = np.arange(40.5, 37.9, -0.25)
    lon = np.arange(115.0, 117.6, 0.25)
    local_hour = np.array((hours + pd.Timedelta(hours=8)).hour)
    local_day = np.array(((hours + pd.Timedelta(hours=8)).normalize() - days[0]).days)
    data = {}
    for var, f in FIELDS.items():
        base = np.stack([f(0, lat[:, None], lon[None, :]) + 0 * lon[None, :]] * len(hours)).astype(np.float64)
        if var == "tp":
            # accumulation over the hour ending at the time stamp: the hour 00:00 local belongs to the previous day
            acc_day = np.array(((hours + pd.Timedelta(hours=7)).normalize() - days[0]).days)
            values = base / 24.0 + 1e-5 * acc_day[:, None, None]
        else:
            values = base + 2.0 * np.sin(2 * np.pi * local_hour / 24.0)[:, None, None] + 0.5 * local_day[:, None, None]
        data[var] = (("valid_time", "latitude", "longitude"), values.astype(np.float32), {"units": UNITS[var]})
    xr.Dataset(data, coords={"valid_time": hours, "latitude": lat, "longitude": lon}).to_netcdf(tmp_path / "hourly.nc")
    src = Era5NetcdfSource(tmp_path / "hourly.nc", MET, days[0], days[-1])
    got = src.read_days(src.days)
    for k in range(3):
        np.testing.assert_allclose(got["t2m"][k], expected("t2m", 0) + 0.5 * k, atol=2e-3)
        np.testing.assert_allclose(got["tp"][k], expected("tp", 0) + 24 * 1e-5 * k, rtol=1e-4)


def test_tp_daily_mean_statistic(tmp_path):
    ds = cds_dataset(transform={"tp": (lambda v: v / 24.0, "m")})
    ds.to_netcdf(tmp_path / "daily_stats.nc")
    src = Era5NetcdfSource(tmp_path / "daily_stats.nc", MET, DAYS[0], DAYS[-1], tp_statistic="mean")
    check_all(src.read_days(src.days))


def write_gee(path, day_index, *, res=0.1, names="land", descriptions=True, extent=(115.0, 117.5, 38.0, 40.5),
              t_offset=0.0, drop=None, centre_on_tenths=True):
    """One Earth Engine daily export: pixel centres on multiples of ``res`` like GEE's ERA5 grids."""
    west, east, south, north = extent
    half = res / 2 if centre_on_tenths else 0.0
    lon = np.arange(west, east + 1e-9, res) if centre_on_tenths else np.arange(west, east - 1e-9, res) + res / 2
    lat = np.arange(north, south - 1e-9, -res) if centre_on_tenths else np.arange(north, south + 1e-9, -res) - res / 2
    band_names = {
        "land": {"t2m": "temperature_2m", "d2m": "dewpoint_temperature_2m", "tp": "total_precipitation_sum",
                 "sp": "surface_pressure", "u10": "u_component_of_wind_10m", "v10": "v_component_of_wind_10m"},
        "daily": {"t2m": "mean_2m_air_temperature", "d2m": "dewpoint_2m_temperature", "tp": "total_precipitation",
                  "sp": "surface_pressure", "u10": "u_component_of_wind_10m", "v10": "v_component_of_wind_10m"},
    }[names]
    order = ["v10", "t2m", "sp", "tp", "d2m", "u10"]  # deliberately not the store order
    if drop:
        order.remove(drop)
    stack = [FIELDS[v](day_index, lat[:, None], lon[None, :]) + 0 * lon[None, :] + (t_offset if v == "t2m" else 0) for v in order]
    transform = Affine(res, 0, lon[0] - res / 2, 0, -res, lat[0] + res / 2)
    with rasterio.open(path, "w", driver="GTiff", width=lon.size, height=lat.size, count=len(order), dtype="float32",
                       crs="EPSG:4326", transform=transform, nodata=-32768.0) as dst:
        for i, v in enumerate(order):
            dst.write(np.asarray(stack[i], dtype=np.float32), i + 1)
            if descriptions:
                dst.set_band_description(i + 1, band_names[v])
    return [band_names[v] for v in order]


@pytest.mark.parametrize("names,res", [("land", 0.1), ("daily", 0.25)])
def test_gee_multiband_geotiffs(tmp_path, names, res):
    for i, d in enumerate(DAYS):
        write_gee(tmp_path / f"era5_{d:%Y%m%d}.tif", i, names=names, res=res)
    src = open_era5(tmp_path, MET, DAYS[0], DAYS[-1], format="gee-geotiff")
    check_all(src.read_days(src.days))
    assert src.source_units()["t2m"] == "K (assumed)"


def test_gee_band_names_option_and_celsius_guess(tmp_path):
    for i, d in enumerate(DAYS):
        order = write_gee(tmp_path / f"era5_{d:%Y%m%d}.tif", i, descriptions=False, t_offset=-273.15)
    with pytest.raises(IngestError, match="band_names"):
        Era5GeotiffSource(tmp_path, MET, DAYS[0], DAYS[-1]).read_days(DAYS[:1])
    src = Era5GeotiffSource(tmp_path, MET, DAYS[0], DAYS[-1], band_names=order)
    with pytest.warns(IngestWarning, match=r"t2m has no units attribute; taken as degC \(median"):
        data = src.read_days(src.days)
    check_all(data)


def test_aligned_source_is_copied_exactly():
    lat = MET.lat[::-1].copy()
    lon = MET.lon.copy()
    values = np.random.default_rng(1).random((2, lat.size, lon.size)).astype(np.float32)
    values[0, 3, 4] = np.nan
    bil = Bilinear(lat, lon, MET)
    assert bil.exact
    got = bil(values[:, bil.rows, bil.cols])
    np.testing.assert_array_equal(got, values[:, ::-1])


def test_bilinear_ignores_nan_neighbours():
    src_lat = np.array([40.0, 39.0])
    src_lon = np.array([116.0, 117.0])
    target = Grid(39.0, 40.0, 116.0, 117.0, 1.0)  # one cell, centre 39.5, 116.5
    bil = Bilinear(src_lat, src_lon, target)
    v = np.array([[1.0, 2.0], [3.0, np.nan]])
    got = bil(v[bil.rows, bil.cols])
    assert got.shape == (1, 1) and got[0, 0] == pytest.approx(2.0)  # mean of the three valid corners
    assert np.isnan(bil(np.full((2, 2), np.nan))[0, 0])


def test_missing_variable_lists_names(tmp_path):
    cds_dataset().drop_vars("sp").to_netcdf(tmp_path / "e.nc")
    with pytest.raises(IngestError, match=r"no ERA5 variable for \['sp'\].*surface_pressure") as info:
        Era5NetcdfSource(tmp_path / "e.nc", MET, DAYS[0], DAYS[-1])
    assert info.value.path.endswith("e.nc")


def test_missing_day_named_and_gee_end_hint(tmp_path):
    cds_dataset().to_netcdf(tmp_path / "e.nc")
    with pytest.raises(IngestError, match="2016-03-05") as info:
        Era5NetcdfSource(tmp_path / "e.nc", MET, DAYS[0], "2016-03-05")
    assert info.value.day == "2016-03-05"
    for d in pd.date_range("2020-07-08", "2020-07-09"):
        write_gee(tmp_path / f"g_{d:%Y%m%d}.tif", 0)
    with pytest.raises(IngestError, match="ECMWF/ERA5/DAILY ends 2020-07-09"):
        Era5GeotiffSource(tmp_path, MET, "2020-07-08", "2020-07-10", glob_pattern="g_*.tif")
    with pytest.warns(IngestWarning, match="filled along time in stage 2"):
        src = Era5GeotiffSource(tmp_path, MET, "2020-07-08", "2020-07-10", glob_pattern="g_*.tif", allow_gaps=True)
    data = src.read_days(src.days)
    assert np.all(np.isnan(data["t2m"][2])) and np.all(np.isfinite(data["t2m"][:2]))


def test_too_small_box_names_file_and_extents(tmp_path):
    path = tmp_path / "era5_20160301.tif"
    write_gee(path, 0, extent=(116.0, 116.5, 39.0, 39.5))
    src = Era5GeotiffSource(tmp_path, MET, DAYS[0], DAYS[0])
    with pytest.raises(IngestError, match="does not cover the meteorology grid") as info:
        src.read_days(src.days)
    assert info.value.path == str(path) and "115.9500" in str(info.value)


def test_wrong_declared_units_are_caught(tmp_path):
    ds = cds_dataset(transform={"t2m": (lambda v: v - 273.15, "K")})  # says K, holds °C
    ds.to_netcdf(tmp_path / "e.nc")
    src = Era5NetcdfSource(tmp_path / "e.nc", MET, DAYS[0], DAYS[-1])
    with pytest.raises(IngestError, match="outside the plausible") as info:
        src.read_days(src.days[:1])
    assert info.value.variable == "t2m" and info.value.day == "2016-03-01" and info.value.path.endswith("e.nc")
    # the override fixes it
    src = Era5NetcdfSource(tmp_path / "e.nc", MET, DAYS[0], DAYS[-1], units={"t2m": "degC"})
    check_all(src.read_days(src.days))


def test_unknown_unit_and_unreadable_file(tmp_path):
    cds_dataset(transform={"sp": (lambda v: v, "furlongs")}).to_netcdf(tmp_path / "e.nc")
    src = Era5NetcdfSource(tmp_path / "e.nc", MET, DAYS[0], DAYS[-1])
    with pytest.raises(IngestError, match="unknown pressure unit 'furlongs'") as info:
        src.read_days(src.days[:1])
    assert info.value.variable == "sp"
    bad = tmp_path / "bad" / "x.nc"
    bad.parent.mkdir()
    bad.write_text("garbage")
    with pytest.raises(IngestError, match="cannot be read as NetCDF") as info:
        Era5NetcdfSource(bad, MET, DAYS[0], DAYS[-1])
    assert info.value.path == str(bad)


def test_cds_expver_dimension_is_merged(tmp_path):
    """Old CDS files mixing ERA5 and ERA5T carry an 'expver' dim: the first non-NaN value is taken."""
    ds = cds_dataset(tname="time")
    parts = []
    for k in range(2):
        part = ds.copy(deep=True)
        for var in FIELDS:
            values = part[var].values
            if k == 0:
                values[2:] = np.nan
            else:
                values[:2] = np.nan
            part[var].values = values
        parts.append(part)
    merged = xr.concat(parts, dim=xr.DataArray([1, 5], dims="expver", name="expver"))
    merged = merged.transpose("time", "expver", "latitude", "longitude")
    merged.to_netcdf(tmp_path / "expver.nc")
    src = Era5NetcdfSource(tmp_path / "expver.nc", MET, DAYS[0], DAYS[-1])
    check_all(src.read_days(src.days))


def test_files_are_closed_after_each_batch(tmp_path):
    """Each open NetCDF4 file keeps HDF5 chunk caches; a batch's files are closed when it is read."""
    full = cds_dataset()
    for k, part in enumerate((slice(0, 1), slice(1, 2), slice(2, 4))):  # a batch spanning three files
        full.isel(valid_time=part).to_netcdf(tmp_path / f"era5_part{k}.nc")
    src = Era5NetcdfSource(tmp_path, MET, DAYS[0], DAYS[-1])
    opened = []
    real = src._dataset

    def spy(fi):
        ds = real(fi)
        opened.append(len(src._open))
        return ds

    src._dataset = spy
    check_all(src.read_days(src.days))
    assert max(opened) <= 2 and len(set(src.files)) == 3
    assert src._open == {}
