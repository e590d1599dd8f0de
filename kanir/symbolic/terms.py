"""Sparse term regression: y, or a simple transform of it, as a short sum of monomials.

AI Feynman's polynomial step, made sparse: many laws become a few monomials once the target is
transformed (1/y**2 = 1/m0**2 - v**2/(c**2*m0**2) for m0/sqrt(1 - v**2/c**2); log y =
-theta**2/(2*sigma**2) - log(sigma) + c for a Gaussian; sin y = n*sin(theta2) for Snell's law).
For each transform T of :data:`TRANSFORMS` that the data allow, a beam search over supports
(:func:`_pursuit`) picks monomials — products of at most ``max_factors`` variables' factors:
powers, sin, cos, and for T = log the log of a positive variable — and least squares their
coefficients; log(y) is also fitted as a power law in every positive variable. With at most
``pairs`` variables and no exact fit, sums and differences of two variables join as variables;
with at most ``divide``, y / x_i is fitted too (a factor times a sum).
Every support size is a :class:`TermFit`, ranked by an information criterion on y itself
(:func:`_bic`); :func:`formula` turns one back into y = T^-1(sum), whose constants
:func:`kanir.symbolic.formula_fit.snap_formula` can then snap on the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations, product

import numpy as np
import sympy

from kanir.errors import ArgumentError

__all__ = ["TRANSFORMS", "TermFit", "fit_terms", "formula"]

#: target transforms tried, by name (:func:`formula` holds their inverses)
TRANSFORMS = ("y", "1/y", "y**2", "1/y**2", "sqrt(y)", "log(y)", "sin(y)", "exp(y)")

#: at most this many columns (monomials); fewer factors per monomial beyond it
MAX_COLUMNS = 20000


@dataclass
class TermFit:
    """One sparse fit: transform(y) = intercept + sum(coef * term) with ``rel`` = RMSE / std of
    the transformed target on the data fitted."""

    transform: str
    terms: tuple[tuple[tuple[int, object], ...], ...]  # per term: ((variable, power | "log"), ...)
    coefs: tuple[float, ...]
    intercept: float
    rel: float
    sign: float = 1.0  # y = sign * |y| for the transforms that need one sign
    #: the variables past X's columns that the terms use: (op, i, j) is x_i op x_j, op + or -
    derived: tuple[tuple[str, int, int], ...] = ()
    #: RMSE / std(y) with the transform undone (inf where the fit leaves T's domain)
    rel_y: float = math.inf
    #: the variable the sum multiplies (the target was y / x_factor), or None
    factor: int | None = None


def _kinds(x: np.ndarray, powers, logs: bool, trig: bool) -> dict[int, list]:
    """The factors each column may contribute: its powers (non-integer ones only when it is
    positive), log (positive columns, when ``logs``), sin and cos (when ``trig``)."""
    out = {}
    for i in range(x.shape[1]):
        positive = bool(np.all(x[:, i] > 0))
        out[i] = ([p for p in powers if positive or float(p).is_integer()]
                  + (["log"] if logs and positive else []) + (["sin", "cos"] if trig else []))
    return out


_FUNCS = {"log": np.log, "sin": np.sin, "cos": np.cos}


def _columns(x: np.ndarray, powers, max_factors: int, logs: bool, trig: bool = True):
    """The monomials (specs and values) over the columns of ``x``: products of at most
    ``max_factors`` columns' factors (:func:`_kinds`), at most one of them a log."""
    n = x.shape[1]
    kinds = _kinds(x, powers, logs, trig)
    while max_factors > 1 and sum(
            math.comb(n, m) * max(len(v) for v in kinds.values()) ** m
            for m in range(1, max_factors + 1)) > MAX_COLUMNS:
        max_factors -= 1
    specs, cols = [], []
    with np.errstate(all="ignore"):
        for m in range(1, max_factors + 1):
            for idx in combinations(range(n), m):
                for ps in product(*(kinds[i] for i in idx)):
                    if sum(1 for p in ps if p == "log") > 1:
                        continue
                    v = np.ones(x.shape[0])
                    for i, p in zip(idx, ps, strict=True):
                        v = v * (_FUNCS[p](x[:, i]) if p in _FUNCS else x[:, i] ** float(p))
                    if np.all(np.isfinite(v)) and np.ptp(v) > 0:
                        specs.append(tuple(zip(idx, ps, strict=True)))
                        cols.append(v)
    return specs, np.column_stack(cols) if cols else np.zeros((x.shape[0], 0))


