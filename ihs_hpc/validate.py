"""Known-truth fidelity: the accuracy promise, the scene variants it is checked on, and score-matrix rows.

The pipeline's estimate of IHS-related PM2.5 is scored against the injected truth of synthetic scenes
(``RUN/stats/truth_scores.csv``, written by the stats stage). One *row* of the score matrix is a run's
scores in the matrix's columns (:func:`matrix_row`); :data:`BOUNDS` is the promise every row of the
default modes must keep; :data:`VARIANTS` are the scenes of the matrix
(``benchmarks/bench_truth_matrix.py``), each a :class:`~ihs_hpc.synth.variants.SceneOptions` mapping.

The month-of-year profile is only judged where the truth has a seasonal cycle: a month-profile
amplitude ``(max − min) / mean`` of at least :data:`SEASONAL_CYCLE_MIN_PCT` percent.
"""
from __future__ import annotations

import math
from typing import Mapping

#: the scene variants of the score matrix: name -> input.synthetic options (``{}``: the preset's scene)
VARIANTS: dict[str, dict] = {
    "base": {},
    "summer_peak": {"ihs_season": "summer"},
    "no_emission_season": {"ihs_season": "none"},
    "daily_variability": {"emission_jitter": 0.5},
    "multiplicative_noise": {"noise": "multiplicative"},
    "spikes": {"spikes": 0.01},
    "towns_near_ihs": {"towns_near_ihs": 3},
    "terrain_edge": {"terrain_edge": 0.5},
    "dense_clusters": {"dense_clusters": True},
    "strong_and_weak": {"strength_spread": 1.0},
    "start_stop": {"start_stop_fraction": 0.9},
}

#: columns of a matrix row, in order, with what they mean
COLUMNS = {
    "bias_pct": "mean bias relative to the true mean, IHS-area pixel-days (%)",
    "spatial_r": "Pearson r of per-pixel period means, IHS-area pixels",
    "annual_r": "Pearson r of the IHS-area annual means",
    "daily_r": "Pearson r of the IHS-area mean daily series",
    "month_profile_r": "Pearson r of the month-of-year means, IHS areas",
    "share_error_pp": "estimated − true contribution (percentage points)",
    "negative_fraction": "fraction of IHS-area pixel-days with a negative estimate",
    "truth_month_amplitude_pct": "(max − min) / mean of the truth's month-of-year means (%)",
}

#: a seasonal cycle of the truth smaller than this (percent of its mean) is not judged by month_profile_r
SEASONAL_CYCLE_MIN_PCT = 20.0

#: the accuracy promise: column -> (kind, limit); "abs_max": |value| <= limit, "min": value >= limit
BOUNDS: dict[str, tuple[str, float]] = {
    "bias_pct": ("abs_max", 10.0),
    "spatial_r": ("min", 0.9),
    "annual_r": ("min", 0.9),
    "share_error_pp": ("abs_max", 3.0),
    "month_profile_r": ("min", 0.9),
    "daily_r": ("min", 0.6),
}

#: where each column comes from in truth_scores.csv
_SOURCE = {"daily_r": "temporal_r", "share_error_pp": "share_error_pct"}


def matrix_row(scores: Mapping[str, float]) -> dict:
    """The matrix columns of one run from its truth scores (``truth_scores.csv`` as a metric → value map)."""
    row = {}
    for column in COLUMNS:
        value = scores.get(_SOURCE.get(column, column))
        row[column] = float(value) if value is not None else math.nan
    return row


def judged(row: Mapping[str, float]) -> list[str]:
    """The bounded columns that apply to ``row`` (month_profile_r only with a seasonal cycle in the truth)."""
    amp = row.get("truth_month_amplitude_pct", math.nan)
    out = []
    for column in BOUNDS:
        if column == "month_profile_r" and not (amp >= SEASONAL_CYCLE_MIN_PCT):
            continue
        out.append(column)
    return out


def failures(row: Mapping[str, float]) -> list[str]:
    """The bounded columns of ``row`` outside :data:`BOUNDS` (a NaN fails)."""
    bad = []
    for column in judged(row):
        kind, limit = BOUNDS[column]
        value = row.get(column, math.nan)
        ok = (abs(value) <= limit) if kind == "abs_max" else (value >= limit)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and ok):
            bad.append(column)
    return bad


def bounds_text() -> str:
    """The promise in words (for tables and the report)."""
    parts = []
    for column, (kind, limit) in BOUNDS.items():
        text = f"|{column}| ≤ {limit:g}" if kind == "abs_max" else f"{column} ≥ {limit:g}"
        if column == "month_profile_r":
            text += f" (where the truth's seasonal amplitude ≥ {SEASONAL_CYCLE_MIN_PCT:g} %)"
        parts.append(text)
    return ", ".join(parts)
