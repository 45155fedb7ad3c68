"""Sums behind global Moran's I (numba kernels), without a weights matrix.

Seed 000, eq. 13: ``I = n / S0 * sum_ij w_ij z_i z_j / sum_i z_i^2`` with ``z = x - mean(x)``.
The moments under normality and randomisation (Cliff & Ord 1981, as in ``esda.Moran``) also
need ``S1 = 1/2 sum_ij (w_ij + w_ji)^2``, ``S2 = sum_i (w_i. + w_.i)^2`` and the kurtosis term
``sum z^4``.  For a raster these come from stencil loops over each cell's rook (4) or queen (8)
neighbours; for arbitrary neighbour lists from one pass over CSR arrays (and their transpose).

Missing cells (NaN) are not observations and not neighbours.  A valid cell left without valid
neighbours is an *island*: as in libpysal/esda it stays an observation (it counts in ``n``, the
mean, ``sum z^2`` and ``sum z^4``) with an all-zero row and column of weights (row
standardisation leaves an empty row empty), so it adds nothing to ``S0``, ``S1``, ``S2`` or the
cross-product.

Both kernels fill ``out`` (float64, length 9) with
``n, n_islands, mean, sum z^2, sum z^4, sum_ij w_ij z_i z_j, S0, S1, S2``.
"""
from __future__ import annotations

import math

import numba
import numpy as np

#: neighbour offsets (row, column): the first 4 are rook contiguity, all 8 queen
_ROW_OFFSETS = (-1, 1, 0, 0, -1, -1, 1, 1)
_COL_OFFSETS = (0, 0, -1, 1, -1, 1, -1, 1)

N_SUMS = 9


@numba.njit(cache=True)
def _row_neighbour_counts(raster, r, n_offsets, neighbours, row_totals):
    """Valid neighbours of each valid cell of row ``r`` into ``neighbours[r]``; the row's valid
    count and sum into ``row_totals[r]``."""
    ny, nx = raster.shape
    count = 0
    total = 0.0
    for c in range(nx):
        value = raster[r, c]
        if math.isnan(value):
            continue
        count += 1
        total += value
        k = 0
        for o in range(n_offsets):
            rr = r + _ROW_OFFSETS[o]
            cc = c + _COL_OFFSETS[o]
            if 0 <= rr < ny and 0 <= cc < nx and not math.isnan(raster[rr, cc]):
                k += 1
        neighbours[r, c] = k
    row_totals[r, 0] = count
    row_totals[r, 1] = total


@numba.njit(cache=True)
def _row_moran_terms(raster, r, n_offsets, row_standardised, neighbours, mean, terms):
    """Row ``r``'s share of: islands, sum z^2, sum z^4, cross-product, S0, 2 S1, S2."""
    ny, nx = raster.shape
    islands = 0.0
    z2 = 0.0
    z4 = 0.0
    cross = 0.0
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    for c in range(nx):
        value = raster[r, c]
        if math.isnan(value):
            continue
        z = value - mean
        zz = z * z
        z2 += zz
        z4 += zz * zz
        k = neighbours[r, c]
        if k == 0:
            islands += 1.0
            continue
        w_row = 1.0 / k if row_standardised else 1.0
        lag = 0.0
        pair_sq = 0.0
        column_sum = 0.0
        for o in range(n_offsets):
            rr = r + _ROW_OFFSETS[o]
            cc = c + _COL_OFFSETS[o]
            if 0 <= rr < ny and 0 <= cc < nx:
                neighbour = raster[rr, cc]
                if not math.isnan(neighbour):
                    w_col = 1.0 / neighbours[rr, cc] if row_standardised else 1.0
                    lag += neighbour - mean
                    pair_sq += (w_row + w_col) * (w_row + w_col)
                    column_sum += w_col
        cross += z * w_row * lag
        row_weight = w_row * k
        s0 += row_weight
        s1 += pair_sq
        s2 += (row_weight + column_sum) * (row_weight + column_sum)
    terms[r, 0] = islands
    terms[r, 1] = z2
    terms[r, 2] = z4
    terms[r, 3] = cross
    terms[r, 4] = s0
    terms[r, 5] = s1
    terms[r, 6] = s2


@numba.njit(parallel=True, cache=True)
def raster_moran_sums(raster, queen, row_standardised, out):
    """Moran's I sums on a 2-D raster with rook or queen contiguity.

    Parameters
    ----------
    raster : ndarray of float64, shape (ny, nx)
        NaN = missing cell.
    queen : bool
        8 neighbours (queen) if True, else 4 (rook).
    row_standardised : bool
        Weights ``1 / k_i`` (``k_i`` = number of valid neighbours of cell ``i``) if True,
        else binary weights 1.
    out : ndarray of float64, shape (9,)
        See the module docstring.
    """
    ny, nx = raster.shape
    n_offsets = 8 if queen else 4
    # pass 1: valid neighbours of each cell, count and sum of each row (one thread: a second
    # parallel loop would double the compile time for little gain)
    neighbours = np.zeros((ny, nx), dtype=np.uint8)
    row_totals = np.zeros((ny, 2), dtype=np.float64)
    for r in range(ny):
        _row_neighbour_counts(raster, r, n_offsets, neighbours, row_totals)
    n = 0.0
    total = 0.0
    for r in range(ny):  # in row order: the result does not depend on the thread count
        n += row_totals[r, 0]
        total += row_totals[r, 1]
    mean = total / n if n > 0 else np.nan
    # pass 2 (rows in parallel): every term, per row, then summed in row order
    terms = np.zeros((ny, 7), dtype=np.float64)
    for r in numba.prange(ny):
        _row_moran_terms(raster, r, n_offsets, row_standardised, neighbours, mean, terms)
    sums = np.zeros(7, dtype=np.float64)
    for r in range(ny):
        for q in range(7):
            sums[q] += terms[r, q]
    out[0] = n
    out[1] = sums[0]
    out[2] = mean
    out[3] = sums[1]
    out[4] = sums[2]
    out[5] = sums[3]
    out[6] = sums[4]
    out[7] = 0.5 * sums[5]
    out[8] = sums[6]


