"""kanir.symbolic.simplify.time_limit: sympy.simplify in a forked child that is killed at the
limit (discover's I.10.7 run hung for minutes in trigsimp's factor on a 20-operation formula)."""

import os
import time

import pytest
import sympy

from kanir.errors import ArgumentError
from kanir.symbolic.simplify import simplify_keeping_exact, simplify_within_limit, time_limit

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

x, y = sympy.symbols("x y")
TRIG = sympy.sin(x) ** 2 + sympy.cos(x) ** 2 + sympy.Rational(1, 3) * x + 0.25 * y


def test_within_the_limit_the_result_is_simplify_s_own():
    plain = simplify_keeping_exact(TRIG)
    with time_limit(30):
        limited = simplify_keeping_exact(TRIG)
    assert limited == plain == x / 3 + 0.25 * y + 1
    assert limited.atoms(sympy.Rational) >= {sympy.Rational(1, 3)}  # exact constants stay exact


def test_past_the_limit_the_formula_comes_back_unsimplified(monkeypatch):
    def slow(e, *a, **k):
        time.sleep(30)
        return sympy.Integer(0)

    monkeypatch.setattr(sympy, "simplify", slow)  # the forked child inherits the patch
    t0 = time.perf_counter()
    with time_limit(0.5):
        out = simplify_keeping_exact(TRIG)
        assert simplify_within_limit(TRIG) is None
    assert time.perf_counter() - t0 < 10
    assert out == TRIG


def test_a_failing_child_keeps_the_formula(monkeypatch):
    def broken(e, *a, **k):
        raise RecursionError("deep")

    monkeypatch.setattr(sympy, "simplify", broken)
    with time_limit(5):
        assert simplify_keeping_exact(TRIG) == TRIG


def test_limits_nest_and_are_checked():
    with time_limit(5):
        with time_limit(None):
            assert simplify_within_limit(sympy.sin(x) ** 2 + sympy.cos(x) ** 2) == 1
    for bad in (0, -1, float("nan")):
        with pytest.raises(ArgumentError, match="time_limit needs seconds > 0 or None"):
            with time_limit(bad):
                pass
