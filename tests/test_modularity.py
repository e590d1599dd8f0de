"""Tests of kanir.science.modularity: separability, general separability and symmetry tests."""

import dataclasses
import math
import warnings

import numpy as np
import pytest
import sympy as sp
import torch

import kanir.science.modularity as km
from kanir.errors import DataError, KanirError

x1, x2, x3, x4 = sp.symbols("x1:5")
q, v, B, m = sp.symbols("q v B m")
QUAD = (x1**2 + x2**2) ** 2 + (x3**2 + x4**2) ** 2


def quad_torch(x):
    return (x[:, 0] ** 2 + x[:, 1] ** 2) ** 2 + (x[:, 2] ** 2 + x[:, 3] ** 2) ** 2


# ----------------------------------------------------------------------------- separability


def test_additive_separability_passes_and_fails_on_the_right_groups():
    good = km.test_separability(QUAD, (-1, 1), [[x1, x2], [x3, x4]])
    bad = km.test_separability(QUAD, (-1, 1), [[x1, x3], [x2, x4]])
    assert good.passed and bool(good) and good.score < 1e-12
    assert not bad.passed and not bad and bad.score > 0.1
    assert good.mode == "add" and good.groups == (("x1", "x2"), ("x3", "x4"))
    assert good.n_samples == 1000 and good.threshold == 1e-2


def test_multiplicative_separability_with_names():
    r = km.test_separability(q * v * B / m, (0.5, 2), [["q"], ["v"], ["B"], ["m"]], mode="mul",
                             variables=["q", "v", "B", "m"])
    assert r.passed and r.score < 1e-12
    assert set(r.block_scores) == {"q | v", "q | B", "q | m", "v | B", "v | m", "B | m"}
    assert all(s < 1e-12 for s in r.block_scores.values())
    add = km.test_separability(q * v * B / m, (0.5, 2), ["q", "v", "B", "m"], mode="add",
                               variables=["q", "v", "B", "m"])
    assert not add.passed and add.score > 0.3


def test_mul_is_not_fooled_by_a_narrow_range():
    # x1 + x2 is almost a product on [1, 2] in absolute terms; the relative score still rejects it
    r = km.test_separability(x1 + x2, (1, 2), [[x1], [x2]], mode="mul")
    assert not r.passed and r.score > 0.3


def test_separability_sympy_functions_abs_sqrt_exp():
    f = sp.exp(x1) * sp.Abs(x2) * sp.sqrt(x3)
    assert km.test_separability(f, (0.2, 2), [[x1], [x2], [x3]], mode="mul").score < 1e-12
    g = sp.exp(x1 * x2) + sp.sqrt(x3)
    r = km.test_separability(g, (0.2, 2), [[x1, x2], [x3]])
    assert r.passed
    assert not km.test_separability(g, (0.2, 2), [[x1], [x2, x3]]).passed


def test_unlisted_variables_are_parameters():
    # x3 enters both parts, but the x1-x2 cross block is still zero
    f = x3 * x1**2 + sp.sin(x3) * x2
    assert km.test_separability(f, (-1, 1), [[x1], [x2]]).passed
    assert not km.test_separability(f, (-1, 1), [[x1, x2], [x3]]).passed


# ----------------------------------------------------------------------------- general separability


def test_general_separability_of_nested_sums():
    good = km.test_general_separability(QUAD, (-1, 1), [[x1, x2], [x3, x4]])
    bad = km.test_general_separability(QUAD, (-1, 1), [[x1, x3], [x2, x4]])
    assert good.passed and good.score < 1e-12
    assert not bad.passed and bad.score > 0.1


def test_general_separability_beyond_add_and_mul():
    f = sp.sqrt(1 + x1**2 + sp.exp(x2))
    assert km.test_general_separability(f, (-1, 1), [[x1], [x2]]).score < 1e-12
    assert not km.test_separability(f, (-1, 1), [[x1], [x2]]).passed
    assert not km.test_separability(f, (-1, 1), [[x1], [x2]], mode="mul").passed


