"""Gini coefficient, contribution coefficient and minimised-Gini plan of seed 003 (eqs. 1–6).

References used here are computed independently of :mod:`ihs_hpc.allocation`: the weighted
mean-absolute-difference form of the Gini coefficient, hand-computed trapezoids, a direct loop for
eq. 2, and a rejection sampler of random feasible plans.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ihs_hpc.allocation import allocate, contribution_coefficient, gini, lorenz_curve

DATA = Path(__file__).parent / "data" / "allocation"


# ----------------------------------------------------------------------------- references
def mad_gini(pm25, index):
    """Gini of PM2.5 per unit index, weighted by index share (mean-absolute-difference form).

    ``G = sum_a sum_b w_a w_b |s_a - s_b| / (2 sum_a w_a s_a)`` with ``s = pm25 / index`` and
    ``w = index / sum(index)``; works on stacks: pm25 (..., n), index (n,) -> (...).
    """
    pm25 = np.asarray(pm25, dtype=float)
    index = np.asarray(index, dtype=float)
    w = index / index.sum()
    s = pm25 / index
    diff = np.abs(s[..., :, None] - s[..., None, :])
    return (w[:, None] * w[None, :] * diff).sum(axis=(-2, -1)) / (2 * (w * s).sum(axis=-1))


def random_feasible_plans(pm25, q, p_min, p_max, count, rng):
    """Rejection sampler: n-1 rates uniform in the bounds, a random city solves eq. 4; keep the
    plan if that city's rate is within the bounds too."""
    n = pm25.size
    kept = []
    total = 0
    while total < count:
        rates = rng.uniform(p_min, p_max, (4 * count, n))
        solved = rng.integers(0, n, 4 * count)
        rows = np.arange(4 * count)
        rates[rows, solved] = 0.0
        rates[rows, solved] = (q * pm25.sum() - rates @ pm25) / pm25[solved]
        ok = (rates[rows, solved] >= p_min) & (rates[rows, solved] <= p_max)
        kept.append(rates[ok])
        total += int(ok.sum())
    return np.concatenate(kept)[:count]


def read_fixture_pm25():
    table = pd.read_csv(DATA / "pm25_2013.csv", comment="#")
    return pd.Series(table["pm25"].to_numpy(), index=table["city"], name="pm25")


def random_indices(cities, names, rng):
    return pd.DataFrame(rng.lognormal(mean=2.0, sigma=1.0, size=(len(cities), len(names))),
                        index=pd.Index(cities), columns=names)


# ----------------------------------------------------------------------------- eq. 1
def test_gini_equals_weighted_mean_absolute_difference():
    rng = np.random.default_rng(11)
    for n in (2, 3, 7, 13, 40):
        pm25 = rng.uniform(20, 160, n)
        index = rng.lognormal(0, 1.2, (n, 3))
        got = gini(pm25, index)
        assert got.shape == (3,)
        for j in range(3):
            np.testing.assert_allclose(got[j], mad_gini(pm25, index[:, j]), rtol=1e-12, atol=1e-14)
            assert gini(pm25, index[:, j]) == pytest.approx(got[j], rel=1e-15, abs=1e-15)


def test_gini_hand_computed_two_and_three_cities():
    # 2 cities, equal index: PM2.5/index = 1, 3 -> X = (.5, 1), Y = (.25, 1)
    expected2 = 1 - ((0.5 - 0) * (0.25 + 0) + (1 - 0.5) * (1 + 0.25))
    assert gini([3.0, 1.0], [1.0, 1.0]) == pytest.approx(expected2, abs=1e-15)
    # 3 cities: pm25 (2, 1, 1), index (1, 2, 1) -> ratios 2, 0.5, 1 -> order B, C, A
    # X = (2/4, 3/4, 1), Y = (1/4, 2/4, 1)
    expected3 = 1 - ((0.5 - 0) * (0.25 + 0) + (0.75 - 0.5) * (0.5 + 0.25) + (1 - 0.75) * (1 + 0.5))
    got = gini(pd.Series([2.0, 1.0, 1.0], index=["A", "B", "C"]),
               pd.Series([1.0, 2.0, 1.0], index=["A", "B", "C"], name="population"))
    assert got == pytest.approx(expected3, abs=1e-15)


def test_gini_zero_for_proportional_data():
    rng = np.random.default_rng(2)
    index = rng.lognormal(0, 1, (9, 2))
    for j in range(2):
        assert abs(gini(4.2 * index[:, j], index[:, j])) < 1e-14


