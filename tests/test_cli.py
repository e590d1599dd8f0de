"""The ``kanir`` command line: end to end through subprocesses, details in process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kanir import cli

ROOT = Path(__file__).resolve().parents[1]
KANIR = ROOT / ".venv" / "bin" / "kanir"
FORMULA = "m0/sqrt(1-v**2/c**2)"


def run(*args, cwd=None) -> subprocess.CompletedProcess:
    """The installed console script when present, else ``python -m kanir.cli``."""
    cmd = [str(KANIR)] if KANIR.exists() else [sys.executable, "-m", "kanir.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=cwd,
                          timeout=300)


# ---------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_compile_formula_show_end_to_end(tmp_path):
    model, diagram = tmp_path / "model.kanir", tmp_path / "kan.dot"
    r = run("compile", FORMULA, "--vars", "m0,v,c", "--ranges", "v=0:0.9,c=1:2",
            "-o", str(model), "--diagram", str(diagram))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "inputs     m0, v, c" in out
    assert "width      [3, " in out
    assert "read back  y_1 = m0/sqrt(1 - v**2/c**2)" in out
    assert "self-check ok: max relative error" in out
    assert model.exists() and diagram.read_text().startswith("digraph")

    r = run("formula", str(model))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "y_1 = m0/sqrt(1 - v**2/c**2)"

    svg = tmp_path / "out.svg" if shutil.which("dot") else tmp_path / "out.gv"
    r = run("show", str(model), "--diagram", str(svg))
    assert r.returncode == 0, r.stderr
    assert "outputs: y_1" in r.stdout and svg.exists()


def test_bad_formula_exits_2_with_a_clear_message():
    """Through ``python -m kanir.cli``, so that entry point is covered too."""
    r = subprocess.run([sys.executable, "-m", "kanir.cli", "compile", "m0/sqrt(1-v**2/c**2"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stdout == ""
    assert "kanir compile: error: formula syntax error at line 1, column" in r.stderr
    assert "Traceback" not in r.stderr


# ---------------------------------------------------------------------- in process
def main(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_compile_json(capsys):
    code, out, _ = main(capsys, "compile", "E = m*c**2; p = m*v", "--json")
    assert code == 0
    r = json.loads(out)
    assert r["inputs"] == ["c", "m", "v"] and r["outputs"] == ["E", "p"]
    assert r["read_back"] == {"E": "c**2*m", "p": "m*v"}
    assert r["self_check"]["ok"] and r["self_check"]["points"] == 1000
    assert all({"l", "i", "j", "function"} <= set(e) for e in r["edges"])


def test_self_check_skips_points_outside_the_domain(capsys):
    code, out, _ = main(capsys, "compile", FORMULA, "--vars", "m0,v,c", "--points", "200")
    assert code == 0
    assert "points outside the formula's domain skipped" in out


def test_ranges_option(capsys):
    assert cli.parse_ranges("0:1, v=2:3", ["v", "c"]) == {"v": (2.0, 3.0), "c": (0.0, 1.0)}
    assert cli.parse_ranges(None, ["x"]) == {"x": (0.5, 2.0)}
    code, _, err = main(capsys, "compile", "x*y", "--ranges", "z=0:1")
    assert code == 2
    assert "--ranges names 'z', which is not an input variable; the variables are x, y" in err
    code, _, err = main(capsys, "compile", "x*y", "--ranges", "x=1..2")
    assert code == 2 and "must look like LOW:HIGH or name=LOW:HIGH, e.g. v=0.5:2" in err
    code, _, err = main(capsys, "compile", "x*y", "--ranges", "x=2:1")
    assert code == 2 and "--ranges item 'x=2:1' needs finite LOW < HIGH" in err


def test_compile_and_tree_share_one_ranges_rule():
    """Both commands use kanir.cli_args: LOW < HIGH (an empty range samples one point), one
    message for each mistake."""
    from kanir import cli_args, cli_tree

    assert cli.parse_ranges is cli_args.parse_ranges is cli_tree.parse_ranges
    with pytest.raises(cli_args.UsageError, match=r"'x=1:1' needs finite LOW < HIGH"):
        cli_args.parse_ranges("x=1:1", ["x"])
    with pytest.raises(cli_args.UsageError, match=r"'x=0:inf' needs finite LOW < HIGH"):
        cli_args.parse_ranges("x=0:inf", ["x"])


@pytest.mark.parametrize("args,message", [
    (("compile", "erf(x)"), "unknown function 'erf'"),
    (("compile", "x + y", "--vars", "x"), "unknown name 'y'"),
    (("compile", "2 + pi"), "the formula has no variables"),
    (("formula", "/nonexistent/model.kanir"), "no model file at '/nonexistent/model.kanir'"),
    (("show", "/nonexistent/model.kanir"), "no model file"),
])
def test_bad_input_exits_2(capsys, args, message):
    code, out, err = main(capsys, *args)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_formula_of_a_spline_model(capsys, tmp_path):
    import torch

    import kanir

    path = tmp_path / "spline.kanir"
    kanir.KAN(width=[1, 1], grid=3, k=2, seed=0, dtype=torch.float64, device="cpu").save(path)
    code, _, err = main(capsys, "formula", str(path))
    assert code == 2 and "edge (0,0,0) has a spline part" in err
    code, out, _ = main(capsys, "formula", str(path), "--piecewise")
    assert code == 0 and "Piecewise" in out


def test_show_json_and_curves_need_a_diagram(capsys, tmp_path):
    import kanir

    path = tmp_path / "m.kanir"
    kanir.KAN.from_graph(kanir.compile("x*sin(y)"), device="cpu").save(path)
    code, out, _ = main(capsys, "show", str(path), "--json")
    assert code == 0 and json.loads(out)["width"][0] == 2
    code, _, err = main(capsys, "show", str(path), "--curves", str(tmp_path))
    assert code == 2 and "--curves draws spline edges into a diagram" in err


def test_help_of_every_command(capsys):
    for cmd in ("compile", "formula", "show"):
        with pytest.raises(SystemExit) as info:
            cli.main([cmd, "--help"])
        assert info.value.code == 0
        assert "usage: kanir " + cmd in capsys.readouterr().out


def test_tree_command_is_optional(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec",
                        lambda name, *a: None if name == "kanir.cli_tree" else real(name, *a))
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert "tree" not in sub.choices and {"compile", "formula", "show"} <= set(sub.choices)
