"""Aggregates of total and IHS-related PM2.5 (seed 000 §2.3.5 and §3): pure numpy/pandas functions.

Everything the statistics stage reports is built from *sums and counts*, accumulated tile by tile,
so a China-sized cube is never loaded whole and the means are exact whatever the tiling:

* per **group** of pixels and per **day** (:class:`GroupLayout`): the whole region, the union of IHS
  radiation areas, the background, every city (all its pixels, and its IHS-area pixels), every single
  IHS radiation area (its member pixels, areas overlap);
* per **pixel** and per **year**: annual sums and counts, hence annual and period means
  (both from :func:`block_sums`, one block of days of one tile at a time).

Definitions (the same everywhere — tables, JSON and report):

* a mean over a group and a period is the **pooled mean over all valid pixel-days** of the group in
  the period (``Σ value / count``), pixels unweighted (0.01° cells, as in the paper's per-pixel means);
* total PM2.5 is the input ``pm25``; IHS-related PM2.5 is stage 3's ``pm25_ihs`` (eq. 10);
* inside IHS areas, IHS-related and total PM2.5 are summed over the same *paired* pixel-days (both
  finite), and the **contribution (share)** is ``Σ pm25_ihs / Σ pm25`` over those pixel-days — the ratio
  of the means, in percent (a ratio of daily ratios would be dominated by clean days);
* **seasons** are DJF/MAM/JJA/SON; **December counts toward the following year's DJF** (meteorological
  winter: DJF 2013 = Dec 2012 + Jan 2013 + Feb 2013). The first DJF (no preceding December) and the
  last one (only the final December) are incomplete; they are flagged ``complete = False`` and left
  out of seasonal trend tests. Season means pooled over all years are unaffected by this rule;
* **year-on-year change** is ``(v_y − v_{y−1}) / v_{y−1} × 100`` (%); the **decline** between the first
  and the last year (Table 2's last column) is ``(v_first − v_last) / v_first × 100`` (%). For IHS-related
  values both are computed **only between years in which the source (or any source of the area)
  operated**: a change against a year without any operating source compares a signal with noise
  (:func:`yoy_pct` and :func:`operating_decline` take the operating flags);
* **negative values** of the IHS-related estimate are kept (they are estimation noise around a small
  true value) and **counted** (``n_neg``: paired pixel-days with ``pm25_ihs < 0``), never clipped;
* **box-plot numbers**: quartiles by linear interpolation (``numpy.percentile``, as matplotlib), whiskers
  at the most extreme data within 1.5 IQR of the box (matplotlib's rule), outliers beyond.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

SEASONS = ("DJF", "MAM", "JJA", "SON")
#: month → season index into :data:`SEASONS`
MONTH_SEASON = np.array([-1, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0])
DECEMBER_RULE = ("December counts toward the following year's DJF (DJF of year Y = Dec Y-1, Jan Y, Feb Y); "
                 "incomplete first/last DJF are flagged and left out of seasonal trend tests")

#: Names of the per-group, per-day sums (``n_*`` are counts). ``s_oem`` and ``s_true`` are optional.
SUM_FIELDS = ("s_tot", "n_tot", "s_ihs", "s_totp", "n_pair", "n_neg")
OPTIONAL_SUM_FIELDS = ("s_oem", "s_true")


# --------------------------------------------------------------------------- calendar
def calendar(time) -> pd.DataFrame:
    """One row per day: ``date``, ``year``, ``month``, ``season`` (DJF…) and ``season_year``.

    ``season_year`` follows :data:`DECEMBER_RULE`: December belongs to the next year's DJF.
    """
    t = pd.DatetimeIndex(np.asarray(time, dtype="datetime64[ns]"))
    month = t.month.to_numpy()
    year = t.year.to_numpy()
    season_idx = MONTH_SEASON[month]
    season_year = year + (month == 12)
    return pd.DataFrame({
        "date": t, "year": year, "month": month,
        "season": np.asarray(SEASONS, dtype=object)[season_idx], "season_year": season_year,
    })


def season_completeness(cal: pd.DataFrame) -> pd.DataFrame:
    """Per (season_year, season): number of days and whether all three months are present."""
    g = cal.groupby(["season_year", "season"], sort=False)
    out = g.agg(n_days=("date", "size"), n_months=("month", "nunique")).reset_index()
    out["complete"] = out["n_months"] == 3
    order = {s: i for i, s in enumerate(SEASONS)}
    out = out.sort_values(["season_year", "season"], key=lambda c: c.map(order) if c.name == "season" else c)
    return out.drop(columns="n_months").reset_index(drop=True)


# --------------------------------------------------------------------------- groups
@dataclass(frozen=True)
class GroupLayout:
    """Index of every pixel group whose daily sums are accumulated.

    Order: ``region`` (all pixels), ``ihs_area`` (union of IHS areas), ``background``, then one group
    per city over all its pixels (``city``), one per city over its IHS-area pixels (``city_ihs``), and
    one per IHS over its radiation area (``ihs``).
    """

    n_city: int
    n_ihs: int

    REGION = 0
    IHS_AREA = 1
    BACKGROUND = 2

    def city(self, c):
        return 3 + np.asarray(c)

    def city_ihs(self, c):
        return 3 + self.n_city + np.asarray(c)

    def ihs(self, i):
        return 3 + 2 * self.n_city + np.asarray(i)

    @property
    def size(self) -> int:
        return 3 + 2 * self.n_city + self.n_ihs

    def kinds(self) -> list[tuple[str, int]]:
        """``(kind, index)`` of every group, in order."""
        return ([("region", -1), ("ihs_area", -1), ("background", -1)]
                + [("city", c) for c in range(self.n_city)]
                + [("city_ihs", c) for c in range(self.n_city)]
                + [("ihs", i) for i in range(self.n_ihs)])


def tile_membership(layout: GroupLayout, ihs_mask: np.ndarray, background: np.ndarray, city_id: np.ndarray,
                    ihs_members: Sequence[tuple[int, np.ndarray]] = ()):
    """Sparse pixel → group membership of one tile.

    Parameters
    ----------
    ihs_mask, background, city_id : (ty, tx) arrays
        Union of IHS areas (bool/int), background (bool/int), city index (−1: none).
    ihs_members : sequence of (ihs index, flat local pixel indices)
        Members of each IHS area that fall in this tile.

    Returns
    -------
    matrix : scipy.sparse.csr_matrix, shape (pixels, k)
        1 where a pixel belongs to a group.
    groups : (k,) int64
        Global group index of every column.
    """
    from scipy import sparse

    inside = np.asarray(ihs_mask).ravel().astype(bool)
    bg = np.asarray(background).ravel().astype(bool)
    city = np.asarray(city_id).ravel().astype(np.int64)
    n_pix = inside.size
    rows, cols = [np.arange(n_pix)], [np.full(n_pix, layout.REGION)]
    idx = np.flatnonzero(inside)
    rows.append(idx), cols.append(np.full(idx.size, layout.IHS_AREA))
    idx = np.flatnonzero(bg)
    rows.append(idx), cols.append(np.full(idx.size, layout.BACKGROUND))
    in_city = city >= 0
    if layout.n_city:
        if (city >= layout.n_city).any():
            raise ValueError(f"city_id holds {city.max()} but the city table has {layout.n_city} entries")
        idx = np.flatnonzero(in_city)
        rows.append(idx), cols.append(layout.city(city[idx]))
        idx = np.flatnonzero(in_city & inside)
        rows.append(idx), cols.append(layout.city_ihs(city[idx]))
    for i, local in ihs_members:
        local = np.asarray(local, dtype=np.int64)
        rows.append(local), cols.append(np.full(local.size, int(layout.ihs(i))))
    rows = np.concatenate(rows)
    cols = np.concatenate(cols).astype(np.int64)
    groups, col_local = np.unique(cols, return_inverse=True)
    matrix = sparse.csr_matrix((np.ones(rows.size), (rows, col_local)), shape=(n_pix, groups.size))
    return matrix, groups


def block_sums(total: np.ndarray, ihs: np.ndarray, matrix, *, oem: np.ndarray | None = None,
               truth: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-group, per-day sums and per-pixel sums of one block of days of one tile.

    Parameters
    ----------
    total, ihs : (days, pixels) arrays
        Total PM2.5 and IHS-related PM2.5 (NaN outside IHS areas / where missing).
    matrix : (pixels, k) sparse or dense 0/1 matrix
        Group membership from :func:`tile_membership`.
    oem, truth : (days, pixels) arrays, optional
        PM2.5 from other sources (``pm25_bl_oem``) and the true IHS PM2.5 of a synthetic scene.

    Returns
    -------
    groups : dict of (k, days) float64
        ``s_tot``/``n_tot`` — total PM2.5 over its finite pixel-days; ``s_ihs``, ``s_totp``, ``n_pair`` —
        IHS-related and total PM2.5 over the *paired* pixel-days where both (and the truth, when given)
        are finite; ``n_neg`` — paired pixel-days with a negative IHS-related value; ``s_oem``/``n_oem``; ``s_true`` (truth over the paired pixel-days).
    pixels : dict of (pixels,) float64
        The same sums over the block's days for every pixel, plus ``s_err``/``s_err2`` (sums of
        estimate − truth and its square over the paired pixel-days) when the truth is given.
    """
    dense = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix, dtype=np.float64)
    tot = np.asarray(total, dtype=np.float64)
    tot_ok = np.isfinite(tot)
    tot0 = np.where(tot_ok, tot, 0.0)
    est = np.asarray(ihs, dtype=np.float64)
    pair = tot_ok & np.isfinite(est)
    true = None
    if truth is not None:
        true = np.asarray(truth, dtype=np.float64)
        pair &= np.isfinite(true)
    fields = {"s_tot": tot0, "n_tot": tot_ok, "s_ihs": np.where(pair, est, 0.0), "s_totp": np.where(pair, tot0, 0.0),
              "n_pair": pair, "n_neg": pair & (np.where(pair, est, 0.0) < 0)}
    if oem is not None:
        o = np.asarray(oem, dtype=np.float64)
        o_ok = np.isfinite(o)
        fields["s_oem"], fields["n_oem"] = np.where(o_ok, o, 0.0), o_ok
    if true is not None:
        fields["s_true"] = np.where(pair, true, 0.0)
    groups, pixels = {}, {}
    for name, values in fields.items():
        values = values.astype(np.float64, copy=False)
        groups[name] = np.ascontiguousarray((values @ dense).T)  # BLAS: (days, pixels) @ (pixels, k)
        pixels[name] = values.sum(axis=0)
    if true is not None:
        err = fields["s_ihs"] - fields["s_true"]
        pixels["s_err"] = err.sum(axis=0)
        pixels["s_err2"] = (err * err).sum(axis=0)
    return groups, pixels


