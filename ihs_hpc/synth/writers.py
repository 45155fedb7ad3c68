"""Raw files of a synthetic scene, in the layouts the ingest path reads (``layout="files"``).

``out/``
  ``chap/CHAP_PM2.5_D1K_YYYYMMDD_V4.nc``  one file per day (Beijing time): ``PM2.5`` (µg/m³) on 1-D
                                         ``lat`` (north → south) and ``lon``; missing = 65535, not
                                         declared as ``_FillValue`` (it survives CF decoding)
  ``era5/era5_daily_YYYY.nc``            CDS-style daily NetCDF: ``t2m d2m tp sp u10 v10`` on
                                         ``valid_time``, ``latitude`` (north → south), ``longitude``;
                                         ``tp`` is the daily total (m); the day is the date of the stamp
  ``dem.tif``                            float32 GeoTIFF, EPSG:4326, the analysis grid
  ``urban.tif``                          float32 GeoTIFF, the settlement-density index (stage 3's drift)
  ``ihs.csv``                            ``id, name, category, lon, lat, start_year, end_year``
  ``cities.geojson``                     city polygons (``adcode, name, name_en, province``)
  ``truth.zarr``                         the complete store (inputs + truth), written by the scene

An ingest configuration that reads them back is returned by :func:`ingest_config`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CHAP_MISSING = 65535


def chap_name(day) -> str:
    """File name of one day's CHAP PM2.5 NetCDF (the published V4 naming)."""
    return f"CHAP_PM2.5_D1K_{str(np.datetime64(day, 'D')).replace('-', '')}_V4.nc"


def write_chap_day(path, lat, lon, values, *, dtype: str = "float32") -> None:
    """One CHAP-layout daily file; ``values`` (ny, nx) north→south, 65535 where missing."""
    import netCDF4

    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.createDimension("lat", len(lat))
        nc.createDimension("lon", len(lon))
        vlat = nc.createVariable("lat", "f8", ("lat",))
        vlat[:] = lat
        vlat.units, vlat.long_name = "degrees_north", "latitude"
        vlon = nc.createVariable("lon", "f8", ("lon",))
        vlon[:] = lon
        vlon.units, vlon.long_name = "degrees_east", "longitude"
        if dtype == "uint16":
            var = nc.createVariable("PM2.5", "u2", ("lat", "lon"), zlib=True, complevel=1, fill_value=False)
            raw = np.where(values >= CHAP_MISSING - 0.5, CHAP_MISSING, np.clip(np.round(values), 0, CHAP_MISSING - 1))
            var.set_auto_maskandscale(False)
            var[:] = raw.astype(np.uint16)
        else:
            var = nc.createVariable("PM2.5", "f4", ("lat", "lon"), zlib=True, complevel=1, fill_value=False)
            var[:] = np.asarray(values, dtype=np.float32)
        var.units = "µg/m3"
        var.long_name = "daily mean PM2.5 concentration (synthetic); 65535 = missing"
        nc.title = "ChinaHighPM2.5-like daily 1 km PM2.5 (synthetic scene of ihs_hpc.synth)"
        nc.time_zone = "Beijing time (UTC+8)"


