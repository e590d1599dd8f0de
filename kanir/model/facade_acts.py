"""pykan's activations after a forward pass: ``model(x)`` remembers x, and ``model.acts``,
``spline_preacts``, ``spline_postacts``, ``acts_scale`` ... are computed from it on first access.

The per-edge values come from the one IR evaluator (``kanir.backends.torch_eval``, run in
float64 by ``kanir.passes._eval.evaluate``), never from the training forward, so ``fit`` and
``model(x)`` pay nothing for them. The result is cached until the input, the parameters
(in-place updates included) or the module change. Layouts are pykan's: per-edge tensors are
(batch, n_subnodes, n_inputs), indexed ``[:, j, i]`` for edge (l, i, j).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kanir.errors import DataError, KanirError
from kanir.passes._eval import evaluate
from kanir.train.data import as_tensor


@dataclass(frozen=True)
class _Acts:
    """pykan's activation records for one input, as tensors in the model's dtype and device."""

    acts: list
    acts_premult: list
    spline_preacts: list
    spline_postacts: list
    spline_postsplines: list
    subnode_actscale: list
    edge_actscale: list
    acts_scale: list
    acts_scale_spline: list


def _same_key(a: tuple, b: tuple) -> bool:
    return all(u is v for u, v in zip(a[:3], b[:3])) and a[3:] == b[3:]


def _functorch_wrapped(x: torch.Tensor) -> bool:
    """Is x a tensor inside a torch.func transform (vmap, grad)? Such a tensor must not be kept."""
    check = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return bool(check(x)) if check is not None else False


class ActivationMethods:
    """Mixin of kanir.KAN: the last input and pykan's activation attributes computed from it."""

    _record_inputs = True  # kanir's own derivative helpers switch this off while they probe
    _last_input = None  # (x detached, the cache_x seen then) from the latest forward
    _acts_cache = None  # (key, _Acts)

    # ------------------------------------------------------------------ the remembered input
    def _remember_input(self, x: torch.Tensor) -> None:
        """Called by forward: keep a detached reference to x (no copy, no computation)."""
        if self._record_inputs and not _functorch_wrapped(x):
            self._last_input = (x.detach(), self.cache_x)

    def _recent_data(self) -> torch.Tensor | None:
        """The data the model saw last: the latest forward input, unless fit (which sets
        ``cache_x``) ran after it; None when there is none."""
        last = self._last_input
        if last is not None and last[1] is self.cache_x and last[0].shape[-1] == self.net.n_in:
            return last[0]
        return self.cache_x

    @property
    def cache_data(self) -> torch.Tensor | None:
        """pykan's ``cache_data``: the inputs seen last (forward or fit), or None."""
        return self._recent_data()

    @cache_data.setter
    def cache_data(self, x) -> None:
        x = as_tensor(x, "cache_data", self.dtype, self.device, self.net.n_in)
        self._last_input = (x.detach(), self.cache_x)

    def get_act(self, x=None):
        """pykan's ``get_act``: compute every activation on ``x`` (a tensor or a dataset dict,
        whose ``train_input`` is used; default: the inputs seen last). Returns self."""
        if isinstance(x, dict):
            if "train_input" not in x:
                raise DataError("get_act: a dataset dict needs the key 'train_input'")
            x = x["train_input"]
        if x is not None:
            self.cache_data = x
        self._activations("get_act")
        return self

    # ------------------------------------------------------------------ computed on demand
    def _state_key(self, x: torch.Tensor | None) -> tuple:
        """What results computed on ``x`` depend on: x, the module, dtype, device, and the
        in-place update counters of every parameter and buffer."""
        tensors = list(self.net.parameters()) + list(self.net.buffers())
        return (x, self.net, self.dtype, self.device, sum(t._version for t in tensors))

    def _stale(self, key) -> bool:
        """Has the input or the model changed since ``key`` was taken (None: never stale)?"""
        return key is not None and not _same_key(key, self._state_key(self._recent_data()))

    def _activations(self, what: str) -> _Acts:
        x = self._recent_data()
        if x is None:
            raise KanirError(f"{what} needs activations: run the model on data first (model(x) "
                             "or model.get_act(x)), or fit it")
        key = self._state_key(x)
        hit = self._acts_cache
        if hit is not None and _same_key(hit[0], key):
            return hit[1]
        rec = self._compute_acts(x)
        self._acts_cache = (key, rec)
        return rec

    def _compute_acts(self, x: torch.Tensor) -> _Acts:
        layers = evaluate(self.graph, x, parts=True, min_samples=1)
        t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=self.dtype, device=self.device)
        per_edge = lambda a: t(np.swapaxes(a, 1, 2))  # (batch, in, sub) -> pykan's (batch, sub, in)
        rec = {k: [] for k in _Acts.__dataclass_fields__}
        rec["acts"].append(t(layers[0].input))
        for net_layer, a in zip(self.net.layers, layers):
            scale = net_layer.subnode_scale.detach().cpu().double().numpy()
            bias = net_layer.subnode_bias.detach().cpu().double().numpy()
            rec["acts"].append(t(a.output))
            rec["acts_premult"].append(t(a.subnodes * scale + bias))
            n_sub = a.edge.shape[2]
            rec["spline_preacts"].append(per_edge(np.repeat(a.input[:, :, None], n_sub, axis=2)))
            rec["spline_postacts"].append(per_edge(a.edge))
            rec["spline_postsplines"].append(per_edge(a.curve))
            if a.input.shape[0] > 1:
                in_range = a.input.std(axis=0, ddof=1)[None, :] + 0.1  # (1, in)
                edge_std = a.edge.std(axis=0, ddof=1).T  # (sub, in), unbiased as torch.std
                rec["subnode_actscale"].append(t(a.subnodes.std(axis=0, ddof=1)))
                rec["edge_actscale"].append(t(edge_std))
                rec["acts_scale"].append(t(edge_std / in_range))
                rec["acts_scale_spline"].append(t(a.spline.std(axis=0, ddof=1).T / in_range))
        return _Acts(**rec)

    def _scales(self, name: str) -> list:
        rec = self._activations(name)
        if not rec.acts_scale:
            raise DataError(f"{name} is a spread over samples and needs at least 2 of them; the "
                            f"last input has {rec.acts[0].shape[0]}")
        return getattr(rec, name)

    @property
    def acts(self) -> list[torch.Tensor]:
        """Node values of every layer 0..L on the last input, each (batch, n_nodes(l))."""
        return self._activations("acts").acts

    @property
    def acts_premult(self) -> list[torch.Tensor]:
        """Subnode values after the subnode affine, before multiplication, per layer."""
        return self._activations("acts_premult").acts_premult

    @property
    def spline_preacts(self) -> list[torch.Tensor]:
        """Every edge's input, per layer (batch, n_subnodes, n_in) as pykan."""
        return self._activations("spline_preacts").spline_preacts

    @property
    def spline_postacts(self) -> list[torch.Tensor]:
        """Every edge's output (spline and symbolic parts), per layer (batch, n_subnodes, n_in)."""
        return self._activations("spline_postacts").spline_postacts

    @property
    def spline_postsplines(self) -> list[torch.Tensor]:
        """Every edge's bare B-spline sum (no residual, scales or mask), as pykan."""
        return self._activations("spline_postsplines").spline_postsplines

    @property
    def postacts(self) -> list[torch.Tensor]:
        """Alias of ``spline_postacts`` (pykan keeps both names)."""
        return self.spline_postacts

    @property
    def subnode_actscale(self) -> list[torch.Tensor]:
        """Standard deviation of every subnode's input sum, per layer (n_subnodes,)."""
        return self._scales("subnode_actscale")

    @property
    def edge_actscale(self) -> list[torch.Tensor]:
        """Standard deviation of every edge's output, per layer (n_subnodes, n_in)."""
        return self._scales("edge_actscale")

    @property
    def acts_scale(self) -> list[torch.Tensor]:
        """pykan's edge scale: std of the edge output / (std of its input + 0.1), (n_sub, n_in)."""
        return self._scales("acts_scale")

    @property
    def acts_scale_spline(self) -> list[torch.Tensor]:
        """As ``acts_scale`` for the spline branch alone (what the regulariser penalises)."""
        return self._scales("acts_scale_spline")

    # ------------------------------------------------------------------ one edge
    def _edge_samples(self, l, i, j, what: str) -> tuple[np.ndarray, np.ndarray]:
        rec = self._activations(what)
        L = len(rec.spline_preacts)
        for name, v in (("l", l), ("i", i), ("j", j)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise KanirError(f"{what}: {name} must be an integer, got {v!r}")
        if not 0 <= l < L:
            raise KanirError(f"{what}: layer l must be in 0..{L - 1}, got {l}")
        n_sub, n_in = rec.spline_preacts[l].shape[1:]
        if not (0 <= i < n_in and 0 <= j < n_sub):
            raise KanirError(f"{what}: edge ({l},{i},{j}) does not exist; layer {l} has inputs "
                             f"0..{n_in - 1} and subnodes 0..{n_sub - 1}")
        xs = rec.spline_preacts[l][:, j, i].detach().cpu().numpy()
        ys = rec.spline_postacts[l][:, j, i].detach().cpu().numpy()
        return xs, ys

    def get_fun(self, l: int, i: int, j: int, plot: bool = False, path=None):
        """pykan's ``get_fun``: the samples (x, y) of edge (l, i, j) on the last input, sorted by
        x, as numpy arrays. Drawn only when asked: ``path`` saves a PNG, ``plot=True`` draws
        on a new pyplot figure (pykan always draws)."""
        xs, ys = self._edge_samples(l, i, j, "get_fun")
        order = np.argsort(xs, kind="stable")
        xs, ys = xs[order], ys[order]
        if plot or path is not None:
            _draw_samples(xs, ys, path, f"edge ({l},{i},{j})")
        return xs, ys

    def get_range(self, l: int, i: int, j: int, verbose: bool = True):
        """pykan's ``get_range``: (x_min, x_max, y_min, y_max) of edge (l, i, j) on the last
        input; printed when ``verbose`` (pykan's default)."""
        xs, ys = self._edge_samples(l, i, j, "get_range")
        x_min, x_max, y_min, y_max = (float(v) for v in (xs.min(), xs.max(), ys.min(), ys.max()))
        if verbose:
            print(f"x range: [{x_min:.2f} , {x_max:.2f} ]")
            print(f"y range: [{y_min:.2f} , {y_max:.2f} ]")
        return x_min, x_max, y_min, y_max


def _draw_samples(xs: np.ndarray, ys: np.ndarray, path, title: str) -> None:
    """Plot samples as pykan's get_fun does: to ``path`` (PNG, no global state) or on a new
    pyplot figure when no path is given."""
    if path is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(3, 3))
    else:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(3, 3))
        FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(xs, ys, marker="o")
    ax.set_title(title)
    if path is not None:
        try:
            fig.savefig(path, format="png")
        except OSError as e:
            raise KanirError(f"cannot write the plot to {str(path)!r}: {e.strerror or e}") from None
