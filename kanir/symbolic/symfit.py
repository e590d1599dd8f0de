"""Symbolic regression of KAN edges: fit ``y ≈ c·f(a·x + b) + d`` for many edges and functions.

For every edge and every library function ``f`` the fit is

1. a coarse-to-fine grid search over ``(a, b)`` in which ``(c, d)`` come from a closed-form
   weighted linear regression of ``y`` on ``f(a·x + b)`` (so each grid point costs one pass over
   the samples); the coarse grid runs in float32 on a quantile subsample of at most
   ``grid_samples`` points, the zoomed grids in float64;
2. a variable-projection Levenberg-Marquardt refinement of ``(a, b)`` on all samples in float64,
   ``(c, d)`` re-solved exactly at every step; a step is kept only when R² improves. Search and
   refinement stay inside ``a_range × b_range`` (the box of the canonical a, b).

Everything is batched over edges × grid points; the only Python loops run over library functions
and over memory chunks. Functions are evaluated through their singularity-safe forms, and any
candidate whose values are still not finite gets R² = -inf, so no NaN ever leaves this module
(the library's safe ``log`` underflows to log(0) = -inf for y_th > ~745: such candidates, with
a·x+b ≤ 0 somewhere on the data, simply lose).

Canonical parameters (one representative per family of equivalent fits, so results are stable
and formulas clean); the rule for a function is read off its sympy form:

* ``0`` (any constant): ``a = 1, b = 0, c = 0``, ``d`` = weighted mean of ``y``.
* ``x``: ``a = 1, b = 0`` (the affine map is folded into ``c, d``).
* powers ``x^p`` (``x^2``, ``1/x^3``, ``sqrt``, ``x^1.5`` ...): ``|a|^p`` is folded into ``c``,
  so ``a = ±1`` and ``b`` is the shift; for integer ``p`` (even or odd) also the sign folds into
  ``c``, so ``a = 1``. ``abs`` and ``sgn`` likewise have ``a = 1``; ``log`` has ``a = ±1`` with
  ``log|a|`` folded into ``d``.
* ``exp``: ``e^b`` is folded into ``c``, so ``b = 0``.
* other functions with ``f(-z) = α + β·f(z)``, ``β = ±1`` (even, odd, and odd-up-to-a-constant
  like ``arccos`` and ``sigmoid``; detected numerically): ``a ≥ 0``.
* ``sin``, ``cos`` (period π up to sign) and ``tan`` (period π): ``b`` in ``(-π/2, π/2]``.

Powers, ``log``, ``abs`` and ``sgn`` are searched directly at ``a = ±1`` (only the shift moves),
exp at ``b = 0`` (internally shifted so that no value overflows), so the reported R² is exactly
that of ``c·f(a·x+b)+d`` evaluated with the safe forms. Constant y: every function fits with
``c = 0`` and R² = 1 (``0`` then ranks first).

Ranking (KAN 2.0 paper, Fig. 11 idea): ``score = w·complexity + (1 - w)·log2(q + 1e-5)`` with
``q = clip(1 - R², 0, 1)`` and ``w = weight_simple``; lower is better, failed fits (R² = -inf)
score +inf. Ties (scores equal after rounding to 6 decimals) go to the smaller complexity, then
the smaller ``|b|``, then the name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import sympy
import torch

from kanir.errors import DataError
from kanir.ir.library import DEFAULT_FIT_LIB, LIBRARY, SymbolicFunction

Tensor = torch.Tensor
F64 = torch.float64

#: default bound on |f| for the singularity-safe forms (see ``SymbolicFunction.safe_torch``).
Y_TH = 1e3
#: floor added to 1 - R² in the quality term of the score (fits better than this tie on quality).
QUALITY_FLOOR = 1e-5
_ZOOM_POINTS = 21  # points per free axis of each zoomed grid
_CHUNK_ELEMS = 4_000_000  # elements per grid chunk: ~5 temporaries stay below ~160 MB
_BLOCK_GRID = 2_000_000  # edges × coarse grid points per block of edges
_BLOCK_SAMPLES = 1_000_000  # edges × functions × samples per block (bounds refinement memory)


# ----------------------------------------------------------------------------- results


class FitRow(NamedTuple):
    """One ranked candidate: ``y ≈ c·name(a·x + b) + d``."""

    name: str
    a: float
    b: float
    c: float
    d: float
    r2: float
    complexity: float
    score: float


def fit_score(r2: Tensor, complexity: Tensor, weight_simple: float = 0.8) -> Tensor:
    """Occam score (lower is better): w·complexity + (1-w)·log2(clip(1-R², 0, 1) + 1e-5).

    Non-finite R² (failed fits) score +inf, so they always rank last.
    """
    r2 = torch.as_tensor(r2, dtype=F64)
    cplx = torch.as_tensor(complexity, dtype=F64)
    q = torch.log2(torch.clamp(1.0 - torch.nan_to_num(r2, nan=-math.inf), 0.0, 1.0) + QUALITY_FLOOR)
    score = weight_simple * cplx + (1.0 - weight_simple) * q
    return torch.where(torch.isfinite(r2), score, torch.full_like(score, math.inf))


@dataclass
class AffineFitResult:
    """Fits of ``y ≈ c·f(a·x+b)+d`` for E edges × F functions (parameters in canonical form)."""

    params: Tensor  # (E, F, 4): a, b, c, d
    r2: Tensor  # (E, F), finite or -inf
    names: list[str]
    complexity: Tensor  # (F,)

    def score(self, weight_simple: float = 0.8) -> Tensor:
        """(E, F) scores, lower is better (see ``fit_score``)."""
        return fit_score(self.r2, self.complexity[None, :], weight_simple)

    def ranking(self, edge: int = 0, topk: int | None = 5,
                weight_simple: float = 0.8) -> list[FitRow]:
        """The ``topk`` best functions of one edge, best first (deterministic tie-break)."""
        score = self.score(weight_simple)[edge].tolist()
        p = self.params[edge].tolist()
        r2 = self.r2[edge].tolist()
        cplx = self.complexity.tolist()
        rows = [FitRow(n, *p[j], r2[j], cplx[j], score[j]) for j, n in enumerate(self.names)]
        rows.sort(key=lambda r: (round(r.score, 6), r.complexity, round(abs(r.b), 9), r.name))
        return rows if topk is None else rows[:topk]

    def best(self, edge: int = 0, weight_simple: float = 0.8) -> FitRow:
        """The top-ranked function of one edge."""
        return self.ranking(edge, 1, weight_simple)[0]


def eval_affine(fun: str | SymbolicFunction, params: Sequence[float] | Tensor, x: Tensor,
                y_th: float = Y_TH) -> Tensor:
    """``c·f(a·x+b)+d`` through the singularity-safe form of ``f`` (float64)."""
    fn = LIBRARY[fun] if isinstance(fun, str) else fun
    a, b, c, d = (float(v) for v in torch.as_tensor(params, dtype=F64).reshape(4))
    x = torch.as_tensor(x, dtype=F64)
    return c * fn.safe_torch(a * x + b, y_th) + d


def r2_score(y: Tensor, yhat: Tensor, weights: Tensor | None = None) -> Tensor:
    """Batched R² over the last axis, never NaN: non-finite → -inf; constant y → 1 or 0.

    For a constant ``y`` (std ≤ 1e-13·max|y|) R² is 1 when the prediction matches it to 1e-9
    relative, else 0.
    """
    y = torch.as_tensor(y, dtype=F64)
    yhat = torch.as_tensor(yhat, dtype=F64)
    y, yhat = torch.broadcast_tensors(y, yhat)
    w = _norm_weights(weights, y.shape)
    scale = y.abs().amax(-1, keepdim=True).clamp_min(1e-300)
    ys, hs = y / scale, yhat / scale  # scaled, so that squares cannot overflow
    mean = (w * ys).sum(-1, keepdim=True)
    sst = (w * (ys - mean) ** 2).sum(-1)
    sse = (w * (ys - hs) ** 2).sum(-1)
    const = sst.sqrt() <= 1e-13 * ys.abs().amax(-1)
    r2 = torch.where(const, (sse.sqrt() <= 1e-9).to(F64), 1.0 - sse / torch.where(const, 1, sst))
    ok = torch.isfinite(r2) & torch.isfinite(yhat).all(-1)
    return torch.where(ok, r2, torch.full_like(r2, -math.inf))


def _norm_weights(weights: Tensor | None, shape: torch.Size) -> Tensor:
    """Non-negative weights broadcast to ``shape`` and normalized to sum 1 along the last axis."""
    if weights is None:
        return torch.full(shape, 1.0 / shape[-1], dtype=F64)
    w = torch.as_tensor(weights, dtype=F64)
    try:
        w = torch.broadcast_to(w, shape)
    except RuntimeError as exc:
        raise DataError(f"weights {tuple(w.shape)} do not fit data {tuple(shape)}") from exc
    if not torch.isfinite(w).all() or (w < 0).any():
        raise DataError("weights must be finite and non-negative")
    tot = w.sum(-1, keepdim=True)
    return torch.where(tot > 0, w / torch.where(tot > 0, tot, 1), 1.0 / shape[-1])


# ----------------------------------------------------------------------------- function rules

Law = Callable[[Tensor], tuple[Tensor, Tensor]]  # t -> (α, β) with f(z + t) = α + β f(z)


@dataclass(frozen=True)
class _Rule:
    """How one function's (a, b) are searched, refined and canonicalized."""

    kind: str  # 'const' | 'linear' | 'scale' (a = ±1) | 'shift' (b = 0) | 'general'
    signs: tuple[float, ...] = (1.0,)  # the a values searched for 'scale'
    law: Law | None = None  # 'shift': f(z + t) = α(t) + β(t)·f(z)
    sym: tuple[float, float] | None = None  # f(-z) = α + β f(z), β = ±1
    period: tuple[float, float] | None = None  # f(z + P) = β f(z)


