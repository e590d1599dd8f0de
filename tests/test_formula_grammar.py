"""Tests of the formula language (kanir.grammar.formula): text -> exact sympy expressions."""

from __future__ import annotations

import dataclasses
import re

import mpmath
import pytest
import sympy
from formula_strategies import formulas, garbage
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sympy.parsing.sympy_parser import convert_xor, rationalize, standard_transformations

from kanir.datasets import feynman
from kanir.errors import FormulaError, KanirError
from kanir.grammar.formula import (
    Formula,
    FormulaNameError,
    FormulaSyntaxError,
    parse_expr,
    parse_formula,
)
from kanir.grammar.printer import formula_text

S = sympy.Symbol
x, y, z, a, b, c, v, m0 = (S(n) for n in ("x", "y", "z", "a", "b", "c", "v", "m0"))
PROPERTY = settings(max_examples=150, deadline=None)

# ------------------------------------------------------------------------------ valid formulas

VALID = [
    ("x + y*z", x + y * z),
    ("-x**2", -(x**2)),
    ("-2**2", sympy.Integer(-4)),
    ("2^3^2", sympy.Integer(512)),
    ("(2^3)^2", sympy.Integer(64)),
    ("x**-1", 1 / x),
    ("2**-1", sympy.Rational(1, 2)),
    ("a/b/c", a / (b * c)),
    ("a - b - c", a - b - c),
    ("a - (b - c)", a - b + c),
    ("+x - -y", x + y),
    ("x/2", sympy.Rational(1, 2) * x),
    ("1.5e-3", sympy.Rational(3, 2000)),
    ("0.1 + 2.5E+4 + .5 + 2.", sympy.Rational(125013, 5)),
    ("1e-3*x", x / 1000),
    ("x ^ 2 + y^0.5", x**2 + sympy.sqrt(y)),
    ("lambda*gamma + E + I + beta + S + N",
     S("lambda") * S("gamma") + S("E") + S("I") + S("beta") + S("S") + S("N")),
    ("x2*theta_1 + E_n - _q", S("x2") * S("theta_1") + S("E_n") - S("_q")),
    ("asin(x) + arcsin(y) + acos(z) + arccos(z)",
     sympy.asin(x) + sympy.asin(y) + 2 * sympy.acos(z)),
    ("arctan(x) - atan(x) + arctanh(y) + atanh(y) + asinh(z) + arcsinh(z)",
     2 * sympy.atanh(y) + 2 * sympy.asinh(z)),
    ("ln(x) - log(y) + sqrt(x) + exp(-x)",
     sympy.log(x) - sympy.log(y) + sympy.sqrt(x) + sympy.exp(-x)),
    ("sin(x)*cos(y)/tan(z) + sinh(x) - cosh(y) + tanh(z)",
     sympy.sin(x) * sympy.cos(y) / sympy.tan(z) + sympy.sinh(x) - sympy.cosh(y) + sympy.tanh(z)),
    ("abs(x) + min(x, y) + max(x, y, z)", sympy.Abs(x) + sympy.Min(x, y) + sympy.Max(x, y, z)),
    ("e**x + pi", sympy.exp(x) + sympy.pi),
    ("abs(exp(sin(x))) + abs(-x)", sympy.Abs(sympy.exp(sympy.sin(x)), evaluate=False)
     + sympy.Abs(x)),
    ("m0/sqrt(1-v**2/c**2)", m0 / sympy.sqrt(1 - v**2 / c**2)),
    ("(x +\n  y) * 2  # comment", 2 * x + 2 * y),
]


@pytest.mark.parametrize("text, expected", VALID, ids=[t for t, _ in VALID])
def test_valid_formulas_parse_to_exact_sympy(text, expected):
    assert parse_expr(text) == expected


def test_precedence_shapes_are_the_python_ones():
    assert parse_expr("-x**2") == sympy.Mul(-1, sympy.Pow(x, 2))
    assert parse_expr("x^y^z") == sympy.Pow(x, sympy.Pow(y, z))
    assert parse_expr("x**-y**2") == sympy.Pow(x, -(y**2))
    assert parse_expr("x/2").args == (sympy.Rational(1, 2), x)


def test_numbers_stay_exact_rationals():
    for text, value in [("0.1", (1, 10)), ("1.5e-3", (3, 2000)), ("2.5E+4", (25000, 1)),
                        ("007", (7, 1)), ("1e308", (10**308, 1))]:
        number = parse_expr(text)
        assert isinstance(number, sympy.Rational) and (number.p, number.q) == value


