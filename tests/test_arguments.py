"""Issue 10: every argument of KAN(...) and fit is checked (a KanirError naming it), and pykan's
constructor and fit arguments are accepted with pykan's meaning."""

import math

import pytest
import torch

import kanir
from kanir.errors import ArgumentError, DataError, KanirError, WidthSpecError
from kanir.train.training import edge_scales, forward_collect


def _data(n_var=2, seed=0, dtype=torch.float32, n=200):
    return kanir.create_dataset(lambda x: x[:, [0]] ** 2 + x[:, [-1]], n_var=n_var, seed=seed,
                                train_num=n, test_num=n, dtype=dtype)


def _kan(width=(2, 3, 1), **kw):
    kw.setdefault("device", "cpu")
    return kanir.KAN(list(width), **kw)


# ---------------------------------------------------------------------- names
@pytest.mark.parametrize("names, match", [
    (["a", "a"], r"input_names repeat \['a'\]"),
    (["", "b"], "name '' is empty"),
    (["x y", "b"], "'x y' is not an identifier"),
    (["a\nb", "b"], "is not an identifier"),
    ([1, "b"], r"must be strings, got 1 \(int\)"),
    ("ab", "must be a list of names"),
    (["a", "b", "c"], "3 input_names for 2 nodes"),
])
def test_bad_input_names_are_refused_at_construction(names, match):
    with pytest.raises(ArgumentError, match=match):
        _kan(input_names=names)


def test_bad_output_names_are_refused_and_good_names_round_trip(tmp_path):
    with pytest.raises(ArgumentError, match=r"output_names repeat \['y'\]"):
        _kan((2, 2), output_names=["y", "y"])
    with pytest.raises(ArgumentError, match="'1y' is not an identifier"):
        _kan((2, 1), output_names=["1y"])
    m = _kan((2, 1), input_names=["alpha", "x_2"], output_names=["E_total"])
    m.save(tmp_path / "m.kanir")
    back = kanir.load(tmp_path / "m.kanir", device="cpu")
    assert back.input_names == ["alpha", "x_2"] and back.output_names == ["E_total"]


# ---------------------------------------------------------------------- constructor
@pytest.mark.parametrize("kw, err, match", [
    ({"width": 5}, WidthSpecError, "width must be a list"),
    ({"width": None}, ArgumentError, "KAN needs a width"),
    ({"seed": "a"}, ArgumentError, "seed must be an integer, got 'a'"),
    ({"seed": 1.5}, ArgumentError, "seed must be an integer"),
    ({"seed": 2**70}, ArgumentError, "seed must be an integer"),
    ({"dtype": torch.int32}, ArgumentError, "dtype must be torch.float32 or torch.float64"),
    ({"dtype": torch.float16}, ArgumentError, "dtype must be"),
    ({"grid": 0}, ArgumentError, r"grid \(number of spline intervals\) must be an integer >= 1"),
    ({"grid": 5.0}, ArgumentError, "grid .* must be an integer"),
    ({"k": True}, ArgumentError, "k .* must be an integer"),
    ({"noise_scale": float("nan")}, ArgumentError, "noise_scale must be a finite number"),
    ({"noise_scale": -1}, ArgumentError, "noise_scale must be >= 0"),
    ({"scale_base_sigma": -0.5}, ArgumentError, "scale_base_sigma must be >= 0"),
    ({"scale_base_mu": float("inf")}, ArgumentError, "scale_base_mu must be a finite"),
    ({"grid_eps": 1.5}, ArgumentError, "grid_eps must be <= 1"),
    ({"grid_range": (1, 1)}, ArgumentError, "low < high"),
    ({"grid_range": 3}, ArgumentError, r"grid_range must be \(low, high\)"),
    ({"base_fun": "relu"}, ArgumentError, "unknown base_fun 'relu'; choose one of"),
    ({"base_fun": torch.sin}, ArgumentError, "is not supported.*silu"),
    ({"base_fun": torch.nn.GELU(approximate="tanh")}, ArgumentError, "is not supported"),
    ({"sparse_init": 1}, ArgumentError, "sparse_init must be True or False"),
    ({"affine_trainable": "yes"}, ArgumentError, "affine_trainable must be True or False"),
    ({"state_id": -1}, ArgumentError, "state_id must be an integer >= 0"),
    ({"device": "banana"}, ArgumentError, "device must be a torch device"),
    ({"versions": 3}, ArgumentError, "versions must be True, False or a folder"),
    ({"auto_save": False, "versions": "somewhere"}, ArgumentError, "give one of them"),
    ({"ckpt_path": "a", "versions": "b"}, ArgumentError, "disagree"),
])
def test_bad_constructor_arguments(kw, err, match):
    kw = {"width": [2, 3, 1], "device": "cpu", **kw}
    with pytest.raises(err, match=match):
        kanir.KAN(**kw)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_cuda_device_without_cuda_is_a_clear_error():
    with pytest.raises(ArgumentError, match="CUDA is not available"):
        kanir.KAN([2, 1], device="cuda")


