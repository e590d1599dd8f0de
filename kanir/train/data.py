"""Datasets for ``fit``: pykan's ``create_dataset`` / ``create_dataset_from_data``, and the
validation of inputs, labels and dataset dicts that names what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from kanir.arguments import as_device, as_float, as_seed
from kanir.backends.torch import KANModule
from kanir.errors import DataError


def as_tensor(x, name: str, dtype: torch.dtype, device, n_cols: int | None = None) -> torch.Tensor:
    """Convert to a 2-D floating tensor on ``device``; raise DataError on shape/NaN problems."""
    if isinstance(x, np.ndarray | list | tuple | float | int):
        try:
            x = torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as e:
            raise DataError(f"{name} cannot be converted to a float array: {e}") from None
    if not isinstance(x, torch.Tensor):
        raise DataError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}")
    if x.dim() == 1 and n_cols == 1:
        x = x.unsqueeze(1)
    if x.dim() != 2:
        want = f"(batch, {n_cols})" if n_cols is not None else "(batch, n)"
        raise DataError(f"{name} must have shape {want}, got {tuple(x.shape)}")
    if n_cols is not None and x.shape[1] != n_cols:
        raise DataError(f"{name} must have shape (batch, {n_cols}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.to(torch.float64)
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        rows = torch.nonzero(bad.any(dim=1)).flatten()
        raise DataError(f"{name} contains NaN or inf in {len(rows)} row(s) "
                        f"(first: row {int(rows[0])})")
    return x.to(device=device, dtype=dtype)


def check_dataset(dataset: dict, module: KANModule, labels_optional: bool = False) -> dict:
    """Validated copy of a pykan-style dataset dict on the module's device and dtype
    (``labels_optional``: an objective's dataset may leave out both labels; they are None)."""
    if not isinstance(dataset, dict):
        raise DataError("dataset must be a dict with train_input, train_label, test_input, test_label")
    module.check_dtype()
    if labels_optional and dataset.get("train_label") is None \
            and dataset.get("test_label") is None:
        dataset = {**dataset, "train_label": None, "test_label": None}
        no_labels = True
    else:
        no_labels = False
    needed = ("train_input",) if no_labels else ("train_input", "train_label")
    missing = [k for k in needed if dataset.get(k) is None]
    if missing:
        raise DataError(f"dataset lacks {missing}; create one with kanir.create_dataset")
    needed = ("test_input",) if no_labels else ("test_input", "test_label")
    missing = [k for k in needed if dataset.get(k) is None]
    if missing:
        raise DataError(f"dataset lacks {missing}: as in pykan, fit and evaluate report test "
                        "metrics and need a test split (kanir.create_dataset_from_data(x, y) "
                        "makes one; to monitor the training data only, pass it as test data too)")
    out = {}
    for split in ("train", "test"):
        xi, yi = dataset[f"{split}_input"], dataset[f"{split}_label"]
        x = as_tensor(xi, f"dataset['{split}_input']", module.dtype, module.device, module.n_in)
        if no_labels:
            if x.shape[0] == 0:
                raise DataError(f"dataset['{split}_input'] is empty")
            out[f"{split}_input"], out[f"{split}_label"] = x, None
            continue
        y = as_tensor(yi, f"dataset['{split}_label']", module.dtype, module.device,
                      None if labels_optional else module.n_out)
        if x.shape[0] != y.shape[0]:
            raise DataError(f"dataset['{split}_input'] has {x.shape[0]} rows but "
                            f"dataset['{split}_label'] has {y.shape[0]}")
        if x.shape[0] == 0:
            raise DataError(f"dataset['{split}_input'] is empty")
        out[f"{split}_input"], out[f"{split}_label"] = x, y
    return out


def _ranges(ranges, n_var: int) -> np.ndarray:
    """Per-variable [low, high] rows from one range or one per variable, checked finite and
    increasing."""
    r = np.asarray(ranges, dtype=np.float64)
    if r.shape == (2,):
        r = np.tile(r, (n_var, 1))
    if r.shape != (n_var, 2):
        raise DataError(f"ranges must be [low, high] or one [low, high] per variable ({n_var}), "
                        f"got {ranges!r}")
    if np.any(r[:, 0] >= r[:, 1]) or not np.all(np.isfinite(r)):
        raise DataError(f"every range needs finite low < high, got {r.tolist()}")
    return r


def create_dataset(f: Callable, n_var: int = 2, ranges: Sequence = (-1, 1), train_num: int = 1000,
                   test_num: int = 1000, normalize_input: bool = False,
                   normalize_label: bool = False, device="cpu", seed: int = 0,
                   dtype=torch.float32, f_mode: str = "col") -> dict:
    """pykan's create_dataset: uniform samples in ``ranges``, labels ``f(x)`` of shape (n, n_out).

    ``f`` takes a (n, n_var) tensor (``f_mode='col'``, e.g. ``lambda x: x[:, [0]] * x[:, [1]]``)
    or, with ``f_mode='row'``, a (n_var, n) tensor.
    """
    r = torch.as_tensor(_ranges(ranges, n_var), dtype=torch.float64)
    gen = torch.Generator().manual_seed(int(seed))

    def sample(n):
        u = torch.rand(n, n_var, generator=gen, dtype=torch.float64)
        return r[:, 0] + (r[:, 1] - r[:, 0]) * u

    data = {}
    for split, n in (("train", train_num), ("test", test_num)):
        x = sample(n).to(dtype)
        try:
            y = f(x) if f_mode == "col" else f(x.T)
        except Exception as e:  # the user's function failed: say so plainly
            raise DataError(f"create_dataset: f raised {type(e).__name__}: {e}") from e
        y = torch.as_tensor(y)
        if y.dim() == 1:
            y = y.unsqueeze(1)
        if f_mode == "row" and y.shape[0] != n and y.shape[-1] == n:
            y = y.T
        if y.dim() != 2 or y.shape[0] != n:
            raise DataError(f"create_dataset: f returned shape {tuple(y.shape)} for {n} samples; "
                            f"expected ({n},) or ({n}, n_out)")
        y = as_tensor(y.to(dtype), "the labels f(x)", dtype, "cpu")
        data[f"{split}_input"], data[f"{split}_label"] = x, y
    if normalize_input:
        mu, sd = data["train_input"].mean(0), data["train_input"].std(0).clamp_min(1e-12)
        for s in ("train", "test"):
            data[f"{s}_input"] = (data[f"{s}_input"] - mu) / sd
    if normalize_label:
        mu, sd = data["train_label"].mean(0), data["train_label"].std(0).clamp_min(1e-12)
        for s in ("train", "test"):
            data[f"{s}_label"] = (data[f"{s}_label"] - mu) / sd
    return {k: v.to(device) for k, v in data.items()}


def create_dataset_from_data(inputs, labels, train_ratio: float = 0.8, device="cpu",
                             seed: int = 0) -> dict:
    """pykan's create_dataset_from_data: a random train/test split of given data.

    ``inputs`` (n, n_in) and ``labels`` (n, n_out) or (n,), tensors or arrays; the first
    ``int(n * train_ratio)`` rows of a random permutation (``seed``; pykan uses numpy's global
    state) train, the rest test. Tensors keep their floating dtype, anything else becomes float64.
    """
    ratio = as_float(train_ratio, "train_ratio", 0.0, 1.0)
    dev = as_device(device)
    gen = torch.Generator().manual_seed(as_seed(seed))
    x = _data_tensor(inputs, "inputs", None)
    one_d = (labels.dim() if isinstance(labels, torch.Tensor) else np.ndim(labels)) == 1
    y = _data_tensor(labels, "labels", 1 if one_d else None)
    n = x.shape[0]
    if y.shape[0] != n:
        raise DataError(f"inputs have {n} rows but labels have {y.shape[0]}")
    n_train = int(n * ratio)
    if n_train < 1 or n_train >= n:
        raise DataError(f"train_ratio={ratio} of {n} rows leaves {n_train} training and "
                        f"{n - n_train} test rows; both splits need at least one")
    perm = torch.randperm(n, generator=gen)
    tr, te = perm[:n_train], perm[n_train:].sort().values
    return {"train_input": x[tr].to(dev), "test_input": x[te].to(dev),
            "train_label": y[tr].to(dev), "test_label": y[te].to(dev)}


def _data_tensor(v, name: str, n_cols) -> torch.Tensor:
    """A detached 2-D CPU tensor (floating dtype kept, else float64), checked by as_tensor."""
    dtype = v.dtype if isinstance(v, torch.Tensor) and v.is_floating_point() else torch.float64
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu()
    return as_tensor(v, name, dtype, "cpu", n_cols)
