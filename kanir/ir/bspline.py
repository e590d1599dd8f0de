"""B-spline bases evaluated sparsely: only the k+1 non-zero bases per input are computed.

A knot vector of G + 2k + 1 points carries G + k bases of order k; the grid range is
``[t_k, t_{G+k}]`` and the k knots on each side extend it. Outside ``[t_0, t_{-1})`` every
basis is zero. Values and derivatives (to any order) come from autograd through the local
Cox–de Boor recursion, so memory is O(batch · in · (k+1)) before the scatter into the dense
(batch, in, G+k) matrix that one matmul contracts with the coefficients.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


def uniform_knots(G: int, k: int, lo: float, hi: float) -> np.ndarray:
    """Uniform extended knots (G + 2k + 1 float64 values) covering [lo, hi] with G intervals:
    the IR's (numpy) form of :func:`uniform_grid`."""
    h = (hi - lo) / G
    return lo + h * np.arange(-k, G + k + 1, dtype=np.float64)


def uniform_grid(G: int, k: int, lo: float, hi: float, n_in: int = 1, dtype=torch.float64,
                 device=None) -> torch.Tensor:
    """Uniform extended knots of shape (n_in, G + 2k + 1) covering [lo, hi] with G intervals,
    computed in ``dtype`` (so float32 grids match those torch layers always had); in float64 it
    equals :func:`uniform_knots` bit for bit."""
    h = (hi - lo) / G
    t = lo + h * torch.arange(-k, G + k + 1, dtype=dtype, device=device)
    return t.unsqueeze(0).repeat(n_in, 1)


def greville_abscissae(knots: np.ndarray, k: int) -> np.ndarray:
    """Greville abscissae of a 1-D knot vector (G + k values): spline coefficients equal to them
    make the order-k B-spline reproduce f(x) = x exactly."""
    n = len(knots) - k - 1
    return np.array([knots[g + 1:g + k + 1].mean() for g in range(n)])


def greville(grid: torch.Tensor, k: int) -> torch.Tensor:
    """Greville abscissae of (n_in, G + 2k + 1) torch grids, shape (n_in, G + k): the torch form
    of :func:`greville_abscissae`, for initialising layers in place."""
    P = grid.shape[1] - k - 1
    return torch.stack([grid[:, g + 1:g + k + 1].mean(dim=1) for g in range(P)], dim=1)


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


def _deboor(x: torch.Tensor, span: torch.Tensor, grid: torch.Tensor, k: int) -> torch.Tensor:
    """de Boor's triangle: values (..., k+1) of bases span-k..span at x (span given, not searched)."""
    padded = _pad_knots(grid, k)  # knot t_m sits at padded index m + k
    offs = torch.arange(-k + 1, k + 1, device=x.device)
    gidx = span.unsqueeze(-1) + (k + offs)  # knots t_{span-k+1} .. t_{span+k}
    knots = torch.gather(padded.unsqueeze(0).expand(x.shape[0], -1, -1), 2, gidx)
    xs = x.unsqueeze(-1)
    left = xs - knots[..., :k].flip(-1)  # left[..., j-1] = x - t_{span+1-j}
    right = knots[..., k:] - xs  # right[..., j-1] = t_{span+j} - x
    N = [torch.ones_like(x)]
    for j in range(1, k + 1):
        new, saved = [], None
        for r in range(j):
            temp = N[r] / (right[..., r] + left[..., j - r - 1])
            term = right[..., r] * temp
            new.append(term if saved is None else saved + term)
            saved = left[..., j - r - 1] * temp
        new.append(saved)
        N = new
    return torch.stack(N, dim=-1)


