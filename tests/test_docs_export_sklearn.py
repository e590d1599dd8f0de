"""The python blocks of docs/export.md and docs/sklearn.md run as written and print what their
``# -> expected`` comments claim."""

import contextlib
import io
import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
CLAIM = re.compile(r"^print\((.*)\)\s*#\s*->\s*(.*)$")


def _run_page(name: str) -> None:
    ns: dict = {}
    text = (DOCS / name).read_text()
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, f"{name} block", "exec"), ns)
        claims = [CLAIM.match(line.strip()).group(2) for line in block.splitlines()
                  if CLAIM.match(line.strip())]
        claims += [m.group(1) for m in re.finditer(r"^# -> (.*)$", block, re.M)]
        printed = out.getvalue().splitlines()
        assert printed == claims, f"{name}: printed {printed}, the page claims {claims}"


def test_export_page(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the page saves model.kanir for its command-line lines
    _run_page("export.md")


def test_sklearn_page(tmp_path, monkeypatch):
    pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install kanir[sklearn])")
    monkeypatch.chdir(tmp_path)
    _run_page("sklearn.md")