def test_clashing_names_are_plain_symbols():
    expr = parse_expr("lambda*gamma + E + I + beta + S + N + zeta + Q + O")
    assert all(type(s) is sympy.Symbol and s == sympy.Symbol(s.name) for s in expr.free_symbols)
    assert len(expr.free_symbols) == 10


def test_several_named_and_default_outputs():
    f = parse_formula("r = sqrt(x^2 + y^2); theta = atan(y/x)\n\nx*y;")
    assert f.outputs == (("r", sympy.sqrt(x**2 + y**2)), ("theta", sympy.atan(y / x)),
                         ("y_3", x * y))
    assert f.names == ("r", "theta", "y_3")
    assert f.variables == (x, y)


def test_comments_blank_lines_and_crlf():
    f = parse_formula("# relativistic energy\r\n\r\nE = m*c**2  # Einstein\r\n")
    assert f.outputs == (("E", S("m") * c**2),)


def test_variables_are_sorted_naturally_without_a_list():
    assert parse_formula("x10 + x2 + x1 + b").variables == (b, S("x1"), S("x2"), S("x10"))


def test_given_variables_fix_order_symbols_and_constants():
    assert parse_formula("y + x", variables=["x", "y", "z"]).variables == (x, y, z)
    assert parse_formula("y + x", variables="y, x").variables == (y, x)
    assert parse_expr("e*pi", variables=["x"]) == sympy.E * sympy.pi
    positive = S("v", positive=True)
    assert parse_expr("sqrt(v**2)", variables=[positive]) == positive


def test_formula_is_a_frozen_dataclass_and_expr_needs_one_output():
    f = parse_formula("f = x; g = y")
    assert isinstance(f, Formula)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.outputs = ()
    with pytest.raises(FormulaError) as err:
        _ = f.expr
    assert str(err.value) == "expected one expression, but the formula has 2 outputs (f, g); " \
                             "use .outputs"


def test_sympy_input_passes_through():
    assert parse_formula(x**2 + 1).outputs == (("y_1", x**2 + 1),)
    energy = sympy.Eq(S("E"), S("m") * c**2)
    assert parse_formula(energy).outputs == (("E", S("m") * c**2),)
    assert parse_formula([x + 1, sympy.Eq(S("g"), y), "z"]).names == ("y_1", "g", "y_3")
    assert parse_formula(3).expr == 3
    assumed = S("x", positive=True)
    f = parse_formula(assumed + y, variables=["y", "x"])
    assert f.variables == (y, assumed)


@pytest.mark.parametrize("bad, message", [
    (object(), "a formula must be text or a sympy expression, got object"),
    (sympy.Matrix([x]), "a formula must be text or a sympy expression or Eq, got MutableDense"),
    (x < 1, "a formula must be text or a sympy expression or Eq, got StrictLessThan x < 1"),
    (sympy.Eq(x + 1, y),
     "a sympy Eq needs the output symbol on its left-hand side, got Eq(x + 1, y)"),
    (x + sympy.zoo, "the sympy expression x + zoo contains the undefined value zoo"),
    ([], "the formula is empty: an empty list was given"),
    ([sympy.Eq(S("f"), x), sympy.Eq(S("f"), y)], "output 'f' is defined twice"),
])
def test_bad_sympy_input_is_a_formula_error(bad, message):
    with pytest.raises(FormulaError) as err:
        parse_formula(bad)
    assert str(err.value).startswith(message)


def test_sympy_input_with_unknown_symbol_names_it():
    with pytest.raises(FormulaNameError) as err:
        parse_formula(x + z, variables=["x", "y"])
    assert str(err.value) == "unknown name 'z' in the expression of output 'y_1'; " \
                             "the variables are x, y"
    assert err.value.name == "z" and err.value.line is None


@pytest.mark.parametrize("variables, message", [
    (["x", "x"], "variable 'x' is listed twice"),
    (["2x"], "variable name '2x' is not a valid name: use letters, digits and underscores, "
             "not starting with a digit"),
    ([1], "variables must be names or sympy Symbols, got int 1"),
    (5, "variables must be a list of names or sympy Symbols, got int 5"),
])
def test_bad_variables_are_formula_errors(variables, message):
    with pytest.raises(FormulaError) as err:
        parse_formula("x", variables=variables)
    assert str(err.value) == message


