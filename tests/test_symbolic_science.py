"""Symbolic regression from data, end to end (issue 5's "tests must show"): trained networks come
back as exact formulas; singular library functions never produce NaN or inf."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import sympy
import torch

import kanir
from kanir.passes._eval import evaluate
from kanir.train.training import create_dataset

T = torch.float64


def truth_equal(f, truth) -> bool:
    return sympy.simplify(f - truth) == 0


@pytest.mark.slow
def test_exp_sin_square_tutorial_pipeline_recovers_the_formula():
    """f = exp(sin(πx) + y²), [2,5,1]: fit with sparsity → prune → refine → auto_symbolic → fit →
    formula, equal to the truth after snapping (pykan's tutorial, fixed seed)."""
    torch.manual_seed(0)
    f = lambda x: torch.exp(torch.sin(torch.pi * x[:, [0]]) + x[:, [1]] ** 2)  # noqa: E731
    ds = create_dataset(f, n_var=2, seed=0)
    m = kanir.KAN(width=[2, 5, 1], grid=3, k=3, seed=1, device="cpu")
    m.fit(ds, opt="LBFGS", steps=50, lamb=0.001, progress=False)
    m.prune()
    assert sum(1 for _ in m.graph.act_edges()) == 3  # sin(πx), y², exp: the rest pruned
    m.fit(ds, opt="LBFGS", steps=30, progress=False)
    m.refine(10)
    m.fit(ds, opt="LBFGS", steps=30, progress=False)
    rep = m.auto_symbolic(lib=["x", "x^2", "x^3", "x^4", "exp", "log", "sqrt", "tanh", "sin",
                               "abs"], verbose=0)
    assert sorted(e.fun for e in rep) == ["exp", "sin", "x^2"]
    m.fit(ds, opt="LBFGS", steps=30, progress=False, update_grid=False)
    (formula,) = m.formula(x=ds["train_input"], y=ds["train_label"])
    x1, x2 = sympy.symbols("x_1 x_2")
    assert truth_equal(formula, sympy.exp(sympy.sin(sympy.pi * x1) + x2**2))


@pytest.mark.slow
def test_relativistic_mass_with_auxiliary_inputs_gives_m0_gamma():
    """m0/sqrt(1 - v²/c²) with auxiliary inputs β = v/c and γ = 1/sqrt(1 - β²): the network
    prunes to the product m0·γ (the paper's section 3.1).

    The product sits in the output layer ([n, [0, 1]], pykan's notation): y = (Σ f_i)(Σ g_i).
    With a trailing output edge ([n, [0, 1], 1]) the same recipe found m0·γ for none of seeds
    0-2 (the edge after the product absorbs curvature and auto_symbolic picks sin for it); with
    the product in the output layer, fit → fit with lamb → prune finds it for seeds 0-5."""
    f = lambda x: x[:, [0]] / torch.sqrt(1 - x[:, [1]] ** 2 / x[:, [2]] ** 2)  # noqa: E731
    ds = create_dataset(f, n_var=3, ranges=[[1, 5], [1, 2], [3, 10]], seed=0, dtype=T)
    m0, v, c = sympy.symbols("m0 v c")
    m = kanir.KAN(width=[3, [0, 1]], grid=5, k=3, seed=0, device="cpu", dtype=T,
                  input_names=["m0", "v", "c"])
    ds2 = m.augment_input([m0, v, c], {"beta": v / c, "gamma": 1 / sympy.sqrt(1 - (v / c) ** 2)},
                          ds)
    assert m.input_names == ["beta", "gamma", "m0", "v", "c"]  # pykan: auxiliary inputs first
    m.fit(ds2, opt="LBFGS", steps=50, progress=False)
    m.fit(ds2, opt="LBFGS", steps=50, lamb=1e-2, progress=False)
    m.prune()
    m.fit(ds2, opt="LBFGS", steps=20, progress=False)
    m.auto_symbolic(lib=["x", "x^2", "1/x", "sqrt", "exp", "log", "sin"], verbose=0)
    m.fit(ds2, opt="LBFGS", steps=20, progress=False, update_grid=False)
    (formula,) = m.formula(x=ds2["train_input"], y=ds2["train_label"])
    assert formula == sympy.Symbol("m0") * sympy.Symbol("gamma")


def test_singular_library_on_inputs_crossing_zero_is_nan_free():
    """With 1/x, 1/x², log and sqrt in the library and inputs in [-1, 1]: activations, losses
    and the formula stay finite (pykan #174, #286, #289, #480)."""
    f = lambda x: torch.exp(-x[:, [0]]) + x[:, [1]] ** 2 - 0.5  # noqa: E731
    ds = create_dataset(f, n_var=2, train_num=400, test_num=100, seed=0, dtype=T)
    m = kanir.KAN(width=[2, 2, 1], grid=5, k=3, seed=0, device="cpu", dtype=T)
    m.fit(ds, steps=15, progress=False)
    rep = m.auto_symbolic(lib=["1/x", "1/x^2", "log", "sqrt"], verbose=0)
    acts = evaluate(m.graph, ds["train_input"])  # plain torch forms, not the safe ones
    for layer in acts:
        assert np.isfinite(layer.edge).all() and np.isfinite(layer.output).all()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hist = m.fit(ds, steps=10, progress=False, update_grid=False)
    assert all(math.isfinite(v) for v in hist["train_loss"] + hist["test_loss"])
    assert all(bool(torch.isfinite(p).all()) for p in m.net.parameters())
    if "stopped_early" in hist:  # a step reached the pole: said, and undone, never kept
        assert any("NaN/inf" in str(w.message) for w in caught)
        with torch.no_grad():
            assert bool(torch.isfinite(m(ds["test_input"])).all())
    if rep.kept:  # reported, never silently NaN
        assert all(e.reason for e in rep.kept)
        return
    (formula,) = m.formula(x=ds["train_input"], y=ds["train_label"])
    fn = sympy.lambdify(sympy.symbols("x_1 x_2"), formula, "numpy")
    vals = np.asarray(fn(*ds["test_input"].numpy().T), dtype=float)
    assert np.isfinite(vals).all()
