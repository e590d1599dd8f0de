"""Formula frontend: sympy expressions -> the expression-level KanGraph (``level="expr"``).

Every sub-expression is read as a *linear form* over univariate functions of graph nodes,
``sum_k c_k * f_k(a_k * node_k + b_k) + d`` (:class:`Lin`). Sums and constant factors only change
the form; a univariate function of a one-term form is one more edge (``c*f(a*x+b)+d`` absorbs the
affine parts), products become mult nodes, and anything else is first *materialized* as a sum
node. Constants stay exact sympy numbers until the graph is written; then each parameter is a
float plus, when it is not an integer, its exact text (``Activation.meta["exact"]`` on edges, the
``exact`` attribute on nodes and subnodes), which :func:`kanir.to_sympy` reads back.

Expression-level layout (the layered one minus layers): value nodes ``("v", k)`` of kind
input/sum/mult/output, subnodes ``("u", k, slot)`` wired to them (one for a sum or output, one per
factor for a product; an output that is a product carries ``arity``), and activation edges from
value nodes to subnodes. A subnode sums its incoming edges, so a node feeds a subnode at most once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

import networkx as nx
import sympy

from kanir.errors import FormulaError
from kanir.grammar.functions import MAX_POWER, TABLE
from kanir.grammar.printer import exact_text, formula_text, parse_exact, to_float  # noqa: F401
from kanir.ir.activation import Activation
from kanir.ir.graph import KanGraph
from kanir.ir.library import LIBRARY, power_name

ZERO, ONE, HALF = sympy.S.Zero, sympy.S.One, sympy.S.Half

#: sympy function classes compiled as one library function each (from the language's table).
UNARY: dict[type, str] = {f.sympy: f.library for f in TABLE if f.library is not None}

#: Functions outside the library, written with library functions (exact for real inputs).
REWRITES: dict[type, object] = {f.sympy: f.rewrite for f in TABLE if f.rewrite is not None}

#: Names of every function the frontend compiles (for error messages and docs).
SUPPORTED_FUNCTIONS: tuple[str, ...] = tuple(sorted((f.text for f in TABLE), key=str.lower))

_MAX_POWER_PART = MAX_POWER  # largest numerator/denominator of a rational power kept as x^p


# ---------------------------------------------------------------------------- linear forms
Key = tuple  # (source node id, library function name, a, b)


@dataclass(frozen=True)
class Lin:
    """``sum c * f(a*src + b) + const`` over terms keyed by (src, f, a, b); identity terms are
    always stored with f = "x", a = 1, b = 0 so that they merge."""

    terms: dict = field(default_factory=dict)
    const: sympy.Expr = ZERO

    @staticmethod
    def of(src: int, c=ONE) -> Lin:
        return Lin({(src, "x", ONE, ZERO): c})

    def __add__(self, other: Lin) -> Lin:
        terms = dict(self.terms)
        for k, c in other.terms.items():
            s = terms.get(k, ZERO) + c
            if s == 0:
                terms.pop(k, None)
            else:
                terms[k] = s
        return Lin(terms, self.const + other.const)

    def scaled(self, f) -> Lin:
        if f == 0:
            return Lin({}, ZERO)
        return Lin({k: c * f for k, c in self.terms.items()}, self.const * f)

    def key(self) -> tuple:
        return tuple(self.terms.items()), self.const


# ---------------------------------------------------------------------------- nodes
@dataclass
class _Node:
    """A value node under construction: its slots are the linear forms of its subnodes."""

    nid: int
    kind: str  # input / sum / mult / output
    slots: list = field(default_factory=list)
    name: str | None = None
    index: int | None = None
    scale: sympy.Expr = ONE
    bias: sympy.Expr = ZERO
    height: int = 0


# ---------------------------------------------------------------------------- the builder
class Frontend:
    """Builds the expression graph of one formula (all its outputs share sub-expressions)."""

    def __init__(self, variables: Sequence[sympy.Symbol]):
        self.nodes: list[_Node] = []
        self.inputs: dict[sympy.Symbol, int] = {}
        for i, s in enumerate(variables):
            node = self._new("input", name=s.name, index=i)
            self.inputs[s] = node.nid
        self._cache: dict = {}
        self._materialized: dict = {}
        self._products: dict = {}
        self._dups: dict = {}
        self.outputs: list[int] = []
        self._where = ""

    # ------------------------------------------------------------------ public
    def add_output(self, name: str, expr: sympy.Expr) -> None:
        """Compile one output expression into an output node."""
        self._where = f" in output '{name}'"
        try:
            lin = self.build(expr)
        except RecursionError:
            raise FormulaError(f"the expression of output '{name}' is nested too deeply") from None
        node = self._new("output", name=name, index=len(self.outputs))
        slot = self._resolve(Lin(lin.terms))
        node.slots = [Lin(slot.terms)]
        node.bias = lin.const + slot.const
        self.outputs.append(node.nid)

    def graph(self, input_names, output_names, dtype: str = "float64") -> KanGraph:
        """The expression-level KanGraph of everything added so far."""
        live = self._live()
        self._fuse_product_outputs(live)
        live = self._live()
        return _write(self.nodes, live, input_names, output_names, dtype)

    # ------------------------------------------------------------------ expressions
    def build(self, e: sympy.Expr) -> Lin:
        lin = self._cache.get(e)
        if lin is None:
            lin = self._build(e)
            self._cache[e] = lin
        return lin

    def _build(self, e: sympy.Expr) -> Lin:
        if e.is_Symbol:
            if e not in self.inputs:
                raise FormulaError(f"cannot compile {e}{self._where}: '{e}' is not an input "
                                   f"variable")
            return Lin.of(self.inputs[e])
        if e.is_number:
            return Lin({}, self._real(e))
        if e.is_Add:
            out = Lin()
            for a in e.args:
                out = out + self.build(a)
            return out
        if e.is_Mul:
            return self._mul(e)
        if e.is_Pow:
            return self._pow(e)
        if isinstance(e, sympy.Min | sympy.Max):
            return self._minmax(e)
        fn = UNARY.get(e.func)
        if fn is not None:
            return self.apply(fn, self.build(e.args[0]))
        rule = REWRITES.get(e.func)
        if rule is not None and (len(e.args) == 1 or _default_heaviside(e)):
            return self.build(rule(e.args[0]))
        raise self._unsupported(e)

    def _unsupported(self, e) -> FormulaError:
        where = f"cannot compile {e}{self._where}"
        if isinstance(e, sympy.Piecewise):
            return FormulaError(f"{where}: piecewise expressions are not supported")
        if isinstance(e, sympy.Function) and len(e.args) != 1:
            return FormulaError(f"{where}: {e.func.__name__} takes {len(e.args)} arguments; of "
                                f"the functions of several arguments only min and max compile")
        name = getattr(e.func, "__name__", type(e).__name__)
        return FormulaError(f"{where}: kanir has no function '{name}'; the functions it "
                            f"compiles are {', '.join(SUPPORTED_FUNCTIONS)}")

    def _real(self, e: sympy.Expr) -> sympy.Expr:
        """``e`` itself if it is a finite real constant, else an error naming it."""
        if e.is_Rational:
            return e
        if e.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):
            raise FormulaError(f"cannot compile {e}{self._where}: the constant is undefined "
                               f"or infinite")
        val = e.evalf(30)
        if not val.is_real or not val.is_finite:
            raise FormulaError(f"cannot compile {e}{self._where}: the constant {e} is not a "
                               f"real number")
        try:
            to_float(e)
        except FormulaError as err:
            raise FormulaError(f"cannot compile {e}{self._where}: {err}") from None
        return e

    def _mul(self, e: sympy.Expr) -> Lin:
        coeff, factors = ONE, []
        for a in e.args:
            if a.is_number:
                coeff = coeff * self._real(a)
            else:
                factors.append(a)
        if len(factors) == 1:
            return self.build(factors[0]).scaled(coeff)
        return self.product([self.build(f) for f in factors]).scaled(coeff)

    def _pow(self, e: sympy.Expr) -> Lin:
        base, ex = e.args
        if ex.is_number:
            if ex.is_Rational and abs(ex) > MAX_POWER:
                raise FormulaError(f"cannot compile {e}{self._where}: the exponent "
                                   f"{str(ex.evalf(3)) if abs(ex) > 10**12 else ex} is too large: "
                                   f"a power of a variable needs an exponent between "
                                   f"-{MAX_POWER} and {MAX_POWER}")
            p = _rational_exponent(self._real(ex))
            if p is not None:
                return self.apply(power_fun(p), self.build(base))
            return self.apply("exp", self.apply("log", self.build(base)).scaled(ex))
        if base.is_number:
            b = self._real(base)
            if not b.is_positive:
                raise FormulaError(f"cannot compile {e}{self._where}: a power with the base {b} "
                                   f"and a variable exponent is not real")
            return self.apply("exp", self.build(ex).scaled(sympy.log(b)))
        log_base = self.apply("log", self.build(base))
        return self.apply("exp", self.product([self.build(ex), log_base]))

    def _minmax(self, e: sympy.Expr) -> Lin:
        """max(a, b) = (a + b)/2 + |a - b|/2 and min(a, b) = (a + b)/2 - |a - b|/2, paired
        as a balanced tree for more than two arguments."""
        sign = ONE if isinstance(e, sympy.Max) else -ONE
        lins = [self.build(a) for a in e.args]
        while len(lins) > 1:
            nxt = []
            for i in range(0, len(lins) - 1, 2):
                a, b = lins[i], lins[i + 1]
                gap = self.apply("abs", a + b.scaled(-ONE))
                nxt.append((a + b).scaled(HALF) + gap.scaled(sign * HALF))
            if len(lins) % 2:
                nxt.append(lins[-1])
            lins = nxt
        return lins[0]

    # ------------------------------------------------------------------ graph pieces
    def apply(self, fun: str, lin: Lin) -> Lin:
        """The linear form of ``fun(lin)``: one new edge, with a materialized node if needed."""
        if not lin.terms:
            return Lin({}, self._real(LIBRARY[fun].sympy(lin.const)))
        if len(lin.terms) == 1:
            ((src, g, a, b), c), = lin.terms.items()
            if g == "x":  # f(c*src + d): the affine goes into the edge
                return Lin({(src, fun, c, lin.const): ONE})
            if fun == "exp" and g == "x^2" and c.is_negative:  # exp(c*(a*u+b)^2 + d)
                s = sympy.sqrt(-c)
                return Lin({(src, "gaussian", s * a, s * b): sympy.exp(lin.const)})
            node = self.materialize({(src, g, a, b): ONE})
            return Lin({(node, fun, c, lin.const): ONE})
        (_, c1), *_ = lin.terms.items()
        node = self.materialize({k: c / c1 for k, c in lin.terms.items()})
        return Lin({(node, fun, c1, lin.const): ONE})

    def materialize(self, terms: dict) -> int:
        """A node whose value is ``sum c * f(a*src + b)`` over ``terms`` (shared when equal)."""
        if len(terms) == 1:
            ((src, g, _a, _b), c), = terms.items()
            if g == "x" and c == 1:
                return src
        key = tuple(terms.items())
        nid = self._materialized.get(key)
        if nid is None:
            node = self._new("sum")
            slot = self._resolve(Lin(dict(terms)))
            node.slots = [Lin(slot.terms)]
            node.bias = slot.const
            self._settle(node)
            nid = self._materialized[key] = node.nid
        return nid

    def product(self, factors: list[Lin]) -> Lin:
        """The linear form of a product of non-constant factors: one mult node."""
        key = tuple(f.key() for f in factors)
        nid = self._products.get(key)
        if nid is None:
            node = self._new("mult")
            node.slots = [self._resolve(f) for f in factors]
            self._settle(node)
            nid = self._products[key] = node.nid
        return Lin.of(nid)

    def _resolve(self, lin: Lin) -> Lin:
        """The same form with at most one term per source node: a subnode takes one edge from
        each node. Quadratics and identities of one source merge into one square; other extra
        terms of a source become nodes of their own (fed to the subnode by identity edges)."""
        for _ in range(10_000):
            groups: dict[int, list] = {}
            for k in lin.terms:
                groups.setdefault(k[0], []).append(k)
            clash = next((g for g in groups.values() if len(g) > 1), None)
            if clash is None:
                return lin
            lin = self._split(lin, clash)
        raise FormulaError(f"cannot compile the formula{self._where}: too many repeated terms")

    def _split(self, lin: Lin, keys: list) -> Lin:
        """Resolve the terms ``keys`` that share one source: merge what one edge can carry,
        then give every other term a source of its own: a copy of the source node when that
        keeps the consumer as shallow as before, else a new node holding the term."""
        terms = dict(lin.terms)
        merged, extra = merge_terms([(k, terms.pop(k)) for k in keys])
        for k, c in merged:
            terms[k] = terms.get(k, ZERO) + c
        const = lin.const + extra
        if len(merged) <= 1:
            return Lin(terms, const)
        src = merged[0][0][0]
        keep = next((k for k, _ in merged if k[1] == "x"), merged[0][0])
        top = 1 + max(self.nodes[k[0]].height for k in terms)
        for k, c in merged:
            if k == keep:
                continue
            del terms[k]
            if self.nodes[src].kind != "input" and self.nodes[src].height + 2 > top:
                new = (self._duplicate(src, k), k[1], k[2], k[3])
            else:
                node = self.materialize({k: ONE})
                new = (node, "x", ONE, ZERO)
                top = max(top, self.nodes[node].height + 1)
            terms[new] = terms.get(new, ZERO) + c
        return Lin(terms, const)

    def _duplicate(self, src: int, key) -> int:
        """A second node computing the same value as ``src`` (one per conflicting term)."""
        nid = self._dups.get((src, key))
        if nid is None:
            orig = self.nodes[src]
            node = self._new(orig.kind, scale=orig.scale, bias=orig.bias)
            node.slots = list(orig.slots)
            node.height = orig.height
            nid = self._dups[(src, key)] = node.nid
        return nid

    def _settle(self, node: _Node) -> None:
        """Record the node's height: its longest path from an input."""
        node.height = 1 + max((self.nodes[k[0]].height for slot in node.slots
                               for k in slot.terms), default=0)

    def _new(self, kind: str, **kw) -> _Node:
        node = _Node(len(self.nodes), kind, **kw)
        self.nodes.append(node)
        return node

    # ------------------------------------------------------------------ finishing
    def _live(self) -> set[int]:
        """Nodes that some output depends on (plus every input)."""
        live = {n.nid for n in self.nodes if n.kind == "input"}
        stack = list(self.outputs)
        while stack:
            nid = stack.pop()
            if nid in live:
                continue
            live.add(nid)
            for slot in self.nodes[nid].slots:
                stack.extend(k[0] for k in slot.terms)
        return live

    def _fuse_product_outputs(self, live: set[int]) -> None:
        """An output that is c * (a product used nowhere else) + d becomes that product."""
        uses: dict[int, int] = {}
        for nid in live:
            for slot in self.nodes[nid].slots:
                for k in slot.terms:
                    uses[k[0]] = uses.get(k[0], 0) + 1
        for oid in self.outputs:
            out = self.nodes[oid]
            slot = out.slots[0]
            if len(slot.terms) != 1 or slot.const != 0:
                continue
            ((src, g, _a, _b), c), = slot.terms.items()
            m = self.nodes[src]
            if g != "x" or m.kind != "mult" or uses.get(src) != 1:
                continue
            out.slots = list(m.slots)
            out.scale = c * m.scale
            out.bias = out.bias + c * m.bias
            m.slots = []


