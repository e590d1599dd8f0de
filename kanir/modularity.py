"""Tests of functional modularity (KAN 2.0, section 4.2.2): separability, general separability
and generalized symmetry of a function of several variables.

How it works: the derivatives of ``f`` (gradient, Hessian and, where a test needs them, third
derivatives) are computed once by automatic differentiation at sample points, in standardised
coordinates ``z_i = x_i / std(x_i)`` so that no score depends on the units of an input. Each test
turns them into a dimensionless per-sample ratio ("how much of the relevant curvature couples the
groups") and reports the median over samples as its ``score``; the structure passes when
``score < threshold``.

Smoothness caveat: the tests are exact for smooth functions, where a true structure scores at
rounding level (about 1e-15 in float64) and a false one scores about 0.1-1. A fitted network only
approximates its target, so its true structures score at the level of its fitting error in
derivatives (often 1e-3 to 1e-1): pick the threshold with the evidence in hand (every result shows
its score, per-block scores and sample count). Piecewise-linear functions (ReLU networks) have zero
second derivatives almost everywhere and look separable in every way; a ``NonSmoothWarning``
says so.
"""

from __future__ import annotations

import difflib
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy
import torch

from .errors import DataError, KanirError

__all__ = [
    "FunctionError", "GroupError", "ModularityResult", "NonSmoothWarning", "Probe", "Target",
    "as_target", "probe", "sample_inputs", "sympy_to_torch", "test_general_separability",
    "test_separability", "test_symmetry",
]

DEFAULT_RANGE = (-1.0, 1.0)
_TINY = 1e-300


class FunctionError(KanirError, ValueError):
    """The function under test cannot be evaluated or differentiated as the tests need."""


class GroupError(KanirError, ValueError):
    """Variable groups are empty, overlap, or name variables that do not exist."""


class NonSmoothWarning(UserWarning):
    """f looks piecewise linear: its second derivatives vanish at most samples."""


# ----------------------------------------------------------------------------- inputs


