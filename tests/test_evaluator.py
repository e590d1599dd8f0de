"""The one evaluator of per-edge values (kanir.backends.torch_eval) and the base functions of the
library: equal to forward, safe at singularities, and every consumer gives the numbers it gave
before the evaluators were merged (golden values taken at commit 4725675)."""

import math

import numpy as np
import pytest
import sympy
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kanir
from kanir.backends.graphviz import edge_values as diagram_values
from kanir.backends.sympy import spline_expr
from kanir.backends.torch import BASE_FUNS, lift, lower
from kanir.backends.torch_eval import (
    EdgeTable,
    add_symbolic,
    edge_parts,
    edge_values,
    spline_edges,
    symbolic_edges,
)
from kanir.errors import GraphError, LibraryError
from kanir.ir.activation import Activation, SplinePart, SymbolicPart
from kanir.ir.graph import KanGraph
from kanir.ir.library import BASE_FUNCTIONS, LIBRARY, base_function
from kanir.model.init import init_module
from kanir.passes._eval import evaluate
from kanir.passes.attribution import attribute
from kanir.passes.measure import edge_metric_scores as edge_scores
from kanir.passes.prune import prune
from kanir.passes.symbolic import layer_samples

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SMOOTH_FUNS = ["x", "sin", "tanh", "x^2", "cos", "exp", "0", "x^3", "gaussian"]
BASES = sorted(BASE_FUNCTIONS)


# ---------------------------------------------------------------------------- models
@st.composite
def graphs(draw):
    """Layered float64 graphs with spline, symbolic, spline+symbolic, inactive-spline and
    missing edges, mult nodes, random affines and any base function."""
    depth = draw(st.integers(1, 3))
    width, arities = [], []
    for l in range(depth + 1):
        n_mult = draw(st.integers(0, 2)) if 0 < l < depth else 0
        width.append([draw(st.integers(1, 3)), n_mult])
        arities.append([draw(st.integers(2, 3)) for _ in range(n_mult)])
    g = KanGraph.from_width(width, arities, dtype="float64")
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    lws = g.layer_widths()
    for l in range(depth):
        G, k, base = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.sampled_from(BASES))
        for i in range(lws[l].n_nodes):
            lo = -rng.uniform(0.5, 2)
            grid = lo + (rng.uniform(0.5, 2) - lo) / G * np.arange(-k, G + k + 1)
            for j in range(lws[l + 1].n_subnodes):
                kind = draw(st.sampled_from(["none", "spline", "symbolic", "both"]))
                if kind == "none":
                    continue
                sp = sy = None
                if kind in ("spline", "both"):
                    sp = SplinePart(grid.copy(), rng.normal(0, 0.3, G + k), k,
                                    float(rng.normal(0, 0.5)), float(rng.uniform(0.5, 1.5)),
                                    base, bool(rng.random() < 0.8))
                if kind in ("symbolic", "both"):
                    sy = SymbolicPart(draw(st.sampled_from(SMOOTH_FUNS)), *rng.uniform(-1, 1, 4))
                g.set_edge(l, i, j, Activation(sp, sy))
    for _, a in g.nx.nodes(data=True):
        if "scale" in a:
            a["scale"], a["bias"] = float(rng.uniform(0.5, 1.5)), float(rng.normal(0, 0.2))
    return g.check()


GOLDEN_FUNS = ("sin", "x^2", "exp", "1/x", "tanh", "0", "cos", "x^3")


def mixed_graph(seed: int = 0) -> KanGraph:
    """The fixed [3, [3, 2], 2] model of the golden tests: 10 spline, 12 symbolic (spline kept
    but off), 6 spline+symbolic edges, 8 missing; mult nodes in the hidden layer."""
    g = lift(init_module([3, [3, 2], 2], seed=seed, dtype=torch.float64))
    rng = np.random.default_rng(seed)
    for l, i, j, act in list(g.act_edges()):
        r = rng.random()
        if r < 0.1:
            g.set_edge(l, i, j, None)
            continue
        if r > 0.5:
            fun = GOLDEN_FUNS[rng.integers(len(GOLDEN_FUNS))]
            sym = SymbolicPart(fun, *(float(v) for v in rng.normal(size=4)))
            sp = act.spline.copy()
            sp.active = bool(rng.random() < 0.3)
            g.set_edge(l, i, j, Activation(sp, sym))
    return g


