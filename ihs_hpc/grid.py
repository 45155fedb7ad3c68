"""The analysis grid: WGS84 latitude/longitude cell centres (0.01° for ChinaHighPM2.5/CHAP) and its tiles.

Rows run north to south (latitude descending, like CHAP files and GeoTIFFs), columns west to east.
Cell edges sit on multiples of the resolution from the bounds given, so the Beijing–Tianjin–Hebei box
36.0–42.6 °N, 113.5–119.8 °E at 0.01° has 660 × 630 cells whose centres end in ``.xx5``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

#: Mean Earth radius in km (IUGG R1), used for every great-circle distance and cell area.
EARTH_RADIUS_KM = 6371.0088

#: Name of the CF grid-mapping variable written beside every cube.
GRID_MAPPING_NAME = "crs"


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km between points given in degrees (broadcasting numpy arrays)."""
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dphi = phi2 - phi1
    dlmb = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2.0) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlmb / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@dataclass(frozen=True)
class Tile:
    """One rectangular block of the grid: the unit of work (one Dask task, one Zarr chunk)."""

    id: int
    iy: int
    ix: int
    rows: slice
    cols: slice

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows.stop - self.rows.start, self.cols.stop - self.cols.start)

    @property
    def name(self) -> str:
        """Stable text id, used for completion records (``"t0003_0012"``)."""
        return f"t{self.iy:04d}_{self.ix:04d}"


