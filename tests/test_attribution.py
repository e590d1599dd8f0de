"""Attribution scores (the paper's Eq. 9) on hand-built and trained KANs."""

import numpy as np
import pytest
import torch

import kanir
from kanir import Activation
from kanir.errors import DataError, KanirError, PassError
from kanir.ir.graph import KanGraph
from kanir.passes.attribution import attribute, has_scores, neuron_attribution, score_arrays
from kanir.passes.prune import remove_edge


def _sym(fun, a=1.0, b=0.0, c=1.0, d=0.0):
    return Activation.symbolic_fn(fun, a, b, c, d)


def _x(n, d, seed=0, lo=-1.0, hi=1.0):
    return np.random.default_rng(seed).uniform(lo, hi, (n, d))


# ---------------------------------------------------------------------- Eq. 9 by hand
def test_scores_match_eq9_computed_by_hand():
    g = KanGraph.from_width([2, 2, 1])
    g.set_edge(0, 0, 0, _sym("sin", 2.0))
    g.set_edge(0, 1, 0, _sym("x^2", c=0.5))
    g.set_edge(0, 1, 1, _sym("x", c=3.0, d=1.0))
    g.set_edge(1, 0, 0, _sym("tanh", 1.5))
    g.set_edge(1, 1, 0, _sym("x^2", c=0.2))
    x = _x(500, 2)
    s = score_arrays(attribute(g, x, eps=0.0))
    # by hand
    e000, e010, e011 = np.sin(2 * x[:, 0]), 0.5 * x[:, 1] ** 2, 3 * x[:, 1] + 1
    h0, h1 = e000 + e010, e011
    e100, e110 = np.tanh(1.5 * h0), 0.2 * h1 ** 2
    y = e100 + e110
    b100, b110 = e100.std() / y.std(), e110.std() / y.std()
    a10, a11 = b100, b110
    b000, b010, b011 = a10 * e000.std() / h0.std(), a10 * e010.std() / h0.std(), a11
    assert np.allclose(s.edge[1][:, 0], [b100, b110], rtol=1e-12)
    assert np.allclose(s.node[1], [a10, a11], rtol=1e-12)
    assert np.allclose(s.edge[0], [[b000, 0.0], [b010, b011]], rtol=1e-12)
    assert np.allclose(s.feature, [b000, b010 + b011], rtol=1e-12)
    assert s.node[2].tolist() == [1.0]
    # pykan's attribute(1): each hidden node's inputs, starting from the node's own score
    per = neuron_attribution(g, x, 1, eps=0.0)
    assert np.allclose(per, [[b000, b010], [0.0, b011]], rtol=1e-12)
    ones = neuron_attribution(g, x, 1, out_score=[1.0, 1.0], eps=0.0)
    assert np.allclose(ones, [[b000 / a10, b010 / a10], [0.0, 1.0]], rtol=1e-12)
    assert np.allclose(neuron_attribution(g, x, 2, eps=0.0), [s.feature], rtol=1e-12)
    with pytest.raises(PassError, match="out_score must have one entry per node of layer 1"):
        neuron_attribution(g, x, 1, out_score=[1.0])


def test_subnodes_of_a_mult_node_inherit_its_score():
    g = KanGraph.from_width([2, [1, 1], 1])
    g.set_edge(0, 0, 0, _sym("sin"))
    g.set_edge(0, 0, 1, _sym("x"))
    g.set_edge(0, 1, 2, _sym("x", d=2.0))
    g.set_edge(1, 0, 0, _sym("x"))
    g.set_edge(1, 1, 0, _sym("x", c=0.3))
    s = score_arrays(attribute(g, _x(300, 2)))
    assert s.subnode[1][1] == s.subnode[1][2] == s.node[1][1] > 0
    assert s.subnode[1][0] == s.node[1][0]


def test_several_outputs_average_and_output_selects():
    g = KanGraph.from_width([2, 2], output_names=["u", "v"])
    g.set_edge(0, 0, 0, _sym("x"))
    g.set_edge(0, 1, 1, _sym("x"))
    x = _x(200, 2)
    both = score_arrays(attribute(g, x, eps=0.0))
    assert np.allclose(both.feature, [0.5, 0.5]) and np.allclose(both.node[1], [0.5, 0.5])
    only_v = score_arrays(attribute(g, x, output="v", eps=0.0))
    assert np.allclose(only_v.feature, [0.0, 1.0])
    assert np.array_equal(score_arrays(attribute(g, x, output=1, eps=0.0)).feature, only_v.feature)


# ---------------------------------------------------------------------- paper's tests
def _quartic_graph(scale=10.0):
    """(x1^2 + x2^2)^2 + (x3^2 + x4^2)^2 with the second branch scaled up by ``scale`` on the
    first layer and back down on the second: same function, very different edge norms."""
    g = KanGraph.from_width([4, 2, 1])
    for i in range(2):
        g.set_edge(0, i, 0, _sym("x^2"))
        g.set_edge(0, 2 + i, 1, _sym("x^2", c=scale))
    g.set_edge(1, 0, 0, _sym("x^2"))
    g.set_edge(1, 1, 0, _sym("x^2", c=1 / scale**2))
    return g


