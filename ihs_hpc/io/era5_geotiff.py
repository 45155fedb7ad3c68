"""ERA5 from Earth Engine GeoTIFF exports, one multi-band file per day (see :mod:`ihs_hpc.io.era5`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..grid import Grid
from .daily_files import DEFAULT_DATE_FORMAT, DEFAULT_DATE_REGEX, day_from_name, expand_paths
from .era5_base import Era5Source
from .era5_units import ALIASES, SOURCE_VARIABLES, match_variable
from .errors import IngestError
from .grid_match import check_geographic, open_raster, raster_centres


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
            var = match_variable(band, {})
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
        from rasterio.windows import Window

        out = {v: np.full((len(days),) + self.grid.shape, np.nan, dtype=np.float32) for v in SOURCE_VARIABLES}
        for di, day in enumerate(days):
            path = self.files.get(day)
            if path is None:
                continue
            with open_raster(path, day=day) as src:
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
