"""ERA5 daily meteorology: CDS NetCDF or Earth Engine multi-band GeoTIFFs → the native 0.1° met grid.

Variables read (store name ← accepted source names; see ``/work/shared/data/era5_gee_bands.csv``):

========  ===========================================================================  =========
store     accepted names (CDS short, CDS request/long name, Earth Engine band)          store unit
========  ===========================================================================  =========
t2m       t2m, 2t, 2m_temperature, mean_2m_air_temperature, temperature_2m              K
d2m       d2m, 2d, 2m_dewpoint_temperature, dewpoint_2m_temperature,                    K
          dewpoint_temperature_2m
tp        tp, total_precipitation, total_precipitation_sum                              m (daily total)
sp        sp, surface_pressure                                                          Pa
u10       u10, 10u, 10m_u_component_of_wind, u_component_of_wind_10m                   m s-1
v10       v10, 10v, 10m_v_component_of_wind, v_component_of_wind_10m                   m s-1
rh        derived: Magnus formula from t2m and d2m (:func:`ihs_hpc.ops.humidity.relative_humidity`)  %
========  ===========================================================================  =========

NetCDF variables are also recognised by their ``long_name`` (``"2 metre temperature"`` …).

Units
-----
Each source variable is converted to the store unit from its ``units`` attribute (``K``/``degC``/
``°C``/``degF``; ``m``/``mm``/``kg m-2``; ``Pa``/``hPa``/``kPa``; ``m s-1``/``m/s``/``km/h``), or from a
``units={"t2m": "degC", ...}`` override. Without either (Earth Engine GeoTIFFs carry no units) the
catalogue units (K, m, Pa, m s-1) are assumed, except that a temperature whose median is below 150 is
taken as °C, a pressure below 200 as kPa and below 2000 as hPa, and a precipitation whose 99th
percentile exceeds 0.5 as mm — each with an :class:`IngestWarning`. After conversion every value must be
physically plausible (temperatures 170–340 K, pressure 30–110 kPa, precipitation 0–1 m/day, winds
below 100 m/s) or the file, day and variable are named in an :class:`IngestError`. Small negative
precipitation (GRIB packing noise, ≥ -1 mm) is set to 0. The conversions applied are recorded per
variable in :attr:`Era5Source.conversions` (and by the ingest in the store's ``ihs_source_units``).

Time
----
Daily data (steps of ≥ 1 day) are taken as they are (their day is the UTC day of the time stamp).
Sub-daily data (CDS hourly ``reanalysis-era5-single-levels``) are aggregated to days in local time
(``utc_offset_hours``, default 8 = Beijing time, the day convention of CHAP): the mean for state
variables and the sum for ``tp``, whose hourly value accumulates over the hour *ending* at its time
stamp (so it is assigned to the day of ``time - step``). Days without every step are missing.
For the CDS *daily statistics* product, whose ``tp`` is the daily **mean** of hourly accumulations,
pass ``tp_statistic="mean"`` (×24 → daily total). A day without data is an error naming it, or with
``allow_gaps`` an all-NaN day and a warning.

Space
-----
Values are interpolated bilinearly from the source cell centres (0.1°, 0.25° or anything regular or
not, either latitude order) onto the met grid's centres, NaN-aware: the weights of missing neighbours
(ERA5-Land is NaN over the sea) are dropped and the rest renormalised; a target cell with no valid
neighbour is NaN. When target centres coincide with source centres the weights are exactly 0/1, so
the values are copied unchanged. RH is computed on the met grid from the interpolated t2m and d2m.
"""
from __future__ import annotations

import os
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from ..grid import Grid
from ..ops.interp import CoverageError, apply_bilinear, axis_weights, corner_weights
from .chap import (DEFAULT_DATE_FORMAT, DEFAULT_DATE_REGEX, check_geographic, day_from_name, day_range,
                   expand_paths, raster_centres)
from .errors import IngestError, IngestWarning

#: Variables read from the source, in store order, and the derived one.
SOURCE_VARIABLES = ("t2m", "d2m", "tp", "sp", "u10", "v10")
MET_VARIABLES = ("t2m", "d2m", "rh", "tp", "sp", "u10", "v10")