def test_pykan_positional_order():
    """pykan's order: width, grid, k, mult_arity, noise_scale, scale_base_mu, scale_base_sigma."""
    a = kanir.KAN([2, 3, 1], 5, 3, 2, 0.7, 0.2, 0.5, device="cpu")
    b = _kan(grid=5, k=3, noise_scale=0.7, scale_base_mu=0.2, scale_base_sigma=0.5)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.net.layers[0].coef, _kan(grid=5).net.layers[0].coef)


def test_scale_base_mu_and_sigma_reach_the_initialisation():
    m = _kan((4, 3, 1), scale_base_mu=0.5, scale_base_sigma=0.0)
    assert torch.equal(m.net.layers[0].scale_base, torch.full((4, 3), 0.5 / 2))
    assert torch.equal(m.net.layers[1].scale_base, torch.full((3, 1), 0.5 / 3**0.5))


@pytest.mark.parametrize("fun, name", [
    (torch.nn.SiLU(), "silu"), (torch.nn.functional.silu, "silu"), (torch.nn.Identity(), "identity"),
    (torch.tanh, "tanh"), (torch.nn.Tanh(), "tanh"), (torch.nn.GELU(), "gelu"),
    (torch.zeros_like, "zero"),
])
def test_callable_base_fun_maps_to_the_library_name(fun, name):
    m = _kan(base_fun=fun, seed=3)
    ref = _kan(base_fun=name, seed=3)
    assert m.graph.meta["base_fun"] == name
    x = torch.rand(16, 2) * 2 - 1
    with torch.no_grad():
        assert torch.equal(m(x), ref(x))


def test_trainable_flags_set_requires_grad_and_survive_passes():
    m = _kan(affine_trainable=True, sp_trainable=False, sb_trainable=False)
    for layer in m.net.layers:
        assert layer.node_bias.requires_grad and layer.subnode_scale.requires_grad
        assert not layer.scale_sp.requires_grad and not layer.scale_base.requires_grad
        assert layer.coef.requires_grad
    sp0 = [layer.scale_sp.detach().clone() for layer in m.net.layers]
    m.fit(_data(), steps=3, progress=False)
    assert any(bool((layer.node_bias != 0).any()) for layer in m.net.layers)
    for layer, s in zip(m.net.layers, sp0):
        assert torch.equal(layer.scale_sp, s)
    m.remove_edge(0, 0, 0)  # a pass lowers a new module: the flags stay
    assert m.net.layers[0].node_scale.requires_grad and not m.net.layers[1].scale_base.requires_grad
    default = _kan()
    assert not default.net.layers[0].node_bias.requires_grad
    assert default.net.layers[0].scale_sp.requires_grad


def test_grid_eps_is_the_default_of_fits_grid_updates():
    ds = _data()
    uniform = _kan(grid=5, grid_eps=1.0, seed=2)
    explicit = _kan(grid=5, seed=2)
    default = _kan(grid=5, seed=2)
    uniform.fit(ds, steps=1, progress=False)
    explicit.fit(ds, steps=1, progress=False, grid_eps=1.0)
    default.fit(ds, steps=1, progress=False)
    g = uniform.net.layers[0].grid
    assert torch.equal(g, explicit.net.layers[0].grid)
    steps = torch.diff(g, dim=1)
    assert torch.allclose(steps, steps[:, :1].expand_as(steps), rtol=1e-5)  # uniform knots
    assert not torch.allclose(default.net.layers[0].grid, g)  # pykan's 0.02: quantile knots


def test_versions_from_pykans_auto_save_and_ckpt_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _kan(auto_save=False).version is None
    m = _kan(auto_save=True)  # pykan would write ./model; kanir keeps versions in memory
    assert m.version == "0.0" and list(tmp_path.iterdir()) == []
    m = _kan(ckpt_path=tmp_path / "ckpt")
    m.fit(_data(), steps=1, progress=False)
    assert m.version == "0.1" and len(list((tmp_path / "ckpt").glob("*.kanir"))) == 2


def test_pykan_flags_without_effect_are_accepted():
    ref = _kan(seed=4)
    m = _kan(seed=4, symbolic_enabled=False, first_init=False, state_id=0, round=0)
    for pa, pb in zip(m.parameters(), ref.parameters()):
        assert torch.equal(pa, pb)
    assert _kan(save_act=True).net.layers[0].keep_acts
    assert not _kan(save_act=False).net.layers[0].keep_acts