def test_general_separability_three_groups_and_a_prime_function():
    f = sp.tanh(x1 + x2**2 + sp.sin(x3))
    assert km.test_general_separability(f, (-1, 1), [[x1], [x2], [x3]]).score < 1e-12
    prime = x1 * x2 + x2 * x3 + x3 * x1
    r = km.test_general_separability(prime, (0.5, 2), [[x1], [x2], [x3]])
    assert not r.passed and r.score > 0.1


def test_general_separability_requires_each_group_to_be_symmetric():
    # d_i f / d_3 f factorises for i in {1, 2}, but (x1, x2)'s gradient direction depends on x3
    r = km.test_general_separability(x1 * x3 + x2, (0.5, 2), [[x1, x2], [x3]])
    assert not r.passed
    assert r.block_scores["sym(x1,x2)"] > 0.1
    assert r.block_scores["x1,x2 | x3"] < 1e-12


# ----------------------------------------------------------------------------- symmetry


def test_symmetry_detects_groups_and_names_the_culprits():
    f = (x1**2 + x2**2) ** 2 + x3 * x1
    sym = km.test_symmetry((x1**2 + x2**2) ** 2 + x3, (-1, 1), [x1, x2])
    assert sym.passed and sym.score < 1e-12
    r = km.test_symmetry(f, (-1, 1), ["x1", "x2"])
    assert not r.passed and r.block_scores["x3"] > 0.1 and r.score == r.block_scores["x3"]


def test_symmetry_of_all_variables_is_trivial():
    r = km.test_symmetry(QUAD, (-1, 1), [0, 1, 2, 3])
    assert r.passed and r.score == 0 and r.block_scores == {}


def test_symmetry_on_data_tensor_and_numpy():
    x = km.sample_inputs(3, (-1, 1), 300, seed=3)
    f = sp.sin(x1 * x2) + x3
    assert km.test_symmetry(f, x, [0, 1]).passed
    assert not km.test_symmetry(f, x.numpy(), [0, 2]).passed
    assert km.test_symmetry(f, x, [0, 1]).n_samples == 300


# ----------------------------------------------------------------------------- inputs of every kind


def test_torch_callable_with_column_output():
    def f(x):
        return quad_torch(x)[:, None]

    r = km.test_separability(f, (-1, 1), [[0, 1], [2, 3]], variables=4)
    assert r.passed and r.groups == (("x1", "x2"), ("x3", "x4"))


def test_module_float32_is_evaluated_in_its_dtype_and_not_mutated():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    before = [p.detach().clone() for p in net.parameters()]
    r = km.test_symmetry(net, (-1, 1), [0, 1], variables=3)
    assert r.dtype == "float32" and "float32" in r.note
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert all(p.grad is None for p in net.parameters())
    assert math.isfinite(r.score)


