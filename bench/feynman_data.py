"""The benchmark's data: each Feynman equation sampled in its ranges, the same for every method.

Each equation gets its own seeded generator (``[seed, index]``, index = position in
``kanir.datasets.feynman()``), so a shard or a resumed run draws exactly the points a full run
draws. 1,000 training and 1,000 test points, labels computed in float64; with ``noise`` > 0 the
TRAINING labels get Gaussian noise of ``noise * std(y_train)`` (drawn from a separate stream, so
the inputs do not depend on the noise level); the test labels stay noiseless. ``write`` stores
the arrays as .npz so that other interpreters (pykan's venv) read the very same numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_TRAIN = N_TEST = 1000


def equations():
    """All 120 equations, in the package's order (the 100 main ones, then the 20 bonus)."""
    from kanir.datasets import feynman

    return feynman()


def simplest(n: int = 20) -> list[str]:
    """Names of the ``n`` equations with fewest variables; ties keep the package's order."""
    eqs = equations()
    order = sorted(range(len(eqs)), key=lambda i: (eqs[i].n_var, i))
    return [eqs[i].name for i in order[:n]]


def index_of(name: str) -> int:
    """Position of equation ``name`` in :func:`equations` (its per-equation seed)."""
    for i, e in enumerate(equations()):
        if e.name == name:
            return i
    raise KeyError(f"no Feynman equation named {name!r}")


def sample(name: str, noise: float = 0.0, seed: int = 0, n_train: int = N_TRAIN,
           n_test: int = N_TEST) -> dict:
    """``{"X_train", "y_train", "X_test", "y_test", "names", "truth", "ranges"}`` for ``name``."""
    import torch

    from kanir.datasets import feynman

    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    eq = feynman(name)
    idx = index_of(eq.name)
    rng = np.random.default_rng([seed, idx])
    lo = np.array([r[0] for r in eq.ranges])
    hi = np.array([r[1] for r in eq.ranges])
    x = lo + (hi - lo) * rng.random((n_train + n_test, eq.n_var))
    y = eq.torch_function()(torch.tensor(x, dtype=torch.float64))[:, 0].numpy()
    y_train, y_test = y[:n_train].copy(), y[n_train:].copy()
    if noise > 0:
        eps = np.random.default_rng([seed, idx, 1]).standard_normal(n_train)
        y_train = y_train + noise * float(np.std(y_train)) * eps
    return {"X_train": x[:n_train], "y_train": y_train, "X_test": x[n_train:], "y_test": y_test,
            "names": list(eq.variables), "truth": eq.formula,
            "ranges": [list(r) for r in eq.ranges]}


def data_path(directory, name: str, noise: float, seed: int = 0) -> Path:
    """Where :func:`write` stores one equation's data."""
    return Path(directory) / f"{name}_noise{noise:g}_seed{seed}.npz"


def write(directory, name: str, noise: float = 0.0, seed: int = 0) -> Path:
    """Store :func:`sample` as .npz in ``directory`` (once; an existing file is kept)."""
    path = data_path(directory, name, noise, seed)
    if not path.exists():
        d = sample(name, noise, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, X_train=d["X_train"], y_train=d["y_train"], X_test=d["X_test"],
                 y_test=d["y_test"], names=np.array(d["names"]), truth=np.array(d["truth"]),
                 ranges=np.array(d["ranges"], dtype=float))
        tmp.replace(path)
    return path


def read(path) -> dict:
    """The dict :func:`sample` returns, from a file :func:`write` made (numpy only)."""
    with np.load(path) as z:
        return {"X_train": z["X_train"], "y_train": z["y_train"], "X_test": z["X_test"],
                "y_test": z["y_test"], "names": [str(n) for n in z["names"]],
                "truth": str(z["truth"]), "ranges": z["ranges"].tolist()}
