"""The formula frontend (sympy -> expression-level graph) and pykan's compiler failures."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch

import kanir
from kanir.backends.sympy import to_sympy
from kanir.backends.torch import lower
from kanir.errors import FormulaError
from kanir.frontend.compiler import compile_expression
from kanir.frontend.lowering import SUPPORTED_FUNCTIONS
from kanir.grammar.printer import exact_text, parse_exact

x, y, z, a = sympy.symbols("x y z a")


def kinds(graph) -> dict:
    """Count of value nodes by kind in an expression graph."""
    out: dict = {}
    for _, attrs in graph.nx.nodes(data=True):
        out[attrs["kind"]] = out.get(attrs["kind"], 0) + 1
    return out


def edges(graph) -> list:
    return [attrs["act"] for _, _, attrs in graph.nx.edges(data=True) if "act" in attrs]


def max_rel_error(graph, expr, variables, lo=0.5, hi=2.0, n=400, seed=0) -> float:
    """Lowered KAN (float64) against sympy's numpy evaluation of ``expr``."""
    rng = np.random.default_rng(seed)
    X = lo + (hi - lo) * rng.random((n, len(variables)))
    ref = np.asarray(sympy.lambdify(variables, expr, "numpy")(*X.T), dtype=float) * np.ones(n)
    with torch.no_grad():
        got = lower(graph)(torch.tensor(X)).numpy()[:, 0]
    scale = np.maximum(np.abs(ref), 1e-6 * np.abs(ref).max() + 1e-300)
    return float(np.max(np.abs(got - ref) / scale))


def assert_exact(expr, variables, **kw):
    """Compile, check the numbers and the formula read back."""
    g = kanir.compile(expr, variables)
    assert max_rel_error(g, expr, variables, **kw) < 1e-12
    back = to_sympy(g)[0]
    assert back == expr or same_for_positive(back, expr)
    return g


def same_for_positive(e1, e2) -> bool:
    """sympy proves e1 == e2 for positive variables (exp(y*log(x)) is x**y only for x > 0)."""
    pos = {s: sympy.Symbol(s.name, positive=True) for s in e1.free_symbols | e2.free_symbols}
    return sympy.simplify((e1 - e2).xreplace(pos)) == 0


# ---------------------------------------------------------------------- pykan's failures
def test_pykan_557_variable_feeding_two_terms():
    """pykan #557: sin(5a) + cos(3a) came out as sin(5a) alone."""
    expr = sympy.sin(5 * a) + sympy.cos(3 * a)
    g = assert_exact(expr, [a])
    funs = sorted(act.symbolic.fun for *_, act in g.act_edges())
    assert "sin" in funs and "cos" in funs


@pytest.mark.parametrize("text", ["x", "2*x", "x**6", "x**(1/3)", "sinh(x)"])
def test_formulas_pykan_crashes_on(text):
    expr = sympy.sympify(text)
    assert_exact(expr, [x])


@pytest.mark.parametrize("expr", [sympy.exp(sympy.pi * (x + 1)), x ** sympy.Rational(-3, 2),
                                  y * sympy.sinh(x), y * sympy.Abs(x)])
def test_formulas_pykan_miscompiles(expr):
    assert_exact(expr, [x, y] if expr.has(y) else [x])


@pytest.mark.parametrize("expr", [sympy.cosh(x) + y, sympy.Abs(x - y) * sympy.cosh(y),
                                  sympy.tanh(x) * sympy.asinh(y)])
def test_heads_pykan_reused_the_previous_edge_for(expr):
    assert_exact(expr, [x, y], lo=-2, hi=2)


def test_non_half_integer_power_is_not_truncated():
    """pykan turned x**2.5 into x**2."""
    for text in ("x**2.5", "x**(5/2)"):
        g = kanir.compile(text)
        assert to_sympy(g)[0] == x ** sympy.Rational(5, 2)
    g = kanir.compile(x ** sympy.Float(2.5), [x])  # a sympy Float exponent too
    assert to_sympy(g)[0] == x ** sympy.Rational(5, 2)
    g = kanir.compile("x**2.3")
    assert to_sympy(g)[0] == x ** sympy.Rational(23, 10)


