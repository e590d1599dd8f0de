"""fit(objective=...) and the physics objectives of kanir.science.objectives."""

from __future__ import annotations

import pytest
import torch

import kanir
from kanir.errors import ArgumentError, DataError
from kanir.science import objectives as ob

F64 = torch.float64


def _x(n=200, d=2, seed=0):
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64) * 2 - 1


def _compiled(formula, variables):
    return kanir.KAN.from_graph(kanir.compile(formula, variables=variables), device="cpu")


def test_an_objective_equal_to_the_data_loss_trains_the_same_model():
    x = _x()
    y = torch.sin(2 * x[:, :1]) + x[:, 1:] ** 2
    data = {"train_input": x, "train_label": y, "test_input": x[:50], "test_label": y[:50]}
    mse = lambda model, xb, yb: ((model(xb) - yb) ** 2).mean()
    # without the regulariser the two paths compute the same numbers; with it the data path
    # shares a fused forward with the regulariser (other rounding, which L-BFGS amplifies
    # ~100x per step): compare one step there
    for lamb, steps, tol in ((0.0, 5, 1e-10), (0.01, 1, 1e-9)):
        a = kanir.KAN([2, 3, 1], grid=5, seed=0, dtype=F64, device="cpu")
        b = a.copy()
        ha = a.fit(data, steps=steps, lamb=lamb, progress=False)
        hb = b.fit(data, steps=steps, lamb=lamb, progress=False, objective=mse)
        for pa, pb in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(pa, pb, rtol=0, atol=tol)
        assert ha["train_loss"] == pytest.approx(hb["train_loss"], rel=1e-6)
        assert hb["train_objective"] == pytest.approx([v * v for v in hb["train_loss"]],
                                                      rel=1e-12)
        assert hb["train_rmse"] == pytest.approx(ha["train_rmse"], rel=1e-6)
        assert b.version == "0.1" and b.list_versions()[-1].op == "fit"


def test_labels_are_optional_with_an_objective():
    data = {"train_input": _x(), "test_input": _x(50, seed=1)}
    model = kanir.KAN([2, 2, 1], seed=0, dtype=F64, device="cpu")
    seen = []

    def objective(m, x, y):
        seen.append(y)
        return (m(x) ** 2).mean()  # drive the output to zero

    hist = model.fit(data, objective=objective, steps=5, lamb=0.001, batch=64, progress=False)
    assert all(y is None for y in seen)
    assert "train_rmse" not in hist and len(hist["train_objective"]) == 5
    assert hist["train_objective"][-1] < 0.5 * hist["train_objective"][0]
    assert hist["reg"][-1] > 0


def test_objective_arguments_are_checked():
    x = _x(20)
    data = {"train_input": x, "test_input": x}
    model = kanir.KAN([2, 1], seed=0, device="cpu")
    with pytest.raises(ArgumentError, match="objective must be a function"):
        model.fit(data, objective=3, steps=1, progress=False)
    with pytest.raises(ArgumentError, match="either loss_fn .* or objective"):
        model.fit(data, objective=lambda m, x, y: m(x).sum(), loss_fn=lambda p, y: p.sum(),
                  steps=1, progress=False)
    with pytest.raises(ArgumentError, match="objective must return a scalar tensor"):
        model.fit(data, objective=lambda m, x, y: m(x), steps=1, progress=False)
    with pytest.raises(ArgumentError, match="not on a stream"):
        model.fit([(x, x[:, :1])], objective=lambda m, x, y: m(x).sum(), opt="Adam", steps=1,
                  test_loader=[(x, x[:, :1])], progress=False)
    with pytest.raises(DataError, match="train_input"):
        model.fit({"test_input": x}, objective=lambda m, x, y: m(x).sum(), steps=1,
                  progress=False)


def test_exact_lagrangians_predict_the_accelerations():
    x = _x(100)
    pendulum = _compiled("v**2/2 + cos(q)", ["q", "v"])   # L = T - V, V = 1 - cos q
    y = -torch.sin(x[:, :1])                             # q'' = -sin q
    assert float(ob.lagrangian()(pendulum, x, y).detach()) < 1e-24
    acc = ob.lagrangian_acceleration(pendulum, x)
    torch.testing.assert_close(acc, y, rtol=0, atol=1e-12)
    wrong = _compiled("v**2/2 - cos(q)", ["q", "v"])
    assert float(ob.lagrangian()(wrong, x, y).detach()) > 0.5
    two = _compiled("(v1**2 + v2**2)/2 - (q1**2 + 3*q2**2)/2", ["q1", "q2", "v1", "v2"])
    x4 = _x(50, 4)
    want = torch.stack([-x4[:, 0], -3 * x4[:, 1]], dim=1)
    torch.testing.assert_close(ob.lagrangian_acceleration(two, x4), want, rtol=0, atol=1e-12)
    with pytest.raises(DataError, match="even number of columns"):
        ob.lagrangian_acceleration(_compiled("a*b*c", ["a", "b", "c"]), _x(5, 3))
    with pytest.raises(DataError, match="needs the accelerations"):
        ob.lagrangian()(pendulum, x, None)


