"""The pass registry and manager (kanir.passes.manager): a complete registry, typed options
from pipeline text with caret errors, contract checks naming the pass, timing, one version per
pass, analyses that never return a graph, and one data argument order."""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import kanir
import kanir.passes
from kanir.errors import PassError, PipelineError
from kanir.ir.graph import KanGraph, N, S
from kanir.passes import attribution, modules, prune, swap
from kanir.passes.manager import (
    INTERNAL_FUNCTIONS,
    PassManager,
    PassSpec,
    get_pass,
    parse_pipeline,
    pass_listing,
    register_pass,
    registered_passes,
    run_pass,
    unregister_pass,
)


@pytest.fixture(scope="module")
def graph():
    return kanir.KAN(width=[2, 3, 1], grid=3, seed=0, device="cpu", dtype=torch.float64,
                     versions=False).graph


@pytest.fixture(scope="module")
def x():
    return torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (64, 2)))


@pytest.fixture
def broken_pass():
    """A deliberately broken transform: it unwires node (1, 0) from its subnode."""
    @register_pass("test-unwire", description="breaks the graph (tests only)")
    def unwire(graph: KanGraph) -> KanGraph:
        h = graph.copy()
        h.nx.remove_edge(S(1, 0), N(1, 0))
        return h

    yield "test-unwire"
    unregister_pass("test-unwire")


# ---------------------------------------------------------------------- the registry
def _pass_modules():
    for m in pkgutil.iter_modules(kanir.passes.__path__):
        if not m.name.startswith("_") and m.name != "manager":
            yield m.name, importlib.import_module(f"kanir.passes.{m.name}")


def _returns(fn) -> str:
    ann = inspect.signature(fn).return_annotation
    return ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))


def test_every_public_graph_function_is_registered_or_listed_internal():
    by_function = {info.function: name for name, info in registered_passes().items()}
    unlisted = []
    for mod_name, mod in _pass_modules():
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            if fn.__module__ != mod.__name__ or name.startswith("_"):
                continue
            ret = _returns(fn)
            if ret.startswith(("KanGraph", "tuple[KanGraph")):
                key = f"{mod_name}.{name}"
                if fn not in by_function and key not in INTERNAL_FUNCTIONS:
                    unlisted.append(key)
    assert unlisted == []
    for key in INTERNAL_FUNCTIONS:  # the internal list names functions that exist
        mod, name = key.split(".")
        assert callable(getattr(importlib.import_module(f"kanir.passes.{mod}"), name))


def test_registry_entries_are_well_formed():
    infos = registered_passes()
    assert {"prune", "prune-edge", "prune-node", "prune-input", "auto-swap", "expand-depth",
            "expand-width", "perturb", "canonicalize", "module", "remove-edge", "remove-node",
            "fix-symbolic", "auto-symbolic", "find-swap", "connection-cost",
            "module-cuts"} <= set(infos)
    for name, info in infos.items():
        assert name == name.lower() and "_" not in name and info.description
        assert info.kind in ("transform", "analysis")
        assert all(o.doc for o in info.options), name
        if info.kind == "analysis":
            assert not _returns(info.function).startswith("KanGraph"), name
            assert info.ensures == ()
    assert get_pass("prune").data == "scores" and get_pass("attribute").data == "required"
    assert get_pass("canonicalize").requires == ("expr",)
    assert get_pass("prune").option_map["edge_th"].default == 3e-2


def test_registration_rejects_options_that_do_not_match_the_function():
    def f(graph, threshold: float = 1.0):
        return graph

    with pytest.raises(PassError, match=r"undeclared \['threshold'\]"):
        register_pass("test-bad", description="d")(f)
    with pytest.raises(PassError, match="kebab-case"):
        register_pass("test_bad", description="d", options=[("threshold", "float", "t")])(f)
    with pytest.raises(PassError, match="already registered"):
        register_pass("prune", description="d", options=[("threshold", "float", "t")])(f)
    assert "test-bad" not in registered_passes()


def test_listing_shows_options_with_types_and_defaults():
    text = pass_listing()
    for name in registered_passes():
        assert f"\n{name}  [" in "\n" + text
    assert "edge_th: float = 0.03" in text
    assert "mode: str = non-intrusive" in text
    assert "layer: int (required)" in text


# ---------------------------------------------------------------------- pipeline text
def test_pipeline_text_gives_typed_options():
    text = ("prune{edge_th=1,node_th=0.5e-2,fold_mean=false},perturb{mode=zero-edges,seed=3},"
            'permute-layer{l=1,perm=[2,0,1]},module{start_layer=0,spec="[0,1]->[0]"},'
            "expand-depth{layer=none}")
    specs = parse_pipeline(text)
    assert [s.name for s in specs] == ["prune", "perturb", "permute-layer", "module",
                                      "expand-depth"]
    assert specs[0].options == {"edge_th": 1.0, "node_th": 0.005, "fold_mean": False}
    assert isinstance(specs[0].options["edge_th"], float)
    assert specs[1].options == {"mode": "zero-edges", "seed": 3}
    assert specs[2].options == {"l": 1, "perm": [2, 0, 1]}
    assert specs[3].options == {"start_layer": 0, "spec": "[0,1]->[0]"}
    assert specs[4].options == {"layer": None}
    assert [s.column for s in specs] == [text.index(f"{s.name}{{") + 1 for s in specs]
    assert [s.column for s in specs][:2] == [1, 49]


