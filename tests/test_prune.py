"""Pruning by attribution: nodes, edges, inputs (threshold or top-k), names kept, the function
kept on what remains, and one rule for copies versus in-place changes."""

import numpy as np
import pytest
import torch

import kanir
from kanir import Activation
from kanir.backends.torch import lower
from kanir.errors import DataError, PassError
from kanir.ir.graph import KanGraph
from kanir.passes._common import zero_edge
from kanir.passes.attribution import attribute, has_scores
from kanir.passes.prune import (
    delete_node,
    prune,
    prune_edge,
    prune_input,
    prune_node,
    remove_edge,
    remove_node,
    restrict_dataset,
)


def _sym(fun, a=1.0, b=0.0, c=1.0, d=0.0):
    return Activation.symbolic_fn(fun, a, b, c, d)


def _x(n, d, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, d))


def _y(graph, x):
    with torch.no_grad():
        return lower(graph)(torch.as_tensor(x)).numpy()


@pytest.fixture
def g3():
    """y = sin(x1) + x2^2 + (0.001 x3 + 5): x3's edge is nearly constant, with a big offset;
    hidden node 2 is dead (its only way out is a zero-slope edge)."""
    g = KanGraph.from_width([3, 3, 1], input_names=["a", "b", "c"], output_names=["y"])
    g.set_edge(0, 0, 0, _sym("sin"))
    g.set_edge(0, 1, 1, _sym("x^2"))
    g.set_edge(0, 2, 1, _sym("x", c=0.001, d=5.0))
    g.set_edge(0, 0, 2, _sym("x", c=2.0))
    g.set_edge(1, 0, 0, _sym("x"))
    g.set_edge(1, 1, 0, _sym("x"))
    g.set_edge(1, 2, 0, _sym("x", c=1e-6, d=0.5))
    return g


def test_prune_edge_drops_low_scores_and_folds_their_mean(g3):
    x = _x(500, 3)
    before = g3.copy()
    p = prune_edge(g3, x, threshold=3e-2)
    assert g3.same(before)  # input untouched
    assert p.edge(0, 2, 1) is None and p.edge(1, 2, 0) is None
    assert p.edge(0, 1, 1).same(g3.edge(0, 1, 1))
    err = np.abs(_y(p, x) - _y(g3, x)).max()
    assert err < 2e-3  # the 0.001*x3 term is all that is lost; the offsets 5 and 0.5 stay
    plain = prune_edge(g3, x, threshold=3e-2, fold_mean=False)
    assert np.abs(_y(plain, x) - _y(g3, x)).min() > 5.0  # pykan-style zeroing shifts the output
    assert not has_scores(p)  # scores describe the graph they were measured on


def test_prune_node_removes_dead_hidden_nodes(g3):
    x = _x(500, 3)
    p = prune_node(g3, x, threshold=1e-2)
    assert p.width == [3, 2, 1] and p.input_names == ["a", "b", "c"]
    assert np.abs(_y(p, x) - _y(g3, x)).max() < 1e-5
    kept = prune_node(g3, active_neurons={1: [0, 2]})
    assert kept.width == [3, 2, 1] and kept.edge(0, 0, 1).same(g3.edge(0, 0, 2))
    kept = prune_node(g3, active_neurons=[[1]])
    assert kept.width == [3, 1, 1]


def test_prune_node_keeps_the_best_node_of_an_all_dead_layer(g3):
    p = prune_node(g3, _x(200, 3), threshold=100.0)
    assert p.width == [3, 1, 1]


def test_prune_node_handles_mult_nodes():
    g = KanGraph.from_width([2, [1, 2], 1])
    g.set_edge(0, 0, 0, _sym("x"))
    g.set_edge(0, 0, 1, _sym("x"))
    g.set_edge(0, 1, 2, _sym("x"))
    g.set_edge(0, 1, 3, _sym("x"))
    g.set_edge(0, 1, 4, _sym("x"))
    g.set_edge(1, 0, 0, _sym("x"))
    g.set_edge(1, 2, 0, _sym("x"))  # mult node 1 (subnodes 1, 2) leads nowhere
    x = _x(300, 2)
    p = prune_node(g, x, threshold=1e-2)
    assert p.width == [2, [1, 1], 1] and p.mult_arity == 2
    assert np.abs(_y(p, x) - _y(g, x)).max() < 1e-12
    assert p.edge(0, 1, 1).same(g.edge(0, 1, 3))  # the surviving mult node's subnodes moved


