"""expand_width, expand_depth and perturb: the function is kept exactly (trained splines
included), new edges start as zero functions, and perturb gives every new edge a gradient."""

import numpy as np
import pytest
import torch

import kanir
from kanir import Activation
from kanir.backends.torch import lower
from kanir.errors import PassError
from kanir.passes._common import is_zero_function
from kanir.passes._eval import evaluate
from kanir.passes.expand import expand_depth, expand_width, perturb


def _target(x):
    return torch.exp(torch.sin(np.pi * x[:, [0]]) + x[:, [1]] ** 2)


@pytest.fixture(scope="module")
def data():
    return kanir.create_dataset(_target, 2, train_num=100, test_num=100, dtype=torch.float64)


@pytest.fixture(scope="module")
def trained(data):
    """A [2, 3, 1] KAN trained with fit (grid updates included), in float64."""
    m = kanir.KAN(width=[2, 3, 1], grid=5, k=3, seed=0, dtype=torch.float64, device="cpu")
    m.fit(data, steps=3, progress=False)
    return m


@pytest.fixture(scope="module")
def trained_mult(data):
    m = kanir.KAN(width=[2, [1, 1], 1], grid=4, k=3, seed=1, dtype=torch.float64, device="cpu")
    m.fit(data, steps=3, progress=False)
    return m


def _out(graph, x):
    with torch.no_grad():
        return lower(graph)(x)


def _max_diff(a, b):
    return float((a - b).detach().abs().max())


# ---------------------------------------------------------------------- function kept
@pytest.mark.parametrize("kind,arity", [("sum", 1), ("mult", 2), ("mult", 3)])
def test_expand_width_keeps_trained_function(trained, data, kind, arity):
    g = trained.graph
    x = data["test_input"]
    g2 = expand_width(g, 1, 2, kind, arity if kind == "mult" else 2)
    assert g2.width == ([2, 5, 1] if kind == "sum" else [2, [3, 2], 1])
    assert _max_diff(_out(g2, x), _out(g, x)) < 1e-12
    assert _max_diff(_out(g2, x), trained(x)) < 1e-12


def test_expand_width_sum_into_mult_layer_keeps_function(trained_mult, data):
    g = trained_mult.graph
    x = data["test_input"]
    g2 = expand_width(g, 1, 2, "sum")
    assert g2.width == [2, [3, 1], 1]
    # the old mult node moved up by two, its subnodes too
    assert g2.node(1, 3)["kind"] == "mult" and g2.node(1, 1)["kind"] == "sum"
    assert _max_diff(_out(g2, x), _out(g, x)) < 1e-12


@pytest.mark.parametrize("layer", [None, 0, 1, 2])
def test_expand_depth_keeps_trained_function(trained, data, layer):
    g = trained.graph
    x = data["test_input"]
    g2 = expand_depth(g, layer)
    assert g2.depth == 3
    assert _max_diff(_out(g2, x), _out(g, x)) < 1e-12
    after = 2 if layer is None else layer
    assert g2.n_nodes(after + 1) == g.n_nodes(after)
    kinds = {g2.node(3, i)["kind"] for i in range(g2.n_nodes(3))}
    assert kinds == {"output"}


def test_trained_splines_survive_expansion_exactly(trained):
    """pykan's expand_width/expand_depth rebuild layers and throw the trained splines away."""
    g = trained.graph
    g2 = expand_width(g, 1, 3)
    for l, i, j, act in g.act_edges():
        assert g2.edge(l, i, j).same(act), (l, i, j)
    g3 = expand_depth(g, 0)  # the old layer-0 edges now leave the new layer 1
    for l, i, j, act in g.act_edges():
        assert g3.edge(l + 1, i, j).same(act), (l, i, j)
    assert g3.node(2, 0)["scale"] == g.node(1, 0)["scale"]


def test_facade_expand_changes_model_in_place(trained, data):
    m = trained.copy()
    x = data["test_input"]
    y0 = m(x).detach()
    out = m.expand_width(1, 2).expand_depth()
    assert out is m
    assert m.width_spec == [2, 5, 1, 1]
    assert _max_diff(m(x), y0) < 1e-12
    m.expand_width(1, 1, sum_bool=False, mult_arity=3)
    assert m.width_spec == [2, [5, 1], 1, 1] and _max_diff(m(x), y0) < 1e-12


