"""Placing a file's lat/lon cells on the analysis grid: every file coordinate must sit on a grid cell
centre to within :data:`ALIGN_TOL_CELLS` of a cell; north-up (or south-up) rasters in WGS84 lat/lon."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

from ..grid import Grid
from .errors import IngestError, IngestWarning

#: Largest distance (in cells) between a file coordinate and the analysis-grid cell centre it matches.
ALIGN_TOL_CELLS = 0.05

@dataclass(frozen=True)
class AxisMatch:
    """Where a file axis lands on the grid: file indices ``src`` go to grid indices ``dst``."""

    src: slice   # contiguous file index range (ascending)
    dst: slice   # contiguous grid index range (ascending)
    flip: bool   # file order is opposite to grid order (read, then reverse)


def match_axis(coords, grid_first: float, grid_step: float, n: int, *, path, axis: str, res: float,
               tol: float = ALIGN_TOL_CELLS) -> AxisMatch | None:
    """Match 1-D file cell-centre coordinates to the grid axis ``grid_first + i * grid_step``.

    Returns ``None`` when no file cell falls on the grid; raises :class:`IngestError` naming the file
    when the file grid is offset by a fraction of a cell, has another resolution or is irregular.
    """
    c = np.asarray(coords, dtype=np.float64).ravel()
    if c.size == 0:
        return None
    if c.size > 1:
        spacing = np.abs(np.diff(c))
        if np.any(np.abs(spacing - res) > tol * res):
            raise IngestError(
                f"{axis} is not a regular {res:g}° axis like the analysis grid (file spacing "
                f"{np.nanmin(spacing):.6g}..{np.nanmax(spacing):.6g}°); regrid it first", path=path,
            )
    k = (c - grid_first) / grid_step
    kr = np.round(k)
    off = np.abs(k - kr)
    if np.nanmax(off) > tol or not np.all(np.isfinite(k)):
        worst = int(np.nanargmax(off)) if np.any(np.isfinite(off)) else 0
        raise IngestError(
            f"{axis} coordinates are not on the analysis grid's {res:g}° cell centres: "
            f"{axis}[{worst}] = {c[worst]:.6f} is {k[worst] - kr[worst]:+.3f} cells from the nearest centre "
            f"(grid {axis} centres are {grid_first:.6f} + i·{grid_step:g}); a file grid offset by a "
            f"non-integer number of cells cannot be matched (regrid it first)",
            path=path,
        )
    if c.size > 1:
        step = np.diff(kr)
        if not (np.all(step == 1) or np.all(step == -1)):
            file_res = np.median(np.abs(np.diff(c)))
            raise IngestError(
                f"{axis} is not a regular {res:g}° axis like the analysis grid "
                f"(file spacing ≈ {file_res:g}°, steps in cells {np.unique(step)[:5]})", path=path,
            )
    ki = kr.astype(np.int64)
    inside = np.flatnonzero((ki >= 0) & (ki < n))
    if inside.size == 0:
        return None
    a, b = int(inside[0]), int(inside[-1]) + 1
    lo, hi = sorted((int(ki[a]), int(ki[b - 1])))
    flip = c.size > 1 and kr[1] < kr[0]
    return AxisMatch(slice(a, b), slice(lo, hi + 1), bool(flip))


def _extent_text(lat, lon) -> str:
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    return f"lat {np.nanmin(lat):.4f}..{np.nanmax(lat):.4f}, lon {np.nanmin(lon):.4f}..{np.nanmax(lon):.4f} (cell centres)"


def _grid_extent_text(grid: Grid) -> str:
    return (f"lat {grid.lat[-1]:.4f}..{grid.lat[0]:.4f}, lon {grid.lon[0]:.4f}..{grid.lon[-1]:.4f} "
            f"(cell centres, {grid.res:g}°)")


def match_grid(lat, lon, grid: Grid, *, path) -> tuple[AxisMatch, AxisMatch]:
    """Match a file's 1-D lat/lon centres to the grid; error naming the file and both extents when
    they do not overlap."""
    mlat = match_axis(lat, grid.lat[0], -grid.res, grid.ny, path=path, axis="lat", res=grid.res)
    mlon = match_axis(lon, grid.lon[0], grid.res, grid.nx, path=path, axis="lon", res=grid.res)
    if mlat is None or mlon is None:
        raise IngestError(
            f"the file grid ({_extent_text(lat, lon)}) does not overlap the analysis grid "
            f"({_grid_extent_text(grid)})", path=path,
        )
    return mlat, mlon


def raster_centres(transform, height: int, width: int, *, path):
    """1-D cell-centre latitudes and longitudes of a north-up (or south-up) lat/lon raster."""
    if abs(transform.b) > 1e-12 or abs(transform.d) > 1e-12:
        raise IngestError(f"the raster is rotated (transform {tuple(transform)[:6]}); expected a north-up lat/lon grid", path=path)
    lon = transform.c + (np.arange(width) + 0.5) * transform.a
    lat = transform.f + (np.arange(height) + 0.5) * transform.e
    return lat, lon


def open_raster(path, **where):
    """``rasterio.open(path)``; a file that cannot be read as a raster is an :class:`IngestError` naming it
    (and ``where``, e.g. ``day=``)."""
    import rasterio

    try:
        return rasterio.open(os.fspath(path))
    except Exception as exc:
        raise IngestError(f"cannot be read as a raster: {exc}", path=path, **where) from None


def check_geographic(crs, *, path) -> None:
    """A raster's CRS must be WGS84 lat/lon (EPSG:4326); a missing CRS is taken as such, with a warning."""
    if crs is None:
        warnings.warn(f"{path}: no CRS; taken as WGS84 lat/lon (EPSG:4326)", IngestWarning, stacklevel=3)
        return
    try:
        epsg = crs.to_epsg()
    except Exception:  # pragma: no cover - exotic CRS objects
        epsg = None
    if epsg == 4326 or (crs.is_geographic and "WGS" in crs.to_string().upper()):
        return
    raise IngestError(f"CRS {crs.to_string()} is not WGS84 lat/lon (EPSG:4326); reproject it first", path=path)
