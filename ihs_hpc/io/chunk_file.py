"""Whole chunks of the stores' tiled variables, read and written as files with the array's own Blosc codec.

Why: a tile is exactly one chunk file per variable (:mod:`ihs_hpc.io.cube`), and Zarr 3 moves a chunk
through its asynchronous codec pipeline: the file read into one buffer, decoded in a thread into another,
then copied into the array it returns (writes likewise). On a ten-year 64 × 64 float32 tile (60 MB, 47 MB
encoded) on the 2-core machine of issue 15 (three rounds of four tiles), Zarr read a tile in 0.10-0.23 s
where reading the file and decoding it straight into the output took 0.05-0.08 s, and wrote one in
0.11-0.15 s where encoding and writing the file took 0.06-0.09 s. Stage 2 reads or writes about twenty
such tiles on the demo; with this path (and :func:`ihs_hpc.io.cube.store_array`) it went from 10.1-10.2 s
to 9.4-9.6 s with one worker and from 5.7-6.4 s to 5.5 s with two.

This path is taken only for the layout this package writes, and Zarr does everything else:

* Zarr v3 with a regular chunk grid, codecs exactly ``bytes`` (little endian) then ``blosc``, and a
  native little-endian dtype;
* the selection lies in one chunk (reads: anywhere inside it; writes: all of the chunk's cells inside
  the array, the rest of an edge chunk being the fill value, as Zarr stores it);
* reads: the chunk file exists and decodes (a missing chunk is the fill value and a damaged one an error
  that names it: both are Zarr's, through :func:`ihs_hpc.io.cube.read_region`);
* writes: the chunk is not all fill value (Zarr then deletes the file instead of writing it).

The bytes on disk are the ones Zarr writes (the same numcodecs Blosc with the array's configuration),
so either path reads what the other wrote; ``tests/test_chunk_file.py`` compares the files byte for byte.
Files are written as :class:`~ihs_hpc.io.local_store.PiecewiseLocalStore` writes them (atomic rename).

Also here, as they are about single chunks too: :func:`store_array` (arrays opened once per process) and
:func:`iter_chunk_errors` / :func:`chunk_tile` (which chunks fail to decode, named by their tile; the
error of :func:`ihs_hpc.io.cube.read_region` and ``ihs check --verify``).
"""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np

__all__ = ["store_array", "chunk_codec", "single_chunk", "read_chunk_region", "write_chunk_region", "chunk_tile",
           "iter_chunk_errors"]

_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


#: Zarr arrays opened by :func:`store_array`, most recently used last
_OPEN_ARRAYS: "dict[tuple, tuple[tuple, object]]" = {}
_OPEN_ARRAYS_MAX = 256
_OPEN_ARRAYS_LOCK = threading.Lock()


def store_array(path: str | os.PathLike, name: str, *, writable: bool = False):
    """Array ``name`` of the store at ``path``, opened once per process while its ``zarr.json`` is the same
    file (inode, size and modification time): a tile's read or write opens the store's group and the
    array's metadata otherwise, ~2 ms a time (issue 15). ``None`` when the store has no such array."""
    import zarr

    from .local_store import writable_group

    path = Path(path)
    try:
        st = os.stat(path / name / "zarr.json")
    except OSError:
        return None
    key, stamp = (str(path), name, writable), (st.st_ino, st.st_size, st.st_mtime_ns)
    with _OPEN_ARRAYS_LOCK:
        hit = _OPEN_ARRAYS.pop(key, None)
        if hit is not None and hit[0] == stamp:
            _OPEN_ARRAYS[key] = hit
            return hit[1]
    if writable:
        group = writable_group(path)
    else:
        group = zarr.open_group(path, mode="r")
    if name not in group:
        return None
    array = group[name]
    with _OPEN_ARRAYS_LOCK:
        _OPEN_ARRAYS[key] = (stamp, array)
        while len(_OPEN_ARRAYS) > _OPEN_ARRAYS_MAX:
            _OPEN_ARRAYS.pop(next(iter(_OPEN_ARRAYS)))
    return array


def chunk_codec(array):
    """The numcodecs :class:`~numcodecs.Blosc` that encodes ``array``'s chunks, or ``None`` when they are
    not plain ``bytes`` + ``blosc`` chunks of a local store (then only Zarr reads and writes them)."""
    from zarr.codecs import BloscCodec, BytesCodec
    from zarr.core.chunk_grids import RegularChunkGrid
    from zarr.storage import LocalStore

    meta = array.metadata
    if getattr(meta, "zarr_format", None) != 3 or not isinstance(array.store, LocalStore):
        return None
    if not isinstance(meta.chunk_grid, RegularChunkGrid) or len(meta.codecs) != 2:
        return None
    first, second = meta.codecs
    dtype = np.dtype(array.dtype)
    if not isinstance(first, BytesCodec) or not isinstance(second, BloscCodec) or dtype.kind not in "fiub":
        return None
    little = sys.byteorder == "little" and dtype.byteorder in "=<|"
    if not little or (first.endian is not None and first.endian.value != "little"):
        return None
    from numcodecs import Blosc

    config = second.to_dict()["configuration"]
    return Blosc(cname=config["cname"], clevel=int(config["clevel"]), shuffle=_SHUFFLE[config["shuffle"]],
                 blocksize=int(config["blocksize"]), typesize=int(config["typesize"]))


