"""Stage 3 with the seed's U-ConvLSTM (``stage3.method: uconvlstm``) and ``ihs train``.

Seed 000 §2.3.4, eqs. 5–10. What runs, in the run directory ``RUN``:

1. **training** (:func:`train_run`, ``ihs train``; in-process by ``ihs stage3`` when no current model
   exists): ``RUN/uconvlstm/`` gets the time-major copy of ``pm25_bl_tem``, checkpoints, ``metrics.csv``
   and ``model.pt``. A model is current when it was trained on the same input stores with the same
   learning settings.
2. **validation** (:func:`validate_run`): the model and the run's stage-3 kriging fill the same
   held-out background holes of the held-out year (:mod:`ihs_hpc.ml.evaluate`);
   ``RUN/stats/stage3_validation.csv`` (``method, rmse, bias, r``), ``RUN/uconvlstm/validation.json``
   and the figures ``RUN/uconvlstm/validation.png``, ``training.png``.
3. **inference** (:func:`run_stage3_uconvlstm`): the model fills each day's IHS areas (the areas of
   sources operating that year; ``holes: union`` — every area), tiled over the region with blended
   overlaps, in blocks of days saved as they finish (``RUN/uconvlstm/fills/``; a killed run resumes
   at the next block); then ``stage3.zarr`` is written tile by tile (resumable per tile):
   ``pm25_bl_oem`` = ``pm25_bl_tem`` with the fills in, ``pm25_ihs = pm25_bl_tem − pm25_bl_oem`` (eq. 10)
   inside the IHS areas of any year (0 on the days a pixel's sources did not operate), NaN outside.
"""
from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

import numpy as np

from ..config import RunConfig

MODEL_DIR = "uconvlstm"
VALIDATION_CSV = "stage3_validation.csv"
UNITS = "ug m-3"


def model_dir(config: RunConfig) -> Path:
    """Directory of the run's U-ConvLSTM (checkpoints, model, metrics)."""
    return config.run_dir / MODEL_DIR


def settings_of(config: RunConfig, **overrides):
    """The :class:`~ihs_hpc.ml.train.TrainSettings` of a run (``stage3.uconvlstm``), with overrides."""
    from ..ml.train import TrainSettings

    values = dict(config["stage3.uconvlstm"])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainSettings.from_dict(values)


def _stores(config: RunConfig):
    from .inputs import input_store
    from .run import store_path

    return store_path(config, "stage1"), store_path(config, "stage2"), input_store(config)


def source_id(config: RunConfig) -> str:
    """Identity of what the model learns from: the fingerprints of the stage 1, stage 2 and input stores
    this configuration asks for (:mod:`ihs_hpc.pipeline.provenance`), which the stores must carry."""
    from ..errors import StoreError
    from ..io.cube import is_complete
    from . import provenance
    from .plan import fingerprint_of

    digests = []
    for stage, path in zip(("stage1", "stage2", "input"), _stores(config)):
        if not is_complete(path):
            raise StoreError(f"{path} is missing or incomplete; run the stages before stage 3 first")
        want = fingerprint_of(config, stage).digest
        got = provenance.recorded(path)
        if config["input.kind"] != "store" or stage != "input":
            if got is None or got.digest != want:
                raise StoreError(f"{path} was made from other settings than {config.source} asks for; rerun its "
                                 f"stage (ihs run with --rerun-changed)")
        digests.append(want)
    return "|".join(digests)


def stage_data(config: RunConfig, settings, norm=None):
    """The :class:`~ihs_hpc.ml.data.StageData` of a run (scene, validation split, normalisation)."""
    from ..ml.data import SplitSpec, StageData, load_scene

    stage1, stage2, cubes = _stores(config)
    scene = load_scene(stage1, stage2, cubes, model_dir(config) / "cache", source_id=source_id(config),
                       holes=settings.holes)
    split = SplitSpec(seed=settings.seed, val_year=settings.val_year, block=settings.val_block,
                      fraction=settings.val_fraction, holes_per_block=settings.val_holes_per_block)
    return StageData(scene, split, norm=norm)


def _device(settings):
    """The torch device of in-process validation and inference (``stage3.uconvlstm.device``)."""
    from ..ml.distributed import init

    return init("single", settings.device).device


def current_model(config: RunConfig, settings) -> dict | None:
    """The saved ``model.pt`` if it was trained on these stores with these learning settings, else None."""
    from ..ml.train import learning_settings, load

    path = model_dir(config) / "model.pt"
    if not path.is_file():
        return None
    state = load(path)
    if state.get("source_id") != source_id(config) or learning_settings(state["settings"]) != learning_settings(settings.to_dict()):
        return None
    return state


