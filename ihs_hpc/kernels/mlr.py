"""Per-pixel multiple linear regression with an intercept (numba kernels).

Seed 000, eq. 3: ``PM2.5_bl_mlr(t) = a0 + sum_i a_i met_bl_i(t)``.

One pixel's series are regressed independently of every other pixel's.  Per pixel:

1. pass 1: the means of ``y`` and of each regressor; a NaN or infinity in any series makes its
   sum non-finite, which marks the pixel invalid;
2. pass 2: a centred float64 copy of the pixel's series, then the centred cross products
   ``C = Xcᵀ Xc`` (k × k), ``Xcᵀ yc`` and ``SS_tot = ycᵀ yc`` as contiguous dot products
   (vectorised by LLVM);
3. Cholesky of ``C``; a pivot is *small* when it falls below ``rtol`` times the diagonal it
   came from (the anomaly of regressor j is nearly a combination of the earlier ones), or
   when a regressor's anomaly is tiny compared with its raw values (nearly constant, i.e.
   nearly the intercept column: ``C_jj <= rtol * sum_t x_j(t)²``);
4. full rank: slopes from the two triangular solves, ``a0 = mean(y) - sum_j a_j mean(x_j)``;
   otherwise the pixel is flagged (rank :data:`NEEDS_MIN_NORM`) and :func:`mlr_min_norm_pixels`
   solves it afterwards with :func:`numpy.linalg.lstsq` (LAPACK gelsd, numpy's default cut-off
   ``eps * max(time, k + 1)``) on the uncentred design ``[1, X]``: the same finite minimum-norm
   solution and numerical rank as lstsq.  Callers run :func:`mlr_pixels` then
   :func:`mlr_min_norm_pixels` (as :func:`ihs_hpc.ops.mlr.mlr` does);
5. pass 3: residuals in centred form, ``yc - sum_j a_j xc_j``, fitted values ``y - residual``,
   ``R² = 1 - SS_res / SS_tot``.

Any non-finite value in a pixel's ``y`` or ``X`` (or finite values so large that their sum
overflows) makes that pixel's coefficients, fitted values and R² NaN and its rank -1; other
pixels are not touched.  All arithmetic is float64 whatever
the input dtype.
"""
from __future__ import annotations

import numba
import numpy as np

from .interp import weighted_rows

#: rank written for a pixel whose input holds a NaN or an infinity
INVALID_RANK = -1
#: rank written by the numba pass for a pixel left to :func:`mlr_min_norm_pixels`
NEEDS_MIN_NORM = -2

# Reassociation lets LLVM vectorise the sums and dot products; no nnan/ninf flags, so NaN and
# infinities still propagate and the finiteness test of pass 1 holds.
_FAST = {"reassoc", "contract"}
#: pixels handled in a row by one thread with one scratch buffer
_PIXELS_PER_BLOCK = 16


@numba.njit(cache=True, fastmath=_FAST)
def _sum(a):
    acc = 0.0
    for t in range(a.shape[0]):
        acc += a[t]
    return acc


@numba.njit(cache=True, fastmath=_FAST)
def _dot(a, b):
    acc = 0.0
    for t in range(a.shape[0]):
        acc += a[t] * b[t]
    return acc


@numba.njit(cache=True, fastmath=_FAST)
def _subtract(a, value, out):
    for t in range(a.shape[0]):
        out[t] = a[t] - value


@numba.njit(cache=True, fastmath=_FAST)
def _axpy(alpha, x, y):
    for t in range(x.shape[0]):
        y[t] += alpha * x[t]


