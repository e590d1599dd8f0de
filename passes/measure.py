"""Measurements of a graph on samples that pictures draw: pykan's plot metrics per edge and
every edge's curve. They are analyses (numbers out, no graph), so they live with the passes;
the backends that draw (``kanir.backends.graphviz``, ``kanir.backends.figures``) receive them.
"""

from __future__ import annotations

import numpy as np

from kanir.errors import DiagramError
from kanir.ir.graph import KanGraph

from ._eval import evaluate
from .attribution import attribute

__all__ = ["METRICS", "edge_metric_scores", "edge_curves"]

#: pykan's plot metrics: edge importance from the backward attribution (paper Eq. 9), the
#: standard deviation of the edge's output ('forward_u') or that divided by the standard
#: deviation of its input plus 0.1 ('forward_n').
METRICS = ("backward", "forward_u", "forward_n")


def edge_metric_scores(graph: KanGraph, x=None, metric: str = "backward") -> dict:
    """{(l, i, j): score} of every activation edge of a layered ``graph`` measured on samples
    ``x`` by one of pykan's plot metrics (:data:`METRICS`); without ``x``, the attribution
    scores the graph carries (from :func:`kanir.passes.attribution.attribute`)."""
    if metric not in METRICS:
        raise DiagramError(f"metric must be one of {', '.join(METRICS)} (pykan's plot "
                           f"metrics), got {metric!r}")
    if metric == "backward":
        scored = attribute(graph, x) if x is not None else graph
        return {(l, i, j): scored.edge_attrs(l, i, j)["score"]
                for l, i, j, _ in scored.act_edges()}
    if x is None:
        raise DiagramError(f"metric {metric!r} is measured on data: pass x")
    out = {}
    for l, acts in enumerate(evaluate(graph, x)):
        std = acts.edge.std(axis=0, ddof=1)
        if metric == "forward_n":
            std = std / (acts.input.std(axis=0, ddof=1)[:, None] + 0.1)
        for _, i, j, _ in graph.act_edges(l):
            out[(l, i, j)] = float(std[i, j])
    return out


def edge_curves(graph: KanGraph, x) -> dict:
    """{(l, i, j): (inputs sorted, edge values)} of every activation edge on samples ``x``."""
    out = {}
    for l, acts in enumerate(evaluate(graph, x)):
        for _, i, j, _ in graph.act_edges(l):
            order = np.argsort(acts.input[:, i], kind="stable")
            out[(l, i, j)] = (acts.input[order, i], acts.edge[order, i, j])
    return out
