"""pykan's ``set_mode``: switch one edge between its spline ('n'), its symbolic part ('s'),
both ('sn'), or neither (any other mode). A pure pass: returns a new graph.

kanir keeps a switched-off spline on the edge (inactive), so 'n' or 'sn' later restores it;
an edge without a spline gets a zero one on its node's knots. 's' without a symbolic part sets
the zero function ``'0'`` (as pykan, whose default symbolic function is '0'); 'n' drops the
symbolic part. ``mask_n`` (pykan's spline weight in 'sn') scales the spline's residual and
spline scales, which is the same function.
"""

from __future__ import annotations

import numpy as np

from kanir.errors import PassError
from kanir.ir.activation import Activation, SymbolicPart
from kanir.ir.graph import KanGraph

from ._common import check_edge, verified, zero_edge

__all__ = ["set_mode"]


def set_mode(graph: KanGraph, l: int, i: int, j: int, mode: str, mask_n=None) -> KanGraph:
    """A copy of ``graph`` with edge (l, i, j) in ``mode`` ('n', 's', 'sn'/'ns', or off)."""
    l, i, j = check_edge(graph, l, i, j, "set_mode")
    if not isinstance(mode, str):
        raise PassError(f"mode must be 'n', 's' or 'sn' (any other string turns the edge off), "
                        f"got {mode!r}")
    spline_on = mode in ("n", "sn", "ns")
    symbolic_on = mode in ("s", "sn", "ns")
    weight = 1.0
    if mask_n is not None and mode in ("sn", "ns"):
        if isinstance(mask_n, bool) or not isinstance(mask_n, int | float | np.number) \
                or not np.isfinite(float(mask_n)):
            raise PassError(f"mask_n must be a finite number, got {mask_n!r}")
        weight = float(mask_n)
    old = graph.edge(l, i, j)
    act = old.copy() if old is not None else Activation()
    act.meta.pop("exact", None)
    if spline_on and act.spline is None:
        act.spline = zero_edge(graph, l, i).spline
    if act.spline is not None:
        act.spline.active = spline_on and weight != 0
        if act.spline.active and weight != 1.0:
            act.spline.scale_base *= weight
            act.spline.scale_sp *= weight
    if symbolic_on and act.symbolic is None:
        act.symbolic = SymbolicPart("0")
    elif not symbolic_on:
        act.symbolic = None
    h = graph.copy()
    h.set_edge(l, i, j, act if (act.spline is not None or act.symbolic is not None) else None)
    return verified(h)
