"""Bounded memory of the ingest's rechunk and of the synthetic files layout (measured, not assumed)."""
from __future__ import annotations

import tracemalloc

import numpy as np
import psutil
import pytest
import zarr

from ihs_hpc.grid import Grid
from ihs_hpc.io.cube import VarSpec, create_store
from ihs_hpc.io.rechunk import memory_bound_mb, write_daily_cube
from ihs_hpc.synth.scene_store import DayScratch

GRID = Grid(39.0, 39.64, 116.0, 116.64, 0.01)  # 64 x 64: one tile
NAMES = ("t2m", "d2m", "rh", "tp", "sp", "u10", "v10")


class ArraySource:
    """A daily source of seven variables held in memory (the readers' protocol)."""

    name = "met"

    def __init__(self, n_days, seed=0):
        rng = np.random.default_rng(seed)
        self.days = np.datetime64("2012-01-01") + np.arange(n_days).astype("timedelta64[D]")
        self.variables = {v: {"units": "1", "long_name": v} for v in NAMES}
        self.data = {v: rng.standard_normal((n_days,) + GRID.shape).astype(np.float32) for v in NAMES}
        self.nbytes_per_day = len(NAMES) * GRID.size * 4

    def read_days(self, days):
        i0 = int((np.datetime64(days[0]) - self.days[0]).astype(int))
        return {v: self.data[v][i0:i0 + len(days)].copy() for v in NAMES}


def test_pass2_holds_one_variable_of_a_tile_at_a_time(tmp_path):
    n_days = 730
    source = ArraySource(n_days)
    store = tmp_path / "cube.zarr"
    create_store(store, GRID, {v: VarSpec(("time", "lat", "lon"), source.variables[v]) for v in NAMES},
                 tile_size=64, time=source.days)
    one_variable = n_days * GRID.size * 4  # 12 MB; all seven together would be 84 MB
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        write_daily_cube(store, source, GRID, tile_size=64, work_dir=tmp_path / "work", batch_days=16, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3.5 * one_variable, (peak / 2**20, one_variable / 2**20)
    group = zarr.open_group(store, mode="r")
    for v in NAMES:
        np.testing.assert_array_equal(group[v][:], source.data[v], err_msg=v)


def test_memory_bound_terms():
    bound = memory_bound_mb(grid_shape=(660, 630), met_shape=(68, 65), n_days=3653, tile_size=64, n_met=7,
                            batch_days=128, baseline_mb=270.0)
    mib = 2**20
    assert bound["pm25_pass1"] == pytest.approx((128 * 660 * 630 * 4 + 3 * 128 * 64 * 630 * 4) / mib)
    assert bound["pass2"] == pytest.approx(3 * 3653 * 64 * 64 * 4 / mib)
    assert bound["total"] == pytest.approx(270.0 + bound["warmup"] + bound["pm25_pass1"] + bound["slack"])


def test_day_scratch_release_keeps_data_and_returns_pages(tmp_path):
    shape = (64, 256, 512)  # 32 MiB
    scratch = DayScratch(tmp_path / "s.f32", shape)
    rng = np.random.default_rng(3)
    values = rng.standard_normal(shape).astype(np.float32)
    proc = psutil.Process()
    try:
        for r0 in range(0, shape[1], 64):  # by tile-row bands, as the generator writes
            scratch[:, r0:r0 + 64] = values[:, r0:r0 + 64]
        before = proc.memory_info().rss
        scratch.release()
        after = proc.memory_info().rss
        assert before - after > 0.5 * values.nbytes, ((before - after) / 2**20)
        for t in range(shape[0]):
            np.testing.assert_array_equal(scratch[t], values[t])
    finally:
        scratch.close()