def _transformed(y: np.ndarray, name: str) -> tuple[np.ndarray, float] | None:
    """T(y) for transform ``name`` and the sign of y it assumes; None where T does not apply:
    every transform but y itself needs y of one sign, away from 0."""
    sign = 1.0 if np.all(y > 0) else (-1.0 if np.all(y < 0) else 0.0)
    small = np.min(np.abs(y)) <= 1e-9 * np.max(np.abs(y))
    with np.errstate(all="ignore"):
        if name == "y":
            t = y
        elif name == "y**2":
            t = y ** 2 if sign else None
        elif name in ("1/y", "1/y**2"):
            t = None if small or not sign else (1 / y if name == "1/y" else 1 / y ** 2)
        elif name in ("sqrt(y)", "log(y)"):
            t = None if not sign or small else (
                np.sqrt(sign * y) if name == "sqrt(y)" else np.log(sign * y))
        elif name == "sin(y)":  # y = asin(...): only where y stays within asin's range
            t = np.sin(y) if np.max(np.abs(y)) <= math.pi / 2 else None
        elif name == "exp(y)":  # y = log(...)
            t = np.exp(y) if np.max(np.abs(y)) <= 30 else None
        else:
            raise ArgumentError(f"unknown transform {name!r}")
    if t is None or not np.all(np.isfinite(t)) or np.ptp(t) == 0:
        return None
    return t, (sign or 1.0)


def _pursuit(A: np.ndarray, t: np.ndarray, max_terms: int, exact: float, beam: int = 8,
             expand: int = 12):
    """Beam search for sparse supports with an intercept: at each size, every kept support is
    grown by the ``expand`` columns that would cut its residual most (the columns made
    orthogonal to it), and the ``beam`` supports with the smallest least-squares residual are
    kept. Returns the best fit of each size, [(columns, coefs, intercept, rel RMSE)], stopping
    once rel <= ``exact``. (Plain greedy pursuit misses exact supports among thousands of
    correlated monomials: log y = log q + log v + log B - log m.)"""
    mean = A.mean(0)
    norms = np.linalg.norm(A - mean, axis=0)
    ok = norms > 1e-300
    Ac = np.where(ok, (A - mean) / np.where(ok, norms, 1.0), 0.0)
    tc = t - t.mean()
    scale = float(np.std(t))
    level: list[tuple[tuple[int, ...], np.ndarray, np.ndarray]] = [((), tc, np.zeros(0))]
    path = []
    for _ in range(max_terms):
        grown: set[tuple[int, ...]] = set()
        for S, r, _sol in level:
            if S:
                q, _ = np.linalg.qr(Ac[:, S])
                perp = Ac - q @ (q.T @ Ac)
            else:
                perp = Ac
            n2 = np.einsum("ij,ij->j", perp, perp)
            gain = np.where(ok & (n2 > 1e-10), (perp.T @ r) ** 2 / np.maximum(n2, 1e-300), -1.0)
            gain[list(S)] = -1.0
            for k in np.argsort(-gain)[:expand]:
                if gain[k] > 0:
                    grown.add(tuple(sorted((*S, int(k)))))
        if not grown:
            break
        scored = []
        for S in grown:
            sol, *_ = np.linalg.lstsq(Ac[:, S], tc, rcond=None)
            r = tc - Ac[:, S] @ sol
            scored.append((float(r @ r), S, r, sol))
        scored.sort(key=lambda z: (z[0], z[1]))
        level = [(S, r, sol) for _, S, r, sol in scored[:beam]]
        S, r, sol = level[0]
        coefs = sol / norms[list(S)]
        intercept = float(t.mean() - mean[list(S)] @ coefs)
        rel = float(np.sqrt(np.mean(r ** 2)) / scale)
        path.append((S, tuple(float(c) for c in coefs), intercept, rel))
        if rel <= exact:
            break
    return path


