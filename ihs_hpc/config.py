"""Run configuration: one YAML per run, validated against the package defaults.

The defaults live in the shipped ``ihs.yaml`` and are registered with :mod:`dask.config` under
``"ihs"`` (the dask-jobqueue pattern), so ``dask.config.get("ihs.stage2.stl.period")`` works and
environment variables such as ``DASK_IHS__CLUSTER__N_WORKERS=4`` override them. A run's YAML may set
any key the defaults define; an unknown key or a value of the wrong type is an error that names the
key and the file, raised before anything is written.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Mapping

import dask.config
import yaml

from .errors import ConfigError

DEFAULTS_FILE = files("ihs_hpc") / "ihs.yaml"

with DEFAULTS_FILE.open() as _fh:
    _DEFAULTS: dict = yaml.safe_load(_fh)

dask.config.update_defaults(_DEFAULTS)

#: Keys whose default is null, with the types they accept when set.
_NULLABLE_TYPES: dict[str, tuple[type, ...]] = {
    "run_dir": (str,),
    "input.files": (dict,),
    "input.store": (str,),
    "stage2.stl.trend": (int,),
    "stage2.stl.low_pass": (int,),
    "stage2.stl.inner_iter": (int,),
    "stage2.stl.outer_iter": (int,),
    "stats.indicators": (str,),
    "stats.attribution.decay_km": (float, int),
    "input.synthetic.ihs_season": (str,),
    "input.synthetic.ihs_season_amplitude": (int, float),
    "input.synthetic.emission_jitter": (int, float),
    "input.synthetic.noise": (str,),
    "input.synthetic.noise_sigma": (int, float),
    "input.synthetic.spikes": (int, float),
    "input.synthetic.towns_near_ihs": (int,),
    "input.synthetic.terrain_edge": (int, float),
    "input.synthetic.dense_clusters": (bool,),
    "input.synthetic.strength_spread": (int, float),
    "input.synthetic.start_stop_fraction": (int, float),
    "input.synthetic.ihs_share": (int, float),
    "report.case_ihs": (str, int),
    "allocation.pm25": (str,),
    "allocation.index": (str,),
    "cluster.interface": (str,),
    "cluster.adapt_minimum_jobs": (int,),
    "cluster.adapt_maximum_jobs": (int,),
    "stage3.uconvlstm.val_year": (int,),
    "stage3.uconvlstm.threads": (int,),
}
#: Keys that accept several types whatever their default.
_EXPLICIT_TYPES: dict[str, tuple[type, ...]] = {"cluster.memory_limit": (str, int)}
#: Keys whose value is free-form (passed through to another library).
_OPEN_KEYS = {"cluster.slurm", "cluster.distributed", "input.files"}
#: Keys restricted to a set of choices.
_CHOICES: dict[str, tuple] = {
    "input.kind": ("synthetic", "files", "store"),
    "input.synthetic.preset": ("tiny", "demo", "bth"),
    "cluster.kind": ("local", "slurm", "mpi", "none"),
    "prep.kriging_model": ("exponential", "spherical", "gaussian", "linear"),
    "prep.variogram": ("local", "global"),
    "stage3.kriging_model": ("exponential", "spherical", "gaussian", "linear"),
    "stage3.variogram": ("local", "global"),
    "stage3.method": ("kriging", "uconvlstm", "auto"),
    "stage3.drift": ("covariates", "none"),
    "stage3.uconvlstm.holes": ("year", "union"),
    "stage3.uconvlstm.backend": ("single", "ddp", "horovod"),
    "stage3.uconvlstm.device": ("auto", "cpu", "cuda"),
    "stage2.met_fit": ("background", "pixel"),
    "stage2.level_window": ("year", "record"),
    "prep.outliers": ("residual", "iqr"),
    "input.synthetic.ihs_season": ("winter", "summer", "none"),
    "input.synthetic.noise": ("additive", "multiplicative"),
}
#: Numeric keys restricted to a closed interval.
_RANGES: dict[str, tuple[float, float]] = {
    "prep.neighbour_share": (0.0, 1.0),
}




def defaults() -> dict:
    """The package defaults merged with anything set through dask.config (env vars, user YAML)."""
    return copy.deepcopy(dask.config.get("ihs"))


def _type_name(types) -> str:
    return " or ".join(t.__name__ for t in types)


def _validate(user: Mapping, reference: Mapping, source: str, prefix: str = "") -> None:
    for key, value in user.items():
        dotted = f"{prefix}{key}"
        if key not in reference:
            close = [k for k in reference if _similar(k, str(key))]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{source}: unknown key {dotted!r}{hint}; known keys here: {sorted(reference)}")
        default = reference[key]
        if dotted in _OPEN_KEYS:
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"{source}: key {dotted!r} must be a mapping, got {value!r}")
            continue
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: key {dotted!r} must be a mapping, got {type(value).__name__} {value!r}")
            _validate(value, default, source, dotted + ".")
            continue
        if value is None:
            continue
        if dotted in _EXPLICIT_TYPES:
            allowed = _EXPLICIT_TYPES[dotted]
        elif default is None:
            allowed = _NULLABLE_TYPES.get(dotted, (str, int, float, bool, list, dict))
        elif isinstance(default, bool):
            allowed = (bool,)
        elif isinstance(default, float):
            allowed = (int, float)
        elif isinstance(default, int):
            allowed = (int,)
        else:
            allowed = (type(default),)
        if isinstance(value, bool) and bool not in allowed:
            ok = False
        else:
            ok = isinstance(value, allowed)
        if not ok:
            raise ConfigError(
                f"{source}: key {dotted!r} must be {_type_name(allowed)}, got {type(value).__name__} {value!r}"
            )
        if dotted in _CHOICES and value not in _CHOICES[dotted]:
            raise ConfigError(f"{source}: key {dotted!r} must be one of {list(_CHOICES[dotted])}, got {value!r}")
        if dotted in _RANGES and not _RANGES[dotted][0] <= value <= _RANGES[dotted][1]:
            low, high = _RANGES[dotted]
            raise ConfigError(f"{source}: key {dotted!r} must be in [{low}, {high}], got {value!r}")


def _similar(a: str, b: str) -> bool:
    import difflib

    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.75


def _merge(base: dict, override: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict) and key != "slurm":
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class RunConfig:
    """A validated run configuration: the merged settings plus where they came from."""

    settings: dict
    source: str
    run_dir: Path

    def __getitem__(self, key: str) -> Any:
        node: Any = self.settings
        for part in key.split("."):
            node = node[part]
        return node

    def get(self, key: str, default=None) -> Any:
        try:
            return self[key]
        except (KeyError, TypeError):
            return default

    def to_yaml(self) -> str:
        return yaml.safe_dump({"ihs": self.settings}, sort_keys=False)


def validate_settings(user: Mapping | None, source: str = "<settings>") -> dict:
    """Validate a mapping of run settings (the content under ``ihs:``) and merge it over the defaults."""
    base = defaults()
    user = user or {}
    if not isinstance(user, Mapping):
        raise ConfigError(f"{source}: the configuration must be a mapping of keys, got {type(user).__name__}")
    _validate(user, base, source)
    return _merge(base, user)


def _validate_input(settings: Mapping, source: str) -> None:
    """The input section's own checks (ingest keys, dates, paths set), before anything is written."""
    kind = settings["input"]["kind"]
    if kind == "files":
        files = settings["input"].get("files")
        if not files:
            raise ConfigError(f"{source}: input.kind is 'files' but input.files is not set")
        from .io.ingest_config import check_config

        try:
            check_config(files, source=source, prefix="input.files")
        except ValueError as err:
            raise ConfigError(str(err)) from None
    elif kind == "store" and not settings["input"].get("store"):
        raise ConfigError(f"{source}: input.kind is 'store' but input.store is not set")
    elif kind == "synthetic":
        from .synth.variants import SceneOptions

        try:
            SceneOptions.from_mapping(settings["input"].get("synthetic"))
        except ValueError as err:
            raise ConfigError(f"{source}: input.synthetic: {err}") from None


