"""kanir's textual IR: :func:`to_text` prints a KanGraph, :func:`parse_ir` reads it back exactly.

The grammar is ``grammar/ir.lark``; docs/ir_text.md describes the format. Numbers are printed
so that reading them gives the same value bit for bit: Python's ``repr`` for floats (the
shortest text that reads back to the same float64), numpy's shortest float32 text for float32
arrays; ``nan``, ``inf`` and ``-inf`` are numbers too, so the printer never fails on a broken
graph (``parse_ir(text, check=False)`` reads such a graph back). Knot vectors and coefficients
sit in an ``arrays`` block at the end, named by the node or edge that first uses them.
"""

from __future__ import annotations

import json
import math
import re
from functools import cache
from pathlib import Path

import networkx as nx
import numpy as np
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from kanir.errors import GraphError, IRSyntaxError, LibraryError
from kanir.grammar.formula import _located  # the shared "message, source line, caret" layout
from kanir.ir.activation import Activation, SplinePart, SymbolicPart
from kanir.ir.graph import KanGraph
from kanir.ir.library import LIBRARY

__all__ = ["TEXT_VERSION", "parse_ir", "symbolic_text", "to_text", "value_text"]

TEXT_VERSION = 1
LEVELS = ("layered", "expr")

#: Words the grammar uses as keywords; names spelled like them are printed as quoted strings.
RESERVED = frozenset({"meta", "layer", "node", "subnode", "edge", "wire", "arrays", "spline",
                      "zero", "x", "true", "false", "null", "nan", "inf", "f64", "f32", "i64"})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PREFIX = re.compile(r"[A-Za-z_]+\Z")
_INT_TEXT = re.compile(r"[+-]?\d+\Z")
_NUMBER = r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|nan|inf)"  # as NUMBER in ir.lark
_ARRAY_BODY = re.compile(rf"\s*(?:{_NUMBER}\s*(?:,\s*{_NUMBER}\s*)*)?\Z")
_DTYPES = {"f64": np.float64, "f32": np.float32, "i64": np.int64}
_DTYPE_NAMES = {np.dtype(t): name for name, t in _DTYPES.items()}
_SPLINE_KEYS = ("G", "k", "range", "knots", "coef", "scale_base", "scale_sp", "base_fun", "active")


# ============================================================================ printing
def to_text(graph: KanGraph) -> str:
    """The graph as kanir IR text (see docs/ir_text.md); ``parse_ir`` reads it back exactly."""
    return _Printer(graph).text()


def _float_text(v: float) -> str:
    return repr(float(v))


def _number_text(v) -> str:
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, int | np.integer):
        return str(int(v))
    return _float_text(v)


def _name_text(s: str) -> str:
    """A name bare when the grammar reads it as a name, else as a quoted string."""
    return s if _IDENT.match(s) and s not in RESERVED else json.dumps(s)


def _array_text(a: np.ndarray) -> str:
    name = _DTYPE_NAMES.get(a.dtype)
    if name is None or a.ndim != 1:
        raise GraphError(f"cannot print an array of dtype {a.dtype} and shape {a.shape}; the IR "
                         f"text holds 1-d float64, float32 or int64 arrays")
    if name == "f32":
        items = [str(v) for v in a]  # numpy's shortest text that reads back to the same float32
    elif name == "f64":
        items = [repr(v) for v in a.tolist()]
    else:
        items = [str(v) for v in a.tolist()]
    return f"{name}[{', '.join(items)}]"


