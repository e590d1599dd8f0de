"""The ``kanir`` command line: end to end through subprocesses, details in process."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kanir.cli import commands as cli

ROOT = Path(__file__).resolve().parents[1]
KANIR = ROOT / ".venv" / "bin" / "kanir"
FORMULA = "m0/sqrt(1-v**2/c**2)"


def run(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    """The installed console script when present, else ``python -m kanir.cli.commands``."""
    cmd = [str(KANIR)] if KANIR.exists() else [sys.executable, "-m", "kanir.cli.commands"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


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
    """Through ``python -m kanir.cli.commands``, so that entry point is covered too."""
    r = subprocess.run([sys.executable, "-m", "kanir.cli.commands", "compile", "m0/sqrt(1-v**2/c**2"],
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
    """Both commands use kanir.cli.args: LOW < HIGH (an empty range samples one point), one
    message for each mistake."""
    from kanir.cli import args as cli_args
    from kanir.cli import tree as cli_tree

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
                        lambda name, *a: None if name == "kanir.cli.tree" else real(name, *a))
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert "tree" not in sub.choices and {"compile", "formula", "show"} <= set(sub.choices)


# ---------------------------------------------------------------------- issue 10: clean failures
def _expect_error(r: subprocess.CompletedProcess, command: str, message: str) -> None:
    """Exit 2, nothing on stdout, one ``kanir CMD: error:`` line on stderr, no traceback."""
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.startswith(f"kanir {command}: error: "), r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_unwritable_outputs_exit_2_with_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    cases = [(["--diagram", str(tmp_path / "file" / "k.dot")],
              f"--diagram: cannot write '{tmp_path}/file/k.dot': Not a directory"),
             (["-o", str(tmp_path / "file" / "m.kanir")],
              f"cannot save to '{tmp_path}/file/m.kanir': '{tmp_path}/file' is a file, not a "
              f"folder")]
    if Path("/proc").is_dir():
        cases += [(["--diagram", "/proc/k.svg"], "--diagram: cannot write '/proc/k.svg': "),
                  (["-o", "/proc/m.kanir"], "cannot save to '/proc/m.kanir': cannot create a "
                                            "file in '/proc'")]
    for args, message in cases:
        _expect_error(run("compile", "x*y", *args), "compile", message)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the /proc and "
                                               "file-as-folder cases cover unwritable places")
def test_read_only_folder_exits_2(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        _expect_error(run("compile", "x*y", "--diagram", str(folder / "k.dot")), "compile",
                      "Permission denied")
    finally:
        folder.chmod(0o700)


def test_negative_seed_and_repeated_ranges_exit_2():
    _expect_error(run("compile", "x*y", "--seed", "-1"), "compile",
                  "--seed must be a non-negative integer, got -1")
    _expect_error(run("compile", "x*y", "--ranges", "x=0:1,y=1:2,x=1:2"), "compile",
                  "--ranges gives 'x' twice ('x=0:1' and 'x=1:2'); give each variable once")


def _saved(tmp_path, edit) -> Path:
    """A compiled model's file rewritten by ``edit(doc)`` (graph.json as a dict)."""
    import kanir
    from kanir.ir.io import graph_to_bytes

    src = zipfile.ZipFile(io.BytesIO(graph_to_bytes(kanir.compile("x*sin(y)"))))
    doc = json.loads(src.read("graph.json"))
    edit(doc)
    path = tmp_path / "damaged.kanir"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("graph.json", json.dumps(doc))
        z.writestr("arrays.npz", src.read("arrays.npz"))
    return path


def test_damaged_model_files_exit_2(tmp_path):
    wrong_type = _saved(tmp_path, lambda d: d.update(edges="x"))
    _expect_error(run("show", str(wrong_type)), "show",
                  "is damaged: field graph.edges must be a list, got 'x'")
    blob = bytearray(wrong_type.read_bytes())
    info = zipfile.ZipFile(wrong_type).getinfo("graph.json")
    blob[info.header_offset + 30 + len(info.filename) + len(info.extra)] = 0xFF  # bad deflate
    wrong_type.write_bytes(bytes(blob))
    _expect_error(run("formula", str(wrong_type)), "formula",
                  "is damaged or not a kanir model file (Error -3 while decompressing data")


