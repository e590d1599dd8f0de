"""Fresh random KANs (pykan's initialisation), built straight into a torch module.

Seeds go through a ``torch.Generator``: the same seed gives bit-identical parameters and no
global RNG state is touched.
"""

from __future__ import annotations

import torch

from kanir.backends.torch import BASE_FUNS, KANLayer, KANModule
from kanir.errors import WidthSpecError

from .graph import default_names
from .width import parse_width


def sparse_mask(n_in: int, n_out: int) -> torch.Tensor:
    """Trick B: connect each output to the input(s) nearest to it in relative position."""
    mask = torch.zeros(n_in, n_out)
    pos_in = (torch.arange(n_in) + 0.5) / n_in
    pos_out = (torch.arange(n_out) + 0.5) / n_out
    nearest_in = torch.argmin((pos_out[:, None] - pos_in[None, :]).abs(), dim=1)
    nearest_out = torch.argmin((pos_in[:, None] - pos_out[None, :]).abs(), dim=1)
    mask[nearest_in, torch.arange(n_out)] = 1
    mask[torch.arange(n_in), nearest_out] = 1
    return mask


def greville(grid: torch.Tensor, k: int) -> torch.Tensor:
    """Greville abscissae (n_in, G+k): spline coefficients equal to them represent f(x) = x."""
    P = grid.shape[1] - k - 1
    return torch.stack([grid[:, g + 1:g + k + 1].mean(dim=1) for g in range(P)], dim=1)


def init_module(width, mult_arity=2, grid: int = 5, k: int = 3, seed: int = 1,
                noise_scale: float = 0.3, base_fun: str = "silu", grid_range=(-1.0, 1.0),
                sparse_init: bool = False, input_names=None, output_names=None,
                dtype=torch.float32, scale_base_mu: float = 0.0, scale_base_sigma: float = 1.0
                ) -> KANModule:
    """A randomly initialised KANModule with pykan's default scheme (small noisy splines,
    uniform random residual scales, ``scale_sp = 1/sqrt(n_in)``)."""
    layers = parse_width(width, mult_arity)
    if not isinstance(grid, int) or grid < 1:
        raise WidthSpecError(f"grid must be a positive integer number of intervals, got {grid!r}")
    if not isinstance(k, int) or k < 1:
        raise WidthSpecError(f"spline order k must be a positive integer, got {k!r}")
    if base_fun not in BASE_FUNS:
        raise WidthSpecError(f"unknown base_fun {base_fun!r}; choose one of {sorted(BASE_FUNS)}")
    lo, hi = (float(v) for v in grid_range)
    if not lo < hi:
        raise WidthSpecError(f"grid_range must be (low, high) with low < high, got {grid_range!r}")
    gen = torch.Generator().manual_seed(int(seed))
    mods = []
    for l in range(len(layers) - 1):
        n_in, out = layers[l].n_nodes, layers[l + 1]
        layer = KANLayer(n_in, out, grid, k, dtype, base_fun, (lo, hi))
        n_out = out.n_subnodes
        with torch.no_grad():
            noise = (torch.rand(n_in, n_out, grid + k, generator=gen, dtype=torch.float64) - 0.5)
            layer.coef.copy_(noise * noise_scale / grid)
            u = torch.rand(n_in, n_out, generator=gen, dtype=torch.float64) * 2 - 1
            layer.scale_base.copy_((scale_base_mu + scale_base_sigma * u) / n_in**0.5)
            layer.scale_sp.fill_(1.0 / n_in**0.5)
            if out.n_mult:
                # Edges into mult-node subnodes start as random lines (coefficients on the
                # Greville abscissae), so products begin as bilinear forms with useful gradients
                # instead of products of small noise.
                feeds = torch.zeros(n_out, dtype=torch.bool)
                feeds[out.n_sum:] = True
                slope = torch.rand(n_in, n_out, generator=gen, dtype=torch.float64) * 2 - 1
                lines = slope[..., None] * greville(layer.grid.to(torch.float64), k)[:, None, :]
                layer.coef.add_(lines * feeds[None, :, None] * n_in**0.5)
            mask = sparse_mask(n_in, n_out) if sparse_init else torch.ones(n_in, n_out)
            layer.has_spline.copy_(mask.bool())
            layer.mask_sp.copy_(mask)
        layer.refresh_symbolic()
        mods.append(layer)
    meta = {
        "input_names": list(input_names or default_names("x", layers[0].n_nodes)),
        "output_names": list(output_names or default_names("y", layers[-1].n_nodes)),
        "grid": grid, "k": k, "grid_range": (lo, hi), "base_fun": base_fun,
        "dtype": "float64" if dtype == torch.float64 else "float32",
    }
    if len(meta["input_names"]) != layers[0].n_nodes:
        raise WidthSpecError(f"{len(meta['input_names'])} input_names for {layers[0].n_nodes} inputs")
    if len(meta["output_names"]) != layers[-1].n_nodes:
        raise WidthSpecError(
            f"{len(meta['output_names'])} output_names for {layers[-1].n_nodes} outputs")
    return KANModule(mods, meta)
