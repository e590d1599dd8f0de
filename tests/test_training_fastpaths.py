"""The training fast paths: tabulated local bases, the span search, the fused edge statistics of
the regulariser, the input layer's bases shared by a step's evaluations, and an optimiser that
does not import torch._dynamo. Each must give the plain formula's numbers."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_bspline import cox_de_boor

import kanir
from kanir.backends.edge_std import edge_std, edge_std_reference
from kanir.ir.bspline import _deboor_local, _densify, _flat_positions, _table_local, find_span, local_eval
from kanir.train.training import create_dataset, edge_scales, forward_collect, regularizer


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 5), G=st.integers(1, 25), seed=st.integers(0, 10**6))
def test_tabulated_local_bases_match_de_boor_and_cox_de_boor(k, G, seed):
    """Random knots, points inside and outside the knot range: values and derivatives."""
    gen = torch.Generator().manual_seed(seed)
    knots = torch.rand(2, G + 2 * k + 1, generator=gen, dtype=torch.float64) * 4 - 2
    grid = torch.sort(knots + torch.arange(G + 2 * k + 1) * 1e-3).values  # distinct knots
    x = torch.rand(200, 2, generator=gen, dtype=torch.float64) * 6 - 3
    f1, v1, d1 = _deboor_local(x.clone(), grid, k, True)
    f2, v2, d2 = _table_local(x.clone(), grid, k, True)
    P = G + k
    dense = lambda first, vals: _densify(  # noqa: E731
        _flat_positions(first, k, P), vals, 200, 2, P).view(200, 2, P)
    B1, B2 = dense(f1, v1), dense(f2, v2)
    scale = float(dense(f1, d1).abs().max()) + 1.0
    assert float((B1 - B2).abs().max()) < 1e-10
    assert float((dense(f1, d1) - dense(f2, d2)).abs().max()) < 1e-9 * scale
    for i in range(2):
        ref = cox_de_boor(x[:, i].numpy(), grid[i].numpy(), k)
        np.testing.assert_allclose(B2[:, i].numpy(), ref, atol=1e-10)


@pytest.mark.parametrize("shape", [(1000, 2), (300, 40)])  # below and above the search cut-off
def test_find_span_both_branches_agree_with_searchsorted(shape):
    gen = torch.Generator().manual_seed(1)
    grid = torch.sort(torch.rand(shape[1], 11, generator=gen) * 2 - 1, dim=1).values
    x = torch.rand(*shape, generator=gen) * 3 - 1.5
    x[0] = grid[:, 0]  # exactly on a knot: t_m <= x
    ref = torch.searchsorted(grid.contiguous(), x.T.contiguous(), right=True).T - 1
    assert torch.equal(find_span(x, grid), ref)


def _layer(n_in=3, n_out=2, seed=0):
    m = kanir.KAN(width=[n_in, n_out], grid=5, k=3, seed=seed, dtype=torch.float64)
    layer = m.net.layers[0]
    with torch.no_grad():
        layer.coef.normal_(generator=torch.Generator().manual_seed(seed))
        layer.scale_base.uniform_(-1, 1)
    return layer


def test_fused_edge_std_gradients_to_second_order():
    layer = _layer(4, 3)
    grid, k = layer.grid, layer.k
    x = (torch.rand(60, 4, dtype=torch.float64) * 2.4 - 1.2).requires_grad_()
    w = torch.randn(4, 3, grid.shape[1] - k, dtype=torch.float64, requires_grad=True)
    for base in (torch.nn.functional.silu, torch.tanh):
        f = lambda x, w: edge_std(x, w, grid, k, base, local_eval(x, grid, k, True))  # noqa: E731,B023
        assert torch.allclose(f(x, w), edge_std_reference(x, w, grid, k, base), atol=1e-14)
        assert torch.autograd.gradcheck(f, (x, w))
        assert torch.autograd.gradgradcheck(f, (x, w))


@pytest.mark.parametrize("batch", [200, 2000])
def test_edge_std_routes_agree_and_equal_torch_std(batch):
    """Direct (fused) route, covariance route, and torch.std of explicit per-edge activations."""
    layer = _layer(3, 2, seed=3)
    x = torch.rand(batch, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    direct = layer.spline_edge_std(x, layer.local(x, fixed=True))
    layer.DIRECT_STD_LIMIT = 0
    cov = layer.spline_edge_std(x, layer.local(x))
    from kanir.ir.bspline import dense_bases

    B = dense_bases(x, layer.grid, layer.k)
    c3 = layer.coef * (layer.scale_sp * layer.mask_sp).unsqueeze(-1)
    acts = (torch.nn.functional.silu(x).unsqueeze(-1) * (layer.scale_base * layer.mask_sp)
            + torch.einsum("big,iog->bio", B, c3))
    ref = acts.std(dim=0)
    assert torch.allclose(direct, ref, rtol=1e-12, atol=1e-15)
    assert torch.allclose(cov, ref, rtol=1e-10, atol=1e-12)


def test_shared_input_bases_give_the_same_loss_and_gradients():
    """forward_collect with the input layer's fixed record == evaluating everything afresh."""
    ds = create_dataset(lambda x: torch.sin(2 * x[:, [0]]) * x[:, [1]], n_var=2, train_num=300,
                        seed=0, dtype=torch.float64)
    m = kanir.KAN(width=[2, 4, 1], grid=5, k=3, seed=0, dtype=torch.float64)
    m.fit(ds, steps=3, progress=False)  # adaptive (non-uniform) grids
    x, y = ds["train_input"], ds["train_label"]
    out = []
    for first in (None, m.net.layers[0].local(x, fixed=True)):
        m.net.zero_grad()
        pred, inputs = forward_collect(m.net, x, first)
        obj = ((pred - y) ** 2).mean() + 1e-2 * regularizer(m.net, inputs)
        obj.backward()
        out.append((float(obj.detach()), [p.grad.clone() for p in m.net.parameters() if p.grad is not None]))
    (a, ga), (b, gb) = out
    assert a == pytest.approx(b, rel=1e-13)
    assert all(torch.allclose(u, v, rtol=1e-10, atol=1e-14) for u, v in zip(ga, gb))
    # and the bare-tensor form of the inputs (the public edge_scales API) still works
    plain = edge_scales(m.net, [inp.x for inp in inputs])
    assert all(torch.allclose(s, t) for s, t in zip(plain, edge_scales(m.net, inputs)))


