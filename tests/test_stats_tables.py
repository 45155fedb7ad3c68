"""The statistics stage on a small fake run directory: every table number against an independent
computation made here, straight from the arrays, with numpy / pandas / scipy / pymannkendall."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ihs_hpc.config import RunConfig, validate_settings
from ihs_hpc.grid import Grid
from ihs_hpc.io.cube import create_store, cube_spec, map_spec, mark_complete, write_array
from ihs_hpc.pipeline.plan import stamp

NY, NX, TILE = 20, 24, 8
YEARS = (2012, 2013, 2014)
CITY_EN = ("Alpha City", "Beta City")
IHS_RC = ((5, 5), (7, 8), (14, 18))  # the first two areas overlap
RADIUS = 3
OPERATING = np.array([[1, 1, 1], [0, 1, 1], [1, 1, 0]], dtype=bool)


def make_fake_run(root, seed: int = 0, *, indicators: bool = True) -> RunConfig:
    """A run directory with cubes/stage1/stage3 stores of seeded random arrays (synthetic truth included)."""
    rng = np.random.default_rng(seed)
    settings = {"grid": {"tile_size": TILE}, "cluster": {"kind": "none"}}
    if indicators:
        ind = pd.DataFrame({"year": list(YEARS) * 2, "region": ["all"] * 3 + ["Beta City"] * 3,
                            "Coal production": [5.0, 4.2, 3.1, 2.0, 2.5, 1.0],
                            "SO2 emissions": [9.0, 7.5, 7.9, 3.0, 2.0, 2.2]})
        path = root / "indicators.csv"
        ind.to_csv(path, index=False)
        settings["stats"] = {"indicators": str(path)}
    config = RunConfig(settings=validate_settings(settings, "test"), source="test", run_dir=root)
    grid = Grid(south=40.0, north=40.0 + NY * 0.01, west=116.0, east=116.0 + NX * 0.01, res=0.01)
    time = pd.date_range(f"{YEARS[0]}-01-01", f"{YEARS[-1]}-12-31", freq="D").values
    nt = time.size
    rows, cols = np.meshgrid(np.arange(NY), np.arange(NX), indexing="ij")
    members = []
    for r, c in IHS_RC:
        near = (np.abs(rows - r) <= RADIUS) & (np.abs(cols - c) <= RADIUS) & ((rows - r) ** 2 + (cols - c) ** 2 <= 10)
        members.append(np.flatnonzero(near.ravel()))
    count = np.zeros(NY * NX, np.int32)
    for m in members:
        count[m] += 1
    count = count.reshape(NY, NX)
    inside = count > 0
    city_id = np.where(cols < 12, 0, 1).astype(np.int16)
    city_id[0, :2] = -1  # a few pixels outside every city

    # arrays: a seasonal, declining total; IHS part inside areas; truth close to the estimate
    doy = pd.DatetimeIndex(time).day_of_year.to_numpy()
    yidx = pd.DatetimeIndex(time).year.to_numpy() - YEARS[0]
    season = 1 + 0.4 * np.cos(2 * np.pi * (doy - 15) / 365.25)
    level = (40 + 10 * rng.random((NY, NX)))[None] * (season * (1 - 0.08 * yidx))[:, None, None]
    truth = np.where(inside[None], (8 + 6 * rng.random((NY, NX)))[None] * season[:, None, None]
                     * (1 - 0.1 * yidx)[:, None, None], np.nan)
    pm25 = level + np.nan_to_num(truth) + rng.normal(0, 3, (nt, NY, NX))
    pm25[rng.random(pm25.shape) < 0.01] = np.nan  # missing pixel-days
    est = np.where(inside[None], truth + rng.normal(0, 2, truth.shape), np.nan)
    oem = pm25 - np.nan_to_num(est)

    ny_ihs = len(IHS_RC)
    static = xr.Dataset(
        {
            "city_name": ("city", np.array(["甲市", "乙市"], dtype=object)),
            "city_name_en": ("city", np.array(CITY_EN, dtype=object)),
            "city_adcode": ("city", np.array([110000, 120000], dtype=np.int64)),
            "ihs_id": ("ihs", np.array([f"IHS{i:03d}" for i in range(ny_ihs)], dtype=object)),
            "ihs_name": ("ihs", np.array(["Cement works", "Steel mill", "Power plant"], dtype=object)),
            "ihs_category": ("ihs", np.array(["cement", "steel", "power"], dtype=object)),
            "ihs_lat": ("ihs", grid.lat[[r for r, _ in IHS_RC]]),
            "ihs_lon": ("ihs", grid.lon[[c for _, c in IHS_RC]]),
            "ihs_row": ("ihs", np.array([r for r, _ in IHS_RC], dtype=np.int32)),
            "ihs_col": ("ihs", np.array([c for _, c in IHS_RC], dtype=np.int32)),
            "ihs_operating": (("ihs", "year"), OPERATING),
            "ihs_true_annual_mean": (("ihs", "year"), rng.random((ny_ihs, len(YEARS)))),
            "pm25_ihs_true_annual_mean": ("year", rng.random(len(YEARS))),
        },
        coords={"year": np.array(YEARS)},
    )
    cubes = root / "cubes.zarr"
    create_store(cubes, grid, {
        "pm25": cube_spec("ug m-3", "PM2.5"), "pm25_ihs_true": cube_spec("ug m-3", "true IHS PM2.5"),
        "dem": map_spec("m", "elevation"), "city_id": map_spec("1", "city index", dtype="int16"),
    }, tile_size=TILE, time=time, static=static, overwrite=True, attrs=stamp(config, "input"))
    stage3 = root / "stage3.zarr"
    create_store(stage3, grid, {"pm25_bl_oem": cube_spec("ug m-3", "oem"), "pm25_ihs": cube_spec("ug m-3", "ihs")},
                 tile_size=TILE, time=time, overwrite=True, attrs=stamp(config, "stage3"))
    for name, value in (("pm25", pm25), ("pm25_ihs_true", truth), ("dem", rng.random((NY, NX))), ("city_id", city_id)):
        write_array(cubes, name, value)
    write_array(stage3, "pm25_bl_oem", oem)
    write_array(stage3, "pm25_ihs", est)
    mark_complete(cubes)
    mark_complete(stage3)

    offsets = np.concatenate([[0], np.cumsum([m.size for m in members])]).astype(np.int64)
    area = grid.cell_area_km2().ravel()
    s1 = xr.Dataset({
        "member_offset": ("ihs_edge", offsets), "member_pixel": ("member", np.concatenate(members).astype(np.int64)),
        "ihs_id": ("ihs", static.ihs_id.values),
        "ihs_area_km2": ("ihs", np.array([area[m].sum() for m in members])),
    })
    stage1 = root / "stage1.zarr"
    create_store(stage1, grid, {
        "ihs_count": map_spec("1", "count", dtype="int32"), "ihs_mask": map_spec("1", "mask", dtype="int8"),
        "background": map_spec("1", "bg", dtype="int8"), "ihs_index": map_spec("1", "index", dtype="int32"),
    }, tile_size=TILE, static=s1, overwrite=True, attrs=stamp(config, "stage1"))
    write_array(stage1, "ihs_count", count)
    write_array(stage1, "ihs_mask", inside.astype(np.int8))
    write_array(stage1, "background", (~inside).astype(np.int8))
    write_array(stage1, "ihs_index", np.where(inside, 0, -1))
    mark_complete(stage1)

    arrays = {"pm25": pm25, "truth": truth, "est": est, "oem": oem, "inside": inside, "city_id": city_id,
              "members": members, "time": time}
    return config, arrays


_SHARED: dict = {}


def shared_run(tmp_path_factory):
    """The fake run with its statistics computed, built once per session (test_report reuses it)."""
    if "run" not in _SHARED:
        from ihs_hpc.pipeline.stats import run_stats

        root = tmp_path_factory.mktemp("run")
        config, arrays = make_fake_run(root)
        result = run_stats(config, None, lambda *a: None)
        _SHARED["run"] = (config, arrays, result, root / "stats")
    return _SHARED["run"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return shared_run(tmp_path_factory)


# --------------------------------------------------------------------------- independent numbers
def _pair(arrays):
    pm25, est, truth = arrays["pm25"], arrays["est"], arrays["truth"]
    return np.isfinite(pm25) & np.isfinite(est) & np.isfinite(truth)


def _ihs_mean(arrays, days, pixels):
    ok = _pair(arrays)[days][:, pixels]
    return arrays["est"][days][:, pixels][ok].mean()


def _share(arrays, days, pixels):
    ok = _pair(arrays)[days][:, pixels]
    return 100 * arrays["est"][days][:, pixels][ok].sum() / arrays["pm25"][days][:, pixels][ok].sum()


def _years(arrays):
    return pd.DatetimeIndex(arrays["time"]).year.to_numpy()


def test_outputs_exist(run):
    _, _, result, out = run
    for name in ("annual.csv", "seasonal.csv", "city_pm25_ihs_annual.csv", "city_boxplot.csv", "mwu.csv",
                 "trends.csv", "correlation.csv", "correlation_table.csv", "moran.csv", "ihs_summary.csv",
                 "ihs_annual.csv", "truth_scores.csv", "tables.md", "stats.json", "city_pm25.csv"):
        assert (out / name).is_file(), name
    for store in ("maps.zarr", "trend_maps.zarr", "series.zarr"):
        assert (out / store / "zarr.json").is_file()
    doc = json.loads((out / "stats.json").read_text())
    assert "December" in doc["definitions"]["seasons"]
    assert np.isclose(result["share_pct"], doc["headline"]["share_pct"])
    md = (out / "tables.md").read_text()
    assert "Table 2" in md and "Alpha City" in md


def test_annual_means_and_shares(run):
    _, a, result, out = run
    annual = pd.read_csv(out / "annual.csv").set_index("year")
    years = _years(a)
    inside = a["inside"].ravel()
    pm25 = a["pm25"].reshape(len(years), -1)
    flat = {k: a[k].reshape(len(years), -1) for k in ("pm25", "est", "truth")}
    for y in YEARS:
        days = years == y
        assert np.isclose(annual.loc[y, "pm25_region"], np.nanmean(pm25[days]))
        assert np.isclose(annual.loc[y, "pm25_background"], np.nanmean(pm25[days][:, ~inside]))
        assert np.isclose(annual.loc[y, "pm25_ihs_area"], np.nanmean(pm25[days][:, inside]))
        assert np.isclose(annual.loc[y, "pm25_ihs"], _ihs_mean(flat, days, inside))
        assert np.isclose(annual.loc[y, "share_pct"], _share(flat, days, inside))
        assert annual.loc[y, "n_operating_ihs"] == OPERATING[:, YEARS.index(y)].sum()
    v = annual["pm25_ihs"].to_numpy()
    assert np.allclose(annual["pm25_ihs_yoy_pct"].to_numpy()[1:], 100 * (v[1:] - v[:-1]) / v[:-1])
    assert np.isclose(result["pm25_ihs"], _ihs_mean(flat, slice(None), inside))
    assert np.isclose(result["share_pct"], _share(flat, slice(None), inside))


def test_seasons_december_rule(run):
    _, a, _, out = run
    seasonal = pd.read_csv(out / "seasonal.csv")
    t = pd.DatetimeIndex(a["time"])
    flat = {k: a[k].reshape(len(t), -1) for k in ("pm25", "est", "truth")}
    inside = a["inside"].ravel()
    # DJF 2013 = Dec 2012 + Jan 2013 + Feb 2013
    row = seasonal[(seasonal.season == "DJF") & (seasonal.season_year == 2013)].iloc[0]
    days = ((t.year == 2012) & (t.month == 12)) | ((t.year == 2013) & (t.month <= 2))
    assert row.n_days == days.sum() and bool(row.complete)
    assert np.isclose(row.pm25_ihs, _ihs_mean(flat, days, inside))
    # the first DJF has no December and the trailing December of the last year opens DJF 2015
    first = seasonal[(seasonal.season == "DJF") & (seasonal.season_year == 2012)].iloc[0]
    assert not bool(first.complete) and first.n_days == 31 + 29
    tail = seasonal[(seasonal.season == "DJF") & (seasonal.season_year == 2015)].iloc[0]
    assert not bool(tail.complete) and tail.n_days == 31
    jja = seasonal[(seasonal.season == "JJA") & (seasonal.season_year == 2014)].iloc[0]
    days = (t.year == 2014) & t.month.isin([6, 7, 8])
    assert np.isclose(jja.share_pct, _share(flat, days, inside))


def test_city_tables(run):
    _, a, _, out = run
    t2 = pd.read_csv(out / "city_pm25_ihs_annual.csv").set_index("city")
    years = _years(a)
    flat = {k: a[k].reshape(len(years), -1) for k in ("pm25", "est", "truth")}
    inside, city = a["inside"].ravel(), a["city_id"].ravel()
    import pymannkendall as pmk

    for c, name in enumerate(CITY_EN):
        px = inside & (city == c)
        values = [_ihs_mean(flat, years == y, px) for y in YEARS]
        assert np.allclose(t2.loc[name, [str(y) for y in YEARS]].to_numpy(float), values)
        # declines only between years in which some source whose area reaches the city operated
        reaching = [i for i, m in enumerate(a["members"]) if (city[m] == c).any()]
        op_years = [j for j in range(len(YEARS)) if OPERATING[reaching, j].any()]
        first, last = op_years[0], op_years[-1]
        assert t2.loc[name, "decline_from"] == YEARS[first] and t2.loc[name, "decline_to"] == YEARS[last]
        assert np.isclose(t2.loc[name, "decline_2012_2014_pct"], 100 * (values[first] - values[last]) / values[first])
        mk = pmk.original_test(values)
        assert np.isclose(t2.loc[name, "mk_p"], mk.p) and np.isclose(t2.loc[name, "mk_z"], mk.z)
        assert np.isclose(t2.loc[name, "sen_slope"], mk.slope)
    summary = pd.read_csv(out / "city_summary.csv").set_index("city")
    for c, name in enumerate(CITY_EN):
        assert np.isclose(summary.loc[name, "pm25_city"], np.nanmean(flat["pm25"][:, city == c]))
        assert np.isclose(summary.loc[name, "share_pct"], _share(flat, slice(None), inside & (city == c)))
        assert summary.loc[name, "ihs_area_pixels"] == (inside & (city == c)).sum()


def test_boxplot_numbers(run):
    _, a, _, out = run
    boxes = pd.read_csv(out / "city_boxplot.csv", dtype={"period": str})
    years = _years(a)
    inside, city = a["inside"], a["city_id"]
    pair = _pair(a)
    est = np.where(pair, a["est"], 0.0)
    n = pair.astype(float)
    for j, y in enumerate(YEARS):
        d = years == y
        with np.errstate(invalid="ignore"):
            pixel_mean = est[d].sum(0) / n[d].sum(0)
        for c, name in enumerate(CITY_EN):
            x = pixel_mean[inside & (city == c)]
            row = boxes[(boxes.city == name) & (boxes.period == str(y))].iloc[0]
            q1, med, q3 = np.percentile(x, [25, 50, 75])
            assert np.isclose(row["median"], med) and np.isclose(row.q1, q1) and np.isclose(row.q3, q3)
            lo, hi = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
            assert np.isclose(row.whislo, x[x >= lo].min()) and np.isclose(row.whishi, x[x <= hi].max())
            assert row.n == x.size


def test_mwu_pearson_mk(run):
    import pymannkendall as pmk
    from scipy import stats

    _, a, _, out = run
    years = _years(a)
    inside = a["inside"]
    period_mean = np.nanmean(a["pm25"], axis=0)
    mwu = pd.read_csv(out / "mwu.csv").set_index("basis")
    ref = stats.mannwhitneyu(period_mean[~inside], period_mean[inside], alternative="two-sided")
    assert np.isclose(mwu.loc["period mean", "u_background"], ref.statistic)
    assert np.isclose(mwu.loc["period mean", "p"], ref.pvalue)
    assert np.isclose(mwu.loc["period mean", "u_eq11"], (~inside).sum() * inside.sum() - ref.statistic)
    d = years == 2013
    annual_2013 = np.nanmean(a["pm25"][d], axis=0)
    ref = stats.mannwhitneyu(annual_2013[~inside], annual_2013[inside])
    assert np.isclose(mwu.loc["2013", "p"], ref.pvalue)

    flat = {k: a[k].reshape(len(years), -1) for k in ("pm25", "est", "truth")}
    annual = np.array([_ihs_mean(flat, years == y, inside.ravel()) for y in YEARS])
    corr = pd.read_csv(out / "correlation.csv")
    row = corr[(corr.indicator == "Operational IHSs") & (corr.region == "All")].iloc[0]
    ref = stats.pearsonr(OPERATING.sum(0), annual)
    assert np.isclose(row.r, ref.statistic) and np.isclose(row.p, ref.pvalue)
    row = corr[(corr.indicator == "Coal production") & (corr.region == "All")].iloc[0]
    assert np.isclose(row.r, stats.pearsonr([5.0, 4.2, 3.1], annual).statistic)
    beta = inside.ravel() & (a["city_id"].ravel() == 1)
    beta_annual = [_ihs_mean(flat, years == y, beta) for y in YEARS]
    row = corr[(corr.indicator == "SO2 emissions") & (corr.region == "Beta City")].iloc[0]
    assert np.isclose(row.r, stats.pearsonr([3.0, 2.0, 2.2], beta_annual).statistic)
    table3 = pd.read_csv(out / "correlation_table.csv").set_index("indicator")
    assert np.isclose(table3.loc["SO2 emissions", "Beta City"], row.r)

    trends = pd.read_csv(out / "trends.csv").set_index("series")
    mk = pmk.original_test(annual)
    row = trends.loc["IHS-related PM2.5, IHS areas, annual"]
    assert np.isclose(row.p, mk.p) and np.isclose(row.z, mk.z) and np.isclose(row.slope, mk.slope)
    assert row.trend == mk.trend


def test_single_ihs(run):
    _, a, _, out = run
    years = _years(a)
    flat = {k: a[k].reshape(len(years), -1) for k in ("pm25", "est", "truth")}
    long = pd.read_csv(out / "ihs_annual.csv")
    summary = pd.read_csv(out / "ihs_summary.csv").set_index("ihs_id")
    for i, members in enumerate(a["members"]):
        ihs_id = f"IHS{i:03d}"
        for j, y in enumerate(YEARS):
            row = long[(long.ihs_id == ihs_id) & (long.year == y)].iloc[0]
            assert np.isclose(row.pm25_ihs, _ihs_mean(flat, years == y, members))
            assert np.isclose(row.share_pct, _share(flat, years == y, members))
            assert bool(row.operating) == OPERATING[i, j]
        assert np.isclose(summary.loc[ihs_id, "pm25_ihs"], _ihs_mean(flat, slice(None), members))
        assert summary.loc[ihs_id, "n_pixels"] == members.size
        ok = _pair(flat)[:, members]
        daily = 100 * np.where(ok, flat["est"][:, members], 0).sum(1) / np.where(ok, flat["pm25"][:, members], 0).sum(1)
        assert np.isclose(summary.loc[ihs_id, "daily_share_max_pct"], daily.max())
        assert summary.loc[ihs_id, "days_share_over_100"] == (daily > 100).sum()
        est = flat["est"][:, members]
        assert np.isclose(summary.loc[ihs_id, "negative_pct"], 100 * (ok & (est < 0)).sum() / ok.sum())
        # no year-on-year change or decline against a year in which the source did not operate
        values = [_ihs_mean(flat, years == y, members) for y in YEARS]
        for j in range(1, len(YEARS)):
            yoy = long[(long.ihs_id == ihs_id) & (long.year == YEARS[j])].iloc[0].pm25_ihs_yoy_pct
            if OPERATING[i, j] and OPERATING[i, j - 1]:
                assert np.isclose(yoy, 100 * (values[j] - values[j - 1]) / values[j - 1])
            else:
                assert np.isnan(yoy)
        op_years = np.flatnonzero(OPERATING[i])
        first, last = op_years[0], op_years[-1]
        assert np.isclose(summary.loc[ihs_id, "decline_2012_2014_pct"],
                          100 * (values[first] - values[last]) / values[first])
        assert summary.loc[ihs_id, "decline_from"] == YEARS[first]


def test_trend_maps_and_moran(run):
    import pymannkendall as pmk

    _, a, _, out = run
    years = _years(a)
    trend = xr.open_zarr(out / "trend_maps.zarr")
    maps = xr.open_zarr(out / "maps.zarr")
    r, c = IHS_RC[0]
    pair = _pair(a)[:, r, c]
    annual = [a["est"][(years == y) & pair, r, c].mean() for y in YEARS]
    assert np.allclose(maps.annual_pm25_ihs.values[:, r, c], annual, rtol=1e-5)
    mk = pmk.original_test(annual)
    assert np.isclose(trend.pm25_ihs_mk_z.values[r, c], mk.z, rtol=1e-4)
    assert np.isclose(trend.pm25_ihs_sen_slope.values[r, c], mk.slope, rtol=1e-4)
    assert np.isnan(trend.pm25_ihs_mk_z.values[0, NX - 1])  # background pixel
    assert np.isfinite(trend.pm25_mk_z.values).all()
    # Moran's I (queen, row-standardised, NaN cells out) of the period-mean IHS-related map, by hand
    field = maps.mean_pm25_ihs.values.astype(float)
    valid = np.isfinite(field)
    z = np.where(valid, field - field[valid].mean(), 0.0)
    num, s0 = 0.0, 0.0
    for i, j in zip(*np.nonzero(valid)):
        nb = [(i + di, j + dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di or dj)
              and 0 <= i + di < NY and 0 <= j + dj < NX and valid[i + di, j + dj]]
        if nb:
            num += z[i, j] * sum(z[p] for p in nb) / len(nb)
            s0 += 1.0
    expected_i = valid.sum() / s0 * num / (z[valid] ** 2).sum()
    moran = pd.read_csv(out / "moran.csv")
    assert moran.loc[0, "contiguity"] == "queen"
    assert np.isclose(moran.loc[0, "I"], expected_i)
    assert np.isclose(moran.loc[0, "EI"], -1 / (valid.sum() - 1))


def test_truth_scores(run):
    _, a, result, out = run
    scores = pd.read_csv(out / "truth_scores.csv").set_index("metric")["value"]
    inside = a["inside"]
    ok = _pair(a) & inside[None]
    err = (a["est"] - a["truth"])[ok]
    assert np.isclose(scores["bias"], err.mean())
    assert np.isclose(scores["rmse"], np.sqrt((err ** 2).mean()))
    with np.errstate(invalid="ignore"):
        est_map = np.where(ok, a["est"], 0).sum(0) / ok.sum(0)
        true_map = np.where(ok, a["truth"], 0).sum(0) / ok.sum(0)
    assert np.isclose(scores["spatial_r"], np.corrcoef(est_map[inside], true_map[inside])[0, 1], rtol=1e-5)
    n = ok.reshape(len(a["time"]), -1).sum(1)
    e = np.where(ok, a["est"], 0).reshape(len(n), -1).sum(1) / n
    t = np.where(ok, a["truth"], 0).reshape(len(n), -1).sum(1) / n
    assert np.isclose(scores["temporal_r"], np.corrcoef(e, t)[0, 1])
    tot = np.where(ok, a["pm25"], 0).sum()
    share_err = 100 * (np.where(ok, a["est"], 0).sum() - np.where(ok, a["truth"], 0).sum()) / tot
    assert np.isclose(scores["share_error_pct"], share_err)
    assert np.isclose(result["truth"]["share_error_pct"], share_err)
    s_est, s_true = np.where(ok, a["est"], 0), np.where(ok, a["truth"], 0)
    assert np.isclose(scores["bias_pct"], 100 * (s_est.sum() - s_true.sum()) / s_true.sum())
    assert np.isclose(scores["negative_fraction"], (ok & (a["est"] < 0)).sum() / ok.sum())
    months = pd.DatetimeIndex(a["time"]).month.to_numpy()
    n_m = np.array([ok[months == m].sum() for m in range(1, 13)])
    prof_e = np.array([s_est[months == m].sum() for m in range(1, 13)]) / n_m
    prof_t = np.array([s_true[months == m].sum() for m in range(1, 13)]) / n_m
    assert np.isclose(scores["month_profile_r"], np.corrcoef(prof_e, prof_t)[0, 1])
    assert np.isclose(scores["truth_month_amplitude_pct"], 100 * np.ptp(prof_t) / prof_t.mean())
    for season, m3 in (("DJF", (12, 1, 2)), ("JJA", (6, 7, 8))):
        sel = np.isin(months, m3)
        assert np.isclose(scores[f"bias_pct_{season}"], 100 * (s_est[sel].sum() - s_true[sel].sum()) / s_true[sel].sum())


def test_rerun_reuses_stores(run):
    from ihs_hpc.pipeline.stats import run_stats

    config, _, result, out = run
    before = (out / "maps.zarr" / "zarr.json").stat().st_mtime_ns
    messages = []
    again = run_stats(config, None, messages.append)
    assert any("kept" in m for m in messages)
    assert (out / "maps.zarr" / "zarr.json").stat().st_mtime_ns == before
    assert np.isclose(again["share_pct"], result["share_pct"])
    assert again["truth"] == result["truth"]


def test_bad_indicator_region(tmp_path):
    from ihs_hpc.pipeline.stats import read_indicators

    path = tmp_path / "ind.csv"
    path.write_text("year,region,x\n2012,Gamma,1\n")
    with pytest.raises(ValueError, match="Gamma"):
        read_indicators(path, {"alpha city": "Alpha City"})
    path.write_text("yr,x\n2012,1\n")
    with pytest.raises(ValueError, match="year"):
        read_indicators(path, {})


def test_monthly_and_table4_windows(run):
    _, a, _, out = run
    t = pd.DatetimeIndex(a["time"])
    flat = {k: a[k].reshape(len(t), -1) for k in ("pm25", "est", "truth")}
    inside, city = a["inside"].ravel(), a["city_id"].ravel()
    windows = pd.read_csv(out / "contribution_windows.csv").set_index(["period", "region"])
    days = (t.year == 2013) & t.month.isin([1, 2])
    assert np.isclose(windows.loc[("2013.1–2013.2", "Beta City"), "share_pct"],
                      _share(flat, days, inside & (city == 1)))
    days = (t.year == 2012) & (t.month == 7)
    assert np.isclose(windows.loc[("2012.7", "All IHS areas"), "share_pct"], _share(flat, days, inside))
    monthly = pd.read_csv(out / "monthly.csv")
    row = monthly[(monthly.region == "Alpha City") & (monthly.year == 2014) & (monthly.month == 11)].iloc[0]
    days = (t.year == 2014) & (t.month == 11)
    assert np.isclose(row.pm25_ihs, _ihs_mean(flat, days, inside & (city == 0)))


def test_through_run_pipeline(run, monkeypatch):
    """``run_stats`` as the pipeline calls it (entry ``ihs_hpc.pipeline.stats:run_stats``); run.json holds
    its headline numbers."""
    from ihs_hpc.pipeline import run as runner

    config, _, result, _ = run
    stages = tuple(runner.Stage(s.name, s.title, "ihs_hpc.pipeline.stats:run_stats") if s.name == "stats" else s
                   for s in runner.STAGES)
    monkeypatch.setattr(runner, "STAGES", stages)
    messages = []
    runner.run_pipeline(config, None, stages=["stats"], echo=messages.append)
    assert any("kept" in m for m in messages)  # the fixture's finished stats match this configuration
    (config.run_dir / "stats" / "ihs_fingerprint.json").unlink()  # as if the stats run had been killed
    summary = runner.run_pipeline(config, None, stages=["stats"], echo=lambda *a: None)
    doc = json.loads((config.run_dir / "run.json").read_text())
    assert doc["stages"]["stats"]["status"] == "done"
    assert np.isclose(doc["stages"]["stats"]["share_pct"], result["share_pct"])
    assert summary["stages"]["stats"]["truth"]["spatial_r"] > 0.9


def test_stale_stores_recomputed(tmp_path):
    """Stores made from other inputs (stage 3 rerun) are not reused."""
    from ihs_hpc.io.cube import mark_complete
    from ihs_hpc.pipeline.stats_store import inputs_fingerprint, stored_inputs_fingerprint

    config, _ = make_fake_run(tmp_path, indicators=False)
    paths = [tmp_path / n for n in ("cubes.zarr", "stage1.zarr", "stage3.zarr")]
    before = inputs_fingerprint(paths, TILE)
    import time

    time.sleep(0.01)
    mark_complete(tmp_path / "stage3.zarr")  # what a rerun of stage 3 does last
    assert inputs_fingerprint(paths, TILE) != before
    assert stored_inputs_fingerprint(tmp_path / "nothing.zarr") is None


def test_yoy_and_decline_only_between_operating_years():
    from ihs_hpc.stats.aggregate import operating_decline, yoy_pct

    v = np.array([[10.0, 0.4, 8.0, 6.0, 5.0], [4.0, 3.0, 2.0, 1.0, 0.5]])
    op = np.array([[True, False, True, True, True], [False, True, True, True, False]])
    yoy = yoy_pct(v, op)
    assert np.isnan(yoy[0, :3]).all() and np.isclose(yoy[0, 3], -25.0) and np.isclose(yoy[0, 4], 100 * (5 - 6) / 6)
    assert np.isnan(yoy[1, [0, 1, 4]]).all() and np.isclose(yoy[1, 2], -100 / 3)
    dec, first, last = operating_decline(v, op)
    assert np.allclose(dec, [50.0, 100 * (3 - 1) / 3]) and first.tolist() == [0, 1] and last.tolist() == [4, 3]
    dec, first, last = operating_decline(v, np.array([[False, False, True, False, False]] * 2))
    assert np.isnan(dec).all() and (first == -1).all()
    assert np.allclose(yoy_pct(v[0])[1:], 100 * np.diff(v[0]) / v[0, :-1])  # without flags: every pair
