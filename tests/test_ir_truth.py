"""The model's module is its truth and lift/lower lose nothing: every annotation survives
graph -> model -> graph -> file -> model; passes keep the module's runtime state; the graph
view is cached and invalidated by every change; facade settings survive files; the versions
held in memory are bounded."""

import tempfile
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import sympy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import kanir
from kanir import Activation, KanGraph, SplinePart, SymbolicPart, lift, lower
from kanir.errors import ModelFileError
from kanir.ir.io import graph_from_bytes, graph_to_bytes, save_graph
from kanir.model.versions import VersionError

FUNS = ["x", "x^2", "sin", "tanh", "gaussian"]
TEXT = st.text("abcxyz_", min_size=1, max_size=6)
JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | TEXT
                       | st.floats(-3, 3, allow_nan=False),
                       lambda kids: st.lists(kids, max_size=3)
                       | st.dictionaries(TEXT, kids, max_size=3), max_leaves=6)


@st.composite
def annotated_graphs(draw):
    """Small layered float64 graphs with spline, symbolic, both and inactive edges, carrying
    activation meta (exact texts, user data), edge and node scores, node exact texts and extra
    graph metadata: everything lift/lower must carry."""
    n_layers = draw(st.integers(1, 2))
    widths = [draw(st.integers(1, 3))]
    arities = [[]]
    for _ in range(n_layers):
        n_mult = draw(st.integers(0, 1))
        widths.append([draw(st.integers(1, 2)), n_mult] if n_mult else draw(st.integers(1, 2)))
        arities.append([2] * n_mult)
    g = KanGraph.from_width(widths, mult_arity=arities, dtype="float64")
    G, k = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    lws = g.layer_widths()
    for l in range(n_layers):
        grids = [np.sort(rng.uniform(-2, 2, G + 2 * k + 1)) for _ in range(lws[l].n_nodes)]
        for i in range(lws[l].n_nodes):
            for j in range(lws[l + 1].n_subnodes):
                kind = draw(st.sampled_from(["none", "spline", "sym", "both", "inactive"]))
                sp = sy = None
                if kind in ("spline", "both", "inactive"):
                    sp = SplinePart(grids[i].copy(), rng.normal(size=G + k), k,
                                    float(rng.normal()), float(rng.normal()), "silu",
                                    kind != "inactive")
                if kind in ("sym", "both", "inactive"):
                    sy = SymbolicPart(draw(st.sampled_from(FUNS)), 1.0, 0.0,
                                      float(np.pi), 0.5)
                if sp is None and sy is None:
                    continue
                meta = {}
                if draw(st.booleans()):
                    meta["exact"] = {"c": "pi", "d": "1/2"}
                if draw(st.booleans()):
                    meta["user"] = draw(JSONISH)
                g.set_edge(l, i, j, Activation(sp, sy, meta))
                if draw(st.booleans()):
                    g.edge_attrs(l, i, j).update(score=float(rng.uniform()), note=draw(TEXT))
        for j in range(lws[l + 1].n_subnodes):
            g.subnode(l + 1, j).update(scale=1.0, bias=0.5, exact={"bias": "1/2"})
        for i in range(lws[l + 1].n_nodes):
            g.node(l + 1, i).update(scale=float(rng.uniform(0.5, 1.5)),
                                    score=float(rng.uniform()))
    g.node(0, 0)["definition"] = "x_1"  # e.g. an input defined by a formula
    g.meta["snapped"] = {"(0,0,0)": ["pi", None]}
    g.meta["inputs_def"] = draw(JSONISH)
    return g


def _file_round_trip(g: KanGraph) -> KanGraph:
    return graph_from_bytes(graph_to_bytes(g))[0]


@settings(max_examples=40, deadline=None)
@given(g=annotated_graphs())
def test_every_annotation_survives_model_graph_model_file_model(g):
    g.check()
    assert lift(lower(g)).same(g)
    model = kanir.KAN.from_graph(g, device="cpu", versions=False)
    assert model.graph.same(g)
    again = kanir.KAN.from_graph(model.graph, device="cpu", versions=False)
    assert again.graph.same(g)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.kanir"
        again.save(path)
        loaded = kanir.load(path, device="cpu")
    assert loaded.graph.same(g)
    assert _file_round_trip(loaded.graph).same(g)


