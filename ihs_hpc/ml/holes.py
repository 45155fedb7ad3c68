"""Held-out holes in the background: shapes of real IHS areas, the validation split (numpy only).

Stage 3 fills IHS radiation areas from the background (seed 000 §2.3.4). Whatever fills them — the
U-ConvLSTM or kriging — can only be scored where the answer is known: on background pixels hidden
from it. This module cuts such holes with the shapes of the run's real IHS radiation areas and of their
connected clusters (overlapping areas make holes several areas wide), so the hole sizes and
outlines are those the method meets at inference, and defines the validation split
that both methods are scored on:

* a **held-out year**: no day of it is ever a training sample;
* **validation blocks**: square blocks of the grid (a seeded share of them) whose pixels are never a
  training target, in any year;
* **validation holes**: IHS-area and cluster shapes placed in the background of the validation blocks, kept the
  same on every day of the held-out year (real IHS areas are the same all year too, so a method can
  never see a hidden pixel on a neighbouring day); scored pixels are hole pixels inside the
  validation blocks and outside every IHS area.

Everything is a pure function of its inputs and a seed.
"""
from __future__ import annotations

import numpy as np

__all__ = ["hole_shapes", "cluster_shapes", "place_shape", "cut_holes", "validation_blocks", "validation_holes"]


def hole_shapes(member_offset, member_pixel, nx: int, *, min_pixels: int = 4) -> list[np.ndarray]:
    """The shapes of the IHS radiation areas, each as ``(n, 2)`` (row, col) offsets from its bounding box.

    Parameters
    ----------
    member_offset, member_pixel : array_like of int
        CSR membership of stage 1 (``stage1.zarr``): the members of area ``i`` are the flat indices
        ``row * nx + col`` in ``member_pixel[member_offset[i]:member_offset[i + 1]]``.
    nx : int
        Columns of the grid.
    min_pixels : int
        Areas with fewer pixels are left out (a hole of one or two pixels teaches nothing).
    """
    offsets = np.asarray(member_offset, dtype=np.int64)
    pixels = np.asarray(member_pixel, dtype=np.int64)
    shapes = []
    for start, stop in zip(offsets[:-1], offsets[1:]):
        if stop - start < min_pixels:
            continue
        rows, cols = np.divmod(pixels[start:stop], int(nx))
        shapes.append(np.column_stack([rows - rows.min(), cols - cols.min()]).astype(np.int32))
    return shapes


def place_shape(mask: np.ndarray, shape: np.ndarray, top: int, left: int) -> None:
    """Set ``mask`` True on ``shape`` placed with its bounding box at ``(top, left)`` (clipped to the mask)."""
    rows, cols = shape[:, 0] + top, shape[:, 1] + left
    keep = (rows >= 0) & (rows < mask.shape[0]) & (cols >= 0) & (cols < mask.shape[1])
    mask[rows[keep], cols[keep]] = True


