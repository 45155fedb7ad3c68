"""Local ordinary kriging and daily gap filling (seed 000, section 2.3.1) against PyKrige/scipy."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pykrige.ok import OrdinaryKriging
from scipy.interpolate import griddata

from ihs_hpc.kernels.kriging import knn_grid, knn_points
from ihs_hpc.ops.gapfill import (
    experimental_variogram,
    fill_cube,
    fill_gaps,
    fit_variogram,
    krige_points,
)
from ihs_hpc.ops.variogram import fit_variogram_local

MODELS = {
    "exponential": {"psill": 2.0, "range": 0.8, "nugget": 0.1},
    "spherical": {"psill": 1.5, "range": 0.6, "nugget": 0.05},
    "gaussian": {"psill": 1.0, "range": 0.5, "nugget": 0.2},
    "linear": {"slope": 1.3, "nugget": 0.05},
}


def scattered(rng, n, nq):
    x = rng.uniform(115.0, 117.0, n)
    y = rng.uniform(39.0, 41.0, n)
    z = np.sin(2.5 * x) + np.cos(3.0 * y) + 0.2 * rng.normal(size=n)
    xq = rng.uniform(115.0, 117.0, nq)
    yq = rng.uniform(39.0, 41.0, nq)
    return x, y, z, xq, yq


def reference_knn(xd, yd, xq, yq, k):
    """Nearest k by squared distance, ties to the lower index (numpy lexsort)."""
    out = np.empty((xq.size, k), dtype=np.int64)
    for q in range(xq.size):
        d2 = (xd - xq[q]) ** 2 + (yd - yq[q]) ** 2
        out[q] = np.lexsort((np.arange(xd.size), d2))[:k]
    return out


@pytest.mark.parametrize("model", list(MODELS))
def test_krige_points_matches_pykrige(model):
    rng = np.random.default_rng(list(MODELS).index(model))
    x, y, z, xq, yq = scattered(rng, 300, 60)
    xq[:3], yq[:3] = x[:3], y[:3]  # query points on data points (PyKrige's exact_values)
    params = MODELS[model]
    z_hat, sigmasq = krige_points(x, y, z, xq, yq, model, params, k=12)
    ok = OrdinaryKriging(x, y, z, variogram_model=model, variogram_parameters=params)
    z_ref, s_ref = ok.execute("points", xq, yq, backend="loop", n_closest_points=12)
    np.testing.assert_allclose(z_hat, z_ref, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(sigmasq, s_ref, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(z_hat[:3], z[:3], rtol=1e-12)


def soft_l1_objective(model, params, lags, semivariance):
    """PyKrige's fitting objective: sum of soft_l1 of the squared residuals (f_scale = 1)."""
    from pykrige import variogram_models

    function = getattr(variogram_models, f"{model}_variogram_model")
    residual = function(list(params), lags) - semivariance
    return float(np.sum(2.0 * (np.sqrt(1.0 + residual**2) - 1.0)))


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("seed", [0, 1])
def test_fit_variogram_like_pykrige(model, seed):
    """Same empirical variogram as PyKrige and an objective value at least as low."""
    rng = np.random.default_rng(10 + seed)
    x, y, z, _, _ = scattered(rng, 250, 0)
    z = z * 10.0 ** seed  # semivariances of order 1 and 100
    ok = OrdinaryKriging(x, y, z, variogram_model=model, nlags=6)
    lags, semivariance = experimental_variogram(x, y, z, nlags=6)
    np.testing.assert_allclose(lags, ok.lags, rtol=1e-10)
    np.testing.assert_allclose(semivariance, ok.semivariance, rtol=1e-10)

    ours = fit_variogram(x, y, z, model, nlags=6)
    names = ["slope", "nugget"] if model == "linear" else ["psill", "range", "nugget"]
    ours_vec = [ours[name] for name in names]
    ref_vec = list(ok.variogram_model_parameters)
    ours_cost = soft_l1_objective(model, ours_vec, ok.lags, ok.semivariance)
    ref_cost = soft_l1_objective(model, ref_vec, ok.lags, ok.semivariance)
    assert ours_cost <= ref_cost * (1 + 1e-6) + 1e-12
    assert all(value >= 0 for value in ours_vec)
    if model != "linear":
        assert ours["range"] <= np.max(ok.lags) and ours["nugget"] <= np.max(ok.semivariance)


