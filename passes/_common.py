"""Helpers shared by the graph passes: argument checks, layer layout, structural rebuilds and
zero-function spline edges.

Every helper that returns a graph returns a new one and leaves its argument untouched; the
public passes build on them so that none of them ever mutates its input.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager

import networkx as nx
import numpy as np

from kanir.errors import PassError
from kanir.ir.activation import Activation, SplinePart
from kanir.ir.bspline import uniform_knots
from kanir.ir.graph import KanGraph, N, S, edge_items

# ---------------------------------------------------------------------- result checks
#: True while the pass manager runs a pass: it checks the result itself, once.
_MANAGER_CHECKS = contextvars.ContextVar("kanir_manager_checks", default=False)


def verified(graph: KanGraph) -> KanGraph:
    """``graph.check()`` for a pass result, unless the pass manager is running the pass (it
    checks the contract once after each pass, so passes called through it do not check twice;
    called directly, every pass still returns a checked graph)."""
    return graph if _MANAGER_CHECKS.get() else graph.check()


@contextmanager
def checks_by_manager():
    """Within this block passes leave checking their results to the caller (the manager)."""
    token = _MANAGER_CHECKS.set(True)
    try:
        yield
    finally:
        _MANAGER_CHECKS.reset(token)


# ---------------------------------------------------------------------- argument checks
def require_layered(graph, what: str) -> None:
    """Raise PassError unless ``graph`` is a layered KanGraph."""
    if not isinstance(graph, KanGraph):
        raise PassError(f"{what} needs a KanGraph, got {type(graph).__name__}")
    if graph.level != "layered":
        raise PassError(f"{what} needs a layered KanGraph; canonicalize the expression-level "
                        "graph first")


def require_data_arg(x, what: str, option: str) -> None:
    """Raise PassError when data ``x`` is a plain number: every pass takes ``(graph, x=None,
    **options)``, so a number in x's place is an option given positionally by mistake."""
    if isinstance(x, int | float | np.number) and not isinstance(x, np.ndarray):
        raise PassError(f"{what}: x is data (samples of shape (batch, n_inputs)), got the number "
                        f"{x!r}; options are keywords, e.g. {what}(graph, x, {option}=...)")


def as_int(v, name: str, low: int | None = None, high: int | None = None) -> int:
    """``v`` as an int within [low, high]; PassError otherwise."""
    if isinstance(v, bool) or not isinstance(v, int | np.integer):
        raise PassError(f"{name} must be an integer, got {type(v).__name__} {v!r}")
    v = int(v)
    if (low is not None and v < low) or (high is not None and v > high):
        lo = "" if low is None else f">= {low}"
        hi = "" if high is None else f"<= {high}"
        raise PassError(f"{name} must be {' and '.join(p for p in (lo, hi) if p)}, got {v}")
    return v


def as_threshold(v, name: str) -> float:
    """A finite, non-negative float threshold."""
    if isinstance(v, bool) or not isinstance(v, int | float | np.floating | np.integer):
        raise PassError(f"{name} must be a number, got {type(v).__name__} {v!r}")
    v = float(v)
    if not np.isfinite(v) or v < 0:
        raise PassError(f"{name} must be a finite number >= 0, got {v}")
    return v


def hidden_layer(graph: KanGraph, l, name: str = "layer") -> int:
    """A node-layer index that must be hidden (1..L-1)."""
    L = graph.depth
    if L < 2:
        raise PassError(f"the model {graph.width} has no hidden layer (depth {L})")
    return as_int(l, f"{name} (a hidden node layer, 1..{L - 1} for width {graph.width})", 1, L - 1)


# ---------------------------------------------------------------------- layout
def subnodes_of(graph: KanGraph, l: int) -> dict[int, list[int]]:
    """For node layer l >= 1: node index -> the indices of the subnodes wired into it."""
    out: dict[int, list[int]] = {}
    for i in range(graph.n_nodes(l)):
        node = N(l, i)
        out[i] = sorted(p[2] for p in graph.nx.predecessors(node) if p[0] == "s")
    return out


def owner_of(graph: KanGraph, l: int) -> np.ndarray:
    """For node layer l >= 1: subnode index -> index of the node it feeds."""
    subs = subnodes_of(graph, l)
    own = np.zeros(sum(len(v) for v in subs.values()), dtype=int)
    for i, js in subs.items():
        own[js] = i
    return own


def n_subnodes(graph: KanGraph, l: int) -> int:
    return graph.layer_widths()[l].n_subnodes


