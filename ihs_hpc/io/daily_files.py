"""Daily files: the day in a file's name, the files a path names, and a date range mapped to its files.

Used by the PM2.5 readers (:mod:`ihs_hpc.io.chap`) and the ERA5 GeoTIFF reader (:mod:`ihs_hpc.io.era5`).
"""
from __future__ import annotations

import datetime as _dt
import glob
import os
import re
import warnings
from pathlib import Path

import numpy as np

from .errors import IngestError, IngestWarning

#: Default file-name date pattern: eight digits YYYYMMDD not part of a longer number.
DEFAULT_DATE_REGEX = r"(?<!\d)(\d{8})(?!\d)"
DEFAULT_DATE_FORMAT = "%Y%m%d"

def day_from_name(path, regex: str = DEFAULT_DATE_REGEX, fmt: str = DEFAULT_DATE_FORMAT) -> np.datetime64:
    """The day encoded in a file name (``CHAP_PM2.5_D1K_20150101_V4.nc`` → 2015-01-01).

    ``regex`` must contain one capture group (or a group named ``date``) that ``datetime.strptime``
    parses with ``fmt`` (e.g. ``r"(\\d{4}-\\d{2}-\\d{2})"`` with ``"%Y-%m-%d"``, or ``r"_(\\d{7})\\."`` with
    ``"%Y%j"`` for year + day of year).
    """
    name = Path(path).name
    match = re.search(regex, name)
    if match is None:
        raise IngestError(f"no date matching {regex!r} in the file name", path=path)
    text = match.group("date") if "date" in match.re.groupindex else match.group(1)
    try:
        day = _dt.datetime.strptime(text, fmt).date()
    except ValueError as exc:
        raise IngestError(f"date text {text!r} in the file name does not parse with {fmt!r}: {exc}", path=path) from None
    return np.datetime64(day, "D")


def expand_paths(path, default_glob: str) -> list[Path]:
    """Files named by ``path``: a file, a directory (searched recursively for ``default_glob``), a glob
    pattern (``**`` allowed), or a list of any of these. Sorted, without duplicates."""
    items = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    found: set[Path] = set()
    for item in items:
        item = os.path.expanduser(os.fspath(item))
        p = Path(item)
        if p.is_dir():
            found.update(q for q in p.rglob(default_glob) if q.is_file())
        elif p.is_file():
            found.add(p)
        elif glob.has_magic(item):
            found.update(Path(q) for q in glob.glob(item, recursive=True) if Path(q).is_file())
        else:
            raise IngestError("no such file or directory", path=item)
    return sorted(found)


def day_range(start, end) -> np.ndarray:
    """Every day from ``start`` to ``end`` inclusive, as ``datetime64[D]``."""
    start, end = np.datetime64(str(start)[:10], "D"), np.datetime64(str(end)[:10], "D")
    if end < start:
        raise IngestError(f"end {end} is before start {start}")
    return np.arange(start, end + 1, dtype="datetime64[D]")


def index_daily_files(
    path,
    start,
    end,
    *,
    default_glob: str,
    date_regex: str = DEFAULT_DATE_REGEX,
    date_format: str = DEFAULT_DATE_FORMAT,
    allow_gaps: bool = False,
    what: str = "PM2.5",
) -> dict[np.datetime64, Path | None]:
    """Map every day of ``start..end`` to its file (``None`` for a tolerated gap).

    Files whose date falls outside the range are ignored; a file name without a date is an error
    naming the file; two files for one day is an error naming both. A day without a file is an error
    naming the day(s), or, with ``allow_gaps``, a warning (the day becomes all-NaN).
    """
    days = day_range(start, end)
    files = expand_paths(path, default_glob)
    if not files:
        raise IngestError(f"no {what} files matching {default_glob!r}", path=os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path))
    by_day: dict[np.datetime64, Path] = {}
    for f in files:
        day = day_from_name(f, date_regex, date_format)
        if day < days[0] or day > days[-1]:
            continue
        if day in by_day:
            raise IngestError(f"two {what} files for day {day}: {by_day[day]} and {f}", path=f, day=day)
        by_day[day] = f
    missing = [d for d in days if d not in by_day]
    if missing:
        listed = ", ".join(str(d) for d in missing[:10]) + (" ..." if len(missing) > 10 else "")
        message = f"{len(missing)} of {len(days)} days have no {what} file: {listed}"
        if not allow_gaps:
            raise IngestError(message + " (set allow_gaps to fill them with NaN)", day=missing[0])
        warnings.warn(message + "; they are filled with NaN", IngestWarning, stacklevel=2)
    return {d: by_day.get(d) for d in days}
