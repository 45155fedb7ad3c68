"""Local-neighbourhood ordinary kriging (numba kernels).

Seed 000, section 2.3.1 ("the Kriging interpolation technique was employed to fill in the gaps");
the design notes ask for ordinary kriging per day from the ``k`` nearest valid pixels.

Conventions follow PyKrige's ``OrdinaryKriging`` with ``coordinates_type="euclidean"`` and a
moving window (``execute(..., n_closest_points=k)``) so the two agree to rounding:

* distances are plain Euclidean in the coordinate units given (the callers pass ``x = lon`` and
  ``y = lat`` in degrees, so a variogram range is in degrees);
* variogram models, with PyKrige's exact parameterisation (``params = [psill, range, nugget]``,
  linear ``[slope, nugget, 0]``):

  - linear:      ``slope * d + nugget``
  - exponential: ``psill * (1 - exp(-d / (range / 3))) + nugget``
  - spherical:   ``psill * (3d / (2 range) - d³ / (2 range³)) + nugget`` for ``d <= range``,
    ``psill + nugget`` beyond
  - gaussian:    ``psill * (1 - exp(-d² / (4 range / 7)²)) + nugget``;

* the OK system for neighbours ``1..n`` of a query point ``0`` is::

      | Γ  1 | |w|   |γ0|
      | 1ᵀ 0 | |μ| = | 1|,    Γ_ij = γ(d_ij) (i != j),  Γ_ii = 0,  γ0_i = γ(d_i0),

  with ``γ0_i = 0`` where ``d_i0 <= 1e-10`` (PyKrige's ``exact_values``), the estimate
  ``ẑ = Σ w_i z_i`` and the kriging variance ``σ² = Σ w_i γ0_i + μ`` (PyKrige's ``sigmasq``);
* neighbours are the ``k`` nearest by squared distance ``dx² + dy²``, ties broken by the lower
  data index, so the selection is deterministic.

The (k+1)×(k+1) system is solved by Gaussian elimination with partial pivoting; when a pivot is
exactly zero or the solution is not finite, the point falls back to inverse-distance weighting
(power 2) over the same neighbours and its status is set to :data:`STATUS_IDW`.

:func:`pair_distance_range` and :func:`binned_semivariance` build PyKrige's binned empirical
semivariogram (all pairs, equal-width lag bins) without materialising the pair arrays.
"""
from __future__ import annotations

import numba
import numpy as np

#: model codes understood by the kernels
LINEAR = 0
EXPONENTIAL = 1
SPHERICAL = 2
GAUSSIAN = 3
MODEL_CODES = {"linear": LINEAR, "exponential": EXPONENTIAL, "spherical": SPHERICAL,
               "gaussian": GAUSSIAN}

#: PyKrige's cut-off below which a data point coincides with the query point
ZERO_DISTANCE = 1.0e-10

#: per-point status written by :func:`ok_predict`
STATUS_KRIGED = 0
STATUS_IDW = 1

_CHUNK = 64


@numba.njit(cache=True)
def variogram_value(model, psill, range_, nugget, d):
    """Semivariance at lag ``d`` for ``model`` (PyKrige's parameterisation, see module doc).

    For :data:`LINEAR` the three parameters are ``slope, nugget, unused``.
    """
    if model == LINEAR:
        return psill * d + range_
    if model == EXPONENTIAL:
        return psill * (1.0 - np.exp(-d / (range_ / 3.0))) + nugget
    if model == SPHERICAL:
        if d <= range_:
            return (psill * ((3.0 * d) / (2.0 * range_) - (d ** 3.0) / (2.0 * range_ ** 3.0))
                    + nugget)
        return psill + nugget
    # GAUSSIAN
    return psill * (1.0 - np.exp(-(d ** 2.0) / (range_ * 4.0 / 7.0) ** 2.0)) + nugget


