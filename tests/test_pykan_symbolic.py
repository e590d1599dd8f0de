"""pykan 0.2.8's calling conventions for the symbolic and pruning methods of kanir.KAN (issue 10
§3-§4): what pykan code passes and unpacks must mean what it means in pykan."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sympy
import torch

import kanir
from kanir import Activation
from kanir.errors import KanirError, PassError
from kanir.ir.graph import KanGraph
from kanir.passes.expand import PERTURB_UNIT, perturb
from kanir.symbolic.guard import SymbolicCollapseWarning
from kanir.train.training import create_dataset

T = torch.float64


def _trained(f, width, n_out=1, steps=15, seed=0):
    ds = create_dataset(f, n_var=2, train_num=400, test_num=100, seed=seed, dtype=T)
    m = kanir.KAN(width=width, grid=5, k=3, seed=seed, device="cpu", dtype=T)
    m.fit(ds, steps=steps, progress=False)
    return m, ds


@pytest.fixture(scope="module")
def one_out():
    """[2, 1] trained on sin(2x) + y²."""
    return _trained(lambda x: torch.sin(2 * x[:, [0]]) + x[:, [1]] ** 2, [2, 1])


@pytest.fixture(scope="module")
def two_out():
    """[2, 2] trained on (sin(2x) + y², x² - y)."""
    f = lambda x: torch.cat([torch.sin(2 * x[:, [0]]) + x[:, [1]] ** 2,  # noqa: E731
                             x[:, [0]] ** 2 - x[:, [1]]], dim=1)
    return _trained(f, [2, 2], steps=20)


def _n_versions(m) -> int:
    return len(m.list_versions())


# ---------------------------------------------------------------------- symbolic_formula
def test_symbolic_formula_returns_pykans_pair_on_two_outputs(two_out):
    m = two_out[0].copy()
    m.auto_symbolic(lib=["x", "x^2", "sin"], verbose=0)
    m.fit(two_out[1], steps=10, progress=False, update_grid=False)
    formula, variables = m.symbolic_formula()
    x1, x2 = sympy.symbols("x_1 x_2")
    assert variables == [x1, x2]
    assert formula == [sympy.sin(2 * x1) + x2**2, x1**2 - x2]
    assert m.symbolic_formula()[0][1] == x1**2 - x2  # pykan's symbolic_formula()[0][k]
    rich = m.formula()
    assert list(rich) == formula and rich.variables == variables


def test_symbolic_formula_pair_on_one_output_and_var(one_out):
    m = one_out[0].copy()
    m.auto_symbolic(lib=["x", "x^2", "sin"], verbose=0)
    formula, variables = m.symbolic_formula(var=["a", "b"])
    a, b = sympy.symbols("a b")
    assert variables == [a, b] and len(formula) == 1
    (f,), variables = m.symbolic_formula(var=[a, 2 * b])  # pykan also takes expressions
    assert variables == [a, 2 * b] and f == sympy.sin(2 * a) + 4 * b**2
    with pytest.raises(KanirError, match="var must be a list"):
        m.symbolic_formula(var="ab")
    assert m.symbolic_formula()[0][0] == sympy.sin(2 * sympy.Symbol("x_1")) + sympy.Symbol("x_2")**2
    raw, _ = m.symbolic_formula(snap=False, floating_digit=None, simplify=False)  # kanir options
    assert raw == list(m.formula(snap=False, floating_digit=None, simplify=False))
    with pytest.raises(KanirError, match="unknown option.*simplify"):
        m.symbolic_formula(simplfy=False)


def test_symbolic_formula_normalizers_as_pykan():
    """normalizer=[means, stds]: x_i enters as (x_i - mean_i)/std_i; output_normalizer turns
    y_k into y_k*std_k + mean_k."""
    g = KanGraph.from_width([2, 1])
    g.meta["dtype"] = "float64"
    g.set_edge(0, 0, 0, Activation.symbolic_fn("sin"))
    g.set_edge(0, 1, 0, Activation.symbolic_fn("x^2"))
    m = kanir.KAN.from_graph(g, device="cpu")
    (f,), (x1, x2) = m.symbolic_formula(normalizer=[[1, 3], [2, 4]],
                                        output_normalizer=[[5], [10]], simplify=False)
    want = 10 * (sympy.sin((x1 - 1) / 2) + ((x2 - 3) / 4) ** 2) + 5
    assert sympy.simplify(f - want) == 0
    (g2,), _ = m.symbolic_formula(normalizer=[torch.tensor([0.5, 0.0]),
                                              np.array([2.0, 1.0])], floating_digit=None)
    assert abs(float(g2.subs({x1: 2.5, x2: 0.3})) - (np.sin(1.0) + 0.09)) < 1e-12
    with pytest.raises(KanirError, match="normalizer must be \\[means, stds\\].*input \\(2\\)"):
        m.symbolic_formula(normalizer=[[0], [1]])
    with pytest.raises(KanirError, match="std must be non-zero"):
        m.symbolic_formula(output_normalizer=[[0], [0]])


def _hyperelastic_model():
    g = KanGraph.from_width([2, 1], input_names=["F11", "detF"], output_names=["W"])
    g.meta["dtype"] = "float64"
    g.set_edge(0, 0, 0, Activation.symbolic_fn("x^2", c=5 / 12))
    g.set_edge(0, 1, 0, Activation.symbolic_fn("log", c=0.2937, d=-5 / 12))
    return kanir.KAN.from_graph(g, device="cpu")


def test_exact_constants_survive_simplify_and_rounding_next_to_a_float():
    """Issue 10 §3: 5*F11**2/12 + 0.2937*log(detF) - 5/12 was printed as
    0.4167*F11**2 + 0.2937*log(detF) - 0.4167 (simplify made the Rationals floats)."""
    m = _hyperelastic_model()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(200, 2, generator=gen, dtype=T) * 1.5 + 0.5
    y = 5 * x[:, [0]] ** 2 / 12 + 0.2937 * torch.log(x[:, [1]]) - 5 / 12
    (f,), (F, d) = m.symbolic_formula(x=x, y=y)
    assert f == sympy.Rational(5, 12) * F**2 + sympy.Float("0.2937", 4) * sympy.log(d) \
        - sympy.Rational(5, 12)
    assert str(f) == "5*F11**2/12 + 0.2937*log(detF) - 5/12"


def test_simplify_keeping_exact_keeps_rationals_and_still_simplifies():
    from kanir.symbolic.simplify import round_floats, simplify_keeping_exact

    x, y = sympy.symbols("x y")
    e = sympy.Rational(5, 12) * x**2 + sympy.Float("0.27777777777779") * sympy.log(y) \
        - sympy.Rational(5, 12)
    assert round_floats(simplify_keeping_exact(e), 4) == \
        sympy.Rational(5, 12) * x**2 + sympy.Float("0.2778", 4) * sympy.log(y) - sympy.Rational(5, 12)
    e2 = 0.5 * sympy.sin(x) ** 2 + 0.5 * sympy.cos(x) ** 2 + sympy.Rational(1, 3) * x
    assert simplify_keeping_exact(e2) == x / 3 + sympy.Float(0.5)


# ---------------------------------------------------------------------- suggest_symbolic
def test_suggest_symbolic_returns_the_best_as_pykan(one_out, capsys):
    m = one_out[0]
    name, fun, r2, c = m.suggest_symbolic(0, 0, 0, topk=4, verbose=False)
    assert capsys.readouterr().out == ""
    assert name == "sin" and isinstance(r2, float) and r2 > 0.999 and c == 2
    torch_fn, sympy_fn, complexity, safe = fun
    z = torch.tensor([0.3], dtype=T)
    assert float(torch_fn(z)) == pytest.approx(np.sin(0.3)) and complexity == c
    assert sympy_fn(sympy.Symbol("z")) == sympy.sin(sympy.Symbol("z"))
    assert float(safe(z, 10.0)) == pytest.approx(np.sin(0.3))
    m.suggest_symbolic(0, 0, 0, (-10, 10), (-10, 10), ["x", "sin"], 2)  # pykan's positions
    assert "sin" in capsys.readouterr().out  # verbose by default, as pykan
    rows = m.symbolic_candidates(0, 0, 0, topk=4)
    assert len(rows) == 4 and rows[0].name == name and rows[0].r2 == r2


def test_suggest_symbolic_takes_pykans_loss_functions(one_out):
    m = one_out[0]
    lib = ["x", "x^2", "sin", "0"]
    # complexity counted negative: the most complex wins as long as R² is kept
    name, _, _, c = m.suggest_symbolic(0, 1, 0, lib=lib, verbose=False,
                                       c_loss_fun=lambda c: -10 * c)
    assert name in ("x^2", "sin") and c == 2
    # R² alone (complexity weightless): the best fit wins even if complex
    rows = m.symbolic_candidates(0, 1, 0, lib=lib, topk=None, weight_simple=0.0,
                                 r2_loss_fun=lambda r2: -r2)
    assert rows[0].r2 == max(r.r2 for r in rows)
    assert rows[0].score == pytest.approx(-rows[0].r2)
    with pytest.raises(PassError, match="c_loss_fun must return one number per candidate"):
        m.suggest_symbolic(0, 1, 0, lib=lib, verbose=False, c_loss_fun=lambda c: 1.0)
    with pytest.raises(PassError, match="r2_loss_fun failed"):
        m.suggest_symbolic(0, 1, 0, lib=lib, verbose=False, r2_loss_fun=lambda r2: r2.nope)


# ---------------------------------------------------------------------- fix / unfix
def test_fix_symbolic_accepts_pykans_arguments_and_returns_r2(one_out):
    m = one_out[0].copy()
    n = _n_versions(m)
    assert m.fix_symbolic(0, 1, 0, "x^2", fit_params_bool=False, verbose=False) is None
    assert m.graph.edge(0, 1, 0).symbolic.params == (1.0, 0.0, 1.0, 0.0)
    r2 = m.fix_symbolic(0, 0, 0, "sin", True, (-10, 10), (-10, 10), False, False, True)
    assert isinstance(r2, float) and r2 == m.last_fix.r2 and r2 > 0.999
    assert _n_versions(m) == n + 2
    m.fix_symbolic(0, 0, 0, "sin", fit_params=False, verbose=False, log_history=False)
    assert _n_versions(m) == n + 2  # log_history=False: no version
    m.fix_symbolic(0, 0, 0, "exp", fit_params_bool=False, random=True, seed=3, verbose=False)
    p1 = m.graph.edge(0, 0, 0).symbolic.params
    m.fix_symbolic(0, 0, 0, "exp", fit_params_bool=False, random=True, seed=3, verbose=False)
    assert m.graph.edge(0, 0, 0).symbolic.params == p1 != (1.0, 0.0, 1.0, 0.0)
    assert all(-1 <= v < 1 for v in p1)
    with pytest.raises(KanirError, match="not both"):
        m.fix_symbolic(0, 0, 0, "sin", fit_params_bool=False, fit_params=True, verbose=False)


def test_unfix_symbolic_all_restores_every_spline(one_out):
    m = one_out[0].copy()
    x = m.cache_x
    before = m(x).detach()
    m.auto_symbolic(lib=["x", "x^2", "sin"], verbose=0)
    assert all(a.kind == "symbolic" for *_, a in m.graph.act_edges())
    n = _n_versions(m)
    assert m.unfix_symbolic_all(log_history=False) is m
    assert _n_versions(m) == n
    assert torch.equal(m(x).detach(), before)
    m.fix_symbolic(0, 0, 0, "sin", verbose=False)
    m.unfix_symbolic(0, 0, 0, log_history=False)
    assert torch.equal(m(x).detach(), before)


# ---------------------------------------------------------------------- auto_symbolic guard
def _rough_model():
    """[2, 1] whose edges are random wiggly splines: no library function fits them."""
    m = kanir.KAN(width=[2, 1], grid=10, k=3, seed=0, device="cpu", dtype=T)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        layer = m.net.layers[0]
        layer.scale_base.zero_()
        layer.coef.copy_(torch.rand(layer.coef.shape, generator=gen, dtype=T) * 2 - 1)
    x = torch.rand(500, 2, generator=gen, dtype=T) * 2 - 1
    return m, x


def test_auto_symbolic_warns_when_it_wipes_an_output():
    """Issue 10 §3: with the defaults '0' beats every poor fit and the output became a constant
    with no warning."""
    m, x = _rough_model()
    y = m(x).detach()
    label = m.version
    with pytest.warns(SymbolicCollapseWarning, match="output 'y_1' no longer depends on any input"):
        rep = m.auto_symbolic(x=x, y=y, verbose=0)
    assert rep.as_dict() == {(0, 0, 0): "0", (0, 1, 0): "0"}
    assert any("100% of the variance of the labels" in w for w in rep.warnings)
    assert any(f"model.rewind({label!r})" in w for w in rep.warnings)
    assert m.rewind(label).graph.edge(0, 0, 0).kind == "spline"  # the undo the warning names


def test_auto_symbolic_warns_when_the_fit_gets_much_worse_without_labels():
    m, x = _rough_model()
    with pytest.warns(SymbolicCollapseWarning, match="network's outputs before auto_symbolic"):
        m.auto_symbolic(lib=["x", "sin"], x=x, verbose=0)  # no '0': the edges stay, poorly fitted


def test_auto_symbolic_is_quiet_when_all_is_well(one_out):
    m = one_out[0].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SymbolicCollapseWarning)
        rep = m.auto_symbolic(lib=["x", "x^2", "sin"], y=one_out[1]["train_label"], verbose=0)
    assert rep.warnings == [] and "warn" not in str(rep)
    # labels given without x belong to the cached inputs: a later check uses them
    assert torch.equal(m._cached_labels(m.cache_x.shape[0]), one_out[1]["train_label"].to(T))


# ---------------------------------------------------------------------- pruning conventions
def _three_hidden():
    m, ds = _trained(lambda x: torch.sin(2 * x[:, [0]]) + x[:, [1]] ** 2, [2, 3, 1], steps=5)
    return m, ds


def test_prune_node_with_active_neurons_id_switches_to_manual():
    m, _ = _three_hidden()
    g = m.graph
    kept = m.copy().prune_node(active_neurons_id=[[0, 2]])
    assert kept.width_spec == [2, 2, 1]
    assert kept.graph.edge(1, 1, 0).same(g.edge(1, 2, 0))  # old node 2 is now node 1
    assert m.copy().prune_node(0.0, "manual", [[1]], False).width_spec == [2, 1, 1]


def test_remove_node_masks_as_pykan_and_keeps_indices():
    m, _ = _three_hidden()
    g = m.graph
    m.remove_node(1, 0)
    assert m.width_spec == [2, 3, 1]
    h = m.graph
    assert h.edge(0, 0, 0) is None and h.edge(0, 1, 0) is None and h.edge(1, 0, 0) is None
    assert h.edge(1, 2, 0).same(g.edge(1, 2, 0)) and h.edge(0, 1, 2).same(g.edge(0, 1, 2))
    n = _n_versions(m)
    m.remove_node(1, 1, mode="up", log_history=False)
    assert m.graph.edge(1, 1, 0) is None and m.graph.edge(0, 0, 1) is not None
    assert _n_versions(m) == n


def test_remove_edge_keeps_the_symbolic_part_as_pykan():
    m, _ = _three_hidden()
    m.fix_symbolic(1, 0, 0, "x", verbose=False)
    m.remove_edge(1, 0, 0)
    act = m.graph.edge(1, 0, 0)
    assert act.kind == "symbolic" and act.symbolic.fun == "x"
    m.remove_edge(1, 0, 0, keep_symbolic=False)
    assert m.graph.edge(1, 0, 0) is None
    m.remove_edge(0, 0, 1, log_history=False)
    assert m.graph.edge(0, 0, 1) is None  # a spline edge: nothing is left


# ---------------------------------------------------------------------- perturb, swap, n_edge
def test_perturb_default_magnitude_is_pykans_one():
    m, _ = _three_hidden()
    m.expand_width(1, 3)
    g = m.graph
    m.perturb(mode="zero-edges", seed=5)
    assert m.graph.same(perturb(g, mag=1.0, mode="zero-edges", seed=5))
    zero = [(l, i, j) for l, i, j, a in g.act_edges()
            if a.spline is not None and a.spline.scale_base == 0 and not np.any(a.spline.coef)]
    coefs = np.concatenate([m.graph.edge(*e).spline.coef for e in zero])
    assert len(coefs) >= 40
    assert 0.5 * PERTURB_UNIT < coefs.std() < 2 * PERTURB_UNIT  # about a fresh edge's size


def test_swap_exchanges_two_nodes_keeping_the_function():
    m, ds = _three_hidden()
    x = ds["train_input"]
    g = m.graph
    y0 = m(x).detach()
    n = _n_versions(m)
    assert m.swap(1, 0, 2) is m and _n_versions(m) == n + 1
    h = m.graph
    assert h.edge(0, 1, 2).same(g.edge(0, 1, 0)) and h.edge(1, 0, 0).same(g.edge(1, 2, 0))
    assert torch.allclose(m(x).detach(), y0, rtol=0, atol=1e-12)
    m.swap(1, 0, 2, log_history=False)
    assert _n_versions(m) == n + 1 and m.graph.edge(0, 1, 0).same(g.edge(0, 1, 0))
    with pytest.raises(KanirError, match="hidden layer"):
        m.swap(0, 0, 1)
    with pytest.raises(KanirError, match=r"nodes of layer 1 \(0..2\)"):
        m.swap(1, 0, 3)


def test_n_edge_counts_edges_with_a_function():
    m, _ = _three_hidden()
    assert m.n_edge == 2 * 3 + 3 * 1
    m.remove_edge(0, 0, 0)
    m.fix_symbolic(1, 1, 0, "x", verbose=False)
    assert m.n_edge == 8
    m.fix_symbolic(1, 2, 0, "0", fit_params_bool=False, verbose=False)
    assert m.n_edge == 7


@pytest.mark.parametrize("call", [
    lambda m: m.expand_width(1, 1, log_history=False),
    lambda m: m.expand_depth(log_history=False),
    lambda m: m.perturb(log_history=False),
    lambda m: m.module(0, "[0]->[0]", log_history=False),
    lambda m: m.prune(log_history=False),
    lambda m: m.prune_node(log_history=False),
    lambda m: m.prune_edge(log_history=False),
    lambda m: m.prune_input(active_inputs=[0, 1], log_history=False),
    lambda m: m.auto_swap(log_history=False),
    lambda m: m.auto_symbolic(lib=["x", "sin"], verbose=0, log_history=False),
    lambda m: m.unfix(log_history=False),
])
def test_log_history_false_records_no_version(call):
    m, _ = _three_hidden()
    n = _n_versions(m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SymbolicCollapseWarning)
        call(m)
    assert _n_versions(m) == n
