"""Fast per-day variogram fitting for day-by-day kriging over thousands of days.

:func:`ihs_hpc.ops.gapfill.fit_variogram` reproduces PyKrige's automatic fit (robust ``soft_l1``
least squares over all three parameters); at ~0.1–0.4 s a day it would dominate a ten-year run.
For fixed range every non-linear model is linear in (psill, nugget), so the least-squares fit
reduces to a one-dimensional search over the range with a closed-form, non-negative
(psill, nugget) solve inside: Brent's method on the profile over ``(0, max lag]`` after a coarse
grid. The binned empirical semivariogram is PyKrige's (:func:`experimental_variogram`). Cost: a few
milliseconds a day.

:func:`local_semivariogram` is the alternative estimator (``prep.variogram: local``): it bins pixel pairs at short grid offsets (up to ``max_cells``), the
distances at which a k-nearest-neighbour kriging actually interpolates, so the fitted nugget and
the behaviour near the origin come from the data's small-scale structure rather than from six bins
spanning the whole domain. :func:`fit_variogram_lags` fits any model to such lags.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from .variogram_model import VariogramFitError, experimental_variogram, variogram_model_values


def _shape(model: str, range_: float, lags: np.ndarray) -> np.ndarray:
    """Model value at unit psill, zero nugget."""
    return variogram_model_values(model, [1.0, range_, 0.0], lags)


def _nonneg_two_param(a: np.ndarray, g: np.ndarray) -> tuple[float, float, float]:
    """Least squares of g ≈ psill·a + nugget with psill, nugget ≥ 0; returns (psill, nugget, sse).

    Closed form from the 2×2 normal equations; when the unconstrained optimum has a negative
    parameter the optimum lies on that bound, where the other parameter has a closed form too.
    """
    n = float(a.size)
    sa, sg = float(a.sum()), float(g.sum())
    saa, sag, sgg = float(a @ a), float(a @ g), float(g @ g)

    def sse(p, c):
        return p * p * saa + 2 * p * c * sa + n * c * c - 2 * p * sag - 2 * c * sg + sgg

    det = n * saa - sa * sa
    candidates = []
    if det > 0:
        p = (n * sag - sa * sg) / det
        c = (sg - p * sa) / n
        if p >= 0 and c >= 0:
            candidates.append((p, c))
    candidates.append((max(sag / saa, 0.0) if saa > 0 else 0.0, 0.0))  # nugget = 0
    candidates.append((0.0, max(sg / n, 0.0)))  # psill = 0
    p, c = min(candidates, key=lambda pc: sse(*pc))
    return float(p), float(c), max(float(sse(p, c)), 0.0)


def fit_variogram_lags(lags, gamma, model: str = "exponential", max_range: float | None = None) -> dict:
    """Least-squares fit of ``model`` to a binned semivariogram (PyKrige parameter names).

    Minimises the plain sum of squared residuals with psill, nugget ≥ 0 and 0 < range ≤
    ``max_range`` (default: the largest lag, PyKrige's bound); the linear model in closed form.
    """
    lags = np.asarray(lags, dtype=np.float64)
    gamma = np.asarray(gamma, dtype=np.float64)
    if lags.size == 0 or lags.max() <= 0 or gamma.max() <= 0:
        raise VariogramFitError("no usable empirical variogram (all points coincide or all values are equal)")
    if model == "linear":
        slope, nugget, _ = _nonneg_two_param(lags, gamma)
        return {"slope": slope, "nugget": nugget}
    max_lag = float(lags.max())
    top = float(max_range) if max_range is not None else max_lag

    def profile(range_):
        return _nonneg_two_param(_shape(model, range_, lags), gamma)[2]

    grid = np.geomspace(max_lag / 200.0, max(top, max_lag / 100.0), 24 if top <= max_lag else 40)
    sse = [profile(r) for r in grid]
    i = int(np.argmin(sse))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    best_range = grid[i]
    if hi > lo:
        res = minimize_scalar(profile, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6 * max_lag})
        if res.fun <= sse[i]:
            best_range = float(res.x)
    psill, nugget, _ = _nonneg_two_param(_shape(model, best_range, lags), gamma)
    if psill <= 0 and nugget <= 0:
        raise VariogramFitError(f"degenerate {model} fit (zero sill)")
    return {"psill": psill, "range": float(best_range), "nugget": nugget}


def fit_variogram_fast(x, y, z, model: str = "exponential", nlags: int = 6, max_points: int = 400,
                       seed=0) -> dict:
    """Least-squares variogram fit (PyKrige parameter names) by a profile search over the range.

    Parameters mirror :func:`ihs_hpc.ops.gapfill.fit_variogram`: PyKrige's binned semivariogram of
    a seeded subsample of ``max_points`` points, fitted by :func:`fit_variogram_lags` with
    0 < range ≤ max lag.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    z = np.asarray(z, dtype=np.float64).ravel()
    if z.size < 2:
        raise VariogramFitError(f"a variogram needs at least 2 points, got {z.size}")
    if z.size > max_points:
        pick = np.sort(np.random.default_rng(seed).choice(z.size, size=int(max_points), replace=False))
        x, y, z = x[pick], y[pick], z[pick]
    lags, gamma = experimental_variogram(x, y, z, int(nlags))
    return fit_variogram_lags(lags, gamma, model)


def local_semivariogram(field, lat, lon, max_cells: int = 8, stride: int = 1, min_pairs: int = 30):
    """Empirical semivariogram of one gridded day from pixel pairs up to ``max_cells`` apart.

    Every pair of valid pixels whose offset ``(dy, dx)`` (in cells, one of each ± pair) satisfies
    ``dy² + dx² ≤ max_cells²`` contributes ``0.5·(z₁ − z₂)²`` to the lag ``hypot(dy·Δlat, dx·Δlon)``
    in degrees (the kriging's coordinates); anchors may be thinned to every ``stride``-th row and
    column. Offsets with the same distance share a bin; bins with fewer than ``min_pairs`` pairs are
    dropped. Returns ``(lags, gamma)`` sorted by lag.

    Parameters
    ----------
    field : array_like, shape (ny, nx)
        One day; NaN marks missing pixels.
    lat, lon : array_like, shapes (ny,), (nx,)
        Regularly spaced cell centres (degrees).
    """
    from ..kernels.variogram import offset_semivariance

    field = np.ascontiguousarray(field, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    if field.ndim != 2 or field.shape != (lat.size, lon.size):
        raise ValueError(f"field must have shape (lat, lon) = {(lat.size, lon.size)}, got {field.shape}")
    if max_cells < 1 or stride < 1:
        raise ValueError(f"max_cells and stride must be >= 1, got {max_cells}, {stride}")
    dlat = abs(float(lat[1] - lat[0])) if lat.size > 1 else abs(float(lon[1] - lon[0]))
    dlon = abs(float(lon[1] - lon[0])) if lon.size > 1 else dlat
    offsets = [(dy, dx) for dy in range(0, max_cells + 1) for dx in range(-max_cells, max_cells + 1)
               if not (dy == 0 and dx <= 0) and dy * dy + dx * dx <= max_cells * max_cells]
    dys = np.array([o[0] for o in offsets], dtype=np.int64)
    dxs = np.array([o[1] for o in offsets], dtype=np.int64)
    sums = np.zeros(dys.size)
    counts = np.zeros(dys.size, dtype=np.int64)
    offset_semivariance(field, dys, dxs, int(stride), sums, counts)
    distance = np.round(np.hypot(dys * dlat, dxs * dlon), 12)
    lags, inverse = np.unique(distance, return_inverse=True)
    bin_sums = np.bincount(inverse, weights=sums, minlength=lags.size)
    bin_counts = np.bincount(inverse, weights=counts, minlength=lags.size)
    keep = bin_counts >= min_pairs
    return lags[keep], bin_sums[keep] / bin_counts[keep]


def fit_variogram_local(field, lat, lon, model: str = "gaussian", max_cells: int = 8, stride: int = 1) -> dict:
    """This day's variogram from :func:`local_semivariogram`, fitted by :func:`fit_variogram_lags`.

    The range may exceed the largest lag (up to the grid's diagonal): at short lags a smooth field
    shows only the start of its variogram.
    """
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    lags, gamma = local_semivariogram(field, lat, lon, max_cells=max_cells, stride=stride)
    if lags.size < 3:
        raise VariogramFitError(f"only {lags.size} short-lag bins with enough valid pixel pairs")
    diagonal = float(np.hypot(np.ptp(lat), np.ptp(lon))) or float(lags.max())
    return fit_variogram_lags(lags, gamma, model, max_range=max(diagonal, float(lags.max())))
