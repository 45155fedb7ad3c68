"""Training loop of the stage-3 U-ConvLSTM: data-parallel, checkpointed, resumable, early-stopped.

:func:`train` runs on every rank of a :class:`~ihs_hpc.ml.distributed.Dist` (one process, DDP or
Horovod). What makes runs reproducible and comparable:

* the initial weights depend only on ``seed``; sample ``i`` of the run is a pure function of
  ``(seed, i)`` (:class:`~ihs_hpc.ml.data.HolePatches`); step ``s`` consumes samples
  ``s·batch … (s+1)·batch − 1``, split over ranks as :class:`torch.utils.data.DistributedSampler`
  (no shuffle) splits them; gradients are averaged over ranks — so ``N`` ranks with ``batch / N``
  samples each take the steps one rank with ``batch`` samples takes (to float rounding);
* checkpoints (every ``checkpoint_every`` steps; model, optimizer, step, early-stopping state and
  the best weights so far) are
  written by rank 0 to a temporary file and renamed, so a crash never leaves a half-written one; a
  rerun resumes from the newest and continues with the very samples an uninterrupted run would use;
* the learning rate follows a cosine decay from ``lr`` to 0 over ``steps`` (a function of the step);
* early stopping: the loss on fixed windows of the held-out year (validation holes, scored pixels)
  every ``val_every`` steps; training stops after ``patience`` checks without an improvement of at
  least :data:`MIN_IMPROVEMENT` (relative) and the best weights are kept (``best.pt``).

Outputs in ``out_dir``: ``checkpoints/step_NNNNNN.pt``, ``best.pt``, ``metrics.csv`` (one row per
step: step, samples, loss, val_loss, lr, samples_per_s, seconds), TensorBoard events when
``tensorboard`` is installed, and ``model.pt`` (architecture, normalisation, settings, weights).
"""
from __future__ import annotations

import csv
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path


from . import distributed as D
from .data import HolePatches, StageData, masked_mse, validation_batch, validation_windows
from .model import ModelSpec, build_model

#: relative decrease of the validation loss that counts as an improvement for early stopping
MIN_IMPROVEMENT = 1e-3
#: settings that change how a run executes, not what it computes: a run may resume with other values
RUNTIME_KEYS = frozenset({"backend", "device", "threads", "num_workers", "log_every_s", "checkpoint_every",
                          "window", "overlap"})
METRIC_COLUMNS = ("step", "samples", "loss", "val_loss", "lr", "samples_per_s", "seconds")


@dataclass(frozen=True)
class TrainSettings:
    """Settings of the model and its training (``stage3.uconvlstm`` in ``ihs.yaml``; see there)."""

    holes: str = "year"
    widths: tuple = (8, 16, 16, 32)
    lstm_skips: int = 0
    base_fill: bool = True
    kernel: int = 3
    seq_len: int = 4
    patch: int = 64
    batch: int = 8
    steps: int = 300
    lr: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0
    max_holes: int = 4
    val_year: int | None = None
    val_block: int = 32
    val_fraction: float = 0.25
    val_holes_per_block: int = 2
    val_every: int = 50
    val_windows: int = 16
    patience: int = 2
    checkpoint_every: int = 50
    log_every_s: float = 10.0
    window: int = 256
    overlap: int = 32
    backend: str = "single"
    device: str = "auto"
    threads: int | None = None
    num_workers: int = 0

    @classmethod
    def from_dict(cls, values: dict) -> "TrainSettings":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown U-ConvLSTM setting(s) {sorted(unknown)}; known: {sorted(known)}")
        values = dict(values)
        if "widths" in values:
            values["widths"] = tuple(int(w) for w in values["widths"])
        return cls(**values)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    def spec(self) -> ModelSpec:
        from .data import N_CHANNELS

        return ModelSpec(in_channels=N_CHANNELS, widths=self.widths, kernel=self.kernel, lstm_skips=self.lstm_skips,
                         base_fill=self.base_fill)

    def check(self, world: int = 1) -> None:
        for name in ("seq_len", "patch", "batch", "steps", "val_every", "checkpoint_every", "max_holes"):
            if getattr(self, name) < 1:
                raise ValueError(f"stage3.uconvlstm.{name} must be >= 1, got {getattr(self, name)}")
        if self.batch % world:
            raise ValueError(f"stage3.uconvlstm.batch = {self.batch} (the global batch) is not divisible by the "
                             f"{world} ranks")
        if self.lr <= 0:
            raise ValueError(f"stage3.uconvlstm.lr must be > 0, got {self.lr}")


def learning_settings(settings: dict) -> dict:
    """The settings that change what a model learns (not where or how fast it runs: ``RUNTIME_KEYS``)."""
    return {k: v for k, v in settings.items() if k not in RUNTIME_KEYS}


def lr_at(settings: TrainSettings, step: int) -> float:
    """Cosine decay from ``lr`` at step 1 to 0 after ``steps``."""
    return settings.lr * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / max(settings.steps, 1)))


