"""Model versions for hypothesis testing (the paper's Trick C): every state change of a KAN is
recorded as version ``round.step``, and rewinding to an earlier version starts a new round.

Labels start at ``0.0`` (the freshly built model); each change adds one to the step. Rewinding
to ``"0.1"`` restores that state as ``"R.1"`` where R is one more than the highest round so
far, and the next change becomes ``"R.2"``. So two hypotheses tried from the same version live
side by side (``0.2`` and ``1.2``) and can be compared by their losses.

Where versions live is the user's choice: in memory (the default), as ``<label>.kanir`` files
in a folder the user names (written atomically in kanir's own pickle-free format, one file per
version, nothing anywhere else), or nowhere. Labels are parsed as two integers, so ``"0.11"``
(step 11) and ``"0.1"`` (step 1) are different versions.

Memory: an in-memory store keeps one module copy per version. ``max_versions`` bounds how
many states it holds: past the cap the oldest states are dropped (never the current one) while
the listing stays complete; rewinding to a dropped version is an error that says so.
"""

from __future__ import annotations

import copy
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kanir.errors import KanirError, ModelFileError, VersionError
from kanir.ir.graph import KanGraph
from kanir.ir.io import atomic_write, graph_from_bytes, graph_to_bytes, read_model_bytes
from kanir.train.distributed import writes_files

__all__ = ["VersionInfo", "VersionStore", "VersionError", "parse_label"]

_LABEL = re.compile(r"^\s*(\d+)\.(\d+)\s*$")
_FILE = re.compile(r"^(\d+)\.(\d+)\.kanir$")
_EXTRA_KEY = "kanir_version"


def parse_label(label) -> tuple[int, int]:
    """``"0.11"`` -> (0, 11); also accepts a (round, step) pair. Floats are refused because
    0.1 and 0.10 are the same float but different versions."""
    if isinstance(label, tuple | list) and len(label) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in label):
        return int(label[0]), int(label[1])
    if isinstance(label, float):
        raise VersionError(f"give the version as a string such as '{label}' rather than the float "
                           f"{label!r}: '0.1' and '0.10' are different versions")
    if isinstance(label, str):
        m = _LABEL.match(label)
        if m:
            return int(m.group(1)), int(m.group(2))
    raise VersionError(f"a version label looks like '0.3' (round.step), got {label!r}")


def format_label(rnd: int, step: int) -> str:
    return f"{rnd}.{step}"


@dataclass(frozen=True)
class VersionInfo:
    """One recorded version: its label, the operation that produced it, the training loss when
    known, the version it came from, and any details of the operation."""

    label: str
    op: str
    loss: float | None = None
    parent: str | None = None
    info: dict = field(default_factory=dict)
    time: float = 0.0

    @property
    def round(self) -> int:
        return parse_label(self.label)[0]

    @property
    def step(self) -> int:
        return parse_label(self.label)[1]


@dataclass
class _Entry:
    meta: VersionInfo
    data: object = None  # in memory: a deep copy of the state; on disk: None
    path: Path | None = None


