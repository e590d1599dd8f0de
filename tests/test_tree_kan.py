"""The tree converter on a trained kanir KAN (slow: trains a small KAN for ~10 s)."""

import pytest
import torch

import kanir


def _quad(x):
    return ((x[:, 0] ** 2 + x[:, 1] ** 2) ** 2 + (x[:, 2] ** 2 + x[:, 3] ** 2) ** 2)[:, None]


@pytest.mark.slow
def test_trained_kan_gives_the_formula_tree():
    dataset = kanir.create_dataset(_quad, n_var=4, ranges=[-1, 1], train_num=1000, seed=0,
                                   dtype=torch.float64)
    # [4, 2, 1] can represent the target exactly (inner x^2 sums, outer squares) and fits it to
    # ~1e-10 in 100 L-BFGS steps; a [4, 4, 2, 1] KAN stops near 10% error, too coarse for
    # structure tests.
    model = kanir.KAN(width=[4, 2, 1], grid=5, k=3, seed=0, dtype=torch.float64, device="cpu")
    model.fit(dataset, opt="LBFGS", steps=100, log=0, progress=False)
    with torch.no_grad():
        err = ((model(dataset["test_input"]) - dataset["test_label"]) ** 2).mean()
    assert err < 1e-6 * dataset["test_label"].var()
    before = [p.detach().clone() for p in model.parameters()]
    t = kanir.tree(model, dataset["test_input"], variables=["x1", "x2", "x3", "x4"])
    assert t.compact() == "add(gsep(x1, x2), gsep(x3, x4))"
    assert t.groups(2) == [("x1", "x2"), ("x3", "x4")]
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    # the facade method gives the same tree, with the model's own input names
    model2 = kanir.KAN.from_graph(model.graph, device="cpu")
    t2 = model2.tree(dataset["test_input"])
    assert t2.compact() == "add(gsep(x_1, x_2), gsep(x_3, x_4))"
