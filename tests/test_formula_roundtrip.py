"""Issue 10 §3: formula text and sympy input accept the same functions, everything kanir prints
as a formula reads back, and bad formulas fail with positioned FormulaErrors (CLI: exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sympy
from formula_strategies import formulas, table_calls
from hypothesis import assume, given, settings

import kanir
from kanir.backends.sympy import to_sympy
from kanir.errors import FormulaError
from kanir.frontend.lowering import SUPPORTED_FUNCTIONS
from kanir.grammar.formula import parse_expr, parse_formula
from kanir.grammar.functions import TABLE
from kanir.grammar.printer import formula_text

ROOT = Path(__file__).resolve().parents[1]
KANIR = ROOT / ".venv" / "bin" / "kanir"
PROPERTY = settings(max_examples=150, deadline=None)
x, y, z = sympy.symbols("x y z")


def run(*args) -> subprocess.CompletedProcess:
    """The real ``kanir`` command (the console script, else ``python -m kanir.cli.commands``)."""
    cmd = [str(KANIR)] if KANIR.exists() else [sys.executable, "-m", "kanir.cli.commands"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=300)


def same_function(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Equal trees, or equal values at 50 digits at a generic point (printing -(a+b)/c reads
    back as (-a-b)/c, the same function as another tree)."""
    if a == b:
        return True
    point = {s: sympy.Rational(k + 3, k + 5) for k, s in enumerate(sorted(
        a.free_symbols | b.free_symbols, key=str))}
    diff = (a - b).evalf(50, subs=point)
    scale = max(1, abs(a.evalf(50, subs=point)))
    return abs(diff) <= sympy.Float("1e-40") * scale


# ---------------------------------------------------------------- one table of functions
@pytest.mark.parametrize("text", ["Abs(x)", "Min(x, y)", "Max(x, y, 2)", "sign(x - 1)", "sec(x)",
                                  "csc(x)", "cot(x)", "acosh(x + 1)", "asinh(x)", "atanh(x/3)",
                                  "Heaviside(x - 1)", "sech(x)", "acot(x)", "acoth(x + 2)"])
def test_text_compiles_every_function_sympy_input_compiles(text):
    """These failed as "unknown function" in text although they compile from sympy."""
    expr = parse_expr(text)
    from_text = to_sympy(kanir.compile(text))[0]
    from_sympy = to_sympy(kanir.compile(expr, sorted(expr.free_symbols, key=str)))[0]
    assert from_text == from_sympy
    point = {x: sympy.Rational(7, 5), y: sympy.Rational(3, 4)}
    assert abs((from_text - expr).evalf(40, subs=point)) < 1e-30


@pytest.mark.parametrize("entry", TABLE, ids=lambda f: f.text)
def test_every_spelling_of_the_table_parses_to_its_sympy_function(entry):
    args = "x, y" if entry.arity is None else "x"
    expected = entry.sympy(x, y) if entry.arity is None else entry.sympy(x)
    for name in entry.names:
        assert parse_expr(f"{name}({args})") == expected, name
    assert entry.text in SUPPORTED_FUNCTIONS


@PROPERTY
@given(formulas(("x", "y", "z"), max_depth=3))
def test_kanir_printer_reads_back_over_the_grammar_corpus(text):
    """Print with kanir's printer, parse with kanir's parser: the same expression."""
    expr = parse_expr(text)
    assert same_function(parse_expr(formula_text(expr), ["x", "y", "z"]), expr)


@PROPERTY
@given(table_calls())
def test_kanir_printer_reads_back_every_function_of_the_table(text):
    try:
        expr = parse_expr(text)
    except FormulaError:  # e.g. atanh(1): undefined, so nothing to print
        assume(False)
    printed = formula_text(expr)
    assert same_function(parse_expr(printed, ["x", "y", "z"]), expr), printed


@settings(max_examples=40, deadline=None)
@given(formulas(("x", "y", "z"), max_depth=2))
def test_compiled_read_back_prints_text_that_reads_back(text):
    """What `kanir compile` prints as "read back" parses back to the same expression."""
    back = to_sympy(kanir.compile(text, ["x", "y", "z"]))[0]
    again = parse_expr(formula_text(back), ["x", "y", "z"])
    if back.has(sympy.Float):  # a float prints with 15 digits: equal to that precision
        point = {x: sympy.Rational(3, 4), y: sympy.Rational(5, 4), z: sympy.Rational(3, 2)}
        a, b = back.evalf(30, subs=point), again.evalf(30, subs=point)
        assert abs(a - b) <= 1e-12 * max(1, abs(a))
    else:
        assert same_function(again, back)


def test_cli_prints_min_and_max_it_can_read_back():
    """`kanir compile "min(x,y)*z"` echoed Min(x, y), which the same command rejected."""
    r = run("compile", "min(x,y)*z")
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(" = ", 1) for line in r.stdout.splitlines() if " = " in line)
    assert lines["formula    y_1"] == "z*min(x, y)"
    for printed in lines.values():
        again = run("compile", printed, "--vars", "x,y,z")
        assert again.returncode == 0, (printed, again.stderr)


