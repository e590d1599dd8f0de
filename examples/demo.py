"""kanir in one minute: compile a formula into a KAN, train a KAN on data, read a formula back.

Run with `make demo`. Every step prints what it did and what came out.
"""

from __future__ import annotations

import math
import time

import torch

import kanir


def banner(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


def compile_step() -> None:
    banner("1. Science -> KAN: compile the relativistic mass m0/sqrt(1-v**2/c**2)")
    from kanir.cli.commands import main as cli

    cli(["compile", "m0/sqrt(1-v**2/c**2)", "--vars", "m0,v,c", "--ranges", "m0=0.5:2,v=0.1:0.9,c=1:2"])


def train_step() -> tuple[kanir.KAN, dict]:
    banner("2. Data -> KAN: fit f(x, y) = exp(sin(pi x) + y^2) with a [2, 5, 1] KAN")
    f = lambda x: torch.exp(torch.sin(math.pi * x[:, [0]]) + x[:, [1]] ** 2)  # noqa: E731
    data = kanir.create_dataset(f, n_var=2, seed=0)
    model = kanir.KAN(width=[2, 5, 1], grid=5, k=3, seed=0, device="cpu", input_names=["x", "y"])
    t = time.time()
    hist = model.fit(data, opt="LBFGS", steps=50, lamb=0.002, progress=False)
    print(f"50 LBFGS steps with sparsity in {time.time() - t:.1f} s: test RMSE {hist['test_rmse'][-1]:.2e}")
    model.prune()
    hist = model.fit(data, opt="LBFGS", steps=50, progress=False)
    print(f"pruned to width {model.width_spec}, refitted: test RMSE {hist['test_rmse'][-1]:.2e}")
    print(model.graph.summary())
    return model, data


def symbolic_step(model: kanir.KAN, data: dict) -> None:
    banner("3. KAN -> science: turn the trained edges back into a formula")
    model.auto_symbolic(lib=["x", "x^2", "sin", "exp"], verbose=0)
    model.fit(data, opt="LBFGS", steps=20, progress=False, update_grid=False)
    formulas, variables = model.symbolic_formula()  # pykan's pair: one formula per output
    print("formula:", formulas[0])
    print("versions:", ", ".join(f"{v.label} {v.op}" for v in model.list_versions()))


def tree_step() -> None:
    banner("4. Structure: the tree of (x1^2 + x2^2)^2 + (x3^2 + x4^2)^2")
    print(kanir.tree("(x1**2 + x2**2)**2 + (x3**2 + x4**2)**2", [(-1, 1)] * 4).to_text())


def main() -> None:
    torch.set_num_threads(1)  # small models: one thread avoids contention on shared machines
    print(f"kanir {kanir.__version__} on torch {torch.__version__}")
    try:
        compile_step()
    except ImportError:
        print("(the compiler is not available in this build)")
    model, data = train_step()
    symbolic_step(model, data)
    tree_step()
    print("\nNext: `make test` runs the test suite; see README.md for the Python API.")


if __name__ == "__main__":
    main()
