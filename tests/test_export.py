"""kanir.export: C (compiled with cc), NumPy, Python, JAX, LaTeX, TorchScript and ONNX agree with
the model; spline edges export as their exact piecewise polynomials; the ``kanir export`` CLI."""

import ctypes
import os
import shutil
import subprocess

import numpy as np
import pytest
import sympy
import torch

import kanir
from kanir.backends.export import ExportError, export
from kanir.cli.commands import main

TOL = 1e-12


def _spline_model():
    """Spline-only, knots not at round numbers, a second layer fed by splines."""
    return kanir.KAN([2, 3, 2], grid=7, grid_range=(-1.3, 2.1), seed=3, dtype=torch.float64,
                     versions=False)


def _mixed_model():
    """A mult node, a symbolic edge with a pole-free function and spline edges."""
    m = kanir.KAN([2, [1, 1], 1], grid=5, seed=0, dtype=torch.float64, versions=False)
    m.fix_symbolic(0, 0, 0, "sin", params=(1.3, 0.2, 0.7, -0.1), verbose=0)
    return m


def _points(n=64, lo=-2.5, hi=3.0, d=2):
    """Inside, at the edge of and outside the knot span (where splines are zero)."""
    g = torch.Generator().manual_seed(1)
    return lo + (hi - lo) * torch.rand(n, d, dtype=torch.float64, generator=g)


@pytest.fixture(params=["spline", "mixed"])
def model(request):
    return _spline_model() if request.param == "spline" else _mixed_model()


def _reference(model, x):
    with torch.no_grad():
        return model(x).numpy()


def _close(got, want):
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL)


def test_c_compiles_and_agrees(model, tmp_path):
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler `cc` on PATH")
    src = tmp_path / "kan.c"
    export(model, to="c", path=src)
    lib = tmp_path / "libkan.so"
    subprocess.run([cc, "-std=c99", "-O1", "-ffp-contract=off", "-shared", "-fPIC", "-o",
                    str(lib), str(src), "-lm"], check=True, capture_output=True)
    f = ctypes.CDLL(str(lib)).kan_batch
    dptr = ctypes.POINTER(ctypes.c_double)
    f.argtypes = [dptr, dptr, ctypes.c_long]
    x = _points()
    xin = np.ascontiguousarray(x.numpy())
    out = np.zeros((x.shape[0], len(model.output_names)))
    f(xin.ctypes.data_as(dptr), out.ctypes.data_as(dptr), x.shape[0])
    _close(out, _reference(model, x))


def test_numpy_code_agrees(model):
    ns = {}
    exec(export(model, to="numpy"), ns)
    x = _points()
    _close(ns["kan"](x.numpy()), _reference(model, x))
    assert ns["kan"](x.numpy()[0]).shape == (len(model.output_names),)  # one sample


def test_python_code_agrees(model):
    ns = {}
    exec(export(model, to="python", name="f"), ns)
    x = _points(16)
    _close(np.array([ns["f"](list(r)) for r in x.numpy()]), _reference(model, x))


def test_jax_code_agrees(model):
    pytest.importorskip("jax", reason="jax is not installed: the JAX export is not run")
    import jax

    jax.config.update("jax_enable_x64", True)
    ns = {}
    exec(export(model, to="jax"), ns)
    x = _points()
    _close(np.asarray(ns["kan"](x.numpy())), _reference(model, x))


@pytest.mark.filterwarnings("ignore:`torch.jit.(load|save)` is deprecated")
def test_torchscript_dynamic_batch(model, tmp_path):
    path = tmp_path / "kan.pt"
    export(model, to="torchscript", path=path)
    loaded = torch.jit.load(str(path))
    for n in (1, 5, 40):
        x = _points(n)
        _close(loaded(x).numpy(), _reference(model, x))


def test_onnx_runs_in_onnxruntime():
    pytest.importorskip("onnx", reason="onnx is not installed (pip install kanir[onnx])")
    ort = pytest.importorskip("onnxruntime",
                              reason="onnxruntime is not installed (pip install kanir[onnx])")
    model = _mixed_model()
    session = ort.InferenceSession(export(model, to="onnx"))
    for n in (1, 9):
        x = _points(n)
        got = session.run(None, {"inputs": x.numpy()})[0]
        _close(got, _reference(model, x))


def test_latex_of_a_symbolic_model_parses_back():
    try:
        from sympy.parsing.latex import parse_latex

        parse_latex("x")
    except Exception as e:  # sympy's LaTeX parser needs the antlr4 runtime
        pytest.skip(f"sympy's LaTeX parser is unavailable ({type(e).__name__}: {e}); install "
                    f"antlr4-python3-runtime==4.11")
    g = kanir.compile("x*y + sin(z) + exp(-x**2/2)/sqrt(2*pi) + tanh(x)")
    text = export(g, to="latex")
    body = text.split("\\begin{equation}")[1].split("\\end{equation}")[0]
    lhs, rhs = body.split("=", 1)
    assert lhs.strip() == "y_{1}"
    parsed = parse_latex(rhs.strip()).subs(sympy.Symbol("pi"), sympy.pi)
    want = kanir.to_sympy(g)[0]
    assert sympy.simplify(parsed - want) == 0


