"""Trick A: a discovered function tree becomes the wiring of a new KAN (passes.structure)."""

import pytest
import sympy
import torch

import kanir
from kanir.errors import PassError
from kanir.passes.structure import graph_from_tree, module_spec_from_tree


def _qvbm(x):
    return (x[:, 0] * x[:, 1] * x[:, 2] / x[:, 3])[:, None]


def test_structured_graphs_follow_the_tree():
    cases = {
        "(x1**2+x2**2)**2 + (x3**2+x4**2)**2": ("add(gsep(x1, x2), gsep(x3, x4))", [4, 2, 1], 6),
        "x1 + x2*x3": ("add(x1, mul(x2, x3))", [3, [1, 1], 1], 5),
        "sin(x1)/sqrt(x2**2+x3**2)": ("mul(x1, gsep(x2, x3))", [3, 2, [0, 1]], 5),
    }
    for expr, (compact, width, n_edges) in cases.items():
        n = len(sympy.sympify(expr).free_symbols)
        t = kanir.tree(expr, [(0.5, 2)] * n)
        assert t.compact() == compact
        g = graph_from_tree(t)
        assert g.width == width
        assert sum(1 for _ in g.act_edges()) == n_edges
        g.check()


def test_variables_of_different_groups_are_not_connected():
    t = kanir.tree("(x1**2+x2**2)**2 + (x3**2+x4**2)**2", [(0.5, 2)] * 4)
    g = graph_from_tree(t)
    # hidden node 0 sees only x1, x2; hidden node 1 only x3, x4
    assert {(i, j) for _, i, j, _ in g.act_edges(0)} == {(0, 0), (1, 0), (2, 1), (3, 1)}
    assert module_spec_from_tree(t)["gsep(x1, x2)"] == ["x1", "x2"]


def test_trick_a_qvbm_structured_kan_fits_and_keeps_its_structure():
    names = ["q", "v", "B", "m"]
    t = kanir.tree(_qvbm, [(0.5, 2)] * 4, variables=names)
    assert t.compact() == "mul(q, v, B, m)"
    model = kanir.KAN.from_tree(t, device="cpu")
    assert model.width_spec == [4, [0, 1]] and model.input_names == names
    ds = kanir.create_dataset(_qvbm, n_var=4, ranges=[0.5, 2], seed=0, dtype=torch.float64)
    hist = model.fit(ds, opt="LBFGS", steps=30, progress=False)
    assert hist["test_rmse"][-1] < 2e-2 * float(ds["test_label"].std())
    assert sum(1 for _ in model.graph.act_edges()) == 4  # absent edges stayed absent


def test_graph_from_tree_rejects_other_objects():
    with pytest.raises(PassError, match="needs a kanir FunctionTree, got str"):
        graph_from_tree("mul(q, v)")


@pytest.mark.slow
def test_trick_a_end_to_end_gives_back_qvb_over_m():
    """Paper example: tree shows mul(q, v, B, m) -> structured KAN -> fit -> auto_symbolic."""
    names = ["q", "v", "B", "m"]
    t = kanir.tree(_qvbm, [(0.5, 2)] * 4, variables=names)
    model = kanir.KAN.from_tree(t, device="cpu")
    ds = kanir.create_dataset(_qvbm, n_var=4, ranges=[0.5, 2], seed=0, dtype=torch.float64)
    model.fit(ds, opt="LBFGS", steps=30, progress=False)
    model.auto_symbolic(lib=["x", "1/x", "x^2", "sqrt", "exp", "log", "sin"], verbose=0)
    model.fit(ds, opt="LBFGS", steps=20, progress=False, update_grid=False)
    q, v, B, m = sympy.symbols(names)
    assert model.symbolic_formula()[0] == [q * v * B / m]


def test_sym_block_hidden_nodes_start_different_and_fit():
    """A dense sym block's 2m+1 hidden nodes used to start as the same line (x1 + x2): equal
    gradients kept them equal, so the block fitted like one node (I.6.2: 33% off)."""
    f = lambda x: (torch.exp(-(x[:, 1] / x[:, 0]) ** 2 / 2) / x[:, 0])[:, None]  # noqa: E731
    t = kanir.tree("exp(-(x2/x1)**2/2)/x1", [(1, 3)] * 2)
    assert t.compact() == "sym(x1, x2)"
    g = graph_from_tree(t, grid_range=(1, 3), seed=0)
    slopes = {(i, j): float(a.spline.coef[-1] - a.spline.coef[0]) for _, i, j, a in g.act_edges(0)}
    assert len({round(v, 9) for v in slopes.values()}) == len(slopes) == 10
    assert graph_from_tree(t, grid_range=(1, 3), seed=0).same(g)
    model = kanir.KAN.from_tree(t, device="cpu", grid_range=(1.0, 3.0), seed=0)
    ds = kanir.create_dataset(f, n_var=2, ranges=[1, 3], seed=0, dtype=torch.float64)
    model.refine(5, x=ds["train_input"])
    hist = model.fit(ds, steps=100, progress=False, seed=0)
    assert hist["test_rmse"][-1] < 2e-2 * float(ds["test_label"].std())
