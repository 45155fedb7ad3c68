"""Per-source attribution inside shared radiation areas (issue 13): the NNLS core against scipy and
hand-built cases with a known split, the generator's per-source truth, and recovery of that truth."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.optimize import nnls

from ihs_hpc.ops.attribution import (METHOD_EQUAL, METHOD_NNLS, fit_strengths, fit_strengths_many, footprints,
                                     nnls_residual2, overlap_clusters, own_means_many, split_by_footprint,
                                     unique_fraction)
from ihs_hpc.pipeline.attribution import _ClusterProblem, attribute_annual, attribution_scores


def _explicit_unique(design):
    out = []
    for j in range(design.shape[1]):
        others = np.delete(design, j, axis=1)
        coef, *_ = np.linalg.lstsq(others, design[:, j], rcond=None)
        resid = design[:, j] - others @ coef
        out.append(resid @ resid / (design[:, j] @ design[:, j]))
    return np.array(out)


def _line_footprints(n_pix=60, centres=(15, 25, 40), decay=6.0, reach=14):
    """Footprints exp(-|x - c| / L) of sources on a line of pixels, each on its own interval."""
    x = np.arange(n_pix, dtype=float)
    cols = []
    for c in centres:
        f = np.exp(-np.abs(x - c) / decay)
        f[np.abs(x - c) > reach] = 0.0
        cols.append(f)
    return np.column_stack(cols)


def test_unique_fraction_matches_explicit_regression():
    rng = np.random.default_rng(3)
    design = rng.random((80, 5))
    np.testing.assert_allclose(unique_fraction(design), _explicit_unique(design), rtol=1e-9)
    design[:, 4] = 0.5 * design[:, 0] + 2.0 * design[:, 2]  # a combination of two others
    got = unique_fraction(design)
    np.testing.assert_allclose(got, _explicit_unique(design), atol=1e-9)
    assert got[[0, 2, 4]].max() < 1e-9 and got[[1, 3]].min() > 0.1
    design[:, 1] = 0.0
    assert unique_fraction(design)[1] == 0.0


def test_nnls_core_recovers_a_known_split_and_agrees_with_scipy():
    design = _line_footprints()
    beta = np.array([5.0, 2.0, 8.0])
    values = design @ beta
    fit = fit_strengths(values, design)
    np.testing.assert_allclose(fit.coef, beta, rtol=1e-9)
    assert list(fit.method) == [METHOD_NNLS] * 3
    parts = split_by_footprint(values, design, fit.coef)
    np.testing.assert_allclose(parts, design * beta, rtol=1e-9, atol=1e-12)  # each source's own field
    np.testing.assert_allclose(parts.sum(axis=1), values, rtol=1e-12)
    # noisy data, and data whose unconstrained least squares would give a negative strength
    rng = np.random.default_rng(0)
    for y in (values + rng.normal(0.0, 0.3, values.size), design @ np.array([5.0, -3.0, 8.0])):
        want, _ = nnls(design, y)
        np.testing.assert_allclose(fit_strengths(y, design).coef, want, rtol=1e-10, atol=1e-12)
    assert fit_strengths(design @ np.array([5.0, -3.0, 8.0]), design).coef[1] == 0.0


def test_indistinguishable_sources_are_fitted_jointly_and_flagged():
    base = _line_footprints(centres=(15, 40))
    design = np.column_stack([base[:, 0], base[:, 0], base[:, 1]])  # two sources with the same footprint
    values = base @ np.array([6.0, 3.0])  # together 6 at the shared source, 3 at the other
    fit = fit_strengths(values, design, min_unique=0.05)
    assert list(fit.method) == [METHOD_EQUAL, METHOD_EQUAL, METHOD_NNLS]
    np.testing.assert_allclose(fit.coef, [3.0, 3.0, 3.0], rtol=1e-9)  # equal strengths, the pair's sum kept
    parts = split_by_footprint(values, design, fit.coef)
    np.testing.assert_allclose(parts.sum(axis=1), values, rtol=1e-12)


def test_split_falls_back_to_footprints_where_every_strength_is_zero():
    design = np.array([[1.0, 0.5], [0.2, 0.8], [0.0, 1.0]])
    parts = split_by_footprint(np.array([3.0, 2.0, 4.0]), design, np.array([0.0, 0.0]))
    np.testing.assert_allclose(parts, [[2.0, 1.0], [0.4, 1.6], [0.0, 4.0]])


def test_many_column_fits_and_splits_equal_the_one_column_forms():
    """fit_strengths_many / own_means_many (bootstrap replicates) against scipy's nnls and
    split_by_footprint column by column, with columns that need the constraint, a merged pair and
    pixels where every strength is zero."""
    rng = np.random.default_rng(11)
    base = _line_footprints(centres=(15, 25, 40))
    cases = [(base, np.array([5.0, 2.0, 8.0])),
             (np.column_stack([base[:, 0], base[:, 0], base[:, 1], base[:, 2]]), np.array([3.0, 3.0, 2.0, 8.0]))]
    for design, beta in cases:
        values = (design @ beta)[:, None] + rng.normal(0.0, 1.5, (design.shape[0], 40))
        values[:, :5] = (design @ np.array([-4.0, 1.0] + [6.0] * (design.shape[1] - 2)))[:, None]  # constraint binds
        values[:, 5] = -1.0  # every strength 0: split by the footprints alone
        coef = fit_strengths_many(values, design)
        rows = [np.flatnonzero(design[:, j] > 0) for j in range(design.shape[1])]
        own = own_means_many(values, design, coef, rows)
        for b in range(values.shape[1]):
            one = fit_strengths(values[:, b], design)
            np.testing.assert_allclose(coef[:, b], one.coef, rtol=1e-8, atol=1e-9)
            parts = split_by_footprint(values[:, b], design, one.coef)
            np.testing.assert_allclose(own[:, b], [parts[r, j].mean() for j, r in enumerate(rows)], rtol=1e-8,
                                       atol=1e-9)
        assert (coef[:, :5] == 0).any() and (coef[:, 5] == 0).all()


def test_split_intervals_of_an_exact_footprint_field_are_the_bootstrap_of_each_sources_own_series():
    """Daily fields that are exactly Σ_j β_j(t) f_j: every replicate's split gives each source its own
    replicate mean, so the split's offsets equal the percentiles of the block-bootstrap means of the
    source's own daily series, computed here with numpy from the same resampled days."""
    from ihs_hpc.pipeline.split_intervals import split_intervals
    from ihs_hpc.stats.bootstrap import block_indices

    ny = nx = 24
    lat, lon = 38.0 + 0.01 * np.arange(ny)[::-1], 114.0 + 0.01 * np.arange(nx)
    src_row, src_col = np.array([10, 11]), np.array([9, 14])
    rr, cc = np.divmod(np.arange(ny * nx), nx)
    members = [np.flatnonzero(np.hypot(rr - r, cc - c) <= 6) for r, c in zip(src_row, src_col)]
    fp = footprints(lat, lon, src_row, src_col, members, nx, 3.0)
    rng = np.random.default_rng(4)
    n_years, per_year = 3, 60
    beta = rng.lognormal(2.0, 0.5, (2, n_years * per_year))
    beta[1, :20] *= 3.0  # a spell: the bootstrap has something to resample
    daily = np.full((n_years * per_year, ny * nx), np.nan)
    daily[:, np.union1d(*members)] = 0.0
    for j in range(2):
        daily[:, members[j]] += beta[j][:, None] * fp[j][None, :]
    year_days = [np.arange(y * per_year, (y + 1) * per_year) for y in range(n_years)]
    annual = np.stack([daily[d].mean(axis=0) for d in year_days]).reshape(n_years, ny, nx)
    problems = []
    attribute_annual(annual_ihs=annual, members=members, src_row=src_row, src_col=src_col, lat=lat, lon=lon,
                     operating=np.ones((2, n_years), bool), years=[2019, 2020, 2021], ihs_ids=["a", "b"],
                     decay_km=3.0, problems=problems)
    settings = {"block_days": 5, "n_boot": 300, "level": 0.9, "seed": 7}
    pixels = np.union1d(*members)
    below, above = split_intervals([p for p, _ in problems], [d for _, d in problems], daily[:, pixels], pixels,
                                   year_days, settings, n_sources=2, min_unique=0.05)
    for y, days in enumerate(year_days):
        idx = block_indices(days.size, 5, 300, np.random.default_rng(7 + y))
        for j in range(2):
            own = beta[j][days][idx].mean(axis=1) * fp[j].mean()
            lo, mid, hi = np.percentile(own, [5, 50, 95])
            np.testing.assert_allclose([below[j, y], above[j, y]], [lo - mid, hi - mid], rtol=1e-6, atol=1e-9)
            assert below[j, y] < 0 < above[j, y]


