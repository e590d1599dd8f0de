"""The graphviz backend: ``to_dot(graph)`` draws a KanGraph as a ``graphviz.Digraph``.

Inputs and outputs carry their names; sum nodes are circles "+", mult nodes are squares "×"
(their factor subnodes small dots), identity pass-through nodes are points. Symbolic edges are
labelled with their function of x; spline edges say "spline" or, with ``curves=True``, show a
small matplotlib plot of the curve, written to a folder the caller chooses (by default a fresh
temporary folder, never the working directory, removed once the diagram is rendered by
:func:`plot` or garbage-collected). Edge opacity follows attribution scores (the
``scores`` argument or the edge attribute ``score``). Building the Digraph is pure Python;
:func:`render` runs the ``dot`` program, and says how to install it when it is missing.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import weakref
from pathlib import Path

import graphviz
import numpy as np
import sympy

from kanir.errors import DiagramError, GraphvizNotFoundError
from kanir.ir.activation import Activation
from kanir.ir.graph import KanGraph

__all__ = ["DiagramError", "plot", "render", "to_dot"]

INSTALL_HINT = ("install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), "
                "`brew install graphviz` (macOS) or see https://graphviz.org/download/")

_X = sympy.Symbol("x")
_COLORS = {"input": "#dbe8fb", "output": "#dcf1e1", "sum": "#ffffff", "mult": "#fbe3dd"}


# ---------------------------------------------------------------------------- building
def to_dot(graph: KanGraph, *, title: str | None = None, curves: bool = False,
           curve_dir=None, scores: dict | None = None, beta: float = 3.0,
           rankdir: str = "BT", label_digits: int = 4, input_labels=None,
           output_labels=None) -> graphviz.Digraph:
    """The diagram of ``graph`` (layered or expression level) as a ``graphviz.Digraph``.

    ``scores``: {(l, i, j): score} for edge opacity ``tanh(beta * score)``; by default the
    edges' ``score`` attributes, when present. ``curves``: draw spline edges as small plots,
    written as PNG files into ``curve_dir`` (created if needed; when None, a new temporary
    folder that is deleted with the returned Digraph; its path is kept as ``dot.curve_dir``).
    ``rankdir``: "BT" puts inputs at the bottom. Inputs and outputs are drawn in model order,
    labelled with their names or with ``input_labels`` / ``output_labels`` (pykan's
    ``in_vars`` / ``out_vars``: strings or sympy symbols, one per input / output).
    """
    if not isinstance(graph, KanGraph):
        raise DiagramError(f"to_dot needs a KanGraph, got {type(graph).__name__}; for a model "
                           f"use kanir.backends.graphviz.plot(model) or model.graph")
    if rankdir not in ("BT", "TB", "LR", "RL"):
        raise DiagramError(f"rankdir must be one of BT, TB, LR, RL, got {rankdir!r}")
    if scores is not None and not isinstance(scores, dict):
        raise DiagramError("scores must be a dict {(l, i, j): score}")
    graph.check()
    labels = (_labels(input_labels, graph.input_names, "input_labels (pykan's in_vars)"),
              _labels(output_labels, graph.output_names, "output_labels (pykan's out_vars)"))
    folder = None
    if curves:
        folder = Path(curve_dir) if curve_dir is not None else Path(
            tempfile.mkdtemp(prefix="kanir-curves-"))
        folder.mkdir(parents=True, exist_ok=True)
    dot = graphviz.Digraph("kan", graph_attr={"rankdir": rankdir, "splines": "true",
                                              "nodesep": "0.25", "ranksep": "0.45",
                                              "fontname": "Helvetica"},
                           node_attr={"fontname": "Helvetica", "fontsize": "11"},
                           edge_attr={"fontname": "Helvetica", "fontsize": "9",
                                      "arrowsize": "0.5"})
    if title:
        dot.attr(label=title, labelloc="t", fontsize="14")
    dot.curve_dir = str(folder) if folder is not None else None
    dot.curve_cleanup = None
    if curves and curve_dir is None:  # the temporary folder lives as long as the diagram
        dot.curve_cleanup = weakref.finalize(dot, shutil.rmtree, str(folder), True)
    try:
        _Drawer(graph, dot, folder, scores, beta, label_digits, labels).draw()
    except BaseException:
        if dot.curve_cleanup is not None:
            dot.curve_cleanup()
        raise
    return dot


class _Drawer:
    """Writes the nodes and edges of one graph into a Digraph."""

    def __init__(self, graph, dot, folder, scores, beta, digits, labels):
        self.graph, self.dot, self.folder = graph, dot, folder
        self.input_labels, self.output_labels = labels
        self.scores, self.beta, self.digits = scores, beta, digits
        self.g = graph.nx
        self.layered = graph.level == "layered"

    def draw(self) -> None:
        g = self.g
        by_rank: dict = {}
        for n, a in g.nodes(data=True):
            if a["kind"] == "subnode":
                continue
            self._node(n, a)
            if self.layered:
                by_rank.setdefault(a["layer"], []).append(n)
        for n, a in g.nodes(data=True):
            if a["kind"] == "subnode" and self._shows_subnode(n):
                self.dot.node(_id(n), label="", shape="point", width="0.06")
                cons = self._consumer(n)
                self.dot.edge(_id(n), _id(cons), arrowhead="none", color="#888888")
        if not self.layered:  # inputs and outputs each on one row, in model order
            for kind in ("input", "output"):
                by_rank[kind] = [n for n, a in g.nodes(data=True) if a["kind"] == kind]
        ends = {0, self.graph.depth, "input", "output"} if self.layered else {"input", "output"}
        for l, nodes in sorted(by_rank.items(), key=lambda item: str(item[0])):
            nodes = sorted(nodes, key=lambda n: g.nodes[n]["index"])
            with self.dot.subgraph(name=f"rank_{l}") as sg:
                sg.attr(rank="same")
                for n in nodes:
                    sg.node(_id(n))
                if l in ends:  # invisible edges keep graphviz from reordering the row
                    for left, right in zip(nodes, nodes[1:]):
                        sg.edge(_id(left), _id(right), style="invis")
        for u, v, a in g.edges(data=True):
            if "act" in a:
                self._act_edge(u, v, a)

    # ------------------------------------------------------------------ nodes
    def _node(self, n, a) -> None:
        kind = a["kind"]
        product = kind == "mult" or bool(a.get("arity"))
        if kind == "input":
            label = self.input_labels[a["index"]]
            self.dot.node(_id(n), label=label, shape="box", style="rounded,filled",
                          fillcolor=_COLORS["input"])
            return
        if self._is_output(n, a):
            name = self.output_labels[a["index"]]
            label = f"{name}{' = ×' if product else ''}{self._affine_text(n, a)}"
            self.dot.node(_id(n), label=label, shape="box", style="rounded,filled",
                          fillcolor=_COLORS["output"])
            return
        if product:
            self.dot.node(_id(n), label="×" + self._affine_text(n, a), shape="square",
                          style="filled", fillcolor=_COLORS["mult"], width="0.3", fixedsize="false")
            return
        if self._is_pass_through(n, a):
            self.dot.node(_id(n), label="", shape="point", width="0.08")
            return
        self.dot.node(_id(n), label="+" + self._affine_text(n, a), shape="circle",
                      style="filled", fillcolor=_COLORS["sum"], width="0.3")

    def _is_output(self, n, a) -> bool:
        if self.layered:
            return a["layer"] == self.graph.depth
        return a["kind"] == "output"

    def _affine_text(self, n, a) -> str:
        """Non-trivial affines of the node and, for a sum, of its subnode (drawn merged)."""
        parts = []
        product = a["kind"] == "mult" or bool(a.get("arity"))
        subs = [] if product else [self.g.nodes[s] for s in self._subnodes(n)]
        for attrs in subs + [a]:
            s, b = attrs.get("scale", 1.0), attrs.get("bias", 0.0)
            if s != 1:
                parts.append(f"·{_fmt(s, self.digits)}")
            if b != 0:
                parts.append(f"{'+' if b > 0 else '−'}{_fmt(abs(b), self.digits)}")
        return ("\n" + " ".join(parts)) if parts else ""

    def _subnodes(self, n) -> list:
        g = self.g
        return [p for p in g.predecessors(n) if g.edges[p, n].get("wire")]

    def _shows_subnode(self, s) -> bool:
        cons = self._consumer(s)
        a = self.g.nodes[cons]
        return a["kind"] == "mult" or bool(a.get("arity"))

    def _consumer(self, s):
        return next(v for v in self.g.successors(s) if self.g.edges[s, v].get("wire"))

    def _is_pass_through(self, n, a) -> bool:
        subs = self._subnodes(n)
        if len(subs) != 1 or a.get("scale", 1.0) != 1 or a.get("bias", 0.0) != 0:
            return False
        s = subs[0]
        sa = self.g.nodes[s]
        if sa.get("scale", 1.0) != 1 or sa.get("bias", 0.0) != 0:
            return False
        ins = [self.g.edges[u, s]["act"] for u in self.g.predecessors(s)]
        return len(ins) == 1 and _is_identity(ins[0])

    # ------------------------------------------------------------------ edges
    def _act_edge(self, u, v, a) -> None:
        act: Activation = a["act"]
        target = v if self._shows_subnode(v) else self._consumer(v)
        attrs = {}
        alpha = self._alpha(u, v, a)
        if alpha is not None:
            hexa = f"{max(0, min(255, round(alpha * 255))):02x}"
            attrs.update(color=f"#000000{hexa}", fontcolor=f"#000000{hexa}")
        label = self._label(act)
        sp = act.spline is not None and act.spline.active
        if sp and self.folder is not None:
            img = self._curve(u, v, act)
            mid = f"img_{_id(u)}_{_id(v)}"
            self.dot.node(mid, label="", image=str(img), shape="none", width="0.6",
                          height="0.45", fixedsize="true", imagescale="true")
            self.dot.edge(_id(u), mid, arrowhead="none", **attrs)
            extra = {"label": label} if act.symbolic is not None else {}
            self.dot.edge(mid, _id(target), **attrs, **extra)
            return
        if label:
            attrs["label"] = label
        self.dot.edge(_id(u), _id(target), **attrs)

    def _alpha(self, u, v, a):
        score = None
        if self.scores is not None and self.layered:
            score = self.scores.get((u[1], u[2], v[2]))
        if score is None:
            score = a.get("score")
        if score is None:
            return None
        try:
            s = float(score)
        except (TypeError, ValueError):
            raise DiagramError(f"edge {u}->{v} has a non-numeric score {score!r}") from None
        if not math.isfinite(s):
            return 0.05
        return max(0.05, min(1.0, math.tanh(self.beta * max(s, 0.0))))

    def _label(self, act: Activation) -> str:
        parts = []
        if act.symbolic is not None and not _is_identity(act):
            parts.append(symbolic_label(act, self.digits))
        if act.spline is not None and act.spline.active and self.folder is None:
            parts.append("spline")
        return " + ".join(parts)

    def _curve(self, u, v, act: Activation) -> Path:
        name = f"edge_{_id(u)}__{_id(v)}.png"
        path = self.folder / name
        draw_curve(act, path)
        return path


def _labels(given, names: list[str], what: str) -> list[str]:
    """``given`` labels as strings (one per name), or the names themselves."""
    if given is None:
        return list(names)
    if isinstance(given, str) or not hasattr(given, "__len__"):
        raise DiagramError(f"{what} must be a list of {len(names)} labels, got {given!r}")
    if len(given) != len(names):
        raise DiagramError(f"{what} must have one label per node ({len(names)}: "
                           f"{', '.join(names)}), got {len(given)}")
    return [str(v) for v in given]


def _is_identity(act: Activation) -> bool:
    s = act.symbolic
    return (s is not None and (act.spline is None or not act.spline.active)
            and s.fun in ("x", "id", "identity", "x^1") and s.params == (1.0, 0.0, 1.0, 0.0))


def symbolic_label(act: Activation, digits: int = 4) -> str:
    """The symbolic part of an edge as a short text in x: exact when short, else rounded."""
    from kanir.backends.sympy import activation_expr

    sym_only = Activation(symbolic=act.symbolic, meta=act.meta)
    from kanir.grammar.printer import formula_text

    e = activation_expr(sym_only, _X)
    text = formula_text(e)
    if len(text) > 24:
        consts = {n: sympy.Float(n.evalf(digits), digits) for n in _constants(e)}
        text = formula_text(e.xreplace(consts))
    return text


def _constants(e: sympy.Expr) -> set:
    """The largest constant sub-expressions of ``e`` that are not plain integers."""
    if e.is_number:
        return set() if e.is_Integer else {e}
    out: set = set()
    for a in e.args:
        out |= _constants(a)
    return out


def _fmt(v: float, digits: int) -> str:
    return f"{v:.{digits}g}"


def _id(n) -> str:
    return "_".join(str(p) for p in n) if isinstance(n, tuple) else str(n)


# ---------------------------------------------------------------------------- curves
def edge_values(act: Activation, x: np.ndarray) -> np.ndarray:
    """The edge function at the points ``x`` (float64), spline and symbolic parts together, from
    the one evaluator (``kanir.backends.torch_eval``)."""
    import torch

    from kanir.backends.torch_eval import EdgeTable
    from kanir.backends.torch_eval import edge_values as layer_edge_values

    xt = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(-1, 1)
    with torch.no_grad():
        return layer_edge_values(EdgeTable.from_activation(act), xt)[:, 0, 0].numpy()


def draw_curve(act: Activation, path, x_range=None, size=(1.2, 0.9)) -> Path:
    """Save a small plot of one edge function to ``path`` (PNG) using matplotlib's Agg canvas
    (no global backend change)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if x_range is None:
        if act.spline is not None:
            x_range = act.spline.grid_range
        else:
            x_range = (-1.0, 1.0)
    lo, hi = float(x_range[0]), float(x_range[1])
    xs = np.linspace(lo, hi, 101)
    with np.errstate(all="ignore"):
        ys = edge_values(act, xs)
    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.96))
    ax.plot(xs, ys, color="black", linewidth=1.5)
    ax.set_xticks([])
    ax.set_yticks([])
    path = Path(path)
    fig.savefig(path, format="png")
    return path


