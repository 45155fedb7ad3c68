"""Per-pixel IQR outlier rule (seed 000, section 2.3.1) against a numpy.nanpercentile reference."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ihs_hpc.ops.outliers import iqr_outliers


def reference(cube, factor, axis):
    """Mask of values outside [Q1 - f IQR, Q3 + f IQR] per series, quartiles by nanpercentile."""
    data = np.asarray(cube, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN series
        q1 = np.nanpercentile(data, 25, axis=axis, keepdims=True)
        q3 = np.nanpercentile(data, 75, axis=axis, keepdims=True)
    spread = q3 - q1
    return (data < q1 - factor * spread) | (data > q3 + factor * spread)


def make_cube(rng, shape, series_axis):
    """Heavy-tailed series with NaN gaps, tied values, an all-NaN and a one-value series."""
    data = rng.standard_t(2.5, size=shape) * 10 + 60
    data[rng.random(shape) < 0.15] = np.nan
    moved = np.moveaxis(data, series_axis, -1)
    moved[0, 0, :] = np.nan
    moved[0, 1, :] = np.nan
    moved[0, 1, 3] = 42.0
    moved[1, 0, :] = np.round(moved[1, 0, :] / 10)  # many ties
    moved[1, 1, :5] = moved[1, 1, 5]  # repeated value
    return data


@pytest.mark.parametrize("factor", [1.5, 3.0, 0.0])
def test_last_axis_matches_nanpercentile(factor):
    rng = np.random.default_rng(0)
    cube = make_cube(rng, (9, 11, 97), -1)
    cleaned, removed = iqr_outliers(cube, factor=factor)
    expected = reference(cube, factor, -1)
    np.testing.assert_array_equal(removed, expected)
    np.testing.assert_array_equal(cleaned, np.where(expected, np.nan, cube))
    assert removed.dtype == bool and cleaned.dtype == cube.dtype
    assert removed.sum() > 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_time_first_cube(dtype):
    rng = np.random.default_rng(1)
    cube = make_cube(rng, (120, 7, 45), 0).astype(dtype)  # 315 pixels: several 32-pixel blocks
    cleaned, removed = iqr_outliers(cube, axis=0)
    expected = reference(cube, 1.5, 0)
    np.testing.assert_array_equal(removed, expected)
    np.testing.assert_array_equal(cleaned, np.where(expected, np.nan, cube).astype(dtype))
    assert cleaned.dtype == dtype
    assert removed.sum() > 0
    # same answer as the series-last layout
    _, removed_last = iqr_outliers(np.moveaxis(cube, 0, -1), axis=-1)
    np.testing.assert_array_equal(np.moveaxis(removed, 0, -1), removed_last)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.integers(-5, 5).map(float), st.just(np.nan),
                          st.floats(-1e3, 1e3, allow_nan=False)), min_size=1, max_size=40),
       st.sampled_from([0.5, 1.5, 3.0]))
def test_property_single_series(values, factor):
    series = np.array(values, dtype=np.float64)
    cleaned, removed = iqr_outliers(series, factor=factor)
    expected = reference(series, factor, -1)
    np.testing.assert_array_equal(removed, expected)
    np.testing.assert_array_equal(cleaned, np.where(expected, np.nan, series))


def test_errors_name_the_argument():
    cube = np.zeros((3, 4, 5))
    with pytest.raises(ValueError, match="axis must be the first"):
        iqr_outliers(cube, axis=1)
    with pytest.raises(ValueError, match="factor must be"):
        iqr_outliers(cube, factor=-1)
    with pytest.raises(ValueError, match="out of range"):
        iqr_outliers(cube, axis=3)