def test_latex_of_a_spline_model_lists_nodes():
    text = export(_spline_model(), to="latex")
    assert "\\begin{aligned}" in text and "\\begin{cases}" in text
    assert "y_{2} &= h_{2 1}" in text


def test_exact_constants_survive_in_code():
    g = kanir.compile("pi*x + sqrt(2)*y")
    assert "M_PI" in export(g, to="c") or "3.14159265358979" in export(g, to="c")
    ns = {}
    exec(export(g, to="numpy"), ns)
    assert ns["kan"]([1.0, 1.0])[0] == pytest.approx(np.pi + np.sqrt(2), rel=1e-15)


def test_input_names_that_are_python_keywords():
    m = kanir.KAN([2, 1], grid=3, seed=0, dtype=torch.float64, versions=False,
                  input_names=["lambda", "def"])  # Python keywords
    ns = {}
    exec(export(m, to="python"), ns)
    x = _points(4)
    _close(np.array([ns["kan"](r) for r in x.numpy()]), _reference(m, x))


def test_bad_arguments_are_export_errors():
    m = _spline_model()
    with pytest.raises(ExportError, match="unknown export target 'fortran'; choose one of"):
        export(m, to="fortran")
    with pytest.raises(ExportError, match="needs a kanir.KAN or a KanGraph, got int"):
        export(42, to="c")
    with pytest.raises(ExportError, match="name must be an identifier"):
        export(m, to="c", name="my kan")
    with pytest.raises(ExportError, match="does not exist"):
        export(m, to="c", path="/nonexistent-folder/kan.c")
    assert isinstance(ExportError("x"), kanir.KanirError)


def test_kanir_export_is_lazy_public_api():
    assert kanir.export is export


def test_cli_export(tmp_path, capsys):
    path = tmp_path / "m.kanir"
    _spline_model().save(path)
    assert main(["export", str(path), "--to", "numpy"]) == 0
    ns = {}
    exec(capsys.readouterr().out, ns)
    x = _points(8)
    _close(ns["kan"](x.numpy()), _reference(kanir.load(path), x))
    out = tmp_path / "kan.c"
    assert main(["export", str(path), "--to", "c", "-o", str(out)]) == 0
    assert "void kan_batch(" in out.read_text()


def test_cli_export_errors(tmp_path, capsys):
    path = tmp_path / "m.kanir"
    _spline_model().save(path)
    assert main(["export", str(path), "--to", "onnx"]) == 2
    assert capsys.readouterr().err.strip() == ("kanir export: error: --to onnx writes a binary "
                                               "file: give -o FILE")
    assert main(["export", str(tmp_path / "missing.kanir"), "--to", "c"]) == 2
    assert capsys.readouterr().err.startswith("kanir export: error: ")
    with pytest.raises(SystemExit) as e:
        main(["export", str(path), "--to", "fortran"])
    assert e.value.code == 2


def test_onnx_export_writes_nothing_into_the_working_directory(tmp_path, monkeypatch):
    """Some torch exporters turn a file object into a file named after its repr in the working
    directory ('<_io.BytesIO object at ...>'); kanir exports through a private temp file."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "onnx", types.ModuleType("onnx"))
    seen = []

    def careless_export(module, args, f, **kw):  # what such an exporter does with f
        seen.append(f)
        with open(str(f), "wb") as out:
            out.write(b"ONNX")

    monkeypatch.setattr(torch.onnx, "export", careless_export)
    monkeypatch.chdir(tmp_path)
    model = kanir.KAN([2, 2, 1], seed=0, dtype=torch.float64, versions=False)
    assert kanir.export(model, to="onnx") == b"ONNX"
    assert os.listdir(tmp_path) == []
    assert os.path.isabs(str(seen[0])) and not os.path.exists(str(seen[0]))


def test_exported_files_get_a_plain_files_mode(tmp_path):
    """Atomic writing must not leave mkstemp's 0600: the file reads like one open() wrote."""
    m = kanir.KAN(width=[2, 1], grid=3, seed=0)
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    for to, name in (("torchscript", "m.pt"), ("python", "m.py")):
        export(m, to=to, path=tmp_path / name)
        assert (tmp_path / name).stat().st_mode & 0o777 == plain.stat().st_mode & 0o777, to
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "m.py", "plain"]


def test_export_into_an_unwritable_place_is_an_export_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportError, match="cannot write .*file/m.py.*is a file, not a folder"):
        export(kanir.KAN(width=[2, 1], grid=3, seed=0), to="python", path=tmp_path / "file" / "m.py")
