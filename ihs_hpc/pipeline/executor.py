"""Run one function per tile, on a Dask client or in-process, skipping finished tiles, with progress.

A tile function takes a :class:`~ihs_hpc.grid.Tile`, reads its inputs, computes, and writes its
outputs with :func:`ihs_hpc.io.cube.write_tile` (which records the tile as finished). It must be a
picklable top-level callable (``functools.partial`` of a module function) so Dask can ship it.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

from ..grid import Tile
from ..progress import progress


def map_tiles(func: Callable[[Tile], object], tiles: Sequence[Tile], client=None, *, desc: str = "tiles",
              unit: str = "tile", pixels_per_tile: Callable[[Tile], int] | None = None, disable_progress=None) -> dict:
    """Apply ``func`` to every tile; return timing figures.

    With a client, tiles are submitted as one task each (``pure=False``; the store's completion
    records, not Dask's cache, decide what is redone) and gathered as they finish, so a failing tile
    raises at once with its name. Without a client they run here in order.
    """
    tiles = list(tiles)
    start = time.perf_counter()
    n_pixels = 0
    bar = progress(len(tiles), desc, unit, disable=disable_progress)
    try:
        if client is None:
            for tile in tiles:
                func(tile)
                n_pixels += tile.shape[0] * tile.shape[1]
                bar.update(1)
        else:
            from distributed import as_completed

            futures = {client.submit(func, tile, pure=False, key=f"{desc}-{tile.name}-{time.time_ns()}"): tile
                       for tile in tiles}
            for future in as_completed(futures):
                tile = futures[future]
                try:
                    future.result()
                except Exception as err:
                    for other in futures:
                        other.cancel()
                    raise RuntimeError(f"{desc}: tile {tile.name} (rows {tile.rows.start}:{tile.rows.stop}, "
                                       f"cols {tile.cols.start}:{tile.cols.stop}) failed: {err}") from err
                n_pixels += tile.shape[0] * tile.shape[1]
                bar.update(1)
    finally:
        bar.close()
    elapsed = time.perf_counter() - start
    return {"tiles": len(tiles), "pixels": n_pixels, "seconds": elapsed,
            "pixels_per_s": n_pixels / elapsed if elapsed > 0 else float("nan")}
