"""Checks that ``auto_symbolic`` did not quietly wipe a model.

With pykan's defaults the constant ``0`` beats any function whose R² is below about 0.996, so
every edge into an output can become ``0``: the output is then a constant and the formula says
nothing. :func:`cut_outputs` finds outputs that depended on the inputs before and do not after;
:func:`fit_losses` finds outputs whose share of unexplained variance jumped. The facade turns
both into a :class:`SymbolicCollapseWarning` and notes them in the report.
"""

from __future__ import annotations

import networkx as nx
import torch

from kanir.ir.graph import KanGraph, N

#: an output is flagged when the symbolic model leaves at least this share of the target's
#: variance unexplained ...
UNEXPLAINED_MIN = 0.01
#: ... and at least this many times the share the model left before.
JUMP_MIN = 10.0


class SymbolicCollapseWarning(UserWarning):
    """auto_symbolic cut an output off from every input, or made the model fit far worse."""


def _constant(act) -> bool:
    """True when an activation edge computes a constant (so nothing flows through it)."""
    if act.spline is not None and act.spline.active:
        return False
    sy = act.symbolic
    return sy is None or sy.fun in ("0", "zero") or sy.c == 0 or sy.a == 0


def input_dependence(graph: KanGraph) -> list[bool]:
    """Per output: whether some input reaches it through non-constant edges."""
    g = nx.DiGraph()
    for u, v, a in graph.nx.edges(data=True):
        act = a.get("act")
        if (act is not None and not _constant(act)) or (act is None and a.get("wire")):
            g.add_edge(u, v)
    inputs = {N(0, i) for i in range(graph.n_nodes(0))}
    L = graph.depth
    return [N(L, k) in g and bool(nx.ancestors(g, N(L, k)) & inputs)
            for k in range(graph.n_nodes(L))]


def cut_outputs(before: KanGraph, after: KanGraph) -> list[int]:
    """Outputs that depended on the inputs in ``before`` and depend on none in ``after``."""
    return [k for k, (b, a) in enumerate(zip(input_dependence(before), input_dependence(after)))
            if b and not a]


def fit_losses(before: torch.Tensor, after: torch.Tensor, target: torch.Tensor
               ) -> list[tuple[int, float, float]]:
    """(output, unexplained share before, after) for each output whose share of ``target``'s
    variance left unexplained (MSE / variance) rose to UNEXPLAINED_MIN or more and by a factor
    of JUMP_MIN or more. Outputs with a constant target are skipped."""
    flagged = []
    for k in range(target.shape[1]):
        y = target[:, k]
        var = float(y.var(unbiased=False))
        if not var > 0:
            continue
        u_before = float(((before[:, k] - y) ** 2).mean()) / var
        u_after = float(((after[:, k] - y) ** 2).mean()) / var
        if not (u_after < UNEXPLAINED_MIN or u_after < JUMP_MIN * u_before):  # NaN is flagged
            flagged.append((k, u_before, u_after))
    return flagged