def test_fit_variogram_subsample_is_seeded():
    rng = np.random.default_rng(12)
    x, y, z, _, _ = scattered(rng, 900, 0)
    a = fit_variogram(x, y, z, max_points=300, seed=4)
    assert a == fit_variogram(x, y, z, max_points=300, seed=4)
    pick = np.sort(np.random.default_rng(4).choice(900, size=300, replace=False))
    assert a == fit_variogram(x[pick], y[pick], z[pick], max_points=300)


def irregular_grid(rng, ny, nx):
    """Strictly monotone, unevenly spaced coordinates (no distance ties), lat descending."""
    lat = 41.0 - np.cumsum(rng.uniform(0.006, 0.014, ny))
    lon = 115.0 + np.cumsum(rng.uniform(0.006, 0.014, nx))
    return lat, lon


@pytest.mark.parametrize("model", ["exponential", "spherical", "gaussian", "linear"])
def test_fill_gaps_matches_pykrige_moving_window(model):
    rng = np.random.default_rng(20 + list(MODELS).index(model))
    ny, nx = 28, 33
    lat, lon = irregular_grid(rng, ny, nx)
    lon2, lat2 = np.meshgrid(lon, lat)
    field = 40 + 10 * np.sin(40 * lon2) * np.cos(30 * lat2) + rng.normal(size=(ny, nx))
    field[rng.random((ny, nx)) < 0.3] = np.nan
    field[5:10, 8:14] = np.nan
    params = {"exponential": {"psill": 50.0, "range": 0.2, "nugget": 1.0},
              "spherical": {"psill": 50.0, "range": 0.15, "nugget": 1.0},
              "gaussian": {"psill": 50.0, "range": 0.1, "nugget": 2.0},
              "linear": {"slope": 200.0, "nugget": 1.0}}[model]
    filled, info = fill_gaps(field, lat, lon, model=model, k=10, variogram_parameters=params)
    gaps = np.isnan(field)
    ok = OrdinaryKriging(lon2[~gaps], lat2[~gaps], field[~gaps], variogram_model=model,
                         variogram_parameters=params)
    z_ref, _ = ok.execute("points", lon2[gaps], lat2[gaps], backend="loop", n_closest_points=10)
    np.testing.assert_allclose(filled[gaps], z_ref, rtol=1e-6)
    np.testing.assert_array_equal(filled[~gaps], field[~gaps])
    assert info["n_missing"] == info["n_filled"] == gaps.sum()
    assert info["fallback"] is None and info["n_singular"] == 0


def test_fill_gaps_on_regular_grid_equals_pykrige_on_the_chosen_neighbours():
    """Regular grid: many equal distances, so compare with PyKrige on the k chosen pixels."""
    rng = np.random.default_rng(30)
    ny, nx, k = 40, 45, 16
    lat = 40.5 - 0.01 * np.arange(ny)
    lon = 116.0 + 0.01 * np.arange(nx)
    lon2, lat2 = np.meshgrid(lon, lat)
    field = 60 + 15 * np.sin(20 * lon2) + 5 * rng.normal(size=(ny, nx))
    field[rng.random((ny, nx)) < 0.25] = np.nan
    field[20:29, 10:22] = np.nan
    params = {"psill": 80.0, "range": 0.12, "nugget": 5.0}
    filled, _ = fill_gaps(field, lat, lon, k=k, variogram_parameters=params)
    gaps = np.isnan(field)
    xd, yd, zd = lon2[~gaps], lat2[~gaps], field[~gaps]
    pick = rng.choice(gaps.sum(), size=40, replace=False)
    xq, yq = lon2[gaps][pick], lat2[gaps][pick]
    neighbours = reference_knn(xd, yd, xq, yq, k)
    for q in range(pick.size):
        nb = neighbours[q]
        ok = OrdinaryKriging(xd[nb], yd[nb], zd[nb], variogram_model="exponential",
                             variogram_parameters=params)
        z_ref, _ = ok.execute("points", xq[q:q + 1], yq[q:q + 1], backend="loop")
        np.testing.assert_allclose(filled[gaps][pick[q]], z_ref[0], rtol=1e-6)