class _Structured(torch.nn.Module):
    """x1 + x2 * x3 through learnable-looking parameters (float64)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))

    def forward(self, x):
        return (self.w[0] * x[:, :1] + self.w[1] * x[:, 1:2] * x[:, 2:3])


def test_module_float64_structure():
    mod = _Structured()
    assert km.test_separability(mod, (-1, 1), [[0], [1, 2]], variables=3).score < 1e-12
    assert km.test_symmetry(mod, (-1, 1), [1, 2], variables=3).passed
    assert not km.test_symmetry(mod, (-1, 1), [0, 1], variables=3).passed


class _Named(torch.nn.Module):
    input_names = ["q", "v"]

    def forward(self, x):
        return x[:, 0] * x[:, 1]


def test_module_input_names_are_the_default_names():
    r = km.test_separability(_Named(), (0.5, 2), [["q"], ["v"]], mode="mul")
    assert r.passed and r.groups == (("q",), ("v",))


def test_variable_count_for_an_expression():
    assert km.probe(x1 + x2, (0, 1), variables=2).names == ("x1", "x2")
    with pytest.raises(km.FunctionError, match="has 2 variables, not 3"):
        km.probe(x1 + x2, (0, 1), variables=3)


def test_multi_output_needs_an_output_index():
    def f(x):
        return torch.stack([x[:, 0] + x[:, 1], x[:, 0] * x[:, 1], x[:, 0]], 1)

    with pytest.raises(km.FunctionError, match=r"3 outputs \(dims 0\.\.2\).*output="):
        km.test_separability(f, (0.5, 2), [[0], [1]], variables=2)
    assert km.test_separability(f, (0.5, 2), [[0], [1]], variables=2, output=0).passed
    assert km.test_separability(f, (0.5, 2), [[0], [1]], mode="mul", variables=2, output=1).passed
    with pytest.raises(km.FunctionError, match="output=5"):
        km.test_separability(f, (0.5, 2), [[0], [1]], variables=2, output=5)


def test_natural_variable_order_for_sympy():
    xs = sp.symbols("x1:12")
    p = km.probe(xs[1] + xs[10] * xs[2], (0.5, 2))
    assert p.names == ("x2", "x3", "x11")


def test_sympy_to_torch_matches_sympy():
    f = sp.sin(x1) * sp.exp(-x2) / sp.sqrt(x1**2 + x2**2) + sp.Abs(x1 - x2) ** sp.Rational(3, 2)
    xs = km.sample_inputs(2, (0.1, 2), 50, seed=1)
    got = km.sympy_to_torch(f, [x1, x2])(xs).numpy()
    want = sp.lambdify([x1, x2], f, "numpy")(xs[:, 0].numpy(), xs[:, 1].numpy())
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_probe_reuses_derivatives_across_tests():
    p = km.probe(QUAD, (-1, 1), order=3)
    assert p.T.shape == (1000, 4, 4, 4)
    assert p.test_separability([[0, 1], [2, 3]]).passed
    assert p.test_general_separability([[0, 1], [2, 3]]).passed
    assert p.test_symmetry([0, 1]).passed


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's forward-AD internals
def test_autodiff_engines_agree():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1))
    net = net.double()
    x = km.sample_inputs(3, (-1, 1), 20, seed=0)

    def fn(z):
        return net(z)[:, 0]

    from kanir.science.derivatives import _derivs_func, _derivs_graph

    a, b = _derivs_graph(fn, x, 3), _derivs_func(fn, x, 3)
    for u, w in zip(a, b):
        torch.testing.assert_close(u, w, rtol=1e-10, atol=1e-12)


def test_batch_mixing_module_is_reported():
    bn = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4), torch.nn.Tanh(),
                             torch.nn.Linear(4, 1)).double()
    with pytest.raises(km.FunctionError, match=r"mixes the samples.*module\.eval\(\)"):
        km.test_symmetry(bn.train(), (-1, 1), [0], variables=2)
    assert math.isfinite(km.test_symmetry(bn.eval(), (-1, 1), [0], variables=2).score)


# ----------------------------------------------------------------------------- results


def test_result_is_frozen_and_readable():
    r = km.test_separability(QUAD, (-1, 1), [[x1, x3], [x2, x4]])
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.passed = True
    text = repr(r)
    assert "FAILED" in text and "separability[add]" in text and "(x1, x3) | (x2, x4)" in text
    assert f"{r.score:.2e}" in text and "threshold=1e-02" in text and "1000 samples" in text
    assert r.margin < 0
    ok = km.test_symmetry(QUAD, (-1, 1), [x1, x2])
    assert "PASSED" in repr(ok) and ok.margin > 0


def test_threshold_decides_the_verdict():
    r = km.test_separability(QUAD, (-1, 1), [[x1, x3], [x2, x4]], threshold=0.99)
    assert r.passed and r.threshold == 0.99


# ----------------------------------------------------------------------------- sampling


def test_sample_inputs_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    a = km.sample_inputs(3, [(0, 1), (-2, -1), (5, 6)], 200, seed=7)
    b = km.sample_inputs(3, [(0, 1), (-2, -1), (5, 6)], 200, seed=7)
    c = km.sample_inputs(3, [(0, 1), (-2, -1), (5, 6)], 200, seed=8)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.dtype == torch.float64 and a.shape == (200, 3)
    assert (a[:, 1] >= -2).all() and (a[:, 1] <= -1).all() and (a[:, 2] >= 5).all()
    assert km.sample_inputs(2, (0, 1), 10, 0, dtype=torch.float32).dtype == torch.float32


@pytest.mark.parametrize("ranges", [(1, 0), [(0, 1)], "0:1", (0, math.inf)])
def test_sample_inputs_rejects_bad_ranges(ranges):
    with pytest.raises(DataError):
        km.sample_inputs(2, ranges, 10, 0)


def test_ranges_by_name():
    r = km.test_separability(q * v, {"q": (1, 2), "v": (3, 4)}, [["q"], ["v"]], mode="mul",
                             variables=["q", "v"])
    assert r.passed
    with pytest.raises(DataError, match="no range given for v"):
        km.probe(q * v, {"q": (1, 2)}, variables=["q", "v"])


# ----------------------------------------------------------------------------- errors


def test_nan_function_says_how_many_samples():
    def f(x):
        return torch.log(x[:, 0]) + x[:, 1]

    with pytest.raises(km.FunctionError, match=r"NaN/inf at \d+ of 1000 samples"):
        km.test_symmetry(f, (-1, 1), [0], variables=2)


def test_wrong_output_shape():
    with pytest.raises(km.FunctionError, match=r"returned shape \(\d+, 2, 2\)"):
        km.test_symmetry(lambda x: x[:, :, None] * x[:, None, :], (0, 1), [0], variables=2)
    with pytest.raises(km.FunctionError, match="not a torch tensor"):
        km.test_symmetry(lambda x: x.detach().numpy().sum(1), (0, 1), [0], variables=2)
    with pytest.raises(km.FunctionError, match="failed: RuntimeError"):
        km.test_symmetry(lambda x: x.numpy().sum(1), (0, 1), [0], variables=2)
    with pytest.raises(km.FunctionError, match="autograd"):
        km.test_symmetry(lambda x: x.detach().sum(1), (0, 1), [0], variables=2)


def test_group_errors():
    with pytest.raises(km.GroupError, match="x2 appears in groups 0 and 1"):
        km.test_separability(QUAD, (-1, 1), [[x1, x2], [x2, x3]])
    with pytest.raises(km.GroupError, match="group 1 is empty"):
        km.test_separability(QUAD, (-1, 1), [[x1], []])
    with pytest.raises(km.GroupError, match="unknown variable 'x9'"):
        km.test_separability(QUAD, (-1, 1), [["x1"], ["x9"]])
    with pytest.raises(km.GroupError, match="did you mean B"):
        km.test_symmetry(q * v * B, (1, 2), ["b"], variables=["q", "v", "B"])
    with pytest.raises(km.GroupError, match="index 4 is out of range for 4 variables"):
        km.test_symmetry(QUAD, (-1, 1), [0, 4])
    with pytest.raises(km.GroupError, match="at least 2 groups"):
        km.test_separability(QUAD, (-1, 1), [[x1, x2]])
    with pytest.raises(km.GroupError):
        km.test_separability(QUAD, (-1, 1), "x1")
    assert issubclass(km.GroupError, KanirError)


def test_input_errors():
    with pytest.raises(DataError, match="2-D"):
        km.test_symmetry(QUAD, torch.zeros(10), [0])
    with pytest.raises(DataError, match="3 columns but there are 4 variables"):
        km.test_symmetry(QUAD, torch.rand(10, 3), [0])
    with pytest.raises(DataError, match="single value"):
        km.test_symmetry(QUAD, torch.ones(10, 4), [0])
    with pytest.raises(DataError, match="needs variables"):
        km.test_symmetry(quad_torch, (-1, 1), [0])
    with pytest.raises(km.FunctionError, match="not in variables"):
        km.probe(x1 + x2, (0, 1), variables=["x1"])
    with pytest.raises(KanirError, match="mode"):
        km.test_separability(QUAD, (-1, 1), [[x1], [x2]], mode="sum")


def test_relu_network_triggers_the_smoothness_warning():
    torch.manual_seed(0)
    relu = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    with pytest.warns(km.NonSmoothWarning, match="piecewise linear"):
        r = km.test_symmetry(relu, (-1, 1), [0], variables=2)
    assert "piecewise linear" in r.note
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert km.test_separability(2 * x1 + 3 * x2, (-1, 1), [[x1], [x2]]).passed
