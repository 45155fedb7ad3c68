"""Global Moran's I (seed 000, eq. 13) against esda.Moran: polygon fixtures (St Louis homicides,
NC SIDS, de Smith) read with libpysal, and rasters with libpysal lattice weights."""
from __future__ import annotations

import warnings

import libpysal
import numpy as np
import pytest
from esda.moran import Moran
from libpysal.weights import lat2W, w_subset

from ihs_hpc.stats import MoranResult, morans_i, morans_i_weights

RTOL = 1e-7
FIELDS = ["I", "EI", "VI_norm", "seI_norm", "z_norm", "p_norm", "VI_rand", "seI_rand", "z_rand",
          "p_rand", "n"]


@pytest.fixture(autouse=True)
def _quiet_libpysal():
    # libpysal warns (and prints) about islands and disconnected components
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _esda(y, w, transformation="r", two_tailed=True):
    return Moran(y, w, transformation=transformation, permutations=0, two_tailed=two_tailed)


def _assert_matches_esda(res, ref):
    assert isinstance(res, MoranResult)
    for name in FIELDS:
        np.testing.assert_allclose(getattr(res, name), getattr(ref, name), rtol=RTOL, err_msg=name)
    for name in ("s0", "s1", "s2"):
        np.testing.assert_allclose(getattr(res, name), getattr(ref.w, name), rtol=RTOL,
                                   err_msg=name)


def _csr(w):
    """CSR arrays of a libpysal W with its original (untransformed) weights, in id_order."""
    w.transform = "O"
    sparse = w.sparse.tocsr()
    return sparse.indptr, sparse.indices, sparse.data


def _gal(fixtures, name):
    return libpysal.io.open(str(fixtures / "esda_moran" / name)).read()


def _raster_weights(raster, contiguity):
    """libpysal lattice weights restricted to the non-NaN cells (row-major ids)."""
    w = lat2W(*raster.shape, rook=(contiguity == "rook"))
    ids = np.flatnonzero(~np.isnan(raster.ravel())).tolist()
    return w_subset(w, ids, silence_warnings=True), raster.ravel()[ids]


def test_stl_homicides(reference_fixtures):
    table = libpysal.io.open(str(reference_fixtures / "esda_moran" / "stl_stl_hom.txt"))
    y = np.array(table.by_col["HR8893"])
    w = _gal(reference_fixtures, "stl_stl.gal")
    res = morans_i_weights(y, *_csr(w), transform="r", two_tailed=False)
    _assert_matches_esda(res, _esda(y, _gal(reference_fixtures, "stl_stl.gal"), two_tailed=False))
    # esda's own test suite (esda/tests/test_moran.py::TestMoran::test_moran)
    np.testing.assert_allclose(res.I, 0.24365582621771659, rtol=RTOL)
    np.testing.assert_allclose(res.p_norm, 0.00013573931385468807, rtol=RTOL)


def test_nc_sids(reference_fixtures):
    table = libpysal.io.open(str(reference_fixtures / "esda_moran" / "sids2_sids2.dbf"))
    y = np.array(table.by_col("SIDR74"))
    w = _gal(reference_fixtures, "sids2_sids2.gal")
    res = morans_i_weights(y, *_csr(w), two_tailed=False)
    _assert_matches_esda(res, _esda(y, _gal(reference_fixtures, "sids2_sids2.gal"),
                                    two_tailed=False))
    # esda's own test suite (test_moran.py::TestMoran::test_sids)
    np.testing.assert_allclose(res.I, 0.24772519320480135, rtol=RTOL)
    np.testing.assert_allclose(res.p_norm, 5.7916539074498452e-05, rtol=RTOL)
    binary = morans_i_weights(y, *_csr(w), transform="b")
    _assert_matches_esda(binary, _esda(y, _gal(reference_fixtures, "sids2_sids2.gal"), "b"))


def test_desmith_with_missing_value(reference_fixtures):
    table = libpysal.io.open(str(reference_fixtures / "esda_moran" / "desmith_desmith.txt"))
    y = np.array(table.by_col["z"], dtype=float)
    w = _gal(reference_fixtures, "desmith_desmith.gal")
    _assert_matches_esda(morans_i_weights(y, *_csr(w)), _esda(y, w))
    # a missing observation is dropped with its links, as libpysal.weights.w_subset
    y_missing = y.copy()
    y_missing[4] = np.nan
    w = _gal(reference_fixtures, "desmith_desmith.gal")
    keep = [w.id_order[k] for k in range(w.n) if k != 4]
    ref = _esda(np.delete(y, 4), w_subset(w, keep, silence_warnings=True))
    _assert_matches_esda(morans_i_weights(y_missing, *_csr(w)), ref)