# ---------------------------------------------------------------------------- training (ihs train)
def train_run(config: RunConfig, *, backend: str | None = None, steps: int | None = None, validate: bool = True,
              restart: bool = False, client=None, echo=print) -> dict:
    """Train the U-ConvLSTM of a run on this process's rank (``backend``: single | ddp | horovod).

    Rank 0 then scores it against kriging on the held-out holes (``validate``). ``restart`` removes
    the checkpoints first; otherwise training resumes from the newest one.
    """
    from ..ml import distributed as D
    from ..ml.train import train

    settings = settings_of(config, backend=backend, steps=steps)
    out = model_dir(config)
    dist = D.init(settings.backend, settings.device)
    try:
        if dist.is_main:
            out.mkdir(parents=True, exist_ok=True)
            if restart:
                import shutil

                shutil.rmtree(out / "checkpoints", ignore_errors=True)
                (out / "best.pt").unlink(missing_ok=True)
            echo(f"  U-ConvLSTM training: backend {dist.backend}, {dist.world} rank(s), device {dist.device}, "
                 f"{settings.steps} steps of {settings.batch} samples ({settings.seq_len} days x {settings.patch} px)")
            data = stage_data(config, settings)  # rank 0 writes the time-major copy first
            D.barrier(dist)
        else:
            D.barrier(dist)
            data = stage_data(config, settings)
        summary = train(data, settings, out, dist, echo=echo, source_id=source_id(config))
        result = {"training": summary}
        if dist.is_main and validate and (out / "model.pt").is_file():
            result["validation"] = validate_run(config, settings, client=client, echo=echo)
        return result
    finally:
        D.shutdown(dist)


# ---------------------------------------------------------------------------- validation
def validate_run(config: RunConfig, settings=None, *, client=None, echo=print) -> dict:
    """Score the model and kriging on the same held-out holes; write the CSV, JSON and figures."""
    import pandas as pd

    from ..ml.data import Normalisation
    from ..ml.evaluate import kriging_fill, model_fill, scores, validation_table, validation_truth
    from ..ml.infer import torch_predictor
    from ..ml.train import load_model
    from .run import store_path

    settings = settings or settings_of(config)
    out = model_dir(config)
    device = _device(settings)
    model, state = load_model(out / "model.pt", device=device)
    data = stage_data(config, settings, norm=Normalisation(**state["norm"]))
    truth = validation_truth(data)
    from .inputs import drift_covariates

    kriged = kriging_fill(data, store_path(config, "stage2"), model=config["stage3.kriging_model"],
                          k=config["stage3.kriging_neighbours"], variogram=config["stage3.variogram"],
                          variogram_cells=config["stage3.variogram_cells"], drift=drift_covariates(config)[1],
                          client=client)
    filled = model_fill(torch_predictor(model, autocast=device.type == "cuda"), data, seq_len=settings.seq_len, window=settings.window,
                        overlap=settings.overlap, multiple=model.spec.multiple)
    results = {"kriging": scores(kriged, truth), "uconvlstm": scores(filled, truth)}
    table = validation_table(results)
    base = None
    if model.spec.base_fill:  # the same architecture untrained = its push-pull layer alone: what training added
        from ..ml.model import build_model

        untrained = build_model(model.spec, seed=settings.seed).eval().to(device)
        base = scores(model_fill(torch_predictor(untrained, autocast=device.type == "cuda"), data, seq_len=settings.seq_len, window=settings.window,
                                 overlap=settings.overlap, multiple=model.spec.multiple), truth)
    _write_csv(table, out / VALIDATION_CSV)  # the stats stage copies it to RUN/stats/
    k_rmse, m_rmse = results["kriging"]["rmse"], results["uconvlstm"]["rmse"]
    doc = {"year": data.val_year, "scored_pixels": int(data.scored.sum()), "hidden_pixels": int(data.hidden.sum()),
           "days": int(data.val_days.size), "pixel_days": results["kriging"]["n"], "scores": results,
           "rmse_change_pct": 100.0 * (m_rmse - k_rmse) / k_rmse,
           "better": "uconvlstm" if m_rmse < k_rmse else "kriging",
           "untrained_push_pull_base": base,
           "kriging": kriging_settings(config),
           "training": state.get("summary", {})}
    (out / "validation.json").write_text(json.dumps(doc, indent=2))
    try:
        _figures(out, data, truth, kriged, filled, results, pd.read_csv(out / "metrics.csv"))
    except Exception as err:  # noqa: BLE001 - a figure must not lose the scores
        echo(f"  validation figures not drawn: {err}")
    base_note = "" if base is None else f"; its push-pull layer alone {base['rmse']:.3f}"
    echo(f"  held-out holes ({data.val_year}, {doc['scored_pixels']} px x {doc['days']} days): RMSE kriging "
         f"{k_rmse:.3f}, U-ConvLSTM {m_rmse:.3f} µg/m³ ({doc['rmse_change_pct']:+.1f} %{base_note}); "
         f"{out / VALIDATION_CSV}")
    return doc


