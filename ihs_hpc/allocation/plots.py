"""Lorenz curves before and after a reduction plan (seed 003, Fig. 2 with the plan added)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.figure import Figure

from ihs_hpc.allocation.gini import lorenz_curve

if TYPE_CHECKING:  # pragma: no cover
    from ihs_hpc.allocation.plan import AllocationResult

__all__ = ["plot_lorenz_curves"]


def plot_lorenz_curves(result: "AllocationResult", path=None, *, dpi: int = 120) -> Figure:
    """One panel per index: Lorenz curve of the initial and of the target PM2.5 (eq. 1).

    The figure is drawn on a plain :class:`matplotlib.figure.Figure` (Agg canvas), so no pyplot
    state or interactive backend is touched.

    Parameters
    ----------
    result : AllocationResult
        Output of :func:`~ihs_hpc.allocation.plan.allocate`.
    path : str or path-like, optional
        Where to save the figure (format from the suffix, e.g. ``.png``).
    dpi : int, optional
        Resolution of the saved file.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plan = result.plan
    cities = plan["city"].to_numpy()
    before = lorenz_curve(pd.Series(plan["pm25_initial"].to_numpy(), index=cities), result.indices)
    after = lorenz_curve(pd.Series(plan["pm25_target"].to_numpy(), index=cities), result.indices)
    gini = result.gini.set_index("index")
    names = list(result.indices.columns)
    ncols = min(2, len(names))
    nrows = math.ceil(len(names) / ncols)
    height = 4.6 * nrows + 0.9  # inches: panels plus a two-line title
    fig = Figure(figsize=(max(6.0, 5.0 * ncols), height))
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.6 / height, top=1 - 1.0 / height,
                        wspace=0.3, hspace=0.35)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, name in zip(axes, names):
        ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", label="Line of equality")
        ax.plot(before[name]["cum_index_share"], before[name]["cum_pm25_share"], marker="o",
                markersize=3, label=f"Initial (G = {gini.loc[name, 'gini_initial']:.4f})")
        ax.plot(after[name]["cum_index_share"], after[name]["cum_pm25_share"], marker="s",
                markersize=3, label=f"Target (G = {gini.loc[name, 'gini_optimised']:.4f})")
        ax.set_title(f"Lorenz curve: PM2.5 against {name}")
        ax.set_xlabel(f"Cumulative share of {name}")
        ax.set_ylabel("Cumulative share of PM2.5")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.legend(loc="upper left", fontsize="small")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.suptitle(
        f"Minimised-Gini plan: q = {100 * result.q:g}%, city rates {100 * result.p_min:g}–"
        f"{100 * result.p_max:g}%\nsum of Gini {result.objective_initial:.4f} → "
        f"{result.objective:.4f}"
    )
    if path is not None:
        fig.savefig(Path(path), dpi=dpi)
    return fig
