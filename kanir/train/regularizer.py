"""Per-layer activations of a forward pass, the per-edge scales computed from them, and
pykan's sparsity regulariser (L1 + entropy of the edge scales, optional coefficient penalties).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from kanir.backends.torch import BASE_FUNS, KANModule
from kanir.ir.bspline import dense_bases


class LayerInput(NamedTuple):
    """What a layer received in a forward pass: x, its local B-spline record (or None), and the
    std over the batch of each of its spline edges when the pass computed it (or None)."""

    x: torch.Tensor
    local: tuple | None
    edge_std: torch.Tensor | None = None


def forward_collect(module: KANModule, x: torch.Tensor, first=None, edge_std: bool = False,
                    comm=None, n_total: int = 0) -> tuple[torch.Tensor, list[LayerInput]]:
    """Output, and the input of every layer with its B-spline bases (evaluated once, shared by
    the forward pass and the regulariser). ``first``: the input layer's record of this x from
    ``layer.local(x, fixed=True)``, reused by every evaluation of a training step.
    ``edge_std``: also the regulariser's per-edge std, from the same activations; with ``comm``
    (kanir.train.distributed) the std over the ``n_total`` rows of all ranks."""
    inputs = []
    for n, layer in enumerate(module.layers):
        local = first if n == 0 and first is not None else layer.local(x)
        if edge_std and comm is not None:
            y = layer(x, local)
            std = _global_edge_std(layer, x, comm, n_total) if layer._any_spline else None
        elif edge_std:
            y, std = layer.forward_with_std(x, local)
        else:
            y, std = layer(x, local), None
        inputs.append(LayerInput(x, local, std))
        x = y
    return x, inputs


def _global_edge_std(layer, x: torch.Tensor, comm, n_total: int) -> torch.Tensor:
    """(in, out) std of every spline edge over the rows of all ranks (distributed training)."""
    phi = torch.cat([dense_bases(x, layer.grid, layer.k),
                     BASE_FUNS[layer.base_fun](x).unsqueeze(-1)], dim=-1)  # (b, in, P+1)
    acts = torch.bmm(phi.transpose(0, 1), layer._edge_weights().transpose(1, 2))  # (in, b, out)
    return comm.std(acts, 1, n_total, eps=1e-16)


def edge_scales(module: KANModule, inputs: list, normalized: bool = True, comm=None,
                n_total: int = 0) -> list[torch.Tensor]:
    """pykan's 'edge_forward_spline_n': std of each spline edge / (std of its input + 0.1), or
    with ``normalized=False`` its 'edge_forward_spline_u': the std alone.
    ``inputs``: per layer a :class:`LayerInput` or a bare tensor; ``comm``: stds over the
    ``n_total`` rows of all ranks."""
    out = []
    for layer, inp in zip(module.layers, inputs):
        x, local, std = inp if isinstance(inp, LayerInput) else (inp, None, None)
        if layer._any_spline:
            if std is None:
                std = (layer.spline_edge_std(x, local) if comm is None
                       else _global_edge_std(layer, x, comm, n_total))
            if normalized:
                xs = x.std(dim=0) if comm is None else comm.std(x, 0, n_total)
                std = std / (xs.unsqueeze(1) + 0.1)
            out.append(std)
    return out


def regularizer(module: KANModule, inputs: list, lamb_l1: float = 1.0,
                lamb_entropy: float = 2.0, lamb_coef: float = 0.0,
                lamb_coefdiff: float = 0.0, normalized: bool = True, comm=None,
                n_total: int = 0) -> torch.Tensor:
    """L1 + entropy of edge scales per layer, plus optional coefficient penalties.
    ``normalized``: the edge scales of reg_metric 'edge_forward_spline_n' (True) or '_u'.
    ``comm`` (kanir.train.distributed): statistics over the ``n_total`` rows of all ranks; the value is
    the global one on every rank and gradients summed over ranks are the exact gradient."""
    first = inputs[0]
    reg = (first.x if isinstance(first, LayerInput) else first).new_zeros(())
    eps = 1e-4
    for s in edge_scales(module, inputs, normalized, comm, n_total):
        p_row = s / (s.sum(dim=1, keepdim=True) + eps)
        p_col = s / (s.sum(dim=0, keepdim=True) + eps)
        ent_row = -(p_row * torch.log2(p_row + eps)).sum(dim=1).mean()
        ent_col = -(p_col * torch.log2(p_col + eps)).sum(dim=0).mean()
        reg = reg + lamb_l1 * s.sum() + lamb_entropy * (ent_row + ent_col)
    if lamb_coef or lamb_coefdiff:
        penalty = reg.new_zeros(())
        for layer in module.layers:
            c = layer.coef * layer.mask_sp.unsqueeze(-1)
            penalty = penalty + lamb_coef * c.abs().mean(dim=1).sum()
            penalty = penalty + lamb_coefdiff * torch.diff(c, dim=-1).abs().mean(dim=1).sum()
        reg = reg + (penalty if comm is None else comm.share(penalty))
    return reg
