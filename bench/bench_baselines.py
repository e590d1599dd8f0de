"""The baselines of the Feynman benchmark: gplearn and pykan 0.2.8's standard pipeline.

Same data files (feynman_data), same judge (srbench_judge), same driver (feynman_runner) as
bench_discover.py. gplearn (``pip install kanir[bench]``) runs SRBench-like settings (population
1000, tournament 20, functions add sub mul div log sqrt sin cos, MAE, parsimony 1e-3,
crossover 0.9) for as many generations (at most 500) as fit in the budget, on all 120 equations.
pykan (its own venv, bench/setup_pykan.sh) runs the pipeline a pykan user would: width
[n, 2n+1, 1] (hidden 5 for n <= 2), fit with lamb=1e-3, prune, fit, refine to grid 10, fit,
auto_symbolic with its default library, fit, symbolic_formula; float64, LBFGS, 50 steps per fit.
It has no budget knob (its time is reported); it is meant for the 20 simplest equations.

    python bench/bench_baselines.py --method gplearn --all --noise 0 1e-3 --budget 60
    python bench/bench_baselines.py --method pykan --simplest 20
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

GPLEARN = {"population_size": 1000, "tournament_size": 20, "init_depth": (2, 6),
           "function_set": ("add", "sub", "mul", "div", "log", "sqrt", "sin", "cos"),
           "metric": "mean absolute error", "parsimony_coefficient": 0.001,
           "p_crossover": 0.9, "p_subtree_mutation": 0.01, "p_hoist_mutation": 0.01,
           "p_point_mutation": 0.01, "p_point_replace": 0.05, "max_samples": 1.0}
MAX_GENERATIONS = 500
STEPS = 50


def gplearn_to_sympy(program: str, names: list[str]):
    """A gplearn program string (``add(mul(X0, X1), 0.5)``) as a sympy expression over
    ``names``; protected operators become the plain ones (sqrt and log of |x|), as SRBench does."""
    import sympy

    syms = {f"X{i}": sympy.Symbol(n) for i, n in enumerate(names)}
    ops = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
           "div": lambda a, b: a / b, "sqrt": lambda a: sympy.sqrt(sympy.Abs(a)),
           "log": lambda a: sympy.log(sympy.Abs(a)), "sin": sympy.sin, "cos": sympy.cos,
           "neg": lambda a: -a, "inv": lambda a: 1 / a, "abs": sympy.Abs,
           "tan": sympy.tan, "max": sympy.Max, "min": sympy.Min}
    return sympy.sympify(program, locals={**ops, **syms})


def run_gplearn(data: dict, budget: float, seed: int) -> dict:
    """gplearn's SymbolicRegressor, grown generation by generation until the budget is spent."""
    from gplearn.genetic import SymbolicRegressor

    t0 = time.perf_counter()
    est = SymbolicRegressor(generations=1, warm_start=True, random_state=seed, n_jobs=1,
                            **GPLEARN)
    gens = 0
    while gens < MAX_GENERATIONS:
        gens += 1
        est.set_params(generations=gens)
        est.fit(data["X_train"], data["y_train"])
        spent = time.perf_counter() - t0
        if spent + spent / gens > budget:  # the next generation would overrun
            break
    program = str(est._program)
    return {"formula": str(gplearn_to_sympy(program, data["names"])), "program": program,
            "generations": gens}


def pykan_width(n: int) -> list[int]:
    """[n, 2n+1, 1], with 5 hidden nodes for n <= 2 (the issue's standard pipeline)."""
    return [n, 5 if n <= 2 else 2 * n + 1, 1]


def run_pykan(data: dict, budget: float, seed: int) -> dict:
    """pykan 0.2.8's standard pipeline (runs in pykan's venv; ``budget`` is not used)."""
    import contextlib
    import io
    import os

    import sympy
    import torch
    from kan import KAN

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    os.makedirs("model", exist_ok=True)  # pykan logs there even with auto_save=False
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    ds = {"train_input": t(data["X_train"]), "train_label": t(data["y_train"])[:, None],
          "test_input": t(data["X_test"]), "test_label": t(data["y_test"])[:, None]}
    stage = "init"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            model = KAN(width=pykan_width(len(data["names"])), grid=3, k=3, seed=seed,
                        auto_save=False, device="cpu")
            stage = "fit"
            model.fit(ds, opt="LBFGS", steps=STEPS, lamb=1e-3, log=10**9)
            stage = "prune"
            model = model.prune()
            stage = "fit"
            model.fit(ds, opt="LBFGS", steps=STEPS, log=10**9)
            stage = "refine"
            model = model.refine(10)
            stage = "fit"
            model.fit(ds, opt="LBFGS", steps=STEPS, log=10**9)
            stage = "auto_symbolic"
            model.auto_symbolic()
            stage = "fit"
            model.fit(ds, opt="LBFGS", steps=STEPS, log=10**9, update_grid=False)
            stage = "symbolic_formula"
            f = model.symbolic_formula(var=[sympy.Symbol(n) for n in data["names"]])[0][0]
    except Exception as exc:  # noqa: BLE001 - pykan crashes are results
        return {"formula": None, "error": f"{stage}: {type(exc).__name__}: {str(exc)[:200]}"}
    return {"formula": str(f)}


def main(argv=None) -> int:
    import feynman_runner

    return feynman_runner.main(argv, __doc__, ["gplearn", "pykan"])


if __name__ == "__main__":
    raise SystemExit(main())
