"""The ConvLSTM cell of seed 000 §2.3.4, eqs. 5–9 (DOI 10.3390/atmos15010131), with peepholes.

For input ``X_t`` and state ``(H_{t-1}, C_{t-1})``::

    i_t = σ(W_xi * X_t + W_hi * H_{t-1} + W_ci ∘ C_{t-1} + b_i)                 (5)
    f_t = σ(W_xf * X_t + W_hf * H_{t-1} + W_cf ∘ C_{t-1} + b_f)                 (6)
    C_t = f_t ∘ C_{t-1} + i_t ∘ tanh(W_xc * X_t + W_hc * H_{t-1} + b_c)        (7)
    o_t = σ(W_xo * X_t + W_ho * H_{t-1} + W_co ∘ C_t + b_o)                     (8)
    H_t = o_t ∘ tanh(C_t)                                                        (9)

``*`` is a 2-D convolution (``kernel × kernel``, same padding), ``∘`` the Hadamard product.
The four input convolutions ``W_x·`` are one ``Conv2d`` with ``4·hidden`` output channels (biases
``b_·`` included), the four state convolutions ``W_h·`` another one without bias; gate order in the
stacked channels is ``i, f, c, o``.

The peephole weights ``W_ci, W_cf, W_co`` are registered :class:`torch.nn.Parameter` of shape
``(hidden, 1, 1)``: one weight per channel, broadcast over the image. They are therefore in the
``state_dict``, receive gradients and are synchronised by DDP and Horovod like every other weight
(several public ConvLSTMs keep them as plain tensors, which no optimizer or all-reduce ever sees).
Per-channel rather than per-pixel (``hidden, H, W``, as in Shi et al. 2015) so that a model trained
on patches runs on tiles of any size.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["ConvLSTMCell", "ConvLSTM"]


class ConvLSTMCell(nn.Module):
    """One step of eqs. 5–9.

    Parameters
    ----------
    in_channels : int
        Channels of ``X_t``.
    hidden : int
        Channels of ``H_t`` and ``C_t``.
    kernel : int, default 3
        Edge of the square convolution kernels (odd).
    forget_bias : float, default 1.0
        Initial value of ``b_f`` (a forget gate open at start keeps the cell state early in training).
    """

    def __init__(self, in_channels: int, hidden: int, kernel: int = 3, forget_bias: float = 1.0):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"ConvLSTMCell: kernel must be odd, got {kernel}")
        if in_channels < 1 or hidden < 1:
            raise ValueError(f"ConvLSTMCell: in_channels and hidden must be >= 1, got {in_channels}, {hidden}")
        self.in_channels, self.hidden, self.kernel = int(in_channels), int(hidden), int(kernel)
        self.conv_x = nn.Conv2d(in_channels, 4 * hidden, kernel, padding=kernel // 2, bias=True)
        self.conv_h = nn.Conv2d(hidden, 4 * hidden, kernel, padding=kernel // 2, bias=False)
        self.w_ci = nn.Parameter(torch.zeros(hidden, 1, 1))
        self.w_cf = nn.Parameter(torch.zeros(hidden, 1, 1))
        self.w_co = nn.Parameter(torch.zeros(hidden, 1, 1))
        with torch.no_grad():
            self.conv_x.bias.zero_()
            self.conv_x.bias[hidden:2 * hidden].fill_(float(forget_bias))

    def init_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero ``(H_0, C_0)`` for a batch shaped like ``x`` ``(B, C, H, W)``."""
        b, _, h, w = x.shape
        zeros = x.new_zeros(b, self.hidden, h, w)
        return zeros, zeros.clone()

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """Advance one step; return ``(H_t, C_t)``."""
        h_prev, c_prev = self.init_state(x) if state is None else state
        gates = self.conv_x(x) + self.conv_h(h_prev)
        g_i, g_f, g_c, g_o = torch.split(gates, self.hidden, dim=1)
        i = torch.sigmoid(g_i + self.w_ci * c_prev)          # eq. 5
        f = torch.sigmoid(g_f + self.w_cf * c_prev)          # eq. 6
        c = f * c_prev + i * torch.tanh(g_c)                 # eq. 7
        o = torch.sigmoid(g_o + self.w_co * c)               # eq. 8
        h = o * torch.tanh(c)                                # eq. 9
        return h, c


class ConvLSTM(nn.Module):
    """A :class:`ConvLSTMCell` run over a sequence ``(B, T, C, H, W)``; returns every ``H_t``."""

    def __init__(self, in_channels: int, hidden: int, kernel: int = 3):
        super().__init__()
        self.cell = ConvLSTMCell(in_channels, hidden, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            raise ValueError(f"ConvLSTM expects (batch, time, channels, height, width), got shape {tuple(x.shape)}")
        state = None
        out = []
        for t in range(x.shape[1]):
            state = self.cell(x[:, t], state)
            out.append(state[0])
        return torch.stack(out, dim=1)
