"""Hypothesis strategies for kanir's formula language: valid formula texts and junk strings.

``formulas()`` texts are numerically sane when every variable lies in [0.5, 2]: logs, square
roots and fractional powers only get strictly positive arguments, arcsin/arctanh/arccos get
arguments in [-1/2, 1/2], exp gets bounded ones, no divisor can be zero (not even exactly,
symbolically), exponents are small and nesting is shallow, so values stay finite, real and far
from float64 overflow. They are reused by the compile property tests and the benchmark corpus.
"""

from __future__ import annotations

from hypothesis import strategies as st

# Precedence of a generated piece of text, lowest first; a piece is (text, precedence).
_ADD, _MUL, _UNARY, _POW, _ATOM = range(1, 6)

_DECIMALS = (".5", "2.", "0.75", "1.5e-1", "2.5E+0", "25e-1", "1E0", "3.14159", "0.125")
_EXPONENTS = ("2", "3", "0.5", "1.5", "-1", "-2", "-0.5", "(1/3)", "2^1", "1**3")
_ALIASES = {"asin": ("asin", "arcsin"), "atan": ("atan", "arctan"), "log": ("log", "ln"),
            "atanh": ("atanh", "arctanh"), "asinh": ("asinh", "arcsinh"),
            "acos": ("acos", "arccos")}


def formulas(names=("x", "y", "z"), max_depth: int = 3, max_outputs: int = 1):
    """Valid formula texts over the variables ``names``, finite for variables in [0.5, 2].

    With ``max_outputs`` > 1 a text may hold several outputs (some named ``f1 = ...``) separated
    by ';' or new lines.
    """
    names = tuple(names)
    if not names:
        raise ValueError("formulas() needs at least one variable name")
    return _formula(names, max_depth, max_outputs)


def garbage():
    """Random junk: formula-like characters, arbitrary text, and valid formulas with one typo."""
    junk = "xyz0129.eE+-*/^()=,; \n\t@#!_sinlogmaxpi"
    return st.one_of(
        st.text(alphabet=junk, max_size=30),
        st.text(max_size=30),
        st.builds(_mutate, formulas(max_depth=2, max_outputs=2), st.integers(0, 200),
                  st.sampled_from(["", *junk]), st.booleans()),
    )


def _mutate(text: str, where: int, char: str, replace: bool) -> str:
    """``text`` with ``char`` inserted at (or, if ``replace``, put over) position ``where``."""
    i = where % (len(text) + 1)
    return text[:i] + char + text[i + int(replace):]


@st.composite
def _formula(draw, names, max_depth, max_outputs):
    count = draw(st.integers(1, max_outputs))
    statements = []
    for i in range(count):
        body = _real(draw, names, max_depth)[0]
        named = count > 1 and draw(st.booleans())
        statements.append(f"f{i + 1} = {body}" if named else body)
    seps = [draw(st.sampled_from(["; ", ";", "\n", " ;\n"])) for _ in statements[1:]]
    return statements[0] + "".join(sep + s for sep, s in zip(seps, statements[1:]))


def _wrap(piece, precedence: int) -> str:
    """The text of ``piece``, parenthesized when it binds looser than ``precedence`` needs."""
    text, own = piece
    return text if own >= precedence else f"({text})"


def _binary(draw, left, op: str, right):
    """``left op right`` with the parentheses Python's (and our) precedence rules require."""
    prec = {"+": _ADD, "-": _ADD, "*": _MUL, "/": _MUL}[op]
    strict = op in "-/"  # a - (b - c), a / (b / c) need them on the right
    space = draw(st.sampled_from(["", " "]))
    text = f"{_wrap(left, prec)}{space}{op}{space}{_wrap(right, prec + strict)}"
    return text, prec


def _call(draw, fn: str, *args) -> tuple[str, int]:
    name = draw(st.sampled_from(_ALIASES.get(fn, (fn,))))
    return f"{name}({', '.join(a[0] for a in args)})", _ATOM


def _power(draw, base, exponent: str):
    op = draw(st.sampled_from(["**", "^"]))
    return f"{_wrap(base, _ATOM)}{op}{exponent}", _POW


def _leaf(draw, names):
    """A variable, a positive number (integer, decimal or scientific) or pi / e."""
    kind = draw(st.integers(0, 5))
    if kind <= 2:
        return draw(st.sampled_from(names)), _ATOM
    if kind == 3:
        return str(draw(st.integers(1, 9))), _ATOM
    if kind == 4:
        return draw(st.sampled_from(_DECIMALS)), _ATOM
    return draw(st.sampled_from(["pi", "e"])), _ATOM


