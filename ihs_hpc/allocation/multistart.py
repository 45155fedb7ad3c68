"""Minimised-Gini plan (seed 003, eqs. 3–6) by multi-start SLSQP — the local-search alternative.

The objective ``sum_j G_j`` is piecewise linear: it changes form whenever two cities swap places in
some index's Lorenz ordering, so a gradient method stalls on the kinks.  This solver runs
:func:`scipy.optimize.minimize` (SLSQP) from ``starts`` random plans that satisfy eqs. 4 and 6
(:func:`~ihs_hpc.allocation._feasibility.random_ray_plans`, the uniform plan ``r_i = q`` first),
with the exact gradient of the active piece, keeps the best plan that satisfies eq. 5 after being
moved exactly onto eqs. 4 and 6, and polishes it with one more SLSQP run at tighter tolerance.
It is a heuristic; :mod:`ihs_hpc.allocation.lp` solves the same problem exactly and is the
default of :func:`~ihs_hpc.allocation.plan.allocate`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from ihs_hpc.allocation._feasibility import (
    enforce_total_and_bounds,
    fixed_total_gini,
    random_ray_plans,
)
from ihs_hpc.allocation.gini import gini_of_arrays

__all__ = ["MultistartSolution", "solve_min_gini_multistart"]


@dataclass(frozen=True)
class MultistartSolution:
    """Answer of :func:`solve_min_gini_multistart`.

    Attributes
    ----------
    rates : ndarray, shape (n,)
        Best plan found (exactly on eqs. 4 and 6, within ``gini_tolerance`` of eq. 5).
    objective : float
        ``sum_j G_j`` of that plan by eq. 1.
    start_objectives : ndarray, shape (starts,)
        Objective reached from every start (NaN where the end point broke eq. 5).
    n_successful : int
        Starts whose SLSQP run reported success.
    best_start : int
        Start that gave the best plan before polishing.
    polish_improved : bool
        Whether the final polish lowered the objective.
    """

    rates: np.ndarray
    objective: float
    start_objectives: np.ndarray
    n_successful: int
    best_start: int
    polish_improved: bool


def solve_min_gini_multistart(
    pm25: np.ndarray,
    index_values: np.ndarray,
    q: float,
    p_min: float,
    p_max: float,
    gini_caps: np.ndarray,
    starts: int,
    seed: int | None,
    gini_tolerance: float = 1e-13,
) -> MultistartSolution:
    """Multi-start SLSQP on eqs. 3–6 with a final polish (module docstring).

    Parameters
    ----------
    pm25 : ndarray, shape (n,)
        Initial PM2.5 per city (positive).
    index_values : ndarray, shape (n, k)
        Positive index values per city and index.
    q, p_min, p_max : float
        Total reduction rate (eq. 4) and per-city rate bounds (eq. 6), ``p_min <= q <= p_max``.
    gini_caps : ndarray, shape (k,)
        ``G_0j`` of eq. 5.
    starts : int
        Number of starting plans (>= 1; the first is the uniform plan).
    seed : int or None
        Seed of the random starting plans.
    gini_tolerance : float, optional
        Slack allowed on eq. 5 when a plan is accepted.

    Returns
    -------
    MultistartSolution
    """
    shares = index_values / index_values.sum(axis=0)
    total_after = (1.0 - q) * pm25.sum()
    rng = np.random.default_rng(seed)
    initial_plans = random_ray_plans(pm25, q, p_min, p_max, starts, rng)

    def objective(rates):
        g, grad = fixed_total_gini(rates, pm25, shares, total_after)
        return g.sum(), grad.sum(axis=0)

    constraints = [
        {"type": "eq", "fun": lambda r: pm25 @ r - q * pm25.sum(), "jac": lambda r: pm25},
        {
            "type": "ineq",
            "fun": lambda r: gini_caps - fixed_total_gini(r, pm25, shares, total_after)[0],
            "jac": lambda r: -fixed_total_gini(r, pm25, shares, total_after)[1],
        },
    ]
    bounds = [(p_min, p_max)] * pm25.size

    def run(start, ftol, maxiter):
        res = minimize(objective, start, jac=True, method="SLSQP", bounds=bounds,
                       constraints=constraints, options={"ftol": ftol, "maxiter": maxiter})
        rates = enforce_total_and_bounds(res.x, pm25, q, p_min, p_max)
        g = gini_of_arrays(pm25 * (1.0 - rates), index_values)
        ok = bool(np.all(g <= gini_caps + gini_tolerance))
        return rates, (float(g.sum()) if ok else np.nan), bool(res.success)

    start_objectives = np.full(starts, np.nan)
    best_rates, best_value, best_start, n_successful = None, np.inf, -1, 0
    for s, start in enumerate(initial_plans):
        rates, value, success = run(start, 1e-10, 200)
        start_objectives[s] = value
        n_successful += success
        if value < best_value:
            best_rates, best_value, best_start = rates, value, s
    if best_rates is None:  # every end point broke eq. 5: the uniform plan is always feasible
        best_rates = np.full(pm25.size, q, dtype=np.float64)
        best_value = float(gini_of_arrays(pm25 * (1.0 - best_rates), index_values).sum())
    polished, polished_value, _ = run(best_rates, 1e-14, 1000)
    improved = bool(polished_value < best_value)
    if improved:
        best_rates, best_value = polished, polished_value
    return MultistartSolution(
        rates=best_rates,
        objective=best_value,
        start_objectives=start_objectives,
        n_successful=int(n_successful),
        best_start=int(best_start),
        polish_improved=improved,
    )