def test_gini_frame_matches_columns_and_city_order():
    rng = np.random.default_rng(5)
    cities = [f"c{i}" for i in range(8)]
    pm25 = pd.Series(rng.uniform(30, 150, 8), index=cities)
    table = random_indices(cities, ["population", "energy"], rng)
    got = gini(pm25, table)
    assert list(got.index) == ["population", "energy"]
    shuffled = table.iloc[rng.permutation(8)]  # matched by city name, not position
    pd.testing.assert_series_equal(gini(pm25, shuffled), got, rtol=1e-14)
    for name in table.columns:
        assert got[name] == pytest.approx(mad_gini(pm25.to_numpy(), table[name].to_numpy()),
                                          rel=1e-12)


def test_lorenz_curve_points_follow_the_papers_order():
    rng = np.random.default_rng(8)
    cities = [f"c{i}" for i in range(10)]
    pm25 = pd.Series(rng.uniform(30, 150, 10), index=cities)
    table = random_indices(cities, ["gdp", "rnd"], rng)
    curves = lorenz_curve(pm25, table)
    for name, curve in curves.items():
        assert len(curve) == 11
        assert curve.loc[0, ["cum_index_share", "cum_pm25_share"]].tolist() == [0.0, 0.0]
        np.testing.assert_allclose(curve.iloc[-1][["cum_index_share", "cum_pm25_share"]].to_numpy(
            dtype=float), [1.0, 1.0], rtol=1e-14)
        ratio = pm25 / table[name]
        expected_order = list(ratio.sort_values(kind="stable").index)
        assert list(curve["city"].iloc[1:]) == expected_order
        x = curve["cum_index_share"].to_numpy()
        y = curve["cum_pm25_share"].to_numpy()
        np.testing.assert_allclose(np.diff(x), table[name][expected_order] / table[name].sum(),
                                   rtol=1e-12)
        np.testing.assert_allclose(np.diff(y), pm25[expected_order] / pm25.sum(), rtol=1e-12)
        slopes = np.diff(y) / np.diff(x)
        assert np.all(np.diff(slopes) >= -1e-12)  # convex, below the diagonal
        trapezoid = 1 - np.sum(np.diff(x) * (y[1:] + y[:-1]))
        assert trapezoid == pytest.approx(gini(pm25, table[name]), abs=1e-15)
        single = lorenz_curve(pm25, table[name])  # one index: one DataFrame
        pd.testing.assert_frame_equal(single, curve)


# ----------------------------------------------------------------------------- eq. 2
def test_contribution_coefficient_direct_formula():
    rng = np.random.default_rng(21)
    cities = [f"c{i}" for i in range(6)]
    pm25 = pd.Series(rng.uniform(30, 150, 6), index=cities)
    table = random_indices(cities, ["population", "industry", "rnd"], rng)
    got = contribution_coefficient(pm25, table.iloc[::-1])
    assert list(got.index) == cities and list(got.columns) == list(table.columns)
    for city in cities:
        for name in table.columns:
            expected = (table.loc[city, name] / sum(table[name])) / (pm25[city] / sum(pm25))
            assert got.loc[city, name] == pytest.approx(expected, rel=1e-13)
    one = contribution_coefficient(pm25.to_numpy(), table["rnd"].to_numpy())
    np.testing.assert_allclose(one, got["rnd"].to_numpy(), rtol=1e-14)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "pm25, index, pattern",
    [
        (pd.Series([1.0, 2.0], index=["A", "B"]),
         pd.Series([1.0, 0.0], index=["A", "B"], name="pop"),
         r"index 'pop' for city 'B' .*got 0\.0"),
        (pd.Series([1.0, 2.0], index=["A", "B"]),
         pd.Series([np.nan, 1.0], index=["A", "B"], name="gdp"), r"index 'gdp' for city 'A' .*nan"),
        (pd.Series([1.0, -2.0], index=["A", "B"]), pd.Series([1.0, 1.0], index=["A", "B"]),
         r"pm25 for city 'B' .*-2\.0"),
        (pd.Series([1.0, 2.0], index=["A", "B"]), pd.Series([1.0, 1.0], index=["A", "C"]),
         r"only in pm25: \['B'\]; only in index: \['C'\]"),
        (pd.Series([1.0, 2.0, 3.0], index=["A", "B", "A"]), [1.0, 1.0, 1.0],
         r"pm25: duplicate city names \['A'\]"),
        (pd.Series([1.0, 2.0], index=["A", "B"]),
         pd.DataFrame({"pop": [1.0, 1.0]}, index=["B", "B"]),
         r"index: duplicate city names \['B'\]"),
        ([1.0, 2.0, 3.0], [1.0, 2.0], r"pm25 has 3 cities but index has 2 rows"),
    ],
)
def test_bad_inputs_raise_naming_the_culprit(pm25, index, pattern):
    with pytest.raises(ValueError, match=pattern):
        gini(pm25, index)
    with pytest.raises(ValueError, match=pattern):
        allocate(pm25, index, 0.4, 0.3, 0.5)


