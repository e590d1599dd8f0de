"""The KAN facade's module bookkeeping: installing a newly lowered module without losing the
runtime state of the old one (requires_grad, hooks, train/eval, keep_acts, device), the cache
key of the lifted graph, and the facade settings a model file keeps beside the graph.

Design: the torch module is the model's state, and lift/lower are lossless (everything a graph
holds that tensors cannot goes to ``KANModule.meta`` and ``KANModule.annotations``), so
``model.graph`` is a cached view of the module and a pass result comes back into the *same*
module whenever its shapes allow.
"""

from __future__ import annotations

import networkx as nx
import torch

from kanir.backends.torch import KANModule
from kanir.errors import ModelFileError
from kanir.ir.graph import KanGraph

#: key of the facade settings in a .kanir file's ``extra`` dict
SETTINGS_KEY = "kan_settings"

_HOOK_DICTS = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
               "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_backward_hooks",
               "_backward_pre_hooks")
_PERSISTENT = ("grid", "has_spline", "mask_sp", "mask_sym")


def freeze(graph: KanGraph) -> KanGraph:
    """Make ``graph``'s structure read-only (networkx raises on adding or removing nodes and
    edges); returns it."""
    nx.freeze(graph.nx)
    return graph


def tensor_versions(module: torch.nn.Module) -> tuple:
    """(storage address, in-place version) of every parameter and buffer: changes whenever a
    tensor is written in place (optimizer steps, copy_, grid updates) or replaced (``to``)."""
    return tuple((t.data_ptr(), t._version, t.dtype) for t in
                 (*module.parameters(), *module.buffers()) if t is not None)


# ---------------------------------------------------------------------- installing a module
def same_shape(old: KANModule, new: KANModule) -> bool:
    """Whether ``new``'s tensors can be copied into ``old``'s: same layers, widths, grids,
    spline order, base function and dtype."""
    if len(old.layers) != len(new.layers) or old.dtype != new.dtype:
        return False
    for a, b in zip(old.layers, new.layers):
        if (a.n_in != b.n_in or a.out_width != b.out_width or a.k != b.k
                or a.grid.shape != b.grid.shape or a.base_fun != b.base_fun):
            return False
    return True


def install(old: KANModule, new: KANModule) -> KANModule:
    """The module that should hold ``new``'s function: ``old`` itself with ``new``'s values
    copied in when the shapes match, else ``new`` carrying ``old``'s runtime state."""
    if same_shape(old, new):
        _copy_into(old, new)
        return old
    _carry_state(old, new)
    return new


@torch.no_grad()
def _copy_into(old: KANModule, new: KANModule) -> None:
    for a, b in zip(old.layers, new.layers):
        for name, p in b.named_parameters(recurse=False):
            getattr(a, name).copy_(p)
        for name in _PERSISTENT:
            getattr(a, name).copy_(getattr(b, name))
        a.sym_funs = [list(row) for row in b.sym_funs]
        a.refresh_symbolic()
        if a.keep_acts:
            a.acts = None
    old.meta = new.meta
    old.annotations = new.annotations


def _carry_state(old: KANModule, new: KANModule) -> None:
    """Give ``new`` what ``old`` had beyond its function."""
    new.to(old.device)
    new.train(old.training)
    first = old.layers[0]
    new.set_keep_acts(any(layer.keep_acts for layer in old.layers))
    new.set_singularity_avoiding(first.singularity_avoiding, first.y_th)
    names = [n for n, _ in first.named_parameters(recurse=False)]
    for l, layer in enumerate(new.layers):
        for name in names:
            flags = [getattr(o, name).requires_grad for o in old.layers]
            flag = flags[0] if len(set(flags)) == 1 else flags[min(l, len(flags) - 1)]
            getattr(layer, name).requires_grad_(flag)
    _move_hooks(old, new)
    for a, b in zip(old.layers, new.layers):
        _move_hooks(a, b)


def _move_hooks(old: torch.nn.Module, new: torch.nn.Module) -> None:
    """Hand ``old``'s hook dicts (the very objects, so their handles still remove them) to
    ``new``."""
    for name in _HOOK_DICTS:
        hooks = old.__dict__.get(name)
        if hooks:
            new.__dict__[name] = hooks
            old.__dict__[name] = type(hooks)()


# ---------------------------------------------------------------------- settings in files
def read_settings(extra: dict, path) -> dict:
    """The facade settings stored by ``KAN.save`` (none in older files), checked."""
    raw = extra.get(SETTINGS_KEY) if isinstance(extra, dict) else None
    if raw is None:
        return {}
    where = f"{str(path)!r}: its KAN settings"
    if not isinstance(raw, dict):
        raise ModelFileError(f"{where} must be a dict, got {type(raw).__name__}")
    out = {}
    for key, value in raw.items():
        if key == "grid_eps":
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    0.0 <= value <= 1.0):
                raise ModelFileError(f"{where}: grid_eps must be a number in [0, 1], got "
                                     f"{value!r}")
            out[key] = float(value)
        elif key in ("affine_trainable", "sp_trainable", "sb_trainable"):
            if not isinstance(value, bool):
                raise ModelFileError(f"{where}: {key} must be true or false, got {value!r}")
            out[key] = value
        else:
            raise ModelFileError(f"{where} hold an unknown key {key!r}")
    return out
