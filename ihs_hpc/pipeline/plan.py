"""The plan of a run: for each stage, keep, build, resume or rebuild its output — decided before anything is written.

:func:`expected_fingerprints` derives, from the configuration alone (and the input files' listing),
the fingerprint every output must carry. :func:`plan_run` compares them with what the run directory
holds:

* an output whose recorded fingerprint equals the expected one is kept (finished) or resumed
  (unfinished, in ``<output>.partial``), so finished tiles are never recomputed;
* a different fingerprint is refused, naming the output and each differing key (old → new), unless
  ``rerun_changed`` asks to recompute that output and everything downstream of it; new outputs are
  built in ``<output>.partial`` and replace the old ones only when finished;
* outputs that selected stages read but that are out of date are refused the same way, so a stage
  never reads an output made from other settings.

Tiles of two fingerprints therefore never share a store.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ..config import RunConfig
from ..errors import FingerprintMismatch, StoreError
from . import provenance as pv
from .stages import BY_NAME, STAGES, downstream, upstream_closure

#: ``input.files`` keys that change how fast or where ingest works, never what it writes.
_INGEST_PERFORMANCE_KEYS = ("memory_mb", "batch_days", "workers", "work_dir", "fingerprint_content")


def staging_path(final: Path) -> Path:
    """Where an output is built before it replaces ``final``: ``<final>.partial``."""
    final = Path(final)
    return final.with_name(final.name + ".partial")


def output_path(config: RunConfig, stage: str) -> Path | None:
    """What ``stage`` writes in the run directory; None when it writes nothing under this configuration."""
    spec = BY_NAME[stage]
    if spec.output is None:
        return None
    if stage == "input" and config["input.kind"] == "store":
        return None  # an existing store is read, never written
    if stage == "prep" and not config["prep.enabled"]:
        return None
    if stage == "allocate" and not config["allocation.index"]:
        return None
    if stage == "report" and not config["report.enabled"]:
        return None
    return config.run_dir / spec.output


# ------------------------------------------------------------------------------------------ fingerprints
def _config_keys(config: RunConfig, keys) -> dict:
    out = {}
    for key in keys:
        value = config.get(key)
        out.update(pv.flatten(value, key + ".") if isinstance(value, dict) and value else {key: value})
    return out


def _input_fingerprint(config: RunConfig, spec) -> pv.Fingerprint:
    kind = config["input.kind"]
    inputs = {"version": spec.version, "input.kind": kind, "grid.tile_size": config["grid.tile_size"]}
    files: dict = {}
    if kind == "synthetic":
        from ..synth.presets import GENERATOR_VERSION

        # unset scene-variant options (null) leave the fingerprint of a preset's scene as it was
        inputs.update({k: v for k, v in _config_keys(config, ["input.synthetic"]).items() if v is not None})
        inputs["synth.generator_version"] = GENERATOR_VERSION
        inputs["synth.shared_data"] = shared_data_listing()
    elif kind == "files":
        from ..io.ingest_config import check_config, input_files

        files_cfg = check_config(config["input.files"] or {}, source=config.source, prefix="input.files")
        content = bool(files_cfg.get("fingerprint_content", False))
        inputs.update({k: v for k, v in pv.flatten(files_cfg, "input.files.").items()
                       if k.split(".")[2] not in _INGEST_PERFORMANCE_KEYS})
        for section, paths in input_files(files_cfg).items():
            listing = pv.file_listing(paths, content=content)
            files[section] = listing
            inputs[f"files.{section}"] = f"{len(listing)} files, digest {pv.listing_digest(listing)}"
    else:
        store = Path(config["input.store"] or "").expanduser().resolve()
        inputs["input.store"] = str(store)
        own = pv.recorded(store)
        if own is not None:
            inputs["store.fingerprint"] = own.digest
        else:
            meta = store / "zarr.json"
            inputs["store.zarr_json"] = (list(pv.file_listing([meta]).values()) or [None])[0]
    return pv.Fingerprint("input", inputs, files)


#: Shared data files a synthetic scene may be built from (terrain base, BTH city polygons).
SYNTH_SHARED_FILES = ("dem/china-dem.nc", "bth_boundaries/bth_13_cities_cnmaps.geojson")


def shared_data_listing(root=None) -> str:
    """Which shared data a synthetic scene would read (``IHS_SHARED_DATA``, or ``root``): the same
    configuration with another DEM, or none (the analytic terrain), is another scene.

    The files are named by their path under the folder and known by their size and content (SHA-256),
    not by where the folder is or when it was copied: a fresh copy of the same data is the same scene.
    """
    from pathlib import Path

    from ..shared_data import shared_data_dir

    root = shared_data_dir() if root is None else Path(root)
    if root is None:
        return "unset"
    listing = pv.file_listing([root / f for f in SYNTH_SHARED_FILES], content=True)
    relative = {str(Path(p).relative_to(root)): [entry[0], entry[2]] for p, entry in listing.items()}
    return f"{len(relative)} files, content digest {pv.listing_digest(relative)}"


def expected_fingerprints(config: RunConfig) -> dict[str, pv.Fingerprint]:
    """The fingerprint each stage's output must carry under ``config`` (every stage, in order)."""
    out: dict[str, pv.Fingerprint] = {}
    for spec in STAGES:
        if spec.name == "input":
            out["input"] = _input_fingerprint(config, spec)
            continue
        if spec.name == "prep" and not config["prep.enabled"]:
            inputs = {"prep.enabled": False, "upstream.input": out["input"].digest}
        else:
            inputs = {"version": spec.version, **_config_keys(config, spec.keys)}
            inputs.update({f"upstream.{up}": out[up].digest for up in spec.upstream})
        out[spec.name] = pv.Fingerprint(spec.name, inputs)
    return out