@pytest.mark.parametrize(
    "q, p_min, p_max, pattern",
    [
        (0.55, 0.3, 0.5, r"infeasible: q=0\.55 is outside \[p_min, p_max\] = \[0\.3, 0\.5\]"),
        (0.25, 0.3, 0.5, r"infeasible: q=0\.25"),
        (40, 0.3, 0.5, r"q must be a fraction .* got 40 \(did you mean 0\.4\?\)"),
        (0.4, 0.5, 0.3, r"p_min \(0\.5\) must not exceed p_max \(0\.3\)"),
        (0.4, 0.3, float("nan"), r"p_max must be a fraction"),
    ],
)
def test_infeasible_or_invalid_rates_raise(q, p_min, p_max, pattern):
    pm25 = read_fixture_pm25()
    index = random_indices(pm25.index, ["population"], np.random.default_rng(0))
    with pytest.raises(ValueError, match=pattern):
        allocate(pm25, index, q, p_min, p_max)


# ----------------------------------------------------------------------------- eqs. 3–6
def check_constraints(result, pm25, indices, q, p_min, p_max):
    plan = result.plan.set_index("city").loc[pm25.index]
    rates = plan["reduction_rate"].to_numpy()
    targets = plan["pm25_target"].to_numpy()
    total = pm25.sum()
    assert abs(targets.sum() - (1 - q) * total) <= 1e-9 * (1 - q) * total  # eq. 4
    assert abs((pm25.to_numpy() * rates).sum() - q * total) <= 1e-9 * q * total
    assert np.all(rates >= p_min - 1e-9) and np.all(rates <= p_max + 1e-9)  # eq. 6
    np.testing.assert_allclose(targets, pm25.to_numpy() * (1 - rates), rtol=1e-14)
    np.testing.assert_allclose(plan["reduction_amount"], pm25.to_numpy() * rates, rtol=1e-14)
    for name in indices.columns:  # eq. 5, by the independent Gini
        before = mad_gini(pm25.to_numpy(), indices.loc[pm25.index, name].to_numpy())
        after = mad_gini(targets, indices.loc[pm25.index, name].to_numpy())
        assert after <= before + 1e-12, name
        row = result.gini.set_index("index").loc[name]
        assert row["gini_initial"] == pytest.approx(before, abs=1e-13)
        assert row["gini_optimised"] == pytest.approx(after, abs=1e-13)
    assert result.objective == pytest.approx(result.gini["gini_optimised"].sum(), abs=1e-14)


def test_fixture_is_table2_of_the_paper():
    pm25 = read_fixture_pm25()
    assert len(pm25) == 13 and pm25.index.is_unique
    assert abs(pm25.sum() - 1347.10) < 1e-9  # Table 2, Sum row


