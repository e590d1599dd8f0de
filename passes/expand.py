"""Growing a KAN without changing what it computes: ``expand_width``, ``expand_depth``, and
``perturb``, which makes the new parts trainable (the paper's section 3: compile, expand,
perturb, train).

New edges are *zero-function spline edges*: present, trainable splines with zero coefficients
and zero base weight. They are kept apart from absent edges, which in kanir mean "masked" (a
pruned or module-cut edge that training cannot revive). Expansion keeps every existing edge,
trained splines included, exactly as it was, so the expanded graph computes the same function.

Examples
--------
>>> g2 = expand_width(g, layer=1, n=2)            # two more sum nodes in hidden layer 1
>>> g3 = expand_depth(g2)                         # an identity layer after the outputs
>>> g4 = perturb(g3, mag=1.0, mode="zero-edges")  # random splines on the new (zero) edges
"""

from __future__ import annotations

import numpy as np

from kanir.errors import PassError
from kanir.ir.activation import Activation
from kanir.ir.bspline import greville_abscissae, uniform_knots
from kanir.ir.graph import KanGraph, N, S

from ._common import (
    add_layer_nodes,
    as_int,
    hidden_layer,
    is_zero_function,
    layer_spline_shape,
    node_knots,
    relabel,
    require_data_arg,
    require_layered,
    shift_layers,
    strip_analysis,
    verified,
    zero_edge,
    zero_spline,
)
from ._eval import default_samples, evaluate

__all__ = ["expand_width", "expand_depth", "perturb", "PERTURB_MODES"]

PERTURB_MODES = ("non-intrusive", "minimal", "all", "zero-edges")

#: the size ``mag=1`` stands for: spline coefficients of this standard deviation (or lines of
#: this slope) are about as large as a freshly initialised KAN edge on [-1, 1], which is what
#: pykan's ``perturb(mag=1.0)`` gives (it switches edges on with mask ``mag``).
PERTURB_UNIT = 0.1


# ---------------------------------------------------------------------- expand_width
def expand_width(graph: KanGraph, layer: int, n: int = 1, kind: str = "sum",
                 arity: int = 2) -> KanGraph:
    """Add ``n`` nodes to hidden node layer ``layer``; the function is unchanged.

    ``kind`` is ``"sum"`` (placed after the existing sum nodes; mult nodes move up) or
    ``"mult"`` (appended, each taking ``arity`` new subnodes). Every new node is fully connected
    to the layers on both sides by zero-function spline edges: its subnodes receive zero, and it
    sends zero on, so outputs do not change. Splines leaving an existing node share that node's
    knots; a new node's outgoing splines get a uniform grid over the graph's ``grid_range``.
    """
    require_layered(graph, "expand_width")
    l = hidden_layer(graph, layer)
    n = as_int(n, "n (number of nodes to add)", 1)
    if kind not in ("sum", "mult"):
        raise PassError(f"kind must be 'sum' or 'mult', got {kind!r}")
    arity = as_int(arity, "arity (subnodes per mult node)", 2) if kind == "mult" else 1
    lw = graph.layer_widths()[l]
    if kind == "sum":
        start, sub_start = lw.n_sum, lw.n_sum
        mapping = {N(l, i): N(l, i + n) for i in range(lw.n_sum, lw.n_nodes)}
        mapping.update({S(l, j): S(l, j + n) for j in range(lw.n_sum, lw.n_subnodes)})
        h = relabel(graph, mapping)
    else:
        start, sub_start = lw.n_nodes, lw.n_subnodes
        h = graph.copy()
    strip_analysis(h)
    add_layer_nodes(h, l, start, sub_start, [kind] * n, [arity] * n)
    n_new_subs = n * arity
    for i in range(graph.n_nodes(l - 1)):
        for j in range(sub_start, sub_start + n_new_subs):
            h.set_edge(l - 1, i, j, zero_edge(h, l - 1, i))
    G, k, base = layer_spline_shape(graph, l)
    lo, hi = graph.meta.get("grid_range", (-1.0, 1.0))
    knots = uniform_knots(G, k, float(lo), float(hi))
    n_next = graph.layer_widths()[l + 1].n_subnodes
    for i in range(start, start + n):
        for j in range(n_next):
            h.set_edge(l, i, j, Activation(spline=zero_spline(knots, k, base)))
    return verified(h)