# ---------------------------------------------------------------------------- output
def render(dot: graphviz.Digraph, path, format: str | None = None) -> Path:
    """Write ``dot`` to ``path``: the DOT source for .dot/.gv, else an image (format from the
    suffix: svg, png, pdf, ...) made by the ``dot`` program. Without ``dot`` installed this
    raises :class:`GraphvizNotFoundError` saying how to install it."""
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if not fmt:
        raise DiagramError(f"cannot tell the diagram format of {str(path)!r}: give it a suffix "
                           f"such as .svg, .png, .pdf or .dot")
    if not path.parent.exists():
        raise DiagramError(f"cannot write {str(path)!r}: folder {str(path.parent)!r} does not "
                           f"exist")
    if fmt in ("dot", "gv"):
        path.write_text(dot.source, encoding="utf-8")
        return path
    _check_writable(path)  # an unwritable destination is the first thing to say, dot or not
    if shutil.which("dot") is None:
        raise GraphvizNotFoundError(f"cannot render {str(path)!r}: the Graphviz 'dot' program "
                                    f"is not installed; {INSTALL_HINT}; or write the DOT source "
                                    f"with a .dot path")
    try:
        data = dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise GraphvizNotFoundError(f"cannot render {str(path)!r}: the Graphviz 'dot' program "
                                    f"is not installed; {INSTALL_HINT}") from None
    except (graphviz.CalledProcessError, ValueError) as e:
        raise DiagramError(f"Graphviz could not render {str(path)!r} as {fmt!r}: {e}") from None
    path.write_bytes(data)
    return path


