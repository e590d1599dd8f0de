"""``augment_input``: add auxiliary input variables defined by formulas of the original ones
(the paper's section 3.1, e.g. beta = v/c and gamma = 1/sqrt(1 - beta^2) for relativistic mass).

As in pykan, the auxiliary variables come first: the pass adds one input node per auxiliary
variable, named after it, before the original inputs, connected to the first layer by
zero-function spline edges, so the model computes exactly what it did on the original inputs
until training puts the new inputs to use. The definitions are recorded in
``graph.meta["input_defs"]`` as [name, formula text] pairs. :func:`augment_dataset` puts the
matching columns in front of a pykan-style dataset's inputs. Names are identifiers
(:func:`kanir.arguments.check_names`); an expression given without a name is named after itself
when it is a symbol, else ``aux_1``, ``aux_2``, ...

Examples
--------
>>> m0, v, c = sympy.symbols("m0 v c")
>>> beta = v / c
>>> aux = {"beta": beta, "gamma": 1 / sympy.sqrt(1 - beta**2)}
>>> g2 = augment_input(g, [m0, v, c], aux)
>>> data2 = augment_dataset(data, [m0, v, c], aux)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import sympy
import torch

from kanir.arguments import check_names
from kanir.errors import DataError, PassError
from kanir.ir.activation import Activation
from kanir.ir.bspline import uniform_knots
from kanir.ir.graph import KanGraph, N

from ._common import (
    layer_spline_shape,
    reorder_layer,
    require_layered,
    strip_analysis,
    verified,
    zero_spline,
)

__all__ = ["augment_input", "augment_dataset", "aux_definitions", "aux_values"]


def aux_definitions(original_variables, auxiliary_variables
                    ) -> tuple[list[sympy.Symbol], list[tuple[str, sympy.Expr]]]:
    """Normalise the arguments: (original symbols, [(name, expression)]), checked.

    ``original_variables``: sympy Symbols or names, one per original input, in column order.
    ``auxiliary_variables``: a mapping {name: expression}, or a sequence of expressions (a Symbol
    is named after itself, any other expression ``aux_<n>``, the first free n) or of
    (name, expression) pairs.
    Expressions may be sympy objects or formula text over the original variables.
    """
    orig = _symbols(original_variables)
    if isinstance(auxiliary_variables, Mapping):
        items = list(auxiliary_variables.items())
    elif isinstance(auxiliary_variables, Sequence) and not isinstance(auxiliary_variables, str):
        items = [tuple(a) if isinstance(a, tuple | list) else (None, a) for a in
                 auxiliary_variables]
    elif isinstance(auxiliary_variables, sympy.Basic | str):
        items = [(None, auxiliary_variables)]
    else:
        raise PassError("auxiliary_variables must be a dict {name: expression} or a list of "
                        f"expressions, got {type(auxiliary_variables).__name__}")
    if not items:
        raise PassError("auxiliary_variables is empty; give at least one expression")
    defs = []
    known = {s.name for s in orig}
    unnamed = 0
    for item in items:
        if len(item) != 2:
            raise PassError(f"an auxiliary variable must be an expression or a (name, expression) "
                            f"pair, got {item!r}")
        name, expr = item
        expr = _expression(expr, orig)
        if name is None and isinstance(expr, sympy.Symbol):
            name = expr.name
        elif name is None:
            unnamed += 1
            while f"aux_{unnamed}" in known or any(n == f"aux_{unnamed}" for n, _ in items):
                unnamed += 1
            name = f"aux_{unnamed}"
        check_names([name], "auxiliary variable names")
        extra = sorted(str(s) for s in expr.free_symbols if s not in set(orig))
        if extra:
            raise PassError(f"auxiliary variable {name!r} = {expr} uses {extra}, which are not "
                            f"original variables {[s.name for s in orig]}")
        if name in known:
            raise PassError(f"auxiliary variable name {name!r} is already an input name")
        known.add(name)
        defs.append((name, expr))
    return orig, defs


def _symbols(original_variables) -> list[sympy.Symbol]:
    if isinstance(original_variables, str | sympy.Basic) or not isinstance(original_variables,
                                                                          Sequence):
        raise PassError("original_variables must be a list of sympy Symbols (or names), one per "
                        f"input, got {original_variables!r}")
    out = []
    for v in original_variables:
        if isinstance(v, str):
            v = sympy.Symbol(v)
        if not isinstance(v, sympy.Symbol):
            raise PassError(f"original_variables must be sympy Symbols or names, got {v!r}")
        out.append(v)
    check_names([s.name for s in out], "original_variables")
    return out


def _expression(expr, orig) -> sympy.Expr:
    if isinstance(expr, str):
        from kanir.grammar.formula import parse_expr

        return parse_expr(expr, variables=orig)
    try:
        expr = sympy.sympify(expr)
    except (sympy.SympifyError, TypeError) as e:
        raise PassError(f"cannot read auxiliary expression {expr!r}: {e}") from None
    if not isinstance(expr, sympy.Expr):
        raise PassError(f"an auxiliary variable must be a scalar expression, got {expr!r}")
    return expr


def augment_input(graph: KanGraph, original_variables, auxiliary_variables,
                  ranges=None) -> KanGraph:
    """A copy of ``graph`` with one new input node per auxiliary variable in front of the
    original inputs (pykan's order); same function on the original inputs.

    The original inputs are renamed after ``original_variables``. ``ranges`` gives each new
    input's spline grid range as (low, high) (default: the graph's grid_range); the KAN facade
    sets it from the data.
    """
    require_layered(graph, "augment_input")
    orig = _symbols(original_variables)
    n_in = graph.n_nodes(0)
    if len(orig) != n_in:
        raise PassError(f"the model has {n_in} inputs {graph.input_names} but "
                        f"{len(orig)} original variables were given {[s.name for s in orig]}")
    orig, defs = aux_definitions(orig, auxiliary_variables)
    rngs = _ranges(graph, ranges, len(defs))
    h = strip_analysis(graph.copy())
    G, k, base = layer_spline_shape(graph, 0)
    n_sub = graph.layer_widths()[1].n_subnodes
    for a, (lo, hi) in enumerate(rngs):
        i = n_in + a
        h.nx.add_node(N(0, i), kind="input", layer=0, index=i)
        knots = uniform_knots(G, k, lo, hi)
        for j in range(n_sub):
            h.set_edge(0, i, j, Activation(spline=zero_spline(knots, k, base)))
    h.meta["input_names"] = [s.name for s in orig] + [name for name, _ in defs]
    old_defs = [list(p) for p in graph.meta.get("input_defs", []) or []]
    h.meta["input_defs"] = [[name, str(expr)] for name, expr in defs] + old_defs
    n_aux = len(defs)
    h = reorder_layer(h, 0, list(range(n_in, n_in + n_aux)) + list(range(n_in)))
    return verified(h)


def _ranges(graph: KanGraph, ranges, n: int) -> list[tuple[float, float]]:
    if ranges is None:
        lo, hi = graph.meta.get("grid_range", (-1.0, 1.0))
        return [(float(lo), float(hi))] * n
    r = np.asarray(ranges, dtype=np.float64)
    if r.shape == (2,):
        r = np.tile(r, (n, 1))
    if r.shape != (n, 2) or not np.all(np.isfinite(r)) or np.any(r[:, 0] >= r[:, 1]):
        raise PassError(f"ranges must be one (low, high) with low < high per auxiliary variable "
                        f"({n}), got {ranges!r}")
    return [(float(a), float(b)) for a, b in r]


def aux_values(x, original_variables, auxiliary_variables) -> np.ndarray:
    """The auxiliary variables evaluated on rows ``x`` of the original inputs, (batch, n_aux)."""
    orig, defs = aux_definitions(original_variables, auxiliary_variables)
    xa = x.detach().to("cpu", torch.float64).numpy() if isinstance(x, torch.Tensor) else \
        np.asarray(x, dtype=np.float64)
    if xa.ndim != 2 or xa.shape[1] != len(orig):
        raise DataError(f"inputs must have shape (batch, {len(orig)}) for variables "
                        f"{[s.name for s in orig]}, got {xa.shape}")
    cols = []
    for name, expr in defs:
        f = sympy.lambdify(orig, expr, modules="numpy")
        with np.errstate(all="ignore"):
            v = np.broadcast_to(np.asarray(f(*xa.T), dtype=np.complex128), (xa.shape[0],))
        bad = ~np.isfinite(v) | (np.abs(v.imag) > 1e-12 * (1 + np.abs(v.real)))
        if bad.any():
            r = int(np.nonzero(bad)[0][0])
            raise DataError(f"auxiliary variable {name!r} = {expr} is not a finite real number on "
                            f"{int(bad.sum())} row(s) (first: row {r}, inputs {xa[r].tolist()})")
        cols.append(v.real.astype(np.float64))
    return np.stack(cols, axis=1)


def augment_dataset(dataset: dict, original_variables, auxiliary_variables) -> dict:
    """A new dataset whose inputs have the auxiliary columns in front (pykan's order; labels
    shared)."""
    if not isinstance(dataset, dict) or "train_input" not in dataset:
        raise DataError("dataset must be a dict with at least 'train_input' (see "
                        "kanir.create_dataset)")
    out = dict(dataset)
    for key in ("train_input", "test_input"):
        if key not in dataset:
            continue
        x = dataset[key]
        extra = aux_values(x, original_variables, auxiliary_variables)
        if isinstance(x, torch.Tensor):
            out[key] = torch.cat([torch.as_tensor(extra, dtype=x.dtype, device=x.device), x], 1)
        else:
            out[key] = np.concatenate([extra, np.asarray(x, dtype=np.float64)], axis=1)
    return out
