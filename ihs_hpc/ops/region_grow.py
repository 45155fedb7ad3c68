"""IHS radiation areas by region growing over a DEM (seed 000, section 2.3.2).

Public numpy API over :mod:`ihs_hpc.kernels.region_grow`:

* :func:`region_grow` — per-source membership (areas overlap) and the per-pixel count of areas;
* :func:`union_mask` — pixels inside at least one area;
* :func:`masks_by_year` — per-year counts of the areas whose source was operating that year.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from ihs_hpc.kernels.region_grow import (
    EARTH_RADIUS_KM,
    accumulate_counts,
    region_grow_pass,
)

__all__ = ["EARTH_RADIUS_KM", "RegionGrowResult", "region_grow", "union_mask", "masks_by_year"]


@dataclass(frozen=True)
class RegionGrowResult:
    """Outcome of :func:`region_grow`.

    Attributes
    ----------
    count : ndarray, shape (ny, nx), int32
        Number of IHS areas covering each pixel.
    members : list of ndarray
        One sorted int64 array of flat pixel indices (``row * nx + col``) per source, in the
        order of ``seeds_rc``; the source pixel is included.
    shape : tuple of int
        ``(ny, nx)`` of the grid, to unravel the flat indices.
    """

    count: np.ndarray
    members: list
    shape: tuple

    def member_rc(self, i):
        """Rows and columns of the members of source ``i`` as ``(rows, cols)``."""
        return np.unravel_index(self.members[i], self.shape)


def _as_coordinate(values, name, length, axis_name):
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (cell-centre coordinates), got shape {arr.shape}")
    if arr.shape[0] != length:
        raise ValueError(
            f"{name} has length {arr.shape[0]} but dem has {length} {axis_name}"
        )
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"{name} must be finite; {name}[{bad[0]}] = {arr[bad[0]]}")
    return arr


def _validate_seeds(seeds_rc, dem):
    seeds = np.asarray(seeds_rc)
    if seeds.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    if seeds.ndim != 2 or seeds.shape[1] != 2:
        raise ValueError(f"seeds_rc must have shape (n, 2) (row, col), got shape {seeds.shape}")
    if not np.issubdtype(seeds.dtype, np.integer):
        if not np.all(np.isfinite(seeds)) or not np.all(seeds == np.round(seeds)):
            raise ValueError("seeds_rc must hold integer row/column indices")
    seeds = seeds.astype(np.int64)
    ny, nx = dem.shape
    rows, cols = seeds[:, 0], seeds[:, 1]
    outside = np.flatnonzero((rows < 0) | (rows >= ny) | (cols < 0) | (cols >= nx))
    if outside.size:
        i = outside[0]
        raise ValueError(
            f"seed {i} at (row={rows[i]}, col={cols[i]}) lies outside the grid of shape "
            f"({ny}, {nx}); {outside.size} seed(s) outside in all"
        )
    on_nan = np.flatnonzero(np.isnan(dem[rows, cols]))
    if on_nan.size:
        i = on_nan[0]
        raise ValueError(
            f"seed {i} at (row={rows[i]}, col={cols[i]}) lies on a NaN DEM pixel; "
            f"{on_nan.size} seed(s) on NaN in all"
        )
    return np.ascontiguousarray(rows), np.ascontiguousarray(cols)


def region_grow(dem, lat, lon, seeds_rc, max_km=10.0):
    """Grow one IHS radiation area from each source pixel (seed 000, section 2.3.2).

    From the source, the 8 neighbours of a growth point that are *strictly lower* than the
    growth point join the area and become growth points; a pixel joins only if the haversine
    distance from the *source* pixel centre to its centre is ``<= max_km`` (sphere of radius
    6371.0088 km, the IUGG mean Earth radius); NaN DEM pixels are never entered.  Equivalently,
    an area is the set of pixels reachable from its source along an 8-connected strictly
    descending path lying wholly within the distance cap.

    Parameters
    ----------
    dem : array_like, shape (ny, nx), float
        Elevation on the PM2.5 grid; NaN where unknown.
    lat : array_like, shape (ny,)
        Cell-centre latitude of each row in degrees (ascending or descending).
    lon : array_like, shape (nx,)
        Cell-centre longitude of each column in degrees.
    seeds_rc : array_like, shape (n, 2), int
        ``(row, col)`` of each IHS source pixel.  Duplicates are allowed (each is its own area).
    max_km : float, default 10.0
        Maximum impact distance from the source (km).

    Returns
    -------
    RegionGrowResult
        ``count`` (ny, nx) int32 and ``members`` (one sorted int64 array of flat indices per
        source, source included).

    Raises
    ------
    ValueError
        If ``dem`` is not 2-D, ``lat``/``lon`` do not match its shape or are not finite,
        ``max_km`` is negative or not finite, a seed lies outside the grid or on a NaN pixel.
    """
    dem_arr = np.asarray(dem)
    if dem_arr.ndim != 2:
        raise ValueError(f"dem must be 2-D (ny, nx), got shape {dem_arr.shape}")
    # float64 always: one compiled signature; comparisons are exact for float32 input too
    dem_arr = np.ascontiguousarray(dem_arr, dtype=np.float64)
    ny, nx = dem_arr.shape
    lat_arr = _as_coordinate(lat, "lat", ny, "rows")
    lon_arr = _as_coordinate(lon, "lon", nx, "columns")
    max_km = float(max_km)
    if not np.isfinite(max_km) or max_km < 0:
        raise ValueError(f"max_km must be a finite non-negative distance in km, got {max_km}")
    rows, cols = _validate_seeds(seeds_rc, dem_arr)

    n_seeds = rows.shape[0]
    count = np.zeros(ny * nx, dtype=np.int32)
    if n_seeds == 0:
        return RegionGrowResult(count=count.reshape(ny, nx), members=[], shape=(ny, nx))

    lat_rad = np.deg2rad(lat_arr)
    lon_rad = np.deg2rad(lon_arr)
    n_chunks = int(min(n_seeds, numba.get_num_threads()))
    n_members = np.zeros(n_seeds, dtype=np.int64)
    offsets = np.zeros(n_seeds + 1, dtype=np.int64)
    no_members = np.empty(0, dtype=np.int64)
    region_grow_pass(dem_arr, lat_rad, lon_rad, rows, cols, max_km, n_chunks, False,
                     n_members, offsets, no_members)
    np.cumsum(n_members, out=offsets[1:])
    members_flat = np.empty(offsets[-1], dtype=np.int64)
    region_grow_pass(dem_arr, lat_rad, lon_rad, rows, cols, max_km, n_chunks, True,
                     n_members, offsets, members_flat)
    accumulate_counts(members_flat, count)
    # sort within each source at once: key = source * n_pixels + flat index
    source_of = np.repeat(np.arange(n_seeds, dtype=np.int64), n_members)
    members_flat = np.sort(source_of * (ny * nx) + members_flat) - source_of * (ny * nx)
    members = [members_flat[offsets[i]:offsets[i + 1]] for i in range(n_seeds)]
    return RegionGrowResult(count=count.reshape(ny, nx), members=members, shape=(ny, nx))


def union_mask(count):
    """Pixels covered by at least one IHS area.

    Parameters
    ----------
    count : array_like, shape (ny, nx) or (n_years, ny, nx), int
        Area counts from :func:`region_grow` or :func:`masks_by_year`.

    Returns
    -------
    ndarray of bool, same shape as ``count``
    """
    count_arr = np.asarray(count)
    if not (np.issubdtype(count_arr.dtype, np.integer) or count_arr.dtype == bool):
        raise ValueError(f"count must hold integer area counts, got dtype {count_arr.dtype}")
    return count_arr > 0


def masks_by_year(members, operating, shape):
    """Per-year counts of the IHS areas whose source was operating that year.

    Parameters
    ----------
    members : list of array_like of int
        Flat pixel indices of each IHS area (``RegionGrowResult.members``).
    operating : array_like, shape (n_ihs, n_years), bool
        ``operating[i, y]`` is True when source ``i`` operated in year ``y``.
    shape : tuple of int
        ``(ny, nx)`` of the grid.

    Returns
    -------
    ndarray, shape (n_years, ny, nx), int32
        ``out[y]`` counts the operating areas covering each pixel in year ``y``.
    """
    ny, nx = (int(s) for s in shape)
    status = np.asarray(operating)
    if status.ndim != 2:
        raise ValueError(f"operating must be 2-D (n_ihs, n_years), got shape {status.shape}")
    if status.dtype != bool:
        if not np.all(np.isin(status, (0, 1))):
            raise ValueError("operating must be boolean (or 0/1) operating status")
        status = status.astype(bool)
    if status.shape[0] != len(members):
        raise ValueError(
            f"operating has {status.shape[0]} rows but members holds {len(members)} IHS areas"
        )
    n_years = status.shape[1]
    out = np.zeros((n_years, ny * nx), dtype=np.int32)
    for i, idx in enumerate(members):
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= ny * nx):
            raise ValueError(
                f"members[{i}] holds flat index {idx.max() if idx.max() >= ny * nx else idx.min()}"
                f" outside a grid of shape ({ny}, {nx})"
            )
        if np.unique(idx).size != idx.size:
            raise ValueError(f"members[{i}] holds repeated flat indices")
        for year in np.flatnonzero(status[i]):
            out[year, idx] += 1
    return out.reshape(n_years, ny, nx)
