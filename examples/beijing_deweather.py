"""Deweathering real Beijing PM2.5 with the stage-2 model of seed 000 (eqs. 2-4).

Data: UCI "Beijing PM2.5 Data" (Liang et al. 2015, CC BY 4.0), hourly PM2.5 at the US Embassy
and weather at Beijing Capital Airport, 2010-01-01 to 2014-12-31 (local time), ``NA`` = missing;
columns No, year, month, day, hour, pm2.5, DEWP, TEMP, PRES, cbwd, Iws, Is, Ir.

Steps
-----
1. **Daily means.**  Each day's mean is taken over its non-missing hours, and only if at least
   ``--min-hours`` (default 20) of its 24 hours are present — the validity rule for daily PM2.5
   means of China's ambient air quality standard GB 3095-2012; otherwise the day is missing.  Days
   still missing are then filled by linear interpolation in time between the nearest valid days
   (days before the first / after the last valid day take that day's value).  In this file only
   PM2.5 has missing hours; the rule is applied to every variable all the same.  The CSV keeps
   the unfilled daily PM2.5 (``pm25_obs``), the number of valid hours and a ``pm25_filled`` flag.
2. **Regressors**, named as the ERA5 variables of the model (t2m, tp, sp, u10, v10, rh):

   * ``t2m`` ← daily mean of TEMP (°C);
   * ``sp`` ← daily mean of PRES (hPa; ERA5 has Pa, which only rescales the coefficient);
   * ``tp`` ← daily **maximum** of Ir, the cumulated hours of rain: "hours of rain per day", a
     proxy for precipitation (the data hold no amounts);
   * ``rh`` ← :func:`ihs_hpc.ops.humidity.relative_humidity` (Magnus) of the daily means of TEMP
     and DEWP (°C), as the pipeline derives it from ERA5's daily mean t2m and d2m;
   * ``u10``, ``v10`` ← daily means of hourly wind components rebuilt from ``cbwd`` (combined wind
     direction: NE, NW, SE, or cv = calm/variable) and ``Iws`` (wind speed in m/s cumulated over
     consecutive hours of the same cbwd).  The hourly speed is the increment of Iws within a run
     of equal cbwd; at the first hour of a run it is Iws itself.  The direction follows the
     meteorological convention that the wind *comes from* the named direction, so a NW wind
     blows towards the SE: unit vector ``(dx, dy) = (+1, -1)/√2`` (u > 0, v < 0); NE →
     ``(-1, -1)/√2``; SE → ``(-1, +1)/√2``; cv → ``(0, 0)`` (the speed is counted but carries
     no direction).  ``u = speed·dx`` (towards east), ``v = speed·dy`` (towards north), as
     ERA5's u10/v10.
3. **Baselines** (eq. 2): STL with period 365 (statsmodels defaults otherwise: seasonal 7,
   non-robust) of PM2.5 and of each regressor, all seven series in one batched call of
   :func:`ihs_hpc.ops.stl.stl`; baseline = trend + seasonal.  (:data:`USE_IHS_STL` is the single
   switch to ``statsmodels.tsa.seasonal.STL``: the same numbers to float rounding, but about 2 s
   per series.)  With only five years, each day-of-year cycle-subseries has five
   points, so the seasonal component keeps much of the day-to-day variation: the baseline is
   still far from smooth (the seed applies it to ten years).
4. **MLR** (eq. 3): PM2.5 baseline on the six regressor baselines with an intercept,
   :func:`ihs_hpc.ops.mlr.mlr`; **met removal** (eq. 4): ``bl_tem = bl - bl_mlr``
   (:func:`ihs_hpc.ops.mlr.remove_met`).  ``bl_tem`` has zero mean; the plot shows
   ``bl_tem + mean(bl)`` so it sits on the concentration scale.

Outputs in ``--out``: ``beijing_deweather.png`` (1200 × 900 px), ``beijing_deweather_summary.json``
(coefficients by regressor name, R², means, day counts) and ``beijing_deweather_daily.csv`` (every
daily series, baselines and fit).

Run: ``python examples/beijing_deweather.py --data PATH --out DIR``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ihs_hpc.ops.humidity import relative_humidity
from ihs_hpc.ops.mlr import remove_met

DEFAULT_DATA = (
    Path(__file__).resolve().parents[2]
    / "shared" / "data" / "beijing_pm25_uci" / "PRSA_data_2010.1.1-2014.12.31.csv"
)
REGRESSORS = ("t2m", "tp", "sp", "u10", "v10", "rh")
REGRESSOR_UNITS = {
    "t2m": "degC", "tp": "hours of rain per day", "sp": "hPa", "u10": "m/s", "v10": "m/s", "rh": "%",
}
PERIOD = 365
MIN_VALID_HOURS = 20  # GB 3095-2012: a daily PM2.5 mean needs at least 20 hourly values
FIGSIZE = (12.0, 9.0)
DPI = 100
PNG_NAME = "beijing_deweather.png"
JSON_NAME = "beijing_deweather_summary.json"
CSV_NAME = "beijing_deweather_daily.csv"

_SQRT_HALF = np.sqrt(0.5)
#: unit vector (towards east, towards north) of the air motion for each cbwd value; wind comes
#: FROM the named direction
WIND_DIRECTION_VECTORS = {
    "NE": (-_SQRT_HALF, -_SQRT_HALF),
    "NW": (+_SQRT_HALF, -_SQRT_HALF),
    "SE": (-_SQRT_HALF, +_SQRT_HALF),
    "cv": (0.0, 0.0),
}


# ----------------------------------------------------------------------------- STL switch point
#: Single switch point: ``True`` decomposes with this package's ``ihs_hpc.ops.stl.stl``,
#: ``False`` with ``statsmodels.tsa.seasonal.STL`` (same parameters, same defaults).
USE_IHS_STL = True


def stl_baselines(series: np.ndarray, period: int = PERIOD) -> np.ndarray:
    """Baselines = trend + seasonal of non-robust STLs with statsmodels' defaults (eq. 2).

    ``series`` has shape (m, time); the result has the same shape.
    """
    series = np.asarray(series, dtype=np.float64)
    if USE_IHS_STL:
        from ihs_hpc.ops.stl import stl

        result = stl(series, period)  # batched over the leading axis
        return np.asarray(result.trend) + np.asarray(result.seasonal)
    from statsmodels.tsa.seasonal import STL

    baselines = np.empty_like(series)
    for i, x in enumerate(series):
        result = STL(x, period=period).fit()
        baselines[i] = np.asarray(result.trend) + np.asarray(result.seasonal)
    return baselines


def stl_implementation() -> str:
    return "ihs_hpc.ops.stl.stl" if USE_IHS_STL else "statsmodels.tsa.seasonal.STL"


# ----------------------------------------------------------------------------- data preparation
def read_hourly(path: Path) -> pd.DataFrame:
    """Read the UCI file; index = hourly timestamps (local time), checked to be gap-free."""
    df = pd.read_csv(path, na_values=["NA"], keep_default_na=False)
    missing = {"year", "month", "day", "hour", "pm2.5", "DEWP", "TEMP", "PRES", "cbwd", "Iws", "Ir"}
    missing -= set(df.columns)
    if missing:
        raise ValueError(f"{path} lacks the columns {sorted(missing)}")
    df.index = pd.to_datetime(df[["year", "month", "day", "hour"]])
    df.index.name = "time"
    steps = np.diff(df.index.values).astype("timedelta64[h]").astype(np.int64)
    if steps.size and np.any(steps != 1):
        raise ValueError(f"{path}: rows are not consecutive hours")
    return df


def hourly_wind_components(cbwd: pd.Series, iws: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Hourly (u, v) in m/s from the combined wind direction and cumulated wind speed.

    The speed is the increment of ``iws`` within a run of equal ``cbwd`` (first hour of a run:
    ``iws`` itself); the direction vector is :data:`WIND_DIRECTION_VECTORS` (wind comes from the
    named direction; cv gives u = v = 0).
    """
    unknown = set(cbwd.dropna().unique()) - set(WIND_DIRECTION_VECTORS)
    if unknown:
        raise ValueError(f"unknown cbwd values {sorted(unknown)}")
    iws = iws.to_numpy(dtype=np.float64)
    direction = cbwd.to_numpy()
    run_start = np.ones(len(direction), dtype=bool)
    run_start[1:] = direction[1:] != direction[:-1]
    speed = np.where(run_start, iws, iws - np.concatenate([[np.nan], iws[:-1]]))
    dx = np.array([WIND_DIRECTION_VECTORS.get(d, (np.nan, np.nan))[0] for d in direction])
    dy = np.array([WIND_DIRECTION_VECTORS.get(d, (np.nan, np.nan))[1] for d in direction])
    return speed * dx, speed * dy


