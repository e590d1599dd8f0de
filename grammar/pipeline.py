"""The pass pipeline language: ``"prune{edge_th=0.05},auto-swap,canonicalize"`` to a list of
:class:`PipelineItem` (pass name, options, and where each sits in the text).

The grammar is ``pipeline.lark``. This module only reads the text; whether the names are
registered passes and the values fit the options' types is checked by
:func:`kanir.passes.manager.parse_pipeline`, which reports problems with a caret under the
offending column through :class:`kanir.errors.PipelineError`.

Examples
--------
>>> items = parse_pipeline_text("prune{edge_th=0.05},auto-swap")
>>> [(i.name, {o.name: o.value.value for o in i.options}) for i in items]
[('prune', {'edge_th': 0.05}), ('auto-swap', {})]
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..errors import PipelineError

__all__ = ["Literal", "OptionText", "PipelineItem", "parse_pipeline_text"]

_WORDS = {"NAME": "a name", "NUMBER": "a number", "STRING": "a quoted string", "COMMA": "','",
          "EQUAL": "'='", "LBRACE": "'{'", "RBRACE": "'}'", "LBRACK": "'['", "RBRACK": "']'",
          "$END": "the end of the pipeline"}


@dataclass(frozen=True)
class Literal:
    """An option value as written: ``kind`` is int, float, bool, none, word (a bare name), str
    (quoted) or list (``value`` then holds Literals); ``column`` is 1-based."""

    kind: str
    value: object
    column: int

    def python(self):
        """The plain Python value (lists of plain values, words as str)."""
        if self.kind == "list":
            return [v.python() for v in self.value]
        return self.value

    def describe(self) -> str:
        """How the value reads in an error message, e.g. ``bool true`` or ``str 'abc'``."""
        if self.kind == "list":
            return "a list"
        if self.kind == "bool":
            return f"bool {'true' if self.value else 'false'}"
        if self.kind == "none":
            return "none"
        return f"{'str' if self.kind == 'word' else self.kind} {self.value!r}"


@dataclass(frozen=True)
class OptionText:
    """``name=value`` inside a pass's braces, with the column of the name."""

    name: str
    value: Literal
    column: int


@dataclass(frozen=True)
class PipelineItem:
    """One pass of the pipeline as written: its name, its options, the column of the name."""

    name: str
    options: tuple[OptionText, ...]
    column: int


@cache
def _parser() -> Lark:
    grammar = Path(__file__).with_name("pipeline.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse_pipeline_text(text: str) -> list[PipelineItem]:
    """Read pipeline text; raise :class:`PipelineError` with a caret on bad syntax."""
    if not isinstance(text, str):
        raise PipelineError(f"a pipeline must be text such as 'prune,auto-swap', got "
                            f"{type(text).__name__} {text!r}")
    if "\n" in text or "\r" in text:
        raise PipelineError(f"a pipeline is one line, got {text!r}")
    if not text.strip():
        raise PipelineError("the pipeline is empty; write e.g. 'prune{edge_th=0.05},auto-swap'")
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as e:
        raise _syntax_error(text, e) from None
    return [_item(t) for t in tree.children if isinstance(t, Tree)]


def _item(tree: Tree) -> PipelineItem:
    name = tree.children[0]
    opts = []
    for part in tree.children[1:]:
        for opt in (c for c in part.children if isinstance(c, Tree)):
            key, value = opt.children[0], opt.children[2]
            opts.append(OptionText(str(key), _literal(value), key.column))
    return PipelineItem(str(name), tuple(opts), name.column)


def _literal(node) -> Literal:
    tok = node.children[0] if node.data != "list" else None
    if node.data == "list":
        return Literal("list", tuple(_literal(c) for c in node.children if isinstance(c, Tree)),
                       node.meta.column)
    text = str(tok)
    if node.data == "string":
        return Literal("str", text[1:-1], tok.column)
    if node.data == "word":
        low = text.lower()
        if low in ("true", "false"):
            return Literal("bool", low == "true", tok.column)
        if low == "none":
            return Literal("none", None, tok.column)
        return Literal("word", text, tok.column)
    if any(c in text for c in ".eE"):
        return Literal("float", float(text), tok.column)
    return Literal("int", int(text), tok.column)


def _syntax_error(text: str, e: UnexpectedInput) -> PipelineError:
    col = getattr(e, "column", None)
    if isinstance(e, UnexpectedCharacters):
        msg = f"unexpected character {text[e.pos_in_stream]!r}"
    elif isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken)
                                          and e.token.type == "$END"):
        msg, col = "the pipeline ends too early", len(text) + 1
    else:
        tok = e.token if isinstance(e.token, Token) else None
        msg = f"unexpected {str(tok)!r}" if tok is not None else "unexpected input"
    expected = sorted({_WORDS.get(t, t) for t in (getattr(e, "expected", None) or
                                                   getattr(e, "allowed", None) or ())})
    if expected:
        msg += f"; expected {' or '.join(expected)}"
    if not isinstance(col, int) or col < 1:
        col = None
    return PipelineError(f"bad pipeline syntax: {msg}", text, col)
