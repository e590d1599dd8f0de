"""B-spline bases: partition of unity, agreement with an independent Cox–de Boor, any order k."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kanir.ir.bspline import dense_bases, extend_grid, local_bases, uniform_grid


def cox_de_boor(x: np.ndarray, t: np.ndarray, k: int) -> np.ndarray:
    """Textbook recursion over all bases (the reference)."""
    n = len(t) - 1
    B = np.array([[1.0 if t[i] <= xx < t[i + 1] else 0.0 for i in range(n)] for xx in x])
    for d in range(1, k + 1):
        nb = np.zeros((len(x), n - d))
        for i in range(n - d):
            left = (x - t[i]) / (t[i + d] - t[i]) * B[:, i]
            right = (t[i + d + 1] - x) / (t[i + d + 1] - t[i + 1]) * B[:, i + 1]
            nb[:, i] = left + right
        B = nb
    return B


@pytest.mark.parametrize("uniform", [False, True])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("G", [1, 3, 10])
def test_matches_cox_de_boor(k, G, uniform):
    """Random knots take the tabulated path, uniform knots the cardinal (search-free) path."""
    gen = torch.Generator().manual_seed(k * 100 + G)
    if uniform:
        grid = torch.cat([uniform_grid(G, k, -1, 1), uniform_grid(G, k, 0.5, 2.5)])
    else:
        grid = torch.sort(torch.rand(2, G + 2 * k + 1, generator=gen, dtype=torch.float64) * 4 - 2).values
    x = torch.rand(300, 2, generator=gen, dtype=torch.float64) * 6 - 3
    B = dense_bases(x, grid, k)
    assert B.shape == (300, 2, G + k)
    for i in range(2):
        ref = cox_de_boor(x[:, i].numpy(), grid[i].numpy(), k)
        np.testing.assert_allclose(B[:, i].numpy(), ref, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 5), G=st.integers(1, 30), lo=st.floats(-5, 4), width=st.floats(0.1, 10))
def test_partition_of_unity_inside_grid_range(k, G, lo, width):
    grid = uniform_grid(G, k, lo, lo + width, n_in=1)
    x = lo + width * torch.rand(200, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    B = dense_bases(x, grid, k)
    np.testing.assert_allclose(B.sum(-1).numpy(), 1.0, atol=1e-12)
    assert (B >= -1e-15).all()


def test_zero_outside_extended_grid_and_only_k_plus_1_nonzero():
    grid = uniform_grid(5, 3, -1, 1)
    x = torch.tensor([[-10.0], [10.0], [0.3]], dtype=torch.float64)
    B = dense_bases(x, grid, 3)
    assert B[0].abs().sum() == 0 and B[1].abs().sum() == 0
    assert int((B[2] > 0).sum()) == 4
    first, vals = local_bases(x, grid, 3)
    assert vals.shape == (3, 1, 4)


def test_spline_contract_gradients_match_autograd_to_third_order():
    from kanir.ir.bspline import spline_contract

    gen = torch.Generator().manual_seed(0)
    for k in (1, 2, 3):
        grid = torch.sort(torch.rand(3, 5 + 2 * k + 1, generator=gen, dtype=torch.float64) * 4 - 2).values
        x = (torch.rand(40, 3, generator=gen, dtype=torch.float64) * 3 - 1.5).requires_grad_()
        C = torch.randn(3 * (5 + k), 2, generator=gen, dtype=torch.float64, requires_grad=True)
        y_ref = dense_bases(x, grid, k).reshape(40, -1) @ C
        y = spline_contract(x, grid, C, k)
        assert torch.allclose(y, y_ref)
        g_ref, gc_ref = torch.autograd.grad(y_ref.sum(), (x, C), create_graph=True)
        g, gc = torch.autograd.grad(y.sum(), (x, C), create_graph=True)
        assert torch.allclose(g, g_ref, atol=1e-10) and torch.allclose(gc, gc_ref)
        h_ref = torch.autograd.grad(g_ref.sum(), x, create_graph=True)[0]
        h = torch.autograd.grad(g.sum(), x, create_graph=True)[0]
        assert torch.allclose(h, h_ref, atol=1e-9)
        if k == 3:
            t_ref = torch.autograd.grad(h_ref.sum(), x)[0]
            assert torch.allclose(torch.autograd.grad(h.sum(), x)[0], t_ref, atol=1e-8)


def test_derivatives_flow_through_bases():
    grid = uniform_grid(4, 3, -1, 1)
    x = torch.linspace(-0.9, 0.9, 7, dtype=torch.float64).reshape(-1, 1).requires_grad_()
    y = dense_bases(x, grid, 3).sum()  # partition of unity: derivative 0
    (g,) = torch.autograd.grad(y, x)
    assert g.abs().max() < 1e-12


def test_extend_grid_spacing():
    inner = torch.tensor([[0.0, 1.0, 2.0]], dtype=torch.float64)
    ext = extend_grid(inner, 2)
    assert ext.tolist() == [[-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0]]


def test_one_uniform_knots_and_greville_helper_in_numpy_and_torch_agree_bit_for_bit():
    """kanir.ir.bspline holds the one copy of each; the numpy and torch forms are identical."""
    import numpy as np

    from kanir.ir.bspline import greville, greville_abscissae, uniform_knots

    for G, k, lo, hi in [(5, 3, -1.0, 1.0), (7, 2, 0.3, 2.9), (1, 1, -4.0, 5.0)]:
        knots = uniform_knots(G, k, lo, hi)
        grid = uniform_grid(G, k, lo, hi, n_in=2)
        assert knots.shape == (G + 2 * k + 1,) and knots.dtype == np.float64
        assert knots[k] == lo and abs(knots[G + k] - hi) < 1e-15
        assert np.array_equal(grid.numpy(), np.stack([knots, knots]))
        line = greville_abscissae(knots, k)
        assert np.array_equal(greville(grid, k).numpy(), np.stack([line, line]))
        # coefficients equal to the Greville abscissae reproduce f(x) = x
        x = torch.linspace(lo, hi, 11, dtype=torch.float64)[:, None]
        y = dense_bases(x, grid[:1], k)[:, 0, :] @ torch.from_numpy(line)
        assert torch.allclose(y, x[:, 0], atol=1e-12)
