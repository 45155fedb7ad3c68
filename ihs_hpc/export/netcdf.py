"""NetCDF-4 files following CF-1.8, for Panoply, ncview, CDO/NCO and GIS: maps and any cube of a run.

Every file has the CF coordinates ``lat``/``lon`` (degrees, with cell bounds), the ``crs`` grid-mapping
variable (``latitude_longitude`` on WGS84, with its WKT), ``units``/``long_name`` (and
``standard_name`` where CF has one) on every variable, a numeric ``_FillValue`` in place of NaN, and a
``time`` coordinate encoded as days since 1970-01-01 (standard calendar) with ``time_bnds`` and
``cell_methods`` for means: a daily cube's step is one day, an annual map's one year, a period map's
the whole run. Values are compressed (zlib) and chunked by tile. Files are written to a temporary
name and renamed when complete. They pass the IOOS ``compliance-checker`` CF 1.8 suite with no
high-priority failure (``tests/test_export.py``).
"""
from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from .. import __version__
from ..grid import GRID_MAPPING_NAME, Grid
from .maps import PM25_STANDARD_NAME, TREND_FLAGS, MapProduct, is_flag
from .sources import ExportError, atomic_path

CONVENTIONS = "CF-1.8"
TIME_UNITS = "days since 1970-01-01 00:00:00"
CALENDAR = "standard"
#: netCDF's default fill of float32 (``NC_FILL_FLOAT``), written where the stores hold NaN.
FLOAT_FILL = np.float32(9.969209968386869e36)
INT8_FILL = np.int8(-128)
REFERENCE = ("Ma et al. (2024), Atmosphere 15(1), 131, DOI 10.3390/atmos15010131: three-stage model of "
             "IHS-related PM2.5")
#: Store attributes that describe the Zarr layout only, not the data.
_LAYOUT_ATTRS = {"ihs_complete", "ihs_tile_size", "ihs_met_grid", "Conventions"}


def _edges(centres: np.ndarray) -> np.ndarray:
    """``(n, 2)`` cell bounds of regularly spaced cell centres (either order)."""
    step = (centres[1] - centres[0]) if centres.size > 1 else 1.0
    return np.column_stack([centres - step / 2.0, centres + step / 2.0])


def _spatial_coords(ds, dims: Iterable[str]):
    """Give the horizontal coordinates of ``ds`` CF attributes and ``*_bnds`` variables."""
    for dim in dims:
        if dim not in ds.coords:
            continue
        values = ds[dim].values.astype(np.float64)
        attrs = dict(ds[dim].attrs)
        axis = "Y" if "lat" in dim else "X"
        attrs.update({"units": "degrees_north" if axis == "Y" else "degrees_east",
                      "standard_name": "latitude" if axis == "Y" else "longitude", "axis": axis,
                      "bounds": f"{dim}_bnds"})
        ds = ds.assign_coords({dim: (dim, values, attrs)})
        ds[f"{dim}_bnds"] = ((dim, "nv"), _edges(values))
    return ds


def _time_axis(ds, starts: np.ndarray, stops: np.ndarray, long_name: str):
    """A ``time`` coordinate at the middle of each ``[start, stop)`` interval, with ``time_bnds``."""
    starts = np.asarray(starts, dtype="datetime64[s]")
    stops = np.asarray(stops, dtype="datetime64[s]")
    middle = starts + (stops - starts) // 2
    ds = ds.assign_coords(time=("time", middle.astype("datetime64[ns]"),
                                {"standard_name": "time", "long_name": long_name, "axis": "T",
                                 "bounds": "time_bnds"}))
    ds["time_bnds"] = (("time", "nv"), np.column_stack([starts, stops]).astype("datetime64[ns]"))
    return ds


def _global_attrs(title: str, run_dir: Path, extra: Mapping[str, object] | None = None) -> dict:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    attrs = {
        "Conventions": CONVENTIONS,
        "title": title,
        "source": f"ihs_hpc {__version__}: three-stage IHS model over daily 1 km PM2.5 and ERA5 meteorology",
        "history": f"{now} ihs export {run_dir}",
        "references": REFERENCE,
    }
    for key, value in (extra or {}).items():
        if key in _LAYOUT_ATTRS or value is None or key in attrs:
            continue
        if isinstance(value, (bool, np.bool_)):
            value = int(value)
        elif isinstance(value, (list, tuple)):
            if not all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in value):
                value = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = str(value)
        attrs[key] = value
    return attrs


_PER_UNIT = re.compile(r"^(?P<num>.+?) per unit of (?P<var>\w+)$")


