"""The printer of kanir's formula language and the text of exact constants.

:func:`formula_text` writes a sympy expression so that :mod:`kanir.grammar.formula` reads it
back unchanged; :func:`exact_text` / :func:`parse_exact` are how the IR keeps exact constants
(``Activation.meta["exact"]``, node ``exact``) as text. The frontend, the backends and the CLI
all print through here, so none of them needs the frontend to print.
"""

from __future__ import annotations

import math
from functools import lru_cache

import sympy

from kanir.errors import FormulaError
from kanir.grammar.functions import BY_SYMPY

HALF = sympy.S.Half


def to_float(v: sympy.Expr) -> float:
    """The float nearest an exact real sympy number (raises on complex or infinite values)."""
    try:
        if v.is_Integer:
            f = float(int(v))
        elif v.is_Rational:
            f = int(v.p) / int(v.q)
        else:
            f = float(v.evalf(30))
    except OverflowError:
        f = math.inf
    if not math.isfinite(f):
        raise FormulaError(f"the constant {str(v.evalf(3)) if v.is_Rational else v} is too large for "
                           f"a float64 (the largest is about 1.8e308)")
    return f


class _Printer(sympy.printing.str.StrPrinter):
    """Prints in kanir's formula language, so that :mod:`kanir.grammar.formula` reads the text
    back to the same expression: functions under their names in the language's table (abs, min,
    max, ...), Euler's number as ``e``, the imaginary unit (never in a compiled formula) as
    ``sqrt(-1)`` rather than a name a variable could have."""

    def _print_Exp1(self, expr):
        return "e"

    def _print_ImaginaryUnit(self, expr):
        return "sqrt(-1)"

    def _print_Function(self, expr):
        entry = BY_SYMPY.get(expr.func)
        if entry is None or (entry.arity == 1 and len(expr.args) != 1):
            return super()._print_Function(expr)
        return f"{entry.text}({self.stringify(expr.args, ', ')})"

    def _print_Heaviside(self, expr):
        if expr.args[1:] == (HALF,):  # sympy's default value at 0, the language's heaviside
            return f"{BY_SYMPY[sympy.Heaviside].text}({self._print(expr.args[0])})"
        return super()._print_Heaviside(expr)

    _print_Abs = _print_Function
    _print_Min = _print_Max = _print_Function


_PRINTER = _Printer()


def formula_text(e: sympy.Expr) -> str:
    """``e`` written in kanir's formula language; the parser reads the text back to ``e``."""
    return _PRINTER.doprint(e)


@lru_cache(maxsize=4096)
def exact_text(v: sympy.Expr) -> str | None:
    """Text of an exact constant that :func:`parse_exact` reads back equal; None for integers
    (the float is exact) and for values that cannot be written exactly (sympy Floats)."""
    if (v.is_Integer and abs(v) <= 2**53) or v.has(sympy.Float):
        return None
    if v.is_Rational:
        return f"{v.p}/{v.q}"
    try:
        text = _PRINTER.doprint(v)
        back = parse_exact(text)
    except Exception:  # a constant the language cannot write: keep the float only
        return None
    return text if back is not None and back == v else None


@lru_cache(maxsize=4096)
def parse_exact(text: str) -> sympy.Expr | None:
    """Read an exact-constant text (no names, no eval); None when it is not one."""
    num = text.strip()
    try:
        if num.count("/") == 1 and num.replace("/", "").lstrip("-").isdigit():
            p, q = num.split("/")
            return sympy.Rational(int(p), int(q))
        if num.lstrip("-").isdigit():
            return sympy.Integer(int(num))
    except (ValueError, ZeroDivisionError):
        return None
    from kanir.grammar.formula import parse_expr

    try:
        v = parse_expr(num, variables=[])
    except Exception:
        return None
    return v if v.is_number else None
