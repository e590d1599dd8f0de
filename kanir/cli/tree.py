"""``kanir tree FORMULA``: print the modular tree of a formula and draw it.

Wired into ``kanir.cli.commands`` by ``add_parser(subparsers)``; ``run(args)`` returns the exit status:
0 on success, 2 on bad input or a failed analysis (message on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from kanir.cli.args import (
    DEFAULT_RANGE,
    UsageError,
    check_seed,
    flag_names,
    parse_ranges,
    split_names,
    write_error,
)
from kanir.errors import KanirError

__all__ = ["add_parser", "main", "run", "parse_ranges"]

TreeUsageError = UsageError  # the name this module used before the helpers were shared


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``tree`` subcommand to an argparse subparsers object and return its parser."""
    p = subparsers.add_parser(
        "tree", help="show the modular structure (tree) of a formula",
        description="Find the symmetric groups of FORMULA's variables and label each as "
                    "additively (add), multiplicatively (mul) or generally (gsep) separable, "
                    "or only symmetric (sym); print the tree and optionally draw it.",
        epilog='example: kanir tree "q*v*B/m" --vars q,v,B,m --ranges=0.5:2 --diagram tree.svg'
               '  (write --ranges=-1:1 with "=" when a range starts with a minus sign)')
    p.add_argument("formula", metavar="FORMULA", help='formula text, e.g. "x1 + x2*x3"')
    p.add_argument("--vars", metavar="NAMES",
                   help="input variables in order, separated by commas (default: the names in "
                        "the formula, sorted)")
    p.add_argument("--ranges", metavar="SPEC",
                   help="sampling ranges: 'LOW:HIGH' for every variable and/or 'name=LOW:HIGH' "
                        f"items separated by commas (default {DEFAULT_RANGE[0]:g}:"
                        f"{DEFAULT_RANGE[1]:g}); keep away from points where f is undefined")
    p.add_argument("--diagram", metavar="FILE",
                   help="draw the tree to FILE (.svg, .png, .pdf need Graphviz; .dot always works)")
    p.add_argument("--style", choices=("tree", "box"), default="tree",
                   help="diagram style: operator nodes over the leaves (tree) or nested boxes "
                        "(box)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--scores", action="store_true", help="show each node's evidence scores")
    p.add_argument("--sym-th", type=float, default=1e-2, metavar="T",
                   help="threshold of the symmetric-group test (default 1e-2)")
    p.add_argument("--sep-th", type=float, default=1e-2, metavar="T",
                   help="threshold of the add/mul/gsep labels (default 1e-2)")
    p.add_argument("--samples", type=int, default=1000, metavar="N",
                   help="random sample points (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample points")
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    """Run ``kanir tree`` for parsed ``args``; errors go to stderr with exit status 2."""
    try:
        return _run(args)
    except KanirError as e:
        print(f"kanir tree: error: {flag_names(str(e))}", file=sys.stderr)
        return 2


def main(argv=None) -> int:
    """Stand-alone entry point: ``main(["x1 + x2*x3", "--json"])``."""
    parser = argparse.ArgumentParser(prog="kanir")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["tree", *(argv or [])]))


def _run(args) -> int:
    from kanir.grammar.formula import parse_formula
    from kanir.science.tree import tree

    _check_numbers(args)
    variables = split_names(args.vars) if args.vars is not None else None
    formula = parse_formula(args.formula, variables)
    expr, symbols = formula.expr, formula.variables
    names = [s.name for s in symbols]
    ranges = parse_ranges(args.ranges, names)
    t = tree(expr, ranges, variables=list(symbols), sym_th=args.sym_th, sep_th=args.sep_th,
             n_samples=args.samples, seed=args.seed)
    diagram_error = _draw(t, args.diagram, args.style) if args.diagram else None
    if args.json:
        report = {"formula": str(expr), "variables": names,
                  "ranges": {n: list(r) for n, r in ranges.items()}, "tree": t.to_dict(),
                  "text": t.compact()}
        if args.diagram and diagram_error is None:
            report["diagram"] = args.diagram
        print(json.dumps(report, indent=2))
    else:
        print(t.to_text(scores=args.scores))
    if diagram_error:
        print(f"kanir tree: error: {diagram_error}", file=sys.stderr)
        return 2
    return 0


def _check_numbers(args) -> None:
    for flag, v in (("--sym-th", args.sym_th), ("--sep-th", args.sep_th)):
        if not (math.isfinite(v) and v > 0):
            raise TreeUsageError(f"{flag} must be a positive number, got {v}")
    if args.samples < 10:
        raise TreeUsageError(f"--samples must be at least 10, got {args.samples}")
    check_seed(args.seed)


def _draw(t, path: str, style: str) -> str | None:
    """Write the diagram; on a missing Graphviz also write the DOT source and return the message."""
    from kanir.backends.tree_dot import GraphvizNotFoundError, render_tree

    try:
        render_tree(t, path, style)
    except GraphvizNotFoundError as e:
        dot_path = path.rsplit(".", 1)[0] + ".dot"
        try:
            render_tree(t, dot_path, style)
        except OSError as err:
            raise write_error("--diagram", dot_path, err) from None
        return f"{e}; wrote the DOT source to {dot_path} instead"
    except OSError as e:
        raise write_error("--diagram", path, e) from None
    return None


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
