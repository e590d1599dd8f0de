"""The 120 Feynman equations (../shared/feynman.json): each compiles to an exact KAN.

Each compiled KAN, lowered to torch in float64, matches its formula to relative error < 1e-9 on
1000 random points inside the given ranges (error relative to max(|y|, 1e-6 max|y|), since 24
outputs cross or touch zero), and the formula read back by to_sympy equals the original.
The compile time of all 120 together is measured and printed (run with -s), not asserted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy
import torch

import kanir
from kanir.backends.sympy import to_sympy
from kanir.backends.torch import lower

FEYNMAN = Path(__file__).resolve().parents[2] / "shared" / "feynman.json"
pytestmark = pytest.mark.skipif(not FEYNMAN.exists(), reason=f"{FEYNMAN} is not present")


def _load() -> list[dict]:
    if not FEYNMAN.exists():
        return []
    out = []
    for e in json.loads(FEYNMAN.read_text()):
        syms = [sympy.Symbol(v["name"]) for v in e["variables"]]
        expr = sympy.parse_expr(e["formula"], local_dict={s.name: s for s in syms})
        out.append({"name": e["name"], "syms": syms, "expr": expr,
                    "ranges": [(v["low"], v["high"]) for v in e["variables"]]})
    return out


EQUATIONS = _load()


@pytest.fixture(scope="module")
def compiled() -> dict:
    """Every equation compiled once, timed together."""
    kanir.compile("x")  # the grammar is loaded once per session, not per formula
    t0 = time.perf_counter()
    graphs = {e["name"]: kanir.compile(e["expr"], e["syms"]) for e in EQUATIONS}
    secs = time.perf_counter() - t0
    print(f"\ncompiled all {len(graphs)} Feynman equations in {secs:.3f} s")
    return graphs


def test_all_120_compile(compiled):
    assert len(EQUATIONS) == 120
    assert len(compiled) == 120
    for g in compiled.values():
        assert g.problems() == []
        assert all(act.kind == "symbolic" for *_, act in g.act_edges())


@pytest.mark.parametrize("eq", EQUATIONS, ids=[e["name"] for e in EQUATIONS])
def test_matches_formula_in_float64(eq, compiled):
    g = compiled[eq["name"]]
    rng = np.random.default_rng(0)
    lo = np.array([r[0] for r in eq["ranges"]], dtype=float)
    hi = np.array([r[1] for r in eq["ranges"]], dtype=float)
    X = lo + (hi - lo) * rng.random((1000, len(lo)))
    ref = np.asarray(sympy.lambdify(eq["syms"], eq["expr"], "numpy")(*X.T), dtype=float)
    ref = ref * np.ones(len(X))
    with torch.no_grad():
        got = lower(g)(torch.tensor(X, dtype=torch.float64)).numpy()[:, 0]
    scale = np.maximum(np.abs(ref), 1e-6 * np.abs(ref).max())
    assert np.max(np.abs(got - ref) / scale) < 1e-9


@pytest.mark.parametrize("eq", EQUATIONS, ids=[e["name"] for e in EQUATIONS])
def test_formula_reads_back_equal(eq, compiled):
    back = to_sympy(compiled[eq["name"]])[0]
    expr = eq["expr"]
    if back == expr:
        return
    diff = (back - expr).rewrite(sympy.exp)
    if sympy.simplify(diff) == 0:
        return
    # numerically equal to 1e-12 at 30 digits where simplification cannot show it
    f1, f2 = (sympy.lambdify(eq["syms"], e, "mpmath") for e in (back, expr))
    rng = np.random.default_rng(1)
    with mpmath.workdps(30):
        for _ in range(20):
            pt = [mpmath.mpf(lo + (hi - lo) * rng.random()) for lo, hi in eq["ranges"]]
            a, b = f1(*pt), f2(*pt)
            assert abs(a - b) <= 1e-12 * max(abs(b), 1e-30)
