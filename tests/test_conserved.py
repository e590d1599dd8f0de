"""kanir.workflows.conserved: conserved quantities found, made exact, checked; scale-free snap."""

from __future__ import annotations

import pytest
import sympy
import torch

import kanir
from kanir.errors import KanirError
from kanir.science.objectives import conserved_quantity
from kanir.symbolic.snap import normalise_scale, snap_scale_free
from kanir.workflows.conserved import (
    MULT_KAN,
    conserved_quantities,
    independence_penalty,
    independent,
    is_conserved,
    linear_edges,
    reduce_against,
    residual_fraction,
)

F64 = torch.float64
x, y, px, py = sympy.symbols("x y px py", real=True)
OSC2 = [px, py, -x, -y]


def _conserved_2d(c):
    return is_conserved(c, [x, y, px, py], OSC2)


def test_scale_free_snap_normalises_and_snaps_only_what_is_justified():
    learned = sympy.Float(0.002702) * px * py + sympy.Float(0.002661) * x * y + 0.0131
    assert normalise_scale(learned) == px * py + sympy.Float(0.002661 / 0.002702) * x * y
    # without a check the 1.5% ratio is not snapped: the data do not justify it
    assert snap_scale_free(learned) == px * py + sympy.Float("0.9848", 4) * x * y
    # px*py + x*y is conserved exactly: the check justifies the exact ratio
    assert snap_scale_free(learned, check=_conserved_2d) == px * py + x * y
    # a ratio the check rejects stays a float
    wrong = sympy.Float(0.002702) * px * py + sympy.Float(0.002661) * x * px
    assert snap_scale_free(wrong, check=_conserved_2d) == px * py + sympy.Float("0.9848", 4) * x * px
    # small leftovers are dropped when the check accepts the rest
    noisy = 0.5 * x ** 2 + 0.5 * px ** 2 + sympy.Float(0.004) * y ** 2
    assert snap_scale_free(noisy, check=_conserved_2d) == x ** 2 + px ** 2
    assert normalise_scale(sympy.Float(3.0)) == 0


def test_is_conserved_is_exact():
    assert _conserved_2d(x * py - y * px)
    assert _conserved_2d(sympy.sin(x ** 2 + px ** 2))
    assert not _conserved_2d(x * py + y * px)
    assert not _conserved_2d(sympy.Integer(5))          # constants do not count


def test_batch_normalised_objective_is_zero_exactly_on_a_conserved_quantity():
    field = lambda z: torch.stack([z[:, 1], -z[:, 0]], dim=1)
    z = torch.rand(100, 2, generator=torch.Generator().manual_seed(0), dtype=F64) * 2 - 1
    exact = kanir.KAN.from_graph(kanir.compile("(x**2 + p**2)/2", variables=["x", "p"]),
                                 device="cpu")
    wrong = kanir.KAN.from_graph(kanir.compile("x**2", variables=["x", "p"]), device="cpu")
    loss = conserved_quantity(field, normalise="batch")
    assert float(loss(exact, z).detach()) < 1e-28
    # (x², p): f·∇H = 2xp, |∇H|² = 4x²  ->  mean(x²p²)/mean(x²)
    want = float((z[:, 0] ** 2 * z[:, 1] ** 2).mean() / (z[:, 0] ** 2).mean())
    assert float(loss(wrong, z).detach()) == pytest.approx(want, rel=1e-10)
    with pytest.raises(KanirError, match="normalise must be 'sample' or 'batch'"):
        conserved_quantity(field, normalise="global")


def test_independence_penalty_charges_only_near_dependence():
    z = torch.rand(50, 2, generator=torch.Generator().manual_seed(1), dtype=F64) * 2 - 1
    h = kanir.KAN.from_graph(kanir.compile("x**2 + p**2", variables=["x", "p"]), device="cpu")
    same = lambda t: torch.stack([2 * t[:, 0], 2 * t[:, 1]], 1)
    orthogonal = lambda t: torch.stack([t[:, 1], -t[:, 0]], 1)
    # r = sqrt(0 + 1e-12) = 1e-6 for a dependent H: (0.2 - 1e-6)² / 0.2² = 1 - 1e-5
    assert float(independence_penalty([same])(h, z).detach()) == pytest.approx(1 - 1e-5, rel=1e-9)
    assert float(independence_penalty([orthogonal])(h, z).detach()) == 0
    assert float(independence_penalty([])(h, z).detach()) == 0
    with pytest.raises(KanirError, match=r"threshold must be in \(0, 1\], got 0"):
        independence_penalty([same], threshold=0)


