"""The module-spec language: ``"[0,1]->[0,1]->[0,1]->[0]"`` to index groups, read in pairs.

The grammar is ``module_spec.lark``. Groups alternate between the nodes of a node layer (the in
side of a KAN layer) and the subnodes of the next node layer (its out side), so a spec with 2n
groups constrains n consecutive KAN layers. This module only reads the text; checking the
indices against a model is :func:`kanir.passes.modules.module`'s job, which reports problems at
the column of the offending index through :meth:`ModuleSpec.error`.

Examples
--------
>>> spec = parse_module_spec("[0,1]->[0,1]->[0,1]->[0]")
>>> spec.n_layers, spec.groups[3].indices
(2, (0,))
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..errors import ModuleSpecError

__all__ = ["Group", "ModuleSpec", "ModuleSpecError", "parse_module_spec"]

_WORDS = {"ARROW": "'->'", "LBRACK": "'['", "RBRACK": "']'", "COMMA": "','",
          "INDEX": "an integer index", "$END": "the end of the spec"}


@dataclass(frozen=True)
class Group:
    """One bracketed group: its indices, the 1-based column of each, and of its '['."""

    indices: tuple[int, ...]
    columns: tuple[int, ...]
    column: int


@dataclass(frozen=True)
class ModuleSpec:
    """A parsed spec: the source text and its groups (an even number, none empty)."""

    text: str
    groups: tuple[Group, ...]

    @property
    def n_layers(self) -> int:
        """How many consecutive KAN layers the spec constrains (one per pair of groups)."""
        return len(self.groups) // 2

    def pairs(self) -> list[tuple[Group, Group]]:
        """(in-side group, out-side group) for each constrained layer, in order."""
        g = self.groups
        return [(g[2 * p], g[2 * p + 1]) for p in range(self.n_layers)]

    def error(self, column: int | None, message: str) -> ModuleSpecError:
        """A ModuleSpecError whose message shows the spec with a caret under ``column``."""
        return ModuleSpecError(_located(self.text, column, message), column)


def _located(text: str, column: int | None, message: str) -> str:
    if column is None:
        return f"module spec {text!r}: {message}"
    return f"module spec, column {column}: {message}\n    {text}\n    {' ' * (column - 1)}^"


@cache
def _parser() -> Lark:
    grammar = (Path(__file__).with_name("module_spec.lark")).read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse_module_spec(text: str) -> ModuleSpec:
    """Read a module spec; raise :class:`ModuleSpecError` (a PassError) naming the column."""
    if not isinstance(text, str):
        raise ModuleSpecError(f"a module spec must be a string such as '[0,1]->[0,1]', got "
                              f"{type(text).__name__} {text!r}")
    if "\n" in text or "\r" in text:
        raise ModuleSpecError(f"a module spec is one line, got {text!r}")
    if not text.strip():
        raise ModuleSpecError("the module spec is empty; write e.g. '[0,1]->[0,1]'")
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as e:
        raise _syntax_error(text, e) from None
    groups = tuple(_group(text, g) for g in tree.children if not isinstance(g, Token))
    spec = ModuleSpec(text, groups)
    for g in groups:
        if not g.indices:
            raise spec.error(g.column, "empty group: every group needs at least one index")
        seen: set[int] = set()
        for idx, col in zip(g.indices, g.columns):
            if idx in seen:
                raise spec.error(col, f"index {idx} appears twice in one group")
            seen.add(idx)
    if len(groups) < 2 or len(groups) % 2:
        raise spec.error(None, f"it has {len(groups)} group(s), but groups come in pairs "
                               "(in-side nodes -> out-side subnodes), one pair per layer, so the "
                               "count must be even and at least 2, e.g. '[0,1]->[0,1]'")
    return spec


def _group(text: str, tree) -> Group:
    toks = [t for t in tree.children if isinstance(t, Token)]
    idx = tuple(int(t) for t in toks if t.type == "INDEX")
    cols = tuple(t.column for t in toks if t.type == "INDEX")
    return Group(idx, cols, tree.meta.column)


def _syntax_error(text: str, e: UnexpectedInput) -> ModuleSpecError:
    col = getattr(e, "column", None)
    if isinstance(e, UnexpectedCharacters):
        msg = f"unexpected character {text[e.pos_in_stream]!r}"
    elif isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken)
                                          and e.token.type == "$END"):
        msg, col = "the spec ends too early", len(text) + 1
    else:
        msg = f"unexpected {str(e.token)!r}"
    expected = sorted({_WORDS.get(t, t) for t in (getattr(e, "expected", None) or
                                                   getattr(e, "allowed", None) or ())})
    if expected:
        msg += f"; expected {' or '.join(expected)}"
    if not isinstance(col, int) or col < 1:
        col = None
    return ModuleSpecError(_located(text, col, msg), col)
