"""Relative humidity from air temperature and dew point (Magnus formula over water).

ERA5's daily products carry 2 m temperature and 2 m dew point but no relative humidity, which the
MLR of seed 000 (eq. 3) uses as its sixth regressor; it is derived here.

Saturation vapour pressure over water (Alduchov & Eskridge 1996, their "AERK" fit)::

    e_s(T) = c · exp(a·T / (b + T)),   a = 17.625,  b = 243.04 °C,  c = 6.1094 hPa

and, since the actual vapour pressure is ``e_s(Td)``::

    RH = 100 · e_s(Td) / e_s(T) = 100 · exp(a·Td / (b + Td)) / exp(a·T / (b + T))   [%]

The constant ``c`` cancels.  The fit is stated for -40 °C to 50 °C.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["relative_humidity", "MAGNUS_A", "MAGNUS_B_DEGC", "KELVIN_OFFSET"]

#: Magnus coefficient a (dimensionless), Alduchov & Eskridge (1996)
MAGNUS_A = 17.625
#: Magnus coefficient b in °C, Alduchov & Eskridge (1996)
MAGNUS_B_DEGC = 243.04
#: 0 °C in kelvin
KELVIN_OFFSET = 273.15

_UNIT_ALIASES = {
    "K": "K",
    "kelvin": "K",
    "Kelvin": "K",
    "degC": "degC",
    "deg_C": "degC",
    "°C": "degC",
    "C": "degC",
    "celsius": "degC",
    "Celsius": "degC",
    "degree_Celsius": "degC",
    "degrees_Celsius": "degC",
}

_RH_ATTRS = {"units": "%", "long_name": "relative humidity", "standard_name": "relative_humidity"}


def _relative_humidity_numpy(t2m, d2m, units: str) -> np.ndarray:
    t = np.asarray(t2m)
    td = np.asarray(d2m)
    for name, a in (("t2m", t), ("d2m", td)):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    out_dtype = np.result_type(t.dtype, td.dtype, np.float32)
    t = t.astype(np.float64)
    td = td.astype(np.float64)
    if units == "K":
        t = t - KELVIN_OFFSET
        td = td - KELVIN_OFFSET
    exponent = MAGNUS_A * td / (MAGNUS_B_DEGC + td) - MAGNUS_A * t / (MAGNUS_B_DEGC + t)
    rh = 100.0 * np.exp(exponent)
    return np.clip(rh, 0.0, 100.0).astype(out_dtype, copy=False)


def _dtype_of(a) -> np.dtype:
    return a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype


def _check_attr_units(name: str, value, units: str) -> None:
    attrs = getattr(value, "attrs", None)
    if not attrs or "units" not in attrs:
        return
    declared = _UNIT_ALIASES.get(str(attrs["units"]).strip())
    if declared is not None and declared != units:
        raise ValueError(
            f"{name} declares units {attrs['units']!r} but units={units!r} was passed; "
            f"pass units={declared!r}"
        )


def relative_humidity(t2m, d2m, units: str = "K"):
    """Relative humidity over water from temperature and dew point (Magnus formula).

    ``RH = 100 · exp(a·Td / (b + Td)) / exp(a·T / (b + T))`` with T and Td in °C,
    ``a = 17.625`` and ``b = 243.04 °C`` (Alduchov & Eskridge 1996).

    Parameters
    ----------
    t2m : array_like or xarray.DataArray
        Air temperature (ERA5 ``temperature_2m``).
    d2m : array_like or xarray.DataArray
        Dew-point temperature (ERA5 ``dewpoint_temperature_2m``); broadcast against ``t2m``.
    units : {"K", "degC"}
        Units of both inputs.  An xarray input whose ``units`` attribute names a temperature unit
        that contradicts this argument raises ``ValueError``.

    Returns
    -------
    ndarray or xarray.DataArray
        Relative humidity in %, clipped to [0, 100]: a dew point above the air temperature
        (supersaturation, or inconsistent data) gives 100 rather than more.  NaN stays NaN.
        dtype float32 for float32 inputs, float64 otherwise.  If either input is a DataArray the
        result is one (xarray alignment and broadcasting, dask-backed input stays lazy), named
        ``"rh"``, with attrs ``units="%"``, ``long_name="relative humidity"``,
        ``standard_name="relative_humidity"``.

    Raises
    ------
    ValueError
        If ``units`` is not ``"K"`` or ``"degC"``, or contradicts an input's ``units`` attribute.
    TypeError
        If an input does not hold real numbers.
    """
    if units not in ("K", "degC"):
        raise ValueError(f'units must be "K" or "degC", got {units!r}')
    if not (isinstance(t2m, xr.DataArray) or isinstance(d2m, xr.DataArray)):
        return _relative_humidity_numpy(t2m, d2m, units)

    _check_attr_units("t2m", t2m, units)
    _check_attr_units("d2m", d2m, units)
    out_dtype = np.result_type(_dtype_of(t2m), _dtype_of(d2m), np.float32)
    rh = xr.apply_ufunc(
        _relative_humidity_numpy,
        t2m,
        d2m,
        kwargs={"units": units},
        dask="parallelized",
        output_dtypes=[out_dtype],
        keep_attrs=False,
    )
    rh.attrs = dict(_RH_ATTRS)
    return rh.rename("rh")
