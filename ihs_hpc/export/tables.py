"""The run's statistics tables as CSV, and as one Excel workbook when ``openpyxl`` is installed.

The CSV files are those of ``RUN/stats/`` (written by :mod:`ihs_hpc.pipeline.stats`), copied as they
are, plus the per-source attribute table of the radiation areas. The workbook ``ihs_tables.xlsx``
has one sheet per table (sheet names cut to Excel's 31 characters, kept unique).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pandas as pd

from .sources import RunOutputs, atomic_path

WORKBOOK = "ihs_tables.xlsx"


def excel_available() -> bool:
    """Whether Excel export can run (``openpyxl`` importable)."""
    return importlib.util.find_spec("openpyxl") is not None


def _sheet_names(stems: list[str]) -> list[str]:
    out, used = [], set()
    for stem in stems:
        name = stem[:31]
        k = 1
        while name in used:
            suffix = f"~{k}"
            name, k = stem[:31 - len(suffix)] + suffix, k + 1
        used.add(name)
        out.append(name)
    return out


def write_tables(outputs: RunOutputs, out_dir: Path, extra: dict[str, pd.DataFrame] | None = None,
                 excel: bool | None = None) -> list[Path]:
    """Copy ``stats/*.csv`` into ``out_dir`` and write ``extra`` tables; the workbook when ``excel`` (default:
    when openpyxl is importable). Returns the files written."""
    csvs = sorted(outputs.stats_dir.glob("*.csv"))
    if not csvs:
        raise FileNotFoundError(f"{outputs.stats_dir}: no CSV tables; run `ihs stats` on this run first")
    out_dir.mkdir(parents=True, exist_ok=True)
    written, frames = [], {}
    for src in csvs:
        dst = out_dir / src.name
        tmp = atomic_path(dst)
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
        written.append(dst)
        frames[src.stem] = src
    for stem, frame in (extra or {}).items():
        dst = out_dir / f"{stem}.csv"
        tmp = atomic_path(dst)
        frame.to_csv(tmp, index=False)
        os.replace(tmp, dst)
        written.append(dst)
        frames[stem] = frame
    if excel if excel is not None else excel_available():
        book = out_dir / WORKBOOK
        tmp = atomic_path(book)
        try:
            with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
                for sheet, (stem, source) in zip(_sheet_names(list(frames)), frames.items()):
                    frame = pd.read_csv(source) if isinstance(source, Path) else source
                    frame.to_excel(writer, sheet_name=sheet, index=False)
            os.replace(tmp, book)
        finally:
            tmp.unlink(missing_ok=True)
        written.append(book)
    return written
