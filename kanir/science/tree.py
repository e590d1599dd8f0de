"""The tree converter (KAN 2.0, section 4.2.2): the modular structure of a function as a tree.

Algorithm. A *symmetric group* (a module) is a set S of variables with f = F(g(x_S), x_rest)
(generalized symmetry, tested by :meth:`Probe.symmetry_scores`).
1. Closures: for every pair {i, j}, the smallest symmetric group containing it is found by adding
   every variable whose change rotates the group's gradient direction, until none does.
   (Such a variable must belong to every symmetric group containing the pair, so this is exact.)
2. Hierarchy: overlapping groups are merged (the union of two overlapping symmetric groups is
   again one, and their parent is then separable in all its parts, as in Gorman's overlapping
   theorem); the groups left overlap no other group and nest into a tree: groups of size 2 up to
   n, the maximal hierarchy. A group that overlapped others becomes one node with many children.
3. Labels, strongest first: "add" (additively separable), "mul" (multiplicatively separable),
   "gsep" (generally separable, f = F(sum of parts)), else "sym" (only symmetric). A node's
   function is only defined up to what its parent leaves free: at the root it is f itself; under
   an add (mul) parent, up to an added constant (a factor); under a gsep parent, up to an affine
   map; under a sym parent, up to any invertible map. So inside the tree "mul" means "a product
   plus a constant", and the children of a "sym" node can only be "gsep" or "sym".
   Each label is tested with derivatives that are invariant under exactly that freedom (see
   :class:`kanir.science.modularity.Probe`): under a gsep parent, the gradient is divided by the norm of
   the siblings' gradient, which removes the outer function's derivative.

Thresholds are parameters (``sym_th`` for symmetric groups, ``sep_th`` for labels) and every node
carries its scores, because fitted networks only approximate the structure of their target; see
the smoothness caveat in :mod:`kanir.science.modularity`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations

import networkx as nx
import torch

from kanir.science.modularity import FunctionError, Probe, _median, probe

__all__ = ["FunctionTree", "TreeNode", "tree"]

KINDS = ("add", "mul", "gsep", "sym")


@dataclass(frozen=True)
class TreeNode:
    """One node of a :class:`FunctionTree`: a leaf (one variable) or a labelled group."""

    kind: str
    variables: tuple[str, ...]
    indices: tuple[int, ...]
    scores: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    children: tuple[TreeNode, ...] = ()

    @property
    def is_leaf(self) -> bool:
        return self.kind == "leaf"

    @property
    def label(self) -> str:
        """``mul(q, v, B, m)`` for a group, the variable name for a leaf."""
        if self.is_leaf:
            return self.variables[0]
        return f"{self.kind}({', '.join(self.variables)})"

    def compact(self) -> str:
        """One-line nested form: ``add(gsep(x1, x2), gsep(x3, x4))``."""
        if self.is_leaf:
            return self.variables[0]
        return f"{self.kind}({', '.join(c.compact() for c in self.children)})"

    def walk(self):
        """This node and all below it, depth first."""
        yield self
        for c in self.children:
            yield from c.walk()


class FunctionTree:
    """The modular structure of a function: a networkx DiGraph (parent -> child) with labels.

    Node ids are tuples of variable indices; node attributes: ``kind`` ("leaf", "add", "mul",
    "gsep", "sym"), ``variables`` (names), ``indices``, ``scores`` (the evidence, by label) and
    ``complete`` (the node came from merging overlapping symmetric groups).
    """

    def __init__(self, graph: nx.DiGraph, root_id: tuple[int, ...], names: tuple[str, ...],
                 unused: tuple[str, ...] = (), meta: dict | None = None):
        self.graph = graph
        self.root_id = root_id
        self.names = tuple(names)
        self.unused = tuple(unused)
        self.meta = dict(meta or {})
        self._root: TreeNode | None = None

    @property
    def root(self) -> TreeNode:
        """The root as a :class:`TreeNode` (children nested inside)."""
        if self._root is None:
            self._root = self._node(self.root_id)
        return self._root

    def _node(self, nid) -> TreeNode:
        a = self.graph.nodes[nid]
        kids = tuple(self._node(c) for c in self.children_of(nid))
        return TreeNode(a["kind"], tuple(a["variables"]), tuple(a["indices"]),
                        dict(a["scores"]), kids)

    def children_of(self, nid) -> list:
        """Child ids of ``nid``, ordered by their first variable."""
        return sorted(self.graph.successors(nid), key=lambda c: (min(c), len(c)))

    def nodes(self) -> list[TreeNode]:
        """All nodes, depth first from the root."""
        return list(self.root.walk())

    def groups(self, k: int | None = None) -> list[tuple[str, ...]]:
        """The variable groups of internal nodes (of size ``k`` if given), ordered."""
        out = [n.variables for n in self.nodes() if not n.is_leaf]
        if k is not None:
            out = [g for g in out if len(g) == k]
        return sorted(out, key=lambda g: (len(g), [self.names.index(v) for v in g]))

    def compact(self) -> str:
        """One-line nested form, e.g. ``add(x1, mul(x2, x3))``."""
        return self.root.compact()

    def to_text(self, scores: bool = False) -> str:
        """An indented ASCII tree; ``scores=True`` appends each node's evidence."""
        lines: list[str] = []
        self._text(self.root, "", "", lines, scores)
        if self.unused:
            lines.append(f"(unused: {', '.join(self.unused)})")
        return "\n".join(lines)

    def _text(self, node: TreeNode, lead: str, child_lead: str, lines: list, scores: bool):
        text = node.label
        if scores and node.scores:
            text += "  [" + ", ".join(f"{k} {v:.1e}" for k, v in node.scores.items()) + "]"
        lines.append(lead + text)
        for i, c in enumerate(node.children):
            last = i == len(node.children) - 1
            self._text(c, child_lead + ("`-- " if last else "+-- "),
                       child_lead + ("    " if last else "|   "), lines, scores)

    def to_dict(self) -> dict:
        """A JSON-ready dict: variables, thresholds, evidence and the nested nodes."""
        return {"variables": list(self.names), "unused": list(self.unused),
                **{k: v for k, v in self.meta.items()}, "root": _node_dict(self.root)}

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"FunctionTree({self.compact()})"