def ratio(num, den) -> np.ndarray:
    """``num / den`` with NaN where ``den`` is 0 (no valid pixel-day)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


def means_from_sums(s: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Means and share from sums (any shape): ``pm25`` (total over all valid pixel-days), ``pm25_ihs``,
    ``pm25_paired`` (total over the paired pixel-days), ``share_pct``, and ``negative_pct`` (percent of the
    paired pixel-days with a negative IHS-related value), ``pm25_bl_oem``/``pm25_ihs_true``/``share_true_pct``
    when their sums are there."""
    out = {
        "pm25": ratio(s["s_tot"], s["n_tot"]),
        "pm25_ihs": ratio(s["s_ihs"], s["n_pair"]),
        "pm25_paired": ratio(s["s_totp"], s["n_pair"]),
        "share_pct": 100.0 * ratio(s["s_ihs"], s["s_totp"]),
    }
    if "n_neg" in s:
        out["negative_pct"] = 100.0 * ratio(s["n_neg"], s["n_pair"])
    if "s_oem" in s:
        out["pm25_bl_oem"] = ratio(s["s_oem"], s["n_oem"])
    if "s_true" in s:
        out["pm25_ihs_true"] = ratio(s["s_true"], s["n_pair"])
        out["share_true_pct"] = 100.0 * ratio(s["s_true"], s["s_totp"])
    return out