def value_text(v) -> str:
    """A JSON-like value (None, bool, int, float, str, list, tuple, dict with str keys, 1-d array)
    as IR text; tuples stay tuples and floats are exact."""
    if v is None:
        return "null"
    if isinstance(v, bool | np.bool_ | int | np.integer | float | np.floating):
        return _number_text(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(map(value_text, v)) + "]"
    if isinstance(v, tuple):
        return "(" + value_text(v[0]) + ",)" if len(v) == 1 else \
            "(" + ", ".join(map(value_text, v)) + ")"
    if isinstance(v, dict):
        for k in v:
            if not isinstance(k, str):
                raise GraphError(f"cannot print a dict with the non-string key {k!r}")
        return "{" + ", ".join(f"{json.dumps(k)}: {value_text(x)}" for k, x in v.items()) + "}"
    if isinstance(v, np.ndarray):
        return _array_text(v)
    raise GraphError(f"cannot print a value of type {type(v).__name__} ({v!r:.60}) as IR text")


def _attrs_text(attrs: dict, skip=()) -> str:
    return "".join(f" {_name_text(str(k)) if isinstance(k, str) else _bad_key(k)}={value_text(v)}"
                   for k, v in attrs.items() if k not in skip)


def _bad_key(k):
    raise GraphError(f"cannot print the attribute key {k!r}: attribute names are strings")


def _is_float(v, target: float) -> bool:
    """v is a float equal to target with target's sign (so 1.0 and +0.0 may be left out)."""
    return (isinstance(v, float | np.floating) and not isinstance(v, bool) and v == target
            and math.copysign(1.0, v) == math.copysign(1.0, target))


def _offset_text(v) -> str:
    """' + 0.5' / ' - 0.5' for an additive constant; empty for +0.0."""
    if _is_float(v, 0.0):
        return ""
    if isinstance(v, int | np.integer) and not isinstance(v, bool):
        negative = v < 0
    else:
        negative = math.copysign(1.0, float(v)) < 0
    return f" {'-' if negative else '+'} {_number_text(abs(v))}"


def symbolic_text(s: SymbolicPart) -> str:
    """``c*f(a*x + b) + d`` with a=1, b=0, c=1, d=0 (as floats) left out; f="x" prints no call."""
    inner = ("x" if _is_float(s.a, 1.0) else f"{_number_text(s.a)}*x") + _offset_text(s.b)
    if not isinstance(s.fun, str):
        raise GraphError(f"cannot print the symbolic function {s.fun!r}: names are strings")
    if s.fun == "x":
        callee = "x" if inner == "x" else f"({inner})"
    else:
        callee = f"{_name_text(s.fun)}({inner})"
    head = callee if _is_float(s.c, 1.0) else f"{_number_text(s.c)}*{callee}"
    return head + _offset_text(s.d)


class _Printer:
    """Lays the graph out: header, metadata, layers (or plain node lists), then the arrays."""

    def __init__(self, graph: KanGraph):
        self.g = graph
        self.lines: list[str] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.knots: dict[tuple, str] = {}
        self.wired: set[tuple] = set()  # wire edges printed on their subnode's line

    def text(self) -> str:
        g = self.g
        self.lines.append(f"kanir-ir {TEXT_VERSION} {g.level}")
        for k, v in g.meta.items():
            if not isinstance(k, str):
                _bad_key(k)
            self.lines.append(f"meta {_name_text(k)} = {value_text(v)}")
        nodes = sorted(g.nx.nodes, key=_node_key)
        short = [n for n in nodes if self._short(n)] if g.level == "layered" else []
        rest = [n for n in nodes if n not in set(short)]
        done_edges: set[tuple] = set()
        layers = sorted({n[1] for n in short})
        for l in layers:
            self.lines += ["", f"layer {l}"]
            for n in (m for m in short if m[1] == l and m[0] == "n"):
                self.lines.append("  " + self._node_line(n, short=True))
            for n in (m for m in short if m[1] == l and m[0] == "s"):
                self.lines.append("  " + self._node_line(n, short=True))
            edges = sorted((e for e in g.nx.edges if _lij(e) and e[1][1] == l
                            and e not in self.wired), key=_lij)
            for e in edges:
                self.lines.append("  " + self._edge_line(*e))
                done_edges.add(e)
        if rest:
            self.lines.append("")
            for n in rest:
                self.lines.append(self._node_line(n, short=False))
                for e in sorted(g.nx.in_edges(n), key=lambda e: _node_key(e[0])):
                    if e not in self.wired and e not in done_edges and not self._is_plain_wire(e):
                        self.lines.append("  " + self._edge_line(*e))
                        done_edges.add(e)
        others = [e for e in g.nx.edges if e not in self.wired and e not in done_edges]
        if others:
            self.lines.append("")
            for e in sorted(others, key=lambda e: (_node_key(e[0]), _node_key(e[1]))):
                self.lines.append(self._edge_line(*e))
        if self.arrays:
            self.lines += ["", "arrays"]
            self.lines += [f"  {name} = {_array_text(a)}" for name, a in self.arrays.items()]
        return "\n".join(self.lines) + "\n"

    def _short(self, n) -> bool:
        """Whether node n prints as 'node i' / 'subnode j' under its 'layer l' line."""
        a = self.g.nx.nodes[n]
        return (isinstance(n, tuple) and len(n) == 3 and n[0] in ("n", "s")
                and all(_is_index(x) for x in n[1:]) and a.get("layer") == n[1]
                and a.get("index") == n[2] and type(a.get("layer")) is int
                and type(a.get("index")) is int
                and (a.get("kind") == "subnode") == (n[0] == "s"))

    def _is_plain_wire(self, e) -> bool:
        a = self.g.nx.edges[e]
        return (len(a) == 1 and a.get("wire") is True
                and self.g.nx.nodes[e[0]].get("kind") == "subnode")

    def _node_line(self, n, short: bool) -> str:
        a = self.g.nx.nodes[n]
        kind = a.get("kind")
        ident = str(n[2]) if short else _ref_text(n)
        if kind == "subnode":
            targets = sorted((e[1] for e in self.g.nx.out_edges(n) if self._is_plain_wire(e)),
                             key=_node_key)
            self.wired.update((n, t) for t in targets)
            arrow = ""
            if targets:
                arrow = " -> " + ", ".join(
                    str(t[2]) if short and _is_layered_id(t, "n", n[1]) else _ref_text(t)
                    for t in targets)
            skip = ("kind", "layer", "index") if short else ("kind",)
            return f"subnode {ident}{arrow}{_attrs_text(a, skip)}"
        if not isinstance(kind, str):
            raise GraphError(f"cannot print node {n}: its kind {kind!r} is not a string")
        skip = ("kind", "layer", "index") if short else ("kind",)
        return f"node {ident} {_name_text(kind)}{_attrs_text(a, skip)}"

    def _edge_line(self, u, v) -> str:
        a = self.g.nx.edges[u, v]
        lij = _lij((u, v))
        ends = f"({lij[0]},{lij[1]},{lij[2]})" if lij else f"{_ref_text(u)} -> {_ref_text(v)}"
        act = a.get("act")
        if a.get("wire") is True and "act" not in a:
            return f"wire {_ref_text(u)} -> {_ref_text(v)}{_attrs_text(a, ('wire',))}"
        if not isinstance(act, Activation):
            return f"edge {ends}{_attrs_text(a)}"
        return f"edge {ends} = {self._function_text(act, u, v)}{_attrs_text(a, ('act',))}"

    def _function_text(self, act: Activation, u, v) -> str:
        parts = []
        if act.symbolic is not None:
            parts.append(symbolic_text(act.symbolic))
        if act.spline is not None:
            parts.append(self._spline_text(act.spline, u, v))
        text = " + ".join(parts) if parts else "zero"
        if act.meta:
            text += f" meta={value_text(act.meta)}"
        return text

    def _spline_text(self, sp: SplinePart, u, v) -> str:
        grid, coef = np.asarray(sp.grid), np.asarray(sp.coef)
        lij = _lij((u, v))
        fields = []
        k = sp.k
        if isinstance(k, int) and not isinstance(k, bool) and grid.ndim == 1 \
                and k >= 0 and grid.size >= 2 * k + 2:
            ends = grid[[k, grid.size - k - 1]]
            fields += [f"G={grid.size - 2 * k - 1}", f"k={k}"]
            if ends.dtype in _DTYPE_NAMES:
                fields.append(f"range={_array_text(ends)[3:]}")
        else:
            fields.append(f"k={value_text(k)}")
        knot_key = (grid.dtype.str, grid.shape, grid.tobytes())
        if knot_key not in self.knots:
            name = f"@k{lij[0]}.{lij[1]}" if lij else f"@k{len(self.knots)}"
            while name in self.arrays:
                name += "_"
            self.knots[knot_key] = name
            self.arrays[name] = grid
        coef_name = f"@c{lij[0]}.{lij[1]}.{lij[2]}" if lij else f"@c{len(self.arrays)}"
        while coef_name in self.arrays:
            coef_name += "_"
        self.arrays[coef_name] = coef
        fields += [f"knots={self.knots[knot_key]}", f"coef={coef_name}",
                   f"scale_base={value_text(sp.scale_base)}",
                   f"scale_sp={value_text(sp.scale_sp)}", f"base_fun={value_text(sp.base_fun)}"]
        if sp.active is not True:
            fields.append(f"active={value_text(sp.active)}")
        return "spline(" + ", ".join(fields) + ")"


def _is_index(x) -> bool:
    return type(x) is int and x >= 0


def _is_layered_id(n, prefix: str, layer: int) -> bool:
    return (isinstance(n, tuple) and len(n) == 3 and n[0] == prefix and n[1] == layer
            and _is_index(n[2]))


def _lij(e) -> tuple | None:
    """(l, i, j) when edge e runs from node ('n', l, i) to subnode ('s', l+1, j), else None."""
    u, v = e
    if (isinstance(u, tuple) and len(u) == 3 and u[0] == "n" and _is_index(u[1])
            and _is_index(u[2]) and _is_layered_id(v, "s", u[1] + 1)):
        return (u[1], u[2], v[2])
    return None


def _node_key(n):
    """Sort key: by the numbers, then the prefix (v3 before u3.0 before u3.1 before v4); ids
    of other shapes sort by their repr (they cannot be printed, which to_text then says)."""
    if isinstance(n, tuple) and n and all(type(x) is int for x in n[1:]):
        return (n[1:], str(n[0]), "")
    return ((), "", repr(n))


def _ref_text(n) -> str:
    if (isinstance(n, tuple) and len(n) >= 2 and isinstance(n[0], str) and _PREFIX.match(n[0])
            and all(isinstance(x, int | np.integer) and not isinstance(x, bool) and x >= 0
                    for x in n[1:])):
        return "%" + n[0] + ".".join(str(int(x)) for x in n[1:])
    raise GraphError(f"cannot print node id {n!r}: the IR text names nodes by a tuple of a "
                     f"prefix of letters and non-negative ints, such as ('v', 3) or ('u', 3, 0)")


# ============================================================================ parsing
@cache
def _parser() -> Lark:
    import kanir.grammar  # the grammar folder, installed as the package kanir.grammar

    grammar = Path(kanir.grammar.__file__).with_name("ir.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", maybe_placeholders=False)


def parse_ir(text: str, check: bool = True) -> KanGraph:
    """Read kanir IR text into a KanGraph and ``check()`` it (skip that with ``check=False``).

    Syntax errors and statements that do not fit (unknown function, an edge to a missing node,
    a repeated node or edge) raise :class:`IRSyntaxError` naming the line and column."""
    if not isinstance(text, str):
        raise IRSyntaxError(f"parse_ir needs IR text (a str), got {type(text).__name__}", 1, 1)
    source = text if text.endswith("\n") else text + "\n"
    try:
        tree = _parser().parse(source)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, source) from None
    try:
        graph = _Builder(source, check).build(tree)
    except _TokenError as exc:
        raise _error(exc.what, source, exc.token.line, exc.token.column) from None
    except RecursionError:
        raise IRSyntaxError("the IR text nests values too deeply to read", 1, 1) from None
    if check:
        graph.check()
    return graph


