"""Run one function per tile, on a Dask client or in-process, skipping finished tiles, with progress.

A tile function takes a :class:`~ihs_hpc.grid.Tile`, reads its inputs, computes, and writes its
outputs with :func:`ihs_hpc.io.cube.write_tile` (which records the tile as finished). It must be a
picklable top-level callable (``functools.partial`` of a module function) so Dask can ship it.

Failures: an error that says the input is bad (an :class:`~ihs_hpc.errors.IhsError` with exit code 2)
stops the stage at once — it would fail the same way on every try. Any other error is retried once;
a tile that fails twice is reported with its name and error, the other tiles go on, and the stage
then raises :class:`~ihs_hpc.errors.IncompleteRunError` (exit code 3). The store stays unfinished, so
a rerun redoes only the failed tiles.

Fault injection (tests): ``IHS_FAULT_KILL_AFTER="<desc>:<n>"`` makes this process SIGKILL itself once
``n`` tiles of the map called ``desc`` have finished — a real kill at a point that cannot race;
``IHS_FAULT_FAIL_TILE="<desc>:<tile name>"`` makes every attempt at that tile raise.
"""
from __future__ import annotations

import os
import signal
import time
from typing import Callable, Sequence

from ..errors import EXIT_BAD_INPUT, IhsError, IncompleteRunError
from ..grid import Tile
from ..progress import progress

FAULT_ENV = "IHS_FAULT_KILL_AFTER"
FAIL_ENV = "IHS_FAULT_FAIL_TILE"


def _bad_input(err: BaseException) -> bool:
    return isinstance(err, IhsError) and err.exit_code == EXIT_BAD_INPUT


def _kill_point(desc: str) -> int | None:
    spec = os.environ.get(FAULT_ENV, "")
    name, _, count = spec.rpartition(":")
    return int(count) if name and name == desc and count.isdigit() else None


def _where(tile) -> str:
    if hasattr(tile, "rows"):
        return f"tile {tile.name} (rows {tile.rows.start}:{tile.rows.stop}, cols {tile.cols.start}:{tile.cols.stop})"
    return f"{tile.name}"


def _unless_done(func: Callable, done: Callable | None, desc: str, tile):
    """Run ``func(tile)`` unless ``done(tile)`` says its result is already recorded (checked where the
    task runs, so a task Dask reschedules after a worker died never redoes a recorded tile)."""
    if done is not None and done(tile):
        return "skipped"
    if os.environ.get(FAIL_ENV) == f"{desc}:{tile.name}":
        raise RuntimeError(f"injected failure ({FAIL_ENV})")
    return func(tile)


def largest_first(tiles: Sequence[Tile]) -> list[Tile]:
    """``tiles`` by decreasing cell count, in their order among equals: submitted so (Dask runs tasks in the
    order they come), the edge tiles — the small ones — run last and fill the gaps the large ones leave,
    instead of a large tile starting last on one worker while the others idle (longest processing time
    first). Measured on the demo's stage 2 with 2 workers, whose tiles alternate 64 × 64, 64 × 64, 64 × 32."""
    return sorted(tiles, key=lambda tile: -int(tile.shape[0]) * int(tile.shape[1]))


def map_tiles(func: Callable[[Tile], object], tiles: Sequence[Tile], client=None, *, desc: str = "tiles",
              unit: str = "tile", disable_progress=None, retries: int = 1, done: Callable | None = None,
              on_result: Callable | None = None) -> dict:
    """Apply ``func`` to every tile; return timing figures.

    With a client, tiles are submitted as one task each (``pure=False``; the store's completion
    records, not Dask's cache, decide what is redone), largest first (:func:`largest_first`), and gathered
    as they finish. Without a client
    they run here in order. ``done(tile)``, a picklable predicate (e.g. ``partial(is_recorded, store)``),
    is checked by each task before it computes. ``on_result(tile, value)``, when given, receives each
    finished tile's return value here in the caller (in completion order with a client), so results can be
    reduced as they arrive. See the module docstring for failures and retries.
    """
    from functools import partial

    func = partial(_unless_done, func, done, desc)
    tiles = list(tiles)
    start = time.perf_counter()
    n_pixels = 0
    n_done = 0
    failures: list[tuple[str, str]] = []
    kill_after = _kill_point(desc)
    bar = progress(len(tiles), desc, unit, disable=disable_progress)

    def finished(tile):
        nonlocal n_pixels, n_done
        n_pixels += tile.shape[0] * tile.shape[1]
        n_done += 1
        bar.update(1)
        if kill_after is not None and n_done >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    try:
        if client is None:
            for tile in tiles:
                for attempt in range(retries + 1):
                    try:
                        value = func(tile)
                    except Exception as err:
                        if _bad_input(err):
                            raise
                        if attempt == retries:
                            failures.append((_where(tile), f"{type(err).__name__}: {err}"))
                        continue
                    if on_result is not None:
                        on_result(tile, value)
                    finished(tile)
                    break
        else:
            from distributed import as_completed

            futures = {client.submit(func, tile, pure=False, retries=retries,
                                     key=f"{desc}-{tile.name}-{time.time_ns()}"): tile for tile in largest_first(tiles)}
            for future in as_completed(futures):
                tile = futures[future]
                try:
                    value = future.result()
                except Exception as err:
                    if _bad_input(err):
                        for other in futures:
                            other.cancel()
                        raise
                    failures.append((_where(tile), f"{type(err).__name__}: {err}"))
                    continue
                future.release()
                if on_result is not None:
                    on_result(tile, value)
                finished(tile)
    finally:
        bar.close()
    if failures:
        listed = "\n".join(f"  {where}: {error}" for where, error in failures)
        raise IncompleteRunError(
            f"{desc}: {len(failures)} of {len(tiles)} {unit}s failed twice; the other {unit}s finished and are kept, "
            f"and a rerun redoes only these:\n{listed}", failures)
    elapsed = time.perf_counter() - start
    return {"tiles": len(tiles), "pixels": n_pixels, "seconds": elapsed,
            "pixels_per_s": n_pixels / elapsed if elapsed > 0 else float("nan")}


def warm_workers(client, func: Callable[[], object]) -> list:
    """Start ``func()`` once on every worker of ``client`` without waiting (nothing without a client).

    For what each worker loads once per stage (an operator from the disk cache, compiled kernels): done
    while a serial phase occupies one worker, it costs the others idle time instead of their first tile's.
    Keep the returned futures until the stage ends; a failure there only shows again in the tiles.
    """
    if client is None:
        return []
    workers = list(client.scheduler_info().get("workers", {}))
    return [client.submit(func, pure=False, workers=[w], allow_other_workers=False,
                          key=f"warm-{i}-{time.time_ns()}") for i, w in enumerate(workers)]
