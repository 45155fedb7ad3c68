"""Daily PM2.5 grids: ChinaHighPM2.5 (CHAP) NetCDF files and one-GeoTIFF-per-day stacks.

CHAP daily files are named ``CHAP_PM2.5_D1K_YYYYMMDD_V4.nc`` (the day, in Beijing time, comes from the
name) and hold ``PM2.5`` (µg/m³) on 1-D ``lat``/``lon`` (older files ``Lat``/``Lon``) 0.01° cell
centres, latitude stored north to south (either order is accepted). Missing cells are 65535, which may
survive CF decoding: every raw value ≥ 65530 is masked here, together with ``_FillValue`` /
``missing_value`` and values outside ``valid_range``/``valid_min``/``valid_max``, before
``scale_factor``/``add_offset`` are applied.

A file is placed on the analysis grid by coordinate matching: every file coordinate must sit on a cell
centre of the grid to within :data:`ALIGN_TOL_CELLS` of a cell (float32 coordinates are ≈ 1e-4 cells
off), so a file offset by a non-integer number of cells, or of another resolution, is an error naming
the file. Only the window that overlaps the grid is read (a China-wide CHAP file is not read whole).
Cells of the grid that the file does not cover are NaN; a file that does not overlap the grid at all is
an error naming the file and both extents.

The functions here read one day at a time; :class:`DailyPM25Source` indexes a set of files over a date
range and reads batches of days. :func:`ihs_hpc.io.ingest.ingest_pm25` turns it into the
time-contiguous cube with bounded memory.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..grid import Grid
from .daily_files import DEFAULT_DATE_FORMAT, DEFAULT_DATE_REGEX, index_daily_files
from .errors import IngestError
from .grid_match import AxisMatch, check_geographic, match_grid, open_raster, raster_centres

#: Raw values at or above this are CHAP's missing-value sentinel (65535) or its neighbours.
CHAP_MISSING_THRESHOLD = 65530.0


LAT_NAMES = ("lat", "Lat", "LAT", "latitude", "Latitude", "LATITUDE", "y")
LON_NAMES = ("lon", "Lon", "LON", "longitude", "Longitude", "LONGITUDE", "x")


# ---------------------------------------------------------------------------------------------- masking
def _mask_and_scale(raw: np.ndarray, attrs: Mapping[str, object], *, mask_threshold: float | None) -> np.ndarray:
    """Decode raw stored values to float32 with NaN for every kind of missing value."""
    raw = np.asarray(raw)
    if np.ma.isMaskedArray(raw):
        raw = raw.filled(np.nan if raw.dtype.kind == "f" else 0)
    bad = np.zeros(raw.shape, dtype=bool)
    for key in ("_FillValue", "missing_value"):
        if key in attrs and attrs[key] is not None:
            for value in np.atleast_1d(np.asarray(attrs[key])):
                if value.dtype.kind == "f" and np.isnan(value):
                    continue
                bad |= raw == value
    if "valid_range" in attrs:
        vmin, vmax = np.asarray(attrs["valid_range"]).ravel()[:2]
        bad |= (raw < vmin) | (raw > vmax)
    if "valid_min" in attrs:
        bad |= raw < np.asarray(attrs["valid_min"])
    if "valid_max" in attrs:
        bad |= raw > np.asarray(attrs["valid_max"])
    if mask_threshold is not None and (raw.dtype.kind == "f" or (raw.dtype.kind in "iu" and np.iinfo(raw.dtype).max >= mask_threshold)):
        bad |= raw >= mask_threshold
    out = raw.astype(np.float32)
    scale = attrs.get("scale_factor")
    offset = attrs.get("add_offset")
    if scale is not None and float(np.asarray(scale)) != 1.0:
        out *= np.float32(np.asarray(scale))
    if offset is not None and float(np.asarray(offset)) != 0.0:
        out += np.float32(np.asarray(offset))
    if mask_threshold is not None:
        bad |= out >= mask_threshold  # a 65535 that was scaled/decoded by the writer
    bad |= ~np.isfinite(out)
    out[bad] = np.nan
    return out


# ---------------------------------------------------------------------------------------------- NetCDF
def _find_coord(ds, names: Sequence[str]):
    for name in names:
        if name in ds.variables and ds.variables[name].ndim == 1:
            return name
    return None


def _place_on_grid(values: np.ndarray, grid: Grid, mlat: AxisMatch, mlon: AxisMatch) -> np.ndarray:
    """Put a file's matched window onto the analysis grid (NaN elsewhere), flipping axes as matched."""
    if mlat.flip:
        values = values[::-1]
    if mlon.flip:
        values = values[:, ::-1]
    out = np.full(grid.shape, np.nan, dtype=np.float32)
    out[mlat.dst, mlon.dst] = values
    return out


