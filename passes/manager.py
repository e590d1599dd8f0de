"""The pass registry and pass manager (in the spirit of MLIR's pass registry and xDSL's
``PassPipeline``): every pass of :mod:`kanir.passes` is registered under a kebab-case name with
typed options, what it requires and ensures, whether it needs data ``x``, and its kind
("transform": returns a KanGraph; "analysis": returns a result, never a graph).

One calling convention for every registered pass: ``run_pass(name, graph, x=None, **options)``.
A :class:`PassManager` runs a pipeline (pass specs, or text such as
``"prune{edge_th=0.05},auto-swap,canonicalize"``), checks each pass's requirements before it
runs and the graph contract (``graph.check()`` plus its ensures) once after it, names the pass
and its position when something breaks, times each pass, can print the IR after each pass and
reports one version per transform pass through ``on_version``.

Examples
--------
>>> pm = PassManager("prune{edge_th=0.05},auto-swap", x=x, timing=True)
>>> g2 = pm.run(g)
>>> print(pm.timing_report.table())
>>> run_pass("connection-cost", g2)      # an analysis: returns a float
"""

from __future__ import annotations

import difflib
import inspect
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from kanir.errors import GraphError, PassError, PipelineError
from kanir.grammar.pipeline import Literal, parse_pipeline_text
from kanir.ir.graph import KanGraph

from ._common import checks_by_manager

__all__ = ["Option", "PassInfo", "PassSpec", "PassRecord", "TimingReport", "PassManager",
           "register_pass", "unregister_pass", "get_pass", "registered_passes", "run_pass",
           "parse_pipeline", "pass_listing", "INTERNAL_FUNCTIONS", "OPTION_TYPES", "DATA_MODES",
           "LEVELS", "ENSURES"]

#: option types; "any" takes whatever the pass function accepts (Python callers; text gives
#: numbers, booleans, words, strings or lists).
OPTION_TYPES = ("int", "float", "bool", "str", "list", "any")
#: how a pass uses data x: not at all, if given, x or attribution scores carried by the graph,
#: or always.
DATA_MODES = ("none", "optional", "scores", "required")
#: the graph levels a pass can require or ensure.
LEVELS = ("layered", "expr")
#: what a transform can promise about its result, verified by the manager.
ENSURES = ("layered", "expr", "checked", "scored")
_REQUIRED = inspect.Parameter.empty


@dataclass(frozen=True)
class Option:
    """A typed pass option: its name (the pass function's keyword), type, default and a line
    of documentation. ``required`` options have no default."""

    name: str
    type: str
    default: object = None
    doc: str = ""
    required: bool = False

    def describe(self) -> str:
        """``name: type = default`` (or ``(required)``)."""
        tail = "(required)" if self.required else f"= {_show(self.default)}"
        return f"{self.name}: {self.type} {tail}"


@dataclass(frozen=True)
class PassInfo:
    """A registered pass: what it is called, what it takes, and how to call it."""

    name: str
    function: Callable
    options: tuple[Option, ...]
    description: str
    kind: str = "transform"
    requires: tuple[str, ...] = ("layered",)
    ensures: tuple[str, ...] = ("layered", "checked")
    data: str = "none"
    returns_info: bool = False

    @property
    def option_map(self) -> dict[str, Option]:
        return {o.name: o for o in self.options}

    @property
    def needs_data(self) -> bool:
        """True when the pass cannot run without x (or, for "scores", a scored graph)."""
        return self.data in ("scores", "required")

    def call(self, graph: KanGraph, x=None, **options):
        """The pass function in the registry's convention ``(graph, x=None, **options)``."""
        if self.data != "none":
            options["x"] = x
        return self.function(graph, **options)


@dataclass(frozen=True)
class PassSpec:
    """One step of a pipeline: a pass name and its options (and, from text, where it sits)."""

    name: str
    options: Mapping = field(default_factory=dict)
    column: int | None = None

    def __str__(self) -> str:
        if not self.options:
            return self.name
        return self.name + "{" + ",".join(f"{k}={_show(v)}" for k, v in self.options.items()) + "}"


