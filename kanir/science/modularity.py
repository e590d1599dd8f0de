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
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy
import torch

from kanir.errors import DataError, KanirError
from kanir.science.derivatives import _derivatives
from kanir.science.target import (
    FunctionError,
    GroupError,
    Target,
    _as_name_list,
    _is_pair,
    _name_of,
    _symbols_of,
    as_target,
    sample_inputs,
    sympy_to_torch,
)

__all__ = [
    "FunctionError", "GroupError", "ModularityResult", "NonSmoothWarning", "Probe", "Target",
    "as_target", "probe", "sample_inputs", "sympy_to_torch", "test_general_separability",
    "test_separability", "test_symmetry",
]

_TINY = 1e-300


class NonSmoothWarning(UserWarning):
    """f looks piecewise linear: its second derivatives vanish at most samples."""


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
    from kanir.grammar.formula import parse_formula

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