def _check_writable(path: Path) -> None:
    """Raise the OSError that writing ``path`` would raise (a read-only place, a path under a
    file), leaving no file behind where there was none."""
    existed = path.exists()
    with open(path, "ab"):
        pass
    if not existed:
        path.unlink()


def plot(model_or_graph, path=None, **kw) -> graphviz.Digraph:
    """The diagram of a KAN model, a KANModule or a KanGraph (keywords as :func:`to_dot`);
    rendered to ``path`` when given. Used by ``KAN.diagram()``.

    With ``curves=True`` and no ``curve_dir``, the curve images of a rendered image are
    temporary (deleted after rendering); a .dot/.gv file refers to its images, so they are
    written beside it, into the folder ``<name>_curves``."""
    graph = _as_graph(model_or_graph)
    if path is not None and kw.get("curves") and kw.get("curve_dir") is None and \
            Path(path).suffix.lower() in (".dot", ".gv"):
        kw["curve_dir"] = Path(path).with_name(Path(path).stem + "_curves")
    dot = to_dot(graph, **kw)
    if path is not None:
        try:
            render(dot, path)
        finally:
            if dot.curve_cleanup is not None:  # the images are in the rendered file now
                dot.curve_cleanup()
    return dot


def _as_graph(obj) -> KanGraph:
    if isinstance(obj, KanGraph):
        return obj
    from kanir.backends.torch import KANModule, lift

    if isinstance(obj, KANModule):
        return lift(obj)
    graph = getattr(obj, "graph", None)
    if isinstance(graph, KanGraph):
        return graph
    raise DiagramError(f"plot needs a KAN, a KANModule or a KanGraph, got {type(obj).__name__}")