def test_overlap_clusters_link_areas_through_shared_pixels():
    members = [np.array([0, 1, 2]), np.array([2, 3]), np.array([3, 4, 5]), np.array([7, 8]), np.array([9])]
    groups = overlap_clusters(members, 10)
    assert sorted(map(tuple, groups)) == [(0, 1, 2), (3,), (4,)]


def test_footprints_decay_with_distance_from_the_source_cell():
    lat = np.array([37.0, 36.99, 36.98])
    lon = np.array([114.0, 114.01, 114.02])
    fp = footprints(lat, lon, [1], [1], [np.arange(9)], 3, 2.0)[0].reshape(3, 3)
    assert fp[1, 1] == 1.0 and fp[0, 0] < fp[0, 1] < 1.0
    np.testing.assert_allclose(fp[0, 1], np.exp(-0.01 * 6371.0088 * np.pi / 180 / 2.0), rtol=1e-3)


# --------------------------------------------------------------------------- the scene's truth
def _members(ds):
    off, pix = ds.ihs_area_true_offset.values, ds.ihs_area_true_pixel.values
    return [pix[off[i]:off[i + 1]] for i in range(off.size - 1)]


def test_per_source_truth_adds_up_to_the_area_truth(tiny_scene):
    """Σ_i (own annual mean of source i) × |A_i| is the true IHS PM2.5 summed over the union of the areas."""
    ds = xr.open_zarr(tiny_scene)
    mem = _members(ds)
    own = ds.ihs_true_annual_mean.values
    n_union = int((ds.ihs_area_true.values > 0).sum())
    total = sum(own[i] * m.size for i, m in enumerate(mem))
    np.testing.assert_allclose(total, ds.pm25_ihs_true_annual_mean.values * n_union, rtol=1e-6)


