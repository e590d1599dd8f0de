"""to_dot / render / plot: diagrams of KanGraphs (DOT source is checked; rendering only when the
Graphviz ``dot`` program is installed)."""

from __future__ import annotations

import os
import re
import shutil

import graphviz
import pytest
import torch

import kanir
from kanir.backends import graphviz as gv
from kanir.backends.graphviz import DiagramError, plot, render, to_dot
from kanir.frontend.compiler import compile_expression

HAS_DOT = shutil.which("dot") is not None


def node_line(source: str, node_id: str) -> str:
    (line,) = [ln for ln in source.splitlines() if ln.strip().startswith(node_id + " [")]
    return line


def test_names_shapes_and_labels():
    g = kanir.compile("E = m*c**2 + sin(v)", variables=["m", "c", "v"])
    dot = to_dot(g)
    assert isinstance(dot, graphviz.Digraph)
    src = dot.source
    for name in ("m", "c", "v", "E"):
        assert f"label={name}" in src or f'label="{name}' in src
    assert "shape=square" in src and "×" in src  # the mult node
    assert 'label="x**2"' in src and 'label="sin(x)"' in src
    assert "rankdir=BT" in src


def test_sum_and_mult_nodes_are_drawn_differently():
    g = kanir.compile("y = x*z + exp(sin(x) + z)")
    src = to_dot(g).source
    sums = [ln for ln in src.splitlines() if 'label="+' in ln]
    mults = [ln for ln in src.splitlines() if 'label="×' in ln]
    assert sums and mults
    assert all("shape=circle" in ln for ln in sums)
    assert all("shape=square" in ln for ln in mults)


def test_opacity_from_scores():
    g = kanir.compile("sin(x) + cos(y)")
    g.edge_attrs(0, 0, 0)["score"] = 1.0
    g.edge_attrs(0, 1, 0)["score"] = 0.01
    src = to_dot(g).source
    alphas = [int(a, 16) for a in re.findall(r'color="#000000([0-9a-f]{2})"', src)]
    assert len(alphas) == 4 and max(alphas) >= 250 and min(alphas) < 40
    src2 = to_dot(g, scores={(0, 0, 0): 0.0, (0, 1, 0): 1.0}).source
    assert src2 != src