def fingerprint_of(config: RunConfig, stage: str) -> pv.Fingerprint:
    """This configuration's fingerprint for ``stage`` (computed once per configuration object)."""
    cache = config.__dict__.setdefault("_fingerprints", None)
    if cache is None:
        cache = config.__dict__["_fingerprints"] = expected_fingerprints(config)
    return cache[stage]


def stamp(config: RunConfig, stage: str) -> dict:
    """Root attributes that record ``stage``'s fingerprint in the store it creates."""
    return fingerprint_of(config, stage).to_attrs()


# ------------------------------------------------------------------------------------------ the plan
@dataclass
class Step:
    """What a run does with one stage: ``keep``, ``build``, ``resume``, ``rebuild`` or ``none``
    (the stage writes nothing under this configuration but still runs, e.g. a skipped allocation)."""

    stage: str
    action: str
    output: Path | None
    reason: str = ""


@dataclass
class Plan:
    """What a run will do: one :class:`Step` (keep, build, resume or rebuild) per stage, and notes to print."""
    steps: list[Step]
    notes: list[str]

    @property
    def stages(self) -> list[str]:
        return [s.stage for s in self.steps]

    def step(self, stage: str) -> Step | None:
        return next((s for s in self.steps if s.stage == stage), None)


def _state(path: Path | None) -> tuple[str, pv.Fingerprint | None]:
    """``absent``, ``complete`` or ``incomplete``, and the recorded fingerprint."""
    if path is None or not path.exists():
        return "absent", None
    from ..io.cube import is_complete

    fp = pv.recorded(path)
    if pv.is_dir_output(path):
        return ("complete" if fp is not None else "incomplete"), fp
    return ("complete" if is_complete(path) else "incomplete"), fp


def _describe(path: Path, old: pv.Fingerprint | None, new: pv.Fingerprint, why: str = "") -> str:
    if old is None:
        return (f"  {path}{why}: has no fingerprint (made by an ihs_hpc version before fingerprints, or not "
                f"by ihs_hpc), so it cannot be shown to match this configuration")
    lines = [f"  {path}{why}:"]
    for key, was, now in old.diff(new):
        if key.startswith("upstream."):
            lines.append(f"    reads {BY_NAME[key.split('.', 1)[1]].output}, which changes ({was} → {now})")
        elif key.startswith("files.") and old.files.get(key[6:]) is not None and new.files.get(key[6:]) is not None:
            lines.append(f"    input files of {key[6:]!r}: "
                         + pv.describe_file_changes(old.files[key[6:]], new.files[key[6:]]))
        else:
            lines.append(f"    {key}: {was!r} → {now!r}")
    return "\n".join(lines)


