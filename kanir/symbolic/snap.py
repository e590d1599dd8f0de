"""Snapping fitted constants to simple exact values (integers, small rationals, π, e, √2, ...).

Fits return floats such as ``0.49998`` or ``3.14161``; formulas should read ``1/2`` and ``pi``.
``snap_value`` finds the simplest candidate within a relative tolerance, ``snap_round`` rounds
and snaps every float of a sympy expression (``ex_round`` only rounds, to decimal places, as
pykan's does), and ``snap_params`` snaps the (a, b, c, d) of an edge fit but keeps a snap only
if the fit to the edge's samples does not get worse (data-checked). All are deterministic.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import sympy
import torch

from kanir.errors import DataError
from kanir.ir.library import LIBRARY, SymbolicFunction
from kanir.symbolic.symfit import Y_TH

#: default relative tolerance of snap_value: 2e-4 accepts 0.3333 → 1/3 and 2.0001 → 2.
REL_TOL = 2e-4

_CONSTANTS = (sympy.pi, sympy.E, sympy.sqrt(2), sympy.sqrt(3), sympy.log(2), 1 / sympy.pi,
              1 / sympy.E)


@dataclass(frozen=True)
class _Table:
    """Candidates sorted by value, each with a simplicity rank (lower is simpler)."""

    values: tuple[float, ...]
    exprs: tuple[sympy.Expr, ...]
    ranks: tuple[int, ...]


def _make_table(items: Iterable[tuple[sympy.Expr, int]]) -> _Table:
    best: dict[float, tuple[int, sympy.Expr]] = {}
    for expr, rank in items:
        v = float(expr)
        if v >= 0 and (v not in best or rank < best[v][0]):
            best[v] = (rank, expr)
    keys = sorted(best)
    return _Table(tuple(keys), tuple(best[k][1] for k in keys), tuple(best[k][0] for k in keys))


@lru_cache(maxsize=1)
def default_table() -> _Table:
    """Non-negative candidates: integers ≤ 100, p/q with q ≤ 12, and p/q·K for K in π, e, √2,
    √3, ln 2, 1/π, 1/e with K·n, K/n (n ≤ 12) or p, q ≤ 4. Ranks: small integers 0, other
    integers 1, p/q 2 (q ≤ 4) or 3, K alone 4, K·n or K/n 5, other K·p/q 6. Multiples such as
    5e/9 are left out: with them almost any loose constant found a "simple" value."""
    items: list[tuple[sympy.Expr, int]] = [(sympy.Integer(n), 0 if n <= 12 else 1)
                                           for n in range(101)]
    for q in range(2, 13):
        for p in range(1, 12 * q + 1):
            fr = Fraction(p, q)
            if fr.denominator == q and fr <= (10 if q <= 4 else 3):
                items.append((sympy.Rational(p, q), 2 if q <= 4 else 3))
    for k in _CONSTANTS:
        for q in range(1, 13):
            for p in range(1, 13):
                fr = Fraction(p, q)
                if fr.denominator != q or (1 not in (p, q) and max(p, q) > 4):
                    continue
                rank = 4 if fr == 1 else 5 if 1 in (p, q) else 6
                items.append((sympy.Rational(p, q) * k, rank))
    return _make_table(items)


def _table_of(candidates) -> _Table:
    """A user candidate list: earlier entries count as simpler (rank = position)."""
    if candidates is None:
        return default_table()
    if isinstance(candidates, _Table):
        return candidates
    items = []
    for i, c in enumerate(candidates):
        e = sympy.sympify(c)
        if not (e.is_number and e.is_real):
            raise DataError(f"snap candidate {c!r} is not a real number")
        items.append((abs(e), i))
    return _make_table(items)


def snap_value(v: float, rel_tol: float = REL_TOL, candidates: Sequence | None = None,
               abs_tol: float = 1e-12) -> sympy.Expr | None:
    """The simplest candidate within ``rel_tol`` (relative) of ``v`` as a sympy number, else None.

    ``|v| <= abs_tol`` snaps to 0; beyond the table (|v| > 100) an integer within ``rel_tol``
    *absolute* is taken. Among several candidates in tolerance the simplest rank wins, then the
    closest. ``candidates``: an optional list of numbers/sympy values, simplest first.
    """
    v = float(v)
    if not math.isfinite(v):
        return None
    if abs(v) <= abs_tol:
        return sympy.Integer(0)
    table = _table_of(candidates)
    av = abs(v)
    lo = bisect.bisect_left(table.values, av * (1 - rel_tol))
    hi = bisect.bisect_right(table.values, av * (1 + rel_tol))
    if lo < hi:
        k = min(range(lo, hi), key=lambda i: (table.ranks[i], abs(table.values[i] - av), i))
        return table.exprs[k] if v > 0 else -table.exprs[k]
    if candidates is None and av > 100 and abs(av - round(av)) <= rel_tol:  # 250.00002 → 250
        return sympy.Integer(round(v))
    return None


def _round_float(v: float, digits: int) -> sympy.Float:
    return sympy.Float(f"{v:.{digits}g}", digits)


def snap_round(expr: sympy.Expr, floating_digit: int = 4, rel_tol: float | None = None,
               candidates: Sequence | None = None) -> sympy.Expr:
    """Snap the floats of ``expr`` to simple exact values, else round to ``floating_digit``
    significant digits. The default tolerance, 3·10^-floating_digit, takes 1.9999 and 1.0002
    (printed to 4 digits) to 2 and 1. (pykan's decimal rounding is :func:`ex_round`.)"""
    tol = 3 * 10.0 ** (-floating_digit) if rel_tol is None else rel_tol
    expr = sympy.sympify(expr)
    repl = {}
    for f in expr.atoms(sympy.Float):
        s = snap_value(float(f), tol, candidates)
        repl[f] = s if s is not None else _round_float(float(f), floating_digit)
    return expr.xreplace(repl)


def ex_round(ex1: sympy.Expr, n_digit: int) -> sympy.Expr:
    """pykan's ``ex_round``: every float of ``ex1`` rounded to ``n_digit`` decimal places
    (``1234.5678`` at 2 gives ``1234.57``; negative ``n_digit`` rounds to tens, hundreds ...).
    Exact numbers are left alone and nothing is snapped (that is :func:`snap_round`)."""
    if isinstance(n_digit, bool) or not isinstance(n_digit, int):
        raise DataError(f"ex_round: n_digit must be an integer (decimal places), got {n_digit!r}")
    try:
        expr = sympy.sympify(ex1)
    except (sympy.SympifyError, TypeError) as e:
        raise DataError(f"ex_round needs a sympy expression or number, got {ex1!r}: {e}") from None
    return expr.xreplace({f: f.round(n_digit) for f in expr.atoms(sympy.Float)})


# ----------------------------------------------------------------------------- data-checked


@dataclass(frozen=True)
class SnapResult:
    """Snapped (a, b, c, d): float values, the exact sympy value per parameter (None: kept)."""

    params: tuple[float, float, float, float]
    exact: tuple[sympy.Expr | None, ...]
    rmse: float
    rmse_before: float


class _Edge:
    """The samples of one edge and the RMSE of ``c·f(a·x+b)+d`` on them (float64, weighted)."""

    def __init__(self, fn: SymbolicFunction, x, y, weights, y_th: float) -> None:
        self.fn, self.y_th = fn, y_th
        self.x = torch.as_tensor(x, dtype=torch.float64).reshape(-1)
        self.y = torch.as_tensor(y, dtype=torch.float64).reshape(-1)
        if self.x.shape != self.y.shape or self.x.numel() == 0:
            raise DataError("snap_params needs x and y of the same, non-zero length")
        if not (torch.isfinite(self.x).all() and torch.isfinite(self.y).all()):
            raise DataError("snap_params: x and y must be finite")
        w = torch.ones_like(self.x) if weights is None else torch.as_tensor(
            weights, dtype=torch.float64).reshape(-1).expand_as(self.x)
        if not torch.isfinite(w).all() or (w < 0).any() or float(w.sum()) <= 0:
            raise DataError("snap_params: weights must be finite, non-negative, not all zero")
        self.w = w / w.sum()

    def f(self, a: float, b: float) -> torch.Tensor:
        with torch.no_grad():
            return self.fn.safe_torch(a * self.x + b, self.y_th)

    def rmse(self, p: Sequence[float]) -> float:
        r = p[2] * self.f(p[0], p[1]) + p[3] - self.y
        v = float((self.w * r * r).sum().sqrt())
        return v if math.isfinite(v) else math.inf

    def refit(self, p: list[float], fixed: list[bool]) -> list[float]:
        """Least-squares c and/or d (those not fixed) for the current a, b."""
        f = self.f(p[0], p[1])
        if not torch.isfinite(f).all():
            return p
        w, y = self.w, self.y
        if not fixed[2] and not fixed[3]:
            fm, ym = float((w * f).sum()), float((w * y).sum())
            var = float((w * (f - fm) ** 2).sum())
            c = float((w * (f - fm) * (y - ym)).sum()) / var if var > 0 else 0.0
            return [p[0], p[1], c, ym - c * fm]
        if not fixed[3]:
            return [p[0], p[1], p[2], float((w * (y - p[2] * f)).sum())]
        if not fixed[2]:
            ff = float((w * f * f).sum())
            c = float((w * f * (y - p[3])).sum()) / ff if ff > 0 else p[2]
            return [p[0], p[1], c, p[3]]
        return p


def snap_params(fun_name: str | SymbolicFunction, params: Sequence[float] | torch.Tensor, x, y,
                tol: float = 0.05, weights=None, rel_tol: float = 1e-3,
                candidates: Sequence | None = None, y_th: float = Y_TH) -> SnapResult:
    """Snap (a, b, c, d) of ``y ≈ c·f(a·x+b)+d`` to simple values where the data allow it.

    A snap is kept only if the weighted RMSE on (x, y) stays ≤ (1 + tol)·RMSE of the unsnapped
    fit. First all snappable parameters are tried jointly (each to its ``snap_value``); then the
    ones still free, one at a time in the order a, b, c, d (b and d try 0 first); after each snap
    the c, d not yet snapped are re-fitted by least squares before their own turn. ``rel_tol``
    is looser than ``snap_value``'s default because every snap is checked against the data.
    """
    fn = LIBRARY[fun_name] if isinstance(fun_name, str) else fun_name
    p0 = [float(v) for v in torch.as_tensor(params, dtype=torch.float64).reshape(-1).tolist()]
    if len(p0) != 4 or not all(math.isfinite(v) for v in p0):
        raise DataError("snap_params: params must be 4 finite numbers (a, b, c, d)")
    edge = _Edge(fn, x, y, weights, y_th)
    before = edge.rmse(p0)
    scale = float((edge.w * edge.y * edge.y).sum().sqrt())
    limit = before * (1 + tol) + 1e-12 * (scale + 1e-300)

    p, exact = list(p0), [None] * 4
    snaps = [snap_value(v, rel_tol, candidates) for v in p0]
    if sum(s is not None for s in snaps) > 1:  # all snappable parameters at once
        joint = [v if s is None else float(s) for v, s in zip(p0, snaps)]
        if edge.rmse(joint) <= limit:
            p, exact = joint, snaps
    for i in (k for k in range(4) if exact[k] is None):
        options = [snap_value(p[i], rel_tol, candidates)]
        if i in (1, 3):
            options.insert(0, sympy.Integer(0))
        for opt in dict.fromkeys(o for o in options if o is not None):
            trial = list(p)
            trial[i] = float(opt)
            trial = edge.refit(trial, [exact[k] is not None or k == i for k in range(4)])
            if edge.rmse(trial) <= limit:
                p, exact[i] = trial, opt
                break
    return SnapResult(tuple(p), tuple(exact), edge.rmse(p), before)


def affine_expr(fun_name: str | SymbolicFunction, params: Sequence, x: sympy.Expr) -> sympy.Expr:
    """The sympy form ``c·f(a·x+b)+d``; params may mix floats and exact sympy numbers."""
    fn = LIBRARY[fun_name] if isinstance(fun_name, str) else fun_name
    a, b, c, d = (sympy.sympify(v) for v in params)
    return c * fn.sympy(a * x + b) + d


# ----------------------------------------------------------------------------- scale-free


def normalise_scale(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` without its constant term and divided by its largest coefficient (in absolute
    value), so that a quantity defined only up to scale and offset reads with unit size."""
    expr = sympy.expand(sympy.sympify(expr))
    terms = [t for t in sympy.Add.make_args(expr) if not t.is_number]
    if not terms:
        return sympy.Integer(0)
    parts = [t.as_coeff_Mul() for t in terms]
    k = max(range(len(parts)), key=lambda i: abs(float(parts[i][0])))
    big = parts[k][0]
    return sympy.Add(*[(sympy.Integer(1) if i == k else c / big) * rest
                       for i, (c, rest) in enumerate(parts)])


def snap_scale_free(expr: sympy.Expr, rel_tol: float | None = None, check=None,
                    loose_tol: float = 0.05, drop_tol: float = 0.02) -> sympy.Expr:
    """Snap a formula that is defined only up to scale and offset (a conserved quantity, a
    potential): normalise it (:func:`normalise_scale`), then snap its floats
    (:func:`snap_round`, tolerance ``rel_tol``). With ``check(candidate) -> bool`` (e.g. an
    exact sympy test that the candidate is conserved) coarser candidates are tried first and
    kept only when the check accepts them: floats snapped within ``loose_tol`` and terms whose
    relative size is below ``drop_tol`` dropped. Without a check, only the tight snap applies
    (``0.002702*a + 0.002661*b`` gives ``a + 0.9848*b``: the ratio is not justified)."""
    base = normalise_scale(expr)
    tight = snap_round(base, rel_tol=rel_tol)
    if check is None:
        return tight
    loose = snap_round(base, rel_tol=loose_tol)
    small = {t for t in sympy.Add.make_args(base)
             if not t.is_number and abs(float(t.as_coeff_Mul()[0])) < drop_tol}
    dropped = snap_round(base - sympy.Add(*small), rel_tol=loose_tol) if small else None
    for cand in (loose, dropped, tight):
        if cand is not None and check(cand):
            return cand
    return tight
