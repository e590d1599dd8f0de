"""Simplifying and rounding read-back formulas without losing their exact constants.

``sympy.simplify`` turns every Rational into a Float as soon as one Float sits next to it
(``5*x**2/12 + 0.2778*log(y)`` becomes ``0.41667*x**2 + ...``), and rounding then cuts the
formerly exact constant. :func:`simplify_keeping_exact` hides the floats behind placeholder
symbols while sympy works, so exact numbers stay exact; :func:`round_floats` only ever touches
Floats.

sympy.simplify has no time limit of its own, and kanir sets none (no signals, no threads): its
effort is bounded by an operation-count budget instead. ``simplify="auto"`` (the default of
``KAN.formula``) runs it only on formulas within :data:`MAX_OPS_EXACT` operations, or
:data:`MAX_OPS_FLOAT` when floats are left; ``True`` runs it whatever the size (the caller
accepts the cost); ``False`` never runs it. Where a hard limit is needed (``kanir.discover``
under its budget), :func:`time_limit` runs sympy.simplify in a forked child process that is
killed when the limit passes; the formula then stays unsimplified.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import pickle
import select
import signal
from typing import Literal

import sympy

from kanir.errors import ArgumentError

#: operation budget (sympy.count_ops) of simplify="auto" for formulas whose constants are exact
MAX_OPS_EXACT = 200
#: ... and for formulas with floats left: trigsimp ran for minutes on a 41-operation formula
#: with 14 floats (a Feynman run), so the cap sits well below that
MAX_OPS_FLOAT = 30

SimplifyMode = bool | Literal["auto"]

#: seconds one sympy.simplify may take in this context (None: no limit); see time_limit
_LIMIT: contextvars.ContextVar[float | None] = contextvars.ContextVar("simplify_limit",
                                                                      default=None)


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Within this block every :func:`simplify_keeping_exact` runs sympy.simplify in a forked
    child process and gives up after ``seconds`` (the formula stays unsimplified): sympy's
    trigsimp/factor can run for minutes on a 20-operation formula with fitted constants.
    Where a process cannot fork, simplify is skipped within the block. ``None`` lifts the limit."""
    if seconds is not None and not seconds > 0:
        raise ArgumentError(f"time_limit needs seconds > 0 or None, got {seconds!r}")
    if seconds is not None:
        _warm_up()
    token = _LIMIT.set(seconds)
    try:
        yield
    finally:
        _LIMIT.reset(token)


_WARM = False


def _warm_up() -> None:
    """One small simplify in this process, so that the modules sympy imports lazily (trigsimp,
    factor, ...) are loaded before any fork: each child would otherwise import them anew
    (130 ms a call instead of 30 ms)."""
    global _WARM
    if not _WARM:
        t = sympy.Symbol("t", positive=True)
        sympy.simplify(sympy.sin(t) ** 2 + sympy.cos(t) ** 2 + sympy.exp(t) * sympy.sqrt(t)
                       / (1 + t) + sympy.log(2 * t) + sympy.cosh(t) * 0.5)
        _WARM = True


def _simplify_limited(e: sympy.Expr, seconds: float):
    """sympy.simplify(e) in a forked child, or None when it takes longer than ``seconds``,
    fails, or no child can be started (the pipe carries the result pickled between this
    process and its own fork, never from a file)."""
    if not hasattr(os, "fork"):
        return None
    read, write = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read)
        os.close(write)
        return None
    if pid == 0:  # the child: simplify, send, leave without running any exit handler
        code = 1
        try:
            os.close(read)
            with os.fdopen(write, "wb") as out:
                pickle.dump(sympy.simplify(e), out)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    try:
        with os.fdopen(read, "rb") as inp:
            ready, _, _ = select.select([inp], [], [], seconds)
            if not ready:
                return None
            chunks = []
            while chunk := inp.read(1 << 16):  # the child writes it all at once, then exits
                chunks.append(chunk)
        data = b"".join(chunks)
        return pickle.loads(data) if data else None  # noqa: S301 - our own child's pipe
    except (OSError, EOFError, pickle.UnpicklingError):
        return None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def simplify_mode(value) -> SimplifyMode:
    """Check a ``simplify`` argument: True, False or "auto"; anything else is an ArgumentError."""
    if value is True or value is False or value == "auto":
        return value
    raise ArgumentError(f"simplify must be True, False or 'auto' (simplify only formulas of at "
                        f"most {MAX_OPS_EXACT} operations, {MAX_OPS_FLOAT} with floats), "
                        f"got {value!r}")


def within_budget(e: sympy.Expr, max_exact: int = MAX_OPS_EXACT,
                  max_float: int = MAX_OPS_FLOAT) -> bool:
    """Whether ``e`` is small enough for simplify="auto": at most ``max_exact`` operations when its
    constants are exact, ``max_float`` when it has floats."""
    has_floats = bool(e.atoms(sympy.Float))
    return sympy.count_ops(e) <= (max_float if has_floats else max_exact)


def simplify_within_limit(e: sympy.Expr) -> sympy.Expr | None:
    """sympy.simplify(e) within the current :func:`time_limit`; None when sympy fails on it or
    the limit passed."""
    limit = _LIMIT.get()
    try:
        return sympy.simplify(e) if limit is None else _simplify_limited(e, limit)
    except (TypeError, ValueError, RecursionError, NotImplementedError):
        return None


def simplify_keeping_exact(e: sympy.Expr, simplify: SimplifyMode = "auto",
                           max_exact: int = MAX_OPS_EXACT,
                           max_float: int = MAX_OPS_FLOAT) -> sympy.Expr:
    """sympy.simplify with the floats of ``e`` held as symbols, so Rationals, π, √2 ... stay
    exact. ``simplify``: "auto" skips formulas outside the operation budget (see
    :func:`within_budget`), True always simplifies, False returns ``e``. A formula sympy cannot
    simplify (or one skipped, or one past :func:`time_limit`) is returned unsimplified, never
    lost. Thread-safe."""
    simplify = simplify_mode(simplify)
    if simplify is False or (simplify == "auto" and not within_budget(e, max_exact, max_float)):
        return e
    floats = sorted(e.atoms(sympy.Float), key=lambda f: float(f))
    hide = {f: sympy.Dummy(f"c{k}", positive=bool(f > 0), negative=bool(f < 0))
            for k, f in enumerate(floats) if f != 0}
    out = simplify_within_limit(e.xreplace(hide))
    if out is None:
        return e
    return out.xreplace({d: f for f, d in hide.items()})


def round_floats(e: sympy.Expr, digits: int) -> sympy.Expr:
    """Round every Float of ``e`` to ``digits`` significant digits (exact numbers untouched)."""
    return e.xreplace({f: sympy.Float(f"{float(f):.{digits}g}", digits)
                       for f in e.atoms(sympy.Float)})