def plan_run(config: RunConfig, selected, *, rerun_changed: bool = False) -> Plan:
    """Decide, for the selected stages (and the outputs they read), what to do; write nothing.

    Raises
    ------
    FingerprintMismatch
        Some output (to be written, or read) was made from other settings, inputs or versions, and
        ``rerun_changed`` is false. The message names each output and every differing key.
    StoreError
        An output that a selected stage reads is missing or unfinished and its stage is not selected.
    """
    expected = expected_fingerprints(config)
    config.__dict__["_fingerprints"] = expected
    selected = [s.name for s in STAGES if s.name in set(selected)]
    read_only = [s for s in upstream_closure(selected) if s not in selected]
    conflicts: dict[str, str] = {}
    steps: dict[str, Step] = {}
    notes: list[str] = []
    for name in [s.name for s in STAGES if s.name in set(selected) | set(read_only)]:
        out = output_path(config, name)
        want = expected[name]
        if out is None:
            if name in selected:
                steps[name] = Step(name, "none", None)
            continue
        state, got = _state(out)
        partial = staging_path(out)
        p_state, p_got = _state(partial)
        if name in read_only:
            if state == "absent" and p_state == "absent":
                continue  # reported by the stage that reads it, with what to run
            if state != "complete":
                raise StoreError(f"{out if state != 'absent' else partial} is unfinished; run its stage first "
                                 f"(ihs {name} {config.source}, or ihs run with --stages including {name})")
            if got is None or got.digest != want.digest:
                conflicts[name] = _describe(out, got, want, f" (read by {', '.join(d for d in downstream([name]) if d in selected)})")
            continue
        if pv.is_dir_output(out) and state == "incomplete":
            # a directory without its fingerprint was being rewritten when its run stopped: redo it
            steps[name] = Step(name, "resume", out, "unfinished directory")
            continue
        if state != "absent" and (got is None or got.digest != want.digest):
            conflicts[name] = _describe(out, got, want)
            steps[name] = Step(name, "rebuild", out, "made with other settings")
            continue
        if p_state != "absent" and (p_got is None or p_got.digest != want.digest):
            if state == "complete":
                notes.append(f"{partial}: left by an interrupted run with other settings; removed (the finished "
                             f"{out.name} matches this configuration)")
                steps[name] = Step(name, "keep", out, "discard-partial")
                continue
            conflicts[name] = _describe(partial, p_got, want, " (unfinished)")
            steps[name] = Step(name, "rebuild", out, "unfinished with other settings")
            continue
        if state == "complete":
            steps[name] = Step(name, "keep", out, "complete, same fingerprint")
        elif state == "incomplete":
            steps[name] = Step(name, "resume", out, "damaged or unfinished in place")
        elif p_state != "absent":
            steps[name] = Step(name, "resume", out, "unfinished")
        else:
            steps[name] = Step(name, "build", out)

    if conflicts and not rerun_changed:
        body = "\n".join(conflicts[n] for n in [s.name for s in STAGES] if n in conflicts)
        raise FingerprintMismatch(
            f"{config.run_dir}: existing outputs were made from other settings or inputs than {config.source} "
            f"asks for now:\n{body}\nNothing was written. To recompute them and everything downstream (the old "
            f"outputs are replaced only once the new ones are finished), rerun with --rerun-changed; or give "
            f"this configuration a new run directory (key run_dir).",
            changes=conflicts)
    if conflicts:
        changed = list(conflicts)
        for name in changed + downstream(changed):
            out = output_path(config, name)
            if name in steps and steps[name].action in ("keep", "resume", "build", "rebuild"):
                steps[name] = Step(name, "rebuild" if out is not None and out.exists() else "build", out,
                                   "recomputed: --rerun-changed")
            elif name not in steps and out is not None and (out.exists() or staging_path(out).exists()):
                steps[name] = Step(name, "rebuild", out, "downstream of a changed output: --rerun-changed")
                notes.append(f"{out.name} reads a changed output: recomputed too")
    ordered = [steps[s.name] for s in STAGES if s.name in steps]
    return Plan(ordered, notes)


def prepare(step: Step) -> None:
    """Put the run directory in the state ``step`` expects: stale partial outputs go, a damaged
    finished output is moved back to its partial path so the stage resumes it."""
    if step.output is None:
        return
    partial = staging_path(step.output)
    if step.action in ("rebuild", "build") or step.reason == "discard-partial":
        if partial.exists():
            shutil.rmtree(partial)
    if (step.action == "resume" and step.output.exists() and not partial.exists()
            and not pv.is_dir_output(step.output)):
        step.output.rename(partial)


def begin_output_dir(config: RunConfig, stage: str) -> Path:
    """Open ``stage``'s output directory for writing: its fingerprint goes first, so a run killed
    while rewriting it leaves a directory that counts as unfinished, never as valid."""
    out = output_path(config, stage) or config.run_dir / BY_NAME[stage].output
    out.mkdir(parents=True, exist_ok=True)
    (out / pv.DIR_FILE).unlink(missing_ok=True)
    return out


def finish_output_dir(config: RunConfig, stage: str) -> None:
    """Record ``stage``'s fingerprint in its output directory, last."""
    out = output_path(config, stage) or config.run_dir / BY_NAME[stage].output
    pv.write_dir_fingerprint(out, fingerprint_of(config, stage))