def test_the_angular_momentum_is_not_charged_against_the_two_energies():
    # x·py − y·px has a large part of its gradient along ∇(x²+px²), ∇(y²+py²) at most points
    # (the old mean-squared-cosine penalty charged it 0.47), but over the batch r is ~0.71
    z = torch.rand(400, 4, generator=torch.Generator().manual_seed(2), dtype=F64) * 2 - 1
    zx, zy, zpx, zpy = z.T
    h3 = kanir.KAN.from_graph(kanir.compile("x*py - y*px", variables=["x", "y", "px", "py"]),
                              device="cpu")
    e1 = lambda t: torch.stack([2 * t[:, 0], 0 * t[:, 0], 2 * t[:, 2], 0 * t[:, 0]], 1)
    e2 = lambda t: torch.stack([0 * t[:, 0], 2 * t[:, 1], 0 * t[:, 0], 2 * t[:, 3]], 1)
    assert float(independence_penalty([e1, e2])(h3, z).detach()) == 0
    g = torch.stack([zpy, -zpx, -zy, zx], 1)
    # |proj g|² = (x·py − y·px)²(1/(x²+px²) + 1/(y²+py²)), |g|² = x²+y²+px²+py²
    proj = (zx * zpy - zy * zpx) ** 2 * (1 / (zx ** 2 + zpx ** 2) + 1 / (zy ** 2 + zpy ** 2))
    sq = (g ** 2).sum(1)
    want = ((sq - proj).mean() / sq.mean()).sqrt()
    assert float(residual_fraction(g, [e1, e2], z)) == pytest.approx(float(want), rel=1e-10)


def test_independence_is_the_rank_of_the_stacked_gradients():
    assert independent([x ** 2 + px ** 2, y ** 2 + py ** 2, x * py - y * px], [x, y, px, py])
    assert independent([], [x, y, px, py])
    # a function of the first quantity, and the Fradkin term (x·py−y·px)² + (xy+px·py)² = H1·H2
    assert not independent([x ** 2 + px ** 2, sympy.sin(x ** 2 + px ** 2)], [x, y, px, py])
    h1, h2, h3 = x ** 2 + px ** 2, y ** 2 + py ** 2, x * py - y * px
    assert not independent([h1, h2, h3, (x * y + px * py) ** 2], [x, y, px, py])


def test_reduce_against_eliminates_earlier_quantities_and_keeps_it_conserved():
    h1, h2 = x ** 2 + px ** 2, y ** 2 + py ** 2
    seed0 = (-2 * h1 / 11 - 7 * h2 / 8 + (x * y + px * py)
             + sympy.Rational(11, 12) * (px * y - py * x))
    reduced = reduce_against(sympy.expand(seed0), [h1, h2])
    assert reduced == px * py + x * y + sympy.Rational(11, 12) * (px * y - py * x)
    assert _conserved_2d(reduced)
    assert reduce_against(h1 + 2 * h2, [h1]) == h2
    assert reduce_against(sympy.sin(h1) + h2, [h1]) == sympy.sin(h1) + h2   # not a polynomial


def test_is_conserved_rejects_a_large_float_formula_numerically():
    # the kind of auto_symbolic result that kept sympy.simplify busy for > 900 s
    c = [sympy.Float(v) for v in (0.54, 0.33, 1.86, 0.67, 0.57, 0.59, 0.9, 10.0)]
    big = (sympy.exp(c[7] * (0.39 * py - 1.18 * x + y * sympy.exp(-c[6] * px))
                     * (sympy.sin(c[2] * py - c[3]) - sympy.cos(c[4] * y + c[5])))
           + (px - 0.47 * x - 0.05 * (py + 0.53) ** 2) * (0.38 * px + sympy.cos(c[0] * y + c[1])))
    assert not _conserved_2d(big)
    assert _conserved_2d(sympy.exp(x * py - y * px) * (x ** 2 + px ** 2))