@numba.njit(cache=True)
def _insert_neighbour(best_d2, best_idx, count, k, d2, idx):
    """Insert ``(d2, idx)`` into the ascending lists ``best_*[:count]`` (capacity ``k``)."""
    if count == k:
        last = k - 1
        if d2 > best_d2[last] or (d2 == best_d2[last] and idx > best_idx[last]):
            return count
        pos = last
    else:
        pos = count
        count += 1
    while pos > 0 and (best_d2[pos - 1] > d2
                       or (best_d2[pos - 1] == d2 and best_idx[pos - 1] > idx)):
        best_d2[pos] = best_d2[pos - 1]
        best_idx[pos] = best_idx[pos - 1]
        pos -= 1
    best_d2[pos] = d2
    best_idx[pos] = idx
    return count


@numba.njit(cache=True, parallel=True)
def knn_points(xd, yd, xq, yq, out_idx, out_d2):
    """Brute-force ``k`` nearest data points of each query point (``k = out_idx.shape[1]``).

    Parameters
    ----------
    xd, yd : ndarray, shape (n,), float64
        Data coordinates.
    xq, yq : ndarray, shape (nq,), float64
        Query coordinates.
    out_idx : ndarray, shape (nq, k), int64
        Output: data indices, nearest first, ties by the lower index; -1 where ``n < k``.
    out_d2 : ndarray, shape (nq, k), float64
        Output: squared distances ``(xd - xq)² + (yd - yq)²`` (inf where ``n < k``).
    """
    nq, k = out_idx.shape
    n = xd.shape[0]
    for q in numba.prange(nq):
        best_d2 = out_d2[q]
        best_idx = out_idx[q]
        best_d2[:] = np.inf
        best_idx[:] = -1
        count = 0
        x0 = xq[q]
        y0 = yq[q]
        for i in range(n):
            dx = xd[i] - x0
            dy = yd[i] - y0
            count = _insert_neighbour(best_d2, best_idx, count, k, dx * dx + dy * dy, i)


@numba.njit(cache=True)
def _axis_gap(coord, i, m):
    """Smallest ``|coord[i ± m] - coord[i]|`` over the in-range sides (inf if none)."""
    gap = np.inf
    if i - m >= 0:
        gap = min(gap, abs(coord[i - m] - coord[i]))
    if i + m < coord.shape[0]:
        gap = min(gap, abs(coord[i + m] - coord[i]))
    return gap


@numba.njit(cache=True, parallel=True)
def knn_grid(data_rank, lat, lon, query_flat, out_idx, out_d2):
    """``k`` nearest valid pixels of each query pixel by ring search (``k = out_idx.shape[1]``).

    Rings of growing Chebyshev radius ``m`` around the query pixel are scanned until ``k``
    neighbours are held and the ``k``-th squared distance is strictly below the smallest squared
    distance any pixel on ring ``m`` or beyond can have (``min(|Δlat|, |Δlon|)`` at offset ``m``,
    valid because the coordinates are strictly monotone).  Same selection and tie-breaking as
    :func:`knn_points` on the valid pixels listed in flat order.

    Parameters
    ----------
    data_rank : ndarray, shape (ny * nx,), int64
        Position of each pixel in the list of valid pixels (flat order), -1 where not valid.
    lat : ndarray, shape (ny,), float64
        Row coordinate (``y``), strictly monotone.
    lon : ndarray, shape (nx,), float64
        Column coordinate (``x``), strictly monotone.
    query_flat : ndarray, shape (nq,), int64
        Flat indices of the query pixels.
    out_idx : ndarray, shape (nq, k), int64
        Output: neighbour positions in the valid list; -1 where fewer than ``k`` exist.
    out_d2 : ndarray, shape (nq, k), float64
        Output: squared distances (inf where fewer than ``k`` exist).
    """
    nq, k = out_idx.shape
    ny = lat.shape[0]
    nx = lon.shape[0]
    for q in numba.prange(nq):
        best_d2 = out_d2[q]
        best_idx = out_idx[q]
        best_d2[:] = np.inf
        best_idx[:] = -1
        count = 0
        r0 = query_flat[q] // nx
        c0 = query_flat[q] - r0 * nx
        x0 = lon[c0]
        y0 = lat[r0]
        m = 0
        while True:
            if r0 - m < 0 and r0 + m >= ny and c0 - m < 0 and c0 + m >= nx:
                break
            if m > 0 and count == k:
                bound = min(_axis_gap(lat, r0, m), _axis_gap(lon, c0, m))
                if best_d2[k - 1] < bound * bound:
                    break
            for rr in range(max(r0 - m, 0), min(r0 + m, ny - 1) + 1):
                edge_row = rr == r0 - m or rr == r0 + m
                step = 1 if edge_row else 2 * m  # middle rows: only the two side columns
                cc = c0 - m
                while cc <= c0 + m:
                    if 0 <= cc < nx:
                        rank = data_rank[rr * nx + cc]
                        if rank >= 0:
                            dx = lon[cc] - x0
                            dy = lat[rr] - y0
                            count = _insert_neighbour(best_d2, best_idx, count, k,
                                                      dx * dx + dy * dy, rank)
                    cc += step
            m += 1


