"""Fused numba kernels of the per-tile PM2.5 model (one pass over each (time, row, col) cube).

Every output element is computed by the same scalar expression from its own inputs (no reductions
across pixels, no fast-math), so a pixel's value never depends on the tile that holds it.
"""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _bilinear(field, t, i0, wy, j0, wx):
    left = field[t, i0, j0] * (1.0 - wy) + field[t, i0 + 1, j0] * wy
    right = field[t, i0, j0 + 1] * (1.0 - wy) + field[t, i0 + 1, j0 + 1] * wy
    return left * (1.0 - wx) + right * wx


@numba.njit(cache=True)
def other_pm25(factor, iy, wy, ix, wx, bg_time, bg_map, blob_g, blob_amp, eps, sigma, add, floor, out):
    """Non-IHS PM2.5 of a tile into ``out`` (time, r, c) float32.

    ``factor`` (time, met_ny, met_nx): meteorological factor on the met grid; ``iy, wy`` / ``ix, wx``:
    the tile rows' / cols' left met index and weight; ``bg_time`` (time,), ``bg_map`` (r, c);
    ``blob_g`` (nb, r, c) urban blob shapes, ``blob_amp`` (nb, time); ``eps`` (time, r, c) N(0, 1).
    value = max(floor, v + eps·sqrt((sigma·v)² + add²)), v = factor·bg_time·bg_map + Σ amp·g.
    """
    n_t, n_r, n_c = out.shape
    nb = blob_g.shape[0]
    add2 = add * add
    for t in range(n_t):
        bt = np.float64(bg_time[t])
        for r in range(n_r):
            i0 = iy[r]
            y = np.float64(wy[r])
            for c in range(n_c):
                f = _bilinear(factor, t, i0, y, ix[c], np.float64(wx[c]))
                v = f * bt * np.float64(bg_map[r, c])
                for b in range(nb):
                    v += np.float64(blob_amp[b, t]) * np.float64(blob_g[b, r, c])
                sd = np.sqrt(sigma * sigma * v * v + add2)
                v = v + sd * np.float64(eps[t, r, c])
                out[t, r, c] = max(v, floor)


@numba.njit(cache=True)
def add_plume(emission, weight, lr, lc, mod, iy, wy, ix, wx, year_of_t, truth, own):
    """Add one source's plume to ``truth`` (time, r, c) float32 and its annual sums to ``own`` (year, k).

    contribution(t, k) = emission[t]·weight[k]·mod(t, pixel k), ``mod`` bilinear from the met grid;
    ``lr, lc``: tile-local row and col of the k members in the tile.
    """
    n_t = truth.shape[0]
    n_k = lr.shape[0]
    for t in range(n_t):
        e = np.float64(emission[t])
        y = year_of_t[t]
        for k in range(n_k):
            r = lr[k]
            c = lc[k]
            m = _bilinear(mod, t, iy[r], np.float64(wy[r]), ix[c], np.float64(wx[c]))
            v = np.float32(e * np.float64(weight[k]) * m)
            truth[t, r, c] = truth[t, r, c] + v
            own[y, k] += np.float64(v)


@numba.njit(cache=True)
def year_sums(arr, year_of_t, n_years):
    """Per-element sums over each year's days (axis 0) in float64, in time order: (n_years, ...)."""
    n_t = arr.shape[0]
    flat = arr.reshape(n_t, -1)
    out = np.zeros((n_years, flat.shape[1]), dtype=np.float64)
    for t in range(n_t):
        y = year_of_t[t]
        for j in range(flat.shape[1]):
            out[y, j] += np.float64(flat[t, j])
    return out