def _attribute(ds, annual, decay_km=None, **kwargs):
    years = ds.year.values
    table = attribute_annual(annual_ihs=annual, members=_members(ds), src_row=ds.ihs_row.values,
                             src_col=ds.ihs_col.values, lat=ds.lat.values, lon=ds.lon.values,
                             operating=ds.ihs_operating.sel(year=years).values, years=years,
                             ihs_ids=[str(v) for v in ds.ihs_id.values], decay_km=decay_km, **kwargs)
    table["ihs_true_annual_mean"] = ds.ihs_true_annual_mean.sel(year=years).values.ravel()
    return table


def test_attribution_of_the_true_field_recovers_each_sources_truth(tiny_scene):
    """Given the true IHS field, the split recovers each source's own annual contribution; the fitted
    footprint decays come close to the generator's; a wrong common decay does measurably worse."""
    ds = xr.open_zarr(tiny_scene)
    years = ds.year.values
    annual = ds.pm25_ihs_true.groupby("time.year").mean().sel(year=years).values.astype(np.float64)
    annual[:, ds.ihs_area_true.values == 0] = np.nan
    table = _attribute(ds, annual)
    scores = attribution_scores(table)
    assert scores["attribution_n"] >= 10
    assert scores["attribution_r"] >= 0.99 and scores["attribution_mdape_pct"] <= 2.0, scores
    shared = table.groupby("ihs_id", sort=False)[["shares_area", "decay_km"]].first()
    true_decay = pd.Series(ds.ihs_decay_km.values, index=shared.index)[shared.shares_area]
    np.testing.assert_allclose(shared.decay_km[shared.shares_area], true_decay, rtol=0.1)
    fixed = attribution_scores(_attribute(ds, annual, decay_km=8.0))
    assert fixed["attribution_mdape_pct"] > 2 * scores["attribution_mdape_pct"]
    # not operating: exactly zero; the parts of each year add up to the area estimate
    off = table[~table.operating]
    assert (off.pm25_ihs_own == 0).all() and len(off) > 0
    mem = _members(ds)
    for y, year in enumerate(years):
        rows = table[table.year == year].reset_index(drop=True)
        total = sum(rows.pm25_ihs_own[i] * m.size for i, m in enumerate(mem))
        np.testing.assert_allclose(total, np.nansum(annual[y]), rtol=1e-9)