_X = sympy.Symbol("x")
_RULES: dict[tuple[SymbolicFunction, float], _Rule] = {}


def _structure(e) -> _Rule | None:
    """The rule of a function recognised from its sympy form ``e`` (None: a general function)."""
    if not getattr(e, "free_symbols", {_X}):
        return _Rule("const")
    if e == _X:
        return _Rule("linear")
    if e.is_Pow and e.base == _X and e.exp.is_Rational:
        return _Rule("scale", (1.0,) if e.exp.is_integer else (1.0, -1.0))
    if e == sympy.log(_X):
        return _Rule("scale", (1.0, -1.0))
    if e in (sympy.Abs(_X), sympy.sign(_X)):
        return _Rule("scale")
    if e == sympy.exp(_X):
        return _Rule("shift", law=lambda t: (torch.zeros_like(t), torch.exp(t)))
    return None


def _symmetry(fn: SymbolicFunction, y_th: float) -> tuple[float, float] | None:
    """(α, β) with f(-z) = α + β·f(z), β = ±1, when it holds numerically on probe points."""
    z = torch.linspace(0.05, 3.0, 60, dtype=F64)
    with torch.no_grad():
        u, v = fn.safe_torch(z, y_th), fn.safe_torch(-z, y_th)
    if not (torch.isfinite(u).all() and torch.isfinite(v).all()):
        return None
    tol = 1e-9 * (1.0 + float(u.abs().max()))
    if float(u.max() - u.min()) <= tol:
        return None
    for beta in (1.0, -1.0):
        alpha = float((v - beta * u).mean())
        if float((v - beta * u - alpha).abs().max()) <= tol:
            return alpha, beta
    return None


