"""auto_swap: lower connection cost, modules as contiguous blocks, the function unchanged, and
layers of different widths laid out on a common scale."""

import itertools

import numpy as np
import pytest
import torch

import kanir
from kanir import Activation
from kanir.backends.torch import lower
from kanir.errors import PassError
from kanir.ir.graph import KanGraph
from kanir.passes.attribution import attribute, score_arrays
from kanir.passes.swap import (
    apply_permutations,
    auto_swap,
    connection_cost,
    find_swap,
    permute_layer,
)


def _sym(fun, c=1.0, d=0.0):
    return Activation.symbolic_fn(fun, 1.0, 0.0, c, d)


def _bits(n):
    return np.array(list(itertools.product([-1.0, 1.0], repeat=n)))


def _y(graph, x):
    with torch.no_grad():
        return lower(graph)(torch.as_tensor(x)).numpy()


def _blocks(graph, inputs_of_module, layer=1):
    """For each module (a set of input indices), the slots of layer-1 nodes it feeds."""
    out = []
    for ins in inputs_of_module:
        out.append(sorted({j for _, i, j, _ in graph.act_edges(layer - 1) if i in ins}))
    return out


def _contiguous_in_order(blocks):
    flat = [s for b in blocks for s in b]
    return all(b == list(range(b[0], b[-1] + 1)) for b in blocks) and flat == sorted(flat)


def _parity_graph():
    """Multitask sparse parity y_j = x_{2j} x_{2j+1} (±1 bits; x_a x_b = ((x_a+x_b)^2 -
    (x_a-x_b)^2)/4) with three hidden nodes per task: widths [10, 15, 5]."""
    g = KanGraph.from_width([10, 15, 5])
    for t in range(5):
        a, b = 2 * t, 2 * t + 1
        h = 3 * t
        g.set_edge(0, a, h, _sym("x"))
        g.set_edge(0, b, h, _sym("x"))
        g.set_edge(0, a, h + 1, _sym("x"))
        g.set_edge(0, b, h + 1, _sym("x", c=-1.0))
        g.set_edge(0, a, h + 2, _sym("x"))
        g.set_edge(0, b, h + 2, _sym("x"))
        g.set_edge(1, h, t, _sym("x^2", c=0.125))
        g.set_edge(1, h + 1, t, _sym("x^2", c=-0.25))
        g.set_edge(1, h + 2, t, _sym("x^2", c=0.125))
    return g


def _majority_graph():
    """Hierarchical majority of 9 bits, two hidden nodes per group: widths [9, 6, 1, 1]."""
    g = KanGraph.from_width([9, 6, 1, 1])
    for k in range(3):
        for r in range(3):
            g.set_edge(0, 3 * k + r, 2 * k, _sym("x"))
            g.set_edge(0, 3 * k + r, 2 * k + 1, _sym("x"))
        g.set_edge(1, 2 * k, 0, _sym("sgn", c=0.5))
        g.set_edge(1, 2 * k + 1, 0, _sym("sgn", c=0.5))
    g.set_edge(2, 0, 0, _sym("sgn"))
    return g


def test_parity_blocks_come_back_after_shuffling():
    x = _bits(10)
    g = _parity_graph()
    y = x[:, 0::2] * x[:, 1::2]
    assert np.allclose(_y(g, x), y, atol=1e-12)
    shuffled = permute_layer(g, 1, np.random.default_rng(0).permutation(15))
    modules = [{2 * t, 2 * t + 1} for t in range(5)]
    assert not _contiguous_in_order(_blocks(shuffled, modules))
    sg = attribute(shuffled, x)
    swapped = auto_swap(sg)
    assert connection_cost(swapped) < 0.5 * connection_cost(sg)
    assert _blocks(swapped, modules) == [[3 * t, 3 * t + 1, 3 * t + 2] for t in range(5)]
    assert np.abs(_y(swapped, x) - _y(shuffled, x)).max() < 1e-12


def test_majority_blocks_come_back_after_shuffling():
    x = _bits(9)
    g = _majority_graph()
    maj = lambda a: np.sign(a.sum(axis=1))
    y = maj(np.stack([maj(x[:, 3 * k:3 * k + 3]) for k in range(3)], axis=1))
    assert np.array_equal(_y(g, x)[:, 0], y)
    shuffled = permute_layer(g, 1, [5, 0, 3, 1, 4, 2])
    perms = find_swap(shuffled, x)
    swapped = apply_permutations(shuffled, perms)
    assert set(perms) == {1, 2} and perms[2] == [0]
    modules = [{3 * k, 3 * k + 1, 3 * k + 2} for k in range(3)]
    assert _blocks(swapped, modules) == [[0, 1], [2, 3], [4, 5]]
    assert connection_cost(swapped, x) < connection_cost(shuffled, x)
    assert np.array_equal(_y(swapped, x), _y(g, x))


