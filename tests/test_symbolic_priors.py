"""Priors for symbolic regression (kanir.symbolic.priors) and constraints from objectives
(kanir.science.constraints): what they rank down or reject, and their errors."""

import warnings

import pytest
import torch

import kanir
from kanir.errors import ArgumentError
from kanir.passes.symbolic import suggest_symbolic
from kanir.science.constraints import NondegenerateKinetic, SymbolicConstraintWarning
from kanir.science.objectives import lagrangian
from kanir.symbolic.priors import Bounded, Diverges, divergence_order, peak

LIB = ["x", "x^2", "1/x", "1/sqrt(x)", "log", "tan", "exp", "arctanh"]


def _relativistic_T():
    u = torch.linspace(0, 0.81, 300, dtype=torch.float64)
    return u, (1 - u) ** -0.5 - 1  # T as a function of u = q̇²


def _rank(prior=None):
    u, T = _relativistic_T()
    g = kanir.KAN(width=[1, 1], dtype=torch.float64).graph
    return [r.name for r in suggest_symbolic(g, 0, 0, 0, samples=(u, T), lib=LIB, topk=None,
                                             prior=prior)]


def test_diverges_ranks_the_inverse_square_root_first():
    plain = _rank()
    assert plain[0] == "1/x" and plain.index("1/sqrt(x)") > 0  # 1/x is simpler and fits well
    ranked = _rank(Diverges(1.0))
    assert ranked[0] == "1/sqrt(x)"
    # log and arctanh diverge at 1 only logarithmically; with order=0 any growth counts
    assert ranked.index("log") > 1 and ranked.index("arctanh") > 1
    assert _rank([Diverges(1.0), Bounded()])[0] == "1/sqrt(x)"


def test_divergence_order_of_poles_roots_and_logs():
    t = lambda f: (lambda x: f(x))  # noqa: E731
    assert divergence_order(t(lambda x: 1 / (1 - x)), 1.0, 0.05) == pytest.approx(1, abs=1e-3)
    assert divergence_order(t(lambda x: (1 - x) ** -0.5), 1.0, 0.05) == pytest.approx(0.5, abs=1e-3)
    assert abs(divergence_order(t(lambda x: torch.log(1 - x)), 1.0, 0.05)) < 0.01
    assert divergence_order(t(torch.exp), 1.0, 0.05) < -0.9  # smooth: no divergence
    assert abs(peak(lambda x: 1 / (x - 0.97), 0.9, 1.1) - 0.97) < 1e-9


def test_bounded_ranks_down_a_pole_inside_the_interval():
    u = torch.linspace(0, 0.5, 200, dtype=torch.float64)
    y = 1 / (1.2 - u)
    g = kanir.KAN(width=[1, 1], dtype=torch.float64).graph
    rows = suggest_symbolic(g, 0, 0, 0, samples=(u, y), lib=["1/x", "exp"], topk=None,
                            prior=Bounded(on=(0, 1.5)))
    assert rows[0].name == "exp" and rows[1].score > 90  # 1/x has its pole at 1.2 < 1.5
    rows = suggest_symbolic(g, 0, 0, 0, samples=(u, y), lib=["1/x", "exp"], topk=None,
                            prior=Bounded(high=10.0))
    assert rows[0].name == "1/x"  # on the samples' range 1/(1.2-u) stays below 10


@pytest.mark.parametrize("make, message", [
    (lambda: Diverges("1"), "at must be a finite number"),
    (lambda: Diverges(float("inf")), "at must be a finite number"),
    (lambda: Diverges(1.0, within=0), "within must be > 0"),
    (lambda: Diverges(1.0, order=-1), "order must be >= 0"),
    (lambda: Diverges(1.0, penalty=-1), "penalty must be >= 0"),
    (lambda: Bounded(low=2, high=1), "low must be below high"),
    (lambda: Bounded(on=(1, 0)), "needs low < high"),
    (lambda: Bounded(on=3), "on must be an interval"),
    (lambda: Bounded(ratio=0.5), "ratio must be > 1"),
    (lambda: NondegenerateKinetic(n=0), "n \\(the number of coordinates\\)"),
])
def test_bad_priors_and_constraints_are_named(make, message):
    with pytest.raises(ArgumentError, match=message):
        make()


def test_a_prior_must_be_a_prior():
    u, T = _relativistic_T()
    g = kanir.KAN(width=[1, 1], dtype=torch.float64).graph
    with pytest.raises(ArgumentError, match="prior must be a kanir.symbolic.priors.Prior"):
        suggest_symbolic(g, 0, 0, 0, samples=(u, T), lib=LIB, prior="diverges at 1")


def _lagrangian_model():
    # L(q, q̇) with random splines: with only 0, x and x² to choose from, every edge is '0'
    model = kanir.KAN(width=[2, 1], grid=5, dtype=torch.float64, seed=3,
                      input_names=["q", "qd"])
    x = torch.rand(200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    return model, x


def test_auto_symbolic_unconstrained_makes_the_kinetic_term_vanish():
    model, x = _lagrangian_model()
    report = model.auto_symbolic(lib=["0", "x", "x^2"], x=x, verbose=0, constraints=())
    assert model.graph.edge(0, 1, 0) is None or report.edges[1].fun in ("0", "x")
    assert NondegenerateKinetic().violation(model.graph, x) is not None


def test_auto_symbolic_with_the_lagrangian_constraint_repairs_the_qd_edge():
    model, x = _lagrangian_model()
    with pytest.warns(SymbolicConstraintWarning, match=r"edge \(0, 1, 0\) rejected 0 "):
        report = model.auto_symbolic(lib=["0", "x", "x^2"], x=x, verbose=0,
                                     constraints=[NondegenerateKinetic()])
    fits = {f.edge: f for f in report.edges}
    assert fits[(0, 1, 0)].fun == "x^2" and "passed over: 0" in fits[(0, 1, 0)].reason
    assert NondegenerateKinetic().violation(model.graph, x) is None


def test_the_lagrangian_objective_declares_its_constraint_and_fit_keeps_it():
    objective = lagrangian()
    assert any(isinstance(c, NondegenerateKinetic) for c in objective.constraints)
    model, x = _lagrangian_model()
    data = {"train_input": x, "train_label": -torch.sin(x[:, :1]),
            "test_input": x, "test_label": -torch.sin(x[:, :1])}
    model.fit(data, objective=objective, steps=1, update_grid=False, progress=False)
    assert model.objective_constraints == objective.constraints
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.auto_symbolic(lib=["0", "x", "x^2"], verbose=0)
    assert any(issubclass(w.category, SymbolicConstraintWarning) for w in caught)
    assert NondegenerateKinetic().violation(model.graph, x) is None


def test_priors_and_constraints_are_public_names_listed_in_the_api_reference():
    from pathlib import Path

    import kanir.science.constraints as cons
    import kanir.symbolic.priors as priors

    api = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    for mod, names in ((priors, ["Prior", "Diverges", "Bounded"]),
                       (cons, ["Constraint", "NondegenerateKinetic", "SymbolicConstraintWarning"])):
        assert f"::: {mod.__name__}" in api
        for name in names:
            assert getattr(kanir, name) is getattr(mod, name) and name in mod.__all__
            assert f"`kanir.{name}`" in api and name in api.split(f"::: {mod.__name__}")[1]
    from kanir import Diverges, NondegenerateKinetic  # noqa: F401  (as users write it)
