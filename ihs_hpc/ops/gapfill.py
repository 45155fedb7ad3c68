"""Daily gap filling by local ordinary kriging (seed 000, section 2.3.1).

Public numpy API over :mod:`ihs_hpc.kernels.kriging`:

* :func:`fit_variogram` — PyKrige-style automatic variogram fit on a seeded subsample
  (:mod:`ihs_hpc.ops.variogram_model`, re-exported here);
* :func:`krige_points` — ordinary kriging at scattered points from the ``k`` nearest data;
* :func:`fill_gaps` — fill one day's NaN pixels (variogram fitted from that day);
* :func:`fill_cube` — :func:`fill_gaps` over the days of a ``(time, ny, nx)`` cube.

Coordinates are PyKrige's ``coordinates_type="euclidean"`` with ``x = lon`` and ``y = lat`` in
degrees (no anisotropy), so variogram ranges and slopes are per degree.  Variogram parameters
use PyKrige's names and meaning: ``{"psill", "range", "nugget"}`` (or ``"sill"`` instead of
``"psill"``) for exponential / spherical / gaussian, ``{"slope", "nugget"}`` for linear; a list
is read like PyKrige reads it (``[sill, range, nugget]`` or ``[slope, nugget]``).

Fallbacks of :func:`fill_gaps` (reported in ``info["fallback"]``):

* ``"no_valid_pixels"``: the day has no valid pixel; the gaps stay NaN;
* ``"idw_few_points"``: fewer than ``min_kriging_points`` (10) valid pixels; every gap gets the
  inverse-distance (power 2) mean of all valid pixels;
* ``"idw_fit_failed"``: the variogram fit failed (see :class:`VariogramFitError`); every gap gets
  the inverse-distance (power 2) mean of its ``k`` nearest valid pixels;
* points whose kriging system is singular fall back to the same IDW individually
  (``info["n_singular"]``).
"""
from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from ihs_hpc.kernels.kriging import STATUS_IDW, idw_predict, knn_grid, knn_points, ok_predict

from .variogram_model import (VARIOGRAM_MODELS, VariogramFitError, experimental_variogram, fit_variogram,
                              model_code, parameter_dict, parameter_vector, variogram_model_values)

__all__ = [
    "VARIOGRAM_MODELS",
    "VariogramFitError",
    "experimental_variogram",
    "variogram_model_values",
    "fit_variogram",
    "krige_points",
    "fill_gaps",
    "fill_cube",
]

_IDW_POWER = 2.0


# --------------------------------------------------------------------------- scattered points
def krige_points(x, y, z, xq, yq, model="exponential", variogram_parameters=None, k=16):
    """Ordinary kriging at query points from each one's ``k`` nearest data points.

    Equal to PyKrige's ``OrdinaryKriging(x, y, z, variogram_model=model,
    variogram_parameters=...).execute("points", xq, yq, backend="loop", n_closest_points=k)``
    (euclidean coordinates) up to rounding, except that ties in the neighbour distances are
    broken by the lower data index here.  The neighbour search is brute force
    (``O(len(xq) * len(x))``); for gridded data use :func:`fill_gaps`.

    Parameters
    ----------
    x, y, z : array_like, shape (n,)
        Data coordinates and values (finite).
    xq, yq : array_like, shape (nq,)
        Query coordinates.
    model : str, default "exponential"
        One of :data:`VARIOGRAM_MODELS`.
    variogram_parameters : dict or list, optional
        PyKrige-style parameters; fitted with :func:`fit_variogram` when None.
    k : int, default 16
        Neighbourhood size (capped at ``n``; at least 2).

    Returns
    -------
    z_hat, sigmasq : ndarray, shape (nq,)
        Estimates and kriging variances (variance NaN where a singular system fell back to IDW).
    """
    code = model_code(model)
    x = np.ascontiguousarray(x, dtype=np.float64).ravel()
    y = np.ascontiguousarray(y, dtype=np.float64).ravel()
    z = np.ascontiguousarray(z, dtype=np.float64).ravel()
    xq = np.ascontiguousarray(xq, dtype=np.float64).ravel()
    yq = np.ascontiguousarray(yq, dtype=np.float64).ravel()
    if not (x.shape == y.shape == z.shape):
        raise ValueError(f"x, y and z must have equal lengths, got {x.size}, {y.size}, {z.size}")
    if xq.shape != yq.shape:
        raise ValueError(f"xq and yq must have equal lengths, got {xq.size} and {yq.size}")
    for name, arr in (("x", x), ("y", y), ("z", z), ("xq", xq), ("yq", yq)):
        if not np.all(np.isfinite(arr)):
            first = np.flatnonzero(~np.isfinite(arr))[0]
            raise ValueError(f"{name} must be finite; {name}[{first}] = {arr[first]}")
    k = int(k)
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    if x.size < 2:
        raise ValueError(f"ordinary kriging needs at least 2 data points, got {x.size}")
    if variogram_parameters is None:
        vec = parameter_vector(model, fit_variogram(x, y, z, model))
    else:
        vec = parameter_vector(model, variogram_parameters)
    k = min(k, x.size)
    nq = xq.size
    nbr = np.empty((nq, k), dtype=np.int64)
    d2 = np.empty((nq, k), dtype=np.float64)
    z_hat = np.empty(nq)
    sigmasq = np.empty(nq)
    status = np.empty(nq, dtype=np.int8)
    if nq:
        knn_points(x, y, xq, yq, nbr, d2)
        ok_predict(x, y, z, xq, yq, nbr, code, vec, z_hat, sigmasq, status)
    return z_hat, sigmasq