# ---------------------------------------------------------------------- new edges are zero
def test_new_edges_are_zero_functions(trained, data):
    g = trained.graph
    g2 = expand_width(g, 1, 2)
    acts = evaluate(g2, data["test_input"])
    new_in = [(0, i, j) for i in range(2) for j in (3, 4)]
    new_out = [(1, i, 0) for i in (3, 4)]
    for l, i, j in new_in + new_out:
        act = g2.edge(l, i, j)
        assert act is not None and act.kind == "spline"  # present, trainable
        assert not np.any(act.spline.coef) and act.spline.scale_base == 0
        assert np.all(acts[l].edge[:, i, j] == 0.0)
    # splines leaving an existing node share its knots
    assert np.array_equal(g2.edge(0, 0, 3).spline.grid, g.edge(0, 0, 0).spline.grid)


def _edge_grad_norms(graph, x, y, edges):
    module = lower(graph)
    loss = ((module(x) - y) ** 2).mean()
    loss.backward()
    out = {}
    for l, i, j in edges:
        layer = module.layers[l]
        parts = [layer.coef.grad[i, j], layer.scale_base.grad[i, j].reshape(1)]
        if layer.mask_sym[i, j] != 0:
            parts.append(layer.sym_affine.grad[i, j])
        out[(l, i, j)] = float(torch.cat(parts).abs().sum())
    return out


def _new_edges_width(g, g2, layer=1):
    n_old = g.n_nodes(layer)
    subs_old = g.layer_widths()[layer].n_subnodes
    lw = g2.layer_widths()
    e_in = [(layer - 1, i, j) for i in range(lw[layer - 1].n_nodes)
            for j in range(subs_old, lw[layer].n_subnodes)]
    e_out = [(layer, i, j) for i in range(n_old, lw[layer].n_nodes)
             for j in range(lw[layer + 1].n_subnodes)]
    return e_in + e_out


@pytest.mark.parametrize("mode", ["non-intrusive", "zero-edges", "all"])
def test_perturb_gives_every_new_edge_a_gradient(trained, data, mode):
    g = trained.graph
    x, y = data["train_input"], data["train_label"] + 0.3 * data["train_input"][:, [0]]
    g2 = expand_width(g, 1, 2)
    new = _new_edges_width(g, g2)
    assert len(new) == 2 * 2 + 2 * 1
    before = _edge_grad_norms(g2, x, y, new)
    assert min(before.values()) == 0.0  # without perturb, the edges into new nodes are stuck
    g3 = perturb(g2, x if mode == "non-intrusive" else None, mag=0.1, mode=mode)
    grads = _edge_grad_norms(g3, x, y, new)
    assert all(v > 1e-8 for v in grads.values()), grads
    change = _max_diff(_out(g3, x), _out(g2, x))
    if mode == "non-intrusive":
        assert change < 1e-12
    else:
        assert change > 1e-4


@pytest.mark.parametrize("mode", ["zero-edges", "all"])
def test_perturb_reaches_new_mult_nodes(trained, data, mode):
    g = trained.graph
    x, y = data["train_input"], data["train_label"]
    g2 = expand_width(g, 1, 1, "mult", 2)
    new = _new_edges_width(g, g2)
    grads = _edge_grad_norms(perturb(g2, mag=0.1, mode=mode), x, y, new)
    assert all(v > 1e-8 for v in grads.values()), grads


def test_perturb_after_expand_depth_gives_gradients(trained, data):
    g = trained.graph
    x, y = data["train_input"], data["train_label"] + 0.2
    g2 = expand_depth(g, 1)
    new = [(1, i, j) for i in range(3) for j in range(3)]
    grads = _edge_grad_norms(perturb(g2, x=x), x, y, new)
    assert all(v > 1e-8 for v in grads.values()), grads


