"""The fast per-day variogram fit reaches the least-squares optimum that scipy finds from many starts."""
import numpy as np
import pytest
from scipy.optimize import least_squares, nnls

from ihs_hpc.ops.gapfill import experimental_variogram, fit_variogram, variogram_model_values
from ihs_hpc.ops.variogram import _nonneg_two_param, fit_variogram_fast


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
