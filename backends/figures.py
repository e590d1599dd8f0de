"""Matplotlib pictures of a KAN, as pykan draws them: every edge shows its learned curve.

:func:`kan_figure` lays the network out bottom-up (inputs at the bottom), one small panel per
activation edge between two node rows, each panel showing the edge's function over the range
its input took on the samples; edges fade as ``tanh(beta * score)``, symbolic edges are red,
splines black and edges with both parts purple; sum nodes are circles, mult nodes squares.
:func:`history_figure` draws a training history, :func:`candidates_figure` an edge with its
best symbolic candidates overlaid. All return a ``matplotlib.figure.Figure`` built without
pyplot (no global state, no display needed); ``fig.savefig(path)`` writes PNG/SVG/PDF.
"""

from __future__ import annotations

import math

import numpy as np

from kanir.backends.graphviz import DiagramError
from kanir.ir.graph import KanGraph
from kanir.ir.library import LIBRARY

COLORS = {"spline": "black", "symbolic": "red", "both": "purple"}
_ROW = 3.0  # vertical distance between two node rows (panel rows sit half way)


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _labels(given, default: list[str], what: str) -> list[str]:
    if given is None:
        return list(default)
    if isinstance(given, str):
        raise DiagramError(f"{what} must be a list of labels, got the string {given!r}")
    given = [str(v) for v in given]
    if len(given) != len(default):
        raise DiagramError(f"{what} must have one label per node ({len(default)}: "
                           f"{', '.join(default)}), got {len(given)}")
    return given


def kan_figure(graph: KanGraph, curves: dict, scores: dict | None = None, beta: float = 3.0,
               in_vars=None, out_vars=None, title: str | None = None, scale: float = 0.5,
               tick: bool = False, sample: bool = False, varscale: float = 1.0):
    """The pykan-style picture of a layered ``graph`` from its ``curves`` (see
    :func:`kanir.passes.measure.edge_curves`); ``scores`` {(l, i, j): score} fade edges
    (None: all opaque). pykan's ``scale`` sizes the figure, ``tick`` puts ticks on the
    panels, ``sample`` draws the samples as dots over the curves, ``varscale`` scales the
    label size."""
    if graph.level != "layered":
        raise DiagramError("plot needs a layered KanGraph (canonicalize an expression graph)")
    lws = graph.layer_widths()
    L = len(lws) - 1
    in_labels = _labels(in_vars, graph.input_names, "in_vars")
    out_labels = _labels(out_vars, graph.output_names, "out_vars")
    cols = max([lws[l].n_nodes * lws[l + 1].n_subnodes for l in range(L)] + [1])
    W = float(cols)
    fig_w, fig_h = min(max(4.0, 10 * scale * math.sqrt(cols)), 30.0), max(3.0, 2.2 * L + 1.2)
    fig = _figure(fig_w, fig_h)
    box = (0.02, 0.02, 0.96, 0.9 if title else 0.96)
    ax = fig.add_axes(box)
    ax.set_xlim(-0.05 * W, 1.05 * W)
    ax.set_ylim(-0.9, _ROW * L + 0.9)
    # a panel of width s (x units) is s * squash y units tall, so panels come out square
    squash = (fig_w * box[2] / (1.1 * W)) / (fig_h * box[3] / (_ROW * L + 1.8))
    ax.axis("off")
    if title:
        fig.suptitle(title)

    def node_x(l: int, i: int) -> float:
        return (i + 0.5) / lws[l].n_nodes * W

    for l, lw in enumerate(lws):  # nodes
        for i in range(lw.n_nodes):
            kind = graph.node(l, i)["kind"]
            marker, size = ("s", 9) if kind == "mult" else ("o", 6 if l in (0, L) else 8)
            ax.plot([node_x(l, i)], [_ROW * l], marker=marker, color="black", markersize=size,
                    zorder=3)
            if kind == "mult":
                ax.text(node_x(l, i), _ROW * l, "×", color="white", ha="center", va="center",
                        fontsize=7, zorder=4)
    for i, name in enumerate(in_labels):
        ax.text(node_x(0, i), -0.35, name, ha="center", va="top", fontsize=10 * varscale)
    for i, name in enumerate(out_labels):
        ax.text(node_x(L, i), _ROW * L + 0.35, name, ha="center", va="bottom",
                fontsize=10 * varscale)

    for l in range(L):
        n_in, n_sub = lws[l].n_nodes, lws[l + 1].n_subnodes
        slot = W / (n_in * n_sub)
        side = 0.8 * slot
        height = min(side * squash, 0.5 * _ROW)
        side = min(side, height / squash)
        y0 = _ROW * l + _ROW / 2 - height / 2
        sub_x, sub_y = _subnode_positions(graph, l + 1, W)
        for _, i, j, act in graph.act_edges(l):
            if (l, i, j) not in curves or act.kind == "zero":
                continue
            alpha = 1.0 if scores is None else float(np.tanh(beta * max(scores.get((l, i, j), 0.0), 0.0)))
            cx = (i * n_sub + j + 0.5) * slot
            color = COLORS[act.kind]
            ax.plot([node_x(l, i), cx], [_ROW * l, y0], color=color, alpha=alpha, lw=0.8, zorder=1)
            ax.plot([cx, sub_x[j]], [y0 + height, sub_y], color=color, alpha=alpha, lw=0.8,
                    zorder=1)
            panel = ax.inset_axes((cx - side / 2, y0, side, height), transform=ax.transData)
            xs, ys = curves[(l, i, j)]
            panel.plot(xs, ys, color=color, alpha=alpha, lw=1.2)
            if sample:
                panel.plot(xs, ys, ".", color=color, alpha=alpha, markersize=1.5)
            if tick:
                panel.tick_params(labelsize=5 * varscale, length=2, pad=1)
            else:
                panel.set_xticks([])
                panel.set_yticks([])
            for spine in panel.spines.values():
                spine.set_alpha(alpha)
                spine.set_color(color)
            panel.patch.set_alpha(0.0)
        lw_next = lws[l + 1]
        if lw_next.arities:  # mult layer: draw the subnodes and their wires
            for j in range(n_sub):
                ax.plot([sub_x[j]], [sub_y], marker="o", color="gray", markersize=3, zorder=2)
            for (s, t), a in graph.nx.edges.items():
                if a.get("wire") and s[0] == "s" and s[1] == l + 1:
                    ax.plot([sub_x[s[2]], node_x(l + 1, t[2])], [sub_y, _ROW * (l + 1)],
                            color="gray", lw=0.6, zorder=1)
    return fig


