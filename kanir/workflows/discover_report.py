"""The markdown report of a :class:`kanir.workflows.discover.Discovery` (with pictures when they
can be drawn: the KAN via ``model.plot``, the tree via graphviz ``dot``)."""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["write_report"]


def write_report(found, directory: Path) -> Path:
    """Write ``report.md`` (+ kan.png, tree.svg when possible) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["# kanir discover report", ""]
    lines += [f"**Best formula:** `{found.formula}`", "",
              f"Relative held-out RMSE (RMSE / std(y)): {found.error:.3g}; made by: "
              f"{found.origin or 'nothing'} (this is the step that decided the result).", ""]
    lines += ["## Pareto front (complexity vs held-out error)", "",
              "| complexity | held-out RMSE / std(y) | formula |", "|---:|---:|---|"]
    lines += [f"| {c} | {e:.3g} | `{f}` |" for c, e, f in found.front]
    lines += ["", "## Steps", "", "| step | seconds | result |", "|---|---:|---|"]
    lines += [f"| {s.name} | {s.seconds:.2f} | {s.detail.replace('|', '/')} |"
              for s in found.steps]
    lines += ["", "## Function tree", ""]
    if found.tree is None:
        lines.append("No tree (the surrogate's tree could not be read).")
    else:
        lines += ["```", found.tree.to_text(scores=True), "```", ""]
        lines.append(_tree_picture(found.tree, directory))
    lines += ["", "## The KAN of the best formula", ""]
    lines.append(_kan_picture(found.model, directory))
    path = directory / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _tree_picture(tree, directory: Path) -> str:
    if shutil.which("dot") is None:
        return "(no tree picture: graphviz 'dot' is not installed)"
    from kanir.backends.tree_dot import render_tree

    render_tree(tree, directory / "tree.svg")
    return "![function tree](tree.svg)"


def _kan_picture(model, directory: Path) -> str:
    if model is None:
        return "(no model)"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    try:
        fig = model.plot(path=str(directory / "kan.png"))
    except Exception as exc:  # noqa: BLE001 - the report is still useful without the picture
        return f"(no KAN picture: {exc})"
    plt.close(fig)
    return "![KAN](kan.png)"
