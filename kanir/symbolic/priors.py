"""Priors for symbolic regression: what is known about an edge's function before fitting.

A prior ranks down the library candidates that contradict it: ``suggest_symbolic(...,
prior=Diverges(1.0))`` adds ``prior.penalty`` to the score of every fitted candidate
``c*f(a*x+b)+d`` that stays bounded near x = 1, so "T diverges as q̇ → 1" puts x^(-1/2) ahead
of functions that only match the samples. Candidates are judged by their plain torch form
(no singularity clipping), maximised on a zooming grid so a pole just off the point counts.

- :class:`Diverges`: the function blows up at (or within ``within`` of) a point;
- :class:`Bounded`: the function is defined, finite and within given bounds on an interval.

A list of priors adds their penalties. Write a new prior by subclassing :class:`Prior` and
defining ``holds(fun, xs, ys)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from kanir.errors import ArgumentError
from kanir.ir.library import LIBRARY

__all__ = ["Prior", "Diverges", "Bounded", "as_priors", "prior_penalty", "candidate"]

#: points of the first grid and zoom rounds of :func:`extremes`.
GRID, ZOOMS = 2001, 6


def _number(v, name: str, owner: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ArgumentError(f"{owner}: {name} must be a finite number, got {v!r}")
    return float(v)


def _positive(v, name: str, owner: str, above: float = 0.0) -> float:
    f = _number(v, name, owner)
    if f <= above:
        raise ArgumentError(f"{owner}: {name} must be > {above:g}, got {v!r}")
    return f


def candidate(row) -> Callable[[torch.Tensor], torch.Tensor]:
    """The fitted candidate ``c*f(a*x+b)+d`` of a ranking row as a float64 torch function
    (plain form: poles give inf, points outside the domain NaN)."""
    fn = LIBRARY[row.name]

    def f(t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if row.c == 0:
                return torch.full_like(t, float(row.d))
            return row.c * fn.torch(row.a * t + row.b) + row.d

    return f


def extremes(f: Callable, lo: float, hi: float) -> tuple[float, float, bool]:
    """(min, max) of ``f`` over its defined points in [lo, hi] and whether some point there is
    undefined (NaN). The grid zooms in on the largest and the smallest value ``ZOOMS`` times,
    so a pole inside (or at the edge of) the interval shows as a huge or infinite value."""
    t = torch.linspace(lo, hi, GRID, dtype=torch.float64)
    v = f(t)
    nan = bool(torch.isnan(v).any())
    out = []
    for sign in (1.0, -1.0):
        tt, vv, best = t, v, -math.inf
        for _ in range(ZOOMS + 1):
            s = torch.where(torch.isnan(vv), -math.inf, sign * vv)
            k = int(torch.argmax(s))
            best = max(best, float(s[k]))
            if not math.isfinite(best) or tt.numel() < 3:
                break
            a, b = float(tt[max(k - 1, 0)]), float(tt[min(k + 1, tt.numel() - 1)])
            if b <= a:
                break
            tt = torch.linspace(a, b, 201, dtype=torch.float64)
            vv = f(tt)
            nan = nan or bool(torch.isnan(vv).any())
        out.append(sign * best)
    return out[1], out[0], nan


def _data_scale(ys: torch.Tensor) -> float:
    """max|y| + spread of the edge's samples: the size a candidate's values are compared with."""
    if ys.numel() == 0:
        return 1.0
    ref = float(ys.abs().max()) + float(ys.max() - ys.min())
    return ref if ref > 0 else 1.0


class Prior:
    """Knowledge about an edge's function. ``holds(fun, xs, ys)`` says whether candidate
    ``fun`` (a torch function) agrees with it, given the edge's samples (inputs ``xs``,
    outputs ``ys``); candidates that disagree get ``penalty`` added to their score."""

    penalty: float = 100.0

    def holds(self, fun: Callable, xs: torch.Tensor, ys: torch.Tensor) -> bool:
        raise NotImplementedError

    def _set_penalty(self, penalty) -> None:
        p = _number(penalty, "penalty", type(self).__name__)
        if p < 0:
            raise ArgumentError(f"{type(self).__name__}: penalty must be >= 0 (added to the "
                                f"score of candidates that contradict the prior), got {penalty!r}")
        self.penalty = p


class Diverges(Prior):
    """The function diverges at x = ``at`` like a power: |f| ~ |x − x*|^(−p) with p ≥ ``order``
    at a point x* within ``within`` of ``at``. Candidates bounded there, or growing only like a
    logarithm (p ≈ 0: log, arctanh), are ranked down.

    ``within`` defaults to 5% of the samples' input range (a fitted pole is never exactly at the
    point); ``order=0.25`` admits poles and inverse roots, ``order=0`` any unbounded growth. E.g.
    ``Diverges(1.0)`` for a kinetic energy T(q̇²) as q̇ → c = 1."""

    def __init__(self, at: float, within: float | None = None, order: float = 0.25,
                 penalty: float = 100.0):
        self.at = _number(at, "at", "Diverges")
        self.within = None if within is None else _positive(within, "within", "Diverges")
        self.order = _number(order, "order", "Diverges")
        if self.order < 0:
            raise ArgumentError(f"Diverges: order must be >= 0 (the least power p of a "
                                f"divergence |x - at|^-p), got {order!r}")
        self._set_penalty(penalty)

    def holds(self, fun, xs, ys) -> bool:
        w = self.within
        if w is None:
            span = float(xs.max() - xs.min()) if xs.numel() else 0.0
            w = 0.05 * span if span > 0 else 0.05 * max(abs(self.at), 1.0)
        star = peak(fun, self.at - w, self.at + w)
        return divergence_order(fun, star, w) >= max(self.order, 1e-3)

    def __repr__(self) -> str:
        return f"Diverges(at={self.at:g}, within={self.within}, order={self.order:g})"


def peak(f: Callable, lo: float, hi: float) -> float:
    """Where |f| is largest in [lo, hi] (NaN points skipped), on a grid zooming in ``ZOOMS``
    times: a pole in the interval is found to within float precision."""
    t = torch.linspace(lo, hi, GRID, dtype=torch.float64)
    best = lo
    for _ in range(ZOOMS + 1):
        v = f(t).abs()
        v = torch.where(torch.isnan(v), -1.0, v)
        k = int(torch.argmax(v))
        best = float(t[k])
        if math.isinf(float(v[k])):
            break
        a, b = float(t[max(k - 1, 0)]), float(t[min(k + 1, t.numel() - 1)])
        if b <= a:
            break
        t = torch.linspace(a, b, 201, dtype=torch.float64)
    return best


def divergence_order(f: Callable, star: float, w: float) -> float:
    """The power p of a divergence |f| ~ |x − star|^(−p), estimated on either side of ``star``
    from the growth of f between distances w, 1e-3·w and 1e-6·w (about 0 for a logarithm,
    negative where f is smooth, -inf where f is undefined on both sides)."""
    best = -math.inf
    for side in (-1.0, 1.0):
        d = torch.tensor([1.0, 1e-3, 1e-6], dtype=torch.float64) * w
        v = f(star + side * d)
        if not bool(torch.isfinite(v).all()):
            continue
        near, far = float((v[2] - v[1]).abs()), float((v[1] - v[0]).abs())
        if near == 0:
            continue
        if far == 0:
            return math.inf
        best = max(best, math.log(near / far) / math.log(1e3))
    return best


class Bounded(Prior):
    """The function is defined and finite on the interval ``on`` (default: the samples' input
    range) and, where given, stays within [``low``, ``high``]; "finite" means its absolute
    value stays below ``ratio`` times the samples' size."""

    def __init__(self, low: float | None = None, high: float | None = None, on=None,
                 ratio: float = 1e3, penalty: float = 100.0):
        self.low = None if low is None else _number(low, "low", "Bounded")
        self.high = None if high is None else _number(high, "high", "Bounded")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ArgumentError(f"Bounded: low must be below high, got low={low!r}, "
                                f"high={high!r}")
        self.on = None
        if on is not None:
            try:
                a, b = on
            except (TypeError, ValueError):
                raise ArgumentError(f"Bounded: on must be an interval (low, high), got "
                                    f"{on!r}") from None
            a, b = _number(a, "on[0]", "Bounded"), _number(b, "on[1]", "Bounded")
            if a >= b:
                raise ArgumentError(f"Bounded: the interval on=(low, high) needs low < high, "
                                    f"got {on!r}")
            self.on = (a, b)
        self.ratio = _positive(ratio, "ratio", "Bounded", above=1.0)
        self._set_penalty(penalty)

    def holds(self, fun, xs, ys) -> bool:
        a, b = self.on if self.on is not None else (float(xs.min()), float(xs.max()))
        if a >= b:
            return True
        lo, hi, nan = extremes(fun, a, b)
        if nan or not (math.isfinite(lo) and math.isfinite(hi)):
            return False
        if max(abs(lo), abs(hi)) >= self.ratio * _data_scale(ys):
            return False
        return (self.low is None or lo >= self.low) and (self.high is None or hi <= self.high)

    def __repr__(self) -> str:
        return f"Bounded(low={self.low}, high={self.high}, on={self.on}, ratio={self.ratio:g})"


def as_priors(prior) -> tuple[Prior, ...]:
    """``prior`` (None, a Prior or a list of them) as a tuple; anything else is an error."""
    if prior is None:
        return ()
    items = list(prior) if isinstance(prior, list | tuple) else [prior]
    for p in items:
        if not isinstance(p, Prior):
            raise ArgumentError(f"prior must be a kanir.symbolic.priors.Prior (e.g. "
                                f"Diverges(1.0) or Bounded()) or a list of them, got {p!r}")
    return tuple(items)


def prior_penalty(priors: tuple[Prior, ...], row, xs: torch.Tensor, ys: torch.Tensor) -> float:
    """The summed penalty of the priors a ranking row's candidate contradicts."""
    if not priors:
        return 0.0
    fun = candidate(row)
    return sum(p.penalty for p in priors if not p.holds(fun, xs, ys))
