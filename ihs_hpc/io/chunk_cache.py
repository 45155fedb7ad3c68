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
from .cube import read_region, store_array

__all__ = ["read_region_cached", "clear", "BUDGET_BYTES"]

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


def _chunk(array, store: Path, name: str, coords: tuple) -> np.ndarray:
    global _held
    key_path = Path(store) / name / array.metadata.chunk_key_encoding.encode_chunk_key(coords)
    try:
        st = os.stat(key_path)
        key = (str(store), name, coords, st.st_size, st.st_mtime_ns)
    except OSError:  # never written (fill value) or another store layout: no caching
        key = None
    if key is not None:
        with _lock:
            hit = _chunks.get(key)
            if hit is not None:
                _chunks.move_to_end(key)
                return hit
    index = tuple(slice(c * n, min((c + 1) * n, size)) for c, n, size in zip(coords, array.chunks, array.shape))
    block = np.asarray(read_region(array, index, store=store, name=name, where=f"chunk {coords}"))
    if key is not None and block.nbytes <= BUDGET_BYTES:
        with _lock:
            _chunks[key] = block
            _held += block.nbytes
            while _held > BUDGET_BYTES and _chunks:
                _, old = _chunks.popitem(last=False)
                _held -= old.nbytes
    return block


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
