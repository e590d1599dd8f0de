"""Multi-process training on torch.distributed: set up / tear down a process group, and the few
collective operations ``fit`` needs so that N ranks holding shards train exactly like one
process on the union of the data.

Design (no DistributedDataParallel wrapper; kanir reduces by hand, which is simpler and exact):

* At the start of ``fit`` rank 0 broadcasts every parameter and buffer, so all ranks start equal.
* Each evaluation of the objective computes, on every rank, ``(n_r / N) * loss_r`` (``n_r`` rows
  of this rank's batch, ``N`` of all ranks'; ``loss_fn`` must be a mean over rows, as the default
  MSE is) plus the regulariser of the *union* batch, then all-reduces the gradients (one flat
  vector, summed). The loss value is all-reduced too, so LBFGS sees the full-batch loss and
  gradient on every rank and every rank takes the same step.
* The regulariser needs the std over the batch of every edge and every layer input. Ranks reduce
  sufficient statistics, not per-rank stds: the global mean (a sum), then the global sum of
  squared deviations from it. Only this rank's share of that sum carries autograd, so summing
  gradients over ranks gives the exact gradient (the mean's own gradient term vanishes because
  deviations from the mean sum to zero). Parameter-only penalties are weighted 1/world.
* Grid updates use the samples of all ranks: each rank contributes at most
  ``ceil(grid_samples / world)`` rows (a seeded random subset when it holds more), gathered in
  rank order, so with small shards the grid is exactly the single-process one.
* Only rank 0 shows the progress bar; write files only where :func:`is_main` is true.

Under ``torchrun --nproc_per_node N script.py`` call :func:`setup` (or use :func:`session`),
give ``fit`` this rank's shard (:func:`shard_dataset`), and ``fit`` notices the process group.
"""

from __future__ import annotations

import datetime
import math
import os
from contextlib import contextmanager

import torch
import torch.distributed as dist

from kanir.errors import DistributedError

__all__ = ["Comm", "DistributedError", "current", "is_active", "is_main", "rank", "session",
           "setup", "shard_dataset", "shard_rows", "teardown", "world_size", "writes_files"]


# ---------------------------------------------------------------------- set up / tear down
def setup(backend: str | None = None, timeout_s: float = 600.0) -> torch.device:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE,
    MASTER_ADDR, MASTER_PORT); ``backend`` defaults to nccl with CUDA, else gloo. Returns this
    rank's device (``cuda:LOCAL_RANK`` with nccl, else cpu). Idempotent."""
    missing = [v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
               if v not in os.environ]
    if missing:
        raise DistributedError(f"kanir.train.distributed.setup: environment variables {missing} are "
                               "not set; start the script with torchrun --nproc_per_node N")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise DistributedError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    device = torch.device("cpu")
    if backend == "nccl":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return device


def teardown(barrier: bool = True) -> None:
    """Leave the process group (no-op without one), after a barrier unless ``barrier`` is
    false: a rank that left first could break the connections of the others still finishing.
    (A rank leaving on an error skips it: the others would wait for it until the timeout.)"""
    if dist.is_available() and dist.is_initialized():
        try:
            if barrier:
                dist.barrier()
        finally:
            dist.destroy_process_group()


@contextmanager
def session(backend: str | None = None, timeout_s: float = 600.0):
    """``with kanir.train.distributed.session() as device:`` — :func:`setup`, then :func:`teardown`."""
    device = setup(backend, timeout_s)
    try:
        yield device
    except BaseException:
        teardown(barrier=False)
        raise
    teardown()


def is_active() -> bool:
    """True inside a process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of ranks (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """True on rank 0 (and without a process group): the one process that writes files."""
    return rank() == 0


def writes_files() -> bool:
    """Whether this process may write files: rank 0 of a process group, or of a torchrun
    launch whose group is not set up yet (its RANK variable), or a process on its own."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return os.environ.get("RANK", "0").strip() in ("", "0")


def shard_rows(n: int, rank_: int | None = None, world: int | None = None) -> slice:
    """Contiguous rows of ``n`` held by a rank (the first ``n % world`` ranks get one more)."""
    r = rank() if rank_ is None else rank_
    w = world_size() if world is None else world
    q, extra = divmod(n, w)
    start = r * q + min(r, extra)
    return slice(start, start + q + (1 if r < extra else 0))


def shard_dataset(dataset: dict, rank_: int | None = None, world: int | None = None) -> dict:
    """This rank's contiguous shard of every split of a dataset dict (train and test)."""
    out = {}
    for key, v in dataset.items():
        out[key] = v[shard_rows(len(v), rank_, world)]
    return out


