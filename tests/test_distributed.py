"""fit across two processes (torch.distributed, gloo on CPU) equals one process on the union of
the shards: LBFGS and Adam on dataset dicts, Adam on streams, with the regulariser and grid
updates on, in float64."""

import os
import socket
import tempfile
import time

import pytest
import torch
import torch.multiprocessing as mp

import kanir
import kanir.train.distributed as kd

WORLD = 2
TIME_LIMIT_S = 240

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
}


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
        hist = m.fit(data if rank is None else kd.shard_dataset(data), **cfg)
    return {k: v.detach().clone() for k, v in m.net.state_dict().items()
            if isinstance(v, torch.Tensor)}, hist  # the state also holds function names


def _worker(rank, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD))
    torch.set_num_threads(1)
    with kd.session("gloo", timeout_s=TIME_LIMIT_S):
        results = {name: train(name, rank) for name in CONFIGS}
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


@pytest.fixture(scope="module")
def two_ranks():
    """Results of rank 0 of a two-process run of every config (spawned, bounded in time)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rank0.pt")
        ctx = mp.start_processes(_worker, args=(free_port(), out), nprocs=WORLD, join=False,
                                 start_method="spawn")
        deadline = time.monotonic() + TIME_LIMIT_S
        try:
            while not ctx.join(timeout=1):
                if time.monotonic() > deadline:
                    pytest.fail(f"two-process training did not finish in {TIME_LIMIT_S} s")
        finally:
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
        return torch.load(out)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
def test_two_ranks_equal_one_process(two_ranks, name):
    params, hist = two_ranks[name]
    ref_params, ref_hist = train(name)
    assert params.keys() == ref_params.keys()
    for key, value in ref_params.items():
        diff = float((params[key].double() - value.double()).abs().max()) if value.numel() else 0.0
        assert diff <= 1e-10, (key, diff)
    moved = max(float((ref_params[k] - v).abs().max()) for k, v in initial_params().items()
                if v.numel() and v.is_floating_point())
    assert moved > 1e-3  # training did change the parameters
    for key in ("train_loss", "test_loss", "reg"):
        assert hist[key] == pytest.approx(ref_hist[key], rel=1e-9, abs=1e-12), key


@pytest.mark.slow
def test_empty_share_of_a_batch_is_refused_on_every_rank(two_ranks):
    assert two_ranks["empty_share"].startswith("DistributedError: a training batch has rows "
                                               "[1, 0] on ranks 0..1")


def initial_params():
    m = kanir.KAN(width=[2, 3, 1], grid=4, k=3, seed=0, dtype=torch.float64, versions=False)
    return {k: v for k, v in m.net.state_dict().items() if isinstance(v, torch.Tensor)}


def test_helpers_without_a_process_group():
    assert not kd.is_active() and kd.rank() == 0 and kd.world_size() == 1 and kd.is_main()
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