def test_spline_edges_with_curves_go_to_the_chosen_folder(tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    model = kanir.KAN(width=[2, 2, 1], grid=3, k=3, seed=0, dtype=torch.float64, device="cpu")
    g = model.graph
    assert "spline" in to_dot(g).source
    folder = tmp_path / "curves"
    dot = to_dot(g, curves=True, curve_dir=folder)
    pngs = sorted(folder.glob("*.png"))
    assert len(pngs) == 6 and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    assert "image=" in dot.source and dot.curve_dir == str(folder)
    assert os.listdir(work) == []  # nothing written to the working directory
    tmp_dot = to_dot(g, curves=True)  # default: a fresh temporary folder
    assert tmp_dot.curve_dir and not tmp_dot.curve_dir.startswith(str(work))
    shutil.rmtree(tmp_dot.curve_dir)


def test_expression_level_graphs_draw():
    src = to_dot(compile_expression("u = x*y; v = abs(x - y)")).source
    assert 'label="u = ×"' in src and 'label="abs(x)"' in src


def test_render_dot_source_always_works(tmp_path):
    g = kanir.compile("x*y")
    path = render(to_dot(g), tmp_path / "kan.dot")
    assert path.read_text().startswith("digraph")


def test_render_without_dot_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(gv.shutil, "which", lambda name: None)
    with pytest.raises(DiagramError) as info:
        render(to_dot(kanir.compile("x")), tmp_path / "kan.svg")
    msg = str(info.value)
    assert "the Graphviz 'dot' program is not installed" in msg
    assert "apt-get install graphviz" in msg and "brew install graphviz" in msg


@pytest.mark.skipif(not HAS_DOT, reason="the Graphviz 'dot' program is not installed")
def test_render_svg_and_png(tmp_path):
    dot = to_dot(kanir.compile("m0/sqrt(1 - v**2/c**2)"))
    svg = render(dot, tmp_path / "kan.svg")
    assert "<svg" in svg.read_text()
    png = render(dot, tmp_path / "kan.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_plot_accepts_models_modules_and_graphs(tmp_path):
    g = kanir.compile("x + y")
    model = kanir.KAN.from_graph(g, device="cpu")
    for obj in (g, model, model.net):
        assert isinstance(plot(obj), graphviz.Digraph)
    plot(model, tmp_path / "m.gv")
    assert (tmp_path / "m.gv").exists()
    with pytest.raises(DiagramError, match="plot needs a KAN"):
        plot("x + y")


def test_bad_arguments(tmp_path):
    g = kanir.compile("x")
    with pytest.raises(DiagramError, match="to_dot needs a KanGraph"):
        to_dot("x")
    with pytest.raises(DiagramError, match="rankdir must be one of"):
        to_dot(g, rankdir="up")
    with pytest.raises(DiagramError, match="cannot tell the diagram format"):
        render(to_dot(g), tmp_path / "kan")
    with pytest.raises(DiagramError, match="does not exist"):
        render(to_dot(g), tmp_path / "missing" / "kan.dot")


def test_lazy_top_level_name():
    assert isinstance(kanir.to_dot(kanir.compile("x")), graphviz.Digraph)


# ---------------------------------------------------------------- issue 10
def test_inputs_and_outputs_are_drawn_in_model_order():
    """The rendered diagram put v and c of m0/sqrt(1-v**2/c**2) the other way round."""
    g = kanir.compile("E = m0/sqrt(1-v**2/c**2); p = m0*v", ["m0", "v", "c"])
    src = to_dot(g).source
    chain = re.findall(r"(n_0_\d) -> (n_0_\d) \[style=invis\]", src)
    assert chain == [("n_0_0", "n_0_1"), ("n_0_1", "n_0_2")]
    last = g.depth
    assert (f"n_{last}_0", f"n_{last}_1") in re.findall(
        rf"(n_{last}_\d) -> (n_{last}_\d) \[style=invis\]", src)
    expr = to_dot(compile_expression("m0/sqrt(1-v**2/c**2)", ["m0", "v", "c"])).source
    inputs = re.findall(r"(v_\d+) \[label=(m0|v|c) ", expr)
    ids = {name: nid for nid, name in inputs}
    assert f"{ids['m0']} -> {ids['v']} [style=invis]" in expr
    assert f"{ids['v']} -> {ids['c']} [style=invis]" in expr


@pytest.mark.skipif(not HAS_DOT, reason="the Graphviz 'dot' program is not installed")
def test_rendered_layout_keeps_the_input_order():
    g = kanir.compile("m0/sqrt(1-v**2/c**2)", ["m0", "v", "c"])
    plain = to_dot(g).pipe(format="plain").decode()
    xs = {line.split()[1]: float(line.split()[2]) for line in plain.splitlines()
          if line.startswith("node n_0_")}
    assert xs["n_0_0"] < xs["n_0_1"] < xs["n_0_2"]


def test_edge_labels_use_the_cli_notation():
    """Labels said x^2 where the CLI prints x**2."""
    src = to_dot(kanir.compile("m0/sqrt(1-v**2/c**2)", ["m0", "v", "c"])).source
    assert 'label="x**2"' in src and 'label="x**(-2)"' in src and "^" not in src


def _spline_model():
    return kanir.KAN(width=[2, 2, 1], grid=3, k=3, seed=0, dtype=torch.float64, device="cpu")


def test_curves_leave_no_temporary_folder(tmp_path, monkeypatch):
    """Every plot(curves=True) / to_dot(curves=True) left a kanir-curves-* folder."""
    import gc
    import tempfile

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    model = _spline_model()
    model.diagram(curves=True)
    model.diagram(tmp_path / "kan.svg" if HAS_DOT else tmp_path / "kan.gv", curves=True)
    to_dot(model.graph, curves=True)
    dot = to_dot(model.graph, curves=True)
    assert os.path.isdir(dot.curve_dir)  # alive while the diagram is
    del dot
    gc.collect()
    assert os.listdir(temp) == []


def test_curves_of_a_dot_file_are_kept_beside_it(tmp_path):
    path = tmp_path / "kan.dot"
    _spline_model().diagram(path, curves=True)
    pngs = sorted((tmp_path / "kan_curves").glob("*.png"))
    assert len(pngs) == 6 and all(str(p) in path.read_text() for p in pngs)


def _fitted_model():
    data = kanir.create_dataset(lambda x: torch.sin(3 * x[:, [0]]), n_var=2, seed=0,
                                train_num=200, test_num=50)
    model = kanir.KAN(width=[2, 2, 1], grid=3, k=3, seed=0, device="cpu")
    model.fit(data, opt="LBFGS", steps=5, progress=False)
    return model, data


def _alphas(src: str) -> list[int]:
    return [int(a, 16) for a in re.findall(r'(?<!font)color="#000000([0-9a-f]{2})"', src)]


def test_diagram_fades_edges_by_default_after_training():
    """plot(beta=...) faded nothing: the facade's graph carries no scores."""
    model, data = _fitted_model()
    faded = _alphas(model.diagram().source)
    assert len(faded) == 6 and min(faded) < 0.5 * max(faded)  # y does not matter: faded
    assert _alphas(model.diagram(beta=1000).source) != faded
    fresh = kanir.KAN(width=[2, 2, 1], seed=0, device="cpu")
    assert _alphas(fresh.diagram().source) == []  # no data: nothing to measure, nothing faded
    assert _alphas(fresh.diagram(x=data["train_input"]).source) != []
    model.attribute(x=data["test_input"][:20])  # the model's own attribution scores win
    assert _alphas(model.diagram().source) != faded


@pytest.mark.parametrize("metric", ["backward", "forward_u", "forward_n"])
def test_diagram_metrics_follow_pykan(metric):
    from kanir.passes.measure import edge_metric_scores as edge_scores

    model, data = _fitted_model()
    scores = edge_scores(model.graph, data["train_input"], metric)
    assert set(scores) == {(l, i, j) for l, i, j, _ in model.graph.act_edges()}
    assert _alphas(model.diagram(metric=metric).source)
    if metric == "forward_u":  # the std of each edge's output, as pykan's edge_actscale
        from kanir.passes._eval import evaluate

        acts = evaluate(model.graph, data["train_input"])
        assert scores[(0, 1, 0)] == pytest.approx(acts[0].edge[:, 1, 0].std(ddof=1))
    with pytest.raises(DiagramError, match="metric must be one of backward, forward_u, "
                                           "forward_n"):
        model.diagram(metric="l1")


def test_diagram_takes_pykans_arguments(tmp_path):
    """folder=, in_vars=, out_vars=, title=, metric= raised TypeError."""
    model, _ = _fitted_model()
    folder = tmp_path / "figures"
    dot = model.diagram(folder=folder, beta=3, metric="backward", in_vars=["a", "b"],
                     out_vars=["F"], title="my KAN")
    written = os.listdir(folder)
    assert written == ["kan.svg" if HAS_DOT else "kan.dot"]
    src = dot.source
    assert "label=a" in src and "label=b" in src and "label=F" in src
    assert 'label="my KAN"' in src
    model.diagram(str(tmp_path / "positional"))  # a path without suffix is a folder
    assert (tmp_path / "positional").is_dir() and os.listdir(tmp_path / "positional")
    with pytest.raises(DiagramError, match=r"input_labels \(pykan's in_vars\) must have one "
                                           r"label per node \(2: x_1, x_2\), got 1"):
        model.diagram(in_vars=["a"])
