"""The 120 AI Feynman benchmark equations shipped with kanir (package data ``feynman.json``):
one :class:`FeynmanEquation` per equation, looked up by AI Feynman name, pykan name or pykan id.
"""

from __future__ import annotations

import difflib
import json
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources

import sympy
import torch

from kanir.errors import DatasetError

DATA_FILE = "feynman.json"
DATA_FORMAT = "kanir-feynman-1"


@dataclass(frozen=True)
class FeynmanEquation:
    """One benchmark equation: ``output = formula`` over ``variables``, each sampled uniformly in
    its ``ranges`` entry (the AI Feynman CSV ranges, not pykan's)."""

    name: str                               #: AI Feynman ``Filename``: "I.6.2a" … "test_20"
    formula: str                            #: right-hand side, readable by kanir.compile and sympy
    variables: tuple[str, ...]              #: input names in CSV column order
    ranges: tuple[tuple[float, float], ...]  #: (low, high) per variable
    output: str                             #: name of the left-hand side
    subset: str                             #: "main" (100 equations) or "bonus" (20)
    number: int                             #: the CSV ``Number`` column
    title: str | None                       #: bonus equations: the CSV ``Name`` column
    source_formula: str                     #: the formula as the CSV writes it
    pykan_id: int                           #: id in pykan 0.2.8's get_feynman_dataset (1-120)
    pykan_name: str                         #: name in pykan 0.2.8's get_feynman_dataset

    @property
    def n_var(self) -> int:
        return len(self.variables)

    @property
    def symbols(self) -> tuple[sympy.Symbol, ...]:
        """The variables as sympy Symbols, in order."""
        return tuple(sympy.Symbol(v) for v in self.variables)

    @cached_property
    def expr(self) -> sympy.Expr:
        """The formula as an exact sympy expression, read by kanir's formula grammar (so ``I``,
        ``gamma`` and ``beta`` are variables, not sympy's constants or functions)."""
        from kanir.grammar.formula import parse_formula

        return parse_formula(self.formula, variables=list(self.variables)).expr

    def torch_function(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """``f(x)`` for an (n, n_var) tensor, columns in ``variables`` order: the formula's
        values as an (n, 1) tensor of x's dtype, computed in float64."""
        from kanir.science.target import sympy_to_torch

        body = sympy_to_torch(self.expr, self.symbols)

        def f(x: torch.Tensor) -> torch.Tensor:
            return body(x.to(torch.float64)).unsqueeze(1).to(x.dtype)

        return f


def feynman(name: str | int | None = None):
    """All 120 equations as a tuple (the 100 main ones, then bonus ``test_1`` … ``test_20``), or
    the one called ``name``: its AI Feynman name ("I.6.2a"), pykan's name ("I.6.20a") or pykan's
    integer id (1-120). Raises :class:`DatasetError`, with the closest names, for anything else."""
    table = _table()
    if name is None:
        return table
    return table[_index_of(name)]


def _index_of(name) -> int:
    by_name, by_pykan_name, by_lower = _names()
    if isinstance(name, numbers.Integral) and not isinstance(name, bool):  # numpy ints too
        if 1 <= name <= len(_table()):
            return _pykan_ids()[int(name)]
        raise DatasetError(f"there is no Feynman equation with pykan id {name}; ids run from 1 to "
                           f"{len(_table())}")
    if not isinstance(name, str):
        raise DatasetError(f"a Feynman equation is named by a string or a pykan id (int), got "
                           f"{type(name).__name__} {name!r}")
    key = name.strip()
    for table in (by_name, by_pykan_name):  # AI Feynman names win: pykan reuses "I.18.4"
        if key in table:
            return table[key]
    if key.lower() in by_lower:
        return by_lower[key.lower()]
    known = list(dict.fromkeys([*by_name, *by_pykan_name]))  # most names are in both tables
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else (
        "; names look like 'I.6.2a', 'II.11.27', 'III.4.33' or 'test_1' (pykan's names and "
        "ids 1-120 work too)")
    raise DatasetError(f"unknown Feynman equation {name!r}{hint}")


@cache
def _table() -> tuple[FeynmanEquation, ...]:
    """The equations read once from the package data."""
    try:
        text = resources.files(__package__).joinpath(DATA_FILE).read_text(encoding="utf-8")
        data = json.loads(text)
        if data.get("format") != DATA_FORMAT:
            raise ValueError(f"format tag {data.get('format')!r}, expected {DATA_FORMAT!r}")
        return tuple(_equation(row) for row in data["equations"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DatasetError(f"kanir's Feynman data file ({__package__}/{DATA_FILE}) is missing or "
                           f"damaged ({type(err).__name__}: {err}); reinstall kanir") from err


def _equation(row: dict) -> FeynmanEquation:
    return FeynmanEquation(
        name=row["name"], formula=row["formula"],
        variables=tuple(v["name"] for v in row["variables"]),
        ranges=tuple((float(v["low"]), float(v["high"])) for v in row["variables"]),
        output=row["output"], subset=row["set"], number=int(row["number"]),
        title=row.get("title"), source_formula=row["source_formula"],
        pykan_id=int(row["pykan_id"]), pykan_name=row["pykan_name"])


@cache
def _names() -> tuple[dict, dict, dict]:
    """Name → index maps: AI Feynman names, pykan names, and both lower-cased where unambiguous."""
    by_name, by_pykan_name, lower = {}, {}, {}
    for i, eq in enumerate(_table()):
        by_name[eq.name] = i
        by_pykan_name.setdefault(eq.pykan_name, i)
    for table in (by_name, by_pykan_name):
        for key, i in table.items():
            lower.setdefault(key.lower(), set()).add(i)
    return by_name, by_pykan_name, {k: next(iter(v)) for k, v in lower.items() if len(v) == 1}


@cache
def _pykan_ids() -> dict[int, int]:
    return {eq.pykan_id: i for i, eq in enumerate(_table())}
