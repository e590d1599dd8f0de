"""KAN facade methods for pictures: pykan's matplotlib ``plot`` (every edge's curve), the
graphviz ``diagram`` for large models, and the symbolic candidates of one edge.

Nothing is written unless a path or folder is given; figures are built without pyplot, so
they work headless and show inline in notebooks.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch


class PlotMethods:
    """Mixin of kanir.KAN: pictures of the model."""

    def _plot_data(self):
        """Samples to draw and measure edges on: pykan's cache_data when a forward pass left
        one, else the last training inputs; None without data."""
        cached = getattr(self, "cache_data", None)
        if isinstance(cached, torch.Tensor):
            return cached
        return self.cache_x

    def _plot_scores(self, graph, x, metric: str):
        """Edge scores for fading by pykan's ``metric`` on ``x`` (else the model's own
        attribution scores, else its cached data); None when there is no data to measure on."""
        from kanir.passes.measure import METRICS, edge_metric_scores

        if x is None and metric == "backward" and self._scored is not None:
            return edge_metric_scores(self._scored[0])
        data = x if x is not None else self._plot_data()
        if data is not None:
            return edge_metric_scores(graph, data, metric)
        if metric not in METRICS:
            edge_metric_scores(graph, None, metric)  # the error naming pykan's metrics
        return None

    def plot(self, folder=None, beta: float = 3, metric: str = "backward", scale: float = 0.5,
             tick: bool = False, sample: bool = False, in_vars=None, out_vars=None, title=None,
             varscale: float = 1.0, *, path=None, x=None):
        """pykan's picture: every edge drawn as its learned curve over the range its input
        took (on ``x``, else the inputs seen last, else uniform samples over the grid range),
        fading as ``tanh(beta * score)`` with pykan's ``metric`` (no data: nothing fades);
        symbolic edges red, splines black, both purple; mult nodes squares. Returns a
        matplotlib Figure; ``path`` writes it (format from the suffix), ``folder`` writes it
        there as kan.png (pykan's first argument). For models too large for one panel per
        edge use :meth:`diagram`."""
        from kanir.arguments import as_float
        from kanir.backends.figures import kan_figure
        from kanir.passes.measure import edge_curves

        beta = as_float(beta, "beta", 0.0)
        graph = self.graph
        scores = self._plot_scores(graph, x, metric)
        data = x if x is not None else self._plot_data()
        if data is None:
            data = self._uniform_samples(200)
        fig = kan_figure(graph, edge_curves(graph, data), scores, beta, in_vars, out_vars,
                         title, scale, tick, sample, varscale)
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
            fig.savefig(Path(folder) / "kan.png", dpi=150)
        if path is not None:
            fig.savefig(path)
        return fig

    def diagram(self, path=None, folder=None, beta: float = 3, metric: str = "backward",
                in_vars=None, out_vars=None, title=None, x=None, **kw):
        """The model as a graphviz diagram (kanir.to_dot, whose keywords ``kw`` takes): nodes
        and labelled edges, fading as in :meth:`plot`; written to ``path`` when given, or to
        ``folder`` as kan.svg (kan.dot without Graphviz) with any ``curves=True`` images
        beside it. Returns the ``graphviz.Digraph`` (shown inline in notebooks)."""
        from kanir.backends.graphviz import plot as _plot

        if path is not None and folder is None and not Path(path).suffix:
            path, folder = None, path
        if folder is not None:
            folder = Path(folder)
            folder.mkdir(parents=True, exist_ok=True)
            if path is None:
                path = folder / ("kan.svg" if shutil.which("dot") else "kan.dot")
            if kw.get("curves"):
                kw.setdefault("curve_dir", folder)
        graph = self.graph
        if "scores" not in kw:
            kw["scores"] = self._plot_scores(graph, x, metric)
        return _plot(graph, path, beta=beta, title=title, input_labels=in_vars,
                     output_labels=out_vars, **kw)

    def plot_candidates(self, l: int, i: int, j: int, topk: int = 3, lib=None, x=None,
                        path=None):
        """Edge (l, i, j) on the samples with its ``topk`` best symbolic candidates
        (:meth:`symbolic_candidates`) overlaid as fitted curves; returns the Figure."""
        from kanir.backends.figures import candidates_figure
        from kanir.passes.measure import edge_curves

        rows = self.symbolic_candidates(l, i, j, lib=lib, topk=topk, x=x)
        data = x if x is not None else self._sym_x(None, "plot_candidates")
        xs, ys = edge_curves(self.graph, data)[(l, i, j)]
        fig = candidates_figure(xs, ys, rows, (l, i, j))
        if path is not None:
            fig.savefig(path)
        return fig


def plot_history(history: dict, keys=None, title=None, path=None):
    """A figure of ``fit``'s history (losses by step, log scale); ``path`` writes it."""
    from kanir.backends.figures import history_figure

    fig = history_figure(history, keys, title)
    if path is not None:
        fig.savefig(path)
    return fig
