"""Ingest: real input files → the run's input store ``cubes.zarr`` (what every later stage reads).

Configuration (a plain dict, e.g. the ``input.files`` section of a run's YAML)::

    start: "2012-01-01"            # first day (inclusive), required
    end: "2021-12-31"              # last day (inclusive), required
    grid: {south: 36.0, north: 42.6, west: 113.5, east: 119.8, res: 0.01}
                                   # or [south, north, west, east, res], or "bth"; default: the first
                                   # PM2.5 file's own extent and resolution (reported when taken);
                                   # the grid= argument of ingest() wins
    tile_size: 64                  # default 64; the tile_size= argument wins
    allow_gaps: false              # missing days: error (default) or NaN days with a warning; PM2.5
                                   # days are then filled by prep, meteorology along time in stage 2
    plausible: {pm25: [0, 2000]}   # per-variable valid ranges in store units (defaults: see
                                   # ihs_hpc.io.plausibility); values outside are set to missing and
                                   # counted per file and variable
    strict: false                  # true: an implausible value is an error naming file, variable, value
    fingerprint_content: false     # true: input files enter the run's fingerprint by content hash,
                                   # not only by path, size and modification time
    clip_to_boundary: false        # PM2.5 outside the union of the city polygons -> NaN
    memory_mb: 1024                # budget of the rechunk buffers (sets batch_days when that is null)
    batch_days: null               # days per pass-1 batch (default: from memory_mb, 8..128)
    workers: 1                     # processes reading daily files in parallel in pass 1
    work_dir: null                 # scratch for the rechunk (default: <out>.work beside the store)
    pm25:
      path: /data/CHAP             # directory (searched recursively), glob, file, or a list of them
      format: chap-netcdf          # chap-netcdf | netcdf | geotiff
      variable: PM2.5              # NetCDF variable
      band: 1                      # GeoTIFF band (index or description)
      date_regex: "(?<!\\d)(\\d{8})(?!\\d)"  # one capture group with the day in the file name
      date_format: "%Y%m%d"        # strptime format of that group
      glob: null                   # file pattern inside directories (default per format)
    era5:
      path: /data/era5             # as for pm25
      format: cds-netcdf           # cds-netcdf | gee-geotiff
      units: {}                    # per-variable unit override, e.g. {t2m: degC}
      tp_statistic: sum            # sum: tp is a daily total; mean: daily mean of hourly values (x24)
      utc_offset_hours: 8          # local day for hourly CDS data (Beijing time)
      band_names: null             # gee-geotiff: band names in band order if descriptions are lost
      date_regex / date_format / glob   # gee-geotiff: as for pm25
    dem:
      path: /data/dem.tif          # GeoTIFF(s) in any CRS, or NetCDF with 1-D lat/lon
      variable: null               # NetCDF variable
      resampling: auto             # auto | average | bilinear | nearest | ...
    urban:                         # optional: built-up or population density raster (GHSL, WorldPop, ...),
      path: /data/ghsl_built.tif   #   stage 3's drift covariate beside elevation; keys as for dem
    ihs:
      path: /data/ihs.csv          # CSV, GeoJSON, Shapefile
      id: null                     # column names (null: aliases, see ihs_hpc.io.ihs_points)
      lon: null
      lat: null
      name: null
      category: null
      start: null                  # start/end year columns
      end: null
      status: null                 # long table CSV ihs_id, year, operating (instead of start/end)
      missing_years: not_operating # long table: years without a row -> not_operating | operating | error
      outside: error               # error | drop
      crs_offset: null             # gcj02: the points are in GCJ-02
    cities:                        # optional: without it city_id is -1 everywhere (with a warning)
      path: /work/shared/data/bth_boundaries/bth_13_cities_cnmaps.geojson
      name: name                   # property names; only the name is required
      name_en: auto                # auto: "name_en" when the file has it; a property name; null: none
      adcode: auto                 # auto: "adcode" when the file has it; a property name; null: none
      crs_offset: auto             # auto (gcj02 for cnmaps/AMap files) | gcj02 | null (none)

Output: ``pm25 (time, lat, lon)`` float32 µg m-3; ``t2m, d2m, rh, tp, sp, u10, v10 (time, met_lat,
met_lon)`` on ``grid.enclosing(0.1, margin_cells=1)``; ``dem (lat, lon)`` m; ``urban (lat, lon)`` (when
configured, in its own units); ``city_id (lat, lon)`` int16
with the ``city`` table; the ``ihs`` table with ``ihs_operating (ihs, year)``. Root attributes record
the configuration, the source files and the unit conversions.

Atomicity and resumption: the store is built in ``<out>.partial`` and renamed to ``<out>`` only after
:func:`~ihs_hpc.io.cube.mark_complete`; an existing complete ``<out>`` is left untouched until then (and
replaced only with ``overwrite=True``). A failed or interrupted ingest leaves ``<out>.partial`` with
``ihs_complete = False`` (which :func:`~ihs_hpc.io.cube.open_store` refuses) plus the scratch directory;
rerunning with the same configuration and files resumes: finished pass-1 batches and finished tiles
are skipped. A different configuration starts afresh.

Memory: the daily files arrive time-sliced while the store is time-contiguous. Pass 1 reads
``batch_days`` days at a time into a buffer of ``batch_days × ny × nx`` float32 and writes it, one
tile-row band at a time, to a scratch Zarr chunked ``(batch_days, tile, tile)``; pass 2 reads one
variable of one tile with all days (``n_days × tile²`` float32, aligned with scratch chunks, no read
amplification) and writes it with :func:`~ihs_hpc.io.cube.write_tile`. ERA5 files are closed after
each batch (an open NetCDF4 file keeps HDF5 chunk caches). The stated bound,
:func:`memory_bound_mb`, is ``baseline + 128 MiB + max(pass 1, pass 2) + 64 MiB``: it depends on the
length of the record only through the one-tile term. For the full ``bth`` scene (ten years of 660 × 630
days) it is ≈ 724 MiB; measured 630 MiB (``benchmarks/bench_ingest_full.py``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np

from ..grid import Grid
from .cube import VarSpec, create_store, is_complete, map_spec, mark_complete, met_spec, publish, write_array
from .errors import IngestError, IngestWarning
# the configuration checks and the rechunk live in their own modules; their public names stay importable here
from .ingest_config import renamed_options, check_config, grid_from_config, input_files  # noqa: F401
from .rechunk import Progress, memory_bound_mb, write_daily_cube  # noqa: F401  (memory_bound_mb re-exported)

MET_RES = 0.1


# ---------------------------------------------------------------------------------------------- atomic store
def _paths(out_path, work_dir=None) -> tuple[Path, Path, Path]:
    out = Path(os.path.expanduser(os.fspath(out_path))).resolve()
    partial = out.with_name(out.name + ".partial")
    work = Path(work_dir).expanduser().resolve() / (out.name + ".work") if work_dir else out.with_name(out.name + ".work")
    return out, partial, work


def _prepare_partial(out: Path, partial: Path, work: Path, fingerprint: str, overwrite: bool) -> None:
    if out.exists() and is_complete(out) and not overwrite:
        raise IngestError(f"{out} already holds a complete store; pass overwrite=True to replace it")
    if out.exists() and not (out / "zarr.json").exists() and any(out.iterdir()):
        raise IngestError(f"{out} exists and is not a Zarr store; refusing to replace it")
    if partial.exists():
        old = None
        try:
            import zarr

            old = zarr.open_group(partial, mode="r").attrs.get("ihs_ingest_fingerprint")
        except Exception:
            old = None
        if old != fingerprint:
            shutil.rmtree(partial)
            shutil.rmtree(work, ignore_errors=True)
    fp_file = work / "fingerprint"
    if work.exists() and (not fp_file.exists() or fp_file.read_text() != fingerprint):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    fp_file.write_text(fingerprint)


def _publish(out: Path, partial: Path, work: Path) -> None:
    """Swap the finished partial store in (the old store, if any, is removed only afterwards)."""
    publish(partial, out)
    shutil.rmtree(work, ignore_errors=True)


def _fingerprint(payload) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _files_digest(paths) -> str:
    h = hashlib.sha256()
    for p in paths:
        if p is None:
            h.update(b"<gap>")
            continue
        try:
            st = os.stat(p)
            h.update(f"{p}|{st.st_size}|{int(st.st_mtime)}".encode())
        except OSError:
            h.update(str(p).encode())
    return h.hexdigest()[:32]


# ---------------------------------------------------------------------------------------------- PM2.5 only
def ingest_pm25(path, out_path, grid: Grid, *, start, end, tile_size: int = 64, batch_days: int | None = None,
                memory_mb: float | None = None, workers: int = 1, work_dir=None, progress=None,
                overwrite: bool = False, mask: np.ndarray | None = None, **reader_options) -> Path:
    """Daily PM2.5 files → a complete store holding only ``pm25 (time, lat, lon)`` (bounded memory).

    ``reader_options`` go to :class:`~ihs_hpc.io.chap.DailyPM25Source` (``format``, ``variable``,
    ``date_regex``, ``allow_gaps`` …). Built in ``<out>.partial``, published on success.
    """
    from .chap import DailyPM25Source

    source = DailyPM25Source(path, grid, start, end, mask=mask, **reader_options)
    out, partial, work = _paths(out_path, work_dir)
    fingerprint = _fingerprint({"kind": "pm25", "grid": grid, "tile": tile_size, "start": str(start), "end": str(end),
                                "files": _files_digest(source.files.values()), "options": reader_options,
                                "mask": None if mask is None else hashlib.sha256(np.asarray(mask).tobytes()).hexdigest()})
    _prepare_partial(out, partial, work, fingerprint, overwrite)
    create_store(partial, grid, {"pm25": VarSpec(("time", "lat", "lon"), source.variables["pm25"])},
                 tile_size=tile_size, time=source.days, attrs={"ihs_ingest_fingerprint": fingerprint})
    stats = write_daily_cube(partial, source, grid, tile_size=tile_size, work_dir=work, batch_days=batch_days,
                             memory_mb=memory_mb, workers=workers, progress=progress)
    mark_complete(partial, title="PM2.5 ingested from daily files", ihs_pm25_source=json.dumps(source.describe()),
                  ihs_ingest_stats=json.dumps({k: v for k, v in stats.items() if k != "variables"}))
    _publish(out, partial, work)
    return out


def ingest(config: Mapping, out_path, *, grid: Grid | None = None, tile_size: int | None = None, progress=None,
           overwrite: bool = False, attrs: Mapping | None = None, echo=None) -> Path:
    """Read every input named in ``config`` (module docstring) and write the complete input store.

    Parameters
    ----------
    config : mapping
        The ingest configuration.
    out_path : path
        The store to write (``RUN/cubes.zarr``).
    grid : Grid, optional
        Analysis grid (default: ``config["grid"]``, else the first PM2.5 file's own extent and
        resolution, which is then reported through ``echo``).
    tile_size : int, optional
        Tile edge in cells (default: ``config["tile_size"]``, else 64).
    progress : None, False or callable
        ``None``: tqdm bars; ``False``: silent; a callable ``(stage, done, total)``.
    overwrite : bool
        Replace an existing complete store (only once the new one is complete).
    attrs : mapping, optional
        Extra root attributes of the store (the run's fingerprint), written when it is created.
    echo : callable, optional
        Where notes for the user go (a default taken, implausible values masked); default: warnings.

    Returns the path of the complete store. Raises :class:`IngestError` for bad input, naming the file,
    day, variable or IHS id.
    """
    from .chap import DailyPM25Source
    from .daily_files import day_range
    from .cities import boundary_mask, read_cities
    from .dem import read_dem
    from .era5 import open_era5
    from .ihs_points import read_ihs

    config = check_config(config)
    extra_attrs = dict(attrs or {})
    out, partial, work = _paths(out_path, config.get("work_dir"))
    if is_complete(out) and not overwrite:  # before any reading
        raise IngestError(f"{out} already holds a complete store; pass overwrite=True to replace it")
    say = echo or (lambda text: warnings.warn(text, IngestWarning, stacklevel=3))
    if grid is None and config.get("grid") is None:
        from .chap import file_grid

        p = config["pm25"]
        first = next(iter(input_files(config)["pm25"]), None)
        if first is None:
            raise IngestError(f"no PM2.5 files found to take the grid from (input.files.pm25.path = {p['path']!r})",
                              path=str(p["path"]))
        grid = file_grid(first, format=p.get("format", "chap-netcdf"))
        say(f"input.files.grid not set: using the PM2.5 files' own grid from {first.name}: "
            f"{grid.south}..{grid.north} °N, {grid.west}..{grid.east} °E at {grid.res}° ({grid.ny} x {grid.nx} cells)")
    grid = grid if grid is not None else grid_from_config(config.get("grid"))
    tile_size = int(tile_size or config.get("tile_size") or 64)
    from .plausibility import Plausibility

    plausibility = Plausibility(config.get("plausible"), strict=bool(config.get("strict", False)))
    start, end = config["start"], config["end"]
    days = day_range(start, end)
    years = np.arange(days[0].astype("datetime64[Y]").astype(int) + 1970, days[-1].astype("datetime64[Y]").astype(int) + 1971)
    allow_gaps = bool(config.get("allow_gaps", False))
    met_grid = grid.enclosing(MET_RES, margin_cells=1)
    t_start = time.perf_counter()
    bar = Progress(progress).bar

    # 1. static inputs first: cheap, and their errors should come before hours of reading
    with bar("static inputs", 4, "input") as pbar:
        d = config["dem"]
        dem, dem_info = read_dem(d["path"], grid, return_info=True, **renamed_options(d, {"variable": "variable", "band": "band", "resampling": "resampling"}))
        pbar.update(1)
        u = config.get("urban") or None
        urban = None
        if u and u.get("path"):
            urban, urban_info = read_dem(u["path"], grid, return_info=True, what="urban map", **renamed_options(
                u, {"variable": "variable", "band": "band", "resampling": "resampling"}))
        pbar.update(1)
        c = config.get("cities") or None
        if c and c.get("path"):
            # an explicit null means "none" (no English names, no adcodes, no GCJ-02 correction)
            explicit = {arg: c[key] for key, arg in {"name_en": "name_en_field", "adcode": "adcode_field",
                                                     "crs_offset": "crs_offset"}.items() if key in c}
            cities = read_cities(c["path"], grid, **{**renamed_options(c, {"name": "name_field", "layer": "layer"}), **explicit})
        else:
            warnings.warn("no cities configured: city_id is -1 everywhere", IngestWarning, stacklevel=2)
            cities = None
        pbar.update(1)
        h = config["ihs"]
        ihs = read_ihs(h["path"], grid, years, dem=dem, **renamed_options(h, {
            "id": "id_col", "lon": "lon_col", "lat": "lat_col", "name": "name_col", "category": "category_col",
            "start": "start_col", "end": "end_col", "status": "status", "status_id": "status_id_col",
            "status_year": "status_year_col", "status_operating": "status_operating_col",
            "missing_years": "missing_years", "outside": "outside", "crs_offset": "crs_offset", "layer": "layer"}))
        pbar.update(1)
    city_id = cities["city_id"].values if cities is not None else np.full(grid.shape, -1, dtype=np.int16)
    mask = None
    if config.get("clip_to_boundary"):
        if cities is None:
            raise IngestError("clip_to_boundary needs a 'cities' section (the boundary is the union of the cities)")
        mask = boundary_mask(city_id)

    # 2. index the daily files (fails fast on missing days, names, variables)
    p = config["pm25"]
    pm25 = DailyPM25Source(p["path"], grid, start, end, allow_gaps=bool(p.get("allow_gaps", allow_gaps)), mask=mask,
                           **renamed_options(p, {"format": "format", "variable": "variable", "band": "band", "date_regex": "date_regex",
                                      "date_format": "date_format", "glob": "glob_pattern", "mask_threshold": "mask_threshold"}))
    pm25.read_day(next((dd for dd, f in pm25.files.items() if f is not None), pm25.days[0]))  # first file: grid match
    e = config["era5"]
    era5_options = renamed_options(e, {"units": "units", "tp_statistic": "tp_statistic", "band_names": "band_names",
                            "date_regex": "date_regex", "date_format": "date_format", "glob": "glob_pattern",
                            "utc_offset_hours": "utc_offset_hours"})
    if e.get("format", "cds-netcdf") != "cds-netcdf":
        era5_options.pop("utc_offset_hours", None)
    if e.get("format", "cds-netcdf") != "gee-geotiff":
        for key in ("band_names", "date_regex", "date_format"):
            era5_options.pop(key, None)
    met = open_era5(e["path"], met_grid, start, end, format=e.get("format", "cds-netcdf"),
                    allow_gaps=bool(e.get("allow_gaps", allow_gaps)), **era5_options)
    met.read_days(met.days[:1])  # first day: variables, units and coverage checked before the long passes

    era5_files = list(met.files.values()) if isinstance(met.files, dict) else list(met.files)
    fingerprint = _fingerprint({"config": config, "grid": grid, "tile": tile_size,
                                "pm25": _files_digest(pm25.files.values()), "era5": _files_digest(era5_files)})
    _prepare_partial(out, partial, work, fingerprint, overwrite)

    # 3. the store: metadata, static variables, then the two cubes
    static = ihs.copy()
    if cities is not None:
        static = static.assign_coords(city=cities["city"])
        for name in ("city_name", "city_name_en", "city_adcode", "city_cells"):
            static[name] = cities[name]
    else:
        static = static.assign_coords(city=("city", np.zeros(0, dtype=np.int16)))
        static["city_name"] = ("city", np.zeros(0, dtype=object))
        static["city_name_en"] = ("city", np.zeros(0, dtype=object))
        static["city_adcode"] = ("city", np.zeros(0, dtype=np.int64))
    variables = {"pm25": VarSpec(("time", "lat", "lon"), pm25.variables["pm25"])}
    for name, var_attrs in met.variables.items():
        variables[name] = met_spec(var_attrs["units"], var_attrs["long_name"], var_attrs.get("standard_name"))
    variables["dem"] = map_spec("m", "surface elevation", "surface_altitude")
    if urban is not None:
        variables["urban"] = map_spec("1", "built-up / population density (stage 3's drift covariate)")
    variables["city_id"] = VarSpec(("lat", "lon"), {"long_name": "index of the city holding the cell centre (-1: none)"}, "int16")
    store_attrs = {
        "title": "ihs_hpc input cubes ingested from files",
        "ihs_ingest_fingerprint": fingerprint,
        "ihs_ingest_config": json.dumps(config, sort_keys=True),
        "time_coverage_start": str(days[0]), "time_coverage_end": str(days[-1]),
    }
    create_store(partial, grid, variables, tile_size=tile_size, time=days, met_grid=met_grid, static=static,
                 attrs={**store_attrs, **extra_attrs})
    write_array(partial, "dem", dem)
    if urban is not None:
        write_array(partial, "urban", urban)
    write_array(partial, "city_id", city_id)
    memory_mb, batch_days, workers = config.get("memory_mb"), config.get("batch_days"), int(config.get("workers") or 1)
    pm_stats = write_daily_cube(partial, pm25, grid, tile_size=tile_size, work_dir=work, batch_days=batch_days,
                                memory_mb=memory_mb, workers=workers, progress=progress, plausibility=plausibility)
    met_stats = write_daily_cube(partial, met, met_grid, tile_size=tile_size, work_dir=work, record_prefix="met_",
                                 batch_days=batch_days, memory_mb=memory_mb, workers=1, progress=progress,
                                 plausibility=plausibility)
    implausible = plausibility.summary()
    if implausible:
        if echo is None:
            plausibility.warn()
        else:
            for var, e in implausible.items():
                echo(f"  implausible {var}: {e['values']} value(s) in {e['files']} file(s) outside {e['range'][0]:g}.."
                     f"{e['range'][1]:g} {e['units']} set to missing (first {e['first_file']}, e.g. {e['example']:g})")
    # 4. provenance, completion, publication
    from .local_store import writable_group

    group = writable_group(partial)
    for name, text in met.source_units().items():
        group[name].attrs.update({"ihs_source_units": text})
    group["dem"].attrs.update({"ihs_resampling": dem_info["resampling"], "ihs_source_res_deg": dem_info["source_res_deg"]})
    if urban is not None:
        group["urban"].attrs.update({"ihs_resampling": urban_info["resampling"],
                                     "ihs_source_res_deg": urban_info["source_res_deg"], "ihs_source": str(u["path"])})
    if cities is not None:
        group["city_id"].attrs.update({"ihs_crs_offset_removed": cities["city_id"].attrs["ihs_crs_offset_removed"],
                                       "flag_values": -1, "flag_meanings": "no_city"})
    mark_complete(
        partial,
        ihs_pm25_source=json.dumps(pm25.describe()),
        ihs_era5_source=json.dumps(met.describe()),
        ihs_era5_source_units=json.dumps(met.source_units()),
        ihs_ingest_seconds=round(time.perf_counter() - t_start, 2),
        ihs_plausibility=json.dumps(implausible),
        ihs_gap_days=json.dumps({"pm25": int(sum(f is None for f in pm25.files.values())), **met.gap_days()}),
        ihs_ingest_stats=json.dumps({"pm25": {k: v for k, v in pm_stats.items() if k != "variables"},
                                     "met": {k: v for k, v in met_stats.items() if k != "variables"}}),
        history=f"{time.strftime('%Y-%m-%dT%H:%M:%S')} ihs_hpc.io.ingest",
    )
    _publish(out, partial, work)
    return out