def test_neighbour_search_deterministic_ties():
    rng = np.random.default_rng(40)
    ny, nx, k = 37, 41, 16
    lat = 40.0 - 0.01 * np.arange(ny)  # equal spacing: many exact ties
    lon = 116.0 + 0.01 * np.arange(nx)
    valid = rng.random((ny, nx)) > 0.35
    valid[10:25, 5:30] = False  # a big hole makes the ring search go wide
    valid_flat = np.flatnonzero(valid)
    query_flat = np.flatnonzero(~valid)
    rows, cols = np.divmod(valid_flat, nx)
    qrows, qcols = np.divmod(query_flat, nx)
    xd, yd, xq, yq = lon[cols], lat[rows], lon[qcols], lat[qrows]
    expected = reference_knn(xd, yd, xq, yq, k)

    rank = np.full(ny * nx, -1, dtype=np.int64)
    rank[valid_flat] = np.arange(valid_flat.size)
    ring_idx = np.empty((query_flat.size, k), dtype=np.int64)
    ring_d2 = np.empty((query_flat.size, k))
    knn_grid(rank, lat, lon, query_flat, ring_idx, ring_d2)
    brute_idx = np.empty_like(ring_idx)
    brute_d2 = np.empty_like(ring_d2)
    knn_points(xd, yd, xq, yq, brute_idx, brute_d2)
    np.testing.assert_array_equal(ring_idx, expected)
    np.testing.assert_array_equal(brute_idx, expected)
    np.testing.assert_array_equal(ring_d2, brute_d2)


def test_neighbours_on_grid_kept_search_follows_its_inputs():
    """The kept search (one per block of days) is returned only while the valid pixels, the query
    pixels, the grid and k are all the same: a sequence of days whose masks change, come back, or ask
    for another k gets the reference's neighbours every time."""
    from ihs_hpc.ops.gapfill import neighbours_on_grid

    rng = np.random.default_rng(41)
    ny, nx = 30, 34
    lat = 40.0 - 0.01 * np.arange(ny)
    lon = 116.0 + 0.01 * np.arange(nx)
    holes = np.zeros((ny, nx), dtype=bool)
    holes[8:16, 10:20] = True
    gaps = rng.random((ny, nx)) < 0.1
    days = [(~holes, holes, 16), (~holes, holes, 16), (~holes & ~gaps, holes | gaps, 16), (~holes, holes, 16),
            (~holes, holes, 8), (~holes, holes & (np.arange(nx) < 15), 8)]
    for d, (valid, query, k) in enumerate(days):
        valid_flat, query_flat = np.flatnonzero(valid), np.flatnonzero(query)
        rows, cols = np.divmod(valid_flat, nx)
        qrows, qcols = np.divmod(query_flat, nx)
        expected = reference_knn(lon[cols], lat[rows], lon[qcols], lat[qrows], k)
        np.testing.assert_array_equal(neighbours_on_grid(valid_flat, query_flat, lat, lon, k), expected,
                                      err_msg=f"day {d}")
    moved = 40.0 - 0.03 * np.arange(ny)  # the same masks and k on a grid with other spacing: searched afresh
    valid_flat, query_flat = np.flatnonzero(~holes), np.flatnonzero(holes)
    rows, cols = np.divmod(valid_flat, nx)
    qrows, qcols = np.divmod(query_flat, nx)
    neighbours_on_grid(valid_flat, query_flat, lat, lon, 8)
    np.testing.assert_array_equal(neighbours_on_grid(valid_flat, query_flat, moved, lon, 8),
                                  reference_knn(lon[cols], moved[rows], lon[qcols], moved[qrows], 8))


