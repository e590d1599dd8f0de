"""The one table of functions of kanir's formula language, shared by the text parser
(:mod:`kanir.grammar.formula`), the compiler frontend (:mod:`kanir.frontend.lowering`) and the printer
(:func:`kanir.frontend.lowering.formula_text`), so that text and sympy input accept the same functions and
everything printed reads back.

Each entry names a sympy function, its spellings in text (the first is the one printed; sympy's
own spelling, such as ``Abs`` or ``Min``, is always accepted too, so sympy's printed output reads
back), its number of arguments and how the frontend compiles it: a library function name, a
rewrite into library functions (exact for real arguments), or None when the frontend handles it
structurally (``sqrt`` is a power, ``min``/``max`` become ``abs``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy

__all__ = ["BY_SYMPY", "BY_TEXT", "MAX_POWER", "TABLE", "FormulaFunction"]

#: Largest exponent (in size) of a power of a variable: x**1000 already overflows float64 for
#: x > 2.03, and the compiled power function needs an exponent that fits a machine integer.
MAX_POWER = 1000


@dataclass(frozen=True)
class FormulaFunction:
    """One function of the formula language."""

    sympy: Callable[..., sympy.Expr]  # the sympy function (class, or sympy.sqrt)
    names: tuple[str, ...]  # spellings in text; names[0] is printed
    arity: int | None = 1  # None: 2 or more arguments
    library: str | None = None  # compiled as this kanir.ir.library function
    rewrite: Callable[[sympy.Expr], sympy.Expr] | None = None  # or as this expression

    @property
    def text(self) -> str:
        """The spelling kanir prints."""
        return self.names[0]


def _f(fn, names, library=None, rewrite=None, arity=1) -> FormulaFunction:
    own = getattr(fn, "__name__", None)
    if isinstance(fn, type) and own not in names:
        names = (*names, own)  # sympy's spelling reads back
    return FormulaFunction(fn, tuple(names), arity, library, rewrite)


def _inv(f):
    """``1/f(u)`` with ``f`` left unevaluated (sec, csc, ... as reciprocals)."""
    return lambda u: 1 / f(u, evaluate=False)


TABLE: tuple[FormulaFunction, ...] = (
    _f(sympy.sin, ("sin",), "sin"),
    _f(sympy.cos, ("cos",), "cos"),
    _f(sympy.tan, ("tan",), "tan"),
    _f(sympy.exp, ("exp",), "exp"),
    _f(sympy.log, ("log", "ln"), "log"),
    _f(sympy.sqrt, ("sqrt",)),
    _f(sympy.Abs, ("abs",), "abs"),
    _f(sympy.sign, ("sign", "sgn"), "sgn"),
    _f(sympy.sinh, ("sinh",), "sinh"),
    _f(sympy.cosh, ("cosh",), "cosh"),
    _f(sympy.tanh, ("tanh",), "tanh"),
    _f(sympy.asin, ("asin", "arcsin"), "arcsin"),
    _f(sympy.acos, ("acos", "arccos"), "arccos"),
    _f(sympy.atan, ("atan", "arctan"), "arctan"),
    _f(sympy.asinh, ("asinh", "arcsinh"), "arcsinh"),
    _f(sympy.atanh, ("atanh", "arctanh"), "arctanh"),
    _f(sympy.acosh, ("acosh", "arccosh"), rewrite=lambda u: sympy.log(u + sympy.sqrt(u**2 - 1))),
    _f(sympy.sec, ("sec",), rewrite=_inv(sympy.cos)),
    _f(sympy.csc, ("csc",), rewrite=_inv(sympy.sin)),
    _f(sympy.cot, ("cot",), rewrite=_inv(sympy.tan)),
    _f(sympy.sech, ("sech",), rewrite=_inv(sympy.cosh)),
    _f(sympy.csch, ("csch",), rewrite=_inv(sympy.sinh)),
    _f(sympy.coth, ("coth",), rewrite=_inv(sympy.tanh)),
    _f(sympy.acot, ("acot", "arccot"), rewrite=lambda u: sympy.atan(1 / u)),
    _f(sympy.asec, ("asec", "arcsec"), rewrite=lambda u: sympy.acos(1 / u)),
    _f(sympy.acsc, ("acsc", "arccsc"), rewrite=lambda u: sympy.asin(1 / u)),
    _f(sympy.acoth, ("acoth", "arccoth"), rewrite=lambda u: sympy.atanh(1 / u)),
    _f(sympy.Heaviside, ("heaviside",), rewrite=lambda u: (sympy.sign(u) + 1) / 2),
    _f(sympy.Min, ("min",), arity=None),
    _f(sympy.Max, ("max",), arity=None),
)

#: Every spelling in text -> its entry.
BY_TEXT: dict[str, FormulaFunction] = {n: f for f in TABLE for n in f.names}
#: sympy function -> its entry (sqrt is a power to sympy, so it has none).
BY_SYMPY: dict[object, FormulaFunction] = {f.sympy: f for f in TABLE if isinstance(f.sympy, type)}
