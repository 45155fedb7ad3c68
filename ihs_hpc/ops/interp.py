"""Bilinear interpolation from a regular lat/lon grid: the one implementation every module uses.

Used by stage 2 (0.1° meteorological baselines to the 1 km tile, seed 000 §2.3.3, DOI
10.3390/atmos15010131), ERA5 ingest (source files to the meteorology grid, ignoring missing corners),
the synthetic scene (met grid to the analysis grid; the coarse DEM at cell centres).

Three steps, each a function:

* :func:`axis_weights` — along one axis, the left source index and the weight of its right
  neighbour for every target coordinate (source in either order; weights within
  :data:`SNAP` of 0 or 1 are made exact, so an aligned grid is copied unchanged);
* :func:`corner_weights` — the four source corners (flat indices) and their weights
  ``(1-wy)(1-wx), (1-wy)wx, wy(1-wx), wy wx`` for targets on a grid (``iy[:, None]``,
  ``ix[None, :]``) or at scattered points (equal-shaped arrays); :func:`bilinear_weights` does
  both steps for a target grid;
* :func:`apply_bilinear` — the weighted sum of the corners, or with ``skipna`` the weighted mean of
  the finite corners (renormalised weights); :func:`apply_bilinear_rows` — the same weighted sum with
  the source stored one series per row (whole series at once, no ``(time, targets, 4)`` temporary).

Bilinear interpolation is linear in the values, so it commutes with any linear time operator — in
particular with non-robust STL: interpolating 0.1° met baselines per tile equals the baselines of
interpolated 1 km series, without ever storing 1 km meteorology.
"""
from __future__ import annotations

import numpy as np

__all__ = ["CoverageError", "SNAP", "axis_weights", "corner_weights", "bilinear_weights", "apply_bilinear",
           "apply_bilinear_rows"]

#: Weights closer than this to 0 or 1 are set to exactly 0 or 1 (coordinate rounding of aligned grids).
SNAP = 1e-9


class CoverageError(ValueError):
    """The target coordinates reach outside the source grid (beyond the tolerance)."""