def cut_holes(rng: np.random.Generator, shapes: list[np.ndarray], size: tuple[int, int], n_holes: int) -> np.ndarray:
    """``n_holes`` shapes drawn from ``shapes``, each placed uniformly so its box overlaps a ``size`` window."""
    mask = np.zeros(size, dtype=bool)
    if not shapes:
        raise ValueError("cut_holes: no IHS-area shapes to cut holes with (stage 1 found no area of >= 4 pixels)")
    for _ in range(int(n_holes)):
        shape = shapes[int(rng.integers(len(shapes)))]
        h, w = shape[:, 0].max() + 1, shape[:, 1].max() + 1
        top = int(rng.integers(-(h // 2), max(size[0] - h // 2, 1 - h // 2)))
        left = int(rng.integers(-(w // 2), max(size[1] - w // 2, 1 - w // 2)))
        place_shape(mask, shape, top, left)
    return mask


def validation_blocks(shape: tuple[int, int], block: int, fraction: float, seed: int) -> np.ndarray:
    """Boolean ``(ny, nx)`` map of the validation blocks: a seeded ``fraction`` of ``block × block`` squares.

    At least one block is chosen and at least one is left for training.
    """
    if block < 1:
        raise ValueError(f"validation block edge must be >= 1, got {block}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    ny, nx = shape
    by, bx = -(-ny // block), -(-nx // block)
    n_blocks = by * bx
    if n_blocks < 2:
        raise ValueError(f"a {ny} x {nx} grid has a single {block}-pixel block; choose a smaller validation block")
    n_val = min(max(1, int(round(fraction * n_blocks))), n_blocks - 1)
    rng = np.random.default_rng([int(seed), 0x5A11D])
    chosen = rng.choice(n_blocks, size=n_val, replace=False)
    grid = np.zeros(n_blocks, dtype=bool)
    grid[chosen] = True
    return np.kron(grid.reshape(by, bx), np.ones((block, block), dtype=bool))[:ny, :nx]


def validation_holes(shapes: list[np.ndarray], blocks: np.ndarray, background: np.ndarray, seed: int, block: int,
                     holes_per_block: int = 2, tries_per_shape: int = 8,
                     min_background: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """The held-out holes of the validation split: ``(hidden, scored)`` boolean ``(ny, nx)`` maps.

    In every validation block (``block × block`` squares, as :func:`validation_blocks` made them), up
    to ``holes_per_block`` shapes are placed with their box centre at a seeded random pixel of the
    block, with at least ``min_background`` of their pixels outside every IHS area and not touching
    another hole. Block ``j`` tries the shapes in the order ``shapes[j], shapes[j+1], …`` (cyclic),
    each at ``tries_per_shape`` positions, so with the largest shapes first (the clusters of
    :func:`cluster_shapes`) the blocks get holes of every size the method meets. ``hidden`` is
    every pixel of the holes (what a method must not see); ``scored`` is
    ``hidden & blocks & background`` (where it is scored).
    """
    blocks = np.asarray(blocks, dtype=bool)
    background = np.asarray(background, dtype=bool)
    if not shapes:
        raise ValueError("validation_holes: no IHS-area shapes to place")
    rng = np.random.default_rng([int(seed), 0xB10C])
    ny, nx = blocks.shape
    hidden = np.zeros((ny, nx), dtype=bool)
    rr, cc = np.nonzero(blocks)
    block_id = (rr // block) * (-(-nx // block)) + cc // block
    for j, b in enumerate(np.unique(block_id)):
        rows, cols = rr[block_id == b], cc[block_id == b]
        placed = 0
        for i in range(len(shapes)):
            if placed >= holes_per_block:
                break
            shape = shapes[(j + i) % len(shapes)]
            h, w = shape[:, 0].max() + 1, shape[:, 1].max() + 1
            for _ in range(tries_per_shape):
                k = int(rng.integers(rows.size))
                trial = np.zeros_like(hidden)
                place_shape(trial, shape, rows[k] - h // 2, cols[k] - w // 2)
                if (trial & background).sum() < min_background * shape.shape[0] or (_dilate(trial) & hidden).any():
                    continue
                hidden |= trial
                placed += 1
                break
    return hidden, hidden & blocks & background


def cluster_shapes(mask: np.ndarray, *, min_pixels: int = 4) -> list[np.ndarray]:
    """Shapes of the connected (8-neighbour) clusters of an IHS mask, largest first.

    Radiation areas overlap, so the holes stage 3 really fills are these clusters, often several
    areas wide; held-out holes in their shapes test a method on the hole sizes it meets.
    """
    from scipy import ndimage

    labels, n = ndimage.label(np.asarray(mask, dtype=bool), structure=np.ones((3, 3), dtype=bool))
    shapes = []
    for i in range(1, n + 1):
        rows, cols = np.nonzero(labels == i)
        if rows.size >= min_pixels:
            shapes.append(np.column_stack([rows - rows.min(), cols - cols.min()]).astype(np.int32))
    return sorted(shapes, key=lambda s: -s.shape[0])


def _dilate(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, structure=np.ones((3, 3), dtype=bool))
