"""The error of the stage-3 fill, measured where the answer is known (beyond seed 000; issue 13).

Stage 3 fills every IHS area with background PM2.5 kriged from outside it, and the IHS-related PM2.5
is what the fill leaves over (eq. 10). How wrong the fill can be is measured on *placements*: the
whole IHS mask moved by a shift ``(dy, dx)`` into the background, whose values are hidden together
with the real IHS areas and kriged exactly as stage 3 kriges them. The moved areas keep the sizes,
outlines and spacing of the real ones, so the annual-mean error of any group of IHS pixels (a city's
IHS areas, one source's area, an overlap cluster) is read off each placement at the same pixels
moved by its shift: that carries the error's spatial and day-to-day correlation into the
aggregate without a model of either.

With ``e = fill − observed`` on a placement, an estimate ``x = observed − fill`` inside a real area
misses its truth by ``−e``, so the interval of an annual figure is ``x + quantile(e)`` over the
placements' replicates (:func:`error_interval`).

The placements are drawn at random, the real areas are not: plants sit next to towns and on valley
floors. Where a covariate the fill sees only from outside a hole differs inside it (a town's
settlement density under the area, a valley's elevation; :func:`covariate_contrast`), the fill errs
more. The placements' errors are therefore moved to the real areas' conditions by a scale model
(normalised, or locally weighted, conformal prediction: Papadopoulos et al. 2008, *Tools with
Artificial Intelligence* 2, 388; Lei et al. 2018, *JASA* 113, 1094): the mean absolute error of a
pixel is fitted on the placements as ``s = a + Σ_j b_j |c_j|`` over the covariates' contrasts ``c_j``
(non-negative least squares, :func:`fit_error_scale`), and every placement's error at a pixel is
multiplied by ``s`` at the real pixel over ``s`` at the placement's (:func:`rescale_to_areas`).

Numpy only (and stage 3's kriging for the covariates' contrast): the pipeline
(:mod:`ihs_hpc.pipeline.fill_error`) does the kriging and the stores.
"""
from __future__ import annotations

import numpy as np

__all__ = ["shift_map", "placement_shifts", "placement_mask", "annual_error_maps", "group_replicates",
           "error_interval", "covariate_contrast", "placement_contrast", "fit_error_scale", "error_scale",
           "rescale_to_areas"]


def shift_map(values: np.ndarray, dy: int, dx: int, fill=np.nan) -> np.ndarray:
    """``values`` moved by ``(dy, dx)`` cells: ``out[r + dy, c + dx] = values[r, c]``, ``fill`` where
    nothing moved in (the last two axes are the grid's)."""
    values = np.asarray(values)
    out = np.full_like(values, fill)
    ny, nx = values.shape[-2:]
    dy, dx = int(dy), int(dx)
    r0, r1 = max(0, dy), min(ny, ny + dy)
    c0, c1 = max(0, dx), min(nx, nx + dx)
    if r1 > r0 and c1 > c0:
        out[..., r0:r1, c0:c1] = values[..., r0 - dy:r1 - dy, c0 - dx:c1 - dx]
    return out


