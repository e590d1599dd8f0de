"""Attribution scores (the paper's Eq. 9): how much each node and edge matters to the outputs.

Scores flow backward from the outputs. With ``E[l][i, j]`` the standard deviation over the data
of edge (l, i, j)'s activation and ``N[l+1][j]`` that of subnode j's input sum::

    B[l][i, j] = A_sub[l+1][j] * E[l][i, j] / N[l+1][j]       (edge score)
    A[l][i]    = sum_j B[l][i, j]                               (node score)

Output nodes start at 1 (for several outputs the scores are averaged over one backward pass per
output, as pykan does). Every subnode takes its node's score, so the subnodes of a mult node
inherit the mult node's score. An edge whose downstream is dead scores near zero however large
its own activation is, which is what makes these scores better than edge norms for pruning.

:func:`attribute` returns a copy of the graph with node/subnode attribute ``score`` and edge
attributes ``score``, ``std`` (E), ``mean`` and ``l1`` (mean absolute activation);
:func:`score_arrays` reads them back as arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kanir.errors import PassError
from kanir.ir.graph import KanGraph, N, S

from ._common import owner_of, require_layered, strip_analysis
from ._eval import evaluate

__all__ = ["attribute", "measure", "Measured", "neuron_attribution", "score_arrays", "has_scores",
           "Scores", "scored"]


@dataclass(frozen=True)
class Scores:
    """Scores as arrays. ``node[l]`` has one entry per node of layer l (0..L), ``subnode[l]`` one
    per subnode of layer l (``subnode[0]`` is empty), ``edge[l]`` has shape (n_l, n_sub[l+1])
    in kanir's (l, i, j) indexing; absent edges score 0."""

    node: list[np.ndarray]
    subnode: list[np.ndarray]
    edge: list[np.ndarray]

    @property
    def feature(self) -> np.ndarray:
        """The input nodes' scores (pykan's ``feature_score``)."""
        return self.node[0]


def attribute(graph: KanGraph, x, output=None, eps: float = 1e-4) -> KanGraph:
    """A copy of ``graph`` carrying Eq. 9 attribution scores measured on samples ``x``.

    ``output`` restricts the backward pass to one output (its index or name); by default every
    output counts and the scores are averaged over them. ``eps`` is added to every subnode's
    standard deviation so that dead subnodes do not divide by zero.
    """
    require_layered(graph, "attribute")
    m = measure(graph, x, output, eps)
    h = strip_analysis(graph.copy())
    for l in range(graph.depth + 1):
        for i, s in enumerate(m.node[l]):
            h.nx.nodes[N(l, i)]["score"] = float(s)
        for j, s in enumerate(m.subnode[l]):
            h.nx.nodes[S(l, j)]["score"] = float(s)
    for l in range(graph.depth):
        score, std, mean, l1 = m.edge[l], m.std[l], m.mean[l], m.l1[l]
        for _, i, j, _ in graph.act_edges(l):
            attrs = h.edge_attrs(l, i, j)
            attrs.update(score=float(score[i, j]), std=float(std[i, j]),
                         mean=float(mean[i, j]), l1=float(l1[i, j]))
    return h


@dataclass(frozen=True)
class Measured(Scores):
    """Scores plus the edge statistics :func:`attribute` records, per layer l, shape
    (n_l, n_sub[l+1]): ``std`` (E), ``mean`` and ``l1`` (mean absolute activation)."""

    std: list[np.ndarray]
    mean: list[np.ndarray]
    l1: list[np.ndarray]


def measure(graph: KanGraph, x, output=None, eps: float = 1e-4) -> Measured:
    """The numbers :func:`attribute` writes onto its copy, as arrays, without copying the graph
    (passes that only need the numbers, such as pruning, save a graph copy)."""
    require_layered(graph, "attribute")
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not eps >= 0:
        raise PassError(f"eps must be a number >= 0, got {eps!r}")
    acts = evaluate(graph, x)
    L = graph.depth
    queries = _queries(graph, output)
    A = np.eye(graph.n_nodes(L))[queries]  # (n_queries, n_nodes(L))
    node_all, sub_all, edge_all = _backward(graph, acts, A, L, eps)
    return Measured(node=[a.mean(axis=0) for a in node_all],
                    subnode=[np.zeros(0)] + [a.mean(axis=0) for a in sub_all[1:]],
                    edge=[a.mean(axis=0) for a in edge_all],
                    std=[a.edge.std(axis=0) for a in acts],
                    mean=[a.edge.mean(axis=0) for a in acts],
                    l1=[np.abs(a.edge).mean(axis=0) for a in acts])


