"""Linear-operator path of non-robust STL (ihs_hpc.ops.stl_operator): exactness, caching, backends."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from conftest import requires_torch

from ihs_hpc.ops import stl_apply
from ihs_hpc.ops import stl_operator as so
from ihs_hpc.ops.stl import stl, stl_baseline, stl_settings


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Every test gets an empty operator cache (disk and memory)."""
    monkeypatch.setenv("IHS_CACHE_DIR", str(tmp_path / "cache"))
    so.clear_operator_cache()
    yield tmp_path / "cache" / "stl_operators"
    so.clear_operator_cache()


def _series(shape, period, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(shape[-1])
    return 20 + 5 * np.sin(2 * np.pi * t / period) + 0.05 * t + rng.normal(0, 2, shape)


CASES = [  # (n, period, settings): odd/even n, jumps (non-symmetric operators), degrees, windows
    (50, 7, {}),
    (51, 7, dict(seasonal=9)),
    (36, 6, dict(seasonal_deg=0, trend_deg=0, low_pass_deg=0)),
    (45, 12, dict(seasonal=11, trend=25, low_pass=13, inner_iter=2)),
    (40, 5, dict(seasonal_jump=2, trend_jump=3, low_pass_jump=2)),
    (33, 4, dict(trend_jump=2)),
]


@pytest.mark.parametrize("n, period, settings", CASES)
def test_operator_path_equals_direct_path(n, period, settings):
    x = _series((3, 5, n), period)
    direct = stl(x, period, method="direct", **settings)
    oper = stl(x, period, method="operator", **settings)
    assert oper.method == "operator" and direct.method == "direct"
    scale = np.abs(x).max()
    for a, b in [(oper.trend, direct.trend), (oper.seasonal, direct.seasonal), (oper.resid, direct.resid)]:
        assert a.shape == x.shape
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * scale)
    np.testing.assert_array_equal(oper.weights, np.ones_like(x))
    baseline = stl_baseline(x, period, method="operator", **settings)
    np.testing.assert_allclose(baseline, direct.baseline, rtol=0, atol=1e-12 * scale)
    op = so.get_stl_operator(n, period, **settings)
    unit_jumps = all(settings.get(k, 1) == 1 for k in ("seasonal_jump", "trend_jump", "low_pass_jump"))
    assert op.symmetric == unit_jumps


def test_float32_input():
    x = _series((4, 60), 12).astype(np.float32)
    direct = stl(x, 12, method="direct")
    oper = stl(x, 12, method="operator")
    assert oper.trend.dtype == np.float32 and oper.seasonal.dtype == np.float32
    # both computed in float64 and rounded once: equal up to one float32 rounding step
    np.testing.assert_allclose(oper.trend, direct.trend, rtol=2 ** -22)
    np.testing.assert_allclose(oper.seasonal, direct.seasonal, rtol=0, atol=2 ** -22 * np.abs(x).max())
    bl = stl_baseline(x, 12, method="operator")
    assert bl.dtype == np.float32
    np.testing.assert_allclose(bl, direct.baseline, rtol=0, atol=2 ** -21 * np.abs(x).max())


@pytest.mark.parametrize("n", [40, 41])
def test_dense_operators(n):
    x = _series((6, n), 5, seed=1)
    trend_op, season_op = so.stl_operators(n, 5)
    base_op = so.baseline_operator(n, 5)
    ref = stl(x, 5, method="direct")
    np.testing.assert_allclose(x @ trend_op.T, ref.trend, rtol=0, atol=1e-12 * np.abs(x).max())
    np.testing.assert_allclose(x @ season_op.T, ref.seasonal, rtol=0, atol=1e-12 * np.abs(x).max())
    np.testing.assert_allclose(base_op, trend_op + season_op, rtol=0, atol=1e-15)
    # all jumps 1: STL commutes with time reversal, so the operators are centrosymmetric
    np.testing.assert_allclose(base_op, base_op[::-1, ::-1], rtol=0, atol=1e-13)
    # trend + seasonal of a constant reproduce it (loess with local linear fits is exact on lines)
    np.testing.assert_allclose(base_op @ np.full(n, 3.0), 3.0, rtol=1e-12)