def _node_dict(n: TreeNode) -> dict:
    d = {"kind": n.kind, "variables": list(n.variables)}
    if not n.is_leaf:
        d["scores"] = {k: (v if math.isfinite(v) else None) for k, v in n.scores.items()}
        d["children"] = [_node_dict(c) for c in n.children]
    return d


# ----------------------------------------------------------------------------- step 0: activity


def _active(p: Probe, inactive_th: float) -> tuple[list[int], list[int]]:
    """Variables whose median share of the (standardised) gradient reaches ``inactive_th``.

    A variable f hardly depends on would join every symmetric group and hide the structure.
    """
    g = p.g.abs()
    share = g / g.norm(dim=1, keepdim=True)
    med = [_median(share[:, i]) for i in range(p.n_var)]
    active = [i for i, s in enumerate(med) if s >= inactive_th]
    if not active:
        raise FunctionError("f does not vary on the samples (its gradient vanishes)")
    return active, [i for i in range(p.n_var) if i not in active]


# ----------------------------------------------------------------------------- step 1-2: groups


class _Groups:
    """Symmetric-group closures over the active variables, with cached dependence scores."""

    def __init__(self, p: Probe, active: list[int], sym_th: float):
        self.p, self.active, self.th = p, list(active), sym_th
        self._dep: dict[frozenset, dict[int, float]] = {}

    def dependence(self, s: frozenset) -> dict[int, float]:
        """Median rotation of grad_S f per std of each active variable outside S."""
        if s not in self._dep:
            others = [i for i in self.active if i not in s]
            per = self.p.symmetry_scores(sorted(s), others)
            self._dep[s] = {r: _median(v) for r, v in per.items()}
        return self._dep[s]

    def closure(self, s) -> frozenset:
        """The smallest symmetric group containing ``s``."""
        s = frozenset(s)
        while True:
            add = {r for r, v in self.dependence(s).items() if not v < self.th}
            if not add:
                return s
            s = s | add

    def score(self, s) -> float:
        dep = self.dependence(frozenset(s))
        return max(dep.values()) if dep else 0.0


def _overlap(a: frozenset, b: frozenset) -> bool:
    return bool(a & b) and not a <= b and not b <= a


def _overlap_components(fam: set[frozenset]) -> list[list[frozenset]]:
    g = nx.Graph()
    g.add_nodes_from(fam)
    g.add_edges_from((a, b) for a, b in combinations(fam, 2) if _overlap(a, b))
    return [list(c) for c in nx.connected_components(g) if len(c) > 1]


