"""Standard deviation over the batch of every spline edge's activation, for the sparsity
regulariser, in one autograd node.

An edge's spline branch is ``phi(x) . w`` with features phi = [B_1(x) .. B_P(x), base(x)] and
weights w = [c * scale_sp, scale_base]. The regulariser needs std_b(phi . w) for every edge on
every L-BFGS evaluation; written with ordinary torch ops that is ~50 small kernels per layer and
as many in backward, which dominates training time for the small networks of the symbolic
workflows. Here the forward is five kernels and the backward is written out by hand, reusing the
local B-spline values and derivatives the forward pass already computed.
"""

from __future__ import annotations

import torch

from .bspline import _densify, dense_bases


def edge_std_reference(x: torch.Tensor, w: torch.Tensor, grid: torch.Tensor, k: int,
                       base) -> torch.Tensor:
    """The same quantity from plain differentiable ops (any order of derivatives)."""
    B = dense_bases(x, grid, k)
    phi = torch.cat([B, base(x).unsqueeze(-1)], dim=-1)  # (b, in, P+1)
    acts = torch.bmm(phi.transpose(0, 1), w.transpose(1, 2))  # (in, b, out)
    return torch.sqrt(acts.var(dim=1).clamp_min(0) + 1e-16)


def _base_vjp(base, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """g * base'(x): closed form for silu (the default base function), autograd otherwise."""
    if base is torch.nn.functional.silu:
        s = torch.sigmoid(x)
        return g * s * (1 + x * (1 - s))
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        return torch.autograd.grad(base(xr), xr, g)[0]


class _EdgeStd(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, grid, k, base, local):
        n, n_in = x.shape
        P = grid.shape[1] - k - 1
        pos, vals, dvals, D, bx = local
        D = (_densify(pos, vals, n, n_in, P) if D is None else D).view(n, n_in, P)
        bx = base(x) if bx is None else bx
        phiT = torch.cat([D, bx.unsqueeze(-1)], dim=-1).transpose(0, 1)  # (in, b, P+1)
        acts = torch.bmm(phiT, w.transpose(1, 2))  # (in, b, out)
        ac = acts - acts.mean(dim=1, keepdim=True)
        std = torch.sqrt((ac * ac).sum(dim=1).div_(max(n - 1, 1)) + 1e-16)
        ctx.save_for_backward(x, w, grid, phiT, ac, std, pos, dvals)
        ctx.k, ctx.base = k, base
        return std

    @staticmethod
    def backward(ctx, g):
        x, w, grid, phiT, ac, std, pos, dvals = ctx.saved_tensors
        k, base = ctx.k, ctx.base
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if torch.is_grad_enabled():  # create_graph=True: differentiate the plain formula
            # saved inputs stay connected to the outer graph here, so use them directly
            xr = x if x.requires_grad or not need_x else x.detach().requires_grad_(True)
            wr = w if w.requires_grad or not need_w else w.detach().requires_grad_(True)
            s = edge_std_reference(xr, wr, grid, k, base)
            wanted = [t for t, need in ((xr, need_x), (wr, need_w)) if need]
            got = iter(torch.autograd.grad(s, wanted, g, create_graph=True))
            return (next(got) if need_x else None, next(got) if need_w else None,
                    None, None, None, None)
        n = x.shape[0]
        Ga = ac * (g / std).mul_(1.0 / max(n - 1, 1)).unsqueeze(1)  # d/d acts, (in, b, out)
        gw = torch.bmm(Ga.transpose(1, 2), phiT) if need_w else None
        gx = None
        if need_x:
            gphi = torch.bmm(Ga, w).transpose(0, 1)  # (b, in, P+1)
            gD = gphi[..., :-1].contiguous().view(-1)
            gx = (torch.take(gD, pos) * dvals).sum(0)
            gx = gx + _base_vjp(base, x, gphi[..., -1])
        return gx, gw, None, None, None, None


def edge_std(x: torch.Tensor, w: torch.Tensor, grid: torch.Tensor, k: int, base,
             local) -> torch.Tensor:
    """(in, out) unbiased std over the batch of phi(x) . w per edge; ``local`` is the
    ``kanir.bspline.local_eval`` record of x (with derivatives when x requires grad)."""
    if (torch._C._are_functorch_transforms_active() or k == 0
            or (local.dvals is None and x.requires_grad)):
        return edge_std_reference(x, w, grid, k, base)
    if local.dvals is None:
        local = local._replace(dvals=local.vals)  # never read: x needs no gradient
    if x.requires_grad:
        local = local._replace(dense=None, base=None)  # kept only for fixed inputs
    return _EdgeStd.apply(x, w, grid, k, base, local)
