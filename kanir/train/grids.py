"""Grid updates and refinement that keep each spline's function (least squares onto new knots).

The projection solves, per input node, one small ridge-regularised normal system built from
Gram matrices of old and new bases, so the (batch, in, out) tensor of per-edge values is never
formed and a constant input column or an uncovered basis cannot produce NaN.
"""

from __future__ import annotations

import torch

from kanir.backends.torch import KANLayer, KANModule
from kanir.ir.bspline import dense_bases, extend_grid


def grid_from_samples(x: torch.Tensor, G: int, k: int, grid_eps: float = 0.02) -> torch.Tensor:
    """Extended knots (n_in, G+2k+1): a mix of sample quantiles and a uniform grid.

    ``grid_eps = 1`` gives a uniform grid over the sample range, 0 a pure quantile grid.
    Degenerate (constant) columns get a unit-width range around their value.
    """
    xs = torch.sort(x.detach().to(torch.float64), dim=0).values
    n = xs.shape[0]
    lo, hi = xs[0].clone(), xs[-1].clone()
    scale = torch.maximum(torch.ones_like(lo), torch.maximum(lo.abs(), hi.abs()))
    flat = (hi - lo) <= 1e-9 * scale
    # Pad by about two sample spacings: unseen points from the same distribution fall just outside
    # the extreme samples and should be interpolated by the last piece, not extrapolated.
    pad = 2.0 * (hi - lo) / max(n, 1)
    lo = torch.where(flat, lo - 0.5, lo - pad)
    hi = torch.where(flat, hi + 0.5, hi + pad)
    steps = torch.arange(G + 1, dtype=torch.float64, device=x.device) / G
    uniform = lo[:, None] + (hi - lo)[:, None] * steps[None, :]
    ids = torch.clamp((steps * (n - 1)).round().long(), 0, n - 1)
    adaptive = xs[ids].T
    adaptive[:, 0], adaptive[:, -1] = lo, hi
    adaptive = torch.where(flat[:, None], uniform, adaptive)
    inner = grid_eps * uniform + (1 - grid_eps) * adaptive
    # keep knots strictly increasing even for heavily repeated samples (only rows that need it)
    gap = 1e-6 * (hi - lo)[:, None] / G
    bad = (torch.diff(inner, dim=1) <= gap).any(dim=1, keepdim=True)
    ramp = gap * torch.arange(G + 1, dtype=inner.dtype, device=inner.device)
    inner = torch.where(bad, torch.cummax(inner, dim=1).values + ramp, inner)
    return extend_grid(inner, k)


#: elements of one (chunk, in, P) basis tensor in :func:`project_coef` (bounds its memory)
_CHUNK_ELEMENTS = 1 << 22


