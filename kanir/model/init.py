"""Fresh random KANs (pykan's initialisation), built as a KanGraph and lowered: one
construction path for every model (``KAN(width=...)`` is ``lower(init_graph(...))``).

Seeds go through a ``torch.Generator``: the same seed gives bit-identical parameters and no
global RNG state is touched. The random draws are made in float64 and rounded to the model
dtype exactly as a module built directly would round them.
"""

from __future__ import annotations

import os

import torch

from kanir.arguments import (
    as_bool,
    as_device,
    as_dtype,
    as_float,
    as_int,
    as_range,
    as_seed,
    base_fun_name,
    check_names,
)
from kanir.backends.torch import KANModule, lower
from kanir.errors import ArgumentError
from kanir.ir.activation import Activation, SplinePart
from kanir.ir.bspline import greville, uniform_grid
from kanir.ir.graph import KanGraph, N, S, default_names
from kanir.ir.width import LayerWidth, parse_width


def check_init_args(width, grid, k, mult_arity, noise_scale, scale_base_mu, scale_base_sigma,
                    base_fun, symbolic_enabled, affine_trainable, grid_eps, grid_range,
                    sp_trainable, sb_trainable, seed, save_act, sparse_init, auto_save,
                    first_init, ckpt_path, state_id, round, device, input_names, output_names,
                    dtype, versions, build: bool = True) -> dict:
    """Every argument of ``KAN(...)`` checked (types, ranges, finiteness) and normalised.

    ``build``: whether a new module is made from them (False for ``KAN.from_graph``, where
    width and the initialisation arguments come from the graph). Returns a dict with the module
    arguments (``width`` parsed to LayerWidth records) and the facade's: ``grid_eps``, the
    ``*_trainable`` flags, ``save_act`` (None: kanir's default), ``device`` and ``versions``
    (resolved from pykan's ``auto_save``/``ckpt_path``).
    """
    out = {
        "grid_eps": as_float(grid_eps, "grid_eps", 0.0, 1.0),
        "affine_trainable": as_bool(affine_trainable, "affine_trainable"),
        "sp_trainable": as_bool(sp_trainable, "sp_trainable"),
        "sb_trainable": as_bool(sb_trainable, "sb_trainable"),
        "save_act": None if save_act is None else as_bool(save_act, "save_act"),
        "device": None if device is None else as_device(device),
        "versions": _versions(versions, auto_save, ckpt_path),
    }
    as_bool(symbolic_enabled, "symbolic_enabled")
    as_bool(first_init, "first_init")
    as_int(state_id, "state_id", 0)
    as_int(round, "round", 0)
    dtype = as_dtype(dtype)
    if not build:
        return out
    if width is None:
        raise ArgumentError("KAN needs a width, e.g. KAN(width=[2, 5, 1])")
    layers = parse_width(width, mult_arity)
    n_in, n_out = layers[0].n_nodes, layers[-1].n_nodes
    out.update(
        width=layers,
        grid=as_int(grid, "grid (number of spline intervals)", 1),
        k=as_int(k, "k (spline order)", 1),
        noise_scale=as_float(noise_scale, "noise_scale", 0.0),
        scale_base_mu=as_float(scale_base_mu, "scale_base_mu"),
        scale_base_sigma=as_float(scale_base_sigma, "scale_base_sigma", 0.0),
        base_fun=base_fun_name(base_fun),
        grid_range=as_range(grid_range, "grid_range"),
        seed=as_seed(seed),
        sparse_init=as_bool(sparse_init, "sparse_init"),
        input_names=default_names("x", n_in) if input_names is None else
        check_names(input_names, "input_names", n_in),
        output_names=default_names("y", n_out) if output_names is None else
        check_names(output_names, "output_names", n_out),
        dtype=dtype,
    )
    return out


def _versions(versions, auto_save, ckpt_path):
    """kanir's ``versions`` from it and pykan's ``auto_save``/``ckpt_path``: auto_save=False
    turns versions off, a ckpt_path keeps them as .kanir files in that folder."""
    if not (isinstance(versions, bool | str | os.PathLike) or versions is None):
        raise ArgumentError(f"versions must be True, False or a folder path, got {versions!r}")
    if auto_save is not None:
        as_bool(auto_save, "auto_save")
    if ckpt_path is not None and not isinstance(ckpt_path, str | os.PathLike):
        raise ArgumentError(f"ckpt_path must be a folder path, got {ckpt_path!r}")
    folder = versions not in (True, False, None)
    if auto_save is False:
        if folder:
            raise ArgumentError(f"auto_save=False turns versions off but versions={versions!r} "
                                "asks for a folder; give one of them")
        return False
    if ckpt_path is not None:
        if versions is False or (folder and os.fspath(versions) != os.fspath(ckpt_path)):
            raise ArgumentError(f"ckpt_path={ckpt_path!r} and versions={versions!r} disagree; "
                                "give one of them")
        return ckpt_path
    if auto_save is True and versions is False:
        raise ArgumentError("auto_save=True and versions=False disagree; give one of them")
    return versions


