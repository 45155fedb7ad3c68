"""Stage 3's fill error on placements of the IHS mask (ihs_hpc/ops/fill_error.py, pipeline/fill_error.py)
and the intervals the stats stage takes from it (issue 13)."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from ihs_hpc.ops.fill_error import (annual_error_maps, covariate_contrast, error_interval, fit_error_scale,
                                    group_replicates, placement_mask, placement_shifts, rescale_to_areas, shift_map)


def _shift_reference(values, dy, dx, fill):
    """numpy reference: pad by the shift on every side, roll, cut back."""
    ny, nx = values.shape
    pad = max(abs(dy), abs(dx), 1)
    big = np.pad(values.astype(float), pad, constant_values=fill)
    big = np.roll(big, (dy, dx), axis=(0, 1))
    return big[pad:pad + ny, pad:pad + nx]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(-12, 12), st.integers(-12, 12), st.integers(0, 2**31))
def test_shift_map_is_a_padded_roll(ny, nx, dy, dx, seed):
    values = np.random.default_rng(seed).random((ny, nx))
    np.testing.assert_array_equal(shift_map(values, dy, dx), _shift_reference(values, dy, dx, np.nan))
    np.testing.assert_array_equal(shift_map(values, 0, 0), values)


def _blob_mask(seed, shape=(40, 50)):
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, dtype=bool)
    for _ in range(4):
        r, c = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        mask[max(0, r - 2):r + 3, max(0, c - 3):c + 3] = True
    return mask


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 12))
def test_placements_are_seeded_distinct_long_and_on_background(seed, n):
    mask = _blob_mask(seed)
    valid = np.ones_like(mask)
    valid[:, :3] = False  # a strip without data
    shifts = placement_shifts(mask, valid, n, seed=seed, min_shift=6.0, min_available=0.4)
    assert shifts.shape == (n, 2)
    np.testing.assert_array_equal(shifts, placement_shifts(mask, valid, n, seed=seed, min_shift=6.0))
    assert len({tuple(s) for s in shifts}) == n
    assert (np.hypot(*shifts.T) >= 6.0 - 0.75).all()  # rounded to whole cells
    for dy, dx in shifts:
        moved = _shift_reference(mask.astype(float), dy, dx, 0.0) > 0.5
        target = placement_mask(mask, valid, dy, dx)
        np.testing.assert_array_equal(target, moved & ~mask & valid)
        assert target.sum() >= 0.4 * mask.sum()


def test_a_mask_with_no_background_to_move_into_is_an_error():
    mask = np.ones((30, 30), dtype=bool)
    mask[0, 0] = False
    with pytest.raises(ValueError, match="placements of the IHS mask"):
        placement_shifts(mask, ~mask, 4, seed=0, max_tries=200)


@pytest.mark.parametrize("key, value", [("placements", -1), ("day_step", 0), ("min_shift", 0)])
def test_bad_fill_error_settings_are_named(key, value, tmp_path):
    from ihs_hpc.config import load_config
    from ihs_hpc.errors import ConfigError
    from ihs_hpc.pipeline.fill_error import fill_error_settings

    config = tmp_path / "run.yaml"
    config.write_text(f"input: {{kind: synthetic, synthetic: {{preset: tiny}}}}\n"
                      f"stage3: {{fill_error: {{{key}: {value}}}}}\n")
    with pytest.raises(ConfigError, match=f"stage3.fill_error.{key} must be .*got {value}"):
        fill_error_settings(load_config(config))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml"]  # nothing written


def test_annual_error_maps_move_each_placement_back_by_its_shift():
    rng = np.random.default_rng(1)
    shifts = np.array([[3, -2], [-4, 5]])
    sums = rng.normal(size=(2, 3, 10, 12))
    counts = rng.integers(0, 4, size=sums.shape).astype(float)
    out = annual_error_maps(sums, counts, shifts)
    for m, (dy, dx) in enumerate(shifts):
        for y in range(3):
            for r in range(10):
                for c in range(12):
                    rr, cc = r + dy, c + dx
                    inside = 0 <= rr < 10 and 0 <= cc < 12
                    want = sums[m, y, rr, cc] / counts[m, y, rr, cc] if inside and counts[m, y, rr, cc] else np.nan
                    np.testing.assert_allclose(out[m, y, r, c], want, rtol=1e-6, equal_nan=True)


def test_group_replicates_are_nanmeans_with_a_coverage_floor():
    rng = np.random.default_rng(2)
    errors = rng.normal(size=(50, 200))
    errors[rng.random(errors.shape) < 0.5] = np.nan
    pixels = rng.choice(200, 30, replace=False)
    got = group_replicates(errors, pixels, min_fraction=0.4)
    with np.errstate(invalid="ignore"):
        want = np.nanmean(errors[:, pixels], axis=1)
    want[np.isfinite(errors[:, pixels]).sum(axis=1) < 0.4 * 30] = np.nan
    np.testing.assert_allclose(got, want, equal_nan=True)
    assert np.isnan(got).any() and np.isfinite(got).any()


def test_error_interval_is_the_estimate_plus_numpys_quantiles():
    rng = np.random.default_rng(3)
    reps = rng.gamma(2.0, size=(4, 300)) - 2.0
    reps[0, :10] = np.nan
    lo, hi = error_interval(np.arange(4.0), reps, 0.8)
    for g in range(4):
        r = reps[g][np.isfinite(reps[g])]
        np.testing.assert_allclose([lo[g], hi[g]], g + np.quantile(r, [0.1, 0.9]))
    with pytest.raises(ValueError, match="level"):
        error_interval(0.0, reps, 1.0)


def test_split_fill_intervals_of_an_exact_footprint_field_with_no_error_have_zero_width():
    """No fill error and a field the footprints fit exactly: every replicate is the point map, so the split
    offsets are 0; a constant error c on every pixel shifts every single-source own part by c."""
    from ihs_hpc.pipeline.attribution import attribute_annual
    from ihs_hpc.pipeline.split_intervals import split_fill_intervals

    ny, nx = 30, 40
    lat, lon = np.linspace(37.0, 37.29, ny), np.linspace(114.0, 114.39, nx)
    src_row, src_col = np.array([10, 14]), np.array([12, 20])
    rr, cc = np.mgrid[:ny, :nx]
    members = [np.flatnonzero(((rr - r) ** 2 + (cc - c) ** 2 <= 64).ravel()) for r, c in zip(src_row, src_col)]
    dist = [np.hypot(rr - r, cc - c) for r, c in zip(src_row, src_col)]
    annual = np.full((2, ny, nx), np.nan)
    for y in range(2):
        field = 30.0 * np.exp(-dist[0] / 4.0) + 20.0 * np.exp(-dist[1] / 4.0)
        for m in members:
            annual[y].flat[m] = field.flat[m]
    problems = []
    attribute_annual(annual_ihs=annual, members=members, src_row=src_row, src_col=src_col, lat=lat, lon=lon,
                     operating=np.ones((2, 2), bool), years=[2019, 2020], ihs_ids=["a", "b"], decay_km=None,
                     problems=problems)
    for problem, decay in problems:  # the map the footprints fit exactly
        for y in range(2):
            _, pix, _ = problem.years[y]
            problem.flat[y, pix] = problem.design(y, decay) @ np.array([30.0, 20.0])
    settings = {"level": 0.9, "seed": 0, "min_fraction": 0.3}
    zero = np.zeros((20, ny * nx))
    below, above = split_fill_intervals([p for p, _ in problems], [d for _, d in problems], zero, settings,
                                        n_sources=2, n_years=2, min_unique=0.05)
    assert np.isfinite(below).all()
    np.testing.assert_allclose(below, 0.0, atol=1e-6)
    np.testing.assert_allclose(above, 0.0, atol=1e-6)
    shifted = np.linspace(-1.0, 1.0, 20)[:, None] + zero  # replicate r adds c_r everywhere
    below, above = split_fill_intervals([p for p, _ in problems], [d for _, d in problems], shifted, settings,
                                        n_sources=2, n_years=2, min_unique=0.05)
    assert (below < -0.3).all() and (above > 0.3).all()  # the constant errors reach both sources' parts


def test_covariate_contrast_is_what_a_fill_from_the_edge_cannot_see():
    """A town-like bump inside one hole of a sloping covariate: the contrast at its centre is the bump less
    what its tail shows at the hole's edge; in a hole with nothing in it the slope is filled (contrast ~0)."""
    ny, nx = 40, 50
    lat, lon = 37.0 - 0.01 * np.arange(ny), 114.0 + 0.01 * np.arange(nx)
    rows, cols = np.mgrid[:ny, :nx]
    bump = 3.0 * np.exp(-((rows - 20) ** 2 + (cols - 30) ** 2) / (2 * 2.0 ** 2))
    plane = 0.02 * rows + 0.01 * cols
    town = np.hypot(rows - 20, cols - 30) <= 5
    empty = np.hypot(rows - 10, cols - 10) <= 4
    hidden = town | empty
    c = covariate_contrast(np.stack([plane + bump, plane]), hidden, np.ones((ny, nx), bool), lat, lon)
    assert c.shape == (2, ny, nx) and np.isnan(c[:, ~hidden]).all() and np.isfinite(c[:, hidden]).all()
    edge = 3.0 * np.exp(-25 / 8)  # the bump's height where the fill sees it
    assert abs(c[0, 20, 30] - (3.0 - edge)) < 0.2
    assert np.abs(c[1, hidden]).max() < 0.06 and np.abs(c[0, empty]).max() < 0.06  # a slope is filled