ALIASES: dict[str, tuple[str, ...]] = {
    "t2m": ("t2m", "2t", "2m_temperature", "mean_2m_air_temperature", "temperature_2m", "VAR_2T"),
    "d2m": ("d2m", "2d", "2m_dewpoint_temperature", "dewpoint_2m_temperature", "dewpoint_temperature_2m", "VAR_2D"),
    "tp": ("tp", "total_precipitation", "total_precipitation_sum"),
    "sp": ("sp", "surface_pressure"),
    "u10": ("u10", "10u", "10m_u_component_of_wind", "u_component_of_wind_10m", "VAR_10U"),
    "v10": ("v10", "10v", "10m_v_component_of_wind", "v_component_of_wind_10m", "VAR_10V"),
}
LONG_NAMES: dict[str, tuple[str, ...]] = {
    "t2m": ("2 metre temperature",),
    "d2m": ("2 metre dewpoint temperature",),
    "tp": ("total precipitation",),
    "sp": ("surface pressure",),
    "u10": ("10 metre u wind component", "10 metre u-wind component"),
    "v10": ("10 metre v wind component", "10 metre v-wind component"),
}

#: CF description of every met variable in the store.
STORE_ATTRS: dict[str, dict[str, str]] = {
    "t2m": {"units": "K", "long_name": "2 m air temperature (daily mean)", "standard_name": "air_temperature"},
    "d2m": {"units": "K", "long_name": "2 m dew point temperature (daily mean)", "standard_name": "dew_point_temperature"},
    "rh": {"units": "%", "long_name": "2 m relative humidity (Magnus, from daily t2m and d2m)", "standard_name": "relative_humidity"},
    "tp": {"units": "m", "long_name": "total precipitation (daily total)", "standard_name": "lwe_thickness_of_precipitation_amount"},
    "sp": {"units": "Pa", "long_name": "surface pressure (daily mean)", "standard_name": "surface_air_pressure"},
    "u10": {"units": "m s-1", "long_name": "10 m eastward wind (daily mean)", "standard_name": "eastward_wind"},
    "v10": {"units": "m s-1", "long_name": "10 m northward wind (daily mean)", "standard_name": "northward_wind"},
}

_KIND = {"t2m": "temperature", "d2m": "temperature", "tp": "precipitation", "sp": "pressure", "u10": "wind", "v10": "wind"}

# unit text (normalised by _unit_key) -> (scale, offset) to the store unit
_UNITS: dict[str, dict[str, tuple[float, float]]] = {
    "temperature": {
        **{k: (1.0, 0.0) for k in ("k", "kelvin", "degk", "degreek", "degreesk")},
        **{k: (1.0, 273.15) for k in ("degc", "°c", "c", "celsius", "deg_c", "degreec", "degreesc",
                                      "degree_celsius", "degrees_celsius", "degreecelsius", "degreescelsius")},
        **{k: (5.0 / 9.0, 273.15 - 32.0 * 5.0 / 9.0) for k in ("degf", "°f", "f", "fahrenheit", "degree_fahrenheit", "degrees_fahrenheit")},
    },
    "precipitation": {
        **{k: (1.0, 0.0) for k in ("m", "mofwaterequivalent", "md-1", "m/d", "m/day", "metre", "meter", "meters", "metres")},
        **{k: (1e-3, 0.0) for k in ("mm", "kgm-2", "kg/m2", "kgm2", "kg/m^2", "mmd-1", "mm/d", "mm/day", "millimeter", "millimetre")},
    },
    "pressure": {
        **{k: (1.0, 0.0) for k in ("pa", "pascal", "pascals")},
        **{k: (100.0, 0.0) for k in ("hpa", "mb", "mbar", "millibar", "millibars", "hectopascal")},
        **{k: (1000.0, 0.0) for k in ("kpa", "kilopascal")},
    },
    "wind": {
        **{k: (1.0, 0.0) for k in ("ms-1", "m/s", "m.s-1", "meterspersecond", "metrespersecond", "meterpersecond", "metrepersecond")},
        **{k: (1.0 / 3.6, 0.0) for k in ("km/h", "kmh-1", "kph")},
        **{k: (0.514444, 0.0) for k in ("kn", "kt", "knot", "knots")},
    },
}
_STORE_UNIT = {"temperature": "K", "precipitation": "m", "pressure": "Pa", "wind": "m s-1"}
_PLAUSIBLE = {"temperature": (170.0, 340.0), "precipitation": (-1e-3, 1.0), "pressure": (3.0e4, 1.1e5), "wind": (-100.0, 100.0)}

