"""Keep freed memory for reuse inside a process instead of handing it back to the OS after every task.

Why: a tile task allocates and frees arrays of tens to hundreds of MB (a tile's ten-year series, Zarr's
decoded chunks). glibc serves every allocation above its mmap threshold (at most 32 MB by default) with a
fresh ``mmap`` and returns it with ``munmap`` when freed; allocations made in other threads than the main
one (Dask runs tasks in a thread pool, Zarr decodes in its own) come from per-thread arenas of at most
64 MB, so anything larger is mmapped too. Every task then page-faults all its memory in again, and the
kernel zeroes each page: on the 2-core machine the pipeline was measured on, that was 40 % of the CPU
time of a BTH run spent in the kernel (issue 15). Dask's nanny makes it worse on purpose
(``MALLOC_TRIM_THRESHOLD_=65536``, to make worker memory look small).

:func:`malloc_environment` gives the glibc settings that keep up to ``reuse_mb`` MB of freed memory in
the process for the next task: one arena (``MALLOC_ARENA_MAX=1``: worker threads allocate from the
main heap, which can hold blocks of any size), an mmap threshold and a trim threshold of ``reuse_mb``.
They must be in the environment when a process starts (the LocalCluster nanny's ``pre-spawn-environ``,
the Slurm job prologue, the sbatch script of an MPI run). :func:`reuse_freed_memory` applies the same
settings to the running process through ``mallopt`` (the ``ihs`` driver, which merges tiles in-process).
A process's resident memory then stays near its peak working set instead of dropping between tasks.
Elsewhere than glibc (macOS, musl) both do nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["malloc_environment", "reuse_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_applied: int | None = None


def _glibc():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:  # pragma: no cover - no libc to load
        return None


def _bytes(reuse_mb) -> int:
    # glibc reads these as int (mallopt) / size_t (environment); stay below 2 GiB for mallopt
    return int(min(max(float(reuse_mb), 0.0) * 2**20, 2**31 - 1))


def malloc_environment(reuse_mb) -> dict[str, str]:
    """Environment variables making a glibc process keep up to ``reuse_mb`` MB of freed memory for reuse.

    Parameters
    ----------
    reuse_mb : float
        0 or less: none (glibc's and Dask's own settings stay).

    Returns
    -------
    dict
        ``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` (empty when
        ``reuse_mb <= 0`` or the platform is not glibc-based).
    """
    if reuse_mb is None or float(reuse_mb) <= 0 or _glibc() is None:
        return {}
    size = str(_bytes(reuse_mb))
    return {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": size, "MALLOC_TRIM_THRESHOLD_": size}


def reuse_freed_memory(reuse_mb) -> bool:
    """Apply :func:`malloc_environment`'s settings to this process with ``mallopt``; True when applied.

    Threads started before the call keep the arena they already have; call it early (``ihs run`` does,
    before any stage starts a thread). Applying the same value again does nothing.
    """
    global _applied
    if reuse_mb is None or float(reuse_mb) <= 0:
        return False
    libc = _glibc()
    if libc is None:
        return False
    size = _bytes(reuse_mb)
    if _applied == size:
        return True
    ok = all(libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)) == 1
             for param, value in ((_M_ARENA_MAX, 1), (_M_MMAP_THRESHOLD, size), (_M_TRIM_THRESHOLD, size)))
    if ok:
        _applied = size
    return ok
