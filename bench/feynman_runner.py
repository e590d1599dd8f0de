"""The Feynman benchmark's driver, shared by bench_discover.py and bench_baselines.py.

Selects equations (``--all``, ``--simplest N``, ``--names``), shards them (``--shard i/n``:
the equations whose index in ``kanir.datasets.feynman()`` is i mod n), skips those already in
the JSON-lines results file, and runs the rest — in order, through joblib (``--jobs N``) or on a
Dask cluster (``--scheduler ADDRESS``), always through the same task function :func:`solve`.
:func:`solve` writes the equation's data file (feynman_data), runs the method in a fresh child
process (``feynman_child.py``; pykan in its own interpreter), and judges the formula with
srbench_judge against the test points. Only the driver appends to the results file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
MARK = "@@FEYNMAN_RESULT@@"
JUDGE_TIMEOUT = 120.0  #: seconds for the symbolic checks of one result row


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n; None -> (0, 1)."""
    if text is None:
        return 0, 1
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") \
            from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"--shard i/n needs 0 <= i < n, got {text!r}")
    return i, n


def select(names: list[str], shard: tuple[int, int]) -> list[str]:
    """The names of this shard (by the equation's index in the package, modulo n)."""
    import feynman_data

    i, n = shard
    return [nm for nm in names if feynman_data.index_of(nm) % n == i]


def key(row: dict) -> tuple:
    """What identifies a result row: method, equation, noise level, seed."""
    return row["method"], row["name"], float(row["noise"]), int(row.get("seed", 0))


def done_keys(path: Path) -> set:
    """Keys of the rows already in the results file (a torn last line is ignored)."""
    out = set()
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                out.add(key(json.loads(line)))
            except (ValueError, KeyError):
                continue
    return out


def python_for(method: str) -> str:
    """The interpreter that runs ``method``: pykan's own venv for pykan, this one otherwise."""
    if method != "pykan":
        return sys.executable
    sys.path.insert(0, str(BENCH))
    import common

    py = common.pykan_python()
    if py is None:
        raise RuntimeError("pykan environment absent: run bench/setup_pykan.sh")
    return str(py)


def run_child(method: str, data_file: Path, budget: float, seed: int, timeout: float) -> dict:
    """Run one method on one data file in a fresh process (empty temporary cwd, 1 thread)."""
    sys.path.insert(0, str(BENCH))
    import common

    env = common.child_env(1)
    cmd = [python_for(method), str(BENCH / "feynman_child.py"), method, str(data_file),
           str(budget), str(seed)]
    with tempfile.TemporaryDirectory(prefix="kanir-feynman-") as tmp:
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
    return {"error": f"exit code {proc.returncode}: " + " | ".join(tail)}


def solve(task: dict) -> dict:
    """One (method, equation, noise) task -> its judged result row."""
    sys.path.insert(0, str(BENCH))
    import feynman_data

    from kanir.datasets import feynman

    eq = feynman(task["name"])
    path = feynman_data.write(task["data_dir"], eq.name, task["noise"], task["seed"])
    t0 = time.perf_counter()
    res = run_child(task["method"], path, task["budget"], task["seed"], task["timeout"])
    wall = time.perf_counter() - t0
    row = {"method": task["method"], "name": eq.name, "noise": task["noise"],
           "seed": task["seed"], "budget": task["budget"], "n_var": eq.n_var,
           "truth": eq.formula, "formula": None, "wall_s": wall, "commit": commit(), **res}
    row.update(verdict(row, path))
    return row


def commit() -> str:
    """The checkout's commit (short hash, "+changes" when kanir's sources differ from it), so
    rows of runs resumed across commits say which code made them; "" outside git."""
    def git(*args):
        return subprocess.run(["git", "-C", str(BENCH), *args], capture_output=True,
                              text=True, timeout=30).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "../kanir", "../passes")
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+changes" if head and dirty else "")


def verdict(row: dict, path) -> dict:
    """The judge's verdict on a row (bounded in time; R² only when sympy does not finish)."""
    import feynman_data
    import srbench_judge

    from kanir.datasets import feynman

    out = judge_child(row, path, JUDGE_TIMEOUT)
    if out is None:
        data = feynman_data.read(path)
        out = srbench_judge.judge(row["formula"], feynman(row["name"]).expr, data["names"],
                                  data["X_test"], data["y_test"], data["ranges"],
                                  symbolic=False)
        out["how"] = f"symbolic check timed out after {JUDGE_TIMEOUT:.0f} s"
        if row["method"] == "kanir":
            out["miss"] = "judge timed out"
    return out


def rejudge(out: Path, data_dir) -> int:
    """Judge every row of a results file again (after a change to the judge or the misses
    classifier), rewriting the file; returns the number of rows."""
    import feynman_data

    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    for r in rows:
        path = feynman_data.write(data_dir, r["name"], r["noise"], r.get("seed", 0))
        r.update(verdict(r, path))
    tmp = out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(out)
    return len(rows)