def _power_law(x: np.ndarray, t: np.ndarray, sign: float, y: np.ndarray) -> list[TermFit]:
    """log|y| as a linear function of the logs of all positive variables: y = C * prod x**p
    (a monomial of any number of variables, beyond the search's ``max_factors``)."""
    idx = [i for i in range(x.shape[1]) if np.all(x[:, i] > 0)]
    if len(idx) < 2:
        return []
    L = np.column_stack([np.ones(len(t))] + [np.log(x[:, i]) for i in idx])
    sol, *_ = np.linalg.lstsq(L, t, rcond=None)
    rel = float(np.sqrt(np.mean((L @ sol - t) ** 2)) / np.std(t))
    return [TermFit("log(y)", tuple(((i, "log"),) for i in idx), tuple(float(c) for c in sol[1:]),
                    float(sol[0]), rel, sign, (), _rel_y(L @ sol, "log(y)", sign, y))]


def fit_terms(X, y, *, transforms=TRANSFORMS, powers=(-2, -1, -0.5, 0.5, 1, 2),
              max_factors: int = 3, max_terms: int = 5, logs: bool = True, trig: bool = True,
              pairs: int = 4, divide: int = 6, exact: float = 1e-10) -> list[TermFit]:
    """The sparse fits of every transform of ``y`` (see the module docstring), best first by
    the Bayesian information criterion (:func:`_bic`).

    ``X`` (rows, variables), ``y`` (rows,): float arrays. ``powers``: exponents a variable may
    carry in a monomial (non-integer ones only for positive variables); ``max_factors``:
    variables per monomial (lowered automatically beyond MAX_COLUMNS monomials); ``max_terms``:
    monomials per fit; ``logs``: log(x) of positive variables as terms of log(y); ``trig``:
    sin(x) and cos(x) as factors; ``pairs``: with at most this many variables, when no fit is
    exact, a second search adds every sum and difference of two variables as a variable
    (exp(-(theta - theta1)**2/(2*sigma**2))/sigma); ``divide``: with at most this many
    variables, when no fit is exact, y / x_i is fitted too for each variable of one sign
    (:func:`_divided`); ``exact``: relative RMSE at which a search stops (the fit is exact)."""
    x = np.asarray(X, dtype=np.float64)
    t0 = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or x.shape[0] != t0.shape[0]:
        raise ArgumentError(f"fit_terms: X must be (rows, variables) with one y per row, got "
                            f"{x.shape} and {t0.shape}")
    if max_terms < 1 or max_factors < 1:
        raise ArgumentError("fit_terms: max_terms and max_factors must be >= 1")
    for name in transforms:
        if name not in TRANSFORMS:
            raise ArgumentError(f"fit_terms: unknown transform {name!r}; choose from "
                                f"{TRANSFORMS}")
    opts = dict(transforms=transforms, powers=powers, max_factors=max_factors,
                max_terms=max_terms, logs=logs, trig=trig, exact=exact)
    out, plain = _search(x, t0, (), **opts)
    n = x.shape[1]
    if 2 <= n <= pairs and not any(f.rel <= exact for f in out):
        derived = tuple((op, i, j) for i, j in combinations(range(n), 2) for op in "+-")
        extra = np.column_stack([x] + [x[:, i] + x[:, j] if op == "+" else x[:, i] - x[:, j]
                                       for op, i, j in derived])
        keep = [k for k in range(extra.shape[1]) if np.ptp(extra[:, k]) > 0]
        if len(keep) == extra.shape[1]:
            out += _search(extra, t0, derived, **opts)[0]
    if 2 <= n <= divide and not any(f.rel <= exact for f in out):
        out += _divided(x, t0, plain, max_terms, exact)
    return sorted(out, key=lambda f: (_bic(f, x.shape[0]), f.rel_y))


def _divided(x, y, columns, max_terms, exact) -> list[TermFit]:
    """Fits of y / x_i as a sum of monomials (``columns``: the search's monomials without
    logs), for each variable x_i of one sign: a law that is a factor times a sum
    (q*(Ef + B*v*sin(theta)), m*(v**2 + u**2 + w**2)/2) has terms of fewer factors once the
    factor is divided out."""
    specs, A = columns
    out = []
    for i in range(x.shape[1]):
        xi = x[:, i]
        if not (np.all(xi > 0) or np.all(xi < 0)) or \
                np.min(np.abs(xi)) <= 1e-9 * np.max(np.abs(xi)):
            continue
        t = y / xi
        if not np.all(np.isfinite(t)) or np.ptp(t) == 0:
            continue
        for chosen, coefs, intercept, rel in _pursuit(A, t, max_terms, exact):
            pred = (A[:, list(chosen)] @ np.asarray(coefs) + intercept) * xi
            rel_y = float(np.sqrt(np.mean((pred - y) ** 2)) / np.std(y))
            out.append(TermFit("y", tuple(specs[k] for k in chosen), coefs, intercept, rel,
                               1.0, (), rel_y if math.isfinite(rel_y) else math.inf, i))
    return out