def set_trainable(module: KANModule, affine: bool, sp: bool, sb: bool) -> None:
    """pykan's affine_trainable / sp_trainable / sb_trainable: requires_grad of the node and
    subnode affines, the spline scales and the residual (base) scales of every layer."""
    for layer in module.layers:
        for p in (layer.node_scale, layer.node_bias, layer.subnode_scale, layer.subnode_bias):
            p.requires_grad_(affine)
        layer.scale_sp.requires_grad_(sp)
        layer.scale_base.requires_grad_(sb)


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


def init_module(width, mult_arity=2, grid: int = 5, k: int = 3, seed: int = 1,
                noise_scale: float = 0.3, base_fun: str = "silu", grid_range=(-1.0, 1.0),
                sparse_init: bool = False, input_names=None, output_names=None,
                dtype=torch.float32, scale_base_mu: float = 0.0, scale_base_sigma: float = 1.0
                ) -> KANModule:
    """The lowered :func:`init_graph` (same arguments)."""
    return lower(init_graph(width, mult_arity, grid, k, seed, noise_scale, base_fun, grid_range,
                            sparse_init, input_names, output_names, dtype, scale_base_mu,
                            scale_base_sigma))


def init_graph(width, mult_arity=2, grid: int = 5, k: int = 3, seed: int = 1,
               noise_scale: float = 0.3, base_fun: str = "silu", grid_range=(-1.0, 1.0),
               sparse_init: bool = False, input_names=None, output_names=None,
               dtype=torch.float32, scale_base_mu: float = 0.0, scale_base_sigma: float = 1.0
               ) -> KanGraph:
    """A randomly initialised layered KanGraph with pykan's default scheme (small noisy
    splines, uniform random residual scales, ``scale_sp = 1/sqrt(n_in)``). ``width``: a pykan
    width spec or parsed LayerWidth records; ``base_fun`` a name or a known torch callable."""
    layers = width if _parsed(width) else parse_width(width, mult_arity)
    grid = as_int(grid, "grid (number of spline intervals)", 1)
    k = as_int(k, "k (spline order)", 1)
    base_fun = base_fun_name(base_fun)
    lo, hi = as_range(grid_range, "grid_range")
    dtype = as_dtype(dtype)
    gen = torch.Generator().manual_seed(as_seed(seed))
    n_in, n_out = layers[0].n_nodes, layers[-1].n_nodes
    g = KanGraph.from_layers(
        layers,
        default_names("x", n_in) if input_names is None else
        check_names(input_names, "input_names", n_in),
        default_names("y", n_out) if output_names is None else
        check_names(output_names, "output_names", n_out),
        grid=grid, k=k, grid_range=(lo, hi), base_fun=base_fun,
        dtype="float64" if dtype == torch.float64 else "float32")
    for l in range(len(layers) - 1):
        _init_layer(g, l, layers[l].n_nodes, layers[l + 1], grid, k, (lo, hi), dtype, gen,
                    noise_scale, scale_base_mu, scale_base_sigma, base_fun, sparse_init)
    return g


@torch.no_grad()
def _init_layer(g: KanGraph, l: int, n_in: int, out: LayerWidth, grid: int, k: int, rng,
                dtype, gen, noise_scale, scale_base_mu, scale_base_sigma, base_fun,
                sparse_init) -> None:
    """Draw layer l's splines (in the draw order of every kanir version) and add its edges."""
    n_out = out.n_subnodes
    knots = uniform_grid(grid, k, rng[0], rng[1], n_in, dtype)
    coef = torch.zeros(n_in, n_out, grid + k, dtype=dtype)
    scale_base = torch.zeros(n_in, n_out, dtype=dtype)
    noise = (torch.rand(n_in, n_out, grid + k, generator=gen, dtype=torch.float64) - 0.5)
    coef.copy_(noise * noise_scale / grid)
    u = torch.rand(n_in, n_out, generator=gen, dtype=torch.float64) * 2 - 1
    scale_base.copy_((scale_base_mu + scale_base_sigma * u) / n_in**0.5)
    scale_sp = float(torch.tensor(1.0 / n_in**0.5, dtype=dtype))
    if out.n_mult:
        # Edges into mult-node subnodes start as random lines (coefficients on the Greville
        # abscissae), so products begin as bilinear forms with useful gradients instead of
        # products of small noise.
        feeds = torch.zeros(n_out, dtype=torch.bool)
        feeds[out.n_sum:] = True
        slope = torch.rand(n_in, n_out, generator=gen, dtype=torch.float64) * 2 - 1
        lines = slope[..., None] * greville(knots.to(torch.float64), k)[:, None, :]
        coef.add_(lines * feeds[None, :, None] * n_in**0.5)
    mask = sparse_mask(n_in, n_out) if sparse_init else torch.ones(n_in, n_out)
    knots_np, coef_np, sb = knots.numpy(), coef.numpy(), scale_base.tolist()
    rows = []
    for i, j in zip(*(ix.tolist() for ix in torch.nonzero(mask, as_tuple=True))):
        sp = SplinePart(knots_np[i].copy(), coef_np[i, j].copy(), k, sb[i][j], scale_sp,
                        base_fun, True)
        rows.append((N(l, i), S(l + 1, j), {"act": Activation(sp)}))
    g.nx.add_edges_from(rows)


def _parsed(width) -> bool:
    return isinstance(width, tuple) and bool(width) and all(isinstance(w, LayerWidth)
                                                            for w in width)
