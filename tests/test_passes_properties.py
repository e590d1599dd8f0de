"""Property tests over random layered KANs: every pass leaves its input untouched and returns a
graph that passes ``check()``; function-preserving passes keep the outputs."""

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import layered_graphs

from kanir.backends.torch import lower
from kanir.ir.graph import KanGraph
from kanir.passes.attribution import attribute, score_arrays
from kanir.passes.augment import augment_input
from kanir.passes.expand import expand_depth, expand_width, perturb
from kanir.passes.modules import module
from kanir.passes.prune import prune, prune_edge, prune_input, prune_node, remove_edge
from kanir.passes.swap import auto_swap

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUNS = ["x", "sin", "tanh", "x^2", "cos"]


def graphs(min_depth=1, max_depth=3):
    """Layered graphs with sums and mults, spline/symbolic/both edges and inactive splines."""
    return layered_graphs(min_depth, max_depth, funs=FUNS)


def _identical(a: KanGraph, b: KanGraph) -> bool:
    """Exactly equal, analysis attributes and metadata included."""
    if not a.same(b) or a.meta != b.meta:
        return False
    if any(dict(a.nx.nodes[n]) != dict(b.nx.nodes[n]) for n in a.nx.nodes):
        return False
    for u, v, attrs in a.nx.edges(data=True):
        other = b.nx.edges[u, v]
        if {k: x for k, x in attrs.items() if k != "act"} != {
                k: x for k, x in other.items() if k != "act"}:
            return False
    return True


def _x(g, n=40, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, g.n_nodes(0)))


def _y(g, x):
    with torch.no_grad():
        return lower(g)(torch.as_tensor(x)).numpy()


def _same_function(a, b, x):
    ya, yb = _y(a, x), _y(b, x)
    return np.allclose(ya, yb, rtol=1e-9, atol=1e-9 * (1 + np.abs(ya).max()))


def _pure(pass_fn, g):
    before = g.copy()
    out = pass_fn(g)
    assert _identical(g, before), "the pass modified its input"
    assert out is not g
    out.check()
    return out


@SETTINGS
@given(graphs(min_depth=2), st.data())
def test_expand_width(g, data):
    l = data.draw(st.integers(1, g.depth - 1))
    kind = data.draw(st.sampled_from(["sum", "mult"]))
    n, ar = data.draw(st.integers(1, 3)), data.draw(st.integers(2, 3))
    out = _pure(lambda h: expand_width(h, l, n, kind, ar), g)
    assert out.n_nodes(l) == g.n_nodes(l) + n
    assert _same_function(out, g, _x(g))


@SETTINGS
@given(graphs(), st.data())
def test_expand_depth(g, data):
    layer = data.draw(st.one_of(st.none(), st.integers(0, g.depth)))
    out = _pure(lambda h: expand_depth(h, layer), g)
    assert out.depth == g.depth + 1 and _same_function(out, g, _x(g))


@SETTINGS
@given(graphs(), st.sampled_from(["non-intrusive", "minimal", "all"]),
       st.floats(0, 1), st.integers(0, 10))
def test_perturb(g, mode, mag, seed):
    out = _pure(lambda h: perturb(h, mag=mag, mode=mode, seed=seed), g)
    if mode == "non-intrusive":
        assert _same_function(out, g, _x(g))
    if mode == "all":
        lws = g.layer_widths()
        assert sum(1 for _ in out.act_edges()) == sum(
            lws[l].n_nodes * lws[l + 1].n_subnodes for l in range(g.depth))


@SETTINGS
@given(graphs(), st.data())
def test_module(g, data):
    start = data.draw(st.integers(0, g.depth - 1))
    n_layers = data.draw(st.integers(1, g.depth - start))
    groups = []
    for p in range(n_layers):
        l = start + p
        for n in (g.n_nodes(l), g.layer_widths()[l + 1].n_subnodes):
            idx = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
            neg = data.draw(st.booleans())
            groups.append("[" + ",".join(str(i - n if neg else i) for i in idx) + "]")
    spec = "->".join(groups)
    out = _pure(lambda h: module(h, start, spec), g)
    assert {e[:3] for e in out.act_edges()} <= {e[:3] for e in g.act_edges()}


@SETTINGS
@given(graphs())
def test_attribute(g):
    out = _pure(lambda h: attribute(h, _x(h)), g)
    s = score_arrays(out)
    for arr in s.node + s.subnode + s.edge:
        assert np.all(np.isfinite(arr)) and np.all(arr >= 0)


@SETTINGS
@given(graphs(), st.floats(0, 0.5), st.sampled_from(["edge", "node", "input", "all", "topk"]))
def test_prune(g, th, which):
    x = _x(g)
    fns = {"edge": lambda h: prune_edge(h, x, threshold=th),
           "node": lambda h: (prune_node(h, x, threshold=th) if h.depth > 1
                              else prune_edge(h, x, threshold=th)),
           "input": lambda h: prune_input(h, x, threshold=th),
           "topk": lambda h: prune_input(h, x=x, top_k=1),
           "all": lambda h: prune(h, x, th, th)}
    out = _pure(fns[which], g)
    assert set(out.input_names) <= set(g.input_names) and out.output_names == g.output_names
    # scores measured on the graph may be reused: the scored copy is a fresh object each time
    scored = attribute(g, x)
    _pure(lambda h: prune_edge(h, threshold=th), scored)


@SETTINGS
@given(graphs())
def test_auto_swap(g):
    x = _x(g)
    out = _pure(lambda h: auto_swap(h, x), g)
    assert _same_function(out, g, x)


@SETTINGS
@given(graphs(max_depth=2))
def test_augment_and_remove_edge(g):
    names = g.input_names
    out = _pure(lambda h: augment_input(h, names, {"aux": "+".join(names)}), g)
    xa = np.concatenate([_x(g)[:, :1], _x(g)], axis=1)  # pykan's order: auxiliary inputs first
    assert np.allclose(_y(out, xa), _y(g, _x(g)), rtol=1e-12, atol=1e-12)
    edges = list(g.act_edges())
    if edges:
        l, i, j, _ = edges[0]
        out = _pure(lambda h: remove_edge(h, l, i, j, keep_symbolic=False), g)
        assert out.edge(l, i, j) is None