# ---------------------------------------------------------------------------- malformed formulas

OPERAND = "expected a number, a name, '(' or a unary sign"
ERRORS = [
    ("sin(x+)", FormulaSyntaxError,
     f"formula syntax error at line 1, column 7: unexpected ')'; {OPERAND}\n"
     "  sin(x+)\n"
     "        ^"),
    ("x**", FormulaSyntaxError,
     f"formula syntax error at line 1, column 4: unexpected end of the formula; {OPERAND}\n"
     "  x**\n"
     "     ^"),
    ("2x", FormulaSyntaxError,
     "formula syntax error at line 1, column 2: unexpected name 'x'; expected an operator or the "
     "end of the expression (implicit multiplication is not supported: write '2*x')\n"
     "  2x\n"
     "   ^"),
    ("max(x y)", FormulaSyntaxError,
     "formula syntax error at line 1, column 7: unexpected name 'y'; expected an operator, ',' or "
     "')' (implicit multiplication is not supported: write 'x*y')\n"
     "  max(x y)\n"
     "        ^"),
    ("sqrt(x + 1", FormulaSyntaxError,
     "formula syntax error at line 1, column 5: '(' opened at line 1, column 5 is never closed\n"
     "  sqrt(x + 1\n"
     "      ^"),
    ("x + 1)", FormulaSyntaxError,
     "formula syntax error at line 1, column 6: unmatched ')'\n"
     "  x + 1)\n"
     "       ^"),
    ("  \n # nothing\n", FormulaSyntaxError,
     "the formula is empty; write an expression such as 'x**2 + 1'"),
    ("x @ y", FormulaSyntaxError,
     "formula syntax error at line 1, column 3: unexpected character '@'; expected an operator "
     "or the end of the expression\n"
     "  x @ y\n"
     "    ^"),
    ("3..2 + x", FormulaSyntaxError,
     "formula syntax error at line 1, column 1: malformed number '3..2'\n"
     "  3..2 + x\n"
     "  ^"),
    ("f = x +\ng = y", FormulaSyntaxError,
     f"formula syntax error at line 1, column 8: unexpected end of the line; {OPERAND}\n"
     "  f = x +\n"
     "         ^"),
    ("f = x\ng = (x +* y)", FormulaSyntaxError,
     f"formula syntax error at line 2, column 9: unexpected '*'; {OPERAND}\n"
     "  g = (x +* y)\n"
     "          ^"),
    ("x + 1 = y", FormulaSyntaxError,
     "formula syntax error at line 1, column 7: unexpected '='; expected an operator or the end "
     "of the expression\n"
     "  x + 1 = y\n"
     "        ^"),
    ("2 * 1e999", FormulaSyntaxError,
     "formula syntax error at line 1, column 5: number '1e999' is out of range: numbers must lie "
     "between 1e-308 and 1e308 in size\n"
     "  2 * 1e999\n"
     "      ^"),
    ("sinn(x)", FormulaNameError,
     "unknown function 'sinn' at line 1, column 1; did you mean 'sin'?\n"
     "  sinn(x)\n"
     "  ^"),
    ("x * sin(x, y)", FormulaNameError,
     "sin takes 1 argument, got 2 at line 1, column 5\n"
     "  x * sin(x, y)\n"
     "      ^"),
    ("max(x)", FormulaNameError,
     "max takes at least 2 arguments, got 1 at line 1, column 1\n"
     "  max(x)\n"
     "  ^"),
    ("sin + 1", FormulaNameError,
     "function 'sin' is used without an argument at line 1, column 1; write sin(...)\n"
     "  sin + 1\n"
     "  ^"),
    ("x / (y - y)", FormulaError,
     "division by zero at line 1, column 3\n"
     "  x / (y - y)\n"
     "    ^"),
    ("log(0) + x", FormulaError,
     "'log' gives the undefined value zoo at line 1, column 1\n"
     "  log(0) + x\n"
     "  ^"),
    ("9^9^9^9", FormulaError,
     "the power gives a number too large to keep exactly at line 1, column 4\n"
     "  9^9^9^9\n"
     "     ^"),
    ("x + " + "sin(" * 101 + "x" + ")" * 101, FormulaSyntaxError,
     "the formula is nested more than 100 levels deep at line 1, column 401\n"
     "  ...sin(sin(sin(sin(sin(sin(sin(sin(sin(sin(sin(x)))))))))))))))))))))))))))...\n"
     "                                         ^"),
    ("f = x; f = y", FormulaError,
     "output 'f' is defined twice at line 1, column 8\n"
     "  f = x; f = y\n"
     "         ^"),
]


