"""Simplifying and rounding read-back formulas without losing their exact constants.

``sympy.simplify`` turns every Rational into a Float as soon as one Float sits next to it
(``5*x**2/12 + 0.2778*log(y)`` becomes ``0.41667*x**2 + ...``), and rounding then cuts the
formerly exact constant. :func:`simplify_keeping_exact` hides the floats behind placeholder
symbols while sympy works, so exact numbers stay exact; :func:`round_floats` only ever touches
Floats. :func:`simplify_keeping_exact` also caps sympy's effort (operation counts, a time limit).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time

import sympy

#: CPU seconds sympy.simplify may spend on one formula (main thread only; see time_limit)
SIMPLIFY_SECONDS = 5.0


def simplify_keeping_exact(e: sympy.Expr, max_exact: int = 200, max_float: int = 60,
                           seconds: float | None = None) -> sympy.Expr:
    """sympy.simplify with the floats of ``e`` held as symbols, so Rationals, π, √2 ... stay
    exact. Skipped on formulas too large for it to finish quickly (at most ``max_exact``
    operations for exact formulas, ``max_float`` when floats are left) and given up after
    ``seconds`` (default SIMPLIFY_SECONDS): trigsimp on a 40-operation formula with floats took
    minutes here. The formula is returned unsimplified then, never lost."""
    floats = sorted(e.atoms(sympy.Float), key=lambda f: float(f))
    if sympy.count_ops(e) > (max_float if floats else max_exact):
        return e
    hide = {f: sympy.Dummy(f"c{k}", positive=bool(f > 0), negative=bool(f < 0))
            for k, f in enumerate(floats) if f != 0}
    try:
        with time_limit(SIMPLIFY_SECONDS if seconds is None else seconds):
            out = sympy.simplify(e.xreplace(hide))
    except (TypeError, ValueError, RecursionError, NotImplementedError, OutOfTime):
        return e
    return out.xreplace({d: f for f, d in hide.items()})


def round_floats(e: sympy.Expr, digits: int) -> sympy.Expr:
    """Round every Float of ``e`` to ``digits`` significant digits (exact numbers untouched)."""
    return e.xreplace({f: sympy.Float(f"{float(f):.{digits}g}", digits)
                       for f in e.atoms(sympy.Float)})


class OutOfTime(Exception):
    """Raised inside a computation that ran past its time limit."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Interrupt the block after ``seconds`` of wall time by raising OutOfTime in it. Uses
    SIGALRM, so it only acts in the main thread on POSIX; elsewhere the block runs unlimited
    (the operation-count caps of simplify_keeping_exact still apply)."""
    usable = (seconds > 0 and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def _raise(signum, frame):
        raise OutOfTime()

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
