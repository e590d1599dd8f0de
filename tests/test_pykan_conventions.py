"""pykan-style code for the paper's tutorial workflows runs on kanir and gives pykan's shapes.

Each test is written as a pykan user writes it (pykan 0.2.8's names, positional arguments and
return values), so a silent difference in meaning — a pair that unpacks into something else, a
list where pykan returns a tuple, a file dropped into the working directory — fails here.
"""

from __future__ import annotations

import math
import os

import pytest
import sympy
import torch

from kanir import KAN, create_dataset


@pytest.fixture
def in_empty_dir(tmp_path, monkeypatch):
    """Run in an empty working directory and check nothing was written into it."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert sorted(os.listdir(tmp_path)) == [], "kanir wrote into the working directory"


def _expsin():
    f = lambda x: torch.exp(torch.sin(math.pi * x[:, [0]]) + x[:, [1]] ** 2)
    return create_dataset(f, n_var=2, train_num=1000, test_num=1000, seed=0,
                          dtype=torch.float64)


@pytest.mark.slow
def test_tutorial_fit_prune_auto_symbolic_formula(in_empty_dir):
    """pykan's hello-world: fit -> prune -> refine -> auto_symbolic -> symbolic_formula."""
    dataset = _expsin()
    model = KAN(width=[2, 5, 1], grid=3, k=3, seed=1, dtype=torch.float64)
    model.fit(dataset, opt="LBFGS", steps=30, lamb=0.002)
    model = model.prune()
    assert model.width_in[0] == 2 and model.width_in[1] <= 5 and model.width_out[-1] == 1
    model.fit(dataset, opt="LBFGS", steps=30)
    model = model.refine(10)
    results = model.fit(dataset, opt="LBFGS", steps=30)
    assert set(results) >= {"train_loss", "test_loss", "reg"}
    assert len(results["train_loss"]) == 30 and results["test_loss"][-1] < 1e-2  # an RMSE
    model.auto_symbolic(lib=["x", "x^2", "exp", "sin"])
    model.fit(dataset, opt="LBFGS", steps=30, update_grid=False)

    formula, var = model.symbolic_formula()          # pykan's pair
    assert isinstance(formula, list) and len(formula) == 1
    assert [str(v) for v in var] == ["x_1", "x_2"]
    expr = formula[0]
    assert isinstance(expr, sympy.Expr)
    x1, x2 = var
    f = sympy.lambdify((x1, x2), expr, "math")
    for a, b in [(0.1, -0.3), (-0.7, 0.5), (0.9, 0.9)]:
        assert f(a, b) == pytest.approx(math.exp(math.sin(math.pi * a) + b * b), rel=1e-4)


