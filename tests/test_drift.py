"""Stage 3's regression kriging (``stage3.drift``): the trend is numpy's least squares, the residual is
PyKrige's ordinary kriging, and the values that were there stay as they were."""
from __future__ import annotations

import numpy as np
import pytest
from pykrige.ok import OrdinaryKriging

from ihs_hpc.ops.drift import drift_trend, standardise
from ihs_hpc.pipeline.daily import fill_days


def _scene(seed=5, ny=30, nx=36):
    rng = np.random.default_rng(seed)
    lat = 38.5 - np.cumsum(rng.uniform(0.008, 0.012, ny))
    lon = 115.0 + np.cumsum(rng.uniform(0.008, 0.012, nx))
    lon2, lat2 = np.meshgrid(lon, lat)
    elevation = 400 * np.exp(-((lon2 - lon.mean()) ** 2 + (lat2 - lat.min()) ** 2) / 0.02)
    town = np.exp(-((lon2 - lon[24]) ** 2 + (lat2 - lat[12]) ** 2) / (2 * 0.03 ** 2))
    field = 70 - 0.04 * elevation + 25 * town + 4 * np.sin(25 * lon2) * np.cos(20 * lat2) + rng.normal(0, 0.5, (ny, nx))
    return rng, lat, lon, lon2, lat2, np.stack([elevation, town]), field


def test_standardise_is_the_z_score_with_nan_as_the_mean_and_constants_dropped():
    rng = np.random.default_rng(1)
    a = rng.normal(5, 2, (6, 7))
    a[2, 3] = np.nan
    out = standardise(np.stack([a, np.full((6, 7), 3.0)]))
    assert out.shape == (1, 6, 7)
    finite = np.isfinite(a)
    np.testing.assert_allclose(out[0][finite], (a[finite] - np.nanmean(a)) / np.nanstd(a))
    assert out[0, 2, 3] == 0.0


def test_drift_trend_is_numpy_least_squares_over_the_finite_pixels():
    rng, *_, covariates, field = _scene()
    field = field.copy()
    field[rng.random(field.shape) < 0.3] = np.nan
    x = standardise(covariates)
    trend, beta = drift_trend(field, x)
    ok = np.isfinite(field)
    design = np.column_stack([np.ones(ok.sum()), x[0][ok], x[1][ok]])
    ref = np.linalg.lstsq(design, field[ok], rcond=None)[0]
    np.testing.assert_allclose(beta, ref, rtol=1e-10)
    np.testing.assert_allclose(trend, ref[0] + ref[1] * x[0] + ref[2] * x[1], rtol=1e-10)
    assert drift_trend(np.full(field.shape, np.nan), x) == (None, None)  # too few pixels: no trend
    assert drift_trend(field, np.zeros((0,) + field.shape)) == (None, None)


def test_fill_days_with_drift_is_trend_plus_pykrige_of_the_residual():
    rng, lat, lon, lon2, lat2, covariates, field = _scene()
    holes = np.zeros(field.shape, bool)
    holes[8:17, 19:29] = True  # an area over the town: the edge does not see it
    data = np.where(rng.random(field.shape) < 0.1, np.nan, field)[None]
    x = standardise(covariates)
    out = np.empty_like(data)
    info = fill_days(data, 0, lat=lat, lon=lon, holes=holes, k=12, drift=x, out=out)[0]
    visible = np.where(holes, np.nan, data[0])
    ok = np.isfinite(visible)
    design = np.column_stack([np.ones(ok.sum()), x[0][ok], x[1][ok]])
    beta = np.linalg.lstsq(design, visible[ok], rcond=None)[0]
    np.testing.assert_allclose(info["drift"], beta, rtol=1e-10)
    trend = beta[0] + beta[1] * x[0] + beta[2] * x[1]
    gaps = ~ok
    model = OrdinaryKriging(lon2[ok], lat2[ok], (visible - trend)[ok], variogram_model="exponential",
                            variogram_parameters=info["params"])
    z, _ = model.execute("points", lon2[gaps], lat2[gaps], backend="loop", n_closest_points=12)
    np.testing.assert_allclose(out[0][gaps], z + trend[gaps], rtol=1e-6)
    np.testing.assert_array_equal(out[0][ok], data[0][ok])  # what was there is kept, bit for bit
    # and the drift is what recovers the town inside the hole: ordinary kriging misses most of it
    plain = np.empty_like(data)
    fill_days(data, 0, lat=lat, lon=lon, holes=holes, k=12, out=plain)
    err_drift = np.abs(out[0][holes] - field[holes]).mean()
    err_plain = np.abs(plain[0][holes] - field[holes]).mean()
    assert err_drift < 0.5 * err_plain, (err_drift, err_plain)