def test_prune_input_threshold_topk_and_names(g3):
    x = _x(500, 3)
    p = prune_input(g3, x, threshold=1e-2)
    assert p.input_names == ["a", "b"] and p.width[0] == 2
    np.testing.assert_allclose(_y(p, x[:, :2]), _y(g3, x), atol=2e-3)
    t = prune_input(g3, x=x, top_k=1)
    assert t.input_names == ["b"] or t.input_names == ["a"]
    exact = prune_input(g3, active_inputs=["c", "a"])
    assert exact.input_names == ["a", "c"]
    assert prune_input(g3, active_inputs=[1]).input_names == ["b"]


def test_prune_runs_nodes_then_edges(g3):
    x = _x(500, 3)
    p = prune(g3, x)
    assert p.width == [3, 2, 1]
    assert sum(1 for _ in p.act_edges()) == 4  # sin, x^2, and the two output edges
    assert np.abs(_y(p, x) - _y(g3, x)).max() < 2e-3
    q = prune(attribute(g3, x))  # scores carried by the graph instead of data
    assert q.width == [3, 2, 1] and sum(1 for _ in q.act_edges()) == 4


def test_remove_edge_and_node(g3):
    g = remove_edge(g3, 0, 1, 1, keep_symbolic=False)
    assert g.edge(0, 1, 1) is None and g3.edge(0, 1, 1) is not None
    g = delete_node(g3, 1, 1)
    assert g.width == [3, 2, 1] and g.edge(1, 1, 0).same(g3.edge(1, 2, 0))
    with pytest.raises(PassError, match="no edge"):
        remove_edge(g3, 0, 0, 1)
    with pytest.raises(PassError, match="hidden layer"):
        delete_node(g3, 0, 1)
    with pytest.raises(PassError, match="single node"):
        delete_node(delete_node(delete_node(g3, 1, 2), 1, 1), 1, 0)


def test_remove_edge_switches_off_only_the_spline_as_pykan(g3):
    """pykan's remove_edge zeroes the spline mask: a symbolic part survives."""
    both = g3.copy()
    act = g3.edge(0, 1, 1).copy()
    act.spline = zero_edge(g3, 0, 1).spline
    act.spline.coef = act.spline.coef + 0.5
    both.set_edge(0, 1, 1, act)
    assert both.edge(0, 1, 1).kind == "both"
    g = remove_edge(both, 0, 1, 1)
    assert g.edge(0, 1, 1).kind == "symbolic" and g.edge(0, 1, 1).spline is not None
    kept = g.edge(0, 1, 1).symbolic
    assert (kept.fun, kept.params) == ("x^2", (1.0, 0.0, 1.0, 0.0))
    assert remove_edge(g3, 0, 1, 1).edge(0, 1, 1).same(g3.edge(0, 1, 1))  # symbolic: unchanged
    sp = g3.copy()
    sp.set_edge(0, 0, 0, zero_edge(g3, 0, 0))
    assert remove_edge(sp, 0, 0, 0).edge(0, 0, 0) is None  # spline only: the edge goes


@pytest.mark.parametrize("mode,gone", [
    ("all", [(0, 0, 2), (1, 2, 0)]),
    ("up", [(1, 2, 0)]),
    ("down", [(0, 0, 2)]),
])
def test_remove_node_masks_it_and_keeps_indices(g3, mode, gone):
    """pykan's remove_node zeroes the node's edges; the width and later indices stay."""
    g = remove_node(g3, 1, 2, mode)
    assert g.width == g3.width == [3, 3, 1]
    before = {(l, i, j) for l, i, j, _ in g3.act_edges()}
    assert {(l, i, j) for l, i, j, _ in g.act_edges()} == before - set(gone)
    assert g.edge(1, 1, 0).same(g3.edge(1, 1, 0))  # node 1 is still node 1
    with pytest.raises(PassError, match="mode must be one of"):
        remove_node(g3, 1, 2, "sideways")
    with pytest.raises(PassError, match="hidden layer"):
        remove_node(g3, 0, 0)
    assert {(l, i) for l, i, _, _ in remove_node(g3, 0, 0, "up").act_edges()} == \
        {(l, i) for l, i, _, _ in g3.act_edges()} - {(0, 0)}


