"""What the statistics tables read besides the reduced sums: a city indicators file, each IHS's city and
operating years (declines and year-on-year changes only between operating years)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

def read_indicators(path, known_regions: dict[str, str]) -> pd.DataFrame:
    """Read a yearly indicator CSV into a long table ``year, region, indicator, value``.

    The CSV has years as rows: a ``year`` column, an optional ``region`` (or ``city``) column naming
    the region the row belongs to (a city's English or local name or adcode; empty, ``all`` or
    ``region`` for the whole study area), and one numeric column per indicator. Lines starting with
    ``#`` are comments.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"stats.indicators: file {path} not found")
    df = pd.read_csv(path, comment="#", skipinitialspace=True)
    df.columns = [str(c).strip() for c in df.columns]
    lower = {c.lower(): c for c in df.columns}
    if "year" not in lower:
        raise ValueError(f"{path}: the indicator CSV needs a 'year' column (found {list(df.columns)})")
    year_col = lower["year"]
    region_col = lower.get("region") or lower.get("city")
    years = pd.to_numeric(df[year_col], errors="coerce")
    if years.isna().any():
        raise ValueError(f"{path}: column {year_col!r} holds non-numeric years: "
                         f"{df.loc[years.isna(), year_col].tolist()[:5]}")
    if region_col is None:
        regions = pd.Series(["All"] * len(df))
    else:
        raw = df[region_col].fillna("").astype(str).str.strip()
        regions = []
        for value in raw:
            key = value.lower()
            if key in ("", "all", "region", "total"):
                regions.append("All")
            elif key in known_regions:
                regions.append(known_regions[key])
            else:
                raise ValueError(f"{path}: region {value!r} in column {region_col!r} is not a city of this run; "
                                 f"known: {sorted(set(known_regions.values()))} or 'all'")
        regions = pd.Series(regions)
    indicator_cols = [c for c in df.columns if c not in (year_col, region_col)]
    if not indicator_cols:
        raise ValueError(f"{path}: no indicator columns besides {year_col!r}")
    rows = []
    for col in indicator_cols:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna() & ~df[col].astype(str).str.strip().str.upper().isin(["NAN", "NA", ""])
        if bad.any():
            raise ValueError(f"{path}: column {col!r} holds non-numeric values: {df.loc[bad, col].tolist()[:5]}")
        rows.append(pd.DataFrame({"year": years.astype(int).to_numpy(), "region": regions.to_numpy(),
                                  "indicator": col, "value": values.to_numpy(dtype=float)}))
    return pd.concat(rows, ignore_index=True)


def city_of_ihs(cubes, n_city: int) -> np.ndarray:
    """Index of the city holding each IHS source's pixel (-1: none)."""
    if "ihs_row" not in cubes or "city_id" not in cubes or n_city == 0:
        return np.full(int(cubes.sizes.get("ihs", 0)), -1)
    rows = cubes["ihs_row"].values.astype(np.int64)
    cols = cubes["ihs_col"].values.astype(np.int64)
    city = cubes["city_id"].values
    return city[rows, cols].astype(np.int64) if rows.size else np.zeros(0, np.int64)


def operating_flags(cubes, years) -> np.ndarray | None:
    """``(ihs, years)`` operating flags aligned to the data years (NaN-free bools; None when absent)."""
    if "ihs_operating" not in cubes:
        return None
    op = cubes["ihs_operating"]
    op_years = [int(y) for y in op["year"].values]
    out = np.zeros((op.sizes["ihs"], len(years)), dtype=float)
    values = op.values.astype(bool)
    for j, y in enumerate(years):
        out[:, j] = values[:, op_years.index(y)] if y in op_years else np.nan
    return out


def city_operating(operating, areas, city_ids: np.ndarray, n_city: int) -> np.ndarray | None:
    """``(city, years)`` bool: some source whose radiation area reaches the city's pixels operated that year."""
    if operating is None or "member_offset" not in areas:
        return None
    offsets = areas["member_offset"].values.astype(np.int64)
    pixels = areas["member_pixel"].values.astype(np.int64)
    city_flat = city_ids.ravel()
    op = np.nan_to_num(operating, nan=1.0) > 0
    out = np.zeros((n_city, op.shape[1]), dtype=bool)
    for i in range(offsets.size - 1):
        cities = np.unique(city_flat[pixels[offsets[i]:offsets[i + 1]]])
        cities = cities[(cities >= 0) & (cities < n_city)]
        out[cities] |= op[i]
    return out


def count_operating(operating: np.ndarray) -> np.ndarray:
    """Number of operating IHS per year; NaN for years the operating table does not cover."""
    missing = np.isnan(operating).all(axis=0) if operating.shape[0] else np.zeros(operating.shape[1], bool)
    return np.where(missing & (operating.shape[0] > 0), np.nan, np.nansum(operating, axis=0))
