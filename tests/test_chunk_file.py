"""Whole chunks read and written as files (:mod:`ihs_hpc.io.chunk_file`): the same bytes as Zarr writes,
the same values as Zarr reads, Zarr's behaviour wherever the direct path does not apply, and array
handles (:func:`ihs_hpc.io.cube.store_array`) never stale after a store is made again."""
import shutil
import time as clock

import numpy as np
import pytest
import zarr
from hypothesis import given, settings, strategies as st

from ihs_hpc.errors import StoreError
from ihs_hpc.grid import Grid
from ihs_hpc.io.chunk_file import chunk_codec, read_chunk_region, single_chunk, write_chunk_region
from ihs_hpc.io.cube import create_store, cube_spec, map_spec, read_region, read_tile, write_tile
from ihs_hpc.io.local_store import writable_group

BLOSC = zarr.codecs.BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")


def _array(path, dtype, shape=(50, 20, 24), chunks=(50, 8, 8), compressors=BLOSC, fill=None):
    group = writable_group(path, mode="w", zarr_format=3)
    fill = fill if fill is not None else (np.nan if np.dtype(dtype).kind == "f" else 0)
    return group.create_array("v", shape=shape, chunks=chunks, dtype=dtype, fill_value=fill,
                              compressors=compressors, dimension_names=("time", "lat", "lon"))