def test_arcsin_and_asin_are_the_same_everywhere():
    """pykan #174: the spellings of inverse functions differed between its parts."""
    for long, short in [("arcsin", "asin"), ("arccos", "acos"), ("arctan", "atan"),
                        ("arctanh", "atanh"), ("arcsinh", "asinh")]:
        g1 = kanir.compile(f"{long}(x/3)")
        g2 = kanir.compile(f"{short}(x/3)")
        assert g1.same(g2)
        (act,) = [e[3] for e in g1.act_edges()]
        assert act.symbolic.fun == long


# ---------------------------------------------------------------------- structure
def test_affine_chain_collapses_into_one_edge():
    g = compile_expression("3*sin(2*x + 1) + 4")
    (act,) = edges(g)
    assert act.symbolic.fun == "sin" and act.symbolic.params == (2.0, 1.0, 3.0, 0.0)
    out = next(a for _, a in g.nx.nodes(data=True) if a["kind"] == "output")
    assert out["bias"] == 4.0


def test_nested_functions_need_one_node_each():
    g = compile_expression("exp(sin(x))")
    assert kinds(g) == {"input": 1, "sum": 1, "output": 1, "subnode": 2}
    assert sorted(act.symbolic.fun for act in edges(g)) == ["exp", "sin"]


def test_nary_product_is_one_mult_node():
    g = compile_expression("w = x*y*z + x")
    mults = [a for _, a in g.nx.nodes(data=True) if a["kind"] == "mult"]
    assert [m["arity"] for m in mults] == [3]


def test_product_output_is_the_mult_node():
    g = compile_expression("F = -3*x*y/z")
    (out,) = [a for _, a in g.nx.nodes(data=True) if a["kind"] == "output"]
    assert out["arity"] == 3 and out["scale"] == -3.0
    funs = sorted(act.symbolic.fun for act in edges(g))
    assert funs == ["1/x", "x", "x"]


def test_sum_inside_a_product_feeds_the_factor_subnode_directly():
    g = compile_expression("(x + y)*z")
    assert kinds(g).get("sum", 0) == 0
    sub_in = [g.nx.in_degree(n) for n, a in g.nx.nodes(data=True) if a["kind"] == "subnode"]
    assert sorted(sub_in) == [1, 2]


def test_constants_fold_exactly():
    g = compile_expression("x*2*pi/3 + sqrt(2)")
    (act,) = edges(g)
    assert act.meta["exact"]["c"] == "2*pi/3"
    assert to_sympy(g)[0] == 2 * sympy.pi * x / 3 + sympy.sqrt(2)


def test_gaussian_is_one_edge():
    g = compile_expression("exp(-(x - 1)**2/2)")
    (act,) = edges(g)
    assert act.symbolic.fun == "gaussian"
    assert sympy.simplify(to_sympy(g)[0] - sympy.exp(-(x - 1) ** 2 / 2)) == 0


def test_quadratic_and_linear_terms_of_one_variable_merge():
    g = compile_expression("x**2 + 3*x - 1")
    (act,) = edges(g)
    assert act.symbolic.fun == "x^2"
    assert sympy.expand(to_sympy(g)[0]) == x**2 + 3 * x - 1


def test_repeated_variable_in_a_product():
    assert_exact(x * sympy.sin(x) + sympy.exp(x) * sympy.cos(x), [x])


def test_division_and_powers():
    for expr in [x / y, 1 / (x + y), x ** -2 * y ** 3, sympy.sqrt(x) / y ** sympy.Rational(1, 3),
                 (x + y) ** sympy.Rational(7, 3)]:
        assert_exact(expr, [x, y])


def test_symbolic_exponents_go_through_exp_and_log():
    assert_exact(x**y, [x, y])
    g = assert_exact(2**x, [x])
    (act,) = [e[3] for e in g.act_edges()]
    assert act.symbolic.fun == "exp" and act.meta["exact"]["a"] == "log(2)"
    assert_exact(x**sympy.pi, [x])


@pytest.mark.parametrize("expr", [sympy.Max(x, y), sympy.Min(x, y), sympy.Max(x, y, z),
                                  sympy.Min(x, 1), sympy.Max(x - y, sympy.sin(z))])
def test_min_max_rewrite(expr):
    syms = sorted(expr.free_symbols, key=str)
    g = kanir.compile(expr, syms)
    assert max_rel_error(g, expr, syms, lo=-2, hi=2) < 1e-12
    assert any(act.symbolic.fun == "abs" for *_, act in g.act_edges())


