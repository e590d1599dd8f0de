"""Training with pykan's semantics: ``fit`` (LBFGS/Adam, sparsity regularisation, grid
updates), ``create_dataset``, and data validation that names what is wrong.

The history uses pykan's names and meanings: ``train_loss``/``test_loss`` are RMSEs (the square
root of the loss function, which is the MSE by default), ``train_rmse``/``test_rmse`` are
root-mean-square errors whatever the loss function, ``reg`` is the regulariser before
multiplying by ``lamb``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch

from kanir.arguments import as_device, as_float, as_int, as_seed, check_fit_args
from kanir.backends.torch import BASE_FUNS, KANModule
from kanir.errors import ArgumentError, DataError, KanirError
from kanir.ir.bspline import dense_bases
from kanir.train.grids import Reservoir, update_grid
from kanir.train.optim import LBFGS


# ---------------------------------------------------------------------- data
def as_tensor(x, name: str, dtype: torch.dtype, device, n_cols: int | None = None) -> torch.Tensor:
    """Convert to a 2-D floating tensor on ``device``; raise DataError on shape/NaN problems."""
    if isinstance(x, np.ndarray | list | tuple | float | int):
        try:
            x = torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as e:
            raise DataError(f"{name} cannot be converted to a float array: {e}") from None
    if not isinstance(x, torch.Tensor):
        raise DataError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}")
    if x.dim() == 1 and n_cols == 1:
        x = x.unsqueeze(1)
    if x.dim() != 2:
        want = f"(batch, {n_cols})" if n_cols is not None else "(batch, n)"
        raise DataError(f"{name} must have shape {want}, got {tuple(x.shape)}")
    if n_cols is not None and x.shape[1] != n_cols:
        raise DataError(f"{name} must have shape (batch, {n_cols}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.to(torch.float64)
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        rows = torch.nonzero(bad.any(dim=1)).flatten()
        raise DataError(f"{name} contains NaN or inf in {len(rows)} row(s) "
                        f"(first: row {int(rows[0])})")
    return x.to(device=device, dtype=dtype)


def check_dataset(dataset: dict, module: KANModule, labels_optional: bool = False) -> dict:
    """Validated copy of a pykan-style dataset dict on the module's device and dtype
    (``labels_optional``: an objective's dataset may leave out both labels; they are None)."""
    if not isinstance(dataset, dict):
        raise DataError("dataset must be a dict with train_input, train_label, test_input, test_label")
    module.check_dtype()
    if labels_optional and dataset.get("train_label") is None \
            and dataset.get("test_label") is None:
        dataset = {**dataset, "train_label": None, "test_label": None}
        no_labels = True
    else:
        no_labels = False
    needed = ("train_input",) if no_labels else ("train_input", "train_label")
    missing = [k for k in needed if dataset.get(k) is None]
    if missing:
        raise DataError(f"dataset lacks {missing}; create one with kanir.create_dataset")
    needed = ("test_input",) if no_labels else ("test_input", "test_label")
    missing = [k for k in needed if dataset.get(k) is None]
    if missing:
        raise DataError(f"dataset lacks {missing}: as in pykan, fit and evaluate report test "
                        "metrics and need a test split (kanir.create_dataset_from_data(x, y) "
                        "makes one; to monitor the training data only, pass it as test data too)")
    out = {}
    for split in ("train", "test"):
        xi, yi = dataset[f"{split}_input"], dataset[f"{split}_label"]
        x = as_tensor(xi, f"dataset['{split}_input']", module.dtype, module.device, module.n_in)
        if no_labels:
            if x.shape[0] == 0:
                raise DataError(f"dataset['{split}_input'] is empty")
            out[f"{split}_input"], out[f"{split}_label"] = x, None
            continue
        y = as_tensor(yi, f"dataset['{split}_label']", module.dtype, module.device,
                      None if labels_optional else module.n_out)
        if x.shape[0] != y.shape[0]:
            raise DataError(f"dataset['{split}_input'] has {x.shape[0]} rows but "
                            f"dataset['{split}_label'] has {y.shape[0]}")
        if x.shape[0] == 0:
            raise DataError(f"dataset['{split}_input'] is empty")
        out[f"{split}_input"], out[f"{split}_label"] = x, y
    return out


def _ranges(ranges, n_var: int) -> np.ndarray:
    r = np.asarray(ranges, dtype=np.float64)
    if r.shape == (2,):
        r = np.tile(r, (n_var, 1))
    if r.shape != (n_var, 2):
        raise DataError(f"ranges must be [low, high] or one [low, high] per variable ({n_var}), "
                        f"got {ranges!r}")
    if np.any(r[:, 0] >= r[:, 1]) or not np.all(np.isfinite(r)):
        raise DataError(f"every range needs finite low < high, got {r.tolist()}")
    return r


def create_dataset(f: Callable, n_var: int = 2, ranges: Sequence = (-1, 1), train_num: int = 1000,
                   test_num: int = 1000, normalize_input: bool = False,
                   normalize_label: bool = False, device="cpu", seed: int = 0,
                   dtype=torch.float32, f_mode: str = "col") -> dict:
    """pykan's create_dataset: uniform samples in ``ranges``, labels ``f(x)`` of shape (n, n_out).

    ``f`` takes a (n, n_var) tensor (``f_mode='col'``, e.g. ``lambda x: x[:, [0]] * x[:, [1]]``)
    or, with ``f_mode='row'``, a (n_var, n) tensor.
    """
    r = torch.as_tensor(_ranges(ranges, n_var), dtype=torch.float64)
    gen = torch.Generator().manual_seed(int(seed))

    def sample(n):
        u = torch.rand(n, n_var, generator=gen, dtype=torch.float64)
        return r[:, 0] + (r[:, 1] - r[:, 0]) * u

    data = {}
    for split, n in (("train", train_num), ("test", test_num)):
        x = sample(n).to(dtype)
        try:
            y = f(x) if f_mode == "col" else f(x.T)
        except Exception as e:  # the user's function failed: say so plainly
            raise DataError(f"create_dataset: f raised {type(e).__name__}: {e}") from e
        y = torch.as_tensor(y)
        if y.dim() == 1:
            y = y.unsqueeze(1)
        if f_mode == "row" and y.shape[0] != n and y.shape[-1] == n:
            y = y.T
        if y.dim() != 2 or y.shape[0] != n:
            raise DataError(f"create_dataset: f returned shape {tuple(y.shape)} for {n} samples; "
                            f"expected ({n},) or ({n}, n_out)")
        y = as_tensor(y.to(dtype), "the labels f(x)", dtype, "cpu")
        data[f"{split}_input"], data[f"{split}_label"] = x, y
    if normalize_input:
        mu, sd = data["train_input"].mean(0), data["train_input"].std(0).clamp_min(1e-12)
        for s in ("train", "test"):
            data[f"{s}_input"] = (data[f"{s}_input"] - mu) / sd
    if normalize_label:
        mu, sd = data["train_label"].mean(0), data["train_label"].std(0).clamp_min(1e-12)
        for s in ("train", "test"):
            data[f"{s}_label"] = (data[f"{s}_label"] - mu) / sd
    return {k: v.to(device) for k, v in data.items()}


def create_dataset_from_data(inputs, labels, train_ratio: float = 0.8, device="cpu",
                             seed: int = 0) -> dict:
    """pykan's create_dataset_from_data: a random train/test split of given data.

    ``inputs`` (n, n_in) and ``labels`` (n, n_out) or (n,), tensors or arrays; the first
    ``int(n * train_ratio)`` rows of a random permutation (``seed``; pykan uses numpy's global
    state) train, the rest test. Tensors keep their floating dtype, anything else becomes float64.
    """
    ratio = as_float(train_ratio, "train_ratio", 0.0, 1.0)
    dev = as_device(device)
    gen = torch.Generator().manual_seed(as_seed(seed))
    x = _data_tensor(inputs, "inputs", None)
    one_d = (labels.dim() if isinstance(labels, torch.Tensor) else np.ndim(labels)) == 1
    y = _data_tensor(labels, "labels", 1 if one_d else None)
    n = x.shape[0]
    if y.shape[0] != n:
        raise DataError(f"inputs have {n} rows but labels have {y.shape[0]}")
    n_train = int(n * ratio)
    if n_train < 1 or n_train >= n:
        raise DataError(f"train_ratio={ratio} of {n} rows leaves {n_train} training and "
                        f"{n - n_train} test rows; both splits need at least one")
    perm = torch.randperm(n, generator=gen)
    tr, te = perm[:n_train], perm[n_train:].sort().values
    return {"train_input": x[tr].to(dev), "test_input": x[te].to(dev),
            "train_label": y[tr].to(dev), "test_label": y[te].to(dev)}


def _data_tensor(v, name: str, n_cols) -> torch.Tensor:
    """A detached 2-D CPU tensor (floating dtype kept, else float64), checked by as_tensor."""
    dtype = v.dtype if isinstance(v, torch.Tensor) and v.is_floating_point() else torch.float64
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu()
    return as_tensor(v, name, dtype, "cpu", n_cols)


# ---------------------------------------------------------------------- regularisation
class LayerInput(NamedTuple):
    """What a layer received in a forward pass: x, its local B-spline record (or None), and the
    std over the batch of each of its spline edges when the pass computed it (or None)."""

    x: torch.Tensor
    local: tuple | None
    edge_std: torch.Tensor | None = None


def forward_collect(module: KANModule, x: torch.Tensor, first=None, edge_std: bool = False,
                    comm=None, n_total: int = 0) -> tuple[torch.Tensor, list[LayerInput]]:
    """Output, and the input of every layer with its B-spline bases (evaluated once, shared by
    the forward pass and the regulariser). ``first``: the input layer's record of this x from
    ``layer.local(x, fixed=True)``, reused by every evaluation of a training step.
    ``edge_std``: also the regulariser's per-edge std, from the same activations; with ``comm``
    (kanir.train.distributed) the std over the ``n_total`` rows of all ranks."""
    inputs = []
    for n, layer in enumerate(module.layers):
        local = first if n == 0 and first is not None else layer.local(x)
        if edge_std and comm is not None:
            y = layer(x, local)
            std = _global_edge_std(layer, x, comm, n_total) if layer._any_spline else None
        elif edge_std:
            y, std = layer.forward_with_std(x, local)
        else:
            y, std = layer(x, local), None
        inputs.append(LayerInput(x, local, std))
        x = y
    return x, inputs


def _global_edge_std(layer, x: torch.Tensor, comm, n_total: int) -> torch.Tensor:
    """(in, out) std of every spline edge over the rows of all ranks (distributed training)."""
    phi = torch.cat([dense_bases(x, layer.grid, layer.k),
                     BASE_FUNS[layer.base_fun](x).unsqueeze(-1)], dim=-1)  # (b, in, P+1)
    acts = torch.bmm(phi.transpose(0, 1), layer._edge_weights().transpose(1, 2))  # (in, b, out)
    return comm.std(acts, 1, n_total, eps=1e-16)


def edge_scales(module: KANModule, inputs: list, normalized: bool = True, comm=None,
                n_total: int = 0) -> list[torch.Tensor]:
    """pykan's 'edge_forward_spline_n': std of each spline edge / (std of its input + 0.1), or
    with ``normalized=False`` its 'edge_forward_spline_u': the std alone.
    ``inputs``: per layer a :class:`LayerInput` or a bare tensor; ``comm``: stds over the
    ``n_total`` rows of all ranks."""
    out = []
    for layer, inp in zip(module.layers, inputs):
        x, local, std = inp if isinstance(inp, LayerInput) else (inp, None, None)
        if layer._any_spline:
            if std is None:
                std = (layer.spline_edge_std(x, local) if comm is None
                       else _global_edge_std(layer, x, comm, n_total))
            if normalized:
                xs = x.std(dim=0) if comm is None else comm.std(x, 0, n_total)
                std = std / (xs.unsqueeze(1) + 0.1)
            out.append(std)
    return out


def regularizer(module: KANModule, inputs: list, lamb_l1: float = 1.0,
                lamb_entropy: float = 2.0, lamb_coef: float = 0.0,
                lamb_coefdiff: float = 0.0, normalized: bool = True, comm=None,
                n_total: int = 0) -> torch.Tensor:
    """L1 + entropy of edge scales per layer, plus optional coefficient penalties.
    ``normalized``: the edge scales of reg_metric 'edge_forward_spline_n' (True) or '_u'.
    ``comm`` (kanir.train.distributed): statistics over the ``n_total`` rows of all ranks; the value is
    the global one on every rank and gradients summed over ranks are the exact gradient."""
    first = inputs[0]
    reg = (first.x if isinstance(first, LayerInput) else first).new_zeros(())
    eps = 1e-4
    for s in edge_scales(module, inputs, normalized, comm, n_total):
        p_row = s / (s.sum(dim=1, keepdim=True) + eps)
        p_col = s / (s.sum(dim=0, keepdim=True) + eps)
        ent_row = -(p_row * torch.log2(p_row + eps)).sum(dim=1).mean()
        ent_col = -(p_col * torch.log2(p_col + eps)).sum(dim=0).mean()
        reg = reg + lamb_l1 * s.sum() + lamb_entropy * (ent_row + ent_col)
    if lamb_coef or lamb_coefdiff:
        penalty = reg.new_zeros(())
        for layer in module.layers:
            c = layer.coef * layer.mask_sp.unsqueeze(-1)
            penalty = penalty + lamb_coef * c.abs().mean(dim=1).sum()
            penalty = penalty + lamb_coefdiff * torch.diff(c, dim=-1).abs().mean(dim=1).sum()
        reg = reg + (penalty if comm is None else comm.share(penalty))
    return reg


# ---------------------------------------------------------------------- fit
def _mse(pred, y):
    return torch.mean((pred - y) ** 2)


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
    freq = max(1, int(opts["stop_grid_update_step"] / opts["grid_update_num"]))
    return (opts["update_grid_"] and step % freq == 0 and step < opts["stop_grid_update_step"]
            and step >= opts["start_grid_update_step"])


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
        if state.get("frozen"):
            _warn_frozen(hist, step)
            break
        _show(bar, opts, hist, step)
        if _stop_asked(opts, hist, step):
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


def _record(hist, root, losses, state, use_reg, metrics, comm=None, rows: int = 0) -> None:
    """Append one step's history: losses [train, test, train mse, test mse] (already global),
    and the user's metrics, reduced over ranks (:func:`_metric_values`)."""
    hist["train_loss"].append(root(losses[0]))
    hist["test_loss"].append(root(losses[1]))
    if "train_rmse" in hist:
        hist["train_rmse"].append(math.sqrt(losses[2]) if losses[2] >= 0 else float("nan"))
        hist["test_rmse"].append(math.sqrt(losses[3]) if losses[3] >= 0 else float("nan"))
    hist["reg"].append(float(state["reg"]) if use_reg else 0.0)
    for m, v in zip(metrics, _metric_values(metrics, comm, rows)):
        hist[getattr(m, "__name__", str(m))].append(v)


def _metric_values(metrics, comm, rows: int) -> list[float]:
    """The user's metrics (called without arguments, as in pykan). A metric returns a number,
    or a ``(sum, count)`` pair recorded as sum / count. Across ranks (``comm``) pairs are summed
    over ranks before dividing (exact for any sum over rows), and a number becomes the mean over
    ranks weighted by each rank's ``rows`` of training data (exact for a mean over them)."""
    if not metrics:
        return []
    pairs = []
    for m in metrics:
        v = m()
        if isinstance(v, tuple | list) and len(v) == 2:
            pairs.append((_metric_number(v[0], m), _metric_number(v[1], m), True))
        else:
            pairs.append((_metric_number(v, m), 1.0, False))
    if comm is not None:
        flat = [x for s, c, pair in pairs for x in ((s, c) if pair else (s * rows, rows))]
        flat = comm.sum_float(*flat)
        pairs = [(flat[2 * i], flat[2 * i + 1], p) for i, (_, _, p) in enumerate(pairs)]
    return [s / c if c else float("nan") for s, c, _ in pairs]


def _metric_number(v, m) -> float:
    """A metric's value as a float, or an ArgumentError naming the metric."""
    try:
        return float(v)
    except (TypeError, ValueError):
        name = getattr(m, "__name__", repr(m))
        raise ArgumentError(f"metric {name} returned {type(v).__name__} {v!r:.60}; a metric "
                            "returns a number or a (sum, count) pair of numbers") from None


def _stop_asked(opts, hist, step) -> bool:
    """The caller's ``stop()`` said True: record the step and end training."""
    if opts.get("stop") is None or not opts["stop"]():
        return False
    hist["stopped_early"], hist["stopped_by"] = step, "stop"
    return True


def _warn_frozen(hist, step) -> None:
    warnings.warn("fit: the loss does not depend on any trainable parameter (every "
                  "edge reaching the outputs is removed or fixed to a constant); "
                  "nothing to train", stacklevel=5)
    hist["stopped_early"] = step


def _show(bar, opts, hist, step) -> None:
    if opts["progress"] and opts["log"] and step % opts["log"] == 0:
        shown = opts["display_metrics"] or ("train_loss", "test_loss", "reg")
        bar.set_description("|" + "".join(f" {k}: {hist[k][-1]:.2e} |" for k in shown))


# ---------------------------------------------------------------------- streams
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
        if state.get("frozen"):
            _warn_frozen(hist, step)
            break
        _show(bar, opts, hist, step)
        if _stop_asked(opts, hist, step):
            break
    if samples is None:
        samples = stream_sample(loader, module, cap, opts["seed"])
    if comm is not None:  # the same sample on every rank, for refine and later grid work
        samples = comm.gather_rows(samples, opts["grid_samples"], opts["seed"])
    return samples


class _Root:
    """pykan's history value sqrt(loss); a negative loss (a custom loss_fn) gives NaN with one
    warning saying so."""

    def __init__(self):
        self.warned = False

    def __call__(self, v: float) -> float:
        if v >= 0 or not math.isfinite(v):
            return math.sqrt(v) if v >= 0 else v
        if not self.warned:
            warnings.warn(f"loss_fn returned a negative value ({v:.3g}); history['train_loss'] / "
                          "['test_loss'] hold its square root as in pykan and are NaN for it; "
                          "history['train_rmse'] / ['test_rmse'] are unaffected", stacklevel=5)
            self.warned = True
        return float("nan")


def _all_finite(params) -> bool:
    """Every entry of every parameter finite, with one host transfer."""
    return bool(torch.stack([torch.isfinite(p).all() for p in params]).all())


def _progress(steps: int, show: bool):
    if not show:
        return _Silent(range(steps))
    from tqdm.auto import tqdm

    return tqdm(range(steps), ncols=100, disable=None)  # off when stderr is not a terminal


class _Silent:
    def __init__(self, it):
        self.it = it

    def __iter__(self):
        return iter(self.it)

    def set_description(self, _):
        pass