def _subnode_positions(graph: KanGraph, l: int, W: float) -> tuple[list[float], float]:
    """x of every subnode of node layer l and the row's y: the node itself for sum layers,
    a row just below the nodes when the layer has mult nodes."""
    lw = graph.layer_widths()[l]
    if not lw.arities:
        return [(j + 0.5) / lw.n_nodes * W for j in range(lw.n_subnodes)], _ROW * l
    return [(j + 0.5) / lw.n_subnodes * W for j in range(lw.n_subnodes)], _ROW * l - 0.45


def history_figure(history: dict, keys=None, title: str | None = None):
    """The training history from ``fit`` (log-scale losses by step); ``keys`` picks the
    series (default: the losses and RMSEs present)."""
    if not isinstance(history, dict):
        raise DiagramError(f"plot_history needs fit's history dict, got {type(history).__name__}")
    keys = list(keys) if keys is not None else [  # reg only when there is a regulariser
        k for k in ("train_loss", "test_loss", "reg")
        if k in history and (k != "reg" or np.any(np.asarray(history[k], dtype=float) != 0))]
    missing = [k for k in keys if k not in history]
    if missing or not keys:
        raise DiagramError(f"history has no series {missing or keys}; it has {sorted(history)}")
    fig = _figure(6, 4)
    ax = fig.add_subplot()
    for k in keys:
        v = np.asarray(history[k], dtype=float)
        if v.size:
            ax.plot(np.arange(1, v.size + 1), v, label=k)
    values = np.concatenate([np.asarray(history[k], dtype=float) for k in keys])
    if values.size and np.all(values[np.isfinite(values)] > 0):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.legend()
    if title:
        ax.set_title(title)
    return fig


def candidates_figure(xs, ys, rows, edge: tuple[int, int, int], title: str | None = None):
    """Samples (xs, ys) of one edge with each candidate row (name, a, b, c, d, r2, ...) of
    ``symbolic_candidates`` drawn as c*f(a*x+b)+d over them."""
    import torch

    order = np.argsort(xs, kind="stable")
    xs, ys = np.asarray(xs, dtype=float)[order], np.asarray(ys, dtype=float)[order]
    fig = _figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(xs, ys, ".", color="black", markersize=3, label="edge")
    t = torch.as_tensor(xs, dtype=torch.float64)
    for row in rows:
        fn = LIBRARY[row.name]
        with torch.no_grad():
            fit = row.c * fn.torch(row.a * t + row.b) + row.d
        ax.plot(xs, fit.numpy(), label=f"{row.name}  R²={row.r2:.4f}")
    ax.set_xlabel(f"input of edge {edge}")
    ax.legend(fontsize=8)
    ax.set_title(title or f"edge {edge}: best symbolic candidates")
    return fig
