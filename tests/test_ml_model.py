"""The ConvLSTM cell against a hand-written step of eqs. 5–9, and the U-ConvLSTM's shape, padding and base fill."""
import numpy as np
import pytest

from conftest import requires_torch

pytestmark = requires_torch


def _reference_step(cell, x, h, c):
    """Eqs. 5–9 written out gate by gate with separate convolutions (float64)."""
    import torch.nn.functional as F

    n = cell.hidden
    wx, bx, wh = cell.conv_x.weight, cell.conv_x.bias, cell.conv_h.weight
    pad = cell.kernel // 2

    def gate(k):
        sl = slice(k * n, (k + 1) * n)
        return F.conv2d(x, wx[sl], bx[sl], padding=pad) + F.conv2d(h, wh[sl], None, padding=pad)

    i = 1 / (1 + (-(gate(0) + cell.w_ci * c)).exp())                 # (5)
    f = 1 / (1 + (-(gate(1) + cell.w_cf * c)).exp())                 # (6)
    c_new = f * c + i * gate(2).tanh()                               # (7)
    o = 1 / (1 + (-(gate(3) + cell.w_co * c_new)).exp())             # (8)
    h_new = o * c_new.tanh()                                         # (9)
    return h_new, c_new


def test_cell_equals_hand_written_eqs_5_to_9():
    import torch

    from ihs_hpc.ml.convlstm import ConvLSTMCell

    torch.manual_seed(3)
    cell = ConvLSTMCell(3, 5, kernel=3).double()
    with torch.no_grad():  # non-zero peepholes and biases so every term of the equations matters
        for p in (cell.w_ci, cell.w_cf, cell.w_co, cell.conv_x.bias):
            p.copy_(torch.randn_like(p))
    x = torch.randn(4, 2, 3, 9, 11, dtype=torch.float64)
    h = torch.randn(2, 5, 9, 11, dtype=torch.float64)
    c = torch.randn(2, 5, 9, 11, dtype=torch.float64)
    h_ref, c_ref = h, c
    state = (h, c)
    for t in range(4):
        state = cell(x[t], state)
        h_ref, c_ref = _reference_step(cell, x[t], h_ref, c_ref)
        np.testing.assert_allclose(state[0].detach().numpy(), h_ref.detach().numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(state[1].detach().numpy(), c_ref.detach().numpy(), rtol=0, atol=1e-12)
    # the peepholes matter: zeroing each one changes the step
    for name in ("w_ci", "w_cf", "w_co"):
        before = cell(x[0], (h, c))[0]
        with torch.no_grad():
            getattr(cell, name).zero_()
        assert not torch.allclose(cell(x[0], (h, c))[0], before), name


def test_peepholes_are_parameters_in_state_dict_with_gradients():
    import torch

    from ihs_hpc.ml.data import masked_mse
    from ihs_hpc.ml.model import ModelSpec, build_model

    model = build_model(ModelSpec(widths=(4, 4, 8, 8), base_fill=False), seed=0)
    keys = set(model.state_dict())
    for name in ("w_ci", "w_cf", "w_co"):
        assert f"bottleneck.cell.{name}" in keys
        assert any(n == f"bottleneck.cell.{name}" for n, _ in model.named_parameters())
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, 32, 32)
    loss = masked_mse(model(x), torch.randn(2, 3, 32, 32), torch.ones(2, 32, 32))
    loss.backward()
    for name in ("w_ci", "w_cf", "w_co"):
        grad = getattr(model.bottleneck.cell, name).grad
        assert grad is not None and float(grad.abs().sum()) > 0, name
    # and the optimizer moves them
    before = model.bottleneck.cell.w_ci.detach().clone()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert not torch.equal(before, model.bottleneck.cell.w_ci.detach())


@pytest.mark.parametrize("shape", [(37, 53), (16, 16), (5, 70)])
def test_odd_sizes_are_padded_and_cropped(shape):
    import torch

    from ihs_hpc.ml.model import ModelSpec, build_model

    model = build_model(ModelSpec(widths=(4, 4, 4, 8), lstm_skips=2, base_fill=False), seed=1)
    x = torch.randn(2, 3, 4, *shape)
    out = model(x)
    assert out.shape == (2, 3, *shape)
    assert torch.isfinite(out).all()
    # frames are independent samples of the batch: the second does not change the first's output
    x2 = x.clone()
    x2[1] = torch.randn_like(x2[1])
    assert torch.allclose(model(x2)[0], out[0])


def test_untrained_model_with_base_fill_is_the_push_pull_fill():
    """Zero-initialised head: visible pixels are returned exactly, hidden ones get a convex mean."""
    import torch

    from ihs_hpc.ml.model import ModelSpec, build_model, push_pull_fill

    rng = np.random.default_rng(0)
    value = rng.normal(size=(1, 2, 48, 64)).astype(np.float32)
    hidden = np.zeros((48, 64), dtype=bool)
    hidden[10:30, 20:45] = True
    x = np.zeros((1, 2, 4, 48, 64), dtype=np.float32)
    x[:, :, 0] = np.where(hidden, 0.0, value)
    x[:, :, 1] = hidden
    model = build_model(ModelSpec(widths=(4, 4, 4, 8)), seed=0)
    out = model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(out[..., ~hidden], value[..., ~hidden], rtol=0, atol=1e-6)
    inside = out[..., hidden]
    assert inside.min() >= value[..., ~hidden].min() - 1e-6 and inside.max() <= value[..., ~hidden].max() + 1e-6
    # a constant field is filled with the constant
    const = torch.full((1, 1, 48, 64), 3.5)
    vis = torch.from_numpy((~hidden).astype(np.float32))[None, None]
    np.testing.assert_allclose(push_pull_fill(const * vis, vis, 4).numpy(), 3.5, rtol=1e-6)


def test_push_pull_fill_of_a_smooth_field_beats_the_hole_mean():
    """Inside a hole a plane is interpolated far better than by the mean of all visible pixels."""
    import torch

    from ihs_hpc.ml.model import push_pull_fill

    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    plane = 0.3 * yy - 0.2 * xx
    hidden = (yy - 30) ** 2 + (xx - 34) ** 2 < 8 ** 2
    vis = torch.from_numpy((~hidden).astype(np.float32))[None, None]
    fill = push_pull_fill(torch.from_numpy(plane)[None, None] * vis, vis, 4)[0, 0].numpy()
    err = np.abs(fill[hidden] - plane[hidden]).mean()
    err_mean = np.abs(plane[~hidden].mean() - plane[hidden]).mean()
    assert err < 0.25 * err_mean
