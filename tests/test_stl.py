"""STL (ihs_hpc.ops.stl): parity with statsmodels and the netlib Fortran, shapes, dtypes, errors."""
from __future__ import annotations

import re

import numpy as np
import pytest
from statsmodels.tsa.seasonal import STL

from ihs_hpc.ops.stl import STLResult, stl, stl_baseline, stl_settings

# --------------------------------------------------------------------------- random parity cases
N_CASES = 130  # per robust flag: 260 cases in all


def _random_case(rng, robust):
    """A (series, settings) case: odd/even periods, short series, jumps > 1, degrees 0/1, explicit windows."""
    period = int(rng.integers(2, 26))
    shape = rng.random()
    if shape < 0.35:  # just long enough
        n = 2 * period + int(rng.integers(0, 3))
    elif shape < 0.8:
        n = int(rng.integers(2 * period, 6 * period + 7))
    else:
        n = int(rng.integers(6 * period, 12 * period))
    kw = dict(seasonal=int(rng.choice([3, 5, 7, 9, 13, 21, 35])), seasonal_deg=int(rng.integers(0, 2)),
              trend_deg=int(rng.integers(0, 2)), low_pass_deg=int(rng.integers(0, 2)), robust=robust,
              seasonal_jump=int(rng.choice([1, 1, 2, 3, 5])), trend_jump=int(rng.choice([1, 1, 2, 4, 9])),
              low_pass_jump=int(rng.choice([1, 1, 2, 3])))
    if rng.random() < 0.3:
        kw["trend"] = (period + 1 + int(rng.integers(0, 3 * period + 4))) | 1
    if rng.random() < 0.3:
        kw["low_pass"] = (period + 1 + int(rng.integers(0, 2 * period))) | 1
    if rng.random() < 0.2:
        kw["inner_iter"] = int(rng.integers(1, 4))
    if robust and rng.random() < 0.3:
        kw["outer_iter"] = int(rng.integers(1, 6))
    t = np.arange(n)
    y = (rng.normal(0, 2, n) + rng.uniform(1, 6) * np.sin(2 * np.pi * t / period + rng.uniform(0, 6))
         + rng.normal(0, 0.1) * t + rng.normal(0, 20))
    if rng.random() < 0.5:  # outliers
        y[rng.integers(0, n, 1 + n // 20)] += rng.normal(0, 15, 1 + n // 20)
    return y, period, kw


def _statsmodels(y, period, kw):
    kw = dict(kw)
    inner, outer = kw.pop("inner_iter", None), kw.pop("outer_iter", None)
    return STL(y, period=period, **kw).fit(inner_iter=inner, outer_iter=outer)


def _max_rel_diff(ours, ref, scale):
    return max(np.abs(ours.trend - ref.trend).max(), np.abs(ours.seasonal - ref.seasonal).max(),
               np.abs(ours.resid - ref.resid).max()) / scale


def _max_diff_with_weights(ours, ref, scale):
    return max(_max_rel_diff(ours, ref, scale), np.abs(ours.weights - ref.weights).max())


def test_nonrobust_matches_statsmodels_on_random_cases():
    rng = np.random.default_rng(20240611)
    worst = (0.0, None)
    for case in range(N_CASES):
        y, period, kw = _random_case(rng, robust=False)
        ref = _statsmodels(y, period, kw)
        ours = stl(y, period, method="direct", **kw)
        diff = _max_rel_diff(ours, ref, np.abs(y).max())
        worst = max(worst, (diff, (case, period, y.size, kw)), key=lambda w: w[0])
        np.testing.assert_array_equal(ours.weights, ref.weights)
    assert worst[0] <= 1e-8, f"max |ours - statsmodels| / max|x| = {worst[0]:.3g} for case {worst[1]}"


def test_robust_matches_statsmodels_on_random_cases():
    """Robust STL iterates a non-linear map. On some short series statsmodels itself is unstable at
    the rounding level: its fits interpolate most points, the residual scale (6 median |resid|) is
    rounding noise and so are the weights, or outliers make the iteration chaotic. Such cases are
    found by perturbing statsmodels' own input by 1e-15 relative; there ours must lie within the
    spread that rounding alone causes, and they must stay a small minority."""
    rng = np.random.default_rng(20240612)
    perturb = np.random.default_rng(1)
    unstable, failures = [], []
    for case in range(N_CASES):
        y, period, kw = _random_case(rng, robust=True)
        scale = np.abs(y).max()
        ref = _statsmodels(y, period, kw)
        ours = stl(y, period, method="direct", **kw)
        diff = _max_diff_with_weights(ours, ref, scale)
        if diff <= 1e-8:
            continue
        nudged = _statsmodels(y * (1 + 1e-15 * perturb.standard_normal(y.size)), period, kw)
        spread = _max_diff_with_weights(nudged, ref, scale)
        if spread > 1e-10:
            unstable.append((case, diff, spread))
        if spread <= 1e-10 or diff > 1e-8 + 1e3 * spread:
            failures.append((case, period, y.size, kw, diff, spread))
    assert not failures, f"cases off statsmodels by more than its own rounding sensitivity: {failures}"
    assert len(unstable) <= N_CASES // 10, f"too many rounding-sensitive cases: {unstable}"


def test_default_robust_and_long_series_match_statsmodels():
    """PM2.5-like series (skewed noise, spikes), statsmodels defaults, robust and not."""
    rng = np.random.default_rng(7)
    t = np.arange(5 * 73 + 11)
    y = 40 + 25 * np.cos(2 * np.pi * t / 73) - 0.01 * t + rng.gamma(2.0, 6.0, t.size)
    y[rng.integers(0, t.size, 12)] += 150
    for robust in (False, True):
        ref = STL(y, period=73, robust=robust).fit()
        ours = stl(y, 73, robust=robust, method="direct")
        assert _max_rel_diff(ours, ref, np.abs(y).max()) <= 1e-8
        np.testing.assert_allclose(ours.weights, ref.weights, rtol=0, atol=1e-8)


# --------------------------------------------------------------------------- netlib Fortran / R
FORTRAN_SCENARIOS = {  # scenario -> (series length, low_pass_jump, trend_jump); see statsmodels' test_stl.py
    "baseline": (348, 2, 2),
    "short": (347, 2, 2),
    "nljump-1": (348, 1, 2),
    "ntjump-1": (348, 2, 1),
    "nljump-1-ntjump-1": (348, 1, 1),
}


def _co2(reference_fixtures):
    return np.loadtxt(reference_fixtures / "statsmodels_stl" / "stl_co2.csv")


def _fortran_results(reference_fixtures):
    path = reference_fixtures / "statsmodels_stl" / "stl_test_results.csv"
    rows = [line.split(",") for line in path.read_text().splitlines()[1:] if line.strip()]
    table = {}
    for scenario, idx, season, trend, rw in rows:
        table.setdefault(scenario.strip(), []).append((int(idx), float(season), float(trend), float(rw)))
    return {k: np.array(sorted(v)) for k, v in table.items()}


@pytest.mark.parametrize("scenario", sorted(FORTRAN_SCENARIOS))
def test_reproduces_netlib_fortran(reference_fixtures, scenario):
    n, nljump, ntjump = FORTRAN_SCENARIOS[scenario]
    y = _co2(reference_fixtures)[:n]
    expected = _fortran_results(reference_fixtures)[scenario]
    assert expected.shape == (n, 4)
    res = stl(y, 12, seasonal=35, trend=19, low_pass=13, seasonal_jump=4, trend_jump=ntjump,
              low_pass_jump=nljump, inner_iter=1, outer_iter=2, method="direct")
    np.testing.assert_allclose(res.seasonal, expected[:, 1], rtol=1e-7)
    np.testing.assert_allclose(res.trend, expected[:, 2], rtol=1e-7)
    np.testing.assert_allclose(res.weights, expected[:, 3], rtol=1e-7)
    np.testing.assert_allclose(res.resid, y - expected[:, 1] - expected[:, 2], rtol=1e-7, atol=1e-9)


def test_reproduces_r_stl(reference_fixtures):
    """R's stl() (same Fortran) on CO2, compared to the digits R printed."""
    text = (reference_fixtures / "statsmodels_stl" / "stl_co2_r_result.csv").read_text()
    rows = re.findall(r"^\s*[A-Z][a-z]{2}\s+\d+\s+(\S+)\s+(\S+)\s+(\S+)\s*$", text, flags=re.M)
    printed = np.array(rows, dtype=float)
    y = _co2(reference_fixtures)
    assert printed.shape == (y.size, 3)
    res = stl(y, 12, seasonal=35, trend=19, low_pass=13, seasonal_jump=4, trend_jump=2, low_pass_jump=2,
              inner_iter=1, outer_iter=2)
    np.testing.assert_allclose(res.seasonal, printed[:, 0], rtol=0, atol=5e-9)
    np.testing.assert_allclose(res.trend, printed[:, 1], rtol=0, atol=5e-5)
    np.testing.assert_allclose(res.resid, printed[:, 2], rtol=0, atol=5e-5)


# --------------------------------------------------------------------------- shapes, dtypes, methods
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_leading_dims_and_dtype_are_preserved(dtype):
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(3, 4, 45)) + np.sin(np.arange(45) * 2 * np.pi / 6)).astype(dtype)
    res = stl(x, 6, robust=True, method="direct")
    assert isinstance(res, STLResult) and res.method == "direct"
    for part in (res.trend, res.seasonal, res.resid, res.weights, res.baseline):
        assert part.shape == x.shape and part.dtype == dtype
    for i, j in [(0, 0), (2, 3), (1, 2)]:
        ref = STL(x[i, j].astype(np.float64), period=6, robust=True).fit()
        np.testing.assert_allclose(res.trend[i, j], ref.trend.astype(dtype), rtol=1e-6 if dtype == np.float32 else 1e-12)
        np.testing.assert_allclose(res.seasonal[i, j], ref.seasonal.astype(dtype),
                                   rtol=0, atol=(1e-5 if dtype == np.float32 else 1e-12) * np.abs(x).max())
    np.testing.assert_array_equal(res.baseline, res.trend + res.seasonal)


