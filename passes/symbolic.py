"""Symbolic regression of edges as pure passes: ``suggest_symbolic``, ``fix_symbolic``,
``unfix_symbolic``/``unfix`` and ``auto_symbolic``.

Fixing an edge replaces its function by ``c*f(a*x+b)+d``: the symbolic part is set and the
spline part is switched off but kept (``active=False``), so ``unfix_symbolic`` restores it.
Parameters come from :func:`kanir.symbolic.symfit.fit_affine` on the edge's samples — the values the
edge's input node takes on data ``x`` and the edge's current output there — and, with ``snap``,
from :func:`kanir.symbolic.snap.snap_params` (a snap is kept only if the fit to the samples stays within
``snap_tol``). ``auto_symbolic`` fits *all* active spline edges to *all* library functions in one
batched ``fit_affine`` call and fixes every edge whose best candidate (ranked with
``weight_simple``) reaches ``r2_threshold``; the others stay splines and the report says why.

Samples are computed in float64 with the singularity-safe forms of symbolic edges already
present, so a pole upstream gives large but finite values; any sample that is still not finite
gets weight zero. Every pass returns a new graph and never modifies its input.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from kanir.errors import DataError, PassError
from kanir.grammar.printer import exact_text
from kanir.ir.activation import Activation, SymbolicPart
from kanir.ir.graph import KanGraph
from kanir.ir.library import DEFAULT_FIT_LIB, LIBRARY
from kanir.symbolic.priors import as_priors, prior_penalty
from kanir.symbolic.report import FIXED, KEPT, EdgeFit, SymbolicReport
from kanir.symbolic.snap import snap_params
from kanir.symbolic.symfit import Y_TH, FitRow, fit_affine

from ._common import as_int, require_layered, verified
from ._common import check_edge as _check_edge
from ._eval import as_samples, layer_edge_values

__all__ = ["layer_samples", "edge_samples", "suggest_symbolic", "fix_symbolic",
           "unfix_symbolic", "unfix", "auto_symbolic", "symbolic_edges"]

#: at most this many samples per edge go into the fits (a deterministic, evenly spread subset).
MAX_SAMPLES = 4096


# ----------------------------------------------------------------------------- samples


def layer_samples(graph: KanGraph, x, y_th: float = Y_TH) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per KAN layer: (node values (N, n_in), edge activations (N, n_in, n_sub)), float64.

    The graph is evaluated in float64 with singularity-safe symbolic forms (bounded by ``y_th``),
    at most :data:`MAX_SAMPLES` samples (evenly spread over the rows of ``x``).
    """
    require_layered(graph, "symbolic regression")
    xt = as_samples(x, graph)
    if xt.shape[0] > MAX_SAMPLES:
        xt = xt[torch.linspace(0, xt.shape[0] - 1, MAX_SAMPLES).round().long()]
    return [(h, edge) for h, edge, *_ in layer_edge_values(graph, xt, safe=True, y_th=y_th)]


def edge_samples(graph: KanGraph, x, edges: Sequence[tuple[int, int, int]],
                 y_th: float = Y_TH) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs, outputs, weights), each (E, N), of the listed edges on data ``x``.

    Non-finite samples are zeroed and get weight 0 (an edge with no finite sample has all-zero
    weights, which the callers report).
    """
    acts = layer_samples(graph, x, y_th)
    xs = torch.stack([acts[l][0][:, i] for l, i, _ in edges]) if edges else torch.zeros(0, 1)
    ys = torch.stack([acts[l][1][:, i, j] for l, i, j in edges]) if edges else torch.zeros(0, 1)
    ok = torch.isfinite(xs) & torch.isfinite(ys)
    return xs.where(ok, 0.0), ys.where(ok, 0.0), ok.to(torch.float64)


def _explicit_samples(samples) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An edge's (inputs, outputs) given directly, as (1, N) tensors plus weights."""
    try:
        xs, ys = samples
        xs = torch.as_tensor(np.asarray(xs, dtype=np.float64)).reshape(1, -1)
        ys = torch.as_tensor(np.asarray(ys, dtype=np.float64)).reshape(1, -1)
    except (TypeError, ValueError) as e:
        raise DataError(f"samples must be a pair (edge inputs, edge outputs) of numbers: {e}") from None
    if xs.shape != ys.shape or xs.shape[1] == 0:
        raise DataError(f"samples: inputs and outputs need the same non-zero length, got "
                        f"{xs.shape[1]} and {ys.shape[1]}")
    ok = torch.isfinite(xs) & torch.isfinite(ys)
    return xs.where(ok, 0.0), ys.where(ok, 0.0), ok.to(torch.float64)


