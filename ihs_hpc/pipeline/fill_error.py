"""Stage 3's fill error on placements of the IHS mask (:mod:`ihs_hpc.ops.fill_error`; issue 13).

While stage 3's day-major copy of ``pm25_bl_tem`` exists (:func:`ihs_hpc.pipeline.daily.krige_cube`),
one task per calendar year kriges every ``day_step``-th day of the record in each placement of the IHS
mask — the placement's pixels hidden together with the real IHS areas, kriged with stage 3's own
settings (variogram, neighbours, drift) — and saves the sums and counts of ``fill − observed`` at the
placement's pixels (``_ihs_fills/fill_error/<year>.npz``: a killed run keeps the years done). The
annual-mean errors, moved back onto the real IHS pixels, become ``stage3.zarr/fill_error``
``(placement, year, lat, lon)``, from which the stats stage takes the intervals of its annual figures
(:mod:`ihs_hpc.pipeline.intervals`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import zarr

from ..ops.fill_error import annual_error_maps, placement_mask
from .daily import DAYS_STORE, SOURCE, fill_days
from .executor import map_tiles

FILL_ERROR_DIR = "fill_error"


@dataclass(frozen=True)
class YearTask:
    """One calendar year of placements to krige; quacks like a Tile for :func:`map_tiles` (name, shape)."""

    year: int
    n_days: int

    @property
    def name(self) -> str:
        return f"y{self.year}"

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_days, 1)


def fill_error_settings(config) -> dict:
    """``stage3.fill_error`` checked: ``placements`` >= 0, ``day_step`` >= 1, ``min_shift`` > 0 (a
    :class:`~ihs_hpc.errors.ConfigError` naming the key and value otherwise)."""
    from ..errors import ConfigError

    out = {key: config[f"stage3.fill_error.{key}"] for key in ("placements", "day_step", "min_shift", "seed")}
    for key, ok, bound in (("placements", out["placements"] >= 0, ">= 0"), ("day_step", out["day_step"] >= 1, ">= 1"),
                           ("min_shift", out["min_shift"] > 0, "> 0")):
        if not ok:
            raise ConfigError(f"stage3.fill_error.{key} must be {bound}, got {out[key]!r}")
    return out


def placement_background(areas) -> np.ndarray:
    """The pixels the IHS mask may be moved onto and kriged from: stage 1's ``background`` (valid,
    outside every IHS area), or everything outside the IHS mask when the store has none."""
    holes = areas["ihs_mask"].values.astype(bool)
    return areas["background"].values.astype(bool) if "background" in areas else ~holes


def sampled_days(year_of_day: np.ndarray, year: int, day_step: int) -> np.ndarray:
    """The record's days of ``year`` that are kriged in the placements: every ``day_step``-th day of the
    record (day 0, ``day_step``, …), so the sample does not depend on how the record is cut."""
    days = np.flatnonzero(np.asarray(year_of_day) == int(year))
    return days[days % int(day_step) == 0]


def _year_record(scratch: Path, year: int) -> Path:
    return Path(scratch) / FILL_ERROR_DIR / f"{int(year)}.npz"


def year_fill_error(task: YearTask, *, scratch: Path, year_of_day, day_step: int, holes, valid, shifts, lat, lon,
                    **kriging) -> None:
    """One year's task: krige the sampled days in every placement; save per placement the sums and counts
    of ``fill − observed`` over the placement's pixels (flat indices in placement order)."""
    year = task.year
    days = sampled_days(year_of_day, year, day_step)
    source = zarr.open_group(Path(scratch) / DAYS_STORE, mode="r")[SOURCE]
    data = np.asarray(source.get_orthogonal_selection((days, slice(None), slice(None))), dtype=np.float64) \
        if days.size else np.zeros((0,) + tuple(np.shape(holes)))
    sums, counts = [], []
    filled = np.empty((1,) + data.shape[1:])
    for dy, dx in shifts:
        target = placement_mask(holes, valid, dy, dx)
        flat = np.flatnonzero(target.ravel())
        s, n = np.zeros(flat.size), np.zeros(flat.size, dtype=np.int32)
        for i, day in enumerate(days):
            fill_days(data[i:i + 1], int(day), lat=lat, lon=lon, holes=holes | target, fill_mask=target,
                      out=filled, **kriging)
            err = (filled[0] - data[i]).ravel()[flat]
            ok = np.isfinite(err)
            s[ok] += err[ok]
            n[ok] += 1
        sums.append(s)
        counts.append(n)
    path = _year_record(scratch, year)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, sums=np.concatenate(sums), counts=np.concatenate(counts), n_days=days.size)
    os.replace(tmp, path)


def _year_done(scratch: Path, task: YearTask) -> bool:
    return _year_record(scratch, task.year).is_file()


def measure_fill_error(*, scratch: Path, years, year_of_day, holes, valid, shifts, lat, lon, day_step: int,
                       client, **kriging) -> np.ndarray:
    """Run :func:`year_fill_error` for every year not yet done and return the ``(placement, year, ny, nx)``
    annual-mean error maps on the real IHS pixels (:func:`~ihs_hpc.ops.fill_error.annual_error_maps`)."""
    holes = np.asarray(holes, dtype=bool)
    shifts = np.asarray(shifts, dtype=np.int64)
    todo = [YearTask(int(y), int(sampled_days(year_of_day, y, day_step).size)) for y in years
            if not _year_record(scratch, y).is_file()]
    func = partial(year_fill_error, scratch=Path(scratch), year_of_day=np.asarray(year_of_day), day_step=int(day_step),
                   holes=holes, valid=np.asarray(valid, dtype=bool), shifts=shifts, lat=lat, lon=lon, **kriging)
    map_tiles(func, todo, client, desc="stage3 fill error (placements)", unit="year",
              done=partial(_year_done, Path(scratch)))
    masks = [np.flatnonzero(placement_mask(holes, valid, dy, dx).ravel()) for dy, dx in shifts]
    records = []
    for year in years:
        with np.load(_year_record(scratch, year)) as record:
            records.append((record["sums"], record["counts"]))
        if records[-1][0].size != sum(flat.size for flat in masks):
            raise ValueError(f"{_year_record(scratch, year)}: {records[-1][0].size} values for "
                             f"{sum(flat.size for flat in masks)} placement pixels (the placements changed since "
                             f"it was written; delete {scratch})")
    out = np.empty((len(shifts), len(years)) + holes.shape, dtype=np.float32)
    start = 0
    for m, flat in enumerate(masks):  # one placement at a time: (years, ny, nx) in memory, not all of them
        sums = np.zeros((1, len(years), holes.size))
        counts = np.zeros_like(sums)
        for y, (s, n) in enumerate(records):
            sums[0, y, flat] = s[start:start + flat.size]
            counts[0, y, flat] = n[start:start + flat.size]
        start += flat.size
        shape = (1, len(years)) + holes.shape
        out[m] = annual_error_maps(sums.reshape(shape), counts.reshape(shape), shifts[m:m + 1])[0]
    return out
