"""``kanir.KAN``: the pykan-style facade. Thin: it delegates to the IR, the backends and passes.

One rule for state: every method that changes the model (``refine``, ``prune``,
``fix_symbolic``, ``expand_*`` ...) changes *this* model and returns it, so both
``model.prune()`` and ``model = model.prune()`` work. Two methods return data instead and still
change the model in place: ``fit`` (the training history) and ``augment_input`` (the extended
dataset). ``model.copy()`` gives an independent copy; the graph passes underneath never mutate
their input.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from kanir.backends.torch import KANModule, lift, lower, torch_dtype

from .errors import DataError, KanirError
from .facade_passes import PassMethods
from .facade_pykan import PykanMethods
from .facade_symbolic import SymbolicMethods
from .graph import KanGraph
from .grids import refine as _refine
from .init import init_module
from .io import load_graph, save_graph
from .training import as_tensor
from .training import fit as _fit


def _default_device():
    return "cuda" if torch.cuda.is_available() else "cpu"


class KAN(PykanMethods, PassMethods, SymbolicMethods, nn.Module):
    """A Kolmogorov-Arnold Network (MultKAN): ``KAN(width=[2, 5, 1], grid=5, k=3, seed=0)``.

    ``width`` as pykan writes it (``[2, [0, 1], 1]`` puts one mult node in the hidden layer);
    ``mult_arity`` an int or per-layer lists; ``dtype`` torch.float32 (default) or float64;
    ``device`` defaults to CUDA when present, else CPU. The torch module is ``model.net``
    (``model.module(start_layer, chain)`` is pykan's module constraint). ``versions``: True keeps every state
    change as a version in memory (``rewind``), a folder path writes them there as .kanir files,
    False turns them off.
    """

    def __init__(self, width=None, grid: int = 3, k: int = 3, mult_arity=2, seed: int = 1,
                 base_fun: str = "silu", noise_scale: float = 0.3, grid_range=(-1, 1),
                 sparse_init: bool = False, input_names=None, output_names=None, device=None,
                 dtype=torch.float32, versions=True, *, _module: KANModule | None = None):
        super().__init__()
        if _module is None:
            if width is None:
                raise KanirError("KAN needs a width, e.g. KAN(width=[2, 5, 1])")
            _module = init_module(list(width), mult_arity, grid, k, seed, noise_scale, base_fun,
                                  grid_range, sparse_init, input_names, output_names, dtype)
        self.net = _module.to(device or _default_device())
        self.register_buffer("cache_x", None, persistent=False)
        self._init_extensions(versions)

    # ------------------------------------------------------------------ IR bridge
    @property
    def graph(self) -> KanGraph:
        """The model as a layered KanGraph (a fresh lift each time)."""
        return lift(self.net)

    @classmethod
    def from_graph(cls, graph: KanGraph, device=None, versions=True) -> KAN:
        """A KAN whose module is the lowering of ``graph``."""
        return cls(_module=lower(graph), device=device, versions=versions)

    @classmethod
    def from_tree(cls, tree, grid: int = 5, k: int = 3, device=None, dtype="float64", **kw) -> KAN:
        """Trick A: a KAN wired after a function tree (kanir.tree), see passes.structure."""
        from kanir.passes.structure import graph_from_tree

        return cls.from_graph(graph_from_tree(tree, grid=grid, k=k, dtype=dtype, **kw), device=device)

    def set_graph(self, graph: KanGraph) -> KAN:
        """Replace this model's function by ``graph`` (same device); returns self."""
        dev = self.device
        self.net = lower(graph).to(dev)
        return self

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
    def width(self) -> list:
        return self.graph.width

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
        return lift(self.net).summary()

    # ------------------------------------------------------------------ evaluation
    def forward(self, x: torch.Tensor) -> torch.Tensor:
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
        return self.net(x)

    def speed(self, fast: bool = True) -> KAN:
        """pykan's switch: keep per-edge activations off (fast) or on; returns self."""
        self.net.set_keep_acts(not fast)
        return self

    # ------------------------------------------------------------------ training
    def fit(self, dataset: dict, opt: str = "LBFGS", steps: int = 100, log: int = 1,
            lamb: float = 0.0, lamb_l1: float = 1.0, lamb_entropy: float = 2.0,
            lamb_coef: float = 0.0, lamb_coefdiff: float = 0.0, update_grid: bool = True,
            grid_update_num: int = 10, loss_fn=None, lr: float = 1.0,
            start_grid_update_step: int = -1, stop_grid_update_step: int = 50, batch: int = -1,
            metrics=(), singularity_avoiding: bool = False, y_th: float = 1000.0,
            grid_eps: float = 0.02, progress: bool = True, seed: int = 0) -> dict:
        """Train in place with pykan's semantics; returns the history (see kanir.training.fit)."""
        hist = _fit(self.net, dataset, opt, steps, log, lamb, lamb_l1, lamb_entropy, lamb_coef,
                    lamb_coefdiff, update_grid, grid_update_num, loss_fn, lr,
                    start_grid_update_step, stop_grid_update_step, batch, metrics,
                    singularity_avoiding, y_th, grid_eps, progress, seed)
        self.cache_x = as_tensor(dataset["train_input"], "dataset['train_input']", self.dtype,
                                 self.device, self.net.n_in)
        self._after_change("fit", loss=hist["train_loss"][-1] if hist["train_loss"] else None)
        return hist

    def refine(self, new_grid: int, x: torch.Tensor | None = None, grid_eps: float = 1.0) -> KAN:
        """Move every spline onto ``new_grid`` intervals keeping its function; returns self.

        The new knots are uniform over the data range by default (``grid_eps=1``), so a finer
        grid nests the coarser one and the least-squares projection is exact; it uses ``x``
        (default: the last training inputs, else uniform samples over the input grid range).
        """
        if not isinstance(new_grid, int) or new_grid < 1:
            raise KanirError(f"new_grid must be a positive integer, got {new_grid!r}")
        if x is None:
            x = self.cache_x if self.cache_x is not None else self._uniform_samples(1000)
        x = as_tensor(x, "x", self.dtype, self.device, self.net.n_in)
        self.net = _refine(self.net, new_grid, x, grid_eps)
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
        """The function's tree of variable groups (kanir.tree) on ``x`` (default: last training
        inputs, else uniform samples over the input grid range); names are the input names."""
        from .tree import tree as _tree

        if x is None:
            x = self.cache_x if self.cache_x is not None else self._uniform_samples(1000)
        kw.setdefault("variables", self.input_names)
        return _tree(self, x, **kw)

    def plot(self, path=None, folder=None, beta: float = 3, metric: str = "backward",
             scale=0.5, tick=False, sample=False, in_vars=None, out_vars=None, title=None,
             varscale=1.0, x=None, **kw):
        """The model as a graphviz diagram (kanir.to_dot, whose keywords ``kw`` takes); written
        to ``path`` when given. Returns the ``graphviz.Digraph``.

        pykan's arguments mean what they mean there: edges fade as ``tanh(beta * score)`` with
        the score by ``metric`` ('backward': attribution, 'forward_u', 'forward_n'), measured on
        ``x``, else the model's attribution scores, else its cached training inputs (without
        data nothing fades); ``in_vars`` / ``out_vars`` label the inputs / outputs; ``title``;
        ``folder``: write the diagram there as kan.svg (kan.dot without Graphviz) and any
        ``curves=True`` images beside it. A ``path`` without a suffix is taken as that folder
        (pykan's first argument). ``scale``, ``tick``, ``sample``, ``varscale`` size pykan's
        matplotlib figure and are ignored here, with a warning.
        """
        import shutil
        import warnings
        from pathlib import Path

        from kanir.backends.graphviz import METRICS, edge_scores
        from kanir.backends.graphviz import plot as _plot

        pykan_figure = {"scale": (scale, 0.5), "tick": (tick, False), "sample": (sample, False),
                        "varscale": (varscale, 1.0)}
        ignored = [k for k, (v, default) in pykan_figure.items() if v != default]
        if ignored:
            warnings.warn(f"plot: {', '.join(ignored)} set the size of pykan's matplotlib "
                          f"figure and are ignored by kanir's graphviz diagram", stacklevel=2)
        if path is not None and folder is None and not Path(path).suffix:
            path, folder = None, path  # pykan's plot(folder)
        if folder is not None:
            folder = Path(folder)
            folder.mkdir(parents=True, exist_ok=True)
            if path is None:
                path = folder / ("kan.svg" if shutil.which("dot") else "kan.dot")
            if kw.get("curves"):
                kw.setdefault("curve_dir", folder)
        graph = self.graph
        if "scores" not in kw:
            if x is None and metric == "backward" and self._scored is not None:
                kw["scores"] = edge_scores(self._scored[0])  # the model's attribution scores
            elif x is not None or self._plot_data() is not None:
                data = x if x is not None else self._plot_data()
                kw["scores"] = edge_scores(graph, data, metric)
            elif metric not in METRICS:
                edge_scores(graph, None, metric)  # the error naming pykan's metrics
        return _plot(graph, path, beta=beta, title=title, input_labels=in_vars,
                     output_labels=out_vars, **kw)

    def _plot_data(self):
        """Samples to measure edge importance on: pykan's cache_data when a forward pass left
        one, else the last training inputs; None without data."""
        cached = getattr(self, "cache_data", None)
        if isinstance(cached, torch.Tensor):
            return cached
        return self.cache_x

    # ------------------------------------------------------------------ files
    def save(self, path) -> None:
        """Save to a .kanir file (atomic; no pickle)."""
        save_graph(self.graph, path)

    @classmethod
    def load(cls, path, device=None) -> KAN:
        graph, _ = load_graph(path)
        return cls.from_graph(graph, device=device)

    def copy(self) -> KAN:
        """An independent deep copy."""
        return copy.deepcopy(self)

    def to_dtype(self, dtype) -> KAN:
        """Convert parameters to ``dtype`` (torch.float32/float64, or their names); returns self."""
        dt = torch_dtype(dtype) if isinstance(dtype, str) else dtype
        self.net.to(dt)
        return self


def load(path, device=None) -> KAN:
    """Load a KAN from a .kanir file."""
    return KAN.load(path, device=device)
