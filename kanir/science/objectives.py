"""Physics objectives for ``model.fit(dataset, objective=...)``: the paper's §5 losses.

Each function returns an objective ``(model, x, y) -> scalar tensor`` built on input
derivatives (``kanir.jacobian`` / ``kanir.hessian`` with ``create_graph=True``), so training
differentiates through them. A user-written objective has the same form and needs nothing
from kanir's internals.

- :func:`conserved_quantity`: H with ``f · ∇H = 0`` for a vector field f (§5.1, the
  normalised-gradient loss ``mean((f·∇H / |∇H|)²)``);
- :func:`lagrangian`: L whose Euler–Lagrange equation predicts the labels q̈ (§5.2, Eq. 18);
- :func:`metric`: a coordinate change whose pulled-back metric matches a target (§5.3,
  Eq. 19–20).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from kanir.errors import DataError, KanirError
from kanir.science.constraints import NondegenerateKinetic
from kanir.science.derivatives import hessian, jacobian

__all__ = ["conserved_quantity", "lagrangian", "lagrangian_acceleration", "metric"]


def _rows(v: torch.Tensor, x: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(v, torch.Tensor) or v.shape != x.shape:
        raise DataError(f"{what} must return a tensor shaped like its input {tuple(x.shape)}, "
                        f"got {tuple(getattr(v, 'shape', ()))}")
    return v


def conserved_quantity(field: Callable, eps: float = 1e-12, normalise: str = "sample") -> Callable:
    """The objective of a conserved quantity H(z) of ``dz/dt = field(z)``: the mean of
    ``(field(z) · ∇H / |∇H|)²`` over the batch (the model's first output is H). Normalising the
    gradient keeps H from shrinking to a constant (whose gradient is zero).

    ``normalise="batch"`` divides by the batch mean of ``|∇H|²`` instead, a Rayleigh quotient:
    for a model linear in its coefficients (a one-layer KAN) it has no spurious local minima,
    where the per-sample form (the paper's) traps LBFGS at ~0.07-0.15 from some seeds."""
    if not callable(field):
        raise KanirError(f"conserved_quantity needs the vector field as a function z -> dz/dt, "
                         f"got {field!r}")
    if normalise not in ("sample", "batch"):
        raise KanirError(f"conserved_quantity: normalise must be 'sample' or 'batch', got "
                         f"{normalise!r}")

    def objective(model, x, y=None):
        grad = jacobian(model, x, create_graph=True)[:, 0, :]
        f = _rows(field(x), x, "the vector field")
        sq = (grad * grad).sum(dim=1)
        if normalise == "batch":
            return ((f * grad).sum(dim=1) ** 2).mean() / (sq.mean() + eps)
        return (((f * grad).sum(dim=1) / torch.sqrt(sq + eps)) ** 2).mean()

    return objective


def lagrangian_acceleration(model, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """q̈ predicted by the Lagrangian L(q, q̇) = model(x), x = [q, q̇] (n coordinates then n
    velocities), from the Euler–Lagrange equation
    ``(∂²L/∂q̇²) q̈ = ∂L/∂q − (∂²L/∂q̇∂q) q̇`` solved per sample (paper Eq. 18)."""
    if x.shape[1] % 2:
        raise DataError(f"a Lagrangian's inputs are coordinates then velocities (an even "
                        f"number of columns), got {x.shape[1]}")
    n = x.shape[1] // 2
    grad = jacobian(model, x, create_graph=True)[:, 0, :]
    hess = hessian(model, x, outputs=[0], create_graph=True)[:, 0]
    h_vv, h_vq = hess[:, n:, n:], hess[:, n:, :n]
    rhs = grad[:, :n] - (h_vq @ x[:, n:, None])[..., 0]
    acc = torch.linalg.solve(h_vv, rhs[..., None])[..., 0]
    return acc if create_graph else acc.detach()


def lagrangian() -> Callable:
    """The objective of a Lagrangian learned from accelerations: the mean squared error
    between the labels q̈ and :func:`lagrangian_acceleration` of the model. It declares
    ``constraints``: :class:`~kanir.science.constraints.NondegenerateKinetic` (∂²L/∂q̇² must not
    vanish), which ``auto_symbolic`` after this fit respects."""

    def objective(model, x, y):
        if y is None:
            raise DataError("the Lagrangian objective needs the accelerations q̈ as labels")
        acc = lagrangian_acceleration(model, x, create_graph=True)
        if acc.shape != y.shape:
            raise DataError(f"labels must be the accelerations, shape {tuple(acc.shape)}, got "
                            f"{tuple(y.shape)}")
        return ((acc - y) ** 2).mean()

    objective.constraints = (NondegenerateKinetic(),)
    return objective


def metric(g: Callable, transform: Callable, target: Callable | None = None,
           block: slice | list | None = None) -> Callable:
    """The objective of a coordinate change x' = transform(model, x) that turns the metric
    g(x) (batch, d, d) into the target (default: the identity): with J = ∂x'/∂x,
    ``g' = J^-T g J^-1`` and the loss is the mean squared difference over ``block`` (rows and
    columns of g' compared; default all), as in the paper's Eq. 19–20."""

    def objective(model, x, y=None):
        xr = x.detach().requires_grad_(True)
        with torch.enable_grad():
            new = transform(model, xr)
            if not isinstance(new, torch.Tensor) or new.dim() != 2 or new.shape[0] != x.shape[0]:
                raise DataError(f"transform must return new coordinates (batch, d'), got "
                                f"{tuple(getattr(new, 'shape', ()))}")
            rows = [torch.autograd.grad(new[:, k].sum(), xr, create_graph=True)[0]
                    for k in range(new.shape[1])]
        J = torch.stack(rows, dim=1)
        if J.shape[1] != J.shape[2]:
            raise DataError(f"transform must keep the dimension ({x.shape[1]}), got "
                            f"{J.shape[1]}")
        Jinv = torch.linalg.inv(J)
        gx = g(x)
        if gx.shape != J.shape:
            raise DataError(f"g must return (batch, {J.shape[1]}, {J.shape[1]}), got "
                            f"{tuple(gx.shape)}")
        g_new = Jinv.transpose(1, 2) @ gx @ Jinv
        want = (target(x) if target is not None
                else torch.eye(J.shape[1], dtype=x.dtype, device=x.device).expand_as(g_new))
        idx = block if block is not None else slice(None)
        diff = (g_new - want)[:, idx][:, :, idx]
        return (diff ** 2).mean()

    return objective
