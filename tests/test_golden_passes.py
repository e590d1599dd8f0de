"""Golden tests of every registered pass (tests/golden/*.kir, FileCheck style): the file holds
the pipeline, the data, the input IR and the expected output; ``make_goldens.py`` writes them
and a reviewer reads the diff."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from kanir.passes.manager import registered_passes

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))

from golden import run_case, same_text  # noqa: E402

FILES = sorted(GOLDEN.glob("*.kir"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_golden(path):
    expected, actual = run_case(path.read_text())
    problem = same_text(expected, actual)
    assert problem is None, f"{path.name}: {problem}"


def test_every_registered_pass_has_two_goldens():
    uses: dict[str, int] = {}
    for path in FILES:
        pipeline = re.search(r"^# PIPELINE: (.*)$", path.read_text(), re.M).group(1)
        last = re.sub(r"\{[^{}]*(\{[^{}]*\}[^{}]*)*\}", "", pipeline).split(",")[-1].strip()
        uses[last] = uses.get(last, 0) + 1
    names = list(registered_passes())
    short = {n: uses.get(n, 0) for n in names if uses.get(n, 0) < 2}
    assert not short, f"passes with fewer than two golden files ending in them: {short}"


def test_the_comparison_fails_on_a_changed_number_or_word():
    text = "edge (0,0,1) = 2.5*sin(x) + 0.125\n"
    assert same_text(text, text.replace("0.125", "0.1250000000001")) is None
    assert "differs" in same_text(text, text.replace("0.125", "0.126"))
    assert "line 1" in same_text(text, text.replace("sin", "cos"))
    assert "lines" in same_text(text, text + "edge (0,1,1) = x\n")
