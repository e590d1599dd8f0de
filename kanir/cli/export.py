"""``kanir export MODEL.kanir --to TARGET [-o FILE]``: a model file as C, NumPy, JAX, Python,
LaTeX, TorchScript or ONNX (see :func:`kanir.export`).

Wired into ``kanir.cli.commands`` by ``add_parser(subparsers)``. Source targets print to stdout unless
``-o`` is given; binary targets (torchscript, onnx) need ``-o``.
"""

from __future__ import annotations

import argparse
import sys

from kanir.errors import ExportUsageError

__all__ = ["add_parser", "run"]

_TARGETS = ("latex", "numpy", "c", "jax", "python", "onnx", "torchscript")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``export`` subcommand to an argparse subparsers object and return its parser."""
    p = subparsers.add_parser(
        "export", help="export a model file as C, NumPy, JAX, Python, LaTeX, TorchScript or ONNX",
        description="Write MODEL as source code (spline edges as their exact piecewise "
                    "polynomials) or as a TorchScript/ONNX file with a dynamic batch size.",
        epilog="example: kanir export model.kanir --to c -o kan.c")
    p.add_argument("model", metavar="MODEL", help="a .kanir model file")
    p.add_argument("--to", required=True, choices=_TARGETS, help="the export target")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write to FILE (default: print source targets to stdout)")
    p.add_argument("--name", default="kan",
                   help="name of the generated function (default kan)")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    """Run ``kanir export`` for parsed ``args``; bad input raises a KanirError (exit 2)."""
    from kanir.backends.export import export
    from kanir.ir.io import load_graph

    if args.to in ("onnx", "torchscript") and not args.output:
        raise ExportUsageError(f"--to {args.to} writes a binary file: give -o FILE")
    graph, _ = load_graph(args.model)
    result = export(graph, to=args.to, path=args.output, name=args.name)
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(result)
    return 0