def write_era5_year(path, scene, year: int) -> None:
    """Write one year of the scene's meteorology as an ERA5-like daily NetCDF file."""
    import xarray as xr

    from .meteorology import MET_VARIABLES

    t0, t1 = scene.year_bounds[list(scene.years).index(year)]
    days = scene.time[t0:t1].astype("datetime64[D]").astype("datetime64[ns]")
    g = scene.met_grid
    names = {"t2m": "2 metre temperature", "d2m": "2 metre dewpoint temperature", "tp": "Total precipitation",
             "sp": "Surface pressure", "u10": "10 metre U wind component", "v10": "10 metre V wind component"}
    data = {}
    for var, long_name in names.items():
        units, _, standard_name = MET_VARIABLES[var]
        attrs = {"units": units, "long_name": long_name, "standard_name": standard_name}
        if var == "tp":
            attrs["comment"] = "daily total (sum of the hourly accumulations of the day)"
        data[var] = (("valid_time", "latitude", "longitude"), scene.met.fields[var][t0:t1], attrs)
    ds = xr.Dataset(
        data,
        coords={
            "valid_time": ("valid_time", days, {"standard_name": "time", "long_name": "time"}),
            "latitude": ("latitude", g.lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "longitude": ("longitude", g.lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
        attrs={"title": "ERA5-like daily statistics (synthetic scene of ihs_hpc.synth)",
               "frequency": "1d", "time_zone": "utc+08:00 (day of the time stamp)", "Conventions": "CF-1.7"},
    )
    enc = {v: {"zlib": True, "complevel": 1, "dtype": "float32", "_FillValue": None} for v in names}
    enc["valid_time"] = {"units": "seconds since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int64"}
    enc["latitude"] = {"_FillValue": None}
    enc["longitude"] = {"_FillValue": None}
    ds.to_netcdf(path, engine="netcdf4", encoding=enc)


def write_map_tif(path, grid, values, *, units: str, long_name: str) -> None:
    """Write one map on ``grid`` as a GeoTIFF (EPSG:4326, the grid's transform)."""
    import rasterio

    with rasterio.open(path, "w", driver="GTiff", width=grid.nx, height=grid.ny, count=1, dtype="float32",
                       crs="EPSG:4326", transform=grid.transform, compress="deflate", nodata=-9999.0) as dst:
        dst.write(np.asarray(values, dtype=np.float32), 1)
        dst.update_tags(1, units=units, long_name=long_name)


def write_dem_tif(path, scene) -> None:
    """Write the scene's DEM as a GeoTIFF (EPSG:4326, the grid's transform)."""
    write_map_tif(path, scene.grid, scene.dem, units="m", long_name="surface elevation (synthetic)")


def write_urban_tif(path, scene) -> None:
    """Write the scene's settlement-density index (:func:`~ihs_hpc.synth.cities.settlement_density`)."""
    from .cities import settlement_density

    write_map_tif(path, scene.grid, settlement_density(scene.grid, scene.model.blobs), units="1",
                  long_name="settlement density index (synthetic)")


def write_ihs_csv(path, scene) -> None:
    """Write the scene's IHS table (id, name, category, lon, lat, start and end year) as CSV."""
    import pandas as pd

    s = scene.sources
    pd.DataFrame({
        "id": s.ids.astype(str), "name": s.names.astype(str), "category": s.category.astype(str),
        "lon": s.lon, "lat": s.lat, "start_year": s.start_year, "end_year": s.end_year,
    }).to_csv(path, index=False, float_format="%.5f")


def write_cities_geojson(path, scene) -> None:
    """Write the scene's city polygons as GeoJSON."""
    Path(path).write_text(json.dumps(scene.cities.geojson(scene.grid), ensure_ascii=False), encoding="utf-8")


def write_files(scene, out, pm25_days, *, chap_dtype: str = "float32", progress=None) -> None:
    """Every raw file of ``layout="files"``; ``pm25_days`` is a (time, ny, nx) array (or a
    :class:`~ihs_hpc.synth.scene_store.DayScratch`, whose pages are released every 32 days) of the PM2.5 cube
    with 65535 at the injected missing pixel-days."""
    out = Path(out)
    (out / "chap").mkdir(parents=True, exist_ok=True)
    (out / "era5").mkdir(parents=True, exist_ok=True)
    lat, lon = scene.grid.lat, scene.grid.lon
    days = enumerate(scene.time)
    if progress is None:
        from tqdm.auto import tqdm

        days = tqdm(days, total=len(scene.time), desc="CHAP files", unit="day", dynamic_ncols=True, leave=False)
    for t, day in days:
        write_chap_day(out / "chap" / chap_name(day), lat, lon, np.asarray(pm25_days[t]), dtype=chap_dtype)
        if t % 32 == 31 and hasattr(pm25_days, "release"):
            pm25_days.release()
    for year in scene.years:
        write_era5_year(out / "era5" / f"era5_daily_{int(year)}.nc", scene, int(year))
    write_dem_tif(out / "dem.tif", scene)
    write_urban_tif(out / "urban.tif", scene)
    write_ihs_csv(out / "ihs.csv", scene)
    write_cities_geojson(out / "cities.geojson", scene)
    (out / "ingest.json").write_text(json.dumps(ingest_config(scene, out), indent=2))


def ingest_config(scene, out) -> dict:
    """An ``ihs_hpc.io.ingest`` configuration reading the files of ``out`` back onto the scene's grid."""
    out = Path(out).resolve()
    g = scene.grid
    return {
        "start": str(scene.time[0].astype("datetime64[D]")),
        "end": str(scene.time[-1].astype("datetime64[D]")),
        "grid": [g.south, g.north, g.west, g.east, g.res],
        "pm25": {"path": str(out / "chap"), "format": "chap-netcdf", "variable": "PM2.5"},
        "era5": {"path": str(out / "era5"), "format": "cds-netcdf"},
        "dem": {"path": str(out / "dem.tif")},
        "urban": {"path": str(out / "urban.tif")},
        "ihs": {"path": str(out / "ihs.csv")},
        "cities": {"path": str(out / "cities.geojson"), "crs_offset": None},
    }
