"""Tighten and snap the constants of a sympy formula against data (the last step of exact recovery).

A formula read from a symbolic KAN is exact in structure but its constants are fitted floats:
``0.9998*x*y + 0.0003*x``. Snapping each edge's (a, b, c, d) on its own cannot fix constants
that only make sense together (a scale on one layer, its inverse on the next), so this module
works on the whole formula:

1. **normalise**: expand it (products over sums, ``exp(a + b)``), so every independent constant
   is one sympy Float (sympy merges products of numbers by itself), guarded against blow-up;
2. **tighten**: treat every Float as a parameter and minimise the mean squared error on
   ``(x, y)`` with float64 L-BFGS (the formula is compiled once to a torch function);
3. **snap**: for each constant, most snappable first, try the simple values near it (integers,
   small rationals, multiples of π, e, √2 ..., then 0 and ±1), each with the other constants
   re-fitted; keep a snap only if the RMSE stays within ``(1 + tol)·RMSE_before + floor·std(y)``.

Everything is deterministic; non-finite values (a log of a negative number, say) count as an
infinite error, so a candidate that leaves the function's domain is simply rejected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import sympy
import torch

from kanir.errors import DataError, UnsupportedFormula
from kanir.ir.library import LIBRARY
from kanir.symbolic.snap import _make_table, _Table, default_table, snap_value
from kanir.train.optim import LBFGS

F64 = torch.float64

#: sympy function classes with their torch forms (others are looked up in the kanir library).
_TORCH_FUNCS: dict = {
    sympy.exp: torch.exp, sympy.log: torch.log, sympy.sin: torch.sin, sympy.cos: torch.cos,
    sympy.tan: torch.tan, sympy.tanh: torch.tanh, sympy.sinh: torch.sinh, sympy.cosh: torch.cosh,
    sympy.asin: torch.arcsin, sympy.acos: torch.arccos, sympy.atan: torch.arctan,
    sympy.atanh: torch.arctanh, sympy.asinh: torch.arcsinh, sympy.acosh: torch.arccosh,
    sympy.Abs: torch.abs, sympy.sign: torch.sign, sympy.erf: torch.special.erf,
}

_EXTRA_CONSTANTS = (sympy.pi**2, 1 / sympy.pi**2, sympy.sqrt(sympy.pi), 1 / sympy.sqrt(sympy.pi),
                    sympy.sqrt(2 * sympy.pi), 1 / sympy.sqrt(2 * sympy.pi))


@lru_cache(maxsize=8)
def _ranked_table(max_rank: int):
    """The candidates of :func:`formula_table` with simplicity rank <= ``max_rank``."""
    full = formula_table()
    rows = [t for t in zip(full.values, full.exprs, full.ranks) if t[2] <= max_rank]
    return _Table(*(tuple(col) for col in zip(*rows)))


#: (relative tolerance, most complex rank allowed): a constant far from a candidate may only
#: snap to a very simple one (0: small integers, 2: p/q with q <= 4, 4: π, e, ... alone).
TIERS = ((1e-4, 99), (1e-3, 4), (1e-2, 2), (3e-2, 0))


@lru_cache(maxsize=1)
def formula_table():
    """Snap candidates: kanir.symbolic.snap's default table plus p/q·K for K in π², 1/π², √π, 1/√π,
    √(2π), 1/√(2π) (p, q ≤ 8), which physics formulas need (1/(8π²), 1/√(2π), ...)."""
    base = default_table()
    items = list(zip(base.exprs, base.ranks))
    for k in _EXTRA_CONSTANTS:
        for q in range(1, 9):
            for p in range(1, 9):
                if math.gcd(p, q) == 1:
                    items.append((sympy.Rational(p, q) * k, 5 if 1 in (p, q) else 6))
    return _make_table(items)


# ----------------------------------------------------------------------------- torch compile


Compiled = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def compile_torch(expr: sympy.Expr, symbols: Sequence[sympy.Symbol],
                  params: Sequence[sympy.Symbol] = ()) -> Compiled:
    """``f(X, P)``: the formula on samples ``X`` (N, len(symbols)) with parameters ``P``.

    Differentiable in ``P``. Raises :class:`UnsupportedFormula` for a function that is neither
    a standard sympy function nor in the kanir library.
    """
    sym_ix = {s: i for i, s in enumerate(symbols)}
    par_ix = {p: i for i, p in enumerate(params)}
    body = _compile(sympy.sympify(expr), sym_ix, par_ix)

    def f(X: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
        out = body(X, P)
        return out.expand(X.shape[0]) if out.dim() == 0 else out

    return f


def _compile(e, sym_ix: dict, par_ix: dict):
    if e in par_ix:
        k = par_ix[e]
        return lambda X, P: P[k]
    if e.is_Symbol:
        if e not in sym_ix:
            raise UnsupportedFormula(f"the formula uses {e}, which is not an input")
        i = sym_ix[e]
        return lambda X, P: X[:, i]
    if e.is_number:
        v = complex(e.evalf(30))
        if abs(v.imag) > 0:
            raise UnsupportedFormula(f"the formula has a complex constant {e}")
        r = v.real
        return lambda X, P: X.new_tensor(r)
    args = [_compile(a, sym_ix, par_ix) for a in e.args]
    if e.is_Add:
        def add(X, P):
            out = args[0](X, P)
            for g in args[1:]:
                out = out + g(X, P)
            return out
        return add
    if e.is_Mul:
        def mul(X, P):
            out = args[0](X, P)
            for g in args[1:]:
                out = out * g(X, P)
            return out
        return mul
    if e.is_Pow:
        base, ex = args
        q = e.exp
        if q.is_Integer:
            n = int(q)
            return lambda X, P: torch.pow(base(X, P), n)
        if q == sympy.Rational(1, 2):
            return lambda X, P: torch.sqrt(base(X, P))
        return lambda X, P: torch.pow(base(X, P), ex(X, P))
    fn = _TORCH_FUNCS.get(e.func)
    if fn is None:
        name = getattr(e.func, "__name__", str(e.func))
        if name in LIBRARY and len(args) == 1:
            fn = LIBRARY[name].torch
        else:
            raise UnsupportedFormula(f"no torch form for {name} in {e}")
    if len(args) != 1:
        raise UnsupportedFormula(f"{e.func} with {len(args)} arguments is not supported")
    g = args[0]
    return lambda X, P: fn(g(X, P))


# ----------------------------------------------------------------------------- data


class _Data:
    """Samples as float64 tensors, the target's scale, and a normalised-MSE evaluator."""

    def __init__(self, x, y, n_vars: int):
        X = torch.as_tensor(x, dtype=F64).detach().cpu()
        Y = torch.as_tensor(y, dtype=F64).detach().cpu().reshape(-1)
        if X.dim() == 1 and n_vars == 1:
            X = X[:, None]
        if X.dim() != 2 or X.shape[1] != n_vars or X.shape[0] != Y.shape[0] or X.shape[0] == 0:
            raise DataError(f"formula data must be x (N, {n_vars}) and y (N,), got "
                            f"{tuple(X.shape)} and {tuple(Y.shape)}")
        ok = torch.isfinite(X).all(1) & torch.isfinite(Y)
        if not bool(ok.any()):
            raise DataError("formula data has no finite sample")
        self.X, self.Y = X[ok], Y[ok]
        self.scale = float(self.Y.std()) if self.Y.numel() > 1 else 0.0
        if not self.scale > 0:
            self.scale = max(float(self.Y.abs().max()), 1.0)

    def rmse(self, f: Compiled, P: torch.Tensor) -> float:
        with torch.no_grad():
            r = f(self.X, P) - self.Y
            v = float(torch.sqrt(torch.mean(r * r)))
        return v if math.isfinite(v) else math.inf


