"""to_sympy: formulas read back from graphs (exact symbolic edges, affines, mult nodes, splines)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import sympy
import torch

import kanir
from kanir.backends.sympy import SymbolicExportError, clean_float, to_sympy
from kanir.backends.torch import lower
from kanir.errors import KanirError
from kanir.frontend.compiler import compile_expression
from kanir.ir.activation import Activation
from kanir.ir.graph import KanGraph

x, y, z = sympy.symbols("x y z")


def test_compiled_constants_come_back_exact():
    g = kanir.compile("F = q1*q2/(4*pi*eps*r**2) + sqrt(2)*x/3")
    (back,) = to_sympy(g)
    q1, q2, eps, r = sympy.symbols("q1 q2 eps r")
    assert back == q1 * q2 / (4 * sympy.pi * eps * r**2) + sympy.sqrt(2) * x / 3


def test_clean_floats_without_exact_text():
    assert clean_float(3.0) == sympy.Integer(3)
    assert clean_float(0.5) == sympy.Rational(1, 2)
    assert clean_float(0.1) == sympy.Rational(1, 10)
    assert clean_float(0.1 + 1e-12) == sympy.Float(0.1 + 1e-12)
    assert isinstance(clean_float(np.pi), sympy.Float)
    assert isinstance(clean_float(0.5, rational=False), sympy.Float)


def test_stale_exact_text_is_ignored():
    g = kanir.compile("x*pi")
    (act,) = [e[3] for e in g.act_edges()]
    assert act.meta["exact"]["c"] == "pi"
    act.symbolic.c = 2.5  # e.g. after training: the recorded exact value no longer applies
    assert to_sympy(g) == [sympy.Rational(5, 2) * x]


def test_exact_text_is_never_evaluated(tmp_path):
    flag = tmp_path / "pwned"
    g = KanGraph.from_width([1, 1], input_names=["x"])
    act = Activation.symbolic_fn("x", c=2.0)
    act.meta["exact"] = {"c": f"__import__('os').system('touch {flag}')"}
    g.set_edge(0, 0, 0, act)
    assert to_sympy(g) == [2 * x]
    assert not os.path.exists(flag)


def test_affines_and_mult_node_of_arity_three():
    g = KanGraph.from_width([3, [0, 1], 1], mult_arity=3, input_names=["x", "y", "z"])
    g.set_edge(0, 0, 0, Activation.symbolic_fn("sin", a=2.0))
    g.set_edge(0, 1, 1, Activation.symbolic_fn("x^2", b=1.0))
    g.set_edge(0, 2, 2, Activation.symbolic_fn("exp", c=3.0, d=-1.0))
    g.set_edge(0, 0, 2, Activation.symbolic_fn("x"))
    g.subnode(1, 1).update(scale=2.0, bias=0.5)
    g.node(1, 0).update(scale=-1.0, bias=4.0)
    g.set_edge(1, 0, 0, Activation.symbolic_fn("x", c=0.25))
    g.node(2, 0).update(bias=1.0)
    (back,) = to_sympy(g)
    m = sympy.sin(2 * x) * (2 * (y + 1) ** 2 + sympy.Rational(1, 2)) * (3 * sympy.exp(z) - 1 + x)
    assert sympy.expand(back - ((-m + 4) / 4 + 1)) == 0
    X = np.random.default_rng(0).random((50, 3))
    with torch.no_grad():
        got = lower(g)(torch.tensor(X)).numpy()[:, 0]
    ref = sympy.lambdify([x, y, z], back)(*X.T)
    np.testing.assert_allclose(got, ref, rtol=1e-13)


def test_spline_edge_is_an_error_naming_it():
    model = kanir.KAN(width=[2, 2, 1], grid=3, k=3, seed=0, dtype=torch.float64, device="cpu")
    g = model.graph
    with pytest.raises(SymbolicExportError) as info:
        to_sympy(g)
    assert str(info.value).startswith("edge (0,0,0) has a spline part")
    assert isinstance(info.value, KanirError)


def _naive_bspline(i, p, t, v):
    """B_{i,p}(v) by the textbook Cox-de Boor recursion (independent of the torch backend)."""
    if p == 0:
        return 1.0 if t[i] <= v < t[i + 1] else 0.0
    a = 0.0 if t[i + p] == t[i] else (v - t[i]) / (t[i + p] - t[i]) * _naive_bspline(i, p - 1,
                                                                                  t, v)
    b = 0.0 if t[i + p + 1] == t[i + 1] else ((t[i + p + 1] - v) / (t[i + p + 1] - t[i + 1])
                                              * _naive_bspline(i + 1, p - 1, t, v))
    return a + b


@pytest.mark.parametrize("k", [1, 2, 3])
def test_spline_piecewise_matches_cox_de_boor(k):
    from kanir.backends.sympy import spline_expr
    from kanir.ir.activation import SplinePart

    rng = np.random.default_rng(k)
    grid = np.sort(rng.uniform(-2, 2, 5 + 2 * k + 1))
    sp = SplinePart(grid, rng.normal(size=5 + k), k, scale_base=0.3, scale_sp=1.7,
                    base_fun="identity")
    e = spline_expr(sp, x)
    f = sympy.lambdify([x], e, "numpy")
    for v in np.linspace(-2.5, 2.5, 41):
        want = 0.3 * v + 1.7 * sum(sp.coef[g] * _naive_bspline(g, k, grid, v)
                                   for g in range(len(sp.coef)))
        assert abs(float(f(v)) - want) < 1e-11


@pytest.mark.parametrize("base_fun", ["silu", "identity"])
def test_spline_piecewise_is_exact(base_fun):
    model = kanir.KAN(width=[2, 2, 1], grid=4, k=3, seed=0, dtype=torch.float64, device="cpu",
                      base_fun=base_fun)
    g = model.graph
    outs = to_sympy(g, spline="piecewise")
    assert outs[0].has(sympy.Piecewise)
    X = np.random.default_rng(0).uniform(-2.5, 2.5, (300, 2))  # inside and outside the grid
    f = sympy.lambdify(sympy.symbols("x_1 x_2"), outs[0], "numpy")
    with torch.no_grad():
        want = model(torch.tensor(X)).numpy()[:, 0]
    np.testing.assert_allclose(f(*X.T), want, rtol=1e-10, atol=1e-12)


def test_perturbed_edge_piecewise_plus_symbolic():
    g = KanGraph.from_width([1, 1], input_names=["x"])
    model = kanir.KAN(width=[1, 1], grid=4, k=2, seed=1, dtype=torch.float64, device="cpu")
    act = model.graph.edge(0, 0, 0)
    act.symbolic = Activation.symbolic_fn("sin", a=3.0).symbolic
    g.set_edge(0, 0, 0, act)
    (back,) = to_sympy(g, spline="piecewise")
    X = np.linspace(-1.4, 1.4, 101).reshape(-1, 1)
    with torch.no_grad():
        want = lower(g)(torch.tensor(X)).numpy()[:, 0]
    got = sympy.lambdify([x], back, "numpy")(X[:, 0])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_expression_level_graphs_read_back():
    eg = compile_expression("u = x*sin(y) + exp(-x**2); v = max(x, y)")
    u, v = to_sympy(eg)
    assert u == x * sympy.sin(y) + sympy.exp(-(x**2))
    assert sympy.simplify(v - (x / 2 + y / 2 + sympy.Abs(x - y) / 2)) == 0


def test_simplify_option_and_zero_edges():
    g = KanGraph.from_width([2, 1], input_names=["x", "y"])
    g.set_edge(0, 0, 0, Activation.symbolic_fn("sin", a=1.0))
    g.set_edge(0, 1, 0, Activation.symbolic_fn("0", d=2.0))  # c*0 + d: the constant d
    assert to_sympy(g) == [sympy.sin(x) + 2]
    with torch.no_grad():
        got = lower(g)(torch.tensor([[0.3, 0.7]], dtype=torch.float64)).item()
    assert got == pytest.approx(float(sympy.sin(0.3)) + 2, rel=1e-15)
    g2 = kanir.compile("sin(x)**2 + cos(x)**2 + y")
    assert to_sympy(g2, simplify=True) == [y + 1]


def test_bad_arguments():
    g = kanir.compile("x")
    with pytest.raises(SymbolicExportError, match="spline must be 'error' or 'piecewise'"):
        to_sympy(g, spline="taylor")
    with pytest.raises(SymbolicExportError, match="needs a KanGraph"):
        to_sympy("x")


def test_lazy_top_level_name():
    assert kanir.to_sympy(kanir.compile("2*x")) == [2 * x]


def test_wide_graph_is_fast_enough():
    """A fully symbolic [8, 8, 8, 1] graph (136 edges) reads back without simplification."""
    g = KanGraph.from_width([8, 8, 8, 1])
    for l, n_in, n_out in ((0, 8, 8), (1, 8, 8), (2, 8, 1)):
        for i in range(n_in):
            for j in range(n_out):
                g.set_edge(l, i, j, Activation.symbolic_fn("sin", a=0.5 + i, b=0.1 * j))
    (e,) = to_sympy(g)
    assert e.count(sympy.sin) >= 136 - 8  # identical subterms may merge