def layer_spline_shape(graph: KanGraph, l: int) -> tuple[int, int, str]:
    """(G, k, base_fun) of the splines leaving layer l (the graph defaults when it has none)."""
    for *_, act in graph.act_edges(l):
        if act.spline is not None:
            return act.spline.G, act.spline.k, act.spline.base_fun
    return int(graph.meta["grid"]), int(graph.meta["k"]), str(graph.meta.get("base_fun", "silu"))


def node_knots(graph: KanGraph, l: int, i: int, lo_hi=None, shape=None) -> np.ndarray:
    """The knot vector shared by the splines leaving node (l, i); a uniform one when none exist.

    ``lo_hi`` sets the range of a fresh uniform grid (default: the graph's grid_range);
    ``shape`` is ``layer_spline_shape(graph, l)`` when the caller already has it.
    """
    for *_, act in _out_edges(graph, l, i):
        if act.spline is not None:
            return np.array(act.spline.grid, dtype=np.float64, copy=True)
    G, k, _ = layer_spline_shape(graph, l) if shape is None else shape
    lo, hi = lo_hi if lo_hi is not None else graph.meta.get("grid_range", (-1.0, 1.0))
    return uniform_knots(G, k, float(lo), float(hi))


def _out_edges(graph: KanGraph, l: int, i: int):
    for _, v, a in graph.nx.out_edges(N(l, i), data=True):
        if "act" in a:
            yield i, v[2], a["act"]


def zero_spline(grid: np.ndarray, k: int, base_fun: str) -> SplinePart:
    """A trainable spline that is the zero function (zero coefficients and base weight)."""
    return SplinePart(np.array(grid, dtype=np.float64, copy=True),
                      np.zeros(len(grid) - k - 1), int(k), 0.0, 1.0, base_fun, True)


def zero_edge(graph: KanGraph, l: int, i: int) -> Activation:
    """A zero-function spline edge leaving node (l, i), on that node's knots."""
    _, k, base = layer_spline_shape(graph, l)
    return Activation(spline=zero_spline(node_knots(graph, l, i), k, base))


def is_zero_function(act: Activation | None) -> bool:
    """True when an edge's function is identically zero (absent edges included)."""
    if act is None:
        return True
    sy, sp = act.symbolic, act.spline
    if sy is not None and not (sy.d == 0 and (sy.c == 0 or sy.fun in ("0", "zero"))):
        return False
    if sp is not None and sp.active:
        return sp.scale_base == 0 and (sp.scale_sp == 0 or not np.any(np.asarray(sp.coef)))
    return True


# ---------------------------------------------------------------------- structural rebuilds
def relabel(graph: KanGraph, mapping: dict, *, copy: bool = True) -> KanGraph:
    """A copy with node ids renamed by ``mapping`` (others kept); ``layer``/``index`` follow.

    Nodes mapped to None are dropped together with their edges. With ``copy=False`` the graph
    (a private copy the caller owns) is rebuilt in place, sharing its attribute dicts.
    """
    h = graph.copy() if copy else graph
    old = h.nx
    nodes = {}
    for n, a in old._node.items():
        m = mapping.get(n, n)
        if m is None:
            continue
        if m != n:
            a["layer"], a["index"] = m[1], m[2]
        nodes[m] = a
    edges = []
    for u, nbrs in old._succ.items():
        mu = mapping.get(u, u)
        if mu is None:
            continue
        for v, a in nbrs.items():
            mv = mapping.get(v, v)
            if mv is not None:
                edges.append((mu, mv, a))
    h.nx = _ordered_digraph(old.graph, nodes, edges)
    return h


def _sorted(h: KanGraph) -> KanGraph:
    """Rebuild the networkx graph with nodes and edges in sorted order (stable iteration)."""
    return relabel(h, {}, copy=False)


def _ordered_digraph(graph_attrs: dict, nodes: dict, edges: list) -> nx.DiGraph:
    """A DiGraph holding ``nodes`` (id -> attr dict) and ``edges`` ((u, v, attrs)) in the IR's
    canonical order, built from adjacency dicts (add_edge per edge costs more at 10k edges)."""
    order = sorted(nodes, key=lambda t: (t[1], t[0] != "n", t[2]))
    edges.sort(key=lambda e: (e[0][1], e[0][0], e[0][2], e[1][0], e[1][2]))
    succ: dict = {n: {} for n in order}
    pred: dict = {n: {} for n in order}
    for u, v, a in edges:
        succ[u][v] = a
        pred[v][u] = a
    g = nx.DiGraph()
    g.graph.update(graph_attrs)
    g._node = {n: nodes[n] for n in order}
    g._succ = succ
    g._pred = pred
    return g