# ---------------------------------------------------------------------- fit
@pytest.mark.parametrize("kw, match", [
    ({"batch": 0}, r"batch must be -1 \(full batch\) or a positive integer, got 0"),
    ({"batch": -5}, r"batch \(-1 for the full batch\) must be an integer >= -1, got -5"),
    ({"batch": 1.5}, r"batch \(-1 for the full batch\) must be an integer, got 1.5"),
    ({"opt": "Adam", "lr": float("nan")}, "lr must be a finite number, got nan"),
    ({"lr": 0}, "lr must be > 0"),
    ({"lamb": -1}, "lamb must be >= 0, got -1"),
    ({"lamb_entropy": float("inf")}, "lamb_entropy must be a finite number"),
    ({"steps": -1}, "steps must be an integer >= 0"),
    ({"steps": 10.0}, "steps must be an integer"),
    ({"log": -1}, "log must be an integer >= 0"),
    ({"grid_update_num": 0}, "grid_update_num must be an integer >= 1"),
    ({"y_th": 0}, "y_th must be > 0"),
    ({"grid_eps": -0.1}, "grid_eps must be >= 0"),
    ({"seed": "x"}, "seed must be an integer"),
    ({"update_grid": "no"}, "update_grid must be True or False"),
    ({"loss_fn": 3}, "loss_fn must be a function"),
    ({"metrics": [1]}, "metrics must be a list of functions"),
    ({"display_metrics": "reg"}, "display_metrics must be a list of history names"),
    ({"display_metrics": ["train_loss", "acc"]}, r"display_metrics \['acc'\] are not in the "
                                                 r"history; choose from \['train_loss'"),
    ({"reg_metric": "edge_backward"}, "reg_metric 'edge_backward' is not supported; kanir's "
                                      r"regulariser supports \['edge_forward_spline_n', "
                                      r"'edge_forward_spline_u'\]"),
    ({"save_fig": True}, "save_fig=True: kanir's fit writes no per-step figures; call "
                         r"model.plot\(path=\.\.\.\)"),
    ({"opt": "SGD"}, "opt must be 'LBFGS' or 'Adam'"),
])
def test_bad_fit_arguments(kw, match):
    m = _kan()
    before = [p.detach().clone() for p in m.parameters()]
    with pytest.raises(ArgumentError, match=match):
        m.fit(_data(), progress=False, steps=kw.pop("steps", 2), **kw)
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters()))  # nothing trained


def test_fit_needs_test_data_as_in_pykan():
    ds = _data()
    del ds["test_input"], ds["test_label"]
    with pytest.raises(DataError, match=r"dataset lacks \['test_input', 'test_label'\]: as in "
                                        "pykan, fit and evaluate report test metrics"):
        _kan().fit(ds, steps=1, progress=False)


def test_pykans_defaults_and_figure_arguments_are_accepted():
    m = _kan()
    hist = m.fit(_data(), steps=2, metrics=None, save_fig=False, in_vars=["a", "b"],
                 out_vars=["y"], beta=10, save_fig_freq=5, img_folder="./video",
                 reg_metric="edge_forward_spline_n", display_metrics=["test_loss", "reg"])
    assert len(hist["train_loss"]) == 2 and set(hist) == {"train_loss", "test_loss",
                                                          "train_rmse", "test_rmse", "reg"}


def test_batch_larger_than_the_data_is_the_full_batch():
    ds = _data(n=50)
    a, b = _kan(seed=5), _kan(seed=5)
    ha = a.fit(ds, steps=2, batch=-1, progress=False)
    hb = b.fit(ds, steps=2, batch=500, progress=False)
    assert ha["train_loss"] == hb["train_loss"]


def test_custom_loss_fn_history_is_its_square_root_as_in_pykan():
    ds = _data(dtype=torch.float64)
    m = _kan(dtype=torch.float64)
    mae = lambda p, y: torch.mean(torch.abs(p - y))  # noqa: E731
    hist = m.fit(ds, steps=2, loss_fn=mae, progress=False)
    with torch.no_grad():
        pred = m(ds["test_input"])
    assert hist["test_loss"][-1] == pytest.approx(math.sqrt(float(mae(pred, ds["test_label"]))),
                                                  rel=1e-12)
    rmse = float(torch.sqrt(((pred - ds["test_label"]) ** 2).mean()))
    assert hist["test_rmse"][-1] == pytest.approx(rmse, rel=1e-12)
    with pytest.raises(ArgumentError, match="loss_fn must return a scalar tensor"):
        m.fit(ds, steps=1, loss_fn=lambda p, y: (p - y) ** 2, progress=False)