def _rule(fn: SymbolicFunction, y_th: float) -> _Rule:
    """Cached rule of a library function (see the module docstring for the canonical forms)."""
    key = (fn, y_th)
    if key not in _RULES:
        try:
            e = fn.sympy(_X)
        except Exception:  # noqa: BLE001 - a sympy form we cannot inspect: a general function
            e = None
        rule = None if e is None else _structure(e)
        if rule is None:
            period = None
            if getattr(e, "args", None) == (_X,):
                period = {sympy.sin: (math.pi, -1.0), sympy.cos: (math.pi, -1.0),
                          sympy.tan: (math.pi, 1.0)}.get(e.func)
            rule = _Rule("general", sym=_symmetry(fn, y_th), period=period)
        _RULES[key] = rule
    return _RULES[key]


# ----------------------------------------------------------------------------- core numerics


def _internal(rule: _Rule, A: Tensor, B: Tensor, xlo: Tensor, xhi: Tensor) -> tuple[Tensor, Tensor]:
    """Map search coordinates (E, G) to the evaluated (a, b).

    Only 'shift' (exp) differs: b is set so that max(a·x+b) = 0 on the data (no overflow), which
    the canonical form folds back into c.
    """
    if rule.kind == "shift":
        return A, -torch.maximum(A * xlo[:, None], A * xhi[:, None])
    return A, B


def _grid_stats(F: Tensor, wyw: Tensor, w: Tensor | None) -> Tensor:
    """R² of the best (c, d) for every row of F (..., n), for the grid search.

    ``wyw`` (..., n, 2) holds w·y_n and w, with y_n weighted-centered and of unit weighted
    variance, so one mat-vec gives Σw·F·y_n and the mean of F; ``w`` (..., n, 1) or None (uniform).
    F is centered before squaring (uncentered float32 sums give spurious R² ≈ 1 on rows with a
    large mean). Rows whose variance is below 1e-8 (float32) or 1e-26 (float64) of their mean
    square count as constant (R² = 0).
    """
    m = torch.matmul(F, wyw)
    sfy, fm = m[..., 0], m[..., 1]
    Fc = F - fm[..., None]
    if w is None:
        sff = torch.linalg.vector_norm(Fc, dim=-1).square() / F.shape[-1]
    else:
        sff = torch.matmul(Fc * Fc, w)[..., 0]
    varying = sff > (1e-8 if F.dtype == torch.float32 else 1e-26) * (sff + fm * fm)
    r2 = torch.where(varying, sfy * sfy / torch.where(varying, sff, 1.0), 0.0).clamp_max(1.0)
    return r2.masked_fill(~(torch.isfinite(r2) & torch.isfinite(sff) & torch.isfinite(fm)),
                          -math.inf)


