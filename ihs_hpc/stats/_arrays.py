"""Input checks shared by the statistics functions of this sub-package (private)."""
from __future__ import annotations

import contextlib
import numbers

import numba
import numpy as np


def as_float64(values, name):
    """``values`` as a float64 ndarray; masked entries become NaN.

    Raises
    ------
    TypeError
        If ``values`` is not real numeric (bool, integer or float).
    """
    if isinstance(values, np.ma.MaskedArray):
        values = np.ma.asarray(values, dtype=np.float64).filled(np.nan)
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {array.dtype}")
    return array.astype(np.float64, copy=False)


def series_last(array, name, axis):
    """Move ``axis`` of ``array`` (the series axis) to the end.

    Raises
    ------
    ValueError
        If ``array`` is 0-d, ``axis`` is not an integer or out of range, or the series are
        empty.
    """
    if array.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (the series axis), got a scalar")
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise ValueError(f"axis must be an integer, got {axis!r}")
    if not -array.ndim <= axis < array.ndim:
        raise ValueError(f"axis {axis} is out of range for {name} with shape {array.shape}")
    moved = np.moveaxis(array, int(axis), -1)
    if moved.shape[-1] == 0:
        raise ValueError(f"{name} has no values along axis {axis} (shape {array.shape})")
    return moved


def rows_2d(array):
    """C-contiguous ``(rows, n)`` view or copy of ``array`` with shape ``(..., n)``."""
    return np.ascontiguousarray(array.reshape(-1, array.shape[-1]))


def reject_infinite(array, name):
    """Raise ``ValueError`` if ``array`` holds +-inf (NaN is allowed: it means missing)."""
    if np.isinf(array).any():
        raise ValueError(f"{name} must be finite or NaN (missing); it holds +-inf")


def check_alpha(alpha):
    """Validated significance level in (0, 1)."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha must be a real number, got {alpha!r}")
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    return alpha


def check_choice(value, name, choices):
    """``value`` lower-cased if it is one of ``choices`` (lower-case strings)."""
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value.lower()


def scalar_or_array(values, batch_shape):
    """Reshape a flat per-series result to ``batch_shape``; a 0-d result becomes a scalar."""
    values = np.asarray(values).reshape(batch_shape)
    return values[()] if values.ndim == 0 else values


@contextlib.contextmanager
def numba_threads(one_thread):
    """Run the numba parallel kernels of the block on one thread if ``one_thread``.

    For small inputs: a parallel region waits for every worker thread, which on a busy machine
    can take milliseconds, far longer than the work.  The setting is thread-local in numba and
    restored on exit.
    """
    previous = numba.get_num_threads()
    if one_thread:
        numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