def test_cost_uses_each_layers_own_width():
    """pykan's auto_swap placed every layer with the first hidden width; here node i of a layer
    of width n sits at (i + 0.5) / n."""
    g = KanGraph.from_width([2, 4, 1])
    g.set_edge(0, 0, 3, _sym("x"))
    g.set_edge(0, 1, 0, _sym("x", c=2.0))
    g.set_edge(1, 3, 0, _sym("x"))
    g.set_edge(1, 0, 0, _sym("x"))
    x = np.random.default_rng(0).uniform(-1, 1, (500, 2))
    sg = attribute(g, x)
    e = score_arrays(sg).edge
    p0, p1 = np.array([0.25, 0.75]), (np.arange(4) + 0.5) / 4
    want = (e[0][0, 3] * abs(p0[0] - p1[3]) + e[0][1, 0] * abs(p0[1] - p1[0])
            + e[1][3, 0] * abs(p1[3] - 0.5) + e[1][0, 0] * abs(p1[0] - 0.5))
    assert connection_cost(sg) == pytest.approx(want, rel=1e-12)
    swapped = auto_swap(sg)  # both nodes move towards the output at 0.5, keeping their order
    used = [sorted(j for _, i, j, _ in swapped.act_edges(0) if i == k) for k in (0, 1)]
    assert used == [[1], [2]]


def test_sum_and_mult_nodes_are_permuted_separately():
    g = KanGraph.from_width([2, [2, 2], 1])
    g.set_edge(0, 1, 0, _sym("x"))
    g.set_edge(0, 0, 1, _sym("x"))
    g.set_edge(0, 1, 2, _sym("x"))
    g.set_edge(0, 1, 3, _sym("x"))
    g.set_edge(0, 0, 4, _sym("x"))
    g.set_edge(0, 0, 5, _sym("x"))
    for i in range(4):
        g.set_edge(1, i, 0, _sym("x"))
    x = np.random.default_rng(0).uniform(-1, 1, (300, 2))
    swapped = auto_swap(g, x)
    kinds = [swapped.node(1, i)["kind"] for i in range(4)]
    assert kinds == ["sum", "sum", "mult", "mult"]
    assert np.abs(_y(swapped, x) - _y(g, x)).max() < 1e-12
    assert swapped.edge(0, 0, 0) is not None and swapped.edge(0, 0, 2) is not None
    with pytest.raises(PassError, match="mult node before a sum node"):
        permute_layer(g, 1, [2, 1, 0, 3])


def test_input_untouched_and_bad_arguments():
    g = _majority_graph()
    before = g.copy()
    auto_swap(g, _bits(9))
    assert g.same(before) and all("score" not in a for _, a in g.nx.nodes(data=True))
    with pytest.raises(PassError, match="needs attribution scores"):
        auto_swap(g)
    with pytest.raises(PassError, match="permutation of 0..5"):
        permute_layer(g, 1, [0, 1, 2])
    with pytest.raises(PassError, match="hidden layer"):
        permute_layer(g, 0, list(range(9)))


def test_facade_auto_swap_in_place():
    x = torch.as_tensor(_bits(9))
    m = kanir.KAN.from_graph(permute_layer(_majority_graph(), 1, [5, 0, 3, 1, 4, 2]),
                             device="cpu")
    y0 = m(x).detach()
    cost0 = m.connection_cost(x)
    assert m.auto_swap(x) is m
    assert m.connection_cost(x) < cost0 and torch.equal(m(x).detach(), y0)


# ---------------------------------------------------------------------- trained networks
def _dataset(x, y):
    return {"train_input": x, "train_label": y, "test_input": x, "test_label": y}


@pytest.mark.slow
def test_trained_multitask_sparse_parity():
    x = torch.as_tensor(_bits(10))
    y = torch.stack([x[:, 2 * j] * x[:, 2 * j + 1] for j in range(5)], 1)
    m = kanir.KAN(width=[10, 10, 5], grid=3, seed=0, dtype=torch.float64, device="cpu")
    hist = m.fit(_dataset(x, y), steps=10, lamb=1e-3, progress=False, update_grid=False)
    assert hist["train_loss"][-1] < 1e-3**0.5  # RMSE
    m.set_graph(permute_layer(m.graph, 1, np.random.default_rng(0).permutation(10)))
    cost0 = m.connection_cost()
    m.auto_swap()
    assert m.connection_cost() < 0.5 * cost0
    sc = m.edge_scores[0].numpy()
    main = [sorted(np.nonzero(sc[2 * t] + sc[2 * t + 1] > 0.05)[0].tolist()) for t in range(5)]
    assert _contiguous_in_order(main), main


@pytest.mark.slow
def test_trained_hierarchical_majority_voting():
    x = torch.as_tensor(_bits(9))
    maj = lambda a: torch.sign(a.sum(1, keepdim=True))
    y = maj(torch.cat([maj(x[:, 3 * k:3 * k + 3]) for k in range(3)], 1))
    m = kanir.KAN(width=[9, 3, 1, 1], grid=3, seed=0, dtype=torch.float64, device="cpu")
    hist = m.fit(_dataset(x, y), steps=15, lamb=1e-3, progress=False, update_grid=False)
    assert hist["train_loss"][-1] < 1e-3**0.5  # RMSE
    cost0 = m.connection_cost()
    m.auto_swap()
    assert m.connection_cost() < cost0
    sc = m.edge_scores[0].numpy()
    groups = [sorted(np.nonzero(sc[3 * k:3 * k + 3].sum(0) > 0.1)[0].tolist()) for k in range(3)]
    assert groups == [[0], [1], [2]]
