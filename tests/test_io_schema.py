"""Damaged model files never load with a changed meaning: every field of graph.json and
arrays.npz is checked against kanir/ir/io_schema.py, and anything else is a ModelFileError."""

from __future__ import annotations

import copy
import io
import json
import math
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import expression_graphs, layered_graphs

import kanir
from kanir.errors import ModelFileError
from kanir.frontend.compiler import compile_expression
from kanir.ir.io import graph_from_bytes, graph_to_bytes


def _layered():
    """Spline, symbolic and mult edges, an exact constant, names, float64."""
    m = kanir.KAN([2, [1, 1], 1], grid=4, seed=0, device="cpu", dtype=torch.float64,
                  input_names=["q", "v"], output_names=["F"])
    g = m.graph
    g.set_edge(0, 0, 0, kanir.Activation.symbolic_fn("sin", 2.0, 0.5, 1.5, -0.25))
    return g


LAYERED = _layered()
EXPR = compile_expression("x*sin(y)/3 + z")
LAYERED_BYTES, EXPR_BYTES = graph_to_bytes(LAYERED), graph_to_bytes(EXPR)


def _parts(data: bytes) -> tuple[dict, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return json.loads(z.read("graph.json")), z.read("arrays.npz")


def _pack(graph_json: str | bytes, arrays: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("graph.json", graph_json)
        z.writestr("arrays.npz", arrays)
    return out.getvalue()


def _edited(edit, data: bytes = LAYERED_BYTES) -> bytes:
    doc, arrays = _parts(data)
    edit(doc)
    return _pack(json.dumps(doc), arrays)


def _symbolic_edge(doc) -> dict:
    return next(e for e in doc["edges"] if "symbolic" in e.get("act", {}))


def _spline_edge(doc) -> dict:
    return next(e for e in doc["edges"] if "spline" in e.get("act", {}))


def _node(doc, kind) -> dict:
    return next(n for n in doc["nodes"] if n["attrs"]["kind"] == kind)


# Each damage loaded silently before (the first five are from issue 10), with another meaning.
DAMAGE = {
    "params of 2 numbers": (lambda d: _symbolic_edge(d)["act"]["symbolic"].update(params=[2, 0.5]),
                            r"field graph\.edges\[\d+\]\.act\.symbolic\.params must be a list of "
                            r"4 items, got \[2, 0\.5\]"),
    "level banana": (lambda d: d.update(level="banana"),
                     r"field graph\.level must be one of 'layered', 'expr', got 'banana'"),
    "duplicated edge record": (lambda d: d["edges"].append(copy.deepcopy(_symbolic_edge(d))),
                               r"field graph\.edges\[\d+\] repeats the edge \['n', 0, 0\] -> "
                               r"\['s', 1, 0\]"),
    "meta.k = -1": (lambda d: d["meta"].update(k=-1),
                    r"field graph\.meta\.k must be an integer >= 1, got -1"),
    "edges of a wrong type": (lambda d: d.update(edges="x"),
                              r"field graph\.edges must be a list, got 'x'"),
    "misspelt symbolic key": (lambda d: _symbolic_edge(d)["act"].update(
        symbolik=_symbolic_edge(d)["act"].pop("symbolic")),
        r"field graph\.edges\[\d+\]\.act has an unknown key 'symbolik'"),
    "edge to a missing node": (lambda d: _spline_edge(d).update(v=["s", 1, 9]),
                               r"field graph\.edges\[\d+\]\.v refers to node \['s', 1, 9\], which is not "
                               r"among the nodes"),
    "arity on a sum node": (lambda d: _node(d, "subnode")["attrs"].update(arity=2),
                            r"field graph\.nodes\[\d+\]\.attrs\.arity is set on a subnode node"),
    "mult without arity": (lambda d: _node(d, "mult")["attrs"].pop("arity"),
                           r"field graph\.nodes\[\d+\]\.attrs\.arity is missing"),
    "string scale": (lambda d: _node(d, "output")["attrs"].update(scale="1"),
                     r"field graph\.nodes\[\d+\]\.attrs\.scale must be a number, got '1'"),
    "infinite bias": (lambda d: _node(d, "output")["attrs"].update(bias=math.inf),
                      r"field graph\.nodes\[\d+\]\.attrs\.bias must be a finite number, got inf"),
    "bool spline flag as int": (lambda d: _spline_edge(d)["act"]["spline"].update(active=1),
                                r"\.act\.spline\.active must be true or false, got 1"),
    "unknown base function": (lambda d: _spline_edge(d)["act"]["spline"].update(base_fun="relu"),
                              r"\.act\.spline\.base_fun must be one of 'gelu', 'identity', "
                              r"'silu', 'tanh', 'zero', got 'relu'"),
    "reversed grid range": (lambda d: d["meta"].update(grid_range=[1, -1]),
                            r"field graph\.meta\.grid_range must be \[LOW, HIGH\] with LOW < HIGH"),
    "repeated input name": (lambda d: d["meta"].update(input_names=["q", "q"]),
                            r"field graph\.meta\.input_names must be a list without repeated"),
    "expression node id in a layered file": (lambda d: _node(d, "input").update(id=["v", 0]),
                                             r"field graph\.nodes\[\d+\]\.id must be a node id starting "
                                             r"with 'n' or 's', got \['v', 0\]"),
    "wire and activation at once": (lambda d: _spline_edge(d)["attrs"].update(wire=True),
                                    r"field graph\.edges\[\d+\] must be either a wire \(attrs\.wire true\)"
                                    r" or an activation \(act\), not both"),
}


@pytest.mark.parametrize("name", list(DAMAGE))
def test_damaged_field_is_a_model_file_error_naming_it(name):
    edit, message = DAMAGE[name]
    with pytest.raises(ModelFileError, match=message):
        graph_from_bytes(_edited(edit))


@pytest.mark.parametrize("version", [None, "1", 0, 1.0, True])
def test_a_version_that_is_not_a_positive_int_is_damage_not_upgrade_kanir(version):
    with pytest.raises(ModelFileError) as info:
        graph_from_bytes(_edited(lambda d: d.update(version=version)))
    assert f"field graph.version must be a positive integer, got {version!r}" in str(info.value)
    assert "upgrade" not in str(info.value)


def test_arrays_must_be_1d_and_of_the_model_dtype():
    doc, _ = _parts(LAYERED_BYTES)
    n_grid = sum(e["act"]["spline"]["grid"][1] for e in doc["edges"] if "spline" in e.get("act", {}))
    n_coef = sum(e["act"]["spline"]["coef"][1] for e in doc["edges"] if "spline" in e.get("act", {}))
    for grids, message in [(np.zeros(n_grid, np.int64), "1-D float64 array .* got 1-D int64"),
                           (np.zeros(n_grid, np.float32), "1-D float64 array .* got 1-D float32"),
                           (np.zeros((1, n_grid)), "1-D float64 array .* got 2-D float64")]:
        arr = io.BytesIO()
        np.savez(arr, grids=grids, coefs=np.zeros(n_coef))
        with pytest.raises(ModelFileError, match=f"arrays.npz 'grids' must be a {message}"):
            graph_from_bytes(_pack(json.dumps(doc), arr.getvalue()))


def test_deeply_nested_json_is_a_model_file_error():
    _, arrays = _parts(LAYERED_BYTES)
    with pytest.raises(ModelFileError, match="unreadable content"):
        graph_from_bytes(_pack("[" * 100_000 + "]" * 100_000, arrays))


def test_zip_members_that_would_inflate_past_the_cap_are_refused(monkeypatch):
    import kanir.ir.io as kio

    monkeypatch.setattr(kio, "MAX_JSON_BYTES", 100)
    with pytest.raises(ModelFileError, match=r"graph\.json would inflate to \d+ bytes \(at most 100\)"):
        graph_from_bytes(LAYERED_BYTES)


def test_expression_level_files_round_trip_and_are_checked():
    back, _ = graph_from_bytes(EXPR_BYTES)
    assert back.level == "expr" and back.same(EXPR)
    with pytest.raises(ModelFileError, match=r"field graph\.nodes\[\d+\]\.attrs\.slot is missing"):
        graph_from_bytes(_edited(lambda d: _node(d, "subnode")["attrs"].pop("slot"), EXPR_BYTES))


# ------------------------------------------------------------------------------ property test
def _paths(value, prefix=()):
    """Every (path, value) in a JSON document."""
    yield prefix, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _kind(v) -> str:
    return ("bool" if isinstance(v, bool) else "number" if isinstance(v, int | float)
            else type(v).__name__)


OTHER_VALUES = [None, True, False, 0, -1, 1.5, 10**20, math.nan, "", "x", "silu", [], [0], {},
                {"a": 1}]


@st.composite
def mutations(draw):
    """(kind, mutated bytes): a key deleted, a value replaced by one of another JSON type, a
    value edited within its type, or one byte of the graph.json text changed."""
    data = draw(st.sampled_from([LAYERED_BYTES, EXPR_BYTES]))
    doc, arrays = _parts(data)
    how = draw(st.sampled_from(["delete", "retype", "edit", "byte"]))
    if how == "byte":
        text = bytearray(json.dumps(doc).encode())
        pos = draw(st.integers(0, len(text) - 1))
        text[pos] = draw(st.integers(0, 255))
        return how, data, _pack(bytes(text), arrays)
    paths = [p for p, _ in _paths(doc) if p]
    if how == "delete":  # a key of an object; shorter lists are edits (an edge may be absent)
        paths = [p for p in paths if isinstance(p[-1], str)]
    path = draw(st.sampled_from(paths))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    old = parent[path[-1]]
    if how == "delete":
        del parent[path[-1]]
    elif how == "retype":
        parent[path[-1]] = draw(st.sampled_from([v for v in OTHER_VALUES if _kind(v) != _kind(old)]))
    else:
        parent[path[-1]] = draw(_same_kind(old))
    return how, data, _pack(json.dumps(doc), arrays)


def _same_kind(old):
    if isinstance(old, bool):
        return st.just(not old)
    if isinstance(old, int):
        return st.integers(-3, 12)
    if isinstance(old, float):
        return st.floats(allow_nan=True, allow_infinity=True)
    if isinstance(old, str):
        return st.text(max_size=8) | st.sampled_from(["x", "sin", "sum", "mult", "float32", "n"])
    if isinstance(old, list):
        return st.just(old[:-1]) | st.just(old + old[-1:])
    return st.just({})


def _without_annotations(g):
    """A copy of g without exact texts and scores (optional keys a file may lack)."""
    h = g.copy()
    for _, a in h.nx.nodes(data=True):
        a.pop("exact", None)
        a.pop("score", None)
    for *_, a in h.nx.edges(data=True):
        a.pop("score", None)
        if "act" in a:
            a["act"].meta.pop("exact", None)
    return h


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_random_damage_loads_a_valid_model_or_raises_model_file_error(mutation):
    how, original, data = mutation
    try:
        graph, _ = graph_from_bytes(data)
    except ModelFileError:
        return
    before, _ = graph_from_bytes(original)
    if how == "retype":  # a key kanir reads cannot change type unnoticed
        assert graph.same(before)
    if how == "delete":  # nor vanish, except optional annotations (an exact text, a score)
        assert _without_annotations(graph).same(_without_annotations(before))
    graph.check()  # loading returned a valid graph ...
    again, _ = graph_from_bytes(graph_to_bytes(graph))
    assert again.same(graph)  # ... that saves and loads unchanged ...
    if graph.level == "layered":
        kanir.KAN.from_graph(graph, device="cpu")  # ... and builds a model


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layered_graphs(mult_in_output=True, uniform_knots=False) | expression_graphs())
def test_random_graphs_survive_the_file_format(g):
    back, extra = graph_from_bytes(graph_to_bytes(g, {"note": [1, 2]}))
    assert back.same(g) and back.level == g.level and extra == {"note": [1, 2]}