@pytest.mark.parametrize("text, kind, message", ERRORS, ids=[t[:20] for t, _, _ in ERRORS])
def test_malformed_formulas_explain_where_and_what(text, kind, message):
    with pytest.raises(kind) as err:
        parse_formula(text)
    assert str(err.value) == message


def test_syntax_errors_carry_line_column_and_expected_words():
    with pytest.raises(FormulaSyntaxError) as err:
        parse_formula("y = 1\nz = (x+)")
    e = err.value
    assert (e.line, e.column) == (2, 8)
    assert e.expected == ("a number", "a name", "'('", "a unary sign")
    assert isinstance(e, FormulaError) and isinstance(e, KanirError) and isinstance(e, ValueError)


def test_unknown_names_with_given_variables():
    with pytest.raises(FormulaNameError) as err:
        parse_formula("x + y1", variables=["x", "y"])
    assert str(err.value) == "unknown name 'y1' at line 1, column 5; did you mean 'y'?\n" \
                             "  x + y1\n" \
                             "      ^"
    assert (err.value.name, err.value.line, err.value.column) == ("y1", 1, 5)
    with pytest.raises(FormulaNameError, match=r"^unknown name 'foo' at line 1, column 3; "
                                               r"the variables are x, y\n"):
        parse_formula("x*foo", variables=["x", "y"])
    with pytest.raises(FormulaNameError, match=r"; 'x' is a variable: write 'x\*\(\.\.\.\)' to"):
        parse_formula("x(y + 1)", variables=["x", "y"])


def test_long_lines_are_cut_around_the_error():
    text = "x + " * 40 + "@" + " + y" * 40
    with pytest.raises(FormulaSyntaxError) as err:
        parse_formula(text)
    _, shown, caret = str(err.value).split("\n")
    assert shown.startswith("  ...") and shown.endswith("...") and len(shown) == 2 + 3 + 72 + 3
    assert shown[caret.index("^")] == "@"


@pytest.mark.parametrize("text", [
    "(" * 3000 + "x" + ")" * 3000, "-" * 3000 + "x", "x^" * 3000 + "x", "9" * 1200,
    "1e99999999999999999999", "0e99999999999999", "\x00", "x\u00b2", "y = ", "=", ";=;", "))((",
    "(1/3)^(10^20)", "2**3**4**5", "sin(" * 500 + "x" + ")" * 500,
], ids=lambda text: repr(text[:12]))
def test_nasty_inputs_only_raise_formula_errors(text):
    try:
        parse_formula(text)
    except FormulaError:
        pass


# ------------------------------------------------------------------------- hypothesis properties

NAMES = ("x", "y", "z", "theta_1")
_FUNCTIONS = {"sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "exp": sympy.exp,
              "log": sympy.log, "ln": sympy.log, "sqrt": sympy.sqrt, "abs": sympy.Abs,
              "sinh": sympy.sinh, "cosh": sympy.cosh, "tanh": sympy.tanh, "asin": sympy.asin,
              "arcsin": sympy.asin, "acos": sympy.acos, "arccos": sympy.acos,
              "atan": sympy.atan, "arctan": sympy.atan, "asinh": sympy.asinh,
              "arcsinh": sympy.asinh, "atanh": sympy.atanh, "arctanh": sympy.atanh,
              "min": sympy.Min, "max": sympy.Max}
