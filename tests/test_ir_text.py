"""The textual IR: ``parse_ir(to_text(g))`` is ``g`` exactly, the text is stable and readable,
and bad text fails with a positioned IRSyntaxError."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import expression_graphs, layered_graphs

import kanir
from kanir import Activation, KanGraph, SplinePart, SymbolicPart
from kanir.cli.commands import main
from kanir.errors import GraphError, IRSyntaxError
from kanir.ir.io import save_graph
from kanir.ir.text import parse_ir, to_text

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ------------------------------------------------------------------------ strict comparison
def _exact(v):
    """A form of v whose == is exact: floats by repr (nan equals nan, -0.0 differs from 0.0),
    arrays with their dtype, tuples apart from lists, parts of activations field by field."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool | np.bool_):
        return ("bool", bool(v))
    if isinstance(v, int | np.integer):
        return ("int", int(v))
    if isinstance(v, float | np.floating):
        return ("float", repr(float(v)))
    if isinstance(v, list | tuple):
        return (type(v).__name__, tuple(_exact(x) for x in v))
    if isinstance(v, dict):
        return ("dict", tuple(sorted((k, _exact(x)) for k, x in v.items())))
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.str, v.shape, tuple(repr(x) for x in v.tolist()))
    if isinstance(v, Activation):
        return ("act", _exact(v.spline), _exact(v.symbolic), _exact(v.meta))
    if isinstance(v, SplinePart):
        return ("spline", _exact(np.asarray(v.grid)), _exact(np.asarray(v.coef)), _exact(v.k),
                _exact(v.scale_base), _exact(v.scale_sp), v.base_fun, _exact(v.active))
    if isinstance(v, SymbolicPart):
        return ("symbolic", v.fun, _exact(v.params))
    raise AssertionError(f"no exact form for {type(v).__name__}")


def assert_identical(a: KanGraph, b: KanGraph) -> None:
    """Level, metadata, nodes with every attribute, edges with activations and attributes."""
    assert a.level == b.level
    assert _exact(a.meta) == _exact(b.meta)
    assert set(a.nx.nodes) == set(b.nx.nodes)
    for n, attrs in a.nx.nodes(data=True):
        assert _exact(attrs) == _exact(dict(b.nx.nodes[n])), n
    assert set(a.nx.edges) == set(b.nx.edges)
    for u, v, attrs in a.nx.edges(data=True):
        assert _exact(attrs) == _exact(dict(b.nx.edges[u, v])), (u, v)


def test_the_strict_comparison_sees_what_same_ignores():
    g = kanir.compile("pi*x + sqrt(2)*y/7919")
    h = g.copy()
    h.edge_attrs(0, 0, 0)["act"].meta = {}
    assert not g.same(h)  # same() compares meta too (issue 11)
    with pytest.raises(AssertionError):
        assert_identical(g, h)
    h = g.copy()
    h.node(1, 0)["bias"] = -0.0
    with pytest.raises(AssertionError):
        assert_identical(g, h)


# ------------------------------------------------------------------------ round trips
@SETTINGS
@given(layered_graphs(extras=True, mult_in_output=True, hidden_sum_optional=True,
                      uniform_knots=False))
def test_layered_graphs_round_trip_exactly(g):
    text = to_text(g)
    back = parse_ir(text)
    assert_identical(g, back)
    assert to_text(back) == text
    assert g.to_text() == text


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expression_graphs())
def test_expression_graphs_round_trip_exactly(g):
    assert g.level == "expr"
    text = to_text(g)
    back = parse_ir(text)
    assert_identical(g, back)
    assert to_text(back) == text


def test_float32_models_keep_float32_arrays_bit_for_bit():
    model = kanir.KAN([2, [1, 1], 1], grid=3, seed=0, device="cpu", dtype=torch.float32)
    g = model.graph
    text = g.to_text()
    assert "= f32[" in text and "f64[" not in text
    back = parse_ir(text)
    assert_identical(g, back)
    assert back.edge(0, 1, 2).spline.coef.dtype == np.float32
    x = torch.linspace(-1, 1, 20, dtype=torch.float32).reshape(10, 2)
    rebuilt = kanir.KAN.from_graph(back, device="cpu")
    assert torch.equal(model(x), rebuilt(x))


