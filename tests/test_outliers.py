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


# ---------------------------------------------------------------------------------------------- residual rule
def residual_reference(series, factor, window):
    """The residual rule written out with pandas and numpy: running median, IQR of residuals, and a day
    that stands out from both neighbouring valid days by more than factor x IQR."""
    import pandas as pd

    med = pd.Series(series).rolling(window, center=True, min_periods=1).median().to_numpy()
    res = series - med
    out = np.zeros(series.size, dtype=bool)
    valid = np.flatnonzero(np.isfinite(res))
    if valid.size < 3:
        return out
    q1, q3 = np.percentile(res[valid], [25, 75])
    limit = factor * (q3 - q1)
    for k, t in enumerate(valid):
        a = res[valid[k - 1]] if k > 0 else res[valid[k + 1]]
        b = res[valid[k + 1]] if k < valid.size - 1 else res[valid[k - 1]]
        out[t] = (res[t] - max(a, b) > limit) or (min(a, b) - res[t] > limit)
    return out


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), factor=st.sampled_from([0.5, 1.5, 3.0]), window=st.sampled_from([3, 7, 31]))
def test_residual_rule_matches_pandas_reference(seed, factor, window):
    from ihs_hpc.ops.outliers import residual_outliers

    rng = np.random.default_rng(seed)
    data = rng.standard_t(3, size=(5, 120)) * 5 + 50 + 20 * np.sin(np.arange(120) / 10)
    data[rng.random(data.shape) < 0.1] = np.nan
    data[0] = np.nan
    data[1, 2:] = np.nan
    cleaned, removed = residual_outliers(data, factor=factor, window=window)
    for p in range(data.shape[0]):
        expected = residual_reference(data[p], factor, window)
        np.testing.assert_array_equal(removed[p], expected, err_msg=f"series {p}")
    np.testing.assert_array_equal(cleaned, np.where(removed, np.nan, data))


def test_residual_rule_removes_spikes_and_keeps_episodes_and_seasons():
    from ihs_hpc.ops.outliers import residual_outliers

    t = np.arange(730)
    rng = np.random.default_rng(2)
    series = 60 + 30 * np.cos(2 * np.pi * t / 365) + rng.normal(0, 3, t.size)
    series[100] *= 4.0                      # an isolated spike
    series[300] = 1.0                       # an isolated drop-out
    series[500:505] += 60.0                 # a five-day episode
    cube = np.stack([series, series[::-1]]).T  # (time, 2): the time-first layout of prep
    _, removed = residual_outliers(cube, factor=3.0, window=31, axis=0)
    assert removed[100, 0] and removed[300, 0] and not removed[500:505, 0].any()
    assert removed[:, 0].sum() == 2 and removed[:, 1].sum() == 2
    # the paper's rule on the raw series cuts the high season instead
    _, raw = iqr_outliers(cube, factor=1.5, axis=0)
    assert not raw[300, 0]


def test_residual_rule_arguments():
    from ihs_hpc.ops.outliers import residual_outliers

    with pytest.raises(ValueError, match="window"):
        residual_outliers(np.zeros((3, 10)), window=4)
    with pytest.raises(ValueError, match="factor"):
        residual_outliers(np.zeros((3, 10)), factor=-1)