# ----------------------------------------------------------------------------- helpers


def _lib_names(lib) -> list[str]:
    """Canonical names of a library list (LibraryError names an unknown one)."""
    names = DEFAULT_FIT_LIB if lib is None else ([lib] if isinstance(lib, str) else list(lib))
    if not names:
        raise PassError("lib is empty; give at least one function name")
    return list(dict.fromkeys(LIBRARY.canonical_name(n) for n in names))


def _check_range(r, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in r)
    except (TypeError, ValueError):
        raise PassError(f"{name} must be a pair (low, high), got {r!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise PassError(f"{name} must be finite with low < high, got {r!r}")
    return lo, hi


def _snap(fun: str, params, xs: torch.Tensor, ys: torch.Tensor, w: torch.Tensor, tol: float,
          y_th: float):
    """snap_params on the finite samples of one edge: (params, exact)."""
    keep = w > 0
    if int(keep.sum()) == 0:
        return tuple(float(v) for v in params), (None,) * 4
    res = snap_params(fun, params, xs[keep], ys[keep], tol=tol, y_th=y_th)
    return res.params, res.exact


def _fixed_act(old: Activation | None, fun: str, params, exact=(None,) * 4) -> Activation:
    """The edge with symbolic part ``fun(params)`` and its spline (if any) kept but inactive;
    the exact values snapping found (sympy numbers, None where a parameter was not snapped) are
    kept as ``meta["exact"]`` texts, so to_sympy writes 2*pi rather than 6.28318530717959."""
    sp = None
    meta = {}
    if old is not None:
        if old.spline is not None:
            sp = old.spline.copy()
            sp.active = False
        meta = {k: v for k, v in old.meta.items() if k != "exact"}
    texts = {k: exact_text(e) for k, e in zip("abcd", exact) if e is not None}
    texts = {k: v for k, v in texts.items() if v is not None}
    if texts:
        meta["exact"] = texts
    return Activation(sp, SymbolicPart(fun, *(float(v) for v in params)), meta)


def symbolic_edges(graph: KanGraph, include_both: bool = True) -> list[tuple[int, int, int]]:
    """Edges whose spline part is active (kind 'spline', and 'both' unless ``include_both`` is
    False): the candidates of ``auto_symbolic``."""
    kinds = ("spline", "both") if include_both else ("spline",)
    return [(l, i, j) for l, i, j, act in graph.act_edges() if act.kind in kinds]


# ----------------------------------------------------------------------------- passes


def suggest_symbolic(graph: KanGraph, l: int, i: int, j: int, x=None, *, samples=None, lib=None,
                     topk: int | None = 5, weight_simple: float = 0.8,
                     a_range=(-10, 10), b_range=(-10, 10), y_th: float = Y_TH,
                     r2_loss_fun=None, c_loss_fun=None, prior=None) -> list[FitRow]:
    """The ``topk`` library functions that best fit edge (l, i, j), best first.

    The edge's samples come from data ``x`` (model inputs) or are given as ``samples=(edge
    inputs, edge outputs)``. Each row has the fitted (a, b, c, d), R², complexity and the score
    ``weight_simple·complexity + (1-weight_simple)·log2(1-R²+1e-5)`` (lower is better), or
    with pykan's ``r2_loss_fun``/``c_loss_fun`` in place of those two terms (see :func:`ranking`).
    ``prior``: a :class:`kanir.symbolic.priors.Prior` (or a list): candidates contradicting it
    are ranked down by its penalty (e.g. ``Diverges(1.0)``).
    """
    priors = as_priors(prior)
    l, i, j = _check_edge(graph, l, i, j)
    if topk is not None:
        topk = as_int(topk, "topk", 1)
    xs, ys, w = _samples_for(graph, (l, i, j), x, samples, y_th)
    if not bool((w > 0).any()):
        raise DataError(f"edge ({l},{i},{j}) has no finite sample to fit")
    fit = fit_affine(xs, ys, _lib_names(lib), _check_range(a_range, "a_range"),
                     _check_range(b_range, "b_range"), y_th=y_th, weights=w)
    rows = ranking(fit, 0, xs[0], ys[0], w[0], _weight(weight_simple), y_th, r2_loss_fun,
                   c_loss_fun, priors)
    return rows if topk is None else rows[:topk]


def check_row(row: FitRow, xs: torch.Tensor, ys: torch.Tensor, w: torch.Tensor,
              y_th: float = Y_TH) -> tuple[float, bool]:
    """(cancellation, valid) of one fitted candidate on an edge's samples.

    *valid*: the plain torch form of ``c·f(a·x+b)+d`` is finite on every sample and equals the
    singularity-safe form the fit used (so the fit does not rely on a clipped pole or a clamped
    domain such as log or sqrt of negative numbers, and the model will compute what was fitted).

    *cancellation*: max|c·f(a·x+b)| / (max|y| + spread of y) — about 1 for an honest fit, large
    when a function is used in a tiny window of its argument with a huge ``c`` offset by ``d``
    (sin(0.03x + π/2)·670 - 669 imitating x², tanh imitating exp): such fits match the samples
    but extrapolate badly and make formulas ill-conditioned.
    """
    keep = w > 0
    if not bool(keep.any()) or not math.isfinite(row.r2):
        return 1.0, False
    if row.c == 0:
        return 1.0, True
    x, y = xs[keep], ys[keep]
    fn = LIBRARY[row.name]
    z = row.a * x + row.b
    with torch.no_grad():
        f = fn.safe_torch(z, y_th)
        plain = fn.torch(z)
    same = torch.isclose(plain, f, rtol=1e-7, atol=1e-12 * float(f.abs().max()) + 1e-300)
    valid = bool(torch.isfinite(plain).all()) and bool(same.all())
    top = abs(row.c) * float(f.abs().max())
    ref = float(y.abs().max()) + float(y.max() - y.min())
    if not math.isfinite(top):
        return math.inf, valid
    return (top / ref if ref > 0 else (1.0 if top == 0 else math.inf)), valid


#: fits whose cancellation exceeds this are penalised in the ranking.
CANCEL_OK = 2.0


def ranking(res, e: int, xs, ys, w, weight_simple: float = 0.8, y_th: float = Y_TH,
            r2_loss_fun=None, c_loss_fun=None, priors=()) -> list[FitRow]:
    """All candidates of edge ``e`` of a fit_affine result, best first.

    The score is symfit's (``weight_simple``·complexity + (1-weight_simple)·log2(1-R²+1e-5))
    plus a conditioning penalty ``2·weight_simple·log2(cancellation/2)`` for fits whose
    cancellation (:func:`check_row`) exceeds 2, so a well-conditioned function wins over one that only
    imitates it through huge cancelling constants when their R² are alike. Candidates that are
    not valid on the samples (see :func:`check_row`) score +inf.

    ``r2_loss_fun`` / ``c_loss_fun`` (pykan's names) replace the two terms of the score: the
    score becomes ``weight_simple·c_loss_fun(complexity) + (1-weight_simple)·r2_loss_fun(R²)``,
    each called once with a numpy array of every candidate's value. ``priors``
    (:mod:`kanir.symbolic.priors`) add their penalty to candidates that contradict them.
    """
    rows = res.ranking(e, None, weight_simple)
    if r2_loss_fun is not None or c_loss_fun is not None:
        rows = _custom_scores(rows, weight_simple, r2_loss_fun, c_loss_fun)
    out = []
    for r in rows:
        ratio, valid = check_row(r, xs, ys, w, y_th)
        if not valid:
            out.append(r._replace(score=math.inf))
            continue
        pen = 0.0 if ratio <= CANCEL_OK else (
            math.inf if not math.isfinite(ratio) else 2 * weight_simple * math.log2(ratio / CANCEL_OK))
        if priors and math.isfinite(pen):
            keep = w > 0
            pen += prior_penalty(priors, r, xs[keep], ys[keep])
        out.append(r._replace(score=r.score + pen))
    out.sort(key=lambda r: (round(r.score, 6), r.complexity, round(abs(r.b), 9), r.name))
    return out


def _custom_scores(rows: list[FitRow], weight_simple: float, r2_loss_fun, c_loss_fun
                   ) -> list[FitRow]:
    """The rows rescored with user loss functions of R² and complexity (numpy in, numpy out)."""
    r2 = np.array([r.r2 for r in rows], dtype=np.float64)
    cs = np.array([r.complexity for r in rows], dtype=np.float64)
    terms = []
    for name, fun, vals, default in (("r2_loss_fun", r2_loss_fun, r2,
                                      lambda v: np.log2(1 + 1e-5 - v)),
                                     ("c_loss_fun", c_loss_fun, cs, lambda v: v)):
        f = default if fun is None else fun
        if not callable(f):
            raise PassError(f"{name} must be a function of a numpy array, got {fun!r}")
        with np.errstate(all="ignore"):
            try:
                t = np.asarray(f(vals.copy()), dtype=np.float64)
            except Exception as e:  # the user's function failed: say which one and why
                raise PassError(f"{name} failed on an array of {len(vals)} values: {e}") from None
        if t.shape != vals.shape:
            raise PassError(f"{name} must return one number per candidate (shape "
                            f"{vals.shape}), got shape {t.shape}")
        terms.append(np.where(np.isnan(t), np.inf, t))
    score = weight_simple * terms[1] + (1 - weight_simple) * terms[0]
    score = np.where(np.isfinite(r2), score, np.inf)
    return [r._replace(score=float(s)) for r, s in zip(rows, score)]


def _weight(w) -> float:
    if isinstance(w, bool) or not isinstance(w, int | float) or not 0 <= w <= 1:
        raise PassError(f"weight_simple must be a number in [0, 1], got {w!r}")
    return float(w)


def _samples_for(graph, edge, x, samples, y_th):
    if samples is not None:
        return _explicit_samples(samples)
    if x is None:
        raise DataError(f"edge {edge} needs samples: pass x (model inputs) or samples=(edge "
                        "inputs, edge outputs)")
    return edge_samples(graph, x, [edge], y_th)


def fix_symbolic(graph: KanGraph, l: int, i: int, j: int, fun: str, params=None, *, x=None,
                 samples=None, fit_params: bool = True, a_range=(-10, 10), b_range=(-10, 10),
                 snap: bool = True, snap_tol: float = 0.05, y_th: float = Y_TH
                 ) -> tuple[KanGraph, EdgeFit]:
    """A copy of ``graph`` whose edge (l, i, j) is ``c*fun(a*x+b)+d``, and what was set.

    ``params`` (a, b, c, d) are used as given; otherwise, with ``fit_params``, they are fitted to
    the edge's samples (from data ``x`` or ``samples=(edge inputs, edge outputs)``) within
    ``a_range`` × ``b_range`` and, with ``snap``, snapped to simple values where the fit stays
    within ``snap_tol`` (relative RMSE); without ``fit_params`` they are (1, 0, 1, 0). The
    spline part, if any, is kept inactive for :func:`unfix_symbolic`.
    """
    l, i, j = _check_edge(graph, l, i, j)
    name = LIBRARY.canonical_name(fun) if isinstance(fun, str) else None
    if name is None:
        raise PassError(f"fun must be a library function name, got {type(fun).__name__}; add "
                        "new functions with kanir.register")
    old = graph.edge(l, i, j)
    fit = EdgeFit((l, i, j), FIXED, name, complexity=LIBRARY[name].complexity)
    if params is not None:
        p = _as_params(params)
        fit = EdgeFit((l, i, j), FIXED, name, p, complexity=fit.complexity)
    elif not fit_params:
        fit = EdgeFit((l, i, j), FIXED, name, (1.0, 0.0, 1.0, 0.0), complexity=fit.complexity)
    else:
        xs, ys, w = _samples_for(graph, (l, i, j), x, samples, y_th)
        if not bool((w > 0).any()):
            raise DataError(f"edge ({l},{i},{j}) has no finite sample to fit {name} to")
        res = fit_affine(xs, ys, [name], _check_range(a_range, "a_range"),
                         _check_range(b_range, "b_range"), y_th=y_th, weights=w)
        row = res.best(0)
        _, valid = check_row(row, xs[0], ys[0], w[0], y_th)
        if not valid:
            warnings.warn(f"edge ({l},{i},{j}): {name} fitted as c*f(a*x+b)+d = {row.c:.4g}*{name}"
                          f"({row.a:.4g}*x{row.b:+.4g}){row.d:+.4g} is not finite (or not defined) "
                          "on every sample; the model may compute inf/NaN there (train with "
                          "singularity_avoiding=True or choose another function)", stacklevel=2)
        p, exact = (row.a, row.b, row.c, row.d), (None,) * 4
        if snap and math.isfinite(row.r2):
            p, exact = _snap(name, p, xs[0], ys[0], w[0], snap_tol, y_th)
        fit = EdgeFit((l, i, j), FIXED, name, tuple(p), row.r2, row.complexity, tuple(exact), row)
    h = graph.copy()
    h.set_edge(l, i, j, _fixed_act(old, name, fit.params, fit.exact))
    return verified(h), fit


def _as_params(params) -> tuple[float, float, float, float]:
    try:
        p = tuple(float(v) for v in np.asarray(params, dtype=np.float64).reshape(-1))
    except (TypeError, ValueError):
        raise PassError(f"params must be 4 numbers (a, b, c, d), got {params!r}") from None
    if len(p) != 4 or not all(math.isfinite(v) for v in p):
        raise PassError(f"params must be 4 finite numbers (a, b, c, d), got {params!r}")
    return p


def unfix_symbolic(graph: KanGraph, l: int, i: int, j: int) -> KanGraph:
    """A copy with edge (l, i, j) back to its spline (its symbolic part removed)."""
    l, i, j = _check_edge(graph, l, i, j)
    act = graph.edge(l, i, j)
    if act is None or act.spline is None:
        raise PassError(f"edge ({l},{i},{j}) has no spline to restore (it was "
                        f"{'absent' if act is None else 'built symbolic'}); use fix_symbolic to "
                        "change its function or remove_edge to drop it")
    h = graph.copy()
    h.set_edge(l, i, j, _spline_again(act))
    return verified(h)


def _spline_again(act):
    """A copy of ``act`` with its spline active again and its symbolic part dropped."""
    new = act.copy()
    new.spline.active = True
    new.symbolic = None
    new.meta.pop("exact", None)
    return new


def unfix(graph: KanGraph) -> KanGraph:
    """A copy with every edge that keeps a spline restored to it (edges built symbolic, with no
    spline, stay as they are)."""
    require_layered(graph, "unfix")
    h = graph.copy()
    for l, i, j, act in graph.act_edges():
        if act.spline is not None and (act.symbolic is not None or not act.spline.active):
            h.set_edge(l, i, j, _spline_again(act))
    return verified(h)


def auto_symbolic(graph: KanGraph, x, lib=None, *, a_range=(-10, 10), b_range=(-10, 10),
                  r2_threshold: float = 0.0, weight_simple: float = 0.8, snap: bool = True,
                  snap_tol: float = 0.05, edges: Iterable[tuple[int, int, int]] | None = None,
                  drop_constant: bool = True, y_th: float = Y_TH, grid_number: int = 101,
                  iteration: int = 3, constraints=()) -> tuple[KanGraph, SymbolicReport]:
    """Fix every active spline edge (or the listed ``edges``) to its best library function.

    All edges × all functions of ``lib`` (default: pykan's 29) are fitted in one batched call on
    the edges' samples from data ``x``; each edge takes the top candidate by score
    (``weight_simple`` trades simplicity against R²) if its R² ≥ ``r2_threshold``, otherwise it
    stays a spline and the report says so. With ``drop_constant``, an edge whose best function is
    the constant ``0`` (c = 0, value d) is removed and d, times the subnode's scale, added to the
    subnode's bias: the function is the same, the formula has one term less, and the edge no
    longer keeps its spline for ``unfix``. ``constraints``
    (:mod:`kanir.science.constraints`): a candidate that makes the model break one is passed
    over for the next (a SymbolicConstraintWarning says so). Returns (new graph,
    :class:`SymbolicReport`).
    """
    from kanir.science.constraints import SymbolicConstraintWarning, as_constraints

    cons = as_constraints(constraints)
    require_layered(graph, "auto_symbolic")
    names = _lib_names(lib)
    ws = _weight(weight_simple)
    if isinstance(r2_threshold, bool) or not isinstance(r2_threshold, int | float) or \
            math.isnan(r2_threshold):
        raise PassError(f"r2_threshold must be a number, got {r2_threshold!r}")
    ar, br = _check_range(a_range, "a_range"), _check_range(b_range, "b_range")
    todo = symbolic_edges(graph) if edges is None else [_check_edge(graph, *e) for e in edges]
    report = SymbolicReport([], float(r2_threshold))
    if not todo:
        return graph.copy(), report
    xs, ys, w = edge_samples(graph, x, todo, y_th)
    alive = (w > 0).any(1)
    res = None
    if bool(alive.any()):
        res = fit_affine(xs[alive], ys[alive], names, ar, br, grid_number, iteration, y_th=y_th,
                         weights=w[alive])
    h = graph.copy()
    row_of = torch.cumsum(alive.long(), 0) - 1
    for e, edge in enumerate(todo):
        if not bool(alive[e]):
            report.edges.append(EdgeFit(edge, KEPT, reason="no finite sample"))
            continue
        ranked = ranking(res, int(row_of[e]), xs[e], ys[e], w[e], ws, y_th)
        best, rejected, chosen = ranked[0], [], None
        for cand in ranked if cons else ():
            if not (math.isfinite(cand.r2) and math.isfinite(cand.score)) or \
                    cand.r2 < r2_threshold - 1e-12:
                break
            trial = _apply(h, edge, cand, xs[e], ys[e], w[e], snap, snap_tol, y_th,
                           drop_constant)[0]
            why = [v for v in (c.violation(trial, x) for c in cons) if v]
            if not why:
                chosen = cand
                break
            rejected.append(f"{cand.name} ({'; '.join(why)})")
        if chosen is not None:
            best = chosen
        elif rejected:  # no acceptable candidate: keep the spline
            report.edges.append(EdgeFit(edge, KEPT, reason="every candidate breaks a "
                                        "constraint: " + ", ".join(rejected)))
            warnings.warn(f"auto_symbolic: edge {edge} kept its spline: every candidate breaks "
                          f"a constraint ({', '.join(rejected)})", SymbolicConstraintWarning,
                          stacklevel=2)
            continue
        if rejected:
            warnings.warn(f"auto_symbolic: edge {edge} rejected {', '.join(rejected)}; chose "
                          f"{best.name}", SymbolicConstraintWarning, stacklevel=2)
        if not (math.isfinite(best.r2) and math.isfinite(best.score)) or \
                best.r2 < r2_threshold - 1e-12:  # (R² of a constant fit rounds to -2e-16)
            why = (f"best {best.name}, R²={best.r2:.4g} < {r2_threshold:g}"
                   if math.isfinite(best.r2) and math.isfinite(best.score)
                   else "no library function is finite and well-conditioned on the samples")
            report.edges.append(EdgeFit(edge, KEPT, r2=best.r2, complexity=best.complexity,
                                        best=best, reason=why))
            continue
        h, p, exact, note = _apply(h, edge, best, xs[e], ys[e], w[e], snap, snap_tol, y_th,
                                   drop_constant)
        if rejected:
            note = (note + "; " if note else "") + "passed over: " + ", ".join(rejected)
        report.edges.append(EdgeFit(edge, FIXED, best.name, tuple(p), best.r2, best.complexity,
                                    tuple(exact), best, note))
    return verified(h), report


def _apply(h: KanGraph, edge, best: FitRow, xs, ys, w, snap: bool, snap_tol: float, y_th: float,
           drop_constant: bool):
    """(a copy of h with ``edge`` set to candidate ``best``, params, exact values, note)."""
    h = h.copy()
    p, exact = (best.a, best.b, best.c, best.d), (None,) * 4
    if snap:
        p, exact = _snap(best.name, p, xs, ys, w, snap_tol, y_th)
    note = ""
    if drop_constant and best.name == "0":
        h.set_edge(*edge, None)
        sub = h.subnode(edge[0] + 1, edge[2])
        sub["bias"] = float(sub["bias"] + sub["scale"] * p[3])
        note = "constant: edge removed, its value folded into the subnode bias"
    else:
        h.set_edge(*edge, _fixed_act(h.edge(*edge), best.name, p, exact))
    return h, p, exact, note
