"""``from_torch``: lower a trained MLP (an ``nn.Sequential`` of ``Linear`` layers and elementwise
activations) into a layered :class:`KanGraph` that computes exactly the same function.

The mapping (KAN 2.0 treats an MLP edge as ``c*σ(x+b)``, a special case of the IR's
``c*f(a*x+b)+d``):

* every ``Linear`` becomes one dense KAN layer: edge ``i -> j`` is ``w_ji * σ(x)`` where σ is the
  activation that was applied to the Linear's *input* (the one after the previous Linear), or the
  identity ``x`` when there is none (the network's first layer);
* the Linear's bias ``b_j`` is the bias of node j of the next node layer, so every hidden node
  holds exactly the pre-activation of its MLP neuron, and attribution scores, pruning and
  auto_swap act on neurons;
* an activation with no Linear after it (``...Linear, Tanh`` at the end), or two activations in a
  row, becomes a diagonal KAN layer (node i -> node i through ``σ(x)``, no other edges);
* ``Identity``, ``Flatten`` (identity on 2-D input) and ``Dropout`` in eval mode are skipped;
  nested ``Sequential``s are flattened.

Anything else (convolutions, normalisation layers, Dropout in train mode, custom modules) is a
:class:`~kanir.errors.ModuleLoweringError` naming the layer and its index in the Sequential.

Examples
--------
>>> mlp = nn.Sequential(nn.Linear(2, 8), nn.SiLU(), nn.Linear(8, 1)).double()
>>> model = kanir.KAN.from_graph(kanir.from_torch(mlp))
>>> torch.allclose(model(x), mlp(x))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from kanir.errors import ModuleLoweringError
from kanir.ir.activation import Activation
from kanir.ir.graph import KanGraph
from kanir.ir.width import LayerWidth

__all__ = ["from_torch", "ACTIVATIONS"]


def _gelu_name(m: nn.GELU) -> str:
    return "gelu_tanh" if m.approximate == "tanh" else "gelu"


#: torch activation module -> library function name (GELU depends on its approximation)
ACTIVATIONS = {
    nn.SiLU: "silu",
    nn.Tanh: "tanh",
    nn.ReLU: "relu",
    nn.Sigmoid: "sigmoid",
    nn.GELU: _gelu_name,
}


@dataclass
class _Dense:
    weight: np.ndarray  # (out, in)
    bias: np.ndarray  # (out,)
    fun: str  # applied to each input before the weights ('x' for none)


@dataclass
class _Diagonal:
    fun: str


def _flatten(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """(index path, layer) for every leaf of nested Sequentials, e.g. ('2.1', Tanh())."""
    out = []
    for name, child in module._modules.items():  # named_children() would hide a repeated module
        path = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            out += _flatten(child, path + ".")
        else:
            out.append((path, child))
    return out


def _activation_name(layer: nn.Module) -> str | None:
    for cls, name in ACTIVATIONS.items():
        if type(layer) is cls:
            return name(layer) if callable(name) else name
    return None


def _is_skipped(path: str, layer: nn.Module) -> bool:
    """Layers that are the identity on a batch of vectors; Dropout only in eval mode."""
    if isinstance(layer, nn.Identity):
        return True
    if isinstance(layer, nn.Flatten):
        if layer.start_dim != 1 and layer.start_dim != -1:
            raise ModuleLoweringError(
                f"layer {path} (Flatten(start_dim={layer.start_dim})) is not the identity on a "
                "(batch, features) input; only Flatten(start_dim=1) is supported")
        return True
    if isinstance(layer, nn.Dropout):
        if layer.training and layer.p > 0:
            raise ModuleLoweringError(
                f"layer {path} (Dropout(p={layer.p}) in train mode) is random; call mlp.eval() "
                "before from_torch")
        return True
    return False


def _stages(mlp: nn.Module) -> list[_Dense | _Diagonal]:
    layers = [("0", mlp)] if isinstance(mlp, nn.Linear) else _flatten(mlp)
    stages: list[_Dense | _Diagonal] = []
    pending: str | None = None  # activation waiting for the next Linear
    for path, layer in layers:
        if _is_skipped(path, layer):
            continue
        act = _activation_name(layer)
        if act is not None:
            if pending is not None:
                stages.append(_Diagonal(pending))
            pending = act
            continue
        if type(layer) is nn.Linear:
            w = layer.weight.detach().to("cpu", torch.float64).numpy().copy()
            b = (layer.bias.detach().to("cpu", torch.float64).numpy().copy()
                 if layer.bias is not None else np.zeros(w.shape[0]))
            stages.append(_Dense(w, b, pending or "x"))
            pending = None
            continue
        kinds = ", ".join(sorted({c.__name__ for c in ACTIVATIONS} | {"Linear", "Identity",
                                                                       "Flatten", "Dropout (eval)"}))
        raise ModuleLoweringError(
            f"layer {path} ({layer.__class__.__name__}) cannot be lowered into a KAN; "
            f"from_torch takes a Sequential of {kinds} and nested Sequentials")
    if pending is not None:
        stages.append(_Diagonal(pending))
    return stages


def _widths(stages, n_in: int) -> list[int]:
    widths = [n_in]
    for k, st in enumerate(stages):
        if isinstance(st, _Dense):
            if st.weight.shape[1] != widths[-1]:
                raise ModuleLoweringError(
                    f"Linear number {sum(isinstance(s, _Dense) for s in stages[:k]) + 1} takes "
                    f"{st.weight.shape[1]} inputs but the layer before it gives {widths[-1]}")
            widths.append(st.weight.shape[0])
        else:
            widths.append(widths[-1])
    return widths


def from_torch(mlp: nn.Module, input_names=None, output_names=None) -> KanGraph:
    """The layered KanGraph computing exactly what ``mlp`` computes (float64 parameters).

    ``mlp``: an ``nn.Sequential`` (nested ones too) or a single ``nn.Linear``. The result has
    symbolic edges only, so ``kanir.to_sympy`` gives the MLP's formula and
    ``kanir.KAN.from_graph`` a model that attribution, pruning and auto_swap work on.
    """
    if not isinstance(mlp, nn.Sequential | nn.Linear):
        raise ModuleLoweringError(
            f"from_torch needs an nn.Sequential (or nn.Linear), got {type(mlp).__name__}")
    stages = _stages(mlp)
    first = next((s for s in stages if isinstance(s, _Dense)), None)
    if first is None:
        raise ModuleLoweringError("from_torch needs at least one Linear layer (it fixes the input "
                                  "width)")
    for st in stages:
        params = [st.weight, st.bias] if isinstance(st, _Dense) else []
        if any(not np.isfinite(p).all() for p in params):
            raise ModuleLoweringError("the MLP has non-finite weights or biases (NaN or inf)")
    widths = _widths(stages, first.weight.shape[1])
    g = KanGraph.from_layers([LayerWidth(n) for n in widths], input_names, output_names,
                             dtype="float64")
    for l, st in enumerate(stages):
        if isinstance(st, _Diagonal):
            for i in range(widths[l]):
                g.set_edge(l, i, i, Activation.symbolic_fn(st.fun))
            continue
        for j in range(widths[l + 1]):
            for i in range(widths[l]):
                g.set_edge(l, i, j, Activation.symbolic_fn(st.fun, c=float(st.weight[j, i])))
            g.node(l + 1, j)["bias"] = float(st.bias[j])
    return g.check()
