"""Per-source attribution of IHS-related PM2.5 inside overlapping radiation areas (beyond seed 000).

The seed paper (DOI 10.3390/atmos15010131, §4 limitations) estimates ``pm25_ihs`` (eq. 10) per pixel
but "cannot disaggregate specific PM2.5 concentrations for each heat source in areas with multiple
IHSs". Here the annual map of ``pm25_ihs`` over a *cluster* of sources (radiation areas linked by
overlap) is modelled as a non-negative sum of per-source footprints::

    pm25_ihs(y, p) ≈ Σ_j β_j(y) · o_j(y) · f_j(p),      f_j(p) = exp(−d_jp / L_j) on A_j, 0 elsewhere

with ``o_j(y)`` the operating flag of source j in year y, ``d_jp`` the distance from the source and
``A_j`` its radiation area (stage 1, §2.3.2). β is fitted by non-negative least squares
(:func:`scipy.optimize.nnls`) per year; the fitted model then *splits* each pixel's estimate among the
sources covering it in proportion to ``β_j f_j(p)``, so the parts add up to ``pm25_ihs`` exactly.
What tells the sources apart is where each one's footprint peaks (distance decay inside its own
area) and which years each one operated (start, stop and shutdown years are natural experiments).

Where a source's footprint column is (nearly) a combination of the others' — less than
``min_unique`` of its squared norm lies outside their span — the data cannot separate it: such
sources are fitted as one column (equal strength assumed among them) and flagged.

Public functions: :func:`footprints`, :func:`overlap_clusters`, :func:`unique_fraction`,
:func:`fit_strengths`, :func:`split_by_footprint` and their many-column forms :func:`fit_strengths_many`,
:func:`own_means_many` (bootstrap replicates); :func:`nnls_residual2` for the search of the decays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..grid import haversine_km

#: methods recorded per source-year (the ``method`` column of ``ihs_attribution.csv``)
METHOD_ALONE = "alone"            # the source's area overlaps no operating source that year: the split is trivial
METHOD_NNLS = "nnls"              # separated by the non-negative fit
METHOD_EQUAL = "equal_strength"   # indistinguishable from others: fitted jointly, equal strength assumed
METHOD_NONE = "not_operating"     # not operating that year: contribution 0


def footprints(lat, lon, src_row, src_col, members, nx: int, decay_km) -> list[np.ndarray]:
    """Footprint ``exp(−d / L)`` of every source over its own radiation area.

    Parameters
    ----------
    lat, lon : (ny,), (nx,) array
        Pixel-centre coordinates of the grid (degrees).
    src_row, src_col : (n,) int array
        Grid cell of each source; distances are measured from its centre, as in the region growing.
    members : list of (k_i,) int array
        Flat indices ``row * nx + col`` of each source's radiation area.
    nx : int
        Grid width.
    decay_km : float or (n,) array
        e-folding distance L of each source's footprint (km).

    Returns
    -------
    list of (k_i,) float64 arrays, one per source, aligned with ``members``.
    """
    lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    decay = np.broadcast_to(np.asarray(decay_km, dtype=np.float64), (len(members),))
    out = []
    for i, m in enumerate(members):
        r, c = np.divmod(np.asarray(m, dtype=np.int64), nx)
        d = haversine_km(lat[int(src_row[i])], lon[int(src_col[i])], lat[r], lon[c])
        out.append(np.exp(-d / decay[i]))
    return out


def overlap_clusters(members, n_pixels: int) -> list[np.ndarray]:
    """Connected groups of sources whose radiation areas overlap (directly or through others).

    Returns a list of sorted int arrays of source indices; a source whose area touches no other
    forms a group of one. Union–find over the pixels shared by two or more areas.
    """
    n = len(members)
    parent = np.arange(n)

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    owner = np.full(n_pixels, -1, dtype=np.int64)
    for i, m in enumerate(members):
        m = np.asarray(m, dtype=np.int64)
        prev = owner[m]
        for j in np.unique(prev[prev >= 0]):
            ri, rj = find(i), find(int(j))
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
        owner[m] = i
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    return [np.flatnonzero(roots == r) for r in np.unique(roots)]


def unique_fraction(design: np.ndarray) -> np.ndarray:
    """For each column of ``design`` (pixels × sources), the fraction of its squared norm outside the
    span of the other columns: 1 − R² of the least-squares regression of the column on the others
    (no intercept). 0: a linear combination of the others (indistinguishable); 1: orthogonal to them.

    Computed from the Gram matrix G = XᵀX as 1 / (G_jj · (G⁻¹)_jj); an exactly singular G (a column
    that is a combination of others, or zero) gives 0 for the columns involved.
    """
    design = np.asarray(design, dtype=np.float64)
    k = design.shape[1]
    if k == 0:
        return np.zeros(0)
    gram = design.T @ design
    diag = np.diag(gram).copy()
    out = np.zeros(k)
    nonzero = diag > 0
    if k == 1:
        return nonzero.astype(np.float64)
    idx = np.flatnonzero(nonzero)
    sub = gram[np.ix_(idx, idx)]
    # scale to unit diagonal (a correlation-like matrix) so the conditioning test is scale-free
    scale = np.sqrt(diag[idx])
    corr = sub / scale[:, None] / scale[None, :]
    if idx.size == 1:
        out[idx] = 1.0
        return out
    if np.linalg.cond(corr) < 1e10:
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = 1.0 / np.diag(np.linalg.inv(corr))
    else:  # (nearly) singular: regress each column on the others explicitly
        cols = design[:, idx] / scale[None, :]
        frac = np.empty(idx.size)
        for j in range(idx.size):
            others = np.delete(cols, j, axis=1)
            coef, *_ = np.linalg.lstsq(others, cols[:, j], rcond=None)
            resid = cols[:, j] - others @ coef
            frac[j] = float(resid @ resid)
    out[idx] = np.clip(np.nan_to_num(frac, nan=0.0, posinf=0.0, neginf=0.0), 0.0, 1.0)
    return out


@dataclass
class StrengthFit:
    """Outcome of :func:`fit_strengths` for one cluster and year."""

    coef: np.ndarray        # (k,) β_j ≥ 0, the source's value at its own pixel (f = 1), µg m-3
    method: np.ndarray      # (k,) object: METHOD_NNLS, METHOD_EQUAL or METHOD_ALONE
    unique: np.ndarray      # (k,) unique fraction of each footprint column
    residual: float         # ‖y − Xβ‖ of the fit


def fit_strengths(values: np.ndarray, design: np.ndarray, *, min_unique: float = 0.05) -> StrengthFit:
    """Non-negative strengths β of the footprints in ``design`` (pixels × sources) best explaining
    ``values`` (pixels), with indistinguishable columns merged.

    Columns whose :func:`unique_fraction` is below ``min_unique`` are summed into one column (their
    sources are assumed to have equal strength), the reduced problem is solved by
    :func:`scipy.optimize.nnls`, and the merged coefficient is given to each of them.
    """
    from scipy.optimize import nnls

    values = np.asarray(values, dtype=np.float64)
    design = np.asarray(design, dtype=np.float64)
    k = design.shape[1]
    if k == 1:
        coef, res = nnls(design, values)
        return StrengthFit(coef, np.array([METHOD_ALONE], dtype=object), np.ones(1), float(res))
    reduced, expand, method, unique = _merged_columns(design, min_unique)
    beta, res = nnls(reduced, values)
    return StrengthFit(beta[expand], method, unique, float(res))


def nnls_residual2(design: np.ndarray, values: np.ndarray, *, gram: np.ndarray | None = None,
                   rhs: np.ndarray | None = None) -> float:
    """``min ‖design β − values‖²`` over ``β ≥ 0``: the squared residual of :func:`scipy.optimize.nnls`.

    Solved on the ``k × k`` Cholesky factor ``R`` of the Gram matrix (``RᵀR = XᵀX``) instead of the
    ``pixels × k`` design: with ``Rᵀz = Xᵀy``, ``‖Xβ − y‖² = ‖Rβ − z‖² + ‖y‖² − ‖z‖²`` for every β, so
    both problems have the same minimiser, and the small one costs a fraction of the large one (the decay
    search of a cluster of 47 sources solves ~50 000 of them). A Gram matrix that is not clearly positive
    definite (nearly dependent footprints) is left to the full problem. ``gram`` (``XᵀX``) and ``rhs``
    (``Xᵀy``), when the caller has them, are used as given.
    """
    from scipy.linalg import solve_triangular
    from scipy.optimize import nnls

    design = np.asarray(design, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    gram = design.T @ design if gram is None else gram
    rhs = design.T @ values if rhs is None else rhs
    try:
        upper = np.linalg.cholesky(gram).T
    except np.linalg.LinAlgError:
        upper = None
    diag = np.abs(np.diag(upper)) if upper is not None else None
    if upper is None or not diag.size or diag.min() <= 1e-6 * diag.max():
        _, res = nnls(design, values)
        return float(res * res)
    z = solve_triangular(upper, rhs, trans="T")
    _, res = nnls(upper, z)
    return float(max(values @ values - z @ z + res * res, 0.0))


def _merged_columns(design: np.ndarray, min_unique: float):
    """The design with the columns below ``min_unique`` (:func:`unique_fraction`) summed into one, the
    index of each source's column in it, each source's method and unique fraction."""
    unique = unique_fraction(design)
    weak = unique < min_unique
    method = np.where(weak, METHOD_EQUAL, METHOD_NNLS).astype(object)
    keep = np.flatnonzero(~weak)
    cols = [design[:, keep]]
    expand = np.full(design.shape[1], keep.size, dtype=np.int64)
    expand[keep] = np.arange(keep.size)
    if weak.any():
        cols.append(design[:, weak].sum(axis=1, keepdims=True))
    return np.concatenate(cols, axis=1), expand, method, unique


def fit_strengths_many(values: np.ndarray, design: np.ndarray, *, min_unique: float = 0.05) -> np.ndarray:
    """:func:`fit_strengths`'s coefficients for many value columns at once: ``values`` (pixels, n) →
    (sources, n).

    The unconstrained least-squares solution of every column comes from one factorisation; where it is
    non-negative it is the NNLS solution (the unique minimiser of a full-rank problem), and the
    columns with a negative coefficient are solved by :func:`scipy.optimize.nnls` one by one.
    """
    from scipy.optimize import nnls

    values = np.asarray(values, dtype=np.float64)
    design = np.asarray(design, dtype=np.float64)
    if design.shape[1] == 1:
        reduced, expand = design, np.zeros(1, dtype=np.int64)
    else:
        reduced, expand, _, _ = _merged_columns(design, min_unique)
    beta, _, rank, _ = np.linalg.lstsq(reduced, values, rcond=None)
    if rank < reduced.shape[1]:
        redo = np.arange(values.shape[1])
    else:
        redo = np.flatnonzero((beta < 0).any(axis=0))
    for b in redo:
        beta[:, b] = nnls(reduced, values[:, b])[0]
    return beta[expand]


def own_means_many(values: np.ndarray, design: np.ndarray, coef: np.ndarray, rows) -> np.ndarray:
    """Each source's mean part over its own pixels for many value columns: :func:`split_by_footprint`
    column by column, then the mean of column ``j`` over ``rows[j]``, without the (pixels, sources, n) parts.

    ``values`` (pixels, n), ``design`` (pixels, sources), ``coef`` (sources, n), ``rows``: per source the
    pixel rows of its area. Returns (sources, n).
    """
    values = np.asarray(values, dtype=np.float64)
    design = np.asarray(design, dtype=np.float64)
    total = design @ coef  # (pixels, n): the modelled sum at every pixel
    empty = total <= 0  # every covering source fitted at 0: split by the footprints alone
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(empty, 0.0, values / np.where(empty, 1.0, total))
        cover = design.sum(axis=1)[:, None]
        even = np.where(empty & (cover > 0), values / np.where(cover > 0, cover, 1.0), 0.0)
    out = np.full((design.shape[1], values.shape[1]), np.nan)
    for j, r in enumerate(rows):
        r = np.asarray(r, dtype=np.int64)
        if r.size:
            out[j] = (coef[j] * (design[r, j] @ scaled[r]) + design[r, j] @ even[r]) / r.size
    return out


def split_by_footprint(values: np.ndarray, design: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Split each pixel's ``values`` among the sources (columns of ``design``) in proportion to
    ``coef_j · design[:, j]``: (pixels, sources) parts whose rows add up to ``values``.

    Where every modelled part of a pixel is zero (all covering sources fitted at 0), the pixel is split
    in proportion to the footprints alone (equal strengths)."""
    design = np.asarray(design, dtype=np.float64)
    model = design * np.asarray(coef, dtype=np.float64)[None, :]
    total = model.sum(axis=1)
    empty = total <= 0
    if empty.any():
        model[empty] = design[empty]
        total = model.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = np.where(total[:, None] > 0, model / total[:, None], 0.0)
    return weights * np.asarray(values, dtype=np.float64)[:, None]