# ---------------------------------------------------------------------- collectives used by fit
class Comm:
    """The collectives ``fit`` uses, for the current process group."""

    def __init__(self):
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        nccl = dist.get_backend() == "nccl"
        self.device = torch.device("cuda", torch.cuda.current_device()) if nccl else \
            torch.device("cpu")

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """A detached copy of ``t`` summed over ranks."""
        out = t.detach().clone()
        dist.all_reduce(out)
        return out

    def sum_float(self, *values: float) -> list[float]:
        """Plain numbers summed over ranks (one collective)."""
        return self.sum(torch.tensor(values, dtype=torch.float64, device=self.device)).tolist()

    def counts(self, n: int) -> list[int]:
        """``n`` of every rank, in rank order (one collective)."""
        counts = [torch.zeros(1, dtype=torch.int64, device=self.device) for _ in range(self.world)]
        dist.all_gather(counts, torch.tensor([n], dtype=torch.int64, device=self.device))
        return [int(c) for c in counts]

    def batch_rows(self, n: int, allow_empty: bool = False) -> int:
        """Rows of a batch over all ranks. Unless ``allow_empty`` (a minibatch drawn from the
        union, where a rank's share may be empty), a DistributedError on every rank when one of
        them has none: a stream's batch must have rows on every rank."""
        rows = self.counts(n)
        if min(rows) == 0 and not allow_empty:
            raise DistributedError(f"a training batch has rows {rows} on ranks 0..{self.world - 1}: "
                                   "every rank needs at least one row of every batch (shard "
                                   "the data so that each rank's share is non-empty)")
        if sum(rows) == 0:
            raise DistributedError("a training batch has no rows on any rank")
        return sum(rows)

    def std(self, a: torch.Tensor, dim: int, n_total: int, eps: float = 0.0) -> torch.Tensor:
        """Unbiased std over ``dim`` of the rows of all ranks (``n_total`` of them), with an
        autograd graph through this rank's rows only (see the module docstring)."""
        mean = self.sum(a.sum(dim)) / n_total
        local = ((a - mean.unsqueeze(dim)) ** 2).sum(dim)
        total = local + (self.sum(local) - local.detach())
        return torch.sqrt(total / max(n_total - 1, 1) + eps)

    def reduce_grads(self, params: list) -> None:
        """Sum every parameter's gradient over ranks, in one collective."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        for p, v in zip(params, flat.split([p.numel() for p in params])):
            p.grad = v.view_as(p).clone()

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank."""
        with torch.no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, 0)

    def gather_rows(self, x: torch.Tensor, cap: int, seed: int) -> torch.Tensor:
        """The rows of every rank, in rank order, at most ``ceil(cap / world)`` from each
        (a seeded random subset where a rank has more)."""
        per = math.ceil(cap / self.world)
        if x.shape[0] > per:
            gen = torch.Generator().manual_seed(seed * 7919 + self.rank)
            x = x[torch.randperm(x.shape[0], generator=gen)[:per].sort().values.to(x.device)]
        counts = torch.tensor([x.shape[0]], device=x.device)
        all_counts = [torch.zeros_like(counts) for _ in range(self.world)]
        dist.all_gather(all_counts, counts)
        most = int(max(int(c) for c in all_counts))
        padded = x.new_zeros(most, x.shape[1])
        padded[:x.shape[0]] = x
        parts = [torch.zeros_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([p[:int(c)] for p, c in zip(parts, all_counts)])

    def share(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` (the same on every rank) with its gradient divided by the number of ranks, so
        that summing gradients over ranks counts it once."""
        return t / self.world + (t - t / self.world).detach()

    def global_mean(self, local: torch.Tensor, weight: float) -> torch.Tensor:
        """The sum over ranks of ``weight * local``, with an autograd graph through this rank's
        term only."""
        mine = local * weight
        return mine + (self.sum(mine) - mine.detach())

    def check_equal(self, value: int, what: str) -> None:
        """Raise DistributedError unless every rank has the same ``value``."""
        lo = torch.tensor([value, -value], dtype=torch.float64, device=self.device)
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        if lo[0] != -lo[1]:
            raise DistributedError(f"ranks disagree on {what} ({int(lo[0])} to {int(-lo[1])}); "
                                   "every rank needs the same number (e.g. DistributedSampler)")


def current() -> Comm | None:
    """A :class:`Comm` inside a process group of more than one rank, else None."""
    return Comm() if is_active() else None
