"""``kanir opt``: pass pipelines on model files, end to end on a trained model saved with
``model.save``, with caret errors (exit 2) for bad pipeline text."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import kanir
from kanir.cli.commands import main
from kanir.ir.io import load_graph
from kanir.passes.manager import registered_passes


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """(trained model file, .npz with x, .csv with named columns) for y = sin(2 x1) + x2^2
    (x3 unused), trained a few steps."""
    d = tmp_path_factory.mktemp("opt")
    data = kanir.create_dataset(lambda x: torch.sin(2 * x[:, [0]]) + x[:, [1]] ** 2, n_var=3,
                                train_num=100, test_num=20, seed=0)
    m = kanir.KAN(width=[3, 3, 1], grid=3, k=3, seed=0, device="cpu")
    m.fit(data, steps=3, lamb=0.01, progress=False)
    m.save(d / "trained.kanir")
    x = data["train_input"].numpy()
    np.savez(d / "data.npz", x=x)
    rows = [f"{r[2]:.17g},{r[0]:.17g},{r[1]:.17g}" for r in x.astype(np.float64)]
    (d / "data.csv").write_text("x_3,x_1,x_2\n" + "\n".join(rows) + "\n")  # columns by name
    return d / "trained.kanir", d / "data.npz", d / "data.csv"


def _edges(path) -> int:
    graph, _ = load_graph(path)
    return len(list(graph.act_edges()))


def _opt(capsys, *args):
    code = main(["opt", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_prune_auto_swap_end_to_end(files, tmp_path):
    model, npz, _ = files
    out = tmp_path / "pruned.kanir"
    cmd = [sys.executable, "-c", "import sys; from kanir.cli.commands import main; "
           "sys.exit(main())"]
    r = subprocess.run(cmd + ["opt", str(model), "-p", "prune{edge_th=0.05},auto-swap", "--data",
                              str(npz), "-o", str(out)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr == f"wrote {out}\n"
    pruned = kanir.KAN.load(out)
    assert _edges(out) < _edges(model) == 12
    assert pruned.width_spec[0] == 3 and pruned.width_spec[1] < 3
    # the same pipeline through the facade gives the same model
    ref = kanir.KAN.load(model).prune(edge_th=0.05, x=torch.as_tensor(np.load(npz)["x"]))
    ref.auto_swap(x=torch.as_tensor(np.load(npz)["x"]))
    # same function and structure; analysis results (scores) depend on what was measured last
    assert _without_scores(ref.graph).same(_without_scores(pruned.graph))


def _without_scores(graph):
    g = graph.copy()
    for _, attrs in list(g.nx.nodes(data=True)) + [(None, a) for *_, a in g.nx.edges(data=True)]:
        for key in ("score", "std", "mean", "l1"):
            attrs.pop(key, None)
    return g


def test_data_from_a_table_with_named_columns(files, tmp_path, capsys):
    model, npz, csv = files
    a, b = tmp_path / "a.kanir", tmp_path / "b.kanir"
    assert _opt(capsys, model, "-p", "prune{edge_th=0.05}", "--data", npz, "-o", a)[0] == 0
    assert _opt(capsys, model, "-p", "prune{edge_th=0.05}", "--data", csv, "-o", b)[0] == 0
    assert load_graph(a)[0].same(load_graph(b)[0])


def test_list_passes(capsys):
    code, out, err = _opt(capsys, "--list-passes")
    assert code == 0 and err == ""
    names = [line.split()[0] for line in out.splitlines() if not line.startswith(" ")]
    assert names == sorted(registered_passes())
    assert "prune  [transform, needs data or scores]  prune-node then prune-edge then " \
           "drop-dead-nodes" in out
    assert "    edge_th: float = 0.03" in out
    assert "connection-cost  [analysis, needs data or scores]" in out


@pytest.mark.parametrize("pipeline, message, column", [
    ("expand-width{layer=2.5}", "option 'layer' of pass 'expand-width' must be an int, got "
                                "float 2.5", 20),
    ("prune{edge_th=yes}", "option 'edge_th' of pass 'prune' must be a float, got str 'yes'",
     15),
    ("prune{fold_mean=0}", "option 'fold_mean' of pass 'prune' must be a bool, got int 0", 17),
    ("prune,perturb{mode=0.5}", "option 'mode' of pass 'perturb' must be a str, got float "
                                "0.5", 20),
    ("prune,auto-swp", "unknown pass 'auto-swp'; did you mean 'auto-swap'?", 7),
    ("prune{edge_th=0.05}}", "bad pipeline syntax: unexpected '}'; expected ','", 20),
])
def test_bad_pipelines_exit_2_with_a_caret(files, capsys, pipeline, message, column):
    model, npz, _ = files
    code, out, err = _opt(capsys, model, "-p", pipeline, "--data", npz)
    assert code == 2 and out == ""
    lines = err.split("\n")
    assert lines[0].startswith(f"kanir opt: error: {message}"), err
    assert lines[0].endswith(f"(column {column})")
    assert lines[1] == "    " + pipeline
    assert lines[2] == " " * (3 + column) + "^"


def test_data_pass_without_data_names_the_pass(files, capsys):
    model, _, _ = files
    code, _, err = _opt(capsys, model, "-p", "expand-depth,prune{edge_th=0.05}")
    assert code == 2
    assert err.startswith("kanir opt: error: pass 'prune' (#2 of pipeline "
                          "'expand-depth,prune{edge_th=0.05}') needs data x")
    code, _, err = _opt(capsys, model, "-p", "expand-depth,attribute")
    assert (code, err) == (2, "kanir opt: error: pass 'attribute' (#2) needs data: give "
                              "--data FILE\n")


def test_an_error_inside_a_pass_names_it(files, capsys):
    model, _, _ = files
    code, _, err = _opt(capsys, model, "-p", "expand-width{layer=5}")
    assert code == 2
    assert err.startswith("kanir opt: error: pass 'expand-width' (#1): layer (a hidden node "
                          "layer, 1..1")


def test_print_ir_after_all_and_timing(files, tmp_path, capsys):
    model, npz, _ = files
    code, out, err = _opt(capsys, model, "-p", "prune{edge_th=0.05},connection-cost,auto-swap",
                          "--data", npz, "-o", tmp_path / "o.kanir", "--print-ir-after-all",
                          "--timing")
    assert code == 0
    assert out.startswith("connection-cost (#2): ")
    assert float(out.split(": ")[1]) > 0
    a = err.index("// ----- IR after prune (#1) ----- //")
    b = err.index("// ----- IR after auto-swap (#3) ----- //")
    assert a < b and "IR after connection-cost" not in err  # analyses leave the IR alone
    pruned = load_graph(tmp_path / "o.kanir")[0]  # auto-swap only reorders: same summary
    if not hasattr(pruned, "to_text"):
        assert err[a:b].split("\n", 1)[1] == pruned.summary() + "\n"
    table = err[err.index("  #  pass"):].splitlines()
    assert [row.split()[:2] for row in table[1:4]] == [["1", "prune"], ["2", "connection-cost"],
                                                        ["3", "auto-swap"]]
    assert table[4].split()[0] == "total"


def test_without_output_the_result_is_described(files, capsys):
    model, _, _ = files
    code, out, _ = _opt(capsys, model, "-p", "expand-depth")
    assert code == 0
    assert out.startswith("KanGraph width=[3, 3, 1, 1]")