@numba.njit(cache=True)
def _solve_in_place(a, b, n):
    """Solve ``a[:n, :n] x = b[:n]`` by Gaussian elimination with partial pivoting.

    ``b`` receives ``x``; returns False when a pivot is exactly zero.
    """
    for col in range(n):
        piv = col
        best = abs(a[col, col])
        for r in range(col + 1, n):
            v = abs(a[r, col])
            if v > best:
                best = v
                piv = r
        if best == 0.0:
            return False
        if piv != col:
            for j in range(col, n):
                tmp = a[col, j]
                a[col, j] = a[piv, j]
                a[piv, j] = tmp
            tmp = b[col]
            b[col] = b[piv]
            b[piv] = tmp
        inv = 1.0 / a[col, col]
        for r in range(col + 1, n):
            f = a[r, col] * inv
            if f != 0.0:
                for j in range(col + 1, n):
                    a[r, j] -= f * a[col, j]
                b[r] -= f * b[col]
    for r in range(n - 1, -1, -1):
        acc = b[r]
        for j in range(r + 1, n):
            acc -= a[r, j] * b[j]
        b[r] = acc / a[r, r]
    return True


@numba.njit(cache=True)
def _idw_one(xd, yd, zd, x0, y0, nbr, power):
    """Inverse-distance weighted mean over the data indices ``nbr`` (exact at zero distance)."""
    num = 0.0
    den = 0.0
    for j in range(nbr.shape[0]):
        i = nbr[j]
        dx = xd[i] - x0
        dy = yd[i] - y0
        d = np.sqrt(dx * dx + dy * dy)
        if d <= ZERO_DISTANCE:
            return zd[i]
        w = d ** (-power)
        num += w * zd[i]
        den += w
    return num / den


@numba.njit(cache=True, parallel=True)
def idw_predict(xd, yd, zd, xq, yq, nbr_idx, power, out_z):
    """Inverse-distance weighting ``Σ d_i^-p z_i / Σ d_i^-p`` over each query's neighbours.

    Parameters
    ----------
    xd, yd, zd : ndarray, shape (n,), float64
        Data coordinates and values.
    xq, yq : ndarray, shape (nq,), float64
        Query coordinates.
    nbr_idx : ndarray, shape (nq, k), int64
        Data indices used for each query.
    power : float
        Distance power ``p``.
    out_z : ndarray, shape (nq,), float64
        Output estimates.
    """
    for q in numba.prange(xq.shape[0]):
        out_z[q] = _idw_one(xd, yd, zd, xq[q], yq[q], nbr_idx[q], power)


