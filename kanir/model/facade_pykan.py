"""KAN facade methods that complete pykan 0.2.8's public API (activations after a forward,
analysis by node, checkpoints, grid updates, edge modes, layer counts) on top of kanir's passes.

Activations live in :mod:`kanir.model.facade_acts`, checkpoints in :mod:`kanir.model.facade_ckpt`; this
mixin gathers them with the remaining names.
"""

from __future__ import annotations

import numpy as np
import torch

from kanir.backends.torch import lower
from kanir.errors import KanirError
from kanir.ir.bspline import extend_grid
from kanir.model.facade_acts import ActivationMethods
from kanir.model.facade_ckpt import CheckpointMethods
from kanir.passes import edge_mode as _mode
from kanir.train.data import as_tensor
from kanir.train.grids import project_coef
from kanir.train.grids import update_grid as _update_grid
from kanir.train.regularizer import forward_collect, regularizer

_REG_METRICS = ("edge_forward_spline_n",)


class PykanMethods(ActivationMethods, CheckpointMethods):
    """Mixin of kanir.KAN: pykan's remaining public names, with pykan's arguments and results."""

    # ------------------------------------------------------------------ layer counts
    @property
    def width_in(self) -> list[int]:
        """Nodes per node layer 0..L (pykan: sum + mult nodes)."""
        return [lw.n_nodes for lw in self.graph.layer_widths()]

    @property
    def width_out(self) -> list[int]:
        """Subnodes per node layer 0..L (mult nodes count once per operand; layer 0: inputs)."""
        return [lw.n_subnodes for lw in self.graph.layer_widths()]

    @property
    def n_sum(self) -> list[int]:
        """Sum nodes per hidden layer 1..L-1."""
        return [lw.n_sum for lw in self.graph.layer_widths()[1:-1]]

    @property
    def n_mult(self) -> list[int]:
        """Mult nodes per hidden layer 1..L-1."""
        return [lw.n_mult for lw in self.graph.layer_widths()[1:-1]]

    # ------------------------------------------------------------------ attribution by node
    def node_attribute(self) -> list[torch.Tensor]:
        """pykan's ``node_attribute``: ``attribute(l)`` for every node layer 1..L, kept as
        ``node_attribute_scores`` and returned (pykan returns nothing)."""
        self.node_attribute_scores = [self.attribute(l) for l in range(1, self.depth + 1)]
        return self.node_attribute_scores

    def feature_interaction(self, l: int, neuron_th: float = 1e-2, feature_th: float = 1e-2
                            ) -> dict:
        """pykan's ``feature_interaction``: for the nodes of layer ``l`` whose largest input
        attribution exceeds ``neuron_th``, the set of inputs above ``feature_th`` times that
        maximum; returns {tuple of input indices: number of nodes using exactly that set}."""
        scores = self.attribute(l).detach().cpu().numpy()
        out: dict = {}
        for row in scores:
            top = float(row.max()) if row.size else 0.0
            if top > neuron_th:
                key = tuple(int(f) for f in np.nonzero(row > top * feature_th)[0])
                out[key] = out.get(key, 0) + 1
        return out

    # ------------------------------------------------------------------ grids
    def update_grid(self, x=None, grid_eps: float | None = None):
        """pykan's ``update_grid``: adapt every spline grid to the activations of ``x`` (default:
        the inputs seen last) keeping each function; records a version; returns self."""
        eps = getattr(self, "grid_eps", 0.02) if grid_eps is None else grid_eps
        if isinstance(x, dict):
            x = x.get("train_input")
        x = as_tensor(self._data(x, "update_grid"), "x", self.dtype, self.device, self.net.n_in)
        _update_grid(self.net, x, float(eps))
        self._after_change("update_grid")
        return self

    def update_grid_from_samples(self, x=None, grid_eps: float | None = None):
        """pykan's name for :meth:`update_grid`."""
        return self.update_grid(x, grid_eps)

    def initialize_from_another_model(self, another_model, x):
        """pykan's ``initialize_from_another_model``: make this model compute ``another_model``'s
        function on this model's grid sizes (same widths and spline order; e.g. a coarse model
        onto a fine one). Each new knot vector interpolates the other's knots, and each spline
        is its least-squares projection on the other model's activations of ``x``. Returns self.
        """
        other = another_model.graph
        mine = self.graph
        if [lw for lw in other.layer_widths()] != [lw for lw in mine.layer_widths()]:
            raise KanirError(f"initialize_from_another_model needs the same width: this model is "
                             f"{mine.width}, the other {other.width}")
        x = as_tensor(x, "x", torch.float64, torch.device("cpu"), self.net.n_in)
        src = lower(_float64(other))
        h = x
        g = other.copy()
        g.meta.update({k: mine.meta[k] for k in ("dtype", "grid", "input_names", "output_names")
                       if k in mine.meta})
        for l, (old, new) in enumerate(zip(src.layers, self.net.layers)):
            if old._any_spline:
                if old.k != new.k or old.base_fun != new.base_fun:
                    raise KanirError(f"layer {l}: the other model's splines have k={old.k} and "
                                     f"base {old.base_fun!r}, this model's k={new.k} and base "
                                     f"{new.base_fun!r}; they must match")
                grid = _refined_knots(old.grid, old.k, new.G)
                coef = project_coef(h, old.grid, old.coef, grid, old.k).numpy()
                for _, i, j, act in g.act_edges(l):
                    if act.spline is not None:
                        act.spline.grid = grid[i].numpy().copy()
                        act.spline.coef = coef[i, j].copy()
            with torch.no_grad():
                h = old(h)
        self.set_graph(g)
        self._after_change("initialize_from_another_model")
        return self

    # ------------------------------------------------------------------ edges
    def set_mode(self, l: int, i: int, j: int, mode: str, mask_n=None):
        """pykan's ``set_mode``: edge (l, i, j) uses its spline ('n'), its symbolic part ('s'),
        both ('sn'), or nothing (any other mode); see :mod:`kanir.passes.edge_mode`. Returns
        self."""
        return self._commit_graph(_mode.set_mode(self.graph, l, i, j, mode, mask_n), "set_mode",
                                  edge=[l, i, j], mode=str(mode))

    # ------------------------------------------------------------------ training pieces
    def get_params(self):
        """pykan's ``get_params``: the trainable parameters (``self.parameters()``)."""
        return self.parameters()

    def get_reg(self, reg_metric: str = "edge_forward_spline_n", lamb_l1: float = 1.0,
                lamb_entropy: float = 2.0, lamb_coef: float = 0.0, lamb_coefdiff: float = 0.0,
                x=None) -> torch.Tensor:
        """pykan's ``get_reg``: the regulariser ``fit`` adds (times ``lamb``), on ``x`` (default:
        the inputs seen last), differentiable with respect to the parameters."""
        if reg_metric not in _REG_METRICS:
            raise KanirError(f"reg_metric {reg_metric!r} is not supported; kanir regularises "
                             f"with {_REG_METRICS[0]!r} (pykan's default)")
        x = as_tensor(self._data(x, "get_reg"), "x", self.dtype, self.device, self.net.n_in)
        _, inputs = forward_collect(self.net, x)
        return regularizer(self.net, inputs, lamb_l1, lamb_entropy, lamb_coef, lamb_coefdiff)

    reg = get_reg

    def disable_symbolic_in_fit(self, lamb: float = 0.0):
        """Accepted for pykan code; does nothing: kanir's fit never evaluates activations it does
        not need or symbolic branches that are off. Returns pykan's pair (save_act,
        symbolic_enabled), unchanged."""
        return getattr(self, "save_act", True), getattr(self, "symbolic_enabled", True)


def _float64(graph):
    if graph.meta.get("dtype") == "float64":
        return graph
    g = graph.copy()
    g.meta["dtype"] = "float64"
    return g


def _refined_knots(grid: torch.Tensor, k: int, G_new: int) -> torch.Tensor:
    """Extended knots with ``G_new`` intervals that follow the inner knots of ``grid``
    (piecewise-linear interpolation, so an integer refinement nests the old knots)."""
    inner = grid[:, k:grid.shape[1] - k].detach().to(torch.float64).cpu().numpy()
    G_old = inner.shape[1] - 1
    pos = np.linspace(0.0, G_old, G_new + 1)
    rows = [np.interp(pos, np.arange(G_old + 1), r) for r in inner]
    return extend_grid(torch.as_tensor(np.stack(rows)), k)