def test_nnls_residual_on_the_gram_factor_equals_scipys_on_the_design():
    """The decay search's residual (the k × k problem) is scipy's NNLS residual of the full problem: with
    strengths at zero, an exact fit, a given Gram matrix, and dependent columns (the full problem)."""
    rng = np.random.default_rng(11)
    for trial in range(40):
        design = rng.random((int(rng.integers(20, 200)), int(rng.integers(1, 12))))
        values = design @ rng.normal(1.0, 1.5, design.shape[1]) + rng.normal(0, 0.5, design.shape[0])
        want = nnls(design, values)[1] ** 2
        got = nnls_residual2(design, values)
        assert abs(got - want) <= 1e-8 * max(values @ values, 1.0), (trial, got, want)
        given = nnls_residual2(design, values, gram=design.T @ design, rhs=design.T @ values)
        assert abs(given - want) <= 1e-8 * max(values @ values, 1.0)
    design = _line_footprints()
    assert nnls_residual2(design, design @ np.array([5.0, 2.0, 8.0])) < 1e-18  # exact fit
    assert nnls_residual2(design, -design.sum(axis=1)) == pytest.approx((design.sum(axis=1) ** 2).sum())  # β = 0
    dependent = np.column_stack([design, design[:, 0] + design[:, 2]])
    values = dependent @ np.array([1.0, 2.0, 3.0, 0.5]) + rng.normal(0, 0.1, design.shape[0])
    assert nnls_residual2(dependent, values) == pytest.approx(nnls(dependent, values)[1] ** 2, rel=1e-9)


