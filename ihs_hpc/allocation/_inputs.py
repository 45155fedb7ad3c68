"""Validation and alignment of city PM2.5 values against an index table.

Every public function of :mod:`ihs_hpc.allocation` takes the same two inputs:

* ``pm25`` — one PM2.5 concentration per city: a :class:`pandas.Series` indexed by city name, or a
  1-D array-like (cities by position);
* ``index`` — one or several socio-economic indices per city (population, industrial output,
  energy, R&D ...): a :class:`pandas.DataFrame` (rows = cities, columns = indices), a
  :class:`pandas.Series` (one index), or a 1-D / 2-D array-like (rows = cities).

When both carry city labels they are matched by label (same set of names, no duplicates) and the
index rows are put in the order of ``pm25``; otherwise they are matched by position.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["AlignedInputs", "align_inputs", "validate_pm25"]


@dataclass(frozen=True)
class AlignedInputs:
    """City PM2.5 values and index values on one common city axis.

    Attributes
    ----------
    cities : pandas.Index
        City labels (a :class:`pandas.RangeIndex` when neither input carried labels).
    pm25 : ndarray, shape (n,), float64
        PM2.5 concentration per city, all positive and finite.
    index_values : ndarray, shape (n, k), float64
        Index values per city (rows) and index (columns), all positive and finite.
    index_names : tuple of str
        Name of every index column.
    index_kind : {"series", "frame", "array1d", "array2d"}
        What ``index`` was, which decides the type of per-index outputs.
    """

    cities: pd.Index
    pm25: np.ndarray
    index_values: np.ndarray
    index_names: tuple[str, ...]
    index_kind: str

    def per_index(self, values: np.ndarray):
        """Wrap one value per index the way the caller passed ``index``.

        Parameters
        ----------
        values : ndarray, shape (k,)

        Returns
        -------
        float, pandas.Series or ndarray
            A float for a 1-D ``index``, a Series named by index for a DataFrame, else an array.
        """
        if self.index_kind in ("series", "array1d"):
            return float(values[0])
        if self.index_kind == "frame":
            return pd.Series(values, index=pd.Index(self.index_names, name="index"))
        return np.asarray(values)

    def per_city_and_index(self, values: np.ndarray):
        """Wrap an ``(n, k)`` array the way the caller passed ``index``.

        Parameters
        ----------
        values : ndarray, shape (n, k)

        Returns
        -------
        pandas.Series, pandas.DataFrame or ndarray
            Same kind and shape as ``index``, rows in the order of :attr:`cities`.
        """
        if self.index_kind == "series":
            return pd.Series(values[:, 0], index=self.cities, name=self.index_names[0])
        if self.index_kind == "frame":
            return pd.DataFrame(values, index=self.cities, columns=list(self.index_names))
        if self.index_kind == "array1d":
            return values[:, 0].copy()
        return values.copy()


def _duplicates(labels: pd.Index) -> list:
    return list(pd.unique(labels[labels.duplicated()]))


def _check_unique(labels: pd.Index, what: str) -> None:
    dup = _duplicates(labels)
    if dup:
        raise ValueError(f"{what}: duplicate city names {dup}")


def _to_float(values, argname: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{argname} must hold numbers: {exc}") from None


def validate_pm25(pm25) -> pd.Series:
    """Check city PM2.5 values and return them as a float Series.

    Parameters
    ----------
    pm25 : pandas.Series or array-like, shape (n,)
        PM2.5 concentration per city (µg/m³).

    Returns
    -------
    pandas.Series
        Float values, indexed by city (by position 0..n-1 when ``pm25`` had no labels).

    Raises
    ------
    ValueError
        If ``pm25`` is not 1-D, has fewer than 2 cities, duplicate city names, or a value that is
        not a positive finite number (the message names the city and the value).
    """
    if isinstance(pm25, pd.DataFrame):
        raise ValueError("pm25 must be 1-D (a Series or a 1-D array), got a DataFrame")
    if isinstance(pm25, pd.Series):
        cities = pd.Index(pm25.index)
        values = _to_float(pm25.to_numpy(), "pm25")
    else:
        values = _to_float(pm25, "pm25")
        if values.ndim != 1:
            raise ValueError(f"pm25 must be 1-D, got shape {values.shape}")
        cities = pd.RangeIndex(values.size)
    if values.size < 2:
        raise ValueError(f"pm25 needs at least 2 cities, got {values.size}")
    _check_unique(cities, "pm25")
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"pm25 for city {cities[i]!r} must be a positive finite number, "
            f"got {values[i].item()!r}"
        )
    return pd.Series(values, index=cities, name="pm25")


def align_inputs(pm25, index) -> AlignedInputs:
    """Validate ``pm25`` and ``index`` and put them on one city axis.

    Parameters
    ----------
    pm25 : pandas.Series or array-like, shape (n,)
        PM2.5 concentration per city.
    index : pandas.DataFrame, pandas.Series or array-like, shape (n,) or (n, k)
        Index values per city (rows) and index (columns).

    Returns
    -------
    AlignedInputs

    Raises
    ------
    ValueError
        On duplicate or mismatched city names, a length mismatch, duplicate index names, an empty
        index table, or a value that is not positive and finite (naming index, city and value).
    """
    pm25_series = validate_pm25(pm25)
    pm25_labelled = isinstance(pm25, pd.Series)

    if isinstance(index, pd.DataFrame):
        kind = "frame"
        names = tuple(str(c) for c in index.columns)
        index_cities = pd.Index(index.index)
        raw = index
    elif isinstance(index, pd.Series):
        kind = "series"
        names = (str(index.name) if index.name is not None else "index",)
        index_cities = pd.Index(index.index)
        raw = index.to_frame()
    else:
        arr = _to_float(index, "index")
        if arr.ndim == 1:
            kind, arr = "array1d", arr[:, None]
            names = ("index",)
        elif arr.ndim == 2:
            kind = "array2d"
            names = tuple(f"index_{j}" for j in range(arr.shape[1]))
        else:
            raise ValueError(f"index must be 1-D or 2-D, got shape {arr.shape}")
        index_cities = None
        raw = pd.DataFrame(arr)

    if len(names) == 0:
        raise ValueError("index has no columns: give at least one index")
    dup_names = [n for n in pd.unique(pd.Index(names)[pd.Index(names).duplicated()])]
    if dup_names:
        raise ValueError(f"index: duplicate index names {dup_names}")

    if index_cities is not None:
        _check_unique(index_cities, "index")
    if index_cities is not None and pm25_labelled:
        only_pm25 = [c for c in pm25_series.index if c not in index_cities]
        only_index = [c for c in index_cities if c not in pm25_series.index]
        if only_pm25 or only_index:
            raise ValueError(
                "city names differ between pm25 and index: "
                f"only in pm25: {only_pm25}; only in index: {only_index}"
            )
        raw = raw.loc[pm25_series.index]
        cities = pm25_series.index
    else:
        if len(raw) != len(pm25_series):
            raise ValueError(
                f"pm25 has {len(pm25_series)} cities but index has {len(raw)} rows"
            )
        cities = index_cities if index_cities is not None else pm25_series.index

    values = np.empty((len(raw), len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        values[:, j] = _to_float(raw.iloc[:, j].to_numpy(), f"index {name!r}")
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(
            f"index {names[j]!r} for city {cities[i]!r} must be a positive finite number, "
            f"got {values[i, j].item()!r}"
        )
    return AlignedInputs(
        cities=pd.Index(cities),
        pm25=pm25_series.to_numpy(),
        index_values=values,
        index_names=names,
        index_kind=kind,
    )
