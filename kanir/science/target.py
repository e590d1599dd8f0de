"""The function under test for the modularity tests: sample inputs, a small sympy -> torch
compiler, and ``as_target``, which turns a torch function, an nn.Module (KAN or MLP, never
modified, evaluated in its own dtype) or a sympy expression into a batched callable with named
inputs. Split from kanir/science/modularity.py, which re-exports the public names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import sympy
import torch

from kanir.errors import DataError, FunctionError, GroupError

DEFAULT_RANGE = (-1.0, 1.0)


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