@dataclass(frozen=True)
class Grid:
    """A regular WGS84 lat/lon grid given by its outer edges and cell size (degrees).

    Parameters
    ----------
    south, north, west, east : float
        Outer cell edges in degrees. ``(north - south)`` and ``(east - west)`` must be whole multiples
        of ``res`` (to 1e-6 of a cell).
    res : float
        Cell size in degrees (0.01 for CHAP, 0.1 for ERA5's native grid).
    """

    south: float
    north: float
    west: float
    east: float
    res: float = 0.01

    def __post_init__(self):
        for name in ("south", "north", "west", "east", "res"):
            value = getattr(self, name)
            if not np.isfinite(value):
                raise ValueError(f"Grid {name} must be finite, got {value!r}")
        if self.res <= 0:
            raise ValueError(f"Grid res must be > 0 degrees, got {self.res!r}")
        if not (-90.0 <= self.south < self.north <= 90.0):
            raise ValueError(f"Grid needs -90 <= south < north <= 90, got south={self.south}, north={self.north}")
        if not (self.west < self.east):
            raise ValueError(f"Grid needs west < east, got west={self.west}, east={self.east}")
        for axis, span in (("latitude", self.north - self.south), ("longitude", self.east - self.west)):
            cells = span / self.res
            if abs(cells - round(cells)) > 1e-6:
                raise ValueError(
                    f"Grid {axis} span {span:g}° is not a whole number of {self.res:g}° cells ({cells:.6f})"
                )

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_coords(cls, lat, lon, rtol: float = 1e-4) -> "Grid":
        """Rebuild a grid from 1-D cell-centre coordinates (either latitude order)."""
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        if lat.ndim != 1 or lon.ndim != 1 or lat.size < 2 or lon.size < 2:
            raise ValueError(f"lat and lon must be 1-D with >= 2 values, got shapes {lat.shape} and {lon.shape}")
        res = round(float(abs(lon[1] - lon[0])), 9)  # 0.01 stored as float has dust in the 1e-17 range
        for axis, values in (("lat", lat), ("lon", lon)):
            step = np.abs(np.diff(values))
            if not np.allclose(step, res, rtol=rtol, atol=0):
                raise ValueError(
                    f"{axis} is not a regular {res:g}° grid: steps range {step.min():g}..{step.max():g}"
                )
        half = res / 2.0
        snap = lambda v: round(round(v / res * 2) * res / 2, 9)  # noqa: E731 - keep edges free of float dust
        return cls(
            south=snap(lat.min() - half), north=snap(lat.max() + half),
            west=snap(lon.min() - half), east=snap(lon.max() + half), res=res,
        )

    @classmethod
    def from_dataset(cls, ds) -> "Grid":
        """The grid of an xarray object with ``lat``/``lon`` coordinates."""
        return cls.from_coords(ds["lat"].values, ds["lon"].values)

    # ---------------------------------------------------------------- geometry
    @property
    def ny(self) -> int:
        return int(round((self.north - self.south) / self.res))

    @property
    def nx(self) -> int:
        return int(round((self.east - self.west) / self.res))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.ny, self.nx)

    @property
    def size(self) -> int:
        return self.ny * self.nx

    @property
    def lat(self) -> np.ndarray:
        """Cell-centre latitudes, north to south (descending)."""
        return self.north - (np.arange(self.ny) + 0.5) * self.res

    @property
    def lon(self) -> np.ndarray:
        """Cell-centre longitudes, west to east."""
        return self.west + (np.arange(self.nx) + 0.5) * self.res

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north), the order GDAL and rasterio use."""
        return (self.west, self.south, self.east, self.north)

    @property
    def transform(self):
        """The affine transform of the north-up raster (``rasterio``/``affine`` convention)."""
        from affine import Affine

        return Affine(self.res, 0.0, self.west, 0.0, -self.res, self.north)

    def cell_area_km2(self) -> np.ndarray:
        """Spherical area of every cell in km², shape ``(ny, nx)``: R²·Δλ·(sin φ_n − sin φ_s)."""
        north_edges = np.radians(self.north - np.arange(self.ny) * self.res)
        south_edges = np.radians(self.north - (np.arange(self.ny) + 1) * self.res)
        row_area = EARTH_RADIUS_KM**2 * math.radians(self.res) * (np.sin(north_edges) - np.sin(south_edges))
        return np.repeat(row_area[:, None], self.nx, axis=1)

    def distance_km(self, row: int, col: int) -> np.ndarray:
        """Great-circle distance (km) from the centre of cell ``(row, col)`` to every cell centre."""
        self._check_cell(row, col)
        lat2d, lon2d = np.meshgrid(self.lat, self.lon, indexing="ij")
        return haversine_km(self.lat[row], self.lon[col], lat2d, lon2d)

    def index_of(self, lat, lon):
        """Row and column of the cells containing points (degrees); raises for points off the grid."""
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        rows = np.floor((self.north - lat) / self.res).astype(np.int64)
        cols = np.floor((lon - self.west) / self.res).astype(np.int64)
        outside = (rows < 0) | (rows >= self.ny) | (cols < 0) | (cols >= self.nx) | ~np.isfinite(lat + lon)
        if np.any(outside):
            i = int(np.flatnonzero(np.atleast_1d(outside))[0])
            bad_lat, bad_lon = np.atleast_1d(lat)[i], np.atleast_1d(lon)[i]
            raise ValueError(
                f"point {i} (lat={bad_lat}, lon={bad_lon}) lies outside the grid "
                f"{self.south}..{self.north} °N, {self.west}..{self.east} °E"
            )
        return rows, cols

    def contains(self, lat, lon) -> np.ndarray:
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        return (lat >= self.south) & (lat < self.north) & (lon >= self.west) & (lon < self.east)

    def enclosing(self, res: float, margin_cells: int = 1) -> "Grid":
        """A coarser grid (e.g. ERA5's native 0.1°) whose cells are aligned to multiples of ``res`` and
        that covers this grid with ``margin_cells`` extra cells on each side (room for bilinear
        interpolation)."""
        snap_down = lambda v: math.floor(round(v / res, 6)) * res  # noqa: E731
        snap_up = lambda v: math.ceil(round(v / res, 6)) * res  # noqa: E731
        return Grid(
            south=round(max(-90.0, snap_down(self.south) - margin_cells * res), 10),
            north=round(min(90.0, snap_up(self.north) + margin_cells * res), 10),
            west=round(snap_down(self.west) - margin_cells * res, 10),
            east=round(snap_up(self.east) + margin_cells * res, 10),
            res=res,
        )

    def _check_cell(self, row: int, col: int) -> None:
        if not (0 <= row < self.ny and 0 <= col < self.nx):
            raise ValueError(f"cell (row={row}, col={col}) is outside the {self.ny}x{self.nx} grid")

    # ---------------------------------------------------------------- tiles
    def tiles(self, size: int | tuple[int, int]) -> list[Tile]:
        """Cut the grid into tiles of ``size`` (or ``(rows, cols)``) cells; edge tiles are smaller.

        The tiles cover every cell exactly once; ids run row-major.
        """
        ty, tx = (size, size) if np.isscalar(size) else tuple(size)
        if int(ty) < 1 or int(tx) < 1:
            raise ValueError(f"tile size must be >= 1, got {size!r}")
        ty, tx = int(ty), int(tx)
        tiles = []
        for iy, r0 in enumerate(range(0, self.ny, ty)):
            for ix, c0 in enumerate(range(0, self.nx, tx)):
                tiles.append(Tile(len(tiles), iy, ix, slice(r0, min(r0 + ty, self.ny)), slice(c0, min(c0 + tx, self.nx))))
        return tiles

    def iter_tiles(self, size) -> Iterator[Tile]:
        yield from self.tiles(size)

    # ---------------------------------------------------------------- CF
    def cf_coords(self) -> dict:
        """xarray coordinate variables with CF attributes: ``{"lat": (dims, values, attrs), ...}``."""
        return {
            "lat": ("lat", self.lat, {"units": "degrees_north", "standard_name": "latitude",
                                        "long_name": "latitude of cell centre", "axis": "Y"}),
            "lon": ("lon", self.lon, {"units": "degrees_east", "standard_name": "longitude",
                                        "long_name": "longitude of cell centre", "axis": "X"}),
        }

    def cf_grid_mapping(self) -> dict:
        """Attributes of the CF ``crs`` (grid mapping) variable: WGS84 lat/lon, with its WKT."""
        return {
            "grid_mapping_name": "latitude_longitude",
            "longitude_of_prime_meridian": 0.0,
            "semi_major_axis": 6378137.0,
            "inverse_flattening": 298.257223563,
            "crs_wkt": _WGS84_WKT,
            "spatial_ref": _WGS84_WKT,
            "GeoTransform": " ".join(str(v) for v in (self.west, self.res, 0.0, self.north, 0.0, -self.res)),
            "ihs_grid": [self.south, self.north, self.west, self.east, self.res],
        }

    def to_dataset(self):
        """An empty xarray Dataset carrying the coordinates and the ``crs`` variable."""
        import xarray as xr

        ds = xr.Dataset(coords=self.cf_coords())
        ds[GRID_MAPPING_NAME] = xr.DataArray(np.int32(0), attrs=self.cf_grid_mapping())
        return ds


_WGS84_WKT = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
    'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433],AUTHORITY["EPSG","4326"]]'
)

#: The Beijing–Tianjin–Hebei analysis box of the seed paper (0.01°).
BTH_GRID = Grid(south=36.0, north=42.6, west=113.5, east=119.8, res=0.01)