ERA5_FORMATS = ("cds-netcdf", "gee-geotiff")


def _unit_key(units) -> str:
    return str(units).strip().lower().replace("**", "").replace("^", "").replace(" ", "")


def unit_conversion(variable: str, units) -> tuple[float, float]:
    """``(scale, offset)`` taking ``variable`` from ``units`` to the store unit; error on an unknown unit."""
    kind = _KIND[variable]
    key = _unit_key(units)
    if key not in _UNITS[kind]:
        raise IngestError(
            f"unknown {kind} unit {units!r}; known: {sorted(_UNITS[kind])} (or pass units={{{variable!r}: ...}})",
            variable=variable,
        )
    return _UNITS[kind][key]


def _guess_units(variable: str, values: np.ndarray) -> tuple[str, str]:
    """(assumed unit, reason) for data without a units attribute."""
    kind = _KIND[variable]
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return _STORE_UNIT[kind], "catalogue"
    if kind == "temperature" and np.median(finite) < 150.0:
        return "degC", f"median {np.median(finite):.1f} < 150"
    if kind == "pressure":
        med = float(np.median(finite))
        if med < 200.0:
            return "kPa", f"median {med:.1f} < 200"
        if med < 2000.0:
            return "hPa", f"median {med:.1f} < 2000"
    if kind == "precipitation" and np.percentile(finite, 99) > 0.5:
        return "mm", f"99th percentile {np.percentile(finite, 99):.3g} > 0.5"
    return _STORE_UNIT[kind], "catalogue"


def _relative_humidity(t2m_k: np.ndarray, d2m_k: np.ndarray) -> np.ndarray:
    from ..ops.humidity import relative_humidity

    return relative_humidity(t2m_k, d2m_k, units="K").astype(np.float32, copy=False)