def test_batch_equals_one_series_at_a_time():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(7, 40)).cumsum(axis=1)
    batch = stl(x, 5, robust=True, method="direct")
    for i in range(x.shape[0]):
        one = stl(x[i], 5, robust=True, method="direct")
        np.testing.assert_array_equal(one.trend, batch.trend[i])
        np.testing.assert_array_equal(one.seasonal, batch.seasonal[i])
        np.testing.assert_array_equal(one.weights, batch.weights[i])


def test_integer_input_gives_float64_and_empty_batch_works():
    x = np.arange(3 * 20).reshape(3, 20) % 7
    res = stl(x, 4, method="direct")
    assert res.trend.dtype == np.float64
    np.testing.assert_allclose(res.trend[1], STL(x[1].astype(float), period=4).fit().trend, rtol=1e-12)
    empty = stl(np.empty((0, 20)), 4)
    assert empty.trend.shape == (0, 20)


def test_stl_baseline_is_trend_plus_seasonal():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 3, 50)).astype(np.float32)
    for robust in (False, True):
        res = stl(x, 7, robust=robust, method="direct")
        bl = stl_baseline(x, 7, robust=robust, method="direct")
        assert bl.dtype == np.float32 and bl.shape == x.shape
        np.testing.assert_allclose(bl, res.trend + res.seasonal, rtol=1e-6, atol=1e-6)


