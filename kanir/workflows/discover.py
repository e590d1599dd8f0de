"""``kanir.discover``: from data to an exact formula, with no structure chosen by hand.

The pipeline (each step timed in :attr:`Discovery.steps`, each made of public kanir calls a user
could run by hand): validate the data; fit a surrogate KAN; read the function tree of the
surrogate (``kanir.tree``) at a few thresholds; sparse terms (``kanir.symbolic.terms``: y or a
transform of it as a few monomials, AI Feynman's polynomial step made sparse); for every
distinct tree, Trick A
(``KAN.from_tree``), fit, prune; symbolic regression of the edges (``auto_symbolic``) with
branching where an edge's two best library functions score close (alternatives tried as model
versions through ``model.rewind``); refit; data-checked snapping of the constants (``formula``)
kept only when the held-out error does not get worse. Plain KAN widths are the fallback when the
tree is trivial. Every formula lands on a Pareto front (complexity vs held-out error); the best
is the simplest one as accurate as the data allow. The surrogates and the structures are
independent tasks (kanir.workflows.discover_run) run inline, in joblib processes or on Dask,
merged in task order; the budget is a deadline that also stops running fits
(``fit(stop=...)``). See docs/discover.md.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
import sympy
import torch

from kanir.errors import ArgumentError, DataError

__all__ = ["Candidate", "Discovery", "Step", "discover"]

#: thresholds at which the surrogate's tree is read (sym_th = sep_th); distinct trees all run
TREE_THRESHOLDS = (0.02, 0.05, 0.1)
#: two library candidates of one edge whose scores differ by less than this are both tried
BRANCH_MARGIN = 0.5
MAX_BRANCHES = 4
#: no branching on a structure whose spline fit leaves more than this (RMSE / std) held out
BRANCH_FIT = 1e-2


@dataclass
class Step:
    """One step of the pipeline: its name, seconds taken, what it found and the task (one
    parallel unit, see kanir.workflows.discover_run) that ran it."""

    name: str
    seconds: float
    detail: str = ""
    task: str = ""


@dataclass
class Candidate:
    """One formula on the way: its complexity (sympy tree size), relative held-out RMSE
    (RMSE / std(y)), the formula, the model it was read from and how it was made."""

    complexity: int
    error: float
    formula: sympy.Expr
    model: object = field(repr=False, default=None)
    origin: str = ""
    task: str = ""


@dataclass
class Discovery:
    """What :func:`discover` found: the best formula, the Pareto front, the model, the tree."""

    formula: sympy.Expr | None
    front: list[tuple[int, float, sympy.Expr]]
    model: object
    tree: object
    steps: list[Step]
    candidates: list[Candidate] = field(default_factory=list, repr=False)
    names: tuple[str, ...] = ()
    error: float = math.nan
    origin: str = ""
    #: a formula was chosen (False: the budget ran out before any candidate formula)
    found: bool = False
    #: the budget ran out before the search ended (a fit was cut short or a task skipped)
    budget_spent: bool = False
    #: wall seconds of the whole search
    seconds: float = 0.0
    #: the best formula's KAN after its first fit and after pruning (None: not pruned)
    fitted: object = field(default=None, repr=False)
    pruned: object = field(default=None, repr=False)
    #: the steps that led to the best formula (its surrogate, tree, fit, symbolic step, choice)
    decided_by: list[Step] = field(default_factory=list, repr=False)

    def report(self, directory) -> Path:
        """Write ``report.md`` with its diagrams (tree, KAN after fit / pruning, fitted edges,
        final KAN) into ``directory``; returns the report's path."""
        from kanir.workflows.discover_report import write_report

        return write_report(self, Path(directory))


# ----------------------------------------------------------------------------- step 1: data


def _as_array(v, what: str) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"discover: {what} must be numeric ({exc})") from None
    return a


