"""ERA5 variables in the store: their names in CDS/Earth Engine files, their CF description, and the
units they are converted from (each variable to one store unit: K, m, Pa, m s-1)."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from .errors import IngestError

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

VARIABLE_KIND = {"t2m": "temperature", "d2m": "temperature", "tp": "precipitation", "sp": "pressure", "u10": "wind", "v10": "wind"}

# unit text (normalised by unit_key) -> (scale, offset) to the store unit
UNIT_FACTORS: dict[str, dict[str, tuple[float, float]]] = {
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
STORE_UNIT = {"temperature": "K", "precipitation": "m", "pressure": "Pa", "wind": "m s-1"}
UNIT_CHECK_RANGE = {"temperature": (170.0, 340.0), "precipitation": (-1e-3, 1.0), "pressure": (3.0e4, 1.1e5), "wind": (-100.0, 100.0)}



def unit_key(units) -> str:
    """A unit string normalised for lookup (lower case, no spaces, ``**`` and ``^`` dropped: ``m s**-1`` ->
    ``ms-1``)."""
    return str(units).strip().lower().replace("**", "").replace("^", "").replace(" ", "")


def unit_conversion(variable: str, units) -> tuple[float, float]:
    """``(scale, offset)`` taking ``variable`` from ``units`` to the store unit; error on an unknown unit."""
    kind = VARIABLE_KIND[variable]
    key = unit_key(units)
    if key not in UNIT_FACTORS[kind]:
        raise IngestError(
            f"unknown {kind} unit {units!r}; known: {sorted(UNIT_FACTORS[kind])} (or pass units={{{variable!r}: ...}})",
            variable=variable,
        )
    return UNIT_FACTORS[kind][key]


def guess_units(variable: str, values: np.ndarray) -> tuple[str, str]:
    """(assumed unit, reason) for data without a units attribute."""
    kind = VARIABLE_KIND[variable]
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return STORE_UNIT[kind], "catalogue"
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
    return STORE_UNIT[kind], "catalogue"


def match_variable(name: str, attrs: Mapping) -> str | None:
    """The canonical met variable a file's variable ``name`` (or its ``long_name`` in ``attrs``) stands for;
    ``None`` if none."""
    for var, names in ALIASES.items():
        if name in names or name.lower() in (n.lower() for n in names):
            return var
    long_name = str(attrs.get("long_name", "")).strip().lower()
    for var, names in LONG_NAMES.items():
        if long_name in names:
            return var
    return None