def _fit(f: Compiled, data: _Data, P: torch.Tensor, free: torch.Tensor, steps: int) -> torch.Tensor:
    """Minimise the MSE over the free entries of ``P``; returns the best parameters seen."""
    if steps <= 0 or not bool(free.any()):
        return P
    base = P.detach().clone()
    q = base[free].clone().requires_grad_(True)
    opt = LBFGS([q], lr=1.0, max_iter=steps, history_size=20)
    inv = 1.0 / data.scale**2

    def closure():
        opt.zero_grad()
        full = base.clone()
        full[free] = q
        r = f(data.X, full) - data.Y
        loss = torch.mean(r * r) * inv
        if not bool(torch.isfinite(loss)):  # outside the domain: a large loss, no slope, so the
            q.grad = torch.zeros_like(q)     # line search backs off
            return loss.new_tensor(1e30)
        loss.backward()
        return loss

    before = data.rmse(f, P)
    try:
        opt.step(closure)
    except (RuntimeError, ValueError, IndexError):  # a degenerate line search: keep what we had
        return P
    out = base.clone()
    with torch.no_grad():
        out[free] = q.detach()
    if not bool(torch.isfinite(out).all()) or data.rmse(f, out) > before:
        return P
    return out


# ----------------------------------------------------------------------------- normalise