def test_abs_of_a_sum_is_an_abs_edge_on_a_sum_node():
    g = compile_expression("abs(x - y)")
    assert kinds(g)["sum"] == 1
    assert sorted(act.symbolic.fun for act in edges(g)) == ["abs", "x", "x"]


def test_shared_subexpressions_are_built_once():
    g = compile_expression("u = sin(x*y); v = cos(x*y)")
    assert kinds(g)["mult"] == 1


def test_rewritten_functions():
    for expr in [sympy.sec(x), sympy.cot(x), sympy.acosh(x + 2), sympy.coth(x),
                 sympy.Heaviside(x - 1)]:
        assert max_rel_error(kanir.compile(expr, [x]), expr, [x]) < 1e-12


def test_constant_output_and_unused_inputs():
    g = kanir.compile("7/2", variables=["x", "y"])
    assert g.width == [2, 1] and not list(g.act_edges())
    assert to_sympy(g) == [sympy.Rational(7, 2)]


def test_exact_text_round_trip():
    for v in [sympy.Rational(3, 7), sympy.pi / 4, sympy.sqrt(2) * sympy.E, sympy.log(3),
              1 / (4 * sympy.pi * sympy.sqrt(3)), sympy.exp(-2)]:
        text = exact_text(v)
        assert text is not None and parse_exact(text) == v
    assert exact_text(sympy.Integer(5)) is None
    assert exact_text(sympy.Float(0.1)) is None


def test_parse_exact_never_evaluates_code():
    assert parse_exact("__import__('os').getcwd()") is None
    assert parse_exact("x + 1") is None


# ---------------------------------------------------------------------- errors, word for word
ERRORS = [
    ((-2) ** x, "cannot compile (-2)**x in output 'y_1': a power with the base -2 and a "
                "variable exponent is not real"),
    (sympy.I * x, "cannot compile I in output 'y_1': the constant I is not a real number"),
    (sympy.atan2(y, x), "cannot compile atan2(y, x) in output 'y_1': atan2 takes 2 arguments; "
                        "of the functions of several arguments only min and max compile"),
    (sympy.Piecewise((x, x > 0), (0, True)), "cannot compile Piecewise((x, x > 0), (0, True)) "
                                             "in output 'y_1': piecewise expressions are not "
                                             "supported"),
    (sympy.exp(1000) * x, "cannot compile exp(1000) in output 'y_1': the constant exp(1000) "
                          "is too large for a float64 (the largest is about 1.8e308)"),
    (sympy.erf(x), "cannot compile erf(x) in output 'y_1': kanir has no function 'erf'; the "
                   "functions it compiles are " + ", ".join(SUPPORTED_FUNCTIONS)),
    (sympy.Function("f")(x), "cannot compile f(x) in output 'y_1': kanir has no function 'f'; "
                             "the functions it compiles are " + ", ".join(SUPPORTED_FUNCTIONS)),
]


@pytest.mark.parametrize("expr,message", ERRORS)
def test_error_messages(expr, message):
    with pytest.raises(FormulaError) as info:
        kanir.compile(expr)
    assert str(info.value) == message


def test_error_names_the_output():
    with pytest.raises(FormulaError, match=r"^cannot compile gamma\(x\) in output 'F':"):
        kanir.compile([sympy.Eq(sympy.Symbol("E"), x), sympy.Eq(sympy.Symbol("F"),
                                                                   sympy.gamma(x))])


def test_bad_dtype():
    with pytest.raises(FormulaError, match=r"dtype must be torch.float32 or torch.float64 \(or "
                                           r"'float32', 'float64'\), got 'float16'"):
        kanir.compile("x", dtype="float16")
    with pytest.raises(FormulaError, match="got torch.int32"):
        kanir.compile("x", dtype=torch.int32)


@pytest.mark.parametrize("dtype,name", [(torch.float32, "float32"), (torch.float64, "float64"),
                                        ("float32", "float32")])
def test_compile_accepts_torch_dtypes_like_kan(dtype, name):
    """Issue 10: kanir.compile(..., dtype=torch.float32) raised; KAN takes torch dtypes."""
    g = kanir.compile("x*y + 1", dtype=dtype)
    assert g.meta["dtype"] == name
    model = kanir.KAN.from_graph(g, device="cpu")
    assert model.dtype == getattr(torch, name)
    assert kanir.kanpiler(["x"], "x**2", dtype=dtype).meta["dtype"] == name
