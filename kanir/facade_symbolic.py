"""KAN facade methods for symbolic regression of edges: suggest/fix/auto_symbolic, unfix and the
formula read-back.

Each state-changing method lifts the model, runs a pure pass from :mod:`kanir.passes.symbolic`
on the edges' samples (a forward pass over ``x``, by default the last training inputs), puts the
result back into *this* model and returns ``self`` — except ``auto_symbolic``, which returns its
:class:`~kanir.symbolic_report.SymbolicReport` (data, like ``fit``'s history); the report of the
last call is also kept in ``model.symbolic_report``.

``symbolic_formula`` reads the formula from the IR with :func:`kanir.backends.sympy.to_sympy`, so
with ``snap=False, floating_digit=None`` it computes exactly what the model computes. With
``snap`` its constants are tightened and snapped against data (:mod:`kanir.formula_fit`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time

import sympy
import torch

from .errors import DataError, KanirError
from .symbolic_report import EdgeFit, SymbolicReport, suggestion_table
from .symfit import Y_TH, FitRow


class FormulaList(list):
    """The formulas of a model, one sympy expression per output; ``variables`` are the input
    symbols (pykan's ``formula, variables`` pair), ``fits`` the snapping results per output."""

    variables: list
    fits: list


class SymbolicMethods:
    """Mixin of kanir.KAN: symbolic regression and formula read-back."""

    symbolic_report: SymbolicReport | None = None

    # ------------------------------------------------------------------ helpers
    def _sym_x(self, x, what: str) -> torch.Tensor:
        x = self._data(x, what)  # PassMethods: x, else the cached training inputs, else an error
        if isinstance(x, torch.Tensor):
            return x.detach().to("cpu", torch.float64)
        return x

    def _sym_apply(self, graph, op: str, **info):
        self.set_graph(graph)
        self._after_change(op, **info)
        return self

    # ------------------------------------------------------------------ edges
    def suggest_symbolic(self, l: int, i: int, j: int, lib=None, topk: int = 5,
                         weight_simple: float = 0.8, verbose: int = 1, a_range=(-10, 10),
                         b_range=(-10, 10), x=None) -> list[FitRow]:
        """The ``topk`` best library functions for edge (l, i, j), best first; each row holds
        name, a, b, c, d, R², complexity and score (lower is better). Printed as a table unless
        ``verbose=0``. ``x``: data to sample the edge on (default: the last training inputs)."""
        from kanir.passes import symbolic as _sym

        rows = _sym.suggest_symbolic(self.graph, l, i, j, self._sym_x(x, "suggest_symbolic"),
                                     lib=lib, topk=topk, weight_simple=weight_simple,
                                     a_range=a_range, b_range=b_range)
        if verbose:
            print(suggestion_table(rows))
        return rows

    def fix_symbolic(self, l: int, i: int, j: int, fun_name: str, fit_params: bool = True,
                     a_range=(-10, 10), b_range=(-10, 10), verbose: int = 1, x=None,
                     params=None, snap: bool = True):
        """Set edge (l, i, j) to ``c*fun_name(a*x+b)+d``; its spline is kept inactive for
        ``unfix_symbolic``. ``params`` (a, b, c, d) are used as given; otherwise, with
        ``fit_params``, fitted to the edge on ``x`` (default: the last training inputs) and
        snapped to simple values where the fit allows; else (1, 0, 1, 0). Returns self; the
        fit (R² ...) is in ``model.last_fix``."""
        from kanir.passes import symbolic as _sym

        need = params is None and fit_params
        xs = self._sym_x(x, "fix_symbolic") if need else None
        g, fit = _sym.fix_symbolic(self.graph, l, i, j, fun_name, params, x=xs,
                                   fit_params=fit_params, a_range=a_range, b_range=b_range,
                                   snap=snap)
        self.last_fix: EdgeFit = fit
        if verbose:
            print(f"edge ({l},{i},{j}) {fit.describe()}")
        return self._sym_apply(g, "fix_symbolic", edge=[l, i, j], fun=fit.fun)

    def unfix_symbolic(self, l: int, i: int, j: int):
        """Restore edge (l, i, j) to its spline; returns self."""
        from kanir.passes import symbolic as _sym

        return self._sym_apply(_sym.unfix_symbolic(self.graph, l, i, j), "unfix_symbolic",
                               edge=[l, i, j])

    def unfix(self):
        """Restore every fixed edge that kept its spline; returns self."""
        from kanir.passes import symbolic as _sym

        return self._sym_apply(_sym.unfix(self.graph), "unfix")

    def auto_symbolic(self, lib=None, a_range=(-10, 10), b_range=(-10, 10),
                      r2_threshold: float = 0.0, weight_simple: float = 0.8, verbose: int = 1,
                      x=None, snap: bool = True, drop_constant: bool = True) -> SymbolicReport:
        """Fix every active spline edge to its best library function (one batched fit of all
        edges × all functions of ``lib``, default pykan's 29). Edges whose best R² is below
        ``r2_threshold`` stay splines; constant edges are removed with their value folded into
        the subnode bias (``drop_constant``). Changes this model; returns the report (also kept
        in ``model.symbolic_report``) and prints it unless ``verbose=0``."""
        from kanir.passes import symbolic as _sym

        g, report = _sym.auto_symbolic(self.graph, self._sym_x(x, "auto_symbolic"), lib,
                                       a_range=a_range, b_range=b_range,
                                       r2_threshold=r2_threshold, weight_simple=weight_simple,
                                       snap=snap, drop_constant=drop_constant)
        self.symbolic_report = report
        if verbose:
            print(report)
        self._sym_apply(g, "auto_symbolic", fixed=len(report.fixed), kept=len(report.kept))
        return report

    # ------------------------------------------------------------------ formula
    def symbolic_formula(self, var=None, simplify: bool = True, floating_digit: int | None = 4,
                         snap: bool = True, x=None, y=None, snap_tol: float = 0.1,
                         snap_floor: float | None = None) -> FormulaList:
        """One sympy expression per output, over the input names (or ``var``: names/Symbols).

        Read from the IR (:func:`kanir.to_sympy`), so it is the model's function; every edge must
        be symbolic. With ``snap`` and data (``x``, default the last training inputs; ``y`` the
        targets, default the training labels when known, else the model's own outputs) the
        constants are tightened and snapped to simple exact values where the error stays within
        ``(1 + snap_tol)``·(error of the tightened formula) + ``snap_floor``·std(y)
        (``snap_floor`` defaults to 1e-6 against labels, 1e-4 against the model's outputs).
        Without data, or with ``snap=False``, floats are rounded by :func:`kanir.snap.ex_round`.
        Left-over floats are rounded to ``floating_digit`` significant digits (None: kept).
        """
        from kanir.backends.sympy import to_sympy
        from kanir.formula_fit import snap_formula
        from kanir.snap import ex_round

        graph = self.graph
        exprs = to_sympy(graph)
        names = graph.input_names
        symbols = [sympy.Symbol(n) for n in names]
        new_syms = self._formula_vars(var, symbols)
        fits = [None] * len(exprs)
        if snap:
            data = self._formula_data(x, y)
            if data is not None:
                xs, ys, labels = data
                floor = (1e-6 if labels else 1e-4) if snap_floor is None else float(snap_floor)
                out = []
                for k, e in enumerate(exprs):
                    fit = snap_formula(e, symbols, xs, ys[:, k], tol=snap_tol, floor=floor)
                    fits[k] = fit
                    out.append(fit.expr)
                exprs = out
            elif floating_digit is not None:
                exprs = [ex_round(e, floating_digit) for e in exprs]
        if simplify:
            exprs = [_simplify(e) for e in exprs]
        if floating_digit is not None:
            exprs = [_round_floats(e, floating_digit) if (snap and fits[k] is not None)
                     else ex_round(e, floating_digit) for k, e in enumerate(exprs)]
        exprs = [e.xreplace(dict(zip(symbols, new_syms))) for e in exprs]
        result = FormulaList(exprs)
        result.variables = new_syms
        result.fits = fits
        return result

    def _formula_vars(self, var, symbols):
        if var is None:
            return symbols
        if len(var) != len(symbols):
            raise KanirError(f"var needs one name per input ({len(symbols)}), got {len(var)}")
        return [v if isinstance(v, sympy.Symbol) else sympy.Symbol(str(v)) for v in var]

    def _formula_data(self, x, y):
        """(x, y (N, n_out), whether y are labels) for snapping, or None without data."""
        if x is None and self.cache_x is None:
            return None
        xs = self._sym_x(x, "symbolic_formula")
        xs = torch.as_tensor(xs, dtype=torch.float64)
        if xs.dim() != 2 or xs.shape[1] != self.net.n_in:
            raise DataError(f"x must have shape (batch, {self.net.n_in}), got {tuple(xs.shape)}")
        labels = True
        if y is None and x is None:
            cy = getattr(self, "cache_y", None)
            if cy is not None and cy.shape[0] == xs.shape[0]:
                y = cy
        if y is None:
            labels = False
            with torch.no_grad():
                y = self.net(xs.to(self.device, self.dtype))
        ys = torch.as_tensor(y).detach().to("cpu", torch.float64)
        if ys.dim() == 1:
            ys = ys[:, None]
        if ys.shape != (xs.shape[0], self.net.n_out):
            raise DataError(f"y must have shape ({xs.shape[0]}, {self.net.n_out}), got "
                            f"{tuple(ys.shape)}")
        return xs, ys, labels


#: CPU seconds sympy.simplify may spend on one formula (main thread only; see _time_limit)
SIMPLIFY_SECONDS = 5.0


def _simplify(e: sympy.Expr, max_exact: int = 200, max_float: int = 60,
              seconds: float | None = None) -> sympy.Expr:
    """sympy.simplify, skipped on formulas too large for it to finish quickly (at most
    ``max_exact`` operations for exact formulas, ``max_float`` when floats are left) and given
    up after ``seconds`` (default SIMPLIFY_SECONDS): trigsimp on a 40-operation formula with
    floats took minutes here. The formula is returned unsimplified then, never lost."""
    if sympy.count_ops(e) > (max_float if e.atoms(sympy.Float) else max_exact):
        return e
    try:
        with _time_limit(SIMPLIFY_SECONDS if seconds is None else seconds):
            return sympy.simplify(e)
    except (TypeError, ValueError, RecursionError, NotImplementedError, _OutOfTime):
        return e


class _OutOfTime(Exception):
    """Raised inside a computation that ran past its time limit."""


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Interrupt the block after ``seconds`` of wall time by raising _OutOfTime in it. Uses
    SIGALRM, so it only acts in the main thread on POSIX; elsewhere the block runs unlimited
    (the operation-count caps of _simplify still apply)."""
    usable = (seconds > 0 and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def _raise(signum, frame):
        raise _OutOfTime()

    old = signal.signal(signal.SIGALRM, _raise)
    start = time.monotonic()
    prev, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if prev > 0:  # someone else's timer was running: give it back what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(prev - (time.monotonic() - start), 1e-3))


def _round_floats(e: sympy.Expr, digits: int) -> sympy.Expr:
    """Round the floats left after data-checked snapping (no further snapping)."""
    return e.xreplace({f: sympy.Float(f"{float(f):.{digits}g}", digits)
                       for f in e.atoms(sympy.Float)})


__all__ = ["SymbolicMethods", "FormulaList", "Y_TH"]
