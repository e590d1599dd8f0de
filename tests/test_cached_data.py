"""Which data the facade's data-driven methods use when none is passed: fit keeps its training
inputs *and* labels; a later forward's inputs take over (as in pykan), without stale labels."""

import pytest
import sympy
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


def test_formula_snaps_against_the_labels_fit_kept():
    """fit stores its labels in cache_y; formula() without data fits and snaps the constants
    against them (y = x/3), not against the model's own outputs (0.3341234*x)."""
    data = kanir.create_dataset(lambda x: x[:, [0]] / 3, n_var=1, train_num=100, test_num=10,
                                seed=0, dtype=torch.float64)

    def fitted():
        model = kanir.KAN([1, 1], grid=3, k=3, seed=0, device="cpu", dtype=torch.float64)
        model.fix_symbolic(0, 0, 0, "x", fit_params_bool=False, verbose=False)
        with torch.no_grad():
            model.net.layers[0].sym_affine[0, 0, 2] = 0.3341234  # c of c*f(a*x+b)+d
        model.fit(data, steps=0, progress=False, update_grid=False)
        return model

    with_labels = fitted()
    assert torch.equal(with_labels.cache_y, data["train_label"])
    (f,) = formulas = with_labels.formula()
    x1 = sympy.Symbol("x_1")
    assert f == x1 / 3 and formulas.fits[0].snapped == 1
    without_labels = fitted()
    without_labels.cache_y = None  # as after training on a stream: the model's outputs are the target
    (g,) = formulas = without_labels.formula()
    assert g == sympy.Float("0.3341", 4) * x1 and formulas.fits[0].snapped == 0
