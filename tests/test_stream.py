"""fit on a stream of batches (a torch DataLoader): Adam over the stream, test metrics over a test
stream, grid updates and refine from a bounded reservoir sample of the whole stream."""

import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

import kanir
from kanir.errors import ArgumentError, DataError
from kanir.train.grids import Reservoir


def batches(x, y, size, shuffle=False, seed=0):
    """A DataLoader of (x, y) batches that indexes the tensors once per batch (fast)."""
    ds = TensorDataset(x, y)
    order = (RandomSampler(ds, generator=torch.Generator().manual_seed(seed)) if shuffle
             else SequentialSampler(ds))
    return DataLoader(ds, sampler=BatchSampler(order, size, False), batch_size=None)


def model(n_in=1, grid=5):
    return kanir.KAN(width=[n_in, 1], grid=grid, k=3, seed=0, dtype=torch.float64, versions=False)


def exp_sin(x):
    return torch.exp(torch.sin(torch.pi * x[:, [0]]))


# ---------------------------------------------------------------------- reservoir
def test_reservoir_equals_sequential_algorithm_r():
    """The batched reservoir takes exactly the rows the one-row-at-a-time Algorithm R takes with
    the same random draws (several rows of a batch drawing one slot: the last one wins)."""
    size, sizes = 50, [30, 7, 64, 200, 1, 128]
    x = torch.arange(float(sum(sizes))).unsqueeze(1)
    res = Reservoir(size, seed=3)
    gen = torch.Generator().manual_seed(3)
    ref, seen, start = [None] * size, 0, 0
    for b in sizes:
        batch = x[start:start + b]
        start += b
        res.add(batch)
        free = max(0, min(size - seen, b))
        u = torch.rand(b - free, generator=gen, dtype=torch.float64) if b > free else []
        for i in range(b):
            t = seen + i
            if i < free:
                ref[t] = float(batch[i, 0])
            else:
                slot = int((u[i - free] * (t + 1)).floor())
                if slot < size:
                    ref[slot] = float(batch[i, 0])
        seen += b
    assert res.sample()[:, 0].tolist() == ref
    assert res.rows.shape == (size, 1)  # bounded whatever the stream's length


