"""IR bridge costs on a [100, 100, 10] KAN (11,000 edges): lift, lower, check, the cached graph
view, two facade passes and the memory the versions hold after 20 passes.

Run: ``.venv/bin/python bench/bench_ir.py [--width 100,100,10] [--repeat 5]``. Prints a table of
best and median seconds with the issue's targets. One process, one torch thread (the numbers
are single-core); timings on a shared machine are noisy, so read the best column.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import kanir
from kanir.backends.torch import lift, lower


def _times(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _versions_bytes(model) -> int:
    """Bytes of tensor and array storage the model's version store holds (shared storage once)."""
    import numpy as np

    seen, total = set(), 0
    for entry in model.versions._entries.values():
        for arr in _arrays(entry.data):
            if isinstance(arr, torch.Tensor):
                key, n = arr.untyped_storage().data_ptr(), arr.untyped_storage().nbytes()
            else:
                base = arr if arr.base is None else arr.base
                key, n = id(base), base.nbytes if isinstance(base, np.ndarray) else arr.nbytes
            if key not in seen:
                seen.add(key)
                total += n
    return total


def _arrays(data):
    import numpy as np

    if data is None:
        return
    if isinstance(data, torch.nn.Module):
        yield from data.parameters()
        yield from data.buffers()
        return
    for *_, act in data.act_edges():
        if act.spline is not None:
            for a in (act.spline.grid, act.spline.coef):
                if isinstance(a, np.ndarray):
                    yield a


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", default="100,100,10")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    load_start = os.getloadavg()[0]
    width = [int(w) for w in args.width.split(",")]
    r = args.repeat
    model = kanir.KAN(width=width, grid=5, k=3, seed=0, device="cpu")
    x = torch.rand(100, width[0]) * 2 - 1
    model(x)
    g = lift(model.net)
    rows = []

    def row(name, times, target):
        rows.append((name, min(times), statistics.median(times), target))

    row("lift", _times(lambda: lift(model.net), r), "")
    row("lower", _times(lambda: lower(g), r), "")
    row("lift + lower", _times(lambda: lower(lift(model.net)), r), "<= 0.2 s")
    row("graph.check()", _times(g.check, r), "")
    row("model.graph (first, lifts)", _times(lambda: model.copy().graph, 1), "")
    _ = model.graph  # fill the cache
    row("model.width (repeated)", _times(lambda: model.width, 50), "< 1 ms")
    row("model.graph (repeated)", _times(lambda: model.graph, 50), "< 1 ms")
    row("model(x) forward, 100 rows", _times(lambda: model(x), r), "")
    copies = [model.copy() for _ in range(r)]
    row("expand_depth (cold graph)", _times(lambda: copies.pop().expand_depth(), r), "<= 0.3 s")
    mp = model.copy()
    row("prune_edge (with attribution)", _times(lambda: mp.prune_edge(1e-4, x=x), r),
        "<= 0.3 s")
    mv = kanir.KAN(width=width, grid=5, k=3, seed=0, device="cpu")
    for i in range(20):
        mv.remove_edge(0, i % width[0], i % width[1])
    mb = _versions_bytes(mv) / 2**20
    try:
        mc = kanir.KAN(width=width, grid=5, k=3, seed=0, device="cpu", max_versions=5)
    except TypeError:  # a kanir without max_versions (the baseline)
        mc = None
    else:
        for i in range(20):
            mc.remove_edge(0, i % width[0], i % width[1])
    one = sum(t.numel() * t.element_size() for t in list(mv.net.parameters())
              + list(mv.net.buffers())) / 2**20
    print(f"KAN width={width}, {sum(1 for _ in g.act_edges())} edges; best/median of {r} "
          f"(width/graph: 50); torch threads 1; load average {load_start:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end")
    print(f"| {'step':<30} | {'best s':>10} | {'median s':>10} | target |")
    print(f"|{'-' * 32}|{'-' * 12}|{'-' * 12}|--------|")
    for name, best, med, target in rows:
        print(f"| {name:<30} | {best:>10.5f} | {med:>10.5f} | {target} |")
    print(f"| versions after 20 passes (MiB) | {mb:>10.2f} | {'':>10} | bounded (one state: "
          f"{one:.2f} MiB, {len(mv.versions)} versions listed) |")
    if mc is not None:
        print(f"| same, max_versions=5 (MiB)     | {_versions_bytes(mc) / 2**20:>10.2f} | "
              f"{'':>10} | {mc.versions.held()} states held, {len(mc.versions)} listed |")


if __name__ == "__main__":
    main()
