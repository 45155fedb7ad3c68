"""The ingest configuration (``input.files`` of a run): its keys, dates and grid checked before any reading,
and the files each section names (see :mod:`ihs_hpc.io.ingest` for the keys)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np

from ..grid import BTH_GRID, Grid
from .errors import IngestError

_KNOWN_KEYS = {"start", "end", "grid", "tile_size", "allow_gaps", "clip_to_boundary", "memory_mb", "batch_days",
               "workers", "work_dir", "pm25", "era5", "dem", "urban", "ihs", "cities", "plausible", "strict",
               "fingerprint_content"}
_SECTION_KEYS = {
    "pm25": {"path", "format", "variable", "band", "date_regex", "date_format", "glob", "allow_gaps", "mask_threshold"},
    "era5": {"path", "format", "units", "tp_statistic", "utc_offset_hours", "band_names", "date_regex", "date_format",
             "glob", "allow_gaps"},
    "dem": {"path", "variable", "band", "resampling"},
    "urban": {"path", "variable", "band", "resampling"},
    "ihs": {"path", "id", "lon", "lat", "name", "category", "start", "end", "status", "status_id", "status_year",
            "status_operating", "missing_years", "outside", "crs_offset", "layer"},
    "cities": {"path", "name", "name_en", "adcode", "crs_offset", "layer"},
}


def grid_from_config(spec) -> Grid:
    """A Grid from ``"bth"``, ``[south, north, west, east, res]`` or ``{south, north, west, east, res}``."""
    if spec is None or (isinstance(spec, str) and spec.lower() == "bth"):
        return BTH_GRID
    if isinstance(spec, Grid):
        return spec
    if isinstance(spec, Mapping):
        return Grid(float(spec["south"]), float(spec["north"]), float(spec["west"]), float(spec["east"]), float(spec.get("res", 0.01)))
    values = list(spec)
    if len(values) not in (4, 5):
        raise IngestError(f"grid must be 'bth', [south, north, west, east, res] or a mapping, got {spec!r}")
    return Grid(*map(float, values))


def check_config(config: Mapping, *, source: str | None = None, prefix: str | None = None) -> dict:
    """Validate the configuration's shape, keys and dates; return a plain dict copy.

    ``source`` (the run's YAML file) and ``prefix`` (its dotted key, ``input.files``) are named in
    every message, so an error in a run's YAML says where it is. Nothing is read from the inputs here.
    """
    where = f"{source}: " if source else ""

    def key(*parts) -> str:
        return ".".join(([prefix] if prefix else []) + [str(p) for p in parts])

    if not isinstance(config, Mapping):
        raise IngestError(f"{where}the ingest configuration{' ' + prefix if prefix else ''} must be a mapping, "
                          f"got {type(config).__name__}")
    config = json.loads(json.dumps(dict(config), default=str))
    unknown = sorted(set(config) - _KNOWN_KEYS)
    if unknown:
        raise IngestError(f"{where}unknown ingest configuration key(s) {unknown} ({', '.join(key(k) for k in unknown)}); "
                          f"known: {sorted(_KNOWN_KEYS)}")
    days = {}
    for name in ("start", "end"):
        if not config.get(name):
            raise IngestError(f"{where}the ingest configuration needs {name!r} ({key(name)}, a date like 2012-01-01)")
        try:
            days[name] = np.datetime64(str(config[name]), "D")
        except ValueError:
            raise IngestError(f"{where}{key(name)} = {config[name]!r} is not a date (expected YYYY-MM-DD)") from None
    if days["end"] < days["start"]:
        raise IngestError(f"{where}{key('end')} = {config['end']} is before {key('start')} = {config['start']}")
    for section in ("pm25", "era5", "dem", "ihs"):
        if not isinstance(config.get(section), Mapping) or not config[section].get("path"):
            raise IngestError(f"{where}the ingest configuration needs a {section!r} section with a 'path' "
                              f"({key(section, 'path')})")
    for section, keys in _SECTION_KEYS.items():
        if section in config and config[section] is not None:
            if not isinstance(config[section], Mapping):
                raise IngestError(f"{where}configuration section {section!r} ({key(section)}) must be a mapping")
            bad = sorted(set(config[section]) - keys)
            if bad:
                raise IngestError(f"{where}unknown key(s) {bad} in configuration section {section!r} "
                                  f"({', '.join(key(section, b) for b in bad)}); known: {sorted(keys)}")
    if config.get("grid") is not None:
        try:
            grid_from_config(config["grid"])
        except (IngestError, ValueError, KeyError, TypeError) as err:
            raise IngestError(f"{where}{key('grid')} = {config['grid']!r}: {err}") from None
    ranges = config.get("plausible") or {}
    if not isinstance(ranges, Mapping):
        raise IngestError(f"{where}{key('plausible')} must map variables to [low, high], got {ranges!r}")
    from .plausibility import DEFAULT_RANGES

    for var, bounds in ranges.items():
        if var not in DEFAULT_RANGES:
            raise IngestError(f"{where}{key('plausible', var)}: unknown variable {var!r}; known: {sorted(DEFAULT_RANGES)}")
        if (not isinstance(bounds, (list, tuple)) or len(bounds) != 2
                or not all(isinstance(b, (int, float)) for b in bounds) or not bounds[0] < bounds[1]):
            raise IngestError(f"{where}{key('plausible', var)} = {bounds!r}: expected [low, high] with low < high")
    return config


def input_files(config: Mapping) -> dict[str, list[Path]]:
    """The files each section of a (checked) ingest configuration names, as the readers find them.

    Used for fingerprints; a path that does not exist lists nothing here (the reader reports it).
    """
    from .chap import PM25_FORMATS
    from .daily_files import expand_paths

    def listed(section: str, default_glob: str) -> list[Path]:
        spec = config.get(section) or {}
        if not spec.get("path"):
            return []
        try:
            return expand_paths(spec["path"], spec.get("glob") or default_glob)
        except IngestError:
            return []

    pm_format = (config.get("pm25") or {}).get("format", "chap-netcdf")
    era5_format = (config.get("era5") or {}).get("format", "cds-netcdf")
    return {
        "pm25": listed("pm25", PM25_FORMATS.get(pm_format, (None, "*"))[1]),
        "era5": listed("era5", "*.tif" if era5_format == "gee-geotiff" else "*.nc"),
        "dem": listed("dem", "*"),
        "urban": listed("urban", "*"),
        "ihs": listed("ihs", "*"),
        "cities": listed("cities", "*"),
    }


def renamed_options(section: Mapping, mapping: Mapping[str, str]) -> dict:
    """Keyword arguments from a config ``section``: ``mapping`` is config key -> argument name; unset or null keys
    are left out."""
    return {arg: section[key] for key, arg in mapping.items() if key in section and section[key] is not None}
