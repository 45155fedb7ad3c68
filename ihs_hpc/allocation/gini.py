"""Lorenz curves, Gini coefficients and contribution coefficients of PM2.5 against indices.

Seed 003 (Xie et al. 2018, "Optimal allocation of control targets for PM2.5 pollution in China's
Beijing-Tianjin-Hebei regions"), section "Methods":

* eq. 1: ``G_j = 1 - sum_i (X_j(i) - X_j(i-1)) (Y_j(i) + Y_j(i-1))`` — :func:`gini`, on the
  points of :func:`lorenz_curve`;
* eq. 2: ``C_ij = (M_ij / M_j) / (W_i / W)`` — :func:`contribution_coefficient`.

Ordering convention (the paper's): for index ``j`` the cities are sorted by PM2.5 per unit of
the index, ``W_i / M_ij``, in increasing order (ties keep the input order; they do not change
``G``).  ``X_j(i)`` is the cumulative share of index ``j`` and ``Y_j(i)`` the cumulative share of
PM2.5 over the first ``i`` cities of that order, with ``(X_j(0), Y_j(0)) = (0, 0)``.  With this
order the Lorenz curve is convex and lies on or below the diagonal, so ``0 <= G_j < 1``; ``G_j = 0``
exactly when PM2.5 is proportional to the index.  It is also the order that makes the trapezoid
sum largest, so ``G_j = sum_{a<b} |x_a y_b - x_b y_a|`` with shares ``x = M_j / sum M_j`` and
``y = W / sum W`` (the Gini of ``y/x`` weighted by ``x``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ihs_hpc.allocation._inputs import align_inputs

__all__ = ["gini", "lorenz_curve", "contribution_coefficient", "gini_of_arrays"]


def _lorenz_points(pm25: np.ndarray, index_values: np.ndarray):
    """Order and cumulative shares of eq. 1 for every index column.

    Parameters
    ----------
    pm25 : ndarray, shape (n,)
    index_values : ndarray, shape (n, k)

    Returns
    -------
    order : ndarray of int, shape (n, k)
        City positions in increasing PM2.5 per unit index, per column.
    cum_index_share, cum_pm25_share : ndarray, shape (n + 1, k)
        ``X_j(i)`` and ``Y_j(i)`` for ``i = 0..n`` (row 0 is the origin).
    """
    pm25_per_index = pm25[:, None] / index_values
    order = np.argsort(pm25_per_index, axis=0, kind="stable")
    index_share = index_values / index_values.sum(axis=0)
    pm25_share = pm25 / pm25.sum()
    k = index_values.shape[1]
    zeros = np.zeros((1, k))
    cum_index_share = np.vstack([zeros, np.cumsum(np.take_along_axis(index_share, order, 0), 0)])
    cum_pm25_share = np.vstack([zeros, np.cumsum(pm25_share[order], axis=0)])
    return order, cum_index_share, cum_pm25_share


def gini_of_arrays(pm25: np.ndarray, index_values: np.ndarray) -> np.ndarray:
    """Gini coefficient of eq. 1 on validated arrays (no checks; see :func:`gini`).

    Parameters
    ----------
    pm25 : ndarray, shape (n,)
        Positive PM2.5 per city.
    index_values : ndarray, shape (n, k)
        Positive index values per city and index.

    Returns
    -------
    ndarray, shape (k,)
        ``G_j`` per index column.
    """
    _, cum_x, cum_y = _lorenz_points(pm25, index_values)
    return 1.0 - np.sum(np.diff(cum_x, axis=0) * (cum_y[1:] + cum_y[:-1]), axis=0)


def gini(pm25, index):
    """Gini coefficient of PM2.5 against one or several indices by the trapezoid rule (eq. 1).

    ``G_j = 1 - sum_{i=1..n} (X_j(i) - X_j(i-1)) * (Y_j(i) + Y_j(i-1))`` with cities sorted by
    PM2.5 per unit of index ``j`` in increasing order, ``X`` the cumulative index share and ``Y``
    the cumulative PM2.5 share (module docstring).

    Parameters
    ----------
    pm25 : pandas.Series or array-like, shape (n,)
        PM2.5 concentration per city (positive); a Series is matched to ``index`` by city name.
    index : pandas.DataFrame, pandas.Series or array-like, shape (n,) or (n, k)
        Positive index values per city (rows) for one or several indices (columns).

    Returns
    -------
    float, pandas.Series or ndarray
        A float for a 1-D ``index``; one value per column otherwise (a Series indexed by column
        name for a DataFrame).

    Raises
    ------
    ValueError
        On mismatched or duplicate city names, or non-positive / non-finite values.

    Examples
    --------
    >>> round(gini([1.0, 3.0], [1.0, 1.0]), 12)
    0.25
    """
    inputs = align_inputs(pm25, index)
    return inputs.per_index(gini_of_arrays(inputs.pm25, inputs.index_values))


def lorenz_curve(pm25, index):
    """Points of the Lorenz curve of eq. 1 (PM2.5 share against index share).

    Parameters
    ----------
    pm25 : pandas.Series or array-like, shape (n,)
        PM2.5 concentration per city (positive).
    index : pandas.DataFrame, pandas.Series or array-like, shape (n,) or (n, k)
        Positive index values per city for one or several indices.

    Returns
    -------
    pandas.DataFrame or dict of str to pandas.DataFrame
        For a 1-D ``index`` one DataFrame, else one per index name. Each has ``n + 1`` rows — the
        origin, then the cities in increasing PM2.5 per unit index — and the columns ``city``
        (None on the origin row), ``pm25_per_index`` (NaN on the origin row),
        ``cum_index_share`` (``X``) and ``cum_pm25_share`` (``Y``).

    Raises
    ------
    ValueError
        On mismatched or duplicate city names, or non-positive / non-finite values.
    """
    inputs = align_inputs(pm25, index)
    order, cum_x, cum_y = _lorenz_points(inputs.pm25, inputs.index_values)
    ratio = inputs.pm25[:, None] / inputs.index_values
    curves = {}
    for j, name in enumerate(inputs.index_names):
        cities = [None] + list(inputs.cities[order[:, j]])
        curves[name] = pd.DataFrame(
            {
                "city": pd.Series(cities, dtype=object),
                "pm25_per_index": np.concatenate([[np.nan], ratio[order[:, j], j]]),
                "cum_index_share": cum_x[:, j],
                "cum_pm25_share": cum_y[:, j],
            }
        )
    if inputs.index_kind in ("series", "array1d"):
        return curves[inputs.index_names[0]]
    return curves


def contribution_coefficient(pm25, index):
    """Contribution coefficient of every city for every index (eq. 2).

    ``C_ij = (M_ij / M_j) / (W_i / W)``: city ``i``'s share of index ``j`` (``M_j`` the sum over
    cities) divided by its share of PM2.5 (``W`` the sum over cities).  ``C_ij > 1`` means the city
    carries more of the index than of the pollution (the paper reads it as fair), ``C_ij < 1``
    the opposite.

    Parameters
    ----------
    pm25 : pandas.Series or array-like, shape (n,)
        PM2.5 concentration per city ``W_i`` (positive).
    index : pandas.DataFrame, pandas.Series or array-like, shape (n,) or (n, k)
        Positive index values ``M_ij``.

    Returns
    -------
    pandas.DataFrame, pandas.Series or ndarray
        Same kind and shape as ``index``, rows in the order of ``pm25`` when both are labelled.

    Raises
    ------
    ValueError
        On mismatched or duplicate city names, or non-positive / non-finite values.
    """
    inputs = align_inputs(pm25, index)
    index_share = inputs.index_values / inputs.index_values.sum(axis=0)
    pm25_share = inputs.pm25 / inputs.pm25.sum()
    return inputs.per_city_and_index(index_share / pm25_share[:, None])