def _hierarchy(groups: _Groups) -> tuple[set[frozenset], set[frozenset]]:
    """Strong groups (overlapping no other) and the merged ones (unions of children)."""
    active = groups.active
    fam = {groups.closure({i, j}) for i, j in combinations(active, 2)}
    merged: set[frozenset] = set()
    while comps := _overlap_components(fam):  # ends: each round replaces >= 2 sets by one
        for comp in comps:
            merged.update(comp)
            fam.difference_update(comp)
            fam.add(groups.closure(frozenset().union(*comp)))
    fam.add(frozenset(active))
    fam.update(frozenset({i}) for i in active)
    return fam, merged - fam


def _tree_graph(strong: set[frozenset], merged: set[frozenset], names) -> nx.DiGraph:
    """Nest the strong groups by inclusion; mark nodes that merged overlapping groups."""
    g = nx.DiGraph()
    order = sorted(strong, key=len)
    for s in order:
        idx = tuple(sorted(s))
        g.add_node(idx, indices=idx, variables=tuple(names[i] for i in idx),
                   kind="leaf" if len(s) == 1 else None, scores={}, complete=False)
    for s in order:
        parent = _smallest_superset(s, order)
        if parent is not None:
            g.add_edge(tuple(sorted(parent)), tuple(sorted(s)))
    for m in merged:
        parent = _smallest_superset(m, order)
        if parent is not None:
            g.nodes[tuple(sorted(parent))]["complete"] = True
    return g


def _smallest_superset(s: frozenset, order: list[frozenset]) -> frozenset | None:
    for t in order:
        if len(t) > len(s) and s < t:
            return t
    return None


# ----------------------------------------------------------------------------- step 3: labels


def _label(g: nx.DiGraph, nid, p: Probe, groups: _Groups, ctx: str, pin, sep_th: float):
    """Label ``nid`` with its strongest passing structure and recurse with the child contexts."""
    kids = sorted(g.successors(nid), key=min)
    if not kids:
        return
    blocks = [list(k) for k in kids]
    scores: dict[str, float] = {}
    if ctx != "sym":
        scores["add"] = _median(p.add_profile(blocks, pin)[0])
        mul = p.mul_profile(blocks) if ctx == "root" else p.shifted_mul_profile(blocks, pin)
        scores["mul"] = _median(mul[0])
    scores["gsep"] = _median(p.gsep_profile(blocks)[0])
    scores["sym"] = groups.score(nid)
    kind = next((k for k in ("add", "mul", "gsep") if scores.get(k, math.inf) < sep_th), "sym")
    g.nodes[nid].update(kind=kind, scores=scores)
    for k in kids:
        if kind in ("add", "mul"):
            child_ctx, child_pin = kind, pin
        elif kind == "gsep":
            child_ctx, child_pin = "gsep", [i for i in nid if i not in k]
        else:
            child_ctx, child_pin = "sym", None
        _label(g, k, p, groups, child_ctx, child_pin, sep_th)


# ----------------------------------------------------------------------------- entry point


def tree(f, x, variables=None, *, sym_th: float = 1e-2, sep_th: float = 1e-2,
         inactive_th: float = 1e-4, output: int | None = None, n_samples: int = 1000,
         seed: int = 0) -> FunctionTree:
    """The modular tree of ``f`` on samples ``x`` (KAN 2.0's tree converter).

    ``f``: a torch function, an ``nn.Module`` (a KAN, an MLP), a sympy expression or formula
    text; ``x``: samples (batch, n) or ranges (see :func:`kanir.science.modularity.probe`);
    ``variables``: names. ``sym_th`` decides symmetric groups, ``sep_th`` the add/mul/gsep
    labels, ``inactive_th`` drops variables with a smaller median gradient share (listed as
    ``unused``). Exact formulas score ~1e-15 on true structure; for fitted networks raise the
    thresholds to their accuracy (e.g. 0.05) and read the scores with ``to_text(scores=True)``.
    """
    p = probe(f, x, variables, output=output, n_samples=n_samples, seed=seed, order=3)
    active, unused = _active(p, inactive_th)
    groups = _Groups(p, active, sym_th)
    strong, merged = _hierarchy(groups)
    g = _tree_graph(strong, merged, p.names)
    root = tuple(sorted(active))
    with torch.no_grad():
        _label(g, root, p, groups, "root", (), sep_th)
    meta = {"thresholds": {"sym_th": sym_th, "sep_th": sep_th, "inactive_th": inactive_th},
            "n_samples": len(p.f), "dtype": str(p.target.dtype).replace("torch.", ""),
            "note": p.note}
    return FunctionTree(g, root, p.names, tuple(p.names[i] for i in unused), meta)
