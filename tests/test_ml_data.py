"""The U-ConvLSTM's samples: held-out holes, loss weights, the validation split, determinism, sharding."""
import numpy as np
import pytest

from conftest import requires_torch
from ml_scenes import small_scene

pytestmark = requires_torch


@pytest.fixture(scope="module")
def data():
    from ihs_hpc.ml.data import SplitSpec, StageData

    return StageData(small_scene(), SplitSpec(seed=0, block=16, fraction=0.25))


def test_hole_shapes_are_the_ihs_areas_moved_to_the_origin():
    from ihs_hpc.ml.holes import hole_shapes, place_shape

    nx = 20
    members = [np.array([21, 22, 41, 42, 43]), np.array([5, 6]), np.array([100, 101, 120, 121, 140])]
    offsets = np.array([0, 5, 7, 12])
    shapes = hole_shapes(offsets, np.concatenate(members), nx, min_pixels=4)
    assert len(shapes) == 2  # the 2-pixel area is too small to be a hole
    for shape, m in zip(shapes, [members[0], members[2]]):
        rows, cols = np.divmod(m, nx)
        mask = np.zeros((10, nx), dtype=bool)
        place_shape(mask, shape, rows.min(), cols.min())
        assert set(np.flatnonzero(mask.ravel())) == set(m.tolist())


def test_validation_split_is_seeded_and_disjoint_from_training(data):
    from ihs_hpc.ml.holes import validation_blocks

    a = validation_blocks((48, 64), 16, 0.25, seed=0)
    assert np.array_equal(a, validation_blocks((48, 64), 16, 0.25, seed=0))
    assert not np.array_equal(a, validation_blocks((48, 64), 16, 0.25, seed=1))
    assert a.sum() == 3 * 16 * 16  # 12 blocks, a quarter of them
    assert data.val_year == 2021
    assert data.scored.any()
    assert not (data.scored & ~data.hidden).any()
    assert not (data.scored & ~data.blocks).any()
    assert not (data.scored & data.scene.ihs_union).any()
    assert not (data.trainable & (data.blocks | data.scene.ihs_union)).any()


def test_samples_are_deterministic_and_never_target_ihs_or_validation_pixels(data):
    from ihs_hpc.ml.data import HolePatches

    ds = HolePatches(data, 64, 4, data.patch_size(32, 16), seed=7, max_holes=3)
    again = HolePatches(data, 64, 4, data.patch_size(32, 16), seed=7, max_holes=3)
    other = HolePatches(data, 64, 4, data.patch_size(32, 16), seed=8, max_holes=3)
    n_weighted = 0
    for i in (0, 5, 63, 17):  # any order
        x, y, w = ds[i]
        x2, y2, w2 = again[i]
        assert np.array_equal(x.numpy(), x2.numpy()) and np.array_equal(w.numpy(), w2.numpy())
        t0, rows, cols, cut, weight = ds.sample_window(i)
        assert data.val_year_index not in data.scene.day_year[t0:t0 + 4]
        assert np.array_equal(w.numpy() > 0, weight)
        assert not (weight & ~cut).any()
        assert not (weight & data.scene.ihs_union[rows, cols]).any()
        assert not (weight & data.blocks[rows, cols]).any()
        # a held-out pixel is hidden on every day of the sequence: value 0, mask 1, no context mean
        hid = x.numpy()[:, 1] > 0.5
        assert hid[:, weight].all()
        assert (x.numpy()[:, 0][:, weight] == 0).all() and (x.numpy()[:, 3][:, weight] == 0).all()
        n_weighted += int(weight.sum())
    assert n_weighted > 0
    assert not np.array_equal(ds[0][0].numpy(), other[0][0].numpy())


