"""Source code from a KanGraph: a straight-line program (one assignment per node) printed by
sympy's code printers as C, NumPy, JAX, plain Python or torch, and LaTeX.

Every edge is written exactly: symbolic parts as their formula, spline parts as their exact
piecewise polynomial (:func:`kanir.backends.sympy.spline_expr`), so a model that is not fully
symbolic still exports. One variable per node keeps the code linear in the model's size (a
nested formula would repeat a node's expression in every piece of the next spline).
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

import networkx as nx
import sympy

from kanir.backends.sympy import activation_expr, clean_float, to_sympy
from kanir.errors import KanirError
from kanir.ir.graph import KanGraph

__all__ = ["ExportError", "Program", "program", "to_c", "to_jax", "to_latex", "to_numpy",
           "to_python", "to_torch_source"]


class ExportError(KanirError, ValueError):
    """A model cannot be exported as asked (unknown target, unsupported function, ...)."""


# C and Python keywords and the names the generated code uses itself
_RESERVED = set(keyword.kwlist) | {
    "inputs", "outputs", "n", "i", "numpy", "math", "jax", "torch", "scipy", "double", "int",
    "float", "long", "const", "void", "return", "if", "else", "for", "while", "do", "char",
    "static", "struct", "union", "switch", "case", "default", "break", "continue", "sizeof",
    "auto", "register", "extern", "signed", "unsigned", "short", "volatile", "goto", "enum",
    "typedef", "inline", "restrict", "e", "pi", "exp", "log", "sin", "cos", "tan", "sqrt", "pow",
}


@dataclass
class Program:
    """``steps`` assign each node's value (a sympy expression over earlier symbols) in
    topological order; ``outputs`` are the symbols of the outputs, in order."""

    inputs: list[sympy.Symbol]
    input_names: list[str]
    steps: list[tuple[sympy.Symbol, sympy.Expr]]
    outputs: list[sympy.Symbol]
    output_names: list[str]


def identifiers(names: list[str], prefix: str) -> list[str]:
    """Valid, distinct C/Python identifiers for ``names`` (kept when already valid)."""
    out, seen = [], set()
    for i, name in enumerate(names):
        ident = re.sub(r"\W", "_", str(name), flags=re.ASCII)
        if not ident or ident[0].isdigit():
            ident = f"{prefix}{i}_{ident}".rstrip("_")
        if ident in _RESERVED or re.fullmatch(r"h\d+_\d+", ident) or ident in seen:
            ident = f"{prefix}_{ident}"
        while ident in seen:
            ident += "_"
        seen.add(ident)
        out.append(ident)
    return out


def program(graph: KanGraph) -> Program:
    """The straight-line program of ``graph`` (layered or expression level)."""
    if not isinstance(graph, KanGraph):
        raise ExportError(f"export needs a KAN or a KanGraph, got {type(graph).__name__}")
    graph.check()
    g = graph.nx
    names = identifiers(graph.input_names, "x")
    inputs = [sympy.Symbol(n) for n in names]
    value: dict = {}
    steps: list = []
    counter = 0
    for n in nx.topological_sort(g):
        a = g.nodes[n]
        kind = a["kind"]
        if kind == "input":
            value[n] = inputs[a["index"]]
            continue
        if kind == "subnode":
            terms = [activation_expr(g.edges[u, n]["act"], value[u], "piecewise",
                                     f"{u}->{n}") for u in g.predecessors(n)
                     if g.edges[u, n].get("act") is not None]
            value[n] = _affine(sympy.Add(*terms), a)  # inlined into its node below
            continue
        subs = [p for p in g.predecessors(n) if g.edges[p, n].get("wire")]
        subs.sort(key=lambda s: g.nodes[s].get("slot", g.nodes[s].get("index", 0)))
        parts = [value[s] for s in subs]
        body = sympy.Mul(*parts) if kind == "mult" or a.get("arity") else sympy.Add(*parts)
        sym = sympy.Symbol(_node_name(n, counter))
        counter += 1
        steps.append((sym, _affine(body, a)))
        value[n] = sym
    outs = _output_nodes(graph)
    return Program(inputs, list(graph.input_names), steps, [value[o] for o in outs],
                   list(graph.output_names))


def _node_name(n, counter: int) -> str:
    if isinstance(n, tuple) and len(n) == 3 and n[0] == "n":
        return f"h{n[1]}_{n[2]}"
    return f"h{counter}_0"


def _output_nodes(graph: KanGraph) -> list:
    g = graph.nx
    return sorted((n for n, a in g.nodes(data=True) if a["kind"] == "output"),
                  key=lambda n: g.nodes[n]["index"])


def _affine(body: sympy.Expr, attrs: dict) -> sympy.Expr:
    scale, bias = float(attrs.get("scale", 1.0)), float(attrs.get("bias", 0.0))
    if scale != 1:
        body = clean_float(scale) * body
    if bias != 0:
        body = body + clean_float(bias)
    return body


def _header(graph: KanGraph, comment: str) -> str:
    width = graph.width if graph.level == "layered" else "expression-level graph"
    return (f"{comment} generated by kanir export: a KAN of width {width}\n"
            f"{comment} inputs:  {', '.join(graph.input_names)}\n"
            f"{comment} outputs: {', '.join(graph.output_names)}\n")


def _check_printed(printer, target: str) -> None:
    missing = getattr(printer, "_not_supported", None)
    if missing:
        funs = ", ".join(sorted({type(e).__name__ for e in missing}))
        raise ExportError(f"the {target} printer cannot write {funs}; export to another target")


# ---------------------------------------------------------------------------- C
def to_c(graph: KanGraph, name: str = "kan") -> str:
    """C99: ``void NAME(const double *inputs, double *outputs)`` for one sample and
    ``void NAME_batch(const double *inputs, double *outputs, long n)`` for n row-major samples."""
    from sympy.printing.c import C99CodePrinter

    p = program(graph)
    printer = C99CodePrinter({"strict": False})
    n_in, n_out = len(p.inputs), len(p.outputs)
    lines = [_header(graph, "//"), "#include <math.h>", "",
             f"#define {name.upper()}_N_INPUTS {n_in}", f"#define {name.upper()}_N_OUTPUTS {n_out}",
             "", f"void {name}(const double *inputs, double *outputs)", "{"]
    for k, s in enumerate(p.inputs):
        lines.append(f"    const double {s} = inputs[{k}];  /* {p.input_names[k]} */")
    for sym, expr in p.steps:
        lines.append(f"    const double {sym} = {_one_line(printer.doprint(expr))};")
    for k, s in enumerate(p.outputs):
        lines.append(f"    outputs[{k}] = {s};  /* {p.output_names[k]} */")
    lines += ["}", "", f"void {name}_batch(const double *inputs, double *outputs, long n)", "{",
              "    for (long i = 0; i < n; i++)",
              f"        {name}(inputs + i * {n_in}, outputs + i * {n_out});", "}", ""]
    _check_printed(printer, "C")
    return "\n".join(lines)


def _one_line(code: str) -> str:
    return re.sub(r"\s*\n\s*", " ", code).replace("( ", "(").replace(" )", ")")


# ---------------------------------------------------------------------------- Python family
def _py_function(graph: KanGraph, printer, name: str, imports: str, prologue: list[str],
                 epilogue: str, doc: str, target: str) -> str:
    p = program(graph)
    body = []
    for k, s in enumerate(p.inputs):
        body.append(f"    {s} = inputs[..., {k}]  # {p.input_names[k]}" if "..." in prologue[0]
                    else f"    {s} = inputs[{k}]  # {p.input_names[k]}")
    for sym, expr in p.steps:
        body.append(f"    {sym} = {printer.doprint(expr)}")
    body.append(epilogue.format(outs=", ".join(str(s) for s in p.outputs)))
    _check_printed(printer, target)
    mods = sorted(set(getattr(printer, "module_imports", {}) or {}) | set(imports.split()))
    head = "".join(f"import {m}\n" for m in mods if m)
    return (_header(graph, "#") + head + "\n\n" + f"def {name}(inputs):\n"
            + f'    """{doc}"""\n' + "\n".join(prologue[1:] + body) + "\n")


def to_numpy(graph: KanGraph, name: str = "kan") -> str:
    """A NumPy function ``NAME(inputs)``: inputs (..., n_inputs) -> outputs (..., n_outputs)."""
    from sympy.printing.numpy import NumPyPrinter

    return _py_function(
        graph, NumPyPrinter(), name, "numpy",
        ["...", "    inputs = numpy.asarray(inputs, dtype=numpy.float64)"],
        "    return numpy.stack(numpy.broadcast_arrays({outs}), axis=-1)",
        "The KAN on inputs of shape (..., n_inputs); returns (..., n_outputs) in float64.", "NumPy")


def to_jax(graph: KanGraph, name: str = "kan") -> str:
    """A JAX function ``NAME(inputs)`` (jit-able): inputs (..., n_inputs) -> (..., n_outputs)."""
    from sympy.printing.numpy import JaxPrinter

    return _py_function(
        graph, JaxPrinter(), name, "jax jax.numpy",
        ["...", "    inputs = jax.numpy.asarray(inputs)"],
        "    return jax.numpy.stack(jax.numpy.broadcast_arrays({outs}), axis=-1)",
        "The KAN on inputs of shape (..., n_inputs); returns (..., n_outputs).", "JAX")


def to_python(graph: KanGraph, name: str = "kan") -> str:
    """Plain Python (the math module): ``NAME(inputs)`` for one sample, returns a list."""
    from sympy.printing.pycode import PythonCodePrinter

    return _py_function(
        graph, PythonCodePrinter({"standard": "python3"}), name, "math",
        ["", ], "    return [{outs}]",
        "The KAN on one sample (a sequence of n_inputs floats); returns a list of n_outputs.",
        "Python")


def to_torch_source(graph: KanGraph, name: str = "kan") -> str:
    """A torch function ``NAME(inputs)``: inputs (batch, n_inputs) -> (batch, n_outputs)."""
    from sympy.printing.pytorch import TorchPrinter

    return _py_function(
        graph, TorchPrinter(), name, "torch",
        ["...", ],
        "    return torch.stack(torch.broadcast_tensors({outs}), dim=-1)",
        "The KAN on a tensor of shape (..., n_inputs); returns (..., n_outputs).", "torch")


# ---------------------------------------------------------------------------- LaTeX
def _latex_printer():
    from sympy.printing.latex import LatexPrinter

    class KanLatexPrinter(LatexPrinter):
        """sympy's LaTeX with exp(u) as \\exp(u), as papers write it (and LaTeX parsers read)."""

        def _print_exp(self, expr, exp=None):
            body = rf"\exp{{\left({self._print(expr.args[0])} \right)}}"
            return body if exp is None else rf"{body}^{{{exp}}}"

    return KanLatexPrinter()


