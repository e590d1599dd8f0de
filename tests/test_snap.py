"""Tests of kanir.symbolic.snap: snapping constants to simple exact values, with and without data checks."""

import math

import pytest
import sympy
import torch

from kanir.errors import DataError
from kanir.symbolic.snap import affine_expr, ex_round, snap_params, snap_round, snap_value
from kanir.symbolic.symfit import fit_affine

T = torch.float64
X = sympy.Symbol("x")


@pytest.mark.parametrize("v,expected", [
    (3.14159, sympy.pi), (0.49999, sympy.Rational(1, 2)), (2.0001, sympy.Integer(2)),
    (0.3333, sympy.Rational(1, 3)), (1.41421, sympy.sqrt(2)), (-0.5, sympy.Rational(-1, 2)),
    (1.5708, sympy.pi / 2), (2.71828, sympy.E), (0.70711, sympy.sqrt(2) / 2),
    (6.28319, 2 * sympy.pi), (1.0472, sympy.pi / 3), (0.31831, 1 / sympy.pi),
    (99.99, sympy.Integer(100)), (0.0, sympy.Integer(0)), (1e-15, sympy.Integer(0)),
    (-7.0000001, sympy.Integer(-7)), (250.00002, sympy.Integer(250)),
])
def test_snap_value_hits(v, expected):
    got = snap_value(v)
    assert got is not None and sympy.simplify(got - expected) == 0


@pytest.mark.parametrize("v", [0.123456, 1.2345, 50.04, 123.4, 250.01, float("nan"),
                               float("inf")])
def test_snap_value_misses(v):
    assert snap_value(v) is None


def test_snap_value_prefers_simple_and_honours_tolerance():
    assert snap_value(0.50008) == sympy.Rational(1, 2)  # simpler beats anything closer
    assert snap_value(0.501) is None
    assert snap_value(0.501, rel_tol=3e-3) == sympy.Rational(1, 2)
    assert snap_value(1.2, candidates=[1, 2]) is None
    assert snap_value(9.8066, candidates=[sympy.Float(9.80665)]) == sympy.Float(9.80665)
    assert snap_value(-9.8066, candidates=["9.80665"]) == -sympy.Float(9.80665)
    with pytest.raises(DataError):
        snap_value(1.0, candidates=["x"])


def test_snap_round():
    assert snap_round(1.9999 * X**1.0002) == 2 * X
    assert snap_round(0.4999 * sympy.sin(3.14159 * X)) == sympy.sin(sympy.pi * X) / 2
    e = snap_round(2.34567 * X + 0.0123456)
    assert sorted(str(f) for f in e.atoms(sympy.Float)) == ["0.01235", "2.346"]
    assert snap_round(X**2 + 3) == X**2 + 3  # nothing to do


def test_ex_round_rounds_to_decimal_places_as_pykan():
    """pykan's ex_round(ex, n_digit) rounds floats to n_digit decimals and snaps nothing."""
    e = ex_round(1234.5678 * X + 3.14159 * sympy.sin(X) + sympy.Rational(1, 3), 2)
    assert str(e) == "1234.57*x + 3.14*sin(x) + 1/3"
    assert sorted(float(f) for f in e.atoms(sympy.Float)) == pytest.approx([3.14, 1234.57],
                                                                            rel=1e-3)
    assert sympy.Rational(1, 3) in e.args  # exact numbers are left alone
    e = ex_round(0.001 * X + 2.0, 2)  # 0.001 rounds to 0 at 2 decimals
    assert e.is_Float and float(e) == 2.0
    e = ex_round(1.9999 * X, 2)  # a float 2.0 times x: nothing is snapped to the integer 2
    assert str(e) == "2.0*x" and e.args[0].is_Float
    assert str(ex_round(X * 1234.5, -2)) == "1200.0*x"
    with pytest.raises(DataError, match="n_digit must be an integer"):
        ex_round(X, 2.5)


def test_snap_params_fit_then_snap_near_miss_comes_out_exact():
    # y = 2*sqrt(0.5*h - 0.0002) + noise: canonical sqrt fit a=1, b≈-0.0004, c≈sqrt(2), d≈0
    h = torch.linspace(0.1, 2, 400, dtype=T)
    g = torch.Generator().manual_seed(3)
    y = 2 * torch.sqrt(0.5 * h - 0.0002) + 2e-3 * torch.randn(400, generator=g, dtype=T)
    fit = fit_affine(h, y, lib=["sqrt"]).best()
    res = snap_params("sqrt", [fit.a, fit.b, fit.c, fit.d], h, y)
    assert res.exact == (1, 0, sympy.sqrt(2), 0)
    assert res.params == pytest.approx((1.0, 0.0, math.sqrt(2), 0.0))
    assert res.rmse <= res.rmse_before * 1.05
    assert affine_expr("sqrt", res.exact, X) == sympy.sqrt(2) * sympy.sqrt(X)


