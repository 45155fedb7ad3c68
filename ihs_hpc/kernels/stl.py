"""Numba kernels for STL (Seasonal-Trend decomposition using Loess), one series at a time.

A port of the netlib STL Fortran (Cleveland et al. 1990) as carried by
``statsmodels.tsa.stl._stl.STL`` -- seed 000, sect. 2.3.3, eq. (1): ``x = T + S + R``.
The arithmetic is statsmodels', reorganised in three exact ways that make it fast;
each changes results only at the level of float rounding:

1. **Plans.** Every loess smoother (trend, low-pass, and the seasonal smoother of a
   cycle-subseries) evaluates local fits at a fixed list of points with fixed windows
   (:func:`loess_windows`, :func:`seasonal_windows`). :func:`build_loess_plan` tabulates,
   once per ``(n, window, degree, jump)``, the final local-linear weights of every fit in
   window-centred coordinates (rows deduplicated: all interior points share one row) and
   the tricube kernel of every half-width.
2. **Fixed smoothers** -- the low-pass filter always, trend and seasonal smoothers before
   robustness weights exist -- are then plain dot products (:func:`fit_points_fixed`).
3. **Robustness-weighted smoothers** evaluate each local-linear fit from five moments
   ``S_k = sum K rw u^k`` (k = 0, 1, 2), ``Y_k = sum K rw u^k y`` (k = 0, 1) in one pass
   (:func:`fit_points_weighted`), which also stores the per-point coefficients
   ``alpha, beta`` of ``fit = alpha Y0 + beta Y1``. Robustness weights only change between
   outer iterations, so later inner iterations reuse them and need two sums per tap
   (:func:`fit_points_reweighted`).

Everything here is numba + numpy over preallocated arrays.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

# Reassociation lets LLVM vectorise the dot products / moment sums. No nnan/ninf:
# NaN marks a fit whose weights all vanish.
_FAST = {"reassoc", "contract"}

#: Largest number of float64 values one plan tabulates per table (32 MiB); past it the
#: rarely used rows / kernels are evaluated on the fly (only for windows far longer than usual).
PLAN_BUDGET = 1 << 22

#: Row code of a point whose weights all vanish (fit falls back to the data value).
ROW_EMPTY = -1
#: Row code of a point left out of the plan (budget): evaluated by :func:`loess_point`.
ROW_ON_THE_FLY = -2


@numba.njit(cache=True, error_model="numpy")
def _tricube(r, h):
    """Tricube weight of distance ``r`` at bandwidth ``h`` with statsmodels' 0.001/0.999 cut-offs."""
    if r <= 0.999 * h:
        if r <= 0.001 * h:
            return 1.0
        q = r / h
        q = 1.0 - q * q * q
        return q * q * q
    return 0.0


