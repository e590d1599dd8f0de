"""KAN 2.0 §5.2, a Lagrangian from accelerations: the single pendulum L = q̇²/2 − (1 − cos q).

The data are states (q, q̇) and their accelerations q̈ = −sin q; nothing says what L is. The
KAN starts from a prior compiled by the kanpiler, the kinetic energy T = q̇²/2, in which q does
not appear. A non-intrusive ``perturb`` (as in pykan) gives q a zero spline over its data, so
the network still computes T exactly and q's edge is free to grow. Training on
``kanir.science.objectives.lagrangian()`` (q̈ through the Euler–Lagrange equation, paper Eq. 18) turns
that edge into a cosine: ``suggest_symbolic`` lists cos first. Fixing it (and the q̇ edge,
whose zero spline from ``perturb`` may have moved, to its best candidate) and polishing the
constants gives a formula for L whose Euler–Lagrange equation, derived with sympy, is
q̈ = −sin q exactly (a Lagrangian is defined up to a factor and a constant; the equation is not).

Run: ``python examples/science/lagrangian_pendulum.py [--quick]``; the last line printed is
``RESULT: {json}``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import sympy
import torch

import kanir
from kanir.science.objectives import lagrangian, lagrangian_acceleration
from kanir.symbolic.snap import snap_scale_free


@dataclass(frozen=True)
class Settings:
    """Samples and training steps; ``QUICK`` is what the test runs."""

    n: int = 1000
    steps: int = 50
    polish_steps: int = 20
    seed: int = 0


FULL = Settings()
QUICK = Settings(n=400, steps=30, polish_steps=10)


def pendulum_data(n: int, seed: int) -> dict:
    """States q ∈ [−π, π], q̇ ∈ [−2, 2] and labels q̈ = −sin q (train and test, float64)."""
    gen = torch.Generator().manual_seed(seed)

    def states(m):
        u = torch.rand(m, 2, generator=gen, dtype=torch.float64) * 2 - 1
        return u * torch.tensor([math.pi, 2.0], dtype=torch.float64)

    x, xt = states(n), states(n)
    return {"train_input": x, "train_label": -torch.sin(x[:, :1]),
            "test_input": xt, "test_label": -torch.sin(xt[:, :1])}


def euler_lagrange(L: sympy.Expr, q: sympy.Symbol, qd: sympy.Symbol) -> sympy.Expr:
    """q̈ from L(q, q̇) by the Euler–Lagrange equation, simplified."""
    num = sympy.diff(L, q) - sympy.diff(L, qd, q) * qd
    return sympy.simplify(num / sympy.diff(L, qd, 2))


def _explains(L: sympy.Expr, q, qd, data: dict, rmse: float) -> bool:
    """Whether candidate ``L``'s Euler-Lagrange accelerations fit the test data about as well
    as the trained network's (RMSE at most twice its, plus 1e-6)."""
    acc = euler_lagrange(L, q, qd)
    if acc.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):  # e.g. L without q̇: no dynamics
        return False
    f = sympy.lambdify((q, qd), acc, "numpy")
    x, y = data["test_input"].numpy(), data["test_label"].numpy()[:, 0]
    with np.errstate(all="ignore"):
        got = np.broadcast_to(np.asarray(f(x[:, 0], x[:, 1]), dtype=float), y.shape)
    err = float(np.sqrt(np.mean((got - y) ** 2)))
    return bool(np.isfinite(err) and err <= 2 * rmse + 1e-6)


def without_gauge_terms(L: sympy.Expr, qd: sympy.Symbol) -> sympy.Expr:
    """``L`` without terms c·q̇ (c a number): each is the time derivative of c·q, so it changes
    no equation of motion, and the data cannot fix it (the perturbed q̇ edge may learn one)."""
    terms = sympy.Add.make_args(sympy.expand(L))
    return sympy.Add(*[t for t in terms if not (t.has(qd) and (t / qd).is_number)])


def acceleration_rmse(model: kanir.KAN, data: dict) -> float:
    x = data["test_input"]
    acc = lagrangian_acceleration(model, x)
    return float(((acc - data["test_label"]) ** 2).mean().sqrt())


def run(s: Settings = FULL, log=print) -> dict:
    """Compile the prior, perturb, train, symbolify; returns the RESULT dict."""
    data = pendulum_data(s.n, s.seed)
    x = data["train_input"]
    t0 = time.perf_counter()
    prior = kanir.compile("qd**2/2", variables=["q", "qd"])
    model = kanir.KAN.from_graph(prior, dtype=torch.float64, seed=s.seed)
    log(f"prior T = {model.symbolic_formula()[0][0]} (compiled; q has no edge yet)")
    model(x)  # the data perturb measures
    model.perturb()  # non-intrusive: L is still T, q's edge is a zero spline over [-pi, pi]
    rmse0 = acceleration_rmse(model, data)
    hist = model.fit(data, objective=lagrangian(), steps=s.steps, update_grid=False,
                     progress=False)
    loss = hist["train_objective"][-1]
    log(f"trained {s.steps} LBFGS steps on the Euler-Lagrange objective: loss {loss:.2e} "
        f"(q̈ test RMSE {rmse0:.3f} -> {acceleration_rmse(model, data):.2e})")
    ranked = [row.name for row in model.symbolic_candidates(0, 0, 0, topk=5)]
    log(f"q edge, best symbolic candidates: {ranked}")
    model.fix_symbolic(0, 0, 0, ranked[0], verbose=False)
    # perturb also gave the compiled q̇² edge a zero spline beside it (pykan's non-intrusive
    # mode): fix that edge to its best candidate too
    best_qd = model.symbolic_candidates(0, 1, 0, topk=1)[0].name
    log(f"q̇ edge, best symbolic candidate: {best_qd}")
    model.fix_symbolic(0, 1, 0, best_qd, verbose=False)
    hist = model.fit(data, objective=lagrangian(), steps=s.polish_steps, update_grid=False,
                     progress=False)
    polished = hist["train_objective"][-1]
    rmse = acceleration_rmse(model, data)
    (raw,), (q, qd) = model.symbolic_formula()
    log(f"L as trained: {raw}")
    L = snap_scale_free(without_gauge_terms(raw, qd),
                        check=lambda cand: _explains(cand, q, qd, data, rmse))
    acc = euler_lagrange(L, q, qd)
    exact = sympy.simplify(acc + sympy.sin(q)) == 0
    log(f"L = {L}; Euler-Lagrange: q̈ = {acc} (exact: {exact}); polished loss {polished:.2e}")
    return {"candidates": ranked, "cos_first": ranked[0] == "cos", "loss": float(loss),
            "polished_loss": float(polished), "L": str(L), "qdd": str(acc),
            "qdd_exact": bool(exact), "seconds": round(time.perf_counter() - t0, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the test's smaller budget")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    result = run(QUICK if args.quick else FULL)
    print("RESULT: " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
