"""Regression tests for pykan failures users hit (issue 2): devices, NaN after grid updates,
reproducibility, side effects in the working directory, copies, the fit/train name clash."""

import copy
import os

import pytest
import torch

import kanir
from kanir.train.grids import update_grid


def test_every_tensor_is_a_parameter_or_buffer():
    m = kanir.KAN([3, [2, 1], 1], device="cpu")
    m.net.layers[0].refresh_symbolic()
    tensors = {id(t) for t in list(m.parameters()) + list(m.buffers())}
    for layer in m.net.layers:
        for name, val in vars(layer).items():
            assert not isinstance(val, torch.Tensor) or id(val) in tensors, name


def test_model_to_meta_device_moves_everything():
    """Nothing stays behind on the CPU when the model moves (the 'meta' device stands in for CUDA)."""
    m = kanir.KAN([2, [1, 1], 1], device="cpu")
    m.net.to("meta")
    for t in list(m.net.parameters()) + list(m.net.buffers()):
        assert t.device.type == "meta"
    y = m.net(torch.zeros(4, 2, device="meta"))
    assert y.device.type == "meta" and y.shape == (4, 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_and_forward():
    """On CUDA in float64: everything moves, forward equals the CPU's, and fit (LBFGS with grid
    updates) follows the CPU run up to rounding."""
    ds = kanir.create_dataset(lambda x: x[:, [0]] * x[:, [1]], n_var=2, seed=0, dtype=torch.float64)
    cpu = kanir.KAN([2, [0, 1], 1], seed=0, device="cpu", dtype=torch.float64)
    gpu = copy.deepcopy(cpu).to("cuda")
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float64
    assert all(t.device.type == "cuda" for t in list(gpu.parameters()) + list(gpu.buffers()))
    x = ds["test_input"]
    with torch.no_grad():
        torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x), rtol=1e-12, atol=1e-12)
    h_cpu = cpu.fit(ds, steps=5, progress=False)
    h_gpu = gpu.fit({k: v.cuda() for k, v in ds.items()}, steps=5, progress=False)
    assert h_gpu["train_loss"][-1] < 0.1 * h_gpu["train_loss"][0]
    assert h_gpu["train_loss"][-1] == pytest.approx(h_cpu["train_loss"][-1], rel=1e-6)
    with torch.no_grad():
        out = gpu(x.cuda())
        assert out.device.type == "cuda"
        torch.testing.assert_close(out.cpu(), cpu(x), rtol=1e-6, atol=1e-9)


def test_constant_input_column_and_rank_deficient_grid_update_stay_finite():
    m = kanir.KAN([3, 2, 1], grid=10, seed=0, device="cpu")
    x = torch.rand(50, 3)
    x[:, 1] = 0.7  # constant column
    x[:, 2] = torch.round(x[:, 2])  # two distinct values only: rank deficient
    update_grid(m.net, x)
    for layer in m.net.layers:
        assert torch.isfinite(layer.grid).all() and torch.isfinite(layer.coef).all()
        assert (torch.diff(layer.grid, dim=1) > 0).all()
    m.refine(20, x=x)
    assert torch.isfinite(m(x)).all()
    ds = {"train_input": x, "train_label": x[:, :1] * 2, "test_input": x, "test_label": x[:, :1] * 2}
    hist = m.fit(ds, steps=5, progress=False)
    assert all(map(lambda v: v == v, hist["train_loss"]))  # no NaN


def test_same_seed_same_data_bit_identical_parameters():
    def run():
        ds = kanir.create_dataset(lambda x: x[:, [0]] ** 2 + x[:, [1]], n_var=2, seed=5)
        m = kanir.KAN([2, 3, 1], seed=7, device="cpu")
        m.fit(ds, opt="Adam", lr=0.01, steps=10, batch=100, progress=False)
        return [p.detach().clone() for p in m.parameters()]

    torch.manual_seed(0)
    a = run()
    torch.manual_seed(12345)  # global RNG state must not matter
    b = run()
    assert all(torch.equal(p, q) for p, q in zip(a, b))


def test_constructor_does_not_touch_global_rng():
    torch.manual_seed(3)
    before = torch.rand(1)
    torch.manual_seed(3)
    kanir.KAN([2, 5, 1], seed=0, device="cpu")
    assert torch.equal(torch.rand(1), before)


def test_nothing_written_to_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ds = kanir.create_dataset(lambda x: x[:, [0]], n_var=1, train_num=50, test_num=50)
    m = kanir.KAN([1, 2, 1], device="cpu")
    m.fit(ds, steps=3, progress=False)
    m.refine(5)
    m.copy()
    assert list(tmp_path.iterdir()) == []


def test_deepcopy_is_independent():
    m = kanir.KAN([2, 3, 1], seed=0, device="cpu")
    c = copy.deepcopy(m)
    x = torch.rand(8, 2)
    assert torch.equal(m(x), c(x))
    with torch.no_grad():
        c.net.layers[0].coef.add_(1.0)
    assert not torch.equal(m(x), c(x))


def test_fit_does_not_shadow_module_train():
    m = kanir.KAN([2, 1], device="cpu")
    assert m.train() is m and m.training
    assert m.eval() is m and not m.training
    assert callable(m.fit)
    assert not os.path.exists("model")