def test_symmetric_inputs_score_alike_while_norms_differ():
    x = _x(4000, 4, seed=1)
    g = attribute(_quartic_graph(), x)
    s = score_arrays(g)
    assert np.ptp(s.feature) < 0.1 * s.feature.min()
    l1 = np.array([g.edge_attrs(0, i, i // 2)["l1"] for i in range(4)])
    assert l1[2:].min() > 5 * l1[:2].max()  # the plain L1 norms disagree by 10x


def test_dead_downstream_scores_zero_whatever_the_edge_norm():
    m = kanir.KAN(width=[2, 5, 1], grid=5, seed=0, dtype=torch.float64, device="cpu")
    g = remove_edge(m.graph, 1, 4, 0)  # hidden node 4 now feeds nothing
    x = _x(300, 2)
    sg = attribute(g, x)
    for i in range(2):
        a = sg.edge_attrs(0, i, 4)
        assert a["score"] == 0.0 and a["l1"] > 1e-3
    assert sg.node(1, 4)["score"] == 0.0


@pytest.mark.slow
def test_trained_dead_branches_score_far_below_their_l1_norm():
    data = kanir.create_dataset(lambda x: torch.exp(torch.sin(np.pi * x[:, [0]]) + x[:, [1]] ** 2),
                                2, train_num=200, test_num=200, dtype=torch.float64)
    m = kanir.KAN(width=[2, 5, 1], grid=5, seed=1, dtype=torch.float64, device="cpu")
    m.fit(data, steps=12, lamb=0.01, progress=False)
    g = attribute(m.graph, data["train_input"])
    s = score_arrays(g)
    dead = [j for j in range(5) if s.node[1][j] < 0.01 * s.node[1].max()]
    assert 1 <= len(dead) <= 4
    checked = 0
    for j in dead:
        for i in range(2):
            a = g.edge_attrs(0, i, j)
            if a is not None and a["l1"] > 1e-2:
                assert a["score"] < 0.05 * a["l1"], (i, j, a["score"], a["l1"])
                checked += 1
    assert checked >= 2


@pytest.mark.slow
def test_trained_symmetric_quartic_inputs_score_alike():
    data = kanir.create_dataset(
        lambda x: (x[:, [0]] ** 2 + x[:, [1]] ** 2) ** 2 + (x[:, [2]] ** 2 + x[:, [3]] ** 2) ** 2,
        4, train_num=400, test_num=400, dtype=torch.float64)
    m = kanir.KAN(width=[4, 2, 1], grid=5, seed=0, dtype=torch.float64, device="cpu")
    hist = m.fit(data, steps=25, progress=False)
    assert hist["test_rmse"][-1] < 0.02
    fs = m.feature_score.numpy()
    assert np.ptp(fs) < 0.1 * fs.min(), fs
    g = m.scored_graph()
    l1 = np.array([max(g.edge_attrs(0, i, j)["l1"] for j in range(2)) for i in range(4)])
    assert np.ptp(l1) > 0.2 * l1.min(), l1  # the edge norms would rank the inputs


# ---------------------------------------------------------------------- IR and facade
def test_scores_are_stored_on_a_copy_and_input_is_untouched():
    g = _quartic_graph()
    before = g.copy()
    sg = attribute(g, _x(100, 4))
    assert not has_scores(g) and has_scores(sg)
    assert g.same(before) and not sg.same(g)  # same() compares the scores too
    bare = sg.copy()
    for *_, a in bare.nx.edges(data=True):
        for key in ("score", "std", "mean", "l1"):
            a.pop(key, None)
    for _, a in bare.nx.nodes(data=True):
        a.pop("score", None)
    assert bare.same(g)
    assert all("score" not in a for _, a in g.nx.nodes(data=True))
    assert set(sg.edge_attrs(0, 0, 0)) >= {"act", "score", "std", "mean", "l1"}


def test_facade_scores_like_pykan():
    data = kanir.create_dataset(lambda x: x[:, [0]] ** 2 + 0.1 * x[:, [1]], 2, train_num=100,
                                test_num=100, dtype=torch.float64)
    m = kanir.KAN(width=[2, 3, 1], grid=3, seed=0, dtype=torch.float64, device="cpu")
    with pytest.raises(KanirError, match="call fit first"):
        m.attribute()
    m.fit(data, steps=2, progress=False, update_grid=False)
    assert m.attribute() is m
    assert m.feature_score.shape == (2,) and m.feature_score[0] > m.feature_score[1]
    assert [t.shape for t in m.node_scores] == [(2,), (3,), (1,)]
    assert [tuple(t.shape) for t in m.edge_scores] == [(2, 3), (3, 1)]
    assert torch.allclose(m.node_scores[0], m.feature_score)
    g = m.scored_graph()
    assert g.node(0, 0)["score"] == pytest.approx(float(m.feature_score[0]))
    m.fit(data, steps=1, progress=False, update_grid=False)
    assert m._scored is None  # a state change forgets stale scores


def test_bad_arguments():
    g = _quartic_graph()
    with pytest.raises(DataError, match=r"shape \(batch, 4\)"):
        attribute(g, np.zeros((10, 3)))
    with pytest.raises(DataError, match="at least 2 samples"):
        attribute(g, np.zeros((1, 4)))
    with pytest.raises(PassError, match="no output named 'z'"):
        attribute(g, _x(10, 4), output="z")
    with pytest.raises(PassError, match="output must be"):
        attribute(g, _x(10, 4), output=3)
    with pytest.raises(PassError, match="run attribute"):
        score_arrays(g)