def test_same_compares_meta_exact_scores_and_attributes():
    g = kanir.compile("pi*x + sqrt(2)*y/7919")
    g.edge_attrs(0, 0, 0)["score"] = 0.5
    g.node(1, 0)["score"] = 1.0
    assert g.same(g.copy())
    edits = [
        lambda h: h.edge(0, 0, 0).meta["exact"].update(c="E"),
        lambda h: h.edge_attrs(0, 0, 0).update(score=0.25),
        lambda h: h.node(1, 0).update(score=2.0),
        lambda h: h.subnode(1, 0).update(exact={"bias": "1"}),
        lambda h: h.meta.update(note="x"),
        lambda h: h.edge(0, 1, 0).meta.clear(),
    ]
    for edit in edits:
        h = g.copy()
        edit(h)
        assert not h.same(g)
        assert not g.same(h)


PI_FORMULA = sympy.pi * sympy.Symbol("x") + sympy.sqrt(2) * sympy.Symbol("y") / 7919


def test_exact_constants_survive_model_save_and_load(tmp_path):
    model = kanir.KAN.from_graph(kanir.compile("pi*x + sqrt(2)*y/7919"), device="cpu")
    assert kanir.to_sympy(model.graph) == [PI_FORMULA]
    model.save(tmp_path / "m.kanir")
    loaded = kanir.load(tmp_path / "m.kanir", device="cpu")
    assert kanir.to_sympy(loaded.graph) == [PI_FORMULA]
    assert kanir.to_sympy(kanir.KAN.from_graph(loaded.graph).graph) == [PI_FORMULA]
    model.saveckpt(str(tmp_path / "ck"))
    assert kanir.to_sympy(kanir.KAN.loadckpt(str(tmp_path / "ck")).graph) == [PI_FORMULA]