def _positive(draw, names, depth: int):
    """Text whose value is strictly positive (and finite) for variables in [0.5, 2]."""
    if depth <= 0:
        return _leaf(draw, names)
    d = depth - 1
    kind = draw(st.integers(0, 15))
    if kind <= 2:
        return _leaf(draw, names)
    if kind == 3:
        return _binary(draw, _positive(draw, names, d), "+", _positive(draw, names, d))
    if kind == 4:
        op = draw(st.sampled_from("*/"))
        return _binary(draw, _positive(draw, names, d), op, _positive(draw, names, d))
    if kind == 5:
        return _power(draw, _positive(draw, names, d), draw(st.sampled_from(_EXPONENTS)))
    if kind == 6:
        return _call(draw, "sqrt", _positive(draw, names, d))
    if kind == 7:  # exp of a bounded argument or of minus a leaf: never over- or underflows
        arg = draw(st.sampled_from(["bounded", "negative"]))
        inner = (_bounded(draw, names, d) if arg == "bounded"
                 else ("-" + _leaf(draw, names)[0], _UNARY))
        return _call(draw, "exp", inner)
    if kind == 8:  # log(1 + p) > 0
        one_plus = _binary(draw, ("1", _ATOM), "+", _positive(draw, names, d))
        return _call(draw, "log", one_plus)
    if kind == 9:
        return _binary(draw, ("2", _ATOM), "+", _bounded(draw, names, d))
    if kind == 10:
        return _call(draw, draw(st.sampled_from(["atan", "asinh"])), _positive(draw, names, d))
    if kind == 11:
        return _call(draw, "cosh", _bounded(draw, names, d))
    if kind == 12:
        return _call(draw, "acos", _half(draw, names, d))
    if kind == 13:
        fn = draw(st.sampled_from(["min", "max"]))
        args = [_positive(draw, names, d) for _ in range(draw(st.integers(2, 3)))]
        return _call(draw, fn, *args)
    if kind == 14:  # redundant parentheses, maybe spread over lines
        inner = _positive(draw, names, d)[0]
        return draw(st.sampled_from(["({})", "(\n  {}\n)"])).format(inner), _ATOM
    return "+" + _wrap(_positive(draw, names, d), _UNARY), _UNARY


def _real(draw, names, depth: int):
    """Text whose value is a finite real number (of any sign) for variables in [0.5, 2]."""
    if depth <= 0:
        return _leaf(draw, names)
    d = depth - 1
    kind = draw(st.integers(0, 11))
    if kind <= 2:
        return _positive(draw, names, depth)
    if kind == 3:
        return "-" + _wrap(_real(draw, names, d), _UNARY), _UNARY
    if kind == 4:
        op = draw(st.sampled_from("+-*"))
        return _binary(draw, _real(draw, names, d), op, _real(draw, names, d))
    if kind == 5:
        return _binary(draw, _real(draw, names, d), "/", _positive(draw, names, d))
    if kind == 6:
        return _power(draw, _real(draw, names, d), draw(st.sampled_from(["2", "3", "2^1"])))
    if kind == 7:
        fn = draw(st.sampled_from(["sin", "cos", "tanh", "atan", "asinh", "abs"]))
        return _call(draw, fn, _real(draw, names, d))
    if kind == 8:
        return _call(draw, "log", _positive(draw, names, d))
    if kind == 9:
        return _call(draw, draw(st.sampled_from(["asin", "atanh"])), _half(draw, names, d))
    if kind == 10:
        return _call(draw, draw(st.sampled_from(["tan", "sinh"])), _bounded(draw, names, d))
    fn = draw(st.sampled_from(["min", "max"]))
    return _call(draw, fn, _real(draw, names, d), _real(draw, names, d))


def _bounded(draw, names, depth: int):
    """Text whose value lies in [-1, 1]."""
    fn = draw(st.sampled_from(["sin", "cos", "tanh"]))
    return _call(draw, fn, _real(draw, names, depth))


def _half(draw, names, depth: int):
    """Text whose value lies in [-1/2, 1/2]."""
    return _binary(draw, _bounded(draw, names, depth), "/", ("2", _ATOM))


def table_calls(names=("x", "y", "z")):
    """Calls of every function of the language's table (kanir.grammar.functions), under each of
    its spellings, on generated formulas: for print/parse round trips (values may be complex or
    undefined, so not for numeric checks)."""
    from kanir.grammar.functions import TABLE

    spellings = [(name, f.arity) for f in TABLE for name in f.names]

    @st.composite
    def call(draw):
        name, arity = draw(st.sampled_from(spellings))
        count = arity if arity is not None else draw(st.integers(2, 3))
        args = [draw(formulas(names, max_depth=2)) for _ in range(count)]
        text = f"{name}({', '.join(args)})"
        if draw(st.booleans()):  # inside a larger expression
            text = f"{draw(formulas(names, max_depth=1))} + {text}*{draw(st.sampled_from(names))}"
        return text

    return call()
