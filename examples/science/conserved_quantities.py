"""KAN 2.0 §5.1, conserved quantities of the 2-D harmonic oscillator (x, y, px, py):
dx/dt = px, dy/dt = py, dpx/dt = -x, dpy/dt = -y.

``kanir.workflows.conserved.conserved_quantities`` trains one KAN per quantity with the
normalised-gradient objective, each new one penalised for depending on those already found,
then makes it symbolic, normalises its scale and offset, snaps it and checks in sympy that
field · ∇H simplifies to 0. The paper found H1 = (x²+px²)/2, H2 = (y²+py²)/2 and
H3 = x·py − y·px with [4,[0,2],1] MultKANs; any function of them is conserved too, and the
scale and offset are arbitrary (kanir reports them with unit leading coefficient).

Settings and why: ``width=[4,1]`` (additive KANs) trains in seconds per seed and finds the two
energies; H3 is a product, which an additive KAN cannot express, and ``--mult`` uses the
paper's [4,[0,2],1] instead (much slower: minutes per seed on 2 cores). The objective divides
by the batch mean of |∇H|² ("batch" normalisation): with the paper's per-sample
normalisation LBFGS stalls at 0.07-0.15 from about one seed in three; grid updates are off
(they stalled the fit at ~0.07).

Run: ``python examples/science/conserved_quantities.py [--seed S] [--mult]``; the last line
printed is ``RESULT: {json}``.
"""

from __future__ import annotations

import argparse
import json
import time

from kanir.workflows.conserved import conserved_quantities

FIELD = ["px", "py", "-x", "-y"]
NAMES = ["x", "y", "px", "py"]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mult", action="store_true", help="[4,[0,2],1] MultKANs (slow)")
    parser.add_argument("--max-n", type=int, default=3)
    args = parser.parse_args(argv)
    width = [4, [0, 2], 1] if args.mult else [4, 1]
    start = time.time()
    print(f"field d(x, y, px, py)/dt = ({', '.join(FIELD)}); KAN width {width}, "
          f"seed {args.seed}, up to {args.max_n} quantities", flush=True)
    found = conserved_quantities(FIELD, 4, max_n=args.max_n, names=NAMES, width=width,
                                 seed=args.seed, steps=50, n_samples=300,
                                 log=lambda line: print(line, flush=True))
    result = {
        "width": width,
        "seed": args.seed,
        "quantities": [str(q.formula) for q in found],
        "verified": [q.verified for q in found],
        "objectives": [float(f"{q.objective:.3g}") for q in found],
        "n_found": len(found),
        "seconds": round(time.time() - start, 1),
    }
    print("RESULT: " + json.dumps(result))
    return result


if __name__ == "__main__":
    main()