def golden_data() -> np.ndarray:
    return np.random.default_rng(1).uniform(-1, 1, size=(64, 3))


def checksum(a) -> list[float]:
    """Sum and a cosine-weighted sum (sensitive to position) of an array."""
    a = np.ascontiguousarray(np.asarray(a, dtype=np.float64))
    w = np.cos(np.arange(a.size)).reshape(a.shape)
    return [float(a.sum()), float((a * w).sum())]


def inputs(g: KanGraph, n: int = 17, seed: int = 0) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(seed).uniform(-1.5, 1.5, (n, g.n_nodes(0))))


# ---------------------------------------------------------------------------- forward
@SETTINGS
@given(graphs())
def test_edge_values_summed_with_the_affines_equal_forward(g):
    module = lower(g)
    h = inputs(g)
    with torch.no_grad():
        for layer in module.layers:
            edge = edge_values(layer, h)
            want = layer(h)
            got = layer.combine(edge.sum(dim=1))
            scale = float(edge.abs().sum(dim=1).max()) + 1.0
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-12 * scale)
            h = want


@SETTINGS
@given(graphs())
def test_parts_sum_to_the_values_and_keep_acts_records_them(g):
    module = lower(g)
    module.set_keep_acts(True)
    h = inputs(g, seed=1)
    with torch.no_grad():
        module(h)
        for layer in module.layers:
            parts = edge_parts(layer, h, curve=True)
            assert torch.equal(parts.total, edge_values(layer, h))
            assert torch.equal(parts.spline, edge_values(layer, h, part="spline"))
            assert torch.equal(parts.symbolic, edge_values(layer, h, part="symbolic"))
            assert torch.equal(parts.symbolic, layer.acts["symbolic"])
            np.testing.assert_allclose(layer.acts["spline"].numpy(), parts.spline.numpy(),
                                       rtol=1e-12, atol=1e-13)
            # the bare curve is the unmasked, unscaled B-spline sum
            sp = torch.einsum("bio,io->bio", parts.curve, layer.scale_sp * layer.mask_sp)
            base = BASE_FUNS[layer.base_fun](h).unsqueeze(-1) * layer.scale_base * layer.mask_sp
            np.testing.assert_allclose((sp + base).numpy(), parts.spline.numpy(), rtol=1e-12,
                                       atol=1e-13)
            h = layer.acts["output"]


def test_symbolic_edges_are_exactly_c_f_of_ax_plus_b_plus_d_and_zero_elsewhere():
    g = KanGraph.from_width([2, 2], dtype="float64")
    g.set_edge(0, 0, 1, Activation.symbolic_fn("sin", 2.0, 0.5, 3.0, -1.0))
    g.set_edge(0, 1, 0, Activation.symbolic_fn("x^2", -1.5, 0.25, 0.5, 2.0))
    g.set_edge(0, 1, 1, Activation.symbolic_fn("sin", 1.0, 0.0, 1.0, 0.0))
    x = torch.tensor([[0.3, -0.7], [1.1, 0.2]], dtype=torch.float64)
    v = edge_values(lower(g).layers[0], x)
    want = torch.zeros(2, 2, 2, dtype=torch.float64)
    want[:, 0, 1] = 3.0 * torch.sin(2.0 * x[:, 0] + 0.5) - 1.0
    want[:, 1, 0] = 0.5 * (-1.5 * x[:, 1] + 0.25) ** 2 + 2.0
    want[:, 1, 1] = torch.sin(x[:, 1])
    assert torch.equal(v, want)


