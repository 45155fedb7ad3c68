"""Mann–Whitney U (seed 000, eq. 11) against scipy.stats.mannwhitneyu(method="asymptotic") and
the R wilcox.test references of scipy's test suite."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ihs_hpc.stats import MannWhitneyUResult, mann_whitney_u

RTOL = 1e-9


def _scipy(x, y, **kwargs):
    return stats.mannwhitneyu(x, y, method="asymptotic", **kwargs)


def _r_cases(fixtures):
    path = fixtures / "scipy_mannwhitneyu" / "mannwhitneyu_R_reference.json"
    data = json.loads(path.read_text())
    return [case for case in data["cases"] if case["kwargs"].get("method") == "asymptotic"]


def _tolerance(text):
    rtol = re.search(r"rtol=([0-9.e+-]+)", text)
    atol = re.search(r"atol=([0-9.e+-]+)", text)
    return float(rtol.group(1)) if rtol else 1e-7, float(atol.group(1)) if atol else 0.0


def test_r_wilcox_reference_cases(reference_fixtures):
    cases = _r_cases(reference_fixtures)
    assert len(cases) >= 40  # 46 cases in the file, 40 of them asymptotic
    for case in cases:
        kwargs = {k: v for k, v in case["kwargs"].items() if k != "method"}
        res = mann_whitney_u(case["x"], case["y"], **kwargs)
        rtol, atol = _tolerance(case["tol"])
        assert res.statistic == case["U"], case["name"]
        np.testing.assert_allclose(res.pvalue, case["p"], rtol=rtol, atol=atol,
                                   err_msg=case["name"])


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
@pytest.mark.parametrize("use_continuity", [True, False])
@pytest.mark.parametrize("n1,n2,decimals", [(1, 1, None), (3, 7, None), (40, 25, 1), (500, 800, 0),
                                             (2000, 1500, 2)])
def test_matches_scipy_random(alternative, use_continuity, n1, n2, decimals):
    rng = np.random.default_rng([n1, n2])
    x = rng.normal(size=n1)
    y = rng.normal(0.2, 1.3, size=n2)
    if decimals is not None:  # many ties
        x, y = np.round(x, decimals), np.round(y, decimals)
    res = mann_whitney_u(x, y, alternative=alternative, use_continuity=use_continuity)
    ref = _scipy(x, y, alternative=alternative, use_continuity=use_continuity)
    assert isinstance(res, MannWhitneyUResult)
    assert res.statistic == ref.statistic
    np.testing.assert_allclose(res.pvalue, ref.pvalue, rtol=RTOL)


def test_eq11_rank_sum_relation():
    rng = np.random.default_rng(11)
    x = rng.integers(0, 20, size=300).astype(float)
    y = rng.integers(3, 25, size=200).astype(float)
    ranks = stats.rankdata(np.concatenate([x, y]))
    r1 = ranks[: x.size].sum()
    u1 = mann_whitney_u(x, y).statistic
    # eq. 11 gives U = n1 n2 + n1 (n1 + 1) / 2 - R1, the complement of the U of the first sample
    assert x.size * y.size - u1 == x.size * y.size + x.size * (x.size + 1) / 2 - r1


def test_large_samples_match_scipy():
    rng = np.random.default_rng(5)
    x = np.round(rng.gamma(2.0, 20.0, size=200_000), 1)
    y = np.round(rng.gamma(2.1, 20.0, size=150_000), 1)
    res = mann_whitney_u(x, y)
    ref = _scipy(x, y)
    assert res.statistic == ref.statistic
    np.testing.assert_allclose(res.pvalue, ref.pvalue, rtol=RTOL)


def test_nan_dropped_like_omit():
    rng = np.random.default_rng(3)
    x = rng.normal(size=60)
    y = rng.normal(size=45)
    x[[1, 7, 30]] = np.nan
    y[[0, 44]] = np.nan
    res = mann_whitney_u(x, y, alternative="less")
    ref = _scipy(x[~np.isnan(x)], y[~np.isnan(y)], alternative="less")
    ref_omit = stats.mannwhitneyu(x, y, method="asymptotic", alternative="less", nan_policy="omit")
    assert res.statistic == ref.statistic == ref_omit.statistic
    np.testing.assert_allclose(res.pvalue, ref.pvalue, rtol=RTOL)


def test_all_nan_sample_gives_nan():
    res = mann_whitney_u([np.nan, np.nan], [1.0, 2.0, 3.0])
    assert np.isnan(res.statistic) and np.isnan(res.pvalue)


def test_batched_with_broadcast_and_axis():
    rng = np.random.default_rng(8)
    x = np.round(rng.normal(size=(3, 4, 30)), 1)
    y = np.round(rng.normal(0.3, 1.0, size=(4, 25)), 1)
    x[0, 1, :5] = np.nan
    res = mann_whitney_u(x, y, alternative="greater")
    assert res.statistic.shape == (3, 4) and res.pvalue.shape == (3, 4)
    for i, j in np.ndindex(3, 4):
        xi = x[i, j][~np.isnan(x[i, j])]
        ref = _scipy(xi, y[j], alternative="greater")
        assert res.statistic[i, j] == ref.statistic
        np.testing.assert_allclose(res.pvalue[i, j], ref.pvalue, rtol=RTOL)
    # the same with the samples along axis 0
    res0 = mann_whitney_u(np.moveaxis(x, -1, 0), np.moveaxis(y, -1, 0), alternative="greater",
                          axis=0)
    np.testing.assert_array_equal(res0.statistic, res.statistic)
    np.testing.assert_array_equal(res0.pvalue, res.pvalue)


@settings(max_examples=40, deadline=None)
@given(
    x=st.lists(st.integers(-5, 5), min_size=1, max_size=25),
    y=st.lists(st.integers(-5, 5), min_size=1, max_size=25),
    alternative=st.sampled_from(["two-sided", "less", "greater"]),
    use_continuity=st.booleans(),
)
def test_property_matches_scipy_with_ties(x, y, alternative, use_continuity):
    x = np.asarray(x, dtype=float) / 2
    y = np.asarray(y, dtype=float) / 2
    res = mann_whitney_u(x, y, alternative=alternative, use_continuity=use_continuity)
    ref = _scipy(x, y, alternative=alternative, use_continuity=use_continuity)
    assert res.statistic == ref.statistic
    np.testing.assert_allclose(res.pvalue, ref.pvalue, rtol=RTOL, equal_nan=True)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(x=[1.0, 2.0], y=[], alternative="two-sided"), "no values"),
        (dict(x=[1.0, 2.0], y=[3.0], alternative="bigger"), "alternative"),
        (dict(x=[1.0, 2.0], y=[3.0], use_continuity="yes"), "use_continuity"),
        (dict(x=np.zeros((2, 3)), y=np.zeros((3, 4))), "broadcast"),
        (dict(x=[1.0, 2.0], y=[3.0], axis=1), "out of range"),
    ],
)
def test_invalid_input_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mann_whitney_u(**kwargs)


def test_non_numeric_raises():
    with pytest.raises(TypeError, match="x must be a real numeric"):
        mann_whitney_u(["a", "b"], [1.0])