def merge_terms(items: list) -> tuple[list, sympy.Expr]:
    """Terms of one source merged where one edge can carry their sum: quadratics with the
    identity (completing the square), exponentials of equal rate (and cosh/sinh pairs), sines
    and cosines of equal frequency (one phase-shifted sine). Returns (terms, added constant)."""
    const = ZERO
    out: list = []
    quad = [(k, c) for k, c in items if k[1] in ("x", "x^2")]
    if len(quad) > 1:
        k0 = quad[0][0]
        q, const = _merge_quadratic(k0[0], quad)
        out += q
    else:
        out += quad
    exps = [(k, c) for k, c in items if k[1] == "exp"]
    out += _merge_exp(exps) if len(exps) > 1 else exps
    trig = [(k, c) for k, c in items if k[1] in ("sin", "cos")]
    out += _merge_trig(trig) if len(trig) > 1 else trig
    out += [(k, c) for k, c in items if k[1] not in ("x", "x^2", "exp", "sin", "cos")]
    return out, const


def _merge_quadratic(src, items) -> tuple[list, sympy.Expr]:
    """sum c*(a*u + b)^2 + sum c*u = A*(u + B/(2A))^2 + C - B^2/(4A)."""
    A = sum((c * k[2] ** 2 for k, c in items if k[1] == "x^2"), ZERO)
    B = sum((2 * c * k[2] * k[3] for k, c in items if k[1] == "x^2"), ZERO)
    B += sum((c for k, c in items if k[1] == "x"), ZERO)
    C = sum((c * k[3] ** 2 for k, c in items if k[1] == "x^2"), ZERO)
    if A == 0:
        return ([((src, "x", ONE, ZERO), B)] if B != 0 else []), C
    shift = B / (2 * A)
    return [((src, "x^2", ONE, shift), A)], C - A * shift**2