def read_chap_day(path, grid: Grid, *, variable: str = "PM2.5", day=None,
                  mask_threshold: float | None = CHAP_MISSING_THRESHOLD) -> np.ndarray:
    """One CHAP-layout NetCDF day on ``grid``: float32 ``(ny, nx)`` µg/m³, NaN where missing.

    Raises :class:`IngestError` naming the file when it cannot be read, lacks ``variable`` (listing
    the variables it has), is not on the grid's cell centres, or does not overlap the grid.
    """
    import netCDF4

    try:
        ds = netCDF4.Dataset(os.fspath(path), "r")
    except Exception as exc:  # OSError / RuntimeError from the C library, or a bad header
        raise IngestError(f"cannot be read as NetCDF: {exc}", path=path, day=day) from None
    try:
        return _read_chap_open(ds, path, grid, variable=variable, day=day, mask_threshold=mask_threshold)
    finally:
        ds.close()


def _read_chap_open(ds, path, grid, *, variable, day, mask_threshold):
    name = variable
    if name not in ds.variables:
        lowered = {v.lower(): v for v in ds.variables}
        name = lowered.get(variable.lower())
        if name is None:
            found = ", ".join(repr(v) for v in ds.variables)
            raise IngestError(f"no variable {variable!r}; the file has {found}", path=path, day=day, variable=variable)
    var = ds.variables[name]
    lat_name, lon_name = _find_coord(ds, LAT_NAMES), _find_coord(ds, LON_NAMES)
    if lat_name is None or lon_name is None:
        raise IngestError(
            f"no 1-D latitude/longitude coordinates (looked for {LAT_NAMES} and {LON_NAMES}); "
            f"the file has {', '.join(repr(v) for v in ds.variables)}", path=path, day=day, variable=name,
        )
    lat_var, lon_var = ds.variables[lat_name], ds.variables[lon_name]
    lat_dim, lon_dim = lat_var.dimensions[0], lon_var.dimensions[0]
    dims = var.dimensions
    if lat_dim not in dims or lon_dim not in dims:
        raise IngestError(f"has dims {dims}, expected to include {lat_dim!r} and {lon_dim!r}", path=path, day=day, variable=name)
    lat = np.asarray(lat_var[:], dtype=np.float64)
    lon = np.asarray(lon_var[:], dtype=np.float64)
    mlat, mlon = match_grid(lat, lon, grid, path=path)
    index = []
    for dim, size in zip(dims, var.shape):
        if dim == lat_dim:
            index.append(mlat.src)
        elif dim == lon_dim:
            index.append(mlon.src)
        elif size == 1:
            index.append(0)
        else:
            raise IngestError(f"has an extra dim {dim!r} of size {size}; expected one day of 2-D data", path=path, day=day, variable=name)
    var.set_auto_maskandscale(False)
    try:
        raw = np.asarray(var[tuple(index)])
    except Exception as exc:
        raise IngestError(f"data cannot be read: {exc}", path=path, day=day, variable=name) from None
    kept = [d for d in dims if d in (lat_dim, lon_dim)]
    if kept != [lat_dim, lon_dim]:
        raw = raw.T
    attrs = {k: var.getncattr(k) for k in var.ncattrs()}
    return _place_on_grid(_mask_and_scale(raw, attrs, mask_threshold=mask_threshold), grid, mlat, mlon)


