"""``canonicalize``: an expression-level KanGraph -> a layered KanGraph.

Inputs go to layer 0 and outputs to the last layer; every other node gets a layer (longest path
from the inputs, then moved within its slack to need fewer pass-throughs); a value that is used
more than one layer above its own gets a chain of identity *pass-through* sum nodes, shared by all
its consumers, so every activation edge spans exactly one layer. Within a layer, sum nodes come
before mult nodes, each group ordered by the mean position of its sources (fewer crossings in
diagrams) and then by creation order, so the result is deterministic.

An output that is a product is a mult node of the output layer (pykan's ``[2, [0, 1]]``), unless
a sum output comes after it (the output layer lists sums first and outputs keep their order) or
``mult_outputs=False``: then the product sits one layer lower and the output takes it through an
identity edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from kanir.errors import GraphError, PassError
from kanir.ir.activation import Activation
from kanir.ir.graph import KanGraph, N, S
from kanir.ir.width import LayerWidth

from ._common import verified

__all__ = ["canonicalize"]


@dataclass
class _Slot:
    """One subnode: its affine, exact constants and incoming (source key, activation) edges."""

    attrs: dict
    edges: list = field(default_factory=list)


@dataclass
class _Value:
    """A value node of the expression graph (or a product split off an output)."""

    key: object
    kind: str  # input / sum / mult / output
    order: int
    attrs: dict
    slots: list = field(default_factory=list)
    product: bool = False

    @property
    def sources(self) -> list:
        seen = {}
        for slot in self.slots:
            for src, _ in slot.edges:
                seen.setdefault(src, None)
        return list(seen)


def canonicalize(graph: KanGraph, *, mult_outputs: bool = True,
                 validate: bool = True) -> KanGraph:
    """The layered KAN computing the same function as the expression-level ``graph``.

    ``mult_outputs``: put output products in the output layer (as pykan does).
    ``validate=False`` skips checking the input (the compiler's own graphs); the result is
    always checked. The input graph is not modified.
    """
    if not isinstance(graph, KanGraph):
        raise PassError(f"canonicalize needs a KanGraph, got {type(graph).__name__}")
    if graph.level != "expr":
        raise PassError(f"canonicalize needs an expression-level graph (level='expr'), got "
                        f"level={graph.level!r}; a layered graph is already canonical")
    try:
        if validate:
            graph.check()
    except GraphError as e:
        raise PassError(f"canonicalize got an invalid expression graph: {e}") from None
    values = _read(graph)
    values = _place_products(values, bool(mult_outputs))
    layer = _assign_layers(values)
    return _build(graph, values, layer)


# ---------------------------------------------------------------------------- reading
def _read(graph: KanGraph) -> list[_Value]:
    """The value nodes in a topological order, with their slots and incoming edges."""
    g = graph.nx
    values: dict = {}
    order = {n: i for i, n in enumerate(sorted(g.nodes, key=_sort_key))}
    for n, a in g.nodes(data=True):
        if a["kind"] == "subnode":
            continue
        v = _Value(n, a["kind"], order[n], dict(a))
        subs = [p for p in g.predecessors(n) if g.edges[p, n].get("wire")]
        subs.sort(key=lambda s: (g.nodes[s].get("slot", 0), _sort_key(s)))
        for s in subs:
            slot = _Slot(dict(g.nodes[s]))
            for u in sorted(g.predecessors(s), key=_sort_key):
                act = g.edges[u, s].get("act")
                if act is not None:
                    slot.edges.append((u, act))
            v.slots.append(slot)
        v.product = a["kind"] == "mult" or bool(a.get("arity")) or len(v.slots) > 1
        values[n] = v
    topo = [n for n in nx.lexicographical_topological_sort(g, key=_sort_key) if n in values]
    return [values[n] for n in topo]


def _sort_key(n):
    return tuple((0, x) if isinstance(x, int) else (1, str(x)) for x in (n if isinstance(n, tuple)
                                                                          else (n,)))


def _place_products(values: list[_Value], mult_outputs: bool) -> list[_Value]:
    """Split a product output into a hidden mult node + identity edge unless it can stay in the
    output layer: the outputs after it must be products too (the output layer lists sum nodes
    before mult nodes, and outputs keep their order)."""
    outs = sorted((v for v in values if v.kind == "output"), key=lambda v: v.attrs["index"])
    keep = set()
    if mult_outputs:
        for v in reversed(outs):
            if not v.product:
                break
            keep.add(v.key)
    result = []
    for v in values:
        if v.kind == "output" and v.product and v.key not in keep:
            m = _Value(("split", v.key), "mult", v.order, {"scale": 1.0, "bias": 0.0}, v.slots,
                       True)
            scale = v.attrs.get("scale", 1.0)
            act = Activation.symbolic_fn("x", 1.0, 0.0, scale, 0.0)
            ex = dict(v.attrs.get("exact", {}))
            if "scale" in ex:
                act.meta["exact"] = {"c": ex.pop("scale")}
            attrs = {k: x for k, x in v.attrs.items() if k not in ("arity", "exact")}
            attrs["scale"] = 1.0
            if ex:
                attrs["exact"] = ex
            out = _Value(v.key, "output", v.order, attrs, [_Slot({"scale": 1.0, "bias": 0.0},
                                                                [(m.key, act)])])
            result += [m, out]
        else:
            result.append(v)
    return result


# ---------------------------------------------------------------------------- layers
def _assign_layers(values: list[_Value]) -> dict:
    """Layer of every value: longest path first, then each hidden node moved inside its slack
    to the layer that needs the fewest pass-through nodes (shared chains counted once)."""
    by_key = {v.key: v for v in values}
    layer: dict = {}
    for v in values:  # topological order
        srcs = v.sources
        layer[v.key] = 0 if v.kind == "input" else 1 + max((layer[s] for s in srcs), default=0)
    outs = [v.key for v in values if v.kind == "output"]
    L = max((layer[o] for o in outs), default=1)
    L = max(L, 1)
    for o in outs:
        layer[o] = L
    consumers: dict = {v.key: [] for v in values}
    for v in values:
        for s in v.sources:
            consumers[s].append(v.key)

    def chain(u) -> int:
        top = max((layer[c] for c in consumers[u]), default=layer[u] + 1)
        return max(0, top - layer[u] - 1)

    hidden = [v.key for v in values if v.kind in ("sum", "mult")]
    for _ in range(20):
        moved = False
        for key in reversed(hidden):
            srcs = by_key[key].sources
            lo = 1 + max((layer[s] for s in srcs), default=0)
            hi = min((layer[c] for c in consumers[key]), default=L) - 1
            if hi <= lo:
                continue
            here = layer[key]
            best, best_cost = here, None
            for cand in range(lo, hi + 1):
                layer[key] = cand
                cost = chain(key) + sum(chain(s) for s in srcs)
                if best_cost is None or cost < best_cost or (cost == best_cost and cand == here):
                    best, best_cost = cand, cost
            layer[key] = best
            moved |= best != here
        if not moved:
            break
    return layer


# ---------------------------------------------------------------------------- building
def _build(expr_graph: KanGraph, values: list[_Value], layer: dict) -> KanGraph:
    by_key = {v.key: v for v in values}
    L = max(layer.values())
    top: dict = {}  # highest layer at which a value is consumed
    for v in values:
        for s in v.sources:
            top[s] = max(top.get(s, 0), layer[v.key])
    members: list[list] = [[] for _ in range(L + 1)]
    for v in values:
        members[layer[v.key]].append(v.key)
    for u, t in top.items():
        for l in range(layer[u] + 1, t):
            members[l].append(("pass", u, l))

    def sources_of(item, l):
        if isinstance(item, tuple) and item and item[0] == "pass":
            return [_rep(item[1], l - 1, layer)]
        return [_rep(s, l - 1, layer) for s in by_key[item].sources]

    pos: dict = {}
    inputs = sorted((k for k in members[0]), key=lambda k: by_key[k].attrs["index"])
    for i, k in enumerate(inputs):
        pos[k] = i
    rows = [inputs]
    for l in range(1, L + 1):
        items = members[l]
        if l == L:
            row = sorted(items, key=lambda k: (by_key[k].product, by_key[k].attrs["index"]))
        else:
            def rank(item, l=l):
                srcs = sources_of(item, l)
                bary = sum(pos[s] for s in srcs) / len(srcs) if srcs else 0.0
                is_pass = isinstance(item, tuple) and item[0] == "pass"
                order = by_key[item[1]].order if is_pass else by_key[item].order
                return (bary, 0 if is_pass else 1, order)

            sums = [k for k in items if not _is_product(k, by_key)]
            mults = [k for k in items if _is_product(k, by_key)]
            row = sorted(sums, key=rank) + sorted(mults, key=rank)
        for i, k in enumerate(row):
            pos[k] = i
        rows.append(row)
    widths = [LayerWidth(len(rows[0]))]
    for row in rows[1:]:
        arities = tuple(len(by_key[k].slots) for k in row if _is_product(k, by_key))
        widths.append(LayerWidth(len(row) - len(arities), arities))
    meta = {k: (list(v) if isinstance(v, list) else v) for k, v in expr_graph.meta.items()
            if k not in ("input_names", "output_names")}
    out = KanGraph.from_layers(widths, expr_graph.meta["input_names"],
                               expr_graph.meta["output_names"], **meta)
    g = out.nx
    for l in range(1, L + 1):
        sub = 0
        for i, k in enumerate(rows[l]):
            node = g.nodes[N(l, i)]
            if isinstance(k, tuple) and k[0] == "pass":
                _add_edge(g, N(l - 1, pos[_rep(k[1], l - 1, layer)]), S(l, sub),
                          Activation.identity())
                sub += 1
                continue
            v = by_key[k]
            _set_affine(node, v.attrs)
            for slot in v.slots:
                _set_affine(g.nodes[S(l, sub)], slot.attrs)
                for src, act in slot.edges:
                    _add_edge(g, N(l - 1, pos[_rep(src, l - 1, layer)]), S(l, sub), act.copy())
                sub += 1
    return verified(out)


def _is_product(item, by_key) -> bool:
    return not (isinstance(item, tuple) and item[0] == "pass") and by_key[item].product


def _rep(u, l: int, layer: dict):
    """The node carrying value ``u`` in layer ``l``: u itself or its pass-through there."""
    return u if layer[u] == l else ("pass", u, l)


def _set_affine(node: dict, attrs: dict) -> None:
    node["scale"] = float(attrs.get("scale", 1.0))
    node["bias"] = float(attrs.get("bias", 0.0))
    if attrs.get("exact"):
        node["exact"] = dict(attrs["exact"])


def _add_edge(g, u, v, act: Activation) -> None:
    if g.has_edge(u, v):
        raise PassError(f"canonicalize: two activations map to the edge {u}->{v} (internal error)")
    g.add_edge(u, v, act=act)
