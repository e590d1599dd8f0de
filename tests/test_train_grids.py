"""Grid refinement keeps each spline on its whole range: even projection samples, chunked least
squares, and a float64 [1,1] fit refined to grid 1000 at the least-squares floor."""

import pytest
import torch

import kanir
from kanir.train import grids


def _curve(x):
    return torch.sin(3 * x[:, [0]]) + x[:, [0]] ** 2


def _dense(model, n=4001):
    g = model.net.layers[0].grid
    k = model.net.layers[0].k
    return torch.linspace(float(g[0, k]), float(g[0, -k - 1]), n, dtype=torch.float64)[:, None]


def test_even_samples_span_each_inputs_grid_range():
    grid = torch.stack([torch.linspace(-2, 2, 5 + 7), torch.linspace(0, 11, 5 + 7)]).double()
    xs = grids.with_even_samples(grid, k=3, per_interval=4)
    assert xs.shape == (4 * 5 + 1, 2)
    assert xs[0].tolist() == [float(grid[0, 3]), float(grid[1, 3])]
    assert torch.allclose(xs[-1], grid[:, -4])
    assert torch.allclose(torch.diff(xs, dim=0), torch.diff(xs, dim=0)[:1].expand(20, 2))


def test_refine_from_few_samples_keeps_the_spline_between_them():
    """200 data points on 1000 intervals leave most intervals empty: refining a rough grid-100
    spline (nested in the new uniform grid) must still reproduce it everywhere on its range
    (from the data alone the projection was off by half the function's size)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(200, 1, generator=gen, dtype=torch.float64) * 2 - 1
    model = kanir.KAN([1, 1], grid=5, k=3, seed=0, device="cpu", dtype=torch.float64)
    model.refine(100, x=x)
    with torch.no_grad():
        coef = model.net.layers[0].coef
        coef.add_(0.1 * torch.randn(coef.shape, generator=gen, dtype=torch.float64))
        xd = _dense(model, 20001)
        before = model(xd)
        model.refine(1000, x=x)
        after = model(xd)
    assert model.grid == 1000
    assert float((before - after).abs().max()) < 1e-9 * float(before.abs().max())


def test_chunked_projection_equals_one_block(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(300, 3, generator=gen, dtype=torch.float64) * 4 - 2
    old = grids.grid_from_samples(x, 7, 3, 1.0)
    new = grids.grid_from_samples(x, 20, 3, 0.3)
    coef = torch.randn(3, 2, 10, generator=gen, dtype=torch.float64)
    whole = grids.project_coef(x, old, coef, new, 3)
    monkeypatch.setattr(grids, "_CHUNK_ELEMENTS", 3 * 23 * 7)  # chunks of 7 rows
    chunked = grids.project_coef(x, old, coef, new, 3)
    assert torch.allclose(whole, chunked, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_float64_fit_refined_to_grid_1000_reaches_the_floor():
    """The foundation benchmark's curve: before even samples, grid 1000 stopped at 1.7e-16."""
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2000, 1, generator=gen, dtype=torch.float64) * 2 - 1
    ds = {"train_input": x[:1000], "train_label": _curve(x[:1000]),
          "test_input": x[1000:], "test_label": _curve(x[1000:])}
    model = kanir.KAN([1, 1], grid=10, k=3, seed=0, device="cpu", dtype=torch.float64)
    mse = {}
    for G in (10, 50, 100, 200, 500, 1000):
        if G != 10:
            model.refine(G)
        model.fit(ds, opt="LBFGS", steps=50, progress=False, update_grid=False)
        with torch.no_grad():
            mse[G] = float(((model(ds["test_input"]) - ds["test_label"]) ** 2).mean())
    assert mse[500] < 1e-19 and mse[1000] < 1e-19, mse
