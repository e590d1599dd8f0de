"""Write the golden pass tests (tests/golden/*.kir): input IR, pipeline, expected output.

Run ``python tests/golden/make_goldens.py`` after a deliberate change of a pass or of the
text format, then review ``git diff tests/golden`` line by line before committing: the files
are the expected behaviour, this script only saves typing. Each case is
(file name, input graph, pipeline, data rows or None).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from golden import render_case  # noqa: E402

import kanir  # noqa: E402
from kanir.frontend.lowering import expression_graph  # noqa: E402
from kanir.grammar.formula import parse_formula  # noqa: E402


def rows(n_in: int, n: int = 16, seed: int = 0) -> list[list[float]]:
    """Samples with 3 decimals (exact in the file)."""
    r = np.random.default_rng(seed).uniform(-1, 1, (n, n_in))
    return np.round(r, 3).tolist()


def spline(width, seed=0, grid=3):
    return kanir.KAN(width, grid=grid, k=3, seed=seed, dtype=torch.float64, device="cpu",
                     versions=False).graph


def trained():
    """A [2,1] spline model fitted to x1**2 + sin(2*x2) (for auto-symbolic and friends)."""
    x = torch.tensor(rows(2, 200, 1), dtype=torch.float64)
    y = x[:, :1] ** 2 + torch.sin(2 * x[:, 1:])
    m = kanir.KAN([2, 1], grid=5, k=3, seed=0, dtype=torch.float64, device="cpu",
                  versions=False)
    m.fit({"train_input": x, "train_label": y, "test_input": x, "test_label": y}, steps=20,
          progress=False)
    return m.graph


def expr(formula: str):
    return expression_graph(parse_formula(formula))


def cases():
    sym = kanir.compile("x*y + sin(z)")
    small = kanir.compile("exp(x) + y**2")
    sp = spline([2, 3, 1])
    sp2 = spline([2, 2], seed=1)
    fit = trained()
    d2, d3, dfit = rows(2), rows(3), rows(2, 16, 1)
    return [
        ("attribute-symbolic", sym, "attribute", d3),
        ("attribute-spline", sp, "attribute", d2),
        ("augment-input-ratio", small, "augment-input{original_variables=[x,y],"
         "auxiliary_variables=['r=x/y'],ranges=[[-2,2]]}", None),
        ("augment-input-two", sym, "augment-input{original_variables=[x,y,z],"
         "auxiliary_variables=['s=x+y','p=x*z']}", None),
        ("auto-swap-spline", sp, "auto-swap", d2),
        ("auto-swap-symbolic", sym, "auto-swap", d3),
        ("auto-symbolic-fit", fit, "auto-symbolic{lib=[x,'x^2',sin,exp]}", dfit),
        ("auto-symbolic-threshold", fit, "auto-symbolic{lib=[x,exp],r2_threshold=0.999}", dfit),
        ("canonicalize-product", expr("x*y + sin(z)"), "canonicalize", None),
        ("canonicalize-chain", expr("exp(sin(x) + y**2)"), "canonicalize{mult_outputs=false}",
         None),
        ("connection-cost-spline", sp, "connection-cost", d2),
        ("connection-cost-symbolic", sym, "connection-cost", d3),
        ("delete-node-first", sp, "delete-node{l=1,i=0}", None),
        ("delete-node-fold", sp, "delete-node{l=1,i=2,fold_mean=true}", None),
        ("drop-dead-nodes-cut", sp, "remove-node{l=1,i=1},drop-dead-nodes", None),
        ("drop-dead-nodes-clean", sym, "drop-dead-nodes", None),
        ("expand-depth-end", small, "expand-depth", None),
        ("expand-depth-middle", sp, "expand-depth{layer=1}", None),
        ("expand-width-sum", sp, "expand-width{layer=1,n=2}", None),
        ("expand-width-mult", sym, "expand-width{layer=1,kind=mult,arity=3}", None),
        ("find-swap-spline", sp, "find-swap", d2),
        ("find-swap-symbolic", sym, "find-swap", d3),
        ("fix-symbolic-params", sp2, "fix-symbolic{l=0,i=0,j=1,fun=sin,params=[2,0.5,3,-1]}",
         None),
        ("fix-symbolic-fit", fit, "fix-symbolic{l=0,i=0,j=0,fun='x^2'}", dfit),
        ("module-chain", spline([4, 4, 2, 1]), "module{start_layer=0,spec='[0,1]->[0,1]->[0,1]->[0]'}",
         None),
        ("module-split", sp, "module{start_layer=0,spec='[0]->[0,1]'}", None),
        ("module-cuts-chain", spline([4, 4, 2, 1]),
         "module-cuts{start_layer=0,spec='[0,1]->[0,1]->[0,1]->[0]'}", None),
        ("module-cuts-split", sp, "module-cuts{start_layer=0,spec='[0]->[0,1]'}", None),
        ("neuron-attribution-hidden", sp, "neuron-attribution{l=1}", d2),
        ("neuron-attribution-output", sym, "neuron-attribution{l=2}", d3),
        ("permute-layer-cycle", sp, "permute-layer{l=1,perm=[2,0,1]}", None),
        ("permute-layer-swap", sp, "permute-layer{l=1,perm=[1,0,2]}", None),
        ("perturb-all", sp2, "remove-edge{l=0,i=0,j=0},perturb{mode=all,mag=0.5,seed=3}", None),
        ("perturb-minimal", sym, "perturb{mode=minimal,mag=0.1}", None),
        ("perturb-zero-edges", sp2, "expand-depth,perturb{mode=zero-edges,mag=0.5,seed=2}", None),
        ("prune-spline", sp, "prune{edge_th=0.2,node_th=0.05}", d2),
        ("prune-symbolic", sym, "prune", d3),
        ("prune-edge-spline", sp, "prune-edge{threshold=0.2}", d2),
        ("prune-edge-nofold", sp, "prune-edge{threshold=0.2,fold_mean=false}", d2),
        ("prune-input-topk", sym, "prune-input{top_k=2}", d3),
        ("prune-input-list", sp, "prune-input{active_inputs=[1]}", None),
        ("prune-node-threshold", sp, "prune-node{threshold=0.3}", d2),
        ("prune-node-keep", sp, "prune-node{active_neurons=[[0,2]]}", None),
        ("remove-edge-spline", sp, "remove-edge{l=0,i=1,j=2}", None),
        ("remove-edge-symbolic", sym, "remove-edge{l=1,i=0,j=0,keep_symbolic=false}", None),
        ("remove-node-all", sp, "remove-node{l=1,i=1}", None),
        ("remove-node-up", sp, "remove-node{l=1,i=0,mode=up}", None),
        ("score-arrays-spline", sp, "attribute,score-arrays", d2),
        ("score-arrays-symbolic", sym, "attribute,score-arrays", d3),
        ("set-mode-symbolic", sp2, "fix-symbolic{l=0,i=1,j=0,fun=x,params=[1,0,1,0]},"
         "set-mode{l=0,i=1,j=0,mode=s}", None),
        ("set-mode-both", sp2, "fix-symbolic{l=0,i=1,j=0,fun=x,params=[1,0,1,0]},"
         "set-mode{l=0,i=1,j=0,mode=sn}", None),
        ("suggest-symbolic-square", fit, "suggest-symbolic{l=0,i=0,j=0,lib=[x,'x^2',sin],topk=2}",
         dfit),
        ("suggest-symbolic-sine", fit, "suggest-symbolic{l=0,i=1,j=0,lib=[x,'x^2',sin],topk=2}",
         dfit),
        ("symbolic-edges-compiled", sym, "symbolic-edges", None),
        ("symbolic-edges-mixed", sp2, "fix-symbolic{l=0,i=0,j=0,fun=exp,params=[1,0,1,0]},"
         "symbolic-edges", None),
        ("unfix-all", sp2, "fix-symbolic{l=0,i=0,j=0,fun=exp,params=[1,0,1,0]},unfix", None),
        ("unfix-compiled", small, "unfix", None),
        ("unfix-symbolic-one", sp2, "fix-symbolic{l=0,i=0,j=1,fun=sin,params=[1,0,1,0]},"
         "unfix-symbolic{l=0,i=0,j=1}", None),
        ("unfix-symbolic-two", sp2, "fix-symbolic{l=0,i=0,j=0,fun=sin,params=[1,0,1,0]},"
         "fix-symbolic{l=0,i=1,j=1,fun=exp,params=[1,0,1,0]},unfix-symbolic{l=0,i=1,j=1}",
         None),
    ]


def main(only=None) -> None:
    for name, graph, pipeline, data in cases():
        if only and name not in only:
            continue
        try:
            text = render_case(graph, pipeline, data)
        except Exception as e:  # report every broken case, not only the first
            print(f"FAILED {name}: {type(e).__name__}: {e}")
            continue
        (HERE / f"{name}.kir").write_text(text)
        print("wrote", name)


if __name__ == "__main__":
    main(sys.argv[1:])
