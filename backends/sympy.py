"""The sympy backend: ``to_sympy(graph)`` reads the formula of every output back from a KanGraph.

Built bottom-up in one topological pass (no ``simplify`` unless asked), so it is fast on large
graphs. Symbolic edges are exact: a parameter whose exact value the compiler recorded (the
``exact`` texts in ``Activation.meta`` and on nodes/subnodes) comes back as that sympy constant
when it still rounds to the stored float; other floats come back as integers or small-denominator
rationals when they are exactly those, else as sympy Floats. A spline edge raises an error naming
it, unless ``spline="piecewise"`` asks for its exact piecewise polynomial (plus the base function).
Works on layered and expression-level graphs.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import networkx as nx
import numpy as np
import sympy

from kanir.errors import SymbolicExportError
from kanir.ir.activation import Activation, SplinePart
from kanir.ir.graph import KanGraph
from kanir.ir.library import BASE_FUNCTIONS, LIBRARY

__all__ = ["SymbolicExportError", "activation_expr", "spline_expr", "to_sympy"]


def to_sympy(graph: KanGraph, simplify: bool = False, spline: str = "error",
             rational: bool = True) -> list[sympy.Expr]:
    """One sympy expression per output, over Symbols named as the graph's inputs.

    ``spline``: "error" (a spline edge raises :class:`SymbolicExportError` naming it) or
    "piecewise" (its exact piecewise polynomial). ``rational``: write floats that are exactly
    integers or small-denominator rationals as such. ``simplify``: run ``sympy.simplify`` on
    each output (slow on large graphs).
    """
    if not isinstance(graph, KanGraph):
        raise SymbolicExportError(f"to_sympy needs a KanGraph, got {type(graph).__name__}")
    if spline not in ("error", "piecewise"):
        raise SymbolicExportError(f"spline must be 'error' or 'piecewise', got {spline!r}")
    graph.check()
    g = graph.nx
    names = graph.input_names
    layered = graph.level == "layered"
    value: dict = {}
    num = _Numbers(rational)
    for n in nx.topological_sort(g):
        a = g.nodes[n]
        kind = a["kind"]
        if kind == "input":
            value[n] = sympy.Symbol(names[a["index"]])
        elif kind == "subnode":
            terms = []
            for u in g.predecessors(n):
                act = g.edges[u, n].get("act")
                if act is not None:
                    terms.append(activation_expr(act, value[u], spline, _edge_name(graph, u, n),
                                                 num))
            value[n] = _affine(sympy.Add(*terms), a, num)
        else:
            subs = [p for p in g.predecessors(n) if g.edges[p, n].get("wire")]
            subs.sort(key=lambda s: g.nodes[s].get("slot", g.nodes[s].get("index", 0)))
            if kind == "mult" or a.get("arity"):
                body = sympy.Mul(*(value[s] for s in subs))
            else:
                body = sympy.Add(*(value[s] for s in subs))
            value[n] = _affine(body, a, num)
    if layered:
        L = graph.depth
        outs = [("n", L, i) for i in range(len(graph.output_names))]
    else:
        outs = sorted((n for n, a in g.nodes(data=True) if a["kind"] == "output"),
                      key=lambda n: g.nodes[n]["index"])
    result = [value[o] for o in outs]
    if simplify:
        result = [sympy.simplify(e) for e in result]
    return result


def _edge_name(graph: KanGraph, u, v) -> str:
    if graph.level == "layered":
        return f"({u[1]},{u[2]},{v[2]})"
    return f"{u}->{v}"


def _affine(body: sympy.Expr, attrs: dict, num: _Numbers) -> sympy.Expr:
    exact = attrs.get("exact") or {}
    scale, bias = attrs.get("scale", 1.0), attrs.get("bias", 0.0)
    if scale != 1:
        body = num(scale, exact.get("scale")) * body
    if bias != 0:
        body = body + num(bias, exact.get("bias"))
    return body


class _Numbers:
    """Float -> sympy number, preferring the recorded exact constant when it is still valid."""

    def __init__(self, rational: bool = True):
        self.rational = rational

    def __call__(self, v: float, exact: str | None = None) -> sympy.Expr:
        v = float(v)
        if exact is not None:
            e = _exact(exact)
            if e is not None and _float_of(e) == v:
                return e
        return clean_float(v, self.rational)


@lru_cache(maxsize=4096)
def _exact(text: str):
    from kanir.grammar.printer import parse_exact

    return parse_exact(text)


@lru_cache(maxsize=4096)
def _float_of(e: sympy.Expr) -> float:
    from kanir.grammar.printer import to_float

    try:
        return to_float(e)
    except Exception:
        return math.nan


@lru_cache(maxsize=65536)
def clean_float(v: float, rational: bool = True) -> sympy.Expr:
    """An Integer or small-denominator Rational when ``v`` is exactly that float, else a Float."""
    if v.is_integer() and abs(v) < 2**53:
        return sympy.Integer(int(v))
    if rational and math.isfinite(v):
        fr = Fraction(v).limit_denominator(1000)
        if fr.numerator / fr.denominator == v:
            return sympy.Rational(fr.numerator, fr.denominator)
    return sympy.Float(v)


def activation_expr(act: Activation, x: sympy.Expr, spline: str = "error", where: str = "",
                    num: _Numbers | None = None) -> sympy.Expr:
    """The function of one edge applied to ``x``: symbolic part exactly, spline part as asked."""
    num = num or _Numbers()
    terms = []
    sp = act.spline
    if sp is not None and sp.active:
        if spline != "piecewise":
            raise SymbolicExportError(
                f"edge {where} has a spline part, which has no exact formula; fix it to a "
                f"symbolic function first (fix_symbolic / auto_symbolic) or pass "
                f"spline='piecewise' for its piecewise polynomial")
        terms.append(spline_expr(sp, x))
    sy = act.symbolic
    if sy is not None:
        ex = act.meta.get("exact") or {}
        a, b, c, d = (num(v, ex.get(k)) for k, v in zip("abcd", sy.params))
        fun = LIBRARY.canonical_name(sy.fun)
        if fun == "0":  # c * 0 + d: the constant d, as in the torch backend
            terms.append(d)
        else:
            inner = a * x + b
            f = inner if fun == "x" else LIBRARY[fun].sympy(inner)
            terms.append(c * f + d)
    return sympy.Add(*terms)


# ---------------------------------------------------------------------------- splines
def spline_expr(sp: SplinePart, x: sympy.Expr) -> sympy.Expr:
    """``scale_base * base(x) + scale_sp * spline(x)`` with the spline as a sympy Piecewise of
    its polynomials, computed exactly from the float knots and coefficients (zero outside the
    knot span, as the torch backend)."""
    if sp.base_fun not in BASE_FUNCTIONS:
        raise SymbolicExportError(f"unknown spline base function {sp.base_fun!r}")
    t = [Fraction(float(v)) for v in np.asarray(sp.grid, dtype=np.float64)]
    coef = [Fraction(float(v)) for v in np.asarray(sp.coef, dtype=np.float64)]
    k = int(sp.k)
    n_basis = len(coef)
    def below(v):  # x < v, left unevaluated: x may be a large expression
        return sympy.StrictLessThan(x, _num(v), evaluate=False)

    pieces = [(sympy.S.Zero, below(t[0]))]
    for m in range(len(t) - 1):
        if t[m + 1] <= t[m]:
            continue
        poly = _interval_poly(t, coef, k, m, n_basis)
        pieces.append((_horner(poly, x), below(t[m + 1])))
    pieces.append((sympy.S.Zero, sympy.true))
    body = _piecewise(pieces)
    out = _num(Fraction(float(sp.scale_sp))) * body
    if sp.scale_base != 0:
        out = out + _num(Fraction(float(sp.scale_base))) * BASE_FUNCTIONS[sp.base_fun].sympy(x)
    return out


def _piecewise(pieces: list) -> sympy.Piecewise:
    """A Piecewise built as given. sympy's constructor folds any Piecewise found inside a
    condition (here: the previous layer's splines inside x), which takes minutes on two spline
    layers; the pieces are already canonical, so the pairs are assembled directly."""
    from sympy.functions.elementary.piecewise import ExprCondPair

    pairs = [sympy.Tuple.__new__(ExprCondPair, e, c) for e, c in pieces]
    return sympy.Basic.__new__(sympy.Piecewise, *pairs)


def _horner(poly: list, x: sympy.Expr) -> sympy.Expr:
    """c0 + x*(c1 + x*(c2 + ...)): each piece uses x once per degree."""
    acc = sympy.S.Zero
    for cf in reversed(poly):
        acc = acc * x + _num(cf) if acc != 0 else _num(cf)
    return acc


def _num(fr: Fraction) -> sympy.Expr:
    """A float-sized exact fraction as a sympy Float (53-bit mantissa kept)."""
    if fr.denominator == 1:
        return sympy.Integer(fr.numerator)
    return sympy.Float(float(fr)) if float(fr) == fr else sympy.Float(sympy.Rational(
        fr.numerator, fr.denominator), 20)


def _interval_poly(t, coef, k: int, m: int, n_basis: int) -> list[Fraction]:
    """Monomial coefficients of sum_g coef[g] B_{g,k} on the knot interval [t_m, t_{m+1})."""
    # B[i] holds the polynomial of B_{i,p} (list of coefficients, lowest power first)
    B = {m: [Fraction(1)]}
    for p in range(1, k + 1):
        nb = {}
        for i in range(m - p, m + 1):
            acc: list[Fraction] = []
            left, right = B.get(i), B.get(i + 1)
            d1 = t[i + p] - t[i] if 0 <= i and i + p < len(t) else 0
            d2 = t[i + p + 1] - t[i + 1] if 0 <= i + 1 and i + p + 1 < len(t) else 0
            if left is not None and d1 != 0:  # (x - t_i)/d1 * left
                acc = _padd(acc, _pmul(left, [-t[i] / d1, 1 / d1]))
            if right is not None and d2 != 0:  # (t_{i+p+1} - x)/d2 * right
                acc = _padd(acc, _pmul(right, [t[i + p + 1] / d2, -1 / d2]))
            if acc:
                nb[i] = acc
        B = nb
    out: list[Fraction] = []
    for g_idx, poly in B.items():
        if 0 <= g_idx < n_basis and coef[g_idx] != 0:
            out = _padd(out, [coef[g_idx] * c for c in poly])
    return out


def _padd(a: list, b: list) -> list:
    n = max(len(a), len(b))
    return [(a[i] if i < len(a) else 0) + (b[i] if i < len(b) else 0) for i in range(n)]


def _pmul(a: list, b: list) -> list:
    out = [Fraction(0)] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i + j] += x * y
    return out
