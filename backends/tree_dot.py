"""Draw a :class:`kanir.science.tree.FunctionTree` with graphviz, in KAN 2.0's two styles.

``style="tree"``: operators as labelled nodes (+, ×, gsep, sym) with the variables as leaves on
the bottom row. ``style="box"``: nested boxes (graphviz clusters) around each variable group,
labelled with its structure. Building the DOT source needs only the ``graphviz`` python package;
rendering (SVG, PNG, PDF) needs the ``dot`` program.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import graphviz

from kanir.errors import DiagramError, GraphvizNotFoundError

__all__ = ["GraphvizNotFoundError", "render_tree", "tree_to_dot"]

STYLES = ("tree", "box")
_OP = {"add": "+", "mul": "×", "gsep": "gsep", "sym": "sym"}
_SOURCE_SUFFIXES = {".dot", ".gv"}


def _node_id(indices) -> str:
    return "g_" + "_".join(str(i) for i in indices)


def _leaf_id(index: int) -> str:
    return f"v{index}"


def _evidence(node) -> str:
    """Tooltip text: the group and its scores."""
    sc = ", ".join(f"{k} {v:.1e}" for k, v in node.scores.items())
    return f"{node.label}: {sc}" if sc else node.label


def tree_to_dot(tree, style: str = "tree", name: str = "function_tree") -> graphviz.Digraph:
    """The DOT graph of ``tree`` in ``style`` "tree" (operator nodes) or "box" (nested boxes)."""
    if style not in STYLES:
        raise DiagramError(f"unknown tree diagram style {style!r}; choose 'tree' or 'box'")
    dot = graphviz.Digraph(name=name)
    dot.attr(rankdir="TB", fontname="Helvetica")
    dot.attr("node", fontname="Helvetica")
    if style == "tree":
        _draw_tree(dot, tree)
    else:
        _draw_box(dot, tree.root)
    _draw_unused(dot, tree)
    return dot


def _draw_tree(dot: graphviz.Digraph, tree) -> None:
    leaves = []
    for node in tree.nodes():
        if node.is_leaf:
            leaves.append(node)
            continue
        nid = _node_id(node.indices)
        dot.node(nid, _OP.get(node.kind, node.kind), shape="circle", tooltip=_evidence(node))
        for c in node.children:
            cid = _leaf_id(c.indices[0]) if c.is_leaf else _node_id(c.indices)
            dot.edge(nid, cid, arrowhead="none")
    with dot.subgraph(name="leaves") as row:
        row.attr(rank="sink")
        for leaf in leaves:
            row.node(_leaf_id(leaf.indices[0]), leaf.variables[0], shape="plaintext")


def _draw_box(dot: graphviz.Digraph, node) -> None:
    if node.is_leaf:
        dot.node(_leaf_id(node.indices[0]), node.variables[0], shape="plaintext")
        return
    with dot.subgraph(name="cluster_" + _node_id(node.indices)) as box:
        box.attr(label=f"{node.kind}: {_OP.get(node.kind, node.kind)}", labelloc="b",
                 style="rounded", tooltip=_evidence(node))
        for c in node.children:
            _draw_box(box, c)


def _draw_unused(dot: graphviz.Digraph, tree) -> None:
    for name in tree.unused:
        dot.node(_leaf_id(tree.names.index(name)), f"{name} (unused)", shape="plaintext",
                 fontcolor="gray50")


def render_tree(tree, path, style: str = "tree") -> Path:
    """Write the diagram of ``tree`` to ``path``; the format is the suffix (.svg, .png, .pdf).

    A .dot or .gv path gets the DOT source and needs no graphviz install.
    """
    path = Path(path)
    dot = tree_to_dot(tree, style)
    if path.suffix.lower() in _SOURCE_SUFFIXES:
        path.write_text(dot.source, encoding="utf-8")
        return path
    fmt = path.suffix.lower().lstrip(".") or "svg"
    if shutil.which("dot") is None:
        raise GraphvizNotFoundError(
            f"rendering {path.name} needs the graphviz 'dot' program, which is not installed: "
            "run 'apt-get install graphviz' (Debian/Ubuntu) or 'brew install graphviz' (macOS), "
            "or write the DOT source instead with a .dot path")
    try:
        data = dot.pipe(format=fmt)
    except (graphviz.ExecutableNotFound, graphviz.CalledProcessError, ValueError) as e:
        raise DiagramError(f"graphviz could not render {path.name} as {fmt}: {e}") from e
    path.write_bytes(data)
    return path