def test_keep_acts_values_carry_gradients():
    module = init_module([2, 3, 1], seed=2, dtype=torch.float64)
    layer = module.layers[0]
    with torch.no_grad():
        layer.mask_sym[0, 1] = 1.0
        layer.sym_funs[0][1] = "sin"
    layer.refresh_symbolic()
    module.set_keep_acts(True)
    x = torch.rand(5, 2, dtype=torch.float64, requires_grad=True)
    module(x)
    acts = layer.acts["spline"] + layer.acts["symbolic"]
    (gx,) = torch.autograd.grad(acts.sum(), x)
    with torch.no_grad():
        h = x.detach().clone()
    h.requires_grad_(True)
    (want,) = torch.autograd.grad(edge_values(layer, h).sum(), h)
    np.testing.assert_allclose(gx.numpy(), want.numpy(), rtol=1e-12)


def test_in_place_paths_leave_their_arguments_alone_under_autograd():
    module = init_module([2, 2], seed=0, dtype=torch.float64)
    layer = module.layers[0]
    x = torch.rand(4, 2, dtype=torch.float64)
    out = torch.ones(4, 2, 2, dtype=torch.float64)
    with torch.no_grad():
        layer.mask_sym[1, 0] = 1.0
        layer.sym_funs[1][0] = "exp"
    layer.refresh_symbolic()
    got = add_symbolic(layer, x, out)  # grad mode on: out must stay ones
    assert torch.equal(out, torch.ones_like(out))
    assert torch.equal(got[:, 1, 0], 1.0 + torch.exp(x[:, 1]))


def test_unknown_part_is_named():
    layer = init_module([2, 2], seed=0, dtype=torch.float64).layers[0]
    with pytest.raises(GraphError, match="part must be one of sum, spline, symbolic, got 'both'"):
        edge_values(layer, torch.zeros(2, 2, dtype=torch.float64), part="both")


# ---------------------------------------------------------------------------- safe forms
SINGULAR = [("1/x", 0.0), ("1/x^2", 0.0), ("log", 0.0), ("log", -1.0), ("sqrt", -1.0),
            ("1/sqrt(x)", 0.0), ("tan", math.pi / 2), ("arcsin", 1.5), ("arccos", -2.0), ("arctanh", 1.0),
            ("exp", 800.0), ("x^-3/2", 0.0)]


@pytest.mark.parametrize("fun,at", SINGULAR)
def test_safe_forms_are_finite_at_singularities(fun, at):
    g = KanGraph.from_width([1, 1], dtype="float64")
    g.set_edge(0, 0, 0, Activation.symbolic_fn(fun, 1.0, 0.0, 2.0, 0.5))
    layer = lower(g).layers[0].requires_grad_(False)
    x = torch.tensor([[at], [0.5]], dtype=torch.float64)
    plain = edge_values(layer, x)
    safe = edge_values(layer, x, safe=True, y_th=100.0)
    # the point is singular for the plain form (tan(pi/2) rounds to a finite 1.6e16)
    assert not torch.isfinite(plain[0]).all() or float(plain[0].abs().max()) > 1e15
    assert torch.isfinite(safe).all()
    want = 2.0 * LIBRARY[fun].safe_torch(x[:, 0], 100.0) + 0.5
    assert torch.equal(safe[:, 0, 0], want)
    assert torch.equal(symbolic_edges(layer, x, safe=True, y_th=100.0), safe)


def test_forward_with_singularity_avoiding_uses_the_same_safe_values():
    g = KanGraph.from_width([1, 2], dtype="float64")
    g.set_edge(0, 0, 0, Activation.symbolic_fn("1/x", 1.0, 0.0, 1.0, 0.0))
    g.set_edge(0, 0, 1, Activation.symbolic_fn("log", 1.0, 0.0, 1.0, 0.0))
    module = lower(g)
    module.set_singularity_avoiding(True, y_th=50.0)
    module.set_keep_acts(True)
    x = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    with torch.no_grad():
        module(x)
    layer = module.layers[0]
    assert torch.equal(layer.acts["symbolic"], edge_values(layer, x, safe=True, y_th=50.0))
    assert torch.isfinite(layer.acts["output"]).all()


