"""The KAN IR: ``KanGraph``, a networkx DiGraph plus graph-level metadata.

Layered form (what ``canonicalize`` and ``lift`` produce). Node ids are tuples:

* ``("n", l, i)`` — node i of layer l (kind ``input`` in layer 0; ``sum`` or ``mult`` in hidden
  layers; in the last layer ``output`` (a sum) or ``mult`` — pykan's ``[2, [0, 1]]`` ends in a
  product; sum nodes come first, as in pykan's ``[n_sum, n_mult]``);
* ``("s", l, j)`` — subnode j of layer l >= 1 (kind ``subnode``).

Activation edges ``("n", l, i) -> ("s", l+1, j)`` carry ``act`` (an :class:`Activation`);
wire edges ``("s", l, j) -> ("n", l, i)`` carry ``wire=True``: a sum node takes one subnode,
a mult node takes ``arity`` consecutive subnodes. Nodes (l >= 1) and subnodes carry an affine
``scale``/``bias``. Expression form (from the formula frontend) has the same node kinds but no
layers; ``level`` tells which.

pykan's indexing ``(l, i, j)`` addresses the activation from node i of layer l to subnode j of
layer l+1; :meth:`KanGraph.edge` and friends use it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import networkx as nx
import numpy as np

from kanir.errors import GraphError, PassError
from kanir.ir.activation import Activation, SplinePart, SymbolicPart
from kanir.ir.library import LIBRARY
from kanir.ir.width import LayerWidth, arity_spec, parse_width, width_spec

FORMAT_VERSION = 1

DEFAULT_META = {
    "dtype": "float64",
    "grid": 5,
    "k": 3,
    "grid_range": (-1.0, 1.0),
    "base_fun": "silu",
}


def N(l: int, i: int) -> tuple:
    """Node id of node i in layer l."""
    return ("n", l, i)


def S(l: int, j: int) -> tuple:
    """Node id of subnode j in layer l (l >= 1)."""
    return ("s", l, j)


def default_names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}_{i + 1}" for i in range(n)]


def edge_items(g: nx.DiGraph) -> Iterator[tuple]:
    """(u, v, attrs) of every edge of a networkx DiGraph, read from its adjacency dicts in
    successor order (the same order as ``g.edges(data=True)``, at a third of its cost)."""
    for u, nbrs in g._succ.items():
        for v, a in nbrs.items():
            yield u, v, a


class KanGraph:
    """A KAN as a networkx DiGraph (``self.nx``) plus metadata (``self.meta``)."""

    def __init__(self, g: nx.DiGraph | None = None, meta: dict | None = None, level: str = "layered"):
        self.nx = g if g is not None else nx.DiGraph()
        self.meta = dict(DEFAULT_META)
        if meta:
            self.meta.update(meta)
        self.level = level

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_layers(
        cls,
        layers: Sequence[LayerWidth],
        input_names: Sequence[str] | None = None,
        output_names: Sequence[str] | None = None,
        **meta,
    ) -> KanGraph:
        """A layered skeleton (nodes, subnodes, wires; no activation edges)."""
        g = nx.DiGraph()
        L = len(layers) - 1
        for l, lw in enumerate(layers):
            for i in range(lw.n_nodes):
                kind = ("input" if l == 0 else "mult" if i >= lw.n_sum
                        else "output" if l == L else "sum")
                attrs = {"kind": kind, "layer": l, "index": i}
                if l > 0:
                    attrs.update(scale=1.0, bias=0.0)
                if kind == "mult":
                    attrs["arity"] = lw.arities[i - lw.n_sum]
                g.add_node(N(l, i), **attrs)
            if l == 0:
                continue
            for j in range(lw.n_subnodes):
                g.add_node(S(l, j), kind="subnode", layer=l, index=j, scale=1.0, bias=0.0)
            for i in range(lw.n_sum):
                g.add_edge(S(l, i), N(l, i), wire=True)
            j = lw.n_sum
            for m, a in enumerate(lw.arities):
                for _ in range(a):
                    g.add_edge(S(l, j), N(l, lw.n_sum + m), wire=True)
                    j += 1
        meta.setdefault("input_names", list(input_names or default_names("x", layers[0].n_nodes)))
        meta.setdefault("output_names", list(output_names or default_names("y", layers[-1].n_nodes)))
        return cls(g, meta)

    @classmethod
    def from_width(cls, width, mult_arity=2, **kw) -> KanGraph:
        return cls.from_layers(parse_width(width, mult_arity), **kw)

    def copy(self) -> KanGraph:
        """A deep copy: activations, their meta, attribute dicts and metadata are copied at
        every depth, never shared; the copy is writeable even when this graph is a read-only
        view."""
        with gc_paused():
            return KanGraph(_copy_nx(self.nx), _copy_value(self.meta), self.level)

    # ------------------------------------------------------------------ structure
    @property
    def input_names(self) -> list[str]:
        return list(self.meta["input_names"])

    @property
    def output_names(self) -> list[str]:
        return list(self.meta["output_names"])

    @property
    def depth(self) -> int:
        """Number of activation layers L (a [2,5,1] KAN has depth 2)."""
        return max(a["layer"] for _, a in self.nx.nodes(data=True)) if len(self.nx) else 0

    def layer_widths(self) -> tuple[LayerWidth, ...]:
        """The LayerWidth of every node layer, read from the nodes."""
        rows: dict[int, list] = {}
        for _, a in self.nx.nodes(data=True):
            if a["kind"] != "subnode":
                rows.setdefault(a["layer"], []).append((a["index"], a["kind"], a.get("arity")))
        out = []
        for l in sorted(rows):
            row = sorted(rows[l])
            n_sum = sum(1 for _, k, _ in row if k != "mult")
            out.append(LayerWidth(n_sum, tuple(ar for _, k, ar in row if k == "mult")))
        return tuple(out)

    @property
    def width(self) -> list:
        """The pykan-style width spec, e.g. [2, [0, 1], 1]."""
        return width_spec(self.layer_widths())

    @property
    def mult_arity(self):
        return arity_spec(self.layer_widths())

    def n_nodes(self, l: int) -> int:
        return self.layer_widths()[l].n_nodes

    def node(self, l: int, i: int) -> dict:
        """Attribute dict of node i in layer l (live: edits change the graph)."""
        try:
            return self.nx.nodes[N(l, i)]
        except KeyError:
            raise PassError(f"no node {i} in layer {l} ({self._layer_desc()})") from None

    def subnode(self, l: int, j: int) -> dict:
        try:
            return self.nx.nodes[S(l, j)]
        except KeyError:
            raise PassError(f"no subnode {j} in layer {l}") from None

    def _layer_desc(self) -> str:
        return f"width {self.width}"

    # ------------------------------------------------------------------ activation edges
    def _edge_ids(self, l: int, i: int, j: int) -> tuple[tuple, tuple]:
        u, v = N(l, i), S(l + 1, j)
        if u not in self.nx or v not in self.nx:
            raise PassError(
                f"no edge (l={l}, i={i}, j={j}): layer {l} has nodes 0..{self._count(l, 'n') - 1} "
                f"and layer {l + 1} has subnodes 0..{self._count(l + 1, 's') - 1} ({self._layer_desc()})"
            )
        return u, v

    def _count(self, l: int, t: str) -> int:
        return sum(1 for n in self.nx if n[0] == t and n[1] == l)

    def edge(self, l: int, i: int, j: int) -> Activation | None:
        """The activation from node (l, i) to subnode (l+1, j), or None if absent (zero)."""
        u, v = self._edge_ids(l, i, j)
        d = self.nx.get_edge_data(u, v)
        return None if d is None else d["act"]

    def set_edge(self, l: int, i: int, j: int, act: Activation | None) -> None:
        """Set (or with None remove) the activation on edge (l, i, j); mutates this graph."""
        u, v = self._edge_ids(l, i, j)
        if act is None:
            if self.nx.has_edge(u, v):
                self.nx.remove_edge(u, v)
            return
        if not isinstance(act, Activation):
            raise PassError(f"edge (l={l}, i={i}, j={j}) needs an Activation, got {type(act).__name__}")
        if self.nx.has_edge(u, v):
            self.nx.edges[u, v]["act"] = act
        else:
            self.nx.add_edge(u, v, act=act)

    def edge_attrs(self, l: int, i: int, j: int) -> dict | None:
        """The live attribute dict of an edge (holds 'act' and analysis results such as 'score')."""
        u, v = self._edge_ids(l, i, j)
        return self.nx.get_edge_data(u, v)

    def act_edges(self, l: int | None = None) -> Iterator[tuple[int, int, int, Activation]]:
        """All activation edges as (l, i, j, act), sorted by (l, i, j)."""
        rows = []
        for u, nbrs in self.nx._succ.items():
            if l is not None and u[1] != l:
                continue
            for v, a in nbrs.items():
                if "act" in a:
                    rows.append((u[1], u[2], v[2], a["act"]))
        rows.sort(key=lambda r: r[:3])
        return iter(rows)

    # ------------------------------------------------------------------ validation
    def problems(self) -> list[str]:
        """Every inconsistency found, each a sentence naming the node or edge."""
        from kanir.ir.checks import graph_problems

        return graph_problems(self)

    def check(self) -> KanGraph:
        """Raise GraphError listing every inconsistency; return self when clean."""
        probs = self.problems()
        if probs:
            lines = "\n".join(f"  - {p}" for p in probs[:50])
            more = f"\n  ... and {len(probs) - 50} more" if len(probs) > 50 else ""
            raise GraphError(f"KanGraph has {len(probs)} problem(s):\n{lines}{more}")
        return self

    # ------------------------------------------------------------------ display
    def summary(self) -> str:
        """Widths, names and a count of edge kinds; one line per layer."""
        if self.level != "layered":
            return f"KanGraph(expression level, {len(self.nx)} nodes, {self.nx.number_of_edges()} edges)"
        lws = self.layer_widths()
        lines = [
            f"KanGraph width={width_spec(lws)} mult_arity={arity_spec(lws)} dtype={self.meta['dtype']}",
            f"  inputs:  {', '.join(self.input_names)}",
            f"  outputs: {', '.join(self.output_names)}",
        ]
        for l in range(len(lws) - 1):
            kinds: dict[str, int] = {}
            for *_, act in self.act_edges(l):
                kinds[act.kind] = kinds.get(act.kind, 0) + 1
            total = lws[l].n_nodes * lws[l + 1].n_subnodes
            desc = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
            lines.append(f"  layer {l}: {lws[l].n_nodes} -> {lws[l + 1].n_subnodes} subnodes; "
                         f"edges {sum(kinds.values())}/{total} ({desc})")
        return "\n".join(lines)

    def to_text(self) -> str:
        """The graph as kanir IR text; ``kanir.parse_ir`` reads it back exactly."""
        from kanir.ir.text import to_text

        return to_text(self)

    def __repr__(self) -> str:
        if self.level != "layered":
            return self.summary()
        n_edges = sum(1 for _ in self.act_edges())
        return (f"KanGraph(width={self.width}, inputs={self.input_names}, "
                f"outputs={self.output_names}, edges={n_edges})")

    def same(self, other: KanGraph) -> bool:
        """Structural and numeric equality of two graphs (exact)."""
        from kanir.ir.checks import graphs_equal

        return graphs_equal(self, other)


@contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector while building a large graph: its collections,
    triggered by every few hundred new objects, would walk every live object each time (3-4x
    the cost of building a 10k-edge graph). Nothing built here is garbage, so nothing is lost."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _copy_nx(src: nx.DiGraph) -> nx.DiGraph:
    """A DiGraph with copies of ``src``'s attribute dicts, in ``src``'s node, successor and
    predecessor order, built from its adjacency dicts (networkx's add_edges_from costs more
    than the copies themselves at 10k edges; assigning ``_succ``/``_pred`` resets its caches)."""
    g = nx.DiGraph()
    g.graph.update(_copy_value(dict(src.graph)))
    g._node = {n: _copy_attrs(a) for n, a in src._node.items()}
    succ = {u: {v: _copy_attrs(a) for v, a in nbrs.items()} for u, nbrs in src._succ.items()}
    g._succ = succ
    g._pred = {v: {u: succ[u][v] for u in nbrs} for v, nbrs in src._pred.items()}
    return g


def _copy_attrs(a: dict) -> dict:
    return {k: _copy_value(v) for k, v in a.items()}


def _copy_value(v):
    """A copy of an attribute value at every depth (scalars and strings are shared)."""
    if type(v) is Activation:  # built directly: dataclasses.replace is slow at 10k edges
        sp, sy = v.spline, v.symbolic
        if type(sp) is SplinePart:
            sp = SplinePart(np.array(sp.grid, copy=True), np.array(sp.coef, copy=True), sp.k,
                            sp.scale_base, sp.scale_sp,
                            sp.base_fun, sp.active)
        elif sp is not None:
            sp = sp.copy()
        if type(sy) is SymbolicPart:
            sy = SymbolicPart(sy.fun, sy.a, sy.b, sy.c, sy.d)
        elif sy is not None:
            sy = sy.copy()
        return Activation(sp, sy, _copy_value(v.meta) if v.meta else {})
    if isinstance(v, Activation | SplinePart | SymbolicPart | np.ndarray):
        return v.copy()
    if isinstance(v, dict):
        return {k: _copy_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return type(v)(_copy_value(x) for x in v)
    return v


__all__ = ["KanGraph", "N", "S", "FORMAT_VERSION", "LIBRARY"]
