"""Per-pixel IQR outlier rule (seed 000, section 2.3.1) against a numpy.nanpercentile reference."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ihs_hpc.ops.outliers import iqr_outliers


def reference(cube, factor, axis):
    """Mask of values outside [Q1 - f IQR, Q3 + f IQR] per series, quartiles by nanpercentile."""
    data = np.asarray(cube, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN series
        q1 = np.nanpercentile(data, 25, axis=axis, keepdims=True)
        q3 = np.nanpercentile(data, 75, axis=axis, keepdims=True)
    spread = q3 - q1
    return (data < q1 - factor * spread) | (data > q3 + factor * spread)


def make_cube(rng, shape, series_axis):
    """Heavy-tailed series with NaN gaps, tied values, an all-NaN and a one-value series."""
    data = rng.standard_t(2.5, size=shape) * 10 + 60
    data[rng.random(shape) < 0.15] = np.nan
    moved = np.moveaxis(data, series_axis, -1)
    moved[0, 0, :] = np.nan
    moved[0, 1, :] = np.nan
    moved[0, 1, 3] = 42.0
    moved[1, 0, :] = np.round(moved[1, 0, :] / 10)  # many ties
    moved[1, 1, :5] = moved[1, 1, 5]  # repeated value
    return data


@pytest.mark.parametrize("factor", [1.5, 3.0, 0.0])
def test_last_axis_matches_nanpercentile(factor):
    rng = np.random.default_rng(0)
    cube = make_cube(rng, (9, 11, 97), -1)
    cleaned, removed = iqr_outliers(cube, factor=factor)
    expected = reference(cube, factor, -1)
    np.testing.assert_array_equal(removed, expected)
    np.testing.assert_array_equal(cleaned, np.where(expected, np.nan, cube))
    assert removed.dtype == bool and cleaned.dtype == cube.dtype
    assert removed.sum() > 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_time_first_cube(dtype):
    rng = np.random.default_rng(1)
    cube = make_cube(rng, (120, 7, 45), 0).astype(dtype)  # 315 pixels: several 32-pixel blocks
    cleaned, removed = iqr_outliers(cube, axis=0)
    expected = reference(cube, 1.5, 0)
    np.testing.assert_array_equal(removed, expected)
    np.testing.assert_array_equal(cleaned, np.where(expected, np.nan, cube).astype(dtype))
    assert cleaned.dtype == dtype
    assert removed.sum() > 0
    # same answer as the series-last layout
    _, removed_last = iqr_outliers(np.moveaxis(cube, 0, -1), axis=-1)
    np.testing.assert_array_equal(np.moveaxis(removed, 0, -1), removed_last)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.integers(-5, 5).map(float), st.just(np.nan),
                          st.floats(-1e3, 1e3, allow_nan=False)), min_size=1, max_size=40),
       st.sampled_from([0.5, 1.5, 3.0]))
def test_property_single_series(values, factor):
    series = np.array(values, dtype=np.float64)
    cleaned, removed = iqr_outliers(series, factor=factor)
    expected = reference(series, factor, -1)
    np.testing.assert_array_equal(removed, expected)
    np.testing.assert_array_equal(cleaned, np.where(expected, np.nan, series))


def test_errors_name_the_argument():
    cube = np.zeros((3, 4, 5))
    with pytest.raises(ValueError, match="axis must be the first"):
        iqr_outliers(cube, axis=1)
    with pytest.raises(ValueError, match="factor must be"):
        iqr_outliers(cube, factor=-1)
    with pytest.raises(ValueError, match="out of range"):
        iqr_outliers(cube, axis=3)


# ---------------------------------------------------------------------------------------------- residual rule
def residual_reference(series, factor, window):
    """The residual rule written out with pandas and numpy: running median, IQR of residuals, and a day
    that stands out from both neighbouring valid days by more than factor x IQR."""
    import pandas as pd

    med = pd.Series(series).rolling(window, center=True, min_periods=1).median().to_numpy()
    res = series - med
    out = np.zeros(series.size, dtype=bool)
    valid = np.flatnonzero(np.isfinite(res))
    if valid.size < 3:
        return out
    q1, q3 = np.percentile(res[valid], [25, 75])
    limit = factor * (q3 - q1)
    for k, t in enumerate(valid):
        a = res[valid[k - 1]] if k > 0 else res[valid[k + 1]]
        b = res[valid[k + 1]] if k < valid.size - 1 else res[valid[k - 1]]
        out[t] = (res[t] - max(a, b) > limit) or (min(a, b) - res[t] > limit)
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), length=st.integers(1, 90), half=st.integers(1, 20),
       nan_share=st.sampled_from([0.0, 0.1, 0.5, 0.95]), ties=st.booleans())
def test_running_median_equals_pandas_rolling_median(seed, length, half, nan_share, ties):
    """The sliding sorted window gives pandas' centred rolling median to the bit: NaN gaps (windows
    with no valid day), tied values, windows longer than the series."""
    import pandas as pd

    from ihs_hpc.kernels.outliers import running_median

    rng = np.random.default_rng(seed)
    series = rng.integers(0, 5, length).astype(float) if ties else rng.standard_t(3, length) * 10 + 50
    series[rng.random(length) < nan_share] = np.nan
    out = np.empty(length)
    running_median(series, half, np.empty(2 * half + 1), out)
    expected = pd.Series(series).rolling(2 * half + 1, center=True, min_periods=1).median().to_numpy()
    np.testing.assert_array_equal(out, expected)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), factor=st.sampled_from([0.5, 1.5, 3.0]), window=st.sampled_from([3, 7, 31]))
def test_residual_rule_matches_pandas_reference(seed, factor, window):
    from ihs_hpc.ops.outliers import residual_outliers

    rng = np.random.default_rng(seed)
    data = rng.standard_t(3, size=(5, 120)) * 5 + 50 + 20 * np.sin(np.arange(120) / 10)
    data[rng.random(data.shape) < 0.1] = np.nan
    data[0] = np.nan
    data[1, 2:] = np.nan
    cleaned, removed = residual_outliers(data, factor=factor, window=window)
    for p in range(data.shape[0]):
        expected = residual_reference(data[p], factor, window)
        np.testing.assert_array_equal(removed[p], expected, err_msg=f"series {p}")
    np.testing.assert_array_equal(cleaned, np.where(removed, np.nan, data))


def test_residual_rule_removes_spikes_and_keeps_episodes_and_seasons():
    from ihs_hpc.ops.outliers import residual_outliers

    t = np.arange(730)
    rng = np.random.default_rng(2)
    series = 60 + 30 * np.cos(2 * np.pi * t / 365) + rng.normal(0, 3, t.size)
    series[100] *= 4.0                      # an isolated spike
    series[300] = 1.0                       # an isolated drop-out
    series[500:505] += 60.0                 # a five-day episode
    cube = np.stack([series, series[::-1]]).T  # (time, 2): the time-first layout of prep
    _, removed = residual_outliers(cube, factor=3.0, window=31, axis=0)
    assert removed[100, 0] and removed[300, 0] and not removed[500:505, 0].any()
    assert removed[:, 0].sum() == 2 and removed[:, 1].sum() == 2
    # the paper's rule on the raw series cuts the high season instead
    _, raw = iqr_outliers(cube, factor=1.5, axis=0)
    assert not raw[300, 0]


def test_residual_rule_arguments():
    from ihs_hpc.ops.outliers import residual_outliers

    with pytest.raises(ValueError, match="window"):
        residual_outliers(np.zeros((3, 10)), window=4)
    with pytest.raises(ValueError, match="factor"):
        residual_outliers(np.zeros((3, 10)), factor=-1)
    with pytest.raises(ValueError, match="shared must be"):
        residual_outliers(np.zeros((10, 3, 3)), shared=1.5)
    with pytest.raises(ValueError, match="3-D cube"):
        residual_outliers(np.zeros((3, 10)), shared=0.25)


# ---------------------------------------------------------------------------------------------- neighbour test
def shared_reference(cube, factor, window, share):
    """The neighbour test written out with pandas and numpy on a (time, ny, nx) cube: each flagged day of
    the per-pixel rule stays when at least two of its neighbours' same-direction jumps that day reach
    ``share`` times its own."""
    import pandas as pd

    n_t, ny, nx = cube.shape
    flagged = np.zeros(cube.shape, dtype=bool)
    up = np.full(cube.shape, np.nan)
    down = np.full(cube.shape, np.nan)
    for i in range(ny):
        for j in range(nx):
            series = cube[:, i, j]
            flagged[:, i, j] = residual_reference(series, factor, window)
            res = (series - pd.Series(series).rolling(window, center=True, min_periods=1).median().to_numpy())
            res = res.astype(np.float32).astype(np.float64)  # the kernel keeps residuals in float32
            valid = np.flatnonzero(np.isfinite(res))
            for k, t in enumerate(valid):
                if valid.size < 2:
                    break
                a = res[valid[k - 1]] if k > 0 else res[valid[k + 1]]
                b = res[valid[k + 1]] if k < valid.size - 1 else res[valid[k - 1]]
                up[t, i, j], down[t, i, j] = res[t] - max(a, b), min(a, b) - res[t]
    removed = flagged.copy()
    for t, i, j in zip(*np.nonzero(flagged)):
        upward = up[t, i, j] >= down[t, i, j]
        own = (up if upward else down)[t, i, j]
        neighbours = [(up if upward else down)[t, a, b] for a in range(i - 1, i + 2) for b in range(j - 1, j + 2)
                      if (a, b) != (i, j) and 0 <= a < ny and 0 <= b < nx]
        if np.count_nonzero(np.asarray(neighbours) >= share * own) >= 2:
            removed[t, i, j] = False
    return removed


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), share=st.sampled_from([0.0, 0.25, 0.6]))
def test_neighbour_test_matches_numpy_reference(seed, share):
    from ihs_hpc.ops.outliers import residual_outliers

    rng = np.random.default_rng(seed)
    n_t, ny, nx = 150, 5, 6
    t = np.arange(n_t)[:, None, None]
    cube = 50 + 20 * np.sin(t / 12) + rng.standard_t(3, size=(n_t, ny, nx)) * 4
    for day in rng.choice(n_t, 6, replace=False):     # regional one-day episodes over a few pixels
        i, j = rng.integers(0, ny - 1), rng.integers(0, nx - 1)
        cube[day, i:i + 3, j:j + 3] += rng.uniform(30, 80)
    cube[rng.random(cube.shape) < 0.02] *= 4           # single-pixel spikes
    cube[rng.random(cube.shape) < 0.05] = np.nan
    cube[:, 0, 0] = np.nan                             # an empty pixel among the neighbours
    cleaned, removed = residual_outliers(cube, factor=3.0, window=15, axis=0, shared=share)
    np.testing.assert_array_equal(removed, shared_reference(cube, 3.0, 15, share))
    np.testing.assert_array_equal(cleaned, np.where(removed, np.nan, cube))
    # the series-last layout gives the same answer
    _, last = residual_outliers(np.moveaxis(cube, 0, -1), factor=3.0, window=15, axis=-1, shared=share)
    np.testing.assert_array_equal(np.moveaxis(last, -1, 0), removed)


def test_neighbour_test_keeps_regional_episodes_and_removes_spikes():
    """A one-day regional episode (a smooth bump over the whole 9 x 9 window) is flagged pixel by pixel,
    and kept when the neighbours' jumps are consulted; a single pixel's spike on the same day is removed
    either way."""
    from ihs_hpc.ops.outliers import residual_outliers

    rng = np.random.default_rng(5)
    n_t = 365
    cube = 60 + 25 * np.cos(2 * np.pi * np.arange(n_t) / 365)[:, None, None] + rng.normal(0, 3, (n_t, 9, 9))
    rows, cols = np.mgrid[0:9, 0:9]
    cube[200] += 70.0 * np.exp(-((rows - 4) ** 2 + (cols - 3) ** 2) / 18.0)  # a regional one-day episode
    cube[200, 7, 7] *= 4.0               # a spike the neighbours do not share
    cube[90, 4, 4] *= 4.0                # and one on another day, inside the episode's pixels
    _, alone = residual_outliers(cube, factor=3.0, window=31, axis=0)
    _, shared = residual_outliers(cube, factor=3.0, window=31, axis=0, shared=0.25)
    assert alone[200, 2:7, 1:6].all()                    # judged alone, the episode goes
    assert not shared[200, :7].any() and not shared[200, 7:, :7].any()  # its neighbours share it: it stays
    assert shared[200, 7, 7] and shared[90, 4, 4]        # the spikes go
    assert np.argwhere(shared[200]).tolist() == [[7, 7]]
    assert not (shared & ~alone).any()                   # the test only ever keeps a flagged day


def test_prep_tiles_read_a_halo_so_the_tiling_does_not_change_the_answer(tmp_path):
    """prep's per-tile outlier step with the neighbour test gives, tile by tile (16 x 16 tiles of a 40 x 52
    grid, partial edge tiles), the mask of the rule applied to the whole cube at once."""
    import pandas as pd
    import zarr

    from ihs_hpc.grid import Grid
    from ihs_hpc.io.cube import create_store, cube_spec, map_spec, write_tile
    from ihs_hpc.ops.outliers import residual_outliers
    from ihs_hpc.pipeline.prep import iqr_tile

    grid = Grid(36.0, 36.40, 114.0, 114.52)
    time = pd.date_range("2019-01-01", periods=120, freq="D")
    rng = np.random.default_rng(11)
    cube = (50 + rng.standard_t(3, size=(time.size,) + grid.shape) * 4).astype(np.float32)
    rows, cols = np.mgrid[0:grid.shape[0], 0:grid.shape[1]]
    for day, (r, c) in zip((20, 60, 90), ((15, 16), (31, 47), (0, 30))):  # episodes across tile edges
        cube[day] += (60 * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / 30.0)).astype(np.float32)
    cube[rng.random(cube.shape) < 0.01] *= 4
    cubes = create_store(tmp_path / "in.zarr", grid, {"pm25": cube_spec("ug m-3", "PM2.5")}, tile_size=16, time=time)
    for tile in grid.tiles(16):
        write_tile(cubes, tile, {"pm25": cube[:, tile.rows, tile.cols]})
    out = create_store(tmp_path / "out.zarr", grid, {"pm25_clean": cube_spec("ug m-3", "clean"),
                                                     "n_outliers": map_spec("1", "n", dtype="int32"),
                                                     "n_missing_input": map_spec("1", "n", dtype="int32")},
                       tile_size=16, time=time)
    for tile in grid.tiles(16):
        iqr_tile(tile, cubes=cubes, out=out, factor=3.0, rule="residual", window=15, shared=0.25)
    whole, removed = residual_outliers(cube, factor=3.0, window=15, axis=0, shared=0.25)
    tiled = zarr.open_group(out, mode="r")
    np.testing.assert_array_equal(np.isnan(tiled["pm25_clean"][:]), removed)
    np.testing.assert_array_equal(tiled["n_outliers"][:], removed.sum(0))
    # the episode on the corner of four tiles is flagged pixel by pixel and kept by the neighbour test
    _, alone = residual_outliers(cube, factor=3.0, window=15, axis=0)
    assert alone[20, 14:18, 15:18].all() and not removed[20, 14:18, 15:18].any()
