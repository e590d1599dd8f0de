"""kanir.discover's general fixes for the Feynman misses (issue 13): the choice on the front
prefers exact constants, flat trees group the most coupled pair first."""

import numpy as np
import sympy

from kanir.workflows.discover import (
    Candidate,
    _choose,
    _pair_coupling,
    _pair_trees,
    _relabel,
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
    first = _pair_trees(flat)[0]
    assert first.compact() in ("mul(m0, gsep(v, c))", "mul(gsep(v, c), m0)")
