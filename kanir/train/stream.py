"""``fit`` on a stream of (x, y) batches (a DataLoader): argument checks, validated batches, a
reservoir sample of the inputs for grid updates, and the Adam loop of one pass per step.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from kanir.backends.torch import KANModule
from kanir.errors import ArgumentError, DataError
from kanir.train.data import as_tensor
from kanir.train.grids import Reservoir, update_grid
from kanir.train.history import _progress, _record, _Root, _step_done
from kanir.train.losses import _global_means, _mse
from kanir.train.step import _grid_due, _Step


def check_stream_args(loader, test_loader, opts: dict) -> None:
    """Refuse what a stream of batches cannot do, naming the fix."""
    if isinstance(loader, torch.Tensor | np.ndarray | str | bytes) or \
            not hasattr(loader, "__iter__"):
        raise DataError(f"dataset must be a dict (train_input, train_label, test_input, "
                        f"test_label) or a re-iterable of (x, y) batches such as a torch "
                        f"DataLoader, got {type(loader).__name__}")
    if opts["opt"] != "Adam":
        raise ArgumentError("opt='LBFGS' needs the full-batch objective at every line-search "
                            "evaluation; with a stream of batches use opt='Adam', or pass the "
                            "data as a dataset dict (or shard it across ranks with torchrun)")
    if opts["batch"] != -1:
        raise ArgumentError(f"batch={opts['batch']} with a stream: the stream's batches are the "
                            "batches (set the DataLoader's batch_size instead)")
    if test_loader is None:
        raise DataError("fit on a stream of batches needs test_loader= (a re-iterable of "
                        "(x, y) test batches): as in pykan, fit reports test metrics")
    for name, s in (("dataset", loader), ("test_loader", test_loader)):
        if iter(s) is s:
            raise DataError(f"{name} is a one-shot iterator ({type(s).__name__}); fit passes "
                            "over the data several times: pass a DataLoader or a list of batches")


def _batches(loader, module: KANModule, what: str, keep_empty: bool = False):
    """The (x, y) batches of a stream, validated and on the module's device and dtype; empty
    ones are skipped unless ``keep_empty`` (ranks must then refuse them together)."""
    count = 0
    for i, item in enumerate(loader):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise DataError(f"{what}: batch {i} must be an (x, y) pair, got "
                            f"{type(item).__name__}")
        x = as_tensor(item[0], f"{what} batch {i} x", module.dtype, module.device, module.n_in)
        y = as_tensor(item[1], f"{what} batch {i} y", module.dtype, module.device, module.n_out)
        if x.shape[0] != y.shape[0]:
            raise DataError(f"{what}: batch {i} has {x.shape[0]} x rows but {y.shape[0]} y rows")
        if x.shape[0] == 0 and not keep_empty:
            continue
        count += 1
        yield x, y
    if count == 0:
        raise DataError(f"{what} yielded no batches")


def stream_sample(loader, module, size: int, seed: int = 0) -> torch.Tensor:
    """A seeded reservoir sample of at most ``size`` input rows of a re-iterable of (x, y)
    batches (one pass)."""
    if isinstance(loader, str | bytes) or not hasattr(loader, "__iter__"):
        raise DataError(f"expected samples (an array) or a re-iterable of (x, y) batches, got "
                        f"{type(loader).__name__}")
    res = Reservoir(size, seed)
    for x, _ in _batches(loader, module, "dataset"):
        res.add(x)
    return res.sample()


def _stream_losses(module, loader, loss_fn, what: str) -> tuple[list, int]:
    """([sum of rows * loss_fn, sum of rows * mse], rows) over a stream (per batch means)."""
    tot, tot_mse, rows = 0.0, 0.0, 0
    with torch.no_grad():
        for x, y in _batches(loader, module, what):
            pred = module(x)
            b = x.shape[0]
            v = float(loss_fn(pred, y))
            tot += b * v
            tot_mse += b * (v if loss_fn is _mse else float(_mse(pred, y)))
            rows += b
    return [tot, tot_mse], rows


def _fit_stream(module, loader, test_loader, opts, optimizer, params, hist, comm) -> torch.Tensor:
    """fit on a stream of batches with Adam: one step = one pass, one update per batch."""
    loss_fn = opts["loss_fn"] or _mse
    step_fn = _Step(module, optimizer, params, opts, loss_fn, comm)
    root = _Root()
    cap = opts["grid_samples"] if comm is None else math.ceil(opts["grid_samples"] / comm.world)
    samples = None  # this rank's reservoir sample of the inputs (drawn once: x never changes)
    bar = _progress(opts["steps"], opts["progress"] and (comm is None or comm.rank == 0))
    if comm is not None and hasattr(loader, "__len__"):
        comm.check_equal(len(loader), "the number of batches per pass")
    for step in bar:
        if _grid_due(opts, step):
            if samples is None:
                samples = stream_sample(loader, module, cap, opts["seed"])
            xg = samples if comm is None else comm.gather_rows(samples, opts["grid_samples"],
                                                               opts["seed"])
            update_grid(module, xg, opts["grid_eps"])
        res = Reservoir(cap, opts["seed"]) if samples is None else None
        tot, tot_mse, rows, ok, state = 0.0, 0.0, 0, True, {}
        for xb, yb in _batches(loader, module, "dataset", keep_empty=comm is not None):
            if res is not None:
                res.add(xb)
            state, ok = step_fn.run(xb, yb, step)
            if not ok:
                break
            # across ranks the loss is the batch's global mean: weighted by our rows
            tot += xb.shape[0] * float(state["loss"])
            tot_mse += xb.shape[0] * float(state["mse"] if "mse" in state else state["loss"])
            rows += xb.shape[0]
            if state.get("frozen"):
                break
        if res is not None and ok and not state.get("frozen"):
            samples = res.sample()
        if not ok:
            hist["stopped_early"] = step
            break
        test, n_test = _stream_losses(module, test_loader, loss_fn, "test_loader")
        losses = [tot / rows, test[0] / n_test, tot_mse / rows, test[1] / n_test]
        if comm is not None:
            losses = _global_means(comm, losses, rows, n_test)
        _record(hist, root, losses, state, step_fn.use_reg, opts["metrics"], comm, rows)
        if _step_done(hist, state, bar, opts, step):
            break
    if samples is None:
        samples = stream_sample(loader, module, cap, opts["seed"])
    if comm is not None:  # the same sample on every rank, for refine and later grid work
        samples = comm.gather_rows(samples, opts["grid_samples"], opts["seed"])
    return samples
