"""The benchmark's own judgement must be right too: what counts as an exact formula, and the
results file contract run_all relies on (``--out``)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_symbolic  # noqa: E402
import bench_symfit  # noqa: E402

NAMES, RANGES = ["mu", "Nn"], [[1, 5], [1, 5]]


@pytest.mark.parametrize("formula, exact", [
    ("Nn*mu", True),
    ("mu*Nn*1.0", True),  # an exactly decimal float is read as a rational
    ("Nn*mu/2*2", True),
    ("0.999959917381941*Nn*mu", False),  # a float left: not exact, however close
    ("Nn*mu + 1e-12", False),
    ("nan", False),
    ("zoo*Nn", False),
    ("Nn*(mu", False),  # unparsable
    ("", False),
    (None, False),
])
def test_judge_exact(formula, exact):
    assert bench_symbolic.judge(formula, "mu*Nn", NAMES, RANGES)["exact"] is exact


def test_judge_rounding_is_explicit_and_the_same_for_everyone():
    f = "0.999959917381941*Nn*mu"
    assert not bench_symbolic.judge(f, "mu*Nn", NAMES, RANGES)["exact"]
    assert bench_symbolic.judge(f, "mu*Nn", NAMES, RANGES, round_decimals=4)["exact"]
    assert not bench_symbolic.judge("0.98*Nn*mu", "mu*Nn", NAMES, RANGES, round_decimals=4)["exact"]


def test_judge_reports_r2_for_approximate_formulas():
    r = bench_symbolic.judge("1.01*Nn*mu", "mu*Nn", NAMES, RANGES)
    assert not r["exact"] and 0.99 < r["r2"] < 1.0 and "float" in r["how"]


def test_feynman_set_is_the_simplest_first_and_widths_put_the_product_last():
    eqs = bench_symbolic.feynman_set(20)
    assert len(eqs) == 20 and eqs[0]["name"] == "I.12.1"
    assert all(1 <= len(e["variables"]) <= 3 for e in eqs)
    assert bench_symbolic.width_for(1) == ([1, 1], 2)
    assert bench_symbolic.width_for(3) == ([3, [0, 1]], 3)


def test_symfit_bench_writes_its_section(tmp_path):
    out = tmp_path / "symfit.md"
    assert bench_symfit.main(["--repeat", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("## Batched affine fits")
    assert "| 9 edges × 4 functions" in text and "7/7" in text and "5/5" in text