def test_non_regular_files_are_refused_not_read_forever(tmp_path):
    fifo = tmp_path / "pipe.kanir"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo)):
        if Path(path).exists():
            _expect_error(run("formula", path, timeout=120), "formula",
                          f"cannot read '{path}': it is not a regular file")


def test_a_closed_stdout_ends_quietly(tmp_path):
    """``kanir formula m.kanir --piecewise | head -c 600``: the reader leaves; no traceback."""
    import kanir

    path = tmp_path / "spline.kanir"
    kanir.KAN(width=[2, 3, 1], grid=10, seed=0, device="cpu").save(path)
    cmd = [str(KANIR)] if KANIR.exists() else [sys.executable, "-m", "kanir.cli.commands"]
    p = subprocess.Popen(cmd + ["formula", str(path), "--piecewise"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.close()  # nobody reads: the first write fails with EPIPE
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) == cli.EXIT_BROKEN_PIPE
    assert err == ""


def test_show_describes_an_expression_level_file(tmp_path):
    from kanir.frontend.compiler import compile_expression
    from kanir.ir.io import save_graph

    path = tmp_path / "expr.kanir"
    save_graph(compile_expression("x*sin(y) + z"), path)
    r = run("show", str(path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:4] == [
        "expression-level graph (not layered; kanir.passes.canonicalize layers it)",
        "inputs     x, y, z", "outputs    y_1", "nodes      3 input, 1 mult, 1 output, 3 subnode"]
    assert "  y -> u-3-1  sin[x]" in r.stdout
    _expect_error(run("show", str(path), "--diagram", str(tmp_path / "e.dot")), "show",
                  "--diagram draws layered KANs; this file holds an expression-level graph")


def test_show_json_of_an_expression_level_file(capsys, tmp_path):
    from kanir.frontend.compiler import compile_expression
    from kanir.ir.io import save_graph

    path = tmp_path / "expr.kanir"
    save_graph(compile_expression("x*y"), path)
    code, out, _ = main(capsys, "show", str(path), "--json")
    r = json.loads(out)
    assert code == 0 and r["level"] == "expr" and r["inputs"] == ["x", "y"]
    assert r["nodes"] == {"input": 2, "output": 1, "subnode": 2}  # the output is the product
    assert r["edges"] == [{"from": "x", "to": "u-3-0", "function": "x"},
                          {"from": "y", "to": "u-3-1", "function": "x"}]


def test_errors_name_the_flags_not_python_keywords(tmp_path):
    import kanir

    r = run("compile", "2 + pi")
    _expect_error(r, "compile", "pass --vars NAMES to compile a constant")
    assert "variables=" not in r.stderr
    path = tmp_path / "spline.kanir"
    kanir.KAN(width=[1, 1], grid=3, seed=0, device="cpu").save(path)
    r = run("formula", str(path))
    _expect_error(r, "formula", "or pass --piecewise for its piecewise polynomial")
    assert "spline=" not in r.stderr


def test_flag_names_translation():
    from kanir.cli.args import flag_names

    assert flag_names("pass variables=[...] to x") == "pass --vars NAMES to x"
    assert flag_names("got variables=['a']") == "got --vars['a']"
    assert flag_names('pass spline="piecewise" or') == "pass --piecewise or"


def test_json_mult_arity_is_always_per_layer_lists():
    uniform = json.loads(run("compile", "x*y", "--json").stdout)
    assert uniform["width"] == [2, [0, 1]] and uniform["mult_arity"] == [[], [2]]
    mixed = json.loads(run("compile", "x*y*z + x*y", "--json").stdout)
    assert mixed["width"] == [3, [0, 2], 1] and mixed["mult_arity"] == [[], [2, 3], []]


def test_unwritable_curves_folder_exits_2(capsys, tmp_path):
    import kanir

    path = tmp_path / "m.kanir"
    kanir.KAN([2, 2, 1], seed=0, device="cpu").save(path)
    code, _, err = main(capsys, "show", str(path), "--diagram", str(tmp_path / "k.dot"),
                        "--curves", str(path))
    assert code == 2
    assert err == f"kanir show: error: --curves: cannot write '{path}': File exists\n"
