"""Sparse term regression (kanir.symbolic.terms): a law as a few monomials of a transform of y."""

import numpy as np
import pytest
import sympy

from kanir.errors import ArgumentError
from kanir.symbolic.formula_fit import snap_formula
from kanir.symbolic.terms import _bic, fit_terms, formula


def _sample(f, ranges, n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.uniform(lo, hi, n) for lo, hi in ranges])
    return x, f(*x.T)


def _best_exact(x, y, names):
    syms = sympy.symbols(names, positive=True, seq=True)
    fit = fit_terms(x, y)[0]
    return fit, snap_formula(formula(fit, syms), syms, x, y).expr, syms


def test_relativistic_mass_is_two_monomials_of_one_over_y_squared():
    x, y = _sample(lambda m, v, c: m / np.sqrt(1 - v**2 / c**2), [(1, 5), (1, 2), (3, 10)])
    fit, e, (m, v, c) = _best_exact(x, y, "m v c")
    assert fit.transform == "1/y**2" and len(fit.terms) == 2 and fit.rel < 1e-10
    assert sympy.simplify(e - m / sympy.sqrt(1 - v**2 / c**2)) == 0


def test_gaussian_is_two_terms_of_log_y():
    x, y = _sample(lambda s, t: np.exp(-(t / s) ** 2 / 2) / (np.sqrt(2 * np.pi) * s),
                   [(1, 3), (1, 3)])
    fit, e, (s, t) = _best_exact(x, y, "s t")
    assert fit.transform == "log(y)" and len(fit.terms) == 2
    assert sympy.simplify(e - sympy.exp(-(t / s) ** 2 / 2) / (sympy.sqrt(2 * sympy.pi) * s)) == 0


def test_a_monomial_of_four_variables_is_a_power_law():
    x, y = _sample(lambda q, v, b, m: q * v * b / m, [(1, 5)] * 4)
    fit, e, (q, v, b, m) = _best_exact(x, y, "q v b m")
    assert fit.transform == "log(y)" and len(fit.terms) == 4
    assert e == q * v * b / m


def test_signs_and_zeros_limit_the_transforms():
    x, y = _sample(lambda a, b: a - b, [(-1, 1), (-1, 1)])  # crosses zero: no 1/y, log, sqrt
    assert {f.transform for f in fit_terms(x, y)} == {"y", "exp(y)"}
    assert {f.transform for f in fit_terms(3 * x, 3 * y)} == {"y", "exp(y)"}  # |y| > pi/2
    fit = fit_terms(x, y)[0]
    assert len(fit.terms) == 2 and fit.rel < 1e-12
    x, y = _sample(lambda a, b: -(a**2) * b, [(1, 2), (1, 2)])  # negative: sign kept
    fit = next(f for f in fit_terms(x, y) if f.transform == "log(y)")
    a, b = sympy.symbols("a b", positive=True)
    assert fit.sign == -1.0
    e = snap_formula(formula(fit, [a, b]), [a, b], x, y).expr
    assert sympy.simplify(e + a**2 * b) == 0


def test_noise_stops_at_the_budget_of_terms_and_never_returns_nan():
    x, y = _sample(lambda a, b: np.sin(a) * np.exp(b), [(0, 3), (0, 1)])
    y = y + 1e-3 * np.random.default_rng(1).standard_normal(len(y))
    fits = fit_terms(x, y, max_terms=3)
    assert fits and all(1 <= len(f.terms) <= 3 and np.isfinite(f.rel) for f in fits)
    assert all(np.isfinite(f.rel_y) for f in fits[:5])
    ranks = [_bic(f, len(y)) for f in fits]
    assert ranks == sorted(ranks)


def test_with_noise_the_true_support_outranks_longer_fits():
    """Label noise: 5-term fits of log(y) cut the residual below the noise, but the information
    criterion on y ranks the 2 monomials of 1/y**2 near the top, and they snap exactly."""
    x, y = _sample(lambda m, v, c: m / np.sqrt(1 - v**2 / c**2), [(1, 5), (1, 2), (3, 10)],
                   n=800)
    y = y + 1e-3 * y.std() * np.random.default_rng(2).standard_normal(len(y))
    fits = fit_terms(x, y)
    top = fits[:8]
    fit = next(f for f in top if f.transform == "1/y**2" and len(f.terms) == 2)
    m, v, c = sympy.symbols("m v c", positive=True)
    # with noise the snapper must refit the other constants (approx: the fit's RMSE is noise)
    e = snap_formula(formula(fit, [m, v, c]), [m, v, c], x, y, approx=6e-3).expr
    assert sympy.simplify(e - m / sympy.sqrt(1 - v**2 / c**2)) == 0


def test_bad_arguments():
    x, y = _sample(lambda a: a, [(1, 2)])
    with pytest.raises(ArgumentError, match="one y per row"):
        fit_terms(x, y[:-1])
    with pytest.raises(ArgumentError, match="unknown transform 'y\\*\\*3'"):
        fit_terms(x, y, transforms=("y**3",))
    with pytest.raises(ArgumentError, match="max_terms and max_factors must be >= 1"):
        fit_terms(x, y, max_terms=0)


def test_sin_of_y_and_pair_differences():
    """asin(n*sin(theta)) is one monomial of sin(y); a Gaussian in theta - theta1 is a few
    monomials of log(y) (over theta - theta1 when the plain search finds none)."""
    x, y = _sample(lambda n, t: np.arcsin(n * np.sin(t)), [(0, 1), (1, 5)])
    n, t = sympy.symbols("n t")
    fit = fit_terms(x, y)[0]
    assert fit.transform == "sin(y)" and len(fit.terms) == 1
    assert snap_formula(formula(fit, [n, t]), [n, t], x, y).expr == sympy.asin(n * sympy.sin(t))
    x, y = _sample(lambda s, a, b: np.exp(-((a - b) / s) ** 2 / 2) / s, [(1, 3)] * 3)
    fit, e, (s, a, b) = _best_exact(x, y, "s a b")
    assert fit.transform == "log(y)" and fit.rel < 1e-10
    assert sympy.simplify(e - sympy.exp(-((a - b) / s) ** 2 / 2) / s) == 0
    fits = fit_terms(x, y, pairs=3, max_factors=2, max_terms=2)  # too few terms without a - b
    best = fits[0]
    assert best.derived and best.rel < 1e-10 and len(best.terms) == 2
    assert sympy.simplify(snap_formula(formula(best, [s, a, b]), [s, a, b], x, y).expr
                          - sympy.exp(-((a - b) / s) ** 2 / 2) / s) == 0


def test_a_factor_times_a_sum_is_found_by_dividing_it_out():
    """q*(Ef + B*v*sin(theta)): the second term has four factors (more than max_factors=3),
    but y / q is two monomials."""
    x, y = _sample(lambda q, ef, b, v, th: q * (ef + b * v * np.sin(th)), [(1, 5)] * 5, n=500)
    fits = fit_terms(x, y)
    best = fits[0]
    # dividing by q, b or v all leave two monomials (y/v = q*ef/v + q*b*sin(th))
    assert best.factor in (0, 2, 3) and best.transform == "y" and len(best.terms) == 2
    q, ef, b, v, th = sympy.symbols("q ef b v th", positive=True)
    e = snap_formula(formula(best, [q, ef, b, v, th]), [q, ef, b, v, th], x, y).expr
    assert sympy.simplify(e - q * (ef + b * v * sympy.sin(th))) == 0
    assert not any(f.factor is not None for f in fit_terms(x, y, divide=4))
