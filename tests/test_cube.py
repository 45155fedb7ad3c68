import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
import xarray as xr

from ihs_hpc.grid import Grid
from ihs_hpc.io.cube import (StoreError, create_store, cube_spec, finished_tiles, is_complete, map_spec,
                             mark_complete, met_spec, open_store, pending_tiles, read_pixels, read_tile, write_tile)

GRID = Grid(36.0, 36.40, 114.0, 114.52)  # 40 x 52 cells: edge tiles are partial
TIME = pd.date_range("2019-01-01", periods=20, freq="D")


def tile_values(tile, n_time=len(TIME)):
    """Deterministic content of a tile, different for every cell and day."""
    rows = np.arange(tile.rows.start, tile.rows.stop)[:, None]
    cols = np.arange(tile.cols.start, tile.cols.stop)[None, :]
    days = np.arange(n_time)[:, None, None]
    return (days * 1000.0 + rows * 100.0 + cols).astype("float32")


def make_store(path, **kw):
    return create_store(path, GRID, {"pm25": cube_spec("ug m-3", "PM2.5", "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"),
                                     "dem": map_spec("m", "elevation", "surface_altitude"),
                                     "t2m": met_spec("K", "2 m temperature", "air_temperature")},
                        tile_size=16, time=TIME, met_grid=GRID.enclosing(0.1), **kw)


def test_round_trip_cf_and_chunks(tmp_path):
    path = make_store(tmp_path / "s.zarr")
    for tile in GRID.tiles(16):
        write_tile(path, tile, {"pm25": tile_values(tile), "dem": tile_values(tile)[0] + 0.5})
    mark_complete(path)
    ds = xr.open_zarr(path)  # plain xarray, default arguments
    assert ds.pm25.dtype == np.float32
    assert ds.pm25.encoding["chunks"] == (len(TIME), 16, 16)
    assert ds.pm25.attrs["units"] == "ug m-3" and ds.pm25.attrs["grid_mapping"] == "crs"
    assert ds.pm25.attrs["standard_name"].startswith("mass_concentration_of_pm2p5")
    assert ds.t2m.dims == ("time", "met_lat", "met_lon")
    assert ds.lat.attrs["units"] == "degrees_north"
    full = np.empty((len(TIME),) + GRID.shape, "float32")
    for tile in GRID.tiles(16):
        full[:, tile.rows, tile.cols] = tile_values(tile)
    np.testing.assert_array_equal(ds.pm25.values, full)
    np.testing.assert_array_equal(ds.dem.values, full[0] + 0.5)
    assert np.isnan(ds.t2m.values).all()  # never written: fill value
    tile = GRID.tiles(16)[4]
    np.testing.assert_array_equal(read_tile(path, tile, ["pm25"])["pm25"], tile_values(tile))


def test_read_pixels_and_per_year_maps(tmp_path):
    """read_pixels equals xarray's pointwise indexing (pixels from several tiles, unsorted, edge tiles);
    a ("year", "lat", "lon") variable takes the store's year axis."""
    from ihs_hpc.io.cube import VarSpec

    path = make_store(tmp_path / "s.zarr", years=[2019, 2020])
    for tile in GRID.tiles(16):
        write_tile(path, tile, {"pm25": tile_values(tile)})
    rng = np.random.default_rng(0)
    pixels = rng.choice(GRID.ny * GRID.nx, 60, replace=False)
    got = read_pixels(path, "pm25", pixels, tile_size=16)
    ds = xr.open_zarr(path, consolidated=False)
    rows, cols = pixels // GRID.nx, pixels % GRID.nx
    want = ds.pm25.isel(lat=xr.DataArray(rows, dims="p"), lon=xr.DataArray(cols, dims="p")).values
    np.testing.assert_array_equal(got, want)
    levels = create_store(tmp_path / "y.zarr", GRID, {"level": VarSpec(("year", "lat", "lon"), {"units": "1"}, "float32")},
                          tile_size=16, years=[2019, 2020, 2021])
    tile = GRID.tiles(16)[5]
    write_tile(levels, tile, {"level": np.stack([tile_values(tile)[0] + k for k in range(3)])})
    out = xr.open_zarr(levels, consolidated=False)
    assert list(out.year.values) == [2019, 2020, 2021] and out.level.dims == ("year", "lat", "lon")
    np.testing.assert_array_equal(out.level.values[2, tile.rows, tile.cols], tile_values(tile)[0] + 2)


def test_incomplete_store_is_refused_and_rerun_resumes(tmp_path):
    path = make_store(tmp_path / "s.zarr")
    tiles = GRID.tiles(16)
    for tile in tiles[:3]:
        write_tile(path, tile, {"pm25": tile_values(tile)})
    assert not is_complete(path)
    with pytest.raises(StoreError, match="incomplete"):
        open_store(path)
    assert make_store(tmp_path / "s.zarr") == path  # reopening an incomplete store keeps its tiles
    assert [t.name for t in pending_tiles(path, tiles)] == [t.name for t in tiles[3:]]
    mark_complete(path)
    with pytest.raises(StoreError, match="already holds a complete store"):
        make_store(tmp_path / "s.zarr")


