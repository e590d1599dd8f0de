"""The markdown report of a :class:`kanir.workflows.discover.Discovery`, with its diagrams: the
function tree (tree.svg with graphviz ``dot``, else its DOT source tree.gv), the KAN after its
fit and after pruning (kan_fitted.png, kan_pruned.png), a few fitted edges with their library
candidates (edge_L_I_J.png) and the KAN of the best formula (kan.png)."""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["write_report"]

#: fitted edges drawn (the first active ones, layer by layer)
MAX_EDGES = 4


def write_report(found, directory: Path) -> Path:
    """Write ``report.md`` and the diagrams into ``directory``; returns the report's path."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["# kanir discover report", ""]
    if found.found:
        lines += [f"**Best formula:** `{found.formula}`", "",
                  f"Relative held-out RMSE (RMSE / std(y)): {found.error:.3g}; made by: "
                  f"{found.origin}.", ""]
    else:
        lines += ["**No formula found within the budget.**", ""]
    lines += [f"Search time {found.seconds:.1f} s; budget "
              + ("spent (a fit was cut short or a task skipped)." if found.budget_spent
                 else "not exhausted."), ""]
    lines += ["## How the result was decided", ""]
    if found.decided_by:
        lines += ["These steps produced the best formula (the others explored structures that "
                  "lost on the Pareto front):", ""]
        lines += [f"1. **{s.name}** ({s.seconds:.2f} s): {s.detail}" for s in found.decided_by]
    else:
        lines.append("No step produced a formula.")
    lines += ["", "## Pareto front (complexity vs held-out error)", "",
              "| complexity | held-out RMSE / std(y) | formula |", "|---:|---:|---|"]
    lines += [f"| {c} | {e:.3g} | `{f}` |" for c, e, f in found.front]
    decisive = {id(s) for s in found.decided_by}
    lines += ["", "## Steps", "", "| step | task | seconds | result | decided |",
              "|---|---|---:|---|:-:|"]
    lines += [f"| {s.name} | {s.task.replace('|', '/')} | {s.seconds:.2f} | "
              f"{s.detail.replace('|', '/')} | {'yes' if id(s) in decisive else ''} |"
              for s in found.steps]
    lines += ["", "## Function tree", ""]
    if found.tree is None:
        lines.append("No tree (the surrogate's tree could not be read).")
    else:
        lines += ["```", found.tree.to_text(scores=True), "```", ""]
        lines.append(_tree_picture(found.tree, directory))
    lines += ["", "## The KAN after its fit", "", _kan_picture(found.fitted, directory,
                                                                "kan_fitted.png")]
    lines += ["", "## The KAN after pruning", "", _pruned_picture(found, directory)]
    lines += ["", "## Fitted edges and their library candidates", ""]
    lines += _edge_pictures(found.fitted, directory)
    lines += ["", "## The KAN of the best formula", "",
              _kan_picture(found.model, directory, "kan.png")]
    path = directory / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _tree_picture(tree, directory: Path) -> str:
    from kanir.backends.tree_dot import render_tree
    from kanir.errors import DiagramError

    if shutil.which("dot") is not None:
        try:
            render_tree(tree, directory / "tree.svg")
            return "![function tree](tree.svg)"
        except DiagramError as exc:
            why = f"graphviz failed ({exc})"
    else:
        why = "graphviz 'dot' is not installed"
    render_tree(tree, directory / "tree.gv")
    return f"({why}: the diagram's DOT source is [tree.gv](tree.gv))"


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=120)
    plt.close(fig)


def _kan_picture(model, directory: Path, name: str) -> str:
    if model is None:
        return "(no model)"
    try:
        _save(model.plot(), directory / name)
    except Exception as exc:  # noqa: BLE001 - the report is still useful without the picture
        return f"(no picture: {exc})"
    return f"![KAN]({name})"


def _pruned_picture(found, directory: Path) -> str:
    """The pruned KAN of the search, or (a structure wired by Trick A is not pruned in the
    search) the fitted KAN after ``model.prune()`` for comparison."""
    if found.pruned is not None:
        return _kan_picture(found.pruned, directory, "kan_pruned.png")
    if found.fitted is None:
        return "(no model)"
    try:
        pruned = found.fitted.copy().prune()
    except Exception as exc:  # noqa: BLE001
        return f"(no picture: pruning failed: {exc})"
    return ("The search did not prune this structure (Trick A wires only the edges the tree "
            "needs); the picture is its fitted KAN after `model.prune()`.\n\n"
            + _kan_picture(pruned, directory, "kan_pruned.png"))


def _edge_pictures(model, directory: Path) -> list[str]:
    """edge_L_I_J.png for the first MAX_EDGES active edges (``model.plot_candidates``)."""
    if model is None:
        return ["(no model)"]
    out = []
    for l, layer in enumerate(model.net.layers):
        mask = layer.mask_sp.detach().cpu()
        for i, j in (mask != 0).nonzero().tolist() if mask.dim() == 2 else []:
            if len(out) == MAX_EDGES:
                return out
            name = f"edge_{l}_{i}_{j}.png"
            try:
                _save(model.plot_candidates(l, i, j, topk=3), directory / name)
            except Exception as exc:  # noqa: BLE001
                out.append(f"(edge ({l}, {i}, {j}): no picture: {exc})")
                continue
            out.append(f"![edge ({l}, {i}, {j})]({name})")
    return out or ["(no spline edges)"]
