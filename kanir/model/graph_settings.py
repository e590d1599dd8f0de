"""``KAN.from_graph``'s keyword arguments: the spline settings a graph takes from the caller,
and a clear error for ``KAN()`` arguments that a given graph leaves no room for.

A graph's own splines keep their knots and order; ``grid``, ``k``, ``grid_range`` and
``base_fun`` set the graph's defaults for the splines it does not have yet (``perturb``,
``expand_*``, layers without a spline), and are refused where they contradict a spline the
graph already has (``refine`` moves existing splines onto another grid).
"""

from __future__ import annotations

from kanir.arguments import as_dtype, as_int, as_range, base_fun_name
from kanir.errors import ArgumentError
from kanir.ir.graph import KanGraph

#: ``KAN()`` arguments that build a fresh random network: a graph has its own structure and
#: parameters, so from_graph refuses them (with what to do instead).
INIT_ONLY = {
    "width": "the graph fixes the widths",
    "mult_arity": "the graph fixes the mult nodes and their arities",
    "noise_scale": "it sizes the random splines of a new network; for random splines on a graph "
                   "use model.perturb(mag=...)",
    "scale_base_mu": "it draws the residual scales of a new network; the graph has its own",
    "scale_base_sigma": "it draws the residual scales of a new network; the graph has its own",
    "sparse_init": "it masks the edges of a new network; the graph has its own edges",
    "input_names": "the graph names its inputs",
    "output_names": "the graph names its outputs",
}


def check_init_only(settings: dict) -> None:
    """Refuse ``KAN()`` arguments that have no meaning for a given graph, naming them."""
    bad = [k for k in settings if k in INIT_ONLY]
    if bad:
        why = "; ".join(f"{k}: {INIT_ONLY[k]}" for k in bad)
        raise ArgumentError(f"KAN.from_graph does not take {', '.join(bad)} ({why})")


def apply_settings(graph: KanGraph, grid=None, k=None, grid_range=None, base_fun=None,
                   dtype=None) -> tuple[KanGraph, str | None]:
    """(the graph, with the given spline defaults in a copy of it when any is given; the dtype
    name to lower with, None for the graph's own). Checked against the graph's splines."""
    dt = None if dtype is None else {"float32": "float32", "float64": "float64"}[
        str(as_dtype(dtype)).removeprefix("torch.")]
    new = {}
    if grid is not None:
        new["grid"] = as_int(grid, "grid (number of spline intervals)", 1)
    if k is not None:
        new["k"] = as_int(k, "k (spline order)", 1)
    if grid_range is not None:
        new["grid_range"] = as_range(grid_range, "grid_range")
    if base_fun is not None:
        new["base_fun"] = base_fun_name(base_fun)
    if not new:
        return graph, dt
    for l, i, j, act in graph.act_edges():
        sp = act.spline
        if sp is None:
            continue
        have = {"grid": sp.G, "k": sp.k, "base_fun": sp.base_fun}
        for key in ("grid", "k", "base_fun"):
            if key in new and have[key] != new[key]:
                hint = (f"; build with the graph's and move its splines with "
                        f"model.refine({new[key]}, x)" if key == "grid" else "")
                raise ArgumentError(f"KAN.from_graph: {key}={new[key]!r} but the graph's spline on "
                                    f"edge ({l},{i},{j}) has {key} {have[key]!r}{hint}")
    out = graph.copy()
    out.meta.update(new)
    return out, dt