_WORDS = {"_NL": "the end of the line", "NAME": "a name", "STRING": "a string",
          "NUMBER": "a number", "INT": "an integer", "NODE_REF": "a node such as %v3",
          "ARRAY_REF": "an array name such as @k0.0", "EQUAL": "'='", "LPAR": "'('",
          "RPAR": "')'", "COMMA": "','", "LSQB": "'['", "RSQB": "']'", "LBRACE": "'{'",
          "ARRAY": "an array such as f64[1.0, 2.5]", "RBRACE": "'}'", "PLUS": "'+'",
          "MINUS": "'-'", "STAR": "'*'",
          "$END": "the end of the text", "COLON": "':'"}


def _syntax_error(exc: UnexpectedInput, text: str) -> IRSyntaxError:
    line, column = exc.line, exc.column
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        if tok.type == "$END":
            what = "unexpected end of the text"
            line, column = max(1, text.count("\n")), 1
        elif tok.type == "_NL":
            what = "unexpected end of the line"
        else:
            what = f"unexpected {tok.value!r}"
        names = sorted(exc.expected or ())
    elif isinstance(exc, UnexpectedCharacters):
        what = f"unexpected character {text[exc.pos_in_stream]!r}"
        names = sorted(exc.allowed or ())
    else:
        what, names = "unexpected input", []
    words = sorted({_WORDS.get(n) or _terminal_text(n) for n in names})
    expected = f"; expected {', '.join(words[:8])}{' or more' if len(words) > 8 else ''}" \
        if words else ""
    return _error(f"{what}{expected}", text, line, column)


