"""KAN 2.0 §4.2.1, anatomical modularity: train KANs and MLPs with sparsity on two modular
boolean tasks, prune, rearrange the hidden neurons with auto_swap and compare connection costs.

Tasks (every input combination, bits as -1/+1, labels 0/1):

* multitask sparse parity: 10 bits, 5 outputs, y_j = x_{2j-1} XOR x_{2j};
* hierarchical majority voting: 9 bits, y = maj(maj(x1..x3), maj(x4..x6), maj(x7..x9)).

MLPs are trained in plain torch (L1 on the weights) and lowered into the IR with
``kanir.from_torch``, so the same pruning, attribution and auto_swap act on both.

Run: ``python examples/science/anatomical_modularity.py [--out DIR] [--quick]``; the last line
printed is ``RESULT: {json}``. Diagrams (graphviz .gv and .png) go to ``--out`` (default: a new
temporary folder).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import torch
from torch import nn

import kanir
from kanir.backends.graphviz import plot as plot_diagram


@dataclass(frozen=True)
class Settings:
    """Training budget; ``quick`` is what the test runs."""

    kan_steps: int = 30
    kan_lamb: float = 0.002
    mlp_steps: int = 3000
    mlp_lamb: float = 1e-3
    seed: int = 0


FULL = Settings()
QUICK = Settings(kan_steps=30, mlp_steps=1500)


# ---------------------------------------------------------------------- tasks
def _bits(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([-1.0, 1.0], repeat=n)), dtype=torch.float64)


def parity_task() -> dict:
    """Every 10-bit input; 5 labels y_j = x_{2j-1} XOR x_{2j} (1-based)."""
    x = _bits(10)
    y = torch.stack([(x[:, 2 * j] != x[:, 2 * j + 1]).double() for j in range(5)], dim=1)
    return {"train_input": x, "train_label": y, "test_input": x, "test_label": y,
            "modules": [[2 * j, 2 * j + 1] for j in range(5)]}


def majority_task() -> dict:
    """Every 9-bit input; the label is the majority of the three groups' majorities."""
    x = _bits(9)
    groups = torch.stack([x[:, 3 * k:3 * k + 3].sum(1).sign() for k in range(3)], dim=1)
    y = (groups.sum(1, keepdim=True) > 0).double()
    return {"train_input": x, "train_label": y, "test_input": x, "test_label": y,
            "modules": [[0, 1, 2], [3, 4, 5], [6, 7, 8]]}


TASKS = {"parity": (parity_task, [10, 10, 5], [10, 20, 5]),
         "majority": (majority_task, [9, 10, 10, 1], [9, 12, 4, 1])}
ROUNDS = {"parity": 0, "majority": 3}


# ---------------------------------------------------------------------- training
def train_kan(data: dict, width: list[int], s: Settings, rounds: int = 0) -> kanir.KAN:
    """Sparse training; with ``rounds`` > 0 (majority): a fit without sparsity first (with it
    from the start the KAN settles on the 9-bit majority, 89% accurate), then ``rounds`` times
    a sparse fit and a prune, so the nodes left after one prune can be emptied by the next."""
    model = kanir.KAN(width, grid=3, k=3, seed=s.seed, dtype=torch.float64, versions=False)
    # the inputs take two values only: grid updates would put every knot on them
    if not rounds:
        model.fit(data, steps=s.kan_steps, lamb=s.kan_lamb, update_grid=False, progress=False)
        return model
    model.fit(data, steps=20, lamb=0.0, update_grid=False, progress=False)
    for _ in range(rounds):
        model.fit(data, steps=30, lamb=0.005, update_grid=False, progress=False)
        model.prune(x=data["train_input"])
    return model


def train_mlp(data: dict, widths: list[int], s: Settings) -> kanir.KAN:
    """A SiLU MLP trained with Adam and L1 on its weights, lowered into a KAN."""
    torch.manual_seed(s.seed)
    layers: list[nn.Module] = []
    for k in range(len(widths) - 1):
        if k:
            layers.append(nn.SiLU())
        layers.append(nn.Linear(widths[k], widths[k + 1]))
    mlp = nn.Sequential(*layers).double()
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    x, y = data["train_input"], data["train_label"]
    for _ in range(s.mlp_steps):
        opt.zero_grad()
        l1 = sum(m.weight.abs().sum() for m in mlp if isinstance(m, nn.Linear))
        loss = ((mlp(x) - y) ** 2).mean() + s.mlp_lamb * l1
        loss.backward()
        opt.step()
    return kanir.KAN.from_graph(kanir.from_torch(mlp.eval()), versions=False)