def _validate_intervals(settings: Mapping, source: str) -> None:
    """``stats.intervals``' ranges (:mod:`ihs_hpc.pipeline.intervals`), checked before anything is written
    rather than when the stats stage starts."""
    from .pipeline.intervals import interval_settings

    try:
        interval_settings(settings["stats"]["intervals"])
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def load_config(path: str | os.PathLike | None = None, overrides: Mapping | None = None) -> RunConfig:
    """Read, validate and merge a run YAML (top level either the keys themselves or ``ihs:``)."""
    if path is None:
        source, user = "<defaults>", {}
        base_dir, stem = Path.cwd(), "ihs-run"
    else:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"{source}: configuration file not found")
        try:
            user = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{source}: not valid YAML: {err}") from err
        if isinstance(user, Mapping) and set(user) == {"ihs"}:
            user = user["ihs"] or {}
        base_dir, stem = path.resolve().parent, path.stem
    settings = validate_settings(user, source)
    if overrides:
        settings = _merge(settings, overrides)
        _validate(overrides, defaults(), "<command line>")
    _validate_input(settings, source)
    _validate_intervals(settings, source)
    run_dir = Path(settings["run_dir"]) if settings.get("run_dir") else base_dir / stem
    if not run_dir.is_absolute():
        run_dir = base_dir / run_dir
    return RunConfig(settings=settings, source=source, run_dir=run_dir)
