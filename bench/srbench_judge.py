"""SRBench's criteria for a found formula: exact symbolic equivalence and R² > 0.999 on test data.

Exact: the formula and the truth are sympy-equal (their difference simplifies to 0 or their
ratio to 1) after floats are snapped to nearby exact constants (p/q · {1, π, π², 1/π, e, √2,
√π, 1/√(2π)}, q ≤ 100, within 1e-6 relative), or they have the same expression tree with every number
within 1e-6 relative (π and other constants evaluated). Variables whose range is positive are
positive symbols (non-negative when the range starts at 0), so ``sqrt(x**2)`` equals ``x`` on
the Feynman ranges: the data cannot tell them apart, and the physics' variables are positive.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import sympy

REL = 1e-6          #: constants within this relative distance count as equal
R2_OK = 0.999       #: SRBench's accuracy criterion
MAX_OPS = 250       #: formulas larger than this are not given to sympy.simplify (too slow)
_BASES = (sympy.Integer(1), sympy.pi, sympy.pi**2, 1 / sympy.pi, sympy.E, sympy.sqrt(2),
          sympy.sqrt(sympy.pi), 1 / sympy.sqrt(2 * sympy.pi))
#: function names a formula string may use besides sympy's (gplearn, pykan spellings)
_FUNCS = {"arcsin": sympy.asin, "arccos": sympy.acos, "arctan": sympy.atan,
          "arctanh": sympy.atanh, "sgn": sympy.sign, "abs": sympy.Abs}


def symbols(names, ranges=None) -> dict:
    """One sympy Symbol per name, positive / non-negative where its range says so."""
    out = {}
    for i, n in enumerate(names):
        lo = None if ranges is None else float(ranges[i][0])
        kw = {"real": True}
        if lo is not None and lo > 0:
            kw = {"positive": True}
        elif lo is not None and lo == 0:
            kw = {"nonnegative": True}
        out[n] = sympy.Symbol(n, **kw)
    return out


def parse(formula, syms: dict) -> sympy.Expr:
    """A formula (string or sympy expression) over ``syms`` (names matched by spelling)."""
    if isinstance(formula, sympy.Basic):
        return formula.xreplace({s: syms[s.name] for s in formula.free_symbols
                                 if s.name in syms})
    local = {**_FUNCS, **syms}
    return sympy.parse_expr(str(formula), local_dict=local)


def snap_constant(c: float, rel: float = REL):
    """An exact constant within ``rel`` of ``c`` (p/q times a base), or None."""
    if c == 0:
        return sympy.Integer(0)
    for base in _BASES:
        b = float(base)
        r = Fraction(c / b).limit_denominator(100)
        if r != 0 and abs(float(r) * b - c) <= rel * abs(c):
            return sympy.Rational(r.numerator, r.denominator) * base
    return None


def snap(expr: sympy.Expr, rel: float = REL) -> sympy.Expr:
    """``expr`` with every float that has a nearby exact constant replaced by it."""
    rep = {}
    for fl in expr.atoms(sympy.Float):
        s = snap_constant(float(fl), rel)
        if s is not None:
            rep[fl] = s
    return expr.xreplace(rep) if rep else expr


def same_structure(a: sympy.Basic, b: sympy.Basic, rel: float = REL) -> bool:
    """Same expression tree, numbers within ``rel`` relative (commutative arguments in any
    order)."""
    if a.is_Number and b.is_Number:
        fa, fb = float(a), float(b)
        return fa == fb or abs(fa - fb) <= rel * max(abs(fa), abs(fb))
    if a.is_Symbol or b.is_Symbol:
        return a == b
    if a.func != b.func or len(a.args) != len(b.args):
        return False
    if not a.args:
        return a == b
    if not (a.is_Add or a.is_Mul):
        return all(same_structure(x, y, rel) for x, y in zip(a.args, b.args))
    left = list(b.args)
    for x in a.args:  # greedy matching is enough: arguments are canonicalised by sympy
        for k, y in enumerate(left):
            if same_structure(x, y, rel):
                del left[k]
                break
        else:
            return False
    return True


def _numeric(expr: sympy.Expr) -> sympy.Expr:
    """Exact constants (π, rationals under functions) evaluated to floats, symbols kept."""
    return expr.evalf(15)


def _values(expr, order, x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        v = sympy.lambdify(order, expr, "numpy")(*x.T)
    v = np.asarray(v, dtype=complex)
    return np.broadcast_to(v, (x.shape[0],))


def judge(formula, truth, names, X_test, y_test=None, ranges=None, symbolic=True) -> dict:
    """``{"exact", "r2", "accurate", "how"}`` for ``formula`` against ``truth`` on the test
    points ``X_test`` (columns in ``names`` order; ``y_test`` defaults to the truth's values).
    ``ranges`` (one (low, high) per name) sets the symbols' signs; ``symbolic=False`` stops
    after R² (sympy's simplify has no time limit: callers bound it with a process)."""
    out = {"exact": False, "r2": float("nan"), "accurate": False, "how": ""}
    if formula is None or (isinstance(formula, str) and not formula.strip()):
        return {**out, "how": "no formula"}
    syms = symbols(names, ranges)
    order = [syms[n] for n in names]
    try:
        t = parse(truth, syms)
        f = parse(formula, syms)
    except Exception as exc:  # noqa: BLE001 - an unparsable formula is simply wrong
        return {**out, "how": f"unparsable: {type(exc).__name__}"}
    X_test = np.asarray(X_test, dtype=float)
    try:
        tt = _values(t, order, X_test).real  # the truth's values: the exactness pre-check
        tv = tt if y_test is None else np.asarray(y_test, float)  # R² is against the labels
        fc = _values(f, order, X_test)
    except Exception as exc:  # noqa: BLE001
        return {**out, "how": f"not evaluable: {type(exc).__name__}"}
    fv = fc.real
    if not np.all(np.isfinite(fc)):
        return {**out, "how": "non-finite values on the test points"}
    r2 = float(1 - np.mean((fv - tv) ** 2) / max(float(np.var(tv)), 1e-300))
    out.update(r2=r2, accurate=r2 > R2_OK)
    if not symbolic:
        return {**out, "how": "symbolic check not run"}
    if np.max(np.abs(fc.imag)) > 1e-9 * (1 + np.max(np.abs(fv))):
        return {**out, "how": "complex values on the test points"}
    # a cheap refusal: an equivalent formula (constants within REL) is this close everywhere
    rel = float(np.max(np.abs(fv - tt) / (np.abs(tt) + 1e-12 * np.max(np.abs(tt)) + 1e-300)))
    if rel > 1e-3:
        return {**out, "how": f"values differ (max rel. error {rel:.1e})"}
    fs = snap(f)
    if not fs.atoms(sympy.Float) and sympy.count_ops(fs) <= MAX_OPS:
        if _equal(fs, t):
            return {**out, "exact": True, "how": "sympy-equal" + (" after snapping"
                                                                   if fs != f else "")}
    if same_structure(_numeric(f), _numeric(t)) or (sympy.count_ops(fs) <= MAX_OPS and
                                                    same_structure(_numeric(sympy.simplify(fs)),
                                                                   _numeric(sympy.simplify(t)))):
        return {**out, "exact": True, "how": "same structure, constants within 1e-6"}
    left = len(fs.atoms(sympy.Float))
    return {**out, "how": f"not equivalent ({left} float(s) left, max rel. error {rel:.1e})"}


def _equal(f: sympy.Expr, t: sympy.Expr) -> bool:
    """Difference simplifies to 0 or ratio to 1."""
    if sympy.simplify(f - t) == 0:
        return True
    try:
        return t != 0 and sympy.simplify(f / t) == 1
    except Exception:  # noqa: BLE001
        return False
