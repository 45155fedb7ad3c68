"""Digital elevation model → the analysis grid.

Accepts any GDAL raster (GeoTIFF in any CRS and resolution, e.g. Copernicus 30 m tiles in EPSG:4326 or a
UTM mosaic) and NetCDF files with 1-D lat/lon coordinates (like ``china-dem.nc``). The raster is warped
by GDAL (``rasterio.warp.reproject``) straight onto the grid's EPSG:4326 transform:

* source finer than the grid (its cell, converted to degrees at the grid's centre, is smaller than the
  grid cell) → ``Resampling.average``: the area-weighted mean of the source cells inside each grid cell
  (block mean), as the paper's 30 m → 1 km resampling needs;
* otherwise → ``Resampling.bilinear``.

``resampling=`` overrides the choice. Nodata (the raster's nodata value, a NetCDF ``_FillValue``, or
non-finite values) becomes NaN, and so do grid cells the DEM does not cover. GeoTIFFs are warped from
disk block by block by GDAL (bounded memory for multi-GB mosaics). Several files (tiles) are warped one
by one; a cell covered by more than one is the mean of their results.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..grid import Grid
from .daily_files import expand_paths
from .errors import IngestError, IngestWarning
from .grid_match import open_raster

_DEM_NAMES = ("dem", "elevation", "elev", "height", "z", "altitude", "Band1", "band1", "DEM", "Elevation", "srtm", "hgt")
_LAT_NAMES = ("lat", "latitude", "Lat", "Latitude", "LAT", "y")
_LON_NAMES = ("lon", "longitude", "Lon", "Longitude", "LON", "x")
_WARP_MEM_MB = 256


def _resampling(name):
    from rasterio.enums import Resampling

    try:
        return Resampling[name] if isinstance(name, str) else Resampling(name)
    except KeyError:
        raise IngestError(f"unknown resampling {name!r}; use e.g. 'average', 'bilinear', 'nearest'") from None


def _source_res_deg(src_crs, src_transform, width, height, grid: Grid) -> float:
    """The source cell size expressed in degrees at the grid (geometric mean of both axes)."""
    from rasterio.warp import calculate_default_transform
    from rasterio.transform import array_bounds

    west, south, east, north = array_bounds(height, width, src_transform)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # rasterio's own use of Affine '*'
        dst_transform, _, _ = calculate_default_transform(src_crs, "EPSG:4326", width, height, west, south, east, north)
    return float(np.sqrt(abs(dst_transform.a * dst_transform.e)))


def _choose(resampling, src_res_deg: float, grid: Grid):
    if resampling in (None, "auto"):
        return _resampling("average" if src_res_deg < grid.res * 0.999 else "bilinear")
    return _resampling(resampling)


def _warp(source, src_transform, src_crs, src_nodata, grid: Grid, resampling):
    from rasterio.warp import reproject

    dst = np.full(grid.shape, np.nan, dtype=np.float32)
    reproject(
        source=source, destination=dst, src_transform=src_transform, src_crs=src_crs, src_nodata=src_nodata,
        dst_transform=grid.transform, dst_crs="EPSG:4326", dst_nodata=np.nan, resampling=resampling,
        warp_mem_limit=_WARP_MEM_MB, init_dest_nodata=True,
    )
    return dst


def _read_geotiff(path, grid: Grid, resampling, band: int):
    import rasterio

    with open_raster(path) as src:
        crs = src.crs
        if crs is None:
            warnings.warn(f"{path}: DEM has no CRS; taken as WGS84 lat/lon (EPSG:4326)", IngestWarning, stacklevel=3)
            crs = rasterio.crs.CRS.from_epsg(4326)
        if not 1 <= band <= src.count:
            raise IngestError(f"band {band} does not exist (the file has {src.count})", path=path)
        res_deg = _source_res_deg(crs, src.transform, src.width, src.height, grid)
        method = _choose(resampling, res_deg, grid)
        nodata = src.nodata
        try:
            if src.crs is None:
                data = src.read(band).astype(np.float32)
                if nodata is not None:
                    data[data == nodata] = np.nan
                out = _warp(data, src.transform, crs, np.nan, grid, method)
            else:
                out = _warp(rasterio.band(src, band), src.transform, crs, nodata, grid, method)
        except IngestError:
            raise
        except Exception as exc:
            raise IngestError(f"cannot be warped onto the grid: {exc}", path=path) from None
        if nodata is not None:
            out[out == np.float32(nodata)] = np.nan
    return out, method.name, res_deg


def _read_netcdf(path, grid: Grid, resampling, variable):
    import xarray as xr
    from affine import Affine

    try:
        ds = xr.open_dataset(path, mask_and_scale=True, decode_times=False)
    except Exception as exc:
        raise IngestError(f"cannot be read as NetCDF: {exc}", path=path) from None
    with ds:
        if variable is None:
            variable = next((n for n in _DEM_NAMES if n in ds.data_vars), None)
            if variable is None:
                two_d = [n for n, v in ds.data_vars.items() if v.ndim == 2]
                if len(two_d) != 1:
                    raise IngestError(f"cannot tell which variable is the elevation; the file has {list(ds.data_vars)} "
                                      f"(pass variable=...)", path=path)
                variable = two_d[0]
        if variable not in ds.data_vars:
            raise IngestError(f"no variable {variable!r}; the file has {list(ds.data_vars)}", path=path, variable=variable)
        da = ds[variable].squeeze(drop=True)
        lat_name = next((n for n in _LAT_NAMES if n in da.coords and da[n].ndim == 1), None)
        lon_name = next((n for n in _LON_NAMES if n in da.coords and da[n].ndim == 1), None)
        if lat_name is None or lon_name is None or da.ndim != 2:
            raise IngestError(f"expected 2-D data on 1-D lat/lon coordinates, got dims {da.dims}", path=path, variable=variable)
        da = da.transpose(da[lat_name].dims[0], da[lon_name].dims[0])
        lat = np.asarray(da[lat_name].values, dtype=np.float64)
        lon = np.asarray(da[lon_name].values, dtype=np.float64)
        data = np.asarray(da.values, dtype=np.float32)
        units = str(da.attrs.get("units", "m")).strip().lower()
    for axis, c in (("lat", lat), ("lon", lon)):
        step = np.diff(c)
        if c.size < 2 or not np.allclose(step, step[0], rtol=1e-3, atol=1e-9):
            raise IngestError(f"{axis} is not a regular axis (steps {step.min() if c.size > 1 else 'n/a'}..{step.max() if c.size > 1 else 'n/a'})", path=path, variable=variable)
    if lat[1] > lat[0]:  # south → north: flip to north-up
        lat, data = lat[::-1], data[::-1]
    if lon[1] < lon[0]:
        lon, data = lon[::-1], data[:, ::-1]
    dlat = (lat[0] - lat[-1]) / (lat.size - 1)
    dlon = (lon[-1] - lon[0]) / (lon.size - 1)
    transform = Affine(dlon, 0.0, lon[0] - dlon / 2.0, 0.0, -dlat, lat[0] + dlat / 2.0)
    if units in ("km", "kilometre", "kilometer"):
        data *= 1000.0
    elif units in ("ft", "feet", "foot"):
        data *= 0.3048
    data[~np.isfinite(data)] = np.nan
    res_deg = float(np.sqrt(dlat * dlon))
    method = _choose(resampling, res_deg, grid)
    return _warp(data, transform, "EPSG:4326", np.nan, grid, method), method.name, res_deg


def read_dem(path, grid: Grid, *, variable: str | None = None, band: int = 1, resampling: str | None = "auto",
             return_info: bool = False, what: str = "DEM"):
    """Elevation (m) on ``grid`` as float32 ``(ny, nx)``, NaN where unknown — or any other static map
    (``what`` names it in errors: the ``urban`` covariate is read the same way).

    Parameters
    ----------
    path : str, path, glob or list
        One raster, a directory of tiles (``*.tif``), a glob, or a list; ``.nc``/``.nc4``/``.cdf`` files
        are read as NetCDF with 1-D lat/lon coordinates.
    grid : Grid
    variable : str, optional
        NetCDF variable (default: the first of ``dem``, ``elevation``, ``height``, … or the only 2-D one).
    band : int
        Raster band (1-based).
    resampling : "auto" or a rasterio ``Resampling`` name
        ``auto``: ``average`` when the source is finer than the grid, else ``bilinear``.
    return_info : bool
        Also return ``{"resampling": ..., "source_res_deg": ..., "files": ...}``.
    """
    try:
        files = expand_paths(path, "*.tif*")
    except IngestError as err:
        raise IngestError(f"{what}: {err}") from None
    if not files:
        raise IngestError(f"no {what} files found", path=str(path))
    total = np.zeros(grid.shape, dtype=np.float64)
    count = np.zeros(grid.shape, dtype=np.int32)
    methods, resolutions = set(), []
    for f in files:
        if f.suffix.lower() in (".nc", ".nc4", ".cdf", ".netcdf", ".h5"):
            out, method, res = _read_netcdf(f, grid, resampling, variable)
        else:
            out, method, res = _read_geotiff(f, grid, resampling, band)
        ok = np.isfinite(out)
        total[ok] += out[ok]
        count[ok] += 1
        methods.add(method)
        resolutions.append(res)
    with np.errstate(invalid="ignore", divide="ignore"):
        dem = np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)
    if not np.any(np.isfinite(dem)):
        raise IngestError(f"the {what} does not cover the grid ({grid.south}..{grid.north} °N, {grid.west}..{grid.east} °E) "
                          f"or holds only nodata there", path=str(files[0]))
    if return_info:
        return dem, {"resampling": "/".join(sorted(methods)), "source_res_deg": float(np.median(resolutions)), "files": len(files)}
    return dem
