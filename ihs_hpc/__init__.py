"""ihs_hpc: PM2.5 from industrial heat sources, pixel by pixel and day by day, at HPC scale.

The three-stage model of seed 000 (DOI 10.3390/atmos15010131). The public API below imports no
torch and no numba at ``import ihs_hpc``: each name loads its module on first use.

Runs
    :class:`Run` — one run directory and its YAML: ``Run("my.yaml").run()``, ``.stage2()``,
    ``.status()``, ``.open("stage2")`` (an xarray Dataset), ``.export(out)``
Grid and stores
    :class:`Grid`, :class:`Tile`, :data:`BTH_GRID`, :func:`haversine_km`, :func:`open_store`
Stage 2 (seed 000 §2.3.3)
    :func:`stl` (statsmodels' STL, eq. 1), :func:`stl_baseline` (eq. 2), :func:`mlr` (eq. 3),
    :func:`remove_met` (eq. 4), :func:`relative_humidity`
Stage 1 and preparation (§2.3.1–2.3.2)
    :func:`region_grow`, :func:`masks_by_year`, :func:`iqr_outliers`, :func:`fill_gaps`
Statistics (§2.3.5)
    :func:`mann_kendall`, :func:`sens_slope`, :func:`mann_whitney_u` (eq. 11), :func:`pearson`
    (eq. 12), :func:`morans_i` (eq. 13); the numpy cores live in :mod:`ihs_hpc.stats`
Configuration and scenes
    :func:`load_config`, :func:`generate_scene`
Allocation
    the sub-package :mod:`ihs_hpc.allocation` (Gini, contribution coefficient, minimised-Gini plan)

``stl``, ``stl_baseline``, ``mlr``, ``remove_met``, ``iqr_outliers`` and the statistics take numpy
arrays (and return what the numpy functions of :mod:`ihs_hpc.ops` and :mod:`ihs_hpc.stats` return)
or xarray DataArrays with ``dim=`` (default ``"time"``), returning DataArrays or Datasets with the
input's coordinates and units, lazy on dask input (:mod:`ihs_hpc.xr`).
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("ihs_hpc")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

#: public name -> module that defines it; imported on first use (PEP 562), so ``import ihs_hpc`` and
#: the ``ihs`` command start fast and load numba, pandas or matplotlib only when a name needs them.
_LAZY = {
    "allocation": None, "stats": None,
    "Run": "run_directory",
    "load_config": "config",
    "BTH_GRID": "grid", "Grid": "grid", "Tile": "grid", "haversine_km": "grid",
    "open_store": "io.cube",
    "fill_gaps": "ops.gapfill",
    "relative_humidity": "ops.humidity",
    "masks_by_year": "ops.region_grow", "region_grow": "ops.region_grow",
    # numpy or xarray input (ihs_hpc.xr): the numpy cores are in ihs_hpc.ops and ihs_hpc.stats
    "stl": "xr.decomposition", "stl_baseline": "xr.decomposition",
    "mlr": "xr.regression", "remove_met": "xr.regression",
    "iqr_outliers": "xr.outliers",
    "mann_kendall": "xr.statistics", "sens_slope": "xr.statistics", "mann_whitney_u": "xr.statistics",
    "pearson": "xr.statistics", "morans_i": "xr.statistics",
    "generate_scene": "synth",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'ihs_hpc' has no attribute {name!r}")
    from importlib import import_module

    module = import_module(f".{_LAZY[name] or name}", __name__)
    value = module if _LAZY[name] is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
