"""The losses a fit records after each step: the default MSE, a user objective's value, and the
train/test losses (means over all ranks' rows when training is distributed).
"""

from __future__ import annotations

import torch

from kanir.errors import ArgumentError
from kanir.train.history import _record


def _mse(pred, y):
    """Mean squared error: fit's default loss and the ``*_rmse`` history entries."""
    return torch.mean((pred - y) ** 2)


def _objective_value(objective, model, x, y) -> torch.Tensor:
    """The objective on a batch, checked to be a scalar tensor."""
    v = objective(model, x, y)
    if not isinstance(v, torch.Tensor) or v.numel() != 1:
        raise ArgumentError(f"objective must return a scalar tensor, got {type(v).__name__} "
                            f"{tuple(getattr(v, 'shape', ()))}")
    return v.reshape(())


def _objective_losses(objective, model, module, data, rmse: bool) -> list:
    """[train, test, train mse, test mse] after a step; the objective may need input
    gradients, so it runs with autograd on (and its graph is dropped)."""
    out = []
    for split in ("train", "test"):
        x = data[f"{split}_input"]
        with torch.enable_grad():
            out.append(float(_objective_value(objective, model, x, data[f"{split}_label"])
                             .detach()))
    if rmse:
        with torch.no_grad():
            out += [float(_mse(module(data[f"{s}_input"]), data[f"{s}_label"]))
                    for s in ("train", "test")]
    else:
        out += [0.0, 0.0]
    return out


def _eval_losses(module, data, x_eval, n, loss_fn, comm, hist, root, state, step_fn,
                 metrics) -> None:
    """Record a data-loss step: one forward over train and test inputs where they fit."""
    x_tr, y_tr, x_te = data["train_input"], data["train_label"], data["test_input"]
    with torch.no_grad():
        if x_eval is not None:  # one pass over train and test inputs together
            pred = module(x_eval)
            pred_tr, pred_te = pred[:n], pred[n:]
        else:
            pred_tr, pred_te = module(x_tr), module(data["test_input"])
        losses = [float(loss_fn(pred_tr, y_tr)), float(loss_fn(pred_te, data["test_label"]))]
        if loss_fn is _mse:
            losses += losses
        else:
            losses += [float(_mse(pred_tr, y_tr)), float(_mse(pred_te, data["test_label"]))]
        if comm is not None:  # means over all ranks' rows
            losses = _global_means(comm, losses, n, x_te.shape[0])
        _record(hist, root, losses, state, step_fn.use_reg, metrics, comm, n)


def _global_means(comm, losses: list, n_train: int, n_test: int) -> list:
    """[train, test, train mse, test mse] means over all ranks' rows."""
    w = [n_train, n_test, n_train, n_test]
    sums = comm.sum_float(*(v * k for v, k in zip(losses, w)), n_train, n_test)
    return [s / sums[4 + i % 2] for i, s in enumerate(sums[:4])]
