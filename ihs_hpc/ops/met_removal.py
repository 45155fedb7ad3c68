"""Stage 2's computation for a block of pixels: baseline, regression on meteorology, met-removed baseline.

Seed 000 §2.3.3 (DOI 10.3390/atmos15010131), for every pixel series of a tile:

* eq. 2: ``pm25_bl = T + S``, the non-robust STL baseline (:func:`ihs_hpc.ops.stl.stl_baseline`);
* eq. 3: ``pm25_bl_mlr = a0 + sum_i a_i met_bl_i``, the per-pixel regression on the meteorological
  baselines interpolated bilinearly to the pixel (:func:`ihs_hpc.ops.mlr.mlr`);
* eq. 4: ``pm25_bl_tem = pm25_bl - pm25_bl_mlr`` (:func:`ihs_hpc.ops.mlr.remove_met`).

:func:`remove_met_block` runs these in chunks of pixels, each pixel's regressors interpolated from the
coarse baselines as it is fitted (:func:`ihs_hpc.ops.mlr.mlr_bilinear`), so a 64 × 64 tile of ten
years never holds its ``(pixels, 6, days)`` float64 regressors (700 MB): the working set is a few tens of
MB, reused chunk after chunk, instead of gigabytes allocated and page-faulted per tile.
The results are those of the whole-tile computation (each pixel's numbers do not depend on the chunk).

With ``keep_level`` the met-removed baseline keeps the level of the pixel's PM2.5 series: it is
``pm25_bl - pm25_bl_mlr``, plus the mean of ``pm25_bl_mlr`` (the regression's mean, as
:func:`ihs_hpc.ops.mlr.remove_met` adds it back), plus the mean of the STL short-term component ``R`` of
eq. 1 (series minus baseline, :func:`short_term_level`) on the day's year or, without ``level_by_year``,
over the record (the *kept level*; added in that order, in one pass with the transpose back to the
cube, :func:`ihs_hpc.kernels.layout.scatter_met_removed`). A trend window of about a year cannot follow a source that
starts or stops: the step is spread over the neighbouring years and the part it misses stays in ``R``,
whose yearly mean keeps it (``stage2.level_window: year``). ``fit`` restricts eqs. 3–4 to some pixels
(stage 2's ``met_fit: background`` fits only the background pixels on their whole series; the others get
their baseline here and their coefficients elsewhere).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mlr import mlr_bilinear
from .stl import stl_baseline

__all__ = ["MetRemovalBlock", "remove_met_block", "apply_met_block", "short_term_level", "DEFAULT_CHUNK"]

#: pixels per chunk: 512 series of 3652 days in float64 = 15 MB (fastest of 128..4096 on a 64 × 64 tile)
DEFAULT_CHUNK = 512
#: days per block of :func:`apply_met_block`: 128 rows of a 64 x 64 tile's two float32 outputs are 4 MB
DAY_BLOCK = 128


@dataclass(frozen=True)
class MetRemovalBlock:
    """Stage-2 outputs of a block of pixels, time-major ``(time, pixels)`` float32 cubes and maps.

    Attributes
    ----------
    pm25_bl, pm25_bl_mlr, pm25_bl_tem : ndarray, shape (time, pixels), float32
        Eqs. 2, 3 and 4 (``pm25_bl_tem`` with the kept level when ``keep_level``, see the module docstring);
        NaN for pixels not analysed (no value on any day); ``pm25_bl_mlr`` and ``pm25_bl_tem`` also NaN
        for analysed pixels outside ``fit``, and ``None`` when not asked for (``met_removed=False``).
    coef : ndarray, shape (pixels, k + 1), float64
        ``a0`` then ``a1 .. ak`` (eq. 3); NaN where not fitted.
    r2 : ndarray, shape (pixels,), float32
        Coefficient of determination of the regression; NaN where not fitted.
    short_term_level : ndarray, shape (pixels, years), float32
        Mean of the short-term component ``R = series - pm25_bl`` (eq. 1) of every analysed pixel on the
        days of each year (``level_by_year``) or over the whole record (the same value in every column);
        NaN for pixels not analysed.
    """

    pm25_bl: np.ndarray
    pm25_bl_mlr: np.ndarray | None
    pm25_bl_tem: np.ndarray | None
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


def _met_removed_to_cube(bl, fitted, level, year_of_day, keep_level, columns, out_fitted, out_removed) -> None:
    """Eq. 4 with the kept level (module docstring), written time-major with eq. 3's fitted part:
    ``bl - fitted``, plus the mean of ``fitted`` and ``level`` of the day's year when ``keep_level``."""
    from ..kernels.layout import scatter_met_removed

    offset = fitted.mean(axis=1) if keep_level else np.zeros(len(fitted))
    scatter_met_removed(np.ascontiguousarray(bl, dtype=np.float64), np.ascontiguousarray(fitted), offset,
                        np.ascontiguousarray(level, dtype=np.float64), year_of_day, bool(keep_level),
                        np.asarray(columns, dtype=np.int64), out_fitted, out_removed)


