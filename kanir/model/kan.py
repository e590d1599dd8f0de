"""``kanir.KAN``: the pykan-style facade. Thin: it delegates to the IR, the backends and passes.

One rule for state: every method that changes the model (``refine``, ``prune``,
``unfix``, ``expand_*`` ...) changes *this* model and returns it, so both
``model.prune()`` and ``model = model.prune()`` work. Some return data instead and still
change the model in place: ``fit`` (the training history), ``augment_input`` (the extended
dataset), ``fix_symbolic`` (R², as pykan) and ``auto_symbolic`` (its report).
``model.copy()`` gives an independent copy; the graph passes underneath never mutate their
input.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from kanir.arguments import as_float, as_int
from kanir.backends.torch import KANModule, dtype_name, lift, lower, torch_dtype
from kanir.errors import DataError
from kanir.ir.graph import KanGraph
from kanir.ir.io import load_graph, save_graph
from kanir.ir.width import LayerWidth, arity_spec, width_spec
from kanir.model import runtime
from kanir.model.facade_passes import PassMethods
from kanir.model.facade_plot import PlotMethods
from kanir.model.facade_pykan import PykanMethods
from kanir.model.facade_symbolic import SymbolicMethods
from kanir.model.init import check_init_args, init_module, set_trainable
from kanir.train.data import as_tensor, check_dataset
from kanir.train.grids import refine as _refine
from kanir.train.stream import stream_sample
from kanir.train.training import GRID_SAMPLES, fit_with_samples


def _default_device():
    return "cuda" if torch.cuda.is_available() else "cpu"


class KAN(PykanMethods, PassMethods, SymbolicMethods, PlotMethods, nn.Module):
    """A Kolmogorov-Arnold Network (MultKAN): ``KAN(width=[2, 5, 1], grid=5, k=3, seed=0)``.

    pykan's arguments, in pykan's order and with its meaning: ``width`` as pykan writes it
    (``[2, [0, 1], 1]`` puts one mult node in the hidden layer); ``mult_arity`` an int or
    per-layer lists; ``noise_scale``, ``scale_base_mu``, ``scale_base_sigma`` (initialisation);
    ``base_fun`` a name (silu, gelu, tanh, identity, zero) or the matching torch callable
    (``torch.nn.SiLU()``, ``torch.tanh``, ...); ``grid_eps`` the default of ``fit``'s grid updates
    (1: uniform, 0: sample quantiles); ``affine_trainable`` / ``sp_trainable`` / ``sb_trainable``
    set ``requires_grad`` of the node and subnode affines, spline scales and residual scales;
    ``seed``; ``device`` (default: CUDA when present, else CPU; pykan: 'cpu').

    Versions (pykan's checkpoints): ``versions`` True keeps every state change as a version in
    memory (``rewind``), a folder path writes them there as .kanir files, False turns them off.
    pykan's ``auto_save=False`` turns them off and ``ckpt_path`` is their folder; without a
    ckpt_path nothing is written (pykan writes to ./model). ``save_act=True`` keeps per-edge
    activations in forward (as ``speed(False)``; kanir's default is off). Accepted and without
    effect: ``symbolic_enabled`` (a new model has no symbolic edges, and kanir evaluates an
    edge's symbolic part whenever it has one), ``first_init``, ``state_id``, ``round`` (kanir
    numbers a new model's versions from 0.0).

    kanir's own keyword arguments: ``input_names``/``output_names`` (distinct identifiers),
    ``dtype`` (torch.float32, the default, or torch.float64), ``versions``, ``max_versions``
    (how many states in-memory versions hold; the listing stays complete).

    State: the torch module ``model.net`` is the model; ``model.graph`` is a cached read-only
    view of it (lift and lower are lossless, annotations included), and passes put their
    result back into the same module whenever the shapes allow, so hooks, frozen parameters,
    train/eval and keep_acts survive them. ``save`` keeps ``grid_eps`` and the trainable
    flags. The torch module is ``model.net`` (``model.module(start_layer, chain)`` is pykan's
    module constraint).
    Every argument is checked; a bad one is a KanirError that names it.
    """

    def __init__(self, width=None, grid: int = 3, k: int = 3, mult_arity=2,
                 noise_scale: float = 0.3, scale_base_mu: float = 0.0,
                 scale_base_sigma: float = 1.0, base_fun="silu", symbolic_enabled: bool = True,
                 affine_trainable: bool = False, grid_eps: float = 0.02, grid_range=(-1, 1),
                 sp_trainable: bool = True, sb_trainable: bool = True, seed: int = 1,
                 save_act: bool | None = None, sparse_init: bool = False,
                 auto_save: bool | None = None, first_init: bool = True, ckpt_path=None,
                 state_id: int = 0, round: int = 0, device=None, *, input_names=None,
                 output_names=None, dtype=torch.float32, versions=True,
                 max_versions: int | None = None, _module: KANModule | None = None):
        super().__init__()
        args = check_init_args(width, grid, k, mult_arity, noise_scale, scale_base_mu,
                               scale_base_sigma, base_fun, symbolic_enabled, affine_trainable,
                               grid_eps, grid_range, sp_trainable, sb_trainable, seed, save_act,
                               sparse_init, auto_save, first_init, ckpt_path, state_id, round,
                               device, input_names, output_names, dtype, versions,
                               build=_module is None)
        if _module is None:
            _module = init_module(args["width"], None, args["grid"], args["k"], args["seed"],
                                  args["noise_scale"], args["base_fun"], args["grid_range"],
                                  args["sparse_init"], args["input_names"], args["output_names"],
                                  args["dtype"], args["scale_base_mu"], args["scale_base_sigma"])
        self.grid_eps = args["grid_eps"]
        self._trainable = (args["affine_trainable"], args["sp_trainable"], args["sb_trainable"])
        if self._trainable != (False, True, True):
            set_trainable(_module, *self._trainable)
        if args["save_act"] is not None:
            _module.set_keep_acts(args["save_act"])
        self.net = _module.to(args["device"] or _default_device())
        self.register_buffer("cache_x", None, persistent=False)
        self.register_buffer("cache_y", None, persistent=False)
        self._graph_cache = None  # (state key, lifted graph): see the graph property
        self._changes = 0  # bumped by every change the tensors' version counters do not show
        self._init_extensions(args["versions"], max_versions)

    # ------------------------------------------------------------------ IR bridge
    @property
    def graph(self) -> KanGraph:
        """The model as a layered KanGraph: a read-only view, lifted once per state.

        Repeated reads cost microseconds until something changes the model (training, a pass,
        a parameter edit, ``load_state_dict``, ``to()``: each writes or replaces a tensor, which
        its version counter or storage address shows). The view's structure is frozen (adding
        or removing nodes and edges raises) and its spline arrays are read-only; its ``meta``
        is the caller's own. Edit a copy: ``g = model.graph.copy(); ...; model.set_graph(g)``.
        """
        key = self._state_key_ir()
        cached = self._graph_cache
        if cached is None or cached[0] != key:
            cached = (key, runtime.freeze(lift(self.net, readonly=True)))
            self._graph_cache = cached
        g = cached[1]
        return KanGraph(g.nx, {k: list(v) if isinstance(v, list) else v
                               for k, v in g.meta.items()}, g.level)

    def _state_key_ir(self) -> tuple:
        """What the lifted graph depends on: the module object, its dtype, every tensor's
        storage and in-place version counter, and the facade's own change counter."""
        net = self.net
        return (id(net), self._changes, runtime.tensor_versions(net))

    def _touch(self) -> None:
        """Note a change the tensor version counters cannot see (structure, names, meta)."""
        self._changes += 1
        self._graph_cache = None

    @classmethod
    def from_graph(cls, graph: KanGraph, device=None, versions=True, *, grid=None, k=None,
                   grid_range=None, base_fun=None, dtype=None, **settings) -> KAN:
        """A KAN whose module is the lowering of ``graph``.

        ``dtype`` converts the graph's parameters (default: the graph's dtype). ``grid``, ``k``,
        ``grid_range`` and ``base_fun`` are the settings of splines the graph does not have
        yet (``perturb``, ``expand_*`` and layers without splines take them); one that
        contradicts a spline of the graph is an error (``refine`` moves existing splines to
        another grid). ``settings``: the facade's own keyword arguments (``grid_eps``,
        ``affine_trainable``, ``sp_trainable``, ``sb_trainable``, ``max_versions``, ...);
        arguments that only build a fresh random network (``width``, ``noise_scale``, ...)
        are refused. ``seed`` is accepted and unused: nothing here is random."""
        from kanir.model.graph_settings import apply_settings, check_init_only

        check_init_only(settings)
        graph, dt = apply_settings(graph, grid, k, grid_range, base_fun, dtype)
        return cls(_module=lower(graph, dtype=dt), device=device, versions=versions, **settings)

    @classmethod
    def from_tree(cls, tree, grid: int = 5, k: int = 3, device=None, dtype="float64", **kw) -> KAN:
        """Trick A: a KAN wired after a function tree (kanir.science.tree), see passes.structure."""
        from kanir.passes.structure import graph_from_tree

        return cls.from_graph(graph_from_tree(tree, grid=grid, k=k, dtype=dtype, **kw), device=device)

    def set_graph(self, graph: KanGraph) -> KAN:
        """Replace this model's function by ``graph``; returns self.

        The module's runtime state survives: when the widths, grids and dtype are unchanged the
        new values are copied into the existing tensors (so ``requires_grad`` flags, hooks on
        ``model.net`` and its layers, optimizers holding the parameters, train/eval, keep_acts
        and the device all stay); otherwise a new module takes over train/eval, keep_acts,
        singularity avoidance, the device, ``requires_grad`` per parameter kind and the hooks
        on ``model.net`` and on the layers at the same index."""
        self._install(lower(graph))
        return self

    def _install(self, module: KANModule) -> None:
        """Make ``module``'s function this model's, keeping the current module's runtime state."""
        self.net = runtime.install(self.net, module)
        self._touch()
    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return self.net.device

    @property
    def dtype(self) -> torch.dtype:
        return self.net.dtype

    @property
    def input_names(self) -> list[str]:
        return list(self.net.meta["input_names"])

    @property
    def output_names(self) -> list[str]:
        return list(self.net.meta["output_names"])

    @property
    def width(self) -> list[list[int]]:
        """pykan's ``model.width``: ``[n_sum, n_mult]`` per node layer, e.g. ``[[2, 0], [5, 0], [1, 0]]``.

        ``KAN(model.width, mult_arity=model.mult_arity)`` rebuilds the same shape; the compact
        spelling (``[2, 5, 1]``) is ``model.width_spec``.
        """
        return [[lw.n_sum, lw.n_mult] for lw in self._layer_widths()]

    @property
    def width_spec(self) -> list:
        """The compact width spec, ints where a layer has no mult nodes: ``[2, [5, 1], 1]``."""
        return width_spec(self._layer_widths())

    @property
    def mult_arity(self):
        """pykan's ``model.mult_arity``: an int when every mult node has that arity, else per-layer lists."""
        return arity_spec(self._layer_widths())

    def _layer_widths(self) -> list[LayerWidth]:
        """Node-layer widths read from the module (no lift)."""
        return [LayerWidth(self.net.n_in)] + [l.out_width for l in self.net.layers]

    @property
    def depth(self) -> int:
        return len(self.net.layers)

    @property
    def grid(self) -> int:
        return self.net.layers[0].G

    @property
    def k(self) -> int:
        return self.net.layers[0].k

    def extra_repr(self) -> str:
        return self.graph.summary()

    # ------------------------------------------------------------------ evaluation
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's outputs on ``x`` (batch, n_in). Like pykan it remembers ``x`` (a detached
        reference, no copy and no extra computation), so ``model.acts``, ``attribute()``,
        ``prune()`` and ``auto_symbolic()`` afterwards need no data; the per-edge activations
        themselves are computed only when first asked for."""
        if not isinstance(x, torch.Tensor):
            raise DataError(f"KAN input must be a torch tensor, got {type(x).__name__}")
        if x.dim() != 2 or x.shape[1] != self.net.n_in:
            raise DataError(f"KAN input must have shape (batch, {self.net.n_in}) for inputs "
                            f"{self.input_names}, got {tuple(x.shape)}")
        if x.device != self.device:
            raise DataError(f"input is on {x.device} but the model is on {self.device}; "
                            f"move it with x.to(model.device)")
        if x.dtype != self.dtype:
            x = x.to(self.dtype)
        self._remember_input(x)
        return self.net(x)

    def speed(self, fast: bool = True, compile: bool = False):
        """pykan's switch: keep per-edge activations off (fast) or on; returns self, or with
        ``compile=True`` (as pykan) ``torch.compile(self)``. kanir's forward is fast either way;
        activations after a forward are computed on demand (``model.acts``)."""
        self.net.set_keep_acts(not fast)
        return torch.compile(self) if compile else self

    # ------------------------------------------------------------------ training
    def fit(self, dataset: dict, opt: str = "LBFGS", steps: int = 100, log: int = 1,
            lamb: float = 0.0, lamb_l1: float = 1.0, lamb_entropy: float = 2.0,
            lamb_coef: float = 0.0, lamb_coefdiff: float = 0.0, update_grid: bool = True,
            grid_update_num: int = 10, loss_fn=None, lr: float = 1.0,
            start_grid_update_step: int = -1, stop_grid_update_step: int = 50, batch: int = -1,
            metrics=None, save_fig: bool = False, in_vars=None, out_vars=None, beta: float = 3,
            save_fig_freq: int = 1, img_folder: str = "./video",
            singularity_avoiding: bool = False, y_th: float = 1000.0,
            reg_metric: str = "edge_forward_spline_n", display_metrics=None, *,
            grid_eps: float | None = None, progress: bool = True, seed: int = 0,
            test_loader=None, grid_samples: int = GRID_SAMPLES, objective=None,
            stop=None) -> dict:
        """Train in place with pykan's semantics and arguments (in pykan's order); returns the
        history, whose ``train_loss``/``test_loss`` are RMSEs as in pykan (see
        :func:`kanir.train.training.fit` for every key and argument).

        The dataset needs ``train_input``, ``train_label``, ``test_input`` and ``test_label``
        (as in pykan; ``kanir.create_dataset_from_data`` splits data). ``grid_eps`` defaults to
        the model's (``KAN(grid_eps=...)``, pykan's 0.02). ``save_fig=True`` is refused (kanir
        writes no per-step figures; call ``model.plot(path)`` between shorter fits);
        ``in_vars``, ``out_vars``, ``beta``, ``save_fig_freq`` and ``img_folder`` only serve it.

        ``objective(model, x, y) -> scalar tensor`` trains on any loss of this model on a batch
        instead of the data loss, e.g. a physics objective through ``kanir.jacobian(model, x,
        create_graph=True)``; the dataset's labels are then optional (see
        :func:`kanir.train.training.fit`; built-in objectives in kanir.science.objectives).

        ``dataset`` may also be a re-iterable of (x, y) batches (a torch DataLoader) with
        ``test_loader``; grid updates and a later ``refine`` then use a reservoir sample of
        ``grid_samples`` rows of it (docs/scale.md). Under torchrun each rank passes its shard.
        ``stop()`` -> True ends training after the current step (``history['stopped_by']``).
        Symbolic edges' affine parameters train as in pykan; with L-BFGS those feeding spline
        layers wait for the first step (so a just-fixed edge does not slide off their grids).
        """
        hist, samples = fit_with_samples(
            self.net, dataset, opt=opt, steps=steps, log=log, lamb=lamb,
            lamb_l1=lamb_l1, lamb_entropy=lamb_entropy, lamb_coef=lamb_coef,
            lamb_coefdiff=lamb_coefdiff, update_grid_=update_grid,
            grid_update_num=grid_update_num, loss_fn=loss_fn, lr=lr,
            start_grid_update_step=start_grid_update_step,
            stop_grid_update_step=stop_grid_update_step, batch=batch, metrics=metrics,
            singularity_avoiding=singularity_avoiding, y_th=y_th,
            grid_eps=self.grid_eps if grid_eps is None else grid_eps, progress=progress,
            seed=seed, reg_metric=reg_metric, display_metrics=display_metrics,
            save_fig=save_fig, save_fig_freq=save_fig_freq, test_loader=test_loader,
            grid_samples=grid_samples, objective=objective, model=self, stop=stop)
        self.cache_x = samples
        # what the objective declares the model must keep (auto_symbolic respects it)
        self.objective_constraints = tuple(getattr(objective, "constraints", ()) or ())
        self.net.drop_analysis()
        labels = dataset.get("train_label") if isinstance(dataset, dict) else None
        if objective is None and isinstance(labels, torch.Tensor) and labels.is_floating_point() \
                and samples is not None and labels.shape[0] == samples.shape[0]:
            self.cache_y = labels.detach().to(self.device, self.dtype)  # labels of cache_x
        else:
            self.cache_y = None  # no labels kept: a stream's reservoir sample, or an objective's
            # labels, which are not the model's outputs (a Lagrangian's q̈), so never snap to them
        self._after_change("fit", loss=hist["train_loss"][-1] if hist["train_loss"] else None)
        return hist

    def evaluate(self, dataset: dict) -> dict:
        """pykan's evaluation: ``{'test_loss': RMSE on the test split, 'n_edge': number of
        edges with an active spline or symbolic part, 'n_grid': grid intervals}``."""
        data = check_dataset(dataset, self.net)
        with torch.no_grad():
            pred = self.net(data["test_input"])
            rmse = torch.sqrt(torch.mean((pred - data["test_label"]) ** 2))
        n_edge = sum(int(((layer.mask_sp != 0) | (layer.mask_sym != 0)).sum())
                     for layer in self.net.layers)
        return {"test_loss": float(rmse), "n_edge": n_edge, "n_grid": self.grid}

    def refine(self, new_grid: int, x=None, grid_eps: float = 1.0, *,
               grid_samples: int = GRID_SAMPLES, seed: int = 0) -> KAN:
        """Move every spline onto ``new_grid`` intervals keeping its function; returns self.

        The new knots are uniform over the data range by default (``grid_eps=1``), so a finer
        grid nests the coarser one and the least-squares projection is exact; it uses ``x``
        (default: the last training inputs, or the reservoir sample of the stream that fit
        trained on, else uniform samples over the input grid range). ``x`` may be a stream of
        (x, y) batches: then a seeded reservoir sample of ``grid_samples`` of its rows.
        """
        new_grid = as_int(new_grid, "new_grid", 1)
        grid_eps = as_float(grid_eps, "grid_eps", 0.0, 1.0)
        if x is None:
            x = self._recent_data()
            x = x if x is not None else self._uniform_samples(1000)
        elif not isinstance(x, torch.Tensor | np.ndarray | list | tuple):
            x = stream_sample(x, self.net, as_int(grid_samples, "grid_samples", 1), seed)
        x = as_tensor(x, "x", self.dtype, self.device, self.net.n_in)
        self._install(_refine(self.net, new_grid, x, grid_eps))
        self.net.drop_analysis()
        self._after_change("refine")
        return self

    def _uniform_samples(self, n: int) -> torch.Tensor:
        g = self.net.layers[0].grid
        k = self.net.layers[0].k
        lo, hi = g[:, k], g[:, -k - 1]
        u = torch.rand(n, g.shape[0], generator=torch.Generator().manual_seed(0),
                       dtype=torch.float64).to(g.device, g.dtype)
        return lo + (hi - lo) * u

    # ------------------------------------------------------------------ structure
    def tree(self, x=None, **kw):
        """The function's tree of variable groups (kanir.science.tree) on ``x`` (default: last training
        inputs, else uniform samples over the input grid range); names are the input names."""
        from kanir.science.tree import tree as _tree

        if x is None:
            x = self._recent_data()
            x = x if x is not None else self._uniform_samples(1000)
        kw.setdefault("variables", self.input_names)
        return _tree(self, x, **kw)

    # ------------------------------------------------------------------ files
    def settings(self) -> dict:
        """The facade's own settings a file keeps beside the graph: ``grid_eps`` and pykan's
        ``affine_trainable`` / ``sp_trainable`` / ``sb_trainable``."""
        affine, sp, sb = self._trainable
        return {"grid_eps": self.grid_eps, "affine_trainable": affine, "sp_trainable": sp,
                "sb_trainable": sb}

    def save(self, path) -> None:
        """Save to a .kanir file (atomic; no pickle): the graph with every annotation, and the
        facade's :meth:`settings`."""
        save_graph(self.graph, path, {runtime.SETTINGS_KEY: self.settings()})

    @classmethod
    def load(cls, path, device=None) -> KAN:
        graph, extra = load_graph(path)
        return cls.from_graph(graph, device=device, **runtime.read_settings(extra, path))

    def copy(self) -> KAN:
        """An independent deep copy (the cached graph view is left behind, not copied)."""
        cached, self._graph_cache = self._graph_cache, None
        try:
            return copy.deepcopy(self)
        finally:
            self._graph_cache = cached

    def to_dtype(self, dtype) -> KAN:
        """Convert parameters to ``dtype`` (torch.float32/float64, or their names); returns self."""
        dt = torch_dtype(dtype) if isinstance(dtype, str) else dtype
        dtype_name(dt)  # GraphError for anything but float32/float64
        return self.to(dt)


def load(path, device=None) -> KAN:
    """Load a KAN from a .kanir file."""
    return KAN.load(path, device=device)
