"""``kanir plot MODEL.kanir -o FIG [--data FILE] [--beta B]``: pykan's picture of a model file
(every edge's curve; see :meth:`kanir.KAN.plot`), written as PNG, SVG or PDF."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``plot`` subcommand to an argparse subparsers object and return its parser."""
    p = subparsers.add_parser(
        "plot", help="draw a model file as pykan does: every edge's learned curve",
        description="Draw MODEL with one panel per edge showing its function over the range its "
                    "input takes on the data (default: uniform samples over the input grid "
                    "range); edges fade by attribution score when data is given.",
        epilog="example: kanir plot model.kanir -o kan.png --data inputs.csv")
    p.add_argument("model", metavar="MODEL", help="a .kanir model file")
    p.add_argument("-o", "--output", metavar="FIG", required=True,
                   help="the figure file (.png, .svg or .pdf)")
    p.add_argument("--data", metavar="FILE",
                   help="inputs to draw on: a .csv with a header or an .npz with one 1-D array "
                        "per column, columns named as the model's inputs (or an .npz with a 2-D "
                         "array 'x')")
    p.add_argument("--beta", type=float, default=3.0,
                   help="fading: edges get opacity tanh(beta * score) (default 3)")
    p.add_argument("--title", help="a title above the figure")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    """Run ``kanir plot`` for parsed ``args``; bad input raises a KanirError (exit 2)."""
    from pathlib import Path

    from kanir.backends.graphviz import DiagramError
    from kanir.model.kan import load

    suffix = Path(args.output).suffix.lower()
    if suffix not in (".png", ".svg", ".pdf"):
        raise DiagramError(f"-o needs a .png, .svg or .pdf file, got {args.output!r}")
    model = load(args.model, device="cpu")
    x = None
    if args.data:
        from kanir.cli.opt import load_data

        x = load_data(args.data, model.input_names).to(model.dtype)
    model.plot(path=args.output, x=x, beta=args.beta, title=args.title)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
