"""The .kanir model file: a zip holding ``graph.json`` (structure, metadata, format version) and
``arrays.npz`` (all spline knots and coefficients, read with ``allow_pickle=False``).

Saving is atomic (temporary file + ``os.replace``); loading never unpickles or runs code, and any
damaged, truncated or foreign file raises :class:`ModelFileError`.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import networkx as nx
import numpy as np

from .activation import Activation, SplinePart, SymbolicPart
from .errors import GraphError, ModelFileError
from .graph import FORMAT_VERSION, KanGraph

MAGIC = "kanir-model"


def _jsonable(v, where: str):
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple | list):
        return [_jsonable(x, where) for x in v]
    if isinstance(v, np.ndarray) and v.size <= 4096:
        return v.tolist()
    if isinstance(v, dict):
        return {str(k): _jsonable(x, where) for k, x in v.items()}
    raise ModelFileError(f"cannot save {where}: value of type {type(v).__name__} is not storable")


def _tupleize(v):
    return tuple(_tupleize(x) for x in v) if isinstance(v, list) else v


def graph_to_bytes(graph: KanGraph, extra: dict | None = None) -> bytes:
    """Serialise a graph (and optional JSON-able extras) into .kanir zip bytes."""
    grids, coefs, off = [], [], {"grid": 0, "coef": 0}
    nodes = [{"id": _jsonable(n, "node id"), "attrs": _jsonable(a, f"node {n}")}
             for n, a in graph.nx.nodes(data=True)]
    edges = []
    for u, v, a in graph.nx.edges(data=True):
        attrs = {k: val for k, val in a.items() if k != "act"}
        rec = {"u": _jsonable(u, "edge"), "v": _jsonable(v, "edge"),
               "attrs": _jsonable(attrs, f"edge {u}->{v}")}
        act = a.get("act")
        if act is not None:
            r: dict = {"meta": _jsonable(act.meta, f"edge {u}->{v} activation meta")}
            if act.symbolic is not None:
                s = act.symbolic
                r["symbolic"] = {"fun": s.fun, "params": [float(p) for p in s.params]}
            if act.spline is not None:
                sp = act.spline
                g_arr, c_arr = np.asarray(sp.grid), np.asarray(sp.coef)
                r["spline"] = {"k": sp.k, "scale_base": float(sp.scale_base),
                               "scale_sp": float(sp.scale_sp), "base_fun": sp.base_fun,
                               "active": bool(sp.active),
                               "grid": [off["grid"], g_arr.size], "coef": [off["coef"], c_arr.size]}
                grids.append(g_arr.ravel())
                coefs.append(c_arr.ravel())
                off["grid"] += g_arr.size
                off["coef"] += c_arr.size
            rec["act"] = r
        edges.append(rec)
    dtype = np.float32 if graph.meta.get("dtype") == "float32" else np.float64
    doc = {"format": MAGIC, "version": FORMAT_VERSION, "level": graph.level,
           "meta": _jsonable(graph.meta, "graph metadata"), "nodes": nodes, "edges": edges,
           "extra": _jsonable(extra or {}, "extra data")}
    arr = io.BytesIO()
    np.savez(arr, grids=np.concatenate(grids).astype(dtype) if grids else np.zeros(0, dtype),
             coefs=np.concatenate(coefs).astype(dtype) if coefs else np.zeros(0, dtype))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("graph.json", json.dumps(doc))
        z.writestr("arrays.npz", arr.getvalue())
    return buf.getvalue()


def atomic_write(path, data: bytes) -> None:
    """Write bytes to path atomically: a temporary file in the same folder, then os.replace."""
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"cannot save to {str(path)!r}: it is a directory")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise ModelFileError(f"cannot save to {str(path)!r}: folder {str(folder)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_graph(graph: KanGraph, path, extra: dict | None = None) -> None:
    """Save a KanGraph to a .kanir file (atomic)."""
    atomic_write(path, graph_to_bytes(graph, extra))


def graph_from_bytes(data: bytes, source: str = "<bytes>") -> tuple[KanGraph, dict]:
    """Parse .kanir bytes into (graph, extra); every failure is a ModelFileError."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
            if not {"graph.json", "arrays.npz"} <= names:
                raise ModelFileError(f"{source} is not a kanir model file (graph.json/arrays.npz missing)")
            doc = json.loads(z.read("graph.json").decode("utf-8"))
            with np.load(io.BytesIO(z.read("arrays.npz")), allow_pickle=False) as npz:
                grids, coefs = npz["grids"], npz["coefs"]
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, KeyError, OSError) as e:
        raise ModelFileError(f"{source} is damaged or not a kanir model file ({e})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{source} has unreadable content ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != MAGIC:
        raise ModelFileError(f"{source} is not a kanir model file (format tag missing)")
    if not isinstance(doc.get("version"), int) or doc["version"] > FORMAT_VERSION:
        raise ModelFileError(f"{source} has format version {doc.get('version')!r}; this kanir reads "
                             f"versions up to {FORMAT_VERSION} (upgrade kanir)")
    try:
        graph = _build(doc, grids, coefs)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise ModelFileError(f"{source} has an inconsistent graph description ({e!r})") from None
    try:
        graph.check()
    except GraphError as e:
        raise ModelFileError(f"{source} holds an invalid graph: {e}") from None
    return graph, doc.get("extra", {})


def _build(doc: dict, grids: np.ndarray, coefs: np.ndarray) -> KanGraph:
    g = nx.DiGraph()
    for rec in doc["nodes"]:
        g.add_node(_tupleize(rec["id"]), **dict(rec["attrs"]))
    for rec in doc["edges"]:
        attrs = dict(rec.get("attrs", {}))
        if "act" in rec:
            attrs["act"] = _activation(rec["act"], grids, coefs)
        g.add_edge(_tupleize(rec["u"]), _tupleize(rec["v"]), **attrs)
    meta = dict(doc["meta"])
    if "grid_range" in meta:
        meta["grid_range"] = tuple(meta["grid_range"])
    return KanGraph(g, meta, doc.get("level", "layered"))


def _slice(arr: np.ndarray, ref, what: str) -> np.ndarray:
    start, n = int(ref[0]), int(ref[1])
    if start < 0 or n < 0 or start + n > arr.size:
        raise ModelFileError(f"model file is truncated: {what} range {start}:{start + n} is outside "
                             f"the stored {arr.size} values")
    return np.array(arr[start:start + n], copy=True)


def _activation(r: dict, grids, coefs) -> Activation:
    sy = sp = None
    if "symbolic" in r:
        p = [float(v) for v in r["symbolic"]["params"]]
        sy = SymbolicPart(str(r["symbolic"]["fun"]), *p)
    if "spline" in r:
        s = r["spline"]
        sp = SplinePart(_slice(grids, s["grid"], "grid"), _slice(coefs, s["coef"], "coefficient"),
                        int(s["k"]), float(s["scale_base"]), float(s["scale_sp"]),
                        str(s["base_fun"]), bool(s["active"]))
    return Activation(sp, sy, dict(r.get("meta", {})))


def load_graph(path) -> tuple[KanGraph, dict]:
    """Read a .kanir file; returns (graph, extra)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"no model file at {str(path)!r}") from None
    except OSError as e:
        raise ModelFileError(f"cannot read {str(path)!r}: {e}") from None
    return graph_from_bytes(data, repr(str(path)))
