"""Per-edge values: the old evaluators against the one evaluator (kanir.backends.torch_eval).

Run: .venv/bin/python bench/bench_eval.py [--quick] [--out FILE.md] [--threads N] [--repeat R]

On a [10,10,1] and a [100,100,10] float64 model with 1000 rows and half the edges fixed to
sin / x^2 / exp (the other half splines), times the per-edge values of every layer:
(a) the edge values attribution, pruning and swap read, (b) the spline branch, symbolic branch and
bare B-spline sums pykan's ``acts`` read (before, both: a Python loop per symbolic edge in
passes/_eval.py) and (c) the singularity-safe values symbolic fitting reads (before:
passes/symbolic.py's own grouped loop).
The "old" functions are the code this replaced (commit 4725675), kept here for the comparison;
each row also gives the largest difference between old and new values relative to the largest
value. Times are the best process CPU time of interleaved old/new calls (less sensitive to a
shared machine than wall time).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from kanir.backends.torch import BASE_FUNS
from kanir.backends.torch_eval import edge_parts, edge_values
from kanir.ir.bspline import dense_bases
from kanir.ir.library import LIBRARY
from kanir.model.init import init_module

FUNS = ("sin", "x^2", "exp")


# ---------------------------------------------------------------------- the replaced code
def old_edge_parts(layer, x):
    """passes/_eval.py edge_parts before the one evaluator: a Python loop per symbolic edge."""
    B = dense_bases(x, layer.grid, layer.k)
    m = layer.mask_sp
    curve = torch.einsum("big,iog->bio", B, layer.coef)
    spline = (BASE_FUNS[layer.base_fun](x).unsqueeze(-1) * layer.scale_base
              + curve * layer.scale_sp) * m
    symbolic = torch.zeros_like(spline)
    on = layer.mask_sym != 0
    for i, j in zip(*torch.nonzero(on, as_tuple=True)):
        i, j = int(i), int(j)
        a, b, c, d = (layer.sym_affine[i, j, q] for q in range(4))
        fn = LIBRARY[layer.sym_funs[i][j]]
        symbolic[:, i, j] = c * fn.torch(a * x[:, i] + b) + d
    return spline, symbolic, curve


def old_safe_edge_values(layer, x, y_th):
    """passes/symbolic.py _edge_values before the one evaluator (grouped, safe forms)."""
    B = dense_bases(x, layer.grid, layer.k)
    m = layer.mask_sp
    coef = layer.coef * (layer.scale_sp * m).unsqueeze(-1)
    out = BASE_FUNS[layer.base_fun](x).unsqueeze(-1) * (layer.scale_base * m)
    out = out + torch.einsum("big,iog->bio", B, coef)
    groups: dict[str, list[tuple[int, int]]] = {}
    for i, j in torch.nonzero(layer.mask_sym != 0).tolist():
        groups.setdefault(LIBRARY.canonical_name(layer.sym_funs[i][j]), []).append((i, j))
    for name, pairs in groups.items():
        ii, jj = (torch.tensor(v) for v in zip(*pairs))
        p = layer.sym_affine[ii, jj]
        z = x[:, ii] * p[:, 0] + p[:, 1]
        out[:, ii, jj] += LIBRARY[name].safe_torch(z, y_th) * p[:, 2] + p[:, 3]
    return out


# ---------------------------------------------------------------------- the model
def mixed_module(width, seed: int = 0):
    """A float64 KANModule with every other edge fixed to sin, x^2 or exp (spline switched off)."""
    m = init_module(width, seed=seed, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in m.layers:
            for i in range(layer.n_in):
                for j in range(layer.n_out):
                    if (i + j) % 2 == 0:
                        layer.mask_sp[i, j] = 0.0
                        layer.mask_sym[i, j] = 1.0
                        layer.sym_funs[i][j] = FUNS[(i * 7 + j) % len(FUNS)]
                        layer.sym_affine[i, j] = torch.rand(4, generator=gen, dtype=torch.float64) + 0.5
            layer.refresh_symbolic()
    return m


def layer_inputs(module, x):
    """The input of every layer when the module runs on x."""
    out, h = [], x
    with torch.no_grad():
        for layer in module.layers:
            out.append(h)
            h = layer(h)
    return out


def max_rel_diff(a, b) -> float:
    scale = max(float(a.abs().max()), float(b.abs().max()), 1e-300)
    return float((a - b).abs().max()) / scale


def timeit_pair(old, new, repeat: int) -> tuple[float, float]:
    """Best process CPU seconds of ``old`` and of ``new`` over ``repeat`` interleaved calls
    each, after a warm-up of both (interleaved, so a busy machine slows both alike)."""
    old(), new()
    best = [math.inf, math.inf]
    for _ in range(repeat):
        for k, fn in enumerate((old, new)):
            c0 = time.process_time()
            fn()
            best[k] = min(best[k], time.process_time() - c0)
    return best[0], best[1]


def cases(width, n_rows: int):
    m = mixed_module(width)
    x = torch.rand(n_rows, width[0], dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    pairs = list(zip(m.layers, layer_inputs(m, x)))

    def old_a():
        return [old_edge_parts(layer, h) for layer, h in pairs]

    def new_a():
        return [edge_parts(layer, h, curve=True) for layer, h in pairs]

    def old_sum():
        return [sum(old_edge_parts(layer, h)[:2]) for layer, h in pairs]

    def new_sum():
        return [edge_values(layer, h) for layer, h in pairs]

    def old_b():
        return [old_safe_edge_values(layer, h, 1e3) for layer, h in pairs]

    def new_b():
        return [edge_values(layer, h, safe=True, y_th=1e3) for layer, h in pairs]

    with torch.no_grad():
        diff_a = max(max_rel_diff(o[0] + o[1], n.total) for o, n in zip(old_a(), new_a()))
        diff_b = max(max_rel_diff(o, n) for o, n in zip(old_b(), new_b()))
        diff_s = max(max_rel_diff(o, n) for o, n in zip(old_sum(), new_sum()))
    n_sym = sum(int(layer.mask_sym.sum()) for layer in m.layers)
    n_edges = sum(layer.n_in * layer.n_out for layer in m.layers)
    return n_sym, n_edges, [("edge values (attribution, pruning, swap)", old_sum, new_sum, diff_s),
                            ("branches and curves (pykan's acts)", old_a, new_a, diff_a),
                            ("safe values for symbolic fitting", old_b, new_b, diff_b)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--repeat", type=int, default=None, help="repeats (default 5; 2 with --quick)")
    ap.add_argument("--rows", type=int, default=1000, help="samples (default 1000)")
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--out", type=Path, default=None, help="write a markdown section here")
    args = ap.parse_args(argv)
    repeat = args.repeat or (2 if args.quick else 5)
    torch.set_num_threads(args.threads)
    rows = []
    for width in ([10, 10, 1], [100, 100, 10]):
        n_sym, n_edges, jobs = cases(width, args.rows)
        for what, old, new, diff in jobs:
            with torch.no_grad():
                old_best, new_best = timeit_pair(old, new, repeat)
            ratio = old_best / new_best
            rows.append([str(width), f"{n_sym}/{n_edges}", what, f"{old_best:.4f}",
                         f"{new_best:.4f}", f"{ratio:.1f}×", f"{diff:.1e}"])
            print(f"{width} ({n_sym}/{n_edges} symbolic) {what}: old {old_best:.4f} s, new "
                  f"{new_best:.4f} s (best CPU time), old/new {ratio:.1f}, max rel diff {diff:.1e}")
    if args.out:
        m = common.machine(args.threads)
        text = "\n".join([
            "## Per-edge values: old evaluators vs the one evaluator (kanir.backends.torch_eval)",
            "", common.machine_line(m), "",
            common.md_table(["width", "symbolic edges", "values", "old CPU s", "new CPU s",
                             "old / new", "max rel diff"], rows), "",
            f"{args.rows} rows, float64, every layer; best process CPU time of {repeat} calls "
            "each, old and new interleaved, after a warm-up. "
            "Symbolic edges are sin, x², exp on every other edge.", ""])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
