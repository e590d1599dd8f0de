"""KAN facade methods for symbolic regression of edges: suggest/fix/auto_symbolic, unfix and the
formula read-back, with pykan's names, arguments and results.

Each state-changing method lifts the model, runs a pure pass from :mod:`kanir.passes.symbolic`
on the edges' samples (a forward pass over ``x``, by default the last training inputs), puts the
result back into *this* model. As in pykan, ``fix_symbolic`` returns the fit's R²,
``suggest_symbolic`` the best candidate ``(name, fun, r2, c)`` and ``symbolic_formula`` the pair
``(formulas, variables)``; ``auto_symbolic`` returns its
:class:`~kanir.symbolic.report.SymbolicReport` (also kept in ``model.symbolic_report``) and the
other methods return ``self``. kanir's richer results are ``symbolic_candidates`` (every ranked
row) and ``formula`` (the formulas with their snapping fits).

``formula`` reads the formula from the IR with :func:`kanir.backends.sympy.to_sympy`, so with
``snap=False, floating_digit=None`` it computes exactly what the model computes. With ``snap``
its constants are tightened and snapped against data (:mod:`kanir.symbolic.formula_fit`).
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import sympy
import torch

from kanir.errors import DataError, KanirError
from kanir.ir.library import LIBRARY
from kanir.symbolic.guard import SymbolicCollapseWarning, cut_outputs, fit_losses
from kanir.symbolic.report import EdgeFit, SymbolicReport, suggestion_table
from kanir.symbolic.simplify import (
    SimplifyMode,
    round_floats,
    simplify_keeping_exact,
    simplify_mode,
)
from kanir.symbolic.symfit import Y_TH, FitRow

#: at most this many rows of x are used to check what auto_symbolic did to the model's fit.
GUARD_SAMPLES = 4096

#: the keyword options of ``formula`` that ``symbolic_formula`` passes on.
FORMULA_OPTIONS = ("simplify", "floating_digit", "snap", "x", "y", "snap_tol", "snap_floor")


class FormulaList(list):
    """The formulas of a model, one sympy expression per output; ``variables`` are the input
    symbols, ``fits`` the snapping results per output (None where nothing was snapped)."""

    variables: list
    fits: list


class Suggestion(NamedTuple):
    """pykan's result of ``suggest_symbolic``: the best function's name, its library entry
    ``(torch form, sympy form, complexity, singularity-safe torch form)``, R² and complexity."""

    name: str
    fun: tuple
    r2: float
    c: float


class SymbolicMethods:
    """Mixin of kanir.KAN: symbolic regression and formula read-back."""

    symbolic_report: SymbolicReport | None = None

    # ------------------------------------------------------------------ helpers
    def _sym_x(self, x, what: str) -> torch.Tensor:
        x = self._data(x, what)  # PassMethods: x, else the cached training inputs, else an error
        if isinstance(x, torch.Tensor):
            return x.detach().to("cpu", torch.float64)
        return x

    def _targets(self, xs: torch.Tensor, x, y) -> tuple[torch.Tensor | None, bool]:
        """(labels (N, n_out) float64 on the CPU, True) from ``y``, or, when neither x nor y was
        given, from the labels known for the cached training inputs; else (None, False).

        Labels given without ``x`` belong to the cached inputs and are remembered for them, so a
        later call without data uses them too (until ``cache_x`` changes)."""
        if y is None and x is None:
            y = self._cached_labels(xs.shape[0])
        if y is None:
            return None, False
        ys = torch.as_tensor(y).detach().to("cpu", torch.float64)
        if ys.dim() == 1:
            ys = ys[:, None]
        if ys.shape != (xs.shape[0], self.net.n_out):
            raise DataError(f"y must have shape ({xs.shape[0]}, {self.net.n_out}), got "
                            f"{tuple(ys.shape)}")
        if x is None and self.cache_x is not None:
            self._labels_of_cache = (self.cache_x, ys)
        return ys, True

    def _cached_labels(self, n_rows: int):
        """The training labels of ``cache_x``: ``cache_y`` (fit keeps it), else labels
        given earlier for the same ``cache_x`` tensor; None when unknown."""
        if self._recent_data() is not self.cache_x:
            return None  # the data in use is a later forward's input, whose labels are unknown
        cy = getattr(self, "cache_y", None)
        if cy is None:
            ref, cy = getattr(self, "_labels_of_cache", (None, None))
            if ref is None or ref is not self.cache_x:
                cy = None
        return cy if cy is not None and cy.shape[0] == n_rows else None

    def _outputs(self, xs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net(xs.to(self.device, self.dtype)).detach().to("cpu", torch.float64)

    # ------------------------------------------------------------------ edges
    def symbolic_candidates(self, l: int, i: int, j: int, lib=None, topk: int | None = 5,
                            weight_simple: float = 0.8, a_range=(-10, 10), b_range=(-10, 10),
                            x=None, r2_loss_fun=None, c_loss_fun=None, prior=None
                            ) -> list[FitRow]:
        """kanir's full answer behind ``suggest_symbolic``: the ``topk`` best library functions
        for edge (l, i, j), best first, as rows (name, a, b, c, d, R², complexity, score; lower
        score is better; ``topk=None``: all). ``x``: data to sample the edge on (default: the
        last training inputs). ``prior``: what is known about the function, a
        :class:`kanir.symbolic.priors.Prior` or a list (e.g. ``Diverges(1.0)``); candidates that
        contradict it are ranked down."""
        from kanir.passes import symbolic as _sym

        return _sym.suggest_symbolic(self.graph, l, i, j, self._sym_x(x, "suggest_symbolic"),
                                     lib=lib, topk=topk, weight_simple=weight_simple,
                                     a_range=a_range, b_range=b_range, r2_loss_fun=r2_loss_fun,
                                     c_loss_fun=c_loss_fun, prior=prior)

    def suggest_symbolic(self, l: int, i: int, j: int, a_range=(-10, 10), b_range=(-10, 10),
                         lib=None, topk: int = 5, verbose=True, r2_loss_fun=None, c_loss_fun=None,
                         weight_simple: float = 0.8, *, x=None, prior=None) -> Suggestion:
        """pykan's ``suggest_symbolic``: rank the library functions for edge (l, i, j), print
        the ``topk`` best as a table (unless ``verbose`` is false) and return the best as
        ``(name, fun, r2, c)``; ``fun`` is its library entry ``(torch, sympy, complexity,
        safe torch)``. Every ranked row: :meth:`symbolic_candidates`; ``prior`` as there."""
        rows = self.symbolic_candidates(l, i, j, lib, topk, weight_simple, a_range, b_range, x,
                                        r2_loss_fun, c_loss_fun, prior)
        if verbose:
            print(suggestion_table(rows))
        best = rows[0]
        fn = LIBRARY[best.name]
        return Suggestion(best.name, (fn.torch, fn.sympy, fn.complexity, fn.safe_torch),
                          float(best.r2), best.complexity)

    def fix_symbolic(self, l: int, i: int, j: int, fun_name: str, fit_params_bool: bool = True,
                     a_range=(-10, 10), b_range=(-10, 10), verbose=True, random: bool = False,
                     log_history: bool = True, *, fit_params: bool | None = None, x=None,
                     params=None, snap: bool = True, seed: int = 0) -> float | None:
        """Set edge (l, i, j) to ``c*fun_name(a*x+b)+d``; its spline is kept inactive for
        ``unfix_symbolic``. Returns the fit's R² (a float), or None when the parameters were
        not fitted — as pykan.

        ``params`` (a, b, c, d) are used as given; otherwise, with ``fit_params_bool`` (kanir's
        older name: ``fit_params``), fitted to the edge on ``x`` (default: the last training
        inputs) and snapped to simple values where the fit allows (``snap``); else (1, 0, 1, 0),
        or with ``random`` uniform in [-1, 1) (seeded by ``seed``). ``model.last_fix`` holds the
        whole fit (parameters, exact values, R²)."""
        if fit_params is not None and bool(fit_params) != bool(fit_params_bool):
            if fit_params_bool is not True:
                raise KanirError("fix_symbolic: give fit_params_bool (pykan's name) or "
                                 "fit_params, not both with different values")
            fit_params_bool = fit_params
        if params is None and random and not fit_params_bool:
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise KanirError(f"fix_symbolic: seed must be an integer >= 0, got {seed!r}")
            gen = torch.Generator().manual_seed(seed)
            params = (torch.rand(4, generator=gen, dtype=torch.float64) * 2 - 1).tolist()
        need = params is None and fit_params_bool
        xs = self._sym_x(x, "fix_symbolic") if need else None
        rec = self._run_pass("fix-symbolic", "fix_symbolic", log_history,
                             lambda r: dict(edge=[l, i, j], fun=r.info.fun), x=xs, l=l, i=i, j=j,
                             fun=fun_name, params=params, fit_params=bool(fit_params_bool),
                             a_range=a_range, b_range=b_range, snap=snap)
        fit = rec.info
        self.last_fix: EdgeFit = fit
        if verbose:
            print(f"edge ({l},{i},{j}) {fit.describe()}")
        return float(fit.r2) if need else None

    def unfix_symbolic(self, l: int, i: int, j: int, log_history: bool = True):
        """Restore edge (l, i, j) to its spline; returns self."""
        self._run_pass("unfix-symbolic", "unfix_symbolic", log_history, dict(edge=[l, i, j]),
                       l=l, i=i, j=j)
        return self

    def unfix(self, log_history: bool = True):
        """Restore every fixed edge that kept its spline (pykan: ``unfix_symbolic_all``);
        edges built symbolic, with no spline, stay. Returns self."""
        self._run_pass("unfix", "unfix", log_history)
        return self

    def unfix_symbolic_all(self, log_history: bool = True):
        """pykan's name for :meth:`unfix`; returns self."""
        return self.unfix(log_history)

    def auto_symbolic(self, a_range=(-10, 10), b_range=(-10, 10), lib=None, verbose=1,
                      weight_simple: float = 0.8, r2_threshold: float = 0.0,
                      log_history: bool = True, *, x=None, y=None, snap: bool = True,
                      drop_constant: bool = True, constraints=None) -> SymbolicReport:
        """Fix every active spline edge to its best library function (one batched fit of all
        edges × all functions of ``lib``, default pykan's 29). Edges whose best R² is below
        ``r2_threshold`` stay splines; constant edges are removed with their value folded into
        the subnode bias (``drop_constant``). Changes this model; returns the report (also kept
        in ``model.symbolic_report``) and prints it unless ``verbose=0``.

        Afterwards the model is checked on ``x`` against the labels ``y`` (default: labels known
        for the cached training inputs — ``y`` given earlier without ``x`` — else the model's own
        outputs before the change): a :class:`~kanir.symbolic.guard.SymbolicCollapseWarning`
        (also in ``report.warnings``) says when an output lost every input (all its edges became
        constants) or the fit got much worse; ``model.rewind`` undoes the change.

        ``constraints`` (:mod:`kanir.science.constraints`; default: those the objective of the
        last ``fit`` declared, e.g. a Lagrangian's ∂²L/∂q̇² ≠ 0; ``()``: none): a candidate
        that breaks one is passed over for the next, with a SymbolicConstraintWarning."""
        xs = self._sym_x(x, "auto_symbolic")
        before_graph, before_label = self.graph, self.version
        labels, _ = self._targets(xs, x, y)
        rows = slice(None)
        if xs.shape[0] > GUARD_SAMPLES:
            rows = torch.linspace(0, xs.shape[0] - 1, GUARD_SAMPLES).round().long()
        before = self._outputs(xs[rows])
        rec = self._run_pass("auto-symbolic", "auto_symbolic", log_history,
                             lambda r: dict(fixed=len(r.info.fixed), kept=len(r.info.kept)),
                             x=xs, graph=before_graph, lib=lib, a_range=a_range,
                             b_range=b_range, r2_threshold=r2_threshold,
                             weight_simple=weight_simple, snap=snap, drop_constant=drop_constant,
                             constraints=(getattr(self, "objective_constraints", ())
                                          if constraints is None else constraints))
        g, report = rec.graph, rec.info
        self.symbolic_report = report
        after = self._outputs(xs[rows])
        report.warnings = self._collapse_notes(before_graph, g, before, after,
                                               None if labels is None else labels[rows],
                                               before_label)
        if verbose:
            print(report)
        if report.warnings:
            warnings.warn("\n".join(report.warnings), SymbolicCollapseWarning, stacklevel=2)
        return report

    def _collapse_notes(self, before_graph, after_graph, before, after, labels, label):
        names = self.output_names
        notes = [f"auto_symbolic: output {names[k]!r} no longer depends on any input: every "
                 "edge on its paths became a constant (with weight_simple=0.8 the constant '0' "
                 "beats any function whose R² is below about 0.996)"
                 for k in cut_outputs(before_graph, after_graph)]
        what = "labels" if labels is not None else "network's outputs before auto_symbolic"
        target = labels if labels is not None else before
        for k, u0, u1 in fit_losses(before, after, target):
            was = f" (the network left {100 * u0:.3g}%)" if labels is not None else ""
            notes.append(f"auto_symbolic: output {names[k]!r} now leaves {100 * u1:.3g}% of the "
                         f"variance of the {what} unexplained{was}")
        if notes:
            undo = f"model.rewind({label!r}), then " if label is not None else ""
            notes.append(f"to undo: {undo}train longer, raise r2_threshold, lower weight_simple "
                         "or leave '0' out of lib")
        return notes

    # ------------------------------------------------------------------ formula
    def symbolic_formula(self, var=None, normalizer=None, output_normalizer=None, **options):
        """pykan's pair ``(formulas, variables)``: one sympy expression per output and the
        input symbols (``x_1, x_2, ...`` or the model's input names; ``var``: names or
        Symbols). ``normalizer=[means, stds]`` expresses the formulas in un-normalised inputs
        (each input ``x_i`` enters as ``(x_i - mean_i)/std_i``); ``output_normalizer=[means,
        stds]`` turns each output ``y_k`` into ``y_k*std_k + mean_k``. kanir's ``options`` (see
        :meth:`formula`, whose defaults apply: simplified, snapped, rounded to 4 digits) are
        accepted too; the formulas list is :meth:`formula`'s result."""
        unknown = sorted(set(options) - set(FORMULA_OPTIONS))
        if unknown:
            raise KanirError(f"symbolic_formula got unknown option(s) {', '.join(unknown)}; it "
                             f"accepts var, normalizer, output_normalizer and "
                             f"{', '.join(FORMULA_OPTIONS)}")
        formulas = self.formula(var, normalizer=normalizer, output_normalizer=output_normalizer,
                                **options)
        return formulas, list(formulas.variables)

    def formula(self, var=None, simplify: SimplifyMode = "auto", floating_digit: int | None = 4,
                snap: bool = True, x=None, y=None, snap_tol: float = 0.1,
                snap_floor: float | None = None, normalizer=None,
                output_normalizer=None) -> FormulaList:
        """One sympy expression per output, over the input names (or ``var``: names/Symbols),
        as a :class:`FormulaList` (``.variables``, ``.fits``).

        Read from the IR (:func:`kanir.to_sympy`), so it is the model's function; every edge must
        be symbolic. With ``snap`` and data (``x``, default the last training inputs; ``y`` the
        targets, default the labels known for the cached inputs, else the model's own outputs) the
        constants are tightened and snapped to simple exact values where the error stays within
        ``(1 + snap_tol)``·(error of the tightened formula) + ``snap_floor``·std(y)
        (``snap_floor`` defaults to 1e-6 against labels, 1e-4 against the model's outputs).
        Without data, or with ``snap=False``, floats are rounded by :func:`kanir.symbolic.snap.snap_round`.
        Left-over floats are rounded to ``floating_digit`` significant digits (None: kept);
        exact constants stay exact through simplification and rounding. ``simplify``: "auto"
        runs sympy.simplify only on small formulas (kanir.symbolic.simplify.within_budget),
        True on any, False never. ``normalizer`` and
        ``output_normalizer``: as in :meth:`symbolic_formula`.
        """
        from kanir.backends.sympy import to_sympy
        from kanir.symbolic.formula_fit import snap_formula
        from kanir.symbolic.snap import snap_round

        graph = self.graph
        simplify = simplify_mode(simplify)
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
                exprs = [snap_round(e, floating_digit) for e in exprs]
        exprs = _normalized(exprs, symbols, normalizer, output_normalizer)
        exprs = [simplify_keeping_exact(e, simplify) for e in exprs]
        if floating_digit is not None:
            exprs = [round_floats(e, floating_digit) if (snap and fits[k] is not None)
                     else snap_round(e, floating_digit) for k, e in enumerate(exprs)]
        exprs = [e.xreplace(dict(zip(symbols, new_syms))) for e in exprs]
        result = FormulaList(exprs)
        result.variables = new_syms
        result.fits = fits
        return result

    def _formula_vars(self, var, symbols):
        if var is None:
            return symbols
        if isinstance(var, str) or not hasattr(var, "__len__"):
            raise KanirError(f"var must be a list with one name or Symbol per input, got {var!r}")
        if len(var) != len(symbols):
            raise KanirError(f"var needs one name per input ({len(symbols)}), got {len(var)}")
        return [v if isinstance(v, sympy.Expr) else sympy.Symbol(str(v)) for v in var]

    def _formula_data(self, x, y):
        """(x, y (N, n_out), whether y are labels) for snapping, or None without data."""
        if x is None and self._recent_data() is None:
            return None
        xs = self._sym_x(x, "symbolic_formula")
        xs = torch.as_tensor(xs, dtype=torch.float64)
        if xs.dim() != 2 or xs.shape[1] != self.net.n_in:
            raise DataError(f"x must have shape (batch, {self.net.n_in}), got {tuple(xs.shape)}")
        ys, labels = self._targets(xs, x, y)
        if ys is None:
            ys = self._outputs(xs)
        return xs, ys, labels


