"""What every ERA5 reader shares: the NaN-aware bilinear placement on the met grid, unit conversion,
plausibility of units, gaps, and relative humidity from t2m and d2m (see :mod:`ihs_hpc.io.era5`)."""
from __future__ import annotations

import warnings
from collections import defaultdict
from typing import Iterable, Mapping

import numpy as np

from ..grid import Grid
from ..ops.interp import CoverageError, apply_bilinear, axis_weights, corner_weights
from .daily_files import day_range
from .era5_units import (MET_VARIABLES, SOURCE_VARIABLES, STORE_ATTRS, STORE_UNIT, UNIT_CHECK_RANGE, VARIABLE_KIND,
                         guess_units, unit_conversion)
from .errors import IngestError, IngestWarning


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
        kind = VARIABLE_KIND[var]
        if var in self.units_override:
            units, how = self.units_override[var], "configured"
        elif units is None or str(units).strip() == "":
            units, reason = guess_units(var, values)
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
        lo, hi = UNIT_CHECK_RANGE[kind]
        finite = values[np.isfinite(values)]
        if finite.size:
            vmin, vmax = float(finite.min()), float(finite.max())
            # most values out of range: the units are wrong. A few: bad values, which the ingest's
            # plausibility pass (ihs_hpc.io.plausibility) masks and counts per file.
            if np.count_nonzero((finite < lo) | (finite > hi)) > 0.5 * finite.size:
                raise IngestError(
                    f"values {vmin:.4g}..{vmax:.4g} {STORE_UNIT[kind]} after converting from {units!r} ({how}) "
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
