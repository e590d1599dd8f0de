"""Which data the facade's data-driven methods use when none is passed: fit keeps its training
inputs *and* labels; a later forward's inputs take over (as in pykan), without stale labels."""

import pytest
import torch

import kanir
from kanir.errors import ArgumentError


def _data(n=200, seed=0):
    return kanir.create_dataset(lambda x: x[:, [0]] * x[:, [1]], n_var=2, train_num=n,
                                test_num=n, seed=seed, dtype=torch.float64)


def test_fit_keeps_the_training_labels_beside_the_inputs():
    data = _data()
    model = kanir.KAN([2, 3, 1], grid=3, seed=0, device="cpu", dtype=torch.float64)
    model.fit(data, steps=2, progress=False)
    assert torch.equal(model.cache_x, data["train_input"])
    assert torch.equal(model.cache_y, data["train_label"])
    assert model._cached_labels(200) is not None


def test_labels_of_fit_are_not_used_for_a_later_forwards_inputs():
    data = _data()
    model = kanir.KAN([2, 3, 1], grid=3, seed=0, device="cpu", dtype=torch.float64)
    model.fit(data, steps=2, progress=False)
    other = torch.rand(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    model(other)
    assert model._recent_data() is not model.cache_x
    assert model._cached_labels(200) is None  # same row count, but not the fitted rows


def test_refine_and_tree_use_the_latest_forward_input():
    model = kanir.KAN([2, 3, 1], grid=3, seed=0, device="cpu", dtype=torch.float64)
    x = 3 * torch.rand(300, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    model(x)
    model.refine(6)
    lo, hi = model.net.layers[0].grid[:, 3], model.net.layers[0].grid[:, -4]
    assert float(hi.min()) > 2.5 and float(lo.max()) < 0.5  # the new grid spans the forward's x


@pytest.mark.parametrize("name", ["e", "pi"])
def test_constant_names_cannot_name_inputs(name):
    with pytest.raises(ArgumentError, match=f"'{name}' cannot name a variable"):
        kanir.KAN([2, 1], input_names=["x", name])
