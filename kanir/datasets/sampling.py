"""Data from the Feynman equations: a kanir dataset dict (``feynman_dataset``) and pykan's
``get_feynman_dataset`` tuple (symbols, expr, f, ranges)."""

from __future__ import annotations

import sympy
import torch

from kanir.datasets.equations import feynman
from kanir.errors import DataError
from kanir.train.data import create_dataset


def feynman_dataset(name: str | int, n_train: int = 1000, n_test: int = 1000, seed: int = 0,
                    dtype=torch.float32, device="cpu") -> dict:
    """``kanir.create_dataset`` for one Feynman equation: inputs uniform in the equation's
    ranges (columns in ``variables`` order), labels the formula computed in float64 and then
    stored in ``dtype``. The same seed gives the same tensors."""
    for value, what in ((n_train, "n_train"), (n_test, "n_test")):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise DataError(f"feynman_dataset: {what} must be a positive int, got {value!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise DataError(f"feynman_dataset: seed must be an int, got {seed!r}")
    eq = feynman(name)
    return create_dataset(eq.torch_function(), n_var=eq.n_var, ranges=[list(r) for r in eq.ranges],
                          train_num=n_train, test_num=n_test, seed=seed, dtype=dtype,
                          device=device)


def get_feynman_dataset(name: str | int):
    """pykan's ``kan.feynman.get_feynman_dataset(name)``: ``(symbols, expr, f, ranges)``.

    ``symbols``: the input Symbols in column order; ``expr``: the formula in them; ``f``: a torch
    function of an (n, n_var) tensor returning (n, 1); ``ranges``: one [low, high] per variable.
    ``name``: pykan's name or id, or the AI Feynman name (see :func:`feynman`); pykan's toy
    ``"test"`` works too. Unlike pykan, variable names, their order and ranges are the AI Feynman
    CSV's (pykan's ranges often include 0 or negative values), and ``symbols`` is always a
    tuple. Feed ``ranges`` to ``kanir.create_dataset(f, n_var=len(symbols), ranges=ranges)``.
    """
    if name == "test":  # pykan's toy example: (x + y) sin(exp(2y)) on [-1, 1]^2
        x, y = sympy.symbols("x y")
        expr = (x + y) * sympy.sin(sympy.exp(2 * y))
        return (x, y), expr, _toy, [[-1.0, 1.0], [-1.0, 1.0]]
    eq = feynman(name)
    return eq.symbols, eq.expr, eq.torch_function(), [list(r) for r in eq.ranges]


def _toy(x: torch.Tensor) -> torch.Tensor:
    return (x[:, [0]] + x[:, [1]]) * torch.sin(torch.exp(2 * x[:, [1]]))