def test_error_scale_recovers_a_known_heteroscedastic_scale():
    """|e| with e = (a + b |c1|) z, z ~ N(0, 1): E|e| = sqrt(2/pi) (a + b |c1|); c2 plays no part."""
    rng = np.random.default_rng(3)
    c = rng.normal(size=(40_000, 2))
    e = (0.3 + 1.5 * np.abs(c[:, 0])) * rng.normal(size=len(c))
    coef = fit_error_scale(np.abs(e), c)
    np.testing.assert_allclose(coef, np.sqrt(2 / np.pi) * np.array([0.3, 1.5, 0.0]), atol=0.04)
    with pytest.raises(ValueError, match="finite rows"):
        fit_error_scale(np.array([1.0, np.nan]), np.ones((2, 1)))


def test_placements_rescaled_to_high_contrast_areas_cover_their_errors():
    """Normalised conformal on known truth: placements see little contrast, the real pixels much (a town
    under every area). The placements' raw quantiles cover few of the real errors; scaled by the fitted
    scale at the real pixels over the placement's, close to the nominal 90 %."""
    rng = np.random.default_rng(5)
    n_place, n_year, n_pix = 40, 4, 600
    moved = np.abs(rng.normal(0, 0.3, size=(n_place, 1, 1, n_pix)))
    scale = 0.2 + 1.0 * moved[:, 0]  # (placements, 1, pixels)
    z = rng.normal(size=(n_place, 1, 1, n_pix)) + 0.1 * rng.normal(size=(n_place, n_year, 1, n_pix))
    errors = (scale[:, None] * z).astype(np.float32)  # mostly the same error every year, as a fill's
    real = np.full((1, 1, n_pix), 2.0)
    truth = (0.2 + 2.0) * rng.normal(size=n_pix)  # the real areas' errors
    scaled, coef, ratio = rescale_to_areas(errors, real, moved)
    np.testing.assert_allclose(coef, np.sqrt(2 / np.pi) * np.array([0.2, 1.0]), atol=0.06)
    s = lambda x: coef[0] + coef[1] * x  # noqa: E731
    np.testing.assert_allclose(ratio, s(2.0) / s(moved[:, 0]), rtol=1e-12)
    np.testing.assert_allclose(scaled, errors * ratio[:, None], rtol=1e-6)

    def coverage(maps):
        lo, hi = error_interval(np.zeros(n_pix), maps.reshape(-1, n_pix).T, 0.9)
        return np.mean((lo <= truth) & (truth <= hi))

    assert coverage(errors) < 0.5
    assert 0.84 <= coverage(scaled) <= 0.96


