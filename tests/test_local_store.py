"""The store writer of every stage (:mod:`ihs_hpc.io.local_store`): same bytes as Zarr's own LocalStore,
atomic replacement, ``set_if_not_exists`` semantics, and every write path of the product going through it."""
import os

import numpy as np
import pandas as pd
import pytest
import zarr
from hypothesis import given, settings, strategies as st

from ihs_hpc.grid import Grid
from ihs_hpc.io.cube import create_store, cube_spec, write_tile
from ihs_hpc.io.local_store import PiecewiseLocalStore, writable_group, write_file


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 5000), piece=st.integers(1, 1200))
def test_write_file_writes_the_exact_bytes_whatever_the_piece(tmp_path_factory, size, piece):
    path = tmp_path_factory.mktemp("w") / "c" / "0" / "0"
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8)
    assert write_file(path, data, piece=piece) == size
    assert path.read_bytes() == data.tobytes()
    assert os.listdir(path.parent) == ["0"]  # no temporary file left


def test_write_file_replaces_atomically_and_exclusive_keeps_the_old_file(tmp_path):
    path = tmp_path / "chunk"
    write_file(path, b"old contents")
    write_file(path, np.arange(10, dtype=np.float32))
    assert np.array_equal(np.frombuffer(path.read_bytes(), dtype=np.float32), np.arange(10, dtype=np.float32))
    with pytest.raises(FileExistsError):
        write_file(path, b"new", exclusive=True)
    assert np.frombuffer(path.read_bytes(), dtype=np.float32)[3] == 3.0
    assert os.listdir(tmp_path) == ["chunk"]


def test_chunk_files_are_byte_identical_to_zarrs_own_store(tmp_path):
    """Written through PiecewiseLocalStore (pieces smaller than a chunk) and through Zarr's LocalStore, the
    same array gives the same files, and Zarr reads back the values written."""
    values = np.random.default_rng(0).normal(50, 20, (400, 24, 24)).astype(np.float32)
    for name, store in (("ours", PiecewiseLocalStore(tmp_path / "ours.zarr")),
                        ("zarrs", zarr.storage.LocalStore(tmp_path / "zarrs.zarr"))):
        group = zarr.open_group(store, mode="w", zarr_format=3)
        array = group.create_array("x", shape=values.shape, chunks=(400, 16, 16), dtype="float32",
                                   compressors=zarr.codecs.BloscCodec(cname="lz4", clevel=1, shuffle="shuffle"))
        array[:] = values
    for key in ("x/c/0/0/0", "x/c/0/1/1", "x/zarr.json", "zarr.json"):
        assert (tmp_path / "ours.zarr" / key).read_bytes() == (tmp_path / "zarrs.zarr" / key).read_bytes(), key
    np.testing.assert_array_equal(zarr.open_group(tmp_path / "ours.zarr", mode="r")["x"][:], values)


def test_writable_group_modes_and_set_if_not_exists(tmp_path):
    group = writable_group(tmp_path / "s.zarr", mode="w", zarr_format=3)
    assert isinstance(group.store, PiecewiseLocalStore)
    group.create_array("x", shape=(4,), dtype="int32", fill_value=0)
    again = writable_group(tmp_path / "s.zarr")
    again["x"][:] = [1, 2, 3, 4]
    again.attrs["note"] = "kept"
    reread = zarr.open_group(tmp_path / "s.zarr", mode="r")
    assert reread["x"][:].tolist() == [1, 2, 3, 4] and reread.attrs["note"] == "kept"
    import asyncio

    from zarr.core.buffer import default_buffer_prototype
    store = PiecewiseLocalStore(tmp_path / "s.zarr")
    buffer = default_buffer_prototype().buffer.from_bytes(b"replacement")
    before = (tmp_path / "s.zarr" / "zarr.json").read_bytes()
    asyncio.run(store.set_if_not_exists("zarr.json", buffer))  # exists: left as it is
    assert (tmp_path / "s.zarr" / "zarr.json").read_bytes() == before
    asyncio.run(store.set_if_not_exists("extra", buffer))
    assert (tmp_path / "s.zarr" / "extra").read_bytes() == b"replacement"
    with pytest.raises(ValueError):
        PiecewiseLocalStore(tmp_path / "s.zarr", read_only=True).set_sync("extra", buffer)


def test_stores_of_the_stages_are_written_through_it(tmp_path, monkeypatch):
    """create_store and write_tile (every tiled variable of every stage) write through PiecewiseLocalStore:
    with its writer broken, nothing reaches the store."""
    grid = Grid(36.0, 36.32, 114.0, 114.32)
    path = create_store(tmp_path / "s.zarr", grid, {"pm25": cube_spec("ug m-3", "PM2.5")}, tile_size=16,
                        time=pd.date_range("2019-01-01", periods=5))
    tile = next(iter(grid.tiles(16)))
    import ihs_hpc.io.local_store as local_store

    def broken(*args, **kwargs):
        raise OSError("writer used")

    monkeypatch.setattr(local_store, "write_file", broken)
    with pytest.raises(OSError, match="writer used"):
        write_tile(path, tile, {"pm25": np.ones((5,) + tile.shape, dtype=np.float32)})