@pytest.mark.parametrize("text, message, column", [
    ("expand-width{layer=1.5}", "option 'layer' of pass 'expand-width' must be an int, got "
                                "float 1.5", 20),
    ("prune{edge_th=true}", "option 'edge_th' of pass 'prune' must be a float, got bool true",
     15),
    ("canonicalize{mult_outputs=1}", "option 'mult_outputs' of pass 'canonicalize' must be a "
                                     "bool, got int 1", 27),
    ("prune,perturb{mode=3}", "option 'mode' of pass 'perturb' must be a str, got int 3", 20),
    ("permute-layer{l=1,perm=2}", "option 'perm' of pass 'permute-layer' must be a list, got "
                                  "int 2", 24),
    ("prune{edge_threshold=0.1}", "pass 'prune' has no option 'edge_threshold'; did you mean "
                                  "'edge_th'?", 7),
    ("prune{edge_th=0.1,edge_th=0.2}", "option 'edge_th' of pass 'prune' is given twice", 19),
    ("prune,auto_swap", "unknown pass 'auto_swap'; did you mean 'auto-swap'?", 7),
    ("expand-width{n=2}", "pass 'expand-width' needs option(s) layer", 1),
    ("prune{edge_th=0.05", "bad pipeline syntax: the pipeline ends too early", 19),
    ("prune;auto-swap", "bad pipeline syntax: unexpected character ';'", 6),
    ("prune{=1}", "bad pipeline syntax: unexpected '='; expected '}' or a name", 7),
])
def test_pipeline_errors_carry_a_caret(text, message, column):
    with pytest.raises(PipelineError) as e:
        parse_pipeline(text)
    assert e.value.message.startswith(message), e.value.message
    assert e.value.column == column
    lines = str(e.value).split("\n")
    assert lines[1] == "    " + text
    assert lines[2] == " " * (3 + column) + "^"


def test_unknown_pass_outside_text_is_a_pipeline_error(graph):
    with pytest.raises(PipelineError, match=r"unknown pass 'prune-edges'; did you mean "
                                            r"'prune-edge'\?"):
        PassManager(["prune-edges"])
    with pytest.raises(PipelineError, match=r"pass 'prune' \(#1\) has no option 'th'"):
        PassManager([("prune", {"th": 0.1})], x=None).run(graph)


_VALUES = {
    "int": st.integers(-10**6, 10**6),
    "float": st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    "bool": st.booleans(),
    "str": st.text("abcxyz-_[]>0123", min_size=1, max_size=8),
    "list": st.lists(st.integers(-5, 5), max_size=4),
}


@st.composite
def _specs(draw):
    names = sorted(registered_passes())
    out = []
    for _ in range(draw(st.integers(1, 4))):
        info = registered_passes()[draw(st.sampled_from(names))]
        opts = {}
        for o in info.options:
            if o.type in _VALUES and (o.required or draw(st.booleans())):
                opts[o.name] = draw(_VALUES[o.type])
        out.append(PassSpec(info.name, opts))
    return out


@settings(max_examples=60, deadline=None)
@given(_specs())
def test_pipeline_text_round_trips(specs):
    text = ",".join(str(s) for s in specs)
    back = parse_pipeline(text)
    assert [(s.name, dict(s.options)) for s in back] == [(s.name, s.options) for s in specs]


# ---------------------------------------------------------------------- running passes
def test_manager_results_equal_direct_calls(graph, x):
    pm = PassManager("prune{edge_th=0.05},auto-swap{max_sweeps=5}", x=x)
    direct = swap.auto_swap(prune.prune(graph, x, edge_th=0.05), x, max_sweeps=5)
    assert pm.run(graph).same(direct)
    assert run_pass("prune-edge", graph, x, threshold=0.2).same(
        prune.prune_edge(graph, x, threshold=0.2))


def test_data_argument_comes_second_everywhere(graph, x):
    for name, info in registered_passes().items():
        params = list(inspect.signature(info.function).parameters)
        if info.data != "none" and name not in ("suggest-symbolic", "fix-symbolic"):
            assert params[1] == "x", name  # (the two edge fitters take the edge first)
    with pytest.raises(PassError, match=r"x is data .* options are keywords, e.g. "
                                        r"prune_edge\(graph, x, threshold=\.\.\.\)"):
        prune.prune_edge(graph, 0.05)


def test_contract_violation_names_the_pass(graph, broken_pass):
    pm = PassManager(f"expand-depth,{broken_pass},expand-depth")
    with pytest.raises(PassError, match=r"(?s)pass 'test-unwire' \(#2 of pipeline "
                                        r"'expand-depth,test-unwire,expand-depth'\) broke the "
                                        r"graph contract: .*node \('n', 1, 0\) \(sum\) is "
                                        r"wired to subnodes \[\]"):
        pm.run(graph)
    assert [r.name for r in pm.records] == ["expand-depth", "test-unwire"]
    out = PassManager([broken_pass], verify=False).run(graph)  # unchecked, as asked
    assert out.problems() != []