def test_decay_search_keeps_its_normal_equations_equal_to_fresh_ones(tiny_scene):
    """The normal equations a cluster keeps between decay trials, updated where a decay changed, equal
    XᵀX and Xᵀv of the design built afresh; the summed residual equals scipy's NNLS on fresh designs."""
    ds = xr.open_zarr(tiny_scene)
    years = ds.year.values
    annual = ds.pm25_ihs_true.groupby("time.year").mean().sel(year=years).values.astype(np.float64)
    annual[:, ds.ihs_area_true.values == 0] = np.nan
    members = _members(ds)
    cluster = max(overlap_clusters(members, annual[0].size), key=len)
    assert cluster.size >= 3
    problem = _ClusterProblem(cluster, members, annual.reshape(len(years), -1), ds.ihs_operating.sel(year=years).values,
                              ds.lat.values, ds.lon.values, ds.ihs_row.values, ds.ihs_col.values, ds.sizes["lon"])
    rng = np.random.default_rng(5)
    decay = {int(j): 3.0 for j in cluster}
    for step in range(12):  # one source's decay at a time, then several at once
        for j in (rng.choice(cluster, size=1 if step < 8 else 3, replace=False)):
            decay[int(j)] = float(rng.uniform(1.0, 12.0))
        want = 0.0
        for y, (active, pix, _) in enumerate(problem.years):
            if not active or pix.size == 0:
                continue
            fresh = problem.design(y, decay)
            values = problem.flat[y, pix]
            design, gram, rhs = problem.normal_equations(y, decay)
            np.testing.assert_array_equal(design, fresh)
            np.testing.assert_allclose(gram, fresh.T @ fresh, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(rhs, fresh.T @ values, rtol=1e-12, atol=1e-10)
            want += nnls(fresh, values)[1] ** 2
        assert problem.residual2(decay) == pytest.approx(want, rel=1e-9)


def test_per_source_decays_beat_one_common_decay_in_a_cluster_above_the_refine_limit(tiny_scene):
    """A cluster larger than ``refine_max_sources`` keeps one common decay: on the true field of the tiny
    scene the split is then measurably worse than with each source's own decay (why the limit is 60, above
    the demo's largest clusters)."""
    ds = xr.open_zarr(tiny_scene)
    years = ds.year.values
    annual = ds.pm25_ihs_true.groupby("time.year").mean().sel(year=years).values.astype(np.float64)
    annual[:, ds.ihs_area_true.values == 0] = np.nan
    refined = attribution_scores(_attribute(ds, annual))
    common = attribution_scores(_attribute(ds, annual, refine_max_sources=1))
    assert common["attribution_mdape_pct"] > 2 * refined["attribution_mdape_pct"], (common, refined)


def test_pipeline_writes_attribution_and_scores(tiny_local_run):
    run_dir, _ = tiny_local_run
    table = pd.read_csv(run_dir / "stats" / "ihs_attribution.csv")
    assert {"ihs_id", "year", "pm25_ihs_own", "share_of_area_pct", "method", "ihs_true_annual_mean"} <= set(table)
    scores = pd.read_csv(run_dir / "stats" / "truth_scores.csv").set_index("metric")["value"]
    # looser than the demo's acceptance (r >= 0.9, MdAPE <= 20 %): 3 years, 8 sources
    assert scores["attribution_r"] >= 0.85 and scores["attribution_mdape_pct"] <= 25.0, scores
    # the parts of every year add up to the run's annual IHS-related PM2.5 summed over the pixels an
    # operating source covers (pixels only non-operating sources reach are nobody's)
    maps = xr.open_zarr(run_dir / "stats" / "maps.zarr")
    areas = xr.open_zarr(run_dir / "stage1.zarr")
    sizes = np.diff(areas.member_offset.values)
    for year in table.year.unique():
        own = table[table.year == year].pm25_ihs_own.to_numpy()
        covered = areas.ihs_count_year.sel(year=year).values > 0
        want = float(np.nansum(maps.annual_pm25_ihs.sel(year=year).values[covered]))
        np.testing.assert_allclose((own * sizes).sum(), want, rtol=1e-6)


# --------------------------------------------------------------------------- intervals (block bootstrap over days)
from ihs_hpc.stats.bootstrap import block_indices, pooled_mean_interval  # noqa: E402


def test_block_indices_are_runs_of_consecutive_days():
    idx = block_indices(20, 6, 50, np.random.default_rng(1))
    assert idx.shape == (50, 20)
    steps = np.diff(idx, axis=1) % 20
    for k in range(1, 20):
        if k % 6:  # inside a block: the next day (circularly)
            assert (steps[:, k - 1] == 1).all()


def test_a_single_whole_period_block_gives_a_zero_width_interval():
    rng = np.random.default_rng(2)
    sums, counts = rng.random((3, 40)) * 10, rng.integers(1, 5, (3, 40)).astype(float)
    lo, hi = pooled_mean_interval(sums, counts, block=40, n_boot=200)
    want = sums.sum(1) / counts.sum(1)  # every resample is a rotation of the whole period
    np.testing.assert_allclose(lo, want, rtol=1e-12)
    np.testing.assert_allclose(hi, want, rtol=1e-12)


def test_one_day_blocks_match_scipys_percentile_bootstrap():
    from scipy.stats import bootstrap

    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, 5.0, 300)
    lo, hi = pooled_mean_interval(x[None], np.ones((1, 300)), block=1, n_boot=4000, level=0.9, seed=4)
    ref = bootstrap((x,), np.mean, confidence_level=0.9, method="percentile", n_resamples=4000,
                    random_state=5).confidence_interval
    width = ref.high - ref.low
    assert abs(lo[0] - ref.low) < 0.05 * width and abs(hi[0] - ref.high) < 0.05 * width


