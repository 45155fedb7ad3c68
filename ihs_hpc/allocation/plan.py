"""Minimised-Gini allocation of a regional PM2.5 reduction over cities (seed 003, eqs. 3–6).

The decision is each city's reduction rate ``r_i``; city ``i``'s target is ``P_i (1 - r_i)``.

* eq. 3: minimise ``F = sum_j G_j(P (1 - r), M_j)`` over the indices ``j``;
* eq. 4: ``sum_i P_i (1 - r_i) = (1 - q) sum_i P_i``, i.e. ``sum_i P_i r_i = q sum_i P_i``;
* eq. 5: ``G_j(P (1 - r), M_j) <= G_0j = G_j(P, M_j)`` for every index;
* eq. 6: ``p_min <= r_i <= p_max``.

Feasibility.  The total of eq. 4 is a PM2.5-weighted mean of the rates, so eqs. 4 and 6 can hold
together exactly when ``p_min <= q <= p_max``; then the uniform plan ``r_i = q`` leaves every
PM2.5 share, hence every Lorenz curve, unchanged and meets eq. 5 with equality.  The problem is
therefore feasible whenever ``p_min <= q <= p_max`` and ``F <= sum_j G_0j`` at the optimum.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ihs_hpc.allocation._feasibility import enforce_total_and_bounds
from ihs_hpc.allocation._inputs import align_inputs
from ihs_hpc.allocation.gini import gini_of_arrays
from ihs_hpc.allocation.lp import solve_min_gini_lp
from ihs_hpc.allocation.multistart import solve_min_gini_multistart
from ihs_hpc.allocation.tables import gini_table, plan_table

__all__ = ["AllocationResult", "allocate", "METHODS", "GINI_TOLERANCE", "LP_GINI_MARGIN"]

#: solvers accepted by :func:`allocate`
METHODS = ("lp", "multistart")
#: slack allowed on eq. 5 when a plan is checked (float rounding of eq. 1)
GINI_TOLERANCE = 1e-13
#: eq. 5 is first imposed as ``G_j <= G_0j - LP_GINI_MARGIN`` so that the LP's feasibility
#: tolerance cannot push a plan over ``G_0j``; costs at most about this much objective
LP_GINI_MARGIN = 1e-9


@dataclass(frozen=True)
class AllocationResult:
    """A minimised-Gini reduction plan and its Gini coefficients.

    Attributes
    ----------
    plan : pandas.DataFrame
        One row per city, in the shape of seed 003, Table 2: ``city``, ``pm25_initial``,
        ``reduction_rate`` (fraction), ``reduction_amount``, ``pm25_target``.
    gini : pandas.DataFrame
        One row per index, in the shape of seed 003, Table 1: ``index``, ``gini_initial``,
        ``gini_optimised``, ``gini_change``, ``gini_change_rate``.
    objective : float
        ``F = sum_j G_j`` of the plan (eq. 3), by eq. 1.
    objective_initial : float
        ``sum_j G_0j``, the value of the uniform plan ``r_i = q``.
    indices : pandas.DataFrame
        The index table used (rows = cities in plan order, columns = indices).
    q, p_min, p_max : float
        Total reduction rate and rate bounds the plan was made for.
    method : str
        ``"lp"``, ``"multistart"`` or ``"uniform"`` (when ``p_min == p_max``).
    converged : bool
        Whether the solver reported success (False when the uniform plan was returned as a
        fallback, with a warning).
    info : dict
        Solver details: for ``"lp"`` the HiGHS status, message, iterations, the eq. 5 margin
        used and ``back_off`` (1.0 unless rounding forced a step back towards ``r_i = q``);
        for ``"multistart"`` starts, seed, objective per start, successful starts, best start
        and whether the polish helped.
    """

    plan: pd.DataFrame
    gini: pd.DataFrame
    objective: float
    objective_initial: float
    indices: pd.DataFrame
    q: float
    p_min: float
    p_max: float
    method: str
    converged: bool
    info: dict = field(default_factory=dict)

    @property
    def reduction_rates(self) -> pd.Series:
        """Reduction rate per city (fraction), indexed by city."""
        return pd.Series(self.plan["reduction_rate"].to_numpy(), index=self.plan["city"],
                         name="reduction_rate")

    @property
    def pm25_targets(self) -> pd.Series:
        """Target PM2.5 per city (µg/m³), indexed by city."""
        return pd.Series(self.plan["pm25_target"].to_numpy(), index=self.plan["city"],
                         name="pm25_target")


def _check_rates(q, p_min, p_max) -> tuple[float, float, float]:
    values = {}
    for name, value in (("q", q), ("p_min", p_min), ("p_max", p_max)):
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {value!r}") from None
        if not np.isfinite(v) or not 0.0 <= v <= 1.0:
            hint = f" (did you mean {v / 100:g}?)" if np.isfinite(v) and 1.0 < v <= 100.0 else ""
            raise ValueError(f"{name} must be a fraction in [0, 1], got {value!r}{hint}")
        values[name] = v
    q, p_min, p_max = values["q"], values["p_min"], values["p_max"]
    if q >= 1.0:
        raise ValueError(f"q must be below 1 (a 100% cut leaves no PM2.5 to share), got {q!r}")
    if p_min > p_max:
        raise ValueError(f"p_min ({p_min!r}) must not exceed p_max ({p_max!r})")
    if not p_min <= q <= p_max:
        raise ValueError(
            f"infeasible: q={q!r} is outside [p_min, p_max] = [{p_min!r}, {p_max!r}]; the total "
            "reduction rate (eq. 4) is a PM2.5-weighted mean of city rates bounded by eq. 6"
        )
    return q, p_min, p_max


def _back_off_to_eq5(rates, pm25, index_values, q, gini_initial, steps=60):
    """Largest step from the uniform plan towards ``rates`` that meets eq. 5 (bisection).

    ``G_j`` is convex along the segment and equals ``G_0j`` at the uniform plan, so the plans
    meeting eq. 5 on the segment form an interval ``[0, lam]``; returns ``(plan, lam)``.
    """
    uniform = np.full(pm25.size, q)

    def meets_eq5(lam):
        plan = uniform + lam * (rates - uniform)
        after = gini_of_arrays(pm25 * (1.0 - plan), index_values)
        return bool(np.all(after <= gini_initial + GINI_TOLERANCE))

    low, high = 0.0, 1.0
    for _ in range(steps):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if meets_eq5(mid) else (low, mid)
    return uniform + low * (rates - uniform), low


def _solve_lp(pm25, index_values, q, p_min, p_max, gini_initial):
    solver = "HiGHS (scipy.optimize.linprog)"
    attempts = []
    for margin in (LP_GINI_MARGIN, 0.0):
        sol = solve_min_gini_lp(pm25, index_values, q, p_min, p_max, gini_initial - margin)
        attempt = {"margin": margin, "status": sol.status, "message": sol.message,
                   "iterations": sol.iterations}
        attempts.append(attempt)
        if sol.rates is None or sol.status != 0:
            continue
        rates = enforce_total_and_bounds(sol.rates, pm25, q, p_min, p_max)
        after = gini_of_arrays(pm25 * (1.0 - rates), index_values)
        if np.all(after <= gini_initial + GINI_TOLERANCE):
            return rates, True, {"solver": solver, **attempt, "back_off": 1.0,
                                 "attempts": attempts}
        if margin == 0.0:
            # the LP's feasibility tolerance left eq. 5 broken by rounding: step back towards
            # the uniform plan (which meets eq. 5 exactly) until it holds
            rates, step = _back_off_to_eq5(rates, pm25, index_values, q, gini_initial)
            return rates, True, {"solver": solver, **attempt, "back_off": step,
                                 "attempts": attempts}
    warnings.warn(
        "the LP solver failed (see result.info['attempts']); returning the uniform plan "
        "r_i = q, which meets eqs. 4-6 but is not optimised",
        RuntimeWarning,
        stacklevel=3,
    )
    return np.full(pm25.size, q), False, {"solver": solver, "fallback": "uniform",
                                          "attempts": attempts}


def allocate(pm25, indices, q, p_min, p_max, *, method="lp", starts=64, seed=0) -> AllocationResult:
    """Reduction rates per city that minimise the sum of Gini coefficients (eqs. 3–6).

    Minimise ``sum_j G_j`` (eq. 3, ``G_j`` by eq. 1 on the target PM2.5 ``P_i (1 - r_i)``) over
    the rates ``r`` subject to ``sum_i P_i r_i = q sum_i P_i`` (eq. 4), ``G_j <= G_0j`` (eq. 5)
    and ``p_min <= r_i <= p_max`` (eq. 6).  The objective is non-smooth — it changes form whenever
    the Lorenz ordering of two cities swaps — but on the plans meeting eq. 4 it is convex and
    piecewise linear (:mod:`ihs_hpc.allocation.lp`), so:

    * ``method="lp"`` (default) solves it exactly as one linear programme with HiGHS; the answer
      is the global optimum (``starts`` and ``seed`` are not used);
    * ``method="multistart"`` runs SLSQP from ``starts`` random feasible plans drawn with
      ``seed`` and polishes the best (:mod:`ihs_hpc.allocation.multistart`); a heuristic kept
      as an independent cross-check.

    Either plan is finally moved onto eqs. 4 and 6 to float rounding and checked against eq. 5
    (tolerance :data:`GINI_TOLERANCE`); the LP first imposes eq. 5 with a margin of
    :data:`LP_GINI_MARGIN`, and if the solver's tolerance still leaves it broken the plan is moved
    back towards the uniform plan (which meets eq. 5 exactly) just far enough.  When
    ``p_min == p_max`` the only plan is ``r_i = q``.

    Parameters
    ----------
    pm25 : pandas.Series or array-like, shape (n,)
        Initial PM2.5 per city ``W_0(i)`` (µg/m³, positive), indexed by city name.
    indices : pandas.DataFrame, pandas.Series or array-like, shape (n,) or (n, k)
        Positive index values per city (rows, matched to ``pm25`` by city name when both are
        labelled) and index (columns: population, industrial output, energy, R&D ...).
    q : float
        Total reduction rate of eq. 4 as a fraction, ``0 <= q < 1`` (the paper: 0.4).
    p_min, p_max : float
        Lower and upper bound of every city's reduction rate (eq. 6; the paper: 0.3 and 0.5).
    method : {"lp", "multistart"}, optional
        Solver (see above).
    starts : int, optional
        Number of starting plans of ``method="multistart"`` (>= 1).
    seed : int or None, optional
        Seed of the starting plans of ``method="multistart"``.

    Returns
    -------
    AllocationResult
        Plan (Table 2 shape), Gini table (Table 1 shape), objective and solver info.

    Raises
    ------
    ValueError
        If ``q``, ``p_min`` or ``p_max`` is not a fraction, ``p_min > p_max``, the plan is
        infeasible (``q`` outside ``[p_min, p_max]``), ``method`` or ``starts`` is invalid, or the
        inputs have mismatched / duplicate city names or non-positive / NaN values.

    Warns
    -----
    RuntimeWarning
        When the LP fails and the uniform plan is returned (``converged`` is then False).
    """
    q, p_min, p_max = _check_rates(q, p_min, p_max)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(starts, bool) or not isinstance(starts, (int, np.integer)) or starts < 1:
        raise ValueError(f"starts must be a positive integer, got {starts!r}")
    inputs = align_inputs(pm25, indices)
    pm25_initial, index_values = inputs.pm25, inputs.index_values
    gini_initial = gini_of_arrays(pm25_initial, index_values)

    if p_min == p_max:
        rates, converged, used, info = np.full(pm25_initial.size, q), True, "uniform", {
            "reason": "p_min == p_max leaves r_i = q as the only plan"}
    elif method == "lp":
        rates, converged, info = _solve_lp(pm25_initial, index_values, q, p_min, p_max,
                                           gini_initial)
        used = "lp"
    else:
        sol = solve_min_gini_multistart(pm25_initial, index_values, q, p_min, p_max,
                                        gini_initial, int(starts), seed, GINI_TOLERANCE)
        rates, converged, used = sol.rates, sol.n_successful > 0, "multistart"
        info = {"solver": "SLSQP (scipy.optimize.minimize)", "starts": int(starts), "seed": seed,
                "start_objectives": sol.start_objectives, "n_successful": sol.n_successful,
                "best_start": sol.best_start, "polish_improved": sol.polish_improved}

    gini_after = gini_of_arrays(pm25_initial * (1.0 - rates), index_values)
    return AllocationResult(
        plan=plan_table(inputs.cities, pm25_initial, rates),
        gini=gini_table(inputs.index_names, gini_initial, gini_after),
        objective=float(gini_after.sum()),
        objective_initial=float(gini_initial.sum()),
        indices=pd.DataFrame(index_values, index=inputs.cities, columns=list(inputs.index_names)),
        q=q,
        p_min=p_min,
        p_max=p_max,
        method=used,
        converged=bool(converged),
        info=info,
    )
