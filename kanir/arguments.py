"""Argument checks shared by the constructor, ``fit`` and the passes: each names the argument,
what it got and what it accepts, and raises an :class:`~kanir.errors.ArgumentError`.

``check_names`` is the one rule for variable names (input, output and auxiliary names): non-empty
Python identifiers, no repeats, so every model that can be saved can be loaded and every name can
be a sympy symbol in a printed formula.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

from kanir.errors import ArgumentError

_SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.Generator.manual_seed accepts


RESERVED_NAMES = ("e", "pi")  # formulas read these as constants; a variable so named is ambiguous


def check_names(names, what: str, n: int | None = None) -> list[str]:
    """``names`` as a list of distinct non-empty identifiers (``n`` of them when given)."""
    if isinstance(names, str | bytes) or not isinstance(names, Sequence):
        raise ArgumentError(f"{what} must be a list of names, got {names!r}")
    names = list(names)
    for name in names:
        if not isinstance(name, str):
            raise ArgumentError(f"{what} must be strings, got {name!r} ({type(name).__name__}) "
                                f"in {names!r}")
        if not name.isidentifier():
            why = "is empty" if not name else "is not an identifier (letters, digits and _, " \
                                               "not starting with a digit)"
            raise ArgumentError(f"{what}: name {name!r} {why}")
        if name in RESERVED_NAMES:
            from kanir.grammar.formula import reserved_name_message

            raise ArgumentError(f"{what}: {reserved_name_message(name)}")
    repeated = sorted({nm for nm in names if names.count(nm) > 1})
    if repeated:
        raise ArgumentError(f"{what} repeat {repeated}: every name must be unique, got {names!r}")
    if n is not None and len(names) != n:
        raise ArgumentError(f"{len(names)} {what} for {n} nodes: {names!r}")
    return names


def as_bool(v, name: str) -> bool:
    """A real bool (numpy bools too); 0/1 or strings are refused."""
    if isinstance(v, bool) or type(v).__name__ == "bool_":
        return bool(v)
    raise ArgumentError(f"{name} must be True or False, got {v!r}")


def as_int(v, name: str, low: int | None = None, high: int | None = None) -> int:
    """An integer (numpy integers too; bools and floats are refused) within [low, high]."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise ArgumentError(f"{name} must be an integer, got {v!r} ({type(v).__name__})")
    v = int(v)
    if (low is not None and v < low) or (high is not None and v > high):
        lo = "" if low is None else f">= {low}"
        hi = "" if high is None else f"<= {high}"
        raise ArgumentError(f"{name} must be an integer {' and '.join(s for s in (lo, hi) if s)}, "
                            f"got {v}")
    return v


def as_float(v, name: str, low: float | None = None, high: float | None = None,
             low_open: bool = False) -> float:
    """A finite real number within [low, high] (``low_open``: strictly above low)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        if isinstance(v, torch.Tensor) and v.numel() == 1 and not v.dtype.is_complex:
            v = v.item()
        else:
            raise ArgumentError(f"{name} must be a real number, got {v!r} ({type(v).__name__})")
    v = float(v)
    if not math.isfinite(v):
        raise ArgumentError(f"{name} must be a finite number, got {v}")
    if low is not None and (v <= low if low_open else v < low):
        raise ArgumentError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {v:g}")
    if high is not None and v > high:
        raise ArgumentError(f"{name} must be <= {high:g}, got {v:g}")
    return v


def as_seed(v, name: str = "seed") -> int:
    """A seed torch.Generator accepts."""
    return as_int(v, name, *_SEED_RANGE)


def as_dtype(dtype) -> torch.dtype:
    """torch.float32 / torch.float64 (or their names 'float32' / 'float64')."""
    names = {"float32": torch.float32, "float64": torch.float64}
    if isinstance(dtype, str) and dtype in names:
        return names[dtype]
    if dtype in (torch.float32, torch.float64):
        return dtype
    raise ArgumentError(f"dtype must be torch.float32 or torch.float64 (or 'float32'/'float64'), "
                        f"got {dtype!r}")


def as_device(device) -> torch.device:
    """A torch.device that exists on this machine."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise ArgumentError(f"device must be a torch device such as 'cpu' or 'cuda', got "
                            f"{device!r} ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ArgumentError(f"device {device!r}: CUDA is not available on this machine; use 'cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ArgumentError(f"device {device!r}: this machine has {torch.cuda.device_count()} "
                            "CUDA device(s)")
    return dev


def as_range(v, name: str) -> tuple[float, float]:
    """(low, high), finite, low < high."""
    if isinstance(v, str | bytes) or not hasattr(v, "__len__") or len(v) != 2:
        raise ArgumentError(f"{name} must be (low, high), got {v!r}")
    lo, hi = (as_float(x, name) for x in v)
    if not lo < hi:
        raise ArgumentError(f"{name} must be (low, high) with low < high, got {v!r}")
    return lo, hi


