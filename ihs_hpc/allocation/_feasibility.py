"""Feasible reduction plans for eqs. 4 and 6 of seed 003, shared by the plan solvers.

A plan is a vector of per-city reduction rates ``r``.  Eq. 4 (total) reads
``sum_i P_i r_i = q sum_i P_i`` and eq. 6 (bounds) ``p_min <= r_i <= p_max``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["enforce_total_and_bounds", "random_ray_plans", "fixed_total_gini"]


def enforce_total_and_bounds(
    rates: np.ndarray, pm25: np.ndarray, q: float, p_min: float, p_max: float
) -> np.ndarray:
    """Move a nearly feasible plan onto eqs. 4 and 6 to float rounding.

    Rates are clipped to ``[p_min, p_max]`` (eq. 6); the remaining gap to the total of eq. 4 is
    spread over the cities in proportion to their room before the bound it moves towards, so no
    bound is crossed.  A solver's answer moves by about its feasibility tolerance.

    Parameters
    ----------
    rates : ndarray, shape (n,)
        Reduction rates, feasible up to a solver tolerance.
    pm25 : ndarray, shape (n,)
        Initial PM2.5 per city ``P_i``.
    q, p_min, p_max : float
        Total reduction rate and rate bounds, with ``p_min <= q <= p_max``.

    Returns
    -------
    ndarray, shape (n,)
        Rates within the bounds whose PM2.5-weighted mean is ``q`` to float rounding.
    """
    rates = np.clip(np.asarray(rates, dtype=np.float64), p_min, p_max)
    target = q * pm25.sum()
    for _ in range(4):
        gap = target - pm25 @ rates
        if gap == 0.0:
            break
        room = (p_max - rates) if gap > 0 else (rates - p_min)
        capacity = pm25 @ room
        if capacity <= 0.0:
            break
        rates = np.clip(rates + np.sign(gap) * min(1.0, abs(gap) / capacity) * room, p_min, p_max)
    return rates


def random_ray_plans(
    pm25: np.ndarray, q: float, p_min: float, p_max: float, count: int, rng: np.random.Generator
) -> np.ndarray:
    """Random plans that satisfy eqs. 4 and 6, drawn along rays from the uniform plan.

    Each plan is ``q + t d``: ``d`` a Gaussian direction projected onto ``sum_i P_i d_i = 0``,
    ``t`` uniform between 0 and the largest step that keeps every rate in ``[p_min, p_max]``.
    Row 0 is the uniform plan ``r_i = q`` itself.

    Parameters
    ----------
    pm25 : ndarray, shape (n,)
        Initial PM2.5 per city.
    q, p_min, p_max : float
        Total reduction rate and rate bounds, with ``p_min <= q <= p_max``.
    count : int
        Number of plans (>= 1).
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (count, n)
    """
    n = pm25.size
    directions = rng.standard_normal((count, n))
    directions -= np.outer(directions @ pm25 / (pm25 @ pm25), pm25)
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(directions > 0, (p_max - q) / directions,
                        np.where(directions < 0, (p_min - q) / directions, np.inf))
    max_step = room.min(axis=1)
    max_step[~np.isfinite(max_step)] = 0.0
    steps = rng.uniform(0.0, 1.0, count) * max_step
    plans = q + steps[:, None] * directions
    plans[0] = q
    return np.clip(plans, p_min, p_max)


def fixed_total_gini(
    rates: np.ndarray, pm25: np.ndarray, index_shares: np.ndarray, total_after: float
):
    """Gini per index of a plan on the eq. 4 surface, with its (sub)gradient in the rates.

    With the total ``T = (1 - q) sum P`` fixed by eq. 4 the post-reduction PM2.5 shares are
    ``y_i = P_i (1 - r_i) / T`` and eq. 1 equals ``G_j = sum_{a<b} |x_ja y_b - x_jb y_a|``
    (module :mod:`ihs_hpc.allocation.gini`), which is convex and piecewise linear in ``r``.

    Parameters
    ----------
    rates : ndarray, shape (n,)
    pm25 : ndarray, shape (n,)
    index_shares : ndarray, shape (n, k)
        Index shares ``x_ij`` (each column sums to 1).
    total_after : float
        ``T = (1 - q) sum_i P_i``.

    Returns
    -------
    gini : ndarray, shape (k,)
    gradient : ndarray, shape (k, n)
        ``dG_j / dr_i`` (a subgradient where two cities tie in PM2.5 per unit index).
    """
    dy_dr = -pm25 / total_after
    y = pm25 * (1.0 - rates) / total_after
    # cross[j, a, b] = x_ja y_b - x_jb y_a
    x = index_shares.T
    cross = x[:, :, None] * y[None, None, :] - x[:, None, :] * y[None, :, None]
    gini = 0.5 * np.abs(cross).sum(axis=(1, 2))
    sign = np.sign(cross)
    # dG/dy_c = sum_a x_a sign(x_a y_c - x_c y_a) = sum_a x_a sign(cross[a, c])
    grad_y = np.einsum("ja,jac->jc", x, sign)
    return gini, grad_y * dy_dr[None, :]