def _span_table(grid: torch.Tensor, k: int):
    """Per knot interval, the k+1 local bases as polynomials in v = (x - t_s) / (t_{s+1} - t_s).

    Returns (coef (n_in*S, k+1, k+1) [basis r, power p], t_s (n_in*S,), 1/h (n_in*S,), cardinal)
    with S = M-1, where cardinal is (coef (k+1, k+1), t_0 (n_in,), 1/h (n_in,)) for uniform knots.
    Cached on the grid tensor and rebuilt when the grid changes (tensor version counter).
    """
    key = (grid.data_ptr(), grid._version, grid.dtype, grid.device)  # copies never share
    cache = getattr(grid, "_kanir_span_tables", None)
    if cache is None:
        cache = grid._kanir_span_tables = {}
    hit = cache.get(k)
    if hit is not None and hit[0] == key:
        return hit[1]
    with torch.no_grad():
        g = grid.detach().to(torch.float64)
        n_in, M = g.shape
        S = M - 1
        t0, h = g[:, :-1], g[:, 1:] - g[:, :-1]
        q = torch.arange(k + 1, dtype=torch.float64, device=g.device)
        v = 0.5 - 0.5 * torch.cos(torch.pi * (2 * q + 1) / (2 * k + 2))  # Chebyshev nodes in (0,1)
        xs = (t0.unsqueeze(-1) + h.unsqueeze(-1) * v).reshape(n_in, S * (k + 1))  # (in, S*(k+1))
        span = torch.arange(S, device=g.device).repeat_interleave(k + 1).expand(n_in, -1)
        vals = _deboor(xs.T.contiguous(), span.T.contiguous(), g, k)  # (S*(k+1), in, k+1)
        vals = vals.reshape(S, k + 1, n_in, k + 1).permute(2, 0, 1, 3)  # (in, S, point q, basis r)
        vander = v.unsqueeze(-1) ** q  # (q, p)
        coef = torch.linalg.solve(vander, vals)  # (in, S, p, r)
        table = (coef.transpose(-1, -2).reshape(n_in * S, k + 1, k + 1).to(grid.dtype),
                 t0.reshape(-1).to(grid.dtype), (1 / h).reshape(-1).to(grid.dtype))
        # Uniform knots (same spacing everywhere in a row): every interval carries the same
        # cardinal pieces, so evaluation needs no search and no gather.
        uniform = g.device.type != "meta" and (
            S == 1 or bool((h - h[:, :1]).abs().max()
                           <= 64 * torch.finfo(grid.dtype).eps * h.abs().max()))
        if uniform:  # coef[0, 0] is (power p, basis r), the pieces shared by every interval
            table = table + ((coef[0, 0].to(grid.dtype), g[:, 0].to(grid.dtype),
                              (1 / h[:, 0]).to(grid.dtype)),)
        else:
            table = table + (None,)
    cache[k] = (key, table)
    return table


def _search(x: torch.Tensor, grid: torch.Tensor):
    """Knot interval of each x (clamped to 0..M-2) and whether x lies in [t_0, t_{M-1})."""
    M = grid.shape[1]
    xt = x.detach().transpose(0, 1).contiguous()
    span = torch.searchsorted(grid.contiguous(), xt, right=True).transpose(0, 1) - 1
    inside = ((span >= 0) & (span <= M - 2)).to(x.dtype)
    return span.clamp(0, M - 2), inside


def local_bases(x: torch.Tensor, grid: torch.Tensor, k: int, deriv: bool = False):
    """The k+1 possibly non-zero bases at each x (and, with ``deriv``, their x-derivatives).

    x: (batch, n_in); grid: (n_in, M) with M = G + 2k + 1.
    Returns (first, vals) or (first, vals, dvals): first (batch, n_in) is the index of the first
    basis, vals/dvals (batch, n_in, k+1) values/derivatives of bases first..first+k. Indices may
    fall outside 0..G+k-1 near the ends (``dense_bases`` drops those); points outside
    [t_0, t_{M-1}) get zeros. Values come from per-interval polynomial tables (Horner's rule),
    differentiable to any order.
    """
    M = grid.shape[1]
    if k == 0:
        span, inside = _search(x, grid)
        vals = inside.unsqueeze(-1)
        return (span, vals, torch.zeros_like(vals)) if deriv else (span, vals)
    coef, t0, inv_h, cardinal = _span_table(grid, k)
    if cardinal is not None:
        c, g0, ih = cardinal
        pos = (x - g0) * ih
        span_f = torch.floor(pos.detach())
        inside = ((span_f >= 0) & (span_f <= M - 2)).to(x.dtype)
        span_f = span_f.clamp(0, M - 2)
        span = span_f.long()
        vs = (pos - span_f).unsqueeze(-1)
        piece = c.__getitem__  # power p -> (k+1,) coefficients shared by every interval
        scale = ih.unsqueeze(-1)
    else:
        span, inside = _search(x, grid)
        row = span + torch.arange(x.shape[1], device=x.device) * (M - 1)
        A = coef[row]  # (batch, n_in, k+1 bases, k+1 powers)
        vs = ((x - t0[row]) * inv_h[row]).unsqueeze(-1)
        piece = lambda p: A[..., p]  # noqa: E731
        scale = inv_h[row].unsqueeze(-1)
    vals, dvals = piece(k), None
    for p in range(k - 1, -1, -1):
        if deriv:
            dvals = vals if dvals is None else dvals * vs + vals
        vals = vals * vs + piece(p)
    if k == 1:  # linear pieces: keep x in the graph so second derivatives are zeros, not errors
        vals = vals + 0 * vs * vs
        if deriv:
            dvals = dvals + 0 * vs
    mask = inside.unsqueeze(-1)
    first = span - k
    if deriv:
        return first, vals * mask, dvals * scale * mask
    return first, vals * mask


