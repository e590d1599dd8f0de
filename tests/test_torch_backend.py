"""lower/lift round trips (hypothesis over random graphs), symbolic grouping, mult arities."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from strategies import layered_graphs

from kanir import Activation, KanGraph, SplinePart, lift, lower
from kanir.errors import GraphError
from kanir.model.init import init_module

FUNS = ["x", "x^2", "sin", "cos", "sigmoid", "tanh", "gaussian", "abs", "x^3", "arctan"]  # no exp: deep
# random products of exp overflow legitimately


def random_graphs():
    """Layered graphs with non-uniform knots, mults of arity up to 4 (also in the last layer)
    and every edge kind, inactive splines included."""
    return layered_graphs(funs=FUNS, max_arity=4, mult_in_output=True, uniform_knots=False)


@settings(max_examples=60, deadline=None)
@given(g=random_graphs())
def test_lower_lift_round_trip_is_lossless(g):
    g.check()
    m = lower(g)
    back = lift(m)
    assert back.same(g)
    x = torch.rand(64, g.n_nodes(0), dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x = x * 4 - 2
    y1 = m(x)
    y2 = lower(back)(x)
    torch.testing.assert_close(y1, y2, rtol=0, atol=0, equal_nan=True)
    assert torch.isfinite(y1).all()


def test_module_round_trip_float32_identical_outputs():
    m = init_module([3, [2, 2], 2], mult_arity=[[], [2, 4], []], seed=3, dtype=torch.float32)
    x = torch.rand(50, 3) * 2 - 1
    m2 = lower(lift(m))
    assert m2.dtype == torch.float32
    assert torch.equal(m(x), m2(x))
    for (n1, p1), (n2, p2) in zip(m.named_parameters(), m2.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2)


def test_mult_nodes_of_several_arities_multiply_their_subnodes():
    g = KanGraph.from_width([3, [0, 2], 1], mult_arity=[[], [2, 3], []], dtype="float64")
    # node 0 = x1*x2 (subnodes 0,1); node 1 = x1*x2*x3 (subnodes 2,3,4)
    for j, i in enumerate([0, 1, 0, 1, 2]):
        g.set_edge(0, i, j, Activation.identity())
    g.set_edge(1, 0, 0, Activation.symbolic_fn("x", c=2.0))
    g.set_edge(1, 1, 0, Activation.symbolic_fn("x"))
    x = torch.tensor([[2.0, 3.0, 5.0], [-1.0, 0.5, 4.0]], dtype=torch.float64)
    y = lower(g)(x)
    expect = 2 * x[:, 0] * x[:, 1] + x[:, 0] * x[:, 1] * x[:, 2]
    assert torch.allclose(y[:, 0], expect, atol=0)


def test_symbolic_edges_grouped_by_function_not_per_edge():
    g = KanGraph.from_width([4, 3, 1], dtype="float64")
    for i in range(4):
        for j in range(3):
            g.set_edge(0, i, j, Activation.symbolic_fn(["sin", "cos"][(i + j) % 2], a=i + 1.0))
    for j in range(3):
        g.set_edge(1, j, 0, Activation.identity())
    m = lower(g)
    assert [s[0] for s in m.layers[0]._sym_segments] == ["cos", "sin"]
    x = torch.rand(10, 4, dtype=torch.float64)
    ref = sum(torch.sin((i + 1.0) * x[:, i]) if (i + j) % 2 == 0 else torch.cos((i + 1.0) * x[:, i])
              for i in range(4) for j in range(3))
    assert torch.allclose(m(x)[:, 0], ref)


def test_keep_acts_records_per_edge_values_that_sum_to_the_output():
    m = init_module([2, 3, 1], seed=0, dtype=torch.float64)
    m.set_keep_acts(True)
    x = torch.rand(20, 2, dtype=torch.float64)
    y = m(x)
    acts = m.layers[1].acts
    per_edge = acts["spline"] + acts["symbolic"]
    assert torch.allclose(per_edge.sum(1), acts["subnodes"])
    assert torch.allclose(acts["output"], y)
    m.set_keep_acts(False)
    assert m.layers[0].acts is None


def test_lower_rejects_mixed_base_functions_with_a_clear_error():
    g = KanGraph.from_width([1, 2, 1], dtype="float64")
    grid = np.linspace(-2, 2, 8)
    g.set_edge(0, 0, 0, Activation(SplinePart(grid, np.zeros(4), 3, base_fun="silu")))
    g.set_edge(0, 0, 1, Activation(SplinePart(grid, np.zeros(4), 3, base_fun="tanh")))
    with pytest.raises(GraphError, match="one base function per layer"):
        lower(g)


def test_symbolic_edge_values_are_exact():
    g = KanGraph.from_width([1, 1], dtype="float64")
    g.set_edge(0, 0, 0, Activation.symbolic_fn("sin", 2.0, 0.5, 3.0, -1.0))
    x = torch.tensor([[0.3]], dtype=torch.float64)
    assert float(lower(g)(x).detach()) == pytest.approx(3 * math.sin(2 * 0.3 + 0.5) - 1, abs=1e-15)