def reorder_layer(graph: KanGraph, l: int, order) -> KanGraph:
    """A copy whose node layer l holds the old nodes ``order`` (old indices, in their new order).

    Nodes left out are removed with their subnodes and edges; subnodes follow their nodes.
    Input or output names follow the nodes of layer 0 or L.
    """
    order = [int(o) for o in order]
    n = graph.n_nodes(l)
    if len(set(order)) != len(order) or any(o < 0 or o >= n for o in order) or not order:
        raise PassError(f"invalid node order {order} for layer {l} with {n} nodes")
    mapping: dict = {N(l, i): None for i in range(n)}
    mapping.update({N(l, old): N(l, new) for new, old in enumerate(order)})
    if l >= 1:
        subs = subnodes_of(graph, l)
        for js in subs.values():
            mapping.update({S(l, j): None for j in js})
        j_new = 0
        for old in order:
            for j in subs[old]:
                mapping[S(l, j)] = S(l, j_new)
                j_new += 1
    h = relabel(graph, mapping)
    if l == 0:
        names = graph.input_names
        h.meta["input_names"] = [names[o] for o in order]
        defs = graph.meta.get("input_defs")
        if defs:
            keep = set(h.meta["input_names"])
            h.meta["input_defs"] = [list(p) for p in defs if p[0] in keep]
    if l == graph.depth:
        names = graph.output_names
        h.meta["output_names"] = [names[o] for o in order]
    return h


def shift_layers(graph: KanGraph, first: int, by: int = 1, *, copy: bool = True) -> KanGraph:
    """A copy (or, ``copy=False``, the graph rebuilt in place) whose node layers ``first..L``
    (nodes and subnodes) move ``by`` layers deeper."""
    mapping = {n: (n[0], n[1] + by, n[2]) for n in graph.nx.nodes if n[1] >= first}
    return relabel(graph, mapping, copy=copy)


def fold_edge_means(h: KanGraph, edges) -> None:
    """In place on a private copy: add each edge's recorded mean (edge attr ``mean``) into the
    bias of its target subnode, so removing the edge keeps the function on average.

    ``edges`` holds (l, i, j); edges without a recorded mean are left alone.
    """
    for l, i, j in edges:
        a = h.edge_attrs(l, i, j)
        if a is None or "mean" not in a:
            continue
        sub = h.subnode(l + 1, j)
        sub["bias"] = float(sub["bias"] + sub["scale"] * float(a["mean"]))


def add_layer_nodes(h: KanGraph, l: int, start: int, sub_start: int, kinds, arities) -> None:
    """In place on a private copy: add nodes ``start, start+1, ...`` to layer l (l >= 1) with the
    given kinds ('sum'/'mult'/'output') and their subnodes ``sub_start, ...``, wired.

    The caller frees those indices first (see :func:`relabel`)."""
    j = sub_start
    for off, (kind, ar) in enumerate(zip(kinds, arities)):
        i = start + off
        attrs = {"kind": kind, "layer": l, "index": i, "scale": 1.0, "bias": 0.0}
        if kind == "mult":
            attrs["arity"] = int(ar)
        h.nx.add_node(N(l, i), **attrs)
        for _ in range(int(ar) if kind == "mult" else 1):
            h.nx.add_node(S(l, j), kind="subnode", layer=l, index=j, scale=1.0, bias=0.0)
            h.nx.add_edge(S(l, j), N(l, i), wire=True)
            j += 1


def strip_analysis(h: KanGraph) -> KanGraph:
    """In place on a private copy: drop data-derived attributes (scores, activation statistics),
    which describe the graph they were computed on, not the one a pass returns."""
    for _, a in h.nx.nodes(data=True):
        for key in ANALYSIS_KEYS:
            a.pop(key, None)
    for _, _, a in edge_items(h.nx):
        for key in ANALYSIS_KEYS:
            a.pop(key, None)
    return h


#: Attributes written by :mod:`kanir.passes.attribution`.
ANALYSIS_KEYS = ("score", "std", "mean", "l1")


def check_edge(graph: KanGraph, l, i, j, what: str = "symbolic regression") -> tuple[int, int, int]:
    """(l, i, j) as ints naming an activation edge of the layered ``graph``; else a clear error."""
    require_layered(graph, what)
    L = graph.depth
    l = as_int(l, f"l (a KAN layer 0..{L - 1})", 0, L - 1)
    i = as_int(i, f"i (a node of layer {l}, 0..{graph.n_nodes(l) - 1})", 0, graph.n_nodes(l) - 1)
    n_sub = graph.layer_widths()[l + 1].n_subnodes
    j = as_int(j, f"j (a subnode of layer {l + 1}, 0..{n_sub - 1})", 0, n_sub - 1)
    return l, i, j