def test_reg_metric_spline_u_is_the_unnormalised_std():
    ds = _data(dtype=torch.float64)
    m = _kan(dtype=torch.float64)
    _, inputs = forward_collect(m.net, ds["train_input"])
    n = edge_scales(m.net, inputs)
    u = edge_scales(m.net, inputs, normalized=False)
    for layer_in, sn, su in zip(inputs, n, u):
        assert torch.allclose(sn, su / (layer_in.x.std(dim=0).unsqueeze(1) + 0.1), rtol=1e-12)
    hist = m.fit(ds, steps=2, lamb=0.01, reg_metric="edge_forward_spline_u", progress=False)
    assert hist["reg"][-1] > 0
    m.fix_symbolic(0, 0, 0, "x^2", verbose=False)
    with pytest.raises(ArgumentError, match="edge_forward_spline_u' with symbolic edges"):
        m.fit(ds, steps=1, lamb=0.01, reg_metric="edge_forward_spline_u", progress=False)


def test_refine_arguments_are_checked():
    m = _kan()
    with pytest.raises(ArgumentError, match="new_grid must be an integer >= 1"):
        m.refine(0)
    with pytest.raises(ArgumentError, match="grid_eps must be <= 1"):
        m.refine(5, grid_eps=2)


# ---------------------------------------------------------------------- datasets
def test_create_dataset_from_data_splits_every_row_once():
    x = torch.arange(40, dtype=torch.float64).reshape(20, 2)
    y = x[:, 0] * 10  # 1-D labels become a column
    ds = kanir.create_dataset_from_data(x, y, train_ratio=0.75, seed=1)
    assert ds["train_input"].shape == (15, 2) and ds["test_input"].shape == (5, 2)
    assert ds["train_label"].shape == (15, 1) and ds["train_input"].dtype == torch.float64
    rows = torch.cat([ds["train_input"], ds["test_input"]])[:, 0].sort().values
    assert torch.equal(rows, x[:, 0])
    assert torch.equal(ds["train_label"][:, 0], ds["train_input"][:, 0] * 10)
    again = kanir.create_dataset_from_data(x, y, train_ratio=0.75, seed=1)
    assert torch.equal(again["train_input"], ds["train_input"])
    other = kanir.create_dataset_from_data(x, y, train_ratio=0.75, seed=2)
    assert not torch.equal(other["train_input"], ds["train_input"])
    model = kanir.KAN([2, 1], device="cpu")
    assert len(model.fit(ds, steps=1, progress=False)["test_loss"]) == 1


@pytest.mark.parametrize("args, kw, err, match", [
    ((torch.zeros(5, 2), torch.zeros(4, 1)), {}, DataError, "inputs have 5 rows but labels have 4"),
    ((torch.zeros(5, 2), torch.zeros(5, 1)), {"train_ratio": 1.0}, DataError,
     "leaves 5 training and 0 test rows"),
    ((torch.zeros(5, 2), torch.zeros(5, 1)), {"train_ratio": 1.5}, ArgumentError,
     "train_ratio must be <= 1"),
    ((torch.full((5, 2), float("nan")), torch.zeros(5, 1)), {}, DataError,
     "inputs contains NaN or inf"),
    ((torch.zeros(5), torch.zeros(5, 1)), {}, DataError, "inputs must have shape"),
])
def test_create_dataset_from_data_errors(args, kw, err, match):
    with pytest.raises(err, match=match):
        kanir.create_dataset_from_data(*args, **kw)


def test_evaluate_returns_pykans_dict():
    ds = _data(dtype=torch.float64)
    m = _kan(grid=4, dtype=torch.float64)
    ev = m.evaluate(ds)
    with torch.no_grad():
        rmse = torch.sqrt(((m(ds["test_input"]) - ds["test_label"]) ** 2).mean())
    assert ev == {"test_loss": pytest.approx(float(rmse), rel=1e-12), "n_edge": 9, "n_grid": 4}
    m.remove_edge(0, 1, 2)
    assert m.evaluate(ds)["n_edge"] == 8
    with pytest.raises(KanirError, match="lacks"):
        m.evaluate({"train_input": ds["train_input"], "train_label": ds["train_label"]})


def test_negative_custom_loss_gives_nan_history_with_a_warning():
    ds = _data(dtype=torch.float64)
    m = _kan(dtype=torch.float64)
    with pytest.warns(UserWarning, match="loss_fn returned a negative value"):
        hist = m.fit(ds, opt="Adam", lr=1e-4, steps=2, progress=False,
                     loss_fn=lambda p, y: -torch.mean((p - y) ** 2))
    assert all(math.isnan(v) for v in hist["train_loss"] + hist["test_loss"])
    assert all(v > 0 for v in hist["train_rmse"] + hist["test_rmse"])


def test_grid_range_as_numpy_array():
    import numpy as np

    m = _kan(grid_range=np.array([-2.0, 3.0]), grid=5, k=3)
    assert m.graph.meta["grid_range"] == (-2.0, 3.0)