def test_snap_params_rejects_a_snap_that_worsens_rmse():
    x = torch.linspace(0, 12, 400, dtype=T)
    y = 2 * torch.sin(0.5 * x - 0.05) + 1.0  # exact data: b = -0.05 is real
    res = snap_params("sin", [0.5, -0.05, 2.0, 1.0], x, y)
    assert res.exact[1] is None and res.params[1] == -0.05
    assert res.exact[0] == sympy.Rational(1, 2) and res.exact[2] == 2 and res.exact[3] == 1
    assert res.rmse <= 1e-12
    # noisy data: b = 0 multiplies the RMSE several times — rejected at tol=0.05, not at tol=100
    g = torch.Generator().manual_seed(2)
    y = y + 0.01 * torch.randn(400, generator=g, dtype=T)
    strict = snap_params("sin", [0.5, -0.05, 2.0, 1.0], x, y)
    loose = snap_params("sin", [0.5, -0.05, 2.0, 1.0], x, y, tol=100.0)
    assert strict.exact[1] is None and loose.exact[1] == 0
    assert strict.rmse <= 1.05 * strict.rmse_before < 2 * strict.rmse_before < loose.rmse


def test_snap_params_refits_linear_params_after_snapping_inner_ones():
    x = torch.linspace(-1, 1, 300, dtype=T)
    g = torch.Generator().manual_seed(1)
    y = 3 * torch.exp(1.5 * x) - 2 + 1e-3 * torch.randn(300, generator=g, dtype=T)
    # a slightly off: c and d are refitted for a = 3/2, then they snap too
    res = snap_params("exp", [1.5003, 0.0, 2.9982, -1.9985], x, y)
    assert res.exact == (sympy.Rational(3, 2), 0, 3, -2)


def test_snap_params_is_deterministic_and_validates():
    x = torch.linspace(0, 1, 50, dtype=T)
    y = 0.25 * x**2 + 0.3333
    a = snap_params("x^2", [1.0, 0.0, 0.2501, 0.33331], x, y)
    b = snap_params("x^2", [1.0, 0.0, 0.2501, 0.33331], x, y)
    assert a == b
    with pytest.raises(DataError):
        snap_params("x^2", [1.0, 0.0, float("nan"), 0.0], x, y)
    with pytest.raises(DataError):
        snap_params("x^2", [1.0, 0.0, 1.0, 0.0], x, y[:10])


def test_constant_multiples_are_limited_to_plausible_ones():
    """π/2, 3π/4, 2e, e/7 snap; 5e/9 or 7π/11 do not (with them almost any loose constant found
    a 'simple' value, as the Feynman runs showed)."""
    import math

    import sympy

    from kanir.symbolic.snap import snap_value

    assert snap_value(math.pi / 2) == sympy.pi / 2
    assert snap_value(3 * math.pi / 4) == 3 * sympy.pi / 4
    assert snap_value(2 * math.e) == 2 * sympy.E
    assert snap_value(math.e / 7) == sympy.E / 7
    for v in (5 * math.e / 9, 7 * math.pi / 11):
        got = snap_value(v)
        assert got is None or not got.has(sympy.E, sympy.pi), (v, got)


def test_snap_formula_accepts_small_rationals_beyond_the_table_when_the_data_justify_them():
    # issue 12: 5/18 (λ of the neo-Hookean law) was never proposed: denominators stopped at 12
    import numpy as np

    from kanir.symbolic.formula_fit import snap_formula

    F11, J = sympy.symbols("F11 J")
    rng = np.random.default_rng(0)
    x = rng.uniform(0.8, 1.2, (300, 2))
    y = 5 / 12 * x[:, 0] ** 2 + 5 / 18 * np.log(x[:, 1]) - 5 / 12
    fitted = (sympy.Float(0.41666666666667) * F11**2 + sympy.Float(0.2777777777778) * sympy.log(J)
              - sympy.Float(0.4166666666667))
    got = snap_formula(fitted, [F11, J], x, y)
    assert got.exact and got.expr == sympy.Rational(5, 12) * F11**2 + sympy.Rational(5, 18) * sympy.log(
        J) - sympy.Rational(5, 12)
    # a constant known to 3-4 digits only is not turned into a fraction it merely resembles
    noisy = 0.2781 * np.log(x[:, 1]) + 1e-3 * rng.standard_normal(300)
    kept = snap_formula(sympy.Float(0.2781) * sympy.log(J), [F11, J], x, noisy).expr
    assert kept.atoms(sympy.Float) and not kept.has(sympy.Rational(5, 18))
