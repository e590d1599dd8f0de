"""``kanir.discover``: from data to an exact formula, with no structure chosen by hand.

The pipeline (each step timed in :attr:`Discovery.steps`, each made of public kanir calls a user
could run by hand): validate the data; fit a surrogate KAN; read the function tree of the
surrogate (``kanir.tree``) at a few thresholds; for every distinct tree, Trick A
(``KAN.from_tree``), fit, prune; symbolic regression of the edges (``auto_symbolic``) with
branching where an edge's two best library functions score close (alternatives tried as model
versions through ``model.rewind``); refit; data-checked snapping of the constants (``formula``)
kept only when the held-out error does not get worse. Plain KAN widths are the fallback when the
tree is trivial. Every formula lands on a Pareto front (complexity vs held-out error); the best
is the simplest one as accurate as the data allow. See docs/discover.md.
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
    """One step of the pipeline: its name, seconds taken and what it found."""

    name: str
    seconds: float
    detail: str = ""


@dataclass
class Candidate:
    """One formula on the way: its complexity (sympy tree size), relative held-out RMSE
    (RMSE / std(y)), the formula, the model it was read from and how it was made."""

    complexity: int
    error: float
    formula: sympy.Expr
    model: object = field(repr=False, default=None)
    origin: str = ""


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

    def report(self, directory) -> Path:
        """Write ``report.md`` (+ the KAN picture and the tree diagram when they can be drawn)
        into ``directory``; returns the report's path."""
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
    """The budget and the step log (with progress lines on stderr)."""

    def __init__(self, budget_s: float, progress: bool):
        self.start = time.perf_counter()
        self.budget = budget_s
        self.progress = progress
        self.steps: list[Step] = []

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.start)

    def record(self, name: str, t0: float, detail: str = "") -> None:
        dt = time.perf_counter() - t0
        self.steps.append(Step(name, dt, detail))
        if self.progress:
            print(f"[discover {time.perf_counter() - self.start:6.1f}s] {name}: {detail}",
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


def _fit(model, ds, steps: int, seed: int, **kw):
    return model.fit(ds, steps=steps, log=0, progress=False, seed=seed, **kw)


# ----------------------------------------------------------------------------- steps 2-3


def _surrogate(ds, names, seed: int, grid_range):
    """A plain KAN [n, 2n+1, 1] (float64): the function the tree converter reads."""
    from kanir.model.kan import KAN

    n = len(names)
    model = KAN([n, 2 * n + 1, 1], grid=5, k=3, seed=seed, dtype=torch.float64, device="cpu",
                input_names=list(names), grid_range=grid_range)
    hist = _fit(model, ds, 100, seed)
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
    return out


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

    def add(self, expr, model, origin: str) -> Candidate | None:
        err = _rel_error(expr, self.symbols, self.x_test, self.y_test)
        if not math.isfinite(err):
            return None
        c = Candidate(_complexity(expr), err, expr, model, origin)
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
        hist = _fit(model, self.ds_fit, 100, self.seed, lamb=1e-3 if prune else 0.0)
        if prune:
            model = model.prune()
            hist = _fit(model, self.ds_fit, 100, self.seed)
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

        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.auto_symbolic(lib=self.lib, verbose=0, x=self.ds["train_input"])
            if alt is not None:
                (l, i, j), name = alt
                model.fix_symbolic(l, i, j, name, verbose=False, x=self.ds["train_input"])
            if any(int(((layer.mask_sp != 0) & (layer.mask_sym == 0)).sum())
                   for layer in model.net.layers):
                self.clock.record("symbolic", t0, f"{origin}: some edges stay splines")
                return
            _fit(model, self.ds_fit, 50, self.seed, update_grid=False)
            raw = model.formula(snap=False, floating_digit=None)[0]
            snapped = model.formula(x=self.ds_fit["train_input"],
                                    y=self.ds_fit["train_label"])[0]
        if self.log_sign is not None:
            raw, snapped = (_from_log(e, self.log_sign) for e in (raw, snapped))
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


def _from_log(expr, sign: float):
    """sign*exp(expr), with exp(log(a) + log(b)) folded back into a*b (logs of products are
    combined formally)."""
    e = sympy.powsimp(sympy.exp(expr), force=True)
    e = sympy.simplify(sympy.expand_log(e, force=True))
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
      product under an outer function; these sparse guesses run before the dense sym block.
    """
    out = [t]
    inner_gsep = [n for n in t.graph.nodes if n != t.root_id
                  and t.graph.nodes[n]["kind"] == "gsep"]
    sym = [n for n in t.graph.nodes if t.graph.nodes[n]["kind"] == "sym"]
    if inner_gsep:
        out.append(_relabel(t, inner_gsep, "mul"))
    if sym:
        out = [_relabel(t, sym, "gsep"), _relabel(t, sym, "mul", outer=True), *out]
    return out


def _rank(t) -> int:
    """0 for a tree without dense "sym" blocks, 2 with them (they run last)."""
    return 2 if any(n.kind == "sym" for n in t.nodes()) else 0


def _pair_trees(t) -> list:
    """For a flat root ("add" or "mul" over 3-4 single variables): the trees with one pair of
    them grouped ("gsep"), in case the surrogate was too coarse to see the pair's module
    (m0/sqrt(1 - v**2/c**2) reads as mul(m0, v, c))."""
    from kanir.science.tree import FunctionTree

    r = t.root
    if r.kind not in ("add", "mul") or not 3 <= len(r.children) <= 4 \
            or not all(c.is_leaf for c in r.children):
        return []
    out = []
    for a, b in combinations([c.indices[0] for c in r.children], 2):
        g = t.graph.copy()
        pair = (a, b)
        g.add_node(pair, indices=pair, variables=(t.names[a], t.names[b]), kind="gsep",
                   scores={}, complete=False)
        g.remove_edge(t.root_id, (a,))
        g.remove_edge(t.root_id, (b,))
        g.add_edge(t.root_id, pair)
        g.add_edge(pair, (a,))
        g.add_edge(pair, (b,))
        out.append(FunctionTree(g, t.root_id, t.names, t.unused, t.meta))
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


# ----------------------------------------------------------------------------- the front


def pareto_front(cands: list[Candidate]) -> list[Candidate]:
    """Candidates no simpler-or-equal one beats on held-out error, simplest first."""
    front: list[Candidate] = []
    for c in sorted(cands, key=lambda c: (c.complexity, c.error, str(c.formula))):
        if not front or c.error < front[-1].error:
            if front and front[-1].complexity == c.complexity:
                front.pop()
            front.append(c)
    return front


def _choose(front: list[Candidate], tol: float) -> Candidate | None:
    """The simplest front member within ``tol`` (or 2x the best error) of the data."""
    if not front:
        return None
    best = min(c.error for c in front)
    limit = max(tol, 2 * best)
    return next(c for c in front if c.error <= limit)


# ----------------------------------------------------------------------------- entry point


def discover(X, y, names=None, *, budget_s: float = 120, seed: int = 0, noise=None,
             n_jobs: int = 1, scheduler=None, progress: bool = True, lib=None) -> Discovery:
    """Find a formula y = f(X) from data (see the module docstring for the steps).

    ``X``: (rows, variables) numpy / torch / pandas DataFrame (names from its columns, ``y``
    may then name a column); ``names``: variable names. ``budget_s``: seconds after which no
    new candidate structure or branch is started. ``noise``: the labels' noise as a fraction
    of std(y) (None: noiseless), which sets how close to the data a formula must come.
    ``lib``: the library for edges (default: kanir's default library). Runs on one process:
    ``n_jobs`` > 1 and ``scheduler`` (parallel / Dask) are not implemented yet.
    """
    from kanir.model.kan import KAN
    from kanir.train.training import create_dataset_from_data

    if n_jobs != 1 or scheduler is not None:
        raise ArgumentError("discover: parallel runs (n_jobs > 1, scheduler) are not "
                            "implemented yet; use n_jobs=1 and scheduler=None")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ArgumentError(f"discover: seed must be an integer >= 0, got {seed!r}")
    if not (isinstance(budget_s, int | float) and budget_s > 0):
        raise ArgumentError(f"discover: budget_s must be a positive number, got {budget_s!r}")
    if noise is not None and not (isinstance(noise, int | float) and noise >= 0):
        raise ArgumentError(f"discover: noise must be a fraction of std(y) >= 0, got {noise!r}")
    clock = _Clock(float(budget_s), progress)
    t0 = time.perf_counter()
    x, t, names = prepare(X, y, names)
    torch.manual_seed(seed)
    ds = create_dataset_from_data(torch.tensor(x), torch.tensor(t[:, None]), seed=seed)
    x_test = ds["test_input"].numpy()
    y_test = ds["test_label"][:, 0].numpy()
    clock.record("data", t0, f"{x.shape[0]} rows, variables {', '.join(names)}, "
                 f"{len(y_test)} held out")

    # one spline range for all inputs (KANs take one): the data's; refine adapts per input
    grid_range = (float(x.min()), float(x.max()))
    sign = float(np.sign(t[0]))
    spaces = [None] + ([sign] if np.all(np.sign(t) == sign) else [])
    structured, trees = [], []
    for log_sign in spaces:  # y itself, and log|y| when y keeps one sign
        what = "log|y|" if log_sign else "y"
        ds_space = ds if log_sign is None else _log_dataset(ds, log_sign)
        t0 = time.perf_counter()
        sur, sur_err = _surrogate(ds_space, names, seed, grid_range)
        rel = sur_err / float(ds_space["test_label"].std())
        clock.record("surrogate", t0, f"of {what}: KAN {sur.width_spec}, held-out RMSE "
                     f"{rel:.3g} x std")
        t0 = time.perf_counter()
        found = _trees(sur, ds["train_input"], names, seed)
        trees += found
        clock.record("tree", t0, f"of {what}: " + ("; ".join(tr.compact() for tr in found)
                                                    or "no tree"))
        for tr in found:
            if not _trivial(tr):
                guess = sum(len(n.variables) for n in tr.nodes() if n.kind == "sym")
                structured += [(_rank(v), guess, rel, v, log_sign) for v in _variants(tr)]
                structured += [(1, guess, rel, v, log_sign) for p in _pair_trees(tr)
                               for v in _variants(p)]
    # sparse structures first, then pair guesses, then dense blocks; within a rank the trees
    # that leave less to guess (fewer variables in "sym" nodes), then those of the more
    # accurate surrogate (its derivatives are more trustworthy)
    structured.sort(key=lambda r: r[:3])
    structured = list({(v.compact(), ls): (v, ls) for *_, v, ls in structured}.values())

    tol = max(1e-6, 2 * noise) if noise else 1e-6
    search = _Searcher(ds, x_test, y_test, names, seed, clock, tol, lib)
    for tr, log_sign in structured:
        if clock.left() <= 0 or _good_enough(search.candidates, tol):
            break
        what = f"log tree {tr.compact()}" if log_sign else f"tree {tr.compact()}"
        model = KAN.from_tree(tr, device="cpu", grid_range=grid_range)
        model.refine(5, x=ds["train_input"])  # the same lines on each input's own range
        search.run(model, what, prune=False, log_sign=log_sign)
    if not _good_enough(search.candidates, tol):
        n = len(names)
        for width in ([n, 2 * n + 1, 1], [n, [0, 1], 1]):
            if clock.left() <= 0:
                break
            model = KAN(width, grid=5, k=3, seed=seed, dtype=torch.float64, device="cpu",
                        input_names=list(names), grid_range=grid_range)
            search.run(model, f"KAN {width}", prune=True)
            if _good_enough(search.candidates, tol):
                break

    t0 = time.perf_counter()
    front = pareto_front(search.candidates)
    best = _choose(front, tol)
    clock.record("choose", t0, f"{len(search.candidates)} candidates, front of {len(front)}; "
                 f"best: {best.formula if best else 'none'}")
    return Discovery(
        formula=best.formula if best else None,
        front=[(c.complexity, c.error, c.formula) for c in front],
        model=best.model if best else None,
        tree=structured[0][0] if structured else (trees[0] if trees else None),
        steps=clock.steps, candidates=search.candidates, names=names,
        error=best.error if best else math.nan, origin=best.origin if best else "")


def _good_enough(cands: list[Candidate], tol: float) -> bool:
    """An exact formula (no float constants left) that matches the held-out data."""
    return any(c.error <= tol and not c.formula.atoms(sympy.Float) for c in cands)