def _write_csv(table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _figures(out: Path, data, truth, kriged, filled, results, metrics) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.2), dpi=110)
    mean_map = np.nanmean(np.asarray(data.scene.values[data.val_days[0]:data.val_days[-1] + 1]), axis=0)
    ax = axes[0]
    ax.imshow(mean_map, cmap="viridis")
    ax.contour(data.scene.ihs_union, levels=[0.5], colors="white", linewidths=0.6)
    ax.contour(data.blocks, levels=[0.5], colors="orange", linewidths=0.8)
    ax.contour(data.hidden, levels=[0.5], colors="red", linewidths=0.8)
    ax.set_title(f"Held-out holes (red), validation blocks (orange),\nIHS areas (white); mean pm25_bl_tem "
                 f"{data.val_year}", fontsize=8)
    ax.set_xticks([]), ax.set_yticks([])
    lo, hi = np.nanpercentile(truth, [0.5, 99.5])
    for ax, (name, fill) in zip(axes[1:], (("kriging", kriged), ("uconvlstm", filled))):
        s = results[name]
        ax.hexbin(truth.ravel(), fill.ravel(), gridsize=60, extent=(lo, hi, lo, hi), bins="log", cmap="Greys")
        ax.plot([lo, hi], [lo, hi], color="red", lw=0.8)
        ax.set_xlabel("hidden pm25_bl_tem (µg m⁻³)")
        ax.set_ylabel("fill (µg m⁻³)")
        ax.set_title(f"{name}: RMSE {s['rmse']:.2f}, bias {s['bias']:+.2f}, r {s['r']:.3f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "validation.png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    ax.plot(metrics["step"], metrics["loss"], lw=0.7, label="training loss (held-out background)")
    val = metrics.dropna(subset=["val_loss"])
    ax.plot(val["step"], val["val_loss"], "o-", label="validation loss (held-out year)")
    k_norm = (results["kriging"]["rmse"] / data.norm.std) ** 2
    ax.axhline(k_norm, color="red", lw=0.8, ls="--", label="kriging on the validation holes")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("normalised MSE")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "training.png")
    plt.close(fig)


