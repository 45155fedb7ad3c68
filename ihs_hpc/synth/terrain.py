"""Synthetic 1 km terrain: a realistic coarse base refined with seeded fractal texture.

The base is the 0.2° elevation grid of China shipped with the shared data
(``shared/data/dem/china-dem.nc``; its netCDF fill value marks the sea), interpolated bilinearly to
the 0.01° cell centres.  Onto it go

* ridged multi-fractal noise scaled by the local relief (mountains get hundreds of metres of ridges
  and valleys, the plain none), and
* a metre-scale texture everywhere (field boundaries, canals, terraces) so the plain is never flat:
  region growing (strictly lower neighbours) needs a strict order between neighbouring pixels.

Without the shared file (``IHS_SHARED_DATA`` unset, see :mod:`ihs_hpc.shared_data`) an analytic
base is used instead (mountains to the north-west, a plain sloping to the south-east coast); the
store records which one in ``dem_base``.
The whole DEM is a small 2-D map (0.4 M cells for Beijing–Tianjin–Hebei) computed at once, so it does
not depend on tiles.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..grid import Grid
from ..ops.interp import apply_bilinear, axis_weights, corner_weights
from ..shared_data import optional_shared_data_file
from .presets import STREAM_DEM, rng

#: Elevation given to sea cells of the coarse base before interpolation (m).
SEA_LEVEL_M = -3.0


def shared_dem_path() -> Path | None:
    """The coarse DEM of China, ``$IHS_SHARED_DATA/dem/china-dem.nc``.

    Returns
    -------
    pathlib.Path or None
        None when ``IHS_SHARED_DATA`` is unset (the terrain then uses its analytic base).

    Raises
    ------
    ihs_hpc.shared_data.SharedDataError
        ``IHS_SHARED_DATA`` is set but the file is not there.
    """
    return optional_shared_data_file("dem/china-dem.nc", needed_for="the synthetic terrain's realistic base")


_BASE_CACHE: dict = {}


def _load_coarse(path: Path):
    key = str(path)
    if key not in _BASE_CACHE:
        import netCDF4

        with netCDF4.Dataset(path) as nc:
            nc.set_auto_mask(False)
            lat = np.asarray(nc.variables["lat"][:], dtype=np.float64)
            lon = np.asarray(nc.variables["lon"][:], dtype=np.float64)
            z = np.asarray(nc.variables["dem"][:], dtype=np.float64)
        sea = ~np.isfinite(z) | (np.abs(z) > 1e4)
        z = np.where(sea, SEA_LEVEL_M, z)
        if lat[0] > lat[-1]:
            lat, z, sea = lat[::-1], z[::-1], sea[::-1]
        _BASE_CACHE[key] = (lat, lon, z, sea.astype(np.float64))
    return _BASE_CACHE[key]


def _analytic_base(lat2d, lon2d):
    """Mountains to the north-west, a plain sloping gently to the south-east (used without the file)."""
    u = ((lat2d - 38.6) - (lon2d - 116.2)) / np.sqrt(2.0)  # degrees towards the north-west
    mountains = 1300.0 / (1.0 + np.exp(-(u - 0.6) / 0.18))
    plain = np.clip(12.0 * (u + 2.2), 0.0, None)
    return mountains + plain, np.zeros_like(u)


def base_elevation(lat, lon, path: Path | None = None):
    """Coarse elevation (m) and sea fraction bilinearly interpolated at points (2-D arrays or broadcastable).

    Returns ``(z, sea)``; the analytic base when ``IHS_SHARED_DATA`` is unset (no shared file) or the
    file does not cover the points.
    """
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    lat, lon = np.broadcast_arrays(lat, lon)
    path = shared_dem_path() if path is None else Path(path)
    if path is not None and path.exists():
        clat, clon, z, sea = _load_coarse(path)
        inside = (lat.min() >= clat[0]) and (lat.max() <= clat[-1]) and (lon.min() >= clon[0]) and (lon.max() <= clon[-1])
        if inside:
            return _bilinear(clat, clon, z, lat, lon), _bilinear(clat, clon, sea, lat, lon)
    return _analytic_base(lat, lon)


def _bilinear(ys, xs, values, y, x):
    """Bilinear interpolation (:mod:`ihs_hpc.ops.interp`) of ``values`` on the axes ``ys``, ``xs`` at points ``(y, x)``."""
    iy, wy = axis_weights(ys, y, name="latitude")
    ix, wx = axis_weights(xs, x, name="longitude")
    index, weight = corner_weights(iy, wy, ix, wx, len(xs))
    return apply_bilinear(values, index, weight).reshape(np.shape(y))


def base_source(path: Path | None = None) -> str:
    """What the terrain's base is (recorded in a scene's ``dem_base`` attribute).

    Parameters
    ----------
    path : path-like, optional
        The coarse DEM; default :func:`shared_dem_path`.

    Returns
    -------
    str
        The shared coarse DEM, or the analytic stand-in.
    """
    path = shared_dem_path() if path is None else Path(path)
    real = path is not None and path.exists()
    return "china-dem.nc (0.2 deg, cnmaps sample data) + fractal texture" if real else "analytic + fractal texture"


def octave_noise(gen: np.random.Generator, shape, spacing: float) -> np.ndarray:
    """Smooth value noise (≈ unit variance) with features ``spacing`` cells across (cubic spline)."""
    from scipy.ndimage import map_coordinates

    ny, nx = shape
    lattice = gen.standard_normal((int(np.ceil(ny / spacing)) + 4, int(np.ceil(nx / spacing)) + 4))
    rr, cc = np.meshgrid(np.arange(ny) / spacing + 1.5, np.arange(nx) / spacing + 1.5, indexing="ij")
    out = map_coordinates(lattice, [rr, cc], order=3, mode="nearest", prefilter=False)
    return out / 0.62  # a cubic B-spline of iid N(0,1) has std ≈ 0.62


def make_dem(grid: Grid, seed: int, path: Path | None = None) -> np.ndarray:
    """The scene's DEM (m, float32, ``grid.shape``, rows north→south), no NaN.

    Deterministic in ``(grid, seed)``.
    """
    lat2d, lon2d = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    z0, sea = base_elevation(lat2d, lon2d, path)
    gen = rng(seed, STREAM_DEM)
    shape = grid.shape
    # relief: 0 on the plain, ~1 in the mountains
    relief = np.clip((z0 - 100.0) / 600.0, 0.0, 1.5)
    ridged = np.zeros(shape)
    for spacing, amp in ((48, 1.0), (24, 0.55), (12, 0.32), (6, 0.18), (3, 0.10)):
        n = octave_noise(gen, shape, spacing)
        ridged += amp * ((1.0 - np.abs(n)) - 0.2)
    hills = np.zeros(shape)
    for spacing, amp in ((32, 1.0), (16, 0.5), (8, 0.25)):
        hills += amp * octave_noise(gen, shape, spacing)
    mountains = relief * (330.0 * ridged + 90.0 * hills)
    # metre-scale texture everywhere, strongest on the plain
    texture = np.zeros(shape)
    for spacing, amp in ((16, 0.6), (8, 0.35), (4, 0.2), (2, 0.12)):
        texture += amp * octave_noise(gen, shape, spacing)
    texture += 0.06 * gen.standard_normal(shape)
    z = z0 + mountains + texture * (1.0 + 2.0 * np.clip(relief, 0, 1))
    # sea: keep it below the coast
    z = np.where(sea > 0.5, np.minimum(z, SEA_LEVEL_M + 0.5 * texture), z)
    return z.astype(np.float32)


def land_fraction(grid: Grid, path: Path | None = None) -> np.ndarray:
    """1 on land, 0 at sea (from the coarse base), ``grid.shape``."""
    lat2d, lon2d = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    _, sea = base_elevation(lat2d, lon2d, path)
    return 1.0 - sea
