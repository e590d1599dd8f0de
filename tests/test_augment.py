"""augment_input: auxiliary inputs defined by sympy expressions of the originals."""

import numpy as np
import pytest
import sympy
import torch

import kanir
from kanir.backends.torch import lower
from kanir.errors import ArgumentError, DataError, FormulaError, PassError
from kanir.passes.augment import augment_dataset, augment_input, aux_values

m0, v, c = sympy.symbols("m0 v c")
beta = v / c
gamma = 1 / sympy.sqrt(1 - beta**2)
AUX = {"beta": beta, "gamma": gamma}


def _relmass(x):
    return x[:, [0]] / torch.sqrt(1 - x[:, [1]] ** 2 / x[:, [2]] ** 2)


@pytest.fixture(scope="module")
def data():
    return kanir.create_dataset(_relmass, 3, ranges=[[0, 1], [0, 0.9], [1.1, 2]], train_num=200,
                                test_num=200, dtype=torch.float64)


@pytest.fixture
def g3():
    return kanir.KAN(width=[3, 2, 1], grid=3, seed=0, dtype=torch.float64, device="cpu").graph


def test_new_named_inputs_with_zero_edges(g3, data):
    g = augment_input(g3, [m0, v, c], AUX, ranges=[(0, 1), (1, 3)])
    # pykan's order: the auxiliary variables first
    assert g.input_names == ["beta", "gamma", "m0", "v", "c"] and g.width == [5, 2, 1]
    assert g.meta["input_defs"] == [["beta", "v/c"], ["gamma", "1/sqrt(1 - v**2/c**2)"]]
    for i in (0, 1):
        for j in range(2):
            sp = g.edge(0, i, j).spline
            assert not np.any(sp.coef) and sp.scale_base == 0
    assert g.edge(0, 1, 0).spline.grid_range == (1.0, 3.0)
    assert g.edge(0, 2, 1).same(g3.edge(0, 0, 1))  # m0's edges moved with it
    # the function on the original inputs is unchanged, whatever the new columns hold
    x = data["test_input"]
    noise = torch.randn(x.shape[0], 2, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(lower(g)(torch.cat([noise, x], 1)), lower(g3)(x))
    assert g3.input_names == ["x_1", "x_2", "x_3"]  # input untouched


def test_dataset_columns(data):
    d2 = augment_dataset(data, [m0, v, c], AUX)
    x = data["train_input"]
    assert d2["train_input"].shape == (200, 5) and data["train_input"].shape == (200, 3)
    assert torch.allclose(d2["train_input"][:, 0], x[:, 1] / x[:, 2], rtol=1e-14)
    assert torch.allclose(d2["test_input"][:, 1], 1 / torch.sqrt(1 - (data["test_input"][:, 1]
                                                                      / data["test_input"][:, 2])
                                                                     ** 2), rtol=1e-12)
    assert torch.equal(d2["train_input"][:, 2:], x)  # the originals follow, as in pykan
    assert d2["train_label"] is data["train_label"]


def test_names_from_expressions_and_text():
    g = kanir.KanGraph.from_width([2, 1])
    x, y = sympy.symbols("x y")
    g2 = augment_input(g, [x, y], [x * y, ("r", "sqrt(x^2 + y^2)"), x + 1])
    assert g2.input_names == ["aux_1", "r", "aux_2", "x", "y"]
    assert g2.meta["input_defs"][:3] == [["aux_1", "x*y"], ["r", "sqrt(x**2 + y**2)"],
                                         ["aux_2", "x + 1"]]
    g3 = augment_input(g2, g2.input_names, [x * y])  # aux_1 and aux_2 are taken
    assert g3.input_names[0] == "aux_3"
    vals = aux_values(np.array([[3.0, 4.0]]), ["x", "y"], {"r": "sqrt(x^2 + y^2)"})
    assert vals.tolist() == [[5.0]]


@pytest.mark.parametrize("orig,aux,err,match", [
    ([m0, v], AUX, PassError, "3 inputs"),
    ([m0, v, c], {"b": v / sympy.Symbol("q")}, PassError, r"uses \['q'\]"),
    ([m0, v, c], {"v": 2 * v}, PassError, "already an input name"),
    ([m0, v, c], {}, PassError, "empty"),
    ([m0, v, m0], AUX, ArgumentError, r"original_variables repeat \['m0'\]"),
    ([m0, v, c], {"b b": v / c}, ArgumentError, "'b b' is not an identifier"),
    ([m0, v, c], {"": v / c}, ArgumentError, "'' is empty"),
    ([m0, v, c], {"a\nb": v / c}, ArgumentError, "is not an identifier"),
    ([m0, v, c], [(1, v / c)], ArgumentError, r"must be strings, got 1 \(int\)"),
    (["m 0", "v", "c"], AUX, ArgumentError, "'m 0' is not an identifier"),
    ("m0 v c", AUX, PassError, "list of sympy Symbols"),
    ([m0, v, c], {"b": "v/"}, FormulaError, "ends|expected|unexpected"),
    ([m0, v, c], 5, PassError, "dict"),
])
def test_bad_arguments(g3, orig, aux, err, match):
    with pytest.raises(err, match=match):
        augment_input(g3, orig, aux)


def test_non_finite_values_name_the_variable(data):
    bad = {"key": 1 / sympy.sqrt(0.5 - v)}
    with pytest.raises(DataError, match="'key'.*not a finite real number"):
        augment_dataset(data, [m0, v, c], bad)


def test_facade_extends_model_and_returns_dataset(data):
    m = kanir.KAN(width=[3, 2, 1], grid=3, seed=0, dtype=torch.float64, device="cpu")
    y0 = m(data["test_input"]).detach()
    d2 = m.augment_input([m0, v, c], AUX, data)
    assert isinstance(d2, dict) and d2["train_input"].shape[1] == 5
    assert m.input_names == ["beta", "gamma", "m0", "v", "c"]
    assert torch.equal(m(d2["test_input"]).detach(), y0)
    assert m.cache_x.shape == (200, 5)
    lo, hi = float(d2["train_input"][:, 1].min()), float(d2["train_input"][:, 1].max())
    assert m.graph.edge(0, 1, 0).spline.grid_range == pytest.approx((lo, hi))
    assert m.list_versions()[-1].op == "augment_input"
    assert m.list_versions()[-1].info["inputs"] == ["beta", "gamma"]


def test_facade_rejects_bad_names_and_bare_tensors(data):
    m = kanir.KAN(width=[3, 2, 1], grid=3, seed=0, dtype=torch.float64, device="cpu")
    with pytest.raises(ArgumentError, match="'x y' is not an identifier"):
        m.augment_input([m0, v, c], {"x y": v / c}, data)
    with pytest.raises(DataError, match="needs a dataset dict"):
        m.augment_input([m0, v, c], AUX, data["train_input"])
    assert m.input_names == ["x_1", "x_2", "x_3"] and len(m.list_versions()) == 1


@pytest.mark.slow
def test_relativistic_mass_fits_with_beta_and_gamma(data):
    """The paper's example: with beta = v/c and gamma = 1/sqrt(1 - beta^2) as inputs, a KAN
    with one hidden (product) node fits m = m0 * gamma to loss < 1e-5."""
    m = kanir.KAN(width=[3, [0, 1], 1], grid=3, seed=0, dtype=torch.float64, device="cpu")
    d2 = m.augment_input([m0, v, c], AUX, data)
    hist = m.fit(d2, steps=30, progress=False)
    assert hist["train_loss"][-1] < 1e-5**0.5 and hist["test_loss"][-1] < 1e-5**0.5  # RMSE
    plain = kanir.KAN(width=[3, [0, 1], 1], grid=3, seed=0, dtype=torch.float64, device="cpu")
    hist_plain = plain.fit(data, steps=30, progress=False)
    assert hist_plain["test_loss"][-1] > 10**0.5 * hist["test_loss"][-1]
