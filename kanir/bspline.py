"""B-spline bases evaluated sparsely: only the k+1 non-zero bases per input are computed.

A knot vector of G + 2k + 1 points carries G + k bases of order k; the grid range is
``[t_k, t_{G+k}]`` and the k knots on each side extend it. Outside ``[t_0, t_{-1})`` every
basis is zero. Values and derivatives (to any order) come from autograd through the local
Cox–de Boor recursion, so memory is O(batch · in · (k+1)) before the scatter into the dense
(batch, in, G+k) matrix that one matmul contracts with the coefficients.
"""

from __future__ import annotations

import torch


def uniform_grid(G: int, k: int, lo: float, hi: float, n_in: int = 1, dtype=torch.float64,
                 device=None) -> torch.Tensor:
    """Uniform extended knots of shape (n_in, G + 2k + 1) covering [lo, hi] with G intervals."""
    h = (hi - lo) / G
    t = lo + h * torch.arange(-k, G + k + 1, dtype=dtype, device=device)
    return t.unsqueeze(0).repeat(n_in, 1)


def extend_grid(inner: torch.Tensor, k: int) -> torch.Tensor:
    """Add k knots on each side of (n_in, G+1) inner knots, spaced by the mean interval."""
    h = (inner[:, -1:] - inner[:, :1]) / (inner.shape[1] - 1)
    steps = torch.arange(1, k + 1, dtype=inner.dtype, device=inner.device)
    left = inner[:, :1] - h * steps.flip(0)
    right = inner[:, -1:] + h * steps
    return torch.cat([left, inner, right], dim=1)


def _pad_knots(grid: torch.Tensor, k: int) -> torch.Tensor:
    """k extra knots each side so the local recursion can gather without bounds checks."""
    h0 = grid[:, 1:2] - grid[:, :1]
    h1 = grid[:, -1:] - grid[:, -2:-1]
    steps = torch.arange(1, k + 1, dtype=grid.dtype, device=grid.device)
    return torch.cat([grid[:, :1] - h0 * steps.flip(0), grid, grid[:, -1:] + h1 * steps], dim=1)


def local_bases(x: torch.Tensor, grid: torch.Tensor, k: int):
    """The k+1 possibly non-zero bases at each x.

    x: (batch, n_in); grid: (n_in, M) with M = G + 2k + 1.
    Returns (first, vals): first (batch, n_in) is the index of the first basis (may be < 0 or
    point past the last basis: such entries are zeroed in ``vals``), vals (batch, n_in, k+1).
    """
    M = grid.shape[1]
    n_basis = M - k - 1
    xt = x.detach().transpose(0, 1).contiguous()
    span = torch.searchsorted(grid.contiguous(), xt, right=True).transpose(0, 1) - 1  # (batch, n_in)
    inside = (span >= 0) & (span <= M - 2)
    span = span.clamp(0, M - 2)
    padded = _pad_knots(grid, k)  # knot t_m sits at padded index m + k
    offs = torch.arange(-k + 1, k + 1, device=x.device)  # knots t_{span-k+1} .. t_{span+k}
    gidx = (span.unsqueeze(-1) + k + offs)  # (batch, n_in, 2k)
    knots = torch.gather(padded.unsqueeze(0).expand(x.shape[0], -1, -1), 2, gidx)
    # knots[..., k-1+r] = t_{span+r} for r in -k+1..k
    # de Boor's triangle: left[j] = x - t_{span+1-j}, right[j] = t_{span+j} - x
    left = [None] + [x - knots[..., k - j] for j in range(1, k + 1)]
    right = [None] + [knots[..., k - 1 + j] - x for j in range(1, k + 1)]
    N = [torch.ones_like(x)]
    for j in range(1, k + 1):
        saved = torch.zeros_like(x)
        new = []
        for r in range(j):
            denom = right[r + 1] + left[j - r]
            temp = N[r] / torch.where(denom == 0, torch.ones_like(denom), denom)
            new.append(saved + right[r + 1] * temp)
            saved = left[j - r] * temp
        new.append(saved)
        N = new
    vals = torch.stack(N, dim=-1)  # basis index span - k + r
    first = span - k
    bidx = first.unsqueeze(-1) + torch.arange(k + 1, device=x.device)
    ok = inside.unsqueeze(-1) & (bidx >= 0) & (bidx < n_basis)
    vals = vals * ok.to(vals.dtype)
    return first, vals


def dense_bases(x: torch.Tensor, grid: torch.Tensor, k: int) -> torch.Tensor:
    """All G+k bases at x as a (batch, n_in, G+k) tensor (zeros outside the local window)."""
    first, vals = local_bases(x, grid, k)
    n_basis = grid.shape[1] - k - 1
    B, n_in = x.shape
    out = torch.zeros(B, n_in, n_basis + 2 * k + 1, dtype=vals.dtype, device=x.device)
    pos = (first + k).unsqueeze(-1) + torch.arange(k + 1, device=x.device)
    out = out.scatter(2, pos, vals)
    return out[:, :, k : k + n_basis]