def prepare(X, y, names=None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Check and normalise the data: X (n, d) float64, y (n,), one name per column.

    ``X`` may be a numpy array, a torch tensor or a pandas DataFrame (names from its columns;
    then ``y`` may name a column of it). Raises DataError naming the bad row or column."""
    if hasattr(X, "columns") and hasattr(X, "to_numpy"):
        cols = [str(c) for c in X.columns]
        if isinstance(y, str):
            if y not in cols:
                raise DataError(f"discover: target column {y!r} is not in the data; columns: "
                                f"{', '.join(cols)}")
            y, X = X[y], X.drop(columns=[y])
            cols.remove(str(y.name))
        for c in X.columns:
            if not np.issubdtype(X[c].dtype, np.number):
                raise DataError(f"discover: column {str(c)!r} is not numeric "
                                f"(dtype {X[c].dtype})")
        names = cols if names is None else names
        X = X.to_numpy(dtype=np.float64)
    elif isinstance(y, str):
        raise DataError(f"discover: y={y!r} names a column, which needs X to be a DataFrame")
    x = _as_array(X, "X")
    t = _as_array(y, "y")
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise DataError(f"discover: X must be 2-D (rows, variables), got shape {x.shape}")
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 1:
        raise DataError(f"discover: y must be one column, got shape {t.shape}")
    if t.shape[0] != x.shape[0]:
        raise DataError(f"discover: X has {x.shape[0]} rows but y has {t.shape[0]}")
    if x.shape[0] < 10:
        raise DataError(f"discover: needs at least 10 rows, got {x.shape[0]}")
    names = tuple(f"x{i + 1}" for i in range(x.shape[1])) if names is None else tuple(
        str(n) for n in names)
    if len(names) != x.shape[1]:
        raise DataError(f"discover: {len(names)} names for {x.shape[1]} columns")
    if len(set(names)) != len(names) or not all(n.isidentifier() for n in names):
        raise DataError(f"discover: names must be distinct identifiers, got {list(names)}")
    bad = ~np.isfinite(x)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(f"discover: row {r} has a non-finite value ({x[r, c]}) in column "
                        f"{names[c]!r}; drop or fill such rows first")
    if not np.isfinite(t).all():
        r = int(np.argwhere(~np.isfinite(t))[0, 0])
        raise DataError(f"discover: row {r} has a non-finite target ({t[r]})")
    for c in range(x.shape[1]):
        if np.ptp(x[:, c]) == 0:
            raise DataError(f"discover: column {names[c]!r} is constant ({x[0, c]}); "
                            "it cannot be a variable of the law, drop it")
    if np.ptp(t) == 0:
        raise DataError(f"discover: the target is constant ({t[0]})")
    return x, t, names


# ----------------------------------------------------------------------------- helpers


class _Clock:
    """The budget (a wall-clock deadline, comparable across processes) and the step log, with
    progress lines on stderr; ``cut`` turns True when the deadline stopped a fit."""

    def __init__(self, deadline: float, start: float, progress: bool, task: str = ""):
        self.deadline, self.start, self.progress, self.task = deadline, start, progress, task
        self.steps: list[Step] = []
        self.cut = False

    def left(self) -> float:
        return self.deadline - time.time()

    def expired(self) -> bool:
        """The ``stop`` of every fit: True once the budget is spent."""
        if time.time() >= self.deadline:
            self.cut = True
        return self.cut

    def record(self, name: str, t0: float, detail: str = "") -> None:
        self.add(Step(name, time.perf_counter() - t0, detail, self.task))

    def add(self, step: Step) -> None:
        self.steps.append(step)
        if self.progress:
            print(f"[discover {time.time() - self.start:6.1f}s] {step.name}: {step.detail}",
                  file=sys.stderr, flush=True)


def _complexity(expr) -> int:
    return sum(1 for _ in sympy.preorder_traversal(expr))


def _rel_error(expr, symbols, x: np.ndarray, y: np.ndarray) -> float:
    """RMSE of ``expr`` on (x, y) divided by std(y); inf when it cannot be evaluated."""
    try:
        f = sympy.lambdify(symbols, expr, "numpy")
        with np.errstate(all="ignore"):
            pred = np.broadcast_to(np.asarray(f(*x.T), dtype=np.complex128), y.shape)
        if np.abs(pred.imag).max() > 1e-9 * (1 + np.abs(pred.real).max()):
            return math.inf
        err = float(np.sqrt(np.mean((pred.real - y) ** 2)) / np.std(y))
    except Exception:  # noqa: BLE001 - any formula that cannot be evaluated is simply unusable
        return math.inf
    return err if math.isfinite(err) else math.inf


def _fit(model, ds, steps: int, seed: int, clock: _Clock, **kw):
    """``model.fit`` stopped by the budget (``stop=clock.expired``)."""
    return model.fit(ds, steps=steps, log=0, progress=False, seed=seed, stop=clock.expired,
                     **kw)


# ----------------------------------------------------------------------------- steps 2-3


def _surrogate(ds, names, seed: int, grid_range, clock: _Clock):
    """A plain KAN [n, 2n+1, 1] (float64): the function the tree converter reads."""
    from kanir.model.kan import KAN

    n = len(names)
    model = KAN([n, 2 * n + 1, 1], grid=5, k=3, seed=seed, dtype=torch.float64, device="cpu",
                input_names=list(names), grid_range=grid_range)
    hist = _fit(model, ds, 100, seed, clock)
    return model, float(hist["test_loss"][-1])


def _trees(surrogate, x, names, seed: int) -> list:
    """The distinct trees of the surrogate at the thresholds of TREE_THRESHOLDS."""
    from kanir.science.modularity import FunctionError
    from kanir.science.tree import tree

    out, seen = [], set()
    for th in TREE_THRESHOLDS:
        try:
            t = tree(surrogate, x, list(names), sym_th=th, sep_th=th, seed=seed)
        except FunctionError:
            continue
        key = (t.compact(), t.unused)
        if key not in seen:
            seen.add(key)
            out.append(t)
    for t in out:
        _pair_coupling(t, surrogate, x)
    return out


def _pair_coupling(t, f, x) -> None:
    """For a flat root ("add" or "mul" over 3-4 single variables): how strongly ``f`` couples
    each pair of them (median cross share of the Hessian of f, of log|f| for "mul"), stored in
    ``t.meta["pair_coupling"]`` ({"a | b": score}); :func:`_pair_trees` groups the most coupled
    pair first (m0/sqrt(1 - v**2/c**2): v and c)."""
    from kanir.science.modularity import probe

    r = t.root
    if r.kind not in ("add", "mul") or not 3 <= len(r.children) <= 4 \
            or not all(c.is_leaf for c in r.children):
        return
    idx = [c.indices[0] for c in r.children]
    try:
        p = probe(f, x, list(t.names), order=2)
        blocks = [[i] for i in idx]
        pairs = (p.mul_profile(blocks) if r.kind == "mul" else p.add_profile(blocks))[1]
        scores = {k: float(np.nanmedian(v.detach().cpu().numpy())) for k, v in pairs.items()}
    except Exception:  # noqa: BLE001 - no scores: the pairs keep their plain order
        return
    t.meta["pair_coupling"] = {k: (v if math.isfinite(v) else 0.0) for k, v in scores.items()}


def _trivial(t) -> bool:
    """A tree that says nothing: one 'sym' node over more than 3 variables (smaller ones are
    still tried as general separability or a product, see :func:`_variants`)."""
    r = t.root
    return r.kind == "sym" and len(r.children) > 3 and all(c.is_leaf for c in r.children)


# ----------------------------------------------------------------------------- steps 4-6


class _Searcher:
    """Turns one structured KAN into formulas (symbolic regression, branching, snapping)."""

    def __init__(self, ds, x_test, y_test, names, seed: int, clock: _Clock, tol: float,
                 lib=None):
        self.ds, self.x_test, self.y_test, self.tol = ds, x_test, y_test, tol
        self.names, self.seed, self.clock, self.lib = names, seed, clock, lib
        self.symbols = [sympy.Symbol(n) for n in names]
        self.candidates: list[Candidate] = []
        self.fitted = self.pruned = None  # copies of the model after its fit / its pruning

    def add(self, expr, model, origin: str) -> Candidate | None:
        err = _rel_error(expr, self.symbols, self.x_test, self.y_test)
        if not math.isfinite(err):
            return None
        c = Candidate(_complexity(expr), err, expr, model, origin, self.clock.task)
        self.candidates.append(c)
        return c

    def run(self, model, origin: str, prune: bool, log_sign: float | None = None) -> None:
        """Fit ``model`` (sparsity when pruning), prune, then regress its edges symbolically.

        ``log_sign`` (+1 or -1): fit log(sign*y) instead of y (a product becomes a sum whose
        terms are single library functions, e.g. exp(sin(pi*x) + y**2)); the formula found is
        then sign*exp(...)."""
        t0 = time.perf_counter()
        self.log_sign = log_sign
        self.ds_fit = self.ds if log_sign is None else _log_dataset(self.ds, log_sign)
        hist = _fit(model, self.ds_fit, 100, self.seed, self.clock, lamb=1e-3 if prune else 0.0)
        self.fitted = model.copy()
        if prune:
            model = model.prune()
            hist = _fit(model, self.ds_fit, 100, self.seed, self.clock)
            self.pruned = model.copy()
        self.clock.record(f"fit {origin}", t0, f"held-out RMSE {hist['test_loss'][-1]:.3g}, "
                          f"width {model.width_spec}")
        spline_version = model.version
        self._symbolic(model, origin, None)
        rel = hist["test_loss"][-1] / float(self.ds_fit["test_label"].std())
        if self.clock.left() <= 0 or _good_enough(self.candidates, self.tol) \
                or rel > BRANCH_FIT:
            return  # branching only pays on a structure whose splines fit the data
        model.rewind(spline_version)  # Trick C: alternatives start from the same splines
        for alt in self._close_alternatives(model)[:MAX_BRANCHES]:
            if self.clock.left() <= 0 or _good_enough(self.candidates, self.tol):
                break
            model.rewind(spline_version)
            self._symbolic(model, f"{origin}, edge {alt[0]} = {alt[1]}", alt)

    def _close_alternatives(self, model) -> list[tuple[tuple[int, int, int], str]]:
        """(edge, function) pairs whose score is within BRANCH_MARGIN of the edge's best."""
        out = []
        x = self.ds["train_input"]
        for l, layer in enumerate(model.net.layers):
            mask = layer.mask_sp.detach().cpu()
            for i, j in (mask != 0).nonzero().tolist() if mask.dim() == 2 else []:
                rows = model.symbolic_candidates(l, i, j, lib=self.lib, topk=3, x=x)
                for r in rows[1:]:
                    if r.name != rows[0].name and r.score - rows[0].score < BRANCH_MARGIN:
                        out.append(((l, i, j), r.name, r.score - rows[0].score))
        out.sort(key=lambda a: a[2])
        return [(e, n) for e, n, _ in out]

    def _symbolic(self, model, origin: str, alt) -> None:
        import warnings

        from kanir.symbolic.simplify import time_limit

        t0 = time.perf_counter()
        limit = min(SIMPLIFY_SECONDS, max(1.0, self.clock.left()))
        with warnings.catch_warnings(), time_limit(limit):
            warnings.simplefilter("ignore")
            model.auto_symbolic(lib=self.lib, verbose=0, x=self.ds["train_input"])
            if alt is not None:
                (l, i, j), name = alt
                model.fix_symbolic(l, i, j, name, verbose=False, x=self.ds["train_input"])
            if any(int(((layer.mask_sp != 0) & (layer.mask_sym == 0)).sum())
                   for layer in model.net.layers):
                self.clock.record("symbolic", t0, f"{origin}: some edges stay splines")
                return
            _fit(model, self.ds_fit, 50, self.seed, self.clock, update_grid=False)
            plain = model.formula(simplify=False, snap=False, floating_digit=None)[0]
            mode = _simplify_mode(plain)
            raw = model.formula(simplify=mode, snap=False, floating_digit=None)[0]
            snapped = model.formula(simplify=mode, x=self.ds_fit["train_input"],
                                    y=self.ds_fit["train_label"])[0]
            if self.log_sign is not None:
                raw, snapped = (_from_log(e, self.log_sign, mode) for e in (raw, snapped))
        self._keep(raw, snapped, model, origin, t0)

    def _keep(self, raw, snapped, model, origin: str, t0: float) -> None:
        """Add the raw formula, and its snapped forms when they are not worse held out.

        Snapped forms: kanir's data-checked snapping of the model's formula, and the raw
        formula brought to a normal form (:func:`_normal_form`) then snapped on the data."""
        from kanir.symbolic.formula_fit import snap_formula

        model = model.copy()  # later branches rewind the working model
        a = self.add(raw, model, origin + " (unsnapped)")
        if a is None:
            self.clock.record("symbolic", t0, f"{origin}: formula cannot be evaluated")
            return
        x, y = self.ds["train_input"], self.ds["train_label"][:, 0]
        forms = [snapped]
        for e in (raw, snapped):
            try:
                forms.append(snap_formula(_normal_form(e), self.symbols, x, y).expr)
            except Exception:  # noqa: BLE001 - a form sympy cannot process is just not tried
                continue
        best = a
        for e in dict.fromkeys(forms):
            c = self.add(e, model, origin)
            if c is None:
                continue
            if c.error > a.error * 1.1 + 1e-9:
                self.candidates.remove(c)  # snapping made the held-out error worse
            elif (c.complexity, c.error) < (best.complexity, best.error):
                best = c
        self.clock.record("symbolic", t0, f"{origin}: {best.formula} (held-out {best.error:.2g})")


def _pull_constant(a):
    """c1*t1 + c2*t2 + ... as c1*(t1 + (c2/c1)*t2 + ...), c1 the largest float coefficient,
    so that constants only fixed up to a common factor become simple (c2/c1 -> 1)."""
    if not isinstance(a, sympy.Add) or not a.atoms(sympy.Float):
        return a
    coefs = [t.as_coeff_Mul()[0] for t in a.args if not t.is_number]
    if not coefs:
        return a
    c = max(coefs, key=lambda v: abs(float(v)))
    if c == 0:
        return a
    return sympy.Mul(c, sympy.Add(*[t / c for t in a.args]), evaluate=False)


def _normal_form(expr):
    """Common factors pulled out of sums and powers (before snapping constants)."""
    e = sympy.bottom_up(expr, _pull_constant)
    e = sympy.expand_power_base(e, force=True)
    return sympy.powdenest(e, force=True)


#: seconds one sympy.simplify of a read-back formula may take (kanir.symbolic.simplify.time_limit);
#: also never past the budget's deadline (plus one second)
SIMPLIFY_SECONDS = 10.0
#: formulas read from a model with more operations than this are not simplified (kanir's own
#: budget lets exact formulas of up to 200 operations through, which can take minutes)
SIMPLIFY_OPS = 60
#: sympy functions whose products trigsimp (inside sympy.simplify) expands combinatorially
_TRIG = (sympy.sin, sympy.cos, sympy.tan, sympy.cot, sympy.sinh, sympy.cosh, sympy.tanh)


def _simplify_mode(expr):
    """``simplify`` for reading a formula: "auto" (kanir's operation budget), but False when
    ``expr`` (unsimplified, unsnapped) has more than SIMPLIFY_OPS operations, or holds two or
    more trigonometric or hyperbolic terms, or one whose argument sums several variable terms
    or involves several variables: sympy's trigsimp on such formulas ran for minutes past the
    budget (I.10.7: cosh(a*v + b*sqrt(m_0 - d) + e/(c - f)**2); noisy I.12.4:
    cosh(a*(b - c*q1)*(d*epsilon + e)*(f*r + g) - h), 130 s in trigsimp's factor), and
    sympy.simplify has no time limit."""
    if sympy.count_ops(expr) > SIMPLIFY_OPS:
        return False
    trig = expr.atoms(*_TRIG)
    if len(trig) >= 2 or any(
            sum(1 for t in sympy.Add.make_args(a.args[0]) if not t.is_number) >= 2
            or len(a.args[0].free_symbols) >= 2 for a in trig):
        return False
    return "auto"


def _from_log(expr, sign: float, mode="auto"):
    """sign*exp(expr), with exp(log(a) + log(b)) folded back into a*b (logs of products are
    combined formally); simplified as ``mode`` says (see :func:`_simplify_mode`) and only
    within kanir's operation budget (``kanir.symbolic.simplify.within_budget``), as
    ``model.formula`` does: sympy.simplify has no time limit."""
    from kanir.symbolic.simplify import simplify_within_limit, within_budget

    e = sympy.powsimp(sympy.exp(expr), force=True)
    e = sympy.expand_log(e, force=True)
    if mode == "auto" and within_budget(e):
        e = simplify_within_limit(e) or e
    return e if sign > 0 else -e


def _log_dataset(ds: dict, sign: float) -> dict:
    """The dataset with labels log(sign*y)."""
    return {**ds, "train_label": torch.log(sign * ds["train_label"]),
            "test_label": torch.log(sign * ds["test_label"])}


def _variants(t) -> list:
    """``t`` and relabelled copies that Trick A can turn into exact library formulas:

    - inner "gsep" nodes as "mul": F(g(a) + h(b)) is also F'(G(a)*H(b)), and the product form
      often needs only library functions (1/sqrt(1 - v**2/c**2) is a function of v**2 * c**-2);
    - "sym" nodes (a fitted surrogate often misses general separability) as "gsep", and as a
      product under an outer function; a "sym" node over 2-3 leaves also as the sum of one term
      per variable and their product (:func:`_sum_and_product`: log of a Gaussian,
      -theta**2/(2*sigma**2) - log(sigma)); these sparse guesses run before the dense sym block.
    """
    out = [t]
    inner_gsep = [n for n in t.graph.nodes if n != t.root_id
                  and t.graph.nodes[n]["kind"] == "gsep"]
    sym = [n for n in t.graph.nodes if t.graph.nodes[n]["kind"] == "sym"]
    if inner_gsep:
        out.append(_relabel(t, inner_gsep, "mul"))
    if sym:
        small = [n for n in sym if 2 <= len(n) <= 3
                 and all(t.graph.nodes[c]["kind"] == "leaf" for c in t.graph.successors(n))]
        out = [_relabel(t, sym, "gsep"), _relabel(t, sym, "mul", outer=True),
               *[_sum_and_product(t, n) for n in small], *out]
    return out


def _sum_and_product(t, nid):
    """A copy of tree ``t`` whose "sym" node ``nid`` (over leaves) is an "add" node over its
    leaves and their product: f = g(a) + h(b) + p(a)*q(b). The product node's id repeats its
    first index (node ids are index tuples, and this one must differ from the add node's)."""
    from kanir.science.tree import FunctionTree

    g = t.graph.copy()
    a = g.nodes[nid]
    prod = (*nid, nid[0])
    g.nodes[nid]["kind"] = "add"
    g.add_node(prod, indices=a["indices"], variables=a["variables"], kind="mul", scores={},
               complete=False)
    for c in list(g.successors(nid)):
        g.add_edge(prod, c)
    g.add_edge(nid, prod)
    return FunctionTree(g, t.root_id, t.names, t.unused, t.meta)


def _rank(t) -> int:
    """0 for a tree without dense "sym" blocks, 2 with them (they run last)."""
    return 2 if any(n.kind == "sym" for n in t.nodes()) else 0


def _pair_trees(t) -> list:
    """For a flat root ("add" or "mul" over 3-4 single variables): the trees with one pair of
    them grouped ("gsep"), in case the surrogate was too coarse to see the pair's module
    (m0/sqrt(1 - v**2/c**2) reads as mul(m0, v, c)); the pair the surrogate couples most
    (``meta["pair_coupling"]``, see :func:`_pair_coupling`) comes first. Returns (tree,
    strongly coupled) pairs (see :func:`_strongly_coupled`)."""
    from kanir.science.tree import FunctionTree

    r = t.root
    if r.kind not in ("add", "mul") or not 3 <= len(r.children) <= 4 \
            or not all(c.is_leaf for c in r.children):
        return []
    out = []
    coupling = t.meta.get("pair_coupling", {})
    pairs = sorted(combinations([c.indices[0] for c in r.children], 2),
                   key=lambda ab: -coupling.get(f"{t.names[ab[0]]} | {t.names[ab[1]]}", 0.0))
    strong = _strongly_coupled(coupling)
    for a, b in pairs:
        g = t.graph.copy()
        pair = (a, b)
        g.add_node(pair, indices=pair, variables=(t.names[a], t.names[b]), kind="gsep",
                   scores={}, complete=False)
        g.remove_edge(t.root_id, (a,))
        g.remove_edge(t.root_id, (b,))
        g.add_edge(t.root_id, pair)
        g.add_edge(pair, (a,))
        g.add_edge(pair, (b,))
        out.append((FunctionTree(g, t.root_id, t.names, t.unused, t.meta),
                    f"{t.names[a]} | {t.names[b]}" in strong))
    return out


#: a pair of a flat root is "strongly coupled" when its coupling exceeds this and
#: COUPLED_RATIO x the median coupling of the other pairs (fitted surrogates of exact products
#: leave ~0.005 on every pair; m0/sqrt(1 - v**2/c**2) leaves 0.06 on (v, c))
COUPLED_MIN = 0.02
COUPLED_RATIO = 5.0


def _strongly_coupled(coupling: dict) -> set:
    """The pairs (``"a | b"``) of a flat root the surrogate clearly couples: the flat tree is
    wrong about them, so their pair trees run before the flat tree's own guesses."""
    out = set()
    for k, v in coupling.items():
        rest = [w for j, w in coupling.items() if j != k]
        if v > COUPLED_MIN and v > COUPLED_RATIO * (float(np.median(rest)) if rest else 0.0):
            out.add(k)
    return out


def _relabel(t, nodes, kind: str, outer: bool = False):
    """A copy of tree ``t`` with ``nodes`` labelled ``kind``; ``outer`` puts a univariate
    function above the root (a one-child "add" node) when the root was relabelled."""
    from kanir.science.tree import FunctionTree

    g = t.graph.copy()
    for n in nodes:
        g.nodes[n]["kind"] = kind
    root = t.root_id
    if outer and root in nodes:
        a = g.nodes[root]
        wrap = ("outer", *root)
        g.add_node(wrap, indices=a["indices"], variables=a["variables"], kind="add",
                   scores={}, complete=False)
        g.add_edge(wrap, root)
        root = wrap
    return FunctionTree(g, root, t.names, t.unused, t.meta)


# ----------------------------------------------------------------------------- sparse terms

#: term fits (best first, kanir.symbolic.terms) turned into candidates, and the largest relative
#: error in the transformed target for which one is still worth snapping
TERM_FITS = 8
TERM_REL = 0.05


def _term_candidates(ds, names, clock: _Clock, x_test, y_test, tol: float) -> list[Candidate]:
    """The target, or 1/y, y**2, 1/y**2, sqrt(y), log(y), as a short sum of monomials
    (``kanir.symbolic.terms.fit_terms``, AI Feynman's polynomial step made sparse), each
    formula snapped on the training data (``snap_formula``) and tidied with the positive
    variables declared positive (1/sqrt(1/m0**2 - v**2/(c**2*m0**2)) is m0/sqrt(1 - v**2/c**2)
    only for m0 > 0). ``tol``: the data's accuracy (see :func:`discover`)."""
    from kanir.symbolic.formula_fit import snap_formula
    from kanir.symbolic.simplify import time_limit
    from kanir.symbolic.terms import fit_terms, formula

    t0 = time.perf_counter()
    x = ds["train_input"].numpy()
    y = ds["train_label"][:, 0].numpy()
    symbols = [sympy.Symbol(n) for n in names]
    fits = [f for f in fit_terms(x, y) if f.rel <= TERM_REL][:TERM_FITS]
    # snapping refits the other constants unless the fit is worse than 3x the data's accuracy:
    # the given noise, else the best fit's own error (label noise nobody declared)
    approx = max(1e-3, 3 * tol, 3 * min((f.rel_y for f in fits), default=0.0))
    out: list[Candidate] = []
    with time_limit(min(SIMPLIFY_SECONDS, max(1.0, clock.left()))):
        for fit in fits:
            if clock.left() <= 0:
                break
            raw = formula(fit, symbols)
            forms = [raw]
            try:
                forms.append(snap_formula(raw, symbols, x, y, approx=approx).expr)
            except Exception:  # noqa: BLE001 - a formula the snapper cannot process stays raw
                pass
            for e in dict.fromkeys(_tidy(f, symbols, x) for f in forms):
                err = _rel_error(e, symbols, x_test, y_test)
                if math.isfinite(err):
                    out.append(Candidate(_complexity(e), err, e, None,
                                         f"terms {fit.transform}, {len(fit.terms)} terms", "terms"))
    best = min(out, key=lambda c: (c.error, c.complexity), default=None)
    clock.record("terms", t0, f"{len(fits)} sparse fits; best: "
                 f"{best.formula if best else 'none'}"
                 + (f" (held-out {best.error:.2g})" if best else ""))
    return out


def _tidy(expr, symbols, x: np.ndarray):
    """``expr`` simplified with the variables whose data are all positive declared positive
    (then named as before), within the current simplify time limit."""
    from kanir.symbolic.simplify import simplify_keeping_exact

    pos = {s: sympy.Symbol(s.name, positive=True) for i, s in enumerate(symbols)
           if np.all(x[:, i] > 0)}
    e = simplify_keeping_exact(expr.xreplace(pos))
    return e.xreplace({v: k for k, v in pos.items()})


# ----------------------------------------------------------------------------- the front


def pareto_front(cands: list[Candidate]) -> list[Candidate]:
    """Candidates no simpler-or-equal one beats on held-out error, simplest first; plus the
    same front among the formulas with exact constants only (no floats), so that an exact
    formula a float one of equal tree size beats by rounding error stays selectable."""
    def front_of(cs):
        out: list[Candidate] = []
        for c in sorted(cs, key=lambda c: (c.complexity, c.error, str(c.formula))):
            if not out or c.error < out[-1].error:
                if out and out[-1].complexity == c.complexity:
                    out.pop()
                out.append(c)
        return out

    front = front_of(cands)
    exact = front_of([c for c in cands if _exact_constants(c.formula)])
    keep = {id(c) for c in front} | {id(c) for c in exact}
    return sorted((c for c in cands if id(c) in keep),
                  key=lambda c: (c.complexity, c.error, str(c.formula)))


def _exact_constants(expr) -> bool:
    """True when ``expr`` has no float constants (integers, rationals, pi, e, sqrt(2) only)."""
    return not expr.atoms(sympy.Float)


#: an exact-constant formula is preferred when its held-out error is within this factor of the
#: best (label noise puts the exact law and a float fit of the noise within a few percent)
EXACT_SLACK = 1.1


def _choose(front: list[Candidate], tol: float) -> Candidate | None:
    """The simplest front member within ``tol`` (or 2x the best error) of the data; but first
    the simplest one with exact constants within ``tol`` (or EXACT_SLACK x the best error):
    a float constant is a fitted guess, and where the exact form explains the data as well, it
    is the law. A constant is never preferred for being exact (it explains nothing)."""
    if not front:
        return None
    best = min(c.error for c in front)
    exact = [c for c in front if c.error <= max(tol, EXACT_SLACK * best)
             and _exact_constants(c.formula) and c.formula.free_symbols]
    if exact:
        return exact[0]
    limit = max(tol, 2 * best)
    return next(c for c in front if c.error <= limit)


# ----------------------------------------------------------------------------- entry point


def discover(X, y, names=None, *, budget_s: float = 120, seed: int = 0, noise=None,
             n_jobs: int = 1, scheduler=None, progress: bool = True, lib=None,
             terms: bool = True) -> Discovery:
    """Find a formula y = f(X) from data (see the module docstring for the steps).

    ``X``: (rows, variables) numpy / torch / pandas DataFrame (names from its columns, ``y``
    may then name a column); ``names``: variable names. ``budget_s``: seconds after which no
    new task starts and running fits stop (``fit(stop=...)``). ``noise``: the labels' noise as
    a fraction of std(y) (None: noiseless), which sets how close to the data a formula must
    come. ``lib``: the library for edges (default: kanir's default library). ``terms``: try
    the sparse-terms step (y or a transform of it as a few monomials, before the KAN
    structures); False leaves every formula to the KANs.

    The independent units (the two surrogates, each candidate structure, the fallback widths)
    are tasks (:func:`kanir.workflows.discover_run.run_task`): inline for ``n_jobs=1``, in
    joblib processes for ``n_jobs`` > 1 (-1: all cores), on a Dask cluster when ``scheduler``
    (an address or a ``dask.distributed.Client``) is given. Results are merged in task order,
    so every engine gives the same formula for the same seed (unless the budget cuts a task).
    """
    from kanir.train.data import create_dataset_from_data
    from kanir.workflows.discover_run import TaskSpec, make_engine

    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or not (n_jobs >= 1 or n_jobs == -1):
        raise ArgumentError(f"discover: n_jobs must be an integer >= 1 (or -1: all cores), "
                            f"got {n_jobs!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ArgumentError(f"discover: seed must be an integer >= 0, got {seed!r}")
    if not (isinstance(budget_s, int | float) and budget_s > 0):
        raise ArgumentError(f"discover: budget_s must be a positive number, got {budget_s!r}")
    if noise is not None and not (isinstance(noise, int | float) and noise >= 0):
        raise ArgumentError(f"discover: noise must be a fraction of std(y) >= 0, got {noise!r}")
    start = time.time()
    clock = _Clock(start + float(budget_s), start, progress)
    t0 = time.perf_counter()
    x, t, names = prepare(X, y, names)
    torch.manual_seed(seed)
    ds = create_dataset_from_data(torch.tensor(x), torch.tensor(t[:, None]), seed=seed)
    clock.record("data", t0, f"{x.shape[0]} rows, variables {', '.join(names)}, "
                 f"{ds['test_input'].shape[0]} held out")
    engine = make_engine(n_jobs, scheduler)
    tol = max(1e-6, 2 * noise) if noise else 1e-6
    # one spline range for all inputs (KANs take one): the data's; refine adapts per input
    base = dict(ds=ds, names=names, seed=seed, grid_range=(float(x.min()), float(x.max())),
                deadline=clock.deadline, start=start, tol=tol, lib=lib,
                echo=progress and engine.inline)
    results = []
    try:
        sign = float(np.sign(t[0]))
        spaces = [None] + ([sign] if np.all(np.sign(t) == sign) else [])
        # y itself, and log|y| when y keeps one sign
        specs = [TaskSpec((0, k), "surrogate", log_sign=ls, **base) for k, ls in enumerate(spaces)]
        surrogates = _collect(engine, specs, clock, None)
        results += surrogates
        structured, trees = _structures(surrogates)
        if terms:
            results += _collect(engine, [TaskSpec((1, 0), "terms", **base)], clock, tol)
        if not _good_enough([c for r in results for c in r.candidates], tol):
            specs = [TaskSpec((2, k), "structure", tree=tr, log_sign=ls, **base)
                     for k, (tr, ls) in enumerate(structured)]
            results += _collect(engine, specs, clock, tol)
        if not _good_enough([c for r in results for c in r.candidates], tol):
            n = len(names)
            specs = [TaskSpec((3, k), "width", width=w, **base)
                     for k, w in enumerate(([n, 2 * n + 1, 1], [n, [0, 1], 1]))]
            results += _collect(engine, specs, clock, tol)
    finally:
        engine.close()

    t0 = time.perf_counter()
    candidates = [c for r in results for c in r.candidates]
    front = pareto_front(candidates)
    best = _choose(front, tol)
    clock.record("choose", t0, f"{len(candidates)} candidates, front of {len(front)}; "
                 f"best: {best.formula if best else 'none'}")
    spent = any(r.cut for r in results) or clock.left() <= 0
    won = next((r for r in results if best is not None and r.label == best.task), None)
    model = best.model if best else None
    if best is not None and model is None:  # a sparse-terms formula: its exact KAN (kanpiler)
        model = _compiled(best.formula, names)
    return Discovery(
        formula=best.formula if best else None,
        front=[(c.complexity, c.error, c.formula) for c in front],
        model=model,
        tree=won.tree if won is not None and won.tree is not None else (
            structured[0][0] if structured else (trees[0] if trees else None)),
        steps=clock.steps, candidates=candidates, names=names,
        error=best.error if best else math.nan, origin=best.origin if best else "",
        found=best is not None, budget_spent=spent, seconds=time.time() - start,
        fitted=won.fitted if won else None, pruned=won.pruned if won else None,
        decided_by=_decisive(clock.steps, won))


def _compiled(expr, names):
    """The exact KAN of ``expr`` (``kanir.compile``), or None where the kanpiler cannot
    compile it."""
    from kanir.frontend.compiler import compile as kanpile
    from kanir.model.kan import KAN

    try:
        return KAN.from_graph(kanpile(expr, variables=list(names)), device="cpu")
    except Exception:  # noqa: BLE001 - no KAN for this formula is not a failure of the search
        return None


def _collect(engine, specs, clock: _Clock, tol: float | None) -> list:
    """Run ``specs`` on ``engine`` and merge their results in task order; with ``tol``, the
    results after the first task that found a good-enough formula are dropped (and not run
    where the engine can still avoid it), exactly as a sequential run would stop there."""
    out = []
    results = engine.run(specs)  # yields in task order, whatever order they finish in
    for res in results:
        out.append(res)
        if not engine.inline:  # inline tasks printed their own steps as they went
            for step in res.steps:
                clock.add(step)
        else:
            clock.steps += res.steps
        if tol is not None and _good_enough(res.candidates, tol):
            break
    results.close()  # cancels the tasks not needed
    return out


def _structures(surrogates) -> tuple[list, list]:
    """The structures to try, in order, from the trees the surrogate tasks read: sparse
    structures first (after the pair guesses for a pair the surrogate clearly couples, see
    :func:`_strongly_coupled`), then the other pair guesses, then dense blocks; within a rank
    the trees that leave less to guess (fewer variables in "sym" nodes), then those of the
    more accurate surrogate (its derivatives are more trustworthy)."""
    structured, trees = [], []
    for res in surrogates:
        trees += res.trees
        for tr in res.trees:
            if not _trivial(tr):
                guess = sum(len(n.variables) for n in tr.nodes() if n.kind == "sym")
                structured += [(_rank(v), guess, res.rel, v, res.log_sign) for v in _variants(tr)]
                structured += [(-1 if strong else 1, guess, res.rel, v, res.log_sign)
                               for p, strong in _pair_trees(tr) for v in _variants(p)]
    structured.sort(key=lambda r: r[:3])
    structured = list({(v.compact(), ls): (v, ls) for *_, v, ls in structured}.values())
    return structured, trees


def _decisive(steps: list[Step], won) -> list[Step]:
    """The steps that decided the result: the surrogate and tree of the winning structure's
    space (when it came from a tree), every step of its task, and the choice."""
    if won is None:
        return []
    space = "log|y|" if won.log_sign else "y"
    keep = [s for s in steps if s.task == won.label
            or (won.tree is not None and s.name in ("surrogate", "tree")
                and s.detail.startswith(f"of {space}:"))]
    return keep + [s for s in steps if s.name == "choose"]


def _good_enough(cands: list[Candidate], tol: float) -> bool:
    """An exact formula (no float constants left) that matches the held-out data."""
    return any(c.error <= tol and not c.formula.atoms(sympy.Float) for c in cands)