# ---------------------------------------------------------------------------- IR tables
@SETTINGS
@given(graphs())
def test_edge_tables_built_from_activations_give_the_lowered_layers_values(g):
    module = lower(g)
    lws = g.layer_widths()
    h = inputs(g, seed=2)
    with torch.no_grad():
        for l, layer in enumerate(module.layers):
            rows = [[g.edge(l, i, j) for j in range(lws[l + 1].n_subnodes)]
                    for i in range(lws[l].n_nodes)]
            table = EdgeTable.from_activations(rows)
            assert torch.equal(edge_values(table, h), edge_values(layer, h))
            h = layer(h)


def test_edge_table_rejects_mixed_splines():
    grid = np.linspace(-2, 2, 8)
    a = Activation(SplinePart(grid, np.zeros(4), 3, base_fun="silu"))
    b = Activation(SplinePart(grid, np.zeros(4), 3, base_fun="tanh"))
    with pytest.raises(GraphError, match="share grid size, order and base function"):
        EdgeTable.from_activations([[a, b]])


def test_diagram_curve_of_a_spline_plus_symbolic_edge_is_the_formula():
    grid = np.linspace(-1.6, 1.6, 9)  # G = 2, k = 3
    coef = np.array([0.3, -0.2, 0.5, 0.1, -0.4])
    act = Activation(SplinePart(grid, coef, 3, 0.7, 1.3, "tanh"),
                     SymbolicPart("sin", 2.0, 0.1, -0.5, 0.25))
    xs = np.linspace(-1, 1, 9)
    xt = torch.as_tensor(xs).reshape(-1, 1)
    bare, _ = spline_edges(EdgeTable.from_activation(Activation(SplinePart(grid, coef, 3, 0.0,
                                                                           1.0, "tanh"))), xt)
    want = 1.3 * bare[:, 0, 0].numpy() + 0.7 * np.tanh(xs) - 0.5 * np.sin(2 * xs + 0.1) + 0.25
    np.testing.assert_allclose(diagram_values(act, xs), want, rtol=1e-13, atol=1e-15)


# ---------------------------------------------------------------------------- consumers
# Golden checksums computed with the five evaluators of commit 4725675 on mixed_graph() and
# golden_data(); the merged evaluator must give them to rounding.
GOLDEN = {
    "keep_acts": [[-10.45269058136324, -1.100268382613979, 1444.5340372180563, 55.37215515052906],
                  [34.03194717462653, -2.5072869567678477, 211.24167530821262, 91.9273673465228]],
    "evaluate": [[1434.081346636693, 54.27188676791506, -10.45269058136324, -1.1002683826139772,
                  -0.5509240494130427, -3.253572995059783, 1872.658624170966, -64.81864240573012],
                 [245.27362248283777, 89.42008038975617, 34.03194717462653, -2.507286956767847,
                  -2.1536900605388607, 0.0007078910568184965, 245.2736224828377,
                  -3.6624027931214584]],
    "scores": [3.171852744133067, 0.40957964089640936],
    "prune": ["[3, [1, 1], 2]",
              [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 1), (0, 2, 0), (0, 2, 1), (1, 0, 1),
               (1, 1, 0)]],
    "samples": [[5.653022810021603, 4.301713982313256, 1434.081346636693, 54.27188676791506],
                [1872.658624170966, -64.81864240573012, 245.27362248283842, 89.42008038975547]],
    "diagram": [289.0370142937651, -24.43966031471493],
    "forward_u": [50.282229367621085, 23.324812700287957],
    "postacts": [[1434.081346636693, 45.51053771609781], [245.27362248283777, -153.96825736617],
                 [25.146539079414516, -17.740487030421544],
                 [76.61401486290035, -3.947498341563154]],
}


def _close(got, want):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-11, atol=1e-11)


@pytest.fixture(scope="module")
def golden_model():
    return mixed_graph(), golden_data()


