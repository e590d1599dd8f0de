"""Simplifying and rounding read-back formulas without losing their exact constants.

``sympy.simplify`` turns every Rational into a Float as soon as one Float sits next to it
(``5*x**2/12 + 0.2778*log(y)`` becomes ``0.41667*x**2 + ...``), and rounding then cuts the
formerly exact constant. :func:`simplify_keeping_exact` hides the floats behind placeholder
symbols while sympy works, so exact numbers stay exact; :func:`round_floats` only ever touches
Floats.

sympy.simplify has no time limit of its own, and kanir sets none (no signals, no threads): its
effort is bounded by an operation-count budget instead. ``simplify="auto"`` (the default of
``KAN.formula``) runs it only on formulas within :data:`MAX_OPS_EXACT` operations, or
:data:`MAX_OPS_FLOAT` when floats are left; ``True`` runs it whatever the size (the caller
accepts the cost); ``False`` never runs it.
"""

from __future__ import annotations

from typing import Literal

import sympy

from kanir.errors import ArgumentError

#: operation budget (sympy.count_ops) of simplify="auto" for formulas whose constants are exact
MAX_OPS_EXACT = 200
#: ... and for formulas with floats left: trigsimp ran for minutes on a 41-operation formula
#: with 14 floats (a Feynman run), so the cap sits well below that
MAX_OPS_FLOAT = 30

SimplifyMode = bool | Literal["auto"]


def simplify_mode(value) -> SimplifyMode:
    """Check a ``simplify`` argument: True, False or "auto"; anything else is an ArgumentError."""
    if value is True or value is False or value == "auto":
        return value
    raise ArgumentError(f"simplify must be True, False or 'auto' (simplify only formulas of at "
                        f"most {MAX_OPS_EXACT} operations, {MAX_OPS_FLOAT} with floats), "
                        f"got {value!r}")


def within_budget(e: sympy.Expr, max_exact: int = MAX_OPS_EXACT,
                  max_float: int = MAX_OPS_FLOAT) -> bool:
    """Whether ``e`` is small enough for simplify="auto": at most ``max_exact`` operations when its
    constants are exact, ``max_float`` when it has floats."""
    has_floats = bool(e.atoms(sympy.Float))
    return sympy.count_ops(e) <= (max_float if has_floats else max_exact)


def simplify_keeping_exact(e: sympy.Expr, simplify: SimplifyMode = "auto",
                           max_exact: int = MAX_OPS_EXACT,
                           max_float: int = MAX_OPS_FLOAT) -> sympy.Expr:
    """sympy.simplify with the floats of ``e`` held as symbols, so Rationals, π, √2 ... stay
    exact. ``simplify``: "auto" skips formulas outside the operation budget (see
    :func:`within_budget`), True always simplifies, False returns ``e``. A formula sympy cannot
    simplify (or one skipped) is returned unsimplified, never lost. Thread-safe."""
    simplify = simplify_mode(simplify)
    if simplify is False or (simplify == "auto" and not within_budget(e, max_exact, max_float)):
        return e
    floats = sorted(e.atoms(sympy.Float), key=lambda f: float(f))
    hide = {f: sympy.Dummy(f"c{k}", positive=bool(f > 0), negative=bool(f < 0))
            for k, f in enumerate(floats) if f != 0}
    try:
        out = sympy.simplify(e.xreplace(hide))
    except (TypeError, ValueError, RecursionError, NotImplementedError):
        return e
    return out.xreplace({d: f for f, d in hide.items()})


def round_floats(e: sympy.Expr, digits: int) -> sympy.Expr:
    """Round every Float of ``e`` to ``digits`` significant digits (exact numbers untouched)."""
    return e.xreplace({f: sympy.Float(f"{float(f):.{digits}g}", digits)
                       for f in e.atoms(sympy.Float)})