def test_lbfgs_fit_does_not_import_torch_dynamo():
    """Constructing a torch.optim optimiser imports torch._dynamo (~1 s); kanir's L-BFGS and
    the default fit do not."""
    code = ("import sys, torch, kanir\n"
            "ds = kanir.create_dataset(lambda x: x[:, [0]] ** 2, n_var=1, train_num=50, seed=0)\n"
            "kanir.KAN(width=[1, 1], grid=3, seed=0).fit(ds, steps=2, progress=False)\n"
            "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_fit_on_a_model_with_nothing_trainable_warns_instead_of_crashing():
    """auto_symbolic can remove every edge of a collapsed model (all fits constant); fitting it
    afterwards must say so, not raise torch's 'element 0 of tensors does not require grad'."""
    ds = create_dataset(lambda x: x[:, [0]] * 0 + 1.5, n_var=1, train_num=100, seed=0,
                        dtype=torch.float64)
    m = kanir.KAN(width=[1, 1], grid=3, k=3, seed=0, dtype=torch.float64)
    m.fit(ds, steps=5, progress=False)
    rep = m.auto_symbolic(lib=["x", "sin", "0"], verbose=0)
    assert any("removed" in (e.reason or "") for e in rep.edges)
    with pytest.warns(UserWarning, match="does not depend on any trainable parameter"):
        hist = m.fit(ds, steps=5, progress=False, update_grid=False)
    assert hist["stopped_early"] == 0 and np.isfinite(hist["train_loss"]).all()


def test_fused_spline_output_and_edge_std_match_the_plain_formulas_to_second_order():
    """layer.forward_with_std (one autograd node for the spline branch and the regulariser's
    edge std) == layer(x) and spline_edge_std through the plain formulas, with gradients."""
    from kanir.backends.edge_std import spline_and_std, spline_and_std_reference

    layer = _layer(3, 4, seed=5)
    grid, k = layer.grid, layer.k
    x = (torch.rand(50, 3, dtype=torch.float64) * 2.4 - 1.2).requires_grad_()
    w = torch.randn(3, 4, grid.shape[1] - k, dtype=torch.float64, requires_grad=True)
    f = lambda x, w: spline_and_std(x, w, grid, k, torch.nn.functional.silu,  # noqa: E731
                                    local_eval(x, grid, k, True))
    ref = spline_and_std_reference(x, w, grid, k, torch.nn.functional.silu)
    assert all(torch.allclose(a, b, atol=1e-13) for a, b in zip(f(x, w), ref))
    assert torch.autograd.gradcheck(f, (x, w))
    assert torch.autograd.gradgradcheck(f, (x, w))
    xd = x.detach()
    for local in (layer.local(xd, fixed=True), layer.local(xd)):
        out, std = layer.forward_with_std(xd, local)
        assert torch.allclose(out, layer(xd), atol=1e-13)
        assert torch.allclose(std, layer.spline_edge_std(xd), atol=1e-13)


def test_fit_with_every_parameter_frozen_is_a_clear_error():
    from kanir.errors import KanirError

    ds = create_dataset(lambda x: x[:, [0]], n_var=1, train_num=50, seed=0)
    m = kanir.KAN(width=[1, 1], grid=3, seed=0)
    for p in m.net.parameters():
        p.requires_grad_(False)
    with pytest.raises(KanirError, match="no trainable parameters"):
        m.fit(ds, steps=2, progress=False)