def test_golden_model_has_every_kind_of_edge(golden_model):
    g, _ = golden_model
    kinds = sorted(a.kind for *_, a in g.act_edges())
    assert {k: kinds.count(k) for k in set(kinds)} == {"spline": 10, "symbolic": 12, "both": 6}
    assert g.layer_widths()[1].n_mult == 2


def test_keep_acts_values_are_unchanged(golden_model):
    g, x = golden_model
    m = lower(g)
    m.set_keep_acts(True)
    with torch.no_grad():
        m(torch.as_tensor(x))
    got = [checksum(layer.acts["spline"]) + checksum(layer.acts["symbolic"]) for layer in m.layers]
    _close(got, GOLDEN["keep_acts"])


def test_pass_evaluations_are_unchanged(golden_model):
    g, x = golden_model
    got = [checksum(a.edge) + checksum(a.spline) + checksum(a.curve) + checksum(a.output)
           for a in evaluate(g, x, parts=True)]
    _close(got, GOLDEN["evaluate"])


def test_attribution_scores_are_unchanged(golden_model):
    g, x = golden_model
    sc = attribute(g, x)
    _close(checksum([sc.edge_attrs(l, i, j)["score"] for l, i, j, _ in sc.act_edges()]),
           GOLDEN["scores"])


def test_prune_decisions_are_unchanged(golden_model):
    g, x = golden_model
    p = prune(g, x, node_th=0.05, edge_th=0.1)
    assert [str(p.width), sorted((l, i, j) for l, i, j, _ in p.act_edges())] == GOLDEN["prune"]


def test_symbolic_fit_inputs_are_unchanged(golden_model):
    g, x = golden_model
    _close([checksum(h) + checksum(e) for h, e in layer_samples(g, x)], GOLDEN["samples"])


def test_diagram_values_are_unchanged(golden_model):
    g, x = golden_model
    xs = np.linspace(-1, 1, 11)
    _close(checksum([diagram_values(a, xs) for *_, a in g.act_edges()]), GOLDEN["diagram"])
    _close(checksum(list(edge_scores(g, x, "forward_u").values())), GOLDEN["forward_u"])


def test_pykan_activation_attributes_are_unchanged(golden_model):
    g, x = golden_model
    model = kanir.KAN.from_graph(g)
    model(torch.as_tensor(x))
    got = [checksum(t) for t in model.spline_postacts] + [checksum(t) for t in model.acts_scale]
    _close(got, GOLDEN["postacts"])


# ---------------------------------------------------------------------------- base functions
@pytest.mark.parametrize("name", BASES)
def test_base_functions_torch_and_sympy_forms_agree(name):
    fn = base_function(name)
    xs = [-2.5, -1.0, -0.3, 0.0, 0.7, 1.9]
    got = fn.torch(torch.tensor(xs, dtype=torch.float64)).numpy()
    s = sympy.Symbol("s")
    want = [float(sympy.sympify(fn.sympy(s)).subs(s, sympy.Float(v, 30)).evalf(30)) for v in xs]
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-16)


def test_base_functions_are_library_entries_read_by_both_backends():
    assert set(BASE_FUNS) == set(BASE_FUNCTIONS) == {"silu", "identity", "zero", "tanh", "gelu"}
    assert BASE_FUNCTIONS["identity"] is LIBRARY["x"]
    assert BASE_FUNCTIONS["zero"] is LIBRARY["0"]
    for name, fn in BASE_FUNCTIONS.items():
        assert BASE_FUNS[name] is fn.torch
    grid = np.linspace(-1.6, 1.6, 9)
    x = sympy.Symbol("x")
    for name in BASES:
        e = spline_expr(SplinePart(grid, np.zeros(5), 3, 0.5, 1.0, name), x)
        assert sympy.simplify(e - sympy.Rational(1, 2) * BASE_FUNCTIONS[name].sympy(x)) == 0


def test_unknown_base_function_names_the_known_ones():
    with pytest.raises(LibraryError, match=r"unknown base function 'relu'; choose one of "
                                           r"\['gelu', 'identity', 'silu', 'tanh', 'zero'\]"):
        base_function("relu")