# ---------------------------------------------------------------------- expand_depth
def expand_depth(graph: KanGraph, layer: int | None = None) -> KanGraph:
    """Insert an identity layer after node layer ``layer`` (default: after the outputs, as pykan
    appends one); the function is unchanged.

    The new node layer copies the values of node layer ``layer``: node i receives the symbolic
    identity ``x`` from node i and zero-function spline edges from every other node, and the
    edges that used to leave node layer ``layer`` now leave the new nodes, unchanged. When the
    identity layer follows the outputs, the old output nodes become hidden sum nodes (their
    scale and bias stay on them).
    """
    require_layered(graph, "expand_depth")
    L = graph.depth
    after = L if layer is None else as_int(layer, f"layer (a node layer, 0..{L})", 0, L)
    m = after + 1
    n = graph.n_nodes(after)
    shape = layer_spline_shape(graph, after)
    _, k, base = shape
    knots = [node_knots(graph, after, i, shape=shape) for i in range(n)]
    h = graph.copy()
    strip_analysis(h)
    moved = [(u[2], v[2], attrs) for u, v, attrs in h.nx.out_edges(
        [N(after, i) for i in range(n)], data=True) if "act" in attrs]
    h.nx.remove_edges_from([(N(after, i), S(after + 1, j)) for i, j, _ in moved])
    h = shift_layers(h, m, copy=False)
    kind = "sum"
    if after == L:
        for i in range(n):
            h.nx.nodes[N(L, i)]["kind"] = "sum"
        kind = "output"
    add_layer_nodes(h, m, 0, 0, [kind] * n, [1] * n)
    for i in range(n):
        for j in range(n):
            act = Activation.identity() if i == j else Activation(spline=zero_spline(knots[i], k,
                                                                                    base))
            h.set_edge(after, i, j, act)
    for i, j, a in moved:
        h.nx.add_edge(N(m, i), S(m + 1, j), **a)
    return verified(h)


# ---------------------------------------------------------------------- perturb
def perturb(graph: KanGraph, x=None, *, mag: float = 1.0, mode: str = "non-intrusive",
            seed: int = 0) -> KanGraph:
    """Make new (zero-function) edges trainable so that every one gets a gradient.

    ``mag`` is relative to a freshly initialised edge, as in pykan (default 1.0): the random
    coefficients have standard deviation ``mag·PERTURB_UNIT`` and the lines of "non-intrusive"
    slope ``mag·PERTURB_UNIT``.

    Modes (pykan's names):

    * ``"non-intrusive"`` (default): the function stays exactly the same. Every present
      zero-function edge becomes a trainable spline (one leaving a node that is constant on
      the data, a new node, becomes a line through zero at that node's value ``b``, so it
      changes nothing but the edges feeding the node get a gradient too); and, as pykan
      switches on every edge into the outputs, every absent edge of the last layer becomes a
      zero spline over the values its source takes and every symbolic one gets such a spline
      beside its function (a variable a compiled prior leaves out, an edge pruned there, or a
      compiled law's edge can grow and bend). Edges into a new
      *mult* node stay zero: a product of zeros has zero gradient in each factor, so they start
      moving one step after the others (use "zero-edges" to avoid that).
    * ``"minimal"`` (pykan's meaning): every non-zero edge gets a trainable spline with random
      coefficients added on top of what it computes (symbolic parts stay); zero and absent edges
      are untouched. The function changes by about ``mag``.
    * ``"all"``: every edge position, absent ones included, gets an active spline and random
      coefficients added to it (symbolic parts stay), making the network fully connected and
      fully trainable.
    * ``"zero-edges"`` (kanir's): every present zero-function edge gets a random spline, which
      breaks the symmetry of new nodes; non-zero and absent edges are untouched.

    ``x`` (non-intrusive only) gives samples to tell constant nodes from varying ones (default:
    uniform samples over the input grid ranges); ``seed`` fixes the random coefficients.
    """
    require_layered(graph, "perturb")
    require_data_arg(x, "perturb", "mag")
    if mode not in PERTURB_MODES:
        raise PassError(f"perturb mode must be one of {', '.join(map(repr, PERTURB_MODES))}, "
                        f"got {mode!r}")
    if isinstance(mag, bool) or not isinstance(mag, int | float | np.floating) or not np.isfinite(
            mag) or mag < 0:
        raise PassError(f"mag must be a finite number >= 0, got {mag!r}")
    mag = float(mag) * PERTURB_UNIT
    rng = np.random.default_rng(as_int(seed, "seed", 0))
    h = graph.copy()
    strip_analysis(h)
    if mode == "non-intrusive":
        _perturb_non_intrusive(graph, h, mag, x)
        return verified(h)
    lws = graph.layer_widths()
    for l in range(graph.depth):
        _, k, base = layer_spline_shape(graph, l)
        for i in range(lws[l].n_nodes):
            knots = node_knots(graph, l, i)
            for j in range(lws[l + 1].n_subnodes):
                act = graph.edge(l, i, j)
                if mode != "all" and (act is None or is_zero_function(act) != (mode == "zero-edges")):
                    continue
                new = act.copy() if act is not None else Activation()
                if new.spline is None or (mode != "all" and not new.spline.active):
                    new.spline = zero_spline(knots, k, base)
                new.spline.active = True
                new.spline.coef = new.spline.coef + mag * rng.standard_normal(new.spline.coef.shape)
                h.set_edge(l, i, j, new)
    return verified(h)