# ---------------------------------------------------------------------------- inference
def infer_fills(config: RunConfig, data, model, settings, *, echo=print, block_days: int | None = None) -> dict:
    """The model's fills of every day's IHS areas, sparse ``(day, pixel, value)``; resumable per day block."""
    from tqdm.auto import tqdm

    from ..ml.infer import predict_region, torch_predictor

    out = model_dir(config) / "fills"
    out.mkdir(parents=True, exist_ok=True)
    scene = data.scene
    seq = settings.seq_len
    block_days = block_days or seq * max(1, 64 // seq)
    predict = torch_predictor(model, autocast=next(model.parameters()).device.type == "cuda")
    flat_holes = [np.flatnonzero(h.ravel()) for h in scene.year_holes]
    parts = []
    starts = list(range(0, scene.n_days, block_days))
    for start in tqdm(starts, desc="stage3 U-ConvLSTM days", unit="block", dynamic_ncols=True):
        path = out / f"block_{start:06d}.npz"
        if path.is_file():
            with np.load(path) as z:
                parts.append({k: z[k] for k in ("day", "pixel", "value")})
            continue
        stop = min(start + block_days, scene.n_days)
        days, pixels, values = [], [], []
        for t0 in range(start, stop, seq):
            n = min(seq, stop - t0)
            pred = data.denormalise(predict_region(predict, data.inputs, scene.shape, t0, n, window=settings.window,
                                                   overlap=settings.overlap, multiple=model.spec.multiple))
            for k in range(n):
                flat = flat_holes[scene.day_year[t0 + k]]
                days.append(np.full(flat.size, t0 + k, dtype=np.int32))
                pixels.append(flat)
                values.append(pred[k].ravel()[flat].astype(np.float32))
        part = {"day": np.concatenate(days), "pixel": np.concatenate(pixels), "value": np.concatenate(values)}
        tmp = out / f".block_{start:06d}.{os.getpid()}.npz"
        with open(tmp, "wb") as fh:
            np.savez(fh, **part)
        os.replace(tmp, path)
        parts.append(part)
    return {k: np.concatenate([p[k] for p in parts]) for k in ("day", "pixel", "value")}


def kriging_settings(config: RunConfig) -> dict:
    """The stage-3 kriging settings a validation was scored with (a change makes it stale)."""
    return {"model": config["stage3.kriging_model"], "k": config["stage3.kriging_neighbours"],
            "variogram": config["stage3.variogram"], "variogram_cells": config["stage3.variogram_cells"],
            "drift": config["stage3.drift"]}


def ensure_validation(config: RunConfig, *, client=None, echo=print) -> dict:
    """The run's held-out-hole validation (``validation.json``): trains the model first when no current one
    exists, and scores again when the model or the kriging settings changed since the saved one."""
    import shutil

    settings = settings_of(config, backend="single")
    mdir = model_dir(config)
    trained = False
    if current_model(config, settings) is None:
        shutil.rmtree(mdir / "fills", ignore_errors=True)
        summary = train_run(config, backend="single", validate=False, echo=echo)["training"]
        echo(f"  trained {summary['steps']} steps in {summary['seconds']:.0f} s"
             f"{' (stopped early)' if summary['stopped_early'] else ''}")
        trained = True
    saved = mdir / "validation.json"
    doc = json.loads(saved.read_text()) if saved.is_file() and (mdir / VALIDATION_CSV).is_file() else None
    if trained or doc is None or doc.get("kriging") != kriging_settings(config):
        doc = validate_run(config, settings, client=client, echo=echo)
    return doc


def choose_method(config: RunConfig, client, echo) -> tuple[str, dict]:
    """``stage3.method: auto`` (issue 10): the U-ConvLSTM when its held-out-hole RMSE is at least
    ``stage3.auto_margin_pct`` below kriging's, else kriging; and the validation it was chosen by."""
    doc = ensure_validation(config, client=client, echo=echo)
    k_rmse, m_rmse = doc["scores"]["kriging"]["rmse"], doc["scores"]["uconvlstm"]["rmse"]
    margin = float(config["stage3.auto_margin_pct"])
    chosen = "uconvlstm" if m_rmse <= k_rmse * (1.0 - margin / 100.0) else "kriging"
    echo(f"  stage3.method auto: {chosen} (held-out RMSE kriging {k_rmse:.3f}, U-ConvLSTM {m_rmse:.3f} µg/m³, "
         f"{100.0 * (m_rmse - k_rmse) / k_rmse:+.1f} %; the model fills when at least {margin:g} % lower)")
    return chosen, doc


def run_stage3_uconvlstm(config: RunConfig, client, echo) -> dict:
    """``ihs stage3`` with ``stage3.method: uconvlstm``: train if needed, validate, infer, write stage3.zarr."""
    from ..grid import Grid
    from ..io.cube import create_store, cube_spec, mark_complete, open_store, publish
    from ..ml.data import Normalisation
    from ..ml.train import load_model
    from .daily import merge_cube
    from .plan import stamp, staging_path
    from .run import store_path
    from .stage3 import ihs_related

    final = store_path(config, "stage3")
    out = staging_path(final)
    settings = settings_of(config, backend="single")
    mdir = model_dir(config)
    validation = ensure_validation(config, client=client, echo=echo)
    model, state = load_model(mdir / "model.pt", device=_device(settings))
    data = stage_data(config, settings, norm=Normalisation(**state["norm"]))
    stage2 = store_path(config, "stage2")
    grid = Grid.from_dataset(open_store(stage2))
    union = data.scene.ihs_union
    if not union.any():
        raise ValueError(f"{store_path(config, 'stage1')}: no pixel lies in an IHS radiation area; nothing for "
                         f"stage 3 to estimate")
    fills = infer_fills(config, data, model, settings, echo=echo)
    tile_size = config["grid.tile_size"]
    create_store(out, grid, {
        "pm25_bl_oem": cube_spec(UNITS, "PM2.5 from other (non-IHS) anthropogenic sources: background filled "
                                        "into IHS areas by the U-ConvLSTM"),
        "pm25_ihs": cube_spec(UNITS, "IHS-related PM2.5 (eq. 10), inside IHS radiation areas"),
    }, tile_size=tile_size, time=open_store(stage2).time.values,
        attrs={"method": "uconvlstm", "holes": settings.holes, "model": str(mdir / "model.pt"),
               "validation_rmse": json.dumps({k: v["rmse"] for k, v in validation.get("scores", {}).items()}),
               **stamp(config, "stage3")})

    merge_cube(stage2, "pm25_bl_tem", out, "pm25_bl_oem", grid, tile_size, fills, holes=None,
               extra=partial(ihs_related, stage2=stage2, areas=union), desc="stage3 merge")
    mark_complete(out)
    publish(out, final)
    n_fill = int(fills["value"].size)
    echo(f"  U-ConvLSTM filled {n_fill} IHS-area pixel-days ({int(union.sum())} pixels in any year's areas)")
    return {"store": str(final), "area_pixels": int(union.sum()), "filled_pixel_days": n_fill,
            "validation_rmse": {k: v["rmse"] for k, v in validation.get("scores", {}).items()}}