# ---------------------------------------------------------------------------- checkpoints
def save_atomic(obj, path: Path) -> None:
    """``torch.save`` to a temporary file in the same directory, then rename over ``path``."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest ``step_NNNNNN.pt`` in ``ckpt_dir``, or ``None``."""
    files = sorted(Path(ckpt_dir).glob("step_*.pt"))
    return files[-1] if files else None


def load(path: Path):
    """A checkpoint or model file read onto the CPU (``torch.load``)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def _prune(ckpt_dir: Path, keep: int = 2) -> None:
    for old in sorted(ckpt_dir.glob("step_*.pt"))[:-keep]:
        old.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- progress and metrics
class _Progress:
    """One line per ``every_s`` seconds when stdout is not a terminal; a tqdm bar when it is."""

    def __init__(self, total: int, start: int, every_s: float, echo, enabled: bool):
        self.total, self.every_s, self.echo, self.enabled = total, every_s, echo, enabled
        self.last = time.perf_counter()
        self.bar = None
        if enabled and sys.stdout.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=start, desc="train", unit="step", dynamic_ncols=True)

    def update(self, step: int, loss: float, val: float | None, sps: float, lr: float, force: bool = False):
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.4f}", val="-" if val is None else f"{val:.4f}", sps=f"{sps:.1f}")
            return
        now = time.perf_counter()
        if force or now - self.last >= self.every_s:
            self.last = now
            v = "-" if val is None else f"{val:.4f}"
            self.echo(f"  train step {step}/{self.total}  loss {loss:.4f}  val {v}  {sps:.1f} samples/s  lr {lr:.2e}")

    def close(self):
        if self.bar is not None:
            self.bar.close()


class _Metrics:
    """``metrics.csv`` (rank 0): rows up to the resumed step are kept, later ones dropped."""

    def __init__(self, path: Path, resume_step: int, enabled: bool):
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        rows = []
        if resume_step > 0 and path.is_file():
            with path.open() as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= resume_step]
        self.fh = path.open("w", newline="")
        self.writer = csv.DictWriter(self.fh, fieldnames=METRIC_COLUMNS)
        self.writer.writeheader()
        self.writer.writerows(rows)
        self.fh.flush()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(path.parent / "tensorboard"))
        except Exception:  # noqa: BLE001 - tensorboard is optional
            self.tb = None

    def add(self, row: dict) -> None:
        if not self.enabled:
            return
        self.writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in METRIC_COLUMNS})
        self.fh.flush()
        if self.tb is not None:
            for key in ("loss", "val_loss", "lr", "samples_per_s"):
                if row.get(key) is not None:
                    self.tb.add_scalar(key, row[key], row["step"])

    def close(self) -> None:
        if self.enabled:
            self.fh.close()
            if self.tb is not None:
                self.tb.close()


# ---------------------------------------------------------------------------- the loop
def _validation_loss(model, batch, dist: D.Dist, seq_chunk: int = 4) -> float:
    import torch

    x, y, w = batch
    mine = list(range(dist.rank, x.shape[0], dist.world))
    total = torch.zeros(2, dtype=torch.float64)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(mine), seq_chunk):
            idx = mine[start:start + seq_chunk]
            pred = model(x[idx].to(dist.device)).float().cpu()
            total[0] += float(masked_mse(pred, y[idx], w[idx])) * len(idx)
            total[1] += len(idx)
    model.train()
    total = D.all_sum(dist, total)
    return float(total[0] / total[1])


def _threads(settings: TrainSettings, dist: D.Dist) -> None:
    import torch

    if settings.threads:
        torch.set_num_threads(int(settings.threads))
    elif dist.world > 1 and dist.device.type == "cpu":
        local = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("SLURM_NTASKS_PER_NODE", dist.world)))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(local, 1)))


def train(data: StageData, settings: TrainSettings, out_dir: Path, dist: D.Dist | None = None, *, echo=print,
          source_id: str = "") -> dict:
    """Train (or resume training) on every rank; rank 0 writes checkpoints, metrics and ``model.pt``."""
    import torch
    from torch.utils.data import DataLoader, DistributedSampler, Subset

    dist = dist or D.init("single", settings.device)
    settings.check(dist.world)
    _threads(settings, dist)
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    if dist.is_main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    spec = settings.spec()
    patch = data.patch_size(settings.patch, spec.multiple)
    model = build_model(spec, seed=settings.seed).to(dist.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)

    step, best_val, bad, best_state, best_step = 0, math.inf, 0, None, None
    resumed_from = latest_checkpoint(ckpt_dir) if ckpt_dir.is_dir() else None
    if resumed_from is not None:
        state = load(resumed_from)
        if (learning_settings(state["settings"]) != learning_settings(settings.to_dict())
                or state.get("source_id", "") != source_id):
            raise RuntimeError(f"{resumed_from} was written with other settings or data; remove {ckpt_dir} to "
                               f"start again")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, best_val, bad = int(state["step"]), float(state["best_val"]), int(state["bad"])
        best_state, best_step = state.get("best_model"), state.get("best_step")
        if dist.is_main:
            echo(f"  resuming from {resumed_from.name} (step {step})")
            # best.pt may be newer than the checkpoint: put back the best as of the checkpoint
            if best_state is not None:
                save_atomic({"model": best_state, "step": state.get("best_step"), "val_loss": best_val},
                            out_dir / "best.pt")
            else:
                (out_dir / "best.pt").unlink(missing_ok=True)
    raw_model = model
    model, optimizer = D.wrap(dist, model, optimizer)

    global_batch, per_rank = settings.batch, settings.batch // dist.world
    dataset = HolePatches(data, settings.steps * global_batch, settings.seq_len, patch, settings.seed,
                          settings.max_holes)
    remaining = Subset(dataset, range(step * global_batch, len(dataset)))
    sampler = (DistributedSampler(remaining, num_replicas=dist.world, rank=dist.rank, shuffle=False, drop_last=True)
               if dist.world > 1 else None)
    loader = DataLoader(remaining, batch_size=per_rank, sampler=sampler, shuffle=False, drop_last=True,
                        num_workers=settings.num_workers)
    val_batch = validation_batch(data, validation_windows(data, settings.val_windows, settings.seq_len, patch,
                                                          settings.seed), settings.seq_len)
    metrics = _Metrics(out_dir / "metrics.csv", step, dist.is_main)
    progress = _Progress(settings.steps, step, settings.log_every_s, echo, dist.is_main)
    use_autocast = dist.device.type == "cuda"
    start_time = time.perf_counter()
    window_start, window_samples = start_time, 0
    val = None
    stopped_early = False
    model.train()
    try:
        for x, y, w in loader:
            step += 1
            lr = lr_at(settings, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y, w = x.to(dist.device), y.to(dist.device), w.to(dist.device)
            optimizer.zero_grad()
            if use_autocast:
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    pred = model(x)
            else:
                pred = model(x)
            loss = masked_mse(pred.float(), y, w)
            loss.backward()
            optimizer.step()
            loss_mean = float(D.all_sum(dist, loss.detach().double().cpu().reshape(1))[0]) / dist.world
            window_samples += global_batch
            now = time.perf_counter()
            sps = window_samples / max(now - window_start, 1e-9)
            val = None
            if step % settings.val_every == 0 or step == settings.steps:
                val = _validation_loss(raw_model, val_batch, dist)
                if val < best_val * (1.0 - MIN_IMPROVEMENT):
                    best_val, bad, best_step = val, 0, step
                    best_state = {k: v.detach().cpu().clone() for k, v in raw_model.state_dict().items()}
                    if dist.is_main:
                        save_atomic({"model": best_state, "step": step, "val_loss": val}, out_dir / "best.pt")
                else:
                    bad += 1
                stopped_early = bad >= settings.patience
            # the row goes out before the checkpoint: a kill between the two must not lose a step's row
            metrics.add({"step": step, "samples": step * global_batch, "loss": loss_mean, "val_loss": val, "lr": lr,
                         "samples_per_s": round(sps, 3), "seconds": round(now - start_time, 3)})
            if step % settings.checkpoint_every == 0 and dist.is_main:
                save_atomic({"model": raw_model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                             "best_val": best_val, "bad": bad, "best_model": best_state, "best_step": best_step,
                             "settings": settings.to_dict(), "source_id": source_id},
                            ckpt_dir / f"step_{step:06d}.pt")
                _prune(ckpt_dir)
            progress.update(step, loss_mean, val, sps, lr, force=val is not None and not sys.stdout.isatty())
            if now - window_start > 30:
                window_start, window_samples = now, 0
            if stopped_early:
                break
    finally:
        progress.close()
        metrics.close()
    elapsed = time.perf_counter() - start_time
    done = step >= settings.steps or stopped_early
    summary = {"steps": step, "stopped_early": stopped_early, "best_step": best_step,
               "best_val_loss": best_val if best_val < math.inf
               else None, "seconds": round(elapsed, 2), "world": dist.world, "backend": dist.backend,
               "resumed_from": None if resumed_from is None else resumed_from.name}
    if dist.is_main and done:
        weights = best_state if best_state is not None else raw_model.state_dict()
        save_atomic({"spec": spec.to_dict(), "norm": data.norm.to_dict(), "settings": settings.to_dict(),
                     "state_dict": weights, "summary": summary, "source_id": source_id,
                     "split": {"val_year": data.val_year, "scored_pixels": int(data.scored.sum())}},
                    out_dir / "model.pt")
    D.barrier(dist)
    return summary


def load_model(path: Path, device=None):
    """``(model, checkpoint dict)`` of a ``model.pt`` written by :func:`train` (eval mode)."""
    state = load(path)
    model = build_model(ModelSpec(**state["spec"]))
    model.load_state_dict(state["state_dict"])
    model.eval()
    if device is not None:
        model.to(device)
    return model, state
