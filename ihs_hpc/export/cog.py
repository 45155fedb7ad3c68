"""Cloud-Optimized GeoTIFFs (GDAL's COG driver) of the run's maps, for QGIS, ArcGIS and GDAL.

Each file is one map (or one band per year for annual maps), on the analysis grid in EPSG:4326 with
the grid's affine transform, DEFLATE-compressed, with ``nodata`` set (NaN for floats, −128 for the
int8 trend-significance flags), the band's unit type and description, and GDAL metadata tags naming
the quantity, its units and the store variable it came from.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..grid import Grid
from .sources import atomic_path

#: nodata of int8 flag maps (the trend-significance sign −1/0/1).
INT8_NODATA = -128


def write_cog(path: str | os.PathLike, data: np.ndarray, grid: Grid, *, units: str, description: str,
              band_names: Sequence[str] | None = None, tags: Mapping[str, object] | None = None,
              dtype: str = "float32") -> Path:
    """Write ``data`` (``(ny, nx)`` or ``(bands, ny, nx)``) as a Cloud-Optimized GeoTIFF.

    Parameters
    ----------
    path : path-like
        Output ``.tif``; written to a temporary sibling first and renamed when complete.
    data : ndarray
        Values on ``grid`` (rows north to south); NaN marks no data.
    grid : Grid
        The analysis grid: gives the transform and the size; the CRS is EPSG:4326.
    units, description : str
        Band unit type and the file's ``long_name`` (also each band's description when
        ``band_names`` is not given).
    band_names : sequence of str, optional
        One description per band (e.g. the years of an annual map).
    tags : mapping, optional
        Extra GDAL metadata items.
    dtype : {"float32", "int8"}
        Storage type; ``int8`` stores NaN as :data:`INT8_NODATA`.
    """
    import rasterio
    from rasterio.crs import CRS

    path = Path(path)
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3 or data.shape[1:] != grid.shape:
        raise ValueError(f"{path.name}: data of shape {data.shape} does not fit the {grid.ny}x{grid.nx} grid")
    if dtype == "int8":
        nodata = INT8_NODATA
        values = np.where(np.isfinite(data), data, INT8_NODATA).astype(np.int8)
    else:
        nodata = np.nan
        values = data.astype(np.float32)
    names = list(band_names) if band_names is not None else [description] * values.shape[0]
    if len(names) != values.shape[0]:
        raise ValueError(f"{path.name}: {len(names)} band names for {values.shape[0]} bands")
    profile = {
        "driver": "COG", "width": grid.nx, "height": grid.ny, "count": values.shape[0], "dtype": values.dtype.name,
        "crs": CRS.from_epsg(4326), "transform": grid.transform, "nodata": nodata,
        "compress": "DEFLATE", "predictor": 2 if dtype == "int8" else 3, "blocksize": 256,
        "overview_resampling": "average" if dtype != "int8" else "nearest",
    }
    tmp = atomic_path(path)
    try:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(values)
            dst.update_tags(long_name=description, units=units, **{k: str(v) for k, v in (tags or {}).items()})
            dst.units = tuple([units] * values.shape[0])
            dst.descriptions = tuple(names)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