def _normalized(exprs, symbols, normalizer, output_normalizer):
    """pykan's normalizers: inputs x_i → (x_i - mean_i)/std_i, outputs y_k → y_k*std_k + mean_k."""
    if normalizer is not None:
        means, stds = _mean_std(normalizer, len(symbols), "normalizer", "input")
        sub = {s: (s - m) / sd for s, m, sd in zip(symbols, means, stds)}
        exprs = [e.xreplace(sub) for e in exprs]
    if output_normalizer is not None:
        means, stds = _mean_std(output_normalizer, len(exprs), "output_normalizer", "output")
        exprs = [e * sd + m for e, m, sd in zip(exprs, means, stds)]
    return exprs


def _mean_std(pair, n: int, name: str, what: str):
    """([means], [stds]) as sympy numbers (integers stay exact), n of each, stds non-zero."""
    try:
        means, stds = pair
        vals = [[_number(v) for v in _flat(part)] for part in (means, stds)]
    except (TypeError, ValueError):
        raise KanirError(f"{name} must be [means, stds] with one number per {what} ({n}), got "
                         f"{pair!r}") from None
    if any(len(v) != n for v in vals):
        raise KanirError(f"{name} must be [means, stds] with one number per {what} ({n}), got "
                         f"{len(vals[0])} means and {len(vals[1])} stds")
    if any(s == 0 for s in vals[1]):
        raise KanirError(f"{name}: every std must be non-zero, got {vals[1]}")
    return vals


def _flat(part) -> list:
    if isinstance(part, torch.Tensor):
        return part.detach().reshape(-1).tolist()
    if hasattr(part, "tolist"):
        v = part.tolist()
        return v if isinstance(v, list) else [v]
    return list(part)


def _number(v) -> sympy.Expr:
    if isinstance(v, bool):
        raise ValueError(v)
    if isinstance(v, int):
        return sympy.Integer(v)
    if isinstance(v, sympy.Expr) and v.is_number:
        return v
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(v)
    return sympy.Float(f)

__all__ = ["SymbolicMethods", "FormulaList", "Suggestion", "Y_TH"]
