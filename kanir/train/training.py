"""Training with pykan's semantics: ``fit`` (LBFGS/Adam, sparsity regularisation, grid
updates), its argument checks and its loop over a dataset dict (one process or a rank's shard).
One step is in kanir.train.step, the stream loop in kanir.train.stream.

The history uses pykan's names and meanings: ``train_loss``/``test_loss`` are RMSEs (the square
root of the loss function, which is the MSE by default), ``train_rmse``/``test_rmse`` are
root-mean-square errors whatever the loss function, ``reg`` is the regulariser before
multiplying by ``lamb``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from kanir.arguments import as_int, check_fit_args
from kanir.backends.torch import KANModule
from kanir.errors import ArgumentError, KanirError
from kanir.train.data import as_tensor, check_dataset, create_dataset, create_dataset_from_data
from kanir.train.grids import update_grid
from kanir.train.history import _progress, _record, _Root, _step_done
from kanir.train.losses import _eval_losses, _global_means, _mse, _objective_losses
from kanir.train.optim import LBFGS
from kanir.train.regularizer import edge_scales, forward_collect, regularizer
from kanir.train.step import _grid_due, _Step
from kanir.train.stream import _fit_stream, check_stream_args, stream_sample

# fit lives here; the other names are re-exported for the code, tests and docs that import them
# from here: datasets from kanir.train.data, activations / edge scales / the regulariser from
# kanir.train.regularizer, stream sampling from kanir.train.stream.
__all__ = ["GRID_SAMPLES", "as_tensor", "check_dataset", "create_dataset",
           "create_dataset_from_data", "edge_scales", "fit", "fit_with_samples",
           "forward_collect", "held_affines", "regularizer", "stream_sample"]


#: rows of the sample that grid updates and ``refine`` use with a stream or across ranks
GRID_SAMPLES = 100_000


def fit(module: KANModule, dataset, opt: str = "LBFGS", steps: int = 100, log: int = 1,
        lamb: float = 0.0, lamb_l1: float = 1.0, lamb_entropy: float = 2.0, lamb_coef: float = 0.0,
        lamb_coefdiff: float = 0.0, update_grid_: bool = True, grid_update_num: int = 10,
        loss_fn: Callable | None = None, lr: float = 1.0, start_grid_update_step: int = -1,
        stop_grid_update_step: int = 50, batch: int = -1, metrics: Sequence[Callable] | None = None,
        singularity_avoiding: bool = False, y_th: float = 1000.0, grid_eps: float = 0.02,
        progress: bool = True, seed: int = 0, reg_metric: str = "edge_forward_spline_n",
        display_metrics: Sequence[str] | None = None, save_fig: bool = False,
        save_fig_freq: int = 1, test_loader=None, grid_samples: int = GRID_SAMPLES,
        objective: Callable | None = None, model=None, stop: Callable | None = None) -> dict:
    """Train ``module`` in place with pykan's semantics; return the history (lists of floats, one
    entry per step).

    ``objective(model, x, y) -> scalar tensor`` replaces the data loss (``loss_fn``): the loss
    of a batch of inputs ``x`` with its labels ``y`` (None when the dataset has no labels); it
    may differentiate the model with respect to ``x`` to any order (``kanir.jacobian(model, x,
    create_graph=True)``), and receives ``model`` (default: ``module``; ``KAN.fit`` passes the
    KAN). The regulariser, batches, grid updates, the NaN guard and the history work as with a
    data loss; the history also holds ``train_objective``/``test_objective`` (the objective
    itself), and ``train_rmse``/``test_rmse`` only when labels of the outputs' shape exist.

    History: ``train_loss``/``test_loss`` the square root of ``loss_fn`` on the training set and
    on the test split after the step (pykan's names; RMSE with the default MSE loss), ``train_rmse``/
    ``test_rmse`` the RMSE on the whole training set and the test split, ``reg`` the
    regulariser, one list per function in ``metrics`` (pykan: called without arguments, named
    after the function), and ``stopped_early`` (the step) when training stopped on NaN or
    because nothing trainable reaches the outputs.

    With L-BFGS and more than one step, the affine parameters (a, b, c, d) of symbolic edges
    that feed a layer with active splines stay still during the first step, while those
    splines fit, and train from the second on (:func:`held_affines` says why).

    ``stop()`` (no arguments) is asked after every step; True ends training there, with
    ``stopped_early`` = that step and ``stopped_by`` = ``"stop"`` in the history (a deadline:
    ``stop=lambda: time.time() > t_end``). Across ranks every rank's ``stop`` must agree.

    The dataset needs train and test splits (``train_input``, ``train_label``, ``test_input``,
    ``test_label``), as in pykan. ``batch``: -1 or more than the training rows for the full
    batch, else a positive batch size. ``reg_metric``: ``'edge_forward_spline_n'`` (pykan's
    default: std of each spline edge over (std of its input + 0.1)) or
    ``'edge_forward_spline_u'`` (the std alone). ``display_metrics``: history names shown in
    the progress bar, updated every ``log`` steps (0: never). ``save_fig=True`` is refused
    (kanir writes no per-step figures). Every argument is checked first; a bad one is an
    ArgumentError naming it.

    Data that does not fit in one batch: ``dataset`` may instead be a re-iterable of (x, y)
    batches (a torch DataLoader, a list of pairs) with ``test_loader`` another; then
    ``opt='Adam'``, one step is one pass over the stream with one update per batch, the
    history's train values are over the batches of that pass (as trained on) and the test values
    over the whole test stream after it, and grid updates use a seeded reservoir sample of
    ``grid_samples`` rows of the stream (see docs/scale.md).

    Inside a torch.distributed process group (kanir.train.distributed) every rank passes its shard
    and the result equals one process trained on the union of the shards, up to rounding.
    """
    return fit_with_samples(module, dataset, opt, steps, log, lamb, lamb_l1, lamb_entropy,
                            lamb_coef, lamb_coefdiff, update_grid_, grid_update_num, loss_fn, lr,
                            start_grid_update_step, stop_grid_update_step, batch, metrics,
                            singularity_avoiding, y_th, grid_eps, progress, seed, reg_metric,
                            display_metrics, save_fig, save_fig_freq, test_loader,
                            grid_samples, objective, model, stop)[0]


def fit_with_samples(module: KANModule, dataset, opt, steps, log, lamb, lamb_l1, lamb_entropy,
                     lamb_coef, lamb_coefdiff, update_grid_, grid_update_num, loss_fn, lr,
                     start_grid_update_step, stop_grid_update_step, batch, metrics,
                     singularity_avoiding, y_th, grid_eps, progress, seed, reg_metric,
                     display_metrics, save_fig, save_fig_freq, test_loader=None,
                     grid_samples: int = GRID_SAMPLES, objective: Callable | None = None,
                     model=None, stop: Callable | None = None) -> tuple[dict, torch.Tensor]:
    """:func:`fit`, also returning training inputs for later grid work: the training inputs of
    a dataset dict, or the reservoir sample of a stream."""
    from kanir.train import distributed

    opts = check_fit_args(opt, steps, log, lamb, lamb_l1, lamb_entropy, lamb_coef,
                          lamb_coefdiff, update_grid_, grid_update_num, loss_fn, lr,
                          start_grid_update_step, stop_grid_update_step, batch, metrics,
                          singularity_avoiding, y_th, grid_eps, progress, seed, reg_metric,
                          display_metrics, save_fig, save_fig_freq)
    opts["grid_samples"] = as_int(grid_samples, "grid_samples", 1)
    if objective is not None:
        if not callable(objective):
            raise ArgumentError(f"objective must be a function (model, x, y) -> scalar tensor, "
                                f"got {objective!r}")
        if loss_fn is not None:
            raise ArgumentError("give either loss_fn (pred, label) or objective (model, x, y), "
                                "not both: the objective is the whole loss")
        if not isinstance(dataset, dict):
            raise ArgumentError("an objective trains on a dataset dict (train_input, "
                                "test_input, labels optional), not on a stream of batches")
    opts["objective"] = objective
    if stop is not None and not callable(stop):
        raise ArgumentError(f"stop must be a function () -> bool, got {stop!r}")
    opts["stop"] = stop
    opts["model"] = module if model is None else model
    normalized = opts["reg_metric"] == "edge_forward_spline_n"
    if opts["lamb"] > 0 and not normalized and any(bool((layer.mask_sym != 0).any())
                                                   for layer in module.layers):
        raise ArgumentError("reg_metric='edge_forward_spline_u' with symbolic edges: pykan's "
                            "metric then also counts the symbolic parts, kanir's only the "
                            "splines; use 'edge_forward_spline_n' or remove the symbolic parts")
    stream = not isinstance(dataset, dict)
    if stream:
        module.check_dtype()
        check_stream_args(dataset, test_loader, opts)
    elif test_loader is not None:
        raise ArgumentError("test_loader goes with a stream of training batches; a dataset "
                            "dict brings its own test_input / test_label")
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise KanirError("fit: the model has no trainable parameters (every parameter has "
                         "requires_grad=False)")
    hist: dict = {"train_loss": [], "test_loss": [], "train_rmse": [], "test_rmse": [], "reg": []}
    for m in opts["metrics"]:
        hist[getattr(m, "__name__", str(m))] = []
    unknown = [d for d in opts["display_metrics"] if d not in hist]
    if unknown:
        raise ArgumentError(f"display_metrics {unknown} are not in the history; choose from "
                            f"{list(hist)}")
    comm = distributed.current()
    if comm is not None:
        comm.broadcast_module(module)
    if opts["opt"] == "Adam":
        optimizer = torch.optim.Adam(params, lr=opts["lr"])
    else:
        optimizer = LBFGS(params, lr=opts["lr"], history_size=10)
    module.set_singularity_avoiding(opts["singularity_avoiding"], opts["y_th"])
    try:
        if stream:
            samples = _fit_stream(module, dataset, test_loader, opts, optimizer, params, hist,
                                  comm)
        else:
            samples = _fit_dict(module, dataset, opts, optimizer, params, hist, comm)
    finally:
        module.set_singularity_avoiding(False)
    return hist, samples


def held_affines(module: KANModule) -> list:
    """The symbolic affines (a, b, c, d) that an L-BFGS fit holds still during its first step:
    those of active symbolic edges whose layer feeds a layer with active splines, as (parameter,
    gradient mask) pairs.

    Why: right after ``fix_symbolic`` the next layer's splines are not yet fitted, and the
    affine's gradient (through the residual base function and the random splines) dominates
    the first L-BFGS iterations: they slide the edge's outputs off the next layer's grid, where
    splines have neither value nor gradient, e.g. onto the minimum of a negatively scaled SiLU
    base, a stationary point where the model is a constant and every gradient vanishes. After
    one step with the splines fitted, the affines train with everything else (as in pykan)."""
    out = []
    layers = module.layers
    for layer, nxt in zip(layers[:-1], layers[1:]):
        sa = layer.sym_affine
        if not sa.requires_grad or not bool((layer.mask_sym != 0).any()):
            continue
        if not bool((nxt.mask_sp != 0).any()):
            continue
        keep = (layer.mask_sym == 0).to(sa.dtype).unsqueeze(-1).expand_as(sa).clone()
        out.append((sa, keep))
    return out


def _fit_dict(module, dataset, opts, optimizer, params, hist, comm) -> torch.Tensor:
    """fit on a dataset dict (one process, or this rank's shard)."""
    steps, log, batch, metrics = (opts[k] for k in ("steps", "log", "batch", "metrics"))
    objective = opts.get("objective")
    data = check_dataset(dataset, module, labels_optional=objective is not None)
    loss_fn = opts["loss_fn"] or _mse
    step_fn = _Step(module, optimizer, params, opts, loss_fn, comm)
    x_tr, y_tr = data["train_input"], data["train_label"]
    rmse = y_tr is not None and tuple(y_tr.shape[1:]) == (module.n_out,)
    if objective is not None:
        hist["train_objective"], hist["test_objective"] = [], []
        if not rmse:
            del hist["train_rmse"], hist["test_rmse"]
    n = x_tr.shape[0]
    # across ranks a minibatch is drawn from the union of the shards (concatenated in rank
    # order) with the same generator on every rank; each rank trains on its share of it
    counts = comm.counts(n) if comm is not None else [n]
    n_all, offset = sum(counts), sum(counts[:comm.rank]) if comm is not None else 0
    bs = n_all if batch == -1 or batch > n_all else batch
    step_fn.allow_empty = bs < n_all
    gen = torch.Generator().manual_seed(opts["seed"])
    root = _Root()
    x_te = data["test_input"]
    small = (n + x_te.shape[0]) * x_tr.shape[1] <= 1 << 22
    x_eval = torch.cat([x_tr, x_te]) if small and x_te.device == x_tr.device else None
    bar = _progress(steps, opts["progress"] and (comm is None or comm.rank == 0))
    if isinstance(optimizer, LBFGS) and steps > 1:
        step_fn.held = held_affines(module)
    for step in bar:
        if step == 1 and step_fn.held:  # released: a fresh L-BFGS history over all parameters
            step_fn.held = []
            step_fn.optimizer = LBFGS(params, lr=opts["lr"], history_size=10)
        perm = torch.randperm(n_all, generator=gen, device="cpu")[:bs] if bs < n_all else None
        idx = None if perm is None else _share(perm, offset, n).to(x_tr.device)
        xb = x_tr if idx is None else x_tr[idx]
        yb = y_tr if idx is None or y_tr is None else y_tr[idx]
        if _grid_due(opts, step):
            xg = xb if comm is None else _gather_batch(comm, xb, perm, counts, opts, step)
            update_grid(module, xg, opts["grid_eps"])
        state, ok = step_fn.run(xb, yb, step)
        if not ok:
            hist["stopped_early"] = step
            break
        if objective is not None:
            losses = _objective_losses(objective, opts["model"], module, data, rmse)
            if comm is not None:
                losses = _global_means(comm, losses, n, x_te.shape[0])
            hist["train_objective"].append(losses[0])
            hist["test_objective"].append(losses[1])
            _record(hist, root, losses, state, step_fn.use_reg, metrics, comm, n)
        else:
            _eval_losses(module, data, x_eval, n, loss_fn, comm, hist, root, state, step_fn,
                         metrics)
        if _step_done(hist, state, bar, opts, step):
            break
    if comm is not None:  # the same sample on every rank, for refine and later grid work
        return comm.gather_rows(x_tr, opts["grid_samples"], opts["seed"])
    return x_tr


def _share(perm: torch.Tensor, offset: int, n: int) -> torch.Tensor:
    """The rows of a minibatch ``perm`` (indices into the union of the shards) that this rank
    holds (rows ``offset`` to ``offset + n`` of the union), as indices into its shard, in the
    minibatch's order; possibly none."""
    mine = (perm >= offset) & (perm < offset + n)
    return perm[mine] - offset


def _gather_batch(comm, xb: torch.Tensor, perm, counts: list, opts: dict,
                  step: int) -> torch.Tensor:
    """The minibatch's rows of all ranks for a grid update, in the minibatch's order (as one
    process would have them) when no rank had to subsample."""
    xg = comm.gather_rows(xb, opts["grid_samples"], opts["seed"] + step)
    if perm is None or xg.shape[0] != perm.shape[0]:
        return xg
    bounds = torch.tensor(counts).cumsum(0)
    owner = torch.bucketize(perm, bounds, right=True)  # the rank holding each row
    order = torch.argsort(owner, stable=True).to(xg.device)  # gathered row i is perm[order[i]]
    out = torch.empty_like(xg)
    out[order] = xg
    return out