def _cube_nan_outside(n_time: int, n_pixels: int, written: np.ndarray) -> np.ndarray:
    """An uninitialised time-major ``(time, pixels)`` float32 cube, NaN in the columns that ``written`` (a
    boolean mask) leaves out: the caller writes every other column, so the cube is never filled twice."""
    out = np.empty((n_time, n_pixels), dtype=np.float32)
    if not written.all():
        out[:, ~written] = np.nan
    return out


def _year_index(year_of_day, n_time: int) -> np.ndarray:
    year_of_day = np.zeros(n_time, dtype=np.int64) if year_of_day is None else np.asarray(year_of_day, dtype=np.int64)
    if year_of_day.shape != (n_time,) or (n_time and year_of_day.min() < 0):
        raise ValueError(f"year_of_day must be ({n_time},) non-negative integers, got shape {year_of_day.shape}")
    return year_of_day


def _met_rows(met_rows, n_time: int) -> np.ndarray:
    rows = np.ascontiguousarray(np.stack([np.asarray(r) for r in met_rows]), dtype=np.float64)
    if rows.ndim != 3 or rows.shape[2] != n_time:
        raise ValueError(f"met_rows must each be (cells, {n_time}), got shapes {[np.shape(r) for r in met_rows]}")
    return rows


def remove_met_block(series: np.ndarray, met_rows, index: np.ndarray, weight: np.ndarray, *, keep_level: bool = True,
                     fit: np.ndarray | None = None, chunk: int | None = None, year_of_day: np.ndarray | None = None,
                     level_by_year: bool = False, met_removed: bool = True, analysed: np.ndarray | None = None,
                     **stl_settings) -> MetRemovalBlock:
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
        Keep the level of the pixel's series in ``pm25_bl_tem`` (the kept level, module docstring).
    fit : ndarray of bool, shape (pixels,), optional
        Pixels fitted (eq. 3) on their whole series; the other analysed pixels get only ``pm25_bl``
        and ``short_term_level``. Default: every analysed pixel.
    chunk : int, optional
        Pixels per chunk (default :data:`DEFAULT_CHUNK`).
    year_of_day : ndarray of int, shape (time,), optional
        Year (0, 1, …) of each day; default: one year.
    level_by_year : bool
        The level of ``R`` kept is its mean over each year instead of the record (:func:`short_term_level`).
    met_removed : bool
        Also return eq. 3 evaluated and eq. 4 (``pm25_bl_mlr``, ``pm25_bl_tem``); without it only the
        baseline, the coefficients and the levels (stage 2's ``met_fit: background`` evaluates eqs. 3–4
        later, once every pixel has its coefficients: :func:`apply_met_block`).
    analysed : ndarray of bool, shape (pixels,), optional
        Which pixels have a value on some day, when the caller knows already (stage 2's tile reader
        checks it); found from ``series`` otherwise.
    **stl_settings
        :func:`ihs_hpc.ops.stl.stl_baseline` keywords (``period`` required).

    Returns
    -------
    MetRemovalBlock
    """
    from ..kernels.layout import gather_series, scatter_series

    series = np.asarray(series)
    if series.ndim != 2:
        raise ValueError(f"series must be (time, pixels), got shape {series.shape}")
    n_time, n_pixels = series.shape
    k = len(met_rows)
    if index.shape != (n_pixels, 4) or weight.shape != (n_pixels, 4):
        raise ValueError(f"index and weight must be ({n_pixels}, 4), got {index.shape} and {weight.shape}")
    rows = _met_rows(met_rows, n_time)
    chunk = int(chunk or DEFAULT_CHUNK)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if fit is not None:
        fit = np.asarray(fit, dtype=bool)
        if fit.shape != (n_pixels,):
            raise ValueError(f"fit must be a ({n_pixels},) boolean mask, got shape {fit.shape}")

    def cube():
        return np.full((n_time, n_pixels), np.nan, dtype=np.float32)

    if analysed is None:
        analysed = np.isfinite(series).any(axis=0)
    analysed = np.asarray(analysed, dtype=bool)
    if analysed.shape != (n_pixels,):
        raise ValueError(f"analysed must be a ({n_pixels},) boolean mask, got shape {analysed.shape}")
    out_bl = _cube_nan_outside(n_time, n_pixels, analysed)  # every analysed column is written below
    analysed = np.flatnonzero(analysed)
    out_fit, out_tem = (cube(), cube()) if met_removed else (None, None)
    coef = np.full((n_pixels, k + 1), np.nan)
    r2 = np.full(n_pixels, np.nan, dtype=np.float32)
    year_of_day = _year_index(year_of_day, n_time)
    levels = np.full((n_pixels, int(year_of_day.max(initial=0)) + 1), np.nan, dtype=np.float32)
    width = min(chunk, analysed.size)
    y_buffer = np.empty((width, n_time))
    for start in range(0, analysed.size, chunk):
        columns = analysed[start:start + chunk]
        y = y_buffer[:columns.size]
        gather_series(series, columns, y)  # the chunk's series, one per row, float64
        baseline = stl_baseline(y, **stl_settings)  # eq. 2
        level = short_term_level(y - baseline, year_of_day, level_by_year)  # mean of R (eq. 1), per year or record
        levels[columns] = level
        scatter_series(baseline, columns, out_bl)  # back to time-major float32
        own = np.ones(columns.size, dtype=bool) if fit is None else fit[columns]
        if not own.any():
            continue
        every = own.all()
        mine = columns if every else columns[own]
        bl_own = baseline if every else baseline[own]
        # eq. 3, each pixel's regressors interpolated as it is fitted (never stored)
        result = mlr_bilinear(bl_own, rows, index[mine], weight[mine])
        coef[mine] = result.coef
        r2[mine] = result.r2
        if met_removed:  # eq. 4 and the level kept, written with eq. 3's fitted part
            _met_removed_to_cube(bl_own, result.fitted, level if every else level[own], year_of_day, keep_level,
                                 mine, out_fit, out_tem)
    return MetRemovalBlock(pm25_bl=out_bl, pm25_bl_mlr=out_fit, pm25_bl_tem=out_tem, coef=coef, r2=r2,
                           short_term_level=levels)


def apply_met_block(pm25_bl: np.ndarray, met_rows, index: np.ndarray, weight: np.ndarray, coef: np.ndarray,
                    level: np.ndarray, columns: np.ndarray, *, keep_level: bool = True,
                    year_of_day: np.ndarray | None = None, chunk: int | None = None, fitted: bool = True,
                    removed: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Eqs. 3–4 with given coefficients for some pixels of a block, time-major in and out.

    ``pm25_bl_mlr = a0 + sum_i a_i met_bl_i`` (eq. 3 evaluated, each pixel's regressors interpolated
    bilinearly, never stored: what :func:`~ihs_hpc.ops.mlr.apply_met` computes on materialised regressors)
    and ``pm25_bl_tem = pm25_bl - pm25_bl_mlr`` (eq. 4), with the level kept as :func:`remove_met_block`
    keeps it (module docstring). The pixels inside one coarse cell share their corners and are
    evaluated together as one matrix product, time-major like the cubes, so nothing is transposed.

    Parameters
    ----------
    pm25_bl : ndarray, shape (time, pixels)
        Baselines of the block (eq. 2), time-major. With ``removed=False`` only its shape is used.
    met_rows, index, weight
        As :func:`remove_met_block`; ``index`` and ``weight`` are ``(len(columns), 4)``, for the listed pixels.
    coef : ndarray, shape (len(columns), k + 1)
        ``a0`` then ``a1 .. ak`` of each listed pixel.
    level : ndarray, shape (len(columns), years)
        Mean of the STL short-term component per year of each listed pixel (:func:`short_term_level`).
    columns : ndarray of int, shape (n,)
        The pixels (columns of ``pm25_bl``) to evaluate.
    keep_level, year_of_day, chunk
        As :func:`remove_met_block`.
    fitted, removed : bool
        Return eq. 3 evaluated (``pm25_bl_mlr``), eq. 4 (``pm25_bl_tem``); ``None`` in its place when not
        asked for, and then never allocated (stage 2 stores ``pm25_bl_tem`` alone: eq. 3 is derived on read
        from the coefficients, :func:`ihs_hpc.pipeline.stage2.met_explained_tile`, which asks only for it).

    Returns
    -------
    pm25_bl_mlr, pm25_bl_tem : ndarray, shape (time, pixels), float32, or None
        NaN outside ``columns``.
    """
    from ..kernels.layout import put_met_removed

    pm25_bl = np.asarray(pm25_bl)
    if pm25_bl.ndim != 2:
        raise ValueError(f"pm25_bl must be (time, pixels), got shape {pm25_bl.shape}")
    n_time, n_pixels = pm25_bl.shape
    columns = np.asarray(columns, dtype=np.int64)
    n = columns.size
    rows = _met_rows(met_rows, n_time)
    if index.shape != (n, 4) or weight.shape != (n, 4) or coef.shape != (n, rows.shape[0] + 1):
        raise ValueError(f"index, weight and coef must be ({n}, 4), ({n}, 4) and ({n}, {rows.shape[0] + 1}), got "
                         f"{index.shape}, {weight.shape} and {coef.shape}")
    if n and (columns.min() < 0 or columns.max() >= n_pixels):
        raise ValueError(f"columns must lie in 0..{n_pixels - 1}")
    year_of_day = _year_index(year_of_day, n_time)
    level = np.ascontiguousarray(level, dtype=np.float64)
    chunk = int(chunk or DEFAULT_CHUNK)
    if not (fitted or removed):
        raise ValueError("apply_met_block: ask for eq. 3 (fitted=True), eq. 4 (removed=True) or both")
    listed = np.zeros(n_pixels, dtype=bool)
    listed[columns] = True
    out_fit = _cube_nan_outside(n_time, n_pixels, listed) if fitted else None
    out_tem = _cube_nan_outside(n_time, n_pixels, listed) if removed else None
    # eq. 3 not asked for with eq. 4: written into one block of days, reused (never a whole cube)
    scratch = None if fitted else np.empty((min(DAY_BLOCK, n_time), n_pixels), dtype=np.float32)
    if n == 0:
        return out_fit, out_tem
    # eq. 3 evaluated for the pixels inside one coarse cell (the same corners) at once: S.T @ B.T + a0,
    # S the k x corners series of the corners, B[p, (j, c)] = a_j * weight[p, c] (the sum regrouped); in
    # blocks of days, so that the rows of the outputs being filled stay in cache until every cell wrote them
    k = rows.shape[0]
    mixed = (coef[:, 1:, None] * weight[:, None, :]).reshape(n, k * 4)
    corners, group = np.unique(index, axis=0, return_inverse=True)
    order = np.argsort(group.ravel(), kind="stable")
    starts = np.searchsorted(group.ravel()[order], np.arange(len(corners) + 1))
    cells = []
    for g, corner in enumerate(corners):
        series = np.ascontiguousarray(rows[:, corner, :].reshape(k * 4, n_time).T)  # S.T, (time, k x corners)
        series_mean = series.mean(axis=0)
        for start in range(starts[g], starts[g + 1], chunk):
            members = order[start:min(start + chunk, starts[g + 1])]
            a0 = coef[members, 0]
            # the mean of eq. 3 over the record, added back with the level (keep_level)
            offset = a0 + mixed[members] @ series_mean if keep_level else np.zeros(members.size)
            cells.append((series, np.ascontiguousarray(mixed[members].T), a0, offset, level[members],
                          columns[members]))
    for t0 in range(0, n_time, DAY_BLOCK):
        days = slice(t0, min(t0 + DAY_BLOCK, n_time))
        fit_days = out_fit[days] if fitted else scratch[:days.stop - t0]
        tem_days = out_tem[days] if removed else None
        for series, mixed_t, a0, offset, cell_level, cell_columns in cells:
            values = series[days] @ mixed_t  # (days, members)
            values += a0
            if removed:
                put_met_removed(pm25_bl[days], values, offset, cell_level, year_of_day[days], bool(keep_level),
                                cell_columns, fit_days, tem_days)  # eq. 4 and the level kept
            else:
                fit_days[:, cell_columns] = values
    return out_fit, out_tem


