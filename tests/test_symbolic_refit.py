"""Refitting a fixed symbolic edge's affine (a, b, c, d) with L-BFGS (issue 12, §5.2).

A [1,1,1] KAN whose first edge is fixed to x² learns T(q̇) = 1/sqrt(1 − q̇²) − 1 through its
second (spline) edge. Its affine parameters stay trainable, as in pykan; before fit held them
during its first step, L-BFGS slid the x² edge's outputs off the next layer's grid onto the
minimum of the (negatively scaled) SiLU base and stalled at the labels' variance (RMSE 0.3).
"""

import pytest
import torch

import kanir
from kanir.train.training import held_affines

F64 = torch.float64
VMAX = 0.9


def _kinetic(n=101):
    v = torch.linspace(-VMAX, VMAX, n, dtype=F64)[:, None]
    t = 1 / torch.sqrt(1 - v**2) - 1
    return {"train_input": v, "train_label": t, "test_input": v, "test_label": t}


def _squared_first(seed=0):
    data = _kinetic()
    model = kanir.KAN(width=[1, 1, 1], grid=20, k=3, dtype=F64, seed=seed,
                      grid_range=(0, VMAX**2), versions=False)
    model(data["train_input"])
    model.fix_symbolic(0, 0, 0, "x^2", params=(1, 0, 1, 0), verbose=False)
    return model, data


@pytest.mark.parametrize("seed", [0, 1])
def test_lbfgs_refits_a_fixed_edge_affine(seed):
    model, data = _squared_first(seed)
    sa = model.net.layers[0].sym_affine
    assert sa.requires_grad  # pykan trains them after fix_symbolic; so does kanir
    hist = model.fit(data, steps=15, update_grid=False, progress=False)
    assert hist["train_loss"][-1] < 2e-5  # stalled at 0.305 (the labels' std) before
    a, b, c, d = sa.detach()[0, 0].tolist()
    assert (a, b, c, d) != (1.0, 0.0, 1.0, 0.0)  # trained, and still an x² of q̇
    assert 0.8 < a < 1.2 and 0.8 < c < 1.2 and abs(b) < 1e-3 and abs(d) < 0.1


def test_held_affines_only_where_a_spline_layer_follows():
    model, _ = _squared_first()
    held = held_affines(model.net)
    assert len(held) == 1 and held[0][0] is model.net.layers[0].sym_affine
    assert held[0][1][0, 0].tolist() == [0.0, 0.0, 0.0, 0.0]
    # symbolic edges in the last layer, or frozen affines, are not held
    model.fix_symbolic(1, 0, 0, "x", params=(1, 0, 1, 0), verbose=False)
    assert held_affines(model.net) == []
    model.unfix_symbolic(1, 0, 0)
    model.net.layers[0].sym_affine.requires_grad_(False)
    assert held_affines(model.net) == []


def test_held_affine_does_not_move_in_the_first_step_only():
    model, data = _squared_first()
    sa = model.net.layers[0].sym_affine
    model.fit(data, steps=1, update_grid=False, progress=False)  # one step: nothing held
    one = sa.detach().clone()
    assert one[0, 0].tolist() != [1.0, 0.0, 1.0, 0.0]
    model, data = _squared_first()
    sa = model.net.layers[0].sym_affine
    seen = []
    model.fit(data, steps=2, update_grid=False, progress=False,
              stop=lambda: seen.append(sa.detach().clone()) and False)
    assert seen[0][0, 0].tolist() == [1.0, 0.0, 1.0, 0.0]  # held in step 0
    assert seen[1][0, 0].tolist() != [1.0, 0.0, 1.0, 0.0]  # trained from step 1 on
