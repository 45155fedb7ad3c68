"""Regions of small, often re-read arrays, decoded once per process (an LRU cache of whole Zarr chunks).

Stage 2 reads, for every analysis tile, a window of the six 0.1° meteorological baselines around it. A
Zarr chunk of the met grid covers 64 × 64 met cells (6.4° × 6.4°) and all days, so each window decodes
whole chunks — on the BTH grid six 60 MB chunks per tile, 11 GB decoded again and again for one stage
(issue 15) — while neighbouring tiles need the same chunks. :func:`read_region_cached` keeps decoded chunks
in this process (least recently used dropped past :data:`BUDGET_BYTES`); a chunk's entry is keyed by its
file's size and modification time, so a rewritten chunk is read afresh.
"""
from __future__ import annotations

import collections
import os
import threading
from pathlib import Path

import numpy as np

from ..errors import StoreError
from .chunk_file import store_array
from .cube import read_region

__all__ = ["read_region_cached", "remember_tile", "recall_tile", "clear", "BUDGET_BYTES"]

#: decoded chunks kept per process
BUDGET_BYTES = 512 << 20

_lock = threading.Lock()
_chunks: "collections.OrderedDict[tuple, np.ndarray]" = collections.OrderedDict()
_held = 0


def clear() -> None:
    """Forget every cached chunk."""
    global _held
    with _lock:
        _chunks.clear()
        _held = 0


def _key(array, store: Path, name: str, coords: tuple):
    """The cache key of a chunk: its file's size and modification time; None for a chunk never written."""
    key_path = Path(store) / name / array.metadata.chunk_key_encoding.encode_chunk_key(coords)
    try:
        st = os.stat(key_path)
    except OSError:  # never written (fill value) or another store layout: no caching
        return None
    return (str(store), name, coords, st.st_size, st.st_mtime_ns)


def _get(key):
    with _lock:
        hit = _chunks.get(key)
        if hit is not None:
            _chunks.move_to_end(key)
        return hit


def _put(key, block: np.ndarray) -> None:
    global _held
    if block.nbytes > BUDGET_BYTES:
        return
    with _lock:
        old = _chunks.pop(key, None)
        if old is not None:
            _held -= old.nbytes
        _chunks[key] = block
        _held += block.nbytes
        while _held > BUDGET_BYTES and _chunks:
            _, old = _chunks.popitem(last=False)
            _held -= old.nbytes


def _chunk(array, store: Path, name: str, coords: tuple) -> np.ndarray:
    key = _key(array, store, name, coords)
    hit = _get(key) if key is not None else None
    if hit is not None:
        return hit
    index = tuple(slice(c * n, min((c + 1) * n, size)) for c, n, size in zip(coords, array.chunks, array.shape))
    block = np.asarray(read_region(array, index, store=store, name=name, where=f"chunk {coords}"))
    if key is not None:
        _put(key, block)
    return block


def _tile_chunk(store: Path, name: str, tile):
    """The array and chunk coordinates of a tile that is exactly one chunk of ``name`` (else ``(array, None)``)."""
    array = store_array(store, name)
    if array is None:
        raise StoreError(f"{store}: no variable {name!r}")
    lead = tuple(array.shape[:-2])
    cr, cc = array.chunks[-2:]
    r0, c0 = tile.rows.start, tile.cols.start
    whole = (tuple(array.chunks[:-2]) == lead and r0 % cr == 0 and c0 % cc == 0
             and tile.rows.stop == min(r0 + cr, array.shape[-2]) and tile.cols.stop == min(c0 + cc, array.shape[-1]))
    return array, ((0,) * len(lead) + (r0 // cr, c0 // cc) if whole else None)


def remember_tile(store, name: str, tile, block: np.ndarray) -> None:
    """Keep ``block``, just written as ``tile`` of ``name`` (one whole chunk), for :func:`recall_tile` in this
    process: stage 2's pass C reads back the baseline its pass A wrote (issue 15). Keyed by the chunk file
    as it is now, so a chunk written again afterwards (by any process) is never served from here."""
    store = Path(store)
    array, coords = _tile_chunk(store, name, tile)
    key = _key(array, store, name, coords) if coords is not None else None
    if key is not None and tuple(block.shape) == tuple(array.shape[:-2]) + tuple(tile.shape):
        _put(key, block)


def recall_tile(store, name: str, tile) -> np.ndarray | None:
    """``tile`` of ``name`` if this process holds its current chunk (:func:`remember_tile`, or decoded by
    :func:`read_region_cached`), else ``None``; never reads the store (a miss leaves the cache as it was)."""
    store = Path(store)
    array, coords = _tile_chunk(store, name, tile)
    key = _key(array, store, name, coords) if coords is not None else None
    return _get(key) if key is not None else None


def read_region_cached(store, name: str, index: tuple) -> np.ndarray:
    """``zarr.open_group(store)[name][index]`` for slices with step 1, from decoded chunks kept in memory.

    Parameters
    ----------
    store : path-like
        A Zarr v3 store on the local file system.
    name : str
        Array in it.
    index : tuple of slice
        One slice per leading axis (missing trailing ones are whole).
    """
    store = Path(store)
    array = store_array(store, name)
    if array is None:
        raise StoreError(f"{store}: no variable {name!r} to read")
    index = tuple(index) + (slice(None),) * (array.ndim - len(index))
    bounds = [sl.indices(size)[:2] for sl, size in zip(index, array.shape)]
    out = np.empty(tuple(b - a for a, b in bounds), dtype=array.dtype)
    ranges = [range(a // n, (max(b, a + 1) - 1) // n + 1) if b > a else range(0) for (a, b), n in
              zip(bounds, array.chunks)]
    import itertools

    for coords in itertools.product(*ranges):
        block = _chunk(array, store, name, coords)
        src, dst = [], []
        for c, n, (a, b) in zip(coords, array.chunks, bounds):
            lo, hi = max(a, c * n), min(b, (c + 1) * n)
            src.append(slice(lo - c * n, hi - c * n))
            dst.append(slice(lo - a, hi - a))
        out[tuple(dst)] = block[tuple(src)]
    return out
