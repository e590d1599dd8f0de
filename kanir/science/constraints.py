"""Constraints that an objective declares on the functions a model may take, checked when
``auto_symbolic`` picks a library function for an edge: a candidate that makes the model
violate one is rejected and the next candidate tried (with a :class:`SymbolicConstraintWarning`).

The case that needs it: a Lagrangian whose q̇ edge auto_symbolic sets to ``0`` (or a linear
function) has ∂²L/∂q̇² ≡ 0, and its Euler–Lagrange equation no longer determines q̈;
:func:`kanir.science.objectives.lagrangian` declares :class:`NondegenerateKinetic`.
"""

from __future__ import annotations

import torch

from kanir.errors import ArgumentError

__all__ = ["SymbolicConstraintWarning", "Constraint", "NondegenerateKinetic", "as_constraints"]

#: at most this many rows of the data are used to check a constraint.
CHECK_SAMPLES = 256


class SymbolicConstraintWarning(UserWarning):
    """auto_symbolic passed over an edge's best candidate because it broke a constraint."""


class Constraint:
    """A property the whole model must keep: ``violation(graph, x)`` returns why the graph
    breaks it on inputs ``x`` (a sentence), or None when it holds."""

    def violation(self, graph, x: torch.Tensor) -> str | None:
        raise NotImplementedError


class NondegenerateKinetic(Constraint):
    """A Lagrangian L(q, q̇) (inputs: n coordinates, then n velocities; ``n`` defaults to half
    the inputs) must keep det ∂²L/∂q̇² away from zero: it is violated when that determinant is
    at most ``tol`` times the size of L's derivatives on every sample (L linear in q̇)."""

    def __init__(self, n: int | None = None, tol: float = 1e-8):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ArgumentError(f"NondegenerateKinetic: n (the number of coordinates) must be "
                                f"an integer >= 1, got {n!r}")
        if isinstance(tol, bool) or not isinstance(tol, int | float) or not 0 < tol < 1:
            raise ArgumentError(f"NondegenerateKinetic: tol must be a number in (0, 1), got "
                                f"{tol!r}")
        self.n, self.tol = n, float(tol)

    def violation(self, graph, x):
        from kanir.backends.torch import lower
        from kanir.science.derivatives import hessian, jacobian

        n_in = len(graph.input_names)
        n = self.n if self.n is not None else n_in // 2
        if 2 * n != n_in:
            raise ArgumentError(f"NondegenerateKinetic: a Lagrangian with {n} coordinates has "
                                f"{2 * n} inputs, the model has {n_in}")
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.shape[0] > CHECK_SAMPLES:
            x = x[torch.linspace(0, x.shape[0] - 1, CHECK_SAMPLES).round().long()]
        model = lower(graph, dtype="float64")  # the torch module alone: science sits below model
        H = hessian(model, x, outputs=[0])[:, 0]
        J = jacobian(model, x)[:, 0]
        det = torch.linalg.det(H[:, n:, n:]).abs() ** (1.0 / n)
        scale = float(H.abs().max()) + float(J.abs().max())
        if float(det.max()) <= self.tol * max(scale, 1e-300):
            return "∂²L/∂q̇² vanishes on every sample (L is at most linear in the velocities)"
        return None

    def __repr__(self) -> str:
        return f"NondegenerateKinetic(n={self.n}, tol={self.tol:g})"


def as_constraints(constraints) -> tuple[Constraint, ...]:
    """``constraints`` (None, a Constraint or a list) as a tuple; anything else is an error."""
    if constraints is None:
        return ()
    items = list(constraints) if isinstance(constraints, list | tuple) else [constraints]
    for c in items:
        if not isinstance(c, Constraint):
            raise ArgumentError(f"constraints must be kanir.science.constraints.Constraint "
                                f"objects (e.g. NondegenerateKinetic()), got {c!r}")
    return tuple(items)
