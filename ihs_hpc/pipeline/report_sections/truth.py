"""The report section of the estimate against the synthetic truth (scores and this run's matrix row)."""
from __future__ import annotations

import pandas as pd

from ...config import RunConfig
from ...report.case_figures import plot_truth
from ...report.html import Section
from .context import ReportContext


def truth_matrix_row(config: RunConfig, truth: pd.DataFrame) -> pd.DataFrame:
    """This run's row of the score matrix (``benchmarks/bench_truth_matrix.py``), judged against the bounds."""
    from ...synth.variants import SceneOptions
    from ...validate import bounds_text, failures, matrix_row

    row = matrix_row(dict(zip(truth["metric"], truth["value"])))
    bad = failures(row)
    variant = (SceneOptions.from_mapping(config["input.synthetic"]).set()
               if config["input.kind"] == "synthetic" else {})
    head = {"scene": (f"{config['input.synthetic.preset']} seed {config['input.synthetic.seed']}"
                      + (f" {variant}" if variant else "") if config["input.kind"] == "synthetic" else "input store"),
            "met_fit": config["stage2.met_fit"], "outliers": config["prep.outliers"], "drift": config["stage3.drift"]}
    verdict = {"within bounds": "yes" if not bad else "no: " + ", ".join(bad), "bounds": bounds_text()}
    return pd.DataFrame([head | row | verdict]).set_index("scene")


def truth_section(ctx: ReportContext) -> Section | None:
    """Estimated against true IHS PM2.5 (synthetic scenes only; None otherwise)."""
    truth = ctx.csv("truth_scores")
    maps, inside = ctx.maps, ctx.inside
    if truth is None or "mean_pm25_ihs_true" not in maps or "s_true" not in ctx.sums:
        return None
    daily = ctx.area_daily()
    s = Section("Estimate against the synthetic truth", "Scores inside IHS areas.")
    s.figures.append((ctx.figure("truth", "wide", plot_truth, maps["mean_pm25_ihs"].values[inside],
                                 maps["mean_pm25_ihs_true"].values[inside], ctx.series["time"].values,
                                 daily["pm25_ihs"], daily["pm25_ihs_true"]),
                      "Estimated against true IHS PM2.5: pixel period means and IHS-area daily means."))
    s.tables.append(("This run's row of the score matrix", truth_matrix_row(ctx.config, truth)))
    s.tables.append(("Truth scores", truth.set_index("metric")))
    ta = ctx.csv("truth_annual")
    if ta is not None:
        s.tables.append(("Annual, estimate against truth", ta.set_index("year")))
    return s
