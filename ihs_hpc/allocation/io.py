"""CSV input and file output of the allocation (plan / Gini CSV, Markdown, Lorenz PNG).

Input CSVs (lines starting with ``#`` are comments; header names are stripped of spaces):

* PM2.5: columns ``city`` and ``pm25`` (µg/m³); other columns are ignored;
* indices: column ``city`` plus one or more numeric index columns (population, industrial output,
  energy consumption, R&D expenditure ...), every other column being an index.

Every value must be a positive finite number; errors name the file, the column, the city and the
offending value.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ihs_hpc.allocation.gini import contribution_coefficient
from ihs_hpc.allocation.plots import plot_lorenz_curves
from ihs_hpc.allocation.tables import gini_markdown, plan_markdown

if TYPE_CHECKING:  # pragma: no cover
    from ihs_hpc.allocation.plan import AllocationResult

__all__ = ["read_pm25_csv", "read_index_csv", "write_allocation_outputs", "OUTPUT_FILES"]

#: names of the files written by :func:`write_allocation_outputs`
OUTPUT_FILES = {
    "plan": "plan.csv",
    "gini": "gini.csv",
    "contribution": "contribution_initial.csv",
    "markdown": "allocation.md",
    "lorenz": "lorenz_curves.png",
}


def _read_text_table(path) -> tuple[Path, pd.DataFrame]:
    path = Path(path)
    try:
        table = pd.read_csv(path, comment="#", dtype=str, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: file is empty (expected a CSV with a header row)") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"{path}: not a readable CSV: {exc}") from None
    table.columns = [str(c).strip() for c in table.columns]
    dup = sorted({c for c in table.columns if list(table.columns).count(c) > 1})
    if dup:
        raise ValueError(f"{path}: duplicate column names {dup}")
    return path, table


def _require_column(path: Path, table: pd.DataFrame, column: str) -> None:
    if column not in table.columns:
        raise ValueError(f"{path}: missing column {column!r} (found columns {list(table.columns)})")


def _city_names(path: Path, table: pd.DataFrame) -> pd.Index:
    _require_column(path, table, "city")
    raw = table["city"]
    if len(raw) == 0:
        raise ValueError(f"{path}: column 'city' has no rows")
    missing = raw.isna() | (raw.str.strip() == "")
    if missing.any():
        row = int(np.flatnonzero(missing.to_numpy())[0])
        raise ValueError(f"{path}: column 'city' is empty on data row {row + 1}")
    cities = pd.Index(raw.str.strip(), name="city")
    dup = list(pd.unique(cities[cities.duplicated()]))
    if dup:
        raise ValueError(f"{path}: column 'city' has duplicate city names {dup}")
    return cities


def _positive_column(path: Path, table: pd.DataFrame, column: str, cities: pd.Index) -> np.ndarray:
    raw = table[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        shown = "a missing value" if pd.isna(raw.iloc[i]) else f"value {raw.iloc[i]!r}"
        raise ValueError(
            f"{path}: column {column!r} has {shown} for city {cities[i]!r}; "
            "expected a positive number"
        )
    return values


def read_pm25_csv(path) -> pd.Series:
    """Read city PM2.5 concentrations from a CSV with columns ``city`` and ``pm25``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    pandas.Series
        PM2.5 per city (float, µg/m³), indexed by city name, named ``pm25``.

    Raises
    ------
    ValueError
        If the file is empty, a column is missing, a city name is empty or repeated, or a value
        is missing, non-numeric or not positive (naming file, column, city and value).
    """
    path, table = _read_text_table(path)
    cities = _city_names(path, table)
    _require_column(path, table, "pm25")
    return pd.Series(_positive_column(path, table, "pm25", cities), index=cities, name="pm25")


def read_index_csv(path) -> pd.DataFrame:
    """Read the index table: column ``city`` plus one or more numeric index columns.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    pandas.DataFrame
        Rows indexed by city name, one float column per index, in file order.

    Raises
    ------
    ValueError
        If the file is empty, ``city`` or every index column is missing, a city name is empty or
        repeated, or a value is missing, non-numeric or not positive (naming file, column, city
        and value).
    """
    path, table = _read_text_table(path)
    cities = _city_names(path, table)
    names = [c for c in table.columns if c != "city"]
    if not names:
        raise ValueError(f"{path}: no index columns besides 'city'")
    return pd.DataFrame(
        {name: _positive_column(path, table, name, cities) for name in names}, index=cities
    )


def write_allocation_outputs(result: "AllocationResult", out_dir) -> dict[str, Path]:
    """Write the plan, Gini and contribution tables, a Markdown report and the Lorenz figure.

    Files (:data:`OUTPUT_FILES`): ``plan.csv`` (Table 2 shape, full float precision),
    ``gini.csv`` (Table 1 shape), ``contribution_initial.csv`` (eq. 2 on the initial PM2.5, one
    column per index), ``allocation.md`` (Tables 1 and 2 as Markdown) and ``lorenz_curves.png``.

    Parameters
    ----------
    result : AllocationResult
    out_dir : str or path-like
        Created if missing.

    Returns
    -------
    dict of str to pathlib.Path
        Path of every file written, keyed as :data:`OUTPUT_FILES`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: out_dir / name for key, name in OUTPUT_FILES.items()}
    result.plan.to_csv(paths["plan"], index=False)
    result.gini.to_csv(paths["gini"], index=False)
    pm25 = pd.Series(result.plan["pm25_initial"].to_numpy(), index=result.indices.index)
    contribution = contribution_coefficient(pm25, result.indices)
    contribution.index.name = "city"
    contribution.to_csv(paths["contribution"])
    status = "converged" if result.converged else "NOT converged (uniform fallback)"
    report = [
        "# Minimised-Gini PM2.5 reduction plan",
        "",
        f"Total reduction rate q = {100 * result.q:g}%, city rates within "
        f"[{100 * result.p_min:g}%, {100 * result.p_max:g}%]; method `{result.method}`, {status}.",
        f"Sum of Gini coefficients: {result.objective_initial:.6f} initially, "
        f"{result.objective:.6f} after the plan.",
        "",
        "## Gini coefficients (layout of seed 003, Table 1)",
        "",
        gini_markdown(result),
        "## Reduction plan (layout of seed 003, Table 2)",
        "",
        plan_markdown(result),
    ]
    paths["markdown"].write_text("\n".join(report), encoding="utf-8")
    plot_lorenz_curves(result, paths["lorenz"])
    return paths
