"""Timing of kanir.symbolic.symfit.fit_affine: 9 edges × 4 functions and 5 edges × the 29 defaults (N=1000).

Run: .venv/bin/python bench/bench_symfit.py [--quick] [--out FILE.md] [--threads N] [--repeat R]
Reports the best and median wall time and the best CPU time of R repeats (after a warm-up call),
and which function won on each edge. One torch thread by default: on a busy machine torch's
thread pool stalls on descheduled threads. The side-by-side comparison with pykan's
auto_symbolic is bench_symbolic.py, section (1).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from kanir.ir.library import DEFAULT_FIT_LIB
from kanir.symbolic.symfit import fit_affine


def edge_data(n_edges: int, n: int = 1000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """x in [-1, 1] and y = c·f(a·x + b) + d + small noise, cycling through a few functions."""
    g = torch.Generator().manual_seed(seed)
    x = torch.linspace(-1, 1, n, dtype=torch.float64).repeat(n_edges, 1)
    funs = [torch.sin, lambda z: z**2, torch.exp, lambda z: z, torch.tanh, torch.cos]  # TRUE_FUNS
    ys = []
    for e in range(n_edges):
        a, b, c, d = (torch.rand(4, generator=g, dtype=torch.float64) * 2 - 1).tolist()
        ys.append((1 + c) * funs[e % len(funs)]((1.5 + a) * x[e] + b) + d)
    y = torch.stack(ys) + 1e-3 * torch.randn(n_edges, n, generator=g, dtype=torch.float64)
    return x, y


def timeit(fn, repeat: int) -> tuple[float, float, float]:
    """Best and median wall time and best process CPU time of ``repeat`` calls (after a warm-up).

    CPU time is less sensitive to other processes on a shared machine; with several torch threads
    it adds up their time (spin-waits included).
    """
    t = common.time_calls(fn, repeat, warmup=1)  # the warm-up fills the rule cache
    return min(t["wall"]), statistics.median(t["wall"]), min(t["cpu"])


TRUE_FUNS = ["sin", "x^2", "exp", "x", "tanh", "cos"]  # edge e is TRUE_FUNS[e % 6]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--repeat", type=int, default=None, help="repeats (default 7; 3 with --quick)")
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--out", type=Path, default=None, help="write a markdown section here")
    args = ap.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 7)
    torch.set_num_threads(args.threads)
    x9, y9 = edge_data(9)
    x5, y5 = edge_data(5, seed=1)
    lib4 = ["x", "x^2", "sin", "exp"]
    cases = [
        (f"9 edges × 4 functions ({', '.join(lib4)})", "0.1 s", "6–15 s",
         lambda: fit_affine(x9, y9, lib=lib4)),
        (f"5 edges × the {len(DEFAULT_FIT_LIB)} default functions", "0.5 s", "62–67 s",
         lambda: fit_affine(x5, y5)),
    ]
    rows = []
    for name, target, pykan, fn in cases:
        best, med, cpu = timeit(fn, repeat)
        res = fn()
        won = _winners(res)
        truth = [TRUE_FUNS[e % len(TRUE_FUNS)] for e in range(len(won))]
        fair = [(w, t) for w, t in zip(won, truth) if t in res.names]  # truth in the library
        right = sum(w == t for w, t in fair)
        rows.append([name, f"{best:.3f}", f"{med:.3f}", f"{cpu:.3f}", target, pykan,
                     f"{right}/{len(fair)}"])
        print(f"{name}: wall best {best:.3f} s, median {med:.3f} s; CPU best {cpu:.3f} s "
              f"(target < {target}); true function first on {right}/{len(fair)} edges whose "
              "function is in the library")
    if args.out:
        m = common.machine(args.threads)
        text = "\n".join([
            "## Batched affine fits (kanir.symbolic.symfit.fit_affine)", "", common.machine_line(m), "",
            common.md_table(["job (N = 1000 samples per edge)", "wall best s", "wall median s",
                             "CPU best s", "target", "pykan auto_symbolic (pykan-notes)",
                             "true function first*"], rows), "",
            f"{repeat} repeats after a warm-up; edges are c·f(a·x+b)+d with noise 1e-3, f cycling "
            "through sin, x², exp, x, tanh, cos. *Among the edges whose f is in the library. The "
            "pykan column is its whole auto_symbolic on networks of the same size; the side by "
            "side run is bench_symbolic.py, section (1).", ""])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


def _winners(res) -> list[str]:
    """The best-scoring function name per edge of a fit_affine result."""
    return [res.best(e).name for e in range(res.r2.shape[0])]


if __name__ == "__main__":
    raise SystemExit(main())
