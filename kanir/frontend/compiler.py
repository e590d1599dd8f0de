"""The formula compiler: text or sympy -> grammar -> frontend -> canonicalize -> a layered KAN.

``kanir.compile("E = m0/sqrt(1 - v**2/c**2)")`` returns a layered :class:`~kanir.KanGraph` whose
edges are all symbolic and exact; ``kanir.KAN.from_graph`` makes it trainable.
"""

from __future__ import annotations

from kanir.errors import FormulaError
from kanir.frontend.lowering import expression_graph
from kanir.ir.graph import KanGraph

__all__ = ["compile", "compile_expression", "kanpiler"]


def compile_expression(source, variables=None, dtype: str = "float64",
                       check: bool = True) -> KanGraph:
    """The expression-level graph of a formula (before :func:`kanir.passes.canonicalize.
    canonicalize`), for inspection and tests."""
    from kanir.grammar.formula import Formula, parse_formula

    if isinstance(source, Formula):
        if variables is not None:
            raise FormulaError("a parsed Formula already fixes its variables; do not pass "
                               "variables= with it")
        formula = source
    else:
        formula = parse_formula(source, variables)
    return expression_graph(formula, dtype, check)


def compile(source, variables=None, dtype: str = "float64", *, grid: int | None = None,
            k: int | None = None, mult_outputs: bool = True) -> KanGraph:
    """Compile a formula into an exact layered KAN.

    ``source``: formula text (``"r = sqrt(x^2 + y^2); theta = atan(y/x)"``), a sympy expression
    or Eq, a list of those, or a parsed :class:`~kanir.grammar.formula.Formula`.
    ``variables``: the input names (or sympy Symbols) in order; by default the free symbols
    sorted naturally (x2 before x10). ``dtype``: "float64" (default) or "float32".
    ``grid``/``k`` are stored in the graph's metadata for splines added later.
    Raises :class:`~kanir.errors.FormulaError` for anything it cannot compile, naming the
    sub-expression.
    """
    from kanir.passes.canonicalize import canonicalize

    expr_graph = compile_expression(source, variables, dtype, check=False)
    graph = canonicalize(expr_graph, mult_outputs=mult_outputs, validate=False)
    if grid is not None:
        graph.meta["grid"] = _positive_int(grid, "grid")
    if k is not None:
        graph.meta["k"] = _positive_int(k, "k")
    return graph


def kanpiler(input_variables, expr, grid: int = 5, k: int = 3, auto_save: bool = False,
             dtype: str = "float64") -> KanGraph:
    """pykan-style ``kanpiler(input_variables, expr)``: the inputs (sympy Symbols or names) in
    order, then the expression. ``auto_save`` is accepted for pykan compatibility and ignored
    (kanir never writes files by itself). Returns the layered graph; ``kanir.KAN.from_graph``
    turns it into a model."""
    if isinstance(input_variables, str) or not isinstance(input_variables, list | tuple):
        raise FormulaError("kanpiler needs a list of input variables (sympy Symbols or names), "
                           f"got {input_variables!r}")
    return compile(expr, list(input_variables), dtype, grid=grid, k=k)


def _positive_int(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise FormulaError(f"{name} must be a positive integer, got {v!r}")
    return v