@dataclass
class PassRecord:
    """What one step of a run did: the pass, its 1-based position, its options, the graph after
    it (transforms) or its result (analyses), extra info a transform returned, and timings."""

    name: str
    position: int
    options: dict
    kind: str
    graph: KanGraph | None = None
    result: object = None
    info: object = None
    seconds: float = 0.0
    verify_seconds: float = 0.0


@dataclass
class TimingReport:
    """Wall-clock time of each pass of a run (and of its verification)."""

    records: list[PassRecord] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(r.seconds + r.verify_seconds for r in self.records)

    def table(self) -> str:
        """A text table: position, pass, pass time, verify time, share of the total."""
        total = self.total or 1.0
        rows = [f"{'#':>3}  {'pass':<20} {'time (s)':>10} {'verify (s)':>11} {'share':>7}"]
        for r in self.records:
            share = 100 * (r.seconds + r.verify_seconds) / total
            rows.append(f"{r.position:>3}  {r.name:<20} {r.seconds:>10.4f} "
                        f"{r.verify_seconds:>11.4f} {share:>6.1f}%")
        rows.append(f"{'':>3}  {'total':<20} {self.total:>10.4f}")
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.table()


# ---------------------------------------------------------------------------- registry
_REGISTRY: dict[str, PassInfo] = {}


def register_pass(name: str, *, description: str, options: Iterable = (), kind: str = "transform",
                  requires: Iterable[str] = ("layered",), ensures: Iterable[str] | None = None,
                  data: str = "none", returns_info: bool = False, replace: bool = False):
    """Decorator registering ``function(graph, [x=...,] **options)`` as pass ``name``.

    ``options``: (name, type, doc) triples, one per keyword of the function besides the graph
    and ``x``; defaults come from the function's signature (none: the option is required).
    ``ensures`` defaults to the required level plus "checked" for transforms, nothing for
    analyses. ``returns_info``: the transform returns (graph, info).
    """
    def decorate(function: Callable) -> Callable:
        info = _make_info(name, function, description, tuple(options), kind, tuple(requires),
                          ensures, data, returns_info)
        if name in _REGISTRY and not replace:
            raise PassError(f"a pass named {name!r} is already registered")
        _REGISTRY[name] = info
        return function
    return decorate


def _make_info(name, function, description, options, kind, requires, ensures, data,
               returns_info) -> PassInfo:
    if not isinstance(name, str) or not name or name != name.lower() or "_" in name:
        raise PassError(f"pass names are kebab-case (e.g. 'prune-edge'), got {name!r}")
    if kind not in ("transform", "analysis"):
        raise PassError(f"pass {name!r}: kind must be 'transform' or 'analysis', got {kind!r}")
    if data not in DATA_MODES:
        raise PassError(f"pass {name!r}: data must be one of {DATA_MODES}, got {data!r}")
    for r in requires:
        if r not in LEVELS:
            raise PassError(f"pass {name!r}: requires {r!r} is not one of {LEVELS}")
    if ensures is None:
        ensures = (*requires, "checked") if kind == "transform" else ()
    ensures = tuple(ensures)
    for e in ensures:
        if e not in ENSURES:
            raise PassError(f"pass {name!r}: ensures {e!r} is not one of {ENSURES}")
    params = inspect.signature(function).parameters
    keywords = [p for p in list(params.values())[1:]
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "x"]
    if data != "none" and "x" not in params:
        raise PassError(f"pass {name!r} uses data but its function takes no x")
    declared = {o[0]: o for o in options}
    missing = [p.name for p in keywords if p.name not in declared]
    extra = [n for n in declared if n not in params]
    if missing or extra:
        raise PassError(f"pass {name!r}: options must match the function's keywords; "
                        f"undeclared {missing}, unknown {extra}")
    opts = []
    for p in keywords:
        _, typ, doc = declared[p.name]
        if typ not in OPTION_TYPES:
            raise PassError(f"pass {name!r}: option {p.name!r} has type {typ!r}, not one of "
                            f"{OPTION_TYPES}")
        required = p.default is _REQUIRED
        opts.append(Option(p.name, typ, None if required else p.default, doc, required))
    return PassInfo(name, function, tuple(opts), description, kind, requires, ensures, data,
                    returns_info)


