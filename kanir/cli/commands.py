"""The ``kanir`` command line: ``compile``, ``formula``, ``show``, ``export``, ``opt`` (and
``tree`` when present).

Exit status: 0 on success, 2 on bad input (one line ``kanir CMD: error: ...`` on stderr, without
a traceback), 1 when a compiled KAN fails its own numeric self-check, 141 (128 + SIGPIPE) without
a message when the reader of stdout goes away (``kanir formula m.kanir | head``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
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

__all__ = ["main", "build_parser", "parse_ranges", "UsageError", "DEFAULT_RANGE"]

EXIT_BROKEN_PIPE = 141  # what a shell reports for a Unix tool stopped by SIGPIPE


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kanir",
        description="kanir: compile formulas into exact Kolmogorov-Arnold Networks, read "
                    "formulas back from models, draw them.")
    p.add_argument("--version", action="version", version=f"kanir {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    c = sub.add_parser(
        "compile", help="compile a formula into an exact KAN",
        description="Compile FORMULA into an exact KAN; print its width, every edge's function, "
                    "the formula read back from it and a numeric self-check.",
        epilog='example: kanir compile "m0/sqrt(1-v**2/c**2)" --vars m0,v,c --ranges v=0:0.9 '
               '-o model.kanir --diagram kan.svg')
    c.add_argument("formula", metavar="FORMULA",
                   help='formula text, e.g. "E = m0/sqrt(1-v**2/c**2)"; several outputs '
                        "separated by ';'")
    c.add_argument("--vars", metavar="NAMES",
                   help="input variables in order, separated by commas (default: the names in "
                        "the formula, sorted)")
    c.add_argument("-o", "--output", metavar="MODEL", help="save the model to this .kanir file")
    c.add_argument("--diagram", metavar="FILE",
                   help="draw the KAN to FILE (.svg, .png, .pdf need Graphviz; .dot always works)")
    c.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    c.add_argument("--ranges", metavar="SPEC",
                   help="sampling ranges for the self-check: 'LOW:HIGH' for every variable "
                        "and/or 'name=LOW:HIGH' items separated by commas (default 0.5:2)")
    c.add_argument("--points", type=int, default=1000, metavar="N",
                   help="random points of the self-check (default 1000)")
    c.add_argument("--seed", type=int, default=0, help="seed of the self-check points")
    c.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="parameter dtype of the model (default float64)")
    c.set_defaults(run=run_compile)

    f = sub.add_parser("formula", help="print the formula of a model file",
                       description="Print each output's formula, read back from MODEL.")
    f.add_argument("model", metavar="MODEL", help="a .kanir model file")
    f.add_argument("--simplify", action="store_true", help="simplify with sympy (slower)")
    f.add_argument("--piecewise", action="store_true",
                   help="write spline edges as exact piecewise polynomials instead of failing")
    f.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    f.set_defaults(run=run_formula)

    s = sub.add_parser("show", help="describe a model file and draw it",
                       description="Print MODEL's width and edges; draw it with --diagram.")
    s.add_argument("model", metavar="MODEL", help="a .kanir model file")
    s.add_argument("--diagram", metavar="FILE",
                   help="draw the KAN to FILE (.svg, .png, .pdf need Graphviz; .dot always works)")
    s.add_argument("--curves", metavar="DIR",
                   help="draw spline edges as small plots, written into the folder DIR")
    s.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    s.add_argument("--ir", action="store_true",
                   help="print the whole graph as kanir IR text (docs/ir_text.md)")
    s.set_defaults(run=run_show)

    _add_tree(sub)
    importlib.import_module("kanir.cli.export").add_parser(sub)
    importlib.import_module("kanir.cli.plot").add_parser(sub)
    importlib.import_module("kanir.cli.opt").add_parser(sub)
    importlib.import_module("kanir.cli.discover").add_parser(sub)
    return p


def _version() -> str:
    from kanir import __version__

    return __version__


def _add_tree(sub) -> None:
    """Wire in ``kanir tree`` from kanir.cli.tree when that module exists."""
    if importlib.util.find_spec("kanir.cli.tree") is None:
        return
    try:
        mod = importlib.import_module("kanir.cli.tree")
        tree = mod.add_parser(sub)
        if tree is not None and tree.get_default("run") is None:
            tree.set_defaults(run=mod.run)
        elif tree is None:  # add_parser made the subparser itself without returning it
            sub.choices["tree"].set_defaults(run=mod.run)
    except Exception as exc:  # a broken optional module must not break the other commands
        t = sub.add_parser("tree", help="(unavailable)")
        t.set_defaults(run=lambda args, _e=exc: _fail(f"the tree command is unavailable: {_e}"))


def _fail(message: str) -> int:
    raise UsageError(message)


def main(argv=None) -> int:
    """Entry point of the ``kanir`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here, while it can still be handled
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KanirError as e:
        print(f"kanir {args.command}: error: {flag_names(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (in-process tests)
        pass


# ---------------------------------------------------------------------------- compile
def run_compile(args) -> int:
    from kanir.backends.sympy import to_sympy
    from kanir.frontend.compiler import compile as compile_formula
    from kanir.grammar.formula import parse_formula
    from kanir.grammar.printer import formula_text

    if args.points < 1:
        raise UsageError(f"--points must be at least 1, got {args.points}")
    check_seed(args.seed)
    variables = split_names(args.vars) if args.vars is not None else None
    formula = parse_formula(args.formula, variables)
    ranges = parse_ranges(args.ranges, [s.name for s in formula.variables])
    graph = compile_formula(formula, dtype=args.dtype)
    back = to_sympy(graph)
    check = self_check(graph, formula, ranges, args.points, args.seed)
    report = _describe(graph)
    report["formula"] = {n: formula_text(e) for n, e in formula.outputs}
    report["read_back"] = {n: formula_text(e) for n, e in zip(graph.output_names, back)}
    report["self_check"] = check
    if args.output:
        from kanir.ir.io import save_graph

        save_graph(graph, args.output)
        report["model"] = args.output
    if args.diagram:
        _draw(graph, args.diagram, None)
        report["diagram"] = args.diagram
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_compile(report)
    return 0 if check["ok"] else 1


def self_check(graph, formula, ranges: dict, points: int, seed: int) -> dict:
    """Max relative error of the lowered KAN against the formula on random points.

    The error of each output is |kan - f| / max(|f|, 1e-6 * max |f|); points where the formula
    is not finite (outside its domain) are skipped and counted.
    """
    import numpy as np
    import sympy
    import torch

    from kanir.backends.torch import lower

    rng = np.random.default_rng(seed)
    names = [s.name for s in formula.variables]
    lo = np.array([ranges[n][0] for n in names], dtype=np.float64)
    hi = np.array([ranges[n][1] for n in names], dtype=np.float64)
    X = lo + (hi - lo) * rng.random((points, len(names)))
    module = lower(graph)
    with torch.no_grad():
        Y = module(torch.as_tensor(X).to(module.dtype)).double().numpy()
    worst, skipped = 0.0, np.zeros(points, dtype=bool)
    overflow = np.zeros(points, dtype=bool)  # finite inputs, infinite value: not a domain issue
    for k, (_, expr) in enumerate(formula.outputs):
        f = sympy.lambdify(list(formula.variables), expr, modules="numpy")
        with np.errstate(all="ignore"):
            ref = np.asarray(f(*X.T), dtype=np.complex128) * np.ones(points)
        ok = np.isfinite(ref) & (np.abs(ref.imag) <= 1e-12 * np.maximum(1.0, np.abs(ref.real)))
        skipped |= ~ok
        overflow |= np.isinf(np.abs(ref))
        y, r = Y[ok, k], ref.real[ok]
        if r.size == 0:
            continue
        scale = np.maximum(np.abs(r), 1e-6 * np.abs(r).max())
        scale = np.where(scale > 0, scale, 1.0)
        with np.errstate(all="ignore"):
            err = np.abs(y - r) / scale
        err = np.where(np.isfinite(err), err, np.inf)
        worst = max(worst, float(err.max()))
    used = int(points - skipped.sum())
    tol = 1e-9 if graph.meta.get("dtype") == "float64" else 1e-4
    return {"max_rel_error": worst, "points": used, "skipped": int(skipped.sum()),
            "overflow": int(overflow.sum()),
            "ranges": {n: list(r) for n, r in ranges.items()}, "tolerance": tol,
            "ok": used > 0 and worst < tol}


def _print_compile(r: dict) -> None:
    out = sys.stdout.write
    for name, text in r["formula"].items():
        out(f"formula    {name} = {text}\n")
    out(f"inputs     {', '.join(r['inputs'])}\n")
    out(f"outputs    {', '.join(r['outputs'])}\n")
    out(f"width      {r['width']}  (depth {r['depth']}, {len(r['edges'])} edges)\n")
    _print_edges(r)
    for name, text in r["read_back"].items():
        out(f"read back  {name} = {text}\n")
    c = r["self_check"]
    rng = ", ".join(f"{n} in [{lo:g}, {hi:g}]" for n, (lo, hi) in c["ranges"].items())
    over, outside = c.get("overflow", 0), c["skipped"] - c.get("overflow", 0)
    skip = "".join([f"; {outside} points outside the formula's domain skipped" if outside else "",
                    f"; {over} points where the formula overflows float64 skipped" if over else ""])
    if c["points"] == 0:
        why = ("the formula overflows float64 at every sampled point" if over and not outside
               else "no sampled point lies in the formula's domain")
        out(f"self-check FAILED: {why} ({rng}); choose --ranges\n")
    else:
        verdict = "ok" if c["ok"] else f"FAILED (tolerance {c['tolerance']:g})"
        out(f"self-check {verdict}: max relative error {c['max_rel_error']:.2e} on "
            f"{c['points']} random points ({rng}){skip}\n")
    if "model" in r:
        out(f"saved      {r['model']}\n")
    if "diagram" in r:
        out(f"diagram    {r['diagram']}\n")


def _print_edges(r: dict) -> None:
    out = sys.stdout.write
    out("edges\n")
    for e in r["edges"]:
        src = f"[{r['inputs'][e['i']]}]" if e["l"] == 0 else ""
        out(f"  ({e['l']},{e['i']},{e['j']}) {src:<8} {e['function']}\n")


def _describe(graph) -> dict:
    """Width, inputs, outputs and every edge's function, JSON-ready."""
    import sympy

    from kanir.backends.sympy import activation_expr
    from kanir.grammar.printer import formula_text

    x = sympy.Symbol("x")
    edges = []
    for l, i, j, act in graph.act_edges():
        if act.spline is not None and act.spline.active:
            text = act.describe()
        else:
            text = formula_text(activation_expr(act, x))
        edges.append({"l": l, "i": i, "j": j, "function": text})
    return {"level": "layered", "inputs": graph.input_names, "outputs": graph.output_names,
            "width": graph.width, "mult_arity": mult_arity_lists(graph), "depth": graph.depth,
            "dtype": graph.meta.get("dtype"), "edges": edges}


def mult_arity_lists(graph) -> list[list[int]]:
    """The arity of every mult node, one list per node layer (``[[], [2], []]`` for
    ``[2, [0, 1], 1]``): one JSON schema whether or not the arities are uniform."""
    return [list(lw.arities) for lw in graph.layer_widths()]


def _describe_expression(graph) -> dict:
    """An expression-level graph (``kanir.frontend.compiler.compile_expression``) has no layers: its
    inputs, outputs, node counts by kind and every activation edge by node id."""
    from kanir.ir.activation import describe_symbolic

    kinds: dict[str, int] = {}
    for _, a in graph.nx.nodes(data=True):
        kinds[a["kind"]] = kinds.get(a["kind"], 0) + 1
    edges = []
    for u, v, a in sorted(graph.nx.edges(data=True), key=lambda e: (e[0], e[1])):
        act = a.get("act")
        if act is not None:
            text = describe_symbolic(act.symbolic) if act.symbolic is not None else act.describe()
            edges.append({"from": _node_name(graph, u), "to": _node_name(graph, v),
                          "function": text})
    return {"level": "expr", "inputs": graph.input_names, "outputs": graph.output_names,
            "nodes": dict(sorted(kinds.items())), "dtype": graph.meta.get("dtype"),
            "edges": edges}


def _node_name(graph, node) -> str:
    a = graph.nx.nodes[node]
    if a["kind"] == "input":
        return a.get("name", str(node))
    return "-".join(str(p) for p in node)


def _print_expression(report: dict) -> None:
    out = sys.stdout.write
    kinds = ", ".join(f"{n} {k}" for k, n in report["nodes"].items())
    out(f"expression-level graph (not layered; kanir.passes.canonicalize layers it)\n"
        f"inputs     {', '.join(report['inputs'])}\n"
        f"outputs    {', '.join(report['outputs'])}\n"
        f"nodes      {kinds}\n"
        f"edges\n")
    for e in report["edges"]:
        out(f"  {e['from']} -> {e['to']}  {e['function']}\n")


def _draw(graph, path: str, curves: str | None) -> None:
    from kanir.backends.graphviz import render, to_dot

    if graph.level != "layered":
        raise UsageError("--diagram draws layered KANs; this file holds an expression-level "
                         "graph (layer it with kanir.passes.canonicalize, or compile the formula "
                         "with kanir compile)")
    try:
        dot = to_dot(graph, curves=curves is not None, curve_dir=curves)
    except OSError as e:
        raise write_error("--curves", curves, e) from None
    try:
        render(dot, path)
    except OSError as e:
        raise write_error("--diagram", path, e) from None


# ---------------------------------------------------------------------------- formula / show
def _load(path: str):
    from kanir.ir.io import load_graph

    graph, _ = load_graph(path)
    return graph


def run_formula(args) -> int:
    from kanir.backends.sympy import to_sympy
    from kanir.grammar.printer import formula_text

    graph = _load(args.model)
    exprs = to_sympy(graph, simplify=args.simplify,
                     spline="piecewise" if args.piecewise else "error")
    pairs = list(zip(graph.output_names, exprs))
    if args.json:
        print(json.dumps({"inputs": graph.input_names,
                          "formula": {n: formula_text(e) for n, e in pairs}}, indent=2))
    else:
        for name, e in pairs:
            print(f"{name} = {formula_text(e)}")
    return 0


def run_show(args) -> int:
    graph = _load(args.model)
    if args.ir:
        if args.diagram or args.curves or args.json:
            raise UsageError("--ir prints the IR text alone; drop --diagram, --curves and --json")
        sys.stdout.write(graph.to_text())
        return 0
    report = _describe(graph) if graph.level == "layered" else _describe_expression(graph)
    if args.diagram:
        _draw(graph, args.diagram, args.curves)
        report["diagram"] = args.diagram
    elif args.curves:
        raise UsageError("--curves draws spline edges into a diagram: give --diagram FILE too")
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    if graph.level != "layered":
        _print_expression(report)
        return 0
    print(graph.summary())
    _print_edges(report)
    if "diagram" in report:
        print(f"diagram    {report['diagram']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
