"""The input stage: make ``RUN/cubes.zarr`` from a synthetic scene or from real files, or adopt a store."""
from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from ..config import RunConfig
from ..errors import ConfigError
from ..io.cube import open_store, publish


def input_store(config: RunConfig) -> Path:
    """Where the run's input cubes live (the configured store for ``input.kind: store``)."""
    if config["input.kind"] == "store":
        return Path(config["input.store"]).expanduser().resolve()
    return config.run_dir / "cubes.zarr"


#: Static maps of the input store used as stage 3's drift covariates, in this order, where present.
DRIFT_COVARIATES = ("dem", "urban")


def drift_covariates(config: RunConfig) -> tuple[list[str], np.ndarray | None]:
    """Stage 3's drift covariates (``stage3.drift``): the names used and their standardised maps
    ``(p, ny, nx)`` (:func:`~ihs_hpc.ops.drift.standardise`), or ``([], None)`` for ordinary kriging.

    ``covariates``: elevation and, where the input store has it, the ``urban`` map (a built-up or
    population density raster from ``input.files.urban``; synthetic scenes carry their towns' one).
    """
    if config["stage3.drift"] == "none":
        return [], None
    return static_covariates(config)


def static_covariates(config: RunConfig) -> tuple[list[str], np.ndarray | None]:
    """The input store's static covariates among :data:`DRIFT_COVARIATES` (names and standardised maps
    ``(p, ny, nx)``), whatever ``stage3.drift`` says, or ``([], None)`` when it has none."""
    from ..ops.drift import standardise

    source = open_store(input_store(config))
    names = [name for name in DRIFT_COVARIATES if name in source]
    if not names:
        return [], None
    maps = standardise(np.stack([source[name].values.astype(np.float64) for name in names]))
    return names, maps


def pm25_store(config: RunConfig) -> Path:
    """The store whose ``pm25`` later stages analyse: ``prep.zarr`` when prep is enabled, else the input."""
    if config["prep.enabled"]:
        return config.run_dir / "prep.zarr"
    return input_store(config)


def run_input(config: RunConfig, client, echo) -> dict:
    """Make ``RUN/cubes.zarr`` (in ``cubes.zarr.partial``, published when complete), or check the given store."""
    from .plan import stamp, staging_path

    kind = config["input.kind"]
    out = input_store(config)
    if kind == "store":
        if not config["input.store"]:
            raise ConfigError(f"{config.source}: input.kind is 'store' but input.store is not set")
        open_store(out)  # raises a clear error when missing or incomplete
        echo(f"  using existing store {out}")
        return {"store": str(out)}
    work = staging_path(out)
    if kind == "synthetic":
        from ..synth import generate_scene

        from ..synth.variants import SceneOptions

        preset = config["input.synthetic.preset"]
        seed = config["input.synthetic.seed"]
        options = SceneOptions.from_mapping(config["input.synthetic"])
        variant = options.set()
        echo(f"  generating the synthetic '{preset}' scene (seed {seed})"
             + (f", variant {variant}" if variant else ""))
        generate_scene(preset, work, seed=seed, tile_size=config["grid.tile_size"], attrs=stamp(config, "input"),
                       options=options)
        publish(work, out)
        return {"store": str(out), "preset": preset, "seed": seed, **({"scene_options": variant} if variant else {})}
    if kind == "files":
        from ..io.ingest import ingest

        if not config["input.files"]:
            raise ConfigError(f"{config.source}: input.kind is 'files' but input.files is not set")
        t0 = time.perf_counter()
        ingest(config["input.files"], out, tile_size=config["grid.tile_size"], attrs=stamp(config, "input"),
               overwrite=True, echo=echo)
        from .provenance import write_files_sidecar
        from .plan import fingerprint_of

        write_files_sidecar(out, fingerprint_of(config, "input"))
        return {"store": str(out), **ingest_figures(out, time.perf_counter() - t0)}
    raise ConfigError(f"{config.source}: unknown input.kind {kind!r}")


def ingest_figures(store, wall_s: float) -> dict:
    """What an ingest cost: wall time, MB/s of float32 PM2.5 cube and this process's peak RSS (MB)."""
    import zarr

    group = zarr.open_group(Path(store), mode="r")
    cube_mb = float(np.prod(group["pm25"].shape)) * 4 / 2**20
    stats = json.loads(group.attrs.get("ihs_ingest_stats", "{}"))
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    peak_mb = maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10
    return {"ingest_s": round(wall_s, 1), "pm25_cube_mb": round(cube_mb, 1),
            "mb_per_s": round(cube_mb / max(wall_s, 1e-9), 1), "peak_rss_mb": round(peak_mb, 1),
            "batch_days": stats.get("pm25", {}).get("batch_days"),
            "implausible": json.loads(group.attrs.get("ihs_plausibility", "{}")),
            "gap_days": json.loads(group.attrs.get("ihs_gap_days", "{}"))}
