"""``auto_swap``: reorder the nodes of hidden layers so that strongly connected nodes sit close
together and modules show up as contiguous blocks; the function is unchanged.

Every node layer is laid out on [0, 1]: node i of a layer of width n sits at (i + 0.5) / n, and
a subnode sits where its node sits. This normalisation is what lets layers of different widths
be compared (pykan used the first hidden width for every layer). The connection cost is::

    cost = sum over activation edges (l, i, j) of score(l, i, j) * |pos(l, i) - pos(l + 1, j)|

with the Eq. 9 attribution scores. The search is block coordinate descent over hidden layers:
with its neighbours fixed, a layer's best arrangement is a linear assignment problem, solved
exactly (sum nodes among sum slots, mult nodes among mult slots, since sums come first), so each
step never raises the cost; sweeps repeat until nothing changes.

Examples
--------
>>> perms = find_swap(g, x)        # {layer: [old index for each new slot]}
>>> g2 = auto_swap(g, x)           # the same function, reordered
>>> connection_cost(g2) <= connection_cost(attribute(g, x))
True
"""

from __future__ import annotations

import numpy as np

from kanir.errors import PassError
from kanir.ir.graph import KanGraph

from ._common import as_int, owner_of, reorder_layer, require_layered, verified
from .attribution import score_arrays, scored

__all__ = ["auto_swap", "find_swap", "permute_layer", "connection_cost", "apply_permutations"]


def positions(n: int) -> np.ndarray:
    """Slot positions of a layer of ``n`` nodes on [0, 1]."""
    return (np.arange(n) + 0.5) / n


def _node_weights(graph: KanGraph) -> list[np.ndarray]:
    """C[l][i, m]: summed edge scores from node (l, i) to the subnodes of node (l+1, m)."""
    sc = score_arrays(graph)
    out = []
    for l in range(graph.depth):
        own = owner_of(graph, l + 1)
        C = np.zeros((graph.n_nodes(l), graph.n_nodes(l + 1)))
        np.add.at(C.T, own, sc.edge[l].T)
        out.append(C)
    return out


def _cost(C: list[np.ndarray], pos: list[np.ndarray]) -> float:
    return float(sum((c * np.abs(pos[l][:, None] - pos[l + 1][None, :])).sum()
                     for l, c in enumerate(C)))


def connection_cost(graph: KanGraph, x=None) -> float:
    """The connection cost of ``graph`` as laid out (scores from ``x`` or carried by it)."""
    require_layered(graph, "connection_cost")
    g = scored(graph, x, "connection_cost")
    widths = [g.n_nodes(l) for l in range(g.depth + 1)]
    return _cost(_node_weights(g), [positions(n) for n in widths])


def find_swap(graph: KanGraph, x=None, max_sweeps: int = 50) -> dict[int, list[int]]:
    """The arrangement auto_swap chooses: for each hidden layer, the old node index that goes to
    each slot (an identity list means the layer stays as it is)."""
    require_layered(graph, "find_swap")
    max_sweeps = as_int(max_sweeps, "max_sweeps", 1)
    g = scored(graph, x, "auto_swap")
    L = g.depth
    C = _node_weights(g)
    widths = [g.n_nodes(l) for l in range(L + 1)]
    # slot[l][i]: the slot of old node i; pos[l][i]: its position on [0, 1]
    slot = [np.arange(n) for n in widths]
    pos = [positions(n) for n in widths]
    groups = {l: _groups(g, l) for l in range(1, L)}
    best = _cost(C, pos)
    for _ in range(max_sweeps):
        for l in range(1, L):
            for members in groups[l]:
                slots = np.sort(slot[l][members])
                sp = positions(widths[l])[slots]
                M = np.zeros((len(members), len(slots)))
                for r, i in enumerate(members):
                    M[r] = (C[l - 1][:, i][:, None] * np.abs(sp[None, :] - pos[l - 1][:, None])
                            ).sum(axis=0)
                    M[r] += (C[l][i][:, None] * np.abs(sp[None, :] - pos[l + 1][:, None])).sum(0)
                    # prefer the current slot among equals, so ties never move a node
                    M[r, np.searchsorted(slots, slot[l][i])] -= 1e-12 * (1.0 + np.abs(M[r]).max())
                cols = _assign(M)
                slot[l][members] = slots[cols]
                pos[l] = positions(widths[l])[slot[l]]
        cost = _cost(C, pos)
        if cost >= best - 1e-15 * max(1.0, best):
            best = min(best, cost)
            break
        best = cost
    return {l: np.argsort(slot[l]).tolist() for l in range(1, L)}


def _groups(g: KanGraph, l: int) -> list[np.ndarray]:
    lw = g.layer_widths()[l]
    out = [np.arange(lw.n_sum), np.arange(lw.n_sum, lw.n_nodes)]
    return [m for m in out if len(m) > 1]


def _assign(cost: np.ndarray) -> np.ndarray:
    """Column for each row of a square cost matrix, minimising the total (Hungarian method with
    potentials, O(n^3), vectorised over columns)."""
    n = cost.shape[0]
    INF = np.inf
    u, v = np.zeros(n + 1), np.zeros(n + 1)
    p = np.zeros(n + 1, dtype=int)  # p[j]: row (1-based) matched to column j
    way = np.zeros(n + 1, dtype=int)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(n + 1, INF)
        used = np.zeros(n + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            free = ~used[1:]
            cur = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], INF)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    col = np.zeros(n, dtype=int)
    col[p[1:] - 1] = np.arange(n)
    return col


def permute_layer(graph: KanGraph, l: int, perm) -> KanGraph:
    """Reorder hidden layer l: slot s receives old node ``perm[s]``; the function is unchanged.

    Sum nodes must stay before mult nodes.
    """
    require_layered(graph, "permute_layer")
    L = graph.depth
    l = as_int(l, f"layer (a hidden layer 1..{L - 1})", 1, L - 1)
    perm = [int(p) for p in perm]
    n = graph.n_nodes(l)
    if sorted(perm) != list(range(n)):
        raise PassError(f"perm must be a permutation of 0..{n - 1} for layer {l}, got {perm}")
    n_sum = graph.layer_widths()[l].n_sum
    if any(p >= n_sum for p in perm[:n_sum]):
        raise PassError(f"perm {perm} would put a mult node before a sum node in layer {l}; "
                        f"sum nodes (0..{n_sum - 1}) must fill the first slots")
    return reorder_layer(graph, l, perm)


def apply_permutations(graph: KanGraph, perms: dict[int, list[int]]) -> KanGraph:
    """Apply :func:`permute_layer` for every {layer: perm} entry."""
    g = graph
    for l, perm in sorted(perms.items()):
        g = permute_layer(g, l, perm)
    return g


def auto_swap(graph: KanGraph, x=None, max_sweeps: int = 50) -> KanGraph:
    """The graph with hidden layers reordered to minimise the connection cost.

    Scores come from data ``x`` or from those the graph carries; the result carries them too
    (permuted with their nodes), so :func:`connection_cost` can be read off it directly.
    """
    g = scored(graph, x, "auto_swap")
    return verified(apply_permutations(g, find_swap(g, max_sweeps=max_sweeps)))
