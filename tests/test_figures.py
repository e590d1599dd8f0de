"""pykan's matplotlib pictures: model.plot (a panel per edge), plot_history, plot_candidates
and ``kanir plot``. Structural tests of the Figure's artists, so a broken picture fails."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

import kanir
from kanir.backends.graphviz import DiagramError
from kanir.cli.commands import main


def _panels(fig: Figure) -> list:
    """The per-edge panels: inset axes of the figure's one main axes."""
    (ax,) = fig.axes
    return [c for c in ax.child_axes]


def _trained(seed=0):
    f = lambda x: torch.sin(torch.pi * x[:, [0]]) + x[:, [1]] ** 2
    data = kanir.create_dataset(f, n_var=2, seed=0, train_num=300, test_num=100,
                                dtype=torch.float64)
    model = kanir.KAN([2, 5, 1], grid=5, seed=seed, dtype=torch.float64, device="cpu")
    model.fit(data, steps=10, lamb=0.01, progress=False)
    return model, data


def test_plot_draws_one_curve_per_edge_over_its_input_range():
    model = kanir.KAN([2, 5, 1], seed=0, device="cpu")
    x = torch.rand(100, 2) * 0.5  # inputs in [0, 0.5): curves span that, not the grid range
    fig = model.plot(x=x)
    assert isinstance(fig, Figure)
    panels = _panels(fig)
    assert len(panels) == 2 * 5 + 5 * 1
    for k, p in enumerate(panels):
        (line,) = p.get_lines()
        xs = line.get_xdata()
        assert len(xs) == 100 and np.all(np.diff(xs) >= 0)
        if k < 10:  # the input layer's edges
            assert 0 <= xs.min() and xs.max() < 0.5
        assert p.get_xticks().size == 0  # no ticks unless tick=True


def test_plot_panels_show_the_edge_function():
    model = kanir.KAN([1, 1], seed=0, device="cpu", dtype=torch.float64)
    model.fix_symbolic(0, 0, 0, "sin", fit_params_bool=False, verbose=False)
    x = torch.linspace(-1, 1, 50, dtype=torch.float64)[:, None]
    (panel,) = _panels(model.plot(x=x))
    (line,) = panel.get_lines()
    np.testing.assert_allclose(line.get_ydata(), np.sin(line.get_xdata()), rtol=0, atol=1e-12)
    assert to_rgba(line.get_color())[:3] == to_rgba("red")[:3]  # symbolic edges are red


def test_plot_fades_by_attribution_and_colours_kinds():
    model, data = _trained()
    model.fix_symbolic(0, 0, 0, "sin", verbose=False)
    fig = model.plot(beta=3)
    alphas = [p.get_lines()[0].get_alpha() for p in _panels(fig)]
    assert min(alphas) < 0.5 * max(alphas)  # the regularised model has faint edges
    colours = {to_rgba(p.get_lines()[0].get_color())[:3] for p in _panels(fig)}
    assert colours == {to_rgba("black")[:3], to_rgba("red")[:3]}
    unfaded = model.plot(beta=1e6)  # tanh(1e6 * score) is 1 for every non-zero score
    assert sum(p.get_lines()[0].get_alpha() == 1.0 for p in _panels(unfaded)) >= 10
    fresh = kanir.KAN([2, 3, 1], seed=0, device="cpu")
    assert {p.get_lines()[0].get_alpha() for p in _panels(fresh.plot())} == {1.0}  # no data


def test_plot_mult_nodes_are_squares_with_their_subnodes():
    model = kanir.KAN([2, [1, 1], 1], seed=0, device="cpu")
    fig = model.plot()
    (ax,) = fig.axes
    markers = [line.get_marker() for line in ax.get_lines()]
    assert markers.count("s") == 1  # one mult node
    assert len(_panels(fig)) == 2 * 3 + 2 * 1  # 3 subnodes in the hidden layer


def test_plot_labels_title_and_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = kanir.KAN([2, 3, 1], seed=0, device="cpu")
    fig = model.plot(in_vars=["$a$", "b"], out_vars=["F"], title="my KAN", tick=True,
                     sample=True)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert {"$a$", "b", "F"} <= set(texts) and fig._suptitle.get_text() == "my KAN"
    assert all(p.get_xticks().size > 0 for p in _panels(fig))
    assert all(len(p.get_lines()) == 2 for p in _panels(fig))  # curve + sample dots
    assert os.listdir(tmp_path) == []  # nothing written unless asked
    model.plot(folder=tmp_path / "figs")
    model.plot(path=tmp_path / "kan.svg")
    model.plot(path=tmp_path / "kan.pdf")
    assert os.listdir(tmp_path / "figs") == ["kan.png"]
    assert (tmp_path / "kan.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "kan.pdf").read_bytes().startswith(b"%PDF")
    with pytest.raises(DiagramError, match=r"in_vars must have one label per node \(2: x_1, "
                                           r"x_2\), got 1"):
        model.plot(in_vars=["a"])
    with pytest.raises(DiagramError, match="metric must be one of"):
        model.plot(metric="l1", x=torch.rand(10, 2))


def test_plot_ten_wide_layers_keep_labels_off_the_panels():
    model = kanir.KAN([10, 10, 10], seed=0, device="cpu")
    fig = model.plot()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    labels = [t.get_window_extent(renderer) for t in fig.axes[0].texts]
    panels = [p.get_window_extent(renderer) for p in _panels(fig)]
    assert len(labels) == 20 and len(panels) == 200
    assert not any(lab.overlaps(pan) for lab in labels for pan in panels)


def test_plot_history_and_candidates():
    model, data = _trained()
    hist = model.fit(data, steps=5, lamb=0.01, progress=False)
    fig = kanir.plot_history(hist)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.get_lines()] == ["train_loss", "test_loss", "reg"]
    assert min(min(hist["train_loss"]), min(hist["reg"])) > 0
    assert ax.get_yscale() == "log"
    with pytest.raises(DiagramError, match="history has no series"):
        kanir.plot_history(hist, keys=["nope"])
    fig = model.plot_candidates(0, 0, 0, topk=2, lib=["x", "sin", "x^2"])
    (ax,) = fig.axes
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[0] == "edge" and len(labels) == 3 and labels[1].split()[0] in {"x", "sin", "x^2"}


def test_kanir_plot_command(tmp_path):
    model = kanir.KAN([2, 3, 1], seed=0, device="cpu", input_names=["a", "b"])
    model.save(tmp_path / "m.kanir")
    np.savez(tmp_path / "d.npz", a=np.linspace(0, 1, 20), b=np.linspace(-1, 0, 20))
    assert main(["plot", str(tmp_path / "m.kanir"), "-o", str(tmp_path / "k.png")]) == 0
    assert (tmp_path / "k.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["plot", str(tmp_path / "m.kanir"), "-o", str(tmp_path / "k.svg"),
                 "--data", str(tmp_path / "d.npz"), "--beta", "5"]) == 0
    np.savez(tmp_path / "bad.npz", a=np.zeros(3))
    assert main(["plot", str(tmp_path / "m.kanir"), "-o", str(tmp_path / "k.png"),
                 "--data", str(tmp_path / "bad.npz")]) == 2
    assert main(["plot", str(tmp_path / "m.kanir"), "-o", str(tmp_path / "k.gif")]) == 2