def test_lattice_variance_reference():
    """esda's test_variance: 3 x 3 rook lattice, y = 1..9, binary weights."""
    raster = np.arange(1, 10, dtype=float).reshape(3, 3)
    res = morans_i(raster, contiguity="rook", transform="b")
    np.testing.assert_allclose(res.VI_rand, 0.059687500000000004, rtol=RTOL)
    np.testing.assert_allclose(res.VI_norm, 0.053125000000000006, rtol=RTOL)
    _assert_matches_esda(res, _esda(raster.ravel(), lat2W(3, 3), "b"))


@pytest.mark.parametrize("contiguity", ["rook", "queen"])
@pytest.mark.parametrize("transform", ["r", "B"])
@pytest.mark.parametrize("shape,missing,smooth", [((7, 9), 0.0, False), ((30, 41), 0.25, True),
                                                  ((60, 45), 0.45, False)])
def test_raster_matches_esda(contiguity, transform, shape, missing, smooth):
    rng = np.random.default_rng([shape[0], shape[1], int(missing * 100)])
    raster = rng.gamma(2.0, 10.0, size=shape)
    if smooth:  # positive autocorrelation
        raster = raster + np.cumsum(rng.normal(size=shape), axis=1) * 5
    raster[rng.random(shape) < missing] = np.nan
    w, y = _raster_weights(raster, contiguity)
    res = morans_i(raster, contiguity=contiguity, transform=transform)
    _assert_matches_esda(res, _esda(y, w, transform))
    assert res.n_islands == len(w.islands)


def test_islands_kept_as_observations():
    raster = np.array([[5.0, np.nan, 1.0, 2.0],
                       [np.nan, np.nan, 3.0, 4.0],
                       [0.5, 2.5, 3.5, np.nan]])
    w, y = _raster_weights(raster, "rook")
    assert len(w.islands) == 1
    res = morans_i(raster, contiguity="rook")
    assert res.n == 8 and res.n_islands == 1
    _assert_matches_esda(res, _esda(y, w))


def test_stack_of_rasters_and_one_tailed():
    rng = np.random.default_rng(21)
    stack = rng.normal(size=(2, 3, 12, 15))
    stack[1, 2, :4, :4] = np.nan
    res = morans_i(stack, two_tailed=False)
    assert res.I.shape == (2, 3)
    for idx in np.ndindex(2, 3):
        one = morans_i(stack[idx], two_tailed=False)
        w, y = _raster_weights(stack[idx], "queen")
        ref = _esda(y, w, two_tailed=False)
        for name in FIELDS:
            np.testing.assert_allclose(getattr(res, name)[idx], getattr(one, name), rtol=1e-12)
            np.testing.assert_allclose(getattr(res, name)[idx], getattr(ref, name), rtol=RTOL)


def test_weights_as_given_asymmetric():
    rng = np.random.default_rng(9)
    n = 25
    neighbours = {i: sorted(set(rng.choice(n, size=4, replace=False).tolist()) - {i})
                  for i in range(n)}
    weights = {i: rng.uniform(0.5, 3.0, size=len(neighbours[i])).tolist() for i in range(n)}
    w = libpysal.weights.W(neighbours, weights, silence_warnings=True)
    y = rng.normal(size=n)
    indptr = np.r_[0, np.cumsum([len(neighbours[i]) for i in range(n)])]
    indices = np.concatenate([neighbours[i] for i in range(n)])
    values = np.concatenate([weights[i] for i in range(n)])
    for transform in ("o", "r", "b"):
        res = morans_i_weights(y, indptr, indices, values, transform=transform)
        w.transform = "O"
        _assert_matches_esda(res, _esda(y, w, transform))


@pytest.mark.parametrize("call,error,match", [
    (lambda: morans_i(np.zeros(5)), ValueError, "at least 2 dimensions"),
    (lambda: morans_i(np.zeros((3, 3)), contiguity="bishop"), ValueError, "contiguity"),
    (lambda: morans_i(np.zeros((3, 3)), transform="d"), ValueError, "transform"),
    (lambda: morans_i(np.full((3, 3), np.inf)), ValueError, "finite"),
    (lambda: morans_i_weights([1.0, 2.0], [0, 1], [1]), ValueError, "shape \\(3,\\)"),
    (lambda: morans_i_weights([1.0, 2.0], [0, 2, 1], [1, 0]), ValueError, "non-decreasing"),
    (lambda: morans_i_weights([1.0, 2.0], [0, 1, 2], [1, 2]), ValueError, r"\[0, 2\)"),
    (lambda: morans_i_weights([1.0, 2.0], [0, 1, 2], [1, 0], [1.0]), ValueError, "weights"),
    (lambda: morans_i_weights([1.0, 2.0], [0, 1, 2], [1.0, 0.0]), TypeError, "integers"),
])
def test_invalid_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()