def _terminal_text(name: str) -> str:
    """A terminal's text for messages: 'node' for a keyword, its name otherwise."""
    try:
        pattern = _parser().get_terminal(name).pattern
    except KeyError:
        return name
    return repr(pattern.value) if pattern.type == "str" else name


def _error(what: str, text: str, line: int, column: int) -> IRSyntaxError:
    message = f"IR syntax error at line {line}, column {column}: {what}"
    return IRSyntaxError(_located(message, text, line, column), line, column)


class _TokenError(Exception):
    """A token that the grammar accepts but whose value cannot be read (found while building)."""

    def __init__(self, token: Token, what: str):
        super().__init__(what)
        self.token, self.what = token, what


def _string(tok: Token) -> str:
    if "\\" not in tok:
        return tok[1:-1]  # the common case; the grammar admits no raw quote or new line
    try:
        return json.loads(str(tok))
    except ValueError as e:
        raise _TokenError(tok, f"malformed string {str(tok)[:40]} ({e.args[0].split(':')[0]})") \
            from None


class _Ref:
    """A reference to an @array, resolved when every array has been read."""

    def __init__(self, token: Token):
        self.name, self.token = str(token), token


class _Builder:
    """Parse tree -> KanGraph; statements may come in any order (edges before their nodes)."""

    def __init__(self, text: str, check: bool):
        self.text, self.check = text, check
        self.layer: int | None = None
        self.level = "layered"
        self.meta: dict = {}
        self.nodes: dict = {}  # id -> attrs
        self.where: dict = {}  # node id -> line of its statement, for "first at line ..."
        self.edges: dict = {}  # (u, v) -> attrs
        self.edge_at: dict = {}  # (u, v) -> (line, column) of its statement
        self.arrays: dict = {}
        self.splines: list = []  # (SplinePart, {field: (value or _Ref, name token)})

    # ---------------------------------------------------------------- errors
    def fail(self, what: str, at) -> IRSyntaxError:
        return _error(what, self.text, at.line, at.column)

    # ---------------------------------------------------------------- statements
    def build(self, tree: Tree) -> KanGraph:
        header, *statements = tree.children
        self.header(header)
        for st in statements:
            getattr(self, st.data)(st)
        for part, kw in self.splines:
            part.grid = self.resolve(kw["knots"])
            part.coef = self.resolve(kw["coef"])
            self.check_summary(part, kw)
        for (u, v), at in self.edge_at.items():
            for n in (u, v):
                if n not in self.nodes:
                    raise _error(f"edge {_show(u)} -> {_show(v)} refers to the node {_show(n)}, "
                                 f"which no statement defines", self.text, *at)
        g = nx.DiGraph()
        for n, attrs in self.nodes.items():
            g.add_node(n, **attrs)
        for (u, v), attrs in self.edges.items():
            g.add_edge(u, v, **attrs)
        graph = KanGraph(g, None, self.level)
        graph.meta = self.meta
        return graph

    def header(self, t: Tree) -> None:
        version, level = t.children
        if int(version) != TEXT_VERSION:
            raise self.fail(f"this kanir reads IR text version {TEXT_VERSION}, not {version}",
                            version)
        if str(level) not in LEVELS:
            raise self.fail(f"unknown level {str(level)!r}; expected 'layered' or 'expr'", level)
        self.level = str(level)

    def meta_stmt(self, t: Tree) -> None:
        key, value = t.children
        name = _key(key)
        if name in self.meta:
            raise self.fail(f"metadata {name!r} is given twice", _at(t))
        self.meta[name] = _value(value)

    def layer_stmt(self, t: Tree) -> None:
        self.layer = int(t.children[0])

    def arrays_stmt(self, t: Tree) -> None:
        return None

    def array_def(self, t: Tree) -> None:
        name, arr = t.children
        if str(name) in self.arrays:
            raise self.fail(f"array {name} is defined twice", name)
        self.arrays[str(name)] = _value(arr)

    def node_stmt(self, t: Tree) -> None:
        ident, kind, attrs = t.children
        n = self.node_id(ident, "n")
        head = {"kind": _key(kind)}
        if ident.children[0].type == "INT":
            head.update(layer=n[1], index=n[2])
        self.add_node(n, {**head, **self.attrs(attrs)}, t)

    def subnode_stmt(self, t: Tree) -> None:
        ident, *targets, attrs = t.children
        n = self.node_id(ident, "s")
        head = {"kind": "subnode"}
        if ident.children[0].type == "INT":
            head.update(layer=n[1], index=n[2])
        self.add_node(n, {**head, **self.attrs(attrs)}, t)
        for target in targets:
            self.add_edge((n, self.node_id(target, "n")), {"wire": True}, _at(target))

    def wire_stmt(self, t: Tree) -> None:
        u, v, attrs = t.children
        self.add_edge((self.node_id(u, "n"), self.node_id(v, "n")),
                      {"wire": True, **self.attrs(attrs)}, _at(t))

    def edge_stmt(self, t: Tree) -> None:
        ends, *rest = t.children
        if ends.data == "lij":
            l, i, j = (int(x) for x in ends.children)
            e = (("n", l, i), ("s", l + 1, j))
        else:
            e = (self.node_id(ends.children[0], "n"), self.node_id(ends.children[1], "n"))
        attrs = self.attrs(rest[-1])
        if len(rest) > 1:
            act = self.function(rest[0])
            if len(rest) > 2:
                act.meta = _value(rest[1].children[0])
            if "act" in attrs:
                raise self.fail("an edge with a function cannot also have an 'act' attribute",
                                _at(t))
            attrs = {"act": act, **attrs}
        self.add_edge(e, attrs, _at(t))

    # ---------------------------------------------------------------- pieces
    def node_id(self, t: Tree, prefix: str) -> tuple:
        tok = t.children[0]
        if tok.type == "NODE_REF":
            m = re.match(r"%([A-Za-z_]+)(.*)\Z", str(tok))
            return (m.group(1), *(int(x) for x in m.group(2).split(".")))
        if self.layer is None:
            raise self.fail(f"node index {tok} needs a 'layer' line before it (or write a node "
                            f"id %{prefix}L.{tok} with L the layer)", tok)
        return (prefix, self.layer, int(tok))

    def add_node(self, n: tuple, attrs: dict, t: Tree) -> None:
        if n in self.nodes:
            raise self.fail(f"node {_show(n)} is defined twice (first at line {self.where[n]})",
                            _at(t))
        self.nodes[n] = attrs
        self.where[n] = _at(t).line

    def add_edge(self, e: tuple, attrs: dict, at) -> None:
        if e in self.edges:
            raise _error(f"edge {_show(e[0])} -> {_show(e[1])} is given twice (first at line "
                         f"{self.edge_at[e][0]})", self.text, at.line, at.column)
        self.edges[e] = attrs
        self.edge_at[e] = (at.line, at.column)

    def attrs(self, t: Tree) -> dict:
        out: dict = {}
        for attr in t.children:
            key, value = attr.children
            name = _key(key)
            if name in out:
                raise self.fail(f"attribute {name!r} is given twice", _at(attr))
            out[name] = _value(value)
        return out

    def function(self, t: Tree) -> Activation:
        if t.data == "zero":
            return Activation()
        sym = spline = None
        for child in t.children:
            if isinstance(child, Token):
                continue  # the '+' before spline(...)
            if child.data == "sym_head":
                sym = self.sym_head(child)
            elif child.data == "offset":
                sym.d = _offset(child)
            elif child.data == "spline":
                spline = self.spline(child)
        return Activation(spline, sym)

    def sym_head(self, t: Tree) -> SymbolicPart:
        *scale, callee = t.children
        c = _value(scale[0]) if scale else 1.0
        if callee.data == "bare_x":
            return SymbolicPart("x", 1.0, 0.0, c, 0.0)
        if callee.data == "identity_call":
            fun, inner = "x", callee.children[0]
        else:
            name_tree, inner = callee.children
            tok = name_tree.children[0]
            fun = _string(tok) if tok.type == "STRING" else str(tok)
            if self.check:
                try:
                    LIBRARY.canonical_name(fun)
                except LibraryError as e:
                    raise self.fail(str(e), tok) from None
        a, b = 1.0, 0.0
        for child in inner.children:
            if isinstance(child, Tree) and child.data == "number":
                a = _value(child)
            elif isinstance(child, Tree) and child.data == "offset":
                b = _offset(child)
        return SymbolicPart(fun, a, b, c, 0.0)

    def spline(self, t: Tree) -> SplinePart:
        kw: dict = {}
        for arg in t.children:
            name, value = arg.children
            key = str(name)
            if key not in _SPLINE_KEYS:
                raise self.fail(f"spline has no field {key!r}; its fields are "
                                f"{', '.join(_SPLINE_KEYS)}", name)
            if key in kw:
                raise self.fail(f"spline field {key!r} is given twice", name)
            kw[key] = (_Ref(value) if isinstance(value, Token) else _value(value), name)
        for key in ("k", "knots", "coef"):
            if key not in kw:
                raise self.fail(f"spline(...) needs the field {key!r}", _at(t))
        part = SplinePart(np.zeros(0), np.zeros(0), kw["k"][0])
        for key in ("scale_base", "scale_sp", "base_fun", "active"):
            if key in kw:
                setattr(part, key, kw[key][0])
        self.splines.append((part, kw))
        return part

    def resolve(self, entry) -> np.ndarray:
        value, name = entry
        if isinstance(value, _Ref):
            if value.name not in self.arrays:
                raise self.fail(f"array {value.name} is not defined (an 'arrays' line "
                                f"'{value.name} = f64[...]' defines it)", value.token)
            value = self.arrays[value.name]
        if isinstance(value, list):
            value = np.asarray(value, dtype=np.float64)
        if not isinstance(value, np.ndarray):
            raise self.fail(f"spline field {name} must be an array, got {value!r:.40}", name)
        return np.array(value, copy=True)

    def check_summary(self, part: SplinePart, kw: dict) -> None:
        """G=... and range=[...] are a summary of the knots: they must agree with them."""
        grid, k = part.grid, part.k
        if not ("G" in kw or "range" in kw):
            return
        if not (type(k) is int and grid.ndim == 1 and 0 <= k and grid.size >= 2 * k + 2):
            raise self.fail(f"spline summary G/range given, but {grid.size} knots with k={k!r} "
                            f"have no grid range", kw.get("G", kw.get("range"))[1])
        if "G" in kw and kw["G"][0] != grid.size - 2 * k - 1:
            raise self.fail(f"spline G={kw['G'][0]!r} does not match its {grid.size} knots "
                            f"(k={k} gives G={grid.size - 2 * k - 1})", kw["G"][1])
        if "range" in kw:
            ends = grid[[k, grid.size - k - 1]]
            try:
                given = np.asarray(kw["range"][0], dtype=np.float64).astype(grid.dtype)
                same = given.shape == (2,) and np.array_equal(given, ends, equal_nan=True)
            except (TypeError, ValueError):
                same = False
            if not same:
                raise self.fail(f"spline range={value_text(kw['range'][0])} does not match its "
                                f"knots (knots {k} and {grid.size - k - 1} are "
                                f"{value_text(ends.tolist())})", kw["range"][1])


