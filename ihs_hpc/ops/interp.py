"""Bilinear interpolation from a coarse regular lat/lon grid (ERA5 0.1°) to fine cell centres.

Bilinear interpolation is linear in the values, so it commutes with any linear time operator — in
particular with non-robust STL: interpolating 0.1° met baselines per tile equals the baselines of
interpolated 1 km series, without ever storing 1 km meteorology.
"""
from __future__ import annotations

import numpy as np


def _axis_weights(src: np.ndarray, dst: np.ndarray, name: str):
    """Left index and weight of the right neighbour for each dst coordinate along one axis."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    descending = src[0] > src[-1]
    s = -src if descending else src
    d = -dst if descending else dst
    if d.min() < s[0] - 1e-9 or d.max() > s[-1] + 1e-9:
        raise ValueError(
            f"{name}: target range {dst.min():.4f}..{dst.max():.4f} is not inside the source grid "
            f"{src.min():.4f}..{src.max():.4f}; the meteorology grid must cover the analysis grid"
        )
    left = np.clip(np.searchsorted(s, d, side="right") - 1, 0, len(s) - 2)
    weight = (d - s[left]) / (s[left + 1] - s[left])
    return left, np.clip(weight, 0.0, 1.0)


def bilinear_weights(src_lat, src_lon, dst_lat, dst_lon):
    """Flat source indices ``(n_dst, 4)`` and weights ``(n_dst, 4)`` for every (dst_lat × dst_lon) cell.

    Source arrays are 1-D cell-centre coordinates in either order; targets are 1-D too and the
    result is ordered row-major over ``(len(dst_lat), len(dst_lon))``.
    """
    iy, wy = _axis_weights(src_lat, dst_lat, "latitude")
    ix, wx = _axis_weights(src_lon, dst_lon, "longitude")
    nx = len(src_lon)
    iy2, ix2 = np.meshgrid(iy, ix, indexing="ij")
    wy2, wx2 = np.meshgrid(wy, wx, indexing="ij")
    index = np.stack([iy2 * nx + ix2, iy2 * nx + ix2 + 1, (iy2 + 1) * nx + ix2, (iy2 + 1) * nx + ix2 + 1], axis=-1)
    weight = np.stack([(1 - wy2) * (1 - wx2), (1 - wy2) * wx2, wy2 * (1 - wx2), wy2 * wx2], axis=-1)
    return index.reshape(-1, 4), weight.reshape(-1, 4)


def apply_bilinear(values: np.ndarray, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Interpolate ``values (..., ny_src, nx_src)`` to ``(..., n_dst)`` with precomputed weights."""
    flat = values.reshape(values.shape[:-2] + (-1,))
    return np.einsum("...pk,pk->...p", flat[..., index], weight)
