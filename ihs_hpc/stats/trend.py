"""Mann–Kendall trend test and Sen's slope (seed 000, section 2.3.5), batched.

Public numpy API over :mod:`ihs_hpc.kernels.trend`, with the semantics of
``pymannkendall.original_test`` and ``pymannkendall.sens_slope`` (plus the slope's confidence
interval of Gilbert 1987 / ``scipy.stats.theilslopes``).  Leading axes are batch axes (e.g.
``(ny, nx, time)`` gives per-pixel trend maps).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import special

from ihs_hpc.kernels.trend import TREND_COLUMNS, trend_rows
from ihs_hpc.stats._arrays import (
    as_float64,
    check_alpha,
    numba_threads,
    reject_infinite,
    rows_2d,
    scalar_or_array,
    series_last,
)

__all__ = ["MannKendallResult", "SensSlopeResult", "mann_kendall", "sens_slope"]


class MannKendallResult(NamedTuple):
    """Result of :func:`mann_kendall`, in the order of ``pymannkendall.original_test``."""

    #: "increasing", "decreasing" or "no trend"
    trend: str | np.ndarray
    #: True where the trend is significant at level ``alpha``
    h: bool | np.ndarray
    #: two-sided p-value
    p: float | np.ndarray
    #: normalised test statistic (continuity-corrected)
    z: float | np.ndarray
    #: Kendall's tau, ``S / (n (n - 1) / 2)``
    tau: float | np.ndarray
    #: Mann–Kendall score S
    s: float | np.ndarray
    #: tie-corrected variance of S
    var_s: float | np.ndarray
    #: Sen's slope (per time step)
    slope: float | np.ndarray
    #: intercept of the Kendall–Theil line, ``median(x) - median(t) * slope``
    intercept: float | np.ndarray


class SensSlopeResult(NamedTuple):
    """Result of :func:`sens_slope`."""

    #: Sen's slope: median of the pairwise slopes (per time step)
    slope: float | np.ndarray
    #: intercept of the Kendall–Theil line (Conover 1980), ``median(x) - median(t) * slope``
    intercept: float | np.ndarray
    #: lower limit of the (1 - alpha) confidence interval of the slope
    slope_low: float | np.ndarray
    #: upper limit of the (1 - alpha) confidence interval of the slope
    slope_high: float | np.ndarray


def _trend_columns(x, axis, z_crit):
    """Kernel output for the series of ``x`` along ``axis``: a dict of flat columns
    (:data:`~ihs_hpc.kernels.trend.TREND_COLUMNS`) and the batch shape."""
    data = series_last(as_float64(x, "x"), "x", axis)
    reject_infinite(data, "x")
    rows = rows_2d(data)
    out = np.empty((rows.shape[0], len(TREND_COLUMNS)))
    with numba_threads(rows.shape[0] == 1):
        trend_rows(rows, z_crit, out)
    return dict(zip(TREND_COLUMNS, out.T)), data.shape[:-1]


def mann_kendall(x, alpha=0.05, axis=-1):
    """Mann–Kendall trend test with tie-corrected variance and Sen's slope.

    Same results as ``pymannkendall.original_test(series, alpha)`` for every series along
    ``axis``: NaN values are dropped (the score is computed on the remaining values in time
    order) and

    * ``S = sum_{i<j} sign(x_j - x_i)``, ``var(S) = [n(n-1)(2n+5) - sum_p t_p(t_p-1)(2t_p+5)]/18``
      over tie groups of size ``t_p``; ``tau = S / (n (n - 1) / 2)``;
    * ``z = (S - 1) / sqrt(var S)`` if ``S > 0``, ``(S + 1) / sqrt(var S)`` if ``S < 0``, else 0;
      ``p = 2 (1 - Phi(|z|))`` (so p underflows to 0 for ``|z|`` above about 8.3, as there);
      ``h = |z| > Phi^-1(1 - alpha / 2)``; trend "increasing"/"decreasing" when ``h`` and
      ``z`` is positive/negative, else "no trend";
    * ``slope``, ``intercept`` as :func:`sens_slope` (pairwise slopes use the ORIGINAL time
      positions of the non-NaN values, like ``pymannkendall.sens_slope``).

    ``S`` comes from a merge sort counting inversions and the slope from a window search over
    the pairwise slopes (see :mod:`ihs_hpc.kernels.trend`): O(n log n) rather than O(n^2).

    Parameters
    ----------
    x : array_like
        Series along ``axis``; other axes are batch axes.  NaN = missing; +-inf is rejected.
    alpha : float, default 0.05
        Significance level.
    axis : int, default -1
        Time axis.

    Returns
    -------
    MannKendallResult
        ``trend, h, p, z, tau, s, var_s, slope, intercept``: scalars for a 1-D series, arrays of
        the batch shape otherwise.  A series with fewer than two valid values gets NaN numbers,
        ``h = False`` and "no trend" (pymannkendall raises there).

    Raises
    ------
    ValueError
        If ``alpha`` is not in (0, 1), ``axis`` is invalid, the series are empty or hold +-inf.
    TypeError
        If ``x`` is not real numeric.
    """
    alpha = check_alpha(alpha)
    columns, batch_shape = _trend_columns(x, axis, 0.0)  # no interval needed
    s, var_s, n = columns["s"], columns["var_s"], columns["count"]
    slope, intercept = columns["slope"], columns["intercept"]
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = s / (0.5 * n * (n - 1))
        sd = np.sqrt(var_s)
        z = np.where(s > 0, (s - 1) / sd, np.where(s < 0, (s + 1) / sd, 0.0))
    z = np.where(np.isnan(s), np.nan, z)
    p = 2 * (1 - special.ndtr(np.abs(z)))
    h = np.abs(z) > special.ndtri(1 - alpha / 2)
    trend = np.where(h & (z < 0), "decreasing", np.where(h & (z > 0), "increasing", "no trend"))
    values = (trend, h, p, z, tau, s, var_s, slope, intercept)
    result = [scalar_or_array(v, batch_shape) for v in values]
    if not batch_shape:
        result[0] = str(result[0])
        result[1] = bool(result[1])
    return MannKendallResult(*result)


def sens_slope(x, alpha=0.05, axis=-1):
    """Sen's slope, Kendall–Theil intercept and the slope's (1 - alpha) confidence interval.

    ``slope`` and ``intercept`` equal ``pymannkendall.sens_slope(series)``: the slope is the
    median of the pairwise slopes ``(x_j - x_i) / (j - i)`` over pairs of non-NaN values, with
    ``i``, ``j`` their ORIGINAL positions along ``axis`` (NaN are dropped but the time axis is
    kept), and the intercept is ``median(x) - median(positions of non-NaN values) * slope``.

    Confidence interval (Gilbert 1987, section 16.5; Sen 1968): with ``N`` pairwise slopes
    sorted ascending and ``C = z_{1 - alpha/2} sqrt(var S)`` (``var S`` tie-corrected as in
    :func:`mann_kendall`), ``M1 = (N - C) / 2`` and ``M2 = (N + C) / 2``; the limits are the
    ``M1``-th and ``(M2 + 1)``-th smallest slopes (1-based).  ``M1`` and ``M2`` are rounded to
    the nearest integer, halves to even (``numpy.round``), and the ranks clipped to ``[1, N]``,
    without interpolation -- exactly ``scipy.stats.theilslopes(x, positions, 1 - alpha)``'s
    ``low_slope`` and ``high_slope``.  (scipy forms ``var S`` as ``1/18. * (...)`` instead of
    ``(...)/18``; the two can differ in the last bit, which matters only if ``M1`` or ``M2`` is
    within about 1e-12 of a half-integer.)

    Order statistics of the slopes come from a window search (see
    :mod:`ihs_hpc.kernels.trend`); every value returned is one of the pairwise slopes, bit for
    bit.

    Parameters
    ----------
    x : array_like
        Series along ``axis``; other axes are batch axes.  NaN = missing; +-inf is rejected.
    alpha : float, default 0.05
        1 - confidence level of the interval.
    axis : int, default -1
        Time axis.

    Returns
    -------
    SensSlopeResult
        ``slope, intercept, slope_low, slope_high``: floats for a 1-D series, arrays of the
        batch shape otherwise; NaN for series with fewer than two valid values.

    Raises
    ------
    ValueError
        If ``alpha`` is not in (0, 1), ``axis`` is invalid, the series are empty or hold +-inf.
    TypeError
        If ``x`` is not real numeric.
    """
    alpha = check_alpha(alpha)
    z_crit = -float(special.ndtri(alpha / 2))  # as scipy.stats.theilslopes: -norm.ppf(alpha/2)
    columns, batch_shape = _trend_columns(x, axis, z_crit)
    names = ("slope", "intercept", "slope_low", "slope_high")
    return SensSlopeResult(*(scalar_or_array(columns[name], batch_shape) for name in names))