@pytest.mark.parametrize("method", ["lp", "multistart"])
def test_paper_2013_plan_meets_every_constraint(method):
    pm25 = read_fixture_pm25()
    rng = np.random.default_rng(2013)
    indices = random_indices(pm25.index, ["population", "industrial_output", "energy", "rnd"], rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = allocate(pm25, indices, 0.4, 0.3, 0.5, method=method, starts=16, seed=3)
    assert result.converged and result.method == method
    assert list(result.plan.columns) == ["city", "pm25_initial", "reduction_rate",
                                         "reduction_amount", "pm25_target"]
    assert list(result.plan["city"]) == list(pm25.index)
    check_constraints(result, pm25, indices, 0.4, 0.3, 0.5)
    paper_target_total = 0.6 * 1347.10  # Table 2: 40 % off the 2013 sum
    assert abs(result.plan["pm25_target"].sum() - paper_target_total) <= 1e-9 * paper_target_total
    assert result.objective < result.objective_initial  # the plan does improve fairness


@pytest.mark.parametrize("seed", range(6))
def test_optimum_beats_random_feasible_plans(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(4, 9))
    k = int(rng.integers(2, 4))
    cities = [f"city{i}" for i in range(n)]
    pm25 = pd.Series(rng.uniform(30, 160, n), index=cities)
    indices = random_indices(cities, [f"idx{j}" for j in range(k)], rng)
    q, p_min, p_max = 0.4, 0.3, 0.5

    result = allocate(pm25, indices, q, p_min, p_max)
    check_constraints(result, pm25, indices, q, p_min, p_max)

    plans = random_feasible_plans(pm25.to_numpy(), q, p_min, p_max, 10_000, rng)
    after = pm25.to_numpy() * (1 - plans)
    before = np.array([mad_gini(pm25.to_numpy(), indices[c].to_numpy()) for c in indices])
    gini_after = np.stack([mad_gini(after, indices[c].to_numpy()) for c in indices], axis=-1)
    feasible = np.all(gini_after <= before + 1e-12, axis=1)
    best_random = gini_after[feasible].sum(axis=1).min()
    assert feasible.sum() > 100
    assert best_random < before.sum()  # random search can beat "do nothing": the test has teeth
    assert result.objective <= best_random + 1e-9

    multistart = allocate(pm25, indices, q, p_min, p_max, method="multistart", starts=8, seed=seed)
    check_constraints(multistart, pm25, indices, q, p_min, p_max)
    assert multistart.objective >= result.objective - 1e-9  # the LP is the global optimum
    assert multistart.objective <= result.objective_initial + 1e-12


def test_equal_bounds_give_the_uniform_plan():
    pm25 = read_fixture_pm25()
    indices = random_indices(pm25.index, ["population", "energy"], np.random.default_rng(4))
    result = allocate(pm25, indices, 0.4, 0.4, 0.4)
    assert result.method == "uniform"
    np.testing.assert_array_equal(result.plan["reduction_rate"], np.full(13, 0.4))
    np.testing.assert_allclose(result.gini["gini_optimised"], result.gini["gini_initial"],
                               atol=1e-15)


def test_proportional_index_pins_the_plan_to_uniform():
    # G_0 = 0 for an index proportional to PM2.5: eq. 5 then allows only r_i = q
    rng = np.random.default_rng(9)
    pm25 = pd.Series(rng.uniform(30, 160, 7), index=[f"c{i}" for i in range(7)])
    indices = pd.DataFrame({"proportional": 2.5 * pm25,
                            "other": rng.lognormal(0, 1, 7)}, index=pm25.index)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = allocate(pm25, indices, 0.4, 0.3, 0.5)
    check_constraints(result, pm25, indices, 0.4, 0.3, 0.5)
    np.testing.assert_allclose(result.plan["reduction_rate"], 0.4, atol=1e-6)


def test_allocate_accepts_plain_arrays():
    rng = np.random.default_rng(31)
    pm25 = rng.uniform(30, 160, 6)
    indices = rng.lognormal(0, 1, (6, 2))
    labelled = allocate(pd.Series(pm25, index=[str(i) for i in range(6)]),
                        pd.DataFrame(indices, index=[str(i) for i in range(6)]), 0.4, 0.3, 0.5)
    plain = allocate(pm25, indices, 0.4, 0.3, 0.5)
    assert list(plain.plan["city"]) == list(range(6))
    np.testing.assert_allclose(plain.plan["reduction_rate"], labelled.plan["reduction_rate"],
                               rtol=0, atol=1e-12)


def test_lp_answer_breaking_eq5_is_pulled_back_and_failure_falls_back_to_uniform(monkeypatch):
    import ihs_hpc.allocation.plan as plan_module
    from ihs_hpc.allocation.lp import LPSolution

    rng = np.random.default_rng(77)
    cities = [f"c{i}" for i in range(6)]
    pm25 = pd.Series(rng.uniform(30, 160, 6), index=cities)
    indices = random_indices(cities, ["a", "b"], rng)
    plans = random_feasible_plans(pm25.to_numpy(), 0.4, 0.3, 0.5, 2000, rng)
    before = np.array([mad_gini(pm25.to_numpy(), indices[c].to_numpy()) for c in indices])
    after = np.stack([mad_gini(pm25.to_numpy() * (1 - plans), indices[c].to_numpy())
                      for c in indices], axis=-1)
    breaking = plans[np.argmax((after - before).max(axis=1))]
    assert (after - before).max() > 1e-3  # a plan meeting eqs. 4 and 6 but not eq. 5

    def fake_lp(*args, **kwargs):
        return LPSolution(rates=breaking, status=0, message="fake", objective=0.0, iterations=0)

    monkeypatch.setattr(plan_module, "solve_min_gini_lp", fake_lp)
    pulled = allocate(pm25, indices, 0.4, 0.3, 0.5)
    check_constraints(pulled, pm25, indices, 0.4, 0.3, 0.5)
    assert 0.0 <= pulled.info["back_off"] < 1.0 and pulled.converged
    # the answer lies on the segment from r = q towards the solver's plan
    np.testing.assert_allclose(pulled.plan["reduction_rate"] - 0.4,
                               pulled.info["back_off"] * (breaking - 0.4), atol=1e-15)

    def failing_lp(*args, **kwargs):
        return LPSolution(rates=None, status=2, message="infeasible", objective=np.nan,
                          iterations=0)

    monkeypatch.setattr(plan_module, "solve_min_gini_lp", failing_lp)
    with pytest.warns(RuntimeWarning, match="uniform plan"):
        fallback = allocate(pm25, indices, 0.4, 0.3, 0.5)
    assert not fallback.converged and fallback.info["fallback"] == "uniform"
    np.testing.assert_array_equal(fallback.plan["reduction_rate"], np.full(6, 0.4))
