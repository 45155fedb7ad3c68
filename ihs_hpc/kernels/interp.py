"""Weighted sums of source rows (numba): bilinear interpolation of whole series at once.

The series-major layout of :func:`ihs_hpc.ops.interp.apply_bilinear`: each target's value at every
time step is the weighted sum of its four source corners, here with the source stored one series per
row, so a target's whole series is built from four contiguous rows (stage 2 interpolates the 0.1°
meteorological baselines to the pixels of a tile this way, seed 000 §2.3.3). The corners are summed
in the order given, left to right, as :func:`numpy.einsum` sums them in ``apply_bilinear``.
"""
from __future__ import annotations

import numba


@numba.njit(cache=True)
def weighted_rows(src, index, weight, out):
    """``out[p, v, t] = sum_k weight[p, k] * src[v, index[p, k], t]`` (corners in order k = 0, 1, ...).

    Parameters
    ----------
    src : ndarray, shape (n_var, n_src, n_time), float64, C-contiguous
        Source series of each variable, one per row.
    index : ndarray, shape (n_dst, n_corners), int64
        Source rows of each target's corners.
    weight : ndarray, shape (n_dst, n_corners), float64
        Corner weights.
    out : ndarray, shape (n_dst, n_var, n_time), float64, C-contiguous
        Output.
    """
    n_var = src.shape[0]
    n_dst, n_corners = index.shape
    n_time = src.shape[2]
    for p in range(n_dst):
        for v in range(n_var):
            row = out[p, v]
            if n_corners == 4:  # bilinear: one pass, the four terms added left to right from zero
                w0, w1, w2, w3 = weight[p, 0], weight[p, 1], weight[p, 2], weight[p, 3]
                s0, s1 = src[v, index[p, 0]], src[v, index[p, 1]]
                s2, s3 = src[v, index[p, 2]], src[v, index[p, 3]]
                for t in range(n_time):
                    row[t] = (((0.0 + w0 * s0[t]) + w1 * s1[t]) + w2 * s2[t]) + w3 * s3[t]
                continue
            for t in range(n_time):
                row[t] = 0.0
            for k in range(n_corners):
                w = weight[p, k]
                s = src[v, index[p, k]]
                for t in range(n_time):
                    row[t] += w * s[t]
