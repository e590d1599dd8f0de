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
from kanir.compiler import compile_expression

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
    assert 'label="x^2"' in src and 'label="sin(x)"' in src
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
