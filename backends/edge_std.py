"""A layer's spline branch and the standard deviation over the batch of every spline edge's
activation (for the sparsity regulariser), in one autograd node.

An edge's spline branch is ``phi(x) . w`` with features phi = [B_1(x) .. B_P(x), base(x)] and
weights w = [c * scale_sp, scale_base]. The regulariser needs std_b(phi . w) for every edge on
every L-BFGS evaluation; written with ordinary torch ops that is ~50 small kernels per layer and
as many in backward, which dominates training time for the small networks of the symbolic
workflows. Here the per-edge activations are formed once (small layers only), the layer's
spline output is their sum, and the backward is written out by hand from the local B-spline
values and derivatives the forward pass computed anyway.
"""

from __future__ import annotations

import torch

from kanir.ir.bspline import _densify, dense_bases


def _base_vjp(base, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """g * base'(x): closed form for silu (the default base function), autograd otherwise."""
    if base is torch.nn.functional.silu:
        s = torch.sigmoid(x)
        return g * s * (1 + x * (1 - s))
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        return torch.autograd.grad(base(xr), xr, g)[0]


class _SplineAndStd(torch.autograd.Function):
    """(spline branch of the layer (b, out), std of each edge (in, out)) from one set of per-edge
    activations; backward combines both upstream gradients in two batched matmuls."""

    @staticmethod
    def forward(ctx, x, w, grid, k, base, local):
        n, n_in = x.shape
        P = grid.shape[1] - k - 1
        pos, vals, dvals, D, bx = local
        D = (_densify(pos, vals, n, n_in, P) if D is None else D).view(n, n_in, P)
        bx = base(x) if bx is None else bx
        phiT = torch.cat([D, bx.unsqueeze(-1)], dim=-1).transpose(0, 1)  # (in, b, P+1)
        acts = torch.bmm(phiT, w.transpose(1, 2))  # (in, b, out)
        y = acts.sum(dim=0)
        ac = acts.sub_(acts.mean(dim=1, keepdim=True))
        std = torch.sqrt((ac * ac).sum(dim=1).div_(max(n - 1, 1)) + 1e-16)
        ctx.save_for_backward(x, w, grid, phiT, ac, std, pos, dvals)
        ctx.k, ctx.base = k, base
        return y, std

    @staticmethod
    def backward(ctx, gy, gstd):
        x, w, grid, phiT, ac, std, pos, dvals = ctx.saved_tensors
        k, base = ctx.k, ctx.base
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if torch.is_grad_enabled():  # create_graph=True: differentiate the plain formula
            # saved inputs stay connected to the outer graph here, so use them directly
            xr = x if x.requires_grad or not need_x else x.detach().requires_grad_(True)
            wr = w if w.requires_grad or not need_w else w.detach().requires_grad_(True)
            y, s = spline_and_std_reference(xr, wr, grid, k, base)
            wanted = [t for t, need in ((xr, need_x), (wr, need_w)) if need]
            got = iter(torch.autograd.grad((y, s), wanted, (gy, gstd), create_graph=True))
            return (next(got) if need_x else None, next(got) if need_w else None,
                    None, None, None, None)
        n = x.shape[0]
        # d/d acts (in, b, out): every edge feeds the sum y, and its own std
        G = ac * (gstd / std).mul_(1.0 / max(n - 1, 1)).unsqueeze(1) + gy.unsqueeze(0)
        gw = torch.bmm(G.transpose(1, 2), phiT) if need_w else None
        gx = None
        if need_x:
            gphi = torch.bmm(G, w).transpose(0, 1)  # (b, in, P+1)
            gD = gphi[..., :-1].contiguous().view(-1)
            gx = (torch.take(gD, pos) * dvals).sum(0) + _base_vjp(base, x, gphi[..., -1])
        return gx, gw, None, None, None, None


def spline_and_std_reference(x, w, grid, k, base):
    """:func:`spline_and_std` from plain differentiable ops (any order of derivatives)."""
    B = dense_bases(x, grid, k)
    phi = torch.cat([B, base(x).unsqueeze(-1)], dim=-1)  # (b, in, P+1)
    acts = torch.bmm(phi.transpose(0, 1), w.transpose(1, 2))  # (in, b, out)
    return acts.sum(dim=0), torch.sqrt(acts.var(dim=1).clamp_min(0) + 1e-16)


def spline_and_std(x: torch.Tensor, w: torch.Tensor, grid: torch.Tensor, k: int, base,
                   local) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σ_i phi(x_i) . w_io of shape (b, out), unbiased std over the batch of every edge's
    phi . w, shape (in, out)). ``local`` is the ``kanir.ir.bspline.LocalBases`` of x (with
    derivatives when x requires grad) or None."""
    if (local is None or torch._C._are_functorch_transforms_active() or k == 0
            or (local.dvals is None and x.requires_grad)):
        return spline_and_std_reference(x, w, grid, k, base)
    if local.dvals is None:
        local = local._replace(dvals=local.vals)  # never read: x needs no gradient
    if x.requires_grad:
        local = local._replace(dense=None, base=None)  # kept only for fixed inputs
    return _SplineAndStd.apply(x, w, grid, k, base, local)


def edge_std(x: torch.Tensor, w: torch.Tensor, grid: torch.Tensor, k: int, base,
             local) -> torch.Tensor:
    """Only the (in, out) std of :func:`spline_and_std`."""
    return spline_and_std(x, w, grid, k, base, local)[1]


def edge_std_reference(x, w, grid, k, base) -> torch.Tensor:
    """Only the std of :func:`spline_and_std_reference`."""
    return spline_and_std_reference(x, w, grid, k, base)[1]
