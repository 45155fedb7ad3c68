"""Tests and summaries behind the statistics tables, as plain dicts (seed 000 §2.3.5): thin adapters over
this package's trend (Mann–Kendall, Sen), Pearson, Mann–Whitney U and Moran's I implementations.

Series with too few finite values give NaN numbers (and "insufficient data"), never an exception, so a
table row can always be written."""
from __future__ import annotations

import numpy as np

def trend_test(series, alpha: float = 0.05) -> dict:
    """Mann–Kendall test and Sen's slope with its (1 − alpha) CI of one series (pymannkendall semantics:
    NaNs dropped, Sen's pairwise slopes over the original time positions).

    Returns ``n, trend, h, p, z, tau, s, var_s, slope, intercept, slope_lo, slope_hi``; NaNs (trend
    ``"insufficient data"``) for fewer than 3 valid values.
    """
    from . import mann_kendall, sens_slope

    x = np.asarray(series, dtype=np.float64).ravel()
    n = int(np.isfinite(x).sum())
    keys = ("h", "p", "z", "tau", "s", "var_s", "slope", "intercept", "slope_lo", "slope_hi")
    if n < 3:
        return {"n": n, "trend": "insufficient data"} | dict.fromkeys(keys, np.nan)
    x = np.where(np.isfinite(x), x, np.nan)
    mk = mann_kendall(x, alpha=alpha)
    sen = sens_slope(x, alpha=alpha)
    return {"n": n, "trend": str(mk.trend), "h": bool(mk.h), "p": float(mk.p), "z": float(mk.z),
            "tau": float(mk.tau), "s": float(mk.s), "var_s": float(mk.var_s), "slope": float(mk.slope),
            "intercept": float(mk.intercept), "slope_lo": float(sen.slope_low), "slope_hi": float(sen.slope_high)}


def pixel_trends(annual: np.ndarray, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Per-pixel MK z, p, Sen slope and significant trend sign (−1/0/1) of annual means ``(years, pixels)``.

    Missing years are dropped per pixel (pymannkendall semantics); pixels with fewer than 3 valid years
    get NaN (sign 0).
    """
    annual = np.asarray(annual, dtype=np.float64)
    n_year, n_pix = annual.shape
    out = {"z": np.full(n_pix, np.nan), "p": np.full(n_pix, np.nan), "slope": np.full(n_pix, np.nan),
           "sign": np.zeros(n_pix, dtype=np.int8)}
    ok = np.isfinite(annual).sum(axis=0) >= 3
    if not ok.any():
        return out
    from . import mann_kendall

    mk = mann_kendall(annual[:, ok].T, alpha=alpha)  # (pixels, years): leading axis batched
    z = np.asarray(mk.z, dtype=np.float64).reshape(-1)
    h = np.asarray(mk.h).reshape(-1).astype(bool)
    out["z"][ok] = z
    out["p"][ok] = np.asarray(mk.p, dtype=np.float64).reshape(-1)
    out["slope"][ok] = np.asarray(mk.slope, dtype=np.float64).reshape(-1)
    out["sign"][ok] = np.where(h, np.sign(np.nan_to_num(z)), 0).astype(np.int8)
    return out


def pearson_test(x, y) -> dict:
    """Pearson r and two-sided p of paired values (pairs with a NaN dropped, scipy semantics); NaN below
    3 pairs or with a constant series."""
    from . import pearson

    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    n = int(ok.sum())
    if n < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return {"n": n, "r": np.nan, "p": np.nan}
    res = pearson(x[ok], y[ok])
    return {"n": n, "r": float(res.statistic), "p": float(res.pvalue)}


def mwu_test(background, ihs_area) -> dict:
    """Mann–Whitney U between background and IHS-area samples (scipy semantics, two-sided, continuity).

    ``u_background`` is scipy's statistic for ``x = background``; ``u_eq11`` is eq. 11 of the paper,
    ``n1·n2 + n1(n1+1)/2 − R1`` with R1 the background rank sum (= ``n1·n2 − u_background``).
    """
    from . import mann_whitney_u

    x = np.asarray(background, dtype=np.float64).ravel()
    y = np.asarray(ihs_area, dtype=np.float64).ravel()
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    out = {"n_background": int(x.size), "n_ihs_area": int(y.size)}
    if x.size == 0 or y.size == 0:
        return out | {"u_background": np.nan, "u_eq11": np.nan, "p": np.nan}
    res = mann_whitney_u(x, y, alternative="two-sided", use_continuity=True)
    u = float(res.statistic)
    return out | {"u_background": u, "u_eq11": float(x.size) * y.size - u, "p": float(res.pvalue)}


def moran_test(raster, contiguity: str = "queen", transform: str = "r") -> dict:
    """Global Moran's I of a raster (NaN cells neither observations nor neighbours; esda semantics)."""
    from . import morans_i

    res = morans_i(np.asarray(raster, dtype=np.float64), contiguity=contiguity, transform=transform)
    keys = ("I", "EI", "VI_norm", "z_norm", "p_norm", "VI_rand", "z_rand", "p_rand", "n", "n_islands")
    return {"contiguity": contiguity, "transform": transform} | {k: float(getattr(res, k)) for k in keys}


def describe(values) -> dict:
    """Mean, standard deviation, min, max of a sample (NaNs dropped), the paper's §3.1.1 numbers."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"n": 0, "mean": np.nan, "std": np.nan, "min": np.nan, "median": np.nan, "max": np.nan}
    return {"n": int(x.size), "mean": float(x.mean()), "std": float(x.std(ddof=1)) if x.size > 1 else np.nan,
            "min": float(x.min()), "median": float(np.median(x)), "max": float(x.max())}