def test_a_mult_width_uses_linear_edges():
    assert MULT_KAN["base_fun"] == "identity" and MULT_KAN["noise_scale"] == 0
    z = torch.rand(20, 4, generator=torch.Generator().manual_seed(3), dtype=F64) * 2 - 1
    model = linear_edges(kanir.KAN([4, [0, 2], 1], seed=0, dtype=F64, device="cpu", **MULT_KAN))
    # a sum of products of linear (affine) forms: a quadratic polynomial, whose second
    # differences along any direction are constant
    d = torch.rand(1, 4, generator=torch.Generator().manual_seed(4), dtype=F64)
    f = lambda t: model(z + 3 * t * d).detach()[:, 0]        # beyond the grid too
    second = f(2.0) - 2 * f(1.0) + f(0.0)
    assert torch.allclose(second, f(1.0) - 2 * f(0.0) + f(-1.0), rtol=0, atol=1e-12)


def test_the_1d_oscillator_gives_its_energy_exactly():
    # max_n is capped at dim - 1 = 1: two variables have at most one independent quantity
    found = conserved_quantities(["p", "-x"], 2, max_n=5, names=["x", "p"], steps=30,
                                 n_samples=200, seeds=1)
    assert len(found) == 1
    q = found[0]
    assert q.width == [2, 1] and q.tries == 1 and q.seconds > 0
    xs, ps = sympy.symbols("x p", real=True)
    assert q.verified and q.objective < 1e-8
    assert sympy.simplify(q.formula - (xs ** 2 + ps ** 2)) == 0   # (x²+p²)/2 up to scale


def test_arguments_are_checked():
    with pytest.raises(KanirError, match="dim must be an integer >= 2"):
        conserved_quantities(["p"], 1)
    with pytest.raises(KanirError, match="2 names for dim=3"):
        conserved_quantities(["a", "b", "c"], 3, names=["x", "p"])
    with pytest.raises(KanirError, match="has 1 components for 2 variables"):
        conserved_quantities(["p"], 2, names=["x", "p"])
    with pytest.raises(KanirError, match=r"uses \['q'\]"):
        conserved_quantities(["q", "-x"], 2, names=["x", "p"])
    with pytest.raises(KanirError, match="as a function z -> dz/dt or as one expression"):
        conserved_quantities("p", 2)
    with pytest.raises(KanirError, match="max_n must be a positive integer, got 0"):
        conserved_quantities(["p", "-x"], 2, max_n=0)
    with pytest.raises(KanirError, match=r"from dim=2 inputs to 1 output, got \[3, 1\]"):
        conserved_quantities(["p", "-x"], 2, widths=[[3, 1]])


@pytest.mark.slow
def test_the_2d_oscillator_gives_three_independent_quantities():
    # 15-17 s on a quiet machine. The example's run: the additive KAN finds the two energies and
    # fails the third; the mult KAN (linear edges) finds a quadratic invariant outside them
    found = conserved_quantities([str(f) for f in OSC2], 4, max_n=3,
                                 names=["x", "y", "px", "py"], seeds=1)
    assert [q.verified for q in found] == [True, True, True]
    assert [q.width for q in found] == [[4, 1], [4, 1], [4, [0, 2], 1]]
    assert all(q.objective < 1e-6 for q in found)
    formulas = [q.formula for q in found]
    assert all(_conserved_2d(f) for f in formulas)
    assert formulas[:2] == [x ** 2 + px ** 2, y ** 2 + py ** 2]
    grads = sympy.Matrix([[sympy.diff(f, s) for s in (x, y, px, py)] for f in formulas])
    assert grads.rank() == 3                                       # functionally independent
    # the third: a combination of H3 = x·py − y·px and H4 = x·y + px·py (reduced against the
    # energies), not a function of the energies alone
    a, b = sympy.symbols("a b")
    sol = sympy.solve(sympy.Poly(formulas[2] - a * (x * py - y * px) - b * (x * y + px * py),
                                 x, y, px, py).coeffs(), [a, b], dict=True)
    assert sol and sol[0] != {a: 0, b: 0}
