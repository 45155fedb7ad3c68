"""Scores of a run's estimate against the injected truth of a synthetic scene (``stats/truth_scores.csv``).

Accuracy promise and the score matrix over scene variants: :mod:`ihs_hpc.validate`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats.aggregate import SEASONS, means_from_sums, ratio, reduce_by
from ..stats.group_tests import pearson_test
from .stats_format import finite_or_none


def truth_scores(sums, layout, maps, inside, totals, ym, years, writer, cal=None) -> dict:
    """Scores of the estimate against the synthetic truth in IHS areas; writes ``truth_scores`` and ``truth_annual``
    tables."""
    A = layout.IHS_AREA
    est_map, true_map = maps["mean_pm25_ihs"].values[inside], maps["mean_pm25_ihs_true"].values[inside]
    daily = means_from_sums({k: v[A] for k, v in sums.items()})
    period = means_from_sums({k: v[A].sum() for k, v in sums.items()})
    n = totals["n_pair"] if totals else np.nan
    scores = {
        "bias": ratio(totals["s_err"], n).item() if totals else np.nan,
        "rmse": float(np.sqrt(ratio(totals["s_err2"], n))) if totals else np.nan,
        "mean_estimate": float(period["pm25_ihs"]), "mean_truth": float(period["pm25_ihs_true"]),
        "spatial_r": pearson_test(est_map, true_map)["r"],
        "temporal_r": pearson_test(daily["pm25_ihs"], daily["pm25_ihs_true"])["r"],
        "share_estimate_pct": float(period["share_pct"]), "share_true_pct": float(period["share_true_pct"]),
    }
    scores["share_error_pct"] = scores["share_estimate_pct"] - scores["share_true_pct"]
    scores["annual_r"] = pearson_test(ym["pm25_ihs"][A], ym["pm25_ihs_true"][A])["r"]
    scores.update(fidelity_scores({k: v[A] for k, v in sums.items()}, cal))
    descriptions = {
        "bias": "mean of (estimate − truth) over IHS-area pixel-days (µg m⁻³)",
        "rmse": "root mean square of (estimate − truth) over IHS-area pixel-days (µg m⁻³)",
        "mean_estimate": "period mean of the estimated IHS-related PM2.5, IHS areas (µg m⁻³)",
        "mean_truth": "period mean of the true IHS PM2.5, IHS areas (µg m⁻³)",
        "spatial_r": "Pearson r of per-pixel period means, IHS-area pixels",
        "temporal_r": "Pearson r of the IHS-area mean daily series",
        "share_estimate_pct": "estimated contribution, IHS areas (%)",
        "share_true_pct": "true contribution, IHS areas (%)",
        "share_error_pct": "estimated − true contribution (percentage points)",
        "annual_r": "Pearson r of the IHS-area annual means",
        **FIDELITY_DESCRIPTIONS,
    }
    table = pd.DataFrame({"metric": list(scores), "value": [scores[k] for k in scores],
                          "description": [descriptions[k] for k in scores]}).set_index("metric")
    writer.add("truth_scores", table, "Scores of the estimate against the synthetic truth inside IHS areas", digits=4)
    per_year = pd.DataFrame({"year": years, "pm25_ihs": ym["pm25_ihs"][A], "pm25_ihs_true": ym["pm25_ihs_true"][A],
                             "error": ym["pm25_ihs"][A] - ym["pm25_ihs_true"][A], "share_pct": ym["share_pct"][A],
                             "share_true_pct": ym["share_true_pct"][A]}).set_index("year")
    writer.add("truth_annual", per_year, "Annual IHS-area means: estimate against truth")
    return {k: finite_or_none(v) for k, v in scores.items()}


FIDELITY_DESCRIPTIONS = {
    "bias_pct": "bias relative to the true mean: 100 × (Σ estimate − Σ truth) / Σ truth, IHS-area pixel-days (%)",
    "month_profile_r": "Pearson r of the month-of-year means (January … December over all years), IHS areas",
    "truth_month_amplitude_pct": "seasonal cycle of the truth: (max − min) / mean of its month-of-year means (%)",
    "negative_fraction": "fraction of IHS-area pixel-days with a negative estimate (kept, not clipped)",
    **{f"bias_pct_{s}": f"bias relative to the true mean in {s} (%)" for s in SEASONS},
}


def fidelity_scores(area_sums: dict, cal) -> dict:
    """Month-profile r, seasonal biases and the negative fraction from the IHS-area daily sums."""
    s_ihs, s_true = area_sums["s_ihs"].sum(), area_sums["s_true"].sum()
    out = {"bias_pct": float(100.0 * ratio(s_ihs - s_true, s_true))}
    if cal is not None:
        _, by_month = reduce_by(area_sums, cal["month"].to_numpy(), order=list(range(1, 13)))
        mm = means_from_sums(by_month)
        out["month_profile_r"] = pearson_test(mm["pm25_ihs"], mm["pm25_ihs_true"])["r"]
        true_profile = mm["pm25_ihs_true"]
        with np.errstate(invalid="ignore", divide="ignore"):
            out["truth_month_amplitude_pct"] = float(100.0 * (np.nanmax(true_profile) - np.nanmin(true_profile))
                                                     / np.nanmean(true_profile))
    out["negative_fraction"] = float(ratio(area_sums["n_neg"].sum(), area_sums["n_pair"].sum())) \
        if "n_neg" in area_sums else np.nan
    if cal is not None:
        _, by_season = reduce_by(area_sums, cal["season"].to_numpy(), order=list(SEASONS))
        for j, season in enumerate(SEASONS):
            out[f"bias_pct_{season}"] = float(100.0 * ratio(by_season["s_ihs"][j] - by_season["s_true"][j],
                                                            by_season["s_true"][j]))
    return out
