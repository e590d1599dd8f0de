"""Timing of kanir.symfit.fit_affine: 9 edges × 4 functions and 5 edges × the 29 defaults (N=1000).

Run: .venv/bin/python bench/bench_symfit.py [--threads N] [--repeat R]
Prints the best and median wall time and the best CPU time of R repeats (after a warm-up call).
On a busy machine, use --threads 1: torch's thread pool then stalls on descheduled threads.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from kanir.library import DEFAULT_FIT_LIB
from kanir.symfit import fit_affine


def edge_data(n_edges: int, n: int = 1000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """x in [-1, 1] and y = c·f(a·x + b) + d + small noise, cycling through a few functions."""
    g = torch.Generator().manual_seed(seed)
    x = torch.linspace(-1, 1, n, dtype=torch.float64).repeat(n_edges, 1)
    funs = [torch.sin, lambda z: z**2, torch.exp, lambda z: z, torch.tanh, torch.cos]
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
    fn()  # warm-up (rule cache, allocator)
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), statistics.median(walls), min(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    x9, y9 = edge_data(9)
    x5, y5 = edge_data(5, seed=1)
    cases = [
        ("9 edges x 4 functions (x, x^2, sin, exp), N=1000", "0.1 s",
         lambda: fit_affine(x9, y9, lib=["x", "x^2", "sin", "exp"])),
        (f"5 edges x {len(DEFAULT_FIT_LIB)} default functions, N=1000", "0.5 s",
         lambda: fit_affine(x5, y5)),
    ]
    for name, target, fn in cases:
        best, med, cpu = timeit(fn, args.repeat)
        print(f"{name}: wall best {best:.3f} s, median {med:.3f} s; CPU best {cpu:.3f} s "
              f"(target < {target})")


if __name__ == "__main__":
    main()