def placement_mask(mask: np.ndarray, valid: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The pixels of ``mask`` moved by ``(dy, dx)`` that are background: valid and outside ``mask``."""
    mask = np.asarray(mask, dtype=bool)
    return shift_map(mask, dy, dx, False) & ~mask & np.asarray(valid, dtype=bool)


def placement_shifts(mask: np.ndarray, valid: np.ndarray, n: int, *, seed: int, min_shift: float = 8.0,
                     min_available: float = 0.4, max_tries: int = 10_000, at_least: int | None = None) -> np.ndarray:
    """Up to ``n`` seeded shifts ``(dy, dx)`` of the IHS ``mask``, as an ``(m, 2)`` int array.

    Each shift is drawn uniformly in direction and in length between ``min_shift`` cells and a third
    of the grid's longer side, and kept when the moved mask lands on background (:func:`placement_mask`)
    for at least ``min_available`` of the mask's pixels; shifts are distinct.

    Raises
    ------
    ValueError
        When fewer than ``at_least`` (default ``n``) such shifts exist among ``max_tries`` draws (an IHS
        mask covering most of the grid leaves no background to move it into).
    """
    mask = np.asarray(mask, dtype=bool)
    if n < 1:
        raise ValueError(f"the number of placements must be >= 1, got {n}")
    size = int(mask.sum())
    if size == 0:
        raise ValueError("placement_shifts: the IHS mask is empty")
    ny, nx = mask.shape
    longest = max(ny, nx) / 3.0
    if longest < min_shift:
        raise ValueError(f"a {ny} x {nx} grid is too small for shifts of at least {min_shift} cells")
    rng = np.random.default_rng([int(seed), 0xF111])
    shifts: list[tuple[int, int]] = []
    for _ in range(int(max_tries)):
        if len(shifts) == n:
            break
        length, angle = rng.uniform(min_shift, longest), rng.uniform(0.0, 2.0 * np.pi)
        dy, dx = int(round(length * np.sin(angle))), int(round(length * np.cos(angle)))
        if (dy, dx) in shifts:
            continue
        if placement_mask(mask, valid, dy, dx).sum() >= min_available * size:
            shifts.append((dy, dx))
    if len(shifts) < (n if at_least is None else at_least):
        raise ValueError(f"found only {len(shifts)} of {n} placements of the IHS mask ({size} pixels) with "
                         f">= {min_available:.0%} of it on background in {max_tries} tries; lower "
                         f"stage3.fill_error.placements or min_available")
    return np.asarray(shifts, dtype=np.int64).reshape(len(shifts), 2)


def annual_error_maps(sums: np.ndarray, counts: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Annual-mean fill error of every placement, moved back onto the real IHS pixels.

    Parameters
    ----------
    sums, counts : (placements, years, ny, nx) arrays
        Sum and number of the daily errors ``fill − observed`` at each placement's pixels.
    shifts : (placements, 2) int array

    Returns
    -------
    (placements, years, ny, nx) float32 array: ``out[m, y, r, c]`` is the mean error at
    ``(r + dy_m, c + dx_m)``; NaN where that pixel was not in placement ``m`` or had no day.
    """
    sums = np.asarray(sums, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / counts, np.nan)
    return np.stack([shift_map(mean[m], -dy, -dx) for m, (dy, dx) in enumerate(np.asarray(shifts))]).astype(
        np.float32)


def group_replicates(errors: np.ndarray, pixels: np.ndarray, *, min_fraction: float = 0.3) -> np.ndarray:
    """Mean error of one pixel group in every replicate.

    Parameters
    ----------
    errors : (replicates, ny * nx) array
        Annual error maps (:func:`annual_error_maps`, placements × years flattened).
    pixels : int array
        Flat indices of the group's pixels.
    min_fraction : float
        A replicate holding values at fewer of the group's pixels is NaN.
    """
    pixels = np.asarray(pixels, dtype=np.int64)
    if pixels.size == 0:
        return np.full(len(errors), np.nan)
    values = np.asarray(errors)[:, pixels]
    present = np.isfinite(values).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(values, axis=1) / present
    mean[present < min_fraction * pixels.size] = np.nan
    return mean


def error_interval(estimate, replicates: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """``estimate + quantile(replicates)`` at ``(1 − level) / 2`` and ``(1 + level) / 2`` along the last
    axis of ``replicates`` (NaN replicates left out; NaN where none is left)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    replicates = np.asarray(replicates, dtype=np.float64)
    alpha = (1.0 - level) / 2.0
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanquantile(replicates, [alpha, 1.0 - alpha], axis=-1)
    estimate = np.asarray(estimate, dtype=np.float64)
    return estimate + lo, estimate + hi


def covariate_contrast(covariates: np.ndarray, hidden: np.ndarray, data: np.ndarray, lat, lon, *,
                       k: int = 16) -> np.ndarray:
    """What a fill from outside ``hidden`` cannot see of each covariate.

    Parameters
    ----------
    covariates : (p, ny, nx) array
        Covariate maps, finite everywhere (e.g. stage 3's standardised drift covariates).
    hidden : (ny, nx) bool
        The pixels a fill estimates from outside.
    data : (ny, nx) bool
        The pixels it estimates them from (background with data, outside ``hidden``).
    lat, lon : 1-D arrays
        Grid coordinates.
    k : int
        Neighbours of the ordinary kriging (:func:`ihs_hpc.ops.gapfill.fill_gaps`).

    Returns
    -------
    (p, ny, nx) float64: ``c = x − x̂`` on ``hidden``, ``x̂`` the ordinary kriging of the covariate from
    its ``k`` nearest ``data`` pixels; NaN elsewhere.
    """
    from .gapfill import fill_gaps

    covariates = np.asarray(covariates, dtype=np.float64)
    hidden = np.asarray(hidden, dtype=bool)
    data = np.asarray(data, dtype=bool) & ~hidden
    out = np.full(covariates.shape, np.nan)
    if not hidden.any() or data.sum() < 2:
        return out
    for j, x in enumerate(covariates):
        filled, _ = fill_gaps(np.where(data, x, np.nan), lat, lon, k=k, fill_mask=hidden)
        out[j] = np.where(hidden, x - filled, np.nan)
    return out


def placement_contrast(covariates: np.ndarray, mask: np.ndarray, valid: np.ndarray, shifts, lat, lon, *,
                       k: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The covariates' contrast (:func:`covariate_contrast`) at the real IHS pixels and at every placement.

    Returns
    -------
    real : (p, ny, nx)
        Contrast on the real ``mask`` hidden alone (as stage 3 fills it).
    moved : (placements, p, ny, nx)
        Contrast on each placement's pixels, hidden together with the real mask (as
        :mod:`ihs_hpc.pipeline.fill_error` kriges them), moved back onto the real IHS pixels like
        :func:`annual_error_maps`.
    """
    mask, valid = np.asarray(mask, dtype=bool), np.asarray(valid, dtype=bool)
    real = covariate_contrast(covariates, mask, valid, lat, lon, k=k)
    moved = np.full((len(shifts),) + real.shape, np.nan)
    for m, (dy, dx) in enumerate(np.asarray(shifts, dtype=np.int64)):
        target = placement_mask(mask, valid, dy, dx)
        part = covariate_contrast(covariates, mask | target, valid, lat, lon, k=k)
        moved[m] = shift_map(np.where(target, part, np.nan), -dy, -dx)
    return real, moved


def fit_error_scale(abs_error: np.ndarray, contrast: np.ndarray) -> np.ndarray:
    """Coefficients ``(a, b_1, …, b_p) ≥ 0`` of ``|e| ≈ a + Σ_j b_j |c_j|`` by non-negative least squares.

    Parameters
    ----------
    abs_error : (n,) array
        Absolute errors (e.g. of every placement pixel's mean over the years).
    contrast : (n, p) array
        The covariates' contrast at the same pixels.
    """
    from scipy.optimize import nnls

    abs_error = np.asarray(abs_error, dtype=np.float64)
    design = np.column_stack([np.ones(abs_error.size), np.abs(np.asarray(contrast, dtype=np.float64))])
    keep = np.isfinite(abs_error) & np.isfinite(design).all(axis=1)
    if keep.sum() < design.shape[1] + 1:
        raise ValueError(f"fit_error_scale: {int(keep.sum())} finite rows for {design.shape[1]} coefficients")
    coef, _ = nnls(design[keep], abs_error[keep])
    return coef


def error_scale(coef: np.ndarray, contrast: np.ndarray, axis: int = 0) -> np.ndarray:
    """The fitted scale ``a + Σ_j b_j |c_j|`` (:func:`fit_error_scale`'s ``coef``) of contrast maps whose
    covariates run along ``axis``."""
    return coef[0] + np.tensordot(coef[1:], np.abs(contrast), axes=([0], [axis]))


def rescale_to_areas(errors: np.ndarray, real: np.ndarray, moved: np.ndarray, *,
                     floor_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The placements' error maps scaled to the conditions of the real IHS pixels (see the module doc).

    Parameters
    ----------
    errors : (placements, years, ny, nx) array
        Annual error maps on the real IHS pixels (:func:`annual_error_maps`).
    real, moved : arrays
        Contrast at the real pixels ``(p, ny, nx)`` and at each placement's ``(placements, p, ny, nx)``
        (:func:`placement_contrast`).
    floor_fraction : float
        A placement pixel's scale is at least this fraction of the placements' mean scale (a fit with
        no intercept cannot divide by 0).

    Returns
    -------
    scaled : (placements, years, ny, nx) float32
        ``errors × s_real / s_placement`` pixel by pixel.
    coef : (p + 1,) array
        :func:`fit_error_scale` fitted on every placement pixel's mean error over the years.
    ratio : (placements, ny, nx) array
        The factor applied (NaN where a placement has no error).
    """
    import warnings

    errors = np.asarray(errors)
    p = real.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a pixel no year of a placement covers
        mean_error = np.nanmean(errors, axis=1)  # (placements, ny, nx)
    rows = np.isfinite(mean_error)
    coef = fit_error_scale(np.abs(mean_error[rows]), np.moveaxis(moved, 1, -1)[rows].reshape(-1, p))
    s_moved = error_scale(coef, moved, axis=1)  # (placements, ny, nx)
    s_real = error_scale(coef, real)            # (ny, nx)
    with np.errstate(invalid="ignore"):
        floor = floor_fraction * float(np.nanmean(np.where(rows, s_moved, np.nan))) if rows.any() else 0.0
        ratio = np.where(rows, s_real[None] / np.maximum(s_moved, floor), np.nan)
    ratio = np.where(np.isfinite(ratio), ratio, np.where(rows, 1.0, np.nan))
    scaled = np.asarray(errors, dtype=np.float32) * ratio[:, None].astype(np.float32)  # float32: BTH's is 270 MB
    return scaled, coef, ratio
