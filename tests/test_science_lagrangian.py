"""§5.2 Lagrangians: the pendulum example finds L = q̇²/2 + cos q from accelerations, starting
from the compiled kinetic energy, and its Euler-Lagrange equation is exactly q̈ = -sin q."""

import importlib.util
import sys
from pathlib import Path

import pytest
import sympy
import torch

import kanir
from kanir.science.objectives import lagrangian


def _example():
    path = Path(__file__).resolve().parents[1] / "examples" / "science" / "lagrangian_pendulum.py"
    spec = importlib.util.spec_from_file_location("lagrangian_pendulum", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_euler_lagrange_of_the_true_lagrangian_is_minus_sin():
    lp = _example()
    q, qd = sympy.symbols("q qd")
    assert lp.euler_lagrange(qd**2 / 2 - (1 - sympy.cos(q)), q, qd) == -sympy.sin(q)
    assert lp.euler_lagrange(3 * qd**2 + 6 * sympy.cos(q) + 7, q, qd) == -sympy.sin(q)
    data = lp.pendulum_data(50, 0)
    assert torch.equal(data["train_label"], -torch.sin(data["train_input"][:, :1]))
    assert float(data["train_input"][:, 0].abs().max()) <= torch.pi


def test_fit_with_an_objective_never_snaps_formulas_to_its_labels():
    # the labels of a Lagrangian fit are q̈, not L: formula() must not snap L towards -sin(q)
    lp = _example()
    data = lp.pendulum_data(200, 0)
    model = kanir.KAN.from_graph(kanir.compile("qd**2/2 + cos(q)", variables=["q", "qd"]),
                                 dtype=torch.float64)
    model.fit(data, objective=lagrangian(), steps=2, update_grid=False,
              progress=False)
    assert model.cache_y is None
    (L,), (q, qd) = model.symbolic_formula()
    assert L.has(qd) and L.has(sympy.cos(q))


@pytest.mark.slow
def test_pendulum_lagrangian_from_the_kinetic_energy_prior():
    lp = _example()
    result = lp.run(lp.QUICK, log=lambda *_: None)
    assert result["candidates"][0] == "cos"  # the paper: suggest_symbolic lists cos first
    assert result["loss"] < 1e-3 and result["polished_loss"] < 1e-20
    q, qd = sympy.symbols("q qd")
    L = sympy.sympify(result["L"], locals={"q": q, "qd": qd})
    assert sympy.simplify(L - (qd**2 / 2 + sympy.cos(q))) == 0
    assert result["qdd_exact"] and sympy.sympify(result["qdd"], locals={"q": q}) == -sympy.sin(q)