# ---------------------------------------------------------------------------------------------- bilinear
class Bilinear:
    """NaN-aware bilinear interpolation from source centres onto a target grid (:mod:`ihs_hpc.ops.interp`).

    ``rows``/``cols`` are the source index windows to read; :meth:`__call__` takes ``(..., rows, cols)``
    arrays of exactly that window. A corner that is NaN is left out and the other corners' weights
    renormalised; ``exact`` is True when the source centres are the target's (values copied unchanged).
    """

    def __init__(self, src_lat, src_lon, target: Grid, *, path=None):
        src_lat = np.asarray(src_lat, dtype=np.float64)
        src_lon = np.asarray(src_lon, dtype=np.float64)
        try:
            iy, wy = axis_weights(src_lat, target.lat, name="latitude", tolerance=1e-6)
            ix, wx = axis_weights(src_lon, target.lon, name="longitude", tolerance=1e-6)
        except CoverageError:
            raise IngestError(
                f"the ERA5 grid (lat {src_lat.min():.4f}..{src_lat.max():.4f}, lon {src_lon.min():.4f}..{src_lon.max():.4f}, "
                f"cell centres) does not cover the meteorology grid (lat {target.lat.min():.4f}..{target.lat.max():.4f}, "
                f"lon {target.lon.min():.4f}..{target.lon.max():.4f}, cell centres {target.res:g}°); "
                f"download a larger box", path=path,
            ) from None
        except ValueError as err:
            raise IngestError(str(err), path=path) from None
        r0, r1 = int(iy.min()), int(iy.max()) + 2
        c0, c1 = int(ix.min()), int(ix.max()) + 2
        self.rows, self.cols = slice(r0, r1), slice(c0, c1)
        self.index, self.weight = corner_weights(iy[:, None] - r0, wy[:, None], ix[None, :] - c0, wx[None, :], c1 - c0)
        self.shape = target.shape
        self.exact = bool(np.all(np.isin(wy, (0.0, 1.0))) and np.all(np.isin(wx, (0.0, 1.0))))

    def __call__(self, window: np.ndarray) -> np.ndarray:
        window = np.asarray(window)
        out = apply_bilinear(window, self.index, self.weight, skipna=True)
        return out.reshape(window.shape[:-2] + self.shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------- base
class Era5Source:
    """Common part of the ERA5 readers: units, aggregation, interpolation, RH.

    Subclasses fill ``self.days`` and implement ``_read_raw(days) -> {var: (n_days, ny, nx) on the
    met grid}`` (already interpolated, converted).
    """

    name = "met"

    def __init__(self, met_grid: Grid, start, end, *, units: Mapping[str, str] | None = None,
                 tp_statistic: str = "sum", allow_gaps: bool = False):
        if tp_statistic not in ("sum", "mean"):
            raise IngestError(f"tp_statistic must be 'sum' (file holds daily totals) or 'mean' (daily mean of hourly accumulations), got {tp_statistic!r}")
        self.grid = met_grid
        self.days = day_range(start, end)
        self.units_override = dict(units or {})
        for var in self.units_override:
            if var not in SOURCE_VARIABLES:
                raise IngestError(f"units given for unknown variable {var!r}; use {SOURCE_VARIABLES}")
        self.tp_statistic = tp_statistic
        self.allow_gaps = allow_gaps
        self.conversions: dict[str, set[str]] = defaultdict(set)
        self.variables = {v: dict(STORE_ATTRS[v]) for v in MET_VARIABLES}
        self._warned: set[tuple] = set()
        self._bilinear_cache: dict[tuple, Bilinear] = {}

    @property
    def nbytes_per_day(self) -> int:
        return self.grid.size * 4 * len(MET_VARIABLES)

    def _warn_once(self, key, message):
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, IngestWarning, stacklevel=4)

    def _bilinear(self, lat, lon, path) -> Bilinear:
        key = (np.asarray(lat, dtype=np.float64).tobytes(), np.asarray(lon, dtype=np.float64).tobytes())
        if key not in self._bilinear_cache:
            if len(self._bilinear_cache) > 32:
                self._bilinear_cache.clear()
            self._bilinear_cache[key] = Bilinear(lat, lon, self.grid, path=path)
        return self._bilinear_cache[key]

    def _convert(self, var: str, values: np.ndarray, units, *, path, day) -> np.ndarray:
        """Convert to the store unit and check plausibility (in place where possible)."""
        kind = _KIND[var]
        if var in self.units_override:
            units, how = self.units_override[var], "configured"
        elif units is None or str(units).strip() == "":
            units, reason = _guess_units(var, values)
            how = "assumed"
            if reason != "catalogue":
                self._warn_once((var, "guess", units), f"{path}: {var} has no units attribute; taken as {units} ({reason})")
        else:
            how = "attribute"
        try:
            scale, offset = unit_conversion(var, units)
        except IngestError as exc:
            raise IngestError(exc.message, path=path, day=day, variable=var) from None
        values = values.astype(np.float32, copy=False)
        if scale != 1.0:
            values *= np.float32(scale)
        if offset != 0.0:
            values += np.float32(offset)
        if var == "tp" and self.tp_statistic == "mean":
            values *= np.float32(24.0)
        self.conversions[var].add(f"{units} ({how})" + (" x24 (daily mean of hourly -> total)" if var == "tp" and self.tp_statistic == "mean" else ""))
        lo, hi = _PLAUSIBLE[kind]
        finite = values[np.isfinite(values)]
        if finite.size:
            vmin, vmax = float(finite.min()), float(finite.max())
            # most values out of range: the units are wrong. A few: bad values, which the ingest's
            # plausibility pass (ihs_hpc.io.plausibility) masks and counts per file.
            if np.count_nonzero((finite < lo) | (finite > hi)) > 0.5 * finite.size:
                raise IngestError(
                    f"values {vmin:.4g}..{vmax:.4g} {_STORE_UNIT[kind]} after converting from {units!r} ({how}) "
                    f"are outside the plausible {lo:g}..{hi:g}; check the units (override with units={{{var!r}: ...}})",
                    path=path, day=day, variable=var,
                )
        if var == "tp":
            np.maximum(values, 0.0, out=values, where=np.isfinite(values))
        return values

    def gap_days(self) -> dict[str, int]:
        """Days without data per variable (NaN in the store; filled along time in stage 2)."""
        return dict(getattr(self, "_gap_days", {}))

    def _missing(self, missing_days, what="ERA5", *, variable=None, files=None):
        """Days without data: an error naming the variable and the files concerned, or with
        ``allow_gaps`` a warning (the days become NaN and are filled along time in stage 2)."""
        listed = ", ".join(str(d) for d in missing_days[:10]) + (" ..." if len(missing_days) > 10 else "")
        hint = ""
        if self.format == "gee-geotiff" and any(d >= np.datetime64("2020-07-10") for d in missing_days):
            hint = " (Earth Engine's ECMWF/ERA5/DAILY ends 2020-07-09; ECMWF/ERA5_LAND/DAILY_AGGR goes on)"
        subject = f"variable {variable!r}: " if variable else ""
        where = ""
        if files:
            shown = ", ".join(str(f) for f in files[:3]) + (" ..." if len(files) > 3 else "")
            where = f"; the file(s) covering them ({shown}) hold no {variable!r}" if variable else f" ({shown})"
        message = f"{subject}{len(missing_days)} of {len(self.days)} days have no {what} data: {listed}{where}{hint}"
        if not self.allow_gaps:
            raise IngestError(message + " (set allow_gaps: true to fill them along time)", day=missing_days[0],
                              path=files[0] if files and len(files) == 1 else None)
        gaps = self.__dict__.setdefault("_gap_days", {})
        for var in ([variable] if variable else SOURCE_VARIABLES):
            gaps[var] = gaps.get(var, 0) + len(missing_days)
        warnings.warn(message + "; they are filled along time in stage 2", IngestWarning, stacklevel=3)

    def read_days(self, days: Iterable, out: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """``{var: (n, met_ny, met_nx) float32}`` for the met variables (rh included) of ``days``."""
        days = np.asarray(list(days), dtype="datetime64[D]")
        data = self._read_raw(days)
        data["rh"] = _relative_humidity(data["t2m"], data["d2m"])
        if out is not None:
            for var, arr in data.items():
                out[var][...] = arr
            return dict(out)
        return {v: data[v] for v in MET_VARIABLES}

    def _read_raw(self, days) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def source_units(self) -> dict[str, str]:
        return {v: "; ".join(sorted(s)) for v, s in self.conversions.items()}


# ---------------------------------------------------------------------------------------------- NetCDF
_TIME_DIMS = ("valid_time", "time", "date", "t")
_LAT_NAMES = ("latitude", "lat", "Latitude", "Lat", "LAT", "y")
_LON_NAMES = ("longitude", "lon", "Longitude", "Lon", "LON", "x")


def _match_variable(name: str, attrs: Mapping) -> str | None:
    for var, names in ALIASES.items():
        if name in names or name.lower() in (n.lower() for n in names):
            return var
    long_name = str(attrs.get("long_name", "")).strip().lower()
    for var, names in LONG_NAMES.items():
        if long_name in names:
            return var
    return None


class Era5NetcdfSource(Era5Source):
    """ERA5 from CDS-style NetCDF files (any number of days or hours per file, variables in one or
    several files, ``time`` or ``valid_time``, ``latitude``/``longitude`` in either order)."""

    format = "cds-netcdf"

    def __init__(self, path, met_grid: Grid, start, end, *, glob_pattern: str = "*.nc", utc_offset_hours: float = 8.0,
                 **kwargs):
        super().__init__(met_grid, start, end, **kwargs)
        import xarray as xr

        self.files = expand_paths(path, glob_pattern)
        if not self.files:
            raise IngestError(f"no ERA5 NetCDF files matching {glob_pattern!r}", path=str(path))
        self.utc_offset = np.timedelta64(int(round(utc_offset_hours * 3600)), "s")
        # per variable: list of (file index, name in file, time dim, times)
        found: dict[str, list] = defaultdict(list)
        self._attrs: dict[tuple[int, str], dict] = {}
        for fi, f in enumerate(self.files):
            try:
                with xr.open_dataset(f, decode_times=True, cache=False) as ds:
                    for name, da in ds.data_vars.items():
                        var = _match_variable(str(name), da.attrs)
                        if var is None:
                            continue
                        tdim = next((d for d in da.dims if d in _TIME_DIMS), None)
                        if tdim is None:
                            raise IngestError(f"has no time dim (looked for {_TIME_DIMS}); dims {da.dims}", path=f, variable=str(name))
                        times = np.asarray(ds[tdim].values)
                        if not np.issubdtype(times.dtype, np.datetime64):
                            raise IngestError(f"time coordinate {tdim!r} is not decodable as dates ({times.dtype})", path=f, variable=str(name))
                        found[var].append((fi, str(name), tdim, times.astype("datetime64[s]")))
                        self._attrs[(fi, str(name))] = dict(da.attrs)
            except IngestError:
                raise
            except Exception as exc:
                raise IngestError(f"cannot be read as NetCDF: {exc}", path=f) from None
        absent = [v for v in SOURCE_VARIABLES if v not in found]
        if absent:
            raise IngestError(
                f"no ERA5 variable for {absent} in {len(self.files)} file(s) (accepted names: "
                + "; ".join(f"{v}: {', '.join(ALIASES[v])}" for v in absent) + ")", path=str(self.files[0]),
            )
        # per variable and day: list of (file index, name, time dim, time index)
        self._index: dict[str, dict[np.datetime64, list]] = {}
        wanted = set(self.days.tolist())
        missing_by_var: dict[str, list] = {}
        self._daily: dict[str, bool] = {}
        for var in SOURCE_VARIABLES:
            entries = found[var]
            all_times = np.concatenate([e[3] for e in entries])
            uniq, counts = np.unique(all_times, return_counts=True)
            if np.any(counts > 1):
                dup = uniq[counts > 1][0]
                holders = [str(self.files[e[0]]) for e in entries if dup in e[3]]
                raise IngestError(f"time {dup} appears more than once ({', '.join(holders)})", variable=var, day=np.datetime64(dup, "D"))
            step = np.min(np.diff(uniq)) if uniq.size > 1 else np.timedelta64(1, "D")
            daily = step >= np.timedelta64(1, "D")
            per_day: dict = defaultdict(list)
            for fi, name, tdim, times in entries:
                if daily:
                    day_of = times.astype("datetime64[D]")
                else:
                    local = times + self.utc_offset
                    if var == "tp":
                        local = local - step  # accumulation over the step ending at the time stamp
                    day_of = local.astype("datetime64[D]")
                for ti, d in enumerate(day_of):
                    if d.item() in wanted:
                        per_day[d].append((fi, name, tdim, ti))
            if not daily:
                expected = int(np.timedelta64(1, "D") // step)
                incomplete = sorted(d for d, items in per_day.items() if len(items) != expected)
                if incomplete:
                    self._warn_once(("incomplete", var), f"{var}: {len(incomplete)} day(s) lack some of their {expected} "
                                    f"time steps (first {incomplete[0]}); they are treated as missing")
                    for d in incomplete:
                        del per_day[d]
            self._index[var] = dict(per_day)
            missing_by_var[var] = [d for d in self.days if d not in per_day]
            self._daily[var] = bool(daily)
        file_days: dict[int, set] = defaultdict(set)  # what each file covers, whatever variable
        for entries in found.values():
            for fi, _, _, times in entries:
                file_days[fi].update((times + self.utc_offset).astype("datetime64[D]").tolist())
        for var, days in missing_by_var.items():
            if days:
                wanted_days = set(np.asarray(days, dtype="datetime64[D]").tolist())  # datetime.date, as file_days
                holders = [self.files[fi] for fi in sorted(file_days) if file_days[fi] & wanted_days
                           and not any(e[0] == fi for e in found[var])]
                self._missing(days, variable=var, files=holders)
        self._open: dict[int, object] = {}

    def _dataset(self, fi: int):
        import xarray as xr

        # at most two files open: each open NetCDF4 file keeps an HDF5 chunk cache per variable (up to
        # tens of MB for a year of ERA5), which with many files open dominated the ingest's memory
        if fi not in self._open:
            while len(self._open) >= 2:
                oldest = next(iter(self._open))
                self._open.pop(oldest).close()
            self._open[fi] = xr.open_dataset(self.files[fi], decode_times=False, mask_and_scale=True, cache=False)
        return self._open[fi]

    def close(self):
        for ds in self._open.values():
            ds.close()
        self._open.clear()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_open"] = {}
        return state

    def _read_raw(self, days) -> dict[str, np.ndarray]:
        try:
            return {var: self._read_var_interp(var, days) for var in SOURCE_VARIABLES}
        finally:
            self.close()  # a batch's files are not needed again: their chunk caches go with them

    def _read_var_interp(self, var, days):
        # each step is interpolated from its own file grid, then steps are aggregated to days; both are
        # linear, so this equals aggregating first, and files on different grids mix safely
        out = np.full((len(days),) + self.grid.shape, np.nan, dtype=np.float32)
        groups: dict[tuple, list] = defaultdict(list)
        for di, d in enumerate(days):
            for fi, name, tdim, ti in self._index[var].get(d, ()):
                groups[(fi, name, tdim)].append((ti, di))
        sums: dict[int, np.ndarray] = {}
        counts: dict[int, int] = defaultdict(int)
        for (fi, name, tdim), pairs in groups.items():
            values, bil, path = self._read_steps(fi, name, tdim, [p[0] for p in pairs], var)
            units = self._attrs[(fi, name)].get("units")
            for k, (_, di) in enumerate(pairs):
                step = self._convert(var, values[k], units, path=path, day=days[di])
                on_grid = bil(step)  # interpolation is linear: interpolate-then-aggregate == aggregate-then-interpolate
                if di in sums:
                    sums[di] += on_grid
                else:
                    sums[di] = on_grid.astype(np.float64)
                counts[di] += 1
        for di, total in sums.items():
            out[di] = (total if var == "tp" else total / counts[di]).astype(np.float32)
        return out

    def _read_steps(self, fi, name, tdim, tis, var):
        path = self.files[fi]
        ds = self._dataset(fi)
        da = ds[name]

        def coord(names):
            for n in names:
                if n in ds.variables and ds[n].ndim == 1 and ds[n].dims[0] in da.dims:
                    return n
            return None

        lat_name, lon_name = coord(_LAT_NAMES), coord(_LON_NAMES)
        if lat_name is None or lon_name is None:
            raise IngestError(f"no latitude/longitude coordinates (looked for {_LAT_NAMES} / {_LON_NAMES})", path=path, variable=name)
        lat = np.asarray(ds[lat_name].values, dtype=np.float64)
        lon = np.asarray(ds[lon_name].values, dtype=np.float64)
        ydim, xdim = ds[lat_name].dims[0], ds[lon_name].dims[0]
        bil = self._bilinear(lat, lon, path)
        sel = da.isel({tdim: np.asarray(tis), ydim: bil.rows, xdim: bil.cols})
        extra = [d for d in sel.dims if d not in (tdim, ydim, xdim)]
        sel = sel.transpose(tdim, *extra, ydim, xdim)
        try:
            values = np.asarray(sel.values, dtype=np.float32)
        except Exception as exc:
            raise IngestError(f"data cannot be read: {exc}", path=path, variable=name) from None
        for dim in extra:  # ERA5T 'expver' (first non-NaN), or size-1 dims
            size = sel.sizes[dim]
            if size == 1:
                values = values[:, 0]
            elif dim == "expver":
                merged = values[:, 0]
                for k in range(1, size):
                    merged = np.where(np.isfinite(merged), merged, values[:, k])
                values = merged
            else:
                raise IngestError(f"has an extra dim {dim!r} of size {size} (ensemble members?)", path=path, variable=name)
        return values, bil, path

    def file_of(self, day, variable: str):
        """The file holding ``variable`` on ``day`` (rh: the t2m file); None for a tolerated gap."""
        entries = self._index.get("t2m" if variable == "rh" else variable, {}).get(np.datetime64(day, "D"))
        return self.files[entries[0][0]] if entries else None

    def describe(self) -> dict:
        return {"format": "cds-netcdf", "files": len(self.files), "daily": dict(self._daily),
                "utc_offset_hours": self.utc_offset / np.timedelta64(1, "h"), "tp_statistic": self.tp_statistic}


# ---------------------------------------------------------------------------------------------- GeoTIFF
class Era5GeotiffSource(Era5Source):
    """ERA5 from Earth Engine exports: one multi-band GeoTIFF per day (day from the file name), bands
    named by their descriptions (or by ``band_names`` in band order)."""

    format = "gee-geotiff"

    def __init__(self, path, met_grid: Grid, start, end, *, band_names: list[str] | None = None,
                 date_regex: str = DEFAULT_DATE_REGEX, date_format: str = DEFAULT_DATE_FORMAT,
                 glob_pattern: str = "*.tif*", **kwargs):
        super().__init__(met_grid, start, end, **kwargs)
        files = expand_paths(path, glob_pattern)
        if not files:
            raise IngestError(f"no ERA5 GeoTIFF files matching {glob_pattern!r}", path=str(path))
        self.band_names = list(band_names) if band_names else None
        self.files: dict[np.datetime64, Path] = {}
        for f in files:
            day = day_from_name(f, date_regex, date_format)
            if day < self.days[0] or day > self.days[-1]:
                continue
            if day in self.files:
                raise IngestError(f"two ERA5 files for day {day}: {self.files[day]} and {f}", path=f, day=day)
            self.files[day] = f
        missing = [d for d in self.days if d not in self.files]
        if missing:
            self._missing(missing)

    def _bands(self, src, path, day) -> dict[str, int]:
        names = self.band_names or [d or "" for d in src.descriptions]
        if self.band_names and len(self.band_names) != src.count:
            raise IngestError(f"band_names has {len(self.band_names)} names but the file has {src.count} bands", path=path, day=day)
        mapping = {}
        for i, band in enumerate(names):
            var = _match_variable(band, {})
            if var is not None and var not in mapping:
                mapping[var] = i + 1
        absent = [v for v in SOURCE_VARIABLES if v not in mapping]
        if absent:
            raise IngestError(
                f"no band for {absent}; band descriptions are {list(src.descriptions)} (accepted: "
                + "; ".join(f"{v}: {', '.join(ALIASES[v])}" for v in absent)
                + "); pass band_names=[...] in band order if the export lost them", path=path, day=day,
            )
        return mapping

    def _read_raw(self, days) -> dict[str, np.ndarray]:
        import rasterio
        from rasterio.windows import Window

        out = {v: np.full((len(days),) + self.grid.shape, np.nan, dtype=np.float32) for v in SOURCE_VARIABLES}
        for di, day in enumerate(days):
            path = self.files.get(day)
            if path is None:
                continue
            try:
                src = rasterio.open(os.fspath(path))
            except Exception as exc:
                raise IngestError(f"cannot be read as a raster: {exc}", path=path, day=day) from None
            with src:
                check_geographic(src.crs, path=path)
                bands = self._bands(src, path, day)
                lat, lon = raster_centres(src.transform, src.height, src.width, path=path)
                bil = self._bilinear(lat, lon, path)
                window = Window(bil.cols.start, bil.rows.start, bil.cols.stop - bil.cols.start, bil.rows.stop - bil.rows.start)
                try:
                    raw = src.read([bands[v] for v in SOURCE_VARIABLES], window=window).astype(np.float32)
                except Exception as exc:
                    raise IngestError(f"data cannot be read: {exc}", path=path, day=day) from None
                nodatavals = src.nodatavals
                units_tags = [src.tags(bands[v]).get("units") for v in SOURCE_VARIABLES]
            for k, var in enumerate(SOURCE_VARIABLES):
                values = raw[k]
                nd = nodatavals[bands[var] - 1]
                if nd is not None and not np.isnan(nd):
                    values[values == np.float32(nd)] = np.nan
                values = self._convert(var, values, units_tags[k], path=path, day=day)
                out[var][di] = bil(values)
        return out

    def file_of(self, day, variable: str):
        """The day's file (None for a tolerated gap)."""
        return self.files.get(np.datetime64(day, "D"))

    def describe(self) -> dict:
        return {"format": "gee-geotiff", "files": len(self.files), "tp_statistic": self.tp_statistic}


def open_era5(path, met_grid: Grid, start, end, *, format: str = "cds-netcdf", **options) -> Era5Source:
    """The ERA5 reader for ``format`` (``"cds-netcdf"`` or ``"gee-geotiff"``)."""
    if format == "cds-netcdf":
        return Era5NetcdfSource(path, met_grid, start, end, **options)
    if format == "gee-geotiff":
        return Era5GeotiffSource(path, met_grid, start, end, **options)
    raise IngestError(f"unknown ERA5 format {format!r}; use one of {ERA5_FORMATS}")