def _scatter_dense(first: torch.Tensor, vals: torch.Tensor, n_basis: int, k: int) -> torch.Tensor:
    B, n_in = first.shape
    out = torch.zeros(B, n_in, n_basis + 2 * k + 1, dtype=vals.dtype, device=vals.device)
    pos = (first + k).unsqueeze(-1) + torch.arange(k + 1, device=vals.device)
    out.scatter_(2, pos, vals)
    return out[:, :, k : k + n_basis]


def dense_bases(x: torch.Tensor, grid: torch.Tensor, k: int) -> torch.Tensor:
    """All G+k bases at x as a (batch, n_in, G+k) tensor (zeros outside the local window)."""
    first, vals = local_bases(x, grid, k)
    return _scatter_dense(first, vals, grid.shape[1] - k - 1, k)


def dense_bases_and_deriv(x: torch.Tensor, grid: torch.Tensor, k: int):
    """Bases and their x-derivatives, both (batch, n_in, G+k), from one local evaluation."""
    first, vals, dvals = local_bases(x, grid, k, deriv=True)
    n_basis = grid.shape[1] - k - 1
    return _scatter_dense(first, vals, n_basis, k), _scatter_dense(first, dvals, n_basis, k)


class _SplineContract(torch.autograd.Function):
    """y = bases(x) @ C without keeping the (batch, in*(G+k)) basis matrix for backward.

    The backward pass recomputes the bases from x with differentiable operations, so gradients of
    any order still flow (Hessians of a KAN work), while training memory stays O(batch * in).
    """

    @staticmethod
    def forward(ctx, x, grid, cmat, k):
        with torch.no_grad():
            B = dense_bases(x, grid, k).reshape(x.shape[0], -1)
            y = B @ cmat
        ctx.save_for_backward(x, grid, cmat)
        ctx.k = k
        return y

    @staticmethod
    def backward(ctx, gy):
        x, grid, cmat = ctx.saved_tensors
        k = ctx.k
        gx = gc = None
        if ctx.needs_input_grad[0]:
            B, dB = dense_bases_and_deriv(x, grid, k)
            inner = (gy @ cmat.T).reshape(x.shape[0], x.shape[1], -1)
            gx = (dB * inner).sum(-1)
        else:
            B = dense_bases(x, grid, k)
        if ctx.needs_input_grad[2]:
            gc = B.reshape(x.shape[0], -1).T @ gy
        return gx, None, gc, None