def normalize(expr: sympy.Expr, max_growth: float = 4.0, max_ops: int = 200) -> sympy.Expr:
    """Expand products over sums and ``exp`` of sums so each independent constant is one Float.

    Kept only if the expanded form is at most ``max_growth`` times as large (sympy ``count_ops``)
    plus 40 operations; formulas of more than ``max_ops`` operations are not expanded at all (the
    expansion itself could take long). Otherwise the formula is returned as it was.
    """
    expr = sympy.sympify(expr)
    if sympy.count_ops(expr) > max_ops:
        return expr
    try:
        out = sympy.expand(expr, deep=True, power_exp=True, mul=True, multinomial=True,
                           power_base=False, log=False, basic=True)
    except (TypeError, ValueError, RecursionError):
        return expr
    if sympy.count_ops(out) > max_growth * sympy.count_ops(expr) + 40:
        return expr
    return out


# ----------------------------------------------------------------------------- snap


@dataclass(frozen=True)
class FormulaFit:
    """Result of :func:`snap_formula`.

    ``expr``: the formula (snapped constants exact, the others floats); ``rmse``: its RMSE on the
    data; ``rmse_start``: the RMSE of the formula as given; ``rmse_tight``: after tightening, the
    reference the tolerance is measured against; ``snapped``/``free``: how many constants were
    snapped or stay floats.
    """

    expr: sympy.Expr
    rmse: float
    rmse_start: float
    rmse_tight: float
    snapped: int
    free: int

    @property
    def exact(self) -> bool:
        """True when no floating-point constant is left."""
        return self.free == 0 and not self.expr.atoms(sympy.Float)


def _candidates(v: float, table, tiers: Sequence[tuple[float, int]]) -> list:
    out = []
    for r, rank in tiers:
        s = snap_value(v, r, table if table is not None else _ranked_table(rank))
        if s is not None:
            out.append(s)
    small = _small_rational(v)
    if small is not None:
        out.append(small)
    out += [sympy.Integer(0), sympy.Integer(1 if v > 0 else -1)]
    return list(dict.fromkeys(out))


#: a constant known to 6 significant digits may be any p/q with q <= 36 (5/18, 7/24, 11/30):
#: the chance that a random number lies that close to one of them is below 0.1%
RATIONAL_MAX_DENOMINATOR, RATIONAL_REL_TOL = 36, 1e-6


def _small_rational(v: float):
    """The simplest fraction p/q (q <= 36) within 1e-6 relative of ``v``, or None; beyond the
    snap table's denominators (<= 12), so a fitted 0.2777778 can become 5/18. The data check
    in :func:`snap_formula` still decides whether it is kept."""
    if not math.isfinite(v) or v == 0:
        return None
    fr = Fraction(v).limit_denominator(RATIONAL_MAX_DENOMINATOR)
    if fr.denominator == 1 or abs(float(fr) - v) > RATIONAL_REL_TOL * abs(v):
        return None
    return sympy.Rational(fr.numerator, fr.denominator)