def sample_inputs(n_var: int, ranges=DEFAULT_RANGE, n: int = 1000, seed: int = 0,
                  dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``n`` uniform samples (n, n_var) from ``ranges``: one (lo, hi) pair, or one per variable.

    Uses its own seeded ``torch.Generator``, never the global random state.
    """
    if not isinstance(n_var, int) or n_var < 1:
        raise DataError(f"n_var must be a positive int, got {n_var!r}")
    if not isinstance(n, int) or n < 2:
        raise DataError(f"the number of samples must be an int >= 2, got {n!r}")
    bounds = _range_pairs(ranges, n_var)
    gen = torch.Generator().manual_seed(int(seed))
    u = torch.rand(n, n_var, generator=gen, dtype=torch.float64)
    lo = torch.tensor([b[0] for b in bounds], dtype=torch.float64)
    hi = torch.tensor([b[1] for b in bounds], dtype=torch.float64)
    return (lo + u * (hi - lo)).to(dtype)


def _is_pair(r) -> bool:
    return (isinstance(r, Sequence) and not isinstance(r, str) and len(r) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r))


def _range_pairs(ranges, n_var: int) -> list[tuple[float, float]]:
    """Normalise ``ranges`` to one checked (lo, hi) pair per variable."""
    if isinstance(ranges, torch.Tensor | np.ndarray):
        ranges = np.asarray(ranges, dtype=float).tolist()
    if _is_pair(ranges):
        pairs = [tuple(ranges)] * n_var
    elif isinstance(ranges, Sequence) and not isinstance(ranges, str) and all(
            _is_pair(r) for r in ranges):
        if len(ranges) != n_var:
            raise DataError(f"got {len(ranges)} ranges for {n_var} variables")
        pairs = [tuple(r) for r in ranges]
    else:
        raise DataError(f"ranges must be a (lo, hi) pair or a list of pairs, got {ranges!r}")
    for i, (lo, hi) in enumerate(pairs):
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise DataError(f"range {i} ({lo}, {hi}) must be finite with lo < hi")
    return [(float(lo), float(hi)) for lo, hi in pairs]


# ----------------------------------------------------------------------------- sympy -> torch

_UNARY: dict = {
    sympy.sin: torch.sin, sympy.cos: torch.cos, sympy.tan: torch.tan, sympy.exp: torch.exp,
    sympy.log: torch.log, sympy.Abs: torch.abs, sympy.sign: torch.sign,
    sympy.sinh: torch.sinh, sympy.cosh: torch.cosh, sympy.tanh: torch.tanh,
    sympy.asin: torch.asin, sympy.acos: torch.acos, sympy.atan: torch.atan,
    sympy.asinh: torch.asinh, sympy.acosh: torch.acosh, sympy.atanh: torch.atanh,
    sympy.erf: torch.special.erf, sympy.sec: lambda t: 1 / torch.cos(t),
    sympy.csc: lambda t: 1 / torch.sin(t), sympy.cot: lambda t: 1 / torch.tan(t),
}


def sympy_to_torch(expr: sympy.Expr, symbols: Sequence[sympy.Symbol]) -> Callable:
    """A batched torch function x (N, n) -> (N,) computing ``expr``, column i = ``symbols[i]``."""
    index = {s: i for i, s in enumerate(symbols)}
    body = _compile(sympy.sympify(expr), index)

    def fn(x: torch.Tensor) -> torch.Tensor:
        out = body(x)
        if not isinstance(out, torch.Tensor):  # a constant expression
            out = x[:, 0] * 0 + out
        return out

    return fn


def _compile(e: sympy.Expr, index: dict) -> Callable:
    """Turn one sympy node into a closure over the input batch."""
    if e.is_Symbol:
        if e not in index:
            raise FunctionError(f"symbol {e} is not among the variables")
        i = index[e]
        return lambda x: x[:, i]
    if e.is_number:
        if not e.is_real:
            raise FunctionError(f"the constant {e} is not real")
        c = float(e)
        return lambda x: c
    args = [_compile(a, index) for a in e.args]
    if e.is_Add:
        return lambda x: sum(a(x) for a in args)
    if e.is_Mul:
        return lambda x: math.prod((a(x) for a in args), start=1.0)
    if e.is_Pow:
        return _compile_pow(e, args)
    if e.func in _UNARY and len(args) == 1:
        op, a0 = _UNARY[e.func], args[0]
        return lambda x: op(_as_tensor(a0(x), x))
    if e.func == sympy.atan2:
        return lambda x: torch.atan2(_as_tensor(args[0](x), x), _as_tensor(args[1](x), x))
    raise FunctionError(f"cannot evaluate {e.func.__name__} ({e}) with torch")


def _compile_pow(e: sympy.Pow, args: list) -> Callable:
    base, ex = args
    p = e.exp
    if p == sympy.Rational(1, 2):
        return lambda x: torch.sqrt(_as_tensor(base(x), x))
    if p.is_Integer:
        k = int(p)
        return lambda x: _as_tensor(base(x), x) ** k
    return lambda x: torch.pow(_as_tensor(base(x), x), ex(x))


def _as_tensor(v, x: torch.Tensor) -> torch.Tensor:
    return v if isinstance(v, torch.Tensor) else x[:, 0] * 0 + v


def _natural_key(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


# ----------------------------------------------------------------------------- the target


@dataclass(frozen=True)
class Target:
    """``f`` as a batched torch function (N, n) -> (N,), with names and evaluation dtype."""

    fn: Callable[[torch.Tensor], torch.Tensor]
    names: tuple[str, ...]
    dtype: torch.dtype
    note: str = ""


def _symbols_of(expr: sympy.Expr, variables) -> list[sympy.Symbol]:
    """The ordered variables of a sympy expression (natural order of names by default)."""
    free = sorted(expr.free_symbols, key=lambda s: _natural_key(s.name))
    if isinstance(variables, int) and not isinstance(variables, bool):
        if variables != len(free):
            raise FunctionError(f"the expression has {len(free)} variables, not {variables}; "
                                "pass their names to fix the order or add unused ones")
        variables = None
    if variables is None:
        if not free:
            raise FunctionError("the expression has no variables; pass variables=[...]")
        return free
    names = [_name_of(v) for v in _as_name_list(variables)]
    by_name = {s.name: s for s in free}
    missing = [s.name for s in free if s.name not in names]
    if missing:
        raise FunctionError(f"the expression uses {', '.join(missing)}, which "
                            f"{'is' if len(missing) == 1 else 'are'} not in variables={names}")
    return [by_name.get(n, sympy.Symbol(n)) for n in names]


def _as_name_list(variables) -> list:
    if isinstance(variables, str):
        return [v.strip() for v in variables.split(",") if v.strip()]
    return list(variables)


def _name_of(v) -> str:
    if isinstance(v, sympy.Symbol):
        return v.name
    if isinstance(v, str) and v:
        return v
    raise GroupError(f"a variable name must be a non-empty string or sympy Symbol, got {v!r}")


def _module_dtype(m: torch.nn.Module) -> tuple[torch.dtype, torch.device]:
    """The dtype and device of a module's first floating parameter or buffer."""
    for t in list(m.parameters()) + list(m.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    return torch.float64, torch.device("cpu")


def as_target(f, names: Sequence[str], output: int | None = None,
              symbols: Sequence[sympy.Symbol] | None = None) -> Target:
    """Wrap a callable, ``nn.Module`` or sympy expression as a :class:`Target` (never mutating f).

    A module is evaluated in its own parameter dtype (inputs are cast to it, not the module).
    """
    names = tuple(names)
    if isinstance(f, sympy.Basic):
        base, dtype, note = sympy_to_torch(f, symbols), torch.float64, ""
    elif isinstance(f, torch.nn.Module):
        dtype, device = _module_dtype(f)
        note = "" if dtype == torch.float64 else (
            f"evaluated in the module's {str(dtype).replace('torch.', '')}: scores below about "
            f"{10 * torch.finfo(dtype).eps ** 0.5:.0e} are rounding noise")

        def base(x, _m=f, _dt=dtype, _dev=device):
            y = _m(x.to(device=_dev, dtype=_dt))
            return y.to(x.device) if isinstance(y, torch.Tensor) else y
    elif callable(f):
        base, dtype, note = f, torch.float64, ""
    else:
        raise FunctionError(f"f must be a callable, an nn.Module or a sympy expression, "
                            f"got {type(f).__name__}")
    return Target(_select_output(base, output), names, dtype, note)


def _select_output(base: Callable, output: int | None) -> Callable:
    """Wrap ``base`` so that it returns shape (N,), picking column ``output`` if asked."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        y = base(x)
        if not isinstance(y, torch.Tensor):
            raise FunctionError(f"f returned {type(y).__name__}, not a torch tensor: write f with "
                                "torch operations so it can be differentiated")
        n = x.shape[0]
        if y.dim() == 1 and y.shape[0] == n:
            if output not in (None, 0):
                raise FunctionError(f"f has a single output, so output={output} is invalid")
            return y
        if y.dim() == 2 and y.shape[0] == n:
            k = y.shape[1]
            if k == 1 and output in (None, 0):
                return y[:, 0]
            if output is None:
                raise FunctionError(f"f has {k} outputs (dims 0..{k - 1}); the tests need a "
                                    "scalar function: pass output=<index> to pick one")
            if not isinstance(output, int) or not -k <= output < k:
                raise FunctionError(f"output={output!r} is not an output index of f "
                                    f"(dims 0..{k - 1})")
            return y[:, output]
        raise FunctionError(f"f returned shape {tuple(y.shape)} for input shape {tuple(x.shape)};"
                            f" expected ({n},) or ({n}, n_out)")

    return fn


# ----------------------------------------------------------------------------- derivatives


def _grad_of(out: torch.Tensor, x: torch.Tensor, create: bool) -> torch.Tensor:
    """d(sum out)/dx, zeros where out does not depend on x."""
    if not out.requires_grad:
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=create, retain_graph=True,
                               allow_unused=True)
    return torch.zeros_like(x) if g is None else g


def _derivs_graph(fn: Callable, x: torch.Tensor, order: int) -> list[torch.Tensor]:
    """Gradient .. order-th derivatives by batched reverse-mode autograd (works for any module).

    Relies on row i of the output depending only on row i of the input.
    """
    x = x.detach().clone().requires_grad_(True)
    n = x.shape[1]
    g = _grad_of(fn(x), x, order >= 2)
    out = [g.detach()]
    if order >= 2:
        rows = [_grad_of(g[:, i], x, order >= 3) for i in range(n)]
        out.append(torch.stack([r.detach() for r in rows], 1))
        if order >= 3:
            t = torch.zeros(x.shape[0], n, n, n, dtype=x.dtype)
            for i in range(n):
                for j in range(i, n):
                    t[:, i, j] = _grad_of(rows[i][:, j], x, False).detach()
                    t[:, j, i] = t[:, i, j]
            out.append(t)
    return out


def _derivs_func(fn: Callable, x: torch.Tensor, order: int) -> list[torch.Tensor]:
    """The same derivatives with torch.func, one sample at a time (vmap of nested jacobians)."""
    from torch.func import grad, jacfwd, vmap

    d1 = grad(lambda row: fn(row.unsqueeze(0)).reshape(()))
    fns = [d1, jacfwd(d1), jacfwd(jacfwd(d1))][:order]
    return [vmap(d, chunk_size=64)(x).detach() for d in fns]


def _rows_independent(fn: Callable, x: torch.Tensor) -> bool:
    """Does output row 0 depend on input row 0 only (no batch statistics, no mixing)?"""
    z = x[:3].detach().clone().requires_grad_(True)
    y = fn(z)
    if not y.requires_grad:
        return True
    (g,) = torch.autograd.grad(y[0], z, allow_unused=True)
    return g is None or bool((g[1:] == 0).all())


def _derivatives(fn: Callable, x: torch.Tensor, order: int) -> list[torch.Tensor]:
    """First ``order`` derivatives of fn at each row of x.

    Batched reverse-mode autograd over the whole sample (n backward passes for the Hessian,
    n(n+1)/2 more for third derivatives) is 3-30x faster than torch.func's per-sample vmap on
    formulas, MLPs and KANs alike, but it needs rows that do not interact; when they do
    (batch statistics), each sample is differentiated alone, as a batch of one, with torch.func.
    """
    with torch.enable_grad():
        if _rows_independent(fn, x):
            return _derivs_graph(fn, x, order)
        try:
            return _derivs_func(fn, x, order)
        except Exception as e:
            raise FunctionError(
                "f mixes the samples of a batch (output row 0 depends on other rows, as with "
                "BatchNorm in training mode) and cannot be differentiated one sample at a time "
                f"either ({type(e).__name__}: {e}); for a module, call module.eval()") from e


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ModularityResult:
    """The verdict of one structure test with its evidence; ``bool(result)`` is the verdict."""

    test: str
    passed: bool
    score: float
    threshold: float
    groups: tuple[tuple[str, ...], ...]
    mode: str | None = None
    block_scores: dict[str, float] = field(default_factory=dict, hash=False)
    n_samples: int = 0
    n_excluded: int = 0
    dtype: str = "float64"
    note: str = ""

    def __bool__(self) -> bool:
        return self.passed

    @property
    def margin(self) -> float:
        """log10(threshold / score): decades by which the call passed (>0) or failed (<0)."""
        if not self.score > 0:
            return math.inf if self.score == 0 else math.nan
        return math.log10(self.threshold / self.score)

    def __repr__(self) -> str:
        name = self.test + (f"[{self.mode}]" if self.mode else "")
        groups = " | ".join("(" + ", ".join(g) + ")" for g in self.groups)
        verdict = "PASSED" if self.passed else "FAILED"
        cmp = "<" if self.passed else ">="
        blocks = "; ".join(f"{k}: {v:.2e}" for k, v in self.block_scores.items())
        extra = f", {self.n_excluded} excluded" if self.n_excluded else ""
        note = f"; note: {self.note}" if self.note else ""
        return (f"ModularityResult({name} {groups}: {verdict} score={self.score:.2e} {cmp} "
                f"threshold={self.threshold:.0e} (margin {self.margin:+.1f} decades); "
                f"blocks: {blocks or '-'}; {self.n_samples} samples{extra}, {self.dtype}{note})")


# ----------------------------------------------------------------------------- per-sample algebra


def _median(v: torch.Tensor) -> float:
    """Median of the finite entries (nan if none)."""
    v = v[torch.isfinite(v)]
    return float(np.median(v.numpy())) if v.numel() else math.nan


def _ratio(part_sq: torch.Tensor, full_sq: torch.Tensor) -> torch.Tensor:
    """sqrt(part/full) per sample, with a floor so that 0/0 gives 0, not nan."""
    full = full_sq.sqrt()
    med = _median(full)
    floor = (1e-12 * med if math.isfinite(med) else 0.0) + _TINY
    return part_sq.sqrt() / (full + floor)


def _labels(blocks: Sequence[Sequence[int]]) -> tuple[list[int], torch.Tensor]:
    """Flattened indices of ``blocks`` and the block number of each."""
    idx = [i for b in blocks for i in b]
    lab = torch.tensor([k for k, b in enumerate(blocks) for _ in b])
    return idx, lab


def _block_ratios(m: torch.Tensor, blocks) -> tuple[torch.Tensor, dict]:
    """Per-sample share of ``m`` (N, n, n) in the cross blocks of ``blocks``: total and per pair."""
    idx, lab = _labels(blocks)
    sub = m[:, idx][:, :, idx] ** 2
    full = sub.sum((1, 2))
    cross = lab[:, None] != lab[None, :]
    total = _ratio((sub * cross).sum((1, 2)), full)
    pairs = {}
    for k in range(len(blocks)):
        for j in range(k + 1, len(blocks)):
            mask = ((lab[:, None] == k) & (lab[None, :] == j)) | (
                (lab[:, None] == j) & (lab[None, :] == k))
            pairs[(k, j)] = _ratio((sub * mask).sum((1, 2)), full)
    return total, pairs


# ----------------------------------------------------------------------------- the probe


class Probe:
    """f's derivatives at the samples (standardised coordinates), shared by all structure tests.

    Build it with :func:`probe`; the ``test_*`` functions are one-call wrappers around it.
    """

    def __init__(self, target: Target, x: torch.Tensor, order: int = 2):
        self.target = target
        self.names = target.names
        self.x = x.detach().to(torch.float64)
        self.n_var = x.shape[1]
        self.scale = self._scale()
        xin = x.detach().to(target.dtype)
        self.f = self._values(xin)
        self._xin = xin
        self._d: list[torch.Tensor] = []
        self._lng: dict = {}
        self.note = target.note
        self._derivs(order)
        self._check_smooth()

    # -- construction helpers
    def _scale(self) -> torch.Tensor:
        s = self.x.std(0)
        flat = [self.names[i] for i in range(self.n_var) if not s[i] > 0]
        if flat:
            raise DataError(f"variable(s) {', '.join(flat)} take a single value in x; "
                            "the tests need samples that vary every variable")
        return s

    def _values(self, xin: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            probe_x = xin[:2].clone().requires_grad_(True)
            try:
                out = self.target.fn(probe_x)
            except KanirError:
                raise
            except Exception as e:
                raise FunctionError(f"calling f on a batch of shape {tuple(probe_x.shape)} failed: "
                                    f"{type(e).__name__}: {e}") from e
            if not out.requires_grad:
                raise FunctionError("f's output is not connected to its input by torch autograd "
                                    "(was it computed with numpy, or detached?)")
        with torch.no_grad():
            y = self.target.fn(xin)
        bad = ~torch.isfinite(y)
        if bad.any():
            first = bad.nonzero()[0, 0]
            at = ", ".join(f"{n}={v:.4g}" for n, v in zip(self.names, self.x[first].tolist()))
            raise FunctionError(f"f returned NaN/inf at {int(bad.sum())} of {len(y)} samples "
                                f"(first at {at}); restrict the ranges to f's domain")
        return y.to(torch.float64)

    def _derivs(self, order: int) -> list[torch.Tensor]:
        """Gradient, Hessian (and third derivatives) in z-coordinates, computed on first use."""
        if len(self._d) < order:
            raw = _derivatives(self.target.fn, self._xin, order)
            s = self.scale
            out = [raw[0].to(torch.float64) * s]
            if order >= 2:
                out.append(raw[1].to(torch.float64) * s[:, None] * s[None, :])
            if order >= 3:
                out.append(raw[2].to(torch.float64) * s[:, None, None] * s[None, :, None]
                           * s[None, None, :])
            self._d = out
        return self._d[:order]

    @property
    def g(self) -> torch.Tensor:
        return self._derivs(1)[0]

    @property
    def H(self) -> torch.Tensor:
        return self._derivs(2)[1]

    @property
    def T(self) -> torch.Tensor:
        return self._derivs(3)[2]

    def _check_smooth(self) -> None:
        """Warn when the Hessian vanishes at most samples although f is not affine."""
        h = self.H
        flat = (h.flatten(1).abs().max(1).values == 0).float().mean()
        if flat <= 0.5:
            return
        a = torch.cat([self.x, torch.ones(len(self.x), 1, dtype=torch.float64)], 1)
        coef = torch.linalg.lstsq(a, self.f[:, None]).solution
        resid = (a @ coef)[:, 0] - self.f
        if resid.norm() > 1e-8 * (self.f.norm() + _TINY):
            msg = (f"f's second derivatives are exactly zero at {float(flat):.0%} of the samples "
                   "but f is not affine: it looks piecewise linear (ReLU?), so the structure "
                   "tests cannot see its curvature; use a smooth activation")
            self.note = (self.note + "; " if self.note else "") + msg
            warnings.warn(msg, NonSmoothWarning, stacklevel=3)

    # -- group handling
    def resolve_groups(self, groups, min_groups: int = 1) -> list[tuple[int, ...]]:
        """Groups given by index, name or Symbol, checked: non-empty, known, disjoint."""
        if isinstance(groups, np.ndarray | torch.Tensor):
            groups = groups.tolist()
        if isinstance(groups, (str, int, sympy.Symbol)) or not isinstance(groups, Sequence):
            raise GroupError(f"groups must be a list of variable groups, got {groups!r}")
        out, seen = [], {}
        for gi, grp in enumerate(groups):
            items = [grp] if isinstance(grp, (str, int, sympy.Symbol)) else list(grp)
            if not items:
                raise GroupError(f"group {gi} is empty")
            idx = tuple(self._index(v, gi) for v in items)
            for i in idx:
                if i in seen:
                    where = (f"groups {seen[i]} and {gi}" if seen[i] != gi
                             else f"group {gi} twice")
                    raise GroupError(f"variable {self.names[i]} appears in {where}; "
                                     "groups must be disjoint")
                seen[i] = gi
            out.append(idx)
        if len(out) < min_groups:
            raise GroupError(f"need at least {min_groups} groups, got {len(out)}")
        return out

    def _index(self, v, gi: int) -> int:
        if isinstance(v, bool):
            raise GroupError(f"group {gi}: {v!r} is not a variable")
        if isinstance(v, (int, np.integer)):
            if not 0 <= v < self.n_var:
                raise GroupError(f"group {gi}: variable index {v} is out of range for "
                                 f"{self.n_var} variables ({', '.join(self.names)})")
            return int(v)
        name = v.name if isinstance(v, sympy.Symbol) else v
        if isinstance(name, str) and name in self.names:
            return self.names.index(name)
        close = [n for n in self.names if n.lower() == str(name).lower()]
        close = close or difflib.get_close_matches(str(name), self.names, n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise GroupError(f"group {gi}: unknown variable {name!r}; variables are "
                         f"{', '.join(self.names)}{hint}")

    def group_names(self, groups) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(self.names[i] for i in g) for g in groups)

    def _block_name(self, *groups) -> str:
        return " | ".join(",".join(self.names[i] for i in g) for g in groups)

    # -- per-sample building blocks
    def log_norm_grad(self, q: Sequence[int], second: bool = True):
        """First (N, n) and second (N, n, n) z-derivatives of log|grad_q f| (zeros for empty q)."""
        key = (tuple(q), second)
        if key not in self._lng:
            self._lng[key] = self._log_norm_grad(q, second)
        return self._lng[key]

    def _log_norm_grad(self, q: Sequence[int], second: bool):
        n = self.n_var
        if not q:
            z1 = torch.zeros(len(self.f), n, dtype=torch.float64)
            return z1, torch.zeros(len(self.f), n, n, dtype=torch.float64)
        q = list(q)
        gq, hq = self.g[:, q], self.H[:, q, :]
        nsq = (gq**2).sum(1)
        d1 = torch.einsum("na,nac->nc", gq, hq) / nsq[:, None]
        if not second:
            return d1, None
        t = torch.einsum("nac,nad->ncd", hq, hq) + torch.einsum("na,nacd->ncd", gq, self.T[:, q])
        d2 = t / nsq[:, None, None] - 2 * d1[:, :, None] * d1[:, None, :]
        return d1, d2

    def direction_change(self, group: Sequence[int], others: Sequence[int]) -> torch.Tensor:
        """|d u / d z_r| per sample (N, len(others)), u = grad_group f / |grad_group f|."""
        group, others = list(group), list(others)
        gs = self.g[:, group]
        nrm = gs.norm(dim=1)
        u = gs / nrm[:, None]
        h = self.H[:, group][:, :, others]
        perp = h - u[:, :, None] * (u[:, :, None] * h).sum(1, keepdim=True)
        return perp.norm(dim=1) / nrm[:, None]

    def _result(self, test, per_sample, blocks, threshold, groups, mode=None,
                score=None) -> ModularityResult:
        ok = torch.isfinite(per_sample)
        score = _median(per_sample) if score is None else score
        return ModularityResult(
            test=test, passed=bool(score < threshold), score=score, threshold=float(threshold),
            groups=self.group_names(groups), mode=mode,
            block_scores={k: _median(v) for k, v in blocks.items()},
            n_samples=int(ok.sum()), n_excluded=int((~ok).sum()),
            dtype=str(self.target.dtype).replace("torch.", ""), note=self.note)

    # -- scores used by the tests and the tree converter
    def add_profile(self, blocks, pin: Sequence[int] = ()):
        """Cross-block share of the z-Jacobian of grad f / |grad_pin f| (the Hessian if no pin)."""
        m = self.H
        if pin:
            d1, _ = self.log_norm_grad(pin, second=False)
            m = m - self.g[:, :, None] * d1[:, None, :]
        total, pairs = _block_ratios(m, blocks)
        return total, {self._block_name(blocks[k], blocks[j]): v for (k, j), v in pairs.items()}

    def mul_profile(self, blocks):
        """Cross-block share of the z-Hessian of log|f| (f exactly a product of the groups)."""
        f = self.f[:, None, None]
        m = self.H / f - self.g[:, :, None] * self.g[:, None, :] / f**2
        total, pairs = _block_ratios(m, blocks)
        return total, {self._block_name(blocks[k], blocks[j]): v for (k, j), v in pairs.items()}

    def shifted_mul_profile(self, blocks, pin: Sequence[int] = ()):
        """f is a product of the groups plus a constant: every log|grad_Qk f| - log|grad_pin f|
        is additively separable across the groups (their z-Hessians have no cross blocks)."""
        _, d2pin = self.log_norm_grad(pin)
        totals, pairs = [], {}
        for q in blocks:
            _, d2 = self.log_norm_grad(q)
            t, p = _block_ratios(d2 - d2pin, blocks)
            totals.append(t)
            for (a, b), v in p.items():
                key = self._block_name(blocks[a], blocks[b])
                pairs[key] = v if key not in pairs else torch.maximum(pairs[key], v)
        return torch.stack(totals).amax(0), pairs

    def gsep_profile(self, blocks):
        """f = F(sum_k g_k(x_Qk), rest): each group is a symmetric group of the listed variables
        and log|grad_Qk f| - log|grad_Ql f| is additively separable between Qk and Ql and does not
        depend on the other groups."""
        pieces, named = [], {}
        union = [i for b in blocks for i in b]
        for q in blocks:
            others = [i for i in union if i not in q]
            if len(q) > 1:
                v = self.direction_change(q, others).amax(1)
                pieces.append(v)
                named[f"sym({self._block_name(q)})"] = v
        for k in range(len(blocks)):
            d1k, d2k = self.log_norm_grad(blocks[k])
            for j in range(k + 1, len(blocks)):
                d1j, d2j = self.log_norm_grad(blocks[j])
                v = self._log_ratio_coupling(d1k - d1j, d2k - d2j, blocks, k, j)
                pieces.append(v)
                named[self._block_name(blocks[k], blocks[j])] = v
        return torch.stack(pieces).amax(0), named

    def _log_ratio_coupling(self, d1, d2, blocks, k: int, j: int) -> torch.Tensor:
        """Share of the log-ratio's curvature coupling Qk and Ql, and of its slope along third
        groups (which must vanish), per sample."""
        qk, qj = list(blocks[k]), list(blocks[j])
        union = [i for b in blocks for i in b]
        hs = d2[:, union][:, :, union] ** 2
        cross = 2 * (d2[:, qk][:, :, qj] ** 2).sum((1, 2))
        v = _ratio(cross, hs.sum((1, 2)))
        rest = [i for i in union if i not in qk and i not in qj]
        if rest:
            slope = _ratio((d1[:, rest] ** 2).sum(1), (d1[:, union] ** 2).sum(1))
            v = torch.maximum(v, slope)
        return v

    # -- the public tests
    def test_separability(self, groups, mode: str = "add", threshold: float = 1e-2):
        """See :func:`test_separability`."""
        if mode not in ("add", "mul"):
            raise KanirError(f"mode must be 'add' or 'mul', got {mode!r}")
        blocks = self.resolve_groups(groups, min_groups=2)
        total, pairs = self.add_profile(blocks) if mode == "add" else self.mul_profile(blocks)
        return self._result("separability", total, pairs, threshold, blocks, mode)

    def test_general_separability(self, groups, threshold: float = 1e-2):
        """See :func:`test_general_separability`."""
        blocks = self.resolve_groups(groups, min_groups=2)
        total, named = self.gsep_profile(blocks)
        return self._result("general_separability", total, named, threshold, blocks)

    def symmetry_scores(self, group: Sequence[int], others: Sequence[int] | None = None):
        """Per-sample change of the group's gradient direction, per other variable (dict)."""
        if others is None:
            others = [i for i in range(self.n_var) if i not in group]
        if not others:
            return {}
        dc = self.direction_change(group, others)
        return {r: dc[:, c] for c, r in enumerate(others)}

    def test_symmetry(self, group, threshold: float = 1e-2):
        """See :func:`test_symmetry`."""
        (grp,) = self.resolve_groups([group])
        per_r = self.symmetry_scores(grp)
        if per_r:
            total = torch.stack(list(per_r.values()), 1).amax(1)
            score = max(_median(v) for v in per_r.values())
        else:  # the group holds every variable: trivially symmetric
            total, score = torch.zeros(len(self.f), dtype=torch.float64), 0.0
        named = {self.names[r]: v for r, v in per_r.items()}
        return self._result("symmetry", total, named, threshold, [grp], score=score)


# ----------------------------------------------------------------------------- entry points


def probe(f, x, variables=None, *, output: int | None = None, n_samples: int = 1000,
          seed: int = 0, order: int = 2) -> Probe:
    """Differentiate ``f`` once at the samples ``x`` and return a :class:`Probe` for many tests.

    ``f``: a torch function of a (batch, n) tensor returning (batch,) or (batch, n_out), an
    ``nn.Module`` (a KAN, an MLP), or a sympy expression (or formula text).
    ``x``: a (batch, n) tensor/array of samples, or ranges to sample ``n_samples`` points from
    with ``seed``: one (lo, hi) pair, a list of pairs, or a dict {name: (lo, hi)}.
    ``variables``: names (list or "a,b,c") or the number of variables; for sympy expressions the
    order of the inputs (default: free symbols in natural name order); for a model with
    ``input_names`` (a kanir KAN) those names by default.
    ``output``: which output of a multi-output f to test; ``order``: derivatives to compute
    now (3 for general separability and the tree; computed later on demand otherwise).
    """
    if isinstance(f, str):
        f = _parse_text(f, variables)
    symbols = None
    if isinstance(f, sympy.Basic):
        symbols = _symbols_of(f, variables)
        names = [s.name for s in symbols]
    elif isinstance(variables, int) and not isinstance(variables, bool):
        names = None if variables < 1 else [f"x{i + 1}" for i in range(variables)]
        if names is None:
            raise GroupError(f"variables must be positive, got {variables}")
    elif variables is not None:
        names = [_name_of(v) for v in _as_name_list(variables)]
    else:
        names = _input_names(f)
    data = _inputs(x, names, n_samples, seed)
    if names is None:
        names = [f"x{i + 1}" for i in range(data.shape[1])]
    if len(set(names)) != len(names):
        raise GroupError(f"variable names must be unique, got {names}")
    if data.shape[1] != len(names):
        raise DataError(f"x has {data.shape[1]} columns but there are {len(names)} variables "
                        f"({', '.join(names)})")
    return Probe(as_target(f, names, output, symbols), data, order)


def _input_names(f) -> list[str] | None:
    """Input names a model declares (a kanir KAN's ``input_names``), if any."""
    try:
        names = getattr(f, "input_names", None) if isinstance(f, torch.nn.Module) else None
    except Exception:  # a property that fails is no source of names
        return None
    if isinstance(names, Sequence) and names and all(isinstance(n, str) for n in names):
        return list(names)
    return None


def _inputs(x, names, n_samples: int, seed: int) -> torch.Tensor:
    """Samples from data (tensor/array) or from ranges."""
    if isinstance(x, torch.Tensor | np.ndarray):
        t = torch.as_tensor(x).detach()
        if t.dim() != 2:
            raise DataError(f"x must be a 2-D (batch, n_var) array, got shape {tuple(t.shape)}")
        if t.shape[0] < 2:
            raise DataError("x needs at least 2 samples")
        if not t.is_floating_point():
            t = t.to(torch.float64)
        if not torch.isfinite(t).all():
            raise DataError("x contains NaN or inf")
        return t.to(torch.float64)
    if isinstance(x, Mapping):
        if names is None:
            raise DataError("ranges given by name need variables=[...] (or a sympy expression)")
        unknown = [k for k in x if k not in names]
        if unknown:
            raise DataError(f"ranges for unknown variable(s) {unknown}; variables are {names}")
        missing = [n for n in names if n not in x]
        if missing:
            raise DataError(f"no range given for {', '.join(missing)}")
        x = [tuple(x[n]) for n in names]
    if _is_pair(x):
        if names is None:
            raise DataError("one (lo, hi) range for all variables needs variables=<names or "
                            "count>, or pass a sample tensor x")
        return sample_inputs(len(names), x, n_samples, seed)
    if isinstance(x, Sequence) and not isinstance(x, str):
        return sample_inputs(len(x), x, n_samples, seed)
    raise DataError(f"x must be samples (batch, n_var) or ranges, got {type(x).__name__}")


def _parse_text(text: str, variables):
    """Formula text -> sympy expression via kanir's formula grammar."""
    from .grammar.formula import parse_formula

    names = None if variables is None else [_name_of(v) for v in _as_name_list(variables)]
    return parse_formula(text, variables=names).expr


def test_separability(f, x, groups, mode: str = "add", threshold: float = 1e-2, *,
                      variables=None, output: int | None = None, n_samples: int = 1000,
                      seed: int = 0) -> ModularityResult:
    """Is f additively (``mode="add"``: f = g(A) + h(B) + ...) or multiplicatively
    (``"mul"``: f = g(A) h(B) ...) separable over ``groups``?

    Method: the Hessian (of f, or of log|f| for mul) must have no cross-group blocks. Entries are
    taken in standardised coordinates (H_ij std(x_i) std(x_j)); per sample the score is
    |cross blocks|_F / |whole Hessian over the groups|_F, and the result's score is its median
    over samples. Variables in no group are held as parameters: they may enter every part.
    """
    return probe(f, x, variables, output=output, n_samples=n_samples, seed=seed
                 ).test_separability(groups, mode, threshold)


def test_general_separability(f, x, groups, threshold: float = 1e-2, *, variables=None,
                              output: int | None = None, n_samples: int = 1000,
                              seed: int = 0) -> ModularityResult:
    """Is f generally separable, f = F(g(A) + h(B) + ...) (KAN 2.0 Eq. 13)?

    Method: then grad_A f = F' grad g and grad_B f = F' grad h, so (i) each group's gradient
    direction depends on that group only, and (ii) the log-ratio log|grad_A f| - log|grad_B f| =
    log|grad g| - log|grad h| is additively separable: its Hessian has no A-B block, and with three
    or more groups it has no slope along the others. Using the norm over a whole group (rather than
    single partial derivatives) keeps the logarithm away from isolated zeros of one derivative.
    The per-sample score is the largest relative violation (direction change per std, cross-block
    share of the log-ratio's Hessian, share of its slope along other groups); the score is its
    median over samples. Needs third derivatives of f.
    """
    return probe(f, x, variables, output=output, n_samples=n_samples, seed=seed, order=3
                 ).test_general_separability(groups, threshold)


def test_symmetry(f, x, group, threshold: float = 1e-2, *, variables=None,
                  output: int | None = None, n_samples: int = 1000,
                  seed: int = 0) -> ModularityResult:
    """Does f have generalized symmetry in ``group``: f = F(g(x_group), x_other) (KAN 2.0 Eq. 15)?

    Method: then the unit gradient u = grad_group f / |grad_group f| = grad g / |grad g| depends
    on the group only. Per sample and per other variable r the score is |du/dz_r| (the rotation
    of u, in radians, per standard deviation of x_r; from the Hessian); the result's score is the
    largest over r of the medians over samples, and ``block_scores`` names each r.
    """
    return probe(f, x, variables, output=output, n_samples=n_samples, seed=seed
                 ).test_symmetry(group, threshold)


for _t in (test_separability, test_general_separability, test_symmetry,
           Probe.test_separability, Probe.test_general_separability, Probe.test_symmetry):
    _t.__test__ = False  # not pytest tests, despite the names