def test_bad_tile_shape_is_rejected(tmp_path):
    path = make_store(tmp_path / "s.zarr")
    tile = GRID.tiles(16)[0]
    with pytest.raises(StoreError, match="pm25"):
        write_tile(path, tile, {"pm25": np.zeros((3, 16, 16), "float32")})
    with pytest.raises(StoreError, match="no variable 'nope'"):
        write_tile(path, tile, {"nope": np.zeros((16, 16))})
    assert finished_tiles(path) == set()


WRITER = r"""
import sys, time
sys.path.insert(0, {tests!r})
from test_cube import GRID, make_store, tile_values
from ihs_hpc.io.cube import pending_tiles, write_tile, mark_complete
path = make_store({path!r})
for tile in pending_tiles(path, GRID.tiles(16)):
    write_tile(path, tile, {{"pm25": tile_values(tile), "dem": tile_values(tile)[1]}})
    print("wrote", tile.name, flush=True)
    time.sleep({pause})
mark_complete(path)
print("complete", flush=True)
"""


def run_writer(path, pause):
    code = WRITER.format(tests=str(Path(__file__).parent), path=str(path), pause=pause)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_writer_killed_mid_run_then_rerun_gives_identical_store(tmp_path):
    clean = tmp_path / "clean.zarr"
    proc = run_writer(clean, 0.0)
    assert proc.wait(timeout=120) == 0

    crashed = tmp_path / "crashed.zarr"
    proc = run_writer(crashed, 0.3)
    written = 0
    for line in proc.stdout:
        written += line.startswith("wrote")
        if written == 3:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not is_complete(crashed)
    done_before = finished_tiles(crashed)
    assert 3 <= len(done_before) < len(GRID.tiles(16))

    rerun = run_writer(crashed, 0.0)
    out, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0
    rewritten = {line.split()[1] for line in out.splitlines() if line.startswith("wrote")}
    assert rewritten.isdisjoint(done_before)  # finished tiles were skipped
    a, b = open_store(clean), open_store(crashed)
    for name in ("pm25", "dem"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    # chunk files are byte-identical too
    for chunk in sorted((clean / "pm25" / "c").rglob("*")):
        if chunk.is_file():
            twin = crashed / chunk.relative_to(clean)
            assert twin.read_bytes() == chunk.read_bytes()


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 2000), tile=st.integers(1, 300))
def test_even_chunk_is_the_fewest_equal_chunks_of_at_most_a_tile(n, tile):
    from ihs_hpc.io.cube import even_chunk

    c = even_chunk(n, tile)
    count = -(-n // c)
    assert 1 <= c <= tile
    assert count == -(-n // tile)  # as few chunks as tiles of the full size would need
    assert n - (count - 1) * c <= c and n - (count - 1) * c > 0  # the last one no larger, none empty


def test_met_cubes_are_chunked_evenly_and_their_tiles_are_the_chunks(tmp_path):
    """A 66-cell met axis in chunks of 33 (not 64 + a 2-cell chunk stored 64 wide), and the met tiles a
    writer uses are exactly the store's chunks."""
    import zarr

    from ihs_hpc.io.cube import store_tiles

    met = Grid(36.0, 42.6, 114.0, 120.3, 0.1)  # 66 x 63 cells
    path = create_store(tmp_path / "m.zarr", GRID, {"t2m": met_spec("K", "2 m temperature")}, tile_size=64,
                        time=TIME, met_grid=met)
    assert zarr.open_group(path, mode="r")["t2m"].chunks == (len(TIME), 33, 63)
    tiles = store_tiles(path, met, "t2m")
    assert [(t.rows.start, t.rows.stop, t.cols.start, t.cols.stop) for t in tiles] == [(0, 33, 0, 63), (33, 66, 0, 63)]
    for tile in tiles:
        write_tile(path, tile, {"t2m": tile_values(tile)}, record="met_" + tile.name)
    expected = np.concatenate([tile_values(t) for t in tiles], axis=1)
    np.testing.assert_array_equal(zarr.open_group(path, mode="r")["t2m"][:], expected)


def test_tiled_variables_read_back_through_xarray_with_their_fill_values(tmp_path):
    """create_store writes the tiled variables' metadata itself (no dask graph): xarray still decodes the
    never-written chunks as the fill value (NaN for floats, -1 for signed ints) with the CF attributes."""
    path = create_store(tmp_path / "f.zarr", GRID, {"pm25": cube_spec("ug m-3", "PM2.5"),
                                                     "source": map_spec("1", "where from", dtype="int8"),
                                                     "coef": map_spec("ug m-3", "intercept", dtype="float64")},
                        tile_size=16, time=TIME)
    tile = GRID.tiles(16)[0]
    write_tile(path, tile, {"pm25": tile_values(tile), "source": np.ones(tile.shape, dtype=np.int8)})
    ds = xr.open_zarr(path, consolidated=False)
    assert ds.pm25.attrs["units"] == "ug m-3" and ds.pm25.attrs["grid_mapping"] == "crs"
    assert ds.pm25.dims == ("time", "lat", "lon") and ds.pm25.dtype == np.float32
    np.testing.assert_array_equal(ds.pm25.values[:, tile.rows, tile.cols], tile_values(tile))
    assert np.isnan(ds.pm25.values[:, 16:, :]).all() and np.isnan(ds.coef.values).all()
    assert ds.source.dtype == np.int8 and (ds.source.values[16:, :] == -1).all()
    assert (ds.source.values[tile.rows, tile.cols] == 1).all()
