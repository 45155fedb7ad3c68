"""IHS radiation areas, IHS points and city boundaries as vector layers (GeoPackage and GeoJSON).

Radiation areas are the pixels stage 1 assigned to each source (region growing over the DEM, seed 000
§2.3.2; CSR membership ``member_offset``/``member_pixel`` of ``stage1.zarr``), traced into polygons
along pixel edges with :func:`rasterio.features.shapes`: rasterised back on the grid (pixel centre
inside), the polygons of a source give exactly its pixels, and all sources together exactly the
union mask ``ihs_mask``. Areas of different sources overlap where their regions grew into the same
pixels. City boundaries are traced the same way from the ``city_id`` raster of the input cubes.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..grid import Grid
from .sources import RunOutputs, atomic_path

AREAS_LAYER = "ihs_radiation_areas"
POINTS_LAYER = "ihs_sources"
CITIES_LAYER = "cities"


def trace_pixels(mask: np.ndarray, grid: Grid, rows: slice | None = None, cols: slice | None = None):
    """The polygon (``shapely`` Polygon or MultiPolygon) whose interior holds exactly the ``True`` pixels
    of ``mask`` (a window ``rows, cols`` of ``grid`` when given), edges on pixel edges."""
    from rasterio.features import shapes
    from rasterio.transform import Affine
    from shapely.geometry import shape
    from shapely.ops import unary_union

    rows = rows or slice(0, grid.ny)
    cols = cols or slice(0, grid.nx)
    transform = grid.transform @ Affine.translation(cols.start, rows.start)
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    parts = [shape(geom) for geom, value in shapes(mask, mask=mask.astype(bool), connectivity=4,
                                                    transform=transform) if value == 1]
    return unary_union(parts) if len(parts) > 1 else (parts[0] if parts else None)


def radiation_area_frame(outputs: RunOutputs):
    """One (Multi)Polygon per IHS with its attributes (:meth:`RunOutputs.ihs_table`), EPSG:4326."""
    import geopandas as gpd

    grid = outputs.grid
    table = outputs.ihs_table()
    geoms = []
    for members in outputs.membership():
        if members.size == 0:
            geoms.append(None)
            continue
        rr, cc = np.divmod(members, grid.nx)
        rows = slice(int(rr.min()), int(rr.max()) + 1)
        cols = slice(int(cc.min()), int(cc.max()) + 1)
        window = np.zeros((rows.stop - rows.start, cols.stop - cols.start), dtype=bool)
        window[rr - rows.start, cc - cols.start] = True
        geoms.append(trace_pixels(window, grid, rows, cols))
    return gpd.GeoDataFrame(table, geometry=geoms, crs="EPSG:4326")


def source_point_frame(outputs: RunOutputs):
    """The IHS locations as points with the same attributes as their areas."""
    import geopandas as gpd

    table = outputs.ihs_table()
    return gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(table["lon"], table["lat"]), crs="EPSG:4326")


def city_frame(outputs: RunOutputs):
    """City boundaries traced from ``city_id`` (cells whose centre lies in the city), or ``None``."""
    import geopandas as gpd

    cities = outputs.cities()
    if cities is None:
        return None
    city_id, names = cities
    grid = outputs.grid
    ids = [int(i) for i in np.unique(city_id) if i >= 0]
    area = grid.cell_area_km2()
    return gpd.GeoDataFrame({
        "city_index": ids,
        "city": [names[i] if i < len(names) else str(i) for i in ids],
        "n_pixels": [int((city_id == i).sum()) for i in ids],
        "area_km2": [float(area[city_id == i].sum()) for i in ids],
    }, geometry=[trace_pixels(city_id == i, grid) for i in ids], crs="EPSG:4326")


def vector_layers(outputs: RunOutputs) -> dict:
    """The layers of a run: radiation areas, IHS points and (when the run has cities) city boundaries."""
    layers = {AREAS_LAYER: radiation_area_frame(outputs), POINTS_LAYER: source_point_frame(outputs)}
    cities = city_frame(outputs)
    if cities is not None:
        layers[CITIES_LAYER] = cities
    return layers


def write_vectors(layers: dict, out_dir: Path) -> list[Path]:
    """``ihs_radiation_areas.gpkg`` holding every layer of :func:`vector_layers`, and one GeoJSON per layer."""
    written = []
    gpkg = out_dir / f"{AREAS_LAYER}.gpkg"
    tmp = atomic_path(gpkg)
    try:
        for name, frame in layers.items():
            frame.to_file(tmp, layer=name, driver="GPKG")
        os.replace(tmp, gpkg)
    finally:
        tmp.unlink(missing_ok=True)
    written.append(gpkg)
    for name, frame in layers.items():
        path = out_dir / f"{name}.geojson"
        tmp = atomic_path(path)
        try:
            frame.to_file(tmp, driver="GeoJSON")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        written.append(path)
    return written
