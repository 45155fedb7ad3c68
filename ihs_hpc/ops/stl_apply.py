"""Applying a non-robust STL operator (:mod:`ihs_hpc.ops.stl_operator`) to a batch of series (seed 000, eq. 2).

Products: numpy (BLAS) by default; torch when requested or when it is importable and a CUDA device is
present (``backend="auto"``), on ``device`` (default CUDA if available); float64, or float32 on request
(``precision``; its error against float64 is measured by ``benchmarks/bench_stl.py``).
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np

from ihs_hpc.ops.stl_core import as_series_batch
from ihs_hpc.ops.stl_operator import OUTPUTS, STLOperator, linear_settings, operator_for

__all__ = ["apply_stl_operator", "apply_operator_batch", "BACKENDS", "PRECISIONS", "GPU_DEVICE_FILES"]

BACKENDS = ("auto", "numpy", "torch")
#: arithmetic of the operator products: float64 (the pipeline's), or float32 (about twice the speed on a
#: CPU, far more on most GPUs; error against float64 measured by benchmarks/bench_stl.py)
PRECISIONS = ("float64", "float32")


def _torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def _resolve_backend(backend: str, device) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got backend={backend!r}")
    if backend == "numpy":
        if device is not None:
            raise ValueError(f"device={device!r} needs backend='torch' (or 'auto' with torch installed)")
        return "numpy"
    if backend == "torch":
        if not _torch_available():
            raise ImportError("backend='torch' needs PyTorch, which is not installed")
        return "torch"
    if not _torch_available():
        if device is not None:
            raise ImportError(f"device={device!r} needs PyTorch, which is not installed")
        return "numpy"
    if device is not None:
        return "torch"
    if not _gpu_possible():
        return "numpy"
    import torch

    return "torch" if torch.cuda.is_available() else "numpy"


#: device files present on a machine with an NVIDIA (CUDA) or AMD (ROCm) GPU driver loaded
GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version", "/dev/kfd")


def _gpu_possible() -> bool:
    """Whether ``backend="auto"`` needs to ask torch for a GPU: torch already imported, or a GPU driver's
    device file exists. Without either, importing torch only to learn there is no GPU costs each worker
    process seconds and hundreds of MB (measured: 4 s of a demo stage 2)."""
    import sys

    return "torch" in sys.modules or any(os.path.exists(p) for p in GPU_DEVICE_FILES)


def _apply_numpy(op: STLOperator, batch: np.ndarray, output: str, precision: str = "float64") -> np.ndarray:
    factors = op.factors(output, precision)
    batch = batch.astype(precision, copy=False)
    if not op.symmetric:
        return batch @ factors[0]
    even, odd = factors
    n, m = op.n, op.n // 2  # n >= 4, so m >= 2
    h = even.shape[0]
    width = 2 if output == "trend_seasonal" else 1
    head = batch[:, :m]
    tail = batch[:, n - 1:n - 1 - m:-1]
    ev = np.empty((batch.shape[0], h), dtype=batch.dtype)
    np.add(head, tail, out=ev[:, :m])
    if h > m:
        ev[:, m] = batch[:, m]
    g = ev @ even
    v = (head - tail) @ odd
    out = np.empty((batch.shape[0], width * n), dtype=batch.dtype)
    for c in range(width):
        dst = out[:, c * n:(c + 1) * n]
        gc = g[:, c * h:(c + 1) * h]
        vc = v[:, c * m:(c + 1) * m]
        np.add(gc[:, :m], vc, out=dst[:, :m])
        np.subtract(gc[:, :m], vc, out=dst[:, n - 1:n - 1 - m:-1])
        if h > m:
            dst[:, m] = gc[:, m]
    return out


def _apply_torch(op: STLOperator, batch: np.ndarray, output: str, device, precision: str = "float64") -> np.ndarray:
    import torch

    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = getattr(torch, precision)
    mats = op.torch_factors(output, dev, precision)
    x = torch.from_numpy(batch).to(dev, dtype)
    if not op.symmetric:
        return (x @ mats[0]).cpu().numpy()
    even, odd = mats
    n, m = op.n, op.n // 2
    h = even.shape[0]
    width = 2 if output == "trend_seasonal" else 1
    head = x[:, :m]
    tail = torch.flip(x[:, n - m:], dims=(1,))
    ev = head + tail
    if h > m:
        ev = torch.cat([ev, x[:, m:m + 1]], dim=1)
    g = ev @ even
    v = (head - tail) @ odd
    pieces = []
    for c in range(width):
        gc = g[:, c * h:(c + 1) * h]
        vc = v[:, c * m:(c + 1) * m]
        mid = [gc[:, m:m + 1]] if h > m else []
        pieces.append(torch.cat([gc[:, :m] + vc] + mid + [torch.flip(gc[:, :m] - vc, dims=(1,))], dim=1))
    return torch.cat(pieces, dim=1).cpu().numpy()


def apply_operator_batch(op: STLOperator, batch: np.ndarray, output: str = "baseline", backend: str = "auto",
                         device=None, precision: str = "float64"):
    """Apply ``op`` to a validated float64 (n_series, n) batch (internal fast path of :func:`apply_stl_operator`).

    ``precision="float32"`` runs the products in single precision (operator and data rounded to float32);
    the result comes back as float64 either way.
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}; got output={output!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got precision={precision!r}")
    if batch.shape[1] != op.n:
        raise ValueError(f"series length {batch.shape[1]} does not match the operator's n={op.n}")
    chosen = _resolve_backend(backend, device)
    if batch.shape[0] == 0:
        res = np.empty((0, op.n * (2 if output == "trend_seasonal" else 1)))
    elif chosen == "torch":
        res = _apply_torch(op, batch, output, device, precision)
    else:
        res = _apply_numpy(op, batch, output, precision)
    res = res.astype(np.float64, copy=False)
    if output == "trend_seasonal":
        return res[:, :op.n], res[:, op.n:]
    return res


def apply_stl_operator(x, period, *, output="baseline", backend="auto", device=None, precision="float64", **settings):
    """Non-robust STL components of every series on the last axis of ``x`` by matrix products.

    Parameters
    ----------
    x : array_like, shape (..., N)
        Series (float32 / float64 / integers; computed in float64). No NaN.
    period : int
        Period of the seasonal component.
    output : {"baseline", "trend", "seasonal", "trend_seasonal"}
        What to return: ``T + S`` (eq. 2 of seed 000), one component, or both.
    backend : {"auto", "numpy", "torch"}
        ``"numpy"``: BLAS. ``"torch"``: torch on ``device``. ``"auto"``: torch when it is
        importable and ``device`` is given or CUDA is available, else numpy.
    device : str, optional
        Torch device (default ``"cuda"`` when available, else ``"cpu"``).
    precision : {"float64", "float32"}
        Arithmetic of the products (:data:`PRECISIONS`); the result is float64 either way.
    **settings
        :func:`ihs_hpc.ops.stl_core.stl_settings` keywords; must give ``outer_iter == 0``.

    Returns
    -------
    ndarray or tuple of ndarray
        Shaped like ``x``, float64 (``(trend, seasonal)`` for ``"trend_seasonal"``).
    """
    resolved = linear_settings(period, settings)
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    batch, lead, _ = as_series_batch(arr, resolved.period)
    op = operator_for(batch.shape[1], resolved)
    res = apply_operator_batch(op, batch, output, backend, device, precision)
    shape = lead + (batch.shape[1],)
    if isinstance(res, tuple):
        return tuple(r.reshape(shape) for r in res)
    return res.reshape(shape)
