"""Per-pixel MLR (seed 000, eqs. 3-4) against numpy.linalg.lstsq with an intercept column."""
from __future__ import annotations

import numpy as np
import pytest

from ihs_hpc.ops.mlr import INVALID_RANK, MLRResult, mlr, remove_met


def _lstsq(y, X):
    """Trusted peer: numpy lstsq on [1, X] for one pixel (float64)."""
    y = np.asarray(y, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    design = np.column_stack([np.ones(y.shape[-1]), X.T])
    coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    return coef, design @ coef, rank


def _rel_err(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def _make_case(rng, lead, k, n, shared, scale_offsets=True):
    """Random well-conditioned regression: met-like regressors with offsets and scales."""
    xshape = (k, n) if shared else lead + (k, n)
    X = rng.normal(size=xshape)
    if scale_offsets:
        # offsets/scales of the magnitude of t2m (K), sp (Pa), tp (m), ...
        scales = 10.0 ** rng.uniform(-3, 3, size=k)
        offsets = scales * rng.uniform(-100.0, 100.0, size=k)
        X = X * scales[:, None] + offsets[:, None]
    slopes = rng.normal(size=lead + (k,))
    Xb = np.broadcast_to(X, lead + (k, n))
    y = 50.0 + np.einsum("...kn,...k->...n", (Xb - Xb.mean(-1, keepdims=True)), slopes)
    y = y + rng.normal(scale=np.std(y) * 0.5 + 1.0, size=lead + (n,))
    return y, X


@pytest.mark.parametrize(
    "lead,k,n,shared",
    [((7,), 6, 400, False), ((3, 4), 6, 365, True), ((5,), 1, 50, False), ((2, 3), 3, 1000, False),
     ((), 6, 200, True), ((), 2, 30, False)],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_lstsq_well_conditioned(lead, k, n, shared, dtype):
    rng = np.random.default_rng([len(lead), k, n, int(shared)])
    y, X = _make_case(rng, lead, k, n, shared, scale_offsets=(dtype == np.float64))
    y = y.astype(dtype)
    X = X.astype(dtype)
    res = mlr(y, X)
    assert isinstance(res, MLRResult)
    assert res.coef.shape == lead + (k + 1,)
    assert res.fitted.shape == lead + (n,)
    assert res.r2.shape == lead
    assert res.rank.shape == lead
    assert res.coef.dtype == np.float64 and res.fitted.dtype == np.float64
    Xb = np.broadcast_to(X, lead + (k, n))
    for idx in np.ndindex(*lead):
        coef, fitted, rank = _lstsq(y[idx], Xb[idx])
        assert _rel_err(res.coef[idx], coef) < 1e-10, idx
        assert _rel_err(res.fitted[idx], fitted) < 1e-10, idx
        assert res.rank[idx] == rank == k + 1
    np.testing.assert_array_equal(res.intercept, res.coef[..., 0])
    np.testing.assert_array_equal(res.slopes, res.coef[..., 1:])


def test_r2_equals_one_minus_ssres_over_sstot():
    rng = np.random.default_rng(11)
    y, X = _make_case(rng, (50,), 6, 730, shared=False)
    res = mlr(y, X)
    for p in range(50):
        _, fitted, _ = _lstsq(y[p], X[p])
        ss_res = np.sum((y[p] - fitted) ** 2)
        ss_tot = np.sum((y[p] - y[p].mean()) ** 2)
        assert res.r2[p] == pytest.approx(1.0 - ss_res / ss_tot, rel=1e-10)
    # R² is also the squared correlation between y and the fit (independent identity)
    for p in range(50):
        r = np.corrcoef(y[p], res.fitted[p])[0, 1]
        assert res.r2[p] == pytest.approx(r * r, rel=1e-9)


def test_perfect_fit_and_constant_y():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2, 3, 100))
    y = np.stack([1.5 + 2.0 * X[0, 0] - 0.5 * X[0, 2], np.full(100, 4.0)])
    res = mlr(y, X)
    np.testing.assert_allclose(res.coef[0], [1.5, 2.0, 0.0, -0.5], atol=1e-12)
    assert res.r2[0] == pytest.approx(1.0, abs=1e-12)
    # constant y: slopes 0, intercept the constant, R² undefined (0/0) -> NaN
    np.testing.assert_allclose(res.coef[1], [4.0, 0.0, 0.0, 0.0], atol=1e-12)
    assert np.isnan(res.r2[1])


def _rank_deficient_case():
    rng = np.random.default_rng(2024)
    n, k = 300, 6
    y, X = _make_case(rng, (8,), k, n, shared=False, scale_offsets=False)
    X = X + 3.0  # non-zero means, so the intercept interacts with the null space
    X[1, 4] = X[1, 2]  # duplicate column
    X[2, 0] = 7.25  # constant column (collinear with the intercept)
    X[3, 5] = 2.0 * X[3, 1] - 0.5 * X[3, 3] + 1.0  # combination incl. the intercept
    X[4, 3] = 0.0  # all-zero column
    X[4, 1] = X[4, 0]  # and a duplicate in the same pixel
    X[6, 2] = 0.7  # constant whose computed mean is not exactly 0.7: tiny non-zero anomaly
    X[7, 4] = 1e5 + 1e-9 * rng.normal(size=n)  # constant up to noise far below lstsq's cut-off
    return y, X


def test_rank_deficient_pixels_give_lstsq_minimum_norm():
    y, X = _rank_deficient_case()
    res = mlr(y, X)
    expected_rank = {0: 7, 1: 6, 2: 6, 3: 6, 4: 5, 5: 7, 6: 6, 7: 6}
    for p in range(y.shape[0]):
        coef, fitted, rank = _lstsq(y[p], X[p])
        assert np.all(np.isfinite(res.coef[p]))
        assert res.rank[p] == rank == expected_rank[p], p
        np.testing.assert_allclose(res.coef[p], coef, rtol=1e-8, atol=1e-8 * np.abs(coef).max())
        np.testing.assert_allclose(res.fitted[p], fitted, rtol=1e-8, atol=1e-8 * np.abs(fitted).max())
        ss_res = np.sum((y[p] - fitted) ** 2)
        ss_tot = np.sum((y[p] - y[p].mean()) ** 2)
        assert res.r2[p] == pytest.approx(1.0 - ss_res / ss_tot, rel=1e-9)
    np.testing.assert_array_equal(res.rank_deficient, [False, True, True, True, True, False, True, True])


def test_rank_deficient_pixel_does_not_change_neighbours():
    y, X = _rank_deficient_case()
    full = mlr(y, X)
    for p in range(y.shape[0]):
        alone = mlr(y[p], X[p])
        np.testing.assert_array_equal(full.coef[p], alone.coef)
        np.testing.assert_array_equal(full.fitted[p], alone.fitted)
    # the full-rank neighbours equal lstsq exactly as on their own
    for p in (0, 5):
        coef, _, _ = _lstsq(y[p], X[p])
        assert _rel_err(full.coef[p], coef) < 1e-10


def test_more_parameters_than_days_is_min_norm():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6, 5))
    y = rng.normal(size=(2, 5))
    res = mlr(y, X)
    for p in range(2):
        coef, fitted, rank = _lstsq(y[p], X)
        assert res.rank[p] == rank == 5
        np.testing.assert_allclose(res.coef[p], coef, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(res.fitted[p], fitted, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("where", ["y", "X", "inf"])
def test_nan_pixel_is_isolated(where):
    rng = np.random.default_rng(8)
    y, X = _make_case(rng, (4, 5), 6, 200, shared=False)
    clean = mlr(y, X)
    bad = (2, 3)
    if where == "y":
        y[bad + (17,)] = np.nan
    elif where == "X":
        X[bad + (4, 199)] = np.nan
    else:
        X[bad + (0, 0)] = np.inf
    res = mlr(y, X)
    assert np.all(np.isnan(res.coef[bad])) and np.all(np.isnan(res.fitted[bad]))
    assert np.isnan(res.r2[bad]) and res.rank[bad] == INVALID_RANK
    others = np.ones((4, 5), dtype=bool)
    others[bad] = False
    np.testing.assert_array_equal(res.coef[others], clean.coef[others])
    np.testing.assert_array_equal(res.fitted[others], clean.fitted[others])
    np.testing.assert_array_equal(res.r2[others], clean.r2[others])
    assert np.all(np.isfinite(res.coef[others]))


def test_nan_in_shared_X_invalidates_every_pixel():
    rng = np.random.default_rng(9)
    y, X = _make_case(rng, (3,), 2, 50, shared=True)
    X[1, 10] = np.nan
    res = mlr(y, X)
    assert np.all(np.isnan(res.coef)) and np.all(res.rank == INVALID_RANK)


def test_remove_met_is_eq4():
    rng = np.random.default_rng(21)
    y, X = _make_case(rng, (3, 2), 6, 365, shared=False)
    bl_tem, res = remove_met(y, X)
    for idx in np.ndindex(3, 2):
        _, fitted, _ = _lstsq(y[idx], X[idx])
        np.testing.assert_allclose(bl_tem[idx], y[idx] - fitted, rtol=1e-9, atol=1e-9 * np.abs(y).max())
    # with an intercept, the residual has zero mean
    np.testing.assert_allclose(bl_tem.mean(-1), 0.0, atol=1e-9 * np.abs(y).max())
    np.testing.assert_array_equal(bl_tem, y - res.fitted)


def test_shape_and_value_errors():
    y = np.zeros((4, 10))
    with pytest.raises(ValueError, match=r"length 9 but y's has 10"):
        mlr(y, np.zeros((4, 6, 9)))
    with pytest.raises(ValueError, match=r"leading axes \(3,\).*\(4,\)"):
        mlr(y, np.zeros((3, 6, 10)))
    with pytest.raises(ValueError, match=r"X must have shape"):
        mlr(y, np.zeros(10))
    with pytest.raises(ValueError, match=r"no regressors"):
        mlr(y, np.zeros((0, 10)))
    with pytest.raises(ValueError, match=r"empty time axis"):
        mlr(np.zeros((4, 0)), np.zeros((2, 0)))
    with pytest.raises(ValueError, match=r"y must have a time axis"):
        mlr(1.0, np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"rtol"):
        mlr(y, np.zeros((2, 10)), rtol=1.5)
    with pytest.raises(TypeError, match=r"X must hold real numbers"):
        mlr(y, np.zeros((2, 10), dtype=complex))


def test_integer_input_and_empty_batch():
    rng = np.random.default_rng(4)
    X = rng.integers(0, 50, size=(3, 40))
    y = rng.integers(0, 100, size=(2, 40))
    res = mlr(y, X)
    for p in range(2):
        coef, _, _ = _lstsq(y[p], X)
        assert _rel_err(res.coef[p], coef) < 1e-10
    empty = mlr(np.zeros((0, 40)), X)
    assert empty.coef.shape == (0, 4) and empty.fitted.shape == (0, 40)


def test_rank_deficient_shared_X_solved_per_pixel_as_lstsq():
    rng = np.random.default_rng(12)
    X = rng.normal(size=(4, 120)) + 2.0
    X[3] = X[0] - X[1]  # shared design of rank 4 (with the intercept)
    y = rng.normal(size=(3, 5, 120))
    y[1, 2] = 9.0  # constant response: R² NaN
    y[2, 4, 7] = np.nan  # invalid pixel stays out of the shared solve
    res = mlr(y, X)
    for idx in np.ndindex(3, 5):
        if idx == (2, 4):
            assert res.rank[idx] == INVALID_RANK and np.all(np.isnan(res.coef[idx]))
            continue
        coef, fitted, rank = _lstsq(y[idx], X)
        assert res.rank[idx] == rank == 4
        np.testing.assert_allclose(res.coef[idx], coef, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(res.fitted[idx], fitted, rtol=1e-10, atol=1e-12)
        if idx == (1, 2):
            assert np.isnan(res.r2[idx])
        else:
            ss_res = np.sum((y[idx] - fitted) ** 2)
            ss_tot = np.sum((y[idx] - y[idx].mean()) ** 2)
            assert res.r2[idx] == pytest.approx(1.0 - ss_res / ss_tot, rel=1e-10)