def test_blocks_cover_the_mean_of_a_correlated_series_near_the_nominal_rate():
    """AR(1) days (memory ~5 days): 10-day blocks keep most of the correlation, 1-day blocks do not."""
    rng = np.random.default_rng(6)
    phi, n = np.exp(-1 / 5.0), 365
    hits = {1: 0, 20: 0}
    trials = 150
    for _ in range(trials):
        e = rng.standard_normal(n)
        x = np.empty(n)
        x[0] = e[0] / np.sqrt(1 - phi**2)
        for t in range(1, n):
            x[t] = phi * x[t - 1] + e[t]
        for block in hits:
            lo, hi = pooled_mean_interval(x[None], np.ones((1, n)), block=block, n_boot=300,
                                          seed=int(rng.integers(1e9)))
            hits[block] += lo[0] <= 0.0 <= hi[0]
    assert hits[1] / trials < 0.6          # iid resampling of correlated days: far too narrow
    assert 0.78 <= hits[20] / trials <= 0.97


def test_pipeline_writes_intervals_and_coverage(tiny_local_run):
    run_dir, _ = tiny_local_run
    table = pd.read_csv(run_dir / "stats" / "ihs_attribution.csv")
    on = table[table.operating]
    assert (on.pm25_ihs_own_lower <= on.pm25_ihs_own + 1e-9).all()
    assert (on.pm25_ihs_own <= on.pm25_ihs_own_upper + 1e-9).all()
    assert (on.pm25_ihs_own_upper > on.pm25_ihs_own_lower).all()
    city = pd.read_csv(run_dir / "stats" / "city_ihs_intervals.csv")
    assert ((city.pm25_ihs_lower <= city.pm25_ihs) & (city.pm25_ihs <= city.pm25_ihs_upper)).all()
    scores = pd.read_csv(run_dir / "stats" / "truth_scores.csv").set_index("metric")["value"]
    for key in ("coverage90_city_annual", "coverage90_source_annual"):
        assert 0.0 <= scores[key] <= 1.0
    inside = (city.pm25_ihs_lower <= city.pm25_ihs_true) & (city.pm25_ihs_true <= city.pm25_ihs_upper)
    np.testing.assert_allclose(scores["coverage90_city_annual"], inside.mean())


def _coverage_counts(run_dir):
    """(covered, judged) city-years and source-years of a run, recounted from its tables, checked against
    its truth_scores.csv."""
    scores = pd.read_csv(run_dir / "stats" / "truth_scores.csv").set_index("metric")["value"]
    city = pd.read_csv(run_dir / "stats" / "city_ihs_intervals.csv").dropna(subset=["pm25_ihs_true"])
    inside = (city.pm25_ihs_lower <= city.pm25_ihs_true) & (city.pm25_ihs_true <= city.pm25_ihs_upper)
    assert scores["coverage90_city_n"] == len(city)
    np.testing.assert_allclose(scores["coverage90_city_annual"], inside.mean())
    n_src = int(scores["coverage90_source_n"])
    return (int(inside.sum()), len(city)), (int(round(scores["coverage90_source_annual"] * n_src)), n_src)


def _source_coverage_without_idle_bias(run_dir):
    """(covered, judged) source-years of a run's fill-error intervals with the idle-bias widening taken
    back out (each source's reach below or above its estimate was widened in quadrature by its share of
    its area's ``idle_bias``; every interval here holds its estimate)."""
    t = pd.read_csv(run_dir / "stats" / "ihs_attribution.csv")
    t = t[t.operating & np.isfinite(t.ihs_true_annual_mean) & (t.ihs_true_annual_mean > 0)]
    frac = np.clip(np.nan_to_num(t.pm25_ihs_own / t.pm25_ihs_area, nan=1.0), 0.0, 1.0)
    below, above = t.pm25_ihs_own - t.pm25_ihs_own_lower, t.pm25_ihs_own_upper - t.pm25_ihs_own
    assert (below >= -1e-9).all() and (above >= -1e-9).all()
    lower = t.pm25_ihs_own - np.sqrt(np.maximum(below**2 - (frac * np.maximum(t.idle_bias, 0.0))**2, 0.0))
    upper = t.pm25_ihs_own + np.sqrt(np.maximum(above**2 - (frac * np.maximum(-t.idle_bias, 0.0))**2, 0.0))
    truth = t.ihs_true_annual_mean
    return int(((lower <= truth + 1e-9) & (truth <= upper + 1e-9)).sum()), len(t)