@numba.njit(cache=True)
def weights_moran_sums(values, indptr, indices, weights, transform, out):
    """Moran's I sums for neighbour lists in CSR form.

    Parameters
    ----------
    values : ndarray of float64, shape (n,)
        NaN = missing observation (dropped, and dropped as a neighbour).
    indptr : ndarray of int64, shape (n + 1,)
    indices : ndarray of int64, shape (nnz,)
        Row ``i`` lists neighbours ``indices[indptr[i]:indptr[i + 1]]`` with weights
        ``weights[indptr[i]:indptr[i + 1]]``.  Repeated entries add up (as in scipy.sparse).
    weights : ndarray of float64, shape (nnz,)
    transform : int
        0: weights as given, 1: binary (every listed neighbour weighs 1, libpysal ``"B"``),
        2: row-standardised (each row divided by its sum over valid neighbours, libpysal
        ``"R"``; a row summing to zero stays zero).
    out : ndarray of float64, shape (9,)
        See the module docstring.
    """
    n = values.shape[0]
    nnz = indices.shape[0]
    valid = np.empty(n, dtype=np.bool_)
    n_valid = 0
    total = 0.0
    for i in range(n):
        valid[i] = not math.isnan(values[i])
        if valid[i]:
            n_valid += 1
            total += values[i]
    mean = total / n_valid if n_valid > 0 else np.nan

    # effective weights: 0 for entries touching a missing observation
    effective = np.zeros(nnz, dtype=np.float64)
    row_sum = np.zeros(n, dtype=np.float64)
    for i in range(n):
        if not valid[i]:
            continue
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            if valid[j]:
                w = 1.0 if transform == 1 else weights[e]
                effective[e] = w
                row_sum[i] += w
    if transform == 2:
        for i in range(n):
            if row_sum[i] != 0.0:
                for e in range(indptr[i], indptr[i + 1]):
                    effective[e] /= row_sum[i]
                row_sum[i] = 0.0
                for e in range(indptr[i], indptr[i + 1]):
                    row_sum[i] += effective[e]

    # transpose (CSR of W^T) by counting sort on the column index
    column_sum = np.zeros(n, dtype=np.float64)
    t_indptr = np.zeros(n + 1, dtype=np.int64)
    for e in range(nnz):
        t_indptr[indices[e] + 1] += 1
    for j in range(n):
        t_indptr[j + 1] += t_indptr[j]
    t_indices = np.empty(nnz, dtype=np.int64)
    t_weights = np.empty(nnz, dtype=np.float64)
    fill = t_indptr[:n].copy()
    for i in range(n):
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            slot = fill[j]
            t_indices[slot] = i
            t_weights[slot] = effective[e]
            fill[j] += 1
            column_sum[j] += effective[e]

    z = np.zeros(n, dtype=np.float64)
    for i in range(n):
        if valid[i]:
            z[i] = values[i] - mean
    z2 = 0.0
    z4 = 0.0
    islands = 0.0
    cross = 0.0
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    # dense scratch row: w_ij + w_ji for the columns j touched by row i of W or of W^T
    pair = np.zeros(n, dtype=np.float64)
    touched = np.zeros(n, dtype=np.bool_)
    touched_list = np.empty(n, dtype=np.int64)
    for i in range(n):
        if not valid[i]:
            continue
        zz = z[i] * z[i]
        z2 += zz
        z4 += zz * zz
        has_neighbour = False
        lag = 0.0
        n_touched = 0
        for e in range(indptr[i], indptr[i + 1]):
            w = effective[e]
            j = indices[e]
            if valid[j]:
                has_neighbour = True
            lag += w * z[j]
            if not touched[j]:
                touched[j] = True
                touched_list[n_touched] = j
                n_touched += 1
            pair[j] += w
        for e in range(t_indptr[i], t_indptr[i + 1]):
            j = t_indices[e]
            if not touched[j]:
                touched[j] = True
                touched_list[n_touched] = j
                n_touched += 1
            pair[j] += t_weights[e]
        for q in range(n_touched):
            j = touched_list[q]
            s1 += pair[j] * pair[j]
            pair[j] = 0.0
            touched[j] = False
        if not has_neighbour:
            islands += 1.0
        cross += z[i] * lag
        s0 += row_sum[i]
        s2 += (row_sum[i] + column_sum[i]) * (row_sum[i] + column_sum[i])
    out[0] = n_valid
    out[1] = islands
    out[2] = mean
    out[3] = z2
    out[4] = z4
    out[5] = cross
    out[6] = s0
    out[7] = 0.5 * s1
    out[8] = s2