def _merge_exp(items) -> list:
    """c1*exp(a*u + b1) + c2*exp(a*u + b2) = (c1 e^b1 + c2 e^b2) exp(a*u); equal-weight
    exp(a*u) and exp(-a*u) pairs become cosh / sinh."""
    src = items[0][0][0]
    rate: dict = {}
    for (_, _, a, b), c in items:
        rate[a] = rate.get(a, ZERO) + c * sympy.exp(b)
    out = []
    for a, w in list(rate.items()):
        if a not in rate or w == 0:
            continue
        w2 = rate.get(-a)
        if w2 is not None and a.is_positive and (w2 == w or w2 == -w):
            out.append(((src, "cosh" if w2 == w else "sinh", a, ZERO), 2 * w))
            del rate[-a]
        elif not (w2 is not None and a.is_negative and (w2 == w or w2 == -w)):
            out.append(((src, "exp", a, ZERO), w))
    return out


def _merge_trig(items) -> list:
    """Sines and cosines of one frequency: sum c*sin(a*u + phi) = R*sin(a*u + atan2(im, re))."""
    src = items[0][0][0]
    groups: dict = {}
    for (_, fun, a, b), c in items:
        if a.is_negative:  # sin(-t) = -sin(t), cos(-t) = cos(t)
            a, b, c = -a, -b, (-c if fun == "sin" else c)
        phase = b if fun == "sin" else b + sympy.pi / 2
        groups.setdefault(a, []).append((fun, b, c, phase))
    out = []
    for a, g in groups.items():
        if len(g) == 1:
            fun, b, c, _ = g[0]
            out.append(((src, fun, a, b), c))
            continue
        re = sympy.expand(sum((c * sympy.cos(p) for *_, c, p in g), ZERO))
        im = sympy.expand(sum((c * sympy.sin(p) for *_, c, p in g), ZERO))
        if re == 0 and im == 0:
            continue
        r2 = sympy.expand(re**2 + im**2)
        if r2.has(sympy.sin, sympy.cos):
            r2 = sympy.trigsimp(r2)
        R = sympy.sqrt(r2)
        out.append(((src, "sin", a, sympy.atan2(im, re)), R))
    return out


