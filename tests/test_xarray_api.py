"""The xarray layer (ihs_hpc.xr): lazy on dask, labelled, equal to the numpy path it wraps.

Every wrapper is built under a dask scheduler that raises when anything is computed (xarray's
``raise_if_dask_computes``): building the result must not compute. Then the result is computed and
compared with the numpy function on the same values (the numpy functions are checked against
statsmodels, scipy, pymannkendall and esda in their own tests).
"""
import contextlib
import subprocess
import sys

import dask
import numpy as np
import pytest
import xarray as xr

import ihs_hpc
from ihs_hpc import stats as np_stats
from ihs_hpc.ops import mlr as np_mlr
from ihs_hpc.ops import outliers as np_outliers
from ihs_hpc.ops import stl as np_stl

PERIOD = 12
N_TIME = 4 * PERIOD


class _RaiseOnCompute:
    """A dask scheduler that refuses to run: any eager compute inside the block fails the test."""

    def __call__(self, dsk, keys, **kwargs):
        raise RuntimeError("dask computed eagerly while building a lazy result")


@contextlib.contextmanager
def raise_if_dask_computes():
    with dask.config.set(scheduler=_RaiseOnCompute()):
        yield


def test_the_guard_fails_on_an_eager_compute():
    da = xr.DataArray(np.arange(4.0), dims="time").chunk()
    with raise_if_dask_computes(), pytest.raises(RuntimeError, match="computed eagerly"):
        float(da.sum())


@pytest.fixture(scope="module")
def cube():
    """(time, lat, lon) float32 with a seasonal cycle, a trend, noise and a few outliers; dask chunks of
    2 x 3 pixels and the whole time axis."""
    rng = np.random.default_rng(3)
    t = np.arange(N_TIME)
    values = (20 + 0.05 * t[:, None, None] + 5 * np.sin(2 * np.pi * t / PERIOD)[:, None, None]
              + rng.normal(0, 1, (N_TIME, 4, 6)))
    values[7, 1, 2] += 40
    values[30, 3, 5] -= 35
    return xr.DataArray(
        values.astype(np.float32), dims=("time", "lat", "lon"), name="pm25",
        coords={"time": np.datetime64("2019-01-01") + np.arange(N_TIME).astype("timedelta64[D]"),
                "lat": [39.5, 39.4, 39.3, 39.2], "lon": 116.0 + 0.1 * np.arange(6), "city": ("lon", list("aabbcc"))},
        attrs={"units": "ug m-3", "long_name": "PM2.5", "standard_name": "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air",
               "grid_mapping": "crs"},
    ).chunk({"time": -1, "lat": 2, "lon": 3})


def _series_last(da):
    return np.moveaxis(da.values, 0, -1)


def _assert_same_grid(result, cube, dims=("time", "lat", "lon")):
    assert result.dims == dims if isinstance(result, xr.DataArray) else tuple(result.sizes) == dims
    for name in dims:
        np.testing.assert_array_equal(result[name].values, cube[name].values)
    assert list(result.coords["city"].values) == list("aabbcc")


# ----------------------------------------------------------------------------------------------- STL
def test_stl_of_a_chunked_time_lat_lon_cube_is_a_lazy_dataset_equal_to_the_numpy_path(cube):
    with raise_if_dask_computes():
        parts = ihs_hpc.stl(cube, PERIOD, seasonal=7, method="direct")
    assert isinstance(parts, xr.Dataset) and set(parts.data_vars) == {"trend", "seasonal", "resid"}
    _assert_same_grid(parts, cube)
    for name in ("trend", "seasonal", "resid"):
        var = parts[name]
        assert var.chunks is not None and var.data.chunksize == (N_TIME, 2, 3)
        assert var.dtype == np.float32 and var.attrs["units"] == "ug m-3" and var.attrs["grid_mapping"] == "crs"
        assert "standard_name" not in var.attrs and "PM2.5" in var.attrs["long_name"]
    assert parts.attrs["stl_period"] == PERIOD and parts.attrs["stl_seasonal"] == 7
    expected = np_stl.stl(_series_last(cube), PERIOD, seasonal=7, method="direct")
    got = parts.compute()
    for name in ("trend", "seasonal", "resid"):
        np.testing.assert_array_equal(_series_last(got[name]), getattr(expected, name))  # same kernel, same bits


def test_stl_auto_method_and_robust_weights(cube):
    with raise_if_dask_computes():
        plain = ihs_hpc.stl(cube, PERIOD)
        robust = ihs_hpc.stl(cube, PERIOD, robust=True)
    assert "weights" not in plain and robust["weights"].attrs["units"] == "1"
    ref = np_stl.stl(_series_last(cube), PERIOD)
    np.testing.assert_allclose(_series_last(plain.trend.compute()), ref.trend, rtol=0, atol=1e-4)
    ref_robust = np_stl.stl(_series_last(cube), PERIOD, robust=True)
    np.testing.assert_array_equal(_series_last(robust.weights.compute()), ref_robust.weights)