# ---------------------------------------------------------------- constants and names
def test_constants_and_names_print_unambiguously():
    """Euler's e, pi and variables named E, I, S, N print apart and read back as they were."""
    E, I, S, N = sympy.symbols("E I S N")
    expr = E * sympy.E + I * sympy.pi + S + N + x**sympy.E
    printed = formula_text(expr)
    assert parse_expr(printed) == expr
    assert parse_formula(printed).variables == (E, I, N, S, x)
    assert formula_text(sympy.I * x) == "sqrt(-1)*x"  # never a name a variable can have
    assert parse_expr("sqrt(-1)") == sympy.I


@pytest.mark.parametrize("name", ["e", "pi"])
def test_constant_names_cannot_name_variables(name):
    message = f"'{name}' cannot name a variable: in formulas '{name}' is always"
    with pytest.raises(FormulaError, match=message):
        parse_formula(f"{name}*x", variables=[name, "x"])
    with pytest.raises(FormulaError, match=message):
        kanir.compile(sympy.Symbol(name) * x)
    r = run("compile", f"{name}*x", "--vars", f"{name},x")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"kanir compile: error: {message}")


# ---------------------------------------------------------------- clear errors
@pytest.mark.parametrize("formula,message", [
    ("x**(10**100)", "the exponent 1.00e+100 is too large: a power of a variable needs an "
                     "exponent between -1000 and 1000 at line 1, column 2"),
    ("x**1e300", "the exponent 1.00e+300 is too large: a power of a variable needs an exponent "
                 "between -1000 and 1000 at line 1, column 2"),
    ("x*1e308*10", "'*' gives the constant 1.00e+309, which is too large for a float64 (the "
                   "largest is about 1.8e308) at line 1, column 8"),
    ("sin(x*10**400)", "'**' gives the constant 1.00e+400, which is too large for a float64"),
    ("exp(1000)*x", "'exp' gives the constant 1.97e+434, which is too large for a float64"),
])
def test_overflow_is_a_positioned_error_with_exit_2(formula, message):
    """These were tracebacks with exit 1."""
    with pytest.raises(FormulaError, match=None) as err:
        kanir.compile(formula)
    assert str(err.value).startswith(message)
    r = run("compile", formula)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"kanir compile: error: {message}")
    assert "Traceback" not in r.stderr and "domain" not in r.stderr


def test_intermediate_overflow_that_cancels_is_fine():
    assert parse_expr("x*1e308*10/100") == sympy.Integer(10) ** 307 * x


def test_sympy_input_overflow_is_a_formula_error():
    with pytest.raises(FormulaError, match=r"the constant 1.00e\+309 is too large for a float64"):
        kanir.compile(x * sympy.Integer(10) ** 309)
    with pytest.raises(FormulaError, match="a power of a variable needs an exponent between"):
        kanir.compile(x ** sympy.Integer(10) ** 100)


def test_self_check_reports_overflow_not_domain():
    r = run("compile", "x*1e308")
    assert r.returncode == 0, r.stderr
    assert "points where the formula overflows float64 skipped" in r.stdout
    assert "domain" not in r.stdout


def test_formula_that_cancels_says_it_simplifies_to_a_constant():
    """'0*x' was said to have no variables."""
    message = ("the formula simplifies to a constant (0): its variables (x) cancel out, and a "
               "KAN needs at least one input")
    with pytest.raises(FormulaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        kanir.compile("0*x")
    r = run("compile", "0*x")
    assert r.returncode == 2 and r.stderr.startswith(f"kanir compile: error: {message}")
    assert to_sympy(kanir.compile("0*x", ["x"]))[0] == 0  # naming the input compiles it


def test_unclosed_bracket_is_reported_where_it_opens():
    """It was reported on line 3 as "implicit multiplication ... write '1*c'"."""
    text = "a = x\nb = 2*(x+1\nc = x*y"
    message = "formula syntax error at line 2, column 7: '(' opened at line 2, column 7 is never closed"
    with pytest.raises(FormulaError) as err:
        parse_formula(text)
    assert str(err.value) == f"{message}\n  b = 2*(x+1\n        ^"
    assert (err.value.line, err.value.column) == (2, 7)
    r = run("compile", text)
    assert r.returncode == 2 and r.stderr.startswith(f"kanir compile: error: {message}")
    # a bracket spread over lines and closed later keeps the error inside it
    with pytest.raises(FormulaError, match="implicit multiplication is not supported"):
        parse_formula("a = (x +\n 2 y)")


def test_unknown_function_lists_each_function_once():
    with pytest.raises(FormulaError) as err:
        parse_expr("erf(x)")
    listed = str(err.value).split("the functions are ")[1].split("\n")[0].split(", ")
    assert listed == sorted({f.text for f in TABLE}) and "Abs" not in listed
