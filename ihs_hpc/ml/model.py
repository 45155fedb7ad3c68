"""The U-ConvLSTM of seed 000 §2.3.4 (Fig. 5): a U-Net whose bottleneck is a ConvLSTM (eqs. 5–9).

Each frame of a sequence ``(B, T, C, H, W)`` goes through the encoder — ``depth`` levels, each a
3 × 3 convolution, a ReLU and a 2 × 2 max-pool (the paper's four levels: ``depth = 4``) — the
ConvLSTM carries the coarsest features through time, and the decoder upsamples (×2, bilinear),
concatenates the skip connection of the same level, applies a 3 × 3 convolution and a ReLU, and a
1 × 1 convolution head gives one value per pixel and day. Optionally the ``lstm_skips`` deepest skip
connections get a ConvLSTM of their own, so fine-scale features carry time too.

Frames whose height or width is not a multiple of ``2**depth`` are zero-padded at the bottom/right
and the output is cropped back, so any tile size works.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .convlstm import ConvLSTM

__all__ = ["ModelSpec", "UConvLSTM", "build_model"]


@dataclass(frozen=True)
class ModelSpec:
    """Architecture of a :class:`UConvLSTM` (saved with every checkpoint).

    Parameters
    ----------
    in_channels : int
        Input channels per frame (see :mod:`ihs_hpc.ml.data`: value, hole mask, DEM, context mean).
    widths : tuple of int
        Channels of the encoder levels, finest first; ``len(widths)`` is the depth (4 in the paper).
    hidden : int or None
        Channels of the bottleneck ConvLSTM; default ``widths[-1]``.
    kernel : int
        Kernel edge of the encoder/decoder convolutions and of the ConvLSTM.
    lstm_skips : int
        How many of the deepest skip connections also run through a ConvLSTM (0: bottleneck only).
    base_fill : bool
        Give the network a push-pull interpolation of the visible values (:func:`push_pull_fill`) as
        an extra input channel and predict the correction to it (``output = base + head``), so that
        an untrained network already fills holes smoothly and training learns what interpolation
        misses; False: the network predicts the values directly.
    """

    in_channels: int = 4
    widths: tuple = (16, 32, 32, 64)
    hidden: int | None = None
    kernel: int = 3
    lstm_skips: int = 0
    base_fill: bool = True

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if len(self.widths) < 1 or min(self.widths) < 1:
            raise ValueError(f"ModelSpec.widths must be positive channel counts, got {self.widths}")
        if not 0 <= self.lstm_skips <= len(self.widths):
            raise ValueError(f"ModelSpec.lstm_skips must be in [0, {len(self.widths)}], got {self.lstm_skips}")

    @property
    def depth(self) -> int:
        return len(self.widths)

    @property
    def multiple(self) -> int:
        """Frame edges are padded to a multiple of this."""
        return 2 ** self.depth

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d


def push_pull_fill(value: torch.Tensor, visible: torch.Tensor, levels: int) -> torch.Tensor:
    """Fill the hidden pixels of ``value`` ``(N, 1, H, W)`` by a push-pull pyramid of visible means.

    Push: ``levels`` times 2 × 2 averages of ``value · visible`` and of ``visible``. Pull: from the
    coarsest level up, each level's visible mean ``a / w`` is blended with the upsampled coarser fill
    by the confidence ``min(1, 4 w)``. Visible pixels keep their value; hidden ones get a smooth mean
    of the visible ones around them at the scale the hole needs. ``H`` and ``W`` must be multiples
    of ``2**levels``.
    """
    a, w = value * visible, visible
    pyramid = [(a, w)]
    for _ in range(levels):
        a, w = F.avg_pool2d(a, 2), F.avg_pool2d(w, 2)
        pyramid.append((a, w))
    a, w = pyramid[-1]
    fill = a / w.clamp_min(1e-6)
    for a, w in reversed(pyramid[:-1]):
        up = F.interpolate(fill, size=a.shape[-2:], mode="bilinear", align_corners=False)
        conf = (4.0 * w).clamp(max=1.0)
        fill = conf * (a / w.clamp_min(1e-6)) + (1.0 - conf) * up
    return fill


def _conv_relu(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2), nn.ReLU(inplace=True))


class UConvLSTM(nn.Module):
    """U-ConvLSTM: ``forward(x)`` maps ``(B, T, C, H, W)`` to ``(B, T, H, W)``."""

    def __init__(self, spec: ModelSpec | None = None, **kwargs):
        super().__init__()
        spec = spec or ModelSpec(**kwargs)
        self.spec = spec
        w, k = spec.widths, spec.kernel
        hidden = spec.hidden or w[-1]
        self.encoder = nn.ModuleList()
        c_prev = spec.in_channels + (1 if spec.base_fill else 0)
        for width in w:
            self.encoder.append(_conv_relu(c_prev, width, k))
            c_prev = width
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = ConvLSTM(w[-1], hidden, k)
        # ConvLSTMs on the deepest `lstm_skips` skip connections (level index -> module)
        self.skip_lstm = nn.ModuleDict({str(level): ConvLSTM(w[level], w[level], k)
                                        for level in range(spec.depth - spec.lstm_skips, spec.depth)})
        self.decoder = nn.ModuleList()
        c_prev = hidden
        for level in reversed(range(spec.depth)):
            self.decoder.append(_conv_relu(c_prev + w[level], w[level], k))
            c_prev = w[level]
        self.head = nn.Conv2d(w[0], 1, 1)
        if spec.base_fill:  # start from the push-pull fill exactly; training learns the correction
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[2] != self.spec.in_channels:
            raise ValueError(f"UConvLSTM expects (batch, time, {self.spec.in_channels}, height, width), "
                             f"got shape {tuple(x.shape)}")
        b, t, c, h, w = x.shape
        m = self.spec.multiple
        ph, pw = (-h) % m, (-w) % m
        frames = x.reshape(b * t, c, h, w)
        if ph or pw:
            frames = F.pad(frames, (0, pw, 0, ph))
        base = None
        if self.spec.base_fill:  # channel 0: value (0 where hidden); channel 1: hole mask
            base = push_pull_fill(frames[:, 0:1], 1.0 - frames[:, 1:2], self.spec.depth)
            frames = torch.cat([frames, base], dim=1)
        skips = []
        for level, block in enumerate(self.encoder):
            frames = block(frames)
            skip = frames
            if str(level) in self.skip_lstm:
                seq = skip.reshape(b, t, *skip.shape[1:])
                skip = self.skip_lstm[str(level)](seq).reshape(b * t, *skip.shape[1:])
            skips.append(skip)
            frames = self.pool(frames)
        seq = frames.reshape(b, t, *frames.shape[1:])
        frames = self.bottleneck(seq).reshape(b * t, -1, *frames.shape[2:])
        for block, skip in zip(self.decoder, reversed(skips)):
            frames = F.interpolate(frames, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            frames = block(torch.cat([frames, skip], dim=1))
        out = self.head(frames)
        if base is not None:
            out = out + base
        out = out[:, 0, :h, :w]
        return out.reshape(b, t, h, w)


def build_model(spec: ModelSpec | dict, seed: int | None = None) -> UConvLSTM:
    """A fresh :class:`UConvLSTM`; with ``seed``, its initial weights depend only on the seed."""
    if isinstance(spec, dict):
        spec = ModelSpec(**spec)
    if seed is None:
        return UConvLSTM(spec)
    state = torch.random.get_rng_state()
    torch.manual_seed(int(seed))
    try:
        return UConvLSTM(spec)
    finally:
        torch.random.set_rng_state(state)