def _perturb_non_intrusive(graph: KanGraph, h: KanGraph, mag: float, x) -> None:
    """Fill ``h`` (a copy of ``graph``): zero edges become trainable, zero on the data."""
    xs = default_samples(graph) if x is None else x
    acts = evaluate(graph, xs)
    lws = graph.layer_widths()
    for l in range(graph.depth):
        vals = acts[l].input
        mean, spread = vals.mean(axis=0), vals.std(axis=0)
        _, k, base = layer_spline_shape(graph, l)
        for i in range(lws[l].n_nodes):
            zero_js = [j for j in range(lws[l + 1].n_subnodes)
                       if graph.edge(l, i, j) is not None and is_zero_function(graph.edge(l, i, j))]
            if not zero_js:
                continue
            knots = node_knots(graph, l, i)
            b = float(mean[i])
            constant = spread[i] <= 1e-12 * (1.0 + abs(b))
            if constant and not (knots[k] <= b <= knots[-k - 1]):
                recentred = _recentred_knots(graph, l, i, b)
                if recentred is None:
                    constant = False  # cannot re-grid a node with non-zero splines; stays zero
                else:
                    knots = recentred
            for j in zero_js:
                new = graph.edge(l, i, j).copy()
                sp = zero_spline(knots, k, base)
                if constant:
                    sp.coef = mag * (greville_abscissae(knots, k) - b)
                new.spline = sp
                h.set_edge(l, i, j, new)
            if constant and knots is not None:
                _set_node_knots(h, l, i, knots)
    _open_last_layer(graph, h, acts[-1].input)


def _open_last_layer(graph: KanGraph, h: KanGraph, vals) -> None:
    """pykan's non-intrusive perturb switches on every edge into the outputs with zero scales:
    absent edges of the last layer (e.g. a variable a compiled prior leaves out) become
    zero-function splines and symbolic edges get a zero spline beside their function (so a
    compiled linear law can bend), on the source node's knots or, when it has no spline, on a
    uniform grid over the values it takes on the samples ``vals``."""
    l = graph.depth - 1
    lws = graph.layer_widths()
    shape = layer_spline_shape(graph, l)
    _, k, base = shape
    for i in range(lws[l].n_nodes):
        absent = [j for j in range(lws[l + 1].n_subnodes)
                  if graph.edge(l, i, j) is None or graph.edge(l, i, j).spline is None]
        if not absent:
            continue
        lo, hi = float(vals[:, i].min()), float(vals[:, i].max())
        pad = 0.5 if hi - lo <= 1e-12 * (1.0 + abs(hi)) else 0.0
        knots = node_knots(h, l, i, lo_hi=(lo - pad, hi + pad), shape=shape)  # its splines' first
        for j in absent:
            act = graph.edge(l, i, j)
            new = Activation() if act is None else act.copy()
            new.spline = zero_spline(knots, k, base)
            h.set_edge(l, i, j, new)


def _recentred_knots(graph: KanGraph, l: int, i: int, b: float):
    """A uniform grid centred on ``b`` for a node whose splines all have zero coefficients and
    base weight (so moving their knots changes nothing), else None."""
    for j in range(graph.layer_widths()[l + 1].n_subnodes):
        act = graph.edge(l, i, j)
        sp = None if act is None else act.spline
        if sp is not None and (sp.scale_base != 0 or np.any(np.asarray(sp.coef))):
            return None
    G, k, _ = layer_spline_shape(graph, l)
    lo, hi = graph.meta.get("grid_range", (-1.0, 1.0))
    half = (float(hi) - float(lo)) / 2
    return uniform_knots(G, k, b - half, b + half)


def _set_node_knots(h: KanGraph, l: int, i: int, knots: np.ndarray) -> None:
    """Give every spline leaving node (l, i) of ``h`` these knots (they must share one grid)."""
    for j in range(h.layer_widths()[l + 1].n_subnodes):
        act = h.edge(l, i, j)
        if act is not None and act.spline is not None and not np.array_equal(act.spline.grid,
                                                                                knots):
            act.spline.grid = np.array(knots, copy=True)



