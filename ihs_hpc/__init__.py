"""ihs_hpc: PM2.5 from industrial heat sources, pixel by pixel and day by day, at HPC scale.

The public API below imports no torch (the optional GEMM backend only looks torch up when used).

Grid and stores
    :class:`Grid`, :class:`Tile`, :data:`BTH_GRID`, :func:`haversine_km`, :func:`open_store`
Stage 2 (seed 000 §2.3.3)
    :func:`stl` (statsmodels' STL, eqs. 1–2), :func:`stl_baseline`, :func:`mlr` (eq. 3),
    :func:`remove_met` (eq. 4), :func:`relative_humidity`
Stage 1 and preparation (§2.3.1–2.3.2)
    :func:`region_grow`, :func:`masks_by_year`, :func:`iqr_outliers`, :func:`fill_gaps`
Configuration and scenes
    :func:`load_config`, :func:`generate_scene`
Statistics and allocation
    the sub-packages :mod:`ihs_hpc.stats` (Mann–Whitney U, Pearson, Mann–Kendall, Sen's slope,
    Moran's I) and :mod:`ihs_hpc.allocation` (Gini, contribution coefficient, minimised-Gini plan)
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("ihs_hpc")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

from . import allocation, stats
from .config import load_config
from .grid import BTH_GRID, Grid, Tile, haversine_km
from .io.cube import open_store
from .ops.gapfill import fill_gaps
from .ops.humidity import relative_humidity
from .ops.mlr import mlr, remove_met
from .ops.outliers import iqr_outliers
from .ops.region_grow import masks_by_year, region_grow
from .ops.stl import stl, stl_baseline
from .synth import generate_scene

__all__ = [
    "BTH_GRID", "Grid", "Tile", "__version__", "allocation", "fill_gaps", "generate_scene", "haversine_km",
    "iqr_outliers", "load_config", "masks_by_year", "mlr", "open_store", "region_grow", "relative_humidity",
    "remove_met", "stats", "stl", "stl_baseline",
]
