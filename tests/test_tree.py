"""Tests of the tree converter (kanir.science.tree) and its graphviz backend (kanir.backends.tree_dot)."""

import json
import math

import networkx as nx
import pytest
import sympy as sp
import torch

import kanir.backends.tree_dot as tree_dot
import kanir.science.modularity as km
from kanir.errors import KanirError
from kanir.science.tree import FunctionTree, tree

xs = sp.symbols("x1:9")
x1, x2, x3, x4, x5, x6, x7, x8 = xs
q, v, B, m = sp.symbols("q v B m")
QUAD = (x1**2 + x2**2) ** 2 + (x3**2 + x4**2) ** 2
EQ17 = ((x1**2 + x2**2) ** 2 + (x3**2 + x4**2) ** 2) ** 2 + (
    (x5**2 + x6**2) ** 2 + (x7**2 + x8**2) ** 2) ** 2


def _names(*groups):
    return [tuple(g.split()) for g in groups]


# ----------------------------------------------------------------------------- ground truths


@pytest.fixture(scope="module")
def eq17():
    return tree(EQ17, (-1, 1))


def test_paper_eq17_nested_groups(eq17):
    assert eq17.groups(2) == _names("x1 x2", "x3 x4", "x5 x6", "x7 x8")
    assert eq17.groups(4) == _names("x1 x2 x3 x4", "x5 x6 x7 x8")
    assert eq17.groups(8) == _names("x1 x2 x3 x4 x5 x6 x7 x8")
    assert eq17.groups(3) == []
    assert eq17.compact() == ("add(gsep(gsep(x1, x2), gsep(x3, x4)), "
                              "gsep(gsep(x5, x6), gsep(x7, x8)))")


def test_paper_eq17_graph(eq17):
    g = eq17.graph
    assert isinstance(g, nx.DiGraph) and nx.is_arborescence(g)
    assert g.number_of_nodes() == 15 and g.number_of_edges() == 14
    assert eq17.root_id == tuple(range(8))
    assert sorted(g.successors(eq17.root_id)) == [(0, 1, 2, 3), (4, 5, 6, 7)]
    assert g.nodes[(0, 1)]["kind"] == "gsep" and g.nodes[(0,)]["kind"] == "leaf"
    assert g.nodes[(0, 1)]["variables"] == ("x1", "x2")


def test_paper_eq17_on_a_positive_range():
    t = tree(EQ17, (0.2, 1.2), n_samples=400)
    assert t.groups(2) == _names("x1 x2", "x3 x4", "x5 x6", "x7 x8")
    assert t.groups(4) == _names("x1 x2 x3 x4", "x5 x6 x7 x8")


def test_two_quadratic_pairs_under_an_additive_root():
    t = tree(QUAD, (-1, 1))
    assert t.compact() == "add(gsep(x1, x2), gsep(x3, x4))"
    assert t.root.kind == "add" and [c.variables for c in t.root.children] == [
        ("x1", "x2"), ("x3", "x4")]


def test_ratio_splits_multiplicatively():
    t = tree(sp.sin(x1) / sp.sqrt(x2**2 + x3**2), (-2, 2))
    assert t.compact() == "mul(x1, gsep(x2, x3))"


def test_lorentz_force_is_fully_multiplicative():
    t = tree(q * v * B / m, (0.5, 2), variables=["q", "v", "B", "m"])
    assert t.root.kind == "mul" and t.root.variables == ("q", "v", "B", "m")
    assert [c.label for c in t.root.children] == ["q", "v", "B", "m"]
    assert all(c.is_leaf for c in t.root.children)
    assert t.to_text().splitlines()[0] == "mul(q, v, B, m)"
    assert t.graph.nodes[t.root_id]["complete"]  # came from merging overlapping pairs


def test_sum_with_an_inner_product():
    t = tree(x1 + x2 * x3, (-1, 1))
    assert t.compact() == "add(x1, mul(x2, x3))"
    assert t.groups(2) == _names("x2 x3")


@pytest.mark.parametrize("expr, ranges, want", [
    ((x1 + x2) * x3, (0.5, 2), "mul(add(x1, x2), x3)"),
    (sp.sin(x1 * x2 + x3), (-1, 1), "gsep(mul(x1, x2), x3)"),
    (sp.exp(x1 + x2 * x3) + x4**2, (-1, 1), "add(mul(x1, gsep(x2, x3)), x4)"),
    (x1 * x2 + x2 * x3 + x3 * x1, (0.5, 2), "sym(x1, x2, x3)"),
    (x1 * x2 + x1**2 + x2**3, (0.5, 2), "sym(x1, x2)"),
    (x1 + x2 + x3 + x4, (-1, 1), "add(x1, x2, x3, x4)"),
])
def test_more_structures(expr, ranges, want):
    assert tree(expr, ranges, n_samples=400).compact() == want