def _default_heaviside(e) -> bool:
    """Heaviside(u, 1/2): the value at 0 that (sgn(u) + 1)/2 gives."""
    return e.func is sympy.Heaviside and len(e.args) == 2 and e.args[1] == HALF


def _rational_exponent(p: sympy.Expr) -> Fraction | None:
    """``p`` as a Fraction when it is a rational small enough for a library power x^p."""
    if p.is_Float:
        fr = Fraction(repr(float(p)))
    elif p.is_Rational:
        fr = Fraction(int(p.p), int(p.q))
    else:
        return None
    if fr.denominator > 1 and (abs(fr.numerator) > _MAX_POWER_PART
                               or fr.denominator > _MAX_POWER_PART):
        return None  # a library name x^p/q is exact only for moderate p, q
    return fr


@lru_cache(maxsize=1024)
def power_fun(p: Fraction) -> str:
    """The canonical library name of x**p (registered on demand)."""
    return LIBRARY.canonical_name(power_name(p))


# ---------------------------------------------------------------------------- writing
def _exact_attrs(values: dict) -> dict:
    out = {}
    for k, v in values.items():
        t = exact_text(v)
        if t is not None:
            out[k] = t
    return out


def _write(nodes: list[_Node], live: set[int], input_names, output_names,
           dtype: str) -> KanGraph:
    g = nx.DiGraph()
    for node in nodes:
        if node.nid not in live:
            continue
        vid = ("v", node.nid)
        attrs: dict = {"kind": node.kind}
        if node.kind in ("input", "output"):
            attrs.update(name=node.name, index=node.index)
        if node.kind != "input":
            attrs.update(scale=to_float(node.scale), bias=to_float(node.bias))
            ex = _exact_attrs({"scale": node.scale, "bias": node.bias})
            if ex:
                attrs["exact"] = ex
        is_product = node.kind == "mult" or (node.kind == "output" and len(node.slots) > 1)
        if is_product:
            attrs["arity"] = len(node.slots)
        g.add_node(vid, **attrs)
        for s, slot in enumerate(node.slots):
            sid = ("u", node.nid, s)
            bias = slot.const
            sattrs = {"kind": "subnode", "slot": s, "scale": 1.0, "bias": to_float(bias)}
            ex = _exact_attrs({"bias": bias})
            if ex:
                sattrs["exact"] = ex
            g.add_node(sid, **sattrs)
            g.add_edge(sid, vid, wire=True)
    for node in nodes:
        if node.nid not in live:
            continue
        for s, slot in enumerate(node.slots):
            for (src, fun, a, b), c in slot.terms.items():
                act = Activation.symbolic_fn(fun, to_float(a), to_float(b), to_float(c), 0.0)
                ex = _exact_attrs({"a": a, "b": b, "c": c})
                if ex:
                    act.meta["exact"] = ex
                g.add_edge(("v", src), ("u", node.nid, s), act=act)
    meta = {"input_names": list(input_names), "output_names": list(output_names),
            "dtype": dtype}
    return KanGraph(g, meta, level="expr")