def _backward(graph: KanGraph, acts, A: np.ndarray, l_end: int, eps: float):
    """Propagate query scores ``A`` (n_queries, n_nodes(l_end)) from node layer ``l_end`` back
    to the inputs; per query, node scores of layers 0..l_end, subnode scores of layers
    1..l_end (index 0 is an empty placeholder) and edge scores of layers 0..l_end-1."""
    n_q = A.shape[0]
    node = [np.zeros((n_q, 0))] * (l_end + 1)
    sub = [np.zeros((n_q, 0))] * (l_end + 1)
    edge = [np.zeros((n_q, 0, 0))] * l_end
    node[l_end] = A
    for l in range(l_end - 1, -1, -1):
        a = acts[l]
        E = a.edge.std(axis=0)
        Nsub = a.subnodes.std(axis=0)
        A_sub = A[:, owner_of(graph, l + 1)]
        sub[l + 1] = A_sub
        B = A_sub[:, None, :] * E[None] / (Nsub[None, None, :] + eps)
        A = B.sum(axis=2)
        edge[l] = B
        node[l] = A
    return node, sub, edge


def neuron_attribution(graph: KanGraph, x, l: int, out_score=None, eps: float = 1e-4
                       ) -> np.ndarray:
    """pykan's ``attribute(l)``: for every node of layer ``l``, how much each input contributes
    to it, shape (n_nodes(l), n_inputs).

    Row i starts the backward pass of Eq. 9 at node (l, i) alone with score ``out_score[i]``
    (default: the node's own attribution score from the whole model, as pykan does), so the
    rows of an unimportant node are small.
    """
    require_layered(graph, "neuron_attribution")
    L = graph.depth
    if isinstance(l, bool) or not isinstance(l, int | np.integer) or not 0 <= l <= L:
        raise PassError(f"layer l must be a node layer index in 0..{L}, got {l!r}")
    acts = evaluate(graph, x)
    n = graph.n_nodes(int(l))
    if out_score is None:
        node_all, _, _ = _backward(graph, acts, np.eye(graph.n_nodes(L)), L, eps)
        out_score = node_all[int(l)].mean(axis=0)
    out_score = np.asarray(out_score, dtype=np.float64).reshape(-1)
    if out_score.shape != (n,):
        raise PassError(f"out_score must have one entry per node of layer {l} ({n}), "
                        f"got shape {out_score.shape}")
    node_all, _, _ = _backward(graph, acts, np.diag(out_score), int(l), eps)
    return node_all[0]


def _queries(graph: KanGraph, output) -> list[int]:
    n_out = graph.n_nodes(graph.depth)
    if output is None:
        return list(range(n_out))
    if isinstance(output, str):
        names = graph.output_names
        if output not in names:
            raise PassError(f"no output named {output!r}; outputs are {names}")
        return [names.index(output)]
    if isinstance(output, bool) or not isinstance(output, int | np.integer) or not (
            -n_out <= output < n_out):
        raise PassError(f"output must be an output index in 0..{n_out - 1} or a name from "
                        f"{graph.output_names}, got {output!r}")
    return [int(output) % n_out]


def has_scores(graph: KanGraph) -> bool:
    """True when every node, subnode and activation edge carries a ``score`` attribute."""
    if any("score" not in a for _, a in graph.nx.nodes(data=True)):
        return False
    return all("score" in a for _, _, a in graph.nx.edges(data=True) if "act" in a)


def scored(graph: KanGraph, x, what: str) -> KanGraph:
    """``graph`` with scores: measured on ``x`` when given, else those it already carries."""
    if x is not None:
        return attribute(graph, x)
    if not has_scores(graph):
        raise PassError(f"{what} needs attribution scores: pass data x, or run "
                        "kanir.passes.attribution.attribute(graph, x) first")
    return graph


def score_arrays(graph: KanGraph) -> Scores:
    """The ``score`` attributes of a graph returned by :func:`attribute`, as arrays."""
    require_layered(graph, "score_arrays")
    if not has_scores(graph):
        raise PassError("the graph carries no attribution scores; run attribute(graph, x) first")
    lws = graph.layer_widths()
    L = len(lws) - 1
    node = [np.array([graph.node(l, i)["score"] for i in range(lws[l].n_nodes)]) for l in
            range(L + 1)]
    sub = [np.zeros(0)] + [np.array([graph.subnode(l, j)["score"] for j in
                                     range(lws[l].n_subnodes)]) for l in range(1, L + 1)]
    edge = []
    for l in range(L):
        e = np.zeros((lws[l].n_nodes, lws[l + 1].n_subnodes))
        for _, i, j, _ in graph.act_edges(l):
            e[i, j] = graph.edge_attrs(l, i, j)["score"]
        edge.append(e)
    return Scores(node, sub, edge)