def test_reservoir_is_uniform_and_seeded():
    """Every row of the stream is equally likely to be kept: with 200k rows in batches of 1000
    and 20k kept, each tenth of the stream holds 2000 +- 5 sigma of the sample."""
    n, size = 200_000, 20_000
    x = torch.arange(float(n)).unsqueeze(1)
    res = Reservoir(size, seed=0)
    for s in range(0, n, 1000):
        res.add(x[s:s + 1000])
    kept = res.sample()[:, 0]
    assert kept.shape == (size,) and len(torch.unique(kept)) == size
    counts = torch.bincount((kept / (n // 10)).long(), minlength=10)
    sigma = (size * 0.1 * 0.9) ** 0.5
    assert (counts - size / 10).abs().max() < 5 * sigma
    again = Reservoir(size, seed=0)
    for s in range(0, n, 1000):
        again.add(x[s:s + 1000])
    assert torch.equal(again.sample(), res.sample())


def test_reservoir_shorter_stream_keeps_everything():
    res = Reservoir(100, seed=0)
    res.add(torch.ones(30, 2))
    res.add(torch.zeros(20, 2))
    assert res.sample().shape == (50, 2) and float(res.sample().sum()) == 60.0


# ---------------------------------------------------------------------- fit on a stream
@pytest.mark.slow
def test_fit_dataloader_reaches_dict_test_rmse():
    """200k samples in batches of 1k: Adam over the stream reaches the test RMSE of the dict
    path (full-batch LBFGS on the same 200k samples) within 10%."""
    data = kanir.create_dataset(exp_sin, n_var=1, train_num=200_000, test_num=2000, seed=0,
                                dtype=torch.float64)
    ref = model()
    dict_rmse = ref.fit(data, opt="LBFGS", steps=5, progress=False)["test_loss"][-1]
    m = model()
    train = batches(data["train_input"], data["train_label"], 1000, shuffle=True)
    test = batches(data["test_input"], data["test_label"], 1000)
    hist = m.fit(train, opt="Adam", lr=0.05, steps=3, test_loader=test, progress=False)
    assert len(hist["test_loss"]) == 3 and len(hist["train_loss"]) == 3
    assert abs(hist["test_loss"][-1] - dict_rmse) <= 0.1 * dict_rmse, (hist, dict_rmse)
    assert hist["test_loss"][-1] == pytest.approx(m.evaluate(data)["test_loss"], rel=1e-12)


def test_stream_grid_update_sees_the_whole_stream():
    """A stream sorted by x: the first batch covers [-3, -2.6]; the grid after the update spans
    all of [-3, 5] (up to the spacing of the reservoir's samples, 8/2000)."""
    x = torch.linspace(-3, 5, 20_000, dtype=torch.float64).unsqueeze(1)
    y = torch.sin(x)
    m = model()
    train = batches(x, y, 1000)  # in order: batch i holds the i-th twentieth of the range
    hist = m.fit(train, opt="Adam", lr=0.01, steps=1, test_loader=batches(x[::7], y[::7], 1000),
                 progress=False, grid_samples=2000)
    grid = m.net.layers[0].grid[0]
    k = m.net.layers[0].k
    assert float(grid[k]) <= -2.99 and float(grid[-k - 1]) >= 4.99
    assert len(hist["train_loss"]) == 1
    assert m.cache_x.shape == (2000, 1)  # refine's samples: the bounded reservoir
    # and refine draws from a stream the same way
    m.refine(8, x=batches(x, y, 500), grid_samples=1000, grid_eps=1.0)
    g = m.net.layers[0].grid[0]
    assert m.grid == 8 and float(g[k]) <= -2.98 and float(g[-k - 1]) >= 4.98


def test_stream_history_is_over_the_test_stream():
    """test_loss of a step is the RMSE over all test batches (size-weighted), train_loss the
    RMSE over the batches trained on in that pass; a custom loss gets the same RMSEs."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3000, 2, generator=g, dtype=torch.float64) * 2 - 1
    y = x[:, [0]] * x[:, [1]]
    data = {"train_input": x[:2000], "train_label": y[:2000], "test_input": x[2000:],
            "test_label": y[2000:]}
    m = model(n_in=2, grid=3)
    test = batches(x[2000:], y[2000:], 300)  # uneven last batch: 100 rows
    hist = m.fit(batches(x[:2000], y[:2000], 250), opt="Adam", lr=0.01, steps=2, test_loader=test,
                 update_grid=False, progress=False)
    assert hist["test_loss"][-1] == pytest.approx(m.evaluate(data)["test_loss"], rel=1e-12)
    assert hist["test_rmse"] == hist["test_loss"] and hist["train_rmse"] == hist["train_loss"]
    m2 = model(n_in=2, grid=3)
    h2 = m2.fit(batches(x[:2000], y[:2000], 250), opt="Adam", lr=0.01, steps=2, test_loader=test,
                update_grid=False, progress=False, loss_fn=lambda p, t: ((p - t) ** 2).mean() * 4)
    assert h2["test_loss"][-1] == pytest.approx(2 * h2["test_rmse"][-1], rel=1e-12)
    assert h2["train_loss"][-1] == pytest.approx(2 * h2["train_rmse"][-1], rel=1e-12)
    assert h2["test_rmse"][-1] == pytest.approx(m2.evaluate(data)["test_loss"], rel=1e-12)


# ---------------------------------------------------------------------- refusals
def _stream():
    x = torch.linspace(-1, 1, 40, dtype=torch.float64).unsqueeze(1)
    return batches(x, x ** 2, 10)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(opt="LBFGS"), ArgumentError, "opt='LBFGS' needs the full-batch"),
    (dict(batch=10), ArgumentError, "batch=10 with a stream"),
    (dict(test_loader=None), DataError, "needs test_loader="),
    (dict(test_loader=iter([(torch.zeros(2, 1), torch.zeros(2, 1))])), DataError, "one-shot"),
    (dict(test_loader=[torch.zeros(2, 1)]), DataError, "must be an (x, y) pair"),
    (dict(test_loader=[(torch.zeros(2, 1), torch.zeros(3, 1))]), DataError, "2 x rows but 3"),
    (dict(test_loader=[(torch.full((2, 1), float("nan")), torch.zeros(2, 1))]), DataError,
     "NaN"),
    (dict(test_loader=[]), DataError, "yielded no batches"),
])
def test_stream_refusals(kwargs, error, words):
    args = dict(opt="Adam", steps=1, test_loader=_stream(), progress=False)
    args.update(kwargs)
    with pytest.raises(error, match=None) as info:
        model().fit(_stream(), **args)
    assert words in str(info.value)


def test_stream_refusals_of_the_training_stream():
    m = model()
    with pytest.raises(DataError, match="one-shot"):
        m.fit((b for b in _stream()), opt="Adam", test_loader=_stream(), progress=False)
    with pytest.raises(DataError, match="re-iterable of"):
        m.fit(torch.zeros(3, 1), opt="Adam", test_loader=_stream(), progress=False)
    data = kanir.create_dataset(lambda x: x, n_var=1, train_num=10, test_num=10)
    with pytest.raises(ArgumentError, match="test_loader goes with a stream"):
        m.fit(data, test_loader=_stream(), progress=False)