def test_stl_numpy_input_is_the_numpy_api(cube):
    x = _series_last(cube)
    ours, ref = ihs_hpc.stl(x, PERIOD, method="direct"), np_stl.stl(x, PERIOD, method="direct")
    assert type(ours) is type(ref) and ours.method == "direct"
    np.testing.assert_array_equal(ours.trend, ref.trend)
    with pytest.raises(TypeError, match="applies to xarray input only"):
        ihs_hpc.stl(x, PERIOD, dim="time")


def test_stl_errors_name_the_dimension_and_the_fix(cube):
    with pytest.raises(ValueError, match=r"dimension 'time' of x is split into 4 dask chunks.*\.chunk\(\{'time': -1\}\)"):
        ihs_hpc.stl(cube.chunk({"time": 12}), PERIOD)
    with pytest.raises(ValueError, match="dim='day' is not a dimension"):
        ihs_hpc.stl(cube, PERIOD, dim="day")
    with pytest.raises(ValueError, match="seasonal must be an odd"):
        ihs_hpc.stl(cube, PERIOD, seasonal=4)
    with pytest.raises(ValueError, match="at least 2 \\* period = 98"):
        ihs_hpc.stl(cube, 49)
    with pytest.raises(TypeError, match="must be an xarray.DataArray"):
        ihs_hpc.stl(cube.to_dataset(), PERIOD)


def test_stl_baseline_dataarray_dataset_and_other_dim_name(cube):
    with raise_if_dask_computes():
        base = ihs_hpc.stl_baseline(cube, PERIOD, method="direct")
        renamed = ihs_hpc.stl_baseline(cube.rename(time="day"), PERIOD, dim="day", method="direct")
        both = ihs_hpc.stl_baseline(xr.Dataset({"a": cube, "b": cube.astype(np.float64) * 2}), PERIOD, method="direct")
    _assert_same_grid(base, cube)
    assert base.name == "pm25" and base.dtype == np.float32 and base.attrs["units"] == "ug m-3"
    expected = np_stl.stl_baseline(_series_last(cube), PERIOD, method="direct")
    np.testing.assert_array_equal(_series_last(base.compute()), expected)
    np.testing.assert_array_equal(_series_last(renamed.compute()), expected)
    assert both.b.dtype == np.float64
    np.testing.assert_allclose(_series_last(both.b.compute()), 2 * expected, rtol=1e-6)


# ----------------------------------------------------------------------------------------------- MLR
@pytest.fixture(scope="module")
def regressors(cube):
    rng = np.random.default_rng(4)
    shape = (N_TIME,) + cube.shape[1:]
    return xr.Dataset({name: (("time", "lat", "lon"), rng.normal(size=shape)) for name in ("t2m", "rh", "u10")},
                      coords={k: cube[k] for k in ("time", "lat", "lon")}).chunk({"lat": 2, "lon": 3})


def test_mlr_per_pixel_regressors_lazy_and_equal_to_the_numpy_path(cube, regressors):
    with raise_if_dask_computes():
        fit = ihs_hpc.mlr(cube, regressors)
    assert list(fit.term.values) == ["intercept", "t2m", "rh", "u10"]
    assert fit.coef.dims == ("lat", "lon", "term") and fit.fitted.dims == ("time", "lat", "lon")
    assert fit.fitted.attrs["units"] == "ug m-3" and fit.r2.attrs["units"] == "1" and fit["rank"].dtype == np.int64
    X = np.moveaxis(np.stack([regressors[v].values for v in ("t2m", "rh", "u10")]), (0, 1), (-2, -1))
    ref = np_mlr.mlr(_series_last(cube), X)
    got = fit.compute()
    np.testing.assert_array_equal(got.coef.values, ref.coef)
    np.testing.assert_array_equal(_series_last(got.fitted), ref.fitted)
    np.testing.assert_array_equal(got.r2.values, ref.r2)
    np.testing.assert_array_equal(got["rank"].values, ref.rank)


def test_remove_met_with_regressors_shared_by_every_pixel(cube, regressors):
    shared = regressors.isel(lat=0, lon=0, drop=True).to_dataarray(dim="met").chunk()
    with raise_if_dask_computes():
        bl_tem, fit = ihs_hpc.remove_met(cube, shared, regressor_dim="met", keep_level=True)
    assert bl_tem.dims == cube.dims and bl_tem.name == "pm25" and "bl_tem" not in fit
    ref_tem, ref = np_mlr.remove_met(_series_last(cube), shared.values, keep_level=True)
    np.testing.assert_array_equal(_series_last(bl_tem.compute()), ref_tem)
    np.testing.assert_array_equal(fit.coef.compute().values, ref.coef)
    with pytest.raises(ValueError, match="no dimension regressor_dim='variable'"):
        ihs_hpc.mlr(cube, shared)
    ours, ref = ihs_hpc.remove_met(_series_last(cube), shared.values), np_mlr.remove_met(_series_last(cube), shared.values)
    np.testing.assert_array_equal(ours[0], ref[0])