def unregister_pass(name: str) -> None:
    """Remove pass ``name`` from the registry (for passes registered by tests or plugins)."""
    _REGISTRY.pop(name, None)


def registered_passes() -> dict[str, PassInfo]:
    """Every registered pass by name, sorted by name."""
    return dict(sorted(_REGISTRY.items()))


def get_pass(name: str) -> PassInfo:
    """The registered pass ``name``; PipelineError with a did-you-mean otherwise."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    raise PipelineError(_unknown_pass(name))


def _unknown_pass(name: str) -> str:
    close = difflib.get_close_matches(str(name).replace("_", "-"), list(_REGISTRY), n=1,
                                      cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else "; `kanir opt --list-passes` lists them"
    return f"unknown pass {name!r}{hint}"


def pass_listing() -> str:
    """Every registered pass with its description, data use and options (for --list-passes)."""
    out = []
    for info in registered_passes().values():
        tags = [info.kind]
        if info.data != "none":
            tags.append({"optional": "data optional", "scores": "needs data or scores",
                         "required": "needs data"}[info.data])
        if info.requires != ("layered",):
            tags.append("requires " + "/".join(info.requires))
        out.append(f"{info.name}  [{', '.join(tags)}]  {info.description}")
        for o in info.options:
            out.append(f"    {o.describe():<40} {o.doc}")
    return "\n".join(out)


# ---------------------------------------------------------------------------- calling passes
def run_pass(name: str, graph: KanGraph, x=None, **options):
    """Run one registered pass through the manager: a transform returns its graph (checked
    once), an analysis its result."""
    pm = PassManager([PassSpec(name, options)], x=x)
    g = pm.run(graph)
    return pm.records[0].result if get_pass(name).kind == "analysis" else g


def _checked_options(info: PassInfo, options: Mapping, position: int) -> dict:
    """The full keyword set for a pass: given options plus defaults; unknown or missing
    required options raise PipelineError naming the pass."""
    known = info.option_map
    for key in options:
        if key not in known:
            raise PipelineError(f"pass {info.name!r} (#{position}) {_unknown_option(info, key)}")
    missing = [o.name for o in info.options if o.required and o.name not in options]
    if missing:
        raise PipelineError(f"pass {info.name!r} (#{position}) needs option(s) "
                            f"{', '.join(missing)}: {_option_help(info)}")
    return {o.name: options.get(o.name, o.default) for o in info.options}


def _unknown_option(info: PassInfo, key: str) -> str:
    close = difflib.get_close_matches(key, list(info.option_map), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"has no option {key!r}{hint} (options: {_option_help(info)})"


def _option_help(info: PassInfo) -> str:
    return ", ".join(o.describe() for o in info.options) or "none"


# ---------------------------------------------------------------------------- pipeline text
def parse_pipeline(text: str) -> list[PassSpec]:
    """Pipeline text to pass specs, checked against the registry: unknown passes (with a
    did-you-mean), unknown options and values of the wrong type raise PipelineError with a
    caret under the offending column."""
    specs = []
    for item in parse_pipeline_text(text):
        if item.name not in _REGISTRY:
            raise PipelineError(_unknown_pass(item.name), text, item.column)
        info = _REGISTRY[item.name]
        opts: dict = {}
        for opt in item.options:
            if opt.name not in info.option_map:
                raise PipelineError(f"pass {info.name!r} {_unknown_option(info, opt.name)}",
                                    text, opt.column)
            if opt.name in opts:
                raise PipelineError(f"option {opt.name!r} of pass {info.name!r} is given twice",
                                    text, opt.column)
            opts[opt.name] = _typed(info, info.option_map[opt.name], opt.value, text)
        missing = [o.name for o in info.options if o.required and o.name not in opts]
        if missing:
            raise PipelineError(f"pass {info.name!r} needs option(s) {', '.join(missing)}: "
                                f"{_option_help(info)}", text, item.column)
        specs.append(PassSpec(item.name, opts, item.column))
    return specs


def _typed(info: PassInfo, option: Option, lit: Literal, text: str):
    """The Python value of ``lit`` for ``option``; PipelineError when the type does not fit."""
    t, k = option.type, lit.kind
    if k == "none" and (not option.required and option.default is None or t == "any"):
        return None
    ok = {"int": k == "int", "float": k in ("int", "float"), "bool": k == "bool",
          "str": k in ("word", "str"), "list": k == "list", "any": True}[t]
    if not ok:
        article = "an" if t == "int" else "a"
        raise PipelineError(f"option {option.name!r} of pass {info.name!r} must be {article} "
                            f"{t}, got {lit.describe()}", text, lit.column)
    v = lit.python()
    return float(v) if t == "float" else v


def _as_specs(pipeline) -> list[PassSpec]:
    if isinstance(pipeline, str):
        return parse_pipeline(pipeline)
    if isinstance(pipeline, PassSpec):
        return [pipeline]
    specs = []
    for step in pipeline:
        if isinstance(step, PassSpec):
            specs.append(step)
        elif isinstance(step, str):
            specs.append(PassSpec(step, {}))
        elif isinstance(step, tuple) and len(step) == 2 and isinstance(step[1], Mapping):
            specs.append(PassSpec(step[0], dict(step[1])))
        else:
            raise PipelineError(f"a pipeline step must be a pass name, (name, options) or a "
                                f"PassSpec, got {step!r}")
    return specs


# ---------------------------------------------------------------------------- the manager
class PassManager:
    """Runs a pipeline of registered passes on a graph.

    ``pipeline``: text (``"prune{edge_th=0.05},auto-swap"``), or a list of pass names,
    ``(name, options)`` pairs or :class:`PassSpec`. ``x``: data given to every pass that uses
    it. ``verify``: check ``graph.check()`` and each pass's ensures once after it (passes run
    through the manager skip their own check). ``timing``: keep a :class:`TimingReport` in
    ``timing_report`` (records are timed either way). ``print_ir_after_all``: print the IR
    after each transform to ``ir_stream`` (default stdout). ``on_version(record)``: called once
    after each transform pass with its :class:`PassRecord`, e.g. to record a model version.
    """

    def __init__(self, pipeline, x=None, verify: bool = True, timing: bool = False,
                 print_ir_after_all: bool = False, on_version: Callable | None = None,
                 ir_stream=None):
        self.specs = _as_specs(pipeline)
        for pos, spec in enumerate(self.specs, 1):
            if spec.name not in _REGISTRY:
                raise PipelineError(f"pipeline step #{pos}: {_unknown_pass(spec.name)}")
        self.x = x
        self.verify = bool(verify)
        self.timing = bool(timing)
        self.print_ir_after_all = bool(print_ir_after_all)
        self.on_version = on_version
        self.ir_stream = ir_stream
        self.records: list[PassRecord] = []

    def __str__(self) -> str:
        return ",".join(str(s) for s in self.specs)

    @property
    def timing_report(self) -> TimingReport | None:
        """Per-pass times of the last run (None unless ``timing=True``)."""
        return TimingReport(list(self.records)) if self.timing else None

    @property
    def results(self) -> list[tuple[str, object]]:
        """(pass name, result) for each analysis of the last run, in order."""
        return [(r.name, r.result) for r in self.records if r.kind == "analysis"]

    def run(self, graph: KanGraph) -> KanGraph:
        """Run every pass in order and return the final graph (the input is not modified)."""
        if not isinstance(graph, KanGraph):
            raise PassError(f"the pass manager needs a KanGraph, got {type(graph).__name__}")
        self.records = []
        g = graph
        for pos, spec in enumerate(self.specs, 1):
            g = self._run_one(g, _REGISTRY[spec.name], spec, pos)
        return g

    def _where(self, info: PassInfo, pos: int) -> str:
        return f"pass {info.name!r} (#{pos} of pipeline '{self}')"

    def _run_one(self, g: KanGraph, info: PassInfo, spec: PassSpec, pos: int) -> KanGraph:
        options = _checked_options(info, spec.options, pos)
        self._require(g, info, pos)
        start = time.perf_counter()
        try:
            with checks_by_manager():
                out = info.call(g, self.x, **options)
        except Exception as e:
            try:
                e.kanir_pass = (info.name, pos)  # the CLI names the failing pass
            except AttributeError:  # an exception type without a __dict__
                pass
            raise
        seconds = time.perf_counter() - start
        rec = PassRecord(info.name, pos, options, info.kind, seconds=seconds)
        self.records.append(rec)
        if info.kind == "analysis":
            if isinstance(out, KanGraph):
                raise PassError(f"{self._where(info, pos)} is an analysis but returned a "
                                "KanGraph; analyses return results, transforms return graphs")
            rec.result = out
            return g
        if info.returns_info:
            out, rec.info = out
        if not isinstance(out, KanGraph):
            raise PassError(f"{self._where(info, pos)} is a transform but returned "
                            f"{type(out).__name__}, not a KanGraph")
        start = time.perf_counter()
        if self.verify:
            self._ensure(out, info, pos)
        rec.verify_seconds = time.perf_counter() - start
        rec.graph = out
        if self.print_ir_after_all:
            self._print_ir(out, info, pos)
        if self.on_version is not None:
            self.on_version(rec)
        return out

    def _require(self, g: KanGraph, info: PassInfo, pos: int) -> None:
        if g.level not in info.requires:
            hint = ("; canonicalize it first" if g.level == "expr" else "")
            raise PassError(f"{self._where(info, pos)} requires a graph of level "
                            f"{' or '.join(map(repr, info.requires))}, got level {g.level!r}{hint}")
        if self.x is not None or info.data in ("none", "optional"):
            return
        if info.data == "required":
            raise PassError(f"{self._where(info, pos)} needs data x (kanir opt: --data FILE)")
        from .attribution import has_scores

        if not has_scores(g):
            raise PassError(f"{self._where(info, pos)} needs data x (kanir opt: --data FILE) or "
                            "a graph carrying attribution scores")

    def _ensure(self, out: KanGraph, info: PassInfo, pos: int) -> None:
        try:
            out.check()
        except GraphError as e:
            raise PassError(f"{self._where(info, pos)} broke the graph contract: {e}") from e
        for level in ("layered", "expr"):
            if level in info.ensures and out.level != level:
                raise PassError(f"{self._where(info, pos)} ensures a {level} graph but returned "
                                f"level {out.level!r}")
        if "scored" in info.ensures:
            from .attribution import has_scores

            if not has_scores(out):
                raise PassError(f"{self._where(info, pos)} ensures attribution scores but its "
                                "result carries none")

    def _print_ir(self, g: KanGraph, info: PassInfo, pos: int) -> None:
        stream = self.ir_stream if self.ir_stream is not None else sys.stdout
        text = getattr(g, "to_text", None) or g.summary  # to_text: the textual IR, when present
        print(f"// ----- IR after {info.name} (#{pos}) ----- //", file=stream)
        print(text(), file=stream)


def _show(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, list | tuple):
        return "[" + ",".join(_show(u) for u in v) + "]"
    if isinstance(v, str):
        return v if v.replace("-", "").replace("_", "").isalnum() and v[:1].isalpha() \
            else f'"{v}"'
    return repr(v)


# ---------------------------------------------------------------------------- built-in passes
#: Public functions of kanir.passes that return a KanGraph but are not passes, and why.
INTERNAL_FUNCTIONS = {
    "attribution.scored": "helper: the graph if it carries scores, else attribute(graph, x)",
    "swap.apply_permutations": "helper: several permute-layer steps at once",
    "structure.graph_from_tree": "a constructor from a FunctionTree, not a graph-to-graph pass",
}

_EDGE = (("l", "int", "KAN layer of the edge"), ("i", "int", "source node"),
         ("j", "int", "target subnode"))
_NODE = (("l", "int", "node layer"), ("i", "int", "node index"))
_FOLD = ("fold_mean", "bool", "move removed edges' mean activation into subnode biases")
_FIT = (("a_range", "list", "search range of a in c*f(a*x+b)+d"),
        ("b_range", "list", "search range of b"),
        ("y_th", "float", "clip of the target values for the fit"))


def _register_builtin() -> None:
    """Register every pass of kanir.passes (called once at import)."""
    from . import attribution as at
    from . import augment as au
    from . import canonicalize as ca
    from . import edge_mode as em
    from . import expand as ex
    from . import modules as mo
    from . import prune as pr
    from . import swap as sw
    from . import symbolic as sy

    def reg(name, fn, description, options=(), **kw):
        register_pass(name, description=description, options=options, **kw)(fn)

    reg("canonicalize", ca.canonicalize, "expression-level graph -> layered KAN (same function)",
        (("mult_outputs", "bool", "put output products in the output layer, as pykan"),
         ("validate", "bool", "check the input expression graph first")),
        requires=("expr",), ensures=("layered", "checked"))
    reg("expand-width", ex.expand_width, "add nodes to a hidden layer (same function)",
        (("layer", "int", "hidden node layer to grow"), ("n", "int", "number of nodes to add"),
         ("kind", "str", "'sum' or 'mult'"), ("arity", "int", "subnodes per mult node")))
    reg("expand-depth", ex.expand_depth, "insert an identity layer (same function)",
        (("layer", "int", "node layer after which to insert (none: after the outputs)"),))
    reg("perturb", ex.perturb, "make the network trainable around its function (pykan modes + zero-edges)",
        (("mag", "float", "size relative to a fresh edge"),
         ("mode", "str", "'non-intrusive', 'minimal' or 'all'"),
         ("seed", "int", "seed of the random coefficients")), data="optional")
    reg("module", mo.module, "cut a module described by a spec off from the rest",
        (("start_layer", "int", "first node layer of the spec"),
         ("spec", "str", 'module spec, e.g. "[0,1]->[0,1]->[0,1]->[0]"')))
    reg("augment-input", au.augment_input, "add inputs defined by formulas of the inputs",
        (("original_variables", "list", "names of the current inputs"),
         ("auxiliary_variables", "list", "new inputs, as 'name=formula' or formulas"),
         ("ranges", "list", "(low, high) grid range per new input")))
    reg("attribute", at.attribute, "annotate nodes and edges with Eq. 9 attribution scores",
        (("output", "any", "restrict to one output (index or name)"),
         ("eps", "float", "added to subnode standard deviations")),
        data="required", ensures=("layered", "checked", "scored"))
    reg("prune", pr.prune, "prune-node then prune-edge then drop-dead-nodes",
        (("node_th", "float", "node score threshold"), ("edge_th", "float", "edge score "
         "threshold"), _FOLD), data="scores")
    reg("prune-node", pr.prune_node, "remove hidden nodes scoring at most the threshold",
        (("threshold", "float", "node score threshold"),
         ("active_neurons", "any", "nodes to keep instead: one list per hidden layer"), _FOLD),
        data="optional")
    reg("prune-edge", pr.prune_edge, "remove edges scoring at most the threshold",
        (("threshold", "float", "edge score threshold"), _FOLD), data="scores")
    reg("prune-input", pr.prune_input, "remove inputs by score, top_k or an explicit list",
        (("threshold", "float", "input score threshold"), ("top_k", "int", "keep the k best"),
         ("active_inputs", "any", "inputs to keep (indices or names)"), _FOLD),
        data="optional")
    reg("remove-edge", pr.remove_edge, "switch off one edge's spline (pykan's mask)",
        (*_EDGE, _FOLD, ("keep_symbolic", "bool", "keep a symbolic part if there is one")))
    reg("remove-node", pr.remove_node, "cut a node's edges off (indices stay)",
        (*_NODE, ("mode", "str", "'all', 'up' or 'down'")))
    reg("delete-node", pr.delete_node, "delete a hidden node (later indices shift)",
        (*_NODE, _FOLD))
    reg("drop-dead-nodes", pr.drop_dead_nodes, "remove hidden nodes that feed nothing or are "
        "constant")
    reg("auto-swap", sw.auto_swap, "reorder hidden nodes to minimise the connection cost",
        (("max_sweeps", "int", "sweeps of the block coordinate descent"),), data="scores")
    reg("permute-layer", sw.permute_layer, "reorder the nodes of a hidden layer",
        (("l", "int", "hidden node layer"), ("perm", "list", "old node index for each slot")))
    reg("set-mode", em.set_mode, "switch an edge between spline, symbolic, both or off",
        (*_EDGE, ("mode", "str", "'n', 's', 'sn' or off"),
         ("mask_n", "float", "spline weight in 'sn'")))
    reg("fix-symbolic", sy.fix_symbolic, "set one edge to c*f(a*x+b)+d (fitted or given)",
        (*_EDGE, ("fun", "str", "library function name"),
         ("params", "list", "(a, b, c, d); none: fit them"),
         ("samples", "any", "(edge inputs, edge outputs) instead of x"),
         ("fit_params", "bool", "fit (a, b, c, d) to the samples"), *_FIT[:2],
         ("snap", "bool", "snap parameters to simple values"),
         ("snap_tol", "float", "relative RMSE allowed by snapping"), _FIT[2]),
        data="optional", returns_info=True)
    reg("unfix-symbolic", sy.unfix_symbolic, "restore one edge's spline", _EDGE)
    reg("unfix", sy.unfix, "restore every edge that keeps a spline")
    reg("auto-symbolic", sy.auto_symbolic, "fix every spline edge to its best library function",
        (("lib", "list", "function names (none: pykan's 29)"), *_FIT[:2],
         ("r2_threshold", "float", "keep the spline below this R^2"),
         ("weight_simple", "float", "simplicity vs R^2 (0..1)"),
         ("snap", "bool", "snap parameters to simple values"),
         ("snap_tol", "float", "relative RMSE allowed by snapping"),
         ("edges", "list", "only these (l, i, j) edges"),
         ("drop_constant", "bool", "remove edges fitted as constants"), _FIT[2],
         ("grid_number", "int", "grid points of the (a, b) search"),
         ("iteration", "int", "refinements of the (a, b) search"),
         ("constraints", "any", "Constraint objects (kanir.science.constraints)")),
        data="required", returns_info=True)
    # analyses: results, never graphs
    reg("find-swap", sw.find_swap, "the node order auto-swap would choose, per hidden layer",
        (("max_sweeps", "int", "sweeps of the block coordinate descent"),),
        kind="analysis", data="scores")
    reg("connection-cost", sw.connection_cost, "sum of edge score x distance for the layout",
        kind="analysis", data="scores")
    reg("module-cuts", mo.module_cuts, "the (l, i, j) positions a module spec cuts",
        (("start_layer", "int", "first node layer of the spec"),
         ("spec", "str", "module spec")), kind="analysis")
    reg("neuron-attribution", at.neuron_attribution, "per node of a layer, each input's share",
        (("l", "int", "node layer"), ("out_score", "list", "starting scores of the nodes"),
         ("eps", "float", "added to subnode standard deviations")),
        kind="analysis", data="required")
    reg("score-arrays", at.score_arrays, "the attribution scores a graph carries, as arrays",
        kind="analysis")
    reg("symbolic-edges", sy.symbolic_edges, "edges whose spline is active (auto-symbolic's "
        "candidates)", (("include_both", "bool", "include edges with both parts"),),
        kind="analysis")
    reg("suggest-symbolic", sy.suggest_symbolic, "the library functions that best fit an edge",
        (*_EDGE, ("samples", "any", "(edge inputs, edge outputs) instead of x"),
         ("lib", "list", "function names (none: pykan's 29)"),
         ("topk", "int", "how many to return"),
         ("weight_simple", "float", "simplicity vs R^2 (0..1)"), *_FIT,
         ("r2_loss_fun", "any", "pykan's custom R^2 term"),
         ("c_loss_fun", "any", "pykan's custom complexity term"),
         ("prior", "any", "a Prior (kanir.symbolic.priors) or a list of them")),
        kind="analysis", data="optional")


_register_builtin()
