"""Mann–Kendall and Sen's slope against pymannkendall (original_test, sens_slope), the
pyMannKendall test-suite fixtures, and scipy.stats.theilslopes for the slope's interval."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pymannkendall as pmk
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ihs_hpc.kernels.trend import theil_sen_order_statistics
from ihs_hpc.stats import MannKendallResult, SensSlopeResult, mann_kendall, sens_slope

RTOL = 1e-9


def _fixture(reference_fixtures):
    path = reference_fixtures / "pymannkendall" / "pymannkendall_expected.json"
    return json.loads(path.read_text())


def _as_array(values):
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _expected_value(entry):
    return entry["value"] if isinstance(entry, dict) else entry


def _assert_mk_equal(res, ref, rtol=RTOL):
    """``res``: one series of our result; ``ref``: pymannkendall.original_test."""
    assert res.trend == ref.trend
    assert bool(res.h) == bool(ref.h)
    for name, ref_name in [("p", "p"), ("z", "z"), ("tau", "Tau"), ("s", "s"), ("var_s", "var_s"),
                           ("slope", "slope"), ("intercept", "intercept")]:
        np.testing.assert_allclose(getattr(res, name), getattr(ref, ref_name), rtol=rtol,
                                   atol=0, err_msg=name)


def _theilslopes(series, alpha):
    """Trusted peer for the interval: scipy on the non-NaN values at their positions."""
    keep = ~np.isnan(series)
    return stats.theilslopes(series[keep], np.flatnonzero(keep).astype(float), alpha=1 - alpha)


def test_original_test_fixture(reference_fixtures):
    data = _fixture(reference_fixtures)
    x = _as_array(data["arbitrary_1d_data"])
    expected = data["tests"]["test_original_test"]["expected"]
    res = mann_kendall(x)
    assert isinstance(res, MannKendallResult)
    assert res.trend == expected["trend"]
    assert res.h == expected["h"]
    for name, key in [("p", "p"), ("z", "z"), ("tau", "Tau"), ("s", "s"), ("var_s", "var_s")]:
        np.testing.assert_allclose(getattr(res, name), _expected_value(expected[key]), rtol=RTOL)
    sen = data["tests"]["test_sens_slope"]["expected"]
    np.testing.assert_allclose(res.slope, sen["slope"], rtol=RTOL)
    np.testing.assert_allclose(res.intercept, sen["intercept"], rtol=RTOL)


def test_sens_slope_fixture(reference_fixtures):
    data = _fixture(reference_fixtures)
    x = _as_array(data["arbitrary_1d_data"])
    expected = data["tests"]["test_sens_slope"]["expected"]
    res = sens_slope(x)
    assert isinstance(res, SensSlopeResult)
    np.testing.assert_allclose(res.slope, expected["slope"], rtol=RTOL)
    np.testing.assert_allclose(res.intercept, expected["intercept"], rtol=RTOL)
    ref = _theilslopes(x, 0.05)
    assert res.slope_low == ref.low_slope and res.slope_high == ref.high_slope


@pytest.mark.parametrize("csv,columns", [
    ("Monthly_Rainfall.csv", ["Bogra", "Dhaka", "Mymensingh", "Rangpur", "Srimangal", "Sylhet"]),
    ("Water_Quality.csv", ["DS", "Discharge"]),
])
def test_fixture_csv_series_match_pymannkendall(reference_fixtures, csv, columns):
    frame = pd.read_csv(reference_fixtures / "pymannkendall" / csv)
    block = frame[columns].to_numpy(dtype=float)  # (time, series): many ties and zeros, NaN
    res = mann_kendall(block, axis=0)
    sen = sens_slope(block, axis=0)
    for k, column in enumerate(columns):
        series = block[:, k]
        one = MannKendallResult(*(np.asarray(f)[k] for f in res))
        _assert_mk_equal(one, pmk.original_test(series))
        ref = _theilslopes(series, 0.05)
        assert sen.slope_low[k] == ref.low_slope and sen.slope_high[k] == ref.high_slope, column


@pytest.mark.parametrize("n,kind", [(2, "normal"), (3, "normal"), (10, "integers"), (60, "normal"),
                                    (250, "integers"), (700, "rounded"), (1500, "normal"),
                                    (1500, "integers")])
def test_matches_pymannkendall_random(n, kind):
    rng = np.random.default_rng([n, len(kind)])
    trend = 0.002 * np.arange(n)
    if kind == "normal":
        x = trend + rng.normal(size=n)
    elif kind == "integers":  # heavy ties
        x = np.floor(trend * 10 + rng.integers(0, 12, size=n))
    else:
        x = np.round(trend + rng.normal(size=n).cumsum() * 0.1, 1)
    if n >= 10:
        x[rng.choice(n, size=n // 10, replace=False)] = np.nan
    res = mann_kendall(x)
    _assert_mk_equal(res, pmk.original_test(x))
    sen = sens_slope(x, alpha=0.1)
    ref_sen = pmk.sens_slope(x)
    assert sen.slope == ref_sen.slope
    np.testing.assert_allclose(sen.intercept, ref_sen.intercept, rtol=RTOL)
    ref = _theilslopes(x, 0.1)
    assert sen.slope_low == ref.low_slope and sen.slope_high == ref.high_slope


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.3])
def test_interval_matches_theilslopes(alpha):
    rng = np.random.default_rng(int(alpha * 100))
    x = np.round(rng.normal(size=400) + 0.01 * np.arange(400), 2)
    res = sens_slope(x, alpha=alpha)
    ref = _theilslopes(x, alpha)
    assert res.slope == ref.slope
    assert res.slope_low == ref.low_slope and res.slope_high == ref.high_slope
    assert res.slope_low <= res.slope <= res.slope_high


def test_batched_maps_match_per_series():
    rng = np.random.default_rng(12)
    cube = rng.normal(size=(3, 4, 40)) + np.linspace(0, 1, 40) * rng.normal(size=(3, 4, 1))
    cube[0, 0, :] = np.nan
    cube[1, 2, ::3] = np.nan
    cube[2, 3, 1:] = np.nan  # one valid value
    res = mann_kendall(cube)
    sen = sens_slope(cube)
    assert res.trend.shape == res.p.shape == sen.slope_low.shape == (3, 4)
    for idx in np.ndindex(3, 4):
        valid = np.count_nonzero(~np.isnan(cube[idx]))
        if valid < 2:
            assert np.isnan(res.p[idx]) and np.isnan(res.slope[idx]) and np.isnan(sen.slope[idx])
            assert res.trend[idx] == "no trend" and not res.h[idx]
            continue
        _assert_mk_equal(MannKendallResult(*(np.asarray(f)[idx] for f in res)),
                         pmk.original_test(cube[idx]))
        ref = _theilslopes(cube[idx], 0.05)
        assert sen.slope[idx] == ref.slope
        assert sen.slope_low[idx] == ref.low_slope and sen.slope_high[idx] == ref.high_slope
    moved = mann_kendall(np.moveaxis(cube, -1, 0), axis=0)
    np.testing.assert_array_equal(moved.s, res.s)


@pytest.mark.parametrize("m,kind", [(250, "normal"), (400, "integers"), (600, "two_values"),
                                    (800, "zeros"), (500, "tiny"), (300, "constant")])
def test_slope_order_statistics_match_sorted_slopes(m, kind):
    """The window search (used above 20000 pairs) against all slopes sorted by numpy."""
    rng = np.random.default_rng([m, len(kind)])
    v = {
        "normal": lambda: rng.normal(size=m) * 1e3,
        "integers": lambda: rng.integers(0, 30, size=m).astype(float),
        "two_values": lambda: rng.choice([0.1, 0.7], size=m),
        "zeros": lambda: np.where(rng.random(m) < 0.6, 0.0, rng.integers(1, 500, size=m) * 1.0),
        "tiny": lambda: rng.normal(size=m) * 1e-200,
        "constant": lambda: np.full(m, 3.25),
    }[kind]()
    t = np.sort(rng.choice(3 * m, size=m, replace=False)).astype(float)
    i, j = np.triu_indices(m, 1)
    slopes = np.sort((v[j] - v[i]) / (t[j] - t[i]))
    n_pairs = slopes.size
    ranks = np.unique(np.r_[rng.integers(0, n_pairs, size=4), (n_pairs - 1) // 2, n_pairs // 2,
                            n_pairs // 3, 0, n_pairs - 1]).astype(np.int64)
    out = np.empty(ranks.size)
    theil_sen_order_statistics(t, v, ranks, out)
    np.testing.assert_array_equal(out, slopes[ranks])


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.one_of(st.integers(0, 6).map(float), st.just(np.nan)), min_size=2,
                       max_size=40))
def test_property_matches_pymannkendall(values):
    x = np.array(values)
    if np.count_nonzero(~np.isnan(x)) < 2:
        res = mann_kendall(x)
        assert np.isnan(res.p) and res.trend == "no trend"
        return
    _assert_mk_equal(mann_kendall(x), pmk.original_test(x))


@pytest.mark.parametrize("func", [mann_kendall, sens_slope])
@pytest.mark.parametrize("x,kwargs,error,match", [
    ([1.0, np.inf, 2.0], {}, ValueError, "finite"),
    ([1.0, 2.0, 3.0], {"alpha": 1.5}, ValueError, "alpha"),
    ([1.0, 2.0, 3.0], {"alpha": "0.05"}, TypeError, "alpha"),
    (np.zeros((3, 0)), {}, ValueError, "no values"),
    (5.0, {}, ValueError, "at least one dimension"),
])
def test_invalid_input_raises(func, x, kwargs, error, match):
    with pytest.raises(error, match=match):
        func(x, **kwargs)
