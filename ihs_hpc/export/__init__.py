"""Exports of a finished run for GIS, NetCDF tools and spreadsheets (``ihs export RUN --out DIR``).

:func:`export_run` writes Cloud-Optimized GeoTIFFs (:mod:`.cog`), CF-1.8 NetCDF (:mod:`.netcdf`),
GeoPackage/GeoJSON radiation areas (:mod:`.vector`) and CSV/Excel tables (:mod:`.tables`).
"""
from .run import export_run
from .sources import ExportError, RunOutputs

__all__ = ["export_run", "ExportError", "RunOutputs"]
