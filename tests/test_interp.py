"""ihs_hpc.ops.interp, the one bilinear interpolation (stage 2, ERA5 ingest, synthetic met and terrain)."""
import numpy as np
import pytest
from scipy.interpolate import RegularGridInterpolator

from ihs_hpc.ops.interp import CoverageError, apply_bilinear, axis_weights, bilinear_weights, corner_weights


def test_scattered_points_equal_scipy_and_the_grid_version():
    rng = np.random.default_rng(2)
    lat = np.linspace(42.5, 36.0, 14)  # descending, like the grids of the package
    lon = np.linspace(113.0, 120.0, 11)
    values = rng.normal(size=(3, lat.size, lon.size))
    qy, qx = rng.uniform(36.0, 42.5, (5, 7)), rng.uniform(113.0, 120.0, (5, 7))
    iy, wy = axis_weights(lat, qy, name="latitude")
    ix, wx = axis_weights(lon, qx, name="longitude")
    index, weight = corner_weights(iy, wy, ix, wx, lon.size)
    got = apply_bilinear(values, index, weight).reshape(3, 5, 7)
    ref = RegularGridInterpolator((lat[::-1], lon), values[:, ::-1].transpose(1, 2, 0))(np.stack([qy, qx], -1))
    np.testing.assert_allclose(got, np.moveaxis(ref, -1, 0), rtol=1e-12)
    # targets on a grid: scattered points at the grid's nodes give the same numbers, bit for bit
    gy, gx = np.meshgrid(qy[:, 0], qx[0], indexing="ij")
    points = corner_weights(*axis_weights(lat, gy), *axis_weights(lon, gx), lon.size)
    np.testing.assert_array_equal(apply_bilinear(values, *bilinear_weights(lat, lon, qy[:, 0], qx[0])),
                                  apply_bilinear(values, *points))


def test_descending_axis_gives_the_mirrored_ascending_weights_exactly():
    src = np.round(np.arange(36.05, 42.6, 0.1), 6)
    dst = np.arange(36.055, 42.5, 0.01)
    left_up, w_up = axis_weights(src, dst)
    left_down, w_down = axis_weights(src[::-1], dst)
    # src[::-1][left_down] is the upper neighbour: its weight is 1 - w_up, and the index mirrors
    np.testing.assert_array_equal(src.size - 2 - left_down, left_up)
    np.testing.assert_allclose(w_down, 1 - w_up, rtol=0, atol=1e-12)


def test_aligned_targets_are_copied_and_nan_corners_skipped():
    src = np.array([40.0, 39.9, 39.8]) + 1e-12  # coordinate dust of an aligned grid
    _, w = axis_weights(src, np.array([39.9, 39.8]), tolerance=1e-6)
    assert set(np.unique(w)) <= {0.0, 1.0}
    values = np.array([[1.0, 2.0], [3.0, np.nan]])
    index, weight = bilinear_weights([40.0, 39.0], [116.0, 117.0], [39.5], [116.5])
    assert np.isnan(apply_bilinear(values, index, weight))[0]
    assert apply_bilinear(values, index, weight, skipna=True)[0] == pytest.approx(2.0)
    assert np.isnan(apply_bilinear(np.full((2, 2), np.nan), index, weight, skipna=True))[0]


def test_errors_name_the_axis():
    with pytest.raises(CoverageError, match="latitude: target range 37.0000"):
        bilinear_weights([36.5, 36.4], [114.0, 114.1], [37.0], [114.05])
    with pytest.raises(ValueError, match="source longitude coordinates are not monotonic"):
        bilinear_weights([36.5, 36.4], [114.0, 114.2, 114.1], [36.45], [114.05])
    with pytest.raises(ValueError, match="the source latitude axis has 1 value"):
        axis_weights([36.5], [36.5], name="latitude")