def _cf_units(units: str, ds) -> str:
    """UDUNITS form of a store's ``units`` (``"ug m-3 per unit of t2m"`` → ``"ug m-3 per K"``, from the units
    of ``t2m`` or of its baseline ``met_bl_t2m`` in the same store)."""
    match = _PER_UNIT.match(units.strip())
    if match:
        source = next((n for n in (match["var"], f"met_bl_{match['var']}") if n in ds), None)
        other = ds[source].attrs.get("units") if source else None
        if not other:
            raise ExportError(f"units {units!r}: the store has no variable {match['var']!r} to take units from")
        return f"{match['num']} per ({other})" if " " in other else f"{match['num']} per {other}"
    return units


def _variable_attrs(attrs: Mapping[str, object], *, units: str | None, long_name: str,
                    standard_name: str | None, cell_methods: str | None, flags: bool) -> dict:
    out = {k: v for k, v in attrs.items() if k not in ("units", "long_name", "standard_name", "grid_mapping",
                                                      "flag_values", "flag_meanings", "_FillValue")}
    out["long_name"] = long_name
    if standard_name:
        out["standard_name"] = standard_name
    if flags:
        out.update(flag_values=np.array(TREND_FLAGS["flag_values"], dtype=np.int8),
                   flag_meanings=TREND_FLAGS["flag_meanings"])
    elif units is not None:
        out["units"] = units
    if cell_methods:
        out["cell_methods"] = cell_methods
    out["grid_mapping"] = GRID_MAPPING_NAME
    return out


def _encoding(ds, tile: int) -> dict:
    enc = {}
    for name, var in ds.variables.items():
        if name in ds.coords or name.endswith("_bnds") or name == GRID_MAPPING_NAME:
            enc[name] = {"_FillValue": None}
            if name == "time" or name == "time_bnds":
                enc[name].update(units=TIME_UNITS, calendar=CALENDAR, dtype="float64")
            continue
        chunks = tuple(min(n, 366 if d == "time" else tile) for d, n in zip(var.dims, var.shape))
        entry = {"zlib": True, "complevel": 4, "chunksizes": chunks}
        if "flag_meanings" in var.attrs and var.dtype.kind == "f":  # flags computed with NaN for "no estimate"
            entry.update(dtype="int8", _FillValue=INT8_FILL)
        elif var.dtype.kind == "f":
            entry.update(dtype="float32", _FillValue=FLOAT_FILL)
        elif var.dtype.kind in "iu":
            fill = var.encoding.get("fill_value", var.attrs.get("_FillValue"))
            entry["_FillValue"] = None if fill is None else np.asarray(fill, dtype=var.dtype).item()
        enc[name] = entry
    return enc


def _write(ds, path: Path, tile: int) -> Path:
    tmp = atomic_path(path)
    try:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=_encoding(ds, tile))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _base(grid: Grid, dims=("lat", "lon")):
    ds = grid.to_dataset()
    ds[GRID_MAPPING_NAME].attrs = {k: v for k, v in ds[GRID_MAPPING_NAME].attrs.items() if k != "ihs_grid"}
    return _spatial_coords(ds, dims)


def write_maps_netcdf(path, products: list[tuple[MapProduct, object]], grid: Grid, *, run_dir: Path,
                      period: tuple[np.datetime64, np.datetime64] | None = None, years=None,
                      tile: int = 256, title: str = "") -> Path:
    """Write map products of one kind (``mean``, ``annual`` or ``trend``) into one CF NetCDF file.

    Parameters
    ----------
    path : path-like
        Output ``.nc`` file.
    products : list of (MapProduct, DataArray)
        From :func:`ihs_hpc.export.maps.available_products`, all of one kind.
    grid : Grid
        The analysis grid.
    run_dir : Path
        The run directory (recorded in ``history``).
    period : (first day, last day), optional
        Days the means cover; the ``time`` bounds of a ``mean`` file, and the trend's years' span.
    years : array of int, optional
        The years of an ``annual`` file (one time step each) or of the trend test.
    """
    import xarray as xr

    kinds = {p.kind for p, _ in products}
    if len(kinds) != 1:
        raise ValueError(f"one kind of map per file, got {sorted(kinds)}")
    kind = kinds.pop()
    ds = _base(grid)
    cell_methods = None
    if kind == "mean":
        first, last = (np.datetime64(period[0], "D"), np.datetime64(period[1], "D"))
        ds = _time_axis(ds, np.array([first]), np.array([last + 1]), "middle of the averaging period")
        cell_methods = "time: mean"
    elif kind == "annual":
        years = np.asarray(years, dtype=int)
        ds = _time_axis(ds, np.array([f"{y}-01-01" for y in years], dtype="datetime64[D]"),
                        np.array([f"{y + 1}-01-01" for y in years], dtype="datetime64[D]"), "middle of the year")
        cell_methods = "time: mean"
    for product, data in products:
        values = np.asarray(data.values, dtype=np.float32)
        if kind == "annual":
            dims = ("time", "lat", "lon")
        elif kind == "mean":
            dims, values = ("time", "lat", "lon"), values[None]
        else:
            dims = ("lat", "lon")
        attrs = _variable_attrs({"ihs_source": f"{product.store}.zarr:{product.variable}"}, units=product.units,
                                long_name=product.long_name, standard_name=product.standard_name,
                                cell_methods=cell_methods, flags=is_flag(product))
        ds[product.name] = xr.DataArray(values, dims=dims, attrs=attrs)
    extra = {}
    if kind == "trend" and years is not None:
        extra["comment"] = (f"per-pixel Mann-Kendall test and Sen's slope of the annual means "
                            f"{int(min(years))}-{int(max(years))}")
    ds.attrs = _global_attrs(title or f"IHS-related PM2.5: {kind} maps", Path(run_dir), extra)
    return _write(ds, Path(path), tile)