def test_compiled_exact_constants_survive_the_text():
    g = kanir.compile("pi*x + sqrt(2)*y/7919")
    text = g.to_text()
    assert 'edge (0,0,0) = 3.141592653589793*x meta={"exact": {"c": "pi"}}' in text
    assert ('edge (0,1,0) = 0.00017858486707577915*x meta={"exact": {"c": "sqrt(2)/7919"}}'
            in text)
    x, y = sympy.symbols("x y")
    assert kanir.to_sympy(kanir.parse_ir(text)) == [sympy.pi * x + sympy.sqrt(2) * y / 7919]


def test_non_finite_numbers_print_and_read_back_unchecked():
    g = kanir.compile("sin(x) + y")
    g.set_edge(0, 0, 0, Activation(symbolic=SymbolicPart("sin", math.nan, -math.inf, math.inf,
                                                          -0.0)))
    g.node(1, 0)["bias"] = math.nan
    text = g.to_text()
    assert "edge (0,0,0) = inf*sin(nan*x - inf) - 0.0" in text
    assert "bias=nan" in text
    back = parse_ir(text, check=False)
    assert_identical(g, back)
    with pytest.raises(GraphError, match="non-finite bias"):
        parse_ir(text)


# ------------------------------------------------------------------------ the golden text
GOLDEN = """\
kanir-ir 1 layered
meta dtype = "float64"
meta grid = 5
meta k = 3
meta grid_range = (-1.0, 1.0)
meta base_fun = "silu"
meta input_names = ["q", "v"]
meta output_names = ["F"]

layer 0
  node 0 input
  node 1 input

layer 1
  node 0 output scale=1.0 bias=0.1
  subnode 0 -> 0 scale=1.0 bias=0.0
  edge (0,0,0) = 2.0*sin(3.0*x + 0.5) - 1.0 meta={"exact": {"b": "1/2"}}
  edge (0,1,0) = spline(G=1, k=1, range=[-1.0, 1.0], knots=@k0.1, coef=@c0.1.0, \
scale_base=0.5, scale_sp=1.0, base_fun="silu") score=0.75

arrays
  @k0.1 = f64[-3.0, -1.0, 1.0, 3.0]
  @c0.1.0 = f64[0.25, -0.125]
"""


def _tiny() -> KanGraph:
    g = KanGraph.from_width([2, 1], input_names=["q", "v"], output_names=["F"])
    g.set_edge(0, 0, 0, Activation(symbolic=SymbolicPart("sin", 3.0, 0.5, 2.0, -1.0),
                                   meta={"exact": {"b": "1/2"}}))
    g.set_edge(0, 1, 0, Activation(SplinePart(np.array([-3.0, -1.0, 1.0, 3.0]),
                                              np.array([0.25, -0.125]), k=1, scale_base=0.5)))
    g.edge_attrs(0, 1, 0)["score"] = 0.75
    g.node(1, 0)["bias"] = 0.1
    return g.check()


def test_golden_text_of_a_tiny_graph():
    assert to_text(_tiny()) == GOLDEN
    assert_identical(parse_ir(GOLDEN), _tiny())


def test_hand_written_text_with_comments_and_defaults():
    text = """
    # a hand-written graph: trivial constants and spline flags may be left out
    kanir-ir 1 layered   # header
    meta dtype = "float64"
    meta input_names = ["x"]
    meta output_names = ["y"]
    layer 0
      node 0 input
    layer 1
      node 0 output scale=1 bias=0.0   # an int scale stays an int
      subnode 0 -> 0 scale=1.0 bias=0.0

      edge (0,0,0) = (x - 2.5) + spline(k=1, knots=f64[-2.0, -1.0, 1.0, 2.0], coef=[0.5, 0.25])
    """
    g = parse_ir(text)
    act = g.edge(0, 0, 0)
    assert act.symbolic.fun == "x" and act.symbolic.params == (1.0, -2.5, 1.0, 0.0)
    assert (act.spline.k, act.spline.scale_base, act.spline.active) == (1, 1.0, True)
    assert act.spline.coef.tolist() == [0.5, 0.25]
    assert g.node(1, 0)["scale"] == 1 and type(g.node(1, 0)["scale"]) is int
    assert g.meta == {"dtype": "float64", "input_names": ["x"], "output_names": ["y"]}
    assert ("edge (0,0,0) = (x - 2.5) + spline(G=1, k=1, range=[-1.0, 1.0], knots=@k0.0"
            in g.to_text())


# ------------------------------------------------------------------------ errors
def _error(text: str) -> IRSyntaxError:
    with pytest.raises(IRSyntaxError) as info:
        parse_ir(text)
    return info.value


