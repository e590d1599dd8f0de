"""Evaluate a KanGraph on data and keep what every layer computed (for the data-driven passes:
attribution, pruning, auto_swap, perturb's non-intrusive mode).

The graph is lowered in float64 whatever its own dtype, so statistics are not limited by
float32 rounding; the graph itself is never modified.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kanir.backends.torch import BASE_FUNS, KANLayer, lower
from kanir.errors import DataError
from kanir.ir.bspline import dense_bases
from kanir.ir.graph import KanGraph
from kanir.ir.library import LIBRARY

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
    g = graph
    if graph.meta.get("dtype") != "float64":
        g = graph.copy()
        g.meta["dtype"] = "float64"
    module = lower(g)
    out = []
    with torch.no_grad():
        h = xt
        for layer in module.layers:
            spline, symbolic, curve = edge_parts(layer, h)
            edge = spline + symbolic
            sub = edge.sum(dim=1)
            nxt = layer.combine(sub)
            extra = (spline.numpy(), curve.numpy()) if parts else ()
            out.append(LayerActs(h.numpy(), edge.numpy(), sub.numpy(), nxt.numpy(), *extra))
            h = nxt
    return out


def edge_activations(layer: KANLayer, x: torch.Tensor) -> torch.Tensor:
    """Every edge's value, shape (batch, n_in, n_sub): spline branch plus symbolic branch."""
    spline, symbolic, _ = edge_parts(layer, x)
    return spline + symbolic


def edge_parts(layer: KANLayer, x: torch.Tensor):
    """(spline branch, symbolic branch, bare B-spline curve), each (batch, n_in, n_sub).

    Computed here from the layer's parameters (rather than its ``keep_acts`` record) so the
    statistics do not depend on how the forward pass groups edges.
    """
    B = dense_bases(x, layer.grid, layer.k)
    m = layer.mask_sp
    curve = torch.einsum("big,iog->bio", B, layer.coef)
    spline = (BASE_FUNS[layer.base_fun](x).unsqueeze(-1) * layer.scale_base
              + curve * layer.scale_sp) * m
    symbolic = torch.zeros_like(spline)
    on = layer.mask_sym != 0
    for i, j in zip(*torch.nonzero(on, as_tuple=True)):
        i, j = int(i), int(j)
        a, b, c, d = (layer.sym_affine[i, j, q] for q in range(4))
        fn = LIBRARY[layer.sym_funs[i][j]]
        symbolic[:, i, j] = c * fn.torch(a * x[:, i] + b) + d
    return spline, symbolic, curve


def default_samples(graph: KanGraph, n: int = 512, seed: int = 0) -> np.ndarray:
    """Uniform samples over each input's spline range (the graph's grid_range when it has none)."""
    rng = np.random.default_rng(seed)
    _, k, _ = layer_spline_shape(graph, 0)
    cols = []
    for i in range(graph.n_nodes(0)):
        t = node_knots(graph, 0, i)
        cols.append(rng.uniform(t[k], t[len(t) - k - 1], size=n))
    return np.stack(cols, axis=1)
