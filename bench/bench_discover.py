"""kanir.discover on the n simplest Feynman equations (issue 13, item 4, first cut).

The equations are bench_symbolic's ``feynman_set(n)`` (1-3 variables, fewest sympy operations),
1,000 points sampled uniformly in each variable's range (seed 0), noiseless; every equation gets
the same ``--budget`` and runs in its own process (one at a time: the machine is shared).
Judged by bench_symbolic's ``judge`` (exact symbolic equivalence, R² on fresh points).
Results go to a resumable JSON-lines file (one line per equation; equations already in it are
skipped) and a markdown table.

    python bench/bench_discover.py --n 20 --budget 120 --out bench/results/discover.jsonl
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_symbolic import feynman_set, judge  # noqa: E402


def run_one(name: str, budget: float, seed: int) -> dict:
    """Discover one equation in this process; the row for the results file."""
    import numpy as np
    import torch

    from kanir.datasets import feynman
    from kanir.workflows.discover import discover

    torch.set_num_threads(1)
    eq = feynman(name)
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.uniform(lo, hi, 1000) for lo, hi in eq.ranges])
    y = eq.torch_function()(torch.tensor(x))[:, 0].numpy()
    t0, c0 = time.perf_counter(), time.process_time()
    found = discover(x, y, list(eq.variables), budget_s=budget, seed=seed, progress=False)
    return {"name": name, "truth": eq.formula, "formula": str(found.formula),
            "held_out": found.error, "origin": found.origin, "wall_s": time.perf_counter() - t0,
            "cpu_s": time.process_time() - c0,
            "steps": [(s.name, round(s.seconds, 2), s.detail) for s in found.steps]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20, help="how many of the simplest equations")
    p.add_argument("--budget", type=float, default=120.0, help="seconds per equation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="bench/results/discover.jsonl")
    p.add_argument("--timeout", type=float, default=900.0, help="hard limit per equation (s)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # child mode: run this equation, print JSON
    a = p.parse_args(argv)
    if a.one:
        print(json.dumps(run_one(a.one, a.budget, a.seed)))
        return 0
    out = Path(a.out)
    done = {json.loads(line)["name"] for line in out.read_text().splitlines()} \
        if out.exists() else set()
    eqs = feynman_set(a.n)
    for row in eqs:
        if row["name"] in done:
            continue
        cmd = [sys.executable, __file__, "--one", row["name"], "--budget", str(a.budget),
               "--seed", str(a.seed)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
            res = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 \
                else {"name": row["name"], "truth": row["formula"], "formula": None,
                      "error": proc.stderr[-500:]}
        except subprocess.TimeoutExpired:
            res = {"name": row["name"], "truth": row["formula"], "formula": None,
                   "error": "timeout"}
        names = [v["name"] for v in row["variables"]]
        ranges = [(v["low"], v["high"]) for v in row["variables"]]
        res.update(judge(res.get("formula"), row["formula"], names, ranges))
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a") as fh:
            fh.write(json.dumps(res) + "\n")
        print(f"{res['name']:12s} exact={res['exact']!s:5s} r2={res['r2']:.6f} "
              f"{res.get('wall_s', float('nan')):6.1f}s  {res.get('formula')}", flush=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    write_table(rows, out.with_suffix(".md"), a.budget)
    print(f"exact: {sum(r['exact'] for r in rows)}/{len(rows)}; R2 > 0.999: "
          f"{sum(r['r2'] > 0.999 for r in rows)}/{len(rows)}")
    return 0


def write_table(rows: list[dict], path: Path, budget: float) -> None:
    """The per-equation table with totals."""
    lines = [f"# kanir.discover on the {len(rows)} simplest Feynman equations "
             f"(budget {budget:g} s, noiseless)", "",
             "| equation | truth | found | exact | R² | wall s | decided by |",
             "|---|---|---|---|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | `{r['truth']}` | `{r.get('formula')}` | "
                     f"{'yes' if r['exact'] else 'no'} | {r['r2']:.6f} | "
                     f"{r.get('wall_s', float('nan')):.0f} | {r.get('origin', r.get('error', ''))} |")
    lines += ["", f"exact: {sum(r['exact'] for r in rows)}/{len(rows)}; R² > 0.999: "
              f"{sum(r['r2'] > 0.999 for r in rows)}/{len(rows)}"]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
