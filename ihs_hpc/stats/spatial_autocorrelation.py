"""Global Moran's I on rasters and on neighbour lists (seed 000, section 2.3.5, eq. 13).

Public numpy API over :mod:`ihs_hpc.kernels.moran`, with the semantics of
``esda.Moran(y, w, transformation, permutations=0, two_tailed)``: I, its expectation, and the
variance, z-score and p-value under normality and under randomisation (Cliff & Ord 1981).
No weights matrix is built for rasters: the sums S0, S1, S2 and the cross-product come from
stencil loops, so rasters of 1e7 cells take well under a second per core.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from ihs_hpc.kernels.moran import N_SUMS, raster_moran_sums, weights_moran_sums
from ihs_hpc.stats._arrays import as_float64, check_choice, numba_threads, reject_infinite

__all__ = ["MoranResult", "morans_i", "morans_i_weights"]

_CONTIGUITIES = {"queen", "rook"}
_RASTER_TRANSFORMS = {"r", "b"}
_WEIGHT_TRANSFORMS = {"r", "b", "o"}
#: rasters with fewer cells run on one thread
_PARALLEL_MIN_CELLS = 250_000


@dataclass(frozen=True)
class MoranResult:
    """Global Moran's I and its moments (attribute names as ``esda.Moran``).

    Every field is a float for one map, an array of the batch shape for a stack of rasters.
    """

    #: Moran's I (eq. 13)
    I: float | np.ndarray  # noqa: E741 - esda's name
    #: expectation of I under the null, ``-1 / (n - 1)``
    EI: float | np.ndarray
    #: variance of I under normality
    VI_norm: float | np.ndarray
    #: standard deviation of I under normality
    seI_norm: float | np.ndarray
    #: z-score of I under normality
    z_norm: float | np.ndarray
    #: p-value under normality (one- or two-tailed, see ``two_tailed``)
    p_norm: float | np.ndarray
    #: variance of I under randomisation
    VI_rand: float | np.ndarray
    #: standard deviation of I under randomisation
    seI_rand: float | np.ndarray
    #: z-score of I under randomisation
    z_rand: float | np.ndarray
    #: p-value under randomisation
    p_rand: float | np.ndarray
    #: number of observations (valid cells, islands included)
    n: float | np.ndarray
    #: observations without any valid neighbour (zero weights, as libpysal islands)
    n_islands: float | np.ndarray
    #: sum of all weights
    s0: float | np.ndarray
    #: ``1/2 sum_ij (w_ij + w_ji)^2``
    s1: float | np.ndarray
    #: ``sum_i (w_i. + w_.i)^2``
    s2: float | np.ndarray


def _moran_from_sums(sums, two_tailed):
    """esda.Moran's formulas from the kernel sums (rows of ``sums``, see the kernel module)."""
    n, islands, _, z2ss, z4ss, cross, s0, s1, s2 = (sums[..., q] for q in range(N_SUMS))
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = -1.0 / (n - 1)
        n2 = n * n
        s02 = s0 * s0
        vi_norm = (n2 * s1 - n * s2 + 3 * s02) / ((n - 1) * (n + 1) * s02) - (1.0 / (n - 1)) ** 2
        kurtosis = (z4ss / n) / (z2ss / n) ** 2
        a = n * ((n2 - 3 * n + 3) * s1 - n * s2 + 3 * s02)
        b = kurtosis * ((n2 - n) * s1 - 2 * n * s2 + 6 * s02)
        vi_rand = (a - b) / ((n - 1) * (n - 2) * (n - 3) * s02) - expected * expected
        moran = n / s0 * cross / z2ss
        se_norm = np.sqrt(vi_norm)
        se_rand = np.sqrt(vi_rand)
        z_norm = (moran - expected) / se_norm
        z_rand = (moran - expected) / se_rand
    # esda picks the tail from the sign of z_norm, for both p-values
    upper = z_norm > 0
    p_norm = np.where(upper, special.ndtr(-z_norm), special.ndtr(z_norm))
    p_rand = np.where(upper, special.ndtr(-z_rand), special.ndtr(z_rand))
    if two_tailed:
        p_norm = 2.0 * p_norm
        p_rand = 2.0 * p_rand
    fields = (moran, expected, vi_norm, se_norm, z_norm, p_norm, vi_rand, se_rand, z_rand,
              p_rand, n, islands, s0, s1, s2)
    return MoranResult(*(f[()] if np.ndim(f) == 0 else f for f in fields))


