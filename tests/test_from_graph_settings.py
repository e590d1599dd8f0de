"""``KAN.from_graph``'s keyword arguments: grid, k, grid_range, base_fun and dtype are honoured,
contradictions with the graph's splines and init-only arguments are clear errors (issue 12)."""

import numpy as np
import pytest
import torch

import kanir
from kanir.errors import ArgumentError


def _prior():
    return kanir.compile("qd**2/2", variables=["q", "qd"])  # no splines: one symbolic edge


def test_spline_settings_reach_the_model_and_later_splines():
    model = kanir.KAN.from_graph(_prior(), grid=20, k=2, grid_range=(-3, 3), dtype=torch.float32,
                                 base_fun="tanh", versions=False)
    assert (model.grid, model.k, model.dtype) == (20, 2, torch.float32)
    layer = model.net.layers[0]
    assert layer.grid[0, 2].item() == -3 and layer.grid[0, -3].item() == 3
    model.perturb(mode="all", mag=0.1)  # the splines perturb adds take the settings
    sp = model.graph.edge(0, 0, 0).spline
    assert (sp.G, sp.k, sp.base_fun) == (20, 2, "tanh")
    x = torch.tensor([[0.3, -0.5], [1.0, 0.25]])
    ref = kanir.KAN.from_graph(_prior(), versions=False)
    assert (ref.grid, ref.k, ref.dtype) == (5, 3, torch.float64)  # the graph's own defaults
    np.testing.assert_allclose(ref(x.double()).detach().numpy()[:, 0], [0.125, 0.03125])


def test_dtype_converts_a_graph_with_splines():
    g = kanir.KAN(width=[2, 1], grid=4, seed=0, versions=False).graph  # float32 splines
    x = torch.tensor([[0.3, -0.5], [0.9, 0.2]], dtype=torch.float64)
    m32 = kanir.KAN.from_graph(g, versions=False)
    m64 = kanir.KAN.from_graph(g, dtype="float64", grid=4, k=3, versions=False)
    assert m32.dtype == torch.float32 and m64.dtype == torch.float64
    np.testing.assert_allclose(m64(x).detach().numpy(), m32(x.float()).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw, msg", [
    (dict(grid=10), "grid=10 but the graph's spline on edge (0,0,0) has grid 4; build with the "
                    "graph's and move its splines with model.refine(10, x)"),
    (dict(k=2), "k=2 but the graph's spline on edge (0,0,0) has k 3"),
    (dict(base_fun="tanh"), "base_fun='tanh' but the graph's spline on edge (0,0,0) has "
                            "base_fun 'silu'"),
])
def test_settings_that_contradict_the_graphs_splines(kw, msg):
    g = kanir.KAN(width=[2, 1], grid=4, seed=0, versions=False).graph
    with pytest.raises(ArgumentError) as e:
        kanir.KAN.from_graph(g, **kw)
    assert str(e.value) == f"KAN.from_graph: {msg}"


def test_bad_values_and_init_only_arguments():
    with pytest.raises(ArgumentError, match="grid"):
        kanir.KAN.from_graph(_prior(), grid=0)
    with pytest.raises(ArgumentError, match="grid_range"):
        kanir.KAN.from_graph(_prior(), grid_range=(1, -1))
    with pytest.raises(ArgumentError, match="dtype"):
        kanir.KAN.from_graph(_prior(), dtype=torch.float16)
    with pytest.raises(ArgumentError) as e:
        kanir.KAN.from_graph(_prior(), width=[2, 1], noise_scale=0.1)
    assert str(e.value).startswith("KAN.from_graph does not take width, noise_scale (width: the "
                                   "graph fixes the widths; noise_scale: it sizes the random")
    kanir.KAN.from_graph(_prior(), seed=3, grid_eps=1.0, versions=False)  # accepted
