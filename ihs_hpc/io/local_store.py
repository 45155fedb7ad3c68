"""Zarr's local-directory store, writing each file in pieces of :data:`WRITE_PIECE` bytes (64 KiB).

Why: Zarr's :class:`zarr.storage.LocalStore` hands a whole encoded chunk to one ``write()`` call. A chunk
here is a whole tile of ten years (``(all days, tile, tile)`` float32, ~47 MB once encoded for a 64 × 64
tile). On the 2-core VM the pipeline is measured on (Linux 6.18, ext4, a balloon device with free page
reporting) large writes to new files cost the kernel 6-7 ms of CPU per MB, and how large is "large"
changes with the machine's memory state. Measured inside stage 2 on the demo (issue 15; 204 chunk files,
519 MB, in-process, three runs each), in the store's writes: one ``write()`` per file 2.7-3.3 s; 1 MiB
pieces 0.33-0.38 s in one run directory but 3.0-3.3 s in another (written after prep had filled the page
cache); 256 KiB pieces 0.22-0.24 s; 64 KiB pieces 0.24-0.32 s in both; 16 KiB 0.38 s. The stage went
from 14.2-15.1 s to 11.3-11.8 s. The pattern fits the kernel giving the page cache folios as large as
each write from high-order free blocks that the balloon driver has handed back to the host, each of
them then faulted in again there; whatever the cause, pieces of 64 KiB cost nothing measurable where
one large write is fast (the file system sees the same bytes in the same order).

Everything else is :class:`~zarr.storage.LocalStore`'s: a file is written to a temporary name beside
it and renamed into place (so a crash leaves a chunk old or new, never torn), and
``set_if_not_exists`` links rather than replaces. Open a group for writing through
:func:`writable_group`; reading goes through plain paths (Zarr's own store).
"""
from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import zarr
from zarr.storage import LocalStore

__all__ = ["PiecewiseLocalStore", "writable_group", "write_file", "WRITE_PIECE"]

#: bytes per ``write()`` call
WRITE_PIECE = 1 << 16


def write_file(path: Path, data, *, exclusive: bool = False, piece: int = WRITE_PIECE) -> int:
    """Write the bytes of ``data`` (any C-contiguous buffer) to ``path`` atomically, ``piece`` bytes per
    ``write()``: into a temporary file beside it, then renamed over it (``exclusive``: linked, failing
    with :class:`FileExistsError` if ``path`` exists, as Zarr's ``set_if_not_exists``). Returns the
    number of bytes written."""
    view = memoryview(data).cast("B")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{uuid.uuid4().hex}.partial")  # Zarr's temporary name (`ihs check` knows it)
    try:
        with open(tmp, "wb") as f:
            for start in range(0, len(view), piece):
                f.write(view[start:start + piece])
        if exclusive:
            os.link(tmp, path)
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return len(view)


class PiecewiseLocalStore(LocalStore):
    """:class:`zarr.storage.LocalStore` whose writes go through :func:`write_file` (module docstring)."""

    def _write(self, key: str, value, exclusive: bool = False) -> None:
        self._check_writable()
        if not isinstance(key, str):
            raise TypeError(f"store keys are str, got {type(key)}")
        write_file(self.root / key, value.as_buffer_like(), exclusive=exclusive)

    async def set(self, key: str, value) -> None:
        if not self._is_open:
            await self._open()
        await asyncio.to_thread(self._write, key, value)

    async def set_if_not_exists(self, key: str, value) -> None:
        if not self._is_open:
            await self._open()
        try:
            await asyncio.to_thread(self._write, key, value, True)
        except FileExistsError:
            pass

    def set_sync(self, key: str, value) -> None:
        self._ensure_open_sync()
        self._write(key, value)

    def __repr__(self) -> str:
        return f"PiecewiseLocalStore('{self}')"


def writable_group(path: str | os.PathLike, mode: str = "r+", **kwargs) -> zarr.Group:
    """``zarr.open_group(path, mode=mode, **kwargs)`` for writing, through a :class:`PiecewiseLocalStore`."""
    return zarr.open_group(PiecewiseLocalStore(Path(path)), mode=mode, **kwargs)
