"""fit across two (and three) processes (torch.distributed, gloo on CPU) equals one process on
the union of the shards: LBFGS and Adam on dataset dicts, full batch and minibatches drawn from
the union, Adam on streams, with the regulariser and grid updates on, in float64; the history
(user metrics included) is the single-process one; only rank 0 writes version files."""

import os
import socket
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import kanir
import kanir.distributed as kd
import kanir.model.versions

WORLD = 2
TIME_LIMIT_S = 240
# every test of this file on one xdist worker (with --dist loadgroup): the spawned runs happen
# once, not once per worker, and two multi-process runs never compete for the two CI cores
pytestmark = pytest.mark.xdist_group("ranks")

# LBFGS amplifies rounding differences over its iterations (the regularised objective most: 60
# iterations of it differ by 1e-6 although every gradient agrees to 1e-16), so the LBFGS runs are
# short: 3 steps with grid updates at steps 0, 1 and 2, and one step of the regularised objective.
CONFIGS = {
    "lbfgs": dict(opt="LBFGS", steps=3, grid_update_num=3, stop_grid_update_step=3),
    "lbfgs_reg": dict(opt="LBFGS", steps=1, lamb=0.01, lamb_coef=0.1, lamb_coefdiff=0.1,
                      grid_update_num=1, stop_grid_update_step=1),
    "adam": dict(opt="Adam", steps=8, lr=0.02, lamb=0.01, grid_update_num=4,
                 stop_grid_update_step=8),
    "adam_stream": dict(opt="Adam", steps=2, lr=0.02, lamb=0.01, grid_update_num=2,
                        stop_grid_update_step=2),
    # minibatches of the union: the same permutation on every rank, each trains on its share
    "adam_batch": dict(opt="Adam", steps=8, lr=0.02, lamb=0.01, batch=64, grid_update_num=4,
                       stop_grid_update_step=8),
    "lbfgs_batch": dict(opt="LBFGS", steps=2, batch=100, grid_update_num=2,
                        stop_grid_update_step=2),
    # 3 rows a batch: some steps leave a rank without rows (zero loss, same collectives)
    "adam_batch3": dict(opt="Adam", steps=12, lr=0.02, batch=3, update_grid=False),
}
#: the configs run on three ranks too
THREE = ("adam_batch", "lbfgs_batch", "adam_batch3")