def test_default_intervals_cover_the_truth_on_three_tiny_seeds(tiny_local_run, tmp_path):
    """Issue 13's calibration on tiny variants, with a looser bound than the 85-95 % asked of the demo:
    the default intervals (stats.intervals.method auto with stage 3's 16 fill-error placements, widened by
    the idle bias, the sources' from the placements' errors scaled to the areas' contrast in elevation and
    settlement density)
    of tiny seeds 0, 1 and 2 pooled cover 75-99 % of the per-city and per-source annual truths. Measured
    (2026-11-29): cities 6/9, 9/9, 9/9 (24/27 = 0.889), sources 9/17, 19/21, 16/18 (44/56 = 0.786). Without
    the idle bias the sources' would be 39/56 (seed 0: 4/17): the placements, even scaled, see too little
    of the town under seed 0's areas."""
    import subprocess
    import sys

    runs = [tiny_local_run[0]]
    for seed in (1, 2):
        config = tmp_path / f"tiny{seed}.yaml"
        config.write_text(f"input: {{kind: synthetic, synthetic: {{preset: tiny, seed: {seed}}}}}\n"
                          "grid: {tile_size: 32}\ncluster: {kind: none}\nreport: {enabled: false}\n")
        result = subprocess.run([sys.executable, "-m", "ihs_hpc.cli", "run", str(config)], capture_output=True,
                                text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        runs.append(tmp_path / f"tiny{seed}")
    counts = [_coverage_counts(run) for run in runs]
    for kind, k in (("city", 0), ("source", 1)):
        covered, judged = (sum(c[k][i] for c in counts) for i in (0, 1))
        assert judged >= 25, (kind, counts)
        assert 0.75 <= covered / judged <= 0.99, (kind, counts)
    for run in runs:
        assert (pd.read_csv(run / "stats" / "ihs_attribution.csv").interval == "fill_error").all()
    bare = [_source_coverage_without_idle_bias(run) for run in runs]
    assert sum(b[0] for b in bare) / sum(b[1] for b in bare) < 0.75, bare  # the widening is what brings it in
    assert bare[0][0] < counts[0][1][0], (bare, counts)


def test_bad_settings_are_named(tiny_local_run, tmp_path):
    from ihs_hpc.errors import ConfigError
    from ihs_hpc.pipeline.attribution import write_attribution
    from ihs_hpc.pipeline.intervals import interval_settings
    from ihs_hpc.stats.tables import TableWriter

    run_dir, _ = tiny_local_run
    cubes = xr.open_zarr(run_dir / "cubes.zarr")
    with pytest.raises(ConfigError, match="stats.attribution.decay_km"):
        write_attribution(TableWriter(tmp_path, "t"), cubes=cubes, areas=xr.open_zarr(run_dir / "stage1.zarr"),
                          maps=xr.open_zarr(run_dir / "stats" / "maps.zarr"), years=[int(y) for y in cubes.year.values],
                          operating=None, ihs_ids=[str(v) for v in cubes.ihs_id.values], decay_km=-2.0)
    with pytest.raises(ConfigError, match="block_days"):
        interval_settings({"block_days": 0})
    with pytest.raises(ConfigError, match="'idle_min_days': 0"):
        interval_settings({"idle_min_days": 0})
    with pytest.raises(ConfigError, match="'idle_margin_days': -1"):
        interval_settings({"idle_margin_days": -1})
    with pytest.raises(ConfigError, match="'scale_by_contrast': 'yes'"):
        interval_settings({"scale_by_contrast": "yes"})
    assert not list(tmp_path.iterdir())  # nothing written