def write_variable_netcdf(path, store_ds, variable: str, *, run_dir: Path, store_name: str,
                          tile: int | None = None) -> Path:
    """Write one cube or map of a run store (any variable with ``lat``/``lon`` or ``met_lat``/``met_lon``
    dims) as CF NetCDF, streaming tile by tile from Zarr through Dask (never the whole cube in memory).

    A daily cube gets ``time`` bounds of one day; a ``(year, lat, lon)`` map gets yearly bounds;
    PM2.5 cubes (``pm25*``, daily means) get ``cell_methods = "time: mean"``. NetCDF chunks are the
    store's tiles (``tile``, default the store's ``ihs_tile_size``) by up to 366 days.
    """
    import xarray as xr

    if variable not in store_ds.data_vars:
        raise ExportError(f"{store_name}: no variable {variable!r}")
    var = store_ds[variable]
    spatial = [d for d in var.dims if d in ("lat", "lon", "met_lat", "met_lon")]
    if len(spatial) != 2 or var.dims[-2:] != tuple(spatial):
        raise ExportError(f"{store_name}:{variable} has dims {var.dims}: only maps (lat, lon) and cubes "
                          f"(time, lat, lon) can be written as NetCDF")
    other = [d for d in var.dims if d not in spatial]
    if any(d not in ("time", "year") for d in other) or len(other) > 1:
        raise ExportError(f"{store_name}:{variable} has dims {var.dims}: only a time or year axis may lead")
    grid = Grid.from_coords(store_ds[spatial[0]].values, store_ds[spatial[1]].values)
    ds = _base(grid)
    if spatial[0] != "lat":
        ds = ds.drop_vars(["lat", "lon", "lat_bnds", "lon_bnds"]).assign_coords(
            {spatial[0]: (spatial[0], grid.lat, dict(store_ds[spatial[0]].attrs)),
             spatial[1]: (spatial[1], grid.lon, dict(store_ds[spatial[1]].attrs))})
        ds = _spatial_coords(ds, spatial)
    cell_methods = None
    data = var.variable
    if other == ["time"]:
        days = store_ds["time"].values.astype("datetime64[D]")
        ds = _time_axis(ds, days, days + 1, store_ds["time"].attrs.get("long_name", "day"))
        if variable.startswith("pm25"):
            cell_methods = "time: mean"
    elif other == ["year"]:
        years = store_ds["year"].values.astype(int)
        ds = _time_axis(ds, np.array([f"{y}-01-01" for y in years], dtype="datetime64[D]"),
                        np.array([f"{y + 1}-01-01" for y in years], dtype="datetime64[D]"), "middle of the year")
        data = xr.Variable(tuple("time" if d == "year" else d for d in data.dims), data.data)
    attrs = dict(var.attrs)
    units = _cf_units(str(attrs["units"]), store_ds) if "units" in attrs else None
    standard_name = attrs.get("standard_name") or (PM25_STANDARD_NAME if variable == "pm25" else None)
    flag_attrs = {k: attrs[k] for k in ("flag_values", "flag_meanings") if k in attrs}
    new_attrs = _variable_attrs(attrs, units=units, long_name=str(attrs.get("long_name", variable)),
                                standard_name=standard_name, cell_methods=cell_methods, flags=False)
    if "flag_meanings" in flag_attrs:  # a complete CF flag description is kept as it is
        new_attrs.update(flag_attrs)
    ds[variable] = xr.DataArray(data.data, dims=data.dims, attrs=new_attrs)
    ds[variable].encoding = {"fill_value": var.encoding.get("fill_value")}
    store_attrs = {k: v for k, v in store_ds.attrs.items()}
    ds.attrs = _global_attrs(f"{variable} of {store_name}", Path(run_dir), store_attrs)
    return _write(ds, Path(path), tile or int(store_ds.attrs.get("ihs_tile_size", 64)))
