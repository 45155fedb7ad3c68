"""Data-parallel backends of the U-ConvLSTM training: one process, torch DDP, or Horovod.

* ``single`` — one process, no communication.
* ``ddp`` — :mod:`torch.distributed` with gloo on CPU and NCCL on GPU. Ranks come from ``torchrun``
  (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) or, under ``srun``, from
  Slurm (``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``; the master is the first host of
  ``SLURM_JOB_NODELIST`` unless ``MASTER_ADDR`` is set, the port ``MASTER_PORT`` or 29500 + the job
  id modulo 1000).
* ``horovod`` — ``horovod.torch`` (``horovodrun -np N [--gloo]`` or ``srun`` with MPI);
  :class:`horovod.torch.DistributedOptimizer` averages gradients, parameters and optimizer state are
  broadcast from rank 0.

Every backend averages gradients over ranks, so ``N`` ranks with ``b`` samples each take the same
steps as one rank with ``N·b`` samples (see :func:`ihs_hpc.ml.data.masked_mse`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

BACKENDS = ("single", "ddp", "horovod")


@dataclass
class Dist:
    """Where this process stands: backend, rank, world size, local rank, torch device."""

    backend: str
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: object = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list (``"gpu[03-05,09],cpu1"`` → ``"gpu03"``)."""
    nodelist = nodelist.strip()
    if not nodelist:
        raise ValueError("empty Slurm node list")
    m = re.match(r"^([^\[,]+)(?:\[([^\]]+)\])?", nodelist)
    if m is None:  # pragma: no cover - the regex matches any non-empty string not starting with '[' or ','
        raise ValueError(f"cannot read the Slurm node list {nodelist!r}")
    prefix, ranges = m.group(1), m.group(2)
    if ranges is None:
        return prefix
    first = ranges.split(",")[0].split("-")[0]
    return prefix + first


def rendezvous_from_env(env=None) -> tuple[int, int, int, dict]:
    """``(rank, world, local_rank, extra env)`` from torchrun's or Slurm's variables."""
    env = os.environ if env is None else env
    if "RANK" in env and "WORLD_SIZE" in env:
        return int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)), {}
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
        extra = {}
        if "MASTER_ADDR" not in env:
            nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
            if not nodelist:
                raise RuntimeError("ddp under Slurm: SLURM_JOB_NODELIST is not set; set MASTER_ADDR")
            extra["MASTER_ADDR"] = first_host(nodelist)
        if "MASTER_PORT" not in env:
            extra["MASTER_PORT"] = str(29500 + int(env.get("SLURM_JOB_ID", "0")) % 1000)
        return int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0)), extra
    raise RuntimeError("backend 'ddp' needs torchrun (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) or srun "
                       "(SLURM_PROCID, SLURM_NTASKS); for one process use backend 'single'")


def _device(local_rank: int, device: str | None):
    import torch

    if device in (None, "auto"):
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device(f"cuda:{local_rank}")
    return dev


def init(backend: str = "single", device: str | None = None) -> Dist:
    """Start the backend; return this process's :class:`Dist`."""
    if backend not in BACKENDS:
        raise ValueError(f"training backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "single":
        return Dist("single", device=_device(0, device))
    if backend == "ddp":
        import torch
        import torch.distributed as tdist

        rank, world, local, extra = rendezvous_from_env()
        os.environ.update(extra)
        dev = _device(local, device)
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        if not tdist.is_initialized():
            tdist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world,
                                     init_method="env://")
        return Dist("ddp", rank, world, local, dev)
    try:
        import horovod.torch as hvd
    except ImportError as err:
        raise RuntimeError("backend 'horovod' needs horovod built against this torch: run "
                           "scripts/build-horovod.sh (see DEVELOPERS.md)") from err
    hvd.init()
    dev = _device(hvd.local_rank(), device)
    if dev.type == "cuda":
        import torch

        torch.cuda.set_device(dev)
    return Dist("horovod", hvd.rank(), hvd.size(), hvd.local_rank(), dev)


def wrap(dist: Dist, model, optimizer):
    """The model and optimizer this backend trains with (DDP module; Horovod optimizer, broadcast)."""
    if dist.backend == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [dist.device.index] if dist.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids), optimizer
    if dist.backend == "horovod":
        import horovod.torch as hvd

        hvd.broadcast_parameters(model.state_dict(), root_rank=0)
        hvd.broadcast_optimizer_state(optimizer, root_rank=0)
        optimizer = hvd.DistributedOptimizer(optimizer, named_parameters=model.named_parameters(),
                                             op=hvd.Average)
        return model, optimizer
    return model, optimizer


def all_sum(dist: Dist, values):
    """Sum a float tensor over ranks (returns a new tensor; unchanged in one process)."""
    if dist.world == 1:
        return values
    if dist.backend == "ddp":
        import torch.distributed as tdist

        out = values.clone()
        tdist.all_reduce(out, op=tdist.ReduceOp.SUM)
        return out
    import horovod.torch as hvd

    return hvd.allreduce(values, op=hvd.Sum, name="ihs_all_sum")




def barrier(dist: Dist) -> None:
    """Wait until every rank of ``dist`` reaches this point (no-op on one rank)."""
    if dist.world == 1:
        return
    if dist.backend == "ddp":
        import torch.distributed as tdist

        tdist.barrier()
    else:
        import horovod.torch as hvd

        hvd.join()


def shutdown(dist: Dist) -> None:
    """Tear down the process group of ``dist`` (DDP) or Horovod, if one was started."""
    if dist.backend == "ddp":
        import torch.distributed as tdist

        if tdist.is_initialized():
            tdist.destroy_process_group()
    elif dist.backend == "horovod":
        import horovod.torch as hvd

        hvd.shutdown()
