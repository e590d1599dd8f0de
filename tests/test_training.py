"""Training with pykan's semantics: fits from the paper, float64 refinement, history, errors."""

import math

import pytest
import torch

import kanir
from kanir.errors import DataError, KanirError


def expsin(x):
    return torch.exp(torch.sin(math.pi * x[:, [0]]) + x[:, [1]] ** 2)


def test_kan_2_5_1_fits_exp_sin():
    ds = kanir.create_dataset(expsin, n_var=2, seed=0)
    model = kanir.KAN([2, 5, 1], grid=5, k=3, seed=0, device="cpu")
    hist = model.fit(ds, opt="LBFGS", steps=50, progress=False)
    assert hist["test_rmse"][-1] < 1e-2
    assert len(hist["train_loss"]) == 50
    # pykan's names and meaning: train_loss / test_loss are RMSEs (issue 10)
    with torch.no_grad():
        rmse_tr = torch.sqrt(((model(ds["train_input"]) - ds["train_label"]) ** 2).mean())
        rmse_te = torch.sqrt(((model(ds["test_input"]) - ds["test_label"]) ** 2).mean())
    assert hist["train_loss"][-1] == pytest.approx(float(rmse_tr), rel=1e-4)
    assert hist["test_loss"][-1] == pytest.approx(float(rmse_te), rel=1e-4)
    assert hist["train_rmse"] == hist["train_loss"] and hist["test_rmse"] == hist["test_loss"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_multkan_fits_product_for_every_seed(seed):
    ds = kanir.create_dataset(lambda x: x[:, [0]] * x[:, [1]], n_var=2, seed=seed)
    model = kanir.KAN([2, [0, 1], 1], grid=5, k=3, seed=seed, device="cpu")
    hist = model.fit(ds, opt="LBFGS", steps=50, progress=False)
    assert hist["test_rmse"][-1] < 1e-3
    # the multiplication node does the work: zeroing the mult node's output kills the fit
    g = model.graph
    g.node(1, 0)["scale"] = 0.0
    with torch.no_grad():
        y0 = kanir.lower(g)(ds["test_input"])
    rmse0 = torch.sqrt(((y0 - ds["test_label"]) ** 2).mean())
    assert rmse0 > 0.1


@pytest.mark.slow
def test_float64_refinement_reaches_machine_precision():
    def f(x):
        return torch.sin(3 * x[:, [0]]) + x[:, [0]] ** 2

    ds = kanir.create_dataset(f, n_var=1, seed=0, dtype=torch.float64)
    model = kanir.KAN([1, 1], grid=10, k=3, seed=0, device="cpu", dtype=torch.float64)
    losses = []
    for G in (10, 50, 100, 200):
        if G != 10:
            model.refine(G)
        hist = model.fit(ds, opt="LBFGS", steps=30, progress=False, update_grid=False)
        losses.append(hist["test_loss"][-1])
    assert losses[0] < 2e-8**0.5  # test RMSE
    assert losses[-1] < 1e-8
    assert losses == sorted(losses, reverse=True)


def test_refine_keeps_the_learned_function():
    ds = kanir.create_dataset(expsin, n_var=2, seed=1, dtype=torch.float64)
    model = kanir.KAN([2, 3, 1], grid=5, k=3, seed=1, device="cpu", dtype=torch.float64)
    model.fit(ds, opt="LBFGS", steps=10, progress=False)
    x = ds["test_input"]
    with torch.no_grad():
        before = model(x)
        out = model.refine(20)
        after = model(x)
    assert out is model and model.grid == 20
    assert torch.sqrt(((before - after) ** 2).mean()) < 1e-3 * before.std()


def test_adam_minibatch_and_metrics():
    ds = kanir.create_dataset(lambda x: x[:, [0]] ** 2, n_var=1, seed=0)
    model = kanir.KAN([1, 2, 1], grid=5, seed=0, device="cpu")
    calls = []

    def probe():
        calls.append(1)
        return 1.0

    hist = model.fit(ds, opt="Adam", lr=0.01, steps=20, batch=64, metrics=[probe], progress=False)
    assert len(hist["probe"]) == 20 and len(calls) == 20
    assert hist["train_loss"][-1] < hist["train_loss"][0]


def test_regularisation_drives_edges_down():
    ds = kanir.create_dataset(lambda x: x[:, [0]], n_var=3, seed=0)
    base = kanir.KAN([3, 3, 1], grid=5, seed=0, device="cpu")
    sparse = base.copy()
    base.fit(ds, steps=15, progress=False)
    hist = sparse.fit(ds, steps=15, lamb=0.01, progress=False)
    assert hist["reg"][-1] > 0
    from kanir.train.training import edge_scales, forward_collect

    _, ins_b = forward_collect(base.net, ds["train_input"])
    _, ins_s = forward_collect(sparse.net, ds["train_input"])
    dead_sparse = int((edge_scales(sparse.net, ins_s)[0] < 1e-2).sum())
    dead_base = int((edge_scales(base.net, ins_b)[0] < 1e-2).sum())
    assert dead_sparse > dead_base


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(train_input=d["train_input"][:, :1]),
         "dataset['train_input'] must have shape (batch, 2), got (1000, 1)"),
        (lambda d: d["train_label"].__setitem__((3, 0), float("nan")),
         "dataset['train_label'] contains NaN or inf in 1 row(s) (first: row 3)"),
        (lambda d: d.update(test_label=d["test_label"][:10]),
         "dataset['test_input'] has 1000 rows but dataset['test_label'] has 10"),
        (lambda d: d.pop("train_label"), "dataset lacks ['train_label']"),
    ],
)
def test_bad_datasets_are_named(mutate, message):
    ds = kanir.create_dataset(lambda x: x[:, [0]], n_var=2, seed=0)
    mutate(ds)
    model = kanir.KAN([2, 1], device="cpu")
    with pytest.raises(DataError) as e:
        model.fit(ds, steps=1, progress=False)
    assert message in str(e.value)


def test_wrong_input_shape_and_device_errors():
    model = kanir.KAN([2, 1], device="cpu", input_names=["a", "b"])
    with pytest.raises(DataError, match=r"shape \(batch, 2\) for inputs \['a', 'b'\], got \(5, 3\)"):
        model(torch.zeros(5, 3))
    with pytest.raises(DataError, match="must be a torch tensor"):
        model([[1.0, 2.0]])
    with pytest.raises(KanirError, match="opt must be 'LBFGS' or 'Adam'"):
        model.fit(kanir.create_dataset(lambda x: x[:, [0]], n_var=2), opt="SGD", progress=False)


def test_create_dataset_validates_f():
    with pytest.raises(DataError, match="f returned shape"):
        kanir.create_dataset(lambda x: x[:5], n_var=2, train_num=10, test_num=10)
    with pytest.raises(DataError, match="contains NaN or inf"):
        kanir.create_dataset(lambda x: torch.log(x[:, [0]] - 5), n_var=1, train_num=10, test_num=10)
    with pytest.raises(DataError, match="every range needs finite low < high"):
        kanir.create_dataset(lambda x: x[:, [0]], n_var=1, ranges=[1, 1])
    ds = kanir.create_dataset(lambda x: x[:, 0] * 2, n_var=3, ranges=[[0, 1], [2, 3], [4, 5]],
                              train_num=50, test_num=7, seed=3, dtype=torch.float64)
    assert ds["train_label"].shape == (50, 1) and ds["test_input"].shape == (7, 3)
    assert ds["train_input"][:, 1].min() >= 2 and ds["train_input"][:, 2].max() <= 5