def file_grid(path, *, format: str = "chap-netcdf") -> Grid:
    """The grid a PM2.5 file is on (its own extent and resolution), from its coordinates or transform."""
    path = Path(path)
    if format == "geotiff":
        import rasterio

        try:
            with rasterio.open(os.fspath(path)) as src:
                lat, lon = raster_centres(src.transform, src.height, src.width, path=path)
        except IngestError:
            raise
        except Exception as exc:
            raise IngestError(f"cannot be read as a raster: {exc}", path=path) from None
    else:
        import netCDF4

        try:
            with netCDF4.Dataset(os.fspath(path), "r") as ds:
                lat_name, lon_name = _find_coord(ds, LAT_NAMES), _find_coord(ds, LON_NAMES)
                if lat_name is None or lon_name is None:
                    raise IngestError(f"no 1-D latitude/longitude coordinates (looked for {LAT_NAMES} and "
                                      f"{LON_NAMES})", path=path)
                lat = np.asarray(ds.variables[lat_name][:], dtype=np.float64)
                lon = np.asarray(ds.variables[lon_name][:], dtype=np.float64)
        except IngestError:
            raise
        except Exception as exc:
            raise IngestError(f"cannot be read as NetCDF: {exc}", path=path) from None
    if lat.size < 2 or lon.size < 2:
        raise IngestError(f"has {lat.size} x {lon.size} cells; at least 2 x 2 are needed to infer its grid", path=path)
    res = float(np.round(np.median(np.abs(np.diff(lon))), 9))
    half = res / 2
    return Grid(round(float(lat.min()) - half, 9), round(float(lat.max()) + half, 9),
                round(float(lon.min()) - half, 9), round(float(lon.max()) + half, 9), res)


# ---------------------------------------------------------------------------------------------- GeoTIFF
def read_geotiff_day(path, grid: Grid, *, band: int | str = 1, day=None,
                     mask_threshold: float | None = CHAP_MISSING_THRESHOLD) -> np.ndarray:
    """One day's PM2.5 GeoTIFF (WGS84 lat/lon, the grid's resolution and alignment) on ``grid``.

    ``band`` is a 1-based index or a band description. Nodata, raw values ≥ ``mask_threshold`` and
    non-finite values become NaN; band scales/offsets are applied.
    """
    from rasterio.windows import Window

    with open_raster(path, day=day) as src:
        check_geographic(src.crs, path=path)
        if isinstance(band, str):
            names = list(src.descriptions)
            if band not in names:
                raise IngestError(f"no band {band!r}; the bands are {names}", path=path, day=day, variable=band)
            band_index = names.index(band) + 1
        else:
            band_index = int(band)
            if not 1 <= band_index <= src.count:
                raise IngestError(f"band {band_index} does not exist (the file has {src.count})", path=path, day=day)
        lat, lon = raster_centres(src.transform, src.height, src.width, path=path)
        mlat, mlon = match_grid(lat, lon, grid, path=path)
        window = Window(mlon.src.start, mlat.src.start, mlon.src.stop - mlon.src.start, mlat.src.stop - mlat.src.start)
        try:
            raw = src.read(band_index, window=window)
        except Exception as exc:
            raise IngestError(f"data cannot be read: {exc}", path=path, day=day) from None
        attrs = {}
        if src.nodata is not None:
            attrs["_FillValue"] = src.nodata
        scale, offset = src.scales[band_index - 1], src.offsets[band_index - 1]
        if scale not in (None, 1.0):
            attrs["scale_factor"] = scale
        if offset not in (None, 0.0):
            attrs["add_offset"] = offset
    return _place_on_grid(_mask_and_scale(raw, attrs, mask_threshold=mask_threshold), grid, mlat, mlon)


# ---------------------------------------------------------------------------------------------- source
PM25_FORMATS = {
    "chap-netcdf": ("*.nc", "CHAP_PM2.5_D1K_*.nc"),
    "netcdf": ("*.nc", "*.nc"),
    "geotiff": ("*.tif", "*.tif*"),
}