_NUMBER = re.compile(r"(?<![\w.])(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def python_value(text: str, point: dict[str, float]):
    """Evaluate formula text as Python code with mpmath functions (``^`` read as ``**``).

    mpmath at 60 digits rather than ``math``: exact sympy and float arithmetic may cancel
    differently, and high precision makes the comparison about the parse, not about rounding.
    """
    env = {name: getattr(mpmath, name) for name in ("sin", "cos", "tan", "exp", "log", "sqrt",
                                                    "sinh", "cosh", "tanh", "asin", "acos",
                                                    "atan", "asinh", "atanh")}
    env |= {"ln": mpmath.log, "arcsin": mpmath.asin, "arccos": mpmath.acos,
            "arctan": mpmath.atan, "arcsinh": mpmath.asinh, "arctanh": mpmath.atanh,
            "abs": abs, "min": min, "max": max, "pi": mpmath.pi, "e": mpmath.e,
            "mpf": mpmath.mpf}
    env |= {name: mpmath.mpf(value) for name, value in point.items()}
    source = _NUMBER.sub(lambda m: f"mpf('{m.group()}')", text.replace("^", "**"))
    with mpmath.workdps(60):
        return eval(source, {"__builtins__": {}}, env)


def points(names=NAMES):
    return st.fixed_dictionaries({n: st.floats(0.5, 2.0) for n in names})


@PROPERTY
@given(formulas(NAMES), points())
def test_generated_formulas_agree_with_python_evaluation(text, point):
    expr = parse_expr(text, variables=NAMES)
    got = expr.evalf(60, subs={S(n): sympy.Rational(p) for n, p in point.items()})
    assert got.is_Number, (text, got)
    with mpmath.workdps(60):
        expected = python_value(text, point)
        assert not isinstance(expected, mpmath.mpc), (text, expected)
        expected = mpmath.mpf(expected)  # also turns the constants pi and e into numbers
        assert mpmath.isfinite(expected), (text, expected)
        error = abs(mpmath.mpf(got) - expected)
        assert error <= mpmath.mpf("1e-25") * max(1, abs(expected)), (text, got, expected)


@PROPERTY
@given(formulas(NAMES))
def test_generated_formulas_equal_sympy_parse_expr_exactly(text):
    local = {n: S(n) for n in NAMES} | _FUNCTIONS | {"e": sympy.E}
    transformations = standard_transformations + (convert_xor, rationalize)
    reference = sympy.parse_expr(text, local_dict=local, transformations=transformations)
    assume(not reference.has(sympy.re, sympy.im, sympy.arg))  # we keep abs(exp(x)) unevaluated
    assert parse_expr(text) == reference


@PROPERTY
@given(formulas(NAMES))
def test_printed_formulas_round_trip(text):
    """kanir's printer (the one the CLI uses) writes text its parser reads back as the same
    function.

    Not always as the same tree: printing -((x+y)/x) gives -(x + y)/x, which sympy evaluates to
    (-x - y)/x; so trees are compared first and values (at 50 digits) when they differ.
    """
    expr = parse_expr(text)
    printed = formula_text(expr)
    again = parse_expr(printed, variables=sorted(expr.free_symbols, key=str))
    if again != expr:
        point = {S(n): sympy.Rational(k + 3, k + 5) for k, n in enumerate(NAMES)}
        difference = (again - expr).evalf(50, subs=point)
        scale = max(1, abs(expr.evalf(50, subs=point)))
        assert abs(difference) <= sympy.Float("1e-40") * scale, printed


@PROPERTY
@given(formulas(NAMES, max_depth=2, max_outputs=4))
def test_multi_output_formulas_parse_statement_by_statement(text):
    f = parse_formula(text)
    statements, depth, start = [], 0, 0
    for i, ch in enumerate(text + ";"):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch in ";\n" and depth == 0:
            statements.append(text[start:i])
            start = i + 1
    statements = [s for s in statements if s.strip()]
    assert len(f.outputs) == len(statements)
    for (name, expr), statement in zip(f.outputs, statements):
        assert parse_formula(statement).expr == expr
        if "=" in statement:
            assert name == statement.split("=")[0].strip()


@PROPERTY
@given(garbage())
def test_garbage_parses_or_raises_formula_error(text):
    try:
        f = parse_formula(text)
    except FormulaError as err:
        assert str(err)
    else:
        assert f.outputs and all(isinstance(e, sympy.Expr) for _, e in f.outputs)


# -------------------------------------------------------------------------- the Feynman corpus


@pytest.mark.parametrize("eq", feynman(), ids=lambda eq: eq.name)
def test_feynman_formulas_parse_like_sympy(eq):
    f = parse_formula(eq.formula, variables=list(eq.variables))
    reference = sympy.parse_expr(eq.formula, local_dict={n: S(n) for n in eq.variables})
    assert f.expr == reference
    assert f.variables == tuple(S(n) for n in eq.variables)


def test_feynman_corpus_is_complete():
    assert len(feynman()) == 120