@numba.njit(cache=True)
def mlr_pixel(y, X, rtol, coef, fitted, centred):
    """Fit ``y(t) = a0 + sum_j a_j X[j, t]`` for one pixel (seed 000, eq. 3).

    Parameters
    ----------
    y : ndarray, shape (time,)
        Response series.
    X : ndarray, shape (k, time)
        Regressor series, one per row.
    rtol : float
        Relative pivot tolerance of the Cholesky factorisation (see the module docstring).
    coef : ndarray, shape (k + 1,), float64
        Output: intercept then the k slopes.
    fitted : ndarray, shape (time,), float64
        Output: fitted values.
    centred : ndarray, shape (k + 1, time), float64
        Scratch space (overwritten), reused across the pixels of one thread.

    Returns
    -------
    r2 : float
        Coefficient of determination ``1 - SS_res / SS_tot`` (NaN when ``y`` is constant or the
        pixel is invalid).
    rank : int
        ``k + 1`` when solved by Cholesky, :data:`NEEDS_MIN_NORM` when a pivot is small (the
        outputs are then left unwritten for :func:`mlr_min_norm_pixel`), :data:`INVALID_RANK`
        when the input holds a non-finite value.
    """
    k, n = X.shape

    # pass 1: means; a NaN or an infinity anywhere makes its row's sum non-finite
    y_mean = _sum(y) / n
    valid = np.isfinite(y_mean)
    x_mean = np.empty(k)
    for j in range(k):
        x_mean[j] = _sum(X[j]) / n
        valid = valid and np.isfinite(x_mean[j])
    if not valid:
        for j in range(k + 1):
            coef[j] = np.nan
        for t in range(n):
            fitted[t] = np.nan
        return np.nan, INVALID_RANK

    # pass 2: centred float64 copy (row 0: y, rows 1..k: regressors), then the cross products
    # C = Xc^T Xc (lower triangle) and Xc^T yc as contiguous dot products
    for t in range(n):
        centred[0, t] = y[t] - y_mean
    for j in range(k):
        _subtract(X[j], x_mean[j], centred[j + 1])
    gram = np.empty((k, k))
    xty = np.empty(k)
    raw_sumsq = np.empty(k)
    for j in range(k):
        xj = centred[j + 1]
        xty[j] = _dot(xj, centred[0])
        for i in range(j + 1):
            gram[j, i] = _dot(xj, centred[i + 1])
        raw_sumsq[j] = gram[j, j] + n * x_mean[j] * x_mean[j]  # sum_t x_j(t)^2
    ss_tot = _dot(centred[0], centred[0])

    # Cholesky C = L L^T in place (lower triangle), flagging small pivots
    full_rank = True
    for j in range(k):
        diag = gram[j, j]
        if not diag > rtol * raw_sumsq[j]:  # nearly constant regressor (or zero column)
            full_rank = False
            break
        pivot = diag
        for i in range(j):
            pivot -= gram[j, i] * gram[j, i]
        if not pivot > rtol * diag:  # nearly collinear with earlier regressors
            full_rank = False
            break
        ljj = np.sqrt(pivot)
        gram[j, j] = ljj
        for r in range(j + 1, k):
            acc = gram[r, j]
            for i in range(j):
                acc -= gram[r, i] * gram[j, i]
            gram[r, j] = acc / ljj

    if not full_rank:
        return np.nan, NEEDS_MIN_NORM

    # forward solve L z = Xc^T yc, back solve L^T b = z
    z = np.empty(k)
    for j in range(k):
        acc = xty[j]
        for i in range(j):
            acc -= gram[j, i] * z[i]
        z[j] = acc / gram[j, j]
    for j in range(k - 1, -1, -1):
        acc = z[j]
        for i in range(j + 1, k):
            acc -= gram[i, j] * coef[i + 1]
        coef[j + 1] = acc / gram[j, j]
    intercept = y_mean
    for j in range(k):
        intercept -= coef[j + 1] * x_mean[j]
    coef[0] = intercept

    # pass 3: residuals in centred form, yc - sum_j a_j xc_j (in place of yc), fitted = y - resid
    resid = centred[0]
    for j in range(k):
        _axpy(-coef[j + 1], centred[j + 1], resid)
    ss_res = _dot(resid, resid)
    for t in range(n):
        fitted[t] = y[t] - resid[t]
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0.0 else np.nan
    return r2, k + 1


@numba.njit(cache=True, parallel=True)
def mlr_pixels(y, X, rtol, coef, fitted, r2, rank):
    """Fit eq. 3 independently for every pixel, in parallel over pixels.

    Parameters
    ----------
    y : ndarray, shape (pixels, time)
        Response series, one row per pixel.
    X : ndarray, shape (pixels, k, time) or (1, k, time)
        Regressors per pixel, or one set shared by all pixels (leading length 1).
    rtol : float
        Relative pivot tolerance, see :func:`mlr_pixel`.
    coef : ndarray, shape (pixels, k + 1), float64
        Output: intercept then slopes.
    fitted : ndarray, shape (pixels, time), float64
        Output: fitted values.
    r2 : ndarray, shape (pixels,), float64
        Output: coefficient of determination.
    rank : ndarray, shape (pixels,), int64
        Output: see :func:`mlr_pixel`.  Pixels left at :data:`NEEDS_MIN_NORM` must then be
        solved by :func:`mlr_min_norm_pixels`.
    """
    n_pixels, n = y.shape
    k = X.shape[1]
    x_step = 0 if X.shape[0] == 1 else 1  # shared regressors: every pixel reads X[0]
    # pixels go in blocks so that one scratch buffer serves a whole block (a fresh ~200 kB
    # allocation per pixel costs page faults)
    n_blocks = (n_pixels + _PIXELS_PER_BLOCK - 1) // _PIXELS_PER_BLOCK
    for b in numba.prange(n_blocks):
        centred = np.empty((k + 1, n))
        for p in range(b * _PIXELS_PER_BLOCK, min(n_pixels, (b + 1) * _PIXELS_PER_BLOCK)):
            r2_p, rank_p = mlr_pixel(y[p], X[p * x_step], rtol, coef[p], fitted[p], centred)
            r2[p] = r2_p
            rank[p] = rank_p


