"""What determines each output of a run: fingerprints of stores and output directories.

A fingerprint lists everything that decides an output's content, flat and by name:

* the configuration keys its stage reads (``stage2.stl.period: 365`` …), as dotted keys;
* the fingerprints of the outputs it reads (``upstream.prep: 3f2a…``);
* the stage's algorithm version (``version``), bumped whenever the arithmetic changes;
* for ingest, the input files: per section a digest of (path, size, mtime) — of the content too with
  ``input.files.fingerprint_content: true`` — and the listing, so a difference names the files.

The digest of that mapping is stored with the output (root attributes of a Zarr store,
``ihs_fingerprint.json`` in an output directory). :mod:`ihs_hpc.pipeline.plan` compares it with the
fingerprint the current configuration asks for; this module only computes, stores and compares.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

ATTR_DIGEST = "ihs_fingerprint"
ATTR_INPUTS = "ihs_fingerprint_inputs"
DIR_FILE = "ihs_fingerprint.json"
FILES_SIDECAR = "_ihs_input_files.json"


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def flatten(mapping: Mapping, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists and scalars are leaves."""
    out = {}
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


@dataclass(frozen=True)
class Fingerprint:
    """The inputs that decide one output, and their digest.

    Parameters
    ----------
    stage : str
        The stage that writes the output.
    inputs : dict
        Flat mapping of dotted names to JSON-able values.
    files : dict, optional
        ``{section: {path: [size, mtime]}}`` listings of input files (ingest only); not part of the
        digest (their per-section digests in ``inputs`` are), kept to name changed files.
    """

    stage: str
    inputs: dict
    files: dict = field(default_factory=dict, compare=False)

    @property
    def digest(self) -> str:
        return hashlib.sha256(_canonical({"stage": self.stage, **self.inputs}).encode()).hexdigest()[:20]

    def to_attrs(self) -> dict:
        return {ATTR_DIGEST: self.digest, ATTR_INPUTS: _canonical({"stage": self.stage, "inputs": self.inputs})}

    @classmethod
    def from_attrs(cls, attrs: Mapping) -> "Fingerprint | None":
        text = attrs.get(ATTR_INPUTS)
        if not text:
            return None
        doc = json.loads(text)
        return cls(doc["stage"], doc["inputs"])

    def diff(self, other: "Fingerprint") -> list[tuple[str, object, object]]:
        """``(key, value here, value there)`` for every key that differs (missing keys show ``None``)."""
        keys = sorted(set(self.inputs) | set(other.inputs))
        return [(k, self.inputs.get(k), other.inputs.get(k)) for k in keys if self.inputs.get(k) != other.inputs.get(k)]


# ------------------------------------------------------------------------------------------ reading / writing
def is_dir_output(path: Path) -> bool:
    """Output directories (stats, report, allocation) as opposed to Zarr stores (``*.zarr``)."""
    return not Path(path).name.split(".partial")[0].endswith(".zarr")


def recorded(path: str | os.PathLike) -> Fingerprint | None:
    """The fingerprint stored with an output (store or directory); None when absent or unreadable."""
    path = Path(path)
    try:
        if is_dir_output(path):
            f = path / DIR_FILE
            if not f.is_file():
                return None
            doc = json.loads(f.read_text())
            fp = Fingerprint.from_attrs(doc)
        else:
            meta = path / "zarr.json"
            if not meta.is_file():
                return None
            fp = Fingerprint.from_attrs(json.loads(meta.read_text()).get("attributes", {}))
    except (OSError, ValueError, KeyError):
        return None
    if fp is not None:
        side = path / FILES_SIDECAR
        if side.is_file():
            try:
                fp = Fingerprint(fp.stage, fp.inputs, json.loads(side.read_text()))
            except (OSError, ValueError):
                pass
    return fp


def write_dir_fingerprint(path: Path, fp: Fingerprint) -> None:
    """Record ``fp`` in an output directory (written last: its presence means the directory is finished)."""
    tmp = path / f".{DIR_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(fp.to_attrs(), indent=1))
    os.replace(tmp, path / DIR_FILE)


def write_files_sidecar(path: Path, fp: Fingerprint) -> None:
    """Write the input-file listing of ``fp`` beside the store at ``path`` (when it has one)."""
    if fp.files:
        (path / FILES_SIDECAR).write_text(json.dumps(fp.files))


# ------------------------------------------------------------------------------------------ input files
def file_listing(paths, *, content: bool = False) -> dict[str, list]:
    """``{path: [size, mtime_ns]}`` (plus a sha256 with ``content``) for each existing file."""
    out = {}
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        entry = [st.st_size, st.st_mtime_ns]
        if content:
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            entry.append(h.hexdigest())
        out[os.fspath(p)] = entry
    return out


def listing_digest(listing: Mapping[str, list]) -> str:
    """Short SHA-256 digest of a file listing (canonical JSON)."""
    return hashlib.sha256(_canonical(listing).encode()).hexdigest()[:20]


def describe_file_changes(old: Mapping[str, list], new: Mapping[str, list], limit: int = 3) -> str:
    """``"2 files modified (a.nc size 10 → 12), 1 added (b.nc)"`` from two listings."""
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    modified = sorted(p for p in set(old) & set(new) if old[p] != new[p])
    parts = []

    def names(items):
        shown = ", ".join(Path(p).name for p in items[:limit])
        return shown + (" …" if len(items) > limit else "")

    if modified:
        p = modified[0]
        how = (f"size {old[p][0]} → {new[p][0]}" if old[p][0] != new[p][0] else "modified time or content")
        parts.append(f"{len(modified)} modified ({names(modified)}; first: {how})")
    if added:
        parts.append(f"{len(added)} added ({names(added)})")
    if removed:
        parts.append(f"{len(removed)} removed ({names(removed)})")
    return ", ".join(parts) or "listing differs"
