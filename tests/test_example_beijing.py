"""The real-data Beijing deweathering example, checked against independent recomputations."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "beijing_deweather.py"
REGRESSORS = ["t2m", "tp", "sp", "u10", "v10", "rh"]


def _load_example():
    spec = importlib.util.spec_from_file_location("beijing_deweather_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run(shared_data, tmp_path_factory):
    csv = shared_data / "beijing_pm25_uci" / "PRSA_data_2010.1.1-2014.12.31.csv"
    out = tmp_path_factory.mktemp("beijing")
    example = _load_example()
    returned = example.main(["--data", str(csv), "--out", str(out)])
    summary = json.loads((out / "beijing_deweather_summary.json").read_text())
    daily = pd.read_csv(out / "beijing_deweather_daily.csv", index_col="date", parse_dates=["date"])
    raw = pd.read_csv(csv, na_values=["NA"], keep_default_na=False)
    return {"example": example, "out": out, "summary": summary, "returned": returned,
            "daily": daily, "raw": raw}


def test_png_opens_at_expected_size(run):
    example = run["example"]
    image = matplotlib.image.imread(run["out"] / "beijing_deweather.png")
    width, height = (round(v * example.DPI) for v in example.FIGSIZE)
    assert image.shape[:2] == (height, width)
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_summary_counts(run):
    summary, daily, raw = run["summary"], run["daily"], run["raw"]
    assert summary == run["returned"]
    n_days = raw.groupby(["year", "month", "day"]).ngroups
    assert summary["n_days"] == len(daily) == n_days
    valid_hours = raw.groupby(["year", "month", "day"])["pm2.5"].count().to_numpy()
    assert summary["n_filled_days"] == int(np.sum(valid_hours < summary["min_valid_hours"]))
    assert list(summary["coefficients"]) == ["intercept"] + REGRESSORS


def test_daily_means_equal_pandas_groupby(run):
    daily, raw, min_hours = run["daily"], run["raw"], run["summary"]["min_valid_hours"]
    by_day = raw.groupby(["year", "month", "day"])
    pm = by_day["pm2.5"].agg(["mean", "count"])
    valid = (pm["count"] >= min_hours).to_numpy()
    np.testing.assert_array_equal(daily["pm25_valid_hours"].to_numpy(), pm["count"].to_numpy())
    np.testing.assert_array_equal(daily["pm25_filled"].to_numpy(), ~valid)
    np.testing.assert_allclose(daily["pm25_obs"].to_numpy()[valid], pm["mean"].to_numpy()[valid], rtol=1e-12)
    assert np.all(np.isnan(daily["pm25_obs"].to_numpy()[~valid]))
    np.testing.assert_allclose(daily["t2m"], by_day["TEMP"].mean().to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(daily["d2m"], by_day["DEWP"].mean().to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(daily["sp"], by_day["PRES"].mean().to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(daily["tp"], by_day["Ir"].max().to_numpy(), rtol=1e-12)
    # a few named days, by hand from the raw rows
    for year, month, day in [(2010, 1, 2), (2012, 7, 21), (2014, 12, 31)]:
        rows = raw[(raw.year == year) & (raw.month == month) & (raw.day == day)]
        got = daily.loc[pd.Timestamp(year, month, day)]
        assert got["pm25_obs"] == pytest.approx(np.nanmean(rows["pm2.5"].to_numpy()), rel=1e-12)
        assert got["t2m"] == pytest.approx(rows["TEMP"].mean(), rel=1e-12)


def test_missing_days_are_linear_in_time(run):
    daily = run["daily"]
    valid = ~daily["pm25_filled"].to_numpy()
    days = (daily.index - daily.index[0]).days.to_numpy().astype(float)
    expected = np.interp(days, days[valid], daily["pm25_obs"].to_numpy()[valid])
    np.testing.assert_allclose(daily["pm25"].to_numpy(), expected, rtol=1e-12)
    np.testing.assert_array_equal(daily["pm25"].to_numpy()[valid], daily["pm25_obs"].to_numpy()[valid])


def test_wind_components_and_rh(run):
    daily, raw = run["daily"], run["raw"]
    # independent: wind FROM azimuth (degrees clockwise from north); air moves the opposite way
    azimuth = {"NE": 45.0, "NW": 315.0, "SE": 135.0}
    u = np.zeros(len(raw))
    v = np.zeros(len(raw))
    previous_dir, previous_iws = None, 0.0
    for i, (direction, iws) in enumerate(zip(raw["cbwd"], raw["Iws"])):
        speed = iws if direction != previous_dir else iws - previous_iws
        previous_dir, previous_iws = direction, iws
        if direction in azimuth:
            rad = np.deg2rad(azimuth[direction])
            u[i] = -speed * np.sin(rad)
            v[i] = -speed * np.cos(rad)
    frame = raw[["year", "month", "day"]].assign(u=u, v=v)
    by_day = frame.groupby(["year", "month", "day"])
    np.testing.assert_allclose(daily["u10"], by_day["u"].mean().to_numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(daily["v10"], by_day["v"].mean().to_numpy(), rtol=1e-9, atol=1e-12)
    # NW dominates winter in Beijing: winter-mean u10 > 0 and v10 < 0
    winter = daily.index.month.isin([12, 1, 2])
    assert daily["u10"][winter].mean() > 0 and daily["v10"][winter].mean() < 0
    # RH from daily mean T and Td by the saturation vapour pressure ratio (Magnus, AERK constants)
    def e_s(t):
        return 6.1094 * np.exp(17.625 * t / (t + 243.04))

    expected_rh = np.minimum(100.0 * e_s(daily["d2m"]) / e_s(daily["t2m"]), 100.0)
    np.testing.assert_allclose(daily["rh"], expected_rh, rtol=1e-12)


def test_regression_recomputed_from_saved_series(run):
    daily, summary = run["daily"], run["summary"]
    bl = daily["pm25_bl"].to_numpy()
    fit = daily["pm25_bl_mlr"].to_numpy()
    r2 = 1.0 - np.sum((bl - fit) ** 2) / np.sum((bl - bl.mean()) ** 2)
    assert summary["r2"] == pytest.approx(r2, rel=1e-9)
    design = np.column_stack([np.ones(len(daily))] + [daily[f"{n}_bl"].to_numpy() for n in REGRESSORS])
    coef, *_ = np.linalg.lstsq(design, bl, rcond=None)
    got = np.array([summary["coefficients"][name] for name in ["intercept"] + REGRESSORS])
    np.testing.assert_allclose(got, coef, rtol=1e-8)
    np.testing.assert_allclose(fit, design @ coef, rtol=1e-9)
    np.testing.assert_allclose(daily["pm25_bl_tem"].to_numpy(), bl - fit, rtol=1e-12, atol=1e-9)
    assert summary["means"]["pm25_bl"] == pytest.approx(bl.mean(), rel=1e-12)
    assert abs(summary["means"]["pm25_bl_tem"]) < 1e-8 * bl.mean()


def test_baseline_is_stl_trend_plus_seasonal(run):
    from statsmodels.tsa.seasonal import STL

    daily, summary = run["daily"], run["summary"]
    assert summary["stl"]["period"] == 365
    fit = STL(daily["pm25"].to_numpy(), period=365).fit()
    np.testing.assert_allclose(daily["pm25_bl"].to_numpy(), fit.trend + fit.seasonal,
                               rtol=1e-9, atol=1e-9 * daily["pm25"].abs().max())