def test_unused_variable_is_listed_not_grouped():
    t = tree(x1 + x2 * x3, (-1, 1), variables=["x1", "x2", "x3", "x4"], n_samples=400)
    assert t.compact() == "add(x1, mul(x2, x3))" and t.unused == ("x4",)
    assert t.to_text().splitlines()[-1] == "(unused: x4)"


def test_formula_text_and_single_variable():
    assert tree("x1 + x2*x3", (-1, 1), n_samples=300).compact() == "add(x1, mul(x2, x3))"
    single = tree(sp.sin(x1), (-1, 1), n_samples=300)
    assert single.compact() == "x1" and single.root.is_leaf and single.groups() == []


# ----------------------------------------------------------------------------- evidence & output


def test_evidence_scores_support_each_label():
    t = tree(x1 + x2 * x3, (-1, 1), n_samples=400)
    root, inner = t.root, t.root.children[1]
    assert root.scores["add"] < 1e-12 and inner.scores["mul"] < 1e-12
    assert inner.scores["add"] > 0.5  # x2*x3 is not a sum
    assert set(root.scores) == {"add", "mul", "gsep", "sym"}
    assert t.meta["thresholds"] == {"sym_th": 1e-2, "sep_th": 1e-2, "inactive_th": 1e-4}


def test_children_of_a_sym_node_cannot_be_add_or_mul():
    # (x1*x2) and x3 combine in a non-separable way: the inner product is then only "gsep"
    t = tree(sp.exp(x1 * x2) * x3 + (x1 * x2) ** 2 + x3**3, (0.5, 1.5), n_samples=400)
    assert t.compact() == "sym(gsep(x1, x2), x3)"
    assert set(t.root.children[0].scores) == {"gsep", "sym"}


def test_thresholds_are_parameters():
    strict = tree(QUAD, (-1, 1), n_samples=400)
    lax = tree(QUAD, (-1, 1), sep_th=0.99, n_samples=400)
    assert strict.compact() == "add(gsep(x1, x2), gsep(x3, x4))"
    assert lax.compact() == "add(add(x1, x2), add(x3, x4))"


def test_text_is_indented_ascii():
    t = tree(QUAD, (-1, 1), n_samples=300)
    assert t.to_text() == "\n".join([
        "add(x1, x2, x3, x4)",
        "+-- gsep(x1, x2)",
        "|   +-- x1",
        "|   `-- x2",
        "`-- gsep(x3, x4)",
        "    +-- x3",
        "    `-- x4",
    ])
    assert str(t) == t.to_text() and all(ord(c) < 128 for c in t.to_text(scores=True))
    assert "[add " in t.to_text(scores=True).splitlines()[0]
    assert repr(t) == "FunctionTree(add(gsep(x1, x2), gsep(x3, x4)))"


def test_to_dict_is_json_ready():
    t = tree(q * v * B / m, (0.5, 2), variables=["q", "v", "B", "m"], n_samples=300)
    d = json.loads(json.dumps(t.to_dict()))
    assert d["variables"] == ["q", "v", "B", "m"] and d["unused"] == []
    assert d["root"]["kind"] == "mul" and d["root"]["scores"]["mul"] < 1e-12
    assert [c["variables"] for c in d["root"]["children"]] == [["q"], ["v"], ["B"], ["m"]]
    assert d["n_samples"] == 300 and d["dtype"] == "float64"


# ----------------------------------------------------------------------------- callables & models


def test_torch_callable_with_names():
    def f(x):
        return x[:, 0] * x[:, 1] * x[:, 2] / x[:, 3]

    t = tree(f, (0.5, 2), variables=["q", "v", "B", "m"], n_samples=300)
    assert t.compact() == "mul(q, v, B, m)"


class _Sum(torch.nn.Module):
    def forward(self, x):
        return torch.stack([x[:, 0] + x[:, 1] * x[:, 2], x[:, 0] * x[:, 1]], 1)


def test_module_with_output_index():
    mod = _Sum()
    assert tree(mod, (0.5, 2), variables=3, output=0, n_samples=300).compact() == (
        "add(x1, mul(x2, x3))")
    t = tree(mod, (0.5, 2), variables=3, output=1, n_samples=300)
    assert t.compact() == "mul(x1, x2)" and t.unused == ("x3",)


