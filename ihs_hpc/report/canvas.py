"""The canvas every report figure is drawn on: fixed sizes and resolution, labels and colour limits.

Every figure is drawn on a plain :class:`matplotlib.figure.Figure` (Agg canvas: no pyplot state, no
display needed), with a fixed size and resolution so its pixel size is known in advance
(:data:`SIZES` × :data:`DPI`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

DPI = 100
#: figure sizes in inches by kind; pixels = inches × DPI
SIZES = {"map": (8.0, 6.5), "series": (10.0, 5.0), "panels": (12.0, 9.0), "wide": (14.0, 5.0)}
UNITS = "µg m⁻³"
PM_LABEL = f"PM$_{{2.5}}$ ({UNITS})"


def pixel_size(kind: str) -> tuple[int, int]:
    """(height, width) in pixels of a figure of this kind."""
    w, h = SIZES[kind]
    return int(round(h * DPI)), int(round(w * DPI))


def new_figure(kind: str) -> Figure:
    """An empty figure of one of the :data:`SIZES` kinds (constrained layout)."""
    return Figure(figsize=SIZES[kind], dpi=DPI, layout="constrained")


def save_figure(fig: Figure, path) -> Path:
    """Write ``fig`` as PNG at :data:`DPI` (parent folders created); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def color_limits(values, lo=2, hi=98, symmetric=False):
    """Colour-scale limits: the ``lo``–``hi`` percentiles of the finite values (± the ``hi`` percentile of
    their magnitude when ``symmetric``)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (-1.0, 1.0) if symmetric else (0.0, 1.0)
    if symmetric:
        m = float(np.percentile(np.abs(v), hi)) or 1.0
        return -m, m
    a, b = (float(x) for x in np.percentile(v, [lo, hi]))
    return (a, b) if b > a else (a - 0.5, a + 0.5)