def test_remove_node_down_cuts_every_factor_of_a_mult_node():
    g = KanGraph.from_width([2, [1, 1], 1])
    for i in range(2):
        for j in range(3):
            g.set_edge(0, i, j, _sym("x", c=float(i + j + 1)))
    g.set_edge(1, 0, 0, _sym("x"))
    g.set_edge(1, 1, 0, _sym("x"))
    h = remove_node(g, 1, 1, "down")  # the mult node takes subnodes 1 and 2
    assert sorted((i, j) for _, i, j, _ in h.act_edges(0)) == [(0, 0), (1, 0)]


@pytest.mark.parametrize("call,err,match", [
    (lambda g, x: prune_edge(g), PassError, "needs attribution scores"),
    (lambda g, x: prune_edge(g, x, threshold=-1.0), PassError, "threshold"),
    (lambda g, x: prune_node(g, active_neurons={2: [0]}), PassError, "hidden layer"),
    (lambda g, x: prune_node(g, active_neurons={1: []}), PassError, "empty"),
    (lambda g, x: prune_input(g, x=x, top_k=4), PassError, "top_k"),
    (lambda g, x: prune_input(g, top_k=1, active_inputs=[0]), PassError, "not both"),
    (lambda g, x: prune_input(g, active_inputs=["z"]), PassError, "no input named 'z'"),
    (lambda g, x: prune_input(g, x=x[:, :2]), DataError, "shape"),
])
def test_bad_arguments(g3, call, err, match):
    with pytest.raises(err, match=match):
        call(g3, _x(50, 3))


def test_restrict_dataset_by_names():
    data = kanir.create_dataset(lambda x: x[:, [0]], 3, train_num=10, test_num=5)
    out = restrict_dataset(data, ["a", "b", "c"], ["a", "c"])
    assert out["train_input"].shape == (10, 2) and data["train_input"].shape == (10, 3)
    assert torch.equal(out["test_input"][:, 1], data["test_input"][:, 2])
    with pytest.raises(DataError, match="not among"):
        restrict_dataset(data, ["a", "b", "c"], ["d"])


# ---------------------------------------------------------------------- the facade's one rule
def test_facade_prunes_in_place_and_returns_self():
    """pykan's prune() returns a copy while prune_edge() works in place (#340, #425)."""
    data = kanir.create_dataset(lambda x: torch.sin(x[:, [0]]) + 0.0 * x[:, [1]], 2,
                                train_num=100, test_num=100, dtype=torch.float64)
    m = kanir.KAN(width=[2, 3, 1], grid=3, seed=0, dtype=torch.float64, device="cpu")
    m.fit(data, steps=3, lamb=1e-3, progress=False, update_grid=False)
    for call in (lambda: m.prune_edge(), lambda: m.prune_node(), lambda: m.prune(),
                 lambda: m.prune_input(top_k=1)):
        before = m.version
        assert call() is m
        assert m.version != before  # recorded as a state change
    assert m.input_names == ["x_1"] and m.cache_x.shape[1] == 1


@pytest.mark.slow
def test_prune_input_finds_the_informative_few_of_100():
    """y = sum_{i<100} x_i^2 / 2^i on [-1, 1]^100: input i scores about 2^-i."""
    n = 100
    w = torch.tensor([2.0 ** -i for i in range(n)], dtype=torch.float64)
    data = kanir.create_dataset(lambda x: (x ** 2 * w).sum(1, keepdim=True), n, train_num=600,
                                test_num=300, dtype=torch.float64)
    m = kanir.KAN(width=[n, 1], grid=3, seed=0, dtype=torch.float64, device="cpu")
    m.fit(data, steps=8, progress=False, update_grid=False)
    fs = m.feature_score.numpy()
    assert np.all(np.diff(fs[:6]) < 0) and fs[20:].max() < 0.03
    names = m.input_names
    kept = kanir.passes.prune.prune_input(m.graph, data["train_input"], threshold=0.04).input_names
    assert kept[:5] == names[:5] and len(kept) <= 7
    m.prune_input(top_k=5)
    assert m.input_names == names[:5]
    d5 = restrict_dataset(data, names, m.input_names)
    with torch.no_grad():
        rmse = float(((m(d5["test_input"]) - d5["test_label"]) ** 2).mean().sqrt())
    assert rmse < 0.05 * float(data["test_label"].std())  # fits right after pruning
    hist = m.fit(d5, steps=3, progress=False, update_grid=False)
    assert hist["test_rmse"][-1] < 0.035 * float(data["test_label"].std())
