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

#: public name -> module that defines it; imported on first use (PEP 562), so ``import ihs_hpc`` and
#: the ``ihs`` command start fast and load numba, pandas or matplotlib only when a name needs them.
_LAZY = {
    "allocation": None, "stats": None,
    "load_config": "config",
    "BTH_GRID": "grid", "Grid": "grid", "Tile": "grid", "haversine_km": "grid",
    "open_store": "io.cube",
    "fill_gaps": "ops.gapfill",
    "relative_humidity": "ops.humidity",
    "mlr": "ops.mlr", "remove_met": "ops.mlr",
    "iqr_outliers": "ops.outliers",
    "masks_by_year": "ops.region_grow", "region_grow": "ops.region_grow",
    "stl": "ops.stl", "stl_baseline": "ops.stl",
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
