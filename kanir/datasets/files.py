"""``kanir.load_dataset``: a table of named columns (CSV or .npz) as kanir's dataset dict.

The result has pykan's keys (``train_input``, ``train_label``, ``test_input``, ``test_label``)
plus ``input_names`` and ``label_names`` (pass ``input_names`` to ``kanir.KAN``). Rows are
split at random (``seed``) into train and test. Every problem names the column (and row).
"""

from __future__ import annotations

import csv
import difflib
import os
from collections.abc import Sequence

import numpy as np
import torch

from kanir.errors import DataError

__all__ = ["load_dataset"]


def load_dataset(path, target: str | Sequence[str] = "y", inputs: Sequence[str] | None = None,
                 test_fraction: float = 0.2, seed: int = 0, dtype=torch.float32,
                 device="cpu") -> dict:
    """Read ``path`` (.csv with a header row, or .npz with one 1-D array per column) and return
    the dataset dict: ``target`` column(s) as labels, ``inputs`` (default: every other column)
    as inputs, a random ``test_fraction`` of the rows as the test split."""
    names, table = _read(os.fspath(path))
    targets = [target] if isinstance(target, str) else list(target)
    if not targets:
        raise DataError("load_dataset: target names no column; give e.g. target='y'")
    for t in targets:
        _require(t, names, path, "target")
    if inputs is None:
        inputs = [n for n in names if n not in targets]
    inputs = list(inputs)
    for n in inputs:
        _require(n, names, path, "input")
    if not inputs:
        raise DataError(f"load_dataset: {path} has no input columns besides the target "
                        f"{targets}")
    overlap = sorted(set(inputs) & set(targets))
    if overlap:
        raise DataError(f"load_dataset: column(s) {overlap} are both inputs and target")
    if not 0 <= test_fraction < 1:
        raise DataError(f"load_dataset: test_fraction must be in [0, 1), got {test_fraction}")
    col = {n: k for k, n in enumerate(names)}
    X = table[:, [col[n] for n in inputs]]
    Y = table[:, [col[n] for n in targets]]
    _finite(X, inputs, path)
    _finite(Y, targets, path)
    n = table.shape[0]
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test_fraction * n))
    if n - n_test < 1:
        raise DataError(f"load_dataset: {path} has {n} row(s), too few to split")
    test, train = perm[:n_test], perm[n_test:]
    if n_test == 0:
        test = train

    def t(a):
        return torch.as_tensor(a, dtype=torch.float64).to(device=device, dtype=dtype)

    return {"train_input": t(X[train]), "train_label": t(Y[train]), "test_input": t(X[test]),
            "test_label": t(Y[test]), "input_names": inputs, "label_names": targets}


def _require(name: str, names: list[str], path, role: str) -> None:
    if name in names:
        return
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise DataError(f"load_dataset: {role} column {name!r} is not in {path}; its columns are "
                    f"{', '.join(names)}{hint}")


def _finite(a: np.ndarray, names: list[str], path) -> None:
    bad = ~np.isfinite(a)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(f"load_dataset: column {names[c]!r} of {path} has a NaN or infinite "
                        f"value (first in data row {r + 1})")


def _read(path: str) -> tuple[list[str], np.ndarray]:
    if not os.path.isfile(path):
        raise DataError(f"load_dataset: no such file: {path}")
    if path.lower().endswith(".npz"):
        return _read_npz(path)
    return _read_csv(path)


def _read_csv(path: str) -> tuple[list[str], np.ndarray]:
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"load_dataset: {path} is empty")
    names = [c.strip() for c in rows[0]]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup or "" in names:
        raise DataError(f"load_dataset: the header of {path} needs distinct, non-empty column "
                        f"names; got {names}")
    if len(rows) < 2:
        raise DataError(f"load_dataset: {path} has a header but no data rows")
    table = np.empty((len(rows) - 1, len(names)))
    for r, row in enumerate(rows[1:], start=1):
        if len(row) != len(names):
            raise DataError(f"load_dataset: data row {r} of {path} has {len(row)} values for "
                            f"{len(names)} columns")
        for c, cell in enumerate(row):
            try:
                table[r - 1, c] = float(cell)
            except ValueError:
                raise DataError(f"load_dataset: column {names[c]!r} of {path} has a value that "
                                f"is not a number in data row {r}: {cell!r}") from None
    return names, table


def _read_npz(path: str) -> tuple[list[str], np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            cols = {k: z[k] for k in z.files}
    except Exception as e:
        raise DataError(f"load_dataset: cannot read {path} as .npz: {e}") from None
    if not cols:
        raise DataError(f"load_dataset: {path} holds no arrays")
    lengths = set()
    for k, a in cols.items():
        if a.ndim != 1 or not np.issubdtype(a.dtype, np.number):
            raise DataError(f"load_dataset: column {k!r} of {path} must be a 1-D numeric array "
                            f"(one array per column), got {a.dtype} of shape {a.shape}")
        lengths.add(a.shape[0])
    if len(lengths) != 1:
        raise DataError(f"load_dataset: the columns of {path} differ in length: "
                        f"{ {k: a.shape[0] for k, a in cols.items()} }")
    names = list(cols)
    return names, np.stack([cols[n].astype(np.float64) for n in names], axis=1)
