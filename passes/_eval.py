"""Evaluate a KanGraph on data and keep what every layer computed (for the data-driven passes:
attribution, pruning, auto_swap, perturb's non-intrusive mode).

The graph is lowered in float64 whatever its own dtype, so statistics are not limited by
float32 rounding; the graph itself is never modified.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from kanir.backends.torch import KANLayer, lower
from kanir.backends.torch_eval import edge_parts as evaluator_parts
from kanir.backends.torch_eval import edge_values
from kanir.errors import DataError
from kanir.ir.graph import KanGraph

from ._common import layer_spline_shape, node_knots


@dataclass(frozen=True)
class LayerActs:
    """What one KAN layer computed on a batch, as float64 arrays.

    ``input`` (batch, n_in): the values of node layer l; ``edge`` (batch, n_in, n_sub): every
    edge's activation; ``subnodes`` (batch, n_sub): the sums into the subnodes (before their
    affine); ``output`` (batch, n_out): the values of node layer l + 1. With ``parts=True``
    also ``spline`` (batch, n_in, n_sub): the spline branch alone (residual included, masked),
    and ``curve``: the bare B-spline sum ``sum_g coef[g] B_g(x)`` of every edge (pykan's
    ``spline_postsplines``, without scales or masks); otherwise both are None.
    """

    input: np.ndarray
    edge: np.ndarray
    subnodes: np.ndarray
    output: np.ndarray
    spline: np.ndarray | None = None
    curve: np.ndarray | None = None


def as_samples(x, graph: KanGraph, name: str = "x", min_samples: int = 2) -> torch.Tensor:
    """Data as a float64 CPU tensor of shape (batch, n_inputs) with at least ``min_samples``
    rows; DataError when it is not."""
    n_in = graph.n_nodes(0)
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64)
    else:
        try:
            x = torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as e:
            raise DataError(f"{name} cannot be converted to a float array: {e}") from None
    if x.dim() != 2 or x.shape[1] != n_in:
        raise DataError(f"{name} must have shape (batch, {n_in}) for inputs {graph.input_names}, "
                        f"got {tuple(x.shape)}")
    if x.shape[0] < min_samples:
        why = " to measure activation spreads" if min_samples == 2 else ""
        raise DataError(f"{name} needs at least {min_samples} samples{why}, got {x.shape[0]}")
    if not bool(torch.isfinite(x).all()):
        raise DataError(f"{name} contains NaN or inf")
    return x


def evaluate(graph: KanGraph, x, parts: bool = False, min_samples: int = 2) -> list[LayerActs]:
    """Run ``graph`` on samples ``x`` and return every layer's activations (``parts``: also the
    spline branch and bare B-spline curve of every edge, see :class:`LayerActs`)."""
    xt = as_samples(x, graph, min_samples=min_samples)
    out = []
    for h, edge, e, sub, nxt in layer_edge_values(graph, xt, parts=parts):
        extra = (e.spline.numpy(), e.curve.numpy()) if parts else ()
        out.append(LayerActs(h.numpy(), edge.numpy(), sub.numpy(), nxt.numpy(), *extra))
    return out


def layer_edge_values(graph: KanGraph, x: torch.Tensor, safe: bool = False, y_th: float = 1e3,
                      parts: bool = False) -> Iterator[tuple]:
    """Per KAN layer of ``graph`` run in float64 on checked samples ``x``: (its input node values,
    every edge's value (batch, n_in, n_sub), its :class:`EdgeParts` with the bare curves when
    ``parts`` else None, the subnode sums, the next node values). ``safe``: the
    singularity-safe symbolic forms, bounded by ``y_th``."""
    with torch.no_grad():
        h = x
        for layer in lower(graph, dtype="float64").layers:
            e = evaluator_parts(layer, h, safe, y_th, curve=True) if parts else None
            edge = e.total if parts else edge_values(layer, h, safe=safe, y_th=y_th)
            sub = edge.sum(dim=1)
            nxt = layer.combine(sub)
            yield h, edge, e, sub, nxt
            h = nxt


def edge_parts(layer: KANLayer, x: torch.Tensor):
    """(spline branch, symbolic branch, bare B-spline curve), each (batch, n_in, n_sub), from
    the one evaluator (``kanir.backends.torch_eval``)."""
    return tuple(evaluator_parts(layer, x, curve=True))


def default_samples(graph: KanGraph, n: int = 512, seed: int = 0) -> np.ndarray:
    """Uniform samples over each input's spline range (the graph's grid_range when it has none)."""
    rng = np.random.default_rng(seed)
    _, k, _ = layer_spline_shape(graph, 0)
    cols = []
    for i in range(graph.n_nodes(0)):
        t = node_knots(graph, 0, i)
        cols.append(rng.uniform(t[k], t[len(t) - k - 1], size=n))
    return np.stack(cols, axis=1)
