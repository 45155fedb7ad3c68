"""City polygons → ``city_id (lat, lon)`` int16 raster and a ``city`` names table.

Polygons (GeoJSON, Shapefile, GeoPackage …) are rasterised onto the analysis grid with
``rasterio.features.rasterize`` on the grid's transform, ``all_touched=False``: a cell belongs to a city
when its **centre** lies inside the polygon. ``city_id`` is the index into the ``city`` dim (0, 1, …
in file order), ``-1`` outside every city; where polygons overlap, the later one wins.

Chinese map data (AMap/Gaode, and the cnmaps package built from it) carry the GCJ-02 offset while
labelled WGS84: ``crs_offset="gcj02"`` moves every vertex to WGS84 first (:mod:`ihs_hpc.io.gcj02`,
≈ 100–700 m in BTH). ``crs_offset="auto"`` (the default) does so for files whose name contains
``cnmaps`` (such as the bundled ``bth_13_cities_cnmaps.geojson``) and for no others.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..grid import Grid
from .errors import IngestError, IngestWarning

#: File-name fragments of sources known to be in GCJ-02 (used by ``crs_offset="auto"``).
GCJ02_SOURCES = ("cnmaps", "amap", "gaode")


def resolve_crs_offset(path, crs_offset) -> str | None:
    """``"gcj02"`` or ``None`` for a file and a ``crs_offset`` setting (``"auto"``, ``"gcj02"``, ``None``)."""
    if crs_offset in (None, "none", "wgs84", False):
        return None
    if crs_offset == "gcj02":
        return "gcj02"
    if crs_offset == "auto":
        name = Path(path).name.lower()
        return "gcj02" if any(s in name for s in GCJ02_SOURCES) else None
    raise IngestError(f"crs_offset must be 'auto', 'gcj02' or None, got {crs_offset!r}")


#: Default property names of the optional city fields, used when present (``"auto"``).
AUTO_FIELDS = {"name_en": "name_en", "adcode": "adcode"}


def read_city_polygons(path, *, name_field: str = "name", name_en_field: str | None = "auto",
                       adcode_field: str | None = "auto", crs_offset="auto", layer=None):
    """The polygons as a GeoDataFrame in EPSG:4326 (GCJ-02 removed when asked), with columns
    ``city_name``, ``city_name_en``, ``city_adcode``, ``geometry``.

    ``name_field`` must exist. ``name_en_field`` and ``adcode_field`` are optional: ``"auto"`` (default)
    uses the properties ``name_en`` / ``adcode`` when the file has them, a name requires that
    property, and None means none (the English name is then the name; adcodes are 0, 1, 2 …).
    """
    import geopandas as gpd

    path = Path(os.path.expanduser(os.fspath(path)))
    if not path.exists():
        raise IngestError("no such file", path=path)
    try:
        gdf = gpd.read_file(path, layer=layer) if layer is not None else gpd.read_file(path)
    except Exception as exc:
        raise IngestError(f"cannot be read as a vector file: {exc}", path=path) from None
    if len(gdf) == 0:
        raise IngestError("holds no features", path=path)
    if gdf.crs is None:
        warnings.warn(f"{path}: no CRS; taken as WGS84 (EPSG:4326)", IngestWarning, stacklevel=2)
        gdf = gdf.set_crs("EPSG:4326")
    elif not gdf.crs.equals("EPSG:4326"):
        gdf = gdf.to_crs("EPSG:4326")
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    if name_en_field == "auto":
        name_en_field = AUTO_FIELDS["name_en"] if AUTO_FIELDS["name_en"] in columns else None
    if adcode_field == "auto":
        adcode_field = AUTO_FIELDS["adcode"] if AUTO_FIELDS["adcode"] in columns else None
    for field, what in ((name_field, "name"), (name_en_field, "English name"), (adcode_field, "adcode")):
        if field is not None and field not in columns:
            raise IngestError(f"no {what} property {field!r}; the properties are {columns}", path=path)
    if not gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).all():
        bad = gdf.geometry.geom_type[~gdf.geometry.geom_type.isin(["Polygon", "MultiPolygon"])].iloc[0]
        raise IngestError(f"holds {bad} geometries; city boundaries must be polygons", path=path)
    geoms = gdf.geometry.values
    if resolve_crs_offset(path, crs_offset) == "gcj02":
        from .gcj02 import geometry_gcj02_to_wgs84

        geoms = geometry_gcj02_to_wgs84(np.asarray(geoms))
    out = gpd.GeoDataFrame(
        {
            "city_name": gdf[name_field].astype(str).to_numpy(),
            "city_name_en": gdf[name_en_field].astype(str).to_numpy() if name_en_field else gdf[name_field].astype(str).to_numpy(),
            "city_adcode": (gdf[adcode_field].astype(np.int64).to_numpy() if adcode_field
                            else np.arange(len(gdf), dtype=np.int64)),
        },
        geometry=list(geoms), crs="EPSG:4326",
    )
    out.attrs["path"] = str(path)
    out.attrs["crs_offset"] = resolve_crs_offset(path, crs_offset)
    return out


def rasterize_cities(polygons, grid: Grid) -> np.ndarray:
    """``city_id`` int16 ``(ny, nx)``: the index of the polygon holding each cell centre, -1 for none."""
    from rasterio.features import rasterize

    if len(polygons) > np.iinfo(np.int16).max:
        raise IngestError(f"{len(polygons)} cities do not fit an int16 city_id")
    import shapely

    # only the part inside the grid (plus a margin) matters: far fewer vertices to hand to GDAL
    margin = 2 * grid.res
    geoms = shapely.clip_by_rect(np.asarray(polygons.geometry.values), grid.west - margin, grid.south - margin,
                                 grid.east + margin, grid.north + margin)
    shapes = [(geom, i) for i, geom in enumerate(geoms) if geom is not None and not geom.is_empty]
    if not shapes:
        return np.full(grid.shape, -1, dtype=np.int16)
    return rasterize(shapes, out_shape=grid.shape, transform=grid.transform, fill=-1, all_touched=False,
                     dtype="int16")


def read_cities(path, grid: Grid, *, name_field: str = "name", name_en_field: str | None = "auto",
                adcode_field: str | None = "auto", crs_offset="auto", layer=None):
    """City raster and table as an xarray Dataset: ``city_id (lat, lon)`` int16 and, on dim ``city``,
    ``city_name``, ``city_name_en`` (str), ``city_adcode`` (int64), with a ``city`` coordinate 0..n-1.

    Warns naming the cities that cover no cell centre of the grid.
    """
    import xarray as xr

    polygons = read_city_polygons(path, name_field=name_field, name_en_field=name_en_field,
                                  adcode_field=adcode_field, crs_offset=crs_offset, layer=layer)
    city_id = rasterize_cities(polygons, grid)
    counts = np.bincount(city_id[city_id >= 0].ravel().astype(np.int64), minlength=len(polygons))
    empty = [polygons["city_name_en"].iloc[i] for i in np.flatnonzero(counts == 0)]
    if len(empty) == len(polygons):
        raise IngestError(f"no city polygon covers a cell centre of the grid ({grid.south}..{grid.north} °N, "
                          f"{grid.west}..{grid.east} °E)", path=path)
    if empty:
        warnings.warn(f"{path}: {len(empty)} cities cover no cell of the grid: {empty}", IngestWarning, stacklevel=2)
    ds = grid.to_dataset()
    ds["city_id"] = xr.DataArray(city_id, dims=("lat", "lon"), attrs={
        "long_name": "index of the city holding the cell centre (-1: none)", "flag_values": -1,
        "grid_mapping": "crs", "ihs_crs_offset_removed": str(polygons.attrs["crs_offset"] or "none")})
    ds = ds.assign_coords(city=("city", np.arange(len(polygons), dtype=np.int16), {"long_name": "city index (value of city_id)"}))
    ds["city_name"] = ("city", polygons["city_name"].to_numpy(dtype=object), {"long_name": "city name"})
    ds["city_name_en"] = ("city", polygons["city_name_en"].to_numpy(dtype=object), {"long_name": "city name (English)"})
    ds["city_adcode"] = ("city", polygons["city_adcode"].to_numpy(), {"long_name": "administrative division code"})
    ds["city_cells"] = ("city", counts.astype(np.int64), {"long_name": "number of grid cells in the city"})
    return ds


def boundary_mask(city_id: np.ndarray) -> np.ndarray:
    """Cells inside any city (the region boundary, by the same cell-centre rule)."""
    return np.asarray(city_id) >= 0