def warm(n_time: int, stl_settings: dict, k: int) -> None:
    """Load what :func:`remove_met_block` needs in this process: the STL operator for ``n_time`` days (from
    the disk cache) and the compiled kernels of the rest (a call on a few tiny series)."""
    from ..kernels.layout import gather_series, scatter_series
    from .stl_operator import get_stl_operator

    if not stl_settings.get("robust"):
        get_stl_operator(n_time, **stl_settings).factors("baseline")
    t = np.arange(16.0)
    y = np.stack([np.sin(t), np.cos(t)]) + t
    rows = np.stack([np.stack([t * (j + 1), t ** 2 / (j + 1), np.sqrt(t + j), np.cos(t * j)]) for j in range(k)])
    index = np.tile(np.arange(4, dtype=np.int64), (2, 1))
    weight = np.full((2, 4), 0.25)
    result = mlr_bilinear(y, rows, index, weight)
    cube = np.zeros((16, 2), dtype=np.float32)
    columns = np.arange(2, dtype=np.int64)
    gather_series(cube, columns, y)
    scatter_series(y, columns, cube)
    _met_removed_to_cube(y, result.fitted, np.zeros((2, 1)), np.zeros(16, dtype=np.int64), True, columns, cube, cube)
    # met_fit: background's pass over the IHS areas
    apply_met_block(cube, rows, index, weight, result.coef, np.zeros((2, 1)), columns)
