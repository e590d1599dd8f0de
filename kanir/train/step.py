"""One training step: the optimiser's closure (loss + lamb * regulariser, across ranks the
reduction), the NaN guard that restores the parameters, and when a step updates the grid.
"""

from __future__ import annotations

import math
import warnings

import torch

from kanir.errors import ArgumentError
from kanir.train.losses import _mse, _objective_value
from kanir.train.regularizer import forward_collect, regularizer


class _Step:
    """One training step's objective on a batch: the closure the optimiser calls (zero grads,
    forward, loss + lamb * regulariser, backward, and across ranks the reduction), with what the
    last evaluation measured in ``state``."""

    def __init__(self, module, optimizer, params, opts, loss_fn, comm):
        self.module, self.optimizer, self.params, self.comm = module, optimizer, params, comm
        self.loss_fn = loss_fn
        self.objective, self.model = opts.get("objective"), opts.get("model")
        self.lamb = opts["lamb"]
        self.held: list = []  # (parameter, 0/1 mask of its gradient) while held_affines applies
        self.use_reg = self.lamb > 0
        self.allow_empty = False  # across ranks: a rank's share of a minibatch may be empty
        self.reg_args = (opts["lamb_l1"], opts["lamb_entropy"], opts["lamb_coef"],
                         opts["lamb_coefdiff"], opts["reg_metric"] == "edge_forward_spline_n")

    def closure(self, xb: torch.Tensor, yb: torch.Tensor, state: dict):
        """The closure for a batch; ``state`` receives loss, reg (detached) and ``frozen``."""
        module, optimizer, loss_fn, use_reg, comm = (self.module, self.optimizer, self.loss_fn,
                                                    self.use_reg, self.comm)
        # the data and the grid are fixed during a step: the input layer's bases once
        first = module.layers[0].local(xb, fixed=True) if not xb.requires_grad else None
        n_total = comm.batch_rows(xb.shape[0], self.allow_empty) if comm is not None \
            else xb.shape[0]
        empty = xb.shape[0] == 0  # this rank's share of a global minibatch: zero loss

        def closure():
            optimizer.zero_grad()
            if empty:  # no rows: a zero loss with the graph of the others (frozen alike)
                pred, inputs = forward_collect(module, xb, first, edge_std=use_reg, comm=comm,
                                               n_total=n_total)
                loss = pred.sum() * 0.0
            elif self.objective is not None:
                loss = _objective_value(self.objective, self.model, xb, yb)
                pred, inputs = (forward_collect(module, xb, first, edge_std=True, comm=comm,
                                                n_total=n_total) if use_reg else (None, None))
            else:
                pred, inputs = forward_collect(module, xb, first, edge_std=use_reg, comm=comm,
                                               n_total=n_total)
                loss = loss_fn(pred, yb)
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise ArgumentError(f"loss_fn must return a scalar tensor, got "
                                    f"{type(loss).__name__} {getattr(loss, 'shape', '')}")
            if comm is not None:  # the mean over all ranks' rows, gradient through ours
                loss = comm.global_mean(loss.reshape(()), xb.shape[0] / n_total)
            if use_reg:
                reg = regularizer(module, inputs, *self.reg_args, comm=comm, n_total=n_total)
                obj = loss + self.lamb * reg
            else:
                reg = obj = loss
            if obj.requires_grad:
                obj.backward()
                for par, keep in self.held:  # symbolic affines held still this step
                    if par.grad is not None:
                        par.grad.mul_(keep)
            else:  # nothing trainable reaches the output (all edges removed or constant)
                state["frozen"] = True
            if comm is not None:
                comm.reduce_grads(self.params)
            state["loss"], state["reg"] = loss.detach(), reg.detach() if use_reg else None
            if loss_fn is not _mse and pred is not None and yb is not None and not empty:
                state["mse"] = _mse(pred.detach(), yb)  # this rank's batch MSE, for streams
            return obj

        return closure

    def run(self, xb: torch.Tensor, yb: torch.Tensor, step: int) -> tuple[dict, bool]:
        """One optimiser step on a batch; (state, ok). Not ok: NaN/inf appeared and the
        parameters were restored (with a warning)."""
        state: dict = {}
        params = self.params
        with torch.no_grad():
            snapshot = torch._foreach_mul(params, 1.0)  # copies, one kernel
        self.optimizer.step(self.closure(xb, yb, state))
        if not _all_finite(params) or not math.isfinite(float(state["loss"])):
            with torch.no_grad():
                torch._foreach_copy_(params, snapshot)
            warnings.warn(f"fit stopped at step {step}: the loss or parameters became NaN/inf; "
                          "parameters restored to the previous step (try a smaller lr, "
                          "singularity_avoiding=True, or check the data)", stacklevel=5)
            return state, False
        return state, True


def _grid_due(opts: dict, step: int) -> bool:
    """Whether ``step`` updates the grid: every stop_grid_update_step / grid_update_num steps
    between the start and stop steps, as in pykan."""
    freq = max(1, int(opts["stop_grid_update_step"] / opts["grid_update_num"]))
    return (opts["update_grid_"] and step % freq == 0 and step < opts["stop_grid_update_step"]
            and step >= opts["start_grid_update_step"])


def _all_finite(params) -> bool:
    """Every entry of every parameter finite, with one host transfer."""
    return bool(torch.stack([torch.isfinite(p).all() for p in params]).all())
