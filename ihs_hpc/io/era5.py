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

from ..grid import Grid
from .era5_base import Bilinear, Era5Source  # noqa: F401  (the readers' public names, importable here)
from .era5_geotiff import Era5GeotiffSource
from .era5_netcdf import Era5NetcdfSource
from .era5_units import MET_VARIABLES, SOURCE_VARIABLES, STORE_ATTRS  # noqa: F401  (as above)
from .errors import IngestError

ERA5_FORMATS = ("cds-netcdf", "gee-geotiff")


def open_era5(path, met_grid: Grid, start, end, *, format: str = "cds-netcdf", **options) -> Era5Source:
    """The ERA5 reader for ``format`` (``"cds-netcdf"`` or ``"gee-geotiff"``)."""
    if format == "cds-netcdf":
        return Era5NetcdfSource(path, met_grid, start, end, **options)
    if format == "gee-geotiff":
        return Era5GeotiffSource(path, met_grid, start, end, **options)
    raise IngestError(f"unknown ERA5 format {format!r}; use one of {ERA5_FORMATS}")
