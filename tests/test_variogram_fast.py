"""The fast per-day variogram fit reaches the least-squares optimum that scipy finds from many starts."""
import numpy as np
import pytest
from scipy.optimize import least_squares, nnls

from ihs_hpc.ops.gapfill import experimental_variogram, fit_variogram, variogram_model_values
from ihs_hpc.ops.variogram import _nonneg_two_param, fit_variogram_fast, fit_variogram_local, local_semivariogram


def smooth_field(rng, n=300):
    x, y = rng.uniform(114, 115, n), rng.uniform(36, 37, n)
    z = (30 * np.sin(3 * x) * np.cos(4 * y) + 8 * np.sin(11 * x + 2) + rng.normal(0, 2, n))
    return x, y, z


@pytest.mark.parametrize("model", ["exponential", "spherical", "gaussian"])
@pytest.mark.parametrize("seed", [0, 1])
def test_fast_fit_is_the_least_squares_optimum(model, seed):
    rng = np.random.default_rng(seed)
    x, y, z = smooth_field(rng)
    ours = fit_variogram_fast(x, y, z, model=model, max_points=10_000)
    lags, gamma = experimental_variogram(x, y, z, 6)

    def resid(p):
        return variogram_model_values(model, p, lags) - gamma

    ours_sse = float((resid([ours["psill"], ours["range"], ours["nugget"]]) ** 2).sum())
    best_sse = np.inf
    for start in rng.uniform([0, 0.01, 0], [2 * gamma.max(), lags.max(), gamma.max()], size=(10, 3)):
        fit = least_squares(resid, start, bounds=([0, 1e-9, 0], [10 * gamma.max(), lags.max(), gamma.max()]))
        best_sse = min(best_sse, float((fit.fun ** 2).sum()))
    assert ours_sse <= best_sse * (1 + 1e-6) + 1e-12
    # and never worse (in plain least squares) than the PyKrige-style robust fit
    pk = fit_variogram(x, y, z, model=model, max_points=10_000)
    assert ours_sse <= float((resid([pk["psill"], pk["range"], pk["nugget"]]) ** 2).sum()) * (1 + 1e-9)


def test_two_parameter_solve_matches_nnls():
    rng = np.random.default_rng(4)
    for _ in range(200):
        a = rng.uniform(0, 1, 6)
        g = rng.normal(size=6) * rng.uniform(0.1, 10) + rng.uniform(-2, 2)
        p, c, sse = _nonneg_two_param(a, g)
        coef, rnorm = nnls(np.column_stack([a, np.ones(6)]), g)
        assert sse == pytest.approx(rnorm**2, rel=1e-9, abs=1e-12)
        assert (p, c) == pytest.approx(tuple(coef), rel=1e-7, abs=1e-9)


def test_linear_model_and_degenerate_input():
    rng = np.random.default_rng(0)
    x, y, z = smooth_field(rng, 200)
    fit = fit_variogram_fast(x, y, z, model="linear")
    assert fit["slope"] >= 0 and fit["nugget"] >= 0
    from ihs_hpc.ops.gapfill import VariogramFitError

    with pytest.raises(VariogramFitError):
        fit_variogram_fast(x, y, np.ones_like(z))


def brute_local_semivariogram(field, res_lat, res_lon, max_cells, stride):
    """Plain-Python reference: every anchor, every offset in the half-disc, binned by distance."""
    ny, nx = field.shape
    bins = {}
    for dy in range(0, max_cells + 1):
        for dx in range(-max_cells, max_cells + 1):
            if (dy == 0 and dx <= 0) or dy * dy + dx * dx > max_cells * max_cells:
                continue
            key = round(float(np.hypot(dy * res_lat, dx * res_lon)), 12)
            s, n = bins.get(key, (0.0, 0))
            for r in range(0, ny, stride):
                for c in range(0, nx, stride):
                    if 0 <= r + dy < ny and 0 <= c + dx < nx:
                        a, b = field[r, c], field[r + dy, c + dx]
                        if np.isfinite(a) and np.isfinite(b):
                            s += 0.5 * (a - b) ** 2
                            n += 1
            bins[key] = (s, n)
    lags = np.array(sorted(k for k, (s, n) in bins.items() if n >= 30))
    return lags, np.array([bins[k][0] / bins[k][1] for k in lags])


@pytest.mark.parametrize("stride", [1, 3])
def test_local_semivariogram_equals_brute_force(stride):
    rng = np.random.default_rng(7)
    field = rng.normal(size=(37, 41)).cumsum(axis=1)
    field[rng.random(field.shape) < 0.25] = np.nan
    lat = 40.0 - 0.01 * np.arange(37)      # descending, as CHAP
    lon = 116.0 + 0.0125 * np.arange(41)   # another spacing along x
    lags, gamma = local_semivariogram(field, lat, lon, max_cells=5, stride=stride)
    ref_lags, ref_gamma = brute_local_semivariogram(field, 0.01, 0.0125, 5, stride)
    np.testing.assert_allclose(lags, ref_lags, rtol=1e-12)
    np.testing.assert_allclose(gamma, ref_gamma, rtol=1e-10)


def test_local_fit_recovers_the_nugget_and_the_lags_fit_is_the_optimum():
    """On a smooth field plus white noise (variance 0.25) the short-lag fit finds the noise as nugget,
    which PyKrige's six domain-wide bins cannot see; and fit_variogram_lags is the least-squares optimum."""
    rng = np.random.default_rng(3)
    lat = 41.0 - 0.01 * np.arange(120)
    lon = 115.0 + 0.01 * np.arange(140)
    lon2, lat2 = np.meshgrid(lon, lat)
    field = 50 + 20 * np.sin(6 * lon2) * np.cos(5 * lat2) + rng.normal(0, 0.5, lon2.shape)
    field[rng.random(field.shape) < 0.3] = np.nan
    params = fit_variogram_local(field, lat, lon, model="gaussian")
    assert params["nugget"] == pytest.approx(0.25, rel=0.15)
    lags, gamma = local_semivariogram(field, lat, lon)

    def resid(p):
        return variogram_model_values("gaussian", p, lags) - gamma

    ours = float((resid([params["psill"], params["range"], params["nugget"]]) ** 2).sum())
    top = float(np.hypot(np.ptp(lat), np.ptp(lon)))
    best = min(float((least_squares(resid, s, bounds=([0, 1e-6, 0], [1e4, top, 10])).fun ** 2).sum())
               for s in rng.uniform([1, 0.01, 0], [500, top, 1], size=(10, 3)))
    assert ours <= best * (1 + 1e-6) + 1e-12