def to_latex(graph: KanGraph) -> str:
    """LaTeX: one ``equation`` per output. A fully symbolic model gives its formula (exact
    constants kept); with spline edges, an ``aligned`` list of node definitions whose spline
    edges are ``cases`` (their piecewise polynomials)."""
    out = [_header(graph, "%")]
    latex = _latex_printer().doprint
    try:
        exprs = to_sympy(graph)
    except KanirError:
        exprs = None
    if exprs is not None:
        names = identifiers(graph.input_names, "x")
        rename = {sympy.Symbol(o): sympy.Symbol(n) for o, n in zip(graph.input_names, names)}
        for oname, e in zip(graph.output_names, exprs):
            out.append("\\begin{equation}\n" + f"{latex(sympy.Symbol(oname))} = "
                       f"{latex(e.xreplace(rename))}\n" + "\\end{equation}\n")
        return "".join(out)
    p = program(graph)
    rows = [f"{latex(s)} &= {latex(e)}" for s, e in p.steps]
    rows += [f"{latex(sympy.Symbol(n))} &= {latex(s)}"
             for n, s in zip(p.output_names, p.outputs)]
    out.append("\\begin{equation}\n\\begin{aligned}\n" + " \\\\\n".join(rows)
               + "\n\\end{aligned}\n\\end{equation}\n")
    return "".join(out)