def _fit_stats(F: Tensor, wy: Tensor, w: Tensor, yn: Tensor) -> tuple[Tensor, ...]:
    """R², slope Sfy/Sff, weighted mean of F and 1 - R², per row of F (B, 1, N) (refinement).

    F is centered explicitly and 1 - R² summed from the residuals, which keeps its precision far
    below 1e-16 (needed to converge on exact data). ``wy`` = w·y_n with a trailing unit axis.
    A row with round-off variance counts as constant (R² = 0); a non-finite row gets R² = -inf.
    """
    Fm = (F * w).sum(-1, keepdim=True)
    Fc = F - Fm
    sfy = torch.matmul(Fc, wy)[..., 0]
    sff = (Fc * Fc * w).sum(-1)
    Fm = Fm.squeeze(-1)
    varying = sff > (50 * torch.finfo(F.dtype).eps) ** 2 * (sff + Fm * Fm)
    slope = torch.where(varying, sfy / torch.where(varying, sff, 1.0), 0.0)
    res = yn - slope[..., None] * Fc
    loss = (res * res * w).sum(-1)
    r2 = 1.0 - loss
    bad = ~(torch.isfinite(r2) & torch.isfinite(sff) & torch.isfinite(Fm))
    return (r2.masked_fill(bad, -math.inf), slope.masked_fill(bad, 0.0), Fm.masked_fill(bad, 0.0),
            loss.masked_fill(bad, math.inf))