# ----------------------------------------------------------------------------------------------- IQR
def test_iqr_outliers_lazy_and_equal_to_the_numpy_path(cube):
    with raise_if_dask_computes():
        cleaned, removed = ihs_hpc.iqr_outliers(cube, factor=1.5)
    _assert_same_grid(cleaned, cube)
    assert cleaned.attrs == cube.attrs and removed.dtype == bool
    ref_clean, ref_removed = np_outliers.iqr_outliers(cube.values, factor=1.5, axis=0)
    np.testing.assert_array_equal(cleaned.compute().values, ref_clean)
    np.testing.assert_array_equal(removed.compute().values, ref_removed)
    assert removed.values[7, 1, 2] and removed.values[30, 3, 5]
    with pytest.raises(TypeError, match="axis=0 applies to numpy input only"):
        ihs_hpc.iqr_outliers(cube, axis=0)


# ----------------------------------------------------------------------------------------------- statistics
@pytest.fixture(scope="module")
def gappy(cube):
    values = cube.values.astype(np.float64)
    values[::5, 0, 0] = np.nan
    return cube.copy(data=values).chunk({"time": -1, "lat": 2, "lon": 3})


@pytest.mark.parametrize("name", ["mann_kendall", "sens_slope"])
def test_trend_tests_lazy_and_equal_to_the_numpy_path(gappy, name):
    with raise_if_dask_computes():
        result = getattr(ihs_hpc, name)(gappy, alpha=0.1)
    ref = getattr(np_stats, name)(_series_last(gappy), alpha=0.1)
    assert tuple(result.data_vars) == ref._fields and result.attrs["alpha"] == 0.1
    got = result.compute()
    for field in ref._fields:
        assert got[field].dims == ("lat", "lon")
        np.testing.assert_array_equal(got[field].values, getattr(ref, field), err_msg=field)
    assert got.intercept.attrs["units"] == "ug m-3"
    series = getattr(ihs_hpc, name)(gappy.isel(lat=1, lon=1).compute())  # one series: scalars
    assert series[ref._fields[0]].shape == ()


def test_mann_whitney_u_samples_of_different_lengths_are_not_aligned(gappy):
    before, after = gappy.isel(time=slice(0, 20)), gappy.isel(time=slice(20, None))
    with raise_if_dask_computes():
        result = ihs_hpc.mann_whitney_u(after, before, alternative="greater")
    ref = np_stats.mann_whitney_u(_series_last(after), _series_last(before), alternative="greater")
    got = result.compute()
    np.testing.assert_array_equal(got.statistic.values, ref.statistic)
    np.testing.assert_array_equal(got.pvalue.values, ref.pvalue)
    with pytest.raises(ValueError, match="alternative must be one of"):
        ihs_hpc.mann_whitney_u(after, before, alternative="bigger")


def test_pearson_lazy_and_equal_to_the_numpy_path(gappy, regressors):
    other = regressors.t2m
    with raise_if_dask_computes():
        result = ihs_hpc.pearson(gappy, other)
    ref = np_stats.pearson(_series_last(gappy), _series_last(other))
    got = result.compute()
    # numpy's sums depend on the memory layout (dask blocks vs a strided view): equal to rounding
    np.testing.assert_allclose(got.statistic.values, ref.statistic, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(got.pvalue.values, ref.pvalue, rtol=1e-12)
    assert "eq. 12" in got.statistic.attrs["long_name"]


def test_morans_i_per_day_lazy_and_equal_to_the_numpy_path(gappy):
    maps = gappy.chunk({"time": 8, "lat": -1, "lon": -1})
    with raise_if_dask_computes():
        result = ihs_hpc.morans_i(maps, contiguity="rook")
    ref = np_stats.morans_i(maps.values, contiguity="rook")
    got = result.compute()
    assert got.I.dims == ("time",)
    np.testing.assert_array_equal(got.time.values, gappy.time.values)
    for field in ("I", "EI", "z_rand", "p_norm", "n", "s0"):
        np.testing.assert_array_equal(got[field].values, getattr(ref, field), err_msg=field)
    with pytest.raises(ValueError, match=r"dimension 'lat' of raster is split into 2 dask chunks"):
        ihs_hpc.morans_i(gappy)


def test_numpy_calls_of_the_public_names_are_unchanged(gappy):
    x = _series_last(gappy)
    ours, ref = ihs_hpc.mann_kendall(x), np_stats.mann_kendall(x)
    assert type(ours) is type(ref)
    for a, b in zip(ours, ref):
        np.testing.assert_array_equal(a, b)
    assert isinstance(ihs_hpc.pearson(x, x + 1), np_stats.PearsonResult)
    assert isinstance(ihs_hpc.morans_i(gappy.values[0]), np_stats.MoranResult)


def test_import_ihs_hpc_loads_no_numba_xarray_or_torch():
    code = "import sys, ihs_hpc; print(sorted(m for m in ('numba', 'xarray', 'torch', 'dask') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
