"""``module``: impose a modular structure written as ``"[0,1]->[0,1]->[0,1]->[0]"``.

The spec (see :mod:`kanir.grammar.module_spec`) is read in pairs of groups, one pair per KAN
layer starting at ``start_layer``: the first group names nodes of node layer l, the second
subnodes of node layer l + 1. For each pair the module is cut off from the rest: edges from the
named nodes to other subnodes, and from other nodes to the named subnodes, are removed. Edges
inside the module and edges between other nodes are kept.

Removed edges are absent in the IR, which is kanir's mask: the torch backend gives them mask 0,
so training keeps them exactly zero.

Examples
--------
>>> g2 = module(g, 0, "[0,1]->[0,1]->[0,1]->[0]")    # h(f(x1, x2), g(x3, x4)): the f branch
>>> g3 = module(g2, 0, "[2,3]->[2,3]->[2,3]->[1]")   # ... and the g branch
"""

from __future__ import annotations

from kanir.grammar.module_spec import ModuleSpec, ModuleSpecError, parse_module_spec
from kanir.ir.graph import KanGraph, N, S

from ._common import as_int, n_subnodes, require_layered, strip_analysis, verified

__all__ = ["module", "module_cuts", "ModuleSpecError"]


def module_cuts(graph: KanGraph, start_layer: int, spec: str | ModuleSpec
                ) -> list[tuple[int, int, int]]:
    """The (l, i, j) positions the spec cuts (whether or not an edge is there now)."""
    require_layered(graph, "module")
    L = graph.depth
    start = as_int(start_layer, f"start_layer (a node layer 0..{L - 1})", 0, L - 1)
    sp = spec if isinstance(spec, ModuleSpec) else parse_module_spec(spec)
    if start + sp.n_layers > L:
        raise sp.error(None, f"{len(sp.groups)} groups describe {sp.n_layers} layer(s) starting at "
                             f"layer {start}, but the model {graph.width} has only {L} layer(s) "
                             f"({L - start} from layer {start})")
    cuts = []
    for p, (gin, gout) in enumerate(sp.pairs()):
        l = start + p
        n_in, n_out = graph.n_nodes(l), n_subnodes(graph, l + 1)
        ins = _resolve(sp, gin, n_in, "node", l)
        outs = _resolve(sp, gout, n_out, "subnode", l + 1)
        for i in range(n_in):
            for j in range(n_out):
                if (i in ins) != (j in outs):
                    cuts.append((l, i, j))
    return cuts


def _resolve(sp: ModuleSpec, group, n: int, kind: str, layer: int) -> set[int]:
    out = set()
    for idx, col in zip(group.indices, group.columns):
        if not -n <= idx < n:
            raise sp.error(col, f"index {idx} is not a {kind} of layer {layer}: it has {n} "
                                f"({kind}s 0..{n - 1}, or -{n}..-1 from the end)")
        k = idx % n
        if k in out:
            raise sp.error(col, f"index {idx} is {kind} {k} of layer {layer}, already in this "
                                "group")
        out.add(k)
    return out


def module(graph: KanGraph, start_layer: int, spec: str | ModuleSpec) -> KanGraph:
    """A copy of ``graph`` with the module described by ``spec`` cut off from the rest."""
    cuts = module_cuts(graph, start_layer, spec)
    h = strip_analysis(graph.copy())
    h.nx.remove_edges_from([(N(l, i), S(l + 1, j)) for l, i, j in cuts])
    return verified(h)