def axis_weights(src, dst, *, name: str = "coordinate", tolerance: float = 1e-9):
    """Left source index and right-neighbour weight of every target coordinate along one axis.

    Parameters
    ----------
    src : array_like, shape (n,)
        Source cell centres, strictly ascending or strictly descending, ``n >= 2``.
    dst : array_like
        Target coordinates (any shape).
    name : str
        Axis name for error messages (``"latitude"``).
    tolerance : float
        How far (in coordinate units) a target may lie outside the source range; it then takes the
        edge value.

    Returns
    -------
    left : ndarray of int64, shape of ``dst``
        Index into ``src`` as given; the neighbour is ``left + 1``.
    weight : ndarray of float64, shape of ``dst``
        Weight of ``src[left + 1]`` in ``[0, 1]`` (``1 - weight`` for ``src[left]``).

    Raises
    ------
    ValueError
        Fewer than two source values, or source coordinates not monotonic.
    CoverageError
        A target outside the source range by more than ``tolerance``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 1 or src.size < 2:
        raise ValueError(f"the source {name} axis has {src.size} value(s); at least 2 are needed to interpolate")
    step = np.diff(src)
    if not (np.all(step > 0) or np.all(step < 0)):
        raise ValueError(f"source {name} coordinates are not monotonic")
    descending = step[0] < 0
    s = -src if descending else src  # negation is exact: the same weights as on the ascending axis
    d = -dst if descending else dst
    if d.size and (d.min() < s[0] - tolerance or d.max() > s[-1] + tolerance):
        raise CoverageError(f"{name}: target range {dst.min():.4f}..{dst.max():.4f} is not inside the source grid "
                            f"{src.min():.4f}..{src.max():.4f}; the source grid must cover the target grid")
    left = np.clip(np.searchsorted(s, d, side="right") - 1, 0, s.size - 2)
    weight = np.clip((d - s[left]) / (s[left + 1] - s[left]), 0.0, 1.0)
    weight[np.abs(weight) < SNAP] = 0.0
    weight[np.abs(weight - 1.0) < SNAP] = 1.0
    return left.astype(np.int64), weight


def corner_weights(iy, wy, ix, wx, n_cols: int):
    """Flat source indices and weights of the four corners of every target.

    Parameters
    ----------
    iy, wy : array_like of int, float
        Row index and row weight (:func:`axis_weights` along latitude).
    ix, wx : array_like of int, float
        Column index and column weight; the four arrays broadcast against each other
        (``iy[:, None]``, ``ix[None, :]`` for a target grid; equal shapes for scattered points).
    n_cols : int
        Number of source columns (of the array the flat indices address).

    Returns
    -------
    index : ndarray of int64, shape (n_targets, 4)
        ``row * n_cols + col`` of corners (row, col), (row, col+1), (row+1, col), (row+1, col+1),
        targets in row-major order of the broadcast shape.
    weight : ndarray of float64, shape (n_targets, 4)
        ``(1-wy)(1-wx), (1-wy) wx, wy (1-wx), wy wx``.
    """
    iy, wy, ix, wx = np.broadcast_arrays(np.asarray(iy, dtype=np.int64), np.asarray(wy, dtype=np.float64),
                                         np.asarray(ix, dtype=np.int64), np.asarray(wx, dtype=np.float64))
    top, bottom = iy * n_cols, (iy + 1) * n_cols
    index = np.stack([top + ix, top + ix + 1, bottom + ix, bottom + ix + 1], axis=-1)
    weight = np.stack([(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx], axis=-1)
    return index.reshape(-1, 4), weight.reshape(-1, 4)


def bilinear_weights(src_lat, src_lon, dst_lat, dst_lon, *, tolerance: float = 1e-9):
    """Flat source indices ``(n_dst, 4)`` and weights ``(n_dst, 4)`` for every (dst_lat × dst_lon) cell.

    Source arrays are 1-D cell-centre coordinates in either order; targets are 1-D too and the
    result is ordered row-major over ``(len(dst_lat), len(dst_lon))``.

    Parameters
    ----------
    src_lat, src_lon : array_like, 1-D
        Source cell centres.
    dst_lat, dst_lon : array_like, 1-D
        Target cell centres.
    tolerance : float
        As :func:`axis_weights`.

    Returns
    -------
    index, weight : ndarray, shape (len(dst_lat) * len(dst_lon), 4)
        As :func:`corner_weights`.

    Raises
    ------
    ValueError, CoverageError
        As :func:`axis_weights` (naming ``latitude`` or ``longitude``).
    """
    iy, wy = axis_weights(src_lat, dst_lat, name="latitude", tolerance=tolerance)
    ix, wx = axis_weights(src_lon, dst_lon, name="longitude", tolerance=tolerance)
    return corner_weights(iy[:, None], wy[:, None], ix[None, :], wx[None, :], len(src_lon))


def apply_bilinear(values: np.ndarray, index: np.ndarray, weight: np.ndarray, *, skipna: bool = False) -> np.ndarray:
    """Interpolate ``values (..., ny_src, nx_src)`` to ``(..., n_dst)`` with precomputed corner weights.

    Parameters
    ----------
    values : ndarray, shape (..., ny_src, nx_src)
        Source fields (leading axes: time, variables, ...).
    index, weight : ndarray, shape (n_dst, 4)
        From :func:`bilinear_weights` or :func:`corner_weights`.
    skipna : bool, default False
        False: ``sum_k weight_k v_k`` (a NaN corner gives NaN). True: the mean of the finite corners
        with positive weight, weighted by their weights (NaN where none is left).

    Returns
    -------
    ndarray of float64, shape (..., n_dst)
    """
    flat = np.asarray(values).reshape(values.shape[:-2] + (-1,))
    corners = flat[..., index]
    if not skipna:
        return np.einsum("...pk,pk->...p", corners, weight)
    corners = corners.astype(np.float64, copy=False)
    total = np.zeros(corners.shape[:-1])
    weights = np.zeros(corners.shape[:-1])
    for k in range(4):
        usable = np.isfinite(corners[..., k]) & (weight[:, k] > 0)
        total += np.where(usable, corners[..., k] * weight[:, k], 0.0)
        weights += np.where(usable, weight[:, k], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weights > 1e-9, total / weights, np.nan)


def apply_bilinear_rows(rows: np.ndarray, index: np.ndarray, weight: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Interpolate source series stored one per row to the targets: ``out[p] = sum_k weight[p, k] * rows[index[p, k]]``.

    The weighted sum of :func:`apply_bilinear` (``skipna=False``; same corners, same order of summation)
    in the series-major layout, for one variable or several sharing the corners. Used by stage 2 to
    build each pixel's meteorological regressors (seed 000 eq. 3) straight from the 0.1° baselines.

    Parameters
    ----------
    rows : ndarray, shape (n_src, n_time) or (n_var, n_src, n_time)
        Source series; ``n_src`` indexes the flattened source grid as ``index`` does.
    index, weight : ndarray, shape (n_dst, 4)
        From :func:`bilinear_weights` or :func:`corner_weights`.
    out : ndarray, float64, C-contiguous, optional
        ``(n_dst, n_time)``, or ``(n_dst, n_var, n_time)`` for 3-D ``rows``; a new array when None.

    Returns
    -------
    ndarray of float64, shape (n_dst, n_time) or (n_dst, n_var, n_time)
    """
    from ..kernels.interp import weighted_rows

    rows = np.ascontiguousarray(rows, dtype=np.float64)
    if rows.ndim not in (2, 3):
        raise ValueError(f"rows must be (n_src, n_time) or (n_var, n_src, n_time), got shape {rows.shape}")
    index = np.ascontiguousarray(index, dtype=np.int64)
    weight = np.ascontiguousarray(weight, dtype=np.float64)
    if index.shape != weight.shape or index.ndim != 2:
        raise ValueError(f"index and weight must have the same (n_dst, corners) shape, got {index.shape} and {weight.shape}")
    src = rows if rows.ndim == 3 else rows[None]
    if index.size and (index.min() < 0 or index.max() >= src.shape[1]):
        raise ValueError(f"index refers to source rows outside 0..{src.shape[1] - 1}")
    shape = (index.shape[0],) + ((src.shape[0],) if rows.ndim == 3 else ()) + (src.shape[2],)
    if out is None:
        out = np.empty(shape)
    elif out.shape != shape or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be C-contiguous float64 of shape {shape}, got {out.dtype} {out.shape}")
    weighted_rows(src, index, weight, out.reshape(index.shape[0], src.shape[0], src.shape[2]))
    return out
