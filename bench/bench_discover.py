"""kanir.discover on the Feynman equations (issue 13, item 4), judged by SRBench's criteria.

Data from feynman_data (1,000 train + 1,000 test points per equation, seeded per equation,
optional noise on the training labels), judgement by srbench_judge (exact symbolic equivalence,
R² > 0.999 on the test points), every miss labelled with the step that failed
(discover_misses). Resumable JSON lines, shardable, parallel over equations (joblib or Dask);
see feynman_runner and bench/README.md. ``discover`` is not told the noise level.

    python bench/bench_discover.py --simplest 20 --budget 60
    python bench/bench_discover.py --all --noise 0 1e-3 --budget 120 --shard 0/4 --jobs 2
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def run_kanir(data: dict, budget: float, seed: int) -> dict:
    """``kanir.discover`` on one equation's training data (runs in the child process)."""
    import torch

    from kanir.workflows.discover import discover

    torch.set_num_threads(1)
    found = discover(data["X_train"], data["y_train"], data["names"], budget_s=budget,
                     seed=seed, progress=False)
    return {"formula": None if found.formula is None else str(found.formula),
            "held_out": found.error, "origin": found.origin,
            "front": [[c, e, str(f)] for c, e, f in found.front],
            "steps": [[s.name, round(s.seconds, 2), s.detail] for s in found.steps]}


def main(argv=None) -> int:
    import feynman_runner

    return feynman_runner.main(argv, __doc__, ["kanir"])


if __name__ == "__main__":
    raise SystemExit(main())
