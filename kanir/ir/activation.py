"""Edge activations as plain values: an optional B-spline part plus an optional symbolic part.

The edge function is ``spline(x) + symbolic(x)`` where
``spline(x) = scale_base * base_fun(x) + scale_sp * sum_g coef[g] B_g(x)`` and
``symbolic(x) = c * f(a*x + b) + d``. A missing edge is the zero function.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(eq=False)
class SplinePart:
    """A B-spline of order k on an extended knot vector (G + 2k + 1 knots, G + k coefficients)."""

    grid: np.ndarray
    coef: np.ndarray
    k: int = 3
    scale_base: float = 1.0
    scale_sp: float = 1.0
    base_fun: str = "silu"
    active: bool = True  # False keeps the spline (for unfix) while it contributes nothing

    @property
    def G(self) -> int:
        return len(self.grid) - 2 * self.k - 1

    @property
    def grid_range(self) -> tuple[float, float]:
        return float(self.grid[self.k]), float(self.grid[-self.k - 1])

    def copy(self) -> SplinePart:
        return replace(self, grid=np.array(self.grid, copy=True), coef=np.array(self.coef, copy=True))

    def same(self, other: SplinePart) -> bool:
        return (
            isinstance(other, SplinePart)
            and self.k == other.k
            and self.base_fun == other.base_fun
            and self.active == other.active
            and self.scale_base == other.scale_base
            and self.scale_sp == other.scale_sp
            and np.array_equal(self.grid, other.grid)
            and np.array_equal(self.coef, other.coef)
        )


@dataclass(eq=False)
class SymbolicPart:
    """``c * f(a*x + b) + d`` for a library function named ``fun``."""

    fun: str
    a: float = 1.0
    b: float = 0.0
    c: float = 1.0
    d: float = 0.0

    @property
    def params(self) -> tuple[float, float, float, float]:
        return (self.a, self.b, self.c, self.d)

    def copy(self) -> SymbolicPart:
        return replace(self)

    def same(self, other: SymbolicPart) -> bool:
        return isinstance(other, SymbolicPart) and self.fun == other.fun and self.params == other.params


@dataclass(eq=False)
class Activation:
    """The function on one edge; both parts may be active at once (pykan's perturbed state)."""

    spline: SplinePart | None = None
    symbolic: SymbolicPart | None = None
    meta: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """'spline', 'symbolic', 'both' or 'zero' (what contributes to the output)."""
        sp = self.spline is not None and self.spline.active
        sy = self.symbolic is not None
        return "both" if sp and sy else "spline" if sp else "symbolic" if sy else "zero"

    def copy(self) -> Activation:
        return Activation(
            self.spline.copy() if self.spline is not None else None,
            self.symbolic.copy() if self.symbolic is not None else None,
            dict(self.meta),
        )

    def same(self, other: Activation) -> bool:
        """Structural and numeric equality (arrays compared exactly)."""
        if not isinstance(other, Activation):
            return False
        sp = (self.spline is None and other.spline is None) or (
            self.spline is not None and self.spline.same(other.spline)
        )
        sy = (self.symbolic is None and other.symbolic is None) or (
            self.symbolic is not None and self.symbolic.same(other.symbolic)
        )
        return sp and sy

    @staticmethod
    def symbolic_fn(fun: str, a=1.0, b=0.0, c=1.0, d=0.0) -> Activation:
        return Activation(symbolic=SymbolicPart(fun, float(a), float(b), float(c), float(d)))

    @staticmethod
    def identity() -> Activation:
        return Activation.symbolic_fn("x")

    def describe(self) -> str:
        """A short label, e.g. 'spline(G=5,k=3)', '2*sin(3*x+1)', 'sin + spline'."""
        parts = []
        if self.symbolic is not None:
            parts.append(describe_symbolic(self.symbolic))
        if self.spline is not None and self.spline.active:
            parts.append(f"spline(G={self.spline.G},k={self.spline.k})")
        return " + ".join(parts) if parts else "0"


def _num(v: float) -> str:
    return f"{v:.4g}"


def describe_symbolic(s: SymbolicPart) -> str:
    """Human label of c*f(a*x+b)+d that omits trivial constants."""
    inner = "x" if s.a == 1 else f"{_num(s.a)}*x"
    if s.b:
        inner += f"{'+' if s.b > 0 else '-'}{_num(abs(s.b))}"
    body = s.fun if s.fun == "x" and inner == "x" else f"{s.fun}[{inner}]"
    if s.c != 1:
        body = f"{_num(s.c)}*{body}"
    if s.d:
        body += f"{'+' if s.d > 0 else '-'}{_num(abs(s.d))}"
    return body