def test_changing_ihs_pixel_targets_leaves_the_loss_unchanged():
    """IHS pixels are hidden inputs and weight-0 targets: any value there gives the same loss."""
    import torch

    from ihs_hpc.ml.data import HolePatches, SplitSpec, StageData, masked_mse
    from ihs_hpc.ml.model import ModelSpec, build_model

    scene = small_scene(holes="union")
    data = StageData(scene, SplitSpec(seed=0, block=16, fraction=0.25))
    model = build_model(ModelSpec(widths=(4, 4, 4, 8), base_fill=False), seed=0)
    ds = HolePatches(data, 8, 4, data.patch_size(32, 16), seed=1)

    def loss_of(dataset):
        x, y, w = (torch.stack(t) for t in zip(*[dataset[i] for i in range(8)]))
        with torch.no_grad():
            return float(masked_mse(model(x), y, w))

    base = loss_of(ds)
    changed = scene.values.copy()
    changed[:, scene.ihs_union] = np.random.default_rng(1).normal(500, 100, (scene.n_days, scene.ihs_union.sum()))
    scene_ihs = small_scene(holes="union")
    scene_ihs.values = changed
    data_ihs = StageData(scene_ihs, SplitSpec(seed=0, block=16, fraction=0.25), norm=data.norm)
    assert loss_of(HolePatches(data_ihs, 8, 4, data.patch_size(32, 16), seed=1)) == base
    # ... while changing held-out background targets does change it (the test can fail)
    t0, rows, cols, cut, weight = ds.sample_window(0)
    bumped = scene.values.copy()
    block = bumped[t0:t0 + 4, rows, cols]
    block[:, weight] += 50.0
    bumped[t0:t0 + 4, rows, cols] = block
    scene_bg = small_scene(holes="union")
    scene_bg.values = bumped
    data_bg = StageData(scene_bg, SplitSpec(seed=0, block=16, fraction=0.25), norm=data.norm)
    assert loss_of(HolePatches(data_bg, 8, 4, data.patch_size(32, 16), seed=1)) != base
    # and at the loss itself: targets under weight 0 do not enter
    x, y, w = ds[0]
    pred = torch.randn_like(y)[None]
    y2 = y.clone()
    y2[:, w == 0] = 1e6
    assert float(masked_mse(pred, y[None], w[None])) == float(masked_mse(pred, y2[None], w[None]))


def test_distributed_sampler_shards_are_the_single_rank_batch(data):
    """2 ranks x batch b see exactly the samples of 1 rank x batch 2b, step by step."""
    from torch.utils.data import DataLoader, DistributedSampler

    from ihs_hpc.ml.data import HolePatches

    ds = HolePatches(data, 24, 3, data.patch_size(32, 16), seed=2)
    one = [w.numpy() for _, _, w in DataLoader(ds, batch_size=4, shuffle=False)]
    ranks = [list(DataLoader(ds, batch_size=2, sampler=DistributedSampler(ds, 2, r, shuffle=False)))
             for r in range(2)]
    for step, batch in enumerate(one):
        both = np.concatenate([ranks[0][step][2].numpy(), ranks[1][step][2].numpy()])
        assert sorted(map(bytes, both)) == sorted(map(bytes, batch))
    # worker processes give the same samples as the main process
    forked = [w.numpy() for _, _, w in DataLoader(ds, batch_size=4, shuffle=False, num_workers=2)]
    assert all(np.array_equal(a, b) for a, b in zip(one, forked))


def test_normalisation_and_context_use_training_background_only(data):
    scene = data.scene
    train = scene.day_year != data.val_year_index
    vals = scene.values[train].astype(np.float64)
    visible = ~scene.year_holes[scene.day_year[train]]
    bg = visible & ~scene.ihs_union[None]
    assert data.norm.mean == pytest.approx(vals[bg].mean(), rel=1e-9)
    assert data.norm.std == pytest.approx(vals[bg].std(), rel=1e-7)
    with np.errstate(invalid="ignore"):
        ctx = np.where(visible, vals, 0).sum(0) / visible.sum(0)
    np.testing.assert_allclose(data.context, ctx, rtol=1e-9)
    # pixels of the source that started in 2020 were background in 2019: they have a context mean
    first_year_only = ~scene.year_holes[0] & scene.year_holes[1]
    assert first_year_only.any() and np.isfinite(data.context[first_year_only]).all()
    assert np.isnan(data.context[scene.year_holes[0] & scene.year_holes[1]]).all()
