"""The symbolic function library: one registry entry per univariate function.

Every backend and pass looks functions up here (as JAX keeps per-primitive rules in tables):
each entry has a torch form, a sympy form, a complexity (for Occam-style scoring) and a
singularity-safe torch form used when fitting (never NaN/inf, bounded by ``y_th``).
Power functions ``x^p`` for any rational ``p`` (``x^6``, ``x^-3/2``, ``x^1/3``) are made on demand.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction

import sympy
import torch

from kanir.errors import LibraryError

TorchFn = Callable[[torch.Tensor], torch.Tensor]
SafeFn = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass(frozen=True)
class SymbolicFunction:
    """A univariate function known to kanir: torch form, sympy form, complexity, safe form."""

    name: str
    torch: TorchFn
    sympy: Callable[[sympy.Expr], sympy.Expr]
    complexity: float
    safe: SafeFn | None = None
    aliases: tuple[str, ...] = field(default=())

    def safe_torch(self, x: torch.Tensor, y_th: float = 1e3) -> torch.Tensor:
        """The singularity-avoiding form: finite everywhere, with finite derivatives."""
        if self.safe is not None:
            return self.safe(x, y_th)
        return self.torch(x)


def _finfo_max_log(x: torch.Tensor) -> float:
    return math.log(torch.finfo(x.dtype).max) - 2.0


def _away_from_zero(x: torch.Tensor, x_th: float) -> torch.Tensor:
    """x with |x| raised to at least x_th, keeping the sign (0 goes to +x_th)."""
    sign = torch.where(x < 0, -torch.ones_like(x), torch.ones_like(x))
    return torch.where(x.abs() < x_th, sign * x_th, x)


def _safe_pos(x: torch.Tensor, x_th: float) -> torch.Tensor:
    return torch.clamp(x, min=x_th)


def _safe_exp(x: torch.Tensor, y_th: float) -> torch.Tensor:
    return torch.exp(torch.clamp(x, max=_finfo_max_log(x)))


def _safe_cosh(x: torch.Tensor, y_th: float) -> torch.Tensor:
    m = _finfo_max_log(x)
    return torch.cosh(torch.clamp(x, -m, m))


def _safe_sinh(x: torch.Tensor, y_th: float) -> torch.Tensor:
    m = _finfo_max_log(x)
    return torch.sinh(torch.clamp(x, -m, m))


def _safe_log(x: torch.Tensor, y_th: float) -> torch.Tensor:
    floor = max(math.exp(-min(y_th, 700.0)), float(torch.finfo(x.dtype).tiny))
    return torch.log(_safe_pos(x, floor))


def _safe_tan(x: torch.Tensor, y_th: float) -> torch.Tensor:
    return torch.clamp(torch.tan(x), -y_th, y_th)


def _unit_eps(x: torch.Tensor) -> float:
    return float(torch.finfo(x.dtype).eps) ** 0.5


def _safe_arcsin(x: torch.Tensor, y_th: float) -> torch.Tensor:
    e = _unit_eps(x)
    return torch.arcsin(torch.clamp(x, -1 + e, 1 - e))


def _safe_arccos(x: torch.Tensor, y_th: float) -> torch.Tensor:
    e = _unit_eps(x)
    return torch.arccos(torch.clamp(x, -1 + e, 1 - e))


def _safe_arctanh(x: torch.Tensor, y_th: float) -> torch.Tensor:
    e = _unit_eps(x)
    return torch.arctanh(torch.clamp(x, -1 + e, 1 - e))


def _sympy_sigmoid(x):
    return 1 / (1 + sympy.exp(-x))


def _sympy_silu(x):
    return x / (1 + sympy.exp(-x))


def _sympy_relu(x):
    return sympy.Max(0, x)


def _sympy_gelu(x):
    return x / 2 * (1 + sympy.erf(x / sympy.sqrt(2)))


_GELU_TANH_C = sympy.Rational(44715, 1000000)  # torch's 0.044715, exactly


def _sympy_gelu_tanh(x):
    return x / 2 * (1 + sympy.tanh(sympy.sqrt(2 / sympy.pi) * (x + _GELU_TANH_C * x**3)))


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.gelu(x, approximate="tanh")


def _power_forms(p: Fraction):
    """torch, sympy and safe forms of x**p for a rational p."""
    pf = float(p)
    sp = sympy.Rational(p.numerator, p.denominator)
    if p.denominator == 1 and p >= 0:
        n = p.numerator
        return (lambda x: x**n), (lambda x: x**sp), None
    if p.denominator == 1:  # negative integer power: pole at 0
        n = p.numerator

        def safe_int(x, y_th):
            return _away_from_zero(x, y_th ** (1.0 / n)) ** n  # n < 0, so y_th**(1/n) = y_th^(-1/|n|)

        return (lambda x: x**n), (lambda x: x**sp), safe_int

    if pf > 0:  # fractional positive: domain x >= 0, derivative may blow up at 0

        def safe_frac(x, y_th):
            x_th = 0.0 if pf >= 1 else y_th ** (-1.0 / (1.0 - pf))
            return _safe_pos(x, x_th) ** pf

        return (lambda x: torch.pow(x, pf)), (lambda x: x**sp), safe_frac

    def safe_negfrac(x, y_th):
        return _safe_pos(x, y_th ** (1.0 / pf)) ** pf

    return (lambda x: torch.pow(x, pf)), (lambda x: x**sp), safe_negfrac


def power_name(p: Fraction | int) -> str:
    """Canonical library name of x**p: 'x', 'x^2', '1/x^3', 'sqrt', 'x^1/3', 'x^-3/2'."""
    p = Fraction(p)
    if p == 1:
        return "x"
    if p == Fraction(1, 2):
        return "sqrt"
    if p == Fraction(-1, 2):
        return "1/sqrt(x)"
    if p.denominator == 1:
        if p < 0:
            return "1/x" if p == -1 else f"1/x^{-p.numerator}"
        return f"x^{p.numerator}"
    if p.denominator == 2 and p > 0:
        return f"x^{p.numerator / 2:g}"
    return f"x^{p.numerator}/{p.denominator}"


_POWER_RE = re.compile(r"^(?:x\^|x\*\*)\(?(-?\d+(?:/\d+)?|-?\d*\.\d+)\)?$|^1/x\^(\d+)$")


def _parse_power(name: str) -> Fraction | None:
    m = _POWER_RE.match(name.replace(" ", ""))
    if not m:
        return None
    if m.group(2):
        return Fraction(-int(m.group(2)))
    txt = m.group(1)
    try:
        return Fraction(txt).limit_denominator(1000)
    except (ValueError, ZeroDivisionError):
        return None


class FunctionLibrary:
    """A registry of SymbolicFunction entries, looked up by name or alias."""

    def __init__(self) -> None:
        self._funs: dict[str, SymbolicFunction] = {}
        self._alias: dict[str, str] = {}

    def register(
        self,
        name: str,
        torch_fn: TorchFn,
        sympy_fn: Callable,
        complexity: float = 3.0,
        safe: SafeFn | None = None,
        aliases: Iterable[str] = (),
        overwrite: bool = False,
    ) -> SymbolicFunction:
        """Add a function; ``safe(x, y_th)`` is its singularity-avoiding form (defaults to torch)."""
        if not isinstance(name, str) or not name.strip():
            raise LibraryError("a library function needs a non-empty string name")
        if not callable(torch_fn) or not callable(sympy_fn):
            raise LibraryError(f"function {name!r}: torch_fn and sympy_fn must be callables")
        if complexity < 0 or not math.isfinite(complexity):
            raise LibraryError(f"function {name!r}: complexity must be a finite number >= 0")
        if not overwrite and (name in self._funs or name in self._alias):
            raise LibraryError(
                f"function {name!r} is already registered; pass overwrite=True to replace it"
            )
        fn = SymbolicFunction(name, torch_fn, sympy_fn, float(complexity), safe, tuple(aliases))
        self._funs[name] = fn
        for a in aliases:
            self._alias[a] = name
        return fn

    def canonical_name(self, name: str) -> str:
        """The registered name for ``name`` (resolving aliases and x^p spellings)."""
        if name in self._funs:
            return name
        if name in self._alias:
            return self._alias[name]
        p = _parse_power(name)
        if p is not None:
            canon = power_name(p)
            if canon not in self._funs and canon not in self._alias:
                t, s, safe = _power_forms(p)
                cplx = 2.0 + (0 if p.denominator == 1 else 2) + min(abs(p.numerator), 5) * 0.2
                self.register(canon, t, s, cplx, safe)
            return self._alias.get(canon, canon)
        close = difflib.get_close_matches(name, self.names(include_aliases=True), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise LibraryError(f"unknown symbolic function {name!r}{hint}")

    def __getitem__(self, name: str) -> SymbolicFunction:
        return self._funs[self.canonical_name(name)]

    def __contains__(self, name: str) -> bool:
        try:
            self.canonical_name(name)
        except LibraryError:
            return False
        return True

    def names(self, include_aliases: bool = False) -> list[str]:
        out = list(self._funs)
        if include_aliases:
            out += list(self._alias)
        return out


LIBRARY = FunctionLibrary()
_R = LIBRARY.register


def _build_default() -> None:
    for p, c in [(1, 1), (2, 2), (3, 3), (4, 3), (5, 3), (-1, 2), (-2, 2), (-3, 3), (-4, 4),
                 (-5, 5)]:
        t, s, safe = _power_forms(Fraction(p))
        aliases = {1: ("id", "identity", "x^1"), -1: ("x^-1",)}.get(p, ())
        _R(power_name(p), t, s, c, safe, aliases)
    t, s, safe = _power_forms(Fraction(1, 2))
    _R("sqrt", t, s, 2, safe, ("x^0.5", "x^1/2"))
    t, s, safe = _power_forms(Fraction(3, 2))
    _R("x^1.5", t, s, 4, safe, ("x^3/2",))
    t, s, safe = _power_forms(Fraction(-1, 2))
    _R("1/sqrt(x)", t, s, 4, safe, ("1/x^0.5", "x^-0.5", "x^-1/2"))
    _R("exp", torch.exp, sympy.exp, 2, _safe_exp)
    _R("log", torch.log, sympy.log, 2, _safe_log, ("ln",))
    _R("abs", torch.abs, sympy.Abs, 3, None, ("Abs",))
    _R("sin", torch.sin, sympy.sin, 2)
    _R("cos", torch.cos, sympy.cos, 2)
    _R("tan", torch.tan, sympy.tan, 3, _safe_tan)
    _R("tanh", torch.tanh, sympy.tanh, 3)
    _R("sgn", torch.sign, sympy.sign, 3, None, ("sign",))
    _R("arcsin", torch.arcsin, sympy.asin, 4, _safe_arcsin, ("asin",))
    _R("arccos", torch.arccos, sympy.acos, 4, _safe_arccos, ("acos",))
    _R("arctan", torch.arctan, sympy.atan, 4, None, ("atan",))
    _R("arctanh", torch.arctanh, sympy.atanh, 4, _safe_arctanh, ("atanh",))
    _R("0", torch.zeros_like, lambda x: sympy.Integer(0), 0, None, ("zero",))
    _R("gaussian", lambda x: torch.exp(-(x**2)), lambda x: sympy.exp(-(x**2)), 3)
    _R("cosh", torch.cosh, sympy.cosh, 2, _safe_cosh)
    _R("sinh", torch.sinh, sympy.sinh, 2, _safe_sinh)
    _R("sigmoid", torch.sigmoid, _sympy_sigmoid, 4)
    _R("arcsinh", torch.arcsinh, sympy.asinh, 4, None, ("asinh",))
    # MLP activations (kanir.from_torch lowers nn.SiLU/ReLU/GELU edges onto these)
    _R("silu", torch.nn.functional.silu, _sympy_silu, 4, None, ("swish",))
    _R("relu", torch.relu, _sympy_relu, 3)
    _R("gelu", torch.nn.functional.gelu, _sympy_gelu, 5)
    _R("gelu_tanh", _gelu_tanh, _sympy_gelu_tanh, 5)


_build_default()

#: The residual ("base") functions a spline edge may use, by the name models store, mapped to
#: their library entries: the torch backend and the sympy backend read both forms from here.
BASE_FUNCTION_ENTRIES: dict[str, str] = {
    "silu": "silu", "identity": "x", "zero": "0", "tanh": "tanh", "gelu": "gelu",
}

#: base function name -> its SymbolicFunction (torch form, sympy form)
BASE_FUNCTIONS: dict[str, SymbolicFunction] = {
    name: LIBRARY[entry] for name, entry in BASE_FUNCTION_ENTRIES.items()
}


def base_function(name: str) -> SymbolicFunction:
    """The library entry of base function ``name``; LibraryError names the known ones."""
    try:
        return BASE_FUNCTIONS[name]
    except (KeyError, TypeError):
        raise LibraryError(f"unknown base function {name!r}; choose one of "
                           f"{sorted(BASE_FUNCTIONS)}") from None


#: pykan's default auto_symbolic library (the names its SYMBOLIC_LIB lists).
DEFAULT_FIT_LIB: tuple[str, ...] = (
    "x", "x^2", "x^3", "x^4", "x^5", "1/x", "1/x^2", "1/x^3", "1/x^4", "1/x^5", "sqrt", "x^1.5",
    "1/sqrt(x)", "exp", "log", "abs", "sin", "cos", "tan", "tanh", "sgn", "arcsin", "arccos",
    "arctan", "arctanh", "0", "gaussian", "cosh", "sigmoid",
)


def register(name: str, torch_fn: TorchFn, sympy_fn: Callable, complexity: float = 3.0,
             safe: SafeFn | None = None, aliases: Iterable[str] = (),
             overwrite: bool = False) -> SymbolicFunction:
    """Register a user function in the global library (usable by every backend and pass)."""
    return LIBRARY.register(name, torch_fn, sympy_fn, complexity, safe, aliases, overwrite)


def get(name: str) -> SymbolicFunction:
    """Look up a library function by name or alias; unknown names raise LibraryError."""
    return LIBRARY[name]