# ---------------------------------------------------------------------- analysis
def input_groups(graph, layer: int) -> list[list[int]]:
    """For every node of ``layer``: the inputs it still depends on through kept edges."""
    out = []
    for i in range(graph.n_nodes(layer)):
        anc = nx.ancestors(graph.nx, ("n", layer, i))
        out.append(sorted(n[2] for n in anc if n[0] == "n" and n[1] == 0))
    return out


def modules_found(graph, modules: list[list[int]]) -> tuple[int, list[list[int]]]:
    """How many of the task's modules are separate (strict): the nodes its inputs feed (outputs
    for parity, first hidden layer for majority) depend on that module's inputs only, and
    together use all of them. Returns the count and every node's input set."""
    layer = graph.depth if len(modules) == graph.n_nodes(graph.depth) else 1
    groups = input_groups(graph, layer)
    found = 0
    for m in modules:
        fed = [g for g in groups if set(g) & set(m)]
        if fed and all(set(g) <= set(m) for g in fed) and set().union(*fed) == set(m):
            found += 1
    return found, groups


def rmse(model: kanir.KAN, data: dict) -> float:
    with torch.no_grad():
        return float(((model(data["train_input"]) - data["train_label"]) ** 2).mean().sqrt())


def _diagram(model: kanir.KAN, x: torch.Tensor, stem: Path) -> None:
    """The scored diagram as DOT source (.gv), and as .svg where Graphviz's ``dot`` is
    installed (the source is enough to run the example without it)."""
    graph = model.attribute(x=x).scored_graph()
    plot_diagram(graph, stem.with_suffix(".gv"))
    if shutil.which("dot") is not None:
        plot_diagram(graph, stem.with_suffix(".svg"))


def analyse(name: str, kind: str, model: kanir.KAN, data: dict, out: Path, log) -> dict:
    x = data["train_input"]
    cost_trained = model.connection_cost(x)
    model.prune(x=x)
    cost_before = model.connection_cost(x)
    _diagram(model, x, out / f"{name}_{kind}_before_swap")
    model.auto_swap(x)
    cost_after = model.connection_cost(x)
    _diagram(model, x, out / f"{name}_{kind}_after_swap")
    found, groups = modules_found(model.graph, data["modules"])
    row = {"rmse": round(rmse(model, data), 4), "width": model.width_spec,
           "cost_trained": round(cost_trained, 4), "cost_before": round(cost_before, 4),
           "cost_after": round(cost_after, 4), "modules": found, "of": len(data["modules"]),
           "input_groups": groups}
    log(f"{name} {kind}: rmse {row['rmse']}, width {row['width']}, connection cost "
        f"{row['cost_before']} -> {row['cost_after']} after auto_swap; modules {found}/"
        f"{len(data['modules'])}: {groups}")
    return row


def run(settings: Settings = FULL, out: Path | None = None, tasks=("parity", "majority"),
        log=print) -> dict:
    """Train, prune, swap and measure every (task, KAN/MLP) pair; returns the RESULT dict."""
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="kanir-modularity-"))
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"out": str(out)}
    for name in tasks:
        make, kan_width, mlp_width = TASKS[name]
        data = make()
        t0 = time.perf_counter()
        log(f"[{name}] training KAN {kan_width} ({settings.kan_steps} LBFGS steps, "
            f"lamb={settings.kan_lamb})" if not ROUNDS[name] else "(20 LBFGS steps without "
            f"sparsity, then {ROUNDS[name]} x (30 steps, lamb=0.005, prune))")
        kan = train_kan(data, kan_width, settings, ROUNDS[name])
        result[f"{name}_kan"] = analyse(name, "kan", kan, data, out, log)
        log(f"[{name}] training MLP {mlp_width} ({settings.mlp_steps} Adam steps, "
            f"L1={settings.mlp_lamb})")
        mlp = train_mlp(data, mlp_width, settings)
        result[f"{name}_mlp"] = analyse(name, "mlp", mlp, data, out, log)
        log(f"[{name}] done in {time.perf_counter() - t0:.1f} s")
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="folder for the diagrams "
                    "(default: a new temporary folder)")
    ap.add_argument("--quick", action="store_true", help="the test's smaller training budget")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    result = run(QUICK if args.quick else FULL, args.out)
    print(f"diagrams in {result['out']}")
    print("RESULT: " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