def reduce_by(sums: Mapping[str, np.ndarray], labels, order=None) -> tuple[list, dict[str, np.ndarray]]:
    """Sum the last (day) axis of every array within each label; returns ``(keys, sums (…, K))``.

    ``labels`` is one label per day (any hashable, e.g. a year, or a (season_year, season) tuple).
    """
    labels = list(labels)
    keys = list(order) if order is not None else list(dict.fromkeys(labels))
    position = {k: i for i, k in enumerate(keys)}
    idx = np.array([position.get(l, -1) for l in labels])
    onehot = np.zeros((len(labels), len(keys)))
    ok = idx >= 0
    onehot[np.flatnonzero(ok), idx[ok]] = 1.0
    return keys, {name: np.asarray(arr, dtype=np.float64) @ onehot for name, arr in sums.items()}


# --------------------------------------------------------------------------- per-pixel / descriptive
def box_stats(values, whis: float = 1.5) -> dict:
    """Box-plot numbers of a sample (NaNs dropped): matplotlib's ``boxplot`` conventions.

    Returns ``n, mean, std, min, q1, median, q3, iqr, whislo, whishi, n_outliers, max``.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    keys = ("n", "mean", "std", "min", "q1", "median", "q3", "iqr", "whislo", "whishi", "n_outliers", "max")
    if x.size == 0:
        return dict.fromkeys(keys, np.nan) | {"n": 0, "n_outliers": 0}
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    iqr = q3 - q1
    lo_lim, hi_lim = q1 - whis * iqr, q3 + whis * iqr
    inside = x[(x >= lo_lim) & (x <= hi_lim)]
    whislo = inside.min() if inside.size else q1
    whishi = inside.max() if inside.size else q3
    return {"n": int(x.size), "mean": float(x.mean()), "std": float(x.std(ddof=1)) if x.size > 1 else np.nan,
            "min": float(x.min()), "q1": float(q1), "median": float(med), "q3": float(q3), "iqr": float(iqr),
            "whislo": float(whislo), "whishi": float(whishi),
            "n_outliers": int(((x < lo_lim) | (x > hi_lim)).sum()), "max": float(x.max())}


def yoy_pct(values, operating=None) -> np.ndarray:
    """Year-on-year change in percent, ``(v_y − v_{y−1}) / v_{y−1} × 100``; NaN for the first value.

    ``operating`` (same shape, bool): whether the source (or any source of the area) operated each
    year; the change of year ``y`` is then NaN unless both ``y`` and ``y − 1`` were operating years.
    """
    v = np.asarray(values, dtype=np.float64)
    out = np.full(v.shape, np.nan)
    if v.shape[-1] > 1:
        out[..., 1:] = 100.0 * ratio(v[..., 1:] - v[..., :-1], v[..., :-1])
    if operating is not None:
        op = np.broadcast_to(np.asarray(operating, dtype=bool), v.shape)
        both = np.zeros(v.shape, dtype=bool)
        both[..., 1:] = op[..., 1:] & op[..., :-1]
        out = np.where(both, out, np.nan)
    return out


def operating_decline(values, operating=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decline (%) between the first and the last *operating* year of each row of ``values (…, years)``.

    Returns ``(decline_pct, first, last)``: the decline :func:`decline_pct` between the values at the
    row's first and last year flagged in ``operating`` (all years when ``None``) and those positions
    (−1 and NaN decline when the row has fewer than two operating years).
    """
    v = np.asarray(values, dtype=np.float64)
    op = (np.ones(v.shape, dtype=bool) if operating is None
          else np.broadcast_to(np.asarray(operating, dtype=bool), v.shape))
    n = v.shape[-1]
    idx = np.arange(n)
    first = np.where(op.any(axis=-1), np.where(op, idx, n).min(axis=-1), -1)
    last = np.where(op.any(axis=-1), np.where(op, idx, -1).max(axis=-1), -1)
    ok = (first >= 0) & (last > first)
    take = lambda pos: np.take_along_axis(v, np.clip(pos, 0, n - 1)[..., None], axis=-1)[..., 0]  # noqa: E731
    dec = np.where(ok, decline_pct(take(first), take(last)), np.nan)
    return dec, np.where(ok, first, -1), np.where(ok, last, -1)


def decline_pct(first, last) -> np.ndarray:
    """Decline from the first to the last value in percent (positive = decrease), Table 2's last column."""
    return 100.0 * ratio(np.asarray(first, dtype=np.float64) - np.asarray(last, dtype=np.float64), first)
