"""Argument helpers shared by the ``kanir`` subcommands: ``--vars``, ``--ranges``, ``--seed``,
output paths, and the translation of library messages into the flags a CLI user typed."""

from __future__ import annotations

import math
import re

from kanir.errors import UsageError

DEFAULT_RANGE = (0.5, 2.0)

# Library messages name Python keywords; on the command line the user typed flags.
_FLAG_NAMES = [
    (re.compile(r"\bvariables=\[\.\.\.\]"), "--vars NAMES"),
    (re.compile(r"\bvariables="), "--vars"),
    (re.compile(r"""\bspline=['"]piecewise['"]"""), "--piecewise"),
]


def split_names(text: str) -> list[str]:
    """The names of ``--vars``: separated by commas and/or spaces."""
    names = [n.strip() for n in text.replace(" ", ",").split(",") if n.strip()]
    if not names:
        raise UsageError("--vars needs at least one name, e.g. --vars m0,v,c")
    return names


def parse_ranges(spec: str | None, names: list[str]) -> dict[str, tuple[float, float]]:
    """{name: (low, high)} from 'LOW:HIGH' (every variable) and 'name=LOW:HIGH' items
    (default 0.5:2); each variable and the default may be given once, with LOW < HIGH."""
    default, given = None, {}
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, _, text = item.rpartition("=")
        rng = _parse_range(text, item)
        if not name:
            if default is not None:
                raise UsageError(f"--ranges gives the range of every variable twice "
                                 f"('{_fmt(default)}' and '{item}'); give LOW:HIGH once")
            default = rng
        elif name not in names:
            raise UsageError(f"--ranges names '{name}', which is not an input variable; the "
                             f"variables are {', '.join(names) or 'none'}")
        elif name in given:
            raise UsageError(f"--ranges gives '{name}' twice ('{name}={_fmt(given[name])}' and "
                             f"'{item}'); give each variable once")
        else:
            given[name] = rng
    return {n: given.get(n, default or DEFAULT_RANGE) for n in names}


def _parse_range(text: str, item: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise UsageError(f"--ranges item '{item}' must look like LOW:HIGH or name=LOW:HIGH, "
                         "e.g. v=0.5:2") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise UsageError(f"--ranges item '{item}' needs finite LOW < HIGH")
    return lo, hi


def _fmt(rng: tuple[float, float]) -> str:
    return f"{rng[0]:g}:{rng[1]:g}"


def check_seed(seed: int) -> int:
    """Seeds are non-negative integers (numpy's generators accept no others)."""
    if seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {seed}")
    return seed


def flag_names(message: str) -> str:
    """``message`` with Python keyword arguments replaced by the matching command-line flags."""
    for pattern, flag in _FLAG_NAMES:
        message = pattern.sub(flag, message)
    return message


def write_error(flag: str, path, exc: OSError) -> UsageError:
    """The error for an output file that cannot be written (read-only place, path under a file)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return UsageError(f"{flag}: cannot write {str(path)!r}: {reason}")
