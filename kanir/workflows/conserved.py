"""Every functionally independent conserved quantity of ``dz/dt = field(z)`` (paper §5.1).

For each quantity KANs of a few widths (additive ``[dim, 1]`` first, then ``[dim, [0, 2], 1]``
with two multiplication nodes and linear edges) are trained with the normalised-gradient
objective (:func:`kanir.science.objectives.conserved_quantity`) plus a hinge penalty that
charges only near-dependence on the quantities already found
(:func:`independence_penalty`). A model below the objective tolerance is made symbolic
(auto_symbolic), its formula normalised in scale and offset and snapped
(:func:`kanir.symbolic.snap.snap_scale_free`); it is kept when sympy shows that
``field · ∇H`` is 0 (:func:`is_conserved`) and the gradients of all found quantities have full
rank (:func:`independent`).

Found while making it reliable. 1-D oscillator ([2,1] KAN, LBFGS, 50 steps): with fit's
default grid updates the objective stalls at ~0.07, so training runs without them; the
per-sample normalisation of the paper traps some seeds at 0.07-0.15, the batch one ("batch")
does not. 2-D oscillator: the old penalty (mean squared cosine with the earlier gradients)
charged the true x·py − y·px 0.47, so the third quantity never came; the hinge charges it 0.
A [4,[0,2],1] KAN with cubic splines reached 1e-8 on it, but its auto_symbolic formula (37
terms, nested exp/cos, floats) is not conserved, and sympy.simplify of its ``field · ∇H``
ran for over 900 s: is_conserved now rejects such a formula numerically first, and the mult
KAN uses linear edges (:data:`MULT_KAN`), which reach ~1e-31 and snap exactly.
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
from kanir.symbolic.snap import normalise_scale, snap_scale_free

__all__ = ["MULT_KAN", "ConservedQuantity", "conserved_quantities", "independence_penalty",
           "independent", "is_conserved", "linear_edges", "reduce_against",
           "residual_fraction"]

#: auto_symbolic's library for conserved quantities: polynomials first, a few transcendentals.
DEFAULT_LIB = ("x", "x^2", "x^3", "x^4", "sin", "cos", "exp")


@dataclass
class ConservedQuantity:
    """One conserved quantity: the exact ``formula`` (sympy, normalised in scale and offset),
    the trained (symbolic) ``model``, its final training ``objective``, ``verified`` (sympy
    shows ``field · ∇formula == 0``), the ``width`` and ``seed`` that found it, and the
    ``tries`` (models trained) and ``seconds`` it took."""

    formula: sympy.Expr
    model: object
    objective: float
    verified: bool
    seed: int = 0
    history: dict = dc_field(default_factory=dict, repr=False)
    width: list | None = None
    tries: int = 0
    seconds: float = 0.0


def is_conserved(formula: sympy.Expr, symbols: Sequence[sympy.Symbol],
                 field_exprs: Sequence[sympy.Expr]) -> bool:
    """Does ``sum_i field_i · ∂formula/∂z_i`` simplify to exactly 0 (and formula is not
    constant)? A numeric test at a few points comes first, so a formula that is not conserved
    never reaches sympy.simplify (which ran for >900 s on a 37-term candidate with nested
    exp/cos and floats); sympy.expand settles polynomials, simplify the rest within
    :data:`MAX_CHECK_OPS` operations (a larger formula counts as not shown conserved)."""
    grads = [sympy.diff(formula, s) for s in symbols]
    if all(g == 0 for g in grads):
        return False
    terms = [f * g for f, g in zip(field_exprs, grads)]
    if not _numerically_zero(terms, symbols):
        return False
    total = sympy.expand(sum(terms))
    if total == 0:
        return True
    if sympy.count_ops(total) > MAX_CHECK_OPS:
        return False
    return sympy.simplify(total) == 0


#: is_conserved's operation budget for sympy.simplify of field · ∇H after expansion
MAX_CHECK_OPS = 300


def _numerically_zero(terms, symbols, n: int = 16, rtol: float = 1e-9) -> bool:
    """Whether ``sum(terms)`` vanishes (relative to ``sum |terms|``) at ``n`` fixed points in
    [-1, 1]^dim; points where it is not finite are skipped (then the exact test decides)."""
    import math
    import random

    fn = sympy.lambdify(symbols, terms, "mpmath")
    rng = random.Random(12345)
    for _ in range(n):
        point = [rng.uniform(-1, 1) for _ in symbols]
        try:
            vals = [complex(v) for v in fn(*point)]
        except (ZeroDivisionError, OverflowError, ValueError, TypeError):
            continue
        if not all(math.isfinite(v.real) and math.isfinite(v.imag) for v in vals):
            continue
        if abs(sum(vals)) > rtol * (sum(abs(v) for v in vals) + 1e-300):
            return False
    return True


def independence_penalty(previous: list[Callable], threshold: float = 0.2) -> Callable:
    """A term ``(model, x) -> scalar`` that charges only near-dependence: with ``r`` the part of
    ∇H outside the span of the gradients of ``previous`` (functions x -> (batch, dim)
    gradients), ``r² = mean|∇H − proj ∇H|² / mean|∇H|²`` over the batch, it is
    ``(relu(threshold − r) / threshold)²``: one when H is (locally) a function of them, zero
    once ``r >= threshold``. A plain alignment penalty would charge the true quantity too
    (x·py − y·px has mean squared cosine 0.47 with the gradients of x²+px², y²+py²)."""
    if not 0 < threshold <= 1:
        raise KanirError(f"independence_penalty: threshold must be in (0, 1], got {threshold!r}")

    def penalty(model, x):
        grad = jacobian(model, x, create_graph=True)[:, 0, :]
        if not previous:
            return grad.sum() * 0
        return (torch.relu(threshold - residual_fraction(grad, previous, x)) / threshold) ** 2

    return penalty


def residual_fraction(grad: torch.Tensor, previous: list[Callable], x: torch.Tensor):
    """``r``: the root of mean|∇H − proj ∇H|² / mean|∇H|², the projection onto the span of the
    ``previous`` gradients at each point (0: H is a function of them; 1: orthogonal)."""
    span = torch.stack([g(x) for g in previous], dim=2)              # (batch, dim, k)
    q, _ = torch.linalg.qr(span)
    rest = grad - (q @ (q.transpose(1, 2) @ grad[..., None]))[..., 0]
    return torch.sqrt((rest ** 2).sum(1).mean() / ((grad ** 2).sum(1).mean() + 1e-30) + 1e-12)


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


#: KAN settings for widths with multiplication nodes; :func:`_train` also zeroes every
#: edge's (frozen) spline scale, so each edge is ``w·x`` and the model a sum of products of
#: linear forms, a quadratic polynomial. With fit's defaults (grid 5, cubic, silu) a
#: [4,[0,2],1] KAN reached 1e-8 on x·py − y·px but its curved edges gave auto_symbolic a
#: 37-term formula that is not conserved; with linear edges it reaches ~1e-31, exactly.
MULT_KAN = {"grid": 1, "k": 1, "base_fun": "identity", "noise_scale": 0.0,
            "sp_trainable": False}


def linear_edges(model: KAN) -> KAN:
    """Switch off every spline of ``model`` (scale 0, frozen): with an identity base each edge
    is then ``w·x``. Returns the model."""
    with torch.no_grad():
        for layer in model.net.layers:
            layer.scale_sp.zero_()
            layer.scale_sp.requires_grad_(False)
    return model


def _has_mult(width) -> bool:
    return any(isinstance(w, (list, tuple)) and len(w) > 1 and w[1] for w in width)


def _train(field, data, width, grid, seed, steps, lamb, penalty, weight, dtype, normalise):
    options = dict(MULT_KAN) if _has_mult(width) else {"grid": grid, "k": 3}
    model = KAN(width, seed=seed, dtype=dtype, device="cpu", **options)
    if _has_mult(width):
        linear_edges(model)
    base = conserved_quantity(field, normalise=normalise)

    def objective(m, x, y=None):
        value = base(m, x, y)
        return value + weight * penalty(m, x) if weight else value

    hist = model.fit(data, objective=objective, steps=steps, lamb=lamb, update_grid=False,
                     progress=False)
    return model, hist


def independent(formulas: Sequence[sympy.Expr], symbols: Sequence[sympy.Symbol],
                n: int = 8, rtol: float = 1e-8) -> bool:
    """Whether ``formulas`` are functionally independent: their stacked gradients have full
    rank (numerically, relative tolerance ``rtol``) at one of ``n`` fixed points in [-1, 1]^dim."""
    import random

    if not formulas:
        return True
    grads = sympy.lambdify(list(symbols), [[sympy.diff(f, s) for s in symbols]
                                           for f in formulas], "math")
    rng = random.Random(54321)
    for _ in range(n):
        try:
            m = torch.tensor(grads(*[rng.uniform(-1, 1) for _ in symbols]), dtype=torch.float64)
        except (ZeroDivisionError, OverflowError, ValueError, TypeError):
            continue
        if not torch.isfinite(m).all():
            continue
        sv = torch.linalg.svdvals(m.reshape(len(formulas), len(symbols)))
        if len(sv) == len(formulas) and sv[-1] > rtol * sv[0]:
            return True
    return False


def reduce_against(formula: sympy.Expr, previous: Sequence[sympy.Expr]) -> sympy.Expr:
    """A polynomial ``formula`` with the leading term of each polynomial in ``previous``
    eliminated (one step of row reduction: ``formula − c·P``), normalised in scale. A linear
    combination of conserved quantities is conserved, so this only tidies the result
    (``x² + px² + 2(y² + py²)`` against ``x² + px²`` gives ``y² + py²``); anything not a
    polynomial is returned unchanged."""
    out = sympy.expand(formula)
    symbols = sorted(out.free_symbols | set().union(*(p.free_symbols for p in previous)), key=str)
    if not symbols or not out.is_polynomial(*symbols):
        return formula
    for prev in previous:
        if not sympy.expand(prev).is_polynomial(*symbols):
            continue
        poly = sympy.Poly(prev, *symbols)
        lead = poly.monoms()[0]
        c = sympy.Poly(out, *symbols).coeff_monomial(lead)
        if c != 0:
            out = sympy.expand(out - c / poly.coeff_monomial(lead) * prev)
    return normalise_scale(out)


def conserved_quantities(field: Callable, dim: int, max_n: int | None = None,
                         names: Sequence[str] | None = None, ranges=(-1.0, 1.0),
                         seed: int = 0, steps: int = 50, n_samples: int = 300,
                         widths: Sequence | None = None, grid: int = 5, seeds: int = 3,
                         lamb: float = 0.0, independence: float = 1.0,
                         lib: Sequence[str] = DEFAULT_LIB, tol: float = 1e-6,
                         normalise: str = "batch", threshold: float = 0.2,
                         log: Callable | None = None) -> list[ConservedQuantity]:
    """The functionally independent conserved quantities of ``dz/dt = field(z)`` that KANs
    find, at most ``max_n`` (default and cap ``dim - 1``: no more can be independent).

    ``field``: one expression (sympy or string over ``names``) per variable, e.g.
    ``["p", "-x"]`` — then every formula is checked exactly — or a function mapping a
    (batch, dim) tensor to one of the same shape (then ``verified`` stays False and the first
    model below ``tol`` is kept). For each quantity the KAN widths ``widths`` (default
    ``[[dim, 1], [dim, [0, 2], 1]]``: additive first, then two multiplication nodes, built
    with :data:`MULT_KAN`) are tried in order, each from ``seeds`` seeds (``seed, seed+1,
    ...``), trained for ``steps`` LBFGS steps on ``n_samples`` points uniform in ``ranges``
    (one (lo, hi) pair or one per variable) with weight ``independence`` on
    :func:`independence_penalty` (``threshold``); the first model below objective ``tol``
    whose formula (auto_symbolic with ``lib``, scale-free snapping) is verified and
    independent of those found is kept. No model found: the search stops. ``normalise``: the
    objective's gradient normalisation (see
    :func:`~kanir.science.objectives.conserved_quantity`; "batch" converges from every seed
    tried on the oscillators, "sample" is the paper's). ``log``: called with progress lines.
    """
    import time

    if not isinstance(dim, int) or dim < 2:
        raise KanirError(f"conserved_quantities: dim must be an integer >= 2, got {dim!r}")
    if max_n is not None and (not isinstance(max_n, int) or max_n < 1):
        raise KanirError(f"conserved_quantities: max_n must be a positive integer, got {max_n!r}")
    max_n = dim - 1 if max_n is None else min(max_n, dim - 1)
    names = list(names) if names is not None else [f"x_{i + 1}" for i in range(dim)]
    if len(names) != dim:
        raise KanirError(f"conserved_quantities: {len(names)} names for dim={dim}")
    widths = [list(w) for w in widths] if widths is not None else [[dim, 1], [dim, [0, 2], 1]]
    for w in widths:
        if len(w) < 2 or w[0] != dim or w[-1] != 1:
            raise KanirError(f"conserved_quantities: each width must go from dim={dim} inputs "
                             f"to 1 output, got {w!r}")
    symbols = list(sympy.symbols(names, real=True))
    field, field_exprs = _read_field(field, symbols)
    lo_hi = torch.tensor(ranges, dtype=torch.float64).reshape(-1, 2).expand(dim, 2)
    gen = torch.Generator().manual_seed(seed)

    def sample(n):
        u = torch.rand(n, dim, generator=gen, dtype=torch.float64)
        return lo_hi[:, 0] + u * (lo_hi[:, 1] - lo_hi[:, 0])

    data = {"train_input": sample(n_samples), "test_input": sample(max(n_samples // 4, 10))}
    say = log or (lambda _: None)
    found: list[ConservedQuantity] = []
    grads: list[Callable] = []
    for n in range(max_n):
        penalty = independence_penalty(list(grads), threshold)
        start, tries, q = time.time(), 0, None
        for width in widths:
            for s in range(seed, seed + seeds):
                tries += 1
                model, hist = _train(field, data, width, grid, s, steps, lamb, penalty,
                                     independence if grads else 0.0, torch.float64, normalise)
                value = hist["train_objective"][-1]
                say(f"quantity {n + 1}, width {width}, seed {s}: objective {value:.3g} "
                    f"({time.time() - start:.0f} s)")
                if not value < tol:
                    continue
                cand = _symbolify(model, data["train_input"], symbols, field_exprs, lib, value,
                                  s, hist, [f.formula for f in found if f.verified])
                ok = independent([f.formula for f in found] + [cand.formula], symbols)
                say(f"quantity {n + 1}: {cand.formula}  (verified: {cand.verified}, "
                    f"independent: {ok})")
                if ok and (cand.verified or not field_exprs):
                    q = cand
                    break
            if q is not None:
                break
        if q is None:
            say(f"quantity {n + 1}: no width and seed gave a verified, independent quantity; "
                f"stopping")
            break
        q.width, q.tries, q.seconds = width, tries, round(time.time() - start, 1)
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


def _symbolify(model, x, symbols, field_exprs, lib, value, seed, hist,
               previous=()) -> ConservedQuantity:
    """auto_symbolic, then the formula normalised and snapped, checked exactly and reduced
    against the ``previous`` exact quantities (:func:`reduce_against`)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.auto_symbolic(lib=list(lib), verbose=0, x=x)
        expr = model.formula(var=symbols, snap=False, floating_digit=None)[0]
    check = (lambda c: is_conserved(c, symbols, field_exprs)) if field_exprs else None
    formula = snap_scale_free(expr, check=check)
    verified = bool(check and check(formula))
    if verified and previous:
        reduced = reduce_against(formula, previous)
        if reduced != formula and check(reduced):
            formula = reduced
    return ConservedQuantity(formula, model, value, verified, seed, hist)
