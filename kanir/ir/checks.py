"""Validation of KanGraph invariants: every problem becomes one sentence naming where it is."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np

from kanir.errors import LibraryError
from kanir.ir.activation import Activation
from kanir.ir.graph import edge_items
from kanir.ir.library import LIBRARY

NODE_KINDS = {"input", "sum", "mult", "output", "subnode"}
_NUMBER = (int, float, np.floating, np.integer)


def graph_problems(graph) -> list[str]:
    """All inconsistencies of a KanGraph (layered or expression level)."""
    probs: list[str] = []
    g = graph.nx
    for key in ("input_names", "output_names", "dtype"):
        if key not in graph.meta:
            probs.append(f"metadata lacks {key!r}")
    if graph.meta.get("dtype") not in ("float32", "float64"):
        probs.append(f"metadata dtype must be 'float32' or 'float64', got {graph.meta.get('dtype')!r}")
    for n, a in g.nodes(data=True):
        if a.get("kind") not in NODE_KINDS:
            probs.append(f"node {n} has unknown kind {a.get('kind')!r}")
        for key in ("scale", "bias"):
            if key in a and not _finite_number(a[key]):
                probs.append(f"node {n} has a non-finite {key} {a[key]!r}")
    acts = [(u, v, a["act"]) for u, v, a in edge_items(g) if "act" in a]
    suspects, grids_shared = _suspect_activations(acts)
    for u, v, act in suspects:
        probs += [f"edge {u}->{v}: {p}" for p in activation_problems(act)]
    if graph.level != "layered" or not _forward_only(g):
        if not nx.is_directed_acyclic_graph(g):
            probs.append("the graph has a cycle")
    if graph.level == "layered":
        probs += _layered_problems(graph, grids_shared)
    else:
        probs += _expression_problems(graph)
    return probs


def _forward_only(g) -> bool:
    """Layered graphs are acyclic when every edge goes node layer l -> subnode layer l+1 or
    subnode -> node of the same layer (the layered checks report other edges)."""
    for u, nbrs in g._succ.items():
        if not nbrs:
            continue
        if not (isinstance(u, tuple) and len(u) == 3 and u[0] in ("n", "s")):
            return False
        want = ("s", u[1] + 1) if u[0] == "n" else ("n", u[1])
        for v in nbrs:
            if not (type(v) is tuple and len(v) == 3 and v[0] == want[0] and v[1] == want[1]):
                return False
    return True


def _suspect_activations(acts: list) -> tuple[list, bool]:
    """The activations that may have a problem, found with vectorised checks (one array
    operation per layer's splines); :func:`activation_problems` then explains each. Clean
    graphs never reach the per-edge checks, which is what keeps check() fast. Also whether the
    splines of each layer visibly share G, k and one grid per source node (False: let
    :func:`_shared_grid_problems` look edge by edge)."""
    bad: set[int] = set()
    names: dict[str, bool] = {}
    params, owners, groups = [], [], {}
    for n, (u, _, act) in enumerate(acts):
        if type(act) is not Activation and not isinstance(act, Activation):
            bad.add(n)
            continue
        s = act.symbolic
        if s is not None:
            ok = names.get(s.fun)
            if ok is None:
                try:
                    LIBRARY.canonical_name(s.fun)
                    ok = True
                except (LibraryError, TypeError):
                    ok = False
                names[s.fun] = ok
            if not ok:
                bad.add(n)
            params.append(s.params)
            owners.append(n)
        if act.spline is not None:
            groups.setdefault(u[1] if type(u) is tuple and len(u) == 3 else None, []).append(n)
    if params:
        kinds = {type(v) for row in params for v in row}
        try:
            finite = np.isfinite(np.asarray(params, dtype=float)).all(axis=1)
            bad.update(owners[m] for m in np.nonzero(~finite)[0])
        except (TypeError, ValueError):
            bad.update(owners)
        if not all(issubclass(t, _NUMBER) for t in kinds):
            bad.update(o for o, row in zip(owners, params)
                       if not all(isinstance(v, _NUMBER) for v in row))
    shared = None not in groups
    for members in groups.values():
        sps = [acts[n][2].spline for n in members]
        ks = {sp.k for sp in sps}
        scale_types = {type(sp.scale_base) for sp in sps} | {type(sp.scale_sp) for sp in sps}
        k = next(iter(ks))
        try:
            if (len(ks) != 1 or type(k) is not int or k < 1
                    or not all(issubclass(t, _NUMBER) for t in scale_types)):
                raise ValueError
            raw = np.stack([sp.grid for sp in sps])
            coef = np.stack([sp.coef for sp in sps]).astype(float)
            grid = raw.astype(float)
            if (raw.ndim != 2 or coef.ndim != 2 or raw.shape[1] != coef.shape[1] + k + 1
                    or raw.shape[1] - 2 * k - 1 < 1):
                raise ValueError
            scales = np.array([[sp.scale_base for sp in sps], [sp.scale_sp for sp in sps]],
                              dtype=float).T
        except (TypeError, ValueError):
            bad.update(members)
            shared = False
            continue
        ok = (np.isfinite(grid).all(axis=1) & (np.diff(grid, axis=1) > 0).all(axis=1)
              & np.isfinite(coef).all(axis=1) & np.isfinite(scales).all(axis=1))
        bad.update(members[m] for m in np.nonzero(~ok)[0])
        if shared:
            first: dict = {}
            src = [first.setdefault(acts[n][0][2], m) for m, n in enumerate(members)]
            shared = bool((raw[src] == raw).all())
    return [acts[n] for n in sorted(bad)], shared and not bad


def _finite_number(v) -> bool:
    return isinstance(v, int | float | np.floating | np.integer) and math.isfinite(float(v))


def activation_problems(act) -> list[str]:
    if not isinstance(act, Activation):
        return [f"'act' must be an Activation, got {type(act).__name__}"]
    probs = []
    s = act.symbolic
    if s is not None:
        try:
            LIBRARY.canonical_name(s.fun)
        except LibraryError as e:
            probs.append(str(e))
        for name, v in zip("abcd", s.params):
            if not _finite_number(v):
                probs.append(f"symbolic parameter {name}={v!r} is not a finite number")
    sp = act.spline
    if sp is not None:
        grid, coef = np.asarray(sp.grid), np.asarray(sp.coef)
        if not isinstance(sp.k, int) or sp.k < 1:
            probs.append(f"spline order k must be an int >= 1, got {sp.k!r}")
        elif grid.ndim != 1 or coef.ndim != 1 or len(grid) != len(coef) + sp.k + 1:
            probs.append(f"spline has {grid.size} knots and {coef.size} coefficients; with k={sp.k} "
                         f"it needs len(grid) == len(coef) + k + 1")
        elif sp.G < 1:
            probs.append(f"spline grid has G={sp.G} intervals; it needs at least 1")
        if grid.size and not np.all(np.isfinite(grid)):
            probs.append("spline grid has non-finite knots")
        elif grid.ndim == 1 and np.any(np.diff(grid) <= 0):
            probs.append("spline grid must be strictly increasing")
        if coef.size and not np.all(np.isfinite(coef)):
            probs.append("spline coefficients contain NaN or inf")
        for name in ("scale_base", "scale_sp"):
            if not _finite_number(getattr(sp, name)):
                probs.append(f"spline {name} is not a finite number")
    return probs


def _layered_problems(graph, grids_shared: bool = False) -> list[str]:
    g = graph.nx
    probs: list[str] = []
    by_layer: dict[int, list] = {}
    subs: dict[int, list] = {}
    for n, a in g.nodes(data=True):
        if not (isinstance(n, tuple) and len(n) == 3 and n[0] in ("n", "s")):
            probs.append(f"node id {n!r} is not ('n', layer, index) or ('s', layer, index)")
            continue
        if a.get("layer") != n[1] or a.get("index") != n[2]:
            probs.append(f"node {n} has layer/index attributes {a.get('layer')}/{a.get('index')}")
        (subs if n[0] == "s" else by_layer).setdefault(n[1], []).append(n[2])
    if probs:
        return probs
    if not by_layer:
        return ["the graph has no nodes"]
    L = max(by_layer)
    for l in range(L + 1):
        idx = sorted(by_layer.get(l, []))
        if idx != list(range(len(idx))) or not idx:
            probs.append(f"layer {l} node indices are {idx}, expected 0..n-1 with n >= 1")
    for l, idx in subs.items():
        if sorted(idx) != list(range(len(idx))):
            probs.append(f"layer {l} subnode indices are {sorted(idx)}, expected 0..n-1")
        if l == 0:
            probs.append("layer 0 (inputs) cannot have subnodes")
    n_in, n_out = len(by_layer.get(0, [])), len(by_layer.get(L, []))
    names_in, names_out = graph.meta.get("input_names", []), graph.meta.get("output_names", [])
    if len(names_in) != n_in:
        probs.append(f"{len(names_in)} input names for {n_in} input nodes")
    if len(names_out) != n_out:
        probs.append(f"{len(names_out)} output names for {n_out} output nodes")
    for what, names in (("input", names_in), ("output", names_out)):
        if len(set(names)) != len(names):
            probs.append(f"{what} names are not unique: {names}")
    for l in range(L + 1):
        probs += _layer_node_problems(g, l, L, len(by_layer.get(l, [])), len(subs.get(l, [])))
    for u, v, a in edge_items(g):
        if a.get("wire"):
            continue
        if "act" not in a:
            probs.append(f"edge {u}->{v} is neither a wire nor an activation edge")
        elif not (u[0] == "n" and v[0] == "s" and v[1] == u[1] + 1):
            probs.append(f"activation edge {u}->{v} must go from node layer l to subnode layer l+1")
    if not grids_shared:
        probs += _shared_grid_problems(graph)
    return probs


def _layer_node_problems(g, l: int, L: int, n_nodes: int, n_subs: int) -> list[str]:
    probs = []
    kinds = [g.nodes[("n", l, i)]["kind"] for i in range(n_nodes)]
    if l == 0:
        if any(k != "input" for k in kinds):
            probs.append(f"layer 0 nodes must all be 'input', got {kinds}")
    else:
        adder = "output" if l == L else "sum"
        where = "the output layer" if l == L else f"hidden layer {l}"
        if any(k not in (adder, "mult") for k in kinds):
            probs.append(f"{where} nodes must be {adder!r} or 'mult', got {kinds}")
        elif "mult" in kinds and adder in kinds[kinds.index("mult"):]:
            probs.append(f"layer {l} lists a {adder} node after a mult node; {adder} nodes come first")
    if l == 0:
        for i in range(n_nodes):
            if g.in_degree(("n", 0, i)):
                probs.append(f"input node ('n', 0, {i}) has incoming edges")
        return probs
    used = 0
    for i, kind in enumerate(kinds):
        node = ("n", l, i)
        srcs = sorted(p[2] for p in g.predecessors(node) if g.edges[p, node].get("wire"))
        if kind == "mult":
            ar = g.nodes[node].get("arity")
            if not isinstance(ar, int) or ar < 2:
                probs.append(f"mult node {node} has arity {ar!r}; it must be an int >= 2")
                continue
            expect = list(range(used, used + ar))
        else:
            expect = [used]
        if srcs != expect:
            probs.append(f"node {node} ({kind}) is wired to subnodes {srcs}, expected {expect}")
        used += len(expect)
    if used != n_subs:
        probs.append(f"layer {l} has {n_subs} subnodes but its nodes consume {used}")
    return probs


def _shared_grid_problems(graph) -> list[str]:
    """Splines leaving one node share one knot vector (the torch backend stores a grid per node)
    and a layer has one G and k. Compared per layer with one array operation; only a layer
    that fails is walked edge by edge (in (l, i, j) order) to name the edges."""
    rows: dict[int, list] = {}
    for u, v, a in edge_items(graph.nx):
        act = a.get("act")
        if act is not None and act.spline is not None:
            rows.setdefault(u[1], []).append((u[2], v[2], act.spline))
    for edges in rows.values():
        try:
            grids = np.stack([r[2].grid for r in edges])
            gks = {(r[2].G, r[2].k) for r in edges}
        except (ValueError, TypeError):
            break
        nodes = [r[0] for r in edges]
        first: dict[int, int] = {}
        for m, i in enumerate(nodes):
            first.setdefault(i, m)
        if len(gks) != 1 or not (grids[[first[i] for i in nodes]] == grids).all():
            break
    else:
        return []
    probs = []
    first_grid: dict[tuple, np.ndarray] = {}
    layer_gk: dict[int, tuple] = {}
    for l, i, j, act in graph.act_edges():
        sp = act.spline
        if sp is None:
            continue
        gk = (sp.G, sp.k)
        if layer_gk.setdefault(l, gk) != gk:
            probs.append(f"edge ({l},{i},{j}) has G={sp.G}, k={sp.k} but layer {l} uses "
                         f"G={layer_gk[l][0]}, k={layer_gk[l][1]}")
            continue
        ref = first_grid.setdefault((l, i), np.asarray(sp.grid))
        if ref.shape != np.shape(sp.grid) or not np.array_equal(ref, sp.grid):
            probs.append(f"edge ({l},{i},{j}) has a different spline grid from the other edges "
                         f"leaving node ({l},{i})")
    return probs


def _expression_problems(graph) -> list[str]:
    g = graph.nx
    probs = []
    for n, a in g.nodes(data=True):
        k, indeg = a.get("kind"), g.in_degree(n)
        if k == "input" and indeg:
            probs.append(f"input node {n} has incoming edges")
        if k == "mult" and indeg < 2:
            probs.append(f"mult node {n} has {indeg} inputs; it needs at least 2")
        if k == "output" and g.out_degree(n):
            probs.append(f"output node {n} has outgoing edges")
        if k in ("sum", "output") and indeg == 0:
            probs.append(f"{k} node {n} has no inputs")
    return probs


def graphs_equal(a, b) -> bool:
    """Exact equality of everything a graph holds: level, metadata (every key), nodes and edges
    with all their attributes (exact constants, scores, user data), and activations including
    their ``meta``. Lists and tuples compare alike (a file stores both as JSON arrays)."""
    if a.level != b.level or set(a.nx.nodes) != set(b.nx.nodes):
        return False
    if set(a.nx.edges) != set(b.nx.edges):
        return False
    if not same_value(dict(a.meta), dict(b.meta)):
        return False
    for n, attrs in a.nx.nodes(data=True):
        if not same_value(attrs, b.nx.nodes[n]):
            return False
    for u, v, attrs in a.nx.edges(data=True):
        oa = b.nx.edges[u, v]
        if set(attrs) != set(oa):
            return False
        for key, val in attrs.items():
            if key == "act":
                if not (isinstance(oa[key], Activation) and val.same(oa[key])
                        and same_value(val.meta, oa[key].meta)):
                    return False
            elif not same_value(val, oa[key]):
                return False
    return True


def same_value(x, y) -> bool:
    """Exact equality of attribute values: dicts by keys and values, lists/tuples elementwise,
    arrays by shape and values, numbers by value (NaN equals NaN), anything else by ==."""
    if isinstance(x, dict) or isinstance(y, dict):
        return (isinstance(x, dict) and isinstance(y, dict) and set(x) == set(y)
                and all(same_value(x[k], y[k]) for k in x))
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return np.shape(x) == np.shape(y) and bool(np.array_equal(x, y, equal_nan=_floaty(x)))
    if isinstance(x, list | tuple) or isinstance(y, list | tuple):
        return (isinstance(x, list | tuple) and isinstance(y, list | tuple) and len(x) == len(y)
                and all(same_value(p, q) for p, q in zip(x, y)))
    if isinstance(x, float | np.floating) and isinstance(y, float | np.floating):
        return x == y or (math.isnan(x) and math.isnan(y))
    if isinstance(x, bool) != isinstance(y, bool):
        return False
    try:
        return bool(x == y)
    except (TypeError, ValueError):
        return False


def _floaty(x) -> bool:
    return np.asarray(x).dtype.kind in "fc"