@numba.njit(cache=True, error_model="numpy")
def _bandwidth(n, len_, xs, nleft, nright):
    """Loess bandwidth: the farthest window end, widened by ``(len - n) // 2`` if ``len > n``."""
    h = float(max(xs - nleft, nright - xs))
    if len_ > n:
        h += float((len_ - n) // 2)
    return h


# --------------------------------------------------------------------------- one fit, verbatim
@numba.njit(cache=True, error_model="numpy")
def loess_point(y, n, len_, ideg, xs, nleft, nright, w, userw, rw):
    """One local (weighted) loess fit at ``xs`` -- statsmodels ``STL._est`` verbatim.

    Parameters
    ----------
    y : ndarray of float64
        Series values, 0-based, at least ``nright`` long.
    n : int
        Series length (``range = n - 1`` enters the collinearity test).
    len_ : int
        Smoother window length.
    ideg : int
        Degree of the local polynomial, 0 or 1.
    xs : int
        1-based abscissa of the fitted point (may lie outside the window).
    nleft, nright : int
        1-based window bounds.
    w : ndarray of float64
        Scratch for the weights, at least ``nright`` long.
    userw : bool
        Multiply the tricube weights by the robustness weights ``rw``.
    rw : ndarray of float64
        Robustness weights.

    Returns
    -------
    float
        The fitted value, NaN when all weights vanish.
    """
    rng = n - 1.0
    h = _bandwidth(n, len_, xs, nleft, nright)
    a = 0.0
    for j in range(nleft - 1, nright):
        w[j] = _tricube(abs(float(j + 1 - xs)), h)
        if userw:
            w[j] = w[j] * rw[j]
        a = a + w[j]
    if a <= 0.0:
        return np.nan
    for j in range(nleft - 1, nright):
        w[j] = w[j] / a
    if h > 0.0 and ideg > 0:
        a = 0.0
        for j in range(nleft - 1, nright):
            a = a + w[j] * (j + 1)
        b = xs - a
        c = 0.0
        for j in range(nleft - 1, nright):
            d = j + 1 - a
            c = c + w[j] * d * d
        if np.sqrt(c) > 0.001 * rng:
            b = b / c
            for j in range(nleft - 1, nright):
                w[j] = w[j] * (b * (j + 1 - a) + 1.0)
    ys = 0.0
    for j in range(nleft - 1, nright):
        ys = ys + w[j] * y[j]
    return ys


# --------------------------------------------------------------------------- plans (numpy, built once)
def loess_windows(n: int, len_: int, njump: int):
    """Points where a loess smoother with jumps evaluates a fit (statsmodels ``STL._ess``).

    Parameters
    ----------
    n : int
        Series length (>= 2).
    len_ : int
        Window length.
    njump : int
        Jump between evaluated points; the others are interpolated (:func:`place_fits`).

    Returns
    -------
    xs, nleft, nright : ndarray of int64
        1-based abscissa and window bounds, in statsmodels' order (the last point of a
        jumped smoother reuses the previous window, as the Fortran does).
    """
    newnj = min(njump, n - 1)
    if len_ >= n:
        xs = np.arange(0, n, newnj, dtype=np.int64) + 1
        nl = np.ones_like(xs)
        nr = np.full_like(xs, n)
    elif newnj == 1:
        xs = np.arange(1, n + 1, dtype=np.int64)
        shift = np.clip(xs - (len_ + 2) // 2, 0, n - len_)  # windows slide once centred
        nl = 1 + shift
        nr = len_ + shift
    else:
        nsh = (len_ + 1) // 2
        xs = np.arange(0, n, newnj, dtype=np.int64) + 1
        nl = np.where(xs < nsh, 1, np.where(xs >= n - nsh + 1, n - len_ + 1, xs - nsh + 1))
        nr = np.where(xs < nsh, len_, np.where(xs >= n - nsh + 1, n, len_ + xs - nsh))
    if newnj > 1 and ((n - 1) // newnj) * newnj + 1 != n:
        xs = np.append(xs, n)
        nl = np.append(nl, nl[-1])
        nr = np.append(nr, nr[-1])
    return xs.astype(np.int64), nl.astype(np.int64), nr.astype(np.int64)


def seasonal_windows(k: int, ns: int, nsjump: int):
    """:func:`loess_windows` of a cycle-subseries of length ``k`` plus its two extrapolations.

    The last two points are ``xs = 0`` (window ``[1, min(ns, k)]``) and ``xs = k + 1``
    (window ``[max(1, k - ns + 1), k]``): the subseries extended one cycle each way
    (statsmodels ``STL._ss``).
    """
    xs, nl, nr = loess_windows(k, ns, nsjump)
    return (np.append(xs, [0, k + 1]), np.append(nl, [1, max(1, k - ns + 1)]),
            np.append(nr, [min(ns, k), k]))


def _tricube_np(r, h):
    """Vectorised :func:`_tricube`."""
    q = 1.0 - (r / np.where(h > 0, h, 1.0)) ** 3
    return np.where(r <= 0.999 * h, np.where(r <= 0.001 * h, 1.0, q * q * q), 0.0)


def _fixed_rows(n, len_, ideg, xs, nl, nr):
    """Final unweighted loess weights of the fits at ``(xs, nl, nr)``, window-centred.

    The arithmetic of :func:`loess_point` with ``userw=False`` and abscissae
    ``u = j + 1 - xs`` (exact integers, so a row only depends on the window offsets).
    Returns the rows padded to the widest window, and a flag per row: all weights vanish.
    """
    width = nr - nl + 1
    t = np.arange(width.max() if width.size else 0)
    valid = t[None, :] < width[:, None]
    u = (nl - xs)[:, None] + t[None, :]
    h = np.maximum(xs - nl, nr - xs).astype(np.float64) + ((len_ - n) // 2 if len_ > n else 0)
    w = np.where(valid, _tricube_np(np.abs(u).astype(np.float64), h[:, None]), 0.0)
    total = w.sum(axis=1)
    empty = total <= 0.0
    w /= np.where(empty, 1.0, total)[:, None]
    if ideg > 0:
        a = (w * u).sum(axis=1)
        d = u - a[:, None]
        c = (w * d * d).sum(axis=1)
        linear = (h > 0.0) & (np.sqrt(c) > 0.001 * (n - 1.0))
        b = np.where(linear, -a / np.where(linear, c, 1.0), 0.0)
        w = np.where(linear[:, None] & valid, w * (b[:, None] * d + 1.0), w)
    return w, empty


# Layout of a plan: two flat arrays ``(pint, pfloat)`` (flat arrays keep numba's typing and
# the parallel kernel's compilation cheap). ``pint`` starts with a header:
H_N, H_LEN, H_IDEG, H_JUMP, H_NPTS, H_MAXM = 0, 1, 2, 3, 4, 5
# then start offsets of its fields; field f occupies ``pint[pint[f]:pint[f + 1]]``
H_XS, H_NL, H_NR, H_ROW, H_ROW_START, H_ROW_LEN, H_TAB_START, H_INT_END = 6, 7, 8, 9, 10, 11, 12, 13
# float fields occupy ``pfloat[pint[f]:pint[f + 1]]``
H_ROWS, H_TAB, H_UGRID, H_FLOAT_END = 14, 15, 16, 17
HEADER = 18


def build_loess_plan(n: int, len_: int, ideg: int, njump: int, xs, nl, nr):
    """Tabulate a loess smoother evaluated at the points ``(xs, nl, nr)``.

    Parameters
    ----------
    n : int
        Length of the smoothed series.
    len_ : int
        Window length.
    ideg : int
        Local polynomial degree, 0 or 1.
    njump : int
        Jump between evaluated points (for :func:`place_fits`).
    xs, nl, nr : ndarray of int64
        Evaluation points (:func:`loess_windows` or :func:`seasonal_windows`).

    Returns
    -------
    pint : ndarray of int64
        Header (``n, len, ideg, njump, npts, M``, field offsets) and the fields ``xs, nl,
        nr``; ``row`` (row of each point, or :data:`ROW_EMPTY` / :data:`ROW_ON_THE_FLY`);
        ``row_start, row_len``; ``tab_start`` (offset in ``tab`` of the kernel of each
        half-width ``m = max(xs - nl, nr - xs)``, -1: not tabulated).
    pfloat : ndarray of float64
        ``rows`` (final unweighted weights of each distinct row, window-centred; all
        interior points share one), ``tab`` (tricube kernels ``K_m[u]``, ``u = -m..m``,
        with statsmodels' cut-offs and ``(len - n) // 2`` widening) and ``ugrid``
        (``-M..M`` as floats, ``M`` the largest half-width).
    """
    xs, nl, nr = (np.asarray(a, dtype=np.int64) for a in (xs, nl, nr))
    npts = xs.size
    # rows: consecutive points with equal window offsets share one
    first = np.ones(npts, dtype=bool)
    first[1:] = ((nl[1:] - xs[1:]) != (nl[:-1] - xs[:-1])) | ((nr[1:] - xs[1:]) != (nr[:-1] - xs[:-1]))
    starts = np.flatnonzero(first)
    uses = np.diff(np.append(starts, npts))
    widths = (nr - nl + 1)[starts]
    keep = (uses > 1) | (widths.sum() <= PLAN_BUDGET)
    kept = starts[keep]
    rows2d, empty = _fixed_rows(n, len_, ideg, xs[kept], nl[kept], nr[kept])
    row_len = widths[keep]
    row_start = (np.cumsum(row_len) - row_len).astype(np.int64)
    rows = rows2d[np.arange(rows2d.shape[1])[None, :] < row_len[:, None]]
    code = np.full(starts.size, ROW_ON_THE_FLY, dtype=np.int64)
    code[keep] = np.where(empty, ROW_EMPTY, np.arange(kept.size))
    est_row = np.repeat(code, uses)
    # tricube kernels per half-width (all, or past the budget only the most used one)
    half = np.maximum(xs - nl, nr - xs)
    maxm = int(half.max())
    count = np.bincount(half, minlength=maxm + 1)
    used = np.flatnonzero(count)
    if (2 * used + 1).sum() > PLAN_BUDGET:
        used = np.array([int(np.argmax(count))])
    tab_len = 2 * used + 1
    tab_start = np.full(maxm + 1, -1, dtype=np.int64)
    tab_start[used] = np.cumsum(tab_len) - tab_len
    extra = (len_ - n) // 2 if len_ > n else 0
    m_of = np.repeat(used, tab_len)  # half-width of each table entry, u = -m..m
    u = np.arange(m_of.size) - np.repeat(tab_start[used], tab_len) - m_of
    tab = _tricube_np(np.abs(u).astype(np.float64), (m_of + extra).astype(np.float64))
    ugrid = np.arange(-maxm, maxm + 1, dtype=np.float64)
    ints = [xs, nl, nr, est_row, row_start, row_len, tab_start]
    floats = [rows, tab, ugrid]
    int_offsets = HEADER + np.concatenate([[0], np.cumsum([a.size for a in ints])])
    float_offsets = np.concatenate([[0], np.cumsum([a.size for a in floats])])
    header = np.array([n, len_, ideg, njump, npts, maxm, *int_offsets, *float_offsets], dtype=np.int64)
    pint = np.concatenate([header] + ints).astype(np.int64)
    pfloat = np.concatenate(floats).astype(np.float64)
    return pint, pfloat


def smoother_plan(n: int, len_: int, ideg: int, njump: int):
    """Plan ``(pint, pfloat)`` of the trend or low-pass smoother (:func:`loess_windows`)."""
    return build_loess_plan(n, len_, ideg, njump, *loess_windows(n, len_, njump))


def seasonal_plans(n: int, period: int, ns: int, isdeg: int, nsjump: int):
    """Plans of the seasonal smoother for both subseries lengths, packed for :func:`_seasonal_smooth`.

    Returns ``(ss_int, ss_float)``: ``ss_int[0]`` is the offset of the second plan's ints
    (the first plan, subseries of length ``ceil(n / period)``, starts at 1; the second is
    for length ``n // period``); the floats are back to back.
    """
    plans = [build_loess_plan(k, ns, isdeg, nsjump, *seasonal_windows(k, ns, nsjump))
             for k in ((n - 1) // period + 1, n // period)]
    (li, lf), (si, sf) = plans
    return np.concatenate([[1 + li.size], li, si]).astype(np.int64), np.concatenate([lf, sf])


@numba.njit(cache=True, error_model="numpy")
def plan_ints(pint, field):
    """Integer field ``field`` (``H_XS`` .. ``H_TAB_START``) of a plan, as a view."""
    return pint[pint[field]:pint[field + 1]]


@numba.njit(cache=True, error_model="numpy")
def plan_floats(pint, pfloat, field):
    """Float field ``field`` (``H_ROWS``, ``H_TAB``, ``H_UGRID``) of a plan, as a view."""
    return pfloat[pint[field]:pint[field + 1]]


# --------------------------------------------------------------------------- evaluating plans
@numba.njit(cache=True, error_model="numpy", fastmath=_FAST)
def fit_points_fixed(y, pint, pfloat, p0, p1, fits, scratch):
    """Unweighted loess fits of ``y`` at plan points ``p0 <= p < p1`` into ``fits[p]`` (NaN: no weight).

    ``scratch`` (>= n) is used only for points the plan left out (:data:`ROW_ON_THE_FLY`).
    """
    n = pint[H_N]
    xs = plan_ints(pint, H_XS)
    nl = plan_ints(pint, H_NL)
    nr = plan_ints(pint, H_NR)
    est_row = plan_ints(pint, H_ROW)
    row_start = plan_ints(pint, H_ROW_START)
    row_len = plan_ints(pint, H_ROW_LEN)
    rows = plan_floats(pint, pfloat, H_ROWS)
    for p in range(p0, p1):
        r = est_row[p]
        if r < 0:
            if r == ROW_ON_THE_FLY:
                fits[p] = loess_point(y, n, pint[H_LEN], pint[H_IDEG], xs[p], nl[p], nr[p], scratch, False, scratch)
            else:
                fits[p] = np.nan
            continue
        width = row_len[r]
        # slice views (not offset indexing) let LLVM vectorise the dot product
        row = rows[row_start[r]:row_start[r] + width]
        seg = y[nl[p] - 1:nl[p] - 1 + width]
        s = 0.0
        for t in range(width):
            s += row[t] * seg[t]
        fits[p] = s


#: Above this ``a^2 / c`` a weighted local-linear fit is ill-conditioned for the moment
#: formula (relative error ~ eps * a^2 / c): it is then evaluated as statsmodels does.
MOMENT_CONDITION_LIMIT = 64.0


@numba.njit(cache=True, error_model="numpy", fastmath=_FAST)
def _kernel_slice(pint, pfloat, m, x, nleft, nright, scratch):
    """Tricube kernel over the window ``[nleft, nright]`` around ``x``: a view of the table or, for
    an untabulated half-width ``m``, computed into ``scratch``."""
    start = plan_ints(pint, H_TAB_START)[m]
    if start >= 0:
        return plan_floats(pint, pfloat, H_TAB)[start + m + nleft - x:start + m + nright - x + 1]
    n = pint[H_N]
    h = _bandwidth(n, pint[H_LEN], x, nleft, nright)
    width = nright - nleft + 1
    for t in range(width):
        scratch[t] = _tricube(abs(float(nleft + t - x)), h)
    return scratch[:width]


@numba.njit(cache=True, error_model="numpy", fastmath=_FAST)
def fit_points_weighted(y, pint, pfloat, p0, p1, rw, fits, alpha, beta, scratch):
    """Robustness-weighted loess fits of ``y`` at plan points ``p0 <= p < p1`` (NaN: no weight).

    With ``w = K(u) rw``, ``u = j + 1 - xs``, ``S_k = sum w u^k`` and ``Y_k = sum w u^k y``,
    statsmodels' local-linear fit is ``Y0/S0 + b (Y1/S0 - a Y0/S0)``, ``a = S1/S0``,
    ``c = S2/S0 - a^2``, ``b = -a/c`` (``b = 0`` for degree 0 or when ``sqrt(c) <=
    0.001 (n - 1)``), i.e. ``fit = alpha Y0 + beta Y1``; ``alpha[p], beta[p]`` are stored
    for :func:`fit_points_reweighted`. When the robustness weights leave the fit
    ill-conditioned (``a^2 > MOMENT_CONDITION_LIMIT * c``) the point is evaluated by
    :func:`loess_point` instead and marked with ``beta[p] = NaN``. ``scratch`` >= n.
    """
    n = pint[H_N]
    len_ = pint[H_LEN]
    ideg = pint[H_IDEG]
    maxm = pint[H_MAXM]
    xs = plan_ints(pint, H_XS)
    nl = plan_ints(pint, H_NL)
    nr = plan_ints(pint, H_NR)
    ugrid = plan_floats(pint, pfloat, H_UGRID)
    rng = n - 1.0
    for p in range(p0, p1):
        x = xs[p]
        nleft = nl[p]
        nright = nr[p]
        m = max(x - nleft, nright - x)
        h = _bandwidth(n, len_, x, nleft, nright)
        kern = _kernel_slice(pint, pfloat, m, x, nleft, nright, scratch)
        rws = rw[nleft - 1:nright]
        seg = y[nleft - 1:nright]
        us = ugrid[nleft - x + maxm:nright - x + maxm + 1]
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        y0 = 0.0
        y1 = 0.0
        for t in range(nright - nleft + 1):
            w = kern[t] * rws[t]
            u = us[t]
            wu = w * u
            yt = seg[t]
            s0 += w
            s1 += wu
            s2 += wu * u
            y0 += w * yt
            y1 += wu * yt
        if s0 <= 0.0:
            alpha[p] = np.nan
            beta[p] = 0.0
            fits[p] = np.nan
            continue
        a = s1 / s0
        b = 0.0
        if h > 0.0 and ideg > 0:
            c = s2 / s0 - a * a
            if a * a > MOMENT_CONDITION_LIMIT * c:
                alpha[p] = 0.0
                beta[p] = np.nan
                fits[p] = loess_point(y, n, len_, ideg, x, nleft, nright, scratch, True, rw)
                continue
            if np.sqrt(c) > 0.001 * rng:
                b = -a / c
        alpha[p] = (1.0 - b * a) / s0
        beta[p] = b / s0
        fits[p] = alpha[p] * y0 + beta[p] * y1


@numba.njit(cache=True, error_model="numpy", fastmath=_FAST)
def fit_points_reweighted(y, z, pint, pfloat, p0, p1, rw, alpha, beta, fits, scratch):
    """Fits ``alpha Y0 + beta Y1`` from the coefficients of :func:`fit_points_weighted`.

    ``z = rw * y`` (robustness weights times the new series ``y``): with the robustness
    weights unchanged, only ``Y0 = sum K z`` and ``Y1 = sum K u z`` are needed. Points
    marked ill-conditioned (``beta[p]`` NaN) are evaluated by :func:`loess_point`.
    """
    n = pint[H_N]
    maxm = pint[H_MAXM]
    xs = plan_ints(pint, H_XS)
    nl = plan_ints(pint, H_NL)
    nr = plan_ints(pint, H_NR)
    ugrid = plan_floats(pint, pfloat, H_UGRID)
    for p in range(p0, p1):
        if np.isnan(alpha[p]):
            fits[p] = np.nan
            continue
        x = xs[p]
        nleft = nl[p]
        nright = nr[p]
        if np.isnan(beta[p]):
            fits[p] = loess_point(y, n, pint[H_LEN], pint[H_IDEG], x, nleft, nright, scratch, True, rw)
            continue
        m = max(x - nleft, nright - x)
        kern = _kernel_slice(pint, pfloat, m, x, nleft, nright, scratch)
        seg = z[nleft - 1:nright]
        us = ugrid[nleft - x + maxm:nright - x + maxm + 1]
        y0 = 0.0
        y1 = 0.0
        for t in range(nright - nleft + 1):
            kz = kern[t] * seg[t]
            y0 += kz
            y1 += kz * us[t]
        fits[p] = alpha[p] * y0 + beta[p] * y1


@numba.njit(cache=True, error_model="numpy")
def place_fits(y, pint, npts, fits, ys):
    """Write the fits of the first ``npts`` plan points into ``ys`` and interpolate the jumps.

    A vanished fit (NaN) keeps the data value ``y`` (statsmodels ``STL._ess``); with a jump
    > 1 the points in between are linearly interpolated.
    """
    n = pint[H_N]
    xs = plan_ints(pint, H_XS)
    for p in range(npts):
        i = xs[p] - 1
        v = fits[p]
        ys[i] = y[i] if np.isnan(v) else v
    newnj = min(pint[H_JUMP], n - 1)
    if newnj <= 1:
        return
    i = 0
    while i < n - newnj:
        delta = (ys[i + newnj] - ys[i]) / newnj
        for j in range(i, i + newnj):
            ys[j] = ys[i] + delta * ((j + 1) - (i + 1))
        i += newnj
    k = ((n - 1) // newnj) * newnj + 1
    if k != n and k != n - 1:
        delta = (ys[n - 1] - ys[k - 1]) / (n - k)
        for j in range(k, n):
            ys[j] = ys[k - 1] + delta * ((j + 1) - k)


# --------------------------------------------------------------------------- STL pieces
@numba.njit(cache=True, error_model="numpy")
def _moving_average(x, n, len_, ave):
    """Running mean of length ``len_`` over ``x[:n]`` (statsmodels ``STL._ma``)."""
    newn = n - len_ + 1
    flen = float(len_)
    v = 0.0
    for i in range(len_):
        v = v + x[i]
    ave[0] = v / flen
    k = len_
    m = 0
    for j in range(1, newn):
        v += x[k] - x[m]
        ave[j] = v / flen
        k += 1
        m += 1


@numba.njit(cache=True, error_model="numpy")
def _seasonal_smooth(y, n, period, userw, rw, ss_int, ss_float, season, sub_y, sub_rw, sub_ys, fits, alpha,
                     beta, scratch):
    """Cycle-subseries smoothing, each subseries extended one cycle both ways (``STL._ss``).

    Writes ``season[: n + 2 * period]`` from the detrended ``y[:n]``. ``ss_int, ss_float`` hold
    two plans back to back (:func:`seasonal_plans`): subseries of length ``ceil(n / period)``
    and ``n // period``.
    """
    k_long = (n - 1) // period + 1
    split = ss_int[0]
    long_int = ss_int[1:split]
    short_int = ss_int[split:]
    fsplit = long_int[H_FLOAT_END]
    long_float = ss_float[:fsplit]
    short_float = ss_float[fsplit:]
    for j in range(period):
        k = (n - (j + 1)) // period + 1
        pint = long_int if k == k_long else short_int
        pfloat = long_float if k == k_long else short_float
        npts = pint[H_NPTS] - 2
        for i in range(k):
            sub_y[i] = y[i * period + j]
        if userw:
            for i in range(k):
                sub_rw[i] = rw[i * period + j]
            fit_points_weighted(sub_y, pint, pfloat, 0, npts + 2, sub_rw, fits, alpha, beta, scratch)
        else:
            fit_points_fixed(sub_y, pint, pfloat, 0, npts + 2, fits, scratch)
        place_fits(sub_y, pint, npts, fits, sub_ys[1:])
        v = fits[npts]
        sub_ys[0] = sub_ys[1] if np.isnan(v) else v
        v = fits[npts + 1]
        sub_ys[k + 1] = sub_ys[k] if np.isnan(v) else v
        for m in range(k + 2):
            season[m * period + j] = sub_ys[m]


@numba.njit(cache=True, error_model="numpy")
def _select(a, n, k):
    """Partially order ``a[:n]`` in place so that ``a[k]`` is its k-th smallest value; return it.

    Quickselect with a median-of-three pivot and a three-way partition (ties cost O(n)).
    """
    lo = 0
    hi = n - 1
    while lo < hi:
        mid = (lo + hi) // 2
        x0, x1, x2 = a[lo], a[mid], a[hi]
        pivot = max(min(x0, x1), min(max(x0, x1), x2))
        # Dutch national flag: [lo, lt) < pivot, [lt, i) == pivot, (gt, hi] > pivot
        lt = lo
        gt = hi
        i = lo
        while i <= gt:
            v = a[i]
            if v < pivot:
                a[i] = a[lt]
                a[lt] = v
                lt += 1
                i += 1
            elif v > pivot:
                a[i] = a[gt]
                a[gt] = v
                gt -= 1
            else:
                i += 1
        if k < lt:
            hi = lt - 1
        elif k > gt:
            lo = gt + 1
        else:
            return a[k]
    return a[k]


@numba.njit(cache=True, error_model="numpy")
def _robustness_weights(y, fit, n, rw, scratch):
    """Bisquare robustness weights at scale 6 median|y - fit| (statsmodels ``STL._rwts``)."""
    for i in range(n):
        rw[i] = abs(y[i] - fit[i])
        scratch[i] = rw[i]
    hi = n // 2
    lo = n - hi - 1
    v_hi = _select(scratch, n, hi)
    v_lo = v_hi
    if lo != hi:  # n even: the largest value left of position hi
        v_lo = scratch[0]
        for i in range(1, hi):
            if scratch[i] > v_lo:
                v_lo = scratch[i]
    cmad = 3.0 * (v_hi + v_lo)
    if cmad == 0.0:
        for i in range(n):
            rw[i] = 1.0
        return
    c9 = 0.999 * cmad
    c1 = 0.001 * cmad
    for i in range(n):
        r = rw[i]
        if r <= c1:
            rw[i] = 1.0
        elif r <= c9:
            q = r / cmad
            q = 1.0 - q * q
            rw[i] = q * q
        else:
            rw[i] = 0.0


#: Rows of the per-series scratch array ``work`` of :func:`stl_series`.
N_WORK_ROWS = 13


@numba.njit(cache=True, error_model="numpy")
def stl_series(y, period, inner_iter, outer_iter, ss_int, ss_float, lp_int, lp_float, tr_int, tr_float,
               trend, season, rw, work):
    """STL of one series (statsmodels ``STL.fit``; netlib ``stl`` / ``onestp`` / ``rwts``).

    Parameters
    ----------
    y : ndarray of float64, shape (n,)
        The series, finite.
    period : int
        Period of the seasonal component.
    inner_iter, outer_iter : int
        Inner (seasonal/trend) loops per outer loop; outer (robustness) loops.
    ss_int, ss_float : ndarray
        :func:`seasonal_plans` (seasonal window, degree and jump are inside).
    lp_int, lp_float, tr_int, tr_float : ndarray
        :func:`smoother_plan` of the low-pass and of the trend smoother.
    trend, season, rw : ndarray of float64, shape (n,)
        Outputs: trend, seasonal component, final robustness weights.
    work : ndarray of float64, shape (N_WORK_ROWS, n + 2 * period)
        Scratch.
    """
    n = y.size
    w0 = work[0]
    cyc = work[1]
    w2 = work[2]
    scratch = work[3]
    sub_y = work[4]
    sub_rw = work[5]
    sub_ys = work[6]
    fits = work[7]
    s_alpha = work[8]
    s_beta = work[9]
    t_alpha = work[10]
    t_beta = work[11]
    z = work[12]
    n_lp = lp_int[H_NPTS]
    n_tr = tr_int[H_NPTS]
    for i in range(n):
        trend[i] = 0.0
        season[i] = 0.0
        rw[i] = 1.0
    userw = False
    k = 0
    while True:
        have_coefficients = False
        for _ in range(inner_iter):
            for i in range(n):
                w0[i] = y[i] - trend[i]
            # cycle-subseries smoothing -> C (length n + 2 period)
            _seasonal_smooth(w0, n, period, userw, rw, ss_int, ss_float, cyc, sub_y, sub_rw, sub_ys, fits,
                             s_alpha, s_beta, scratch)
            # low-pass filter of C: MA(period), MA(period), MA(3), loess(low_pass)
            _moving_average(cyc, n + 2 * period, period, w2)
            _moving_average(w2, n + period + 1, period, w0)
            _moving_average(w0, n + 2, 3, w2)
            fit_points_fixed(w2, lp_int, lp_float, 0, n_lp, fits, scratch)
            place_fits(w2, lp_int, n_lp, fits, w0)
            for i in range(n):
                season[i] = cyc[period + i] - w0[i]
                w0[i] = y[i] - season[i]
            # trend smoothing of the deseasonalised series
            if not userw:
                fit_points_fixed(w0, tr_int, tr_float, 0, n_tr, fits, scratch)
            elif not have_coefficients:
                fit_points_weighted(w0, tr_int, tr_float, 0, n_tr, rw, fits, t_alpha, t_beta, scratch)
                have_coefficients = True
            else:
                for i in range(n):
                    z[i] = rw[i] * w0[i]
                fit_points_reweighted(w0, z, tr_int, tr_float, 0, n_tr, rw, t_alpha, t_beta, fits, scratch)
            place_fits(w0, tr_int, n_tr, fits, trend)
        k += 1
        if k > outer_iter:
            break
        for i in range(n):
            w0[i] = trend[i] + season[i]
        _robustness_weights(y, w0, n, rw, scratch)
        userw = True


@numba.njit(cache=True, error_model="numpy", parallel=True)
def stl_batch(x, period, inner_iter, outer_iter, ss_int, ss_float, lp_int, lp_float, tr_int, tr_float,
              trend, season, rw):
    """:func:`stl_series` over the rows of ``x`` (n_series, n), parallel over series.

    ``trend``, ``season``, ``rw`` are (n_series, n) float64 outputs.
    """
    n_series, n = x.shape
    for s in prange(n_series):
        work = np.empty((N_WORK_ROWS, n + 2 * period), np.float64)
        stl_series(x[s], period, inner_iter, outer_iter, ss_int, ss_float, lp_int, lp_float, tr_int, tr_float,
                   trend[s], season[s], rw[s], work)
