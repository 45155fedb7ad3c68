"""Benchmark of the stage-3 U-ConvLSTM (seed 000 §2.3.4): training samples/s and inference pixels/s.

A demo-sized synthetic scene in memory (``--ny`` × ``--nx`` pixels, ``--days`` days over two years;
a smooth moving field plus pixel noise, 20 blob-shaped IHS areas). With the package's default model
and training settings (``stage3.uconvlstm`` in ``ihs.yaml``):

* **training**: ``--steps`` steps of :func:`ihs_hpc.ml.train.train` (one process, every torch
  thread); samples/s and pixel-days/s of the samples (one sample = ``seq_len`` days × patch²);
* **inference**: :func:`ihs_hpc.ml.infer.predict_region` over the whole grid for ``--infer-days``
  days (windows and blending as in ``ihs stage3``); grid pixel-days/s and IHS-area pixel-days/s;
* **reference, same run**: the pipeline's kriging fill of the same IHS areas on the same days
  (:func:`ihs_hpc.ops.gapfill.fill_gaps`: variogram fit and ordinary kriging, k = 16), the method the
  model replaces; the ratio is IHS-area pixel-days/s of the model over kriging's.

On a machine with a GPU the training and inference are repeated on it (``device`` and the card's name in
the JSON). Results go through :mod:`harness` (``--quick``: 64 × 96 pixels, 6 steps).

Usage::

    python benchmarks/bench_uconvlstm.py [--quick]
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import ihs_hpc.ml  # noqa: F401  (sets OMP_WAIT_POLICY before torch is imported)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def synthetic_scene(ny: int, nx: int, days: int, seed: int = 0):
    from ihs_hpc.ml.data import Scene
    from ihs_hpc.ml.holes import cluster_shapes, hole_shapes

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    t = np.arange(days, dtype=np.float32)[:, None, None]
    values = (60 + 0.2 * yy + 12 * np.sin(xx / 11 + t / 9) + 9 * np.cos(yy / 13 - t / 6)
              + rng.normal(0, 3.0, (days, ny, nx)).astype(np.float32)).astype(np.float32)
    members, union = [], np.zeros((ny, nx), dtype=bool)
    for _ in range(20):
        r, c = rng.integers(6, ny - 6), rng.integers(6, nx - 6)
        blob = (yy - r) ** 2 / rng.uniform(9, 36) + (xx - c) ** 2 / rng.uniform(9, 36) <= 1
        members.append(np.flatnonzero(blob.ravel()))
        union |= blob
    offsets = np.concatenate([[0], np.cumsum([m.size for m in members])])
    half = days // 2
    return Scene(values=values, day_year=(np.arange(days) >= half).astype(np.int64), years=np.array([2020, 2021]),
                 year_holes=np.stack([union, union]), ihs_union=union, dem=100 + 3 * xx,
                 shapes=cluster_shapes(union) + hole_shapes(offsets, np.concatenate(members), nx),
                 lat=37.0 - 0.01 * np.arange(ny), lon=114.0 + 0.01 * np.arange(nx))


def bench_device(data, settings, device: str, steps: int, infer_days: int) -> dict:
    import torch

    from ihs_hpc.ml import distributed as D
    from ihs_hpc.ml.infer import predict_region, torch_predictor
    from ihs_hpc.ml.train import load_model, train

    s = settings.__class__.from_dict({**settings.to_dict(), "steps": steps, "val_every": steps,
                                      "checkpoint_every": steps, "device": device, "log_every_s": 1e9})
    with tempfile.TemporaryDirectory() as tmp:
        dist = D.init("single", device)
        summary = train(data, s, Path(tmp), dist, echo=lambda *_: None)
        model, _ = load_model(Path(tmp) / "model.pt", device=dist.device)
    patch = data.patch_size(s.patch, model.spec.multiple)
    samples = steps * s.batch
    predict = torch_predictor(model, autocast=dist.device.type == "cuda")
    predict_region(predict, data.inputs, data.scene.shape, 0, s.seq_len, window=s.window, overlap=s.overlap,
                   multiple=model.spec.multiple)  # warm-up
    t0 = time.perf_counter()
    for start in range(0, infer_days, s.seq_len):
        predict_region(predict, data.inputs, data.scene.shape, start, min(s.seq_len, infer_days - start),
                       window=s.window, overlap=s.overlap, multiple=model.spec.multiple)
    if dist.device.type == "cuda":
        torch.cuda.synchronize()
    infer_s = time.perf_counter() - t0
    ny, nx = data.scene.shape
    holes = int(data.scene.ihs_union.sum())
    return {"device": str(dist.device), "torch_threads": torch.get_num_threads(),
            "train_steps": steps, "train_seconds": summary["seconds"],
            "train_samples_per_s": samples / summary["seconds"],
            "train_pixel_days_per_s": samples * s.seq_len * patch[0] * patch[1] / summary["seconds"],
            "infer_days": infer_days, "infer_seconds": infer_s,
            "infer_grid_pixel_days_per_s": infer_days * ny * nx / infer_s,
            "infer_ihs_pixel_days_per_s": infer_days * holes / infer_s}


def bench_kriging(data, days: int) -> dict:
    from ihs_hpc.ops.gapfill import fill_gaps

    holes = data.scene.ihs_union
    t0 = time.perf_counter()
    for d in range(days):
        field = np.where(holes, np.nan, np.asarray(data.scene.values[d], dtype=np.float64))
        fill_gaps(field, data.scene.lat, data.scene.lon, model="exponential", k=16, seed=(0, d))
    seconds = time.perf_counter() - t0
    return {"days": days, "seconds": seconds, "ihs_pixel_days_per_s": days * int(holes.sum()) / seconds}


#: floor of the inference's IHS-area pixel-days/s over kriging's, CPU
FLOOR = 1.0


def run(quick: bool) -> dict:
    ny, nx, days, steps, infer_days, kriging_days = (64, 96, 64, 6, 8, 8) if quick else (128, 160, 200, 30, 64, 32)
    import torch

    from ihs_hpc.config import defaults
    from ihs_hpc.ml.data import SplitSpec, StageData
    from ihs_hpc.ml.train import TrainSettings

    settings = TrainSettings.from_dict(defaults()["stage3"]["uconvlstm"])
    if quick:
        settings = settings.__class__.from_dict({**settings.to_dict(), "batch": 4, "window": 64, "overlap": 16})
    data = StageData(synthetic_scene(ny, nx, days),
                     SplitSpec(seed=0, block=settings.val_block, fraction=settings.val_fraction,
                               holes_per_block=settings.val_holes_per_block))
    fill_gaps_warm = bench_kriging(data, 1)  # numba compile / cache load
    kriging = bench_kriging(data, kriging_days)
    runs = [bench_device(data, settings, "cpu", steps, infer_days)]
    if torch.cuda.is_available():
        runs.append(bench_device(data, settings, "cuda", steps, infer_days))
        runs[-1]["gpu"] = torch.cuda.get_device_name(0)
    rows = []
    for r in runs:
        r["infer_vs_kriging_ihs_pixel_days"] = r["infer_ihs_pixel_days_per_s"] / kriging["ihs_pixel_days_per_s"]
        where = r["device"] + (f" ({r['gpu']})" if "gpu" in r else f", {r['torch_threads']} torch threads")
        rows.append(harness.row(f"train_{r['device']}", f"U-ConvLSTM training samples/s on {where} (no reference)",
                                ours=r["train_samples_per_s"], unit="samples/s"))
        rows.append(harness.row(f"infer_{r['device']}", f"U-ConvLSTM inference, IHS-area pixel-days/s on {where}",
                                ours=r["infer_ihs_pixel_days_per_s"], reference=kriging["ihs_pixel_days_per_s"],
                                unit="px-days/s", higher_is_better=True, reference_name="kriging fill (fill_gaps)",
                                floor=FLOOR if r["device"] == "cpu" else None,
                                grid_pixel_days_per_s=r["infer_grid_pixel_days_per_s"]))
    return {"rows": rows, "details": {
        "grid": [ny, nx], "days": days, "ihs_pixels": int(data.scene.ihs_union.sum()),
        "settings": settings.to_dict(), "runs": runs, "kriging": kriging,
        "kriging_first_call_s": fill_gaps_warm["seconds"], "torch": torch.__version__, "gpu": harness.gpu_name(),
        "reference": "ihs_hpc.ops.gapfill.fill_gaps (variogram fit + ordinary kriging, k=16) of the same IHS "
                     "areas on the same grid, same process"}}


if __name__ == "__main__":
    sys.exit(harness.main_single(run, "uconvlstm"))
