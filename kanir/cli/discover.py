"""``kanir discover DATA --target y [--budget 120] [--seed 0] [--noise F] [--jobs N]
[--scheduler ADDRESS] [--report DIR]``: find a formula for a data file's target column (see
:func:`kanir.workflows.discover.discover`). Progress goes to stderr, the formula last to
stdout; exit 3 when the budget ran out before any formula was found."""

from __future__ import annotations

import argparse
import sys

__all__ = ["EXIT_NOT_FOUND", "add_parser", "run"]

#: exit status when no formula was found within the budget
EXIT_NOT_FOUND = 3


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``discover`` subcommand to an argparse subparsers object and return its parser."""
    p = subparsers.add_parser(
        "discover", help="find an exact formula for a column of a data file",
        description="Fit a surrogate KAN, read its function tree, wire a KAN after it, "
                    "regress its edges symbolically and print the simplest formula that "
                    "matches held-out data.",
        epilog="example: kanir discover data.csv --target y --budget 60 --jobs 2 --report out/. "
               "Exit status: 0 formula found, 2 bad input, 3 no formula within the budget.")
    p.add_argument("data", metavar="DATA", help="a .csv with a header row, or an .npz with one "
                   "1-D array per column")
    p.add_argument("--target", default="y", help="the column to explain (default y)")
    p.add_argument("--budget", type=float, default=120.0, metavar="S",
                   help="seconds after which no new task starts and running fits stop "
                        "(default 120)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random step (default 0)")
    p.add_argument("--noise", type=float, default=None, metavar="F",
                   help="noise of the target as a fraction of its std (default: noiseless)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="run candidate structures in N local processes (joblib; -1: all "
                        "cores; default 1: inline)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run them on the Dask cluster at ADDRESS (e.g. tcp://host:8786)")
    p.add_argument("--report", metavar="DIR", help="write report.md and pictures into DIR")
    p.add_argument("--no-terms", action="store_true",
                   help="skip the sparse-terms step: every formula comes from the KANs")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    """Run ``kanir discover`` for parsed ``args``; bad input raises a KanirError (exit 2); no
    formula within the budget: one line on stderr, exit 3."""
    import torch

    from kanir.datasets.files import load_dataset
    from kanir.errors import ArgumentError
    from kanir.workflows.discover import discover

    if args.budget <= 0:
        raise ArgumentError(f"--budget must be positive, got {args.budget}")
    if args.jobs < 1 and args.jobs != -1:
        raise ArgumentError(f"--jobs must be at least 1 (or -1: all cores), got {args.jobs}")
    ds = load_dataset(args.data, target=args.target, test_fraction=0.0, dtype=torch.float64)
    found = discover(ds["train_input"].numpy(), ds["train_label"][:, 0].numpy(),
                     ds["input_names"], budget_s=args.budget, seed=args.seed, noise=args.noise,
                     n_jobs=args.jobs, scheduler=args.scheduler, progress=not args.quiet,
                     terms=not args.no_terms)
    if args.report:
        path = found.report(args.report)
        print(f"wrote {path}", file=sys.stderr)
    if not found.found:
        print("no formula found within the budget", file=sys.stderr)
        return EXIT_NOT_FOUND
    print(found.formula)
    return 0