class DailyPM25Source:
    """PM2.5 days ``start..end`` from one file per day, read onto ``grid`` in batches.

    Parameters
    ----------
    path : str, path or list
        Directory (searched recursively), glob, file, or a list of them.
    grid : Grid
        Analysis grid.
    start, end : date-like
        Inclusive day range.
    format : {"chap-netcdf", "netcdf", "geotiff"}
        ``chap-netcdf`` looks for ``CHAP_PM2.5_D1K_*.nc`` in directories, ``netcdf`` for ``*.nc``,
        ``geotiff`` for ``*.tif``/``*.tiff``.
    variable : str
        NetCDF variable (``PM2.5``); for GeoTIFF a band description or 1-based index (``band``).
    date_regex, date_format : str
        How the day is read from the file name (see :func:`day_from_name`).
    allow_gaps : bool
        Tolerate days without a file (all-NaN, with a warning) instead of raising.
    mask : ndarray of bool, optional
        ``(ny, nx)`` cells to keep; others are set to NaN (clip to a boundary polygon).
    """

    name = "pm25"

    def __init__(self, path, grid: Grid, start, end, *, format: str = "chap-netcdf", variable: str = "PM2.5",
                 band: int | str = 1, date_regex: str = DEFAULT_DATE_REGEX, date_format: str = DEFAULT_DATE_FORMAT,
                 allow_gaps: bool = False, mask: np.ndarray | None = None, glob_pattern: str | None = None,
                 mask_threshold: float | None = CHAP_MISSING_THRESHOLD):
        if format not in PM25_FORMATS:
            raise IngestError(f"unknown PM2.5 format {format!r}; use one of {sorted(PM25_FORMATS)}")
        self.grid = grid
        self.format = format
        self.variable = variable
        self.band = band
        self.mask = None if mask is None else np.asarray(mask, dtype=bool)
        self.mask_threshold = mask_threshold
        if self.mask is not None and self.mask.shape != grid.shape:
            raise IngestError(f"mask has shape {self.mask.shape}, expected the grid's {grid.shape}")
        pattern = glob_pattern or PM25_FORMATS[format][1]
        self.files = index_daily_files(path, start, end, default_glob=pattern, date_regex=date_regex,
                                       date_format=date_format, allow_gaps=allow_gaps, what="PM2.5")
        self.days = np.array(list(self.files), dtype="datetime64[D]")
        self.variables = {"pm25": {"units": "ug m-3", "long_name": "PM2.5 mass concentration (daily mean)",
                                   "standard_name": "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"}}

    @property
    def nbytes_per_day(self) -> int:
        return self.grid.size * 4

    def read_day(self, day) -> np.ndarray:
        day = np.datetime64(day, "D")
        path = self.files[day]
        if path is None:
            return np.full(self.grid.shape, np.nan, dtype=np.float32)
        if self.format == "geotiff":
            out = read_geotiff_day(path, self.grid, band=self.band, day=day, mask_threshold=self.mask_threshold)
        else:
            out = read_chap_day(path, self.grid, variable=self.variable, day=day, mask_threshold=self.mask_threshold)
        if self.mask is not None:
            out[~self.mask] = np.nan
        return out

    def file_of(self, day, variable: str = "pm25"):
        """The file holding ``day`` (None for a tolerated gap)."""
        return self.files.get(np.datetime64(day, "D"))

    def read_days(self, days: Iterable, out: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """``{"pm25": (n, ny, nx) float32}`` for ``days`` (written into ``out`` when given)."""
        days = list(days)
        buf = out["pm25"] if out is not None else np.empty((len(days),) + self.grid.shape, dtype=np.float32)
        for i, day in enumerate(days):
            buf[i] = self.read_day(day)
        return {"pm25": buf}

    def describe(self) -> dict:
        present = [p for p in self.files.values() if p is not None]
        return {"format": self.format, "variable": self.variable, "files": len(present),
                "gaps": int(sum(p is None for p in self.files.values())),
                "first_file": str(present[0]) if present else None}
