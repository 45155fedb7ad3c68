"""Inference of the stage-3 U-ConvLSTM over a whole region: overlapping windows, blended.

The region is covered by a lattice of ``window × window`` windows overlapping by at least
``overlap`` pixels (:func:`window_starts`). Each window's prediction is weighted by a linear taper
over the overlap on the sides it shares with another window (:func:`taper`) — never on the region's
own border — and the weighted predictions are summed and divided by the summed weights, so seams
fade over ``overlap`` pixels and a pixel covered by a single window gets exactly that window's value.
Days are processed in runs of ``seq_len`` (the ConvLSTM state starts from zero in each run, as in
training). A region smaller than the window is padded to a multiple of ``2**depth`` with hidden
pixels (hole mask 1, value 0).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

__all__ = ["window_starts", "taper", "predict_region", "torch_predictor"]


def window_starts(length: int, window: int, overlap: int) -> list[int]:
    """First pixels of windows of ``window`` covering ``0 .. length-1``, overlapping by >= ``overlap``."""
    if window < 1 or overlap < 0 or overlap >= window:
        raise ValueError(f"need window >= 1 and 0 <= overlap < window, got window={window}, overlap={overlap}")
    if length <= window:
        return [0]
    n = math.ceil((length - overlap) / (window - overlap))
    return [int(round(s)) for s in np.linspace(0, length - window, n)]


def taper(start: int, size: int, length: int, overlap: int) -> np.ndarray:
    """1-D blending weight of a window ``[start, start+size)`` of a region of ``length``.

    Linear ramp ``(k + 0.5) / overlap`` over the first/last ``overlap`` pixels on a side shared with
    another window (start > 0 / end < length); 1 elsewhere and on the region's border.
    """
    w = np.ones(size, dtype=np.float64)
    if overlap > 0:
        ramp = (np.arange(overlap) + 0.5) / overlap
        k = min(overlap, size)
        if start > 0:
            w[:k] = np.minimum(w[:k], ramp[:k])
        if start + size < length:
            w[size - k:] = np.minimum(w[size - k:], ramp[:k][::-1])
    return w


def predict_region(predict: Callable[[np.ndarray], np.ndarray], make_inputs: Callable, shape: tuple[int, int],
                   t0: int, n_days: int, *, window: int, overlap: int, multiple: int) -> np.ndarray:
    """Blend the predictions of overlapping windows over a region for days ``t0 .. t0+n_days-1``.

    Parameters
    ----------
    predict : callable
        ``(B, T, C, h, w) float32 -> (B, T, h, w)`` (the model, normalised units).
    make_inputs : callable
        ``(t0, n_days, rows, cols) -> (T, C, h, w)`` inputs of a window inside the region.
    shape : (ny, nx)
        Region size.
    window, overlap : int
        Window edge and minimum overlap (pixels); the window is capped at the region rounded up to
        ``multiple``.
    multiple : int
        Windows are padded to a multiple of this (``2**depth`` of the model) with hidden pixels.

    Returns
    -------
    ndarray (n_days, ny, nx) float32 — blended predictions.
    """
    ny, nx = shape
    acc = np.zeros((n_days, ny, nx), dtype=np.float64)
    wsum = np.zeros((ny, nx), dtype=np.float64)
    wy, wx = min(window, ny), min(window, nx)
    for r0 in window_starts(ny, wy, min(overlap, wy - 1)):
        for c0 in window_starts(nx, wx, min(overlap, wx - 1)):
            rows, cols = slice(r0, r0 + wy), slice(c0, c0 + wx)
            x = make_inputs(t0, n_days, rows, cols)
            ph, pw = (-wy) % multiple, (-wx) % multiple
            if ph or pw:
                pad = np.zeros(x.shape[:2] + (wy + ph, wx + pw), dtype=x.dtype)
                pad[:, 1] = 1.0  # padding is hidden
                pad[..., :wy, :wx] = x
                x = pad
            pred = np.asarray(predict(x[None]))[0, :, :wy, :wx]
            weight = np.outer(taper(r0, wy, ny, overlap), taper(c0, wx, nx, overlap))
            acc[:, rows, cols] += pred * weight
            wsum[rows, cols] += weight
    return (acc / wsum).astype(np.float32)


def torch_predictor(model, device=None, autocast: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """A numpy-in, numpy-out predictor of a torch model (no grad; bf16 autocast on GPU if asked)."""
    import torch

    device = device or next(model.parameters()).device

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            xt = torch.from_numpy(np.ascontiguousarray(x)).to(device)
            if autocast and device.type == "cuda":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    out = model(xt)
            else:
                out = model(xt)
            return out.float().cpu().numpy()

    return predict


