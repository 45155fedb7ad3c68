"""Tiled inference with blended overlaps, and the held-out evaluation's scores and its blindness to hidden values."""
import numpy as np
import pytest

from conftest import requires_torch
from ml_scenes import small_scene

pytestmark = requires_torch


@pytest.mark.parametrize("length,window,overlap", [(160, 64, 16), (128, 128, 32), (50, 64, 8), (661, 256, 32)])
def test_windows_cover_the_region_with_the_overlap(length, window, overlap):
    from ihs_hpc.ml.infer import taper, window_starts

    starts = window_starts(length, window, overlap)
    size = min(window, length)
    covered = np.zeros(length, dtype=int)
    weight = np.zeros(length)
    for s in starts:
        covered[s:s + size] += 1
        weight[s:s + size] += taper(s, size, length, overlap)
    assert starts[0] == 0 and starts[-1] + size == length
    assert (covered >= 1).all()
    assert all(b - a <= size - overlap for a, b in zip(starts, starts[1:]))
    assert (weight > 0).all()


def test_blended_windows_equal_the_whole_region_for_a_pointwise_predictor():
    """Weights are normalised: a predictor without spatial context gives the same map tiled or not."""
    from ihs_hpc.ml.infer import predict_region

    rng = np.random.default_rng(0)
    field = rng.normal(size=(6, 4, 70, 90)).astype(np.float32)

    def make_inputs(t0, n, rows, cols):
        return field[t0:t0 + n, :, rows, cols]

    def pointwise(x):  # (B, T, C, h, w) -> (B, T, h, w)
        return 2 * x[:, :, 0] - x[:, :, 2] * x[:, :, 3]

    tiled = predict_region(pointwise, make_inputs, (70, 90), 1, 4, window=32, overlap=8, multiple=16)
    whole = pointwise(field[None, 1:5])[0]
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-5)


def test_scores_match_numpy_and_scipy():
    from scipy.stats import pearsonr

    from ihs_hpc.ml.evaluate import scores

    rng = np.random.default_rng(1)
    truth = rng.normal(50, 10, (30, 40))
    fill = truth + rng.normal(1.0, 3.0, truth.shape)
    fill[3, 4] = np.nan
    s = scores(fill, truth)
    ok = np.isfinite(fill)
    assert s["n"] == ok.sum()
    assert s["rmse"] == pytest.approx(np.sqrt(np.mean((fill[ok] - truth[ok]) ** 2)), rel=1e-12)
    assert s["bias"] == pytest.approx(np.mean(fill[ok] - truth[ok]), rel=1e-12)
    assert s["r"] == pytest.approx(pearsonr(fill[ok], truth[ok])[0], rel=1e-12)


def test_model_fill_of_the_validation_holes_never_sees_the_hidden_values():
    from ihs_hpc.ml.data import SplitSpec, StageData
    from ihs_hpc.ml.evaluate import model_fill, validation_truth
    from ihs_hpc.ml.infer import torch_predictor
    from ihs_hpc.ml.model import ModelSpec, build_model

    model = build_model(ModelSpec(widths=(4, 4, 4, 8), base_fill=False), seed=0).eval()
    predict = torch_predictor(model)
    scene = small_scene()
    data = StageData(scene, SplitSpec(seed=0, block=16, fraction=0.25))
    fill = model_fill(predict, data, seq_len=4, window=32, overlap=8, multiple=16)
    truth = validation_truth(data)
    assert fill.shape == truth.shape == (data.val_days.size, data.scored.sum())
    changed = small_scene()
    vals = changed.values.copy()
    rows, cols = np.nonzero(data.hidden)
    vals[data.val_days[:, None], rows[None], cols[None]] += 1000.0
    changed.values = vals
    data2 = StageData(changed, SplitSpec(seed=0, block=16, fraction=0.25), norm=data.norm)
    np.testing.assert_array_equal(model_fill(predict, data2, seq_len=4, window=32, overlap=8, multiple=16), fill)
    assert (validation_truth(data2) - truth).min() == pytest.approx(1000.0, rel=1e-4)
    # a visible pixel next to a hole does change it (the fill uses the background)
    rr, cc = np.nonzero(data.hidden & ~np.roll(data.hidden, 1, axis=1))
    vals2 = scene.values.copy()
    vals2[data.val_days[0]:data.val_days[-1] + 1, rr, cc - 1] += 100.0
    bumped = small_scene()
    bumped.values = vals2
    data3 = StageData(bumped, SplitSpec(seed=0, block=16, fraction=0.25), norm=data.norm)
    assert not np.array_equal(model_fill(predict, data3, seq_len=4, window=32, overlap=8, multiple=16), fill)