# ---------------------------------------------------------------------- runtime state
def _model_and_data():
    model = kanir.KAN(width=[2, 3, 1], grid=3, k=3, seed=0, device="cpu")
    x = torch.rand(64, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return model, x


PASSES = {
    "prune": lambda m, x: m.prune(node_th=0.0, edge_th=1e9, x=x),  # removes edges
    "auto_swap": lambda m, x: m.auto_swap(x),
    "expand_depth": lambda m, x: m.expand_depth(),
    "fix_symbolic": lambda m, x: m.fix_symbolic(0, 0, 0, "sin", fit_params_bool=False),
    "expand_width": lambda m, x: m.expand_width(1, 2),
}


@pytest.mark.parametrize("name", sorted(PASSES))
def test_frozen_parameters_hooks_eval_and_keep_acts_survive_a_pass(name):
    model, x = _model_and_data()
    for layer in model.net.layers:
        layer.coef.requires_grad_(False)
    kan_calls, net_calls = [], []
    model.register_forward_hook(lambda *a: kan_calls.append(1))
    model.net.register_forward_hook(lambda *a: net_calls.append(1))
    model.eval()
    model.speed(False)  # keep per-edge activations
    model(x)
    PASSES[name](model, x)
    model(x)
    assert kan_calls == [1, 1] and net_calls == [1, 1]
    assert not model.training and not model.net.training
    assert all(not layer.coef.requires_grad for layer in model.net.layers)
    assert all(layer.scale_base.requires_grad for layer in model.net.layers)
    assert all(layer.keep_acts and layer.acts is not None for layer in model.net.layers)


def test_a_pass_keeping_the_shapes_updates_the_parameters_in_place():
    model, x = _model_and_data()
    coef = model.net.layers[0].coef
    layer_hook = []
    model.net.layers[1].register_forward_hook(lambda *a: layer_hook.append(1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.fix_symbolic(0, 1, 2, "x", fit_params_bool=False)
    assert model.net.layers[0].coef is coef
    assert model.net.layers[0].sym_funs[1][2] == "x"
    model(x)
    assert layer_hook == [1]
    assert any(p is coef for group in opt.param_groups for p in group["params"])


def test_rewind_keeps_runtime_state():
    model, x = _model_and_data()
    model.net.layers[0].coef.requires_grad_(False)
    model.eval()
    model.expand_depth()
    model.rewind("0.0")
    assert model.width_spec == [2, 3, 1]
    assert not model.net.training and not model.net.layers[0].coef.requires_grad


# ---------------------------------------------------------------------- the cached graph
def test_graph_view_is_cached_until_something_changes():
    model, x = _model_and_data()
    g1, g2 = model.graph, model.graph
    assert g1.nx is g2.nx
    model.fit({"train_input": x, "train_label": x[:, :1], "test_input": x,
               "test_label": x[:, :1]}, steps=1, update_grid=False, progress=False)
    g3 = model.graph
    assert g3.nx is not g1.nx and not g3.same(g1)
    with torch.no_grad():
        model.net.layers[0].coef.mul_(2.0)
    g4 = model.graph
    assert g4.nx is not g3.nx
    np.testing.assert_array_equal(g4.edge(0, 0, 0).spline.coef, 2 * g3.edge(0, 0, 0).spline.coef)
    state = {k: v.clone() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    model.load_state_dict(state, strict=False)
    assert model.graph.nx is not g4.nx
    g5 = model.graph
    model.refine(5)
    assert model.graph.nx is not g5.nx and model.graph.edge(0, 0, 0).spline.G == 5
    g6 = model.graph
    model.double()
    assert model.graph.nx is not g6.nx and model.graph.meta["dtype"] == "float64"


def test_graph_view_is_read_only_and_meta_is_the_callers():
    model, _ = _model_and_data()
    g = model.graph
    with pytest.raises(nx.NetworkXError):
        g.nx.add_node(("n", 9, 9))
    with pytest.raises(ValueError):
        g.edge(0, 0, 0).spline.coef[0] = 1.0
    g.meta["input_names"].append("z")
    g.meta["note"] = 1
    assert model.graph.meta["input_names"] == ["x_1", "x_2"] and "note" not in model.graph.meta
    h = model.graph.copy()  # copies are writeable
    h.edge(0, 0, 0).spline.coef[0] = 1.0
    h.set_edge(0, 0, 0, None)
    model.set_graph(h)
    assert model.graph.edge(0, 0, 0) is None


def test_width_reads_the_module_without_lifting(monkeypatch):
    model, _ = _model_and_data()
    import kanir.model.kan as kan_module

    monkeypatch.setattr(kan_module, "lift", lambda *a, **k: pytest.fail("width lifted"))
    assert model.width_spec == [2, 3, 1] and model.width == [[2, 0], [3, 0], [1, 0]]
    assert kanir.KAN(width=[2, [1, 2], 1], device="cpu").width == [[2, 0], [1, 2], [1, 0]]


def test_training_drops_attribution_scores_carried_from_a_graph():
    model, x = _model_and_data()
    scored = model.scored_graph(x)
    m2 = kanir.KAN.from_graph(scored, device="cpu")
    assert "score" in m2.graph.edge_attrs(0, 0, 0) and "score" in m2.graph.node(1, 0)
    m2.fit({"train_input": x, "train_label": x[:, :1], "test_input": x, "test_label": x[:, :1]},
           steps=1, update_grid=False, progress=False)
    assert "score" not in m2.graph.edge_attrs(0, 0, 0) and "score" not in m2.graph.node(1, 0)


# ---------------------------------------------------------------------- settings and versions
def test_grid_eps_and_trainable_flags_survive_save_and_load(tmp_path):
    model = kanir.KAN(width=[2, 2, 1], seed=0, device="cpu", grid_eps=0.5,
                      affine_trainable=True, sp_trainable=False, sb_trainable=False)
    model.save(tmp_path / "m.kanir")
    loaded = kanir.load(tmp_path / "m.kanir", device="cpu")
    assert loaded.grid_eps == 0.5
    layer = loaded.net.layers[0]
    assert layer.node_scale.requires_grad and layer.subnode_bias.requires_grad
    assert not layer.scale_sp.requires_grad and not layer.scale_base.requires_grad
    model.saveckpt(str(tmp_path / "ck"))
    ck = kanir.KAN.loadckpt(str(tmp_path / "ck"))
    assert ck.grid_eps == 0.5 and not ck.net.layers[1].scale_sp.requires_grad
    assert model.checkout("0.0").grid_eps == 0.5


def test_settings_in_a_damaged_file_are_named(tmp_path):
    g = kanir.KAN(width=[1, 1], device="cpu").graph
    save_graph(g, tmp_path / "bad.kanir", {"kan_settings": {"grid_eps": 3}})
    with pytest.raises(ModelFileError, match="grid_eps must be a number in"):
        kanir.load(tmp_path / "bad.kanir")


def test_max_versions_bounds_the_states_held_and_keeps_the_listing():
    model, _ = _model_and_data()
    model.track_versions(max_versions=3)
    for i in range(10):
        model.swap(1, 0, 1 + i % 2)
    assert [v.label for v in model.list_versions()] == [f"0.{s}" for s in range(11)]
    assert model.versions.held() == 3
    with pytest.raises(VersionError, match="max_versions=3"):
        model.rewind("0.2")
    model.rewind("0.9")
    assert model.version == "1.9"
    assert kanir.KAN(width=[1, 1], device="cpu", max_versions=1).versions.held() == 1
    with pytest.raises(kanir.KanirError, match="max_versions"):
        kanir.KAN(width=[1, 1], device="cpu", max_versions=0)


def test_consecutive_versions_share_unchanged_tensors():
    model, _ = _model_and_data()
    model.remove_edge(0, 0, 0)
    entries = model.versions._entries
    before, after = entries[(0, 0)].data, entries[(0, 1)].data
    assert after.layers[1].coef is before.layers[1].coef  # layer 1 did not change
    assert not torch.equal(after.layers[0].mask_sp, before.layers[0].mask_sp)
    model.rewind("0.0")
    assert model.graph.edge(0, 0, 0) is not None and model.net.layers[1].coef is not \
        before.layers[1].coef  # a rewound state is a copy, never the stored tensors


def test_input_definitions_of_augment_input_survive_save_and_load(tmp_path):
    x1, x2 = sympy.symbols("x_1 x_2")
    model, x = _model_and_data()
    data = {"train_input": x, "train_label": x[:, :1], "test_input": x, "test_label": x[:, :1]}
    model.augment_input([x1, x2], [x1 * x2], data)
    defs = model.graph.meta["input_defs"]
    assert defs[0][1] == "x_1*x_2"
    model.save(tmp_path / "aug.kanir")
    assert kanir.load(tmp_path / "aug.kanir").graph.meta["input_defs"] == defs


def test_fast_check_still_names_each_broken_edge():
    g = kanir.KAN(width=[6, 8, 1], seed=0, device="cpu").graph.copy()
    g.edge(0, 2, 3).spline.coef[1] = np.nan
    g.edge(0, 4, 5).spline.grid[0] -= 0.5  # no longer the grid of node 4's other edges
    g.edge(0, 1, 1).symbolic = SymbolicPart("nosuchfun")
    g.edge(1, 3, 0).spline.scale_sp = "1.0"
    probs = g.problems()
    assert any("('n', 0, 2)->('s', 1, 3): spline coefficients contain NaN" in p for p in probs)
    assert any(p.startswith("edge (0,4,5) has a different spline grid") for p in probs)
    assert any("('n', 0, 1)->('s', 1, 1)" in p and "nosuchfun" in p for p in probs)
    assert any("('n', 1, 3)->('s', 2, 0): spline scale_sp is not a finite number" in p
               for p in probs)
    assert len(probs) == 4
    assert kanir.KAN(width=[6, 8, 1], seed=0, device="cpu").graph.problems() == []


@pytest.mark.parametrize("name", ["prune", "fix_symbolic"])
def test_dtype_survives_a_pass(name):
    model, x = _model_and_data()
    model.double()
    PASSES[name](model, x.double())
    assert model.dtype == torch.float64 and model.graph.meta["dtype"] == "float64"
    assert model(x.double()).dtype == torch.float64
