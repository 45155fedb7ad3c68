"""Pearson correlation with its p-value (seed 000, section 2.3.5, eq. 12), batched.

Semantics of ``scipy.stats.pearsonr``; NaN pairs are dropped.  Vectorised numpy over the
leading axes (no per-series loop is needed: every term is a sum along the series axis).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import special

from ihs_hpc.stats._arrays import (
    as_float64,
    check_choice,
    reject_infinite,
    scalar_or_array,
    series_last,
)

__all__ = ["PearsonResult", "pearson"]

_ALTERNATIVES = {"two-sided", "less", "greater"}


class PearsonResult(NamedTuple):
    """Result of :func:`pearson` (unpacks like scipy's ``PearsonRResult``)."""

    #: Pearson's r (eq. 12)
    statistic: float | np.ndarray
    #: p-value of the test of r = 0 for the chosen alternative
    pvalue: float | np.ndarray


def pearson(x, y, alternative="two-sided", axis=-1):
    """Pearson's correlation coefficient and p-value (seed 000, eq. 12).

    ``r = sum (x - xbar)(y - ybar) / sqrt(sum (x - xbar)^2 sum (y - ybar)^2)`` over the pairs
    where neither value is NaN, computed like ``scipy.stats.pearsonr`` (deviations scaled by
    their largest magnitude before the norms, r clipped to [-1, 1]).  Under independence of
    normal variables ``r`` follows a beta distribution on [-1, 1] with both shapes ``n/2 - 1``;
    the two-sided p-value is ``2 * betaincc(n/2 - 1, n/2 - 1, (|r| + 1) / 2)`` (scipy's exact
    test).  As in scipy: a constant series gives NaN, and ``n = 2`` pairs give ``r = +-1`` with
    ``p = 1``.  Fewer than two valid pairs give NaN.

    Parameters
    ----------
    x, y : array_like
        Same length along ``axis``; the other axes broadcast against each other (batch axes).
        NaN = missing: a pair with a NaN in either series is dropped.
    alternative : {"two-sided", "less", "greater"}, default "two-sided"
        ``"less"``: the correlation is negative; ``"greater"``: positive.
    axis : int, default -1

    Returns
    -------
    PearsonResult
        ``statistic`` (r) and ``pvalue``: floats for 1-D input, arrays of the broadcast batch
        shape otherwise.

    Raises
    ------
    ValueError
        If the series lengths differ, the batch shapes do not broadcast, ``axis`` or
        ``alternative`` is invalid, or the input holds +-inf.
    TypeError
        If the input is not real numeric.
    """
    alternative = check_choice(alternative, "alternative", _ALTERNATIVES)
    x = series_last(as_float64(x, "x"), "x", axis)
    y = series_last(as_float64(y, "y"), "y", axis)
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"x and y must have the same length along axis {axis}, got {x.shape[-1]} and "
            f"{y.shape[-1]}"
        )
    try:
        x, y = np.broadcast_arrays(x, y)
    except ValueError:
        raise ValueError(
            f"the batch (leading) shapes of x {x.shape[:-1]} and y {y.shape[:-1]} do not "
            "broadcast"
        ) from None
    reject_infinite(x, "x")
    reject_infinite(y, "y")
    batch_shape = x.shape[:-1]

    valid = ~(np.isnan(x) | np.isnan(y))
    n = valid.sum(axis=-1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_dev = _deviations(x, valid, n)
        y_dev = _deviations(y, valid, n)
        x_unit = x_dev / _norm(x_dev)[..., None]
        y_unit = y_dev / _norm(y_dev)[..., None]
        r = np.clip(np.einsum("...i,...i->...", x_unit, y_unit), -1.0, 1.0)
        r = np.where(_constant(x, valid) | _constant(y, valid) | (n < 2), np.nan, r)
        shape_ab = n / 2 - 1
        if alternative == "two-sided":
            pvalue = 2 * special.betaincc(shape_ab, shape_ab, (np.abs(r) + 1) / 2)
        elif alternative == "less":
            pvalue = special.betainc(shape_ab, shape_ab, (r + 1) / 2)
        else:
            pvalue = special.betaincc(shape_ab, shape_ab, (r + 1) / 2)
    two = n == 2
    r = np.where(two, np.round(r), r)
    pvalue = np.where(two, np.where(np.isnan(r), np.nan, 1.0), pvalue)
    pvalue = np.where(np.isnan(r), np.nan, pvalue)
    return PearsonResult(scalar_or_array(r, batch_shape), scalar_or_array(pvalue, batch_shape))


def _deviations(values, valid, n):
    """``values - mean`` over the valid entries, 0 elsewhere."""
    mean = np.where(valid, values, 0.0).sum(axis=-1) / n
    return np.where(valid, values - mean[..., None], 0.0)


def _norm(deviations):
    """Euclidean norm along the last axis, scaled first by the largest magnitude (as scipy)."""
    largest = np.abs(deviations).max(axis=-1)
    return largest * np.sqrt(np.square(deviations / largest[..., None]).sum(axis=-1))


def _constant(values, valid):
    """True where all valid entries of a series are equal."""
    low = np.where(valid, values, np.inf).min(axis=-1)
    high = np.where(valid, values, -np.inf).max(axis=-1)
    return low == high