class VersionStore:
    """The versions of one model.

    ``folder=None`` keeps them in memory; a folder keeps them as ``<label>.kanir`` files there
    (created when missing; a folder already holding versions needs ``resume=True``, which
    continues that history). ``enabled=False`` records nothing.

    Under torch.distributed (or torchrun) only rank 0 touches the folder; the other ranks keep
    the same versions in memory, so labels, ``current`` and rewinding agree on every rank
    (``resume`` reads the folder on rank 0 only).

    ``record`` takes a *snapshot* (any object) and how to turn it into a graph: the KAN facade
    passes its torch module, copied cheaply in memory, serialised only for files.
    """

    def __init__(self, folder=None, enabled: bool = True, resume: bool = False,
                 max_versions: int | None = None):
        self.enabled = bool(enabled)
        self.folder = None if folder is None else Path(folder)
        self._entries: dict[tuple[int, int], _Entry] = {}
        self.current: str | None = None
        self.max_versions = check_max_versions(max_versions)
        self._dropped: set[tuple[int, int]] = set()
        self._writes = writes_files()  # rank 0 (or alone): the one process writing files
        if self._on_disk() and self.enabled:
            self._open_folder(resume)

    # ------------------------------------------------------------------ folder
    def _on_disk(self) -> bool:
        """Whether versions go to the folder: there is one and this is rank 0 (or alone)."""
        return self.folder is not None and getattr(self, "_writes", True)

    def _open_folder(self, resume: bool) -> None:
        where = f"cannot keep versions in {str(self.folder)!r}"
        if self.folder.exists() and not self.folder.is_dir():
            raise ModelFileError(f"{where}: it is a file")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            found = sorted(p for p in self.folder.iterdir() if _FILE.match(p.name))
        except OSError as e:
            raise ModelFileError(f"{where}: cannot create or list that folder ({e.strerror or e})") from None
        if found and not resume:
            raise VersionError(f"folder {str(self.folder)!r} already holds {len(found)} version "
                               "file(s); choose an empty folder, or pass resume=True to continue "
                               "that history")
        for p in found:
            _, extra = graph_from_bytes(read_model_bytes(p), repr(str(p)))
            meta = _info_from_extra(extra.get(_EXTRA_KEY, {}), p)
            self._entries[parse_label(meta.label)] = _Entry(meta, None, p)
        if self._entries:
            self.current = self.latest().label

    # ------------------------------------------------------------------ recording
    def next_label(self, rewind_from: str | None = None) -> str | None:
        """The label the next record will get (None when switched off)."""
        if not self.enabled:
            return None
        if self.current is None:
            return "0.0"
        rnd, step = parse_label(self.current)
        if rewind_from is not None:
            top = max(r for r, _ in self._entries) if self._entries else rnd
            return format_label(top + 1, parse_label(rewind_from)[1])
        return format_label(rnd, step + 1)

    def record(self, snapshot, to_graph, op: str, loss: float | None = None,
               rewind_from: str | None = None, **info) -> str | None:
        """Store a version; returns its label (None when switched off).

        ``snapshot`` is kept (deep-copied) in memory; with a folder, ``to_graph(snapshot)`` is
        written to ``<folder>/<label>.kanir`` instead.
        """
        label = self.next_label(rewind_from)
        if label is None:
            return None
        loss = None if loss is None or not math.isfinite(float(loss)) else float(loss)
        parent = self.current if rewind_from is None else format_label(*parse_label(rewind_from))
        meta = VersionInfo(label, str(op), loss, parent, _plain(info), time.time())
        if not self._on_disk():
            entry = _Entry(meta, _share_unchanged(_cpu_copy(snapshot), self._last_held()))
        else:
            path = self.folder / f"{label}.kanir"
            atomic_write(path, graph_to_bytes(to_graph(snapshot), {_EXTRA_KEY: _extra(meta)}))
            entry = _Entry(meta, None, path)
        self._entries[parse_label(label)] = entry
        self.current = label
        self._enforce_cap()
        return label

    def _last_held(self):
        """The newest in-memory state (None when there is none)."""
        for entry in reversed(list(self._entries.values())):
            if entry.data is not None:
                return entry.data
        return None

    def _enforce_cap(self) -> None:
        """Drop the oldest in-memory states beyond ``max_versions`` (the current one stays)."""
        if self.max_versions is None:
            return
        held = [k for k, e in self._entries.items() if e.data is not None]
        current = parse_label(self.current) if self.current is not None else None
        for key in held[:max(0, len(held) - self.max_versions)]:
            if key != current:
                self._entries[key].data = None
                self._dropped.add(key)

    def adopt(self, meta: VersionInfo, graph: KanGraph, snapshot=None) -> None:
        """Store an existing version under its own label and details (moving a history between
        stores): ``snapshot`` in memory, ``graph`` in a folder."""
        if not self.enabled:
            return
        if not self._on_disk():
            if snapshot is None:
                raise VersionError("an in-memory store needs the snapshot of the version")
            entry = _Entry(meta, _cpu_copy(snapshot))
        else:
            path = self.folder / f"{meta.label}.kanir"
            atomic_write(path, graph_to_bytes(graph, {_EXTRA_KEY: _extra(meta)}))
            entry = _Entry(meta, None, path)
        self._entries[parse_label(meta.label)] = entry
        self.current = meta.label
        self._enforce_cap()

    # ------------------------------------------------------------------ reading
    def __contains__(self, label) -> bool:
        try:
            return parse_label(label) in self._entries
        except VersionError:
            return False

    def __len__(self) -> int:
        return len(self._entries)

    def _entry(self, label) -> _Entry:
        if not self.enabled:
            raise VersionError("versions are switched off for this model; turn them on with "
                               "model.track_versions(enabled=True)")
        key = parse_label(label)
        if key not in self._entries:
            have = ", ".join(e.meta.label for e in self._sorted()) or "none"
            raise VersionError(f"no version {format_label(*key)}; recorded versions: {have}")
        if key in self._dropped:
            raise VersionError(f"version {format_label(*key)} is listed but its state was dropped "
                               f"(max_versions={self.max_versions} keeps the newest states only)")
        return self._entries[key]

    def snapshot(self, label):
        """The stored state of a version: a copy of the snapshot (in memory) or None (on disk)."""
        e = self._entry(label)
        return None if e.data is None else copy.deepcopy(e.data)

    def graph(self, label, to_graph=None) -> KanGraph:
        """The KanGraph of a version (``to_graph`` turns an in-memory snapshot into one)."""
        e = self._entry(label)
        if e.data is not None:
            if to_graph is None:
                raise VersionError("an in-memory version needs to_graph to become a graph")
            return to_graph(e.data)
        try:
            g, _ = graph_from_bytes(read_model_bytes(e.path), repr(str(e.path)))
        except FileNotFoundError:
            raise ModelFileError(f"version file {str(e.path)!r} has disappeared") from None
        return g

    def info(self, label) -> VersionInfo:
        key = parse_label(label)
        if self.enabled and key in self._dropped:
            return self._entries[key].meta
        return self._entry(label).meta

    def holds(self, label) -> bool:
        """Whether version ``label`` still holds its state (False once ``max_versions``
        dropped it)."""
        return parse_label(label) not in self._dropped

    def held(self) -> int:
        """How many versions still hold their state (in memory or as files)."""
        return sum(1 for k in self._entries if k not in self._dropped)

    def latest(self) -> VersionInfo:
        return max(self._entries.items())[1].meta

    def _sorted(self) -> list[_Entry]:
        return [self._entries[k] for k in sorted(self._entries)]

    def listing(self) -> list[VersionInfo]:
        """Every recorded version, ordered by (round, step)."""
        return [e.meta for e in self._sorted()]

    def table(self) -> str:
        """A printable listing: label, operation, loss, parent."""
        rows = [f"{'version':>8}  {'op':<16} {'loss':>11}  from"]
        for m in self.listing():
            loss = "" if m.loss is None else f"{m.loss:.3e}"
            mark = " *" if m.label == self.current else ""
            rows.append(f"{m.label:>8}  {m.op:<16} {loss:>11}  {m.parent or ''}{mark}")
        where = "memory" if self.folder is None else str(self.folder)
        state = "" if self.enabled else " (switched off)"
        return f"versions in {where}{state}; * marks the current one\n" + "\n".join(rows)

    # ------------------------------------------------------------------ copies
    def __deepcopy__(self, memo):
        """A model copy keeps the history but never writes into the original's folder: its
        store is in memory, its on-disk entries read the original's files."""
        new = VersionStore.__new__(VersionStore)
        new.enabled, new.folder, new.current = self.enabled, None, self.current
        new.max_versions, new._dropped = self.max_versions, set(self._dropped)
        new._entries = {k: _Entry(e.meta, e.data, e.path) for k, e in self._entries.items()}
        return new