def test_requirements_checked_before_the_pass(graph):
    with pytest.raises(PassError, match=r"pass 'canonicalize' \(#1 of pipeline "
                                        r"'canonicalize'\) requires a graph of level 'expr', "
                                        r"got level 'layered'"):
        PassManager("canonicalize").run(graph)
    with pytest.raises(PassError, match=r"pass 'auto-swap' \(#2 of pipeline "
                                        r"'expand-depth,auto-swap'\) needs data x"):
        PassManager("expand-depth,auto-swap").run(graph)
    with pytest.raises(PassError, match=r"pass 'attribute' \(#1 of pipeline 'attribute'\) "
                                        r"needs data x"):
        PassManager("attribute").run(graph)


def test_scores_carried_by_the_graph_replace_data(graph, x):
    scored = attribution.attribute(graph, x)
    assert PassManager("prune-edge{threshold=0.2}").run(scored).same(
        prune.prune_edge(graph, x, threshold=0.2))


def test_the_contract_is_checked_once_per_pass(graph, monkeypatch):
    calls = []
    real = KanGraph.check

    def counting(self):
        calls.append(1)
        return real(self)

    monkeypatch.setattr(KanGraph, "check", counting)
    PassManager("expand-depth,expand-width{layer=1,n=2},perturb{mode=minimal}").run(graph)
    assert len(calls) == 3
    calls.clear()
    from kanir.passes.expand import expand_depth

    expand_depth(graph)  # called directly, a pass still checks its own result
    assert len(calls) == 1


def test_one_version_per_transform_and_analyses_return_no_graph(graph, x):
    seen = []
    pm = PassManager("expand-depth,connection-cost,prune{edge_th=0.01},find-swap,"
                     'module-cuts{start_layer=0,spec="[0]->[0]"}', x=x, on_version=seen.append)
    out = pm.run(graph)
    assert [(r.name, r.position) for r in seen] == [("expand-depth", 1), ("prune", 3)]
    assert seen[-1].graph is out
    results = dict(pm.results)
    assert set(results) == {"connection-cost", "find-swap", "module-cuts"}
    assert not any(isinstance(v, KanGraph) for v in results.values())
    g1 = seen[0].graph
    assert results["connection-cost"] == swap.connection_cost(g1, x)
    assert results["module-cuts"] == modules.module_cuts(out, 0, "[0]->[0]")
    assert run_pass("score-arrays", attribution.attribute(graph, x)).node[0].shape == (2,)


def test_an_analysis_returning_a_graph_is_refused(graph):
    @register_pass("test-graph-analysis", description="wrong", kind="analysis")
    def wrong(graph: KanGraph):
        return graph.copy()

    try:
        with pytest.raises(PassError, match="is an analysis but returned a KanGraph"):
            run_pass("test-graph-analysis", graph)
    finally:
        unregister_pass("test-graph-analysis")


def test_timing_report(graph, x):
    pm = PassManager("expand-depth,prune,connection-cost", x=x, timing=True)
    pm.run(graph)
    rep = pm.timing_report
    assert [(r.name, r.position) for r in rep.records] == [("expand-depth", 1), ("prune", 2),
                                                           ("connection-cost", 3)]
    assert all(r.seconds >= 0 and r.verify_seconds >= 0 for r in rep.records)
    assert rep.total == pytest.approx(sum(r.seconds + r.verify_seconds for r in rep.records))
    lines = rep.table().split("\n")
    assert lines[0].split() == ["#", "pass", "time", "(s)", "verify", "(s)", "share"]
    assert lines[2].split()[:2] == ["2", "prune"] and lines[-1].split()[0] == "total"
    assert PassManager("expand-depth").timing_report is None


def test_print_ir_after_all(graph):
    buf = io.StringIO()
    pm = PassManager("expand-depth,expand-width{layer=1}", print_ir_after_all=True,
                     ir_stream=buf)
    out = pm.run(graph)
    text = buf.getvalue()
    assert text.index("// ----- IR after expand-depth (#1) ----- //") < text.index(
        "// ----- IR after expand-width (#2) ----- //")
    dump = out.to_text() if hasattr(out, "to_text") else out.summary()
    assert text.endswith(dump + "\n")


def test_facade_records_one_version_per_pass_and_keeps_results(x):
    m = kanir.KAN(width=[2, 3, 1], grid=3, seed=0, device="cpu", dtype=torch.float64)
    ref = prune.prune(m.graph, x, edge_th=0.05)
    n = len(m.list_versions())
    m.prune(edge_th=0.05, x=x)
    assert m.graph.same(ref)
    ops = [v.op for v in m.list_versions()]
    assert len(ops) == n + 1 and ops[-1] == "prune"
    m.expand_depth().auto_swap(x=x, log_history=False)
    assert [v.op for v in m.list_versions()][n + 1:] == ["expand_depth"]