def test_perturb_all_fills_every_position(trained):
    g = trained.graph
    g2 = g.copy()
    g2.set_edge(0, 0, 1, None)
    g2.set_edge(1, 2, 0, Activation.symbolic_fn("sin", 2.0))
    g3 = perturb(g2, mag=0.05, mode="all", seed=3)
    assert sum(1 for _ in g3.act_edges()) == 2 * 3 + 3 * 1
    assert g3.edge(1, 2, 0).kind == "both" and g3.edge(1, 2, 0).symbolic.fun == "sin"
    assert all(a.spline is not None and a.spline.active for *_, a in g3.act_edges())
    g4 = perturb(g2, mag=0.05, mode="zero-edges")
    assert g4.edge(0, 0, 1) is None  # absent edges are masks: zero-edges leaves them alone
    assert g4.edge(1, 2, 0).same(g2.edge(1, 2, 0))  # non-zero edges are untouched


def test_perturb_minimal_is_pykans_noise_on_the_non_zero_edges(trained):
    g = expand_width(trained.graph, 1, 1)       # node 3 of layer 1 is new: its edges are zero
    g.set_edge(1, 2, 0, Activation.symbolic_fn("sin", 2.0))
    g.set_edge(0, 0, 1, None)
    m = perturb(g, mag=0.05, mode="minimal", seed=1)
    assert m.edge(0, 0, 1) is None               # absent stays absent
    for l, i, j, a in g.act_edges():
        b = m.edge(l, i, j)
        if is_zero_function(a):
            assert b.same(a), (l, i, j)          # zero edges untouched (pykan: 'aa_i', 'ia', 'ii')
        else:
            assert not b.same(a) and b.spline.active, (l, i, j)
    assert m.edge(1, 2, 0).symbolic.fun == "sin" and m.edge(1, 2, 0).kind == "both"


def test_perturb_is_reproducible_and_scaled(trained):
    g = expand_width(trained.graph, 1, 1)
    a = perturb(g, mag=0.1, mode="zero-edges", seed=5)
    b = perturb(g, mag=0.1, mode="zero-edges", seed=5)
    c = perturb(g, mag=0.1, mode="zero-edges", seed=6)
    assert a.same(b) and not a.same(c)
    big = perturb(g, mag=1.0, mode="zero-edges", seed=5)
    ca, cb = a.edge(1, 3, 0).spline.coef, big.edge(1, 3, 0).spline.coef
    assert np.allclose(cb, 10 * ca)


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("call,match", [
    (lambda g: expand_width(g, 0, 1), "hidden node layer"),
    (lambda g: expand_width(g, 2, 1), "hidden node layer"),
    (lambda g: expand_width(g, 1, 0), "n \\(number of nodes"),
    (lambda g: expand_width(g, 1, 1, "prod"), "'sum' or 'mult'"),
    (lambda g: expand_width(g, 1, 1, "mult", 1), "arity"),
    (lambda g: expand_width(g, 1.5, 1), "integer"),
    (lambda g: expand_depth(g, 3), "node layer, 0..2"),
    (lambda g: perturb(g, mag=0.1, mode="some"), "non-intrusive"),
    (lambda g: perturb(g, mag=-1.0), "mag"),
])
def test_bad_arguments_raise_pass_errors(trained, call, match):
    with pytest.raises(PassError, match=match):
        call(trained.graph)


def test_expand_width_needs_a_hidden_layer():
    g = kanir.KanGraph.from_width([2, 1])
    with pytest.raises(PassError, match="no hidden layer"):
        expand_width(g, 1, 1)


# ---------------------------------------------------------------------- the paper's flow
def _compiled():
    """sin(3x) + y^2 as an exact symbolic KAN: kanir.compile when present, else by hand."""
    try:
        return kanir.compile("sin(3*x) + y**2")
    except (AttributeError, ImportError):
        g = kanir.KanGraph.from_width([2, 1], input_names=["x", "y"])
        g.set_edge(0, 0, 0, Activation.symbolic_fn("sin", 3.0))
        g.set_edge(0, 1, 0, Activation.symbolic_fn("x^2"))
        return g


