"""Tests of the ``kanir tree`` subcommand (kanir.cli.tree)."""

import argparse
import json
import subprocess
import sys

import pytest

import kanir.backends.tree_dot as tree_dot
from kanir.cli import tree as cli_tree


def _run(argv, capsys):
    parser = argparse.ArgumentParser(prog="kanir")
    cli_tree.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["tree", *argv])
    rc = cli_tree.run(args)
    out, err = capsys.readouterr()
    return rc, out, err


def test_prints_the_tree(capsys):
    rc, out, err = _run(["q*v*B/m", "--vars", "q,v,B,m"], capsys)
    assert rc == 0 and err == ""
    assert out.splitlines() == ["mul(q, v, B, m)", "+-- q", "+-- v", "+-- B", "`-- m"]


def test_ranges_and_scores(capsys):
    rc, out, _ = _run(["x1 + x2*x3", "--ranges=-1:1,x1=0:3", "--scores", "--samples", "300"],
                      capsys)
    lines = out.splitlines()
    assert rc == 0 and lines[0].startswith("add(x1, x2, x3)  [add ")
    assert lines[2].startswith("`-- mul(x2, x3)  [add")


def test_json_output(capsys):
    rc, out, _ = _run(["x1 + x2*x3", "--ranges", "x2=1:2", "--json", "--samples", "300"], capsys)
    report = json.loads(out)
    assert rc == 0 and report["text"] == "add(x1, mul(x2, x3))"
    assert report["variables"] == ["x1", "x2", "x3"]
    assert report["ranges"] == {"x1": [0.5, 2.0], "x2": [1.0, 2.0], "x3": [0.5, 2.0]}
    assert report["tree"]["root"]["kind"] == "add"
    assert report["tree"]["root"]["children"][1]["kind"] == "mul"
    assert "diagram" not in report


def test_diagram_dot_and_box_style(tmp_path, capsys):
    path = tmp_path / "tree.dot"
    rc, _, _ = _run(["q*v*B/m", "--vars", "q,v,B,m", "--diagram", str(path), "--style", "box",
                     "--samples", "300"], capsys)
    src = path.read_text()
    assert rc == 0 and "subgraph cluster_g_0_1_2_3" in src and 'label="mul: ×"' in src
    assert "v2 [label=B shape=plaintext]" in src


def test_missing_graphviz_writes_dot_and_fails_cleanly(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tree_dot.shutil, "which", lambda name: None)
    rc, out, err = _run(["x1*x2", "--diagram", str(tmp_path / "t.svg"), "--samples", "300"],
                        capsys)
    assert rc == 2 and out.startswith("mul(x1, x2)")
    assert "apt-get install graphviz" in err and "brew install graphviz" in err
    assert (tmp_path / "t.dot").read_text().startswith("digraph")
    assert not (tmp_path / "t.svg").exists()


@pytest.mark.parametrize("argv, message", [
    (["sin(x1"], "never closed"),
    (["x1 + y", "--vars", "x1"], "unknown name 'y'"),
    (["x1 +* x2"], "unexpected '*'"),
    (["log(x1)*x2", "--ranges=-1:1"], "NaN/inf"),
    (["x1*x2", "--ranges", "z=0:1"], "'z', which is not an input variable"),
    (["x1*x2", "--ranges", "x1=2:1"], "LOW < HIGH"),
    (["x1*x2", "--ranges", "x1=a:b"], "LOW:HIGH"),
    (["x1*x2", "--sep-th", "0"], "--sep-th must be a positive"),
    (["x1*x2", "--samples", "3"], "--samples must be at least 10"),
    (["x1*x2", "--vars", ","], "--vars needs at least one name"),
    (["x1*x2", "--seed", "-1"], "--seed must be a non-negative integer, got -1"),
    (["x1*x2", "--ranges", "x1=0:1,x1=0:2"], "--ranges gives 'x1' twice"),
    (["x1*x2", "--ranges", "0:1,0:2"], "--ranges gives the range of every variable twice"),
    (["x1*x2", "--diagram", "/proc/t.dot"], "--diagram: cannot write '/proc/t.dot'"),
])
def test_bad_input_exits_2_with_a_message(argv, message, capsys):
    rc, out, err = _run(argv, capsys)
    assert rc == 2 and out == ""
    assert err.startswith("kanir tree: error: ") and message in err and "Traceback" not in err


def test_as_a_subprocess():
    code = "import sys; from kanir.cli.tree import main; sys.exit(main(sys.argv[1:]))"
    ok = subprocess.run([sys.executable, "-c", code, "x1 + x2*x3", "--samples", "200"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.splitlines()[0] == "add(x1, x2, x3)"
    assert ok.stderr == ""


def test_wired_into_the_kanir_command(capsys):
    from kanir.cli import commands as cli

    assert "tree" in cli.build_parser()._subparsers._group_actions[0].choices
    rc = cli.main(["tree", "x1*x2 + x3", "--samples", "200"])
    out = capsys.readouterr().out
    assert rc == 0 and out.splitlines()[0] == "add(x1, x2, x3)"