def test_default_windows_match_statsmodels_config():
    for period, seasonal in [(12, 7), (12, 17), (365, 7), (7, 9), (2, 3), (24, 35)]:
        ours = stl_settings(period, seasonal=seasonal)
        config = STL(np.zeros(2 * period + 1), period=period, seasonal=seasonal).config
        assert (ours.trend, ours.low_pass) == (config["trend"], config["low_pass"])
    assert (stl_settings(12).inner_iter, stl_settings(12).outer_iter) == (5, 0)
    assert (stl_settings(12, robust=True).inner_iter, stl_settings(12, robust=True).outer_iter) == (2, 15)


# --------------------------------------------------------------------------- errors
def test_nan_error_counts_series():
    x = np.random.default_rng(6).normal(size=(4, 3, 30))
    x[0, 1, 5] = np.nan
    x[2, 2, [0, 29]] = np.nan
    with pytest.raises(ValueError, match=r"NaN in 2 of 12 series"):
        stl(x, 7)
    with pytest.raises(ValueError, match=r"NaN in 2 of 12 series"):
        stl_baseline(x, 7)
    x = np.nan_to_num(x)
    x[3, 0, 3] = np.inf
    with pytest.raises(ValueError, match=r"inf in 1 of 12 series"):
        stl(x, 7)