def single_chunk(shape, chunks, index) -> tuple[tuple[int, ...], tuple[slice, ...]] | None:
    """The chunk coordinates holding all of ``index`` (slices of step 1, one per leading axis, the rest
    whole) and the selection inside that chunk; ``None`` when it spans several chunks or is empty."""
    index = tuple(index) + (slice(None),) * (len(shape) - len(tuple(index)))
    if len(index) != len(shape):
        return None
    coords, inner = [], []
    for sl, size, n in zip(index, shape, chunks):
        if not isinstance(sl, slice):
            return None
        start, stop, step = sl.indices(int(size))
        if step != 1 or stop <= start:
            return None
        c = start // n
        if (stop - 1) // n != c:
            return None
        coords.append(c)
        inner.append(slice(start - c * n, stop - c * n))
    return tuple(coords), tuple(inner)


def _chunk_path(array, coords) -> Path:
    return Path(array.store.root) / array.path / array.metadata.chunk_key_encoding.encode_chunk_key(coords)


def read_chunk_region(array, index) -> np.ndarray | None:
    """``array[index]`` read from its one chunk file, or ``None`` when Zarr must read it (module docstring)."""
    codec = chunk_codec(array)
    where = single_chunk(array.shape, array.chunks, index) if codec is not None else None
    if where is None:
        return None
    coords, inner = where
    try:
        with open(_chunk_path(array, coords), "rb") as f:
            encoded = f.read()
        chunk = np.empty(array.chunks, dtype=array.dtype)
        codec.decode(encoded, out=chunk)
    except Exception:  # missing (fill value) or undecodable (an error naming the chunk): Zarr's to say
        return None
    del encoded
    if all(sl.start == 0 and sl.stop == n for sl, n in zip(inner, array.chunks)):
        return chunk
    return np.ascontiguousarray(chunk[inner])


def _all_fill(chunk: np.ndarray, fill) -> bool:
    first = chunk.flat[0]
    if chunk.dtype.kind == "f" and np.isnan(fill):
        return bool(np.isnan(first)) and bool(np.isnan(chunk).all())
    return bool(first == fill) and bool((chunk == fill).all())


def write_chunk_region(array, index, block: np.ndarray) -> bool:
    """Write ``block`` at ``index`` as one whole chunk file; ``False`` (nothing written) when Zarr must
    write it (module docstring)."""
    from .local_store import write_file

    codec = chunk_codec(array)
    where = single_chunk(array.shape, array.chunks, index) if codec is not None else None
    if where is None:
        return False
    coords, inner = where
    for sl, c, n, size in zip(inner, coords, array.chunks, array.shape):
        if sl.start != 0 or sl.stop != min(n, int(size) - c * n):  # must cover the chunk's cells in the array
            return False
    dtype = np.dtype(array.dtype)
    fill = array.metadata.fill_value
    if tuple(block.shape) == tuple(array.chunks):
        chunk = np.ascontiguousarray(block, dtype=dtype)
    else:
        chunk = np.full(array.chunks, fill, dtype=dtype)
        chunk[inner] = block
    if _all_fill(chunk, fill):
        return False
    write_file(_chunk_path(array, coords), codec.encode(chunk))
    return True


def chunk_tile(dims: tuple, key: str) -> str:
    """`` (tile t0001_0002)`` for a chunk key of a tiled variable (chunks are tiles), else ``""``."""
    parts = key.split("/")[1:]
    coords = dict(zip(dims, parts))
    for lat, lon, prefix in (("lat", "lon", ""), ("met_lat", "met_lon", "met tile ")):
        if lat in coords and lon in coords:
            return f" ({prefix or 'tile '}t{int(coords[lat]):04d}_{int(coords[lon]):04d})"
    return ""


def _chunk_ranges(array, index=None):
    """Chunk grid coordinates overlapping ``index`` (default: all)."""
    import itertools

    index = tuple(index or ()) + (slice(None),) * (array.ndim - len(index or ()))
    ranges = []
    for size, chunk, sel in zip(array.shape, array.chunks, index):
        start, stop, _ = sel.indices(size) if isinstance(sel, slice) else (int(sel), int(sel) + 1, 1)
        ranges.append(range(start // chunk, max(start, stop - 1) // chunk + 1) if size else range(0))
    return itertools.product(*ranges)


def iter_chunk_errors(array, index=None):
    """``(chunk key, error text)`` for every chunk of ``array`` (within ``index``) that fails to decode."""
    encode = array.metadata.chunk_key_encoding.encode_chunk_key
    for coords in _chunk_ranges(array, index):
        try:
            array.blocks[coords]
        except Exception as err:  # noqa: BLE001 - any decoding failure marks the chunk bad
            yield encode(coords), f"{type(err).__name__}: {err}"
