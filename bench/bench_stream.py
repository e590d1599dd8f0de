"""Peak memory of ``fit`` on a stream read from a memory-mapped .npy: flat in the sample count.

For each count (1M and 10M rows; ``--quick``: 200k and 2M) a child process generates
``x`` (n, 2) and ``y`` (n, 1) in float64 into a temporary folder (in chunks), then a fresh child
trains a [2, 5, 1] KAN with Adam for one pass over a DataLoader of 10k-row batches that copies
each batch out of the .npy mapping, with grid updates from the reservoir (100k rows) and a
10k-row test stream. The child reports its peak resident set size (ru_maxrss) and the time.

Usage: ``.venv/bin/python bench/bench_stream.py [--quick] [--out bench/results/stream.md]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCH = 10_000
CHUNK = 1_000_000
MARK = "@@STREAM_RESULT@@"


def target(x):
    """The function to learn: sin(pi x0) + x1^2 (numpy)."""
    import numpy as np

    return np.sin(np.pi * x[:, :1]) + x[:, 1:2] ** 2


def generate(folder: str, n: int, seed: int = 0) -> None:
    """x.npy (n, 2) uniform in [-1, 1] and y.npy (n, 1) = target(x), written chunk by chunk."""
    import numpy as np

    rng = np.random.default_rng(seed)
    xs = np.lib.format.open_memmap(os.path.join(folder, "x.npy"), "w+", np.float64, (n, 2))
    ys = np.lib.format.open_memmap(os.path.join(folder, "y.npy"), "w+", np.float64, (n, 1))
    for s in range(0, n, CHUNK):
        e = min(n, s + CHUNK)
        x = rng.uniform(-1, 1, (e - s, 2))
        xs[s:e], ys[s:e] = x, target(x)
    xs.flush(), ys.flush()
    del xs, ys


class NpyRows:
    """Rows of x.npy / y.npy by a list of indices (a DataLoader batch). The files are mapped
    for each batch and unmapped after it, so pages read once do not stay resident."""

    def __init__(self, folder: str, start: int = 0, stop: int | None = None):
        import numpy as np

        self.folder = folder
        n = np.load(os.path.join(folder, "x.npy"), mmap_mode="r").shape[0]
        self.start, self.stop = start, n if stop is None else stop

    def __len__(self):
        return self.stop - self.start

    def __getitem__(self, idx):
        import numpy as np
        import torch

        lo, hi = self.start + idx[0], self.start + idx[-1] + 1  # contiguous batches
        x = np.load(os.path.join(self.folder, "x.npy"), mmap_mode="r")
        y = np.load(os.path.join(self.folder, "y.npy"), mmap_mode="r")
        out = torch.from_numpy(np.array(x[lo:hi])), torch.from_numpy(np.array(y[lo:hi]))
        del x, y
        return out


def loader(folder: str, start: int = 0, stop: int | None = None):
    from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

    rows = NpyRows(folder, start, stop)
    return DataLoader(rows, sampler=BatchSampler(SequentialSampler(range(len(rows))), BATCH,
                                                 False), batch_size=None)


def child_train(folder: str, n: int) -> dict:
    """One pass of Adam over the first n - 10k rows, tested on the last 10k; peak RSS."""
    import torch

    import kanir

    torch.set_num_threads(1)
    model = kanir.KAN(width=[2, 5, 1], grid=5, seed=0, dtype=torch.float64, versions=False)
    t = time.perf_counter()
    hist = model.fit(loader(folder, 0, n - 10_000), opt="Adam", lr=0.01, steps=1,
                     test_loader=loader(folder, n - 10_000), progress=False)
    seconds = time.perf_counter() - t
    return {"n": n, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "seconds": seconds, "test_rmse": hist["test_rmse"][-1]}


def child_baseline() -> dict:
    """Peak RSS of a process that imports torch and kanir and builds the model (no data)."""
    import torch

    import kanir

    torch.set_num_threads(1)
    kanir.KAN(width=[2, 5, 1], grid=5, seed=0, dtype=torch.float64, versions=False)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # imports what fit imports
    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(*args) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *map(str, args)],
                         capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise SystemExit(f"child {args} failed:\n{out.stdout}\n{out.stderr}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="200k and 2M rows instead of 1M and 10M")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "stream.md")
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        kind, *rest = a.child
        if kind == "generate":
            generate(rest[0], int(rest[1]))
            res = {}
        elif kind == "train":
            res = child_train(rest[0], int(rest[1]))
        else:
            res = child_baseline()
        print(MARK + json.dumps(res), flush=True)
        return
    counts = (200_000, 2_000_000) if a.quick else (1_000_000, 10_000_000)
    base = run_child("baseline")
    rows = []
    for n in counts:
        with tempfile.TemporaryDirectory(prefix="kanir-stream-") as folder:
            run_child("generate", folder, n)
            size = sum(os.path.getsize(os.path.join(folder, f)) for f in ("x.npy", "y.npy"))
            r = run_child("train", folder, n)
            r["file_mib"] = size / 2**20
            rows.append(r)
            print(f"{n:>12,d} rows  file {r['file_mib']:8.1f} MiB  peak RSS "
                  f"{r['peak_rss_mib']:7.1f} MiB  {r['seconds']:7.1f} s  test RMSE "
                  f"{r['test_rmse']:.3g}", flush=True)
    ratio = rows[-1]["peak_rss_mib"] / rows[0]["peak_rss_mib"]
    lines = [
        "## Streaming fit: peak memory against the number of samples",
        "",
        f"`bench/bench_stream.py{' --quick' if a.quick else ''}` on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}. One pass of Adam over a DataLoader of {BATCH:,}-row "
        "batches copied out of memory-mapped .npy files (float64, x: 2 columns, y: 1), "
        "[2, 5, 1] KAN, grid updates from a 100k-row reservoir, a 10k-row test stream. "
        "Peak RSS of a fresh process (ru_maxrss); the baseline process only imports torch and "
        f"kanir and builds the model: {base['peak_rss_mib']:.0f} MiB.",
        "",
        "| rows | .npy files (MiB) | peak RSS (MiB) | above baseline (MiB) | time (s) | test RMSE |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['file_mib']:.0f} | {r['peak_rss_mib']:.0f} | "
                     f"{r['peak_rss_mib'] - base['peak_rss_mib']:.0f} | {r['seconds']:.1f} | "
                     f"{r['test_rmse']:.3g} |")
    lines += ["", f"Peak RSS ratio {counts[-1]:,} / {counts[0]:,} rows: **{ratio:.2f}** "
              f"(the data grew {counts[-1] // counts[0]}x).", ""]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