def base_fun_name(base_fun) -> str:
    """Library name of a residual function: a name, or a known torch callable (pykan passes
    e.g. ``torch.nn.SiLU()``)."""
    from kanir.ir.library import BASE_FUNCTIONS as BASE_FUNS

    if isinstance(base_fun, str):
        if base_fun in BASE_FUNS:
            return base_fun
        raise ArgumentError(f"unknown base_fun {base_fun!r}; choose one of {sorted(BASE_FUNS)}")
    F = torch.nn.functional
    known = {F.silu: "silu", torch.tanh: "tanh", F.tanh: "tanh", F.gelu: "gelu",
             torch.zeros_like: "zero"}
    for fn, name in known.items():
        if base_fun is fn:
            return name
    modules = {torch.nn.SiLU: "silu", torch.nn.Identity: "identity", torch.nn.Tanh: "tanh"}
    if type(base_fun) in modules:
        return modules[type(base_fun)]
    if type(base_fun) is torch.nn.GELU and base_fun.approximate == "none":
        return "gelu"
    raise ArgumentError(
        f"base_fun {base_fun!r} is not supported: kanir stores the residual function by name, "
        f"so it must be one of {sorted(BASE_FUNS)} or the matching torch callable "
        "(torch.nn.SiLU(), torch.nn.functional.silu, torch.nn.Identity(), torch.tanh, "
        "torch.nn.Tanh(), torch.nn.GELU(), torch.nn.functional.gelu, torch.zeros_like)")


REG_METRICS = ("edge_forward_spline_n", "edge_forward_spline_u")


def check_fit_args(opt, steps, log, lamb, lamb_l1, lamb_entropy, lamb_coef, lamb_coefdiff,
                   update_grid_, grid_update_num, loss_fn, lr, start_grid_update_step,
                   stop_grid_update_step, batch, metrics, singularity_avoiding, y_th, grid_eps,
                   progress, seed, reg_metric, display_metrics, save_fig, save_fig_freq) -> dict:
    """Every argument of ``fit`` checked (types, ranges, finiteness) and normalised; returns
    them by name (``metrics`` and ``display_metrics`` as tuples, ``batch`` -1 for full batch)."""
    if opt not in ("LBFGS", "Adam"):
        raise ArgumentError(f"opt must be 'LBFGS' or 'Adam', got {opt!r}")
    if loss_fn is not None and not callable(loss_fn):
        raise ArgumentError(f"loss_fn must be a function (pred, label) -> scalar tensor or None, "
                            f"got {loss_fn!r}")
    metrics = () if metrics is None else metrics
    if isinstance(metrics, str) or not isinstance(metrics, Sequence) or \
            not all(callable(m) for m in metrics):
        raise ArgumentError(f"metrics must be a list of functions without arguments (or None), "
                            f"got {metrics!r}")
    display = () if display_metrics is None else display_metrics
    if isinstance(display, str) or not isinstance(display, Sequence) or \
            not all(isinstance(d, str) for d in display):
        raise ArgumentError(f"display_metrics must be a list of history names such as "
                            f"['train_loss', 'reg'] (or None), got {display_metrics!r}")
    if reg_metric not in REG_METRICS:
        raise ArgumentError(f"reg_metric {reg_metric!r} is not supported; kanir's regulariser "
                            f"supports {list(REG_METRICS)} (pykan also has 'edge_forward_sum', "
                            "'edge_backward' and 'node_backward')")
    if as_bool(save_fig, "save_fig"):
        raise ArgumentError("save_fig=True: kanir's fit writes no per-step figures; call "
                            "model.plot(path=...) after fit, or between several shorter fits "
                            "(fit(steps=save_fig_freq) in a loop)")
    batch = as_int(batch, "batch (-1 for the full batch)", -1)
    if batch == 0:
        raise ArgumentError("batch must be -1 (full batch) or a positive integer, got 0")
    return {
        "opt": opt, "steps": as_int(steps, "steps", 0), "log": as_int(log, "log", 0),
        "lamb": as_float(lamb, "lamb", 0.0), "lamb_l1": as_float(lamb_l1, "lamb_l1", 0.0),
        "lamb_entropy": as_float(lamb_entropy, "lamb_entropy", 0.0),
        "lamb_coef": as_float(lamb_coef, "lamb_coef", 0.0),
        "lamb_coefdiff": as_float(lamb_coefdiff, "lamb_coefdiff", 0.0),
        "update_grid_": as_bool(update_grid_, "update_grid"),
        "grid_update_num": as_int(grid_update_num, "grid_update_num", 1),
        "loss_fn": loss_fn, "lr": as_float(lr, "lr", 0.0, low_open=True),
        "start_grid_update_step": as_int(start_grid_update_step, "start_grid_update_step"),
        "stop_grid_update_step": as_int(stop_grid_update_step, "stop_grid_update_step", 0),
        "batch": batch, "metrics": tuple(metrics),
        "singularity_avoiding": as_bool(singularity_avoiding, "singularity_avoiding"),
        "y_th": as_float(y_th, "y_th", 0.0, low_open=True),
        "grid_eps": as_float(grid_eps, "grid_eps", 0.0, 1.0),
        "progress": as_bool(progress, "progress"), "seed": as_seed(seed),
        "reg_metric": reg_metric, "display_metrics": tuple(display),
        "save_fig_freq": as_int(save_fig_freq, "save_fig_freq", 1),
    }
