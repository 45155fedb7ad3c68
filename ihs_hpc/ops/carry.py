"""Carry 2-D maps from source pixels into target pixels by inverse-distance weighting.

Used by stage 2's ``met_fit: background`` mode (seed 000 §2.3.3, eqs. 3–4): the regression
coefficients ``a0 … a6`` fitted where no IHS is active are carried into the IHS radiation areas,
where a pixel's own series holds the IHS signal whose seasonal cycle the seasonal meteorological
baselines would otherwise absorb. Every map of a stack gets the *same* weights (they depend only
on where the pixels lie), so carrying the coefficient vector equals carrying the fitted
meteorological part ``a0 + Σ a_i X_i(t)`` of the source pixels to the target pixel's regressors.
"""
from __future__ import annotations

import numpy as np

from ..kernels.kriging import idw_predict
from .gapfill import grid_coordinate, neighbours_on_grid

__all__ = ["carry_maps"]


def carry_maps(maps, source, target, lat, lon, *, k: int = 16, power: float = 2.0) -> np.ndarray:
    """Fill ``target`` pixels of every map from the ``k`` nearest ``source`` pixels (IDW).

    Parameters
    ----------
    maps : array_like, shape (m, ny, nx) or (ny, nx)
        Maps to carry (e.g. the seven regression coefficients of eq. 3).
    source : array_like of bool, shape (ny, nx)
        Pixels whose values are known (every map finite there).
    target : array_like of bool, shape (ny, nx)
        Pixels to fill; a pixel that is also a source keeps its own value.
    lat, lon : array_like, shape (ny,), (nx,)
        Cell-centre coordinates (degrees, strictly monotone); distances are Euclidean in degrees,
        as the kriging of :mod:`ihs_hpc.ops.gapfill`.
    k : int, default 16
        Number of nearest source pixels (capped at the number of sources).
    power : float, default 2.0
        Distance power of the weights ``d^-power``.

    Returns
    -------
    ndarray, float64, same shape as ``maps``
        ``maps`` with the target pixels replaced by ``Σ w_j v_j / Σ w_j`` over their neighbours.

    Raises
    ------
    ValueError
        If the shapes disagree, ``k < 1``, ``power <= 0``, a source value is not finite, or there is
        a target but no source pixel.
    """
    data = np.asarray(maps, dtype=np.float64)
    single = data.ndim == 2
    if single:
        data = data[None]
    if data.ndim != 3:
        raise ValueError(f"maps must have shape (m, ny, nx) or (ny, nx), got {np.shape(maps)}")
    _, ny, nx = data.shape
    source = np.asarray(source, dtype=bool)
    target = np.asarray(target, dtype=bool)
    for name, mask in (("source", source), ("target", target)):
        if mask.shape != (ny, nx):
            raise ValueError(f"{name} has shape {mask.shape}, expected {(ny, nx)}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    power = float(power)
    if not power > 0:
        raise ValueError(f"power must be > 0, got {power}")
    lat = grid_coordinate(lat, "lat", ny, "row")
    lon = grid_coordinate(lon, "lon", nx, "column")
    out = data.copy()
    query = np.flatnonzero(target & ~source)
    if query.size == 0:
        return out[0] if single else out
    valid = np.flatnonzero(source)
    if valid.size == 0:
        raise ValueError("no source pixel to carry the maps from")
    flat = data.reshape(data.shape[0], -1)
    if not np.isfinite(flat[:, valid]).all():
        bad = valid[np.flatnonzero(~np.isfinite(flat[:, valid]).all(axis=0))[0]]
        raise ValueError(f"a source pixel holds a non-finite value (row {bad // nx}, col {bad % nx})")
    nbr = neighbours_on_grid(valid, query, lat, lon, min(k, valid.size))
    vrows, vcols = np.divmod(valid, nx)
    qrows, qcols = np.divmod(query, nx)
    xd, yd, xq, yq = lon[vcols], lat[vrows], lon[qcols], lat[qrows]
    estimate = np.empty(query.size)
    out_flat = out.reshape(out.shape[0], -1)
    for j in range(flat.shape[0]):
        idw_predict(xd, yd, np.ascontiguousarray(flat[j, valid]), xq, yq, nbr, power, estimate)
        out_flat[j, query] = estimate
    return out[0] if single else out