def morans_i(raster, contiguity="queen", transform="r", two_tailed=True):
    """Global Moran's I of a raster with rook or queen contiguity (seed 000, eq. 13).

    Equals ``esda.Moran(values, w, transformation=transform, permutations=0,
    two_tailed=two_tailed)`` where ``values`` are the non-NaN cells in row-major order and
    ``w`` is ``libpysal.weights.lat2W(ny, nx, rook=(contiguity == "rook"))`` restricted to
    those cells (``libpysal.weights.w_subset``).

    * Missing cells (NaN) are neither observations nor neighbours.
    * A valid cell without valid neighbours (an island) stays an observation, as in
      libpysal/esda: it counts in ``n``, the mean and the variance, with zero weights.
    * ``transform="r"``: row-standardised weights ``1 / k_i`` (``k_i`` valid neighbours);
      ``"b"``: binary weights.

    Parameters
    ----------
    raster : array_like, shape (..., ny, nx)
        One map, or a stack of maps along leading axes (one result per map).  NaN = missing;
        +-inf is rejected.
    contiguity : {"queen", "rook"}, default "queen"
        8 or 4 neighbours per cell.
    transform : {"r", "b"}, default "r"
        Weights transformation (case-insensitive, as esda).
    two_tailed : bool, default True
        Double the one-tailed p-values (esda's convention: the tail is chosen by the sign of
        ``z_norm`` for both p-values).

    Returns
    -------
    MoranResult
        Floats for one map, arrays of the leading shape for a stack.  Degenerate maps (fewer
        than 4 valid cells, a constant map, no neighbour pairs) give NaN or inf where esda's
        formulas do.

    Raises
    ------
    ValueError
        If ``raster`` has fewer than 2 dimensions, is empty, holds +-inf, or ``contiguity`` /
        ``transform`` is unknown.
    TypeError
        If ``raster`` is not real numeric.
    """
    contiguity = check_choice(contiguity, "contiguity", _CONTIGUITIES)
    transform = check_choice(transform, "transform", _RASTER_TRANSFORMS)
    data = as_float64(raster, "raster")
    if data.ndim < 2:
        raise ValueError(f"raster must have at least 2 dimensions (ny, nx), got shape {data.shape}")
    if data.shape[-1] == 0 or data.shape[-2] == 0:
        raise ValueError(f"raster must not be empty, got shape {data.shape}")
    reject_infinite(data, "raster")
    batch_shape = data.shape[:-2]
    maps = data.reshape((-1,) + data.shape[-2:])
    sums = np.empty((maps.shape[0], N_SUMS))
    with numba_threads(maps[0].size < _PARALLEL_MIN_CELLS):
        for k in range(maps.shape[0]):
            raster_moran_sums(
                np.ascontiguousarray(maps[k]), contiguity == "queen", transform == "r", sums[k]
            )
    return _moran_from_sums(sums.reshape(batch_shape + (N_SUMS,)), bool(two_tailed))


def morans_i_weights(values, neighbors_indptr, neighbors_indices, weights=None, transform="r",
                     two_tailed=True):
    """Global Moran's I for arbitrary neighbour lists in CSR form (polygons, graphs).

    Row ``i`` of the weights matrix lists the neighbours
    ``neighbors_indices[neighbors_indptr[i]:neighbors_indptr[i + 1]]`` of observation ``i``
    with ``weights`` in the same slots (all 1 if None) -- e.g. ``w.sparse.indptr``,
    ``w.sparse.indices``, ``w.sparse.data`` of a libpysal ``W``.  Equals ``esda.Moran(values,
    w, transformation=transform, permutations=0, two_tailed=two_tailed)``.  NaN observations
    are dropped with their entries (as ``libpysal.weights.w_subset``), before the
    transformation; observations left without neighbours are islands (see :func:`morans_i`).

    Parameters
    ----------
    values : array_like, shape (n,)
        NaN = missing; +-inf is rejected.
    neighbors_indptr : array_like of int, shape (n + 1,)
        Non-decreasing, starting at 0 and ending at ``len(neighbors_indices)``.
    neighbors_indices : array_like of int, shape (nnz,)
        Neighbour indices in ``[0, n)``; repeated entries of a row add up.
    weights : array_like, shape (nnz,), optional
        Finite weights; default 1.
    transform : {"r", "b", "o"}, default "r"
        Row-standardised, binary, or the weights as given (case-insensitive).
    two_tailed : bool, default True

    Returns
    -------
    MoranResult
        Floats.

    Raises
    ------
    ValueError
        If the CSR arrays are inconsistent with each other or with ``values``, ``values`` or
        ``weights`` hold +-inf, or ``transform`` is unknown.
    TypeError
        If an input is not real numeric.
    """
    transform = check_choice(transform, "transform", _WEIGHT_TRANSFORMS)
    data = as_float64(values, "values")
    if data.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {data.shape}")
    reject_infinite(data, "values")
    n = data.shape[0]
    indptr = _as_index_array(neighbors_indptr, "neighbors_indptr")
    indices = _as_index_array(neighbors_indices, "neighbors_indices")
    if indptr.shape != (n + 1,):
        raise ValueError(
            f"neighbors_indptr must have shape ({n + 1},) for {n} values, got {indptr.shape}"
        )
    if indptr[0] != 0 or indptr[-1] != indices.shape[0] or np.any(np.diff(indptr) < 0):
        raise ValueError(
            "neighbors_indptr must be non-decreasing from 0 to len(neighbors_indices) = "
            f"{indices.shape[0]}, got first {indptr[0]} and last {indptr[-1]}"
        )
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(
            f"neighbors_indices must lie in [0, {n}), got range [{indices.min()}, {indices.max()}]"
        )
    if weights is None:
        weight_values = np.ones(indices.shape[0])
    else:
        weight_values = as_float64(weights, "weights")
        if weight_values.shape != indices.shape:
            raise ValueError(
                f"weights must have the shape of neighbors_indices {indices.shape}, got "
                f"{weight_values.shape}"
            )
        if not np.all(np.isfinite(weight_values)):
            raise ValueError("weights must be finite")
    code = {"o": 0, "b": 1, "r": 2}[transform]
    sums = np.empty(N_SUMS)
    weights_moran_sums(np.ascontiguousarray(data), indptr, indices,
                       np.ascontiguousarray(weight_values), code, sums)
    return _moran_from_sums(sums, bool(two_tailed))


def _as_index_array(values, name):
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size and array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.int64)
