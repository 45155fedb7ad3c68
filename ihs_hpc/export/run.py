"""``export_run``: every output of a finished run in formats that open where users work.

Writes into ``OUT`` (file names say what they hold):

* ``<map>.tif`` — Cloud-Optimized GeoTIFFs of every map product (:data:`ihs_hpc.export.maps.MAP_PRODUCTS`):
  period means (``pm25_mean``, ``pm25_ihs_mean``, ``pm25_ihs_share_mean``, ``pm25_background_mean``),
  annual means (one band per year), trend slopes, Mann–Kendall z and p, and significance;
* ``pm25_period_mean_maps.nc``, ``pm25_annual_mean_maps.nc``, ``pm25_trend_maps.nc`` — the same maps as
  CF-1.8 NetCDF; ``<variable>_daily.nc`` (or ``_annual``, or no suffix for a map) for each variable asked
  for with ``netcdf=[...]`` (any cube or map of the run's stores);
* ``ihs_radiation_areas.gpkg`` (layers ``ihs_radiation_areas``, ``ihs_sources``, ``cities``) and one
  ``.geojson`` per layer;
* ``tables/*.csv`` and ``tables/ihs_tables.xlsx`` (when openpyxl is installed);
* ``export.json`` — what each file holds.

Every request is checked before anything is written (unknown variable, missing or unfinished store),
and every file is written under a temporary name and renamed when complete, so a failed export
never leaves a half-written file in place of an earlier one.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..io.cube import is_complete
from .cog import write_cog
from .maps import available_products, is_flag
from .netcdf import write_maps_netcdf, write_variable_netcdf
from .sources import VARIABLE_STORES, ExportError, RunOutputs, atomic_path
from .tables import write_tables
from .vector import AREAS_LAYER, vector_layers, write_vectors

NETCDF_MAP_FILES = {"mean": "pm25_period_mean_maps.nc", "annual": "pm25_annual_mean_maps.nc",
                    "trend": "pm25_trend_maps.nc"}


def _store_arrays(path: Path) -> dict[str, tuple[str, ...]]:
    """Names and dims of the arrays of a Zarr store, read from its metadata (complete or not)."""
    import zarr

    group = zarr.open_group(path, mode="r")
    out = {}
    for name, array in group.arrays():
        dims = getattr(array.metadata, "dimension_names", None) or ()
        out[name] = tuple(dims)
    return out


def resolve_variable(outputs: RunOutputs, request: str) -> tuple[str, str]:
    """``"pm25_ihs"`` or ``"stage3:pm25_ihs"`` → ``(store short name, variable)``.

    Raises :class:`ExportError` for an unknown store or variable, a name held by several stores
    without ``STORE:``, a variable that is not a map or cube, or an unfinished store.
    """
    store, _, variable = request.rpartition(":")
    if store and store not in VARIABLE_STORES:
        raise ExportError(f"--netcdf {request!r}: unknown store {store!r}; stores are {sorted(VARIABLE_STORES)}")
    candidates = [store] if store else list(VARIABLE_STORES)
    found, known = [], set()
    for name in candidates:
        path = outputs.path(name)
        if not (path / "zarr.json").is_file():
            continue
        arrays = _store_arrays(path)
        spatial = {k for k, dims in arrays.items() if {"lat", "lon"} <= set(dims) or {"met_lat", "met_lon"} <= set(dims)}
        spatial -= {"lat", "lon", "met_lat", "met_lon"}
        known |= spatial
        if variable in arrays:
            if variable not in spatial:
                raise ExportError(f"--netcdf {request!r}: {path.name}:{variable} has dims {arrays[variable]}; "
                                  f"only maps (lat, lon) and cubes (time, lat, lon) can be written as NetCDF")
            found.append(name)
    if not found:
        raise ExportError(f"--netcdf {request!r}: no map or cube named {variable!r} in "
                          f"{'the ' + store + ' store' if store else 'the run'} {outputs.run_dir}; "
                          f"known: {', '.join(sorted(known)) or 'none (no finished store)'}")
    if len(found) > 1:
        raise ExportError(f"--netcdf {request!r}: {variable!r} is in several stores ({', '.join(found)}); "
                          f"name one, e.g. {found[0]}:{variable}")
    if not is_complete(outputs.path(found[0])):
        raise ExportError(f"--netcdf {request!r}: {outputs.path(found[0])} is incomplete (its writer did not "
                          f"finish); rerun the stage that writes it")
    return found[0], variable


def _netcdf_name(store: str, variable: str, dims: tuple[str, ...], explicit: bool) -> str:
    suffix = "_daily" if "time" in dims else "_annual" if "year" in dims else ""
    return f"{variable}{'_' + store if explicit else ''}{suffix}.nc"


def export_run(run_dir, out_dir, *, netcdf: Iterable[str] = (), excel: bool | None = None,
               echo: Callable[[str], None] | None = None) -> dict:
    """Export a finished run (see the module docstring for what is written).

    Parameters
    ----------
    run_dir : path-like
        The run directory; its ``stage1``, input cubes and statistics stores must be complete.
    out_dir : path-like
        Output folder (created; files of the same names are replaced, other files are left alone).
    netcdf : iterable of str
        Extra variables to write as CF NetCDF: ``NAME`` or ``STORE:NAME`` with ``STORE`` one of
        ``cubes, prep, stage1, stage2, stage3, maps, trend_maps``.
    excel : bool, optional
        Write ``tables/ihs_tables.xlsx``; default: when openpyxl is installed.
    echo : callable, optional
        Progress messages.

    Returns
    -------
    dict
        The manifest written to ``export.json``: ``{"files": {relative path: description}, ...}``.
    """
    echo = echo or (lambda *_: None)
    outputs = RunOutputs(run_dir)
    out_dir = Path(out_dir)
    if out_dir.resolve() == outputs.run_dir.resolve():
        raise ExportError(f"--out {out_dir} is the run directory itself; choose another folder")
    # --- check every request before writing anything
    for store in ("cubes", "stage1", "maps", "trend_maps"):
        outputs.store(store)
    if not list(outputs.stats_dir.glob("*.csv")):
        raise ExportError(f"{outputs.stats_dir}: no statistics tables; run `ihs stats` on this run first")
    requests = [(resolve_variable(outputs, r), ":" in r) for r in netcdf]
    products = available_products(outputs)
    grid = outputs.grid
    maps = outputs.store("maps")
    time = outputs.store("cubes")["time"].values
    period = (time.min(), time.max())
    years = maps["year"].values.astype(int)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    period_text = f"{str(period[0])[:10]}/{str(period[1])[:10]}"

    # --- Cloud-Optimized GeoTIFFs
    for product, data in products:
        values = np.asarray(data.values, dtype=np.float32)
        bands = [str(y) for y in years] if product.kind == "annual" else None
        path = write_cog(out_dir / f"{product.name}.tif", values, grid, units=product.units,
                         description=product.long_name, band_names=bands, dtype="int8" if is_flag(product) else "float32",
                         tags={"ihs_source": f"stats/{product.store}.zarr:{product.variable}", "period": period_text,
                               **({"standard_name": product.standard_name} if product.standard_name else {})})
        files[path.name] = product.long_name + (" (one band per year)" if bands else "")
    echo(f"  {len(products)} Cloud-Optimized GeoTIFFs")

    # --- NetCDF-CF maps
    for kind, name in NETCDF_MAP_FILES.items():
        group = [(p, d) for p, d in products if p.kind == kind]
        if group:
            path = write_maps_netcdf(out_dir / name, group, grid, run_dir=outputs.run_dir, period=period,
                                     years=years, title=f"IHS-related PM2.5: {kind} maps of run {outputs.run_dir.name}")
            files[path.name] = f"{kind} maps: " + ", ".join(p.name for p, _ in group)
    for (store, variable), explicit in requests:
        ds = outputs.store(store)
        name = _netcdf_name(store, variable, ds[variable].dims, explicit)
        echo(f"  writing {name} from {VARIABLE_STORES[store]}:{variable} …")
        path = write_variable_netcdf(out_dir / name, ds, variable, run_dir=outputs.run_dir,
                                     store_name=VARIABLE_STORES[store])
        files[path.name] = f"{VARIABLE_STORES[store]}:{variable} ({ds[variable].attrs.get('long_name', '')})"
    echo("  NetCDF-CF: " + ", ".join(f for f in files if f.endswith(".nc")))

    # --- vectors and tables
    layers = vector_layers(outputs)
    for path in write_vectors(layers, out_dir):
        files[path.name] = "IHS radiation areas, IHS points and city boundaries" if path.suffix == ".gpkg" \
            else f"layer {path.stem}"
    areas = layers[AREAS_LAYER].drop(columns="geometry")
    for path in write_tables(outputs, out_dir / "tables", extra={"ihs_radiation_areas": areas}, excel=excel):
        files[f"tables/{path.name}"] = "statistics table" if path.suffix == ".csv" else "all tables, one sheet each"
    manifest = {"run_dir": str(outputs.run_dir), "crs": "EPSG:4326", "period": period_text,
                "years": [int(y) for y in years], "files": files}
    target = out_dir / "export.json"
    tmp = atomic_path(target)
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, target)
    echo(f"  {len(files)} files in {out_dir}")
    return manifest