def test_conserved_quantity_objective_is_zero_exactly_for_conserved_quantities():
    field = lambda z: torch.stack([z[:, 1], -z[:, 0]], dim=1)  # harmonic oscillator (x, p)
    loss = ob.conserved_quantity(field)
    z = _x(100)
    assert float(loss(_compiled("(x**2 + p**2)/2", ["x", "p"]), z).detach()) < 1e-28
    assert float(loss(_compiled("sin(x**2 + p**2)", ["x", "p"]), z).detach()) < 1e-26
    assert float(loss(_compiled("x**2 + p", ["x", "p"]), z).detach()) > 0.05
    with pytest.raises(DataError, match="shaped like its input"):
        ob.conserved_quantity(lambda z: z[:, :1])(_compiled("x*p", ["x", "p"]), z)


def test_metric_objective_pulls_the_metric_back():
    g = lambda x: torch.full((x.shape[0], 1, 1), 4.0, dtype=x.dtype)  # ds² = 4 du²
    x = _x(30, 1)
    twice = _compiled("2*u", ["u"])
    thrice = _compiled("3*u", ["u"])
    loss = ob.metric(g, lambda model, x: model(x))
    assert float(loss(twice, x).detach()) < 1e-28           # x' = 2u: ds² = dx'²
    assert float(loss(thrice, x).detach()) == pytest.approx((4 / 9 - 1) ** 2, rel=1e-12)
    # 2D, only the second diagonal entry compared
    g2 = lambda x: torch.diag_embed(torch.stack([torch.ones_like(x[:, 0]), 4 + 0 * x[:, 1]], 1))
    shift = ob.metric(g2, lambda model, x: torch.cat([x[:, :1], model(x[:, 1:])], 1),
                      block=[1])
    assert float(shift(twice, _x(30, 2)).detach()) < 1e-28


@pytest.mark.slow
def test_a_lagrangian_is_trained_from_accelerations():
    """Pendulum: a KAN initialised as the kinetic energy v²/2 (kanpiler) plus a trainable
    spline on q learns V from (q, v) -> q''; the learned q edge is a cosine."""
    x = _x(300) * 1.5
    data = {"train_input": x, "train_label": -torch.sin(x[:, :1]),
            "test_input": x[:100], "test_label": -torch.sin(x[:100, :1])}
    model = kanir.KAN([2, 1], grid=10, k=3, seed=0, dtype=F64, device="cpu",
                      grid_range=(-1.5, 1.5))
    model.fix_symbolic(0, 1, 0, "x^2", fit_params_bool=False, verbose=False)
    with torch.no_grad():  # T = v²/2 exactly, kept fixed: the scale of L is pinned by it
        model.net.layers[0].sym_affine[1, 0] = torch.tensor([1.0, 0.0, 0.5, 0.0], dtype=F64)
    hist = model.fit(data, objective=ob.lagrangian(), steps=30, update_grid=False,
                     progress=False)
    assert hist["train_objective"][-1] < 1e-4
    name, _, r2, _ = model.suggest_symbolic(0, 0, 0, lib=["x", "x^2", "cos", "exp"],
                                            verbose=False)
    assert name in ("cos", "x^2") and r2 > 0.99


def test_lbfgs_with_an_objective_matches_a_hand_written_loop():
    """fit(objective=) is the loop a user would write around the same optimiser; torch's own
    L-BFGS agrees on the first step and then stalls (its curvature and line-search tolerances
    stop it near 1e-9), where kanir's goes on."""
    from kanir.science.objectives import conserved_quantity
    from kanir.train.optim import LBFGS

    x = _x()
    objective = conserved_quantity(lambda z: torch.stack([z[:, 1], -z[:, 0]], 1),
                                   normalise="batch")
    data = {"train_input": x, "test_input": x[:50]}
    fitted = kanir.KAN([2, 1], grid=5, seed=0, dtype=F64, device="cpu")
    start = fitted.copy()
    hist = fitted.fit(data, objective=objective, steps=5, lamb=0.0, update_grid=False,
                      progress=False)

    def hand_loop(model, optimizer):
        losses = []
        for _ in range(5):
            def closure():
                optimizer.zero_grad()
                loss = objective(model, x, None)
                loss.backward()
                return loss
            optimizer.step(closure)
            losses.append(float(objective(model, x, None).detach()))
        return losses

    mine = start.copy()
    ours = hand_loop(mine, LBFGS([p for p in mine.parameters() if p.requires_grad]))
    assert hist["train_objective"] == pytest.approx(ours, rel=1e-6)
    for pa, pb in zip(fitted.parameters(), mine.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=1e-8)
    theirs_model = start.copy()
    theirs = hand_loop(theirs_model, torch.optim.LBFGS(
        [p for p in theirs_model.parameters() if p.requires_grad], lr=1, max_iter=20,
        history_size=10, line_search_fn="strong_wolfe", tolerance_grad=1e-32,
        tolerance_change=1e-32))
    assert hist["train_objective"][0] == pytest.approx(theirs[0], rel=1e-6)
    assert hist["train_objective"][-1] <= theirs[-1] * (1 + 1e-6)
    assert hist["train_objective"][-1] < 1e-8
