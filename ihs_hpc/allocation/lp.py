"""Exact minimised-Gini plan (seed 003, eqs. 3–6) as one linear programme.

Why a linear programme.  On the plans that satisfy the total of eq. 4 the post-reduction total
``T = (1 - q) sum_i P_i`` is fixed, so the PM2.5 shares ``y_i = P_i (1 - r_i) / T`` are affine in
the reduction rates ``r``.  Eq. 1 with the paper's ordering (increasing PM2.5 per unit index)
equals ``G_j = sum_{a<b} |x_ja y_b - x_jb y_a|`` (see :mod:`ihs_hpc.allocation.gini`): the
city ordering picks, for every pair, the smaller of the two cross products, which is how the
objective "changes form when the ordering changes".  A sum of absolute values of affine
functions is convex and piecewise linear, so eqs. 3–6 are a convex problem that an epigraph
variable per pair turns into a linear programme::

    minimise    sum_j sum_{a<b} u_jab                                   (eq. 3)
    subject to  -u_jab <= x_ja y_b(r) - x_jb y_a(r) <= u_jab
                sum_i P_i r_i = q sum_i P_i                             (eq. 4)
                sum_{a<b} u_jab <= G_0j - margin                        (eq. 5)
                p_min <= r_i <= p_max                                   (eq. 6)

Its optimum is the global optimum of eqs. 3–6 (no multi-start needed), found by HiGHS through
:func:`scipy.optimize.linprog`.  Size: ``n + k n (n - 1) / 2`` variables and ``k n (n - 1) + k + 1``
constraints — 325 and 629 for the paper's 13 cities and 4 indices.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

__all__ = ["LPSolution", "solve_min_gini_lp"]


@dataclass(frozen=True)
class LPSolution:
    """Raw answer of :func:`solve_min_gini_lp`.

    Attributes
    ----------
    rates : ndarray, shape (n,) or None
        Reduction rates (None when HiGHS found no solution).
    status : int
        :func:`scipy.optimize.linprog` status (0 = optimal).
    message : str
        HiGHS message.
    objective : float
        LP objective ``sum_j G_j`` (NaN without a solution).
    iterations : int
        Simplex / IPM iterations.
    """

    rates: np.ndarray | None
    status: int
    message: str
    objective: float
    iterations: int


def _pair_rows(y_per_rate: np.ndarray, y_at_zero: np.ndarray, shares: np.ndarray, n: int):
    """Coefficients of ``x_a y_b - x_b y_a = const + coef_a r_a + coef_b r_b`` for all pairs."""
    a, b = np.triu_indices(n, 1)
    const = shares[a] * y_at_zero[b] - shares[b] * y_at_zero[a]
    coef_a = -shares[b] * y_per_rate[a]
    coef_b = shares[a] * y_per_rate[b]
    return a, b, const, coef_a, coef_b


def solve_min_gini_lp(
    pm25: np.ndarray,
    index_values: np.ndarray,
    q: float,
    p_min: float,
    p_max: float,
    gini_caps: np.ndarray,
    tolerance: float = 1e-10,
) -> LPSolution:
    """Solve eqs. 3–6 of seed 003 as a linear programme (module docstring).

    Parameters
    ----------
    pm25 : ndarray, shape (n,)
        Initial PM2.5 per city ``W_0(i)`` (positive).
    index_values : ndarray, shape (n, k)
        Positive index values per city and index.
    q : float
        Total reduction rate, ``0 <= q < 1`` (eq. 4).
    p_min, p_max : float
        Bounds on each city's reduction rate (eq. 6).
    gini_caps : ndarray, shape (k,)
        Right-hand side of eq. 5 per index (``G_0j``, possibly lowered by a safety margin).
    tolerance : float, optional
        HiGHS primal and dual feasibility tolerance.

    Returns
    -------
    LPSolution
    """
    n, k = index_values.shape
    shares = index_values / index_values.sum(axis=0)
    total_after = (1.0 - q) * pm25.sum()
    y_at_zero = pm25 / total_after  # y_i = y_at_zero_i + y_per_rate_i r_i
    y_per_rate = -y_at_zero
    n_pairs = n * (n - 1) // 2

    rows, cols, vals, rhs = [], [], [], []
    row = 0
    for j in range(k):
        a, b, const, coef_a, coef_b = _pair_rows(y_per_rate, y_at_zero, shares[:, j], n)
        u_cols = n + j * n_pairs + np.arange(n_pairs)
        for sign in (1.0, -1.0):  # sign * (const + coef_a r_a + coef_b r_b) - u <= 0
            r_idx = row + np.arange(n_pairs)
            rows += [r_idx, r_idx, r_idx]
            cols += [a, b, u_cols]
            vals += [sign * coef_a, sign * coef_b, -np.ones(n_pairs)]
            rhs.append(-sign * const)
            row += n_pairs
    for j in range(k):  # eq. 5
        rows.append(np.full(n_pairs, row))
        cols.append(n + j * n_pairs + np.arange(n_pairs))
        vals.append(np.ones(n_pairs))
        rhs.append(np.array([gini_caps[j]]))
        row += 1
    a_ub = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(row, n + k * n_pairs),
    )
    b_ub = np.concatenate(rhs)
    a_eq = sp.csr_matrix(np.concatenate([pm25, np.zeros(k * n_pairs)])[None, :])
    b_eq = np.array([q * pm25.sum()])
    cost = np.concatenate([np.zeros(n), np.ones(k * n_pairs)])
    bounds = [(p_min, p_max)] * n + [(0.0, None)] * (k * n_pairs)
    res = linprog(
        cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs",
        options={"primal_feasibility_tolerance": tolerance,
                 "dual_feasibility_tolerance": tolerance},
    )
    rates = None if res.x is None else np.asarray(res.x[:n], dtype=np.float64)
    return LPSolution(
        rates=rates,
        status=int(res.status),
        message=str(res.message),
        objective=float(res.fun) if res.fun is not None else float("nan"),
        iterations=int(getattr(res, "nit", 0) or 0),
    )