def _at(t: Tree) -> Token:
    """The first token of a statement or value, for error positions (the parser is faster
    without propagate_positions)."""
    stack = [t]
    while stack:
        node = stack.pop()
        if isinstance(node, Token):
            return node
        stack += reversed(node.children)
    return Token("EMPTY", "", line=1, column=1)


def _show(n) -> str:
    try:
        return _ref_text(n)
    except GraphError:
        return repr(n)


def _key(t: Tree) -> str:
    tok = t.children[0]
    return _string(tok) if tok.type == "STRING" else str(tok)


def _offset(t: Tree):
    sign, number = t.children
    v = _value(number)
    return -v if sign.type == "MINUS" else v


def _number(tok: Token):
    text = str(tok)
    try:
        return int(text) if _INT_TEXT.match(text) else float(text)
    except ValueError:
        raise _TokenError(tok, f"the integer {text[:20]}... has too many digits") from None


def _array(tok: Token) -> np.ndarray:
    """``f64[1.5, -2.0]`` -> a numpy array of that dtype (floats go through float64, as numpy
    reads its own shortest float32 text)."""
    text = str(tok)
    dtype, body = text[:3], text[4:-1]
    if not _ARRAY_BODY.match(body):
        bad = next((p for p in body.split(",") if not re.fullmatch(rf"\s*{_NUMBER}\s*", p)), body)
        column = tok.column + 4 + body.index(bad) + len(bad) - len(bad.lstrip())
        raise _TokenError(Token("ARRAY", text, line=tok.line, column=column),
                          f"array item {bad.strip()[:20]!r} is not a number")
    items = body.split(",") if body.strip() else []
    if dtype == "i64":
        if any(not _INT_TEXT.match(x.strip()) for x in items):
            raise _TokenError(tok, "an i64 array holds integers only")
        return np.array([int(x) for x in items], dtype=np.int64)
    return np.array([float(x) for x in items], dtype=np.float64).astype(_DTYPES[dtype])


def _value(t):
    """A value tree -> Python value (tuples stay tuples, arrays become numpy arrays)."""
    if isinstance(t, Token):
        return _number(t) if t.type == "NUMBER" else str(t)
    kind = t.data
    if kind == "number":
        return _number(t.children[0])
    if kind == "string":
        return _string(t.children[0])
    if kind in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[kind]
    if kind == "list":
        return [_value(c) for c in t.children]
    if kind == "tuple":
        return tuple(_value(c) for c in t.children)
    if kind == "dict":
        return {_string(p.children[0]): _value(p.children[1]) for p in t.children}
    if kind == "array":
        return _array(t.children[0])
    raise AssertionError(f"unhandled IR value {kind}")  # the grammar has no other value