def project_coef(x: torch.Tensor, old_grid: torch.Tensor, old_coef: torch.Tensor,
                 new_grid: torch.Tensor, k: int, ridge: float = 1e-10) -> torch.Tensor:
    """Coefficients on ``new_grid`` reproducing the old splines at the samples x (penalised
    least squares).

    x: (batch, in); old_coef: (in, out, P_old). Returns (in, out, P_new) in float64. The Gram
    matrices are accumulated over chunks of rows, so memory stays bounded at large grids.
    """
    x64 = x.detach().to(torch.float64)
    og, ng = old_grid.to(torch.float64), new_grid.to(torch.float64)
    n_in, P, Po = x64.shape[1], ng.shape[1] - k - 1, og.shape[1] - k - 1
    A = x64.new_zeros(n_in, P, P)
    C = x64.new_zeros(n_in, P, Po)
    rows = max(1, _CHUNK_ELEMENTS // max(1, n_in * max(P, Po)))
    for i in range(0, max(x64.shape[0], 1), rows):
        part = x64[i:i + rows]
        Bn = dense_bases(part, ng, k)
        A += torch.einsum("bip,biq->ipq", Bn, Bn)
        C += torch.einsum("bip,biq->ipq", Bn, dense_bases(part, og, k))
    rhs = C @ old_coef.detach().to(torch.float64).transpose(1, 2)  # (in, P_new, out)
    # Smoothness penalty on (k+1)-th coefficient differences: coefficients no sample pins down
    # (e.g. the outermost bases) follow a degree-k continuation instead of collapsing to zero.
    eye = torch.eye(P, dtype=A.dtype, device=A.device)
    D = torch.diff(eye, n=min(k + 1, P - 1), dim=0) if P > 1 else eye
    scale = torch.diagonal(A, dim1=1, dim2=2).mean(dim=1).clamp_min(1e-300)[:, None, None]
    reg = ridge * scale * (D.T @ D) + 1e-6 * ridge * scale * eye + 1e-300 * eye
    sol = torch.linalg.solve(A + reg, rhs)
    return sol.transpose(1, 2)


def with_even_samples(grid: torch.Tensor, k: int, per_interval: int = 8) -> torch.Tensor:
    """Evenly spaced samples (n, in) over each input's grid range (the knots' inner span),
    ``per_interval`` per interval of ``grid`` plus the ends.

    A projection onto a fine grid from the data alone is underdetermined where intervals hold
    no sample (1000 random points on 1000 intervals leave a third of them empty), and the fit
    that follows keeps the error there: even samples pin down every new coefficient.
    """
    lo, hi = grid[:, k].to(torch.float64), grid[:, -k - 1].to(torch.float64)
    G = grid.shape[1] - 2 * k - 1
    steps = torch.linspace(0.0, 1.0, per_interval * G + 1, dtype=torch.float64,
                           device=grid.device)
    return lo[None, :] + (hi - lo)[None, :] * steps[:, None]


@torch.no_grad()
def update_layer_grid(layer: KANLayer, x: torch.Tensor, grid_eps: float = 0.02,
                      G: int | None = None, even: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """New (grid, coef) for a layer from its input samples; G defaults to the current size.

    The knots come from x; with ``even`` the coefficients are projected from evenly spaced
    samples over the new grid's range (the old functions kept on the whole range, not only
    where x lies), else from x.
    """
    G = layer.G if G is None else G
    new_grid = grid_from_samples(x, G, layer.k, grid_eps)
    xs = with_even_samples(new_grid, layer.k) if even else x
    coef = project_coef(xs, layer.grid, layer.coef, new_grid, layer.k)
    return new_grid.to(layer.grid.dtype), coef.to(layer.coef.dtype)


@torch.no_grad()
def update_grid(module: KANModule, x: torch.Tensor, grid_eps: float = 0.02) -> None:
    """Adapt every layer's grid to the activations of x, keeping the learned functions (in place)."""
    h = x
    last = len(module.layers) - 1
    for n, layer in enumerate(module.layers):
        if layer._any_spline:
            grid, coef = update_layer_grid(layer, h, grid_eps)
            layer.grid.copy_(grid)
            layer.coef.copy_(coef)
        if n < last:  # the last layer's output feeds no grid
            h = layer(h)


@torch.no_grad()
def refine(module: KANModule, new_grid: int, x: torch.Tensor, grid_eps: float = 0.02) -> KANModule:
    """A new module with ``new_grid`` intervals per spline: knots placed from x, coefficients
    fitted to the old splines on evenly spaced samples over the new range."""
    import copy

    new = copy.deepcopy(module)
    h = x
    for old, layer in zip(module.layers, new.layers):
        grid, coef = update_layer_grid(old, h, grid_eps, G=new_grid, even=True)
        layer.grid = grid
        layer.coef = torch.nn.Parameter(coef, requires_grad=old.coef.requires_grad)
        h = old(h)
    new.meta["grid"] = new_grid
    return new


class Reservoir:
    """A uniform random sample of at most ``size`` rows of a stream of batches (reservoir
    sampling, Algorithm R, seeded): grid updates and ``refine`` on data that does not fit in
    memory, with memory bounded by ``size`` whatever the length of the stream."""

    def __init__(self, size: int, seed: int = 0):
        self.size, self.seen = int(size), 0
        self.rows: torch.Tensor | None = None
        self._gen = torch.Generator().manual_seed(int(seed))

    def add(self, x: torch.Tensor) -> None:
        """Offer the rows of one batch (b, n) to the sample."""
        x = x.detach()
        b = x.shape[0]
        if self.rows is None:
            self.rows = x.new_empty(self.size, x.shape[1])
        free = max(0, min(self.size - self.seen, b))
        if free:  # the first ``size`` rows of the stream fill the reservoir
            self.rows[self.seen:self.seen + free] = x[:free]
        if b > free:  # row t (0-based) replaces a random slot with probability size / (t + 1)
            t = torch.arange(self.seen + free, self.seen + b, dtype=torch.float64)
            slot = (torch.rand(b - free, generator=self._gen, dtype=torch.float64)
                    * (t + 1)).floor().long()
            keep = torch.nonzero(slot < self.size).flatten()
            if len(keep):
                slots = slot[keep]
                # several rows of one batch may draw the same slot: the last one wins, as in
                # the sequential algorithm
                rev = torch.flip(slots, (0,))
                uniq, inv = torch.unique(rev, return_inverse=True)
                first = torch.full((len(uniq),), len(rev), dtype=torch.long)
                first.scatter_reduce_(0, inv, torch.arange(len(rev)), reduce="amin")
                last = len(rev) - 1 - first
                src = (keep[last] + free).to(x.device)
                self.rows[uniq.to(x.device)] = x[src]
        self.seen += b

    def sample(self) -> torch.Tensor:
        """The rows sampled so far (fewer than ``size`` while the stream was shorter)."""
        if self.rows is None:
            raise ValueError("the reservoir is empty")
        return self.rows[:min(self.seen, self.size)]
