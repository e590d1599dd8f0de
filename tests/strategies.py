"""Hypothesis strategies for random KanGraphs, shared by the pass, backend, file and IR-text tests.

``layered_graphs()`` draws valid layered KANs: sum and mult nodes of several arities, and per
edge nothing, a spline, a symbolic function, both, or an inactive spline kept beside a symbolic
function. Options narrow it for a test (symbolic only, rounded constants, uniform knots) or widen
it with what the IR carries beyond the numbers (``extras``: exact constants in ``meta``, scores,
odd names, extra metadata). ``expression_graphs()`` draws compiled formulas (``level="expr"``).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from kanir.ir.activation import Activation, SplinePart, SymbolicPart
from kanir.ir.graph import KanGraph

#: Library functions that stay finite on any input (no exp: products of exp overflow).
FUNS = ("x", "x^2", "x^3", "sin", "cos", "sigmoid", "tanh", "gaussian", "abs", "arctan")
#: Edge kinds: "inactive" is an inactive spline kept beside a symbolic function (pykan's fixed
#: edge), "dormant" an inactive spline alone (a zero edge that unfix can restore).
EDGE_KINDS = ("none", "spline", "symbolic", "both", "inactive", "dormant")
#: Exact constants with their float values, as the formula frontend writes them.
EXACT = (("pi", math.pi), ("sqrt(2)/7919", math.sqrt(2) / 7919), ("1/3", 1 / 3), ("-2/5", -0.4))
#: Names that stress printing and parsing: spaces, quotes, backslashes, unicode, keywords.
ODD_NAMES = ("x y", 'q"uote', "back\\slash", "θ₀", "edge", "nan", "x", "1st", "tab\there", "")


@st.composite
def layered_graphs(draw, min_depth: int = 1, max_depth: int = 3, *, kinds=EDGE_KINDS,
                   funs=FUNS, max_width: int = 3, max_arity: int = 3, mult_in_output=False,
                   hidden_sum_optional=False, uniform_knots=True, rounded=False, extras=False):
    """A checked layered KanGraph.

    ``kinds``/``funs`` pick edge kinds and symbolic functions; ``mult_in_output`` lets the last
    layer end in a product; ``hidden_sum_optional`` allows a hidden layer of mult nodes only;
    ``uniform_knots=False`` draws sorted random knots; ``rounded`` rounds symbolic constants and
    affines to 3 decimals (for formula comparisons); ``extras`` adds exact constants, scores,
    odd names and extra metadata."""
    depth = draw(st.integers(min_depth, max_depth))
    width, arities = [[draw(st.integers(1, max_width)), 0]], [[]]
    for l in range(1, depth + 1):
        last = l == depth
        may_mult = (not last) or mult_in_output
        n_sum = draw(st.integers(0 if may_mult and hidden_sum_optional and not last else 1,
                                 max_width))
        n_mult = draw(st.integers(0 if n_sum else 1, (1 if last else 2) if may_mult else 0))
        width.append([n_sum, n_mult])
        arities.append([draw(st.integers(2, max_arity)) for _ in range(n_mult)])
    meta = {"dtype": "float64"}
    if extras:
        names = st.sampled_from(ODD_NAMES) | st.text(max_size=6)
        meta["input_names"] = draw(st.lists(names, min_size=width[0][0], max_size=width[0][0],
                                            unique=True))
        n_out = sum(width[-1])
        meta["output_names"] = draw(st.lists(names, min_size=n_out, max_size=n_out, unique=True))
    g = KanGraph.from_width(width, mult_arity=arities, **meta)
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))

    def number(lo=-1.0, hi=1.0) -> float:
        v = float(rng.uniform(lo, hi))
        return round(v, 3) if rounded else v

    lws = g.layer_widths()
    for l in range(depth):
        G, k = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        for i in range(lws[l].n_nodes):
            if uniform_knots:
                lo, hi = -rng.uniform(0.5, 2), rng.uniform(0.5, 2)
                grid = lo + (hi - lo) / G * np.arange(-k, G + k + 1)
            else:
                grid = np.sort(rng.uniform(-2, 2, G + 2 * k + 1))
            for j in range(lws[l + 1].n_subnodes):
                kind = draw(st.sampled_from(kinds))
                if kind == "none":
                    continue
                sp = sy = None
                if kind in ("spline", "both", "inactive", "dormant"):
                    sp = SplinePart(grid.copy(), rng.normal(0, 0.3, G + k), k,
                                    float(rng.normal(0, 0.5)), float(rng.uniform(0.5, 1.5)),
                                    "silu", kind not in ("inactive", "dormant"))
                if kind in ("symbolic", "both", "inactive"):
                    sy = SymbolicPart(draw(st.sampled_from(funs)), *(number() for _ in "abcd"))
                act = Activation(sp, sy)
                if extras and sy is not None and draw(st.booleans()):
                    text, value = draw(st.sampled_from(EXACT))
                    act.symbolic.c = value
                    act.meta = {"exact": {"c": text}}
                g.set_edge(l, i, j, act)
                if extras and draw(st.booleans()):
                    g.edge_attrs(l, i, j)["score"] = draw(st.floats(0, 1e3))
    for _, a in g.nx.nodes(data=True):
        if "scale" in a:
            bias = float(rng.normal(0, 0.2))
            a["scale"], a["bias"] = number(0.5, 1.5), round(bias, 3) if rounded else bias
            if extras and draw(st.integers(0, 3)) == 0:
                text, value = draw(st.sampled_from(EXACT))
                a["scale"], a["exact"] = value, {"scale": text}
    if extras:
        g.meta.update(draw(st.dictionaries(
            st.text(max_size=5).filter(lambda k: k not in g.meta),
            st.none() | st.booleans() | st.integers(-5, 5) | st.floats() | st.text(max_size=5)
            | st.lists(st.integers(0, 3), max_size=3)
            | st.tuples(st.floats(allow_nan=False), st.floats(allow_nan=False)), max_size=2)))
    return g.check()


def expression_graphs(max_depth: int = 2):
    """Expression-level graphs (``level="expr"``) compiled from random formulas."""
    from formula_strategies import formulas

    from kanir.frontend.compiler import compile_expression

    return formulas(max_depth=max_depth).map(lambda text: compile_expression(text, "x, y, z"))
