"""The schema of a .kanir file's ``graph.json``, as one declarative table, and its validator.

Every field kanir reads has a rule here (type, range, enumeration, length); records kanir owns
(the document, activations, their symbolic and spline parts) are closed, so a misspelt or
deleted key is an error rather than a silently different model. Metadata and node/edge attribute
dicts are open: unknown keys there are user or analysis data and are kept as they are.
References between records (edge ends, array slices, per-layer spline constraints) are checked
after the table by :func:`validate_doc`. Every failure is a :class:`ModelFileError` naming the
field, e.g. ``edges[3].act.symbolic.params``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kanir.errors import ModelFileError

MAGIC = "kanir-model"
MAX_TEXT = 10_000  # longest string kanir accepts in a model file (names, exact constants)


# ----------------------------------------------------------------------------- rules
class Rule:
    """Checks one JSON value; ``check(value, where)`` raises ModelFileError naming ``where``."""

    def check(self, value, where: str) -> None:
        raise NotImplementedError


def _bad(where: str, expected: str, value) -> ModelFileError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ModelFileError(f"field {where} must be {expected}, got {shown}")


@dataclass(frozen=True)
class Int(Rule):
    low: int | None = None

    def check(self, value, where):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(where, "an integer", value)
        if self.low is not None and value < self.low:
            raise _bad(where, f"an integer >= {self.low}", value)


@dataclass(frozen=True)
class Float(Rule):
    """A finite JSON number (an int is a float here, as json writes 1.0 as 1.0 but users 1)."""

    def check(self, value, where):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(where, "a number", value)
        if not math.isfinite(value):
            raise _bad(where, "a finite number", value)


@dataclass(frozen=True)
class Bool(Rule):
    def check(self, value, where):
        if not isinstance(value, bool):
            raise _bad(where, "true or false", value)


@dataclass(frozen=True)
class Text(Rule):
    non_empty: bool = False

    def check(self, value, where):
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise _bad(where, f"a string of at most {MAX_TEXT} characters", value)
        if self.non_empty and not value:
            raise _bad(where, "a non-empty string", value)


@dataclass(frozen=True)
class OneOf(Rule):
    choices: tuple

    def check(self, value, where):
        if isinstance(value, bool) or value not in self.choices:
            raise _bad(where, "one of " + ", ".join(map(repr, self.choices)), value)


@dataclass(frozen=True)
class ListOf(Rule):
    item: Rule
    length: int | None = None
    unique: bool = False

    def check(self, value, where):
        if not isinstance(value, list):
            raise _bad(where, "a list", value)
        if self.length is not None and len(value) != self.length:
            raise _bad(where, f"a list of {self.length} items", value)
        for i, v in enumerate(value):
            self.item.check(v, f"{where}[{i}]")
        if self.unique and len(set(map(repr, value))) != len(value):
            raise _bad(where, "a list without repeated items", value)


@dataclass(frozen=True)
class Tuple(Rule):
    """A list with one rule per position."""
    items: tuple

    def check(self, value, where):
        if not isinstance(value, list) or len(value) != len(self.items):
            raise _bad(where, f"a list of {len(self.items)} items", value)
        for i, (rule, v) in enumerate(zip(self.items, value)):
            rule.check(v, f"{where}[{i}]")


@dataclass(frozen=True)
class Record(Rule):
    """A JSON object: ``required`` and ``optional`` keys with their rules; ``closed`` rejects
    any other key, else other keys may hold any JSON value."""
    required: dict
    optional: dict | None = None
    closed: bool = True

    def check(self, value, where):
        if not isinstance(value, dict):
            raise _bad(where, "an object", value)
        optional = self.optional or {}
        for key, rule in self.required.items():
            if key not in value:
                raise ModelFileError(f"field {where}.{key} is missing")
            rule.check(value[key], f"{where}.{key}")
        for key, v in value.items():
            if key in self.required:
                continue
            if key in optional:
                optional[key].check(v, f"{where}.{key}")
            elif self.closed:
                raise ModelFileError(f"field {where} has an unknown key {key!r}")


@dataclass(frozen=True)
class Any(Rule):
    def check(self, value, where):
        return None


# ----------------------------------------------------------------------------- the table
NUMBER, COUNT, NAME = Float(), Int(low=0), Text(non_empty=True)
EXACT = Record({}, {k: Text(non_empty=True) for k in ("a", "b", "c", "d", "scale", "bias")})
ARRAY_REF = Tuple((COUNT, COUNT))  # [start, length] into arrays.npz

META = Record(
    required={"dtype": OneOf(("float32", "float64")), "grid": Int(low=1), "k": Int(low=1),
              "grid_range": Tuple((NUMBER, NUMBER)), "base_fun": NAME,
              "input_names": ListOf(NAME, unique=True), "output_names": ListOf(NAME, unique=True)},
    optional={"input_defs": ListOf(Tuple((NAME, Text(non_empty=True))))},
    closed=False)

SYMBOLIC = Record({"fun": NAME, "params": ListOf(NUMBER, length=4)})
SPLINE = Record({"k": Int(low=1), "scale_base": NUMBER, "scale_sp": NUMBER, "base_fun": NAME,
                 "active": Bool(), "grid": ARRAY_REF, "coef": ARRAY_REF})
# "meta" is required (kanir has always written it): a deleted one would drop exact constants
# and annotations unnoticed
ACTIVATION = Record({"meta": Record({}, {"exact": EXACT}, closed=False)},
                    {"symbolic": SYMBOLIC, "spline": SPLINE})

NODE_KINDS = ("input", "sum", "mult", "output", "subnode")
_AFFINE = {"scale": NUMBER, "bias": NUMBER}
_PLACE = {"layer": COUNT, "index": COUNT}
_NODE_EXTRAS = {"exact": EXACT, "score": NUMBER}  # optional on every kind

# Per level: the node id shapes and, per kind, (required, optional) attributes.
LEVELS = {
    "layered": {
        "ids": {"n": Tuple((OneOf(("n",)), COUNT, COUNT)), "s": Tuple((OneOf(("s",)), COUNT, COUNT))},
        "kinds": {"input": (_PLACE, {}),
                  "sum": ({**_PLACE, **_AFFINE}, {}),
                  "output": ({**_PLACE, **_AFFINE}, {}),
                  "mult": ({**_PLACE, **_AFFINE, "arity": Int(low=2)}, {}),
                  "subnode": ({**_PLACE, **_AFFINE}, {})},
    },
    "expr": {
        "ids": {"v": Tuple((OneOf(("v",)), COUNT)), "u": Tuple((OneOf(("u",)), COUNT, COUNT))},
        "kinds": {"input": ({"name": NAME, "index": COUNT}, {}),
                  "sum": (_AFFINE, {}),
                  "output": ({"name": NAME, "index": COUNT, **_AFFINE}, {"arity": Int(low=2)}),
                  "mult": ({**_AFFINE, "arity": Int(low=2)}, {}),
                  "subnode": ({"slot": COUNT, **_AFFINE}, {})},
    },
}
SUBNODE_TAGS = ("s", "u")  # the id tags of subnodes (layered, expression level)
# Keys that only some kinds may carry: present on another kind, they would change its meaning.
_KIND_ONLY = ("arity", "scale", "bias", "name", "slot")

DOC = Record(
    required={"format": OneOf((MAGIC,)), "version": Int(low=1), "level": OneOf(tuple(LEVELS)),
              "meta": META, "nodes": ListOf(Record({"id": Any(), "attrs": Any()})),
              "edges": ListOf(Record({"u": Any(), "v": Any(), "attrs": Any()}, {"act": ACTIVATION}))},
    optional={"extra": Record({}, closed=False)})


# ----------------------------------------------------------------------------- validation
def check_version(doc, source: str, newest: int) -> None:
    """The format tag and version, checked first so a newer file says 'upgrade kanir'."""
    if not isinstance(doc, dict) or doc.get("format") != MAGIC:
        raise ModelFileError(f"{source} is not a kanir model file (format tag missing)")
    v = doc.get("version")
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ModelFileError(f"{source} is damaged: field graph.version must be a positive integer, "
                             f"got {v!r}")
    if v > newest:
        raise ModelFileError(f"{source} has format version {v}; this kanir reads versions up to "
                             f"{newest} (upgrade kanir)")


def validate_doc(doc: dict, n_grids: int, n_coefs: int) -> None:
    """Check ``doc`` against the table, then the references between its records."""
    DOC.check(doc, "graph")
    _check_meta(doc["meta"])
    level = LEVELS[doc["level"]]
    ids = set()
    for i, rec in enumerate(doc["nodes"]):
        where = f"graph.nodes[{i}]"
        node_id = _node_id(rec["id"], level, f"{where}.id")
        if node_id in ids:
            raise ModelFileError(f"field {where}.id repeats node {list(node_id)}")
        ids.add(node_id)
        attrs = rec["attrs"]
        Record({"kind": OneOf(NODE_KINDS)}, closed=False).check(attrs, f"{where}.attrs")
        if (attrs["kind"] == "subnode") != (node_id[0] in SUBNODE_TAGS):
            raise ModelFileError(f"field {where}.attrs.kind is {attrs['kind']!r} but the id "
                                 f"{list(node_id)} is that of a "
                                 f"{'subnode' if node_id[0] in SUBNODE_TAGS else 'node'}")
        required, optional = level["kinds"][attrs["kind"]]
        Record(required, {**_NODE_EXTRAS, **optional}, closed=False).check(attrs, f"{where}.attrs")
        for key in _KIND_ONLY:
            if key in attrs and key not in required and key not in optional:
                raise ModelFileError(f"field {where}.attrs.{key} is set on a {attrs['kind']} "
                                     f"node, which has no {key}")
    if doc["level"] == "expr":
        _check_expr_names(doc)
    seen, base_funs = set(), {}
    for i, rec in enumerate(doc["edges"]):
        where = f"graph.edges[{i}]"
        ends = []
        for end in ("u", "v"):
            node_id = _node_id(rec[end], level, f"{where}.{end}")
            if node_id not in ids:
                raise ModelFileError(f"field {where}.{end} refers to node {list(node_id)}, which "
                                     f"is not among the nodes")
            ends.append(node_id)
        if tuple(ends) in seen:
            raise ModelFileError(f"field {where} repeats the edge {list(ends[0])} -> "
                                 f"{list(ends[1])}")
        seen.add(tuple(ends))
        attrs = rec["attrs"]
        Record({}, {"wire": Bool(), "score": NUMBER}, closed=False).check(attrs, f"{where}.attrs")
        is_wire, is_act = attrs.get("wire") is True, "act" in rec
        if is_wire == is_act:
            raise ModelFileError(f"field {where} must be either a wire (attrs.wire true) or an "
                                 f"activation (act), not {'both' if is_wire else 'neither'}")
        if is_act:
            _check_act(rec["act"], f"{where}.act", n_grids, n_coefs)
            sp = rec["act"].get("spline")
            if sp is not None and doc["level"] == "layered":
                fun, first = base_funs.setdefault(ends[0][1], (sp["base_fun"], where))
                if fun != sp["base_fun"]:
                    raise ModelFileError(
                        f"field {where}.act.spline.base_fun is {sp['base_fun']!r} but {first} in "
                        f"the same layer uses {fun!r}; a layer has one base function")


def check_base_fun(name: str, where: str) -> None:
    """A base function of the library (read lazily: it imports torch)."""
    from kanir.ir.library import BASE_FUNCTIONS

    OneOf(tuple(sorted(BASE_FUNCTIONS))).check(name, where)


def _check_meta(meta: dict) -> None:
    lo, hi = meta["grid_range"]
    if not lo < hi:
        raise _bad("graph.meta.grid_range", "[LOW, HIGH] with LOW < HIGH", meta["grid_range"])
    check_base_fun(meta["base_fun"], "graph.meta.base_fun")


def _check_expr_names(doc: dict) -> None:
    """Expression-level input/output nodes carry their name and index; meta lists them in order."""
    for kind, key in (("input", "input_names"), ("output", "output_names")):
        named = sorted((n["attrs"]["index"], n["attrs"]["name"]) for n in doc["nodes"]
                       if n["attrs"]["kind"] == kind)
        if [name for _, name in named] != doc["meta"][key] or \
                [i for i, _ in named] != list(range(len(named))):
            raise ModelFileError(f"field graph.meta.{key} is {doc['meta'][key]!r} but the {kind} "
                                 f"nodes are {[name for _, name in named]!r} (indices "
                                 f"{[i for i, _ in named]})")


def _node_id(value, level: dict, where: str) -> tuple:
    tag = value[0] if isinstance(value, list) and value else None
    rule = level["ids"].get(tag) if isinstance(tag, str) else None
    if rule is None:
        shapes = " or ".join(repr(k) for k in level["ids"])
        raise _bad(where, f"a node id starting with {shapes}", value)
    rule.check(value, where)
    return tuple(value)


def _check_act(act: dict, where: str, n_grids: int, n_coefs: int) -> None:
    if "symbolic" not in act and "spline" not in act:
        raise ModelFileError(f"field {where} has neither a symbolic nor a spline part (an "
                             f"absent edge is written as no edge record)")
    sp = act.get("spline")
    if sp is None:
        return
    check_base_fun(sp["base_fun"], f"{where}.spline.base_fun")
    for key, size in (("grid", n_grids), ("coef", n_coefs)):
        start, n = sp[key]
        if start + n > size:
            raise ModelFileError(f"field {where}.spline.{key} refers to values {start}:{start + n} "
                                 f"but arrays.npz holds {size}; the model file is truncated")