def snap_formula(expr: sympy.Expr, symbols: Sequence[sympy.Symbol], x, y, *, tol: float = 0.1,
                 floor: float = 1e-6, tiers: Sequence[tuple[float, int]] = TIERS,
                 candidates=None, steps: int = 60, tighten: bool = True,
                 normalise: bool = True, max_constants: int = 60, refits: int = 60,
                 approx: float = 1e-3) -> FormulaFit:
    """Snap the Float constants of ``expr`` to simple exact values where the data allow it.

    ``symbols``: the formula's inputs, in the column order of ``x`` (N, len(symbols)); ``y`` (N,)
    the target. A snap is kept when the RMSE stays ≤ ``(1 + tol)·rmse_tight + floor·std(y)``,
    ``rmse_tight`` being the RMSE after tightening every constant (``tighten``, ``steps``
    L-BFGS iterations). Candidates for a constant v are, for each (r, rank) of ``tiers``, the
    simplest value within relative distance r among those of simplicity rank <= rank (so far-off
    constants may only become very simple numbers), then 0, then sign(v); each is tried as is
    and, if rejected, with the other constants re-fitted (at most ``refits`` re-fits in all, and
    none when ``rmse_tight`` > ``approx``·std(y): the structure is then only approximate and
    candidates are just substituted). ``candidates``: a snap table or list
    used for every tier instead (default: :func:`formula_table` by rank). A formula with more
    than ``max_constants`` constants, or one the torch compiler cannot evaluate, is only
    tightened if possible and otherwise returned as given.
    """
    expr = sympy.sympify(expr)
    symbols = list(symbols)
    data = _Data(x, y, len(symbols))
    table = None if candidates is None else candidates
    work = normalize(expr) if normalise else expr
    floats = sorted(work.atoms(sympy.Float), key=lambda f: (abs(float(f)), float(f)))
    try:
        f0 = compile_torch(expr, symbols)
        start = data.rmse(f0, torch.zeros(0, dtype=F64))
    except UnsupportedFormula:
        return FormulaFit(expr, math.nan, math.nan, math.nan, 0, len(expr.atoms(sympy.Float)))
    if not floats:
        return FormulaFit(work, start, start, start, 0, 0)
    ps = sympy.symbols(f"_p0:{len(floats)}")
    templ = work.xreplace(dict(zip(floats, ps)))
    try:
        f = compile_torch(templ, symbols, ps)
    except UnsupportedFormula:
        return FormulaFit(expr, start, start, start, 0, len(floats))
    P = torch.tensor([float(v) for v in floats], dtype=F64)
    if data.rmse(f, P) > start * (1 + 1e-9) + 1e-12 * data.scale:  # normalising lost accuracy
        work, floats = expr, sorted(expr.atoms(sympy.Float), key=lambda v: abs(float(v)))
        ps = sympy.symbols(f"_p0:{len(floats)}")
        templ = work.xreplace(dict(zip(floats, ps)))
        f = compile_torch(templ, symbols, ps)
        P = torch.tensor([float(v) for v in floats], dtype=F64)
    free = torch.ones(len(floats), dtype=torch.bool)
    if tighten:
        P = _fit(f, data, P, free, steps * 2)
    tight = data.rmse(f, P)
    if len(floats) > max_constants or not math.isfinite(tight):
        out = templ.xreplace({p: sympy.Float(float(v)) for p, v in zip(ps, P)})
        return FormulaFit(out, tight, start, tight, 0, len(floats))
    limit = tight * (1 + tol) + floor * data.scale
    # re-fitting after a snap pays off when the structure is right (tight error tiny); on an
    # approximate formula candidates are only substituted, which bounds the cost
    budget = refits if tight <= approx * data.scale else 0
    exact: dict[int, sympy.Expr] = {}
    for _ in range(3):  # passes until nothing more snaps
        changed = False
        for k in _snap_order(P, free, table or formula_table()):
            v = float(P[k])
            for cand in _candidates(v, table, tiers):
                trial = P.clone()
                trial[k] = float(cand)
                fr = free.clone()
                fr[k] = False
                ok = data.rmse(f, trial) <= limit
                if not ok and budget > 0:
                    budget -= 1
                    trial = _fit(f, data, trial, fr, steps)
                    ok = data.rmse(f, trial) <= limit
                if ok:
                    if budget > 0:
                        budget -= 1
                        trial = _fit(f, data, trial, fr, steps)
                    P, free, exact[k], changed = trial, fr, cand, True
                    break
        if not changed or not bool(free.any()):
            break
    rep = {p: exact[k] if k in exact else sympy.Float(float(P[k])) for k, p in enumerate(ps)}
    out = templ.xreplace(rep)
    fo = compile_torch(out, symbols)
    return FormulaFit(out, data.rmse(fo, torch.zeros(0, dtype=F64)), start, tight, len(exact),
                      int(free.sum()))


def _snap_order(P: torch.Tensor, free: torch.Tensor, table) -> list[int]:
    """Free constants, those closest (relatively) to a simple value first."""
    keys = []
    for k in torch.nonzero(free).flatten().tolist():
        v = float(P[k])
        s = snap_value(v, 0.05, table)
        dist = abs(float(s) - v) / max(abs(v), 1e-300) if s is not None else 1.0
        keys.append((dist, k))
    return [k for _, k in sorted(keys)]
