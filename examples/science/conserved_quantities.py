"""KAN 2.0 §5.1, conserved quantities of the 2-D harmonic oscillator (x, y, px, py):
dx/dt = px, dy/dt = py, dpx/dt = -x, dpy/dt = -y.

One call, ``kanir.workflows.conserved.conserved_quantities(field, 4, max_n=3)``, finds three
functionally independent conserved quantities: for each it trains KANs on the
normalised-gradient objective, penalised (only) for near-dependence on those already found,
first an additive [4,1] KAN, then a [4,[0,2],1] KAN with two multiplication nodes; the first
model whose formula (auto_symbolic, scale and offset normalised, snapped) sympy shows to be
conserved (field · ∇H simplifies to 0) and independent of the others is kept. The paper found
H1 = (x²+px²)/2, H2 = (y²+py²)/2 and H3 = x·py − y·px; any function of them is conserved too,
the scale and offset are arbitrary (kanir reports unit leading coefficients), and every
quadratic invariant is a combination of H1, H2, H3 and H4 = x·y + px·py (H3² + H4² = H1·H2
up to the factors 1/2), so the third quantity may come out as H3, H4 or a mix of them.

Settings and why: the additive KAN expresses H1 and H2 but not the products of H3/H4, so the
third quantity is left to the mult KAN, built with linear edges (kanir's ``MULT_KAN``): with
cubic splines it reached 1e-8 but auto_symbolic turned its curved edges into a 37-term
formula that is not conserved. One seed per width (``--seeds``) is enough here; "batch"
normalisation of the objective and no grid updates (see the module's docstring).

Run: ``python examples/science/conserved_quantities.py [--seed S] [--seeds N]``; the last line
printed is ``RESULT: {json}``.
"""

from __future__ import annotations

import argparse
import json
import time

import sympy

from kanir.workflows.conserved import conserved_quantities, independent, is_conserved

FIELD = ["px", "py", "-x", "-y"]
NAMES = ["x", "y", "px", "py"]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1, help="seeds tried per width")
    parser.add_argument("--max-n", type=int, default=3)
    args = parser.parse_args(argv)
    start = time.time()
    print(f"field d(x, y, px, py)/dt = ({', '.join(FIELD)}); seed {args.seed}, "
          f"{args.seeds} seed(s) per width, up to {args.max_n} quantities", flush=True)
    found = conserved_quantities(FIELD, 4, max_n=args.max_n, names=NAMES, seed=args.seed,
                                 seeds=args.seeds, steps=50, n_samples=300,
                                 log=lambda line: print(line, flush=True))
    symbols = list(sympy.symbols(NAMES, real=True))
    field = [sympy.sympify(f, locals={str(s): s for s in symbols}) for f in FIELD]
    formulas = [q.formula for q in found]
    result = {
        "seed": args.seed,
        "quantities": [str(f) for f in formulas],
        "verified": [q.verified for q in found],
        "conserved_rechecked": [is_conserved(f, symbols, field) for f in formulas],
        "independent": independent(formulas, symbols),
        "sympy_rank": sympy.Matrix([[sympy.diff(f, s) for s in symbols]
                                    for f in formulas]).rank() if formulas else 0,
        "objectives": [float(f"{q.objective:.3g}") for q in found],
        "widths": [q.width for q in found],
        "seeds": [q.seed for q in found],
        "tries": [q.tries for q in found],
        "seconds_each": [q.seconds for q in found],
        "n_found": len(found),
        "seconds": round(time.time() - start, 1),
    }
    print("RESULT: " + json.dumps(result))
    return result


if __name__ == "__main__":
    main()
