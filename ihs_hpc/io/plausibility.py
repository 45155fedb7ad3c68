"""Physical plausibility of ingested values: counted per file and variable, masked, warned or refused.

Values outside a variable's range (store units, after unit conversion) are set to NaN — they are
then treated as missing and filled like any gap — and counted per file and variable. At the end of
ingest one warning lists the counts; with ``strict: true`` the first implausible value is an error
naming the file, variable and value. The counts go to the store's attributes (``ihs_plausibility``),
``run.json`` and the report.

Default ranges (``input.files.plausible`` overrides any of them)::

    pm25  0 .. 2000  µg m-3   (CHAP's daily maxima stay below ~1000)
    t2m   180 .. 340 K        d2m  170 .. 330 K
    tp    0 .. 2 m (daily total; the world record is 1.8 m)
    sp    30 000 .. 110 000 Pa
    u10, v10  -75 .. 75 m s-1
"""
from __future__ import annotations

import warnings
from collections import defaultdict
from typing import Mapping

import numpy as np

from .errors import IngestError, IngestWarning

DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "pm25": (0.0, 2000.0),
    "t2m": (180.0, 340.0),
    "d2m": (170.0, 330.0),
    "tp": (0.0, 2.0),
    "sp": (3.0e4, 1.1e5),
    "u10": (-75.0, 75.0),
    "v10": (-75.0, 75.0),
}
UNITS = {"pm25": "ug m-3", "t2m": "K", "d2m": "K", "tp": "m", "sp": "Pa", "u10": "m s-1", "v10": "m s-1"}


class Plausibility:
    """Mask and count implausible values as batches of days are read.

    Parameters
    ----------
    ranges : mapping, optional
        ``{variable: (low, high)}`` overriding :data:`DEFAULT_RANGES`.
    strict : bool
        Raise :class:`IngestError` at the first implausible value instead of masking it.
    """

    def __init__(self, ranges: Mapping | None = None, strict: bool = False):
        self.ranges = {**DEFAULT_RANGES, **{k: tuple(v) for k, v in (ranges or {}).items()}}
        self.strict = bool(strict)
        self.counts: dict[tuple[str, str], int] = defaultdict(int)
        self.examples: dict[tuple[str, str], float] = {}

    def apply(self, data: Mapping[str, np.ndarray], days, file_of) -> None:
        """Mask (in place) implausible values of a batch ``{var: (n_days, ny, nx)}``.

        ``file_of(day, var)`` names the file the day's values came from.
        """
        for var, block in data.items():
            if var not in self.ranges:
                continue
            lo, hi = self.ranges[var]
            with np.errstate(invalid="ignore"):
                bad = (block < lo) | (block > hi)
            if not bad.any():
                continue
            for i in np.flatnonzero(bad.reshape(len(block), -1).any(axis=1)):
                n = int(bad[i].sum())
                value = float(block[i][bad[i]][np.argmax(np.abs(block[i][bad[i]]))])
                path = str(file_of(days[i], var))
                if self.strict:
                    raise IngestError(f"{n} value(s) outside the plausible range {lo:g}..{hi:g} {UNITS[var]} "
                                      f"(e.g. {value:g}); set strict: false to mask them as missing, or widen "
                                      f"plausible.{var}", path=path, day=days[i], variable=var)
                self.counts[(path, var)] += n
                self.examples.setdefault((path, var), value)
                block[i][bad[i]] = np.nan

    def summary(self) -> dict:
        """``{var: {"values": n, "files": k, "range": [lo, hi], "first_file": ..., "example": v}}``."""
        out: dict[str, dict] = {}
        for (path, var), n in sorted(self.counts.items()):
            entry = out.setdefault(var, {"values": 0, "files": 0, "range": list(self.ranges[var]), "units": UNITS[var],
                                         "first_file": path, "example": self.examples[(path, var)]})
            entry["values"] += n
            entry["files"] += 1
        return out

    def warn(self) -> None:
        summary = self.summary()
        if summary:
            text = "; ".join(f"{var}: {e['values']} value(s) in {e['files']} file(s) outside {e['range'][0]:g}.."
                             f"{e['range'][1]:g} {e['units']} (first {e['first_file']}, e.g. {e['example']:g})"
                             for var, e in summary.items())
            warnings.warn(f"implausible values set to missing — {text}", IngestWarning, stacklevel=3)