def _bic(fit: TermFit, rows: int) -> float:
    """Bayesian information criterion of a fit on y: rows * log(rel_y**2) + terms * log(rows).
    With label noise a few more terms always cut the residual a little; this ranks the true,
    shorter support first."""
    return rows * math.log(min(fit.rel_y, 1e150) ** 2 + 1e-30) + (len(fit.terms) + 1) * \
        math.log(rows)


def _search(x, t0, derived, *, transforms, powers, max_factors, max_terms, logs, trig,
            exact) -> tuple[list[TermFit], tuple]:
    """fit_terms over the columns of ``x`` (the last ones ``derived``); also returns the
    monomials without logs, (specs, values), for :func:`_divided`."""
    plain = _columns(x, powers, max_factors, logs=False, trig=trig)
    with_logs = _columns(x, powers, max_factors, logs=True, trig=trig) if logs else plain
    out = []
    for name in transforms:
        tr = _transformed(t0, name)
        if tr is None:
            continue
        t, sign = tr
        specs, A = with_logs if name == "log(y)" else plain
        if A.shape[1] == 0:
            continue
        for chosen, coefs, intercept, rel in _pursuit(A, t, max_terms, exact):
            pred = A[:, list(chosen)] @ np.asarray(coefs) + intercept
            out.append(TermFit(name, tuple(specs[k] for k in chosen), coefs, intercept, rel,
                               sign, derived, _rel_y(pred, name, sign, t0)))
        if name == "log(y)" and not derived:
            out += _power_law(x, t, sign, t0)
    return out, plain


def _rel_y(pred: np.ndarray, name: str, sign: float, y: np.ndarray) -> float:
    """RMSE / std(y) of the fit's y (the transform undone): fits of different transforms
    compare on y, since each transform stretches the labels' noise differently."""
    with np.errstate(all="ignore"):
        back = {"y": lambda t: t, "1/y": lambda t: 1 / t,
                "y**2": lambda t: sign * np.sqrt(t), "1/y**2": lambda t: sign / np.sqrt(t),
                "sqrt(y)": lambda t: sign * t ** 2, "log(y)": lambda t: sign * np.exp(t),
                "sin(y)": np.arcsin, "exp(y)": np.log}[name](pred)
        err = float(np.sqrt(np.mean((back - y) ** 2)) / np.std(y))
    return err if math.isfinite(err) else math.inf


def formula(fit: TermFit, symbols) -> sympy.Expr:
    """y as a sympy expression of ``symbols`` (one per column of X): T^-1 of the fitted sum
    (for log(y), exp(intercept) is a factor in front, a constant the snapper can make exact)."""
    variables = list(symbols) + [symbols[i] + symbols[j] if op == "+" else symbols[i] - symbols[j]
                                 for op, i, j in fit.derived]
    def term(spec):
        e = sympy.Integer(1)
        for i, p in spec:
            v = variables[i]
            e *= getattr(sympy, p)(v) if p in _FUNCS else v ** sympy.nsimplify(p)
        return e

    body = sum(sympy.Float(c) * term(spec) for c, spec in zip(fit.coefs, fit.terms, strict=True))
    s = sympy.Float(fit.intercept) + body
    inverse = {"y": s, "1/y": 1 / s, "y**2": fit.sign * sympy.sqrt(s),
               "1/y**2": fit.sign / sympy.sqrt(s), "sqrt(y)": fit.sign * s ** 2,
               "log(y)": fit.sign * sympy.Float(math.exp(fit.intercept)) * sympy.exp(body),
               "sin(y)": sympy.asin(s),
               "exp(y)": sympy.log(s)}
    y = inverse[fit.transform]
    return y if fit.factor is None else symbols[fit.factor] * y