def dtype_name(dtype) -> str:
    """'float32' or 'float64' from that name or a torch dtype (as KAN accepts)."""
    import torch

    names = {torch.float32: "float32", torch.float64: "float64", "float32": "float32",
             "float64": "float64"}
    try:
        return names[dtype]
    except (KeyError, TypeError):
        raise FormulaError(f"dtype must be torch.float32 or torch.float64 (or 'float32', "
                           f"'float64'), got {dtype!r}") from None


def expression_graph(formula, dtype: str = "float64", check: bool = True) -> KanGraph:
    """The expression-level graph of a parsed :class:`~kanir.grammar.formula.Formula`
    (``check=False`` skips validating it, for callers that validate the next stage)."""
    dtype = dtype_name(dtype)
    if not formula.variables:
        values = ", ".join(formula_text(e) for _, e in formula.outputs)
        if formula.mentioned:
            names = ", ".join(formula.mentioned)
            raise FormulaError(f"the formula simplifies to a constant ({values}): its variables "
                               f"({names}) cancel out, and a KAN needs at least one input; to "
                               f"compile the constant as a function of them, name the inputs "
                               f"(the variables argument in Python, --vars on the command line)")
        raise FormulaError(f"the formula has no variables: it is the constant {values}, and a "
                           f"KAN needs at least one input; name the inputs: pass variables=[...] to "
                           f"compile a constant")
    fe = Frontend(formula.variables)
    for name, expr in formula.outputs:
        fe.add_output(name, expr)
    graph = fe.graph([s.name for s in formula.variables], [n for n, _ in formula.outputs], dtype)
    return graph.check() if check else graph
