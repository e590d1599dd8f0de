"""§5.3 Schwarzschild example: the metric objective vanishes at Gullstrand–Painlevé's Δt(r),
the domain-wall detector, and the example's RESULT figures."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch


def _example():
    path = Path(__file__).resolve().parents[1] / "examples" / "science" / "schwarzschild.py"
    spec = importlib.util.spec_from_file_location("schwarzschild", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


S = _example()


def test_objective_is_zero_at_the_exact_delta_t_for_either_sign():
    data = S.metric_dataset(300, seed=0)
    for sign in (1, -1):
        assert S.loss_of(lambda r, s=sign: s * S.delta_t(r), data) < 1e-28
    # without the transformation the spatial block is off by n n^T / (r - 1)
    none = S.loss_of(lambda r: 0 * r, data)
    r = data["test_input"]
    assert none == pytest.approx(float((1 / (r - 1) ** 2).mean()) / 9, rel=1e-12)


def test_delta_t_prime_is_the_derivative_of_delta_t():
    r = torch.linspace(1.5, 5, 101, dtype=torch.float64)[:, None]
    assert torch.allclose(S.learned_prime(S.delta_t, r), S.delta_t_prime(r), rtol=1e-12)
    assert float(S.delta_t(torch.tensor([4.0], dtype=torch.float64))) == pytest.approx(
        4 + math.log(1 / 3), rel=1e-14)


def test_domain_walls_on_synthetic_curves():
    r = torch.linspace(1.5, 5, 701, dtype=torch.float64)
    smooth = S.delta_t_prime(r)
    assert S.domain_walls(r, smooth) == [] and S.domain_walls(r, -smooth) == []
    one = smooth * torch.tanh(20 * (r - 3))
    walls = S.domain_walls(r, one)
    assert len(walls) == 1 and walls[0] == pytest.approx(3.0, abs=1e-3)
    two = smooth * torch.sign(r - 2.2) * torch.sign(4.1 - r)
    walls = S.domain_walls(r, two)
    assert len(walls) == 2 and walls[0] == pytest.approx(2.2, abs=0.01)
    assert walls[1] == pytest.approx(4.1, abs=0.01)
    # values near zero (below rel of the branch) do not make extra walls
    noisy = one.clone()
    noisy[(r - 3).abs() < 0.02] *= 1e-6
    assert len(S.domain_walls(r, noisy)) == 1


def _check(res, loss, mse):
    assert res["objective_at_exact"] < 1e-28
    assert res["mlp_loss"] < 1e-8 and res["mlp_walls"] == 0
    assert res["kan_walls"] == 0
    assert res["kan_loss"] < loss and res["kan_mse"] < mse, res["teacher_curve"]
    losses = [row["loss"] for row in res["teacher_curve"]]
    assert losses[-1] < 1e-6 * losses[0]
    for d in res["direct"]:  # every direct seed is reported with its walls
        assert d["loss"] < 1.0 and isinstance(d["walls"], list)


@pytest.mark.slow
def test_quick_mode_result():
    res = S.run(S.QUICK, log=lambda *a: None)
    _check(res, loss=1e-13, mse=1e-15)


@pytest.mark.heavy
def test_full_run_result():
    res = S.run(S.FULL, log=lambda *a: None)
    _check(res, loss=1e-15, mse=1e-14)