def spline_contract(x: torch.Tensor, grid: torch.Tensor, cmat: torch.Tensor, k: int,
                    local=None) -> torch.Tensor:
    """bases(x) flattened to (batch, in*(G+k)) times cmat (in*(G+k), out), memory-lean.

    Reverse mode of any order works; torch.func transforms (vmap, jacrev...) take the plain
    differentiable formula. ``local`` is an optional :func:`local_eval` record of this x.
    """
    if torch._C._are_functorch_transforms_active():
        return dense_bases(x, grid, k).reshape(x.shape[0], -1) @ cmat
    if k == 0:
        return _SplineContract.apply(x, grid, cmat, k)
    if local is not None:
        if not x.requires_grad and local.dense is not None:
            return local.dense @ cmat  # fixed input: the basis matrix is already there
        if local.dvals is None and x.requires_grad:
            local = None  # recorded without derivatives: evaluate again with them
        else:
            local = local[:3]
    return _FastContract.apply(x, grid, cmat, k, local)


# ---------------------------------------------------------------------- fast path
# Training and inference: the k+1 local bases and their x-derivatives are evaluated once, without
# an autograd graph, in (k+1, batch, n_in) layout (torch's CPU kernels are several times slower
# on tensors whose innermost axis has k+1 = 4 elements); the backward pass uses them directly.
# Only O(batch * n_in * (k+1)) is kept between forward and backward.


