"""Relative humidity (Magnus, Alduchov & Eskridge 1996) against an independent computation."""
from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from ihs_hpc.ops.humidity import relative_humidity


def _saturation_vapour_pressure_hpa(t_celsius):
    """Independent peer: e_s over water in hPa, Alduchov & Eskridge (1996) eq. 21 (AERK)."""
    return 6.1094 * np.exp(17.625 * t_celsius / (t_celsius + 243.04))


def _expected_rh(t_celsius, td_celsius):
    e = _saturation_vapour_pressure_hpa(td_celsius)  # actual vapour pressure
    es = _saturation_vapour_pressure_hpa(t_celsius)
    return np.minimum(100.0 * e / es, 100.0)


@pytest.fixture
def temperatures():
    rng = np.random.default_rng(1996)
    t = rng.uniform(-40.0, 45.0, size=(30, 40))
    td = t - rng.exponential(8.0, size=t.shape)  # dew point at or below the air temperature
    return t, td


def test_degc_matches_vapour_pressure_ratio(temperatures):
    t, td = temperatures
    rh = relative_humidity(t, td, units="degC")
    assert rh.shape == t.shape and rh.dtype == np.float64
    np.testing.assert_allclose(rh, _expected_rh(t, td), rtol=1e-12)
    assert np.all((rh > 0) & (rh <= 100))


def test_kelvin_matches_and_is_the_default(temperatures):
    t, td = temperatures
    rh = relative_humidity(t + 273.15, td + 273.15)
    np.testing.assert_allclose(rh, _expected_rh(t, td), rtol=1e-10)


def test_saturation_gives_100_and_supersaturation_is_clipped(temperatures):
    t, _ = temperatures
    np.testing.assert_allclose(relative_humidity(t, t, units="degC"), 100.0, rtol=1e-14)
    np.testing.assert_allclose(relative_humidity(t + 273.15, t + 273.15, units="K"), 100.0, rtol=1e-14)
    over = relative_humidity(t, t + 2.0, units="degC")
    np.testing.assert_array_equal(over, 100.0)


def test_known_value():
    # 20 °C with a 10 °C dew point: e_s(10)/e_s(20) from the formula, about 52.5 %
    expected = 100.0 * _saturation_vapour_pressure_hpa(10.0) / _saturation_vapour_pressure_hpa(20.0)
    assert float(relative_humidity(20.0, 10.0, units="degC")) == pytest.approx(expected, rel=1e-13)
    assert 52.0 < expected < 53.0


def test_broadcasting_nan_and_float32():
    t = np.array([[10.0], [25.0]], dtype=np.float32)
    td = np.array([5.0, np.nan, 10.0], dtype=np.float32)
    rh = relative_humidity(t, td, units="degC")
    assert rh.shape == (2, 3) and rh.dtype == np.float32
    assert np.isnan(rh[0, 1]) and np.isnan(rh[1, 1])
    expected = _expected_rh(t.astype(np.float64), td.astype(np.float64))
    np.testing.assert_allclose(rh, expected, rtol=1e-6)


def test_xarray_keeps_coords_and_sets_attrs(temperatures):
    t, td = temperatures
    coords = {"lat": np.linspace(40, 37, 30), "lon": np.linspace(114, 118, 40)}
    t_da = xr.DataArray(t + 273.15, dims=("lat", "lon"), coords=coords, attrs={"units": "K"})
    td_da = xr.DataArray(td + 273.15, dims=("lat", "lon"), coords=coords, attrs={"units": "K"})
    rh = relative_humidity(t_da, td_da, units="K")
    assert isinstance(rh, xr.DataArray)
    assert rh.dims == ("lat", "lon")
    xr.testing.assert_identical(rh.coords.to_dataset(), t_da.coords.to_dataset())
    assert rh.attrs == {"units": "%", "long_name": "relative humidity", "standard_name": "relative_humidity"}
    np.testing.assert_allclose(rh.values, _expected_rh(t, td), rtol=1e-10)


def test_xarray_dask_stays_lazy(temperatures):
    t, td = temperatures
    t_da = xr.DataArray(da.from_array(t, chunks=(10, 20)), dims=("y", "x"))
    rh = relative_humidity(t_da, td, units="degC")  # numpy second argument broadcasts too
    assert isinstance(rh.data, da.Array)
    np.testing.assert_allclose(rh.compute().values, _expected_rh(t, td), rtol=1e-12)


def test_errors():
    with pytest.raises(ValueError, match="units must be"):
        relative_humidity(280.0, 275.0, units="F")
    t_da = xr.DataArray(np.array([280.0]), dims="x", attrs={"units": "K"})
    with pytest.raises(ValueError, match="t2m declares units 'K'"):
        relative_humidity(t_da, t_da, units="degC")
    with pytest.raises(TypeError, match="d2m must hold real numbers"):
        relative_humidity(np.array([280.0]), np.array(["a"]))