def test_apply_outputs_and_shapes():
    x = _series((2, 3, 44), 4)
    ref = stl(x, 4, method="direct")
    for output, expected in [("baseline", ref.baseline), ("trend", ref.trend), ("seasonal", ref.seasonal)]:
        got = stl_apply.apply_stl_operator(x, 4, output=output)
        assert got.shape == x.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(x).max())
    trend, seasonal = stl_apply.apply_stl_operator(x.tolist(), 4, output="trend_seasonal")
    np.testing.assert_allclose(trend, ref.trend, rtol=0, atol=1e-12 * np.abs(x).max())
    np.testing.assert_allclose(seasonal, ref.seasonal, rtol=0, atol=1e-12 * np.abs(x).max())
    with pytest.raises(ValueError, match="output must be one of"):
        stl_apply.apply_stl_operator(x, 4, output="resid")


def test_cache_written_then_hit(cache_dir):
    before = so.operator_cache_info()
    so.get_stl_operator(30, 6, seasonal=9)
    info = so.operator_cache_info()
    assert info["builds"] == before["builds"] + 1
    files = sorted(p.name for p in cache_dir.iterdir())
    assert len(files) == 2 and files[0].endswith(".seasonal.npy") and files[1].endswith(".trend.npy")
    # same settings spelled differently (defaults made explicit) share the file
    so.clear_operator_cache()
    settings = stl_settings(6, seasonal=9)
    so.get_stl_operator(30, 6, seasonal=9, trend=settings.trend, low_pass=settings.low_pass, inner_iter=5)
    info2 = so.operator_cache_info()
    assert info2["builds"] == info["builds"] and info2["disk_hits"] == info["disk_hits"] + 1
    so.get_stl_operator(30, 6, seasonal=9)
    assert so.operator_cache_info()["memory_hits"] == info2["memory_hits"] + 1
    # other settings or another length: another operator
    so.get_stl_operator(30, 6, seasonal=11)
    so.get_stl_operator(31, 6, seasonal=9)
    assert so.operator_cache_info()["builds"] == info["builds"] + 2
    assert len(list(cache_dir.iterdir())) == 6


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("IHS_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert so.operator_cache_dir() == tmp_path / "elsewhere" / "stl_operators"
    monkeypatch.delenv("IHS_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert so.operator_cache_dir() == tmp_path / "home" / ".cache" / "ihs_hpc" / "stl_operators"


def test_cache_file_written_atomically(cache_dir, monkeypatch):
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        assert os.path.dirname(src) == os.path.dirname(dst)  # same directory: an atomic rename
        assert os.path.exists(src) and not os.path.exists(dst)
        replaced.append((src, dst))
        real_replace(src, dst)

    monkeypatch.setattr(so.os, "replace", spy)
    so.get_stl_operator(24, 4)
    assert [os.path.basename(d).rsplit(".", 2)[1] for _, d in replaced] == ["trend", "seasonal"]
    assert all(not os.path.exists(s) and os.path.exists(d) for s, d in replaced)
    assert not [p for p in cache_dir.iterdir() if p.suffix == ".tmp"]
    # a failed write leaves neither a partial file nor a temp file behind
    so.clear_operator_cache()

    def failing_save(fh, array, allow_pickle=False):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(so.np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        so.get_stl_operator(26, 4)
    assert sorted(p.name for p in cache_dir.iterdir()) == sorted(os.path.basename(d) for _, d in replaced)


def test_corrupt_cache_file_is_rebuilt(cache_dir):
    op = so.get_stl_operator(28, 4)
    trend_file = next(cache_dir.glob("*.trend.npy"))
    trend_file.write_bytes(b"not an npy file")
    so.clear_operator_cache()
    builds = so.operator_cache_info()["builds"]
    again = so.get_stl_operator(28, 4)
    assert so.operator_cache_info()["builds"] == builds + 1
    np.testing.assert_array_equal(again.trend_rows, op.trend_rows)
    assert np.load(trend_file).shape == op.trend_rows.shape


def test_concurrent_requests_build_once():
    from concurrent.futures import ThreadPoolExecutor

    before = so.operator_cache_info()["builds"]
    with ThreadPoolExecutor(4) as pool:
        ops = list(pool.map(lambda _: so.get_stl_operator(40, 5, seasonal=11), range(4)))
    assert so.operator_cache_info()["builds"] == before + 1
    assert all(op is ops[0] for op in ops)


def test_memory_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(so, "MEMORY_CACHE_BYTES", 1)
    so.get_stl_operator(24, 4)
    so.get_stl_operator(25, 4)
    assert so.operator_cache_info()["entries"] == 1


def test_auto_method_choice():
    settings = stl_settings(6)
    n = 48
    x = _series((2, n), 6)
    assert not so.operator_pays(n, 2, settings)  # few series, nothing cached
    assert stl(x, 6).method == "direct"
    assert so.operator_pays(n, n // 8, settings)  # a big enough tile pays for the build
    assert stl(_series((n // 8, n), 6), 6).method == "operator"
    assert stl(x, 6).method == "operator"  # now cached
    so.clear_operator_cache()
    assert so.operator_pays(n, 2, settings)  # cached on disk
    assert not so.operator_pays(n, 10 ** 6, stl_settings(6, robust=True))
    assert stl(x, 6, robust=True).method == "direct"
    # short windows on long series: the kernel is cheaper than an N^2 product
    assert not so.operator_pays(4000, 10 ** 4, stl_settings(7, seasonal=7))


def test_operator_input_errors():
    with pytest.raises(ValueError, match="only for the linear"):
        so.get_stl_operator(40, 5, robust=True)
    with pytest.raises(ValueError, match=r"n must be an integer >= 2 \* period = 10; got n=9"):
        so.baseline_operator(9, 5)
    with pytest.raises(ValueError, match="NaN in 1 of 2 series"):
        stl_apply.apply_stl_operator(np.array([[1.0] * 20, [np.nan] * 20]), 5)
    with pytest.raises(ValueError, match="backend must be one of"):
        stl_apply.apply_stl_operator(np.zeros((1, 20)), 5, backend="cupy")
    with pytest.raises(ValueError, match="needs backend='torch'"):
        stl_apply.apply_stl_operator(np.zeros((1, 20)), 5, backend="numpy", device="cuda")
    with pytest.raises(ValueError, match="component must be"):
        so.get_stl_operator(20, 5).matrix("resid")


def test_torch_backend_request():
    """backend='torch' works when torch is importable and is a clear ImportError when not."""
    x = _series((2, 20), 5)
    if importlib.util.find_spec("torch") is None:
        with pytest.raises(ImportError, match="needs PyTorch"):
            stl_apply.apply_stl_operator(x, 5, backend="torch")
        with pytest.raises(ImportError, match="needs PyTorch"):
            stl_apply.apply_stl_operator(x, 5, device="cpu")
        np.testing.assert_array_equal(stl_apply.apply_stl_operator(x, 5), stl_apply.apply_stl_operator(x, 5, backend="numpy"))
    else:
        np.testing.assert_allclose(stl_apply.apply_stl_operator(x, 5, backend="torch", device="cpu"),
                                   stl_apply.apply_stl_operator(x, 5, backend="numpy"), rtol=0, atol=1e-12 * np.abs(x).max())


@requires_torch
@pytest.mark.parametrize("n, settings", [(50, {}), (51, {}), (40, dict(trend_jump=2))])
def test_torch_matches_numpy(n, settings):
    import torch

    x = _series((3, n), 5)
    ref = stl_apply.apply_stl_operator(x, 5, output="trend_seasonal", backend="numpy", **settings)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        got = stl_apply.apply_stl_operator(x, 5, output="trend_seasonal", backend="torch", device=device, **settings)
        for a, b in zip(got, ref):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(x).max())
        bl = stl_apply.apply_stl_operator(x, 5, backend="torch", device=device, **settings)
        np.testing.assert_allclose(bl, ref[0] + ref[1], rtol=0, atol=1e-12 * np.abs(x).max())


@pytest.mark.parametrize("backend", ["numpy", pytest.param("torch", marks=requires_torch)])
def test_float32_products_against_statsmodels(backend):
    """precision='float32' computes in single precision (an error statsmodels' float64 STL shows, far above
    float64 rounding) that stays within a few float32 ulps of the series' scale; float64 matches statsmodels."""
    from statsmodels.tsa.seasonal import STL

    x = _series((4, 3 * 365), 365, seed=3)
    reference = np.stack([(lambda r: r.trend + r.seasonal)(STL(s, period=365).fit()) for s in x])
    scale = np.abs(x).max()
    devices = ["cpu"]
    if backend == "torch":
        import torch

        devices += ["cuda"] if torch.cuda.is_available() else []
    for device in devices:
        kwargs = {"backend": backend} if backend == "numpy" else {"backend": "torch", "device": device}
        fp64 = stl_baseline(x, 365, method="operator", **kwargs)
        fp32 = stl_baseline(x, 365, method="operator", precision="float32", **kwargs)
        assert fp32.dtype == np.float64
        assert np.abs(fp64 - reference).max() <= 1e-10 * scale
        err32 = np.abs(fp32 - reference).max() / scale
        assert 1e-9 < err32 < 2e-5, err32
    with pytest.raises(ValueError, match="precision must be one of"):
        stl_baseline(x, 365, method="operator", precision="float16")
