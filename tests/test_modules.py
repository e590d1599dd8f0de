"""The module-spec grammar, the module pass (edge masks that training honours), the paper's
Fig. 4 structures, and sparse_init (Trick B)."""

import networkx as nx
import numpy as np
import pytest
import torch

import kanir
from kanir.errors import PassError
from kanir.grammar.module_spec import ModuleSpecError, parse_module_spec
from kanir.ir.graph import N
from kanir.passes._eval import evaluate
from kanir.passes.modules import module, module_cuts


# ---------------------------------------------------------------------- grammar
def test_parse_pairs_and_positions():
    spec = parse_module_spec("[0,1]->[0,1]->[0, 1] -> [-1]")
    assert spec.n_layers == 2
    assert [g.indices for g in spec.groups] == [(0, 1), (0, 1), (0, 1), (-1,)]
    assert spec.groups[3].columns == (26,)
    (a, b), (c, d) = spec.pairs()
    assert a.indices == (0, 1) and d.indices == (-1,)


@pytest.mark.parametrize("text,column,words", [
    ("[0,1]->[]", 8, "empty group"),
    ("[0,1]->[0", 10, "ends too early"),
    ("[0,1]x[0]", 6, "unexpected character 'x'"),
    ("[0 1]->[0]", 4, "expected ',' or ']'"),
    ("[0,1]->[2,2]", 11, "appears twice"),
    ("[0,a]->[0]", 4, "unexpected character 'a'"),
])
def test_syntax_errors_name_the_column(text, column, words):
    with pytest.raises(ModuleSpecError) as e:
        parse_module_spec(text)
    assert e.value.column == column
    assert words in str(e.value)
    assert f"column {column}" in str(e.value)
    assert str(e.value).splitlines()[-1].index("^") == 4 + column - 1  # caret under it


@pytest.mark.parametrize("text", ["[0]", "[0]->[1]->[0]", "[0,1]->[0]->[1]->[0]->[1]"])
def test_wrong_number_of_stages(text):
    with pytest.raises(ModuleSpecError, match="groups come in pairs"):
        parse_module_spec(text)


@pytest.mark.parametrize("bad", ["", "   ", 3, None, "[0]\n->[1]"])
def test_non_specs(bad):
    with pytest.raises(PassError):
        parse_module_spec(bad)


# ---------------------------------------------------------------------- the pass
@pytest.fixture
def g441():
    m = kanir.KAN(width=[4, 4, 2, 1], grid=3, seed=0, dtype=torch.float64, device="cpu")
    return m.graph


def test_module_cuts_exactly_the_crossing_edges(g441):
    g = module(g441, 0, "[0,1]->[0,1]->[0,1]->[0]")
    for i in range(4):
        for j in range(4):
            assert (g.edge(0, i, j) is None) == ((i < 2) != (j < 2)), (i, j)
    for i in range(4):
        for j in range(2):
            assert (g.edge(1, i, j) is None) == ((i < 2) != (j == 0)), (i, j)
    assert all(g.edge(2, i, 0) is not None for i in range(2))  # layer 2 untouched
    assert g441.edge(0, 0, 2) is not None  # input not mutated


def test_negative_indices_count_from_the_end(g441):
    a = module(g441, 1, "[-1]->[-1]")
    b = module(g441, 1, "[3]->[1]")
    assert a.same(b)


@pytest.mark.parametrize("start,spec,column,words", [
    (0, "[0,7]->[0]", 4, "index 7 is not a node of layer 0"),
    (0, "[0]->[0,4]", 9, "index 4 is not a subnode of layer 1"),
    (1, "[0]->[0]->[0,2]->[0]", 14, "index 2 is not a node of layer 2"),
    (0, "[0]->[-5]", 7, "-4..-1 from the end"),
    (0, "[0,-4]->[1]", 4, "index -4 is node 0 of layer 0, already in this group"),
])
def test_spec_does_not_fit_the_model(g441, start, spec, column, words):
    with pytest.raises(ModuleSpecError) as e:
        module(g441, start, spec)
    assert e.value.column == column and words in str(e.value)


def test_too_many_layers_for_the_model(g441):
    with pytest.raises(ModuleSpecError, match="has only 3 layer"):
        module(g441, 1, "[0]->[0]->[0]->[0]->[0]->[0]")
    with pytest.raises(PassError, match="start_layer"):
        module(g441, 3, "[0]->[0]")


def test_cut_positions_listed(g441):
    cuts = module_cuts(g441, 2, "[0]->[0]")
    assert cuts == [(2, 1, 0)]


