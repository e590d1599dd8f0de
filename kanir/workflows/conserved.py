"""Every functionally independent conserved quantity of ``dz/dt = field(z)`` (paper §5.1).

One KAN per quantity is trained with the normalised-gradient objective
(:func:`kanir.science.objectives.conserved_quantity`); the n-th is also penalised for the
alignment of its gradient with the span of the gradients already found, so it cannot be a
function of them. Each model is then made symbolic (auto_symbolic), its formula normalised in
scale and offset and snapped (:func:`kanir.symbolic.snap.snap_scale_free`), and sympy checks
that ``field · ∇H`` simplifies to 0.

Found while making it reliable (1-D oscillator, [2,1] KAN, LBFGS, 50 steps, 1000 samples):
with fit's default grid updates the objective stalls at ~0.07 (seeds 0, 1) — updating the
grid to the spline's inputs reshapes the spline mid-descent; without them seeds 0 and 1 reach
1e-10 and 1e-31, while seed 2 stays at 0.145 (a local minimum) and Adam (lr 0.01) stays at
0.13-0.17. So training runs without grid updates and takes the best of a few seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field

import sympy
import torch

from kanir.errors import KanirError
from kanir.model.kan import KAN
from kanir.science.derivatives import jacobian
from kanir.science.objectives import conserved_quantity
from kanir.symbolic.snap import snap_scale_free

__all__ = ["ConservedQuantity", "conserved_quantities", "independence_penalty", "is_conserved"]

#: auto_symbolic's library for conserved quantities: polynomials first, a few transcendentals.
DEFAULT_LIB = ("x", "x^2", "x^3", "x^4", "sin", "cos", "exp")


@dataclass
class ConservedQuantity:
    """One conserved quantity: the exact ``formula`` (sympy, normalised in scale and offset),
    the trained (symbolic) ``model``, its final training ``objective`` and ``verified`` (sympy
    shows ``field · ∇formula == 0``)."""

    formula: sympy.Expr
    model: object
    objective: float
    verified: bool
    seed: int = 0
    history: dict = dc_field(default_factory=dict, repr=False)


def is_conserved(formula: sympy.Expr, symbols: Sequence[sympy.Symbol],
                 field_exprs: Sequence[sympy.Expr]) -> bool:
    """Does ``sum_i field_i · ∂formula/∂z_i`` simplify to exactly 0 (and formula is not
    constant)?"""
    grads = [sympy.diff(formula, s) for s in symbols]
    if all(g == 0 for g in grads):
        return False
    return sympy.simplify(sum(f * g for f, g in zip(field_exprs, grads))) == 0


def independence_penalty(previous: list[Callable]) -> Callable:
    """A term ``(model, x) -> scalar``: the mean squared cosine between ∇H of the model and the
    span of the gradients of ``previous`` (functions x -> (batch, dim) gradients) at x. Zero
    when ∇H is orthogonal to all of them; one when H is (locally) a function of them."""

    def penalty(model, x):
        grad = jacobian(model, x, create_graph=True)[:, 0, :]
        if not previous:
            return grad.sum() * 0
        span = torch.stack([g(x) for g in previous], dim=2)          # (batch, dim, k)
        q, _ = torch.linalg.qr(span)
        proj = (q.transpose(1, 2) @ grad[..., None])[..., 0]         # (batch, k)
        return ((proj ** 2).sum(1) / ((grad ** 2).sum(1) + 1e-12)).mean()

    return penalty


_TORCH = {"sin": torch.sin, "cos": torch.cos, "exp": torch.exp, "log": torch.log,
          "sqrt": torch.sqrt, "tanh": torch.tanh, "Abs": torch.abs}


def _field_from_exprs(exprs: list[sympy.Expr], symbols: list[sympy.Symbol]) -> Callable:
    """A torch field z -> dz/dt from sympy expressions over ``symbols``."""
    fns = [sympy.lambdify(symbols, e, [_TORCH]) for e in exprs]

    def field(z):
        cols = [z[:, i] for i in range(z.shape[1])]
        return torch.stack([torch.as_tensor(_call(f, e, cols), dtype=z.dtype).expand(z.shape[0])
                            for f, e in zip(fns, exprs)], dim=1)

    return field


def _call(fn, expr, cols):
    return fn(*cols) if not expr.is_number else float(expr)


def _gradient_of(formula: sympy.Expr, symbols: list[sympy.Symbol]) -> Callable:
    """x -> (batch, dim) gradient of an exact formula (the span an independent H avoids)."""
    return _field_from_exprs([sympy.diff(formula, s) for s in symbols], symbols)


def _model_gradient(model) -> Callable:
    return lambda x: jacobian(model, x)[:, 0, :].detach()


def _train(field, data, width, grid, seed, steps, lamb, penalty, weight, dtype, normalise):
    model = KAN(width, grid=grid, k=3, seed=seed, dtype=dtype, device="cpu")
    base = conserved_quantity(field, normalise=normalise)

    def objective(m, x, y=None):
        value = base(m, x, y)
        return value + weight * penalty(m, x) if weight else value

    hist = model.fit(data, objective=objective, steps=steps, lamb=lamb, update_grid=False,
                     progress=False)
    return model, hist


def conserved_quantities(field: Callable, dim: int, max_n: int | None = None,
                         names: Sequence[str] | None = None, ranges=(-1.0, 1.0),
                         seed: int = 0, steps: int = 50, n_samples: int = 300,
                         width: Sequence | None = None, grid: int = 5, seeds: int = 3,
                         lamb: float = 0.0, independence: float = 1.0,
                         lib: Sequence[str] = DEFAULT_LIB, tol: float = 1e-6,
                         normalise: str = "batch",
                         log: Callable | None = None) -> list[ConservedQuantity]:
    """The functionally independent conserved quantities of ``dz/dt = field(z)`` that KANs of
    ``width`` (default ``[dim, 1]``) find, at most ``max_n`` (default ``dim - 1``).

    ``field``: one expression (sympy or string over ``names``) per variable, e.g.
    ``["p", "-x"]`` — then every formula is checked exactly — or a function mapping a
    (batch, dim) tensor to one of the same shape (then ``verified`` stays False). For each
    quantity ``seeds`` KANs (seeds ``seed, seed+1, ...``) are trained for ``steps`` LBFGS steps
    on ``n_samples`` points uniform in ``ranges`` (one (lo, hi) pair or one per variable), with
    weight ``independence`` on :func:`independence_penalty`; the one with the lowest objective
    is kept if below ``tol`` (else the search stops), made symbolic with ``lib`` and snapped
    scale-free. ``normalise``: the objective's gradient normalisation
    (see :func:`~kanir.science.objectives.conserved_quantity`; "batch" converges from every
    seed tried on the oscillators, "sample" is the paper's). ``log``: a function called with progress lines
    (e.g. print).
    """
    if not isinstance(dim, int) or dim < 2:
        raise KanirError(f"conserved_quantities: dim must be an integer >= 2, got {dim!r}")
    max_n = dim - 1 if max_n is None else max_n
    names = list(names) if names is not None else [f"x_{i + 1}" for i in range(dim)]
    if len(names) != dim:
        raise KanirError(f"conserved_quantities: {len(names)} names for dim={dim}")
    symbols = list(sympy.symbols(names, real=True))
    field, field_exprs = _read_field(field, symbols)
    lo_hi = torch.tensor(ranges, dtype=torch.float64).reshape(-1, 2).expand(dim, 2)
    gen = torch.Generator().manual_seed(seed)

    def sample(n):
        u = torch.rand(n, dim, generator=gen, dtype=torch.float64)
        return lo_hi[:, 0] + u * (lo_hi[:, 1] - lo_hi[:, 0])

    data = {"train_input": sample(n_samples), "test_input": sample(max(n_samples // 4, 10))}
    say = log or (lambda _: None)
    width = list(width) if width is not None else [dim, 1]
    found: list[ConservedQuantity] = []
    grads: list[Callable] = []
    for n in range(max_n):
        penalty = independence_penalty(list(grads))
        best = None
        for s in range(seed, seed + seeds):
            model, hist = _train(field, data, width, grid, s, steps, lamb, penalty,
                                 independence if grads else 0.0, torch.float64,
                                 normalise)
            value = hist["train_objective"][-1]
            say(f"quantity {n + 1}, seed {s}: objective {value:.3g}")
            if best is None or value < best[2]:
                best = (model, hist, value, s)
            if value < tol * 1e-3:
                break
        model, hist, value, s = best
        if not value < tol:
            say(f"quantity {n + 1}: no seed reached objective {tol:g}; stopping")
            break
        q = _symbolify(model, data["train_input"], symbols, field_exprs, lib, value, s, hist)
        say(f"quantity {n + 1}: {q.formula}  (verified: {q.verified})")
        found.append(q)
        grads.append(_gradient_of(q.formula, symbols) if q.verified else _model_gradient(model))
    return found


def _read_field(field, symbols):
    """(torch field, sympy expressions or []) from a function or from expressions/strings."""
    if callable(field):
        return field, []
    if isinstance(field, str) or not isinstance(field, Sequence):
        raise KanirError(f"conserved_quantities needs the vector field as a function z -> dz/dt "
                         f"or as one expression per variable, got {field!r}")
    if len(field) != len(symbols):
        raise KanirError(f"conserved_quantities: the field has {len(field)} components for "
                         f"{len(symbols)} variables")
    local = {str(s): s for s in symbols}
    try:
        exprs = [sympy.sympify(f, locals=local) for f in field]
    except (sympy.SympifyError, TypeError) as e:
        raise KanirError(f"conserved_quantities: cannot read the field {field!r}: {e}") from None
    extra = set().union(*(e.free_symbols for e in exprs)) - set(symbols)
    if extra:
        raise KanirError(f"conserved_quantities: the field uses {sorted(map(str, extra))}, "
                         f"not among the variables {[str(s) for s in symbols]}")
    return _field_from_exprs(exprs, symbols), exprs


def _symbolify(model, x, symbols, field_exprs, lib, value, seed, hist) -> ConservedQuantity:
    """auto_symbolic, then the formula normalised and snapped, checked exactly."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.auto_symbolic(lib=list(lib), verbose=0, x=x)
        expr = model.formula(var=symbols, snap=False, floating_digit=None)[0]
    check = (lambda c: is_conserved(c, symbols, field_exprs)) if field_exprs else None
    formula = snap_scale_free(expr, check=check)
    verified = bool(check and check(formula))
    return ConservedQuantity(formula, model, value, verified, seed, hist)