def make_data():
    """401 rows: 301 train (shards of 151 and 150, so weighting by shard size matters), 100 test."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(401, 2, generator=g, dtype=torch.float64) * 2 - 1
    y = torch.sin(torch.pi * x[:, [0]]) * x[:, [1]] + x[:, [1]] ** 2
    return {"train_input": x[:301], "train_label": y[:301], "test_input": x[301:],
            "test_label": y[301:]}


def stream_batches(data, split, rank=None):
    """Batches of 50 rows; with ``rank`` that rank's contiguous share of each batch (the
    single-process stream is the union, batch by batch)."""
    x, y = data[f"{split}_input"][:300], data[f"{split}_label"][:300]  # 50 rows per batch
    out = []
    for s in range(0, x.shape[0], 50):
        xb, yb = x[s:s + 50], y[s:s + 50]
        if rank is not None:
            rows = kd.shard_rows(xb.shape[0], rank, WORLD)
            xb, yb = xb[rows], yb[rows]
        out.append((xb, yb))
    return out


def metrics_of(m, data):
    """Two user metrics on (this rank's part of) the data: a number (the training MSE, a mean
    over the training rows) and a (sum, count) pair (the test set's squared error)."""
    def train_mse():
        with torch.no_grad():
            return float(((m(data["train_input"]) - data["train_label"]) ** 2).mean())

    def test_sse():
        with torch.no_grad():
            err = (m(data["test_input"]) - data["test_label"]) ** 2
        return float(err.sum()), err.shape[0]

    return [train_mse, test_sse]


def train(name, rank=None):
    """The model trained with CONFIGS[name]: on this rank's shard inside a process group, on
    all the data without one (rank None)."""
    data = make_data()
    m = kanir.KAN(width=[2, 3, 1], grid=4, k=3, seed=0, dtype=torch.float64, versions=False)
    cfg = dict(CONFIGS[name], progress=False)
    if name == "adam_stream":
        hist = m.fit(stream_batches(data, "train", rank),
                     test_loader=stream_batches(data, "test", rank), **cfg)
    else:
        part = data if rank is None else kd.shard_dataset(data)
        hist = m.fit(part, metrics=metrics_of(m, part), **cfg)
    return {k: v.detach().clone() for k, v in m.net.state_dict().items()
            if isinstance(v, torch.Tensor)}, hist  # the state also holds function names


def versions_run(rank, folder):
    """A model keeping its versions in ``folder`` (the same path on every rank), trained and
    refined across ranks: the files each rank wrote, its version labels, its refined state."""
    writes = []
    original = kanir.model.versions.atomic_write

    def counted(path, data):
        writes.append(os.path.basename(path))
        original(path, data)

    kanir.model.versions.atomic_write = counted
    try:
        m = kanir.KAN(width=[2, 3, 1], grid=4, k=3, seed=0, dtype=torch.float64,
                      ckpt_path=folder)
        refined = fit_and_refine(m, kd.shard_dataset(make_data()))
        labels = [v.label for v in m.versions.listing()]
        m.rewind("0.1")  # other ranks rewind from memory
    finally:
        kanir.model.versions.atomic_write = original
    return {"rank": rank, "writes": writes, "labels": labels, "current": m.versions.current,
            "state": tensors(m), "refined": refined}


def fit_and_refine(m, data):
    """Fit, then refine (on the training inputs of all ranks): the refined state."""
    m.fit(data, steps=2, progress=False)
    m.refine(6)
    return tensors(m)


def tensors(m):
    return {k: v.clone() for k, v in m.net.state_dict().items() if isinstance(v, torch.Tensor)}


def _worker(rank, world, port, out, names, folder):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    with kd.session("gloo", timeout_s=TIME_LIMIT_S):
        results = {name: train(name, rank) for name in names}
        if world == 3:
            if kd.is_main():
                torch.save(results, out)
            return
        runs = [None] * world
        dist.all_gather_object(runs, versions_run(rank, folder))
        results["versions"] = runs
        # a second batch with no rows on rank 1: both ranks refuse it together, no hang
        x = torch.rand(4, 2, dtype=torch.float64)
        stream = [(x[:2], x[:2, :1]), (x[2:3 - rank], x[2:3 - rank, :1])]
        m = kanir.KAN(width=[2, 1], grid=3, seed=0, dtype=torch.float64, versions=False)
        try:
            m.fit(stream, opt="Adam", steps=1, test_loader=stream, progress=False)
        except Exception as e:  # noqa: BLE001 - recorded for the test to check
            results["empty_share"] = f"{type(e).__name__}: {e}"
        if kd.is_main():
            torch.save(results, out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(world, names, tmp):
    """Results of rank 0 of a ``world``-process run of ``names`` (spawned, bounded in time),
    with the version folder the two-process run wrote (under ``tmp``).

    A rank killed by a signal is retried once in a fresh folder: once, under heavy load, gloo
    aborted a rank ("terminate called without an active exception"); a wrong result or an
    exception in kanir's code is never retried."""
    try:
        return _spawn(world, names, os.path.join(tmp, "try1"))
    except mp.ProcessExitedException as e:
        if not e.signal_name:
            raise
        return _spawn(world, names, os.path.join(tmp, "try2"))


def _spawn(world, names, tmp):
    os.makedirs(tmp)
    out, folder = os.path.join(tmp, "rank0.pt"), os.path.join(tmp, "versions")
    ctx = mp.start_processes(_worker, args=(world, free_port(), out, names, folder),
                             nprocs=world, join=False, start_method="spawn")
    deadline = time.monotonic() + TIME_LIMIT_S
    try:
        while not ctx.join(timeout=1):
            if time.monotonic() > deadline:
                pytest.fail(f"{world}-process training did not finish in {TIME_LIMIT_S} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    results = torch.load(out)
    results["folder"] = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    return results


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    return spawn(WORLD, list(CONFIGS), tmp_path_factory.mktemp("two_ranks"))


@pytest.fixture(scope="module")
def three_ranks(tmp_path_factory):
    return spawn(3, list(THREE), tmp_path_factory.mktemp("three_ranks"))


def check_equal_to_one_process(results, name):
    params, hist = results[name]
    ref_params, ref_hist = train(name)
    assert params.keys() == ref_params.keys()
    for key, value in ref_params.items():
        diff = float((params[key].double() - value.double()).abs().max()) if value.numel() else 0.0
        assert diff <= 1e-10, (key, diff)
    moved = max(float((ref_params[k] - v).abs().max()) for k, v in initial_params().items()
                if v.numel() and v.is_floating_point())
    assert moved > 1e-3  # training did change the parameters
    assert hist.keys() == ref_hist.keys()
    for key, ref in ref_hist.items():  # losses, RMSEs, reg and the user metrics: global
        assert hist[key] == pytest.approx(ref, rel=1e-9, abs=1e-12), key
    return hist


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
def test_two_ranks_equal_one_process(two_ranks, name):
    hist = check_equal_to_one_process(two_ranks, name)
    if name != "adam_stream":
        assert {"train_mse", "test_sse"} <= hist.keys()


@pytest.mark.slow
@pytest.mark.parametrize("name", THREE)
def test_three_ranks_equal_one_process(three_ranks, name):
    check_equal_to_one_process(three_ranks, name)


def test_minibatch_shares_partition_the_batch():
    """Each rank's share of a minibatch of the union: disjoint, together the whole batch, and
    with 3 rows some share is empty."""
    from kanir.train.training import _share

    counts = [151, 150]
    perm = torch.randperm(301, generator=torch.Generator().manual_seed(0))[:40]
    shares = [_share(perm, sum(counts[:r]), counts[r]) + sum(counts[:r]) for r in range(2)]
    assert sorted(torch.cat(shares).tolist()) == sorted(perm.tolist())
    assert [s.tolist() for s in shares] == [[i for i in perm.tolist() if (i < 151) == (r == 0)]
                                           for r in range(2)]
    assert _share(torch.tensor([5, 9, 2]), 151, 150).numel() == 0


@pytest.mark.slow
def test_only_rank_0_writes_version_files(two_ranks):
    runs = two_ranks["versions"]
    assert [r["rank"] for r in runs] == [0, 1]
    assert runs[1]["writes"] == []  # rank 1 wrote nothing
    assert sorted(runs[0]["writes"]) == two_ranks["folder"]  # each file written once, by rank 0
    # init, fit, refine, and the rewind to 0.1
    assert two_ranks["folder"] == ["0.0.kanir", "0.1.kanir", "0.2.kanir", "1.1.kanir"]
    assert runs[0]["labels"] == runs[1]["labels"] == ["0.0", "0.1", "0.2"]
    assert runs[0]["current"] == runs[1]["current"] == "1.1"  # rewound alike
    for key, value in runs[0]["state"].items():  # rank 1's in-memory state is rank 0's
        assert torch.equal(value, runs[1]["state"][key]), key
    ref = fit_and_refine(kanir.KAN(width=[2, 3, 1], grid=4, k=3, seed=0, dtype=torch.float64,
                                   versions=False), make_data())
    for run in runs:  # refine used the inputs of all ranks: one process's refined model
        for key, value in ref.items():
            diff = float((run["refined"][key].double() - value.double()).abs().max()) \
                if value.numel() else 0.0
            assert diff <= 1e-10, (run["rank"], key, diff)


@pytest.mark.slow
def test_empty_share_of_a_batch_is_refused_on_every_rank(two_ranks):
    assert two_ranks["empty_share"].startswith("DistributedError: a training batch has rows "
                                               "[1, 0] on ranks 0..1")


def initial_params():
    m = kanir.KAN(width=[2, 3, 1], grid=4, k=3, seed=0, dtype=torch.float64, versions=False)
    return {k: v for k, v in m.net.state_dict().items() if isinstance(v, torch.Tensor)}


def test_helpers_without_a_process_group(monkeypatch):
    assert not kd.is_active() and kd.rank() == 0 and kd.world_size() == 1 and kd.is_main()
    import kanir.train.distributed

    assert kd.session is kanir.train.distributed.session  # kanir.distributed is the short name
    monkeypatch.delenv("RANK", raising=False)
    assert kd.writes_files()
    monkeypatch.setenv("RANK", "1")  # torchrun's rank 1 before setup(): writes nothing
    assert not kd.writes_files()
    assert kd.current() is None
    assert [kd.shard_rows(5, r, 2) for r in range(2)] == [slice(0, 3), slice(3, 5)]
    data = make_data()
    parts = [kd.shard_dataset(data, r, 3) for r in range(3)]
    assert torch.equal(torch.cat([p["train_input"] for p in parts]), data["train_input"])
    assert [p["test_input"].shape[0] for p in parts] == [34, 33, 33]


def test_setup_outside_torchrun_names_the_missing_variables(monkeypatch):
    for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(v, raising=False)
    with pytest.raises(kd.DistributedError, match="torchrun --nproc_per_node"):
        kd.setup()