def _grid_r2(fn: SymbolicFunction, rule: _Rule, A: Tensor, B: Tensor, data: dict,
             dtype: torch.dtype, y_th: float) -> Tensor:
    """R² (E, G) of the best (c, d) at every search point, in memory-bounded chunks."""
    ai, bi = _internal(rule, A, B, data["xlo"], data["xhi"])
    x = data["xs"].to(dtype)[:, None, :]
    w = data["ws"]
    wn = torch.full_like(data["xs"], 1.0 / x.shape[-1]) if w is None else w
    wyw = torch.stack([data["wys"], wn], -1).to(dtype)
    w = None if w is None else w.to(dtype)[:, :, None]
    ai, bi = ai.to(dtype)[:, :, None], bi.to(dtype)[:, :, None]
    E, G = A.shape
    step = max(1, _CHUNK_ELEMS // max(1, E * x.shape[-1]))
    out = []
    with torch.no_grad():
        for g0 in range(0, G, step):  # memory chunks, not single grid points
            z = torch.baddbmm(bi[:, g0:g0 + step], ai[:, g0:g0 + step], x)  # outer a·x + b
            out.append(_grid_stats(fn.safe_torch(z, y_th), wyw, w).to(F64))
    return torch.cat(out, 1)


@dataclass(frozen=True)
class _Grid:
    """Coarse grid axes in search coordinates, which axes are free, and the box (a_lo, a_hi,
    b_lo, b_hi) that zooms and refinement stay in (infinite where not constrained)."""

    a: Tensor
    b: Tensor
    free_a: bool
    free_b: bool
    box: tuple[float, float, float, float]


def _axes(rule: _Rule, a_range, b_range, grid_number: int) -> _Grid:
    """The coarse grid of one function: ranges of the canonical parameters, grid_number per axis."""
    a_lo, a_hi = float(min(a_range)), float(max(a_range))
    b_lo, b_hi = float(min(b_range)), float(max(b_range))
    inf = math.inf
    if rule.kind in ("const", "linear"):
        return _Grid(torch.ones(1, dtype=F64), torch.zeros(1, dtype=F64), False, False,
                     (-inf, inf, -inf, inf))
    if rule.kind == "scale":
        b = torch.linspace(b_lo, b_hi, grid_number, dtype=F64)
        return _Grid(torch.tensor(rule.signs, dtype=F64), b, False, True, (-inf, inf, b_lo, b_hi))
    if rule.kind == "shift":
        a = torch.linspace(a_lo, a_hi, grid_number, dtype=F64)
        return _Grid(a, torch.zeros(1, dtype=F64), True, False, (a_lo, a_hi, -inf, inf))
    na, nb = grid_number, grid_number
    if rule.sym is not None and a_lo < 0:  # a ≥ 0 suffices: mirror (a, b) → (-a, -b)
        if a_hi <= 0:
            a_lo, a_hi, b_lo, b_hi = -a_hi, -a_lo, -b_hi, -b_lo
        else:  # same spacing as the full grid, on the longer half
            na = max(2, math.ceil(grid_number * max(-a_lo, a_hi) / (a_hi - a_lo)))
            a_lo, a_hi, b_lo, b_hi = 0.0, max(-a_lo, a_hi), min(b_lo, -b_hi), max(b_hi, -b_lo)
    box = (a_lo, a_hi, b_lo, b_hi)
    if rule.period is not None and b_hi - b_lo > rule.period[0]:  # one period suffices
        half = rule.period[0] / 2
        nb = max(9, math.ceil(grid_number * 2 * half / (b_hi - b_lo)))
        b_lo, b_hi = -half, half
        box = (a_lo, a_hi, -inf, inf)  # b is folded into one period afterwards
    a = torch.linspace(a_lo, a_hi, na, dtype=F64)
    return _Grid(a, torch.linspace(b_lo, b_hi, nb, dtype=F64), True, True, box)


def _search(fn: SymbolicFunction, rule: _Rule, grid: _Grid, data: dict, iteration: int,
            y_th: float) -> tuple[Tensor, Tensor]:
    """Coarse-to-fine grid search; returns the best search coordinates (a, b) per edge."""
    E = data["xs"].shape[0]
    a_ax, b_ax = grid.a, grid.b
    A = a_ax[:, None].expand(-1, len(b_ax)).reshape(1, -1).expand(E, -1)
    B = b_ax[None, :].expand(len(a_ax), -1).reshape(1, -1).expand(E, -1)
    if A.shape[1] == 1:
        return A[:, 0].clone(), B[:, 0].clone()
    big = bool(data["xs"].abs().max() > 1e30) or data["xs"].shape[1] < 8
    r2 = _grid_r2(fn, rule, A, B, data, F64 if big else torch.float32, y_th)
    best = r2.argmax(1, keepdim=True)
    a, b = A.gather(1, best)[:, 0], B.gather(1, best)[:, 0]
    da = (a_ax[-1] - a_ax[0]) / max(1, len(a_ax) - 1)
    db = (b_ax[-1] - b_ax[0]) / max(1, len(b_ax) - 1)
    unit = torch.linspace(-1.0, 1.0, _ZOOM_POINTS, dtype=F64)
    a_lo, a_hi, b_lo, b_hi = grid.box
    for _ in range(iteration - 1):  # zoom to ±1 cell around the best point, in float64
        ga = (a[:, None] + da * unit).clamp(a_lo, a_hi) if grid.free_a else a[:, None]
        gb = (b[:, None] + db * unit).clamp(b_lo, b_hi) if grid.free_b else b[:, None]
        A = ga[:, :, None].expand(-1, -1, gb.shape[1]).reshape(E, -1)
        B = gb[:, None, :].expand(-1, ga.shape[1], -1).reshape(E, -1)
        r2 = _grid_r2(fn, rule, A, B, data, F64, y_th)
        best = r2.argmax(1, keepdim=True)
        a, b = A.gather(1, best)[:, 0], B.gather(1, best)[:, 0]
        da, db = da / ((_ZOOM_POINTS - 1) / 2), db / ((_ZOOM_POINTS - 1) / 2)
    return a, b


def _evaluate(fn: SymbolicFunction, a: Tensor, b: Tensor, x: Tensor, y_th: float,
              grad: bool) -> tuple[Tensor, Tensor | None]:
    """f(a·x+b) (B, N) and, if asked, f'(a·x+b) by autograd (non-finite derivatives → 0)."""
    z = torch.addcmul(b[:, None], a[:, None], x)
    if not grad:
        with torch.no_grad():
            return fn.safe_torch(z, y_th), None
    z.requires_grad_(True)
    with torch.enable_grad():
        F = fn.safe_torch(z, y_th)
        if F.requires_grad:
            (G,) = torch.autograd.grad(F.sum(), z)
            G = torch.nan_to_num(G, nan=0.0, posinf=0.0, neginf=0.0)
        else:
            G = torch.zeros_like(z)
    return F.detach(), G.detach()


def _refine(fns: list[SymbolicFunction], rules: list[_Rule], box: Tensor, a: Tensor, b: Tensor,
            data: dict, steps: int, y_th: float) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Variable-projection Levenberg-Marquardt on (a, b) for all edges × functions at once.

    a, b: (E, Fn) evaluated parameters, kept in each function's box (Fn, 4). (c, d) are re-solved
    exactly at each step, a step is taken only where the residual shrinks, and each step works on
    the (edge, function) pairs that have not converged yet. Returns a, b, R², c, d (c, d in
    normalized-y units).
    """
    x, yn, w = data["x"], data["yn"], data["w"]
    E, N = x.shape
    free_a = torch.tensor([r.kind in ("general", "shift") for r in rules])
    free_b = torch.tensor([r.kind in ("general", "scale") for r in rules])
    movable = (free_a | free_b).tolist()

    def evaluate(pf: Tensor, pe: Tensor, a_: Tensor, b_: Tensor):
        """f(a·x+b), f'(a·x+b) and the fit statistics for pairs sorted by function."""
        xk = x[pe]
        F_, G_ = torch.empty_like(xk), torch.zeros_like(xk)
        start = 0
        for j, n in enumerate(torch.bincount(pf, minlength=len(fns)).tolist()):
            if n:  # the loop over library functions
                sl = slice(start, start + n)
                F_[sl], g = _evaluate(fns[j], a_[sl], b_[sl], xk[sl], y_th, grad=movable[j])
                if g is not None:
                    G_[sl] = g
                start += n
        stats = _fit_stats(F_[:, None, :], (w * yn)[pe, :, None], w[pe, None, :], yn[pe, None, :])
        return F_, G_, [t[:, 0] for t in stats]

    pf, pe = (t.reshape(-1) for t in torch.meshgrid(torch.arange(len(fns)), torch.arange(E),
                                                    indexing="ij"))
    Fk, Gk, (r2k, ck, Fmk, lk) = evaluate(pf, pe, a.T.reshape(-1), b.T.reshape(-1))
    F, G = torch.empty(E, len(fns), N, dtype=F64), torch.empty(E, len(fns), N, dtype=F64)
    F[pe, pf], G[pe, pf] = Fk, Gk
    r2, c, Fm, loss = (t.reshape(len(fns), E).T.clone() for t in (r2k, ck, Fmk, lk))
    done = ~torch.isfinite(r2) | ~(free_a | free_b)[None, :] | (loss <= 1e-30)
    mu = torch.full_like(a, 1e-3)
    for _ in range(steps):
        pf, pe = torch.nonzero(~done.T).T  # pairs still refined, grouped by function
        if len(pf) == 0:
            break
        fa, fb, xk, wk = free_a[pf], free_b[pf], x[pe], w[pe]
        ak, bk, ck, muk, lk, Fk, Gk = (t[pe, pf] for t in (a, b, c, mu, loss, F, G))
        # Gram matrix of [G·x, G, F - mean, residual, 1]: every moment the step needs
        Fc = Fk - Fm[pe, pf, None]
        V = torch.stack([Gk * xk, Gk, Fc, ck[:, None] * Fc - yn[pe], torch.ones_like(Fc)], 1)
        M = (V * wk[:, None, :]) @ V.transpose(1, 2)
        sff = M[:, 2, 2].clamp_min(1e-300)
        mp, mq = M[:, 0, 4], M[:, 1, 4]
        # Hessian of the residual projected off span{1, F} (Kaufman's variable projection)
        hpp = M[:, 0, 0] - mp * mp - M[:, 0, 2] ** 2 / sff
        hqq = M[:, 1, 1] - mq * mq - M[:, 1, 2] ** 2 / sff
        hpq = M[:, 0, 1] - mp * mq - M[:, 0, 2] * M[:, 1, 2] / sff
        hpp = torch.where(fa, hpp * (1 + muk), 1.0) + 1e-300
        hqq = torch.where(fb, hqq * (1 + muk), 1.0) + 1e-300
        hpq = torch.where(fa & fb, hpq, 0.0)
        gp, gq = torch.where(fa, M[:, 0, 3], 0.0), torch.where(fb, M[:, 1, 3], 0.0)
        det = (hpp * hqq - hpq * hpq) * torch.where(ck != 0, ck, 1.0)  # J = c·[G·x, G]
        da = torch.nan_to_num(-(hqq * gp - hpq * gq) / det, 0.0, 0.0, 0.0).masked_fill(ck == 0, 0)
        db = torch.nan_to_num(-(hpp * gq - hpq * gp) / det, 0.0, 0.0, 0.0).masked_fill(ck == 0, 0)
        bx = box[pf]
        a_t = torch.clamp(ak + da, bx[:, 0], bx[:, 1])
        b_t = torch.clamp(bk + db, bx[:, 2], bx[:, 3])
        da, db = a_t - ak, b_t - bk
        F_t, G_t, (r2_t, c_t, Fm_t, l_t) = evaluate(pf, pe, a_t, b_t)
        ok = torch.isfinite(l_t) & (l_t < lk)
        rel = torch.where(lk < 0.01, 1e-8, 1e-3)  # converge tightly only where it matters
        tiny = (da.abs() <= 1e-13 * (1 + ak.abs())) & (db.abs() <= 1e-13 * (1 + bk.abs()))
        muk = torch.where(ok, muk * 0.3, torch.clamp(muk * 10.0, min=1e-2)).clamp(1e-12, 1e12)
        lk_new = torch.where(ok, l_t, lk)
        done[pe, pf] = tiny | (ok & (lk - l_t <= rel * lk)) | (muk >= 1e3) | (lk_new <= 1e-30)
        a[pe, pf], b[pe, pf] = torch.where(ok, a_t, ak), torch.where(ok, b_t, bk)
        F[pe, pf] = torch.where(ok[:, None], F_t, Fk)
        G[pe, pf] = torch.where(ok[:, None], G_t, Gk)
        r2[pe, pf] = torch.where(ok, r2_t, r2[pe, pf])
        c[pe, pf], Fm[pe, pf] = torch.where(ok, c_t, ck), torch.where(ok, Fm_t, Fm[pe, pf])
        mu[pe, pf], loss[pe, pf] = muk, lk_new
    return a, b, r2, c, -c * Fm


def _canonical(rule: _Rule, a: Tensor, b: Tensor, c: Tensor, d: Tensor) -> Tensor:
    """Turn evaluated (a, b, c, d) into the canonical representative (module docstring)."""
    if rule.kind == "const":
        return torch.stack([torch.ones_like(a), torch.zeros_like(b), torch.zeros_like(c), d], -1)
    if rule.kind == "shift":
        alpha, beta = rule.law(b)
        c2, d2 = c * beta, d + c * alpha
        ok = torch.isfinite(c2) & torch.isfinite(d2)
        b = torch.where(ok, 0.0, b)
        c, d = torch.where(ok, c2, c), torch.where(ok, d2, d)
    elif rule.kind == "general":
        if rule.sym is not None:  # c·f(a x + b) = c·(α + β f(-a x - b))
            alpha, beta = rule.sym
            neg = a < 0
            d = torch.where(neg, d + c * alpha, d)
            c = torch.where(neg, c * beta, c)
            a, b = torch.where(neg, -a, a), torch.where(neg, -b, b)
        if rule.period is not None:  # b into (-P/2, P/2]
            P, beta = rule.period
            k = torch.ceil(b / P - 0.5)
            b = b - k * P
            c = c * torch.where(torch.remainder(k, 2) == 1, beta, 1.0)
    return torch.stack([a, b, c, d], -1)


# ----------------------------------------------------------------------------- public entry


def _prepare(x, y, weights, grid_samples: int) -> dict:
    """Validate and normalize the data; build the quantile subsample used by the coarse grid."""
    x = torch.as_tensor(x, dtype=F64)
    y = torch.as_tensor(y, dtype=F64)
    if x.dim() == 1:
        x, y = x[None], y[None]
    if x.dim() != 2 or x.shape != y.shape:
        raise DataError(f"x and y must both have shape (E, N) or (N,); got {tuple(x.shape)} "
                        f"and {tuple(y.shape)}")
    if x.shape[1] == 0 or x.shape[0] == 0:
        raise DataError("fit_affine needs at least one edge with at least one sample")
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise DataError("x and y must be finite (found NaN or inf)")
    w = _norm_weights(weights, x.shape)
    uniform = weights is None
    scale = y.abs().amax(1, keepdim=True).clamp_min(1e-300)  # overflow-free moments
    ys = y / scale
    mean = (w * ys).sum(1, keepdim=True)
    std = (w * (ys - mean) ** 2).sum(1, keepdim=True).sqrt()
    const = (std <= 1e-13 * ys.abs().amax(1, keepdim=True)) | (std == 0)
    std_safe = torch.where(const, 1.0, std)
    yn = torch.where(const, 0.0, (ys - mean) / std_safe)
    data = {"x": x, "yn": yn, "w": w, "xlo": x.amin(1), "xhi": x.amax(1),
            "ymean": (mean * scale)[:, 0], "ystd": (std_safe * scale)[:, 0], "const": const[:, 0]}
    E, N = x.shape
    if N > grid_samples:
        order = x.argsort(1)
        pick = torch.linspace(0, N - 1, grid_samples, dtype=F64).round().long()
        idx = order[:, pick]
        xs, ys_, ws = x.gather(1, idx), yn.gather(1, idx), w.gather(1, idx)
        tot = ws.sum(1, keepdim=True)  # all picked samples weightless: uniform for the grid
        ws = torch.where(tot > 0, ws / torch.where(tot > 0, tot, 1.0), 1.0 / grid_samples)
        ym = (ws * ys_).sum(1, keepdim=True)
        sd = (ws * (ys_ - ym) ** 2).sum(1, keepdim=True).sqrt()
        ys_ = torch.where(sd > 0, (ys_ - ym) / torch.where(sd > 0, sd, 1.0), 0.0)
    else:
        xs, ys_, ws = x, yn, w
    data.update(xs=xs, wys=ws * ys_, ws=None if uniform else ws)
    return data


def fit_affine(x, y, lib: Sequence[str | SymbolicFunction] | None = None,
               a_range: tuple[float, float] = (-10, 10), b_range: tuple[float, float] = (-10, 10),
               grid_number: int = 101, iteration: int = 3, refine: bool = True,
               y_th: float = Y_TH, weights=None, *, grid_samples: int = 64,
               refine_steps: int = 10) -> AffineFitResult:
    """Fit ``y ≈ c·f(a·x+b)+d`` for every edge (rows of x, y) and every function of ``lib``.

    x, y: (E, N) or (N,) arrays (float64 inside). ``lib``: names or SymbolicFunctions (default
    ``DEFAULT_FIT_LIB``). ``a_range``, ``b_range``: box of the canonical a, b (mirrored onto a ≥ 0
    for functions with that rule; powers have a = ±1, exp b = 0) that the search and the
    refinement stay in. ``grid_number`` points per searched axis on the coarse grid (float32,
    ``grid_samples`` quantile samples), then ``iteration - 1`` zooms to ±1 cell of ``_ZOOM_POINTS``
    points, then, if ``refine``, at most ``refine_steps`` Levenberg-Marquardt steps on all samples.
    ``y_th`` bounds the singularity-safe forms; ``weights`` (E, N) or (N,) weight least squares
    and R². Returns canonical parameters and R² (finite or -inf) for every edge × function.
    """
    if grid_number < 2 or iteration < 1 or grid_samples < 2:
        raise DataError("grid_number and grid_samples must be >= 2 and iteration >= 1")
    names = DEFAULT_FIT_LIB if lib is None else lib
    fns = [LIBRARY[f] if isinstance(f, str) else f for f in names]
    if not fns:
        raise DataError("fit_affine needs at least one library function")
    rules = [_rule(fn, y_th) for fn in fns]
    grids = [_axes(rule, a_range, b_range, grid_number) for rule in rules]
    box = torch.tensor([g.box for g in grids], dtype=F64)
    data = _prepare(x, y, weights, grid_samples)
    E, N = data["x"].shape
    params = torch.empty(E, len(fns), 4, dtype=F64)
    r2 = torch.empty(E, len(fns), dtype=F64)
    block = max(1, min(_BLOCK_GRID // grid_number**2, _BLOCK_SAMPLES // (N * len(fns))))
    steps = refine_steps if refine else 0
    for e0 in range(0, E, block):  # memory blocks of edges
        part = {k: v if v is None else v[e0:e0 + block] for k, v in data.items()}
        found = []
        for fn, rule, g in zip(fns, rules, grids):  # the loop over library functions
            sa, sb = _search(fn, rule, g, part, iteration, y_th)
            found.append(_internal(rule, sa[:, None], sb[:, None], part["xlo"], part["xhi"]))
        a = torch.cat([fa for fa, _ in found], 1)
        b = torch.cat([fb for _, fb in found], 1)
        a, b, r2[e0:e0 + block], c, d = _refine(fns, rules, box, a, b, part, steps, y_th)
        c, d = c * part["ystd"][:, None], d * part["ystd"][:, None] + part["ymean"][:, None]
        for j, rule in enumerate(rules):
            params[e0:e0 + block, j] = _canonical(rule, a[:, j], b[:, j], c[:, j], d[:, j])
    const = data["const"]
    if bool(const.any()):  # constant y: c = 0, d = mean fits exactly, for every function
        ones = torch.ones(E, dtype=F64)
        fill = torch.stack([ones, 0 * ones, 0 * ones, data["ymean"]], -1)
        params[const] = fill[const][:, None, :].expand(-1, len(fns), -1)
        r2[const] = 1.0
    params = torch.nan_to_num(params, nan=0.0, posinf=0.0, neginf=0.0) + 0.0  # no -0.0
    complexity = torch.tensor([fn.complexity for fn in fns], dtype=F64)
    return AffineFitResult(params, r2, [fn.name for fn in fns], complexity)
