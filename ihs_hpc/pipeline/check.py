"""``ihs check`` and ``ihs status``: what a run directory holds, whether it matches its configuration,
how far each stage got, and (``verify``) whether every chunk of every store can still be decoded.

A store with chunks that fail to decode is marked for repair: its ``ihs_complete`` flag is cleared
(so nothing reads it as valid, and ``ihs info`` says so), the bad chunks are listed in the attribute
``ihs_bad_chunks``, and the completion records of the tiles they belong to are removed. A rerun with
the same configuration then resumes the store and recomputes only those tiles.
"""
from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..config import RunConfig
from . import provenance as pv
from .plan import expected_fingerprints, output_path, staging_path
from .stages import STAGES

_CHUNK_KEY = re.compile(r"^c/(?P<coords>\d+(?:/\d+)*)$")
_TILE_RECORD = re.compile(r"^(.*?)t\d{4}_\d{4}$")  # [prefix]t<row>_<col>; other records (kriging blocks) aside


@dataclass
class StoreReport:
    """What ``ihs status``/``ihs check`` say of one stage's store: state, fingerprint match, tile counts, damaged
    chunks."""
    stage: str
    path: Path
    state: str                 # absent | complete | unfinished | damaged
    matches: bool | None       # fingerprint equals what the configuration asks (None: absent)
    tiles: dict = field(default_factory=dict)   # {kind: (recorded, expected)}, see tile_progress
    bad_chunks: list = field(default_factory=list)
    note: str = ""


_PREFIX_NAMES = {"": "tiles", "met_": "met tiles", "iqr_": "IQR tiles"}


def tile_progress(path: Path) -> dict[str, tuple[int, int]]:
    """``{kind: (recorded, expected)}`` per kind of tile record of a store (``tiles``, ``met tiles``,
    ``IQR tiles`` …), expected from the store's grid and tile size."""
    import zarr

    from ..io.cube import finished_tiles

    group = zarr.open_group(path, mode="r")
    tile = int(group.attrs.get("ihs_tile_size", 0) or 0)
    if not tile or "lat" not in group:
        return {}
    done: dict[str, int] = {}
    met_variables: dict[str, set] = {}  # stage 2 records each met variable's tile apart: met_<var>_<tile>
    for name in finished_tiles(path):
        m = _TILE_RECORD.match(name)
        if not m:
            continue
        prefix = m.group(1)
        if prefix.startswith("met_") and prefix != "met_":
            met_variables.setdefault(name[len(prefix):], set()).add(prefix)
            continue
        done[prefix] = done.get(prefix, 0) + 1
    if met_variables:  # a met tile is done when every variable of it is
        n_vars = len(group.attrs.get("met_variables") or []) or max(len(v) for v in met_variables.values())
        done["met_"] = done.get("met_", 0) + sum(len(v) >= n_vars for v in met_variables.values())
    ny, nx = group["lat"].shape[0], group["lon"].shape[0]
    out = {}
    for prefix in sorted(done or {"": 0}):
        if prefix == "met_" and "met_lat" in group:
            total = -(-group["met_lat"].shape[0] // tile) * -(-group["met_lon"].shape[0] // tile)
        else:
            total = -(-ny // tile) * -(-nx // tile)
        out[_PREFIX_NAMES.get(prefix, prefix + "tiles")] = (done.get(prefix, 0), total)
    return out


def _tile_of_chunk(array_dims: tuple, key: str, records: set[str]) -> list[str]:
    """Completion records (any prefix) of the tile a chunk key belongs to."""
    m = _CHUNK_KEY.match(key)
    if not m:
        return []
    coords = dict(zip(array_dims, (int(c) for c in m.group("coords").split("/"))))
    if "lat" in coords:
        name = f"t{coords['lat']:04d}_{coords['lon']:04d}"
        return [r for r in records if r == name or (r.endswith("_" + name) and not r.startswith("met_"))]
    if "met_lat" in coords:  # met_<tile>, or stage 2's met_<variable>_<tile> (every variable of the tile)
        name = f"t{coords['met_lat']:04d}_{coords['met_lon']:04d}"
        return [r for r in records if r == "met_" + name or (r.startswith("met_") and r.endswith("_" + name))]
    return []


def verify_store(path: Path, *, mark: bool = True) -> list[str]:
    """Decode every chunk of every array of a store; return ``"<var>/<chunk key>: <error>"`` for bad ones.

    With ``mark``, a damaged store is marked for repair (module docstring).
    """
    import zarr

    from ..io.chunk_file import iter_chunk_errors
    from ..io.cube import COMPLETE_ATTR, TILE_RECORD_DIR, finished_tiles

    group = zarr.open_group(path, mode="r")
    bad, unrecord, static = [], set(), []
    records = finished_tiles(path)
    for name, array in group.arrays():
        dims = tuple(array.metadata.dimension_names or ())
        for key, error in iter_chunk_errors(array):
            bad.append(f"{name}/{key}: {error}")
            tiles = _tile_of_chunk(dims, key, records)
            unrecord.update(tiles)
            if not tiles:
                static.append(f"{name}/{key}")
    if bad and mark:
        for record in unrecord:
            (path / TILE_RECORD_DIR / record).unlink(missing_ok=True)
        writable = zarr.open_group(path, mode="r+", use_consolidated=False)
        writable.attrs.update({COMPLETE_ATTR: False, "ihs_bad_chunks": json.dumps(bad[:200]),
                               "ihs_bad_static_chunks": json.dumps(static[:200])})
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            zarr.consolidate_metadata(path, zarr_format=3)
    return bad


def check_run(config: RunConfig, *, verify: bool = False) -> list[StoreReport]:
    """A report per stage output of the run directory (see the module docstring)."""
    from ..io.cube import is_complete

    expected = expected_fingerprints(config)
    reports = []
    for spec in STAGES:
        final = output_path(config, spec.name)
        if final is None:
            continue
        candidates = [p for p in (final, staging_path(final)) if p.exists()]
        if not candidates:
            reports.append(StoreReport(spec.name, final, "absent", None))
            continue
        path = candidates[0]
        got = pv.recorded(path)
        matches = got is not None and got.digest == expected[spec.name].digest
        if pv.is_dir_output(path):
            state = "complete" if got is not None else "unfinished"
            reports.append(StoreReport(spec.name, path, state, matches))
            continue
        report = StoreReport(spec.name, path, "complete" if is_complete(path) else "unfinished", matches,
                             tile_progress(path))
        if path.name.endswith(".partial"):
            report.note = "being built or interrupted; a rerun with the same settings resumes it"
        if verify:
            report.bad_chunks = verify_store(path)
            if report.bad_chunks:
                report.state = "damaged"
                report.tiles = tile_progress(path)
        reports.append(report)
    return reports