def daily_means(hourly: pd.DataFrame, min_valid_hours: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily aggregates (mean, or max for ``Ir``) of days with ``min_valid_hours`` valid hours.

    Returns the aggregates (NaN for days with too few valid hours) and the valid-hour counts.
    """
    day = hourly.index.floor("D")
    columns = ["pm2.5", "TEMP", "DEWP", "PRES", "u", "v", "Ir"]
    grouped = hourly[columns].groupby(day)
    counts = grouped.count()
    aggregated = grouped.mean()
    aggregated["Ir"] = grouped["Ir"].max()
    aggregated = aggregated.where(counts >= min_valid_hours)
    aggregated.index.name = counts.index.name = "date"
    return aggregated, counts


def fill_linear_in_time(series: pd.Series) -> pd.Series:
    """Linear interpolation in time over missing days; edges take the nearest valid value."""
    if series.notna().sum() == 0:
        raise ValueError(f"{series.name}: no valid day to interpolate from")
    return series.interpolate(method="time", limit_direction="both")


def build_daily(path: Path, min_valid_hours: int) -> pd.DataFrame:
    """Daily PM2.5 and the six regressors, gaps filled (see the module docstring)."""
    hourly = read_hourly(path)
    hourly["u"], hourly["v"] = hourly_wind_components(hourly["cbwd"], hourly["Iws"])
    agg, counts = daily_means(hourly, min_valid_hours)
    filled = {name: fill_linear_in_time(agg[name]) for name in agg.columns}
    daily = pd.DataFrame(index=agg.index)
    daily["pm25_obs"] = agg["pm2.5"]
    daily["pm25_valid_hours"] = counts["pm2.5"]
    daily["pm25_filled"] = agg["pm2.5"].isna()
    daily["pm25"] = filled["pm2.5"]
    daily["t2m"] = filled["TEMP"]
    daily["d2m"] = filled["DEWP"]
    daily["tp"] = filled["Ir"]
    daily["sp"] = filled["PRES"]
    daily["u10"] = filled["u"]
    daily["v10"] = filled["v"]
    daily["rh"] = relative_humidity(daily["t2m"].to_numpy(), daily["d2m"].to_numpy(), units="degC")
    daily["met_filled_days"] = agg[["TEMP", "DEWP", "PRES", "u", "v", "Ir"]].isna().any(axis=1)
    return daily


# ----------------------------------------------------------------------------- model
def deweather(daily: pd.DataFrame, period: int = PERIOD) -> tuple[pd.DataFrame, dict]:
    """STL baselines (eq. 2), MLR (eq. 3) and met removal (eq. 4) on the daily series."""
    out = daily.copy()
    names = ("pm25",) + REGRESSORS
    baselines = stl_baselines(np.stack([out[name].to_numpy() for name in names]), period)
    for name, baseline in zip(names, baselines):
        out[f"{name}_bl"] = baseline
    met_bl = baselines[1:]  # (k, time), in the order of REGRESSORS
    bl_tem, fit = remove_met(out["pm25_bl"].to_numpy(), met_bl)
    out["pm25_bl_mlr"] = fit.fitted
    out["pm25_bl_tem"] = bl_tem
    coef = fit.coef
    summary = {
        "coefficients": {"intercept": float(coef[0]), **{n: float(c) for n, c in zip(REGRESSORS, coef[1:])}},
        "r2": float(fit.r2),
        "rank": int(fit.rank),
    }
    return out, summary


# ----------------------------------------------------------------------------- outputs
def plot(result: pd.DataFrame, path: Path) -> None:
    """Two panels: PM2.5 (observed, baseline, met-removed) and the standardised met baselines."""
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    ax_pm, ax_met = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    dates = result.index
    bl_mean = result["pm25_bl"].mean()
    recentred = result["pm25_bl_tem"] + bl_mean
    ax_pm.plot(dates, result["pm25_obs"], color="0.65", lw=0.6, label="observed daily mean")
    filled = result["pm25_filled"].to_numpy()
    ax_pm.plot(dates[filled], result["pm25"][filled], ".", color="tab:orange", ms=3,
               label=f"filled day (linear in time, n = {int(filled.sum())})")
    ax_pm.plot(dates, result["pm25_bl"], color="black", lw=0.9, label="baseline bl = trend + seasonal (eq. 2)")
    ax_pm.plot(dates, recentred, color="tab:red", lw=0.9, alpha=0.85,
               label="met-removed baseline, bl − bl_mlr + mean(bl) (eqs. 3–4)")
    ax_pm.axhline(bl_mean, color="tab:blue", lw=0.8, ls="--", label=f"mean(bl) = {bl_mean:.1f} µg/m³")
    ax_pm.set_ylabel("PM2.5 (µg/m³)")
    low = min(0.0, float(np.nanmin([result["pm25_bl"].min(), recentred.min()])))
    ax_pm.set_ylim(low, float(np.nanpercentile(result["pm25_obs"], 99.5)))
    ax_pm.legend(loc="upper right", fontsize=8)
    ax_pm.grid(alpha=0.3)
    for name in REGRESSORS:
        series = result[f"{name}_bl"]
        ax_met.plot(dates, (series - series.mean()) / series.std(), lw=1.2,
                    label=f"{name} ({REGRESSOR_UNITS[name]})")
    ax_met.set_ylabel("met baseline, standardised (z)")
    ax_met.legend(loc="upper right", fontsize=8, ncol=3)
    ax_met.grid(alpha=0.3)
    ax_met.xaxis.set_major_locator(mdates.YearLocator())
    ax_met.xaxis.set_minor_locator(mdates.MonthLocator(bymonth=[4, 7, 10]))
    ax_met.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    ax_met.set_xlabel("date (Beijing local time)")
    start, end = dates[0].date(), dates[-1].date()
    fig.suptitle(f"Beijing US Embassy PM2.5, {start} to {end}: STL baseline (period {PERIOD} d) and "
                 f"meteorology removed by MLR (R² = {result.attrs['r2']:.3f})")
    fig.subplots_adjust(left=0.07, right=0.98, top=0.93, bottom=0.07, hspace=0.08)
    fig.savefig(path, dpi=DPI)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the UCI PRSA CSV")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--min-hours", type=int, default=MIN_VALID_HOURS,
                        help="valid hours a day needs for a daily mean (default %(default)s)")
    args = parser.parse_args(argv)
    if not 1 <= args.min_hours <= 24:
        parser.error(f"--min-hours must lie in 1..24, got {args.min_hours}")
    return args


def main(argv=None) -> dict:
    """Run the example; returns the summary written to JSON."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    daily = build_daily(args.data, args.min_hours)
    result, fit_summary = deweather(daily)
    result.attrs["r2"] = fit_summary["r2"]

    summary = {
        "data": str(args.data),
        "stl": {"implementation": stl_implementation(), "period": PERIOD, "robust": False,
                "baseline": "trend + seasonal (eq. 2)"},
        "model": "pm25_bl = a0 + sum_i a_i met_bl_i (eq. 3); pm25_bl_tem = pm25_bl - pm25_bl_mlr (eq. 4)",
        "regressors": list(REGRESSORS),
        "regressor_units": REGRESSOR_UNITS,
        **fit_summary,
        "n_days": int(len(result)),
        "n_filled_days": int(result["pm25_filled"].sum()),
        "n_met_filled_days": int(result["met_filled_days"].sum()),
        "min_valid_hours": args.min_hours,
        "first_day": str(result.index[0].date()),
        "last_day": str(result.index[-1].date()),
        "means": {
            "pm25_obs": float(result["pm25_obs"].mean()),
            "pm25_filled": float(result["pm25"].mean()),
            "pm25_bl": float(result["pm25_bl"].mean()),
            "pm25_bl_mlr": float(result["pm25_bl_mlr"].mean()),
            "pm25_bl_tem": float(result["pm25_bl_tem"].mean()),
            **{name: float(result[name].mean()) for name in REGRESSORS},
        },
        "outputs": {"png": PNG_NAME, "csv": CSV_NAME},
        "png_size_px": [int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI)],
    }
    plot(result, args.out / PNG_NAME)
    result.to_csv(args.out / CSV_NAME, index_label="date")
    (args.out / JSON_NAME).write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


if __name__ == "__main__":
    main()