# ---------------------------------------------------------------------- training honours masks
def test_masked_edges_stay_exactly_zero_through_fit():
    data = kanir.create_dataset(lambda x: x[:, [0]] * x[:, [1]] + x[:, [2]] ** 2, 3,
                                train_num=64, test_num=64, dtype=torch.float64)
    m = kanir.KAN(width=[3, 3, 1], grid=3, seed=0, dtype=torch.float64, device="cpu")
    m.module(0, "[0,1]->[0,1]")
    cut = [(0, i, j) for i in range(3) for j in range(3) if (i < 2) != (j < 2)]
    m.fit(data, steps=3, progress=False, lamb=1e-3)
    g = m.graph
    assert all(g.edge(*e) is None for e in cut)
    acts = evaluate(g, data["train_input"])
    for l, i, j in cut:
        assert np.all(acts[l].edge[:, i, j] == 0.0)
    layer = m.net.layers[0]
    for _, i, j in cut:
        assert float(layer.mask_sp[i, j]) == 0.0 and float(layer.mask_sym[i, j]) == 0.0


# ---------------------------------------------------------------------- the paper's Fig. 4
def test_multiplicatively_separable_structure():
    """f1(x1) f2(x2) f3(x3) f4(x4): each input feeds its own factor of one mult node."""
    data = kanir.create_dataset(
        lambda x: (torch.sin(x[:, [0]]) + 1.5) * (x[:, [1]] + 2) * torch.exp(x[:, [2]] / 2)
        * (x[:, [3]] ** 2 + 1), 4, train_num=128, test_num=128, dtype=torch.float64)
    m = kanir.KAN(width=[4, [0, 1], 1], mult_arity=4, grid=3, seed=0, dtype=torch.float64,
                  device="cpu")
    for i in range(4):
        m.module(0, f"[{i}]->[{i}]")
    assert {(i, j) for _, i, j, _ in m.graph.act_edges(0)} == {(i, i) for i in range(4)}
    hist = m.fit(data, steps=4, progress=False)
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    # the product node (1, 0) is exactly multiplicatively separable in every variable
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, (50, 4)), rng.uniform(-1, 1, (50, 4))
    g = m.graph
    prod = lambda x: evaluate(g, x)[0].output[:, 0]
    for v in range(4):
        ab, ba = a.copy(), b.copy()
        ab[:, v], ba[:, v] = b[:, v], a[:, v]
        assert np.allclose(prod(a) * prod(b), prod(ab) * prod(ba), rtol=1e-10, atol=1e-14)


def test_hierarchical_structure_h_of_f_and_g():
    """h(f(x1, x2), g(x3, x4)) with the paper's two specs."""
    data = kanir.create_dataset(
        lambda x: (x[:, [0]] * x[:, [1]] + 1) * (x[:, [2]] + x[:, [3]]) ** 2, 4,
        train_num=128, test_num=128, dtype=torch.float64)
    m = kanir.KAN(width=[4, 4, 2, 1], grid=3, seed=0, dtype=torch.float64, device="cpu")
    m.module(0, "[0,1]->[0,1]->[0,1]->[0]").module(0, "[2,3]->[2,3]->[2,3]->[1]")
    m.fit(data, steps=4, progress=False)
    g = m.graph
    dep = nx.ancestors(g.nx, N(2, 0)) & {N(0, i) for i in range(4)}
    assert dep == {N(0, 0), N(0, 1)}
    dep = nx.ancestors(g.nx, N(2, 1)) & {N(0, i) for i in range(4)}
    assert dep == {N(0, 2), N(0, 3)}
    x = np.random.default_rng(1).uniform(-1, 1, (40, 4))
    x2 = x.copy()
    x2[:, 2:] = -x2[:, 2:]
    f1, f2 = evaluate(g, x)[1].output, evaluate(g, x2)[1].output
    assert np.array_equal(f1[:, 0], f2[:, 0]) and not np.allclose(f1[:, 1], f2[:, 1])


# ---------------------------------------------------------------------- Trick B
def test_sparse_init_connects_nearby_nodes():
    m = kanir.KAN(width=[4, 8, 2], grid=3, seed=0, sparse_init=True, device="cpu")
    g = m.graph
    e0 = {(i, j) for _, i, j, _ in g.act_edges(0)}
    assert e0 == {(i, j) for j in range(8) for i in range(4) if j // 2 == i}
    e1 = {(i, j) for _, i, j, _ in g.act_edges(1)}
    assert e1 == {(i, j) for i in range(8) for j in range(2) if i // 4 == j}
    dense = kanir.KAN(width=[4, 8, 2], grid=3, seed=0, device="cpu").graph
    assert sum(1 for _ in dense.act_edges()) == 4 * 8 + 8 * 2
