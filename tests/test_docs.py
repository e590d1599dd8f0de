"""Every code block of README.md and docs/*.md runs as written, and what its comments claim holds.

A page's ```python blocks run in order in one namespace (later blocks continue earlier ones, as
a reader would), inside a temporary working directory. A claim is written in the page as a
comment after a ``print``: ``print(expr)  # -> text``. The test checks that ``str(expr)`` is
``text``; ``# -> ~1e-3`` means a number no larger than that; ``# -> ≈ 0.25`` a number within 1%.
```sh blocks: every line that runs ``kanir`` (or ``.venv/bin/kanir``) runs the real command in
the same directory and must exit 0. Blocks in other languages (text, output) are not code.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)?[^\n]*\n(.*?)^```", re.S | re.M)
CLAIM = re.compile(r"^(?P<indent>\s*)print\((?P<expr>.*)\)\s*#\s*->\s*(?P<claim>.+?)\s*$")


def blocks(page: Path) -> list[tuple[str, str]]:
    """(language, code) for each fenced block of a markdown page, in order."""
    return [((m.group(1) or "").lower(), m.group(2)) for m in FENCE.finditer(page.read_text())]


def check_claim(value, claim: str, where: str) -> None:
    """Compare a printed value with the claim written after it in the page."""
    if claim.startswith("~"):
        bound = float(claim[1:])
        assert abs(float(value)) <= bound, f"{where}: {value!r} is larger than the claimed {claim}"
    elif claim.startswith("≈"):
        want = float(claim[1:])
        assert abs(float(value) - want) <= 0.01 * abs(want), f"{where}: {value!r} is not {claim}"
    else:
        assert str(value) == claim, f"{where}: printed {value!s}, the page claims {claim}"


def instrument(code: str, where: str) -> str:
    """Turn ``print(expr)  # -> claim`` lines into checked claims; leave every other line."""
    out = []
    for n, line in enumerate(code.splitlines(), 1):
        m = CLAIM.match(line)
        if m:
            line = (f"{m['indent']}__claim__(({m['expr']}), {m['claim']!r}, "
                    f"{where + f' block line {n}'!r})")
        out.append(line)
    return "\n".join(out)


def cli_lines(code: str, have_dot: bool = True) -> list[str]:
    """The ``kanir`` command lines of a shell block; without Graphviz's ``dot`` a rendered
    ``--diagram`` (.svg/.png/.pdf) is written as DOT source instead, which needs no ``dot``."""
    lines = []
    for raw in code.splitlines():
        line = raw.split(" #")[0].strip()
        if line.startswith(("kanir ", ".venv/bin/kanir ")):
            if not have_dot:
                line = re.sub(r"(--diagram\s+\S+)\.(svg|png|pdf)\b", r"\1.dot", line)
            lines.append(line)
    return lines


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_page_code_blocks_run_and_their_claims_hold(page, tmp_path, monkeypatch):
    found = blocks(page)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__", "__claim__": check_claim}
    kanir_cmd = shutil.which("kanir", path=str(Path(sys.executable).parent))
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    for b, (lang, code) in enumerate(found, 1):
        where = f"{page_id(page)} block {b}"
        if lang == "python":
            exec(compile(instrument(code, where), where, "exec"), namespace)  # noqa: S102
        elif lang in ("sh", "bash", "shell", "console"):
            for line in cli_lines(code, shutil.which("dot") is not None):
                args = line.split(maxsplit=1)[1] if " " in line else ""
                run = subprocess.run(f"{kanir_cmd} {args}", shell=True, cwd=tmp_path, env=env,
                                     capture_output=True, text=True, timeout=120)
                assert run.returncode == 0, f"{where}: `{line}` failed:\n{run.stderr}"


def test_the_extractor_finds_blocks_and_claims():
    code = "x = 2\nprint(x + 1)  # -> 3\n"
    ns = {"__claim__": check_claim}
    exec(instrument(code, "t"), ns)
    with pytest.raises(AssertionError, match="the page claims 4"):
        exec(instrument("print(3)  # -> 4", "t"), ns)
    with pytest.raises(AssertionError, match="larger than"):
        exec(instrument("print(0.5)  # -> ~1e-3", "t"), ns)
    assert any(lang == "python" for lang, _ in blocks(ROOT / "README.md"))
    assert cli_lines(".venv/bin/kanir tree 'x*y'   # a comment\nmake demo\n") == [
        ".venv/bin/kanir tree 'x*y'"]
