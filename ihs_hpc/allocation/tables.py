"""The plan and Gini tables of seed 003 (Tables 2 and 1) as DataFrames and as Markdown."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from ihs_hpc.allocation.plan import AllocationResult

__all__ = [
    "PLAN_COLUMNS",
    "GINI_COLUMNS",
    "plan_table",
    "gini_table",
    "plan_markdown",
    "gini_markdown",
    "markdown_table",
]

#: columns of the plan table (seed 003, Table 2); rates are fractions, PM2.5 in µg/m³
PLAN_COLUMNS = ("city", "pm25_initial", "reduction_rate", "reduction_amount", "pm25_target")
#: columns of the Gini table (seed 003, Table 1, one row per index)
GINI_COLUMNS = ("index", "gini_initial", "gini_optimised", "gini_change", "gini_change_rate")


def plan_table(cities, pm25_initial: np.ndarray, reduction_rate: np.ndarray) -> pd.DataFrame:
    """Reduction plan in the shape of seed 003, Table 2 (one row per city).

    Parameters
    ----------
    cities : sequence
        City names.
    pm25_initial : ndarray, shape (n,)
        Initial PM2.5 ``W_0(i)`` (µg/m³).
    reduction_rate : ndarray, shape (n,)
        Reduction rate ``(W_0(i) - W_i) / W_0(i)`` as a fraction (eq. 6).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PLAN_COLUMNS`; ``reduction_amount = pm25_initial * reduction_rate`` and
        ``pm25_target = pm25_initial * (1 - reduction_rate)`` (the paper's ``W_i``).
    """
    return pd.DataFrame(
        {
            "city": list(cities),
            "pm25_initial": pm25_initial,
            "reduction_rate": reduction_rate,
            "reduction_amount": pm25_initial * reduction_rate,
            "pm25_target": pm25_initial * (1.0 - reduction_rate),
        }
    )


def gini_table(index_names, gini_initial: np.ndarray, gini_optimised: np.ndarray) -> pd.DataFrame:
    """Gini coefficients before and after the plan, as in seed 003, Table 1 (one row per index).

    Parameters
    ----------
    index_names : sequence of str
    gini_initial : ndarray, shape (k,)
        ``G_0j`` (eq. 1 on the initial PM2.5).
    gini_optimised : ndarray, shape (k,)
        ``G_j`` (eq. 1 on the target PM2.5).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`GINI_COLUMNS`: ``gini_change = gini_initial - gini_optimised`` (Table 1's
        "variation") and ``gini_change_rate = gini_change / gini_initial`` (its "reduction rate",
        a fraction; NaN where ``gini_initial`` is 0).
    """
    change = gini_initial - gini_optimised
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(gini_initial > 0, change / gini_initial, np.nan)
    return pd.DataFrame(
        {
            "index": list(index_names),
            "gini_initial": gini_initial,
            "gini_optimised": gini_optimised,
            "gini_change": change,
            "gini_change_rate": rate,
        }
    )


def markdown_table(header, rows) -> str:
    """A GitHub-flavoured Markdown table; numbers right-aligned.

    Parameters
    ----------
    header : sequence of str
    rows : sequence of sequences of str
        Cells already formatted.

    Returns
    -------
    str
    """
    rule = [" --- "] + [" ---: "] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def plan_markdown(result: "AllocationResult") -> str:
    """Markdown of the plan in the layout of seed 003, Table 2, with a Sum row.

    Parameters
    ----------
    result : AllocationResult

    Returns
    -------
    str
    """
    plan = result.plan
    rows = [
        [str(r.city), f"{r.pm25_initial:.2f}", f"{r.reduction_amount:.2f}",
         f"{100 * r.reduction_rate:.2f}", f"{r.pm25_target:.2f}"]
        for r in plan.itertuples(index=False)
    ]
    total = plan["pm25_initial"].sum()
    cut = plan["reduction_amount"].sum()
    rows.append(["Sum", f"{total:.2f}", f"{cut:.2f}", f"{100 * cut / total:.2f}",
                 f"{plan['pm25_target'].sum():.2f}"])
    header = ["City", "Initial PM2.5 (µg/m³)", "Reduction (µg/m³)", "Reduction rate (%)",
              "Target PM2.5 (µg/m³)"]
    return markdown_table(header, rows)


def gini_markdown(result: "AllocationResult") -> str:
    """Markdown of the Gini table in the layout of seed 003, Table 1 (indices as columns).

    Parameters
    ----------
    result : AllocationResult

    Returns
    -------
    str
    """
    g = result.gini
    header = [""] + [str(name) for name in g["index"]]
    rows = [
        ["Initial Gini coefficient"] + [f"{v:.4f}" for v in g["gini_initial"]],
        ["Optimal Gini coefficient"] + [f"{v:.4f}" for v in g["gini_optimised"]],
        ["Variation of Gini coefficient"] + [f"{v:.4f}" for v in g["gini_change"]],
        ["Reduction rate of Gini coefficient"] + [f"{100 * v:.4f}%" for v in g["gini_change_rate"]],
    ]
    return markdown_table(header, rows)
