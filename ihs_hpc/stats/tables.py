"""Tables in the shapes of the seed paper (000 §3–4) and their CSV / Markdown writers.

* :func:`city_year_table` — Table 2: one row per city, one column per year, the decline between the
  first and the last year (%), and the Mann–Kendall / Sen trend columns;
* :func:`correlation_table` — Table 3: one row per indicator, one column per region, Pearson r;
* :func:`trend_table`, :func:`box_table` — long tables of trend tests and box-plot numbers;
* :func:`to_markdown` — a dependency-free Markdown renderer (pandas' needs ``tabulate``);
* :class:`TableWriter` — writes every table as CSV (full precision) and collects one Markdown file.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .aggregate import box_stats, decline_pct, operating_decline
from .group_tests import trend_test

TREND_COLUMNS = {"trend": "mk_trend", "z": "mk_z", "p": "mk_p", "s": "mk_s", "tau": "mk_tau",
                 "slope": "sen_slope", "slope_lo": "sen_slope_lo", "slope_hi": "sen_slope_hi"}


def city_year_table(names: Sequence[str], years: Sequence[int], values: np.ndarray, *, alpha: float = 0.05,
                    index_name: str = "city", operating: np.ndarray | None = None) -> pd.DataFrame:
    """Table 2 shape: ``values (cities, years)`` with ``mean``, ``decline_pct`` and trend columns.

    ``decline_pct`` = (first − last) / first × 100 between the first and the last year; the trend
    columns are the Mann–Kendall test and Sen's slope (per year) of the row's annual values.

    ``operating (rows, years)`` bool: whether the row's source (or any source of its areas) operated
    each year. The decline is then taken between the row's first and last *operating* years, named in
    the columns ``decline_from`` and ``decline_to`` (NaN with fewer than two operating years).
    """
    values = np.asarray(values, dtype=np.float64)
    df = pd.DataFrame(values, index=pd.Index(list(names), name=index_name), columns=[int(y) for y in years])
    with np.errstate(invalid="ignore"):
        df["mean"] = np.nanmean(values, axis=1) if values.shape[1] else np.nan
    column = f"decline_{int(years[0])}_{int(years[-1])}_pct"
    if operating is None:
        df[column] = decline_pct(values[:, 0], values[:, -1])
    else:
        dec, first, last = operating_decline(values, operating)
        yrs = np.asarray([int(y) for y in years] + [-1])
        df[column] = dec
        df["decline_from"] = pd.array(np.where(first >= 0, yrs[first], -1), dtype="Int64")
        df["decline_to"] = pd.array(np.where(last >= 0, yrs[last], -1), dtype="Int64")
        df.loc[df["decline_from"] < 0, ["decline_from", "decline_to"]] = pd.NA
    trends = [trend_test(row, alpha=alpha) for row in values]
    for key, col in TREND_COLUMNS.items():
        df[col] = [t[key] for t in trends]
    return df


def trend_table(series: Mapping[str, Sequence[float]], *, alpha: float = 0.05) -> pd.DataFrame:
    """One row per named series: n, MK trend/h/p/z/tau/S/var(S), Sen slope, intercept and its CI."""
    rows = []
    for name, values in series.items():
        rows.append({"series": name, **trend_test(values, alpha=alpha)})
    cols = ["series", "n", "trend", "h", "p", "z", "tau", "s", "var_s", "slope", "intercept", "slope_lo", "slope_hi"]
    return pd.DataFrame(rows, columns=cols)


def box_table(samples: Mapping[tuple, np.ndarray], keys: Sequence[str]) -> pd.DataFrame:
    """Box-plot numbers of every sample; ``samples`` maps a key tuple (named by ``keys``) to values."""
    rows = [dict(zip(keys, key)) | box_stats(values) for key, values in samples.items()]
    return pd.DataFrame(rows)


def correlation_table(long: pd.DataFrame, value: str = "r") -> pd.DataFrame:
    """Table 3 shape from a long table (``indicator, region, n, r, p``): indicators × regions."""
    if long.empty:
        return pd.DataFrame()
    indicators = list(dict.fromkeys(long["indicator"]))
    regions = list(dict.fromkeys(long["region"]))
    wide = long.pivot(index="indicator", columns="region", values=value)
    return wide.reindex(index=indicators, columns=regions)


# --------------------------------------------------------------------------- Markdown
def _fmt(value, digits: int) -> str:
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return "–"
        v = float(value)
        if v != 0 and abs(v) < 10 ** (-digits):
            return f"{v:.{digits}e}" if abs(v) >= 1e-300 else "0"
        return f"{v:.{digits}f}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    text = str(value)
    return "–" if text in ("nan", "NaN", "None", "") else text.replace("|", "\\|")


def to_markdown(df: pd.DataFrame, *, digits: int = 2, index: bool = True) -> str:
    """A GitHub-flavoured Markdown table (numbers right-aligned, NaN shown as ``–``)."""
    frame = df.reset_index() if index and (df.index.name or not isinstance(df.index, pd.RangeIndex)) else df
    header = [str(c) for c in frame.columns]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if n else ":---" for n in numeric) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v, digits) for v in row) + " |")
    return "\n".join(lines) + "\n"


class TableWriter:
    """Write tables as CSV (full precision) into ``out_dir`` and collect a Markdown document."""

    def __init__(self, out_dir, title: str):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.sections: list[str] = [f"# {title}\n"]
        self.files: dict[str, str] = {}

    def text(self, markdown: str) -> None:
        self.sections.append(markdown.rstrip() + "\n")

    def add(self, name: str, df: pd.DataFrame, title: str, *, note: str = "", digits: int = 2,
            index: bool = True) -> Path:
        path = self.out_dir / f"{name}.csv"
        df.to_csv(path, index=index and (df.index.name is not None or not isinstance(df.index, pd.RangeIndex)))
        self.files[name] = path.name
        block = [f"## {title}\n", f"File: `{path.name}`.", ""]
        if note:
            block += [note, ""]
        block.append(to_markdown(df, digits=digits, index=index))
        self.sections.append("\n".join(block))
        return path

    def write_markdown(self, name: str = "tables.md") -> Path:
        path = self.out_dir / name
        path.write_text("\n".join(self.sections), encoding="utf-8")
        return path