def _fit_mlp(seed: int = 0) -> torch.nn.Module:
    """A tanh MLP fitted (float64, full-batch L-BFGS, ~4 s) to (x1^2+x2^2)^2 + (x3^2+x4^2)^2."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(1000, 4, generator=gen, dtype=torch.float64) * 2.2 - 1.1
    y = ((x[:, 0] ** 2 + x[:, 1] ** 2) ** 2 + (x[:, 2] ** 2 + x[:, 3] ** 2) ** 2)[:, None]
    net = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32),
                              torch.nn.Tanh(), torch.nn.Linear(32, 1)).double()
    opt = torch.optim.LBFGS(net.parameters(), max_iter=1000, history_size=100,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-14,
                            tolerance_change=1e-16)
    mu, sd = y.mean(), y.std()

    def closure():
        opt.zero_grad()
        loss = ((net(x) - (y - mu) / sd) ** 2).mean()
        loss.backward()
        return loss

    opt.step(closure)
    return net


def test_trained_mlp_gives_the_formula_tree():
    net = _fit_mlp()
    exact = tree(QUAD, (-1, 1))
    # a fitted network matches its target only approximately: thresholds to its accuracy
    fitted = tree(net, (-1, 1), variables=4, sym_th=0.05, sep_th=0.15)
    assert fitted.compact() == exact.compact() == "add(gsep(x1, x2), gsep(x3, x4))"
    assert fitted.root.scores["add"] < 0.05 and fitted.root.scores["mul"] > 0.15
    inner = fitted.root.children[0]
    assert inner.scores["sym"] < 0.05 and inner.scores["add"] > 0.15


# ----------------------------------------------------------------------------- errors


def test_tree_errors():
    with pytest.raises(km.FunctionError, match="NaN/inf"):
        tree(lambda x: torch.sqrt(x[:, 0]) + x[:, 1], (-1, 1), variables=2)
    with pytest.raises(km.FunctionError, match="returned shape"):
        tree(lambda x: x.reshape(-1), (-1, 1), variables=2)
    with pytest.raises(km.FunctionError, match="2 outputs"):
        tree(_Sum(), (0.5, 2), variables=3)
    with pytest.raises(km.FunctionError, match="does not vary"):
        tree(lambda x: x[:, 0] * 0 + 1, (-1, 1), variables=2)
    with pytest.raises(km.GroupError, match="unique"):
        tree(lambda x: x[:, 0] * x[:, 1], (-1, 1), variables=["a", "a"])


# ----------------------------------------------------------------------------- diagrams


@pytest.fixture(scope="module")
def named_tree():
    names = ["in_var0", "in_var1", "in_var2"]
    return tree(lambda x: x[:, 0] + x[:, 1] * x[:, 2], (0.5, 2), variables=names,
                n_samples=300)


def test_dot_tree_style(named_tree):
    src = tree_dot.tree_to_dot(named_tree, "tree").source
    assert 'g_0_1_2 [label="+"' in src and 'g_1_2 [label="×"' in src
    assert "g_0_1_2 -> v0" in src and "g_0_1_2 -> g_1_2" in src and "g_1_2 -> v2" in src
    for i in range(3):
        assert f"v{i} [label=in_var{i} shape=plaintext]" in src
    assert "rank=sink" in src and "cluster" not in src


def test_dot_box_style_nests_clusters(named_tree):
    src = tree_dot.tree_to_dot(named_tree, "box").source
    outer, inner = src.index("subgraph cluster_g_0_1_2"), src.index("subgraph cluster_g_1_2")
    assert outer < src.index("v0 [label=in_var0") < inner < src.index("v1 [label=in_var1")
    assert 'label="add: +"' in src and 'label="mul: ×"' in src and "->" not in src


def test_dot_shows_unused_and_scores():
    t = tree(q * v, (0.5, 2), variables=["q", "v", "B"], n_samples=300)
    src = tree_dot.tree_to_dot(t).source
    assert 'v2 [label="B (unused)"' in src
    assert "tooltip=\"mul(q, v): add" in src


def test_render_dot_source_needs_no_graphviz(named_tree, tmp_path, monkeypatch):
    monkeypatch.setattr(tree_dot.shutil, "which", lambda name: None)
    out = tree_dot.render_tree(named_tree, tmp_path / "t.dot", style="box")
    assert out.read_text().startswith("digraph function_tree")
    with pytest.raises(tree_dot.GraphvizNotFoundError, match="apt-get install graphviz"):
        tree_dot.render_tree(named_tree, tmp_path / "t.svg")
    assert not (tmp_path / "t.svg").exists()
    with pytest.raises(KanirError, match="style"):
        tree_dot.tree_to_dot(named_tree, "circle")


@pytest.mark.skipif(tree_dot.shutil.which("dot") is None, reason="graphviz 'dot' not installed")
def test_render_svg_when_graphviz_is_installed(named_tree, tmp_path):
    out = tree_dot.render_tree(named_tree, tmp_path / "t.svg")
    text = out.read_text()
    assert "<svg" in text and "in_var1" in text


def test_function_tree_is_exported():
    assert isinstance(tree(x1 * x2, (0.5, 2), n_samples=200), FunctionTree)
    assert math.isfinite(tree(x1 * x2, (0.5, 2), n_samples=200).root.scores["mul"])