# --------------------------------------------------------------------------- gridded days
def grid_coordinate(values, name, length, axis_name):
    """``values`` as a finite 1-D float64 axis of ``length`` values; a ``ValueError`` naming ``name`` and
    ``axis_name`` otherwise."""
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] != length:
        raise ValueError(
            f"{name} must be 1-D with one value per {axis_name} ({length}), got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        first = np.flatnonzero(~np.isfinite(arr))[0]
        raise ValueError(f"{name} must be finite; {name}[{first}] = {arr[first]}")
    step = np.diff(arr)
    if length > 1 and not (np.all(step > 0) or np.all(step < 0)):
        raise ValueError(f"{name} must be strictly increasing or strictly decreasing")
    return arr


def _fill_target(fill_mask, shape):
    if fill_mask is None:
        return None
    mask = np.asarray(fill_mask)
    if mask.shape != shape:
        raise ValueError(f"fill_mask has shape {mask.shape}, expected {shape}")
    if mask.dtype != bool:
        raise ValueError(f"fill_mask must be boolean, got dtype {mask.dtype}")
    return mask


#: the last search of :func:`neighbours_on_grid`, ``(valid_flat, query_flat, lat, lon, k, nbr)`` (per process)
_last_search = None
_search_lock = threading.Lock()


def _same_search(last, valid_flat, query_flat, lat, lon, k) -> bool:
    return (last is not None and last[4] == k and np.array_equal(last[0], valid_flat)
            and np.array_equal(last[1], query_flat) and np.array_equal(last[2], lat) and np.array_equal(last[3], lon))


def neighbours_on_grid(valid_flat, query_flat, lat, lon, k):
    """k nearest valid pixels of each query pixel: ring search, or brute force when sparse.

    The answer depends only on which pixels are valid and which are asked for, and the days of a
    kriging block usually share both (stage 3: the same IHS areas every day and no gap left by prep),
    so the last search is kept and returned again while its inputs are equal (checked element by
    element): the search runs once per block instead of once per day (17 % of a BTH stage-3 day).
    The returned array may be that shared answer: read it, do not write into it.
    """
    global _last_search
    with _search_lock:
        last = _last_search
    if _same_search(last, valid_flat, query_flat, lat, lon, k):
        return last[5]
    nbr = _search_neighbours(valid_flat, query_flat, lat, lon, k)
    with _search_lock:
        _last_search = (valid_flat.copy(), query_flat.copy(), np.array(lat), np.array(lon), k, nbr)
    return nbr


def _search_neighbours(valid_flat, query_flat, lat, lon, k):
    ny, nx = lat.size, lon.size
    nq = query_flat.size
    nbr = np.empty((nq, k), dtype=np.int64)
    d2 = np.empty((nq, k), dtype=np.float64)
    n_valid = valid_flat.size
    if n_valid * n_valid <= 4 * k * ny * nx:
        # few valid pixels: rings would sweep most of the grid for every query
        rows, cols = np.divmod(valid_flat, nx)
        qrows, qcols = np.divmod(query_flat, nx)
        knn_points(lon[cols], lat[rows], lon[qcols], lat[qrows], nbr, d2)
    else:
        rank = np.full(ny * nx, -1, dtype=np.int64)
        rank[valid_flat] = np.arange(n_valid, dtype=np.int64)
        knn_grid(rank, lat, lon, query_flat, nbr, d2)
    return nbr


def fill_gaps(field, lat, lon, model="exponential", k=16, variogram_parameters=None, *,
              fill_mask=None, nlags=6, max_fit_points=2000, seed=0, min_kriging_points=10):
    """Fill one day's NaN pixels by ordinary kriging from the k nearest valid pixels.

    Seed 000, section 2.3.1.  Unless ``variogram_parameters`` is given, the variogram is fitted
    from this day's valid pixels with :func:`fit_variogram` (subsample of ``max_fit_points``
    drawn with ``seed``).  Each gap is kriged from its ``k`` nearest valid pixels (ties broken
    by row-major pixel order) with ``x = lon`` and ``y = lat`` in degrees, as PyKrige's
    euclidean ``OrdinaryKriging`` with ``n_closest_points=k`` would.  See the module doc for
    the fallbacks.

    Parameters
    ----------
    field : array_like, shape (ny, nx), float
        One day; NaN marks gaps.  Infinite values are rejected.
    lat : array_like, shape (ny,)
        Cell-centre latitude of each row (degrees, strictly monotone).
    lon : array_like, shape (nx,)
        Cell-centre longitude of each column (degrees, strictly monotone).
    model : str, default "exponential"
        One of :data:`VARIOGRAM_MODELS`.
    k : int, default 16
        Neighbourhood size (>= 2; capped at the number of valid pixels).
    variogram_parameters : dict or list, optional
        Fixed PyKrige-style parameters instead of the per-day fit.
    fill_mask : array_like of bool, shape (ny, nx), optional
        Pixels to fill (e.g. the land / study-area mask); NaN outside it stays NaN.  Default:
        every NaN pixel.
    nlags, max_fit_points, seed
        Passed to :func:`fit_variogram`.
    min_kriging_points : int, default 10
        Below this many valid pixels the day is filled by IDW over all of them.

    Returns
    -------
    filled : ndarray, shape (ny, nx)
        Copy of ``field`` (float dtype kept) with the gaps filled.
    info : dict
        ``n_valid``, ``n_missing`` (gaps inside ``fill_mask``), ``n_filled``, ``params``
        (PyKrige-named dict, None when no variogram was used), ``fallback`` (None or one of
        ``"no_valid_pixels"``, ``"idw_few_points"``, ``"idw_fit_failed"``), ``fit_error``
        (message or None) and ``n_singular`` (points whose kriging system was singular).
    """
    code = model_code(model)
    data = np.asarray(field)
    if data.ndim != 2:
        raise ValueError(f"field must be 2-D (ny, nx), got shape {data.shape}")
    if data.dtype not in (np.float32, np.float64):
        data = data.astype(np.float64)
    ny, nx = data.shape
    lat_arr = grid_coordinate(lat, "lat", ny, "row")
    lon_arr = grid_coordinate(lon, "lon", nx, "column")
    target_mask = _fill_target(fill_mask, data.shape)
    k = int(k)
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    if int(min_kriging_points) < 2:
        raise ValueError(f"min_kriging_points must be >= 2, got {min_kriging_points}")
    fixed_vec = None if variogram_parameters is None else parameter_vector(
        model, variogram_parameters)
    if np.isinf(data).any():
        r, c = np.argwhere(np.isinf(data))[0]
        raise ValueError(f"field holds an infinite value at (row={r}, col={c})")

    flat = data.reshape(-1)
    valid = ~np.isnan(flat)
    target = ~valid if target_mask is None else (~valid & target_mask.reshape(-1))
    valid_flat = np.flatnonzero(valid)
    query_flat = np.flatnonzero(target)
    filled = data.copy()
    info = {"n_valid": int(valid_flat.size), "n_missing": int(query_flat.size), "n_filled": 0,
            "params": None, "fallback": None, "fit_error": None, "n_singular": 0}
    if query_flat.size == 0:
        return filled, info
    if valid_flat.size == 0:
        info["fallback"] = "no_valid_pixels"
        return filled, info

    vrows, vcols = np.divmod(valid_flat, nx)
    qrows, qcols = np.divmod(query_flat, nx)
    xd = lon_arr[vcols]
    yd = lat_arr[vrows]
    zd = flat[valid_flat].astype(np.float64)
    xq = lon_arr[qcols]
    yq = lat_arr[qrows]
    estimate = np.empty(query_flat.size)

    if valid_flat.size < int(min_kriging_points):
        info["fallback"] = "idw_few_points"
        everyone = np.tile(np.arange(valid_flat.size, dtype=np.int64), (query_flat.size, 1))
        idw_predict(xd, yd, zd, xq, yq, everyone, _IDW_POWER, estimate)
    else:
        vec = fixed_vec
        if vec is None:
            try:
                vec = parameter_vector(model, fit_variogram(
                    xd, yd, zd, model, nlags=nlags, max_points=max_fit_points, seed=seed))
            except VariogramFitError as exc:
                info["fallback"] = "idw_fit_failed"
                info["fit_error"] = str(exc)
        nbr = neighbours_on_grid(valid_flat, query_flat, lat_arr, lon_arr,
                                  min(k, valid_flat.size))
        if vec is None:
            idw_predict(xd, yd, zd, xq, yq, nbr, _IDW_POWER, estimate)
        else:
            info["params"] = parameter_dict(model, vec)
            variance = np.empty(query_flat.size)
            status = np.empty(query_flat.size, dtype=np.int8)
            ok_predict(xd, yd, zd, xq, yq, nbr, code, vec, estimate, variance, status)
            info["n_singular"] = int(np.count_nonzero(status == STATUS_IDW))
    filled.reshape(-1)[query_flat] = estimate
    info["n_filled"] = int(np.count_nonzero(np.isfinite(estimate)))
    return filled, info


def fill_cube(cube, lat, lon, model="exponential", k=16, variogram_parameters=None, *,
              fill_mask=None, removed=None, seed=0, progress=None, **options):
    """Gap-fill every day of a ``(time, ny, nx)`` cube with :func:`fill_gaps`.

    Day ``t`` uses the subsample seed ``[seed, t]``, so a day's result does not depend on which
    other days are processed with it.

    Parameters
    ----------
    cube : array_like, shape (time, ny, nx), float
        Daily fields; NaN marks gaps.
    lat, lon, model, k, variogram_parameters, fill_mask
        As in :func:`fill_gaps` (one ``fill_mask`` for all days).
    removed : array_like of bool, shape (time, ny, nx), optional
        Outlier mask from :func:`ihs_hpc.ops.outliers.iqr_outliers`, for the
        ``removed_fraction`` column.
    seed : int, default 0
        Base seed of the per-day variogram subsamples.
    progress : callable, optional
        Called as ``progress(day, n_days, info)`` after each day.
    **options
        ``nlags``, ``max_fit_points``, ``min_kriging_points`` for :func:`fill_gaps`.

    Returns
    -------
    filled : ndarray, shape (time, ny, nx)
        Filled copy of ``cube``.
    report : pandas.DataFrame
        One row per day: ``n_valid, n_missing, n_filled, removed_fraction, missing_fraction,
        filled_fraction`` (fractions of the pixels inside ``fill_mask``, or of all pixels),
        ``fallback`` (NaN when none), ``n_singular`` and the variogram parameters (NaN when
        none was used).
    """
    data = np.asarray(cube)
    if data.ndim != 3:
        raise ValueError(f"cube must be 3-D (time, ny, nx), got shape {data.shape}")
    allowed = {"nlags", "max_fit_points", "min_kriging_points"}
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    n_days, ny, nx = data.shape
    mask = _fill_target(fill_mask, (ny, nx))
    n_target = ny * nx if mask is None else int(np.count_nonzero(mask))
    removed_arr = None
    if removed is not None:
        removed_arr = np.asarray(removed)
        if removed_arr.shape != data.shape:
            raise ValueError(f"removed has shape {removed_arr.shape}, expected {data.shape}")
    if progress is not None and not callable(progress):
        raise ValueError("progress must be callable or None")
    out_dtype = data.dtype if data.dtype in (np.float32, np.float64) else np.float64
    filled = np.empty(data.shape, dtype=out_dtype)
    rows = []
    for day in range(n_days):
        filled[day], info = fill_gaps(data[day], lat, lon, model, k, variogram_parameters,
                                      fill_mask=mask, seed=[int(seed), day], **options)
        if removed_arr is None:
            n_removed = np.nan
        elif mask is None:
            n_removed = np.count_nonzero(removed_arr[day])
        else:
            n_removed = np.count_nonzero(removed_arr[day] & mask)
        row = {"day": day, "n_valid": info["n_valid"], "n_missing": info["n_missing"],
               "n_filled": info["n_filled"],
               "removed_fraction": n_removed / n_target if n_target else np.nan,
               "missing_fraction": info["n_missing"] / n_target if n_target else np.nan,
               "filled_fraction": info["n_filled"] / n_target if n_target else np.nan,
               "fallback": info["fallback"], "n_singular": info["n_singular"]}
        row.update(info["params"] or {})
        rows.append(row)
        if progress is not None:
            progress(day, n_days, info)
    report = pd.DataFrame(rows).set_index("day") if rows else pd.DataFrame()
    return filled, report
