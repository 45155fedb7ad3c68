"""Report sections of method outputs copied in from beside the stats: stage 3's held-out validation
(``RUN/uconvlstm/``) and the allocation of reduction targets (``RUN/allocation/``, seed 003)."""
from __future__ import annotations

import shutil

import pandas as pd

from ...report.html import Section
from .context import ReportContext


def stage3_section(ctx: ReportContext) -> Section | None:
    """The U-ConvLSTM and kriging on the same held-out holes (:mod:`ihs_hpc.pipeline.stage3_model`)."""
    validation = ctx.csv("stage3_validation")
    if validation is None:
        return None
    s = Section("Stage 3: U-ConvLSTM and kriging on held-out background holes",
                "Both methods fill the same holes, cut in the shapes of real IHS areas into the background of "
                "validation blocks, on every day of a year the model never trained on; scores over the hidden "
                "background pixel-days (µg m⁻³). With stage3.method: auto the IHS areas are filled by the U-ConvLSTM "
                "only when its RMSE is at least stage3.auto_margin_pct below kriging's.")
    for name, caption in (("validation.png", "Held-out holes and fills against the hidden values."),
                          ("training.png", "Training and validation loss of the U-ConvLSTM.")):
        if (ctx.run_dir / "uconvlstm" / name).is_file():
            shutil.copyfile(ctx.run_dir / "uconvlstm" / name, ctx.fig_dir / f"stage3_{name}")
            s.figures.append((f"figures/stage3_{name}", caption))
    s.tables.append(("Held-out holes", validation.set_index("method")))
    return s


def allocation_section(ctx: ReportContext) -> Section | None:
    """Lorenz curves and the reduction plan when the allocation stage ran (its PNG copied in)."""
    lorenz = ctx.run_dir / "allocation" / "lorenz_curves.png"
    if not lorenz.is_file():
        return None
    shutil.copyfile(lorenz, ctx.fig_dir / "lorenz_curves.png")
    s = Section("Allocation of reduction targets", "Lorenz curves of the minimised-Gini reduction plan (seed 003).")
    s.figures.append(("figures/lorenz_curves.png", "Lorenz curves before and after the reduction plan."))
    plan = ctx.run_dir / "allocation" / "plan.csv"
    if plan.is_file():
        table = pd.read_csv(plan)
        s.tables.append(("Reduction plan", table.set_index("city") if "city" in table.columns else table))
    return s
