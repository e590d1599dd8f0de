"""kanir.workflows.conserved: conserved quantities found, made exact, checked; scale-free snap."""

from __future__ import annotations

import pytest
import sympy
import torch

import kanir
from kanir.errors import KanirError
from kanir.science.objectives import conserved_quantity
from kanir.symbolic.snap import normalise_scale, snap_scale_free
from kanir.workflows.conserved import conserved_quantities, independence_penalty, is_conserved

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


def test_independence_penalty_measures_alignment_with_known_gradients():
    z = torch.rand(50, 2, generator=torch.Generator().manual_seed(1), dtype=F64) * 2 - 1
    h = kanir.KAN.from_graph(kanir.compile("x**2 + p**2", variables=["x", "p"]), device="cpu")
    same = lambda t: torch.stack([2 * t[:, 0], 2 * t[:, 1]], 1)
    orthogonal = lambda t: torch.stack([t[:, 1], -t[:, 0]], 1)
    # 1e-9, not 1e-12: the eps of 1e-12 added to |∇H|² near the origin
    assert float(independence_penalty([same])(h, z).detach()) == pytest.approx(1.0, abs=1e-9)
    assert float(independence_penalty([orthogonal])(h, z).detach()) == pytest.approx(0, abs=1e-12)
    assert float(independence_penalty([])(h, z).detach()) == 0


def test_the_1d_oscillator_gives_its_energy_exactly():
    found = conserved_quantities(["p", "-x"], 2, names=["x", "p"], steps=30, n_samples=200,
                                 seeds=1)
    assert len(found) == 1
    q = found[0]
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


@pytest.mark.slow
def test_the_2d_oscillator_gives_two_independent_energies():
    found = conserved_quantities([str(f) for f in OSC2], 4, max_n=2, names=["x", "y", "px", "py"],
                                 steps=50, n_samples=300, seeds=1)
    assert [q.verified for q in found] == [True, True]
    formulas = [q.formula for q in found]
    assert all(_conserved_2d(f) for f in formulas)
    grads = sympy.Matrix([[sympy.diff(f, s) for s in (x, y, px, py)] for f in formulas])
    assert grads.rank() == 2                                       # functionally independent
    assert set(formulas) == {x ** 2 + px ** 2, y ** 2 + py ** 2}
