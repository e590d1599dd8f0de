"""Plain result values of the symbolic passes: what was fitted to each edge, and tables of them.

``EdgeFit`` says what happened to one edge (fixed to a function, or kept as a spline and why);
``SymbolicReport`` lists them for ``auto_symbolic`` and prints as a table. Both are data only:
the passes compute them, the facade prints them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from kanir.ir.activation import SymbolicPart, describe_symbolic
from kanir.symbolic.symfit import FitRow

FIXED = "fixed"
KEPT = "kept spline"


@dataclass(frozen=True)
class EdgeFit:
    """The outcome for edge ``(l, i, j)``.

    ``status``: ``"fixed"`` (the edge is now ``c*fun(a*x+b)+d``) or ``"kept spline"`` (its best
    fit was not good enough, ``reason`` says why). ``params`` are the values set (after snapping);
    ``exact`` holds, per parameter, the exact sympy value it was snapped to (None: not snapped).
    ``r2`` is the fit's R² on the edge's samples (nan when parameters were given, not fitted);
    ``best`` is the top-ranked candidate when a library was searched; ``reason`` explains a kept
    spline, or notes that a constant edge was removed (its value folded into the subnode bias).
    """

    edge: tuple[int, int, int]
    status: str
    fun: str | None = None
    params: tuple[float, float, float, float] | None = None
    r2: float = math.nan
    complexity: float = math.nan
    exact: tuple = (None, None, None, None)
    best: FitRow | None = None
    reason: str = ""

    @property
    def fixed(self) -> bool:
        return self.status == FIXED

    def describe(self) -> str:
        """'fixed: 2*sin[3*x] (R²=0.9999)' or 'kept spline: best sin, R²=0.41 < 0.9'."""
        if self.fixed and self.fun is not None and self.params is not None:
            body = describe_symbolic(SymbolicPart(self.fun, *self.params))
            r2 = "" if math.isnan(self.r2) else f" (R²={self.r2:.6g})"
            note = f"; {self.reason}" if self.reason else ""
            return f"fixed: {body}{r2}{note}"
        return f"{KEPT}: {self.reason}" if self.reason else KEPT


@dataclass
class SymbolicReport:
    """Per-edge outcomes of ``auto_symbolic`` (in (l, i, j) order)."""

    edges: list[EdgeFit] = field(default_factory=list)
    r2_threshold: float = 0.0
    #: what the facade's check found wrong with the result (an output cut off from every
    #: input, a much worse fit); empty when all is well
    warnings: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[EdgeFit]:
        return iter(self.edges)

    def __len__(self) -> int:
        return len(self.edges)

    def __getitem__(self, key) -> EdgeFit:
        """By position or by edge tuple ``(l, i, j)``."""
        if isinstance(key, tuple):
            for e in self.edges:
                if e.edge == tuple(key):
                    return e
            raise KeyError(f"no edge {key} in this report")
        return self.edges[key]

    @property
    def fixed(self) -> list[EdgeFit]:
        return [e for e in self.edges if e.fixed]

    @property
    def kept(self) -> list[EdgeFit]:
        """Edges left as splines (poor fits)."""
        return [e for e in self.edges if not e.fixed]

    def as_dict(self) -> dict:
        """{(l, i, j): function name or 'kept spline'} — the short form."""
        return {e.edge: (e.fun if e.fixed else KEPT) for e in self.edges}

    def table(self) -> str:
        """A fixed-width table: edge, outcome, function, R², complexity."""
        rows = [("edge", "outcome", "function", "r2", "complexity")]
        for e in self.edges:
            fun = e.fun if e.fixed else (e.best.name if e.best is not None else "-")
            outcome = e.status + (" (edge removed)" if e.fixed and e.reason else "")
            rows.append((str(e.edge), outcome, fun or "-", _fmt(e.r2), _fmt(e.complexity)))
        return _grid(rows)

    def __str__(self) -> str:
        head = (f"auto_symbolic: {len(self.fixed)} edge(s) fixed, {len(self.kept)} kept as "
                f"spline (r2_threshold={self.r2_threshold:g})")
        body = head + ("\n" + self.table() if self.edges else "")
        return "\n".join([body, *self.warnings])

    def __repr__(self) -> str:
        return (f"SymbolicReport(fixed={len(self.fixed)}, kept={len(self.kept)}, "
                f"edges={self.as_dict()})")


def suggestion_table(rows: Sequence[FitRow]) -> str:
    """Candidates of suggest_symbolic as a table: function, R², complexity, score, a, b, c, d."""
    out = [("function", "r2", "complexity", "score", "a", "b", "c", "d")]
    for r in rows:
        out.append((r.name, _fmt(r.r2), _fmt(r.complexity), _fmt(r.score), _fmt(r.a),
                    _fmt(r.b), _fmt(r.c), _fmt(r.d)))
    return _grid(out)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _grid(rows: list[tuple]) -> str:
    widths = [max(len(str(r[c])) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