def smooth_scene(seed, ny=120, nx=140, noise_sd=2.0):
    """Gaussian bumps + sinusoid (truth) observed with pixel noise; 30 % random gaps + a block."""
    rng = np.random.default_rng(seed)
    lat = 41.0 - 0.01 * np.arange(ny)
    lon = 115.0 + 0.01 * np.arange(nx)
    lon2, lat2 = np.meshgrid(lon, lat)
    truth = 50 + 10 * np.sin(6 * lon2) * np.cos(5 * lat2)
    for _ in range(8):
        cx, cy = rng.uniform(lon[0], lon[-1]), rng.uniform(lat[-1], lat[0])
        s = rng.uniform(0.1, 0.4)
        truth += rng.uniform(20, 60) * np.exp(-((lon2 - cx) ** 2 + (lat2 - cy) ** 2) / (2 * s * s))
    field = truth + noise_sd * rng.normal(size=truth.shape)
    gaps = rng.random((ny, nx)) < 0.3
    gaps[40:52, 70:85] = True
    field[gaps] = np.nan
    return lat, lon, lon2, lat2, truth, field, gaps


def assert_beats_nearest_and_linear(filled, lon2, lat2, truth, field, gaps):
    """RMSE at the gaps against the noise-free truth: kriging < scipy linear < scipy nearest."""
    def rmse(values):
        return float(np.sqrt(np.mean((values - truth[gaps]) ** 2)))

    pts = np.column_stack([lon2[~gaps], lat2[~gaps]])
    nearest = griddata(pts, field[~gaps], (lon2[gaps], lat2[gaps]), method="nearest")
    linear = griddata(pts, field[~gaps], (lon2[gaps], lat2[gaps]), method="linear")
    linear = np.where(np.isnan(linear), nearest, linear)  # outside the convex hull
    assert rmse(filled[gaps]) < rmse(linear) < rmse(nearest)


def test_gap_fill_beats_nearest_and_linear():
    """With pixel noise (sd 2 on a 50-150 field) kriging beats scipy's nearest and linear fill.

    Scored against the noise-free truth.  On the same fields without noise scipy's linear fill
    is the better one for this PyKrige-style fit (ordinary kriging with the fitted exponential
    model does not reproduce linear trends); the short-lag Gaussian fit (``prep.variogram: local``)
    wins there too (next test).  (Seeds 0-9 of this scene all pass; one is
    run because scipy's linear fill costs seconds on a regular grid.)
    """
    lat, lon, lon2, lat2, truth, field, gaps = smooth_scene(0)
    filled, info = fill_gaps(field, lat, lon)
    assert info["fallback"] is None and info["params"]["range"] > 0
    assert_beats_nearest_and_linear(filled, lon2, lat2, truth, field, gaps)


@pytest.mark.parametrize("noise_sd,seed", [(0.0, 0), (0.0, 1), (0.5, 2), (2.0, 3)])
def test_pipeline_gap_fill_beats_nearest_and_linear_with_and_without_noise(noise_sd, seed):
    """Kriging with a Gaussian variogram fitted per day to short-lag pixel pairs (the pipeline's
    ``prep.variogram: local`` with ``prep.kriging_model: gaussian``) beats scipy's nearest and
    linear fill on masked smooth fields, noise-free as well as with pixel noise, scored against the
    noise-free truth."""
    lat, lon, lon2, lat2, truth, field, gaps = smooth_scene(seed, noise_sd=noise_sd)
    params = fit_variogram_local(field, lat, lon, model="gaussian")
    filled, info = fill_gaps(field, lat, lon, model="gaussian", variogram_parameters=params)
    assert info["fallback"] is None
    assert_beats_nearest_and_linear(filled, lon2, lat2, truth, field, gaps)


