"""The KAN IR: width specs as pykan writes them, check() naming every inconsistency, summaries."""

import numpy as np
import pytest

from kanir import Activation, KanGraph, SplinePart
from kanir.errors import GraphError, PassError, WidthSpecError
from kanir.ir.graph import N, S
from kanir.ir.width import parse_width


def test_width_specs_like_pykan():
    g = KanGraph.from_width([2, [0, 1], 1])
    assert g.width == [2, [0, 1], 1]
    assert g.mult_arity == 2
    assert g.depth == 2
    assert g.nx.nodes[N(1, 0)]["kind"] == "mult"
    assert sorted(p for p in g.nx.predecessors(N(1, 0))) == [S(1, 0), S(1, 1)]
    g2 = KanGraph.from_width([[2, 0], [3, 2], [1, 0]], mult_arity=[[], [2, 3], []])
    assert g2.width == [2, [3, 2], 1]
    assert g2.mult_arity == [[], [2, 3], []]
    assert g2.layer_widths()[1].n_subnodes == 3 + 2 + 3
    assert g2.input_names == ["x_1", "x_2"] and g2.output_names == ["y_1"]
    g2.check()


def test_output_layer_may_end_in_a_product_like_pykan():
    g = KanGraph.from_width([2, [0, 1]])
    assert g.width == [2, [0, 1]] and g.nx.nodes[N(1, 0)]["kind"] == "mult"
    g.check()


@pytest.mark.parametrize(
    "width, arity, message",
    [
        ("2,5,1", 2, "width must be a list"),
        ([2], 2, "needs at least an input and an output layer"),
        ([2, -1, 1], 2, "width[1] must be a non-negative integer, got -1"),
        ([2, [1, 2, 3], 1], 2, "width[1] must be an int or a pair [n_sum, n_mult]"),
        ([[2, 1], 1], 2, "the input layer width[0] cannot have mult nodes"),
        ([2, 0, 1], 2, "width[1] has no nodes"),
        ([2, 2.5, 1], 2, "width[1] must be a non-negative integer, got 2.5"),
        ([2, [0, 1], 1], 1, "mult_arity must be at least 2"),
        ([2, [0, 2], 1], [[], [2], []], "mult_arity[1] must list one arity per mult node (2 in layer 1)"),
    ],
)
def test_malformed_width_specs_are_named(width, arity, message):
    with pytest.raises(WidthSpecError) as e:
        parse_width(width, arity)
    assert message in str(e.value)


def _spline(G=3, k=3, lo=-1.0, hi=1.0):
    h = (hi - lo) / G
    grid = lo + h * np.arange(-k, G + k + 1)
    return SplinePart(grid, np.zeros(G + k), k)


def test_check_finds_every_problem_and_names_it():
    g = KanGraph.from_width([2, 2, 1])
    g.set_edge(0, 0, 0, Activation(spline=_spline()))
    bad = _spline()
    bad.coef = np.array([np.nan] * 6)
    g.set_edge(0, 1, 1, Activation(spline=bad))
    g.set_edge(1, 0, 0, Activation.symbolic_fn("sinn"))
    other_grid = _spline(lo=-2.0)
    g.set_edge(0, 0, 1, Activation(spline=other_grid))
    g.nx.nodes[N(1, 1)]["scale"] = float("inf")
    g.meta["output_names"] = ["y", "z"]
    probs = g.problems()
    text = "\n".join(probs)
    assert "spline coefficients contain NaN or inf" in text
    assert "unknown symbolic function 'sinn'; did you mean 'sin'" in text
    assert "has a different spline grid from the other edges leaving node (0,0)" in text
    assert "node ('n', 1, 1) has a non-finite scale inf" in text
    assert "2 output names for 1 output nodes" in text
    with pytest.raises(GraphError, match=r"KanGraph has 5 problem\(s\)"):
        g.check()


def test_check_finds_wiring_and_kind_errors():
    g = KanGraph.from_width([2, [1, 1], 1])
    g.nx.remove_edge(S(1, 2), N(1, 1))
    g.nx.nodes[N(0, 0)]["kind"] = "sum"
    probs = "\n".join(g.problems())
    assert "layer 0 nodes must all be 'input'" in probs
    assert "node ('n', 1, 1) (mult) is wired to subnodes [1], expected [1, 2]" in probs


def test_edge_addressing_errors_are_clear():
    g = KanGraph.from_width([2, 3, 1])
    with pytest.raises(PassError, match=r"no edge \(l=0, i=5, j=0\): layer 0 has nodes 0..1"):
        g.edge(0, 5, 0)
    with pytest.raises(PassError, match="needs an Activation"):
        g.set_edge(0, 0, 0, "sin")


def test_summary_and_repr_are_readable():
    g = KanGraph.from_width([2, [0, 1], 1], input_names=["x", "y"])
    g.set_edge(0, 0, 0, Activation.identity())
    g.set_edge(0, 1, 1, Activation.identity())
    g.set_edge(1, 0, 0, Activation(spline=_spline()))
    text = g.summary()
    assert "width=[2, [0, 1], 1]" in text
    assert "inputs:  x, y" in text
    assert "layer 0: 2 -> 2 subnodes; edges 2/4 (2 symbolic)" in text
    assert "layer 1: 1 -> 1 subnodes; edges 1/1 (1 spline)" in text
    assert repr(g) == "KanGraph(width=[2, [0, 1], 1], inputs=['x', 'y'], outputs=['y_1'], edges=3)"


def test_copy_is_deep():
    g = KanGraph.from_width([1, 1])
    g.set_edge(0, 0, 0, Activation(spline=_spline()))
    c = g.copy()
    c.edge(0, 0, 0).spline.coef[0] = 5.0
    c.node(1, 0)["scale"] = 3.0
    assert g.edge(0, 0, 0).spline.coef[0] == 0.0
    assert g.node(1, 0)["scale"] == 1.0
    assert not g.same(c)
