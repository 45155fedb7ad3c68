"""Stage 2's computation for a block of pixels: baseline, regression on meteorology, met-removed baseline.

Seed 000 §2.3.3 (DOI 10.3390/atmos15010131), for every pixel series of a tile:

* eq. 2: ``pm25_bl = T + S``, the non-robust STL baseline (:func:`ihs_hpc.ops.stl.stl_baseline`);
* eq. 3: ``pm25_bl_mlr = a0 + sum_i a_i met_bl_i``, the per-pixel regression on the meteorological
  baselines interpolated bilinearly to the pixel (:func:`ihs_hpc.ops.mlr.mlr`);
* eq. 4: ``pm25_bl_tem = pm25_bl - pm25_bl_mlr`` (:func:`ihs_hpc.ops.mlr.remove_met`).

:func:`remove_met_block` runs these in chunks of pixels, each pixel's regressors interpolated from the
coarse baselines as it is fitted (:func:`ihs_hpc.ops.mlr.remove_met_bilinear`), so a 64 × 64 tile of ten
years never holds its ``(pixels, 6, days)`` float64 regressors (700 MB): the working set is a few tens of
MB, reused chunk after chunk, instead of gigabytes allocated and page-faulted per tile.
The results are those of the whole-tile computation (each pixel's numbers do not depend on the chunk).

With ``keep_level`` the met-removed baseline keeps the level of the pixel's PM2.5 series
(:func:`restore_level`): the regression's mean (added back by :func:`ihs_hpc.ops.mlr.remove_met`) and the
mean of the STL short-term component ``R`` of eq. 1 (series minus baseline), over the record or, with
``level_by_year``, over each calendar year. A trend window of about a year cannot follow a source that
starts or stops: the step is spread over the neighbouring years and the part it misses stays in ``R``,
whose yearly mean keeps it (``stage2.level_window: year``). ``fit`` restricts eqs. 3–4 to some pixels
(stage 2's ``met_fit: background`` fits only the background pixels on their whole series; the others get
their baseline here and their coefficients elsewhere).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mlr import remove_met_bilinear
from .stl import stl_baseline

__all__ = ["MetRemovalBlock", "remove_met_block", "restore_level", "short_term_level", "DEFAULT_CHUNK"]

#: pixels per chunk: 512 series of 3652 days in float64 = 15 MB (fastest of 128..4096 on a 64 × 64 tile)
DEFAULT_CHUNK = 512


@dataclass(frozen=True)
class MetRemovalBlock:
    """Stage-2 outputs of a block of pixels, time-major ``(time, pixels)`` float32 cubes and maps.

    Attributes
    ----------
    pm25_bl, pm25_bl_mlr, pm25_bl_tem : ndarray, shape (time, pixels), float32
        Eqs. 2, 3 and 4 (``pm25_bl_tem`` with the level kept when ``keep_level``, :func:`restore_level`);
        NaN for pixels not analysed (no value on any day); ``pm25_bl_mlr`` and ``pm25_bl_tem`` also NaN
        for analysed pixels outside ``fit``.
    coef : ndarray, shape (pixels, k + 1), float32
        ``a0`` then ``a1 .. ak`` (eq. 3); NaN where not fitted.
    r2 : ndarray, shape (pixels,), float32
        Coefficient of determination of the regression; NaN where not fitted.
    short_term_level : ndarray, shape (pixels, years), float32
        Mean of the short-term component ``R = series - pm25_bl`` (eq. 1) of every analysed pixel on the
        days of each year (``level_by_year``) or over the whole record (the same value in every column);
        NaN for pixels not analysed.
    """

    pm25_bl: np.ndarray
    pm25_bl_mlr: np.ndarray
    pm25_bl_tem: np.ndarray
    coef: np.ndarray
    r2: np.ndarray
    short_term_level: np.ndarray


def short_term_level(residual: np.ndarray, year_of_day: np.ndarray, by_year: bool) -> np.ndarray:
    """Mean of the STL short-term component ``R`` (``residual``, (pixels, time)) per pixel on the days of
    each year (``by_year``) or over the record, as (pixels, years) with ``years = year_of_day.max() + 1``."""
    n_years = int(year_of_day.max()) + 1
    if not by_year:
        return np.repeat(residual.mean(axis=1, keepdims=True), n_years, axis=1)
    days = np.bincount(year_of_day, minlength=n_years).astype(np.float64)
    member = np.zeros((year_of_day.size, n_years))
    member[np.arange(year_of_day.size), year_of_day] = 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return (residual @ member) / days[None, :]


def restore_level(bl_tem: np.ndarray, level: np.ndarray, year_of_day: np.ndarray, keep_level: bool) -> np.ndarray:
    """``keep_level``: ``pm25_bl_tem`` keeps the level of the pixel's PM2.5 series — the regression's mean
    (added back by :func:`~ihs_hpc.ops.mlr.remove_met` / :func:`~ihs_hpc.ops.mlr.apply_met`) and the level
    the STL short-term component took with it (:func:`short_term_level`).

    Parameters
    ----------
    bl_tem : ndarray, shape (pixels, time)
        Eq. 4's met-removed baseline with the regression's mean added back.
    level : ndarray, shape (pixels, years)
        Mean of ``series - pm25_bl`` per pixel and year (:func:`short_term_level`).
    year_of_day : ndarray of int, shape (time,)
        Column of ``level`` of each day.
    keep_level : bool
        Without it ``bl_tem`` is returned unchanged.
    """
    if keep_level:
        bl_tem = bl_tem + level[:, year_of_day]
    return bl_tem


def remove_met_block(series: np.ndarray, met_rows, index: np.ndarray, weight: np.ndarray, *, keep_level: bool = True,
                     fit: np.ndarray | None = None, chunk: int | None = None, year_of_day: np.ndarray | None = None,
                     level_by_year: bool = False, **stl_settings) -> MetRemovalBlock:
    """Eqs. 2–4 for every pixel of a block, in chunks of pixels.

    Parameters
    ----------
    series : ndarray, shape (time, pixels)
        PM2.5 of the block, time-major (a tile read from a store, reshaped ``(time, ny * nx)``).
        A pixel is analysed when it has a value on some day; analysed pixels must be complete.
    met_rows : sequence of ndarray, each shape (n_src, time)
        The meteorological baselines, one array per regressor, one source cell per row.
    index, weight : ndarray, shape (pixels, 4)
        Bilinear corners of every pixel in the rows of ``met_rows``
        (:func:`ihs_hpc.ops.interp.bilinear_weights`).
    keep_level : bool
        Keep the level of the pixel's series in ``pm25_bl_tem`` (:func:`restore_level`).
    fit : ndarray of bool, shape (pixels,), optional
        Pixels fitted (eqs. 3–4) on their whole series; the other analysed pixels get only ``pm25_bl``
        and ``short_term_level``. Default: every analysed pixel.
    chunk : int, optional
        Pixels per chunk (default :data:`DEFAULT_CHUNK`).
    year_of_day : ndarray of int, shape (time,), optional
        Year (0, 1, …) of each day; default: one year.
    level_by_year : bool
        The level of ``R`` kept is its mean over each year instead of the record (:func:`short_term_level`).
    **stl_settings
        :func:`ihs_hpc.ops.stl.stl_baseline` keywords (``period`` required).

    Returns
    -------
    MetRemovalBlock
    """
    from ..kernels.layout import gather_series, scatter_series3

    series = np.asarray(series)
    if series.ndim != 2:
        raise ValueError(f"series must be (time, pixels), got shape {series.shape}")
    n_time, n_pixels = series.shape
    k = len(met_rows)
    if index.shape != (n_pixels, 4) or weight.shape != (n_pixels, 4):
        raise ValueError(f"index and weight must be ({n_pixels}, 4), got {index.shape} and {weight.shape}")
    rows = np.ascontiguousarray(np.stack([np.asarray(r) for r in met_rows]), dtype=np.float64)
    if rows.ndim != 3 or rows.shape[2] != n_time:
        raise ValueError(f"met_rows must each be (cells, {n_time}), got shapes {[np.shape(r) for r in met_rows]}")
    chunk = int(chunk or DEFAULT_CHUNK)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if fit is not None:
        fit = np.asarray(fit, dtype=bool)
        if fit.shape != (n_pixels,):
            raise ValueError(f"fit must be a ({n_pixels},) boolean mask, got shape {fit.shape}")

    def cube():
        return np.full((n_time, n_pixels), np.nan, dtype=np.float32)

    out_bl, out_fit, out_tem = cube(), cube(), cube()
    coef = np.full((n_pixels, k + 1), np.nan, dtype=np.float32)
    r2 = np.full(n_pixels, np.nan, dtype=np.float32)
    year_of_day = np.zeros(n_time, dtype=np.int64) if year_of_day is None else np.asarray(year_of_day, dtype=np.int64)
    if year_of_day.shape != (n_time,) or (n_time and year_of_day.min() < 0):
        raise ValueError(f"year_of_day must be ({n_time},) non-negative integers, got shape {year_of_day.shape}")
    levels = np.full((n_pixels, int(year_of_day.max(initial=0)) + 1), np.nan, dtype=np.float32)
    analysed = np.flatnonzero(np.isfinite(series).any(axis=0))
    width = min(chunk, analysed.size)
    y_buffer = np.empty((width, n_time))
    for start in range(0, analysed.size, chunk):
        columns = analysed[start:start + chunk]
        y = y_buffer[:columns.size]
        gather_series(series, columns, y)  # the chunk's series, one per row, float64
        baseline = stl_baseline(y, **stl_settings)  # eq. 2
        level = short_term_level(y - baseline, year_of_day, level_by_year)  # mean of R (eq. 1), per year or record
        levels[columns] = level
        own = np.ones(columns.size, dtype=bool) if fit is None else fit[columns]
        # eqs. 3 and 4, each pixel's regressors interpolated as it is fitted (never stored)
        if own.all():
            tem, result = remove_met_bilinear(baseline, rows, index[columns], weight[columns], keep_level=keep_level)
            fitted = result.fitted
        else:  # pixels outside `fit`: their baseline only, NaN fit and met-removed baseline
            fitted, tem = np.full_like(baseline, np.nan), np.full_like(baseline, np.nan)
            if own.any():
                mine = columns[own]
                tem[own], result = remove_met_bilinear(baseline[own], rows, index[mine], weight[mine],
                                                       keep_level=keep_level)
                fitted[own] = result.fitted
        tem = restore_level(tem, level, year_of_day, keep_level)
        scatter_series3(baseline, fitted, tem, columns, out_bl, out_fit, out_tem)  # back to time-major float32
        if own.any():
            coef[columns[own]] = result.coef
            r2[columns[own]] = result.r2
    return MetRemovalBlock(pm25_bl=out_bl, pm25_bl_mlr=out_fit, pm25_bl_tem=out_tem, coef=coef, r2=r2,
                           short_term_level=levels)


def warm(n_time: int, stl_settings: dict, k: int) -> None:
    """Load what :func:`remove_met_block` needs in this process: the STL operator for ``n_time`` days (from
    the disk cache) and the compiled kernels of the rest (a call on a few tiny series)."""
    from ..kernels.layout import gather_series, scatter_series3
    from .interp import apply_bilinear_rows
    from .stl_operator import get_stl_operator

    if not stl_settings.get("robust"):
        get_stl_operator(n_time, **stl_settings).factors("baseline")
    t = np.arange(16.0)
    y = np.stack([np.sin(t), np.cos(t)]) + t
    rows = np.stack([np.stack([t * (j + 1), t ** 2 / (j + 1), np.sqrt(t + j), np.cos(t * j)]) for j in range(k)])
    index = np.tile(np.arange(4, dtype=np.int64), (2, 1))
    remove_met_bilinear(y, rows, index, np.full((2, 4), 0.25), keep_level=True)
    apply_bilinear_rows(rows, index, np.full((2, 4), 0.25))  # met_fit: background's pass over IHS areas
    cube = np.zeros((16, 2), dtype=np.float32)
    columns = np.arange(2, dtype=np.int64)
    gather_series(cube, columns, y)
    scatter_series3(y, y, y, columns, cube, cube, cube)
