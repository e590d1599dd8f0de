"""pykan's checkpoint names on kanir's versions: ``saveckpt``/``loadckpt`` (one pickle-free
``.kanir`` file that also carries the cached inputs), ``checkout``, ``history`` and
``log_history``. Versions themselves live in :mod:`kanir.model.versions`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kanir.backends.torch import lift
from kanir.errors import KanirError, ModelFileError
from kanir.ir.io import load_graph, save_graph
from kanir.model import runtime
from kanir.model.versions import parse_label

_CACHE_KEY = "cache_data"


def ckpt_path(path) -> Path:
    """pykan's checkpoint prefix as a kanir file: ``'mark'`` -> ``mark.kanir``."""
    if not isinstance(path, str | Path):
        raise KanirError(f"a checkpoint path must be a string or Path, got {type(path).__name__}")
    p = Path(path)
    return p if p.suffix == ".kanir" else p.with_name(p.name + ".kanir")


class CheckpointMethods:
    """Mixin of kanir.KAN: pykan's checkpoint vocabulary mapped onto versions and .kanir files."""

    def saveckpt(self, path="model") -> None:
        """pykan's ``saveckpt``: save the model and the inputs it saw last to ``<path>.kanir``
        (one file, atomic, no pickle; pykan writes three files). Load with ``KAN.loadckpt``."""
        extra = {runtime.SETTINGS_KEY: self.settings()}
        x = self._recent_data()
        if x is not None:
            extra[_CACHE_KEY] = x.detach().cpu().double().tolist()
        try:
            save_graph(self.graph, ckpt_path(path), extra)
        except OSError as e:
            raise ModelFileError(f"cannot save checkpoint {str(ckpt_path(path))!r}: "
                                 f"{e.strerror or e}") from None

    @classmethod
    def loadckpt(cls, path="model", device=None):
        """pykan's ``KAN.loadckpt``: the model saved by ``saveckpt(path)``, with its cached
        inputs (a new model whose version history starts at 0.0)."""
        graph, extra = load_graph(ckpt_path(path))
        model = cls.from_graph(graph, device=device,
                               **runtime.read_settings(extra, ckpt_path(path)))
        data = extra.get(_CACHE_KEY) if isinstance(extra, dict) else None
        if data is not None:
            try:
                x = np.asarray(data, dtype=np.float64)
            except (TypeError, ValueError):
                raise ModelFileError(f"{str(ckpt_path(path))!r}: its cached inputs are not a "
                                     "table of numbers") from None
            if x.ndim != 2 or x.shape[1] != model.net.n_in:
                raise ModelFileError(f"{str(ckpt_path(path))!r}: its cached inputs have shape "
                                     f"{x.shape}, expected (batch, {model.net.n_in})")
            model.cache_x = torch.as_tensor(x).to(model.device, model.dtype)
        return model

    def checkout(self, model_id):
        """pykan's ``checkout``: version ``model_id`` (e.g. '0.2') as a new model; this model is
        unchanged (``rewind`` restores a version in place)."""
        label = "{}.{}".format(*parse_label(model_id))
        snap = self._versions.snapshot(label)
        graph = lift(snap) if snap is not None else self._versions.graph(label)
        model = type(self).from_graph(graph, device=self.device, **self.settings())
        if self.cache_x is not None and self.cache_x.shape[1] == model.net.n_in:
            model.cache_x = self.cache_x
        return model

    def history(self, k="all") -> None:
        """pykan's ``history``: print the last ``k`` versions (all by default) as
        ``from => op => to`` lines."""
        rows = self._versions.listing()
        if k != "all":
            if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                raise KanirError(f"history: k must be 'all' or a non-negative integer, got {k!r}")
            rows = rows[max(0, len(rows) - k):] if k else []
        for v in rows:
            print(f"{v.parent or '-'} => {v.op} => {v.label}")

    def log_history(self, method_name: str = "log_history"):
        """pykan's ``log_history``: record the current state as a new version named after the
        operation (kanir records its own operations automatically; call this after changing
        parameters by hand). Returns self."""
        self._after_change(str(method_name))
        return self


__all__ = ["CheckpointMethods", "ckpt_path"]
