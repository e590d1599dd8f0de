"""Child process of the Feynman benchmark: one method on one data file, a JSON line out.

    python feynman_child.py METHOD DATA.npz BUDGET SEED
    python feynman_child.py --judge DATA.npz < ROW.json   (the row's verdict)

Runs under the project's interpreter (kanir, gplearn) or pykan's own (pykan), so it imports
nothing but numpy and the bench modules at the top.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import feynman_data  # noqa: E402
from feynman_runner import MARK  # noqa: E402


def main(argv) -> int:
    if argv[0] == "--judge":  # judge the row given on stdin (project interpreter)
        from feynman_runner import judge_row

        print(MARK + json.dumps(judge_row(json.loads(sys.stdin.read()), argv[1])), flush=True)
        return 0
    method, path, budget, seed = argv[0], argv[1], float(argv[2]), int(argv[3])
    data = feynman_data.read(path)
    if method == "kanir":
        from bench_discover import run_kanir as run
    elif method == "gplearn":
        from bench_baselines import run_gplearn as run
    elif method == "pykan":
        from bench_baselines import run_pykan as run
    else:
        raise SystemExit(f"unknown method {method!r}")
    c0, t0 = time.process_time(), time.perf_counter()
    try:
        res = run(data, budget, seed)
    except Exception as exc:  # noqa: BLE001 - a crash is a result of the benchmark
        res = {"formula": None, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    res.update(cpu_s=time.process_time() - c0, seconds=time.perf_counter() - t0)
    print(MARK + json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