def test_syntax_error_names_line_and_column_with_a_caret():
    text = GOLDEN.replace("2.0*sin(3.0*x + 0.5)", "2.0*sin(3.0*x + )")
    e = _error(text)
    assert (e.line, e.column) == (17, 34)
    lines = str(e).split("\n")
    assert lines[0] == ("IR syntax error at line 17, column 34: unexpected ')'; expected a number")
    assert lines[1] == '    edge (0,0,0) = 2.0*sin(3.0*x + ) - 1.0 meta={"exact": {"b": "1/2"}}'
    assert lines[2] == "  " + " " * 33 + "^"
    assert isinstance(e, ValueError) and isinstance(e, kanir.KanirError)


def test_unknown_function_names_the_line_and_suggests():
    e = _error(GOLDEN.replace("2.0*sin(", "2.0*sinn("))
    assert (e.line, e.column) == (17, 22)
    assert str(e).startswith("IR syntax error at line 17, column 22: unknown symbolic function "
                             "'sinn'")
    assert "sin" in str(e).split("\n")[0]
    assert parse_ir(GOLDEN.replace("2.0*sin(", "2.0*sinn("), check=False).edge(0, 0, 0) \
        .symbolic.fun == "sinn"


@pytest.mark.parametrize("edit, line, message", [
    (("edge (0,1,0)", "edge (0,2,0)"), 18,
     "edge %n0.2 -> %s1.0 refers to the node %n0.2, which no statement defines"),
    (("coef=@c0.1.0", "coef=@c9"), 18, "array @c9 is not defined"),
    (("  edge (0,1,0)", "  edge (0,0,0) = x\n  edge (0,1,0)"), 18,
     "edge %n0.0 -> %s1.0 is given twice (first at line 17)"),
    (("  node 1 input", "  node 1 input\n  node 0 input"), 13,
     "node %n0.0 is defined twice (first at line 11)"),
    (("G=1,", "G=2,"), 18, "spline G=2 does not match its 4 knots (k=1 gives G=1)"),
    (("range=[-1.0, 1.0]", "range=[-1.0, 2.0]"), 18, "spline range=[-1.0, 2.0] does not match"),
    (("scale_sp=", "scale_spp="), 18, "spline has no field 'scale_spp'"),
    (("kanir-ir 1 layered", "kanir-ir 2 layered"), 1, "this kanir reads IR text version 1"),
    (("layer 0\n", ""), 10, "node index 0 needs a 'layer' line before it"),
    (("meta k = 3", "meta k = 3\nmeta k = 4"), 5, "metadata 'k' is given twice"),
])
def test_semantic_errors_name_the_line(edit, line, message):
    e = _error(GOLDEN.replace(*edit))
    assert e.line == line
    assert message in str(e).split("\n")[0]


def test_unprintable_values_are_graph_errors_not_crashes():
    g = _tiny()
    g.meta["obj"] = object()
    with pytest.raises(GraphError, match="cannot print a value of type object"):
        g.to_text()


def test_non_text_input_is_refused():
    with pytest.raises(IRSyntaxError, match="needs IR text"):
        parse_ir(b"kanir-ir 1 layered")


# ------------------------------------------------------------------------ the command line
def test_kanir_show_ir_prints_the_text(tmp_path, capsys):
    g = kanir.compile("pi*x + sqrt(2)*y/7919")
    path = tmp_path / "m.kanir"
    save_graph(g, path)
    assert main(["show", "--ir", str(path)]) == 0
    out = capsys.readouterr().out
    assert out == g.to_text()
    assert_identical(parse_ir(out), g)
    assert main(["show", "--ir", "--json", str(path)]) == 2
    assert "--ir prints the IR text alone" in capsys.readouterr().err


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(GOLDEN) - 1), st.integers(0, 3), st.sampled_from(
    list("()[]{},=+-*.@%#\"\\\n x0e") + ["nan", "inf", "edge", "node 0 sum", "layer 1", "->"]))
def test_damaged_text_reads_or_fails_with_a_kanir_error(pos, cut, insert):
    text = GOLDEN[:pos] + insert + GOLDEN[pos + cut:]
    try:
        g = parse_ir(text)
    except (IRSyntaxError, GraphError) as e:
        if isinstance(e, IRSyntaxError):
            assert str(e).startswith(f"IR syntax error at line {e.line}, column {e.column}: ") \
                or e.line == 1
        return
    assert parse_ir(to_text(g)).same(g)