@numba.njit(cache=True, parallel=True)
def ok_predict(xd, yd, zd, xq, yq, nbr_idx, model, params, out_z, out_var, out_status):
    """Ordinary kriging at each query point from its neighbours (see the module doc).

    Parameters
    ----------
    xd, yd, zd : ndarray, shape (n,), float64
        Data coordinates and values.
    xq, yq : ndarray, shape (nq,), float64
        Query coordinates.
    nbr_idx : ndarray, shape (nq, k), int64
        Data indices of each query's neighbourhood (all ``>= 0``), e.g. from :func:`knn_grid`.
    model : int
        One of :data:`LINEAR`, :data:`EXPONENTIAL`, :data:`SPHERICAL`, :data:`GAUSSIAN`.
    params : ndarray, shape (3,), float64
        ``[psill, range, nugget]`` (linear: ``[slope, nugget, 0]``).
    out_z, out_var : ndarray, shape (nq,), float64
        Output estimate and kriging variance (NaN variance for IDW-fallback points).
    out_status : ndarray, shape (nq,), int8
        Output :data:`STATUS_KRIGED` or :data:`STATUS_IDW` (singular system).
    """
    nq, k = nbr_idx.shape
    n = k + 1
    p0 = params[0]
    p1 = params[1]
    p2 = params[2]
    n_chunks = (nq + _CHUNK - 1) // _CHUNK
    for chunk in numba.prange(n_chunks):
        a = np.empty((n, n))
        b = np.empty(n)
        gamma0 = np.empty(k)
        for q in range(chunk * _CHUNK, min(nq, (chunk + 1) * _CHUNK)):
            nbr = nbr_idx[q]
            x0 = xq[q]
            y0 = yq[q]
            for i in range(k):
                ii = nbr[i]
                a[i, i] = 0.0
                for j in range(i + 1, k):
                    jj = nbr[j]
                    dx = xd[ii] - xd[jj]
                    dy = yd[ii] - yd[jj]
                    g = variogram_value(model, p0, p1, p2, np.sqrt(dx * dx + dy * dy))
                    a[i, j] = g
                    a[j, i] = g
                a[i, k] = 1.0
                a[k, i] = 1.0
                dx = xd[ii] - x0
                dy = yd[ii] - y0
                d0 = np.sqrt(dx * dx + dy * dy)
                g0 = 0.0 if d0 <= ZERO_DISTANCE else variogram_value(model, p0, p1, p2, d0)
                gamma0[i] = g0
                b[i] = g0
            a[k, k] = 0.0
            b[k] = 1.0
            ok = _solve_in_place(a, b, n)
            z = 0.0
            var = b[k]
            if ok:
                for i in range(k):
                    z += b[i] * zd[nbr[i]]
                    var += b[i] * gamma0[i]
                ok = np.isfinite(z) and np.isfinite(var)
            if ok:
                out_z[q] = z
                out_var[q] = var
                out_status[q] = STATUS_KRIGED
            else:
                out_z[q] = _idw_one(xd, yd, zd, x0, y0, nbr, 2.0)
                out_var[q] = np.nan
                out_status[q] = STATUS_IDW


@numba.njit(cache=True)
def pair_distance_range(x, y):
    """Smallest and largest Euclidean distance over all pairs ``i < j`` (``n >= 2``)."""
    n = x.shape[0]
    dmin = np.inf
    dmax = -np.inf
    for i in range(n):
        for j in range(i + 1, n):
            dx = x[i] - x[j]
            dy = y[i] - y[j]
            d = np.sqrt(dx * dx + dy * dy)
            if d < dmin:
                dmin = d
            if d > dmax:
                dmax = d
    return dmin, dmax


@numba.njit(cache=True)
def binned_semivariance(x, y, z, bin_edges, counts, sum_lag, sum_gamma):
    """Accumulate the pairs ``i < j`` into lag bins (PyKrige's experimental variogram).

    Pair ``(i, j)`` has lag ``d = sqrt((x_i - x_j)² + (y_i - y_j)²)`` and semivariance
    ``0.5 (z_i - z_j)²``; it falls in bin ``b`` when ``bin_edges[b] <= d < bin_edges[b + 1]``.
    Pairs are visited in :func:`scipy.spatial.distance.pdist` order.

    Parameters
    ----------
    x, y, z : ndarray, shape (n,), float64
        Coordinates and values.
    bin_edges : ndarray, shape (nlags + 1,), float64
        Ascending edges.
    counts : ndarray, shape (nlags,), int64
        Output: pairs per bin (must be zero on entry).
    sum_lag, sum_gamma : ndarray, shape (nlags,), float64
        Output: sums of lags and of semivariances per bin (zero on entry).
    """
    n = x.shape[0]
    nlags = counts.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            dx = x[i] - x[j]
            dy = y[i] - y[j]
            d = np.sqrt(dx * dx + dy * dy)
            b = nlags - 1
            while b >= 0 and d < bin_edges[b]:
                b -= 1
            if b < 0 or d >= bin_edges[b + 1]:
                continue
            dz = z[i] - z[j]
            counts[b] += 1
            sum_lag[b] += d
            sum_gamma[b] += 0.5 * (dz * dz)
