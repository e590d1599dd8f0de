"""Trick A: a KAN whose connections follow a discovered function tree (``kanir.science.tree``).

Every tree node becomes one KAN node: ``add`` and ``gsep`` groups a sum node (a gsep's outer
function is the univariate edge into its parent, or an extra output edge at the root), ``mul``
groups a multiplication node of arity = number of children, and ``sym`` groups a dense block of
2m+1 sum nodes followed by a sum node (no separability to exploit). Variables outside a group
have no edge into it, so the structure is imposed by construction (absent edges stay zero
through ``fit``). Children that sit lower than their parent's layer reach it through exact
identity edges. Trainable edges start as lines, so products begin as products of the inputs;
the edges into a ``sym`` block's hidden nodes start as lines of seeded random slopes, so its
2m+1 nodes start (and therefore stay) different.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kanir.errors import PassError
from kanir.ir.activation import Activation, SplinePart
from kanir.ir.bspline import greville_abscissae, uniform_knots
from kanir.ir.graph import KanGraph
from kanir.ir.width import LayerWidth


@dataclass
class _Slot:
    """A planned KAN node: kind, layer, and the slots feeding it (edge kind per input)."""

    kind: str  # "input", "sum", "mult"
    layer: int
    #: (source, "spline" | "identity" | "random"): a random edge starts as a line of random slope
    inputs: list[tuple[_Slot, str]] = field(default_factory=list)
    index: int = -1


class _Builder:
    def __init__(self, names):
        self.slots: list[_Slot] = []
        self.inputs = [self._new("input", 0) for _ in names]

    def _new(self, kind, layer, inputs=()):
        s = _Slot(kind, layer, list(inputs))
        self.slots.append(s)
        return s

    def lift_to(self, s: _Slot, layer: int) -> _Slot:
        """Pass a slot up to ``layer - 1`` through identity sum nodes (so it can feed ``layer``)."""
        while s.layer < layer - 1:
            s = self._new("sum", s.layer + 1, [(s, "identity")])
        return s

    def build(self, node) -> _Slot:
        if node.is_leaf:
            return self.inputs[node.indices[0]]
        kids = [self.build(c) for c in node.children]
        top = max(c.layer for c in kids)
        if node.kind == "sym":
            m = len(kids)
            hidden_layer = top + 1
            hidden = [self._new("sum", hidden_layer, [(self.lift_to(c, hidden_layer), "random")
                                                      for c in kids]) for _ in range(2 * m + 1)]
            return self._new("sum", hidden_layer + 1, [(h, "spline") for h in hidden])
        layer = top + 1
        kind = "mult" if node.kind == "mul" else "sum"
        return self._new(kind, layer, [(self.lift_to(c, layer), "spline") for c in kids])


def graph_from_tree(tree, grid: int = 5, k: int = 3, grid_range=(-1.0, 1.0), dtype="float64",
                    output_name: str = "y_1", seed: int = 0) -> KanGraph:
    """A layered KanGraph whose connectivity is ``tree``'s hierarchy (see the module docstring).

    The inputs are ``tree.names`` in order (unused variables get no edges); ``seed`` draws the
    slopes of the edges into dense ``sym`` blocks.
    """
    if not hasattr(tree, "root") or not hasattr(tree, "names"):
        raise PassError(f"graph_from_tree needs a kanir FunctionTree, got {type(tree).__name__}")
    b = _Builder(tree.names)
    root = b.build(tree.root)
    if root.kind == "input" or tree.root.kind == "gsep":
        root = b._new("sum", root.layer + 1, [(root, "spline")])  # the outer univariate function
    L = root.layer
    layers: list[list[_Slot]] = [[] for _ in range(L + 1)]
    for s in b.slots:
        layers[s.layer].append(s)
    widths = []
    for l, row in enumerate(layers):
        sums = [s for s in row if s.kind != "mult"]
        mults = [s for s in row if s.kind == "mult"]
        for i, s in enumerate(sums + mults):
            s.index = i
        layers[l] = sums + mults
        widths.append(LayerWidth(len(sums), tuple(len(s.inputs) for s in mults)))
    g = KanGraph.from_layers(widths, input_names=list(tree.names), output_names=[output_name],
                             dtype=dtype, grid=grid, k=k, grid_range=tuple(grid_range))
    sp_grid = uniform_knots(grid, k, float(grid_range[0]), float(grid_range[1]))
    line = greville_abscissae(sp_grid, k)
    rng = np.random.default_rng(seed)
    for l in range(1, L + 1):
        sub = {}  # first subnode of each node
        j = 0
        for s in layers[l]:
            sub[id(s)] = j
            j += len(s.inputs) if s.kind == "mult" else 1
        for s in layers[l]:
            for r, (src, how) in enumerate(s.inputs):
                jj = sub[id(s)] + (r if s.kind == "mult" else 0)
                if how == "identity":
                    act = Activation.identity()
                else:
                    slope = rng.uniform(-1.0, 1.0) if how == "random" else 1.0
                    act = Activation(SplinePart(sp_grid.copy(), slope * line, k, 0.0, 1.0))
                g.set_edge(l - 1, src.index, jj, act)
    return g.check()


def module_spec_from_tree(tree) -> dict:
    """The groups a structured KAN keeps apart, as {tree label: variable names} (for reports)."""
    return {n.label: list(n.variables) for n in tree.nodes() if not n.is_leaf}

