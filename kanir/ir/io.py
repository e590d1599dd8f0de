"""The .kanir model file: a zip holding ``graph.json`` (structure, metadata, format version) and
``arrays.npz`` (all spline knots and coefficients, read with ``allow_pickle=False``).

Saving is atomic (temporary file + ``os.replace``) and gives the file the mode the umask implies;
loading never unpickles or runs code, reads at most ``MAX_FILE_BYTES`` from a regular file, checks
every field against :mod:`kanir.ir.io_schema`, and any damaged, truncated or foreign file raises
:class:`ModelFileError` naming the problem. Failures to write are ModelFileErrors too.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path

import networkx as nx
import numpy as np

from kanir.errors import GraphError, ModelFileError
from kanir.ir.activation import Activation, SplinePart, SymbolicPart
from kanir.ir.graph import FORMAT_VERSION, KanGraph
from kanir.ir.io_schema import MAGIC, check_version, validate_doc

MAX_FILE_BYTES = 4 << 30  # the largest .kanir file (and the largest member inside it) read
MAX_JSON_BYTES = 256 << 20  # the largest graph.json read


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
            if act.symbolic is None and act.spline is None:
                raise ModelFileError(f"cannot save edge {u}->{v}: its activation has neither a "
                                     f"symbolic nor a spline part; remove the edge instead (an "
                                     f"absent edge is the zero function)")
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
    """Write bytes to path atomically: a temporary file in the same folder, then os.replace.

    The file gets the mode a plain ``open(path, "wb")`` would give (0666 minus the umask), not
    mkstemp's 0600. Every failure is a ModelFileError naming the path and the reason."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    where = f"cannot save to {str(path)!r}"
    if path.is_dir():
        raise ModelFileError(f"{where}: it is a directory")
    if not folder.exists():
        raise ModelFileError(f"{where}: folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise ModelFileError(f"{where}: {str(folder)!r} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise ModelFileError(f"{where}: cannot create a file in {str(folder)!r} "
                             f"({_reason(e)})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, ModelFileError):
            raise ModelFileError(f"{where}: {_reason(e)}") from None
        raise


def _umask() -> int:
    """The process umask (os.umask can only be read by setting it; restored at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _reason(e: OSError) -> str:
    return e.strerror or str(e) or type(e).__name__


def save_graph(graph: KanGraph, path, extra: dict | None = None) -> None:
    """Save a KanGraph to a .kanir file (atomic)."""
    atomic_write(path, graph_to_bytes(graph, extra))


def graph_from_bytes(data: bytes, source: str = "<bytes>") -> tuple[KanGraph, dict]:
    """Parse .kanir bytes into (graph, extra); every failure is a ModelFileError."""
    doc, grids, coefs = _read_zip(data, source)
    check_version(doc, source, FORMAT_VERSION)
    meta = doc.get("meta")
    dtype = np.float32 if isinstance(meta, dict) and meta.get("dtype") == "float32" else np.float64
    _check_array(grids, "grids", dtype, source)
    _check_array(coefs, "coefs", dtype, source)
    try:
        validate_doc(doc, grids.size, coefs.size)
    except ModelFileError as e:
        raise ModelFileError(f"{source} is damaged: {e}") from None
    try:
        graph = _build(doc, grids, coefs)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as e:  # the schema should stop these
        raise ModelFileError(f"{source} has an inconsistent graph description ({e!r})") from None
    try:
        graph.check()
    except GraphError as e:
        raise ModelFileError(f"{source} holds an invalid graph: {e}") from None
    return graph, doc.get("extra", {})


def _read_zip(data: bytes, source: str) -> tuple[object, np.ndarray, np.ndarray]:
    """graph.json (parsed) and the two arrays; sizes are capped before anything is inflated."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
            if not {"graph.json", "arrays.npz"} <= names:
                raise ModelFileError(f"{source} is not a kanir model file (graph.json/arrays.npz missing)")
            _check_size(z.getinfo("graph.json").file_size, MAX_JSON_BYTES, "graph.json", source)
            _check_size(z.getinfo("arrays.npz").file_size, MAX_FILE_BYTES, "arrays.npz", source)
            doc = json.loads(z.read("graph.json").decode("utf-8"))
            npz_bytes = z.read("arrays.npz")
        with zipfile.ZipFile(io.BytesIO(npz_bytes)) as inner:  # np.load would inflate blindly
            for info in inner.infolist():
                _check_size(info.file_size, MAX_FILE_BYTES, f"arrays.npz/{info.filename}", source)
        with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as npz:
            return doc, npz["grids"], npz["coefs"]
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, KeyError,
            OSError) as e:
        raise ModelFileError(f"{source} is damaged or not a kanir model file ({e})") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ModelFileError(f"{source} has unreadable content ({type(e).__name__}: "
                             f"{str(e)[:200]})") from None


def _check_size(size: int, cap: int, what: str, source: str) -> None:
    if size > cap:
        raise ModelFileError(f"{source} is not a kanir model file this kanir reads: {what} would "
                             f"inflate to {size} bytes (at most {cap})")


def _check_array(arr: np.ndarray, name: str, dtype, source: str) -> None:
    if arr.ndim != 1 or arr.dtype != dtype:
        raise ModelFileError(f"{source} is damaged: arrays.npz {name!r} must be a 1-D "
                             f"{np.dtype(dtype).name} array (the model's dtype), got "
                             f"{arr.ndim}-D {arr.dtype.name}")


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
        a, b, c, d = (float(v) for v in r["symbolic"]["params"])
        sy = SymbolicPart(str(r["symbolic"]["fun"]), a, b, c, d)
    if "spline" in r:
        s = r["spline"]
        sp = SplinePart(_slice(grids, s["grid"], "grid"), _slice(coefs, s["coef"], "coefficient"),
                        int(s["k"]), float(s["scale_base"]), float(s["scale_sp"]),
                        str(s["base_fun"]), bool(s["active"]))
    return Activation(sp, sy, dict(r.get("meta", {})))


def load_graph(path) -> tuple[KanGraph, dict]:
    """Read a .kanir file; returns (graph, extra)."""
    return graph_from_bytes(read_model_bytes(path), repr(str(path)))


def read_model_bytes(path) -> bytes:
    """The bytes of a model file: a regular file of at most MAX_FILE_BYTES (so /dev/zero, a
    FIFO or a folder is a clear error, never a hang)."""
    where = repr(str(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ModelFileError(f"no model file at {where}") from None
    except OSError as e:
        raise ModelFileError(f"cannot read {where}: {_reason(e)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ModelFileError(f"cannot read {where}: it is a directory, not a model file")
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(f"cannot read {where}: it is not a regular file (a device, pipe or "
                             f"socket), so it cannot be a model file")
    if st.st_size > MAX_FILE_BYTES:
        raise ModelFileError(f"cannot read {where}: it has {st.st_size} bytes, more than the "
                             f"{MAX_FILE_BYTES} a model file may have")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise ModelFileError(f"cannot read {where}: {_reason(e)}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ModelFileError(f"cannot read {where}: it grew past {MAX_FILE_BYTES} bytes while "
                             f"being read")
    return data
