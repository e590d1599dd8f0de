"""``kanir opt IN.kanir -p PIPELINE [--data FILE] [-o OUT.kanir]``: run a pass pipeline on a
model file (kanir's ``mlir-opt``), e.g. ``-p "prune{edge_th=0.05},auto-swap"``.

Wired into ``kanir.cli.commands`` by ``add_parser(subparsers)``. ``--list-passes`` lists every
registered pass with its options. The IR dumps of ``--print-ir-after-all`` and the table of
``--timing`` go to stderr (as mlir-opt's do); analysis results go to stdout; without ``-o`` the
resulting model is described on stdout instead of written. Bad pipeline text, unknown passes or
options, and a data pass without ``--data`` exit with status 2 and a message naming the problem.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from kanir.cli.args import UsageError
from kanir.errors import DataError, KanirError

__all__ = ["add_parser", "run", "load_data"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``opt`` subcommand to an argparse subparsers object and return its parser."""
    p = subparsers.add_parser(
        "opt", help="run a pass pipeline on a model file",
        description="Run the registered passes of PIPELINE, in order, on MODEL; every pass's "
                    "result is checked. Options go in braces: "
                    "'prune{edge_th=0.05,node_th=0.01},auto-swap'.",
        epilog='example: kanir opt model.kanir -p "prune{edge_th=0.05},auto-swap" '
               "--data train.npz -o pruned.kanir")
    p.add_argument("model", metavar="MODEL", nargs="?", help="a .kanir model file")
    p.add_argument("-p", "--pipeline", metavar="PIPELINE",
                   help="comma-separated passes with options in braces")
    p.add_argument("--data", metavar="FILE",
                   help="samples for data passes: an .npz with a 2-D array 'x', or a table "
                        "(.csv, or .npz of columns) with a column per model input")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="write the result to this .kanir file (default: describe it on stdout)")
    p.add_argument("--print-ir-after-all", action="store_true",
                   help="print the IR after each pass (to stderr)")
    p.add_argument("--timing", action="store_true",
                   help="print each pass's time (to stderr)")
    p.add_argument("--list-passes", action="store_true",
                   help="list the registered passes with their options and exit")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    """Run ``kanir opt`` for parsed ``args``; bad input raises a KanirError (exit 2)."""
    from kanir.ir.io import load_graph, save_graph
    from kanir.passes._common import strip_analysis
    from kanir.passes.manager import PassManager, get_pass, parse_pipeline, pass_listing

    if args.list_passes:
        print(pass_listing())
        return 0
    if not args.model:
        raise UsageError("give a MODEL file (or --list-passes)")
    if not args.pipeline:
        raise UsageError("give the passes to run with -p PIPELINE, e.g. -p 'prune,auto-swap' "
                         "(kanir opt --list-passes lists them)")
    specs = parse_pipeline(args.pipeline)  # syntax errors before any file is read
    graph, _ = load_graph(args.model)
    x = load_data(args.data, graph.input_names) if args.data else None
    if x is None:
        for pos, spec in enumerate(specs, 1):
            if get_pass(spec.name).data == "required":
                raise UsageError(f"pass {spec.name!r} (#{pos}) needs data: give --data FILE")
    pm = PassManager(specs, x=x, timing=args.timing,
                     print_ir_after_all=args.print_ir_after_all, ir_stream=sys.stderr)
    try:
        out = pm.run(graph)
    except KanirError as e:
        where = getattr(e, "kanir_pass", None)
        if where is None:
            raise
        raise UsageError(f"pass {where[0]!r} (#{where[1]}): {e}") from None
    finally:
        if args.timing and pm.records:
            print(pm.timing_report.table(), file=sys.stderr)
    for rec in pm.records:
        if rec.kind == "analysis":
            print(f"{rec.name} (#{rec.position}): {rec.result}")
    if args.output:
        save_graph(strip_analysis(out.copy()), args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(out.summary())
    return 0


def load_data(path: str, input_names: list[str]):
    """Samples for the model's inputs from ``path``: the 2-D array ``x`` of an .npz, or the
    columns named after the inputs in a table (.csv, or .npz with one array per column)."""
    import torch

    from kanir.datasets.files import _read  # the table reader behind load_dataset

    path = os.fspath(path)
    if path.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as z:
                x = z["x"] if "x" in z.files and z["x"].ndim == 2 else None
        except (OSError, ValueError) as e:
            raise DataError(f"--data: cannot read {path!r} as .npz: {e}") from None
        if x is not None:
            if x.shape[1] != len(input_names):
                raise DataError(f"--data: array 'x' of {path} has {x.shape[1]} columns, the "
                                f"model has {len(input_names)} inputs {input_names}")
            return torch.as_tensor(np.asarray(x, dtype=np.float64))
    names, table = _read(path)
    missing = [n for n in input_names if n not in names]
    if missing:
        raise DataError(f"--data: {path} has no column(s) {missing} for the model's inputs "
                        f"{input_names} (its columns: {names}); or give an .npz with a 2-D "
                        "array 'x'")
    return torch.as_tensor(table[:, [names.index(n) for n in input_names]])