def _values(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(50, 20, shape).astype(dtype)
    return rng.integers(-100 if np.dtype(dtype).kind == "i" else 0, 100, shape).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int8", "int32", "uint8"])
def test_written_chunks_are_zarrs_bytes_and_read_back_as_zarr_reads_them(tmp_path, dtype):
    """Every chunk of an array with edge chunks (20 × 24 cells in 8 × 8 chunks): written here and by Zarr
    into another store, the files are identical; read here, the values equal Zarr's and the input."""
    ours, theirs = _array(tmp_path / "ours.zarr", dtype), _array(tmp_path / "zarrs.zarr", dtype)
    values = _values(dtype, ours.shape)
    assert chunk_codec(ours) is not None
    for r in range(0, 20, 8):
        for c in range(0, 24, 8):
            index = (slice(None), slice(r, min(r + 8, 20)), slice(c, min(c + 8, 24)))
            assert write_chunk_region(ours, index, values[index])
            theirs[index] = values[index]
    files = sorted(p.relative_to(tmp_path / "zarrs.zarr") for p in (tmp_path / "zarrs.zarr" / "v" / "c").rglob("*")
                   if p.is_file())
    assert len(files) == 9
    for key in files:
        assert (tmp_path / "ours.zarr" / key).read_bytes() == (tmp_path / "zarrs.zarr" / key).read_bytes(), key
    np.testing.assert_array_equal(zarr.open_group(tmp_path / "ours.zarr", mode="r")["v"][:], values)
    for r in range(0, 20, 8):
        for c in range(0, 24, 8):
            index = (slice(None), slice(r, min(r + 8, 20)), slice(c, min(c + 8, 24)))
            got = read_chunk_region(theirs, index)
            assert got is not None and got.flags.c_contiguous
            np.testing.assert_array_equal(got, values[index])


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_any_selection_inside_one_chunk_reads_what_numpy_slices(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("sel") / "s.zarr"
    array = _array(path, "float32", shape=(30, 20, 24), chunks=(30, 8, 8))
    values = _values("float32", array.shape, seed=data.draw(st.integers(0, 9)))
    array[...] = values
    index = []
    for size, n in zip(array.shape, array.chunks):
        c = data.draw(st.integers(0, (size - 1) // n))
        lo = data.draw(st.integers(c * n, min((c + 1) * n, size) - 1))
        hi = data.draw(st.integers(lo + 1, min((c + 1) * n, size)))
        index.append(slice(lo, hi))
    index = tuple(index)
    got = read_chunk_region(array, index)
    assert got is not None
    np.testing.assert_array_equal(got, values[index])
    np.testing.assert_array_equal(read_region(array, index, store=path, name="v"), values[index])


def test_single_chunk_refuses_selections_across_chunks_and_empty_ones():
    assert single_chunk((30, 20, 24), (30, 8, 8), (slice(None), slice(8, 16), slice(16, 24))) == \
        ((0, 1, 2), (slice(0, 30), slice(0, 8), slice(0, 8)))
    assert single_chunk((30, 20, 24), (30, 8, 8), (slice(None), slice(7, 9))) is None  # two chunks of rows
    assert single_chunk((30, 20, 24), (30, 8, 8), (slice(3, 3),)) is None  # empty
    assert single_chunk((30, 20, 24), (30, 8, 8), (slice(None, None, 2),)) is None  # strided
    assert single_chunk((30, 20, 24), (30, 8, 8), (4,)) is None  # an integer index: Zarr's


def test_zarr_does_what_the_direct_path_does_not_cover(tmp_path):
    """Other codecs, partial writes, chunks all fill value (Zarr deletes them), missing and damaged chunks."""
    zstd = _array(tmp_path / "zstd.zarr", "float32", compressors=zarr.codecs.ZstdCodec())
    assert chunk_codec(zstd) is None
    full = (slice(None), slice(0, 8), slice(0, 8))
    assert not write_chunk_region(zstd, full, _values("float32", (50, 8, 8)))

    array = _array(tmp_path / "s.zarr", "float32")
    assert not write_chunk_region(array, (slice(None), slice(0, 4), slice(0, 8)), _values("float32", (50, 4, 8)))
    assert not write_chunk_region(array, full, np.full((50, 8, 8), np.nan, np.float32))
    assert not list((tmp_path / "s.zarr" / "v").rglob("c/*/*/*"))  # nothing written by either refusal
    assert read_chunk_region(array, full) is None  # never written: Zarr's fill value
    assert np.isnan(read_region(array, full, store=tmp_path / "s.zarr", name="v")).all()

    ints = _array(tmp_path / "i.zarr", "int32", fill=-1)
    assert not write_chunk_region(ints, full, np.full((50, 8, 8), -1, np.int32))
    assert write_chunk_region(ints, full, np.full((50, 8, 8), 7, np.int32))
    assert (ints[full] == 7).all()

    assert write_chunk_region(array, full, _values("float32", (50, 8, 8)))
    chunk = tmp_path / "s.zarr" / "v" / "c" / "0" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:100])  # truncated: not decodable
    assert read_chunk_region(array, full) is None
    with pytest.raises(StoreError, match=r"variable 'v'.*cannot decode chunk\(s\) v/c/0/0/0"):
        read_region(array, full, store=tmp_path / "s.zarr", name="v")


def test_tiles_written_and_read_through_the_store_layer_match_zarr_and_a_remade_store_is_read_afresh(tmp_path):
    grid = Grid(39.0, 39.20, 115.0, 115.24)  # 20 x 24 cells: edge tiles are partial
    specs = {"cube": cube_spec("ug m-3", "a cube"), "count": map_spec("1", "a map", dtype="int32")}
    path = tmp_path / "store.zarr"
    values = {}
    for remake in range(2):
        time = np.arange("2020-01-01", "2020-02-20" if remake else "2020-03-20", dtype="datetime64[D]")
        if remake:
            shutil.rmtree(path)  # made again with fewer days: a handle of the first store reads a wrong shape
        create_store(path, grid, specs, tile_size=8, time=time)
        values = {"cube": _values("float32", (time.size, 20, 24), seed=remake),
                  "count": _values("int32", (20, 24), seed=10 + remake)}
        for tile in grid.tiles(8):
            write_tile(path, tile, {k: v[..., tile.rows, tile.cols] for k, v in values.items()})
        for tile in grid.tiles(8):  # handles opened in the first round must not serve the remade store
            got = read_tile(path, tile, ["cube", "count"])
            for k in values:
                np.testing.assert_array_equal(got[k], values[k][..., tile.rows, tile.cols])
    reread = zarr.open_group(path, mode="r")
    for k in values:
        np.testing.assert_array_equal(reread[k][:], values[k])
    with pytest.raises(StoreError, match="no variable 'missing'"):
        read_tile(path, grid.tiles(8)[0], ["missing"])
    with pytest.raises(StoreError, match="no variable 'missing'"):
        write_tile(path, grid.tiles(8)[0], {"missing": np.zeros((8, 8))})


def test_a_remembered_tile_is_recalled_only_while_its_chunk_file_is_unchanged(tmp_path):
    from ihs_hpc.io import chunk_cache

    grid = Grid(39.0, 39.20, 115.0, 115.24)
    time = np.arange("2020-01-01", "2020-02-20", dtype="datetime64[D]")
    path = tmp_path / "store.zarr"
    create_store(path, grid, {"cube": cube_spec("ug m-3", "a cube")}, tile_size=8, time=time)
    chunk_cache.clear()
    tiles = grid.tiles(8)
    edge = tiles[-1]  # 4 x 8 cells of an 8 x 8 chunk
    for tile in (tiles[0], edge):
        block = _values("float32", (time.size,) + tile.shape, seed=tile.rows.start)
        assert chunk_cache.recall_tile(path, "cube", tile) is None  # never written
        write_tile(path, tile, {"cube": block})
        assert chunk_cache.recall_tile(path, "cube", tile) is None  # written, not remembered: no read either
        chunk_cache.remember_tile(path, "cube", tile, block)
        assert chunk_cache.recall_tile(path, "cube", tile) is block
        np.testing.assert_array_equal(read_tile(path, tile, ["cube"])["cube"], block)
        clock.sleep(0.01)
        write_tile(path, tile, {"cube": block + 1})  # the chunk written again: the kept block is stale
        assert chunk_cache.recall_tile(path, "cube", tile) is None
    chunk_cache.clear()