def judge_row(row: dict, path) -> dict:
    """The verdict on a result row (and, for kanir, the failed step): runs in a child."""
    import discover_misses
    import feynman_data
    import srbench_judge

    from kanir.datasets import feynman

    data = feynman_data.read(path)
    out = srbench_judge.judge(row["formula"], feynman(row["name"]).expr, data["names"],
                              data["X_test"], data["y_test"], data["ranges"])
    if row["method"] == "kanir":
        out["miss"] = discover_misses.classify({**row, **out}, data["names"], data["X_test"],
                                               data["ranges"])
    return out


def judge_child(row: dict, path, timeout: float) -> dict | None:
    """:func:`judge_row` in a fresh process, so that a sympy simplification that never ends
    costs ``timeout`` seconds and no more; None when it timed out or failed."""
    cmd = [sys.executable, str(BENCH / "feynman_child.py"), "--judge", str(path)]
    try:
        proc = subprocess.run(cmd, input=json.dumps(row), capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    return None


def _run_tasks(tasks: list[dict], jobs: int, scheduler: str | None):
    """Yield rows as tasks finish: in order, through joblib, or on a Dask cluster."""
    if scheduler:
        import cloudpickle
        from dask.distributed import Client, as_completed

        # neither scheduler nor workers can import this file by name: ship it by value (a
        # lambda makes dask use cloudpickle, which then copies solve and its helpers)
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
        task = lambda t: solve(t)  # noqa: E731
        with Client(scheduler) as client:
            futures = client.map(task, tasks, pure=False)
            for fut in as_completed(futures):
                yield fut.result()
        return
    if jobs == 1:
        for t in tasks:
            yield solve(t)
        return
    from joblib import Parallel, delayed

    # threads suffice: each task's work happens in its own child process
    yield from Parallel(n_jobs=jobs, prefer="threads", return_as="generator_unordered")(
        delayed(solve)(t) for t in tasks)


def build_parser(doc: str, methods: list[str]) -> argparse.ArgumentParser:
    """The command line common to bench_discover.py and bench_baselines.py."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    which = p.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="all 120 equations")
    which.add_argument("--simplest", type=int, metavar="N",
                       help="the N equations with fewest variables (default 20)")
    which.add_argument("--names", help="comma-separated equation names")
    p.add_argument("--method", nargs="+", choices=methods, default=methods[:1])
    p.add_argument("--noise", nargs="+", type=float, default=[0.0],
                   help="noise levels (fractions of std(y) on the training labels)")
    p.add_argument("--budget", type=float, default=60.0, help="seconds per equation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shard", type=parse_shard, default=(0, 1), metavar="i/n")
    p.add_argument("--jobs", type=int, default=1, help="equations run at once (joblib)")
    p.add_argument("--scheduler", help="Dask scheduler address: run the equations there")
    p.add_argument("--out", help="results file (default bench/results/feynman-METHOD"
                                 "[-shard-i-of-n].jsonl)")
    p.add_argument("--data-dir", default=str(RESULTS / "data"))
    p.add_argument("--rejudge", action="store_true",
                   help="only judge the rows of the results file again and rewrite it")
    p.add_argument("--timeout", type=float, help="hard limit per equation in seconds "
                                                 "(default 3 x budget + 300; pykan 1800)")
    return p


def main(argv, doc: str, methods: list[str]) -> int:
    """Parse, select, skip what is done, run, append rows; print one line per equation."""
    import feynman_data

    a = build_parser(doc, methods).parse_args(argv)
    if a.jobs < 1:
        raise SystemExit("--jobs must be >= 1")
    if a.all:
        names = [e.name for e in feynman_data.equations()]
    elif a.names:
        names = [feynman_data.equations()[feynman_data.index_of(n)].name
                 for n in a.names.split(",")]
    else:
        names = feynman_data.simplest(a.simplest or 20)
    names = select(names, a.shard)
    for method in a.method:
        timeout = a.timeout or (1800.0 if method == "pykan" else 3 * a.budget + 300)
        out = Path(a.out) if a.out else default_out(method, a.shard)
        if a.rejudge:
            print(f"[{method}] judged {rejudge(out, a.data_dir)} rows again in {out}")
            continue
        done = done_keys(out)
        tasks = [{"method": method, "name": n, "noise": nz, "seed": a.seed, "budget": a.budget,
                  "data_dir": a.data_dir, "timeout": timeout}
                 for nz in a.noise for n in names
                 if (method, n, float(nz), a.seed) not in done]
        print(f"[{method}] {len(tasks)} to run, {len(names) * len(a.noise) - len(tasks)} done "
              f"already -> {out}", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        for row in _run_tasks(tasks, a.jobs, a.scheduler):
            with out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(f"{method:8s} {row['name']:10s} noise={row['noise']:g} "
                  f"exact={row['exact']!s:5s} r2={row['r2']:.6f} {row['wall_s']:6.1f}s "
                  f"{row.get('miss') or ''} {row.get('formula') or row.get('error', '')}"[:300],
                  flush=True)
    return 0


def default_out(method: str, shard: tuple[int, int]) -> Path:
    """bench/results/feynman-METHOD.jsonl, with -shard-i-of-n when sharded."""
    i, n = shard
    return RESULTS / (f"feynman-{method}.jsonl" if n == 1 else
                      f"feynman-{method}-shard-{i}-of-{n}.jsonl")