def test_fallbacks():
    rng = np.random.default_rng(50)
    ny, nx = 20, 25
    lat = 40.0 - 0.01 * np.arange(ny)
    lon = 116.0 + 0.01 * np.arange(nx)
    lon2, lat2 = np.meshgrid(lon, lat)

    empty = np.full((ny, nx), np.nan)
    out, info = fill_gaps(empty, lat, lon)
    assert info["fallback"] == "no_valid_pixels" and info["n_filled"] == 0
    assert np.isnan(out).all()

    few = np.full((ny, nx), np.nan)
    idx = rng.choice(ny * nx, size=6, replace=False)
    few.ravel()[idx] = rng.uniform(10, 20, size=6)
    out, info = fill_gaps(few, lat, lon)
    assert info["fallback"] == "idw_few_points" and info["n_filled"] == ny * nx - 6
    gaps = np.isnan(few)
    d2 = ((lon2[gaps][:, None] - lon2.ravel()[idx]) ** 2
          + (lat2[gaps][:, None] - lat2.ravel()[idx]) ** 2)
    w = 1.0 / d2
    np.testing.assert_allclose(out[gaps], (w * few.ravel()[idx]).sum(1) / w.sum(1), rtol=1e-12)

    constant = np.full((ny, nx), 7.5)
    constant[rng.random((ny, nx)) < 0.3] = np.nan
    out, info = fill_gaps(constant, lat, lon)
    assert info["fallback"] == "idw_fit_failed" and info["fit_error"]
    np.testing.assert_allclose(out, 7.5, rtol=1e-12)

    region = np.ones((ny, nx), bool)
    region[:, :5] = False  # outside the study area: stays NaN
    field = 30 + rng.normal(size=(ny, nx))
    field[rng.random((ny, nx)) < 0.3] = np.nan
    out, info = fill_gaps(field, lat, lon, fill_mask=region)
    assert info["n_missing"] == (np.isnan(field) & region).sum() == info["n_filled"]
    np.testing.assert_array_equal(np.isnan(out), np.isnan(field) & ~region)


def test_fill_cube_per_day_report():
    rng = np.random.default_rng(60)
    days, ny, nx = 3, 18, 22
    lat = 40.0 - 0.01 * np.arange(ny)
    lon = 116.0 + 0.01 * np.arange(nx)
    cube = (50 + rng.normal(size=(days, ny, nx)).cumsum(axis=2)).astype(np.float32)
    removed = rng.random(cube.shape) < 0.05
    cube[removed] = np.nan
    cube[0][rng.random((ny, nx)) < 0.2] = np.nan
    cube[1] = np.nan
    calls = []
    filled, report = fill_cube(cube, lat, lon, removed=removed, seed=3,
                               progress=lambda day, n, info: calls.append((day, n)))
    assert calls == [(0, 3), (1, 3), (2, 3)]
    assert isinstance(report, pd.DataFrame) and len(report) == days
    assert filled.dtype == np.float32
    for day in range(days):
        expected, info = fill_gaps(cube[day], lat, lon, seed=[3, day])
        np.testing.assert_array_equal(filled[day], expected)
        assert report.loc[day, "n_missing"] == np.isnan(cube[day]).sum()
        reported = report.loc[day, "fallback"]
        assert (None if pd.isna(reported) else reported) == info["fallback"]
        np.testing.assert_allclose(report.loc[day, "removed_fraction"],
                                   removed[day].sum() / (ny * nx))
        np.testing.assert_allclose(report.loc[day, "filled_fraction"],
                                   info["n_filled"] / (ny * nx))
    assert report.loc[1, "fallback"] == "no_valid_pixels"
    assert np.isnan(filled[1]).all() and not np.isnan(filled[[0, 2]]).any()


def test_errors_name_the_argument():
    lat = np.linspace(40, 39.9, 5)
    lon = np.linspace(116, 116.1, 6)
    field = np.ones((5, 6))
    with pytest.raises(ValueError, match="model must be one of"):
        fill_gaps(field, lat, lon, model="cubic")
    with pytest.raises(ValueError, match="k must be at least 2"):
        fill_gaps(field, lat, lon, k=1)
    with pytest.raises(ValueError, match="lat must be strictly"):
        fill_gaps(field, lat[[0, 2, 1, 3, 4]], lon)
    with pytest.raises(ValueError, match="lon must be 1-D with one value per column"):
        fill_gaps(field, lat, lon[:5])
    with pytest.raises(ValueError, match=r"lacks \['range'\]"):
        fill_gaps(field, lat, lon, variogram_parameters={"psill": 1.0, "nugget": 0.0})
    with pytest.raises(ValueError, match="'range' must be > 0"):
        fill_gaps(field, lat, lon, variogram_parameters={"psill": 1, "range": 0, "nugget": 0})
    bad = field.copy()
    bad[2, 3] = np.inf
    with pytest.raises(ValueError, match=r"infinite value at \(row=2, col=3\)"):
        fill_gaps(bad, lat, lon)
