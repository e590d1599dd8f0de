"""kanir.discover's general fixes for the Feynman misses (issue 13): the choice on the front
prefers exact constants, flat trees group the most coupled pair first."""

import numpy as np
import sympy

from kanir.workflows.discover import (
    Candidate,
    _choose,
    _from_log,
    _pair_coupling,
    _pair_trees,
    _relabel,
    _simplify_mode,
    _strongly_coupled,
    _variants,
    pareto_front,
)


def test_choice_prefers_exact_constants_within_the_data_accuracy():
    th = sympy.Symbol("theta")
    floats = Candidate(12, 1.3e-15, 0.398942280401433 * sympy.exp(-0.5 * th**2))
    exact = Candidate(14, 1.5e-16,
                      sympy.sqrt(2) * sympy.exp(-th**2 / 2) / (2 * sympy.sqrt(sympy.pi)))
    rough = Candidate(10, 4.6e-3, 0.2192 - 0.2237 * sympy.tanh(1.047 * th - 1.146))
    front = pareto_front([floats, exact, rough])
    assert _choose(front, 1e-6) is exact
    # an exact formula well outside the data's accuracy is not preferred
    far = Candidate(5, 0.3, th)
    assert _choose(pareto_front([floats, far]), 1e-6) is floats


def test_an_exact_constant_is_not_preferred_when_nothing_fits():
    s, th = sympy.symbols("sigma theta")
    fitted = Candidate(1, 1.0001, sympy.Float(0.111435))  # every structure collapsed
    snapped = Candidate(3, 1.02, sympy.exp(sympy.Rational(-7, 3)))
    assert _choose(pareto_front([fitted, snapped]), 1e-6) is fitted
    # an exact formula 30% worse than the best float fit is not the law either
    best = Candidate(9, 0.010, 1.03 * th / s)
    worse = Candidate(5, 0.013, th / s)
    assert _choose(pareto_front([best, worse]), 1e-6) is worse  # simplest within 2x, as before
    assert _choose(pareto_front([best, Candidate(11, 0.013, th / s + 1)]), 1e-6) is best


def test_noisy_exact_formula_dominated_by_a_float_fit_stays_on_the_front():
    p, r = sympy.symbols("Pwr r")
    fitted = Candidate(9, 1.00e-3, 0.0795261 * p**1.00028 / r**2)  # fits the noise a bit
    exact = Candidate(11, 1.02e-3, p / (4 * sympy.pi * r**2))
    front = pareto_front([fitted, exact])
    assert exact in front and fitted in front
    assert _choose(front, 1e-6) is exact


def test_flat_tree_groups_the_most_coupled_pair_first():
    from kanir.science.tree import tree

    expr = "m0/sqrt(1 - v**2/c**2)"
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.uniform(1, 5, 400), rng.uniform(1, 2, 400), rng.uniform(3, 10, 400)])
    # thresholds so loose that no group forms: the flat root a coarse surrogate reads
    flat = tree(expr, x, ["m0", "v", "c"], sym_th=10.0, sep_th=10.0)
    flat = _relabel(flat, [flat.root_id], "mul")
    assert flat.compact() == "mul(m0, v, c)"
    _pair_coupling(flat, sympy.sympify(expr), x)
    coupling = flat.meta["pair_coupling"]
    assert coupling["v | c"] > 10 * max(coupling["m0 | v"], coupling["m0 | c"])
    trees = _pair_trees(flat)
    first, strong = trees[0]
    assert first.compact() in ("mul(m0, gsep(v, c))", "mul(gsep(v, c), m0)")
    assert strong and not any(s for _, s in trees[1:])


def test_strongly_coupled_pairs():
    # a fitted surrogate of an exact product: every pair near 0.005, none stands out
    assert _strongly_coupled({"a | b": 0.003, "a | c": 0.005, "b | c": 0.004}) == set()
    assert _strongly_coupled({"m0 | v": 0.0048, "m0 | c": 0.0067, "v | c": 0.056}) == {"v | c"}


def test_formulas_sympy_cannot_simplify_in_time_are_read_unsimplified():
    m0, v, c, x = sympy.symbols("m_0 v c x")
    # I.10.7: trigsimp on this ran for minutes past the budget
    slow = 6.29 * sympy.cosh(0.0308 * v + 0.507 * sympy.sqrt(0.984 * m0 - 0.8295)
                             + 0.651 / (1.0798 * c - 0.357)**2) - 5.59
    assert _simplify_mode(slow) is False
    assert _simplify_mode(0.1 * v + sympy.sin(0.9 * m0 + 0.1) * sympy.cos(c)) is False
    assert _simplify_mode(1.2 * m0 * sympy.sin(0.94 * x + 0.15)) == "auto"
    # noisy I.12.4: one cosh of a product of sums (trigsimp's factor ran 130 s)
    q1, eps, r = sympy.symbols("q1 epsilon r")
    product = 9.13e-5 * sympy.cosh(0.0261 * (5.118 - 0.3934 * q1) * (0.7716 * eps + 3.471)
                                   * (2.864 * r + 2.373) - 10.45) + 0.00491
    assert _simplify_mode(product) is False
    assert _simplify_mode(m0 / sympy.sqrt(1 - v**2 / c**2)) == "auto"


def test_back_from_log_space_simplifies_only_within_the_operation_budget():
    q, v = sympy.symbols("q v", positive=True)
    assert _from_log(sympy.log(q) + sympy.log(v) - sympy.log(2), 1.0) == q * v / 2
    big = sum(sympy.Float(0.1 * k + 0.05) * sympy.log(q + k) for k in range(1, 12))
    out = _from_log(big, -1.0)  # 30+ operations with floats: not handed to sympy.simplify
    assert out == -sympy.expand_log(sympy.powsimp(sympy.exp(big), force=True), force=True)


def test_long_formulas_are_read_unsimplified():
    x = sympy.Symbol("x")
    long = sum(sympy.Float(0.3 + k) * sympy.exp(sympy.Float(0.1 * k) * x + k) for k in range(25))
    assert sympy.count_ops(long) > 60 and _simplify_mode(long) is False


def test_a_small_sym_node_is_also_tried_as_a_sum_plus_a_product():
    """log of a Gaussian (I.6.2): -theta**2/(2*sigma**2) - log(sigma) is neither separable nor
    generally separable, but it is g(sigma) + h(theta) + p(sigma)*q(theta)."""
    import kanir

    t = kanir.tree("-x2**2/(2*x1**2) - log(x1)", [(1, 3)] * 2)
    assert t.compact() == "sym(x1, x2)"
    forms = [v.compact() for v in _variants(t)]
    assert forms == ["gsep(x1, x2)", "add(mul(x1, x2))", "add(x1, mul(x1, x2), x2)", "sym(x1, x2)"]
    model = kanir.KAN.from_tree(_variants(t)[2], device="cpu")
    assert model.width_spec == [2, [2, 1], 1]
    assert sum(1 for _ in model.graph.act_edges()) == 7  # 4 splines, 3 identity edges