@pytest.mark.parametrize("kwargs, match", [
    (dict(period=1), "period must be a positive integer >= 2"),
    (dict(period=4.0), "period must be a positive integer >= 2"),
    (dict(period=True), "period must be a positive integer >= 2"),
    (dict(seasonal=2), "seasonal must be an odd positive integer >= 3"),
    (dict(seasonal=-7), "seasonal must be an odd positive integer >= 3"),
    (dict(seasonal=13.0), "seasonal must be an odd positive integer >= 3"),
    (dict(trend=14), "trend must be an odd positive integer >= 3 where trend > period; got trend=14"),
    (dict(trend=11), "trend must be an odd positive integer >= 3 where trend > period"),
    (dict(low_pass=7), "low_pass must be an odd positive integer >= 3 where low_pass > period"),
    (dict(low_pass=19.0), "low_pass must be an odd positive integer >= 3 where low_pass > period"),
    (dict(seasonal_jump=0), "seasonal_jump must be a positive integer"),
    (dict(trend_jump=1.0), "trend_jump must be a positive integer"),
    (dict(low_pass_jump=-2), "low_pass_jump must be a positive integer"),
    (dict(seasonal_deg=2), "seasonal_deg must be 0 or 1; got seasonal_deg=2"),
    (dict(trend_deg=-1), "trend_deg must be 0 or 1"),
    (dict(low_pass_deg=0.5), "low_pass_deg must be 0 or 1"),
    (dict(inner_iter=0), "inner_iter must be a positive integer"),
    (dict(outer_iter=-1), "outer_iter must be a non-negative integer"),
    (dict(method="fast"), "method must be one of"),
    (dict(method="operator", robust=True), "method='operator' needs the linear"),
    (dict(method="operator", outer_iter=2), "outer_iter=2"),
])
def test_invalid_settings_raise_value_error(kwargs, match):
    x = np.random.default_rng(0).normal(size=(2, 60))
    kwargs = {"period": 12, **kwargs}
    with pytest.raises(ValueError, match=re.escape(match)):
        stl(x, **kwargs)


def test_invalid_inputs():
    with pytest.raises(ValueError, match=r"at least 2 \* period = 24"):
        stl(np.zeros(23), 12)
    with pytest.raises(ValueError, match="at least one dimension"):
        stl(np.float64(3.0), 2)
    with pytest.raises(TypeError, match="dtype complex128"):
        stl(np.zeros(30, dtype=complex), 7)
    with pytest.raises(TypeError, match="robust must be a bool"):
        stl(np.zeros(30), 7, robust="yes")