def test_suggest_symbolic_unpacks_as_in_pykan():
    """``name, fun, r2, c = model.suggest_symbolic(l, i, j)``: the best candidate only."""
    x = torch.rand(500, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    model = KAN(width=[1, 1], grid=20, k=3, seed=0, dtype=torch.float64)
    model.fit({"train_input": x, "train_label": torch.sin(2 * x),
               "test_input": x, "test_label": torch.sin(2 * x)},
              steps=30, progress=False)
    name, fun, r2, c = model.suggest_symbolic(0, 0, 0, lib=["x", "x^2", "sin", "exp"], verbose=False)
    assert name == "sin" and r2 > 0.999 and isinstance(c, int | float)
    torch_fun, sympy_fun = fun[0], fun[1]
    assert torch.allclose(torch_fun(torch.tensor([0.5])), torch.sin(torch.tensor([0.5])))
    assert sympy_fun(sympy.Symbol("x")) == sympy.sin(sympy.Symbol("x"))
    r2_fixed = model.fix_symbolic(0, 0, 0, "sin", fit_params_bool=True, verbose=False)
    assert float(r2_fixed) > 0.999                    # pykan returns R², not the model


def test_get_act_then_activation_records_have_pykans_shapes():
    model = KAN(width=[3, 4, 2], grid=5, k=3, seed=0)
    x = torch.rand(64, 3) * 2 - 1
    model.get_act(x)
    assert [tuple(a.shape) for a in model.acts] == [(64, 3), (64, 4), (64, 2)]
    assert [tuple(a.shape) for a in model.spline_preacts] == [(64, 4, 3), (64, 2, 4)]
    assert [tuple(a.shape) for a in model.spline_postacts] == [(64, 4, 3), (64, 2, 4)]
    assert [tuple(a.shape) for a in model.acts_scale] == [(4, 3), (2, 4)]
    model(x)                                         # pykan: a forward pass caches the data
    assert torch.equal(model.cache_data, x)
    model.attribute()
    assert tuple(model.feature_score.shape) == (3,)
    assert [tuple(s.shape) for s in model.edge_scores] == [(3, 4), (4, 2)]


def test_checkpoints_write_only_where_asked(in_empty_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    model = KAN(width=[2, 3, 1], seed=0)
    x = torch.rand(20, 2)
    y = model(x).detach()
    model.saveckpt(str(folder / "mark"))
    assert (folder / "mark.kanir").is_file()
    again = KAN.loadckpt(str(folder / "mark"))
    assert torch.equal(again(x), y)
    model.remove_edge(0, 0, 0)
    assert model.version == "0.1"
    old = model.checkout("0.0")                      # pykan's checkout: the old state
    assert torch.equal(old(x), y)
    model.rewind("0.0")
    assert torch.equal(model(x), y) and model.version == "1.0"


def test_plot_with_pykans_arguments(in_empty_dir, tmp_path_factory):
    """pykan: ``model.plot(folder, beta, metric, scale, tick, sample, in_vars, out_vars, title,
    varscale)`` draws every edge's curve with matplotlib."""
    from matplotlib.figure import Figure

    folder = tmp_path_factory.mktemp("figures")
    model = KAN(width=[2, 3, 1], seed=0)
    model(torch.rand(50, 2) * 2 - 1)
    fig = model.plot(str(folder), 10, "backward", 0.5, False, False, [r"$x$", r"$y$"], ["f"],
                     "my KAN", 1.0)
    assert isinstance(fig, Figure) and fig._suptitle.get_text() == "my KAN"
    assert {"$x$", "$y$", "f"} <= {t.get_text() for t in fig.axes[0].texts}
    assert len(fig.axes[0].child_axes) == 2 * 3 + 3  # one panel per edge
    assert sorted(p.name for p in folder.iterdir()) == ["kan.png"]
    with pytest.raises(Exception, match="metric"):
        model.plot(metric="no-such-metric")


def test_width_reads_back_as_pykans_sum_mult_pairs():
    model = KAN(width=[2, [3, 2], 1], mult_arity=[[], [2, 3], []], seed=0)
    assert model.width == [[2, 0], [3, 2], [1, 0]]      # pykan: model.width[l][0] = sum nodes
    assert [model.width[l][0] for l in range(3)] == [2, 3, 1]
    assert model.width_spec == [2, [3, 2], 1]
    assert model.mult_arity == [[], [2, 3], []]
    rebuilt = KAN(width=model.width, mult_arity=model.mult_arity, seed=0)
    assert rebuilt.width == model.width and rebuilt.graph.layer_widths() == model.graph.layer_widths()
    plain = KAN(width=[2, 5, 1], seed=0)
    assert plain.width == [[2, 0], [5, 0], [1, 0]] and plain.mult_arity == 2
    assert KAN(width=plain.width).width_spec == [2, 5, 1]


def test_prune_node_manual_and_remove_node_keep_pykans_indices():
    model = KAN(width=[2, 4, 1], seed=0)
    x = torch.rand(50, 2) * 2 - 1
    model(x)
    model.remove_node(1, 1)                          # masked, indices stay
    assert model.width_in == [2, 4, 1]
    model.prune_node(active_neurons_id=[[0, 2, 3]])  # pykan: the list implies mode='manual'
    assert model.width_in == [2, 3, 1]


def test_augment_input_puts_auxiliary_columns_first():
    f = lambda x: x[:, [0]] / x[:, [1]]
    dataset = create_dataset(f, n_var=2, ranges=[[1, 2], [1, 2]], seed=0, dtype=torch.float64)
    model = KAN(width=[2, 3, 1], seed=0, input_names=["a", "b"], dtype=torch.float64)
    new = model.augment_input(["a", "b"], {"r": "a/b"}, dataset)
    assert model.input_names == ["r", "a", "b"]
    assert torch.allclose(new["train_input"][:, 0],
                          dataset["train_input"][:, 0] / dataset["train_input"][:, 1])
    assert torch.equal(new["train_input"][:, 1:], dataset["train_input"])