def find_span(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Interval index m with t_m <= x < t_{m+1}: -1 below t_0, M-1 from t_{M-1} on (like
    ``searchsorted(right=True) - 1``). With few knots and many points, counting them by
    comparison is 2-3x faster than torch's binary search on CPU; below ~10k points the binary
    search's single call wins (measured here: 18 vs 81 us at 1000 x 2)."""
    M = grid.shape[1]
    if M <= 32 and x.numel() > 8192:
        knots = grid.T.contiguous()
        count = torch.zeros(x.shape, dtype=torch.uint8, device=x.device)
        for m in range(M):
            count += (x >= knots[m]).view(torch.uint8)
        return count.long() - 1
    xt = x.T.contiguous()
    return torch.searchsorted(grid.contiguous(), xt, right=True).T.contiguous() - 1


def _masks(span: torch.Tensor, k: int, M: int, dtype, build: bool = True) -> list | None:
    """Per local basis r, 1 where basis span-k+r exists and x is inside [t_0, t_{M-1}), i.e.
    k-r <= span <= M-2-r; all None (no masking) when every span is in [k, M-2-k], checked on CPU
    only (elsewhere it would cost a device sync). ``build=False``: None instead of building
    masks (the caller has a mask-free path)."""
    if span.device.type == "cpu" and span.numel():
        lo, hi = torch.aminmax(span)
        if float(lo) >= k and float(hi) <= M - 2 - k:
            return [None] * (k + 1)
    if not build:
        return None
    return [((span >= k - r) & (span <= M - 2 - r)).to(dtype) for r in range(k + 1)]


def _apply_masks(out: torch.Tensor, ok: list) -> torch.Tensor:
    """Zero, in place, the entries of ``out`` (k+1, batch, n_in) whose basis does not exist."""
    for r, o in enumerate(ok):
        if o is not None:
            out[r].mul_(o)
    return out


def _cardinal_local(x, grid, k, cardinal, deriv):
    """Uniform knots: the shared cardinal pieces applied to the powers of the local coordinate
    in one matmul (values) and one more (derivatives)."""
    c, g0, ih = cardinal  # c: (power p, basis r)
    M = grid.shape[1]
    pos = (x - g0) * ih
    sf = torch.floor(pos)
    ok = _masks(sf, k, M, x.dtype, build=x.device.type != "cpu")
    if ok is None:  # points near or past the ends: the gathered tables need no masks there
        return _table_local(x, grid, k, deriv)
    if ok[0] is not None:
        sf = sf.clamp_(0, M - 2)
    v = pos.sub_(sf)
    if ok[0] is not None:
        v = v.clamp_(0, 1)  # masked points: evaluate at the nearest end, never overflow
    exps = torch.arange(k + 1, dtype=x.dtype, device=x.device).view(-1, 1)
    V = v.reshape(1, -1).pow(exps)  # (power p, batch*in)
    vals = (c.T @ V).view(k + 1, *x.shape)
    dvals = None
    if deriv:  # d/dv of sum_p c_pr v^p = sum_{p>=1} p c_pr v^(p-1)
        dvals = ((c[1:] * exps[1:]).T @ V[:k]).view(k + 1, *x.shape).mul_(ih)
    first = sf.long() - k
    return first, _apply_masks(vals, ok), _apply_masks(dvals, ok) if deriv else None


def _deboor_local(x, grid, k, deriv):
    """Any non-decreasing knots: de Boor's triangle on the 2k knots around each x."""
    n_in, M = grid.shape
    tiny = torch.finfo(x.dtype).tiny
    span = find_span(x, grid)
    ok = _masks(span, k, M, x.dtype)
    if ok[0] is not None:
        span = span.clamp_(0, M - 2)
        x = torch.clamp(x, grid[:, 0], grid[:, -1])  # masked points: nearest end, no overflow
    padded = _pad_knots(grid, k).reshape(-1)  # knot t_m of input i at i*(M+2k) + m + k
    at = span + (torch.arange(n_in, device=x.device) * (M + 2 * k) + k)
    t = {r: torch.take(padded, at + r) for r in range(1 - k, k + 1)}  # t[r] = t_{span+r}
    left = [None] + [x - t[1 - j] for j in range(1, k + 1)]
    right = [None] + [t[j] - x for j in range(1, k + 1)]
    vals = x.new_empty((k + 1, *x.shape))
    N = prev = [torch.ones_like(x)]
    for j in range(1, k + 1):
        prev, new, carry = N, [], None
        last = j == k  # the last level is written straight into vals
        for r in range(j):
            # right + left from the knots alone: exact, and > 0 since every basis of the local
            # triangle covers the interval holding x
            q = N[r] / (t[r + 1] - t[r + 1 - j]).clamp_min(tiny)
            term = torch.mul(right[r + 1], q, out=vals[r]) if last else right[r + 1] * q
            if carry is not None:
                term = term.add_(carry) if last else term + carry
            new.append(term)
            carry = left[j - r] * q
        new.append(vals[j].copy_(carry) if last else carry)
        N = new
    _apply_masks(vals, ok)
    if not deriv:
        return span - k, vals, None
    # B'_{i,k} = k (B_{i,k-1} / (t_{i+k} - t_i) - B_{i+1,k-1} / (t_{i+k+1} - t_{i+1})); with
    # i = span-k+r and prev[q] = B_{span-k+1+q, k-1}, B'_{span-k+r} = w[r-1] - w[r] where
    # w[q] = k prev[q] / (t_{span+q+1} - t_{span+q+1-k})
    w = [k * prev[q] / (t[q + 1] - t[q + 1 - k]).clamp_min(tiny) for q in range(k)]
    dvals = x.new_empty((k + 1, *x.shape))
    torch.neg(w[0], out=dvals[0])
    for r in range(1, k):
        torch.sub(w[r - 1], w[r], out=dvals[r])
    dvals[k].copy_(w[k - 1])
    return span - k, vals, _apply_masks(dvals, ok)


def _gather_table(grid: torch.Tensor, k: int):
    """The span tables laid out for one gather per evaluation, cached like ``_span_table``.

    Returns (A, t0, inv_h): A ((k+1)**2, n_in*(M+1)) holds coefficient p*(k+1)+r (power p of
    local basis r) for row i*(M+1) + span + 1, where span = -1 .. M-1 as ``find_span`` gives it.
    Rows for x outside [t_0, t_{M-1}) (span -1 and M-1) and the coefficients of bases that do not
    exist near the ends are zero, so evaluation needs neither clamping nor masks.
    """
    key = (grid.data_ptr(), grid._version, grid.dtype, grid.device)
    cache = grid._kanir_span_tables if hasattr(grid, "_kanir_span_tables") else None
    hit = cache.get(("gather", k)) if cache is not None else None
    if hit is not None and hit[0] == key:
        return hit[1]
    coef, t0, inv_h, _ = _span_table(grid, k)  # creates the cache
    with torch.no_grad():
        n_in, M = grid.shape
        S = M - 1
        c = coef.reshape(n_in, S, k + 1, k + 1)  # (in, span s, basis r, power p)
        s = torch.arange(S, device=grid.device).unsqueeze(1)
        r = torch.arange(k + 1, device=grid.device).unsqueeze(0)
        exists = ((s - k + r) >= 0) & ((s - k + r) <= M - k - 2)  # basis index in 0..G+k-1
        c = c * exists.unsqueeze(-1).to(c.dtype)
        padded = c.new_zeros(n_in, S + 2, k + 1, k + 1)
        padded[:, 1:-1] = c
        A = padded.permute(3, 2, 0, 1).reshape((k + 1) ** 2, n_in * (S + 2)).contiguous()
        tz = t0.new_zeros(n_in, S + 2)
        iz = inv_h.new_zeros(n_in, S + 2)
        tz[:, 1:-1] = t0.reshape(n_in, S)
        iz[:, 1:-1] = inv_h.reshape(n_in, S)
        table = (A, tz.reshape(-1), iz.reshape(-1))
    grid._kanir_span_tables[("gather", k)] = (key, table)
    return table


def _table_local(x, grid, k, deriv):
    """Any non-decreasing knots: one gather of the interval's polynomial pieces, then Horner's
    rule in the local coordinate v = (x - t_s) / (t_{s+1} - t_s)."""
    A, t0, inv_h = _gather_table(grid, k)
    M = grid.shape[1]
    span = find_span(x, grid)  # -1 .. M-1
    row = (span + 1).add_(torch.arange(x.shape[1], device=x.device) * (M + 1)).view(-1)
    P = A.index_select(1, row).view(k + 1, k + 1, *x.shape)  # (power p, basis r, batch, in)
    ih = inv_h.index_select(0, row).view(x.shape)
    v = (x - t0.index_select(0, row).view(x.shape)).mul_(ih)
    vals = P[k].clone()
    for p in range(k - 1, -1, -1):
        vals.mul_(v).add_(P[p])
    dvals = None
    if deriv:
        dvals = P[k] * k
        for p in range(k - 1, 0, -1):
            dvals.mul_(v).add_(P[p], alpha=p)
        dvals.mul_(ih)
    return span - k, vals, dvals


@torch.no_grad()
def local_bases_d(x: torch.Tensor, grid: torch.Tensor, k: int, deriv: bool = True):
    """(first, vals, dvals) of the k+1 local bases at x (batch, n_in), k >= 1, no autograd.

    first (batch, n_in) as in :func:`local_bases`; vals, dvals (k+1, batch, n_in): value and
    x-derivative of basis first+r, zero where that basis does not exist or x is outside
    [t_0, t_{M-1}); dvals is None unless ``deriv``.
    """
    cardinal = _span_table(grid, k)[3]
    if cardinal is not None:
        return _cardinal_local(x, grid, k, cardinal, deriv)
    return _table_local(x, grid, k, deriv)


def _flat_positions(first: torch.Tensor, k: int, n_basis: int) -> torch.Tensor:
    """(k+1, batch, n_in) indices of the local bases in a flat (batch, n_in, n_basis) buffer;
    bases that do not exist (their values are zero) are clamped onto a neighbour."""
    B, n_in = first.shape
    row = torch.arange(0, B * n_in * n_basis, n_basis, device=first.device).view(B, n_in)
    pos = first.new_empty((k + 1, B, n_in))
    for r in range(k + 1):
        torch.add(first, r, out=pos[r]).clamp_(0, n_basis - 1).add_(row)
    return pos


def _densify(pos: torch.Tensor, vals: torch.Tensor, B: int, n_in: int, n_basis: int):
    """The (batch, n_in * n_basis) basis matrix: one 1-D scatter, no padding, no copy."""
    out = torch.zeros(B * n_in * n_basis, dtype=vals.dtype, device=vals.device)
    out.scatter_add_(0, pos.view(-1), vals.view(-1))
    return out.view(B, n_in * n_basis)


class _FastContract(torch.autograd.Function):
    """y = bases(x) @ C keeping only the local values and derivatives for backward; double
    backward (create_graph=True) differentiates the plain formula instead."""

    @staticmethod
    def forward(ctx, x, grid, cmat, k, local=None):
        n_basis = grid.shape[1] - k - 1
        if local is None:
            local = local_eval(x, grid, k, deriv=ctx.needs_input_grad[0])
        pos, vals, dvals = local[:3]
        y = _densify(pos, vals, *x.shape, n_basis) @ cmat
        ctx.save_for_backward(x, grid, cmat, pos, vals, dvals)
        ctx.k = k
        return y

    @staticmethod
    def backward(ctx, gy):
        x, grid, cmat, pos, vals, dvals = ctx.saved_tensors
        k = ctx.k
        if torch.is_grad_enabled():  # create_graph=True
            xr = x if x.requires_grad else x.detach().requires_grad_(True)
            y = dense_bases(xr, grid, k).reshape(x.shape[0], -1) @ cmat
            gx, gc = torch.autograd.grad(y, (xr, cmat), gy, create_graph=True,
                                         allow_unused=True)
            return gx, None, gc, None, None
        n_basis = grid.shape[1] - k - 1
        gx = gc = None
        if ctx.needs_input_grad[2]:
            gc = _densify(pos, vals, *x.shape, n_basis).T @ gy
        if ctx.needs_input_grad[0]:
            gb = (gy @ cmat.T).reshape(-1)
            gx = (torch.take(gb, pos) * dvals).sum(0)
        return gx, None, gc, None, None


class _DenseFromLocal(torch.autograd.Function):
    """The (batch, n_in * n_basis) basis matrix from already evaluated local bases, with the
    x-gradient taken from their derivatives (double backward recomputes the plain formula)."""

    @staticmethod
    def forward(ctx, x, grid, k, pos, vals, dvals):
        ctx.save_for_backward(x, grid, pos, dvals)
        ctx.k = k
        return _densify(pos, vals, *x.shape, grid.shape[1] - k - 1)

    @staticmethod
    def backward(ctx, gD):
        x, grid, pos, dvals = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None, None
        if torch.is_grad_enabled():  # create_graph=True
            xr = x if x.requires_grad else x.detach().requires_grad_(True)
            D = dense_bases(xr, grid, ctx.k).reshape(x.shape[0], -1)
            (gx,) = torch.autograd.grad(D, xr, gD, create_graph=True)
            return gx, None, None, None, None, None
        gx = (torch.take(gD.reshape(-1), pos) * dvals).sum(0)
        return gx, None, None, None, None, None


class LocalBases(NamedTuple):
    """The k+1 local B-spline bases at some x, evaluated once without autograd and shared by
    :func:`spline_contract`, :func:`dense_from_local` and the regulariser's edge statistics.

    pos indexes a flat (batch, n_in, G+k) buffer; vals, dvals (k+1, batch, n_in) are the values
    and x-derivatives (dvals None when not needed). ``dense`` is the (batch, n_in*(G+k)) basis
    matrix and ``base`` the layer's base function at x, kept only for inputs that stay fixed
    while parameters change (a training step's data).
    """

    pos: torch.Tensor
    vals: torch.Tensor
    dvals: torch.Tensor | None
    dense: torch.Tensor | None = None
    base: torch.Tensor | None = None


def local_eval(x: torch.Tensor, grid: torch.Tensor, k: int, deriv: bool = True,
               dense: bool = False) -> LocalBases:
    """The :class:`LocalBases` of x (``dense``: also the dense basis matrix)."""
    first, vals, dvals = local_bases_d(x.detach(), grid, k, deriv=deriv)
    n_basis = grid.shape[1] - k - 1
    pos = _flat_positions(first, k, n_basis)
    D = _densify(pos, vals, *x.shape, n_basis) if dense else None
    return LocalBases(pos, vals, dvals, D)


def dense_from_local(x: torch.Tensor, grid: torch.Tensor, k: int, local) -> torch.Tensor:
    """``dense_bases(x, grid, k)`` (batch, n_in, G+k) from a :func:`local_eval` record of the
    same x, differentiable in x."""
    pos, vals, dvals = local[:3]
    if torch._C._are_functorch_transforms_active() or k == 0:
        return dense_bases(x, grid, k)
    if not x.requires_grad and local.dense is not None:
        return local.dense.view(*x.shape, -1)
    if dvals is None:
        return dense_bases(x, grid, k)
    return _DenseFromLocal.apply(x, grid, k, pos, vals, dvals).view(*x.shape, -1)
