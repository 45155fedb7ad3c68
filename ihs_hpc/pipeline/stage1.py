"""Stage 1 (seed 000 §2.3.2): IHS radiation areas by region growing over the DEM.

Writes ``stage1.zarr``:

* ``ihs_count (lat, lon)`` — number of IHS areas covering each pixel (areas overlap);
* ``ihs_mask (lat, lon)`` — union of all areas; ``background (lat, lon)`` — outside every area;
* ``ihs_index (lat, lon)`` — index (into the ``ihs`` table) of the nearest source whose area covers
  the pixel, −1 outside;
* ``ihs_count_year (year, lat, lon)`` — count of areas whose source operated that year;
* per-IHS membership, CSR-style: ``member_offset (ihs_edge)`` and ``member_pixel (member)`` (flat
  ``row * nx + col`` indices, sorted per source) — the members of source ``i`` are
  ``member_pixel[member_offset[i]:member_offset[i+1]]``.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..config import RunConfig
from ..errors import StoreError
from ..grid import Grid
from ..io.cube import create_store, map_spec, mark_complete, open_store, publish, write_array
from ..ops.region_grow import masks_by_year, region_grow
from .inputs import input_store


def radiation_areas(dem: np.ndarray, grid: Grid, ihs_row, ihs_col, max_km: float):
    """Region growing from every IHS pixel; returns the :class:`RegionGrowResult` and ``ihs_index``."""
    seeds = np.column_stack([np.asarray(ihs_row, dtype=np.int64), np.asarray(ihs_col, dtype=np.int64)])
    result = region_grow(dem, grid.lat, grid.lon, seeds, max_km=max_km)
    ny, nx = grid.shape
    nearest = np.full(ny * nx, -1, dtype=np.int32)
    best = np.full(ny * nx, np.inf)
    lat2d, lon2d = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    from ..grid import haversine_km

    for i, members in enumerate(result.members):
        d = haversine_km(grid.lat[seeds[i, 0]], grid.lon[seeds[i, 1]], lat2d.ravel()[members], lon2d.ravel()[members])
        closer = d < best[members]
        best[members[closer]] = d[closer]
        nearest[members[closer]] = i
    return result, nearest.reshape(ny, nx)


def run_stage1(config: RunConfig, client, echo) -> dict:
    """Stage 1 (seed 000 §2.3.2): IHS radiation areas by downhill region growing into ``stage1.zarr``."""
    from .run import store_path

    from .plan import stamp, staging_path

    cubes = input_store(config)
    final = store_path(config, "stage1")
    out = staging_path(final)
    source = open_store(cubes)
    for name in ("dem", "ihs_row", "ihs_col", "ihs_operating"):
        if name not in source:
            raise StoreError(f"{cubes}: stage 1 needs variable {name!r}, not found")
    grid = Grid.from_dataset(source)
    dem = source.dem.values.astype(np.float64)
    max_km = float(config["stage1.max_km"])
    result, nearest = radiation_areas(dem, grid, source.ihs_row.values, source.ihs_col.values, max_km)
    operating = source.ihs_operating.values.astype(bool)
    by_year = masks_by_year(result.members, operating, grid.shape)
    offsets = np.concatenate([[0], np.cumsum([len(m) for m in result.members])]).astype(np.int64)
    pixels = np.concatenate(result.members).astype(np.int64) if result.members else np.zeros(0, np.int64)

    static = xr.Dataset(
        {
            "ihs_count_year": (("year", "lat", "lon"), by_year,
                               {"units": "1", "long_name": "number of operating IHS areas covering the pixel"}),
            "member_offset": ("ihs_edge", offsets, {"long_name": "start of each IHS's members in member_pixel"}),
            "member_pixel": ("member", pixels, {"long_name": "flat pixel index row*nx+col of IHS area members"}),
            "ihs_area_km2": ("ihs", np.array([grid.cell_area_km2().ravel()[m].sum() for m in result.members]),
                             {"units": "km2", "long_name": "area of the IHS radiation area"}),
        },
        coords={"year": source.year.values},
    )
    static["ihs_count_year"].attrs["grid_mapping"] = "crs"
    tile_size = config["grid.tile_size"]
    specs = {
        "ihs_count": map_spec("1", "number of IHS radiation areas covering the pixel", dtype="int32"),
        "ihs_mask": map_spec("1", "inside at least one IHS radiation area", dtype="int8"),
        "background": map_spec("1", "outside every IHS radiation area", dtype="int8"),
        "ihs_index": map_spec("1", "index of the nearest IHS whose area covers the pixel (-1: none)", dtype="int32"),
    }
    create_store(out, grid, specs, tile_size=tile_size, static=static, overwrite=True,
                 attrs={"max_km": max_km, "rule": "8-neighbour growth into strictly lower neighbours (seed 000 §2.3.2)",
                        **stamp(config, "stage1")})
    write_array(out, "ihs_count", result.count)
    write_array(out, "ihs_mask", (result.count > 0).astype(np.int8))
    write_array(out, "background", (result.count == 0).astype(np.int8))
    write_array(out, "ihs_index", nearest)
    n_area = int((result.count > 0).sum())
    mark_complete(out, n_ihs=len(result.members), n_area_pixels=n_area)
    publish(out, final)
    echo(f"  {len(result.members)} IHS, {n_area} pixels in radiation areas "
         f"({100 * n_area / grid.size:.1f} % of the grid)")
    return {"store": str(final), "n_ihs": len(result.members), "area_pixels": n_area}