def check_max_versions(cap):
    """``max_versions`` checked: None or an int >= 1."""
    if cap is None:
        return None
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise KanirError(f"max_versions must be None (no cap) or an integer >= 1, got {cap!r}")
    return cap


def _cpu_copy(obj):
    """A private copy on the CPU (a torch module loses any recorded activations)."""
    c = copy.deepcopy(obj)
    for sub in getattr(c, "modules", lambda: ())():
        if getattr(sub, "acts", None) is not None:
            sub.acts = None
    to = getattr(c, "to", None)
    return to("cpu") if callable(to) else c


def _share_unchanged(new, previous):
    """``new`` (a stored module copy) with every tensor equal to the same-named tensor of
    ``previous`` replaced by that tensor, so consecutive versions share unchanged storage
    (stored states are never written; ``snapshot`` hands out copies)."""
    if not isinstance(new, torch.nn.Module) or not isinstance(previous, torch.nn.Module):
        return new
    before = dict(previous.named_parameters()) | dict(previous.named_buffers())
    for kind in ("_parameters", "_buffers"):
        for mod_name, mod in new.named_modules():
            slots = mod.__dict__.get(kind, {})
            for name, t in list(slots.items()):
                old = before.get(f"{mod_name}.{name}" if mod_name else name)
                if (t is not None and old is not None and old.shape == t.shape
                        and old.dtype == t.dtype and type(old) is type(t) and torch.equal(old, t)
                        and old.requires_grad == t.requires_grad):
                    slots[name] = old
    return new


def _plain(info: dict) -> dict:
    """JSON-safe copy of operation details (other values become their repr)."""
    out = {}
    for k, v in info.items():
        if isinstance(v, bool | int | str) or v is None:
            out[str(k)] = v
        elif isinstance(v, float):
            out[str(k)] = v if math.isfinite(v) else repr(v)
        elif isinstance(v, list | tuple) and all(isinstance(x, int | float | str) for x in v):
            out[str(k)] = list(v)
        else:
            out[str(k)] = repr(v)
    return out


def _extra(meta: VersionInfo) -> dict:
    return {"label": meta.label, "op": meta.op, "loss": meta.loss, "parent": meta.parent,
            "info": meta.info, "time": meta.time}


def _info_from_extra(d: dict, path: Path) -> VersionInfo:
    try:
        label = format_label(*parse_label(str(d["label"])))
        loss = d.get("loss")
        return VersionInfo(label, str(d.get("op", "?")), None if loss is None else float(loss),
                           d.get("parent"), dict(d.get("info") or {}), float(d.get("time", 0.0)))
    except (KeyError, TypeError, ValueError, VersionError):
        raise ModelFileError(f"{str(path)!r} is a model file but not a kanir version") from None
