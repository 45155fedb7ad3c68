"""Pearson correlation (seed 000, eq. 12) against scipy.stats.pearsonr."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats

from ihs_hpc.stats import PearsonResult, pearson

RTOL = 1e-9


def _scipy(x, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant-input warnings
        return stats.pearsonr(x, y, **kwargs)


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
@pytest.mark.parametrize("n,rho", [(3, 0.5), (10, -0.4), (120, 0.3), (5000, 0.05)])
def test_matches_scipy_random(alternative, n, rho):
    rng = np.random.default_rng([n, int(rho * 100) + 100])
    x = rng.normal(size=n) * 30 + 50
    y = rho * (x - 50) / 30 + rng.normal(size=n) * np.sqrt(1 - rho**2)
    res = pearson(x, y, alternative=alternative)
    ref = _scipy(x, y, alternative=alternative)
    assert isinstance(res, PearsonResult)
    np.testing.assert_allclose(res.statistic, ref.statistic, rtol=RTOL)
    np.testing.assert_allclose(res.pvalue, ref.pvalue, rtol=RTOL)


def test_nan_pairs_dropped():
    rng = np.random.default_rng(2)
    x = rng.normal(size=80)
    y = 0.5 * x + rng.normal(size=80)
    x[[3, 10, 11]] = np.nan
    y[[10, 50]] = np.nan
    keep = ~(np.isnan(x) | np.isnan(y))
    res = pearson(x, y)
    ref = _scipy(x[keep], y[keep])
    np.testing.assert_allclose(res.statistic, ref.statistic, rtol=RTOL)
    np.testing.assert_allclose(res.pvalue, ref.pvalue, rtol=RTOL)


def test_batched_axis0_with_broadcast():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(50, 3, 4))  # series along axis 0
    y = rng.normal(size=(50, 1, 4)) + 0.3 * x[:, :1, :]
    x[5:9, 1, 2] = np.nan
    res = pearson(x, y, axis=0)
    assert res.statistic.shape == (3, 4)
    for i, j in np.ndindex(3, 4):
        xs, ys = x[:, i, j], y[:, 0, j]
        keep = ~(np.isnan(xs) | np.isnan(ys))
        ref = _scipy(xs[keep], ys[keep])
        np.testing.assert_allclose(res.statistic[i, j], ref.statistic, rtol=RTOL)
        np.testing.assert_allclose(res.pvalue[i, j], ref.pvalue, rtol=RTOL)


def test_special_cases_like_scipy():
    # two pairs: r = +-1, p = 1
    res = pearson([1.0, 2.0], [5.0, 3.0])
    ref = _scipy([1.0, 2.0], [5.0, 3.0])
    assert res.statistic == ref.statistic == -1.0
    assert res.pvalue == ref.pvalue == 1.0
    # constant series: NaN
    res = pearson([2.0, 2.0, 2.0, 2.0], [1.0, 3.0, 2.0, 5.0])
    ref = _scipy([2.0, 2.0, 2.0, 2.0], [1.0, 3.0, 2.0, 5.0])
    assert np.isnan(res.statistic) and np.isnan(ref.statistic)
    assert np.isnan(res.pvalue) and np.isnan(ref.pvalue)
    # fewer than two valid pairs: NaN
    res = pearson([1.0, np.nan, 3.0], [np.nan, 2.0, 1.0])
    assert np.isnan(res.statistic) and np.isnan(res.pvalue)


@settings(max_examples=40, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.integers(-20, 20), st.integers(-20, 20)), min_size=3, max_size=30),
    alternative=st.sampled_from(["two-sided", "less", "greater"]),
)
@example(pairs=[(2, 20), (2, 20), (7, 10)], alternative="two-sided")  # collinear, n = 3: p moves by sqrt(ulp of r)
def test_property_matches_scipy(pairs, alternative):
    x = np.array([p[0] for p in pairs], dtype=float)
    y = np.array([p[1] for p in pairs], dtype=float)
    res = pearson(x, y, alternative=alternative)
    ref = _scipy(x, y, alternative=alternative)
    if np.isnan(ref.statistic):
        assert np.isnan(res.statistic)
        return
    np.testing.assert_allclose(res.statistic, ref.statistic, rtol=RTOL, atol=1e-14)
    # r is resolved to a few ulps, and where |r| -> 1 the p-value of a few pairs moves by far more than
    # that (with n = 3 by sqrt(ulp): 1e-8), so p is checked against scipy's null distribution of r
    # evaluated over the few-ulp neighbourhood of scipy's r
    from scipy import stats

    half = len(x) / 2 - 1
    null = stats.beta(half, half, loc=-1, scale=2)
    up, down = [ref.statistic], [ref.statistic]
    for _ in range(4):
        up.append(np.nextafter(up[-1], 2.0))
        down.append(np.nextafter(down[-1], -2.0))
    near = np.clip(up + down, -1.0, 1.0)
    p_near = {"two-sided": lambda r: np.minimum(2 * null.sf(np.abs(r)), 1.0), "less": null.cdf,
              "greater": null.sf}[alternative](near)
    lo, hi = np.min(p_near), np.max(p_near)
    assert lo * (1 - RTOL) - 1e-14 <= res.pvalue <= hi * (1 + RTOL) + 1e-14, (res.pvalue, ref.pvalue, lo, hi)


@pytest.mark.parametrize(
    "x,y,kwargs,match",
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], {}, "same length"),
        ([1.0, np.inf, 3.0], [1.0, 2.0, 4.0], {}, "finite"),
        ([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], {"alternative": "both"}, "alternative"),
        (np.zeros((2, 5)), np.zeros((3, 5)), {}, "broadcast"),
    ],
)
def test_invalid_input_raises(x, y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pearson(x, y, **kwargs)