@numba.njit(cache=True, parallel=True)
def mlr_bilinear_pixels(y, src, index, weight, rtol, coef, fitted, r2, rank):
    """:func:`mlr_pixels` with each pixel's regressors interpolated on the fly from coarse series.

    Pixel ``p``'s regressor ``j`` is ``X[j, t] = sum_c weight[p, c] * src[j, index[p, c], t]``
    (:func:`ihs_hpc.kernels.interp.weighted_rows`), built in a scratch buffer reused by the pixels of a
    block, so the ``(pixels, k, time)`` regressors are never stored: the same numbers as
    ``mlr_pixels(y, X, ...)`` on the materialised ``X``, without writing and reading it back.

    Parameters
    ----------
    y : ndarray, shape (pixels, time)
        Response series.
    src : ndarray, shape (k, n_src, time), float64, C-contiguous
        Coarse regressor series, one row per source cell.
    index, weight : ndarray, shape (pixels, corners)
        Source cells and weights of each pixel (bilinear: 4 corners).
    rtol, coef, fitted, r2, rank
        As :func:`mlr_pixels`; pixels left at :data:`NEEDS_MIN_NORM` must be solved afterwards with
        their regressors materialised.
    """
    n_pixels, n = y.shape
    k = src.shape[0]
    n_blocks = (n_pixels + _PIXELS_PER_BLOCK - 1) // _PIXELS_PER_BLOCK
    for b in numba.prange(n_blocks):
        centred = np.empty((k + 1, n))
        X = np.empty((1, k, n))
        for p in range(b * _PIXELS_PER_BLOCK, min(n_pixels, (b + 1) * _PIXELS_PER_BLOCK)):
            weighted_rows(src, index[p:p + 1], weight[p:p + 1], X)
            r2_p, rank_p = mlr_pixel(y[p], X[0], rtol, coef[p], fitted[p], centred)
            r2[p] = r2_p
            rank[p] = rank_p


def mlr_min_norm_pixel(y, X, coef, fitted):
    """Minimum-norm least squares of ``y`` on ``[1, X]`` for one pixel (plain numpy).

    The fallback for pixels flagged :data:`NEEDS_MIN_NORM`: :func:`numpy.linalg.lstsq` (LAPACK
    gelsd) on the uncentred design with its default cut-off ``eps * max(time, k + 1)``.

    Parameters
    ----------
    y : ndarray, shape (time,)
    X : ndarray, shape (k, time)
    coef : ndarray, shape (k + 1,), float64
        Output: intercept then slopes.
    fitted : ndarray, shape (time,), float64
        Output: fitted values.

    Returns
    -------
    r2 : float
        ``1 - SS_res / SS_tot`` (NaN when ``y`` is constant).
    rank : int
        Numerical rank of ``[1, X]``.
    """
    k, n = X.shape
    design = np.empty((n, k + 1))
    design[:, 0] = 1.0
    design[:, 1:] = X.T
    y64 = y.astype(np.float64)
    solution, _, rank, _ = np.linalg.lstsq(design, y64, rcond=None)
    coef[:] = solution
    fitted[:] = design @ solution
    ss_res = float(np.sum((y64 - fitted) ** 2))
    ss_tot = float(np.sum((y64 - y64.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0.0 else np.nan
    return r2, int(rank)


def mlr_min_norm_pixels(y, X, coef, fitted, r2, rank):
    """Solve, by minimum-norm least squares, every pixel that :func:`mlr_pixels` flagged.

    Arguments as for :func:`mlr_pixels`; only pixels with ``rank == NEEDS_MIN_NORM`` are read and
    written.  These are rare for per-pixel regressors (rank-deficient or ill-conditioned pixels),
    so a Python loop over them with :func:`mlr_min_norm_pixel` costs little and keeps LAPACK
    wrappers out of the numba kernel.  With shared regressors (``X.shape[0] == 1``) every valid
    pixel is flagged together, and they are solved in one :func:`numpy.linalg.lstsq` call with
    one right-hand side per pixel (one SVD of the shared design).
    """
    flagged = np.flatnonzero(rank == NEEDS_MIN_NORM)
    if flagged.size == 0:
        return
    if X.shape[0] > 1:
        for p in flagged:
            r2[p], rank[p] = mlr_min_norm_pixel(y[p], X[p], coef[p], fitted[p])
        return
    k, n = X.shape[1:]
    design = np.empty((n, k + 1))
    design[:, 0] = 1.0
    design[:, 1:] = X[0].T
    rhs = y[flagged].astype(np.float64).T  # (time, flagged pixels)
    solution, _, shared_rank, _ = np.linalg.lstsq(design, rhs, rcond=None)
    coef[flagged] = solution.T
    fit = (design @ solution).T
    fitted[flagged] = fit
    ss_res = np.sum((rhs.T - fit) ** 2, axis=1)
    ss_tot = np.sum((rhs.T - rhs.mean(axis=0)[:, None]) ** 2, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2[flagged] = np.where(ss_tot > 0.0, 1.0 - ss_res / ss_tot, np.nan)
    rank[flagged] = shared_rank
