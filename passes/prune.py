"""Pruning by attribution score: ``prune_node``, ``prune_edge``, ``prune_input``, ``prune``, and
the single-item removals ``remove_edge`` / ``remove_node`` (pykan's masks: indices stay) and
``delete_node`` (the node goes, later indices shift).

Every function returns a new graph (pykan's ``prune()`` returns a copy while ``prune_edge()``
works in place; kanir has one rule). Scores come from :func:`kanir.passes.attribution.attribute`
(on data ``x`` passed here, or already carried by the graph). Names are kept: removed inputs
take their names with them, so ``graph.input_names`` lists exactly the inputs that remain.

What remains computes what it computed before: surviving edges are untouched, and each removed
edge's mean activation (measured with its score) is added to its subnode's bias, so an edge
that was nearly constant (low score, large offset) disappears without shifting the output.
Pass ``fold_mean=False`` for plain zeroing as in pykan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from kanir.errors import DataError, PassError
from kanir.ir.graph import KanGraph, N, S

from ._common import (
    as_int,
    as_threshold,
    fold_edge_means,
    reorder_layer,
    require_data_arg,
    require_layered,
    strip_analysis,
    verified,
)
from ._eval import evaluate
from .attribution import attribute, measure, scored

__all__ = ["prune", "prune_node", "prune_edge", "prune_input", "remove_edge", "remove_node",
           "delete_node", "drop_dead_nodes", "restrict_dataset"]


def prune_edge(graph: KanGraph, x=None, *, threshold: float = 3e-2, fold_mean: bool = True
               ) -> KanGraph:
    """Remove every activation edge whose score is not above ``threshold``."""
    require_layered(graph, "prune_edge")
    require_data_arg(x, "prune_edge", "threshold")
    th = as_threshold(threshold, "threshold")
    if x is None:
        g = scored(graph, x, "prune_edge")
        drop = [(l, i, j) for l, i, j, _ in g.act_edges() if g.edge_attrs(l, i, j)["score"] <= th]
        return _without_edges(g, drop, fold_mean)
    m = measure(graph, x)  # the numbers only: one graph copy instead of two
    drop = [(l, i, j) for l, i, j, _ in graph.act_edges() if m.edge[l][i, j] <= th]
    h = graph.copy()
    if fold_mean:
        for l, i, j in drop:
            sub = h.subnode(l + 1, j)
            sub["bias"] = float(sub["bias"] + sub["scale"] * float(m.mean[l][i, j]))
    h.nx.remove_edges_from([(N(l, i), S(l + 1, j)) for l, i, j in drop])
    return verified(strip_analysis(h))


def remove_edge(graph: KanGraph, l: int, i: int, j: int, fold_mean: bool = False,
                keep_symbolic: bool = True) -> KanGraph:
    """Switch off the spline of edge (l, i, j), as pykan's ``remove_edge`` zeroes its spline mask:
    a symbolic part survives (its spline, if any, is kept inactive for ``unfix_symbolic``); an
    edge with nothing else becomes absent. ``keep_symbolic=False`` removes the whole edge. With
    ``fold_mean`` a removed edge's recorded mean activation moves into the subnode bias (needs
    scores from :func:`attribute`)."""
    require_layered(graph, "remove_edge")
    for name, v in (("l", l), ("i", i), ("j", j)):
        as_int(v, name, 0)
    act = graph.edge(l, i, j)
    if act is None:
        raise PassError(f"there is no edge (l={l}, i={i}, j={j}) to remove (it is already zero)")
    if keep_symbolic and act.symbolic is not None:
        h = graph.copy()
        new = act.copy()
        if new.spline is not None:
            new.spline.active = False
        h.set_edge(l, i, j, new)
        return verified(strip_analysis(h))
    return _without_edges(graph, [(l, i, j)], fold_mean)


def _without_edges(g: KanGraph, drop, fold_mean: bool) -> KanGraph:
    h = g.copy()
    if fold_mean:
        fold_edge_means(h, drop)
    h.nx.remove_edges_from([(N(l, i), S(l + 1, j)) for l, i, j in drop])
    return verified(strip_analysis(h))


def prune_node(graph: KanGraph, x=None, *, threshold: float = 1e-2, active_neurons=None,
               fold_mean: bool = True) -> KanGraph:
    """Remove hidden nodes whose score is not above ``threshold`` (with their subnodes/edges).

    ``active_neurons`` instead names the nodes to keep: a mapping {layer: [indices]} or a list
    with one list of indices per hidden layer (layers 1..L-1). Every hidden layer keeps at least
    its best-scoring node.
    """
    require_layered(graph, "prune_node")
    require_data_arg(x, "prune_node", "threshold")
    g, keeps = _node_keeps(graph, threshold, x, active_neurons)
    return _without_nodes(g, keeps, fold_mean)


def _node_keeps(graph: KanGraph, threshold, x, active_neurons):
    """(the scored graph, {hidden layer: node indices to keep})."""
    th = as_threshold(threshold, "threshold")
    keep_given = _active_neurons(graph, active_neurons)
    g = graph if keep_given is not None and x is None else scored(graph, x, "prune_node")
    if keep_given is not None:
        return g, keep_given
    keeps = {}
    for l in range(1, graph.depth):
        s = np.array([g.node(l, i)["score"] for i in range(g.n_nodes(l))])
        keeps[l] = [i for i in range(len(s)) if s[i] > th] or [int(np.argmax(s))]
    return g, keeps


def _active_neurons(graph: KanGraph, spec) -> dict[int, list[int]] | None:
    if spec is None:
        return None
    L = graph.depth
    if isinstance(spec, Mapping):
        items = list(spec.items())
    elif isinstance(spec, Sequence) and not isinstance(spec, str):
        if len(spec) != L - 1:
            raise PassError(f"active_neurons as a list needs one list per hidden layer ({L - 1}), "
                            f"got {len(spec)}")
        items = list(zip(range(1, L), spec))
    else:
        raise PassError(f"active_neurons must be {{layer: [indices]}} or a list of lists, got "
                        f"{spec!r}")
    out = {}
    for l, idx in items:
        l = as_int(l, f"active_neurons layer (a hidden layer 1..{L - 1})", 1, L - 1)
        n = graph.n_nodes(l)
        idx = sorted({as_int(i, f"active_neurons[{l}] index (0..{n - 1})", 0, n - 1)
                      for i in idx})
        if not idx:
            raise PassError(f"active_neurons[{l}] is empty; every layer needs a node")
        out[l] = idx
    return out


def _without_nodes(g: KanGraph, keeps: dict[int, list[int]], fold_mean: bool,
                   strip: bool = True) -> KanGraph:
    h = g.copy()
    if fold_mean:
        gone = [(l, i, j) for l, keep in keeps.items() for _, i, j, _ in g.act_edges(l)
                if i not in set(keep)]
        fold_edge_means(h, gone)
    for l, keep in sorted(keeps.items()):
        h = reorder_layer(h, l, keep)
    return verified(strip_analysis(h) if strip else h)


def prune_input(graph: KanGraph, x=None, *, threshold: float = 1e-2, top_k: int | None = None,
                active_inputs=None, fold_mean: bool = True) -> KanGraph:
    """Remove input nodes: keep those scoring above ``threshold``, or the ``top_k`` best, or
    exactly ``active_inputs`` (indices or names). Remaining inputs keep their names and order.
    """
    require_layered(graph, "prune_input")
    require_data_arg(x, "prune_input", "threshold")
    n = graph.n_nodes(0)
    names = graph.input_names
    if active_inputs is not None:
        if top_k is not None:
            raise PassError("give either top_k or active_inputs, not both")
        keep = sorted({_input_index(v, names) for v in _as_list(active_inputs)})
        if not keep:
            raise PassError("active_inputs is empty; at least one input must remain")
        g = graph if x is None else attribute(graph, x)
    else:
        g = scored(graph, x, "prune_input")
        s = np.array([g.node(0, i)["score"] for i in range(n)])
        if top_k is not None:
            k = as_int(top_k, f"top_k (1..{n})", 1, n)
            keep = sorted(np.argsort(-s, kind="stable")[:k].tolist())
        else:
            th = as_threshold(threshold, "threshold")
            keep = [i for i in range(n) if s[i] > th] or [int(np.argmax(s))]
    h = g.copy()
    if fold_mean:
        fold_edge_means(h, [(0, i, j) for _, i, j, _ in g.act_edges(0) if i not in set(keep)])
    return verified(strip_analysis(reorder_layer(h, 0, keep)))


def _as_list(v) -> list:
    if isinstance(v, str | int | np.integer):
        return [v]
    return list(v)


def _input_index(v, names: list[str]) -> int:
    if isinstance(v, str):
        if v not in names:
            raise PassError(f"no input named {v!r}; inputs are {names}")
        return names.index(v)
    return as_int(v, f"input index (0..{len(names) - 1})", 0, len(names) - 1)


#: pykan's remove_node modes: edges into the node, out of it, or both.
REMOVE_NODE_MODES = ("all", "up", "down")


def remove_node(graph: KanGraph, l: int, i: int, mode: str = "all") -> KanGraph:
    """Cut node (l, i) off as pykan's ``remove_node`` does: the node stays (indices do not
    shift) but its edges become absent — those out of it (``mode='up'``), into it
    (``'down'``: into its subnodes, all ``arity`` of them for a mult node) or both (``'all'``,
    the default). To delete nodes and shrink the layer use :func:`delete_node` or
    ``prune_node(active_neurons=...)``."""
    require_layered(graph, "remove_node")
    if mode not in REMOVE_NODE_MODES:
        raise PassError(f"remove_node mode must be one of {', '.join(map(repr, REMOVE_NODE_MODES))}"
                        f", got {mode!r}")
    L = graph.depth
    lo, hi = (1 if mode != "up" else 0), (L - 1 if mode != "down" else L)
    what = {"all": "a hidden layer", "up": "a layer with outgoing edges",
            "down": "a layer with incoming edges"}[mode]
    l = as_int(l, f"l ({what}, {lo}..{hi})", lo, hi)
    n = graph.n_nodes(l)
    i = as_int(i, f"i (a node of layer {l}, 0..{n - 1})", 0, n - 1)
    drop = []
    if mode in ("all", "up"):
        drop += [(l, i, j) for _, src, j, _ in graph.act_edges(l) if src == i]
    if mode in ("all", "down"):
        subs = {sub[2] for sub, _ in graph.nx.in_edges(N(l, i))}  # wires subnode -> node
        drop += [(l - 1, src, j) for _, src, j, _ in graph.act_edges(l - 1) if j in subs]
    return _without_edges(graph, drop, False)


def delete_node(graph: KanGraph, l: int, i: int, fold_mean: bool = False) -> KanGraph:
    """Delete hidden node (l, i) with its subnodes and edges; later nodes move down one index."""
    require_layered(graph, "delete_node")
    L = graph.depth
    l = as_int(l, f"l (a hidden layer 1..{L - 1})", 1, L - 1)
    n = graph.n_nodes(l)
    i = as_int(i, f"i (a node of layer {l}, 0..{n - 1})", 0, n - 1)
    if n == 1:
        raise PassError(f"layer {l} has a single node; deleting it would disconnect the model")
    return _without_nodes(graph, {l: [k for k in range(n) if k != i]}, fold_mean)


def prune(graph: KanGraph, x=None, node_th: float = 1e-2, edge_th: float = 3e-2,
          fold_mean: bool = True) -> KanGraph:
    """``prune_node`` then ``prune_edge``; with data ``x`` the scores are measured again after
    the nodes go, without it the edges keep the scores the graph carried."""
    require_layered(graph, "prune")
    require_data_arg(x, "prune", "node_th")
    g, keeps = _node_keeps(graph, node_th, x, None)
    g = _without_nodes(g, keeps, fold_mean, strip=x is not None)
    return drop_dead_nodes(prune_edge(g, x, threshold=edge_th, fold_mean=fold_mean))


def drop_dead_nodes(graph: KanGraph) -> KanGraph:
    """Remove hidden nodes that edge pruning left without outgoing edges (they feed nothing) or
    without incoming edges (constant: their outgoing edges' constant values move into the target
    subnodes' biases, so the function is unchanged). Repeats until none is left; every hidden
    layer keeps at least one node."""
    require_layered(graph, "drop_dead_nodes")
    g = graph
    while True:
        dead = {l: _dead_nodes(g, l) for l in range(1, g.depth)}
        dead = {l: d for l, d in dead.items() if d and len(d) < g.n_nodes(l)}
        if not dead:
            return g
        # a dead node with outgoing edges is constant: any input gives its edges' values
        acts = evaluate(g, np.zeros((2, g.n_nodes(0))))
        g = g.copy()
        for l, nodes in dead.items():
            for i in nodes:
                for j in [j for _, ii, j, _ in g.act_edges(l) if ii == i]:
                    sub = g.subnode(l + 1, j)
                    sub["bias"] = float(sub["bias"] + sub["scale"] * acts[l].edge[0, i, j])
        for l, nodes in dead.items():
            g = reorder_layer(g, l, [i for i in range(g.n_nodes(l)) if i not in nodes])
        g = verified(strip_analysis(g))


def _dead_nodes(g: KanGraph, l: int) -> list[int]:
    """Nodes of hidden layer l with no outgoing edge, or whose subnodes have no incoming edge."""
    has_out = {ii for _, ii, _, _ in g.act_edges(l)}
    fed_subs = {j for _, _, j, _ in g.act_edges(l - 1)}
    dead = []
    for i in range(g.n_nodes(l)):
        subs = [p[2] for p in g.nx.predecessors(N(l, i)) if p[0] == "s"]
        if i not in has_out or not any(j in fed_subs for j in subs):
            dead.append(i)
    return dead


def restrict_dataset(dataset: dict, old_names: Sequence[str], new_names: Sequence[str]) -> dict:
    """A dataset whose input columns follow ``new_names`` (a subset of ``old_names``).

    Use it after ``prune_input``: ``restrict_dataset(data, names_before, model.input_names)``.
    Labels and other entries are shared, not copied; the given dict is not modified.
    """
    old = list(old_names)
    missing = [n for n in new_names if n not in old]
    if missing:
        raise DataError(f"inputs {missing} are not among the dataset's columns {old}")
    cols = [old.index(n) for n in new_names]
    out = dict(dataset)
    for key in ("train_input", "test_input"):
        if key in dataset:
            x = dataset[key]
            if x.shape[1] != len(old):
                raise DataError(f"dataset[{key!r}] has {x.shape[1]} columns but {len(old)} names "
                                "were given")
            idx = torch.as_tensor(cols, device=x.device) if isinstance(x, torch.Tensor) else cols
            out[key] = x[:, idx]
    return out