# --------------------------------------------------------------------------- the pipeline
@pytest.fixture(scope="module")
def fill_error_run(tiny_local_run, tmp_path_factory):
    """tiny_local_run copied and rerun from stage 3 with 6 placements (stats intervals from them)."""
    run_dir, _ = tiny_local_run
    tmp = tmp_path_factory.mktemp("fill_error")
    shutil.copytree(run_dir, tmp / "tiny")
    from tests.conftest import TINY_RUN_YAML

    config = tmp / "tiny.yaml"
    config.write_text(TINY_RUN_YAML + "stage3: {fill_error: {placements: 6, day_step: 5}}\n"
                      "cluster: {kind: local, n_workers: 2, threads_per_worker: 1}\n")
    result = subprocess.run([sys.executable, "-m", "ihs_hpc.cli", "run", str(config), "--rerun-changed"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "stage3 fill error" in result.stdout + result.stderr
    return tmp / "tiny"


def test_stored_fill_error_is_the_kriging_of_each_placement_redone_here(fill_error_run):
    """One placement and year recomputed with fill_days straight from stage2.zarr: same sampled days, same
    hidden pixels, the mean error moved back by the shift."""
    from ihs_hpc.pipeline.daily import fill_days
    from ihs_hpc.pipeline.fill_error import sampled_days
    from ihs_hpc.pipeline.inputs import drift_covariates
    from ihs_hpc.config import load_config

    run = fill_error_run
    s3 = xr.open_zarr(run / "stage3.zarr")
    s1 = xr.open_zarr(run / "stage1.zarr")
    assert s3.fill_error.dims == ("placement", "year", "lat", "lon") and s3.sizes["placement"] == 6
    holes = s1.ihs_mask.values.astype(bool)
    valid = s1.background.values.astype(bool)
    stored = s3.fill_error.values
    assert np.isnan(stored[:, :, ~holes]).all()  # only real IHS pixels carry an error
    assert np.isfinite(stored[:, :, holes]).mean() > 0.3
    cfg = load_config(run.parent / "tiny.yaml")
    _, drift = drift_covariates(cfg)
    s2 = xr.open_zarr(run / "stage2.zarr")
    years = pd.DatetimeIndex(s2.time.values).year.to_numpy()
    m, y = 2, 1
    dy, dx = (int(v) for v in s3.placement_shift.values[m])
    days = sampled_days(years, int(s3.year.values[y]), 5)
    assert days.size and (days % 5 == 0).all()
    bl = s2.pm25_bl_tem.values[days].astype(np.float64)
    target = placement_mask(holes, valid, dy, dx)
    total, count = np.zeros(holes.shape), np.zeros(holes.shape)
    out = np.empty((1,) + holes.shape)
    for i, day in enumerate(days):
        fill_days(bl[i:i + 1], int(day), lat=s2.lat.values, lon=s2.lon.values, holes=holes | target,
                  fill_mask=target, model=cfg["stage3.kriging_model"], k=cfg["stage3.kriging_neighbours"],
                  variogram=cfg["stage3.variogram"], variogram_cells=cfg["stage3.variogram_cells"], drift=drift,
                  out=out)
        err = out[0] - bl[i]
        ok = target & np.isfinite(err)
        total[ok] += err[ok]
        count[ok] += 1
    with np.errstate(invalid="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
    want = _shift_reference(mean, -dy, -dx, np.nan)
    np.testing.assert_allclose(stored[m, y], want, rtol=1e-5, atol=1e-5, equal_nan=True)


def test_city_intervals_are_the_estimate_plus_quantiles_of_the_city_mean_error(fill_error_run):
    """Each city's interval: the 5th and 95th percentiles of its mean error on the placements, widened
    on one side by its idle bias (the mean of the idle-bias map over its IHS pixels, or over every
    pixel that has one). Each source's area: the same from the placements' errors scaled to the real
    areas' contrast in elevation and settlement density (stats.intervals.scale_by_contrast: sources)."""
    from ihs_hpc.config import load_config
    from ihs_hpc.io.cube import read_pixels
    from ihs_hpc.ops.fill_error import placement_contrast
    from ihs_hpc.pipeline.inputs import static_covariates
    from ihs_hpc.pipeline.intervals import idle_bias_map, interval_settings, widen_by_bias

    run = fill_error_run
    s3 = xr.open_zarr(run / "stage3.zarr")
    s1 = xr.open_zarr(run / "stage1.zarr")
    cubes = xr.open_zarr(run / "cubes.zarr")
    errors = s3.fill_error.values.reshape(-1, s1.ihs_mask.size)
    city = pd.read_csv(run / "stats" / "city_ihs_intervals.csv")
    ihs = s1.ihs_mask.values.astype(bool).ravel()
    years = pd.DatetimeIndex(cubes.time.values).year.to_numpy()
    bias = idle_bias_map(lambda p: read_pixels(run / "stage3.zarr", "pm25_ihs", p, tile_size=32),
                         s1.ihs_count_year.sel(year=np.unique(years)).values, np.searchsorted(np.unique(years), years),
                         interval_settings(None))
    checked = 0
    for c, name in enumerate(dict.fromkeys(city.city)):
        pix = np.flatnonzero((cubes.city_id.values.ravel() == c) & ihs)
        own = bias[pix][np.isfinite(bias[pix])]
        b = own.mean() if own.size >= 0.3 * pix.size else np.nanmean(bias)
        np.testing.assert_allclose(city[city.city == name].idle_bias, b, rtol=1e-6)
        vals = errors[:, pix]
        keep = np.isfinite(vals).sum(axis=1) >= 0.3 * pix.size
        if not keep.any():
            continue
        reps = np.nanmean(vals[keep], axis=1)
        lo, hi = np.quantile(reps, [0.05, 0.95])
        rows = city[city.city == name]
        lo, hi = -np.hypot(min(lo, 0.0), max(b, 0.0)), np.hypot(max(hi, 0.0), max(-b, 0.0))  # bias in quadrature
        np.testing.assert_allclose(rows.pm25_ihs_lower - rows.pm25_ihs, lo, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(rows.pm25_ihs_upper - rows.pm25_ihs, hi, rtol=1e-4, atol=1e-6)
        checked += 1
    assert checked >= 1
    text = (run / "stats" / "tables.md").read_text()
    assert "fill error on its placements" in text and "idle bias" in text

    names, covariates = static_covariates(load_config(run.parent / "tiny.yaml"))
    assert names == ["dem", "urban"]
    real, moved = placement_contrast(covariates, s1.ihs_mask.values.astype(bool), s1.background.values.astype(bool),
                                     s3.placement_shift.values, s3.lat.values, s3.lon.values)
    scaled, _, ratio = rescale_to_areas(s3.fill_error.values, real, moved)
    assert np.nanmax(ratio) > 1.5  # the areas hold more than the placements (a town under seed 0's areas)
    scaled = scaled.reshape(-1, s1.ihs_mask.size)
    table = pd.read_csv(run / "stats" / "ihs_attribution.csv")
    offsets = s1.member_offset.values
    areas = 0
    for k, (_, rows) in enumerate(table.groupby("ihs_id", sort=False)):
        pix = s1.member_pixel.values[offsets[k]:offsets[k + 1]]
        reps = group_replicates(scaled, pix, min_fraction=0.3)
        rows = rows[np.isfinite(rows.pm25_ihs_area)]
        if rows.empty or not np.isfinite(reps).any():
            continue
        lo, hi = widen_by_bias(*error_interval(0.0, reps, 0.9), rows.idle_bias.iloc[0])  # each source's own area
        np.testing.assert_allclose(rows.pm25_ihs_area_lower - rows.pm25_ihs_area, lo, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(rows.pm25_ihs_area_upper - rows.pm25_ihs_area, hi, rtol=1e-4, atol=1e-6)
        areas += 1
    assert areas >= 4


def test_headline_intervals_are_the_ihs_pixels_mean_error_quantiles(fill_error_run):
    """ihs_area_intervals.csv: each year's IHS-related PM2.5 of all IHS areas (as annual.csv has it) plus
    the 5th/95th percentiles of the IHS pixels' mean error over the placements, widened by their idle bias;
    all years (year 0): each placement's years weighted by their pixel-days; the share's bounds are the
    mean's over the areas' mean total PM2.5; the coverage row recounts the table."""
    from ihs_hpc.io.cube import read_pixels
    from ihs_hpc.pipeline.intervals import idle_bias_map, interval_settings, widen_by_bias
    from ihs_hpc.pipeline.stats_store import load_sums

    run = fill_error_run
    s3 = xr.open_zarr(run / "stage3.zarr")
    s1 = xr.open_zarr(run / "stage1.zarr")
    cubes = xr.open_zarr(run / "cubes.zarr")
    area = pd.read_csv(run / "stats" / "ihs_area_intervals.csv")
    annual = pd.read_csv(run / "stats" / "annual.csv").set_index("year")
    years = [int(y) for y in s3.year.values]
    assert area.year.tolist() == years + [0]
    yearly = area.set_index("year").loc[years]
    np.testing.assert_allclose(yearly.pm25_ihs, annual.loc[years, "pm25_ihs"], rtol=1e-6)
    np.testing.assert_allclose(yearly.share_pct, annual.loc[years, "share_pct"], rtol=1e-6)
    ihs = np.flatnonzero(s1.ihs_mask.values.astype(bool).ravel())
    day_years = pd.DatetimeIndex(cubes.time.values).year.to_numpy()
    bias = idle_bias_map(lambda p: read_pixels(run / "stage3.zarr", "pm25_ihs", p, tile_size=32),
                         s1.ihs_count_year.sel(year=years).values, np.searchsorted(years, day_years),
                         interval_settings(None))
    b = np.nanmean(bias[ihs]) if np.isfinite(bias[ihs]).mean() >= 0.3 else np.nanmean(bias)
    errors = s3.fill_error.values.reshape(s3.sizes["placement"], len(years), -1)[:, :, ihs]
    present = np.isfinite(errors).sum(axis=2)
    reps = np.where(present >= 0.3 * ihs.size, np.nansum(errors, axis=2) / present, np.nan)  # (placements, years)
    lo, hi = widen_by_bias(*np.nanquantile(reps.ravel(), [0.05, 0.95]), b)
    np.testing.assert_allclose(yearly.pm25_ihs_lower - yearly.pm25_ihs, lo, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(yearly.pm25_ihs_upper - yearly.pm25_ihs, hi, rtol=1e-4, atol=1e-6)
    sums, ds = load_sums(run / "stats" / "series.zarr")
    a = 1  # GroupLayout.IHS_AREA
    n = np.array([sums["n_pair"][a, day_years == y].sum() for y in years])
    total = area.set_index("year").loc[0]
    np.testing.assert_allclose(total.pm25_ihs, (yearly.pm25_ihs * n).sum() / n.sum(), rtol=1e-6)
    w = np.where(np.isfinite(reps), n, 0.0)
    pooled = np.nansum(reps * w, axis=1) / w.sum(axis=1)
    lo, hi = widen_by_bias(*np.quantile(pooled, [0.05, 0.95]), b)
    np.testing.assert_allclose([total.pm25_ihs_lower - total.pm25_ihs, total.pm25_ihs_upper - total.pm25_ihs],
                               [lo, hi], rtol=1e-4, atol=1e-6)
    mean_total = sums["s_totp"][a].sum() / sums["n_pair"][a].sum()
    np.testing.assert_allclose(total[["share_pct_lower", "share_pct_upper"]].to_numpy(float),
                               100 * total[["pm25_ihs_lower", "pm25_ihs_upper"]].to_numpy(float) / mean_total, rtol=1e-6)
    inside = (yearly.pm25_ihs_lower <= yearly.pm25_ihs_true) & (yearly.pm25_ihs_true <= yearly.pm25_ihs_upper)
    scores = pd.read_csv(run / "stats" / "truth_scores.csv").set_index("metric")["value"]
    np.testing.assert_allclose(scores["coverage90_area_annual"], inside.mean())


def test_idle_days_carry_no_truth_and_their_estimate_is_the_bias_map(tiny_local_run):
    """The idle-bias map against the generator's truth on tiny seed 0: on every day counted idle at a pixel
    the true IHS contribution is 0, so the map is the mean estimate minus truth there; it is computed here
    pixel by pixel with a plain loop. Seed 0's fill runs high at the real areas (a town under them that the
    placements in the background cannot see): the map's mean and the operating years' mean error are both
    clearly positive."""
    from ihs_hpc.io.cube import read_pixels
    from ihs_hpc.pipeline.intervals import idle_bias_map, interval_settings
    from ihs_hpc.pipeline.met_fit import idle_days

    run, _ = tiny_local_run
    s1, s3, cubes = (xr.open_zarr(run / f"{n}.zarr") for n in ("stage1", "stage3", "cubes"))
    years = pd.DatetimeIndex(cubes.time.values).year.to_numpy()
    index = np.searchsorted(np.unique(years), years)
    count = s1.ihs_count_year.sel(year=np.unique(years)).values
    settings = interval_settings(None)
    bias = idle_bias_map(lambda p: read_pixels(run / "stage3.zarr", "pm25_ihs", p, tile_size=32), count, index,
                         settings, chunk=50)  # several blocks of pixels
    est = s3.pm25_ihs.values.reshape(len(years), -1)
    truth = cubes.pm25_ihs_true.values.reshape(len(years), -1)
    operating = count.reshape(count.shape[0], -1) > 0
    want = np.full(bias.size, np.nan)
    for p in np.flatnonzero(s1.ihs_mask.values.ravel()):
        idle = idle_days(operating[:, p], index, settings["idle_margin_days"]) & np.isfinite(est[:, p])
        if idle.sum() >= settings["idle_min_days"]:
            assert (truth[idle, p] == 0).all()
            want[p] = (est[idle, p] - truth[idle, p]).mean()
    assert np.isfinite(want).sum() >= 50
    np.testing.assert_allclose(bias, want, rtol=1e-5, atol=1e-6, equal_nan=True)
    on = operating[index] & s1.ihs_mask.values.astype(bool).ravel()[None]  # operating pixel-days
    assert np.nanmean(bias) > 0.3 and (est - truth)[on].mean() > 0.3


def test_widening_by_the_idle_bias_and_its_fallbacks():
    from ihs_hpc.pipeline.intervals import group_idle_bias, widen_by_bias

    lo, hi = np.array([-3.0, -3.0, -3.0, 0.5]), np.array([2.0, 2.0, 2.0, 2.0])
    a, b = widen_by_bias(lo, hi, np.array([4.0, -3.0, 0.0, 1.0]), np.array([1.0, 0.5, 1.0, 1.0]))
    # 3-4-5: below by √(3² + 4²); above by √(2² + 1.5²) = 2.5; no bias: as it was; an interval above the
    # estimate (lower offset > 0) moves its lower end down by the whole bias
    np.testing.assert_allclose(a, [-5.0, -3.0, -3.0, -0.5])
    np.testing.assert_allclose(b, [2.0, 2.5, 2.0, 2.0])
    bias = np.array([np.nan, 1.0, 3.0, np.nan, np.nan, -2.0])
    groups = [np.array([1, 2]), np.array([0, 3, 4, 5]), np.array([0, 1, 3, 4]), np.array([], dtype=int)]
    # own mean; too few known pixels (1 of 4 < 0.3 × 4 = 1.2): every known pixel's mean; 1 of 4 at 0.25: own
    np.testing.assert_allclose(group_idle_bias(bias, groups, 0.3), [2.0, 2 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(group_idle_bias(bias, groups[:3], 0.25), [2.0, -2.0, 1.0])
    np.testing.assert_array_equal(group_idle_bias(np.full(6, np.nan), groups, 0.3), [0.0] * 4)


def test_fill_error_intervals_coverage_on_tiny_is_scored(fill_error_run, tiny_local_run):
    """The fill-error intervals are scored against the truth like the bootstrap's (no bound on the rate: on
    tiny seed 0 the real areas' errors exceed the placements', README "Intervals")."""
    scores = pd.read_csv(fill_error_run / "stats" / "truth_scores.csv").set_index("metric")["value"]
    boot = pd.read_csv(tiny_local_run[0] / "stats" / "truth_scores.csv").set_index("metric")["value"]
    for key in ("coverage90_city_annual", "coverage90_source_annual"):
        assert 0.0 <= scores[key] <= 1.0
    assert scores["coverage90_city_n"] == boot["coverage90_city_n"]
    city = pd.read_csv(fill_error_run / "stats" / "city_ihs_intervals.csv")
    inside = (city.pm25_ihs_lower <= city.pm25_ihs_true) & (city.pm25_ihs_true <= city.pm25_ihs_upper)
    np.testing.assert_allclose(scores["coverage90_city_annual"], inside.mean())
    # the same point estimates: only the intervals differ
    a = pd.read_csv(fill_error_run / "stats" / "ihs_attribution.csv")
    b = pd.read_csv(tiny_local_run[0] / "stats" / "ihs_attribution.csv")
    np.testing.assert_allclose(a.pm25_ihs_own, b.pm25_ihs_own, equal_nan=True)
    assert not np.allclose(a.pm25_ihs_own_upper, b.pm25_ihs_own_upper, equal_nan=True)


def test_killed_while_measuring_placements_then_rerun_is_identical(fill_error_run, tiny_local_run, tmp_path):
    """Stage 3 killed after 1 of tiny's 3 placement years: the rerun keeps that year's record, kriges the
    other two and publishes the same fill_error (and pm25_ihs) as the uninterrupted run."""
    import os
    import signal

    from tests.conftest import TINY_RUN_YAML

    shutil.copytree(tiny_local_run[0], tmp_path / "tiny")
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_RUN_YAML + "stage3: {fill_error: {placements: 6, day_step: 5}}\n"
                      "cluster: {kind: local, n_workers: 2, threads_per_worker: 1}\n")
    command = [sys.executable, "-m", "ihs_hpc.cli", "run", str(config), "--rerun-changed", "--stages", "stage3"]
    env = {**os.environ, "IHS_FAULT_KILL_AFTER": "stage3 fill error (placements):1"}
    killed = subprocess.run(command, capture_output=True, text=True, env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:] + killed.stderr[-2000:]
    records = list((tmp_path / "tiny" / "stage3.zarr.partial" / "_ihs_fills" / "fill_error").glob("*.npz"))
    assert 1 <= len(records) < 3
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    a, b = xr.open_zarr(fill_error_run / "stage3.zarr"), xr.open_zarr(tmp_path / "tiny" / "stage3.zarr")
    for name in ("fill_error", "pm25_ihs", "placement_shift"):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert not (tmp_path / "tiny" / "stage3.zarr" / "_ihs_fills").exists()
