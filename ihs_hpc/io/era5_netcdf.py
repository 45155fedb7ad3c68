"""ERA5 from CDS-style NetCDF files (see :mod:`ihs_hpc.io.era5`)."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..grid import Grid
from .daily_files import expand_paths
from .era5_base import Era5Source
from .era5_units import ALIASES, SOURCE_VARIABLES, match_variable
from .errors import IngestError

_TIME_DIMS = ("valid_time", "time", "date", "t")
_LAT_NAMES = ("latitude", "lat", "Latitude", "Lat", "LAT", "y")
_LON_NAMES = ("longitude", "lon", "Longitude", "Lon", "LON", "x")


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
                        var = match_variable(str(name), da.attrs)
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