@pytest.mark.slow
def test_compile_expand_perturb_train():
    """The data has a term (0.5 x y) the compiled formula lacks; the expanded, perturbed KAN
    learns it, while the compiled structure alone cannot."""
    g = _compiled()
    data = kanir.create_dataset(
        lambda x: torch.sin(3 * x[:, [0]]) + x[:, [1]] ** 2 + 0.5 * x[:, [0]] * x[:, [1]], 2,
        train_num=300, test_num=300, dtype=torch.float64)
    x = data["test_input"]
    y_formula = torch.sin(3 * x[:, [0]]) + x[:, [1]] ** 2
    assert _max_diff(_out(g, x), y_formula) < 1e-12
    g2 = perturb(expand_width(expand_depth(g), 1, 2), data["train_input"], mag=0.1,
                 mode="non-intrusive")
    assert _max_diff(_out(g2, x), y_formula) < 1e-12  # still the compiled formula
    before = float(((_out(g2, x) - data["test_label"]) ** 2).mean())
    model = kanir.KAN.from_graph(g2, device="cpu")
    hist = model.fit(data, steps=30, progress=False, update_grid=False)
    fixed = kanir.KAN.from_graph(expand_depth(g), device="cpu")
    hist_fixed = fixed.fit(data, steps=30, progress=False, update_grid=False)
    assert hist["test_loss"][-1] ** 2 < before / 50  # test_loss is the RMSE
    assert hist["test_loss"][-1] < hist_fixed["test_loss"][-1] / 20**0.5


def test_perturb_constant_node_outside_its_knots_with_a_trained_spline():
    """A node constant on the data, outside its knots, whose other spline is non-zero cannot be
    re-gridded: its zero edges stay zero instead of crashing (found by test_perturb)."""
    g = kanir.KanGraph.from_width([1, 1, 2])
    g.set_edge(0, 0, 0, Activation.symbolic_fn("0", d=5.0))  # node (1, 0) == 5, outside [-1, 1]
    trained = kanir.KAN([1, 2], grid=3, seed=0, dtype=torch.float64).graph.edge(0, 0, 0)
    zero = trained.copy()
    zero.spline.coef[:] = 0.0
    zero.spline.scale_base = 0.0
    g.set_edge(1, 0, 0, trained)
    g.set_edge(1, 0, 1, zero)
    x = torch.linspace(-1, 1, 20, dtype=torch.float64)[:, None]
    out = perturb(g, x, mag=0.5, mode="non-intrusive", seed=0)
    assert _max_diff(_out(out, x), _out(g, x)) == 0.0


def test_non_intrusive_perturb_opens_a_compiled_priors_missing_variable():
    # pykan's non-intrusive perturb switches every edge into the outputs on with zero scale: the
    # variable q, which the compiled prior T = qd²/2 leaves out, gets a zero spline over its data
    prior = kanir.compile("qd**2/2", variables=["q", "qd"])
    assert prior.edge(0, 0, 0) is None
    x = np.column_stack([np.linspace(-np.pi, np.pi, 64), np.linspace(-2, 2, 64)])
    g = perturb(prior, x)
    act = g.edge(0, 0, 0)
    assert act.kind == "spline" and not np.any(act.spline.coef) and act.spline.scale_base == 0
    assert act.spline.grid[act.spline.k] == pytest.approx(-np.pi)
    assert act.spline.grid[-act.spline.k - 1] == pytest.approx(np.pi)
    qd = g.edge(0, 1, 0)  # the compiled edge keeps its function and gets a zero spline beside it
    assert qd.kind == "both" and qd.symbolic.params == prior.edge(0, 1, 0).symbolic.params
    assert not np.any(qd.spline.coef) and qd.spline.scale_base == 0
    xt = torch.tensor(x)
    model = kanir.KAN.from_graph(g, dtype=torch.float64)
    np.testing.assert_allclose(model(xt).detach().numpy()[:, 0], x[:, 1] ** 2 / 2, atol=1e-12)
    grads = _edge_grad_norms(g, xt, torch.tensor(np.cos(x[:, :1])), [(0, 0, 0)])
    assert grads[(0, 0, 0)] > 1e-6