# --------------------------------------------------------------------------- kernel internals
def test_weighted_moment_fits_equal_statsmodels_loess_point():
    """The one-pass moment form of the weighted local-linear fit (and its exact fallback when
    robustness weights make it ill-conditioned) against the verbatim port of statsmodels' _est."""
    from ihs_hpc.kernels import stl as kernel

    rng = np.random.default_rng(11)
    for n, len_, ideg, jump in [(60, 13, 1, 1), (60, 13, 0, 1), (40, 61, 1, 2), (31, 9, 1, 4)]:
        pint, pfloat = kernel.smoother_plan(n, len_, ideg, jump)
        npts = int(pint[kernel.H_NPTS])
        xs = kernel.plan_ints(pint, kernel.H_XS)
        nl = kernel.plan_ints(pint, kernel.H_NL)
        nr = kernel.plan_ints(pint, kernel.H_NR)
        for sparsity in (0.0, 0.7, 0.95):
            y = rng.normal(0, 5, n) + 100
            rw = rng.uniform(0, 1, n) * (rng.random(n) >= sparsity)
            fits, alpha, beta, scratch = (np.empty(n) for _ in range(4))
            kernel.fit_points_weighted(y, pint, pfloat, 0, npts, rw, fits, alpha, beta, scratch)
            again = np.empty(n)
            y2 = rng.normal(0, 5, n)
            kernel.fit_points_reweighted(y2, rw * y2, pint, pfloat, 0, npts, rw, alpha, beta, again, scratch)
            w = np.empty(n)
            for p in range(npts):
                ref = kernel.loess_point(y, n, len_, ideg, xs[p], nl[p], nr[p], w, True, rw)
                ref2 = kernel.loess_point(y2, n, len_, ideg, xs[p], nl[p], nr[p], w, True, rw)
                if np.isnan(ref):
                    assert np.isnan(fits[p]) and np.isnan(again[p])
                else:
                    assert abs(fits[p] - ref) <= 1e-11 * np.abs(y).max(), (n, len_, ideg, jump, sparsity, p)
                    assert abs(again[p] - ref2) <= 1e-11 * np.abs(y2).max(), (n, len_, ideg, jump, sparsity, p)


def test_plans_past_the_budget_evaluate_on_the_fly(monkeypatch):
    """Windows longer than the series make every fit distinct; past the tabulation budget the
    kernel computes rows and tricube kernels on the fly -- same results."""
    from ihs_hpc.kernels import stl as kernel
    from ihs_hpc.ops import stl_core

    rng = np.random.default_rng(12)
    y = rng.normal(0, 3, 40) + np.sin(np.arange(40))
    y[[5, 17]] += 30
    kw = dict(trend=61, low_pass=45, seasonal=13)
    monkeypatch.setattr(kernel, "PLAN_BUDGET", 10)
    stl_core.kernel_plans.cache_clear()
    try:
        for robust in (False, True):
            ours = stl(y, 4, robust=robust, method="direct", **kw)
            ref = STL(y, period=4, robust=robust, **kw).fit()
            assert _max_diff_with_weights(ours, ref, np.abs(y).max()) <= 1e-8
    finally:
        stl_core.kernel_plans.cache_clear()


def test_constant_and_tied_series_match_statsmodels():
    """Ties in |residuals| (the median behind the robustness scale). When the fit is exact the
    residual scale is rounding noise and so are statsmodels' weights: only components compare."""
    for y in (np.full(30, 7.0), np.repeat(np.arange(6.0), 5), np.tile([1.0, 1.0, 2.0], 12)):
        for robust in (False, True):
            ours = stl(y, 5, robust=robust, method="direct")
            ref = STL(y, period=5, robust=robust).fit()
            scale = np.abs(y).max()
            assert _max_rel_diff(ours, ref, scale) <= 1e-8
            if np.median(np.abs(ref.resid)) > 1e-10 * scale:
                np.testing.assert_allclose(ours.weights, ref.weights, rtol=0, atol=1e-8)
            assert ((ours.weights >= 0) & (ours.weights <= 1)).all()
