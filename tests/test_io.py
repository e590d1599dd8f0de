"""Model files: save -> load identical, atomic writes, damaged/foreign files rejected, no pickle."""

import io
import json
import os
import zipfile

import numpy as np
import pytest
import torch

import kanir
from kanir.errors import ModelFileError
from kanir.io import graph_from_bytes, graph_to_bytes


def _model():
    m = kanir.KAN([2, [1, 1], 1], grid=4, seed=0, device="cpu", dtype=torch.float64,
                  input_names=["q", "v"], output_names=["F"])
    g = m.graph
    g.set_edge(0, 0, 0, kanir.Activation.symbolic_fn("sin", 2.0, 0.5, 1.5, -0.25))
    return kanir.KAN.from_graph(g, device="cpu")


def test_save_load_identical_outputs(tmp_path):
    m = _model()
    path = tmp_path / "m.kanir"
    m.save(path)
    back = kanir.load(path, device="cpu")
    x = torch.rand(100, 2, dtype=torch.float64)
    assert torch.equal(m(x), back(x))
    assert back.input_names == ["q", "v"] and back.output_names == ["F"]
    assert back.graph.same(m.graph)
    assert back.dtype == torch.float64


def test_float32_round_trip(tmp_path):
    m = kanir.KAN([3, 2, 1], seed=1, device="cpu")
    m.save(tmp_path / "a.kanir")
    back = kanir.load(tmp_path / "a.kanir", device="cpu")
    x = torch.rand(10, 3)
    assert back.dtype == torch.float32 and torch.equal(m(x), back(x))


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    m = _model()
    path = tmp_path / "m.kanir"
    m.save(path)
    good = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        kanir.KAN([2, 1], device="cpu").save(path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.kanir"]


def test_damaged_truncated_and_foreign_files(tmp_path):
    data = graph_to_bytes(_model().graph)
    cases = {
        "truncated": data[: len(data) // 2],
        "garbage": b"\x00not a zip at all",
        "empty": b"",
    }
    for name, blob in cases.items():
        p = tmp_path / f"{name}.kanir"
        p.write_bytes(blob)
        with pytest.raises(ModelFileError, match="damaged or not a kanir model file"):
            kanir.load(p)
    foreign = io.BytesIO()
    with zipfile.ZipFile(foreign, "w") as z:
        z.writestr("graph.json", json.dumps({"format": "other"}))
        z.writestr("arrays.npz", b"")
    with pytest.raises(ModelFileError, match="unreadable content|not a kanir model file"):
        graph_from_bytes(foreign.getvalue())
    with pytest.raises(ModelFileError, match="no model file at"):
        kanir.load(tmp_path / "missing.kanir")


def _rewrite(data: bytes, edit_doc=None, arrays=None) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    doc = json.loads(src.read("graph.json"))
    if edit_doc:
        edit_doc(doc)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("graph.json", json.dumps(doc))
        z.writestr("arrays.npz", arrays if arrays is not None else src.read("arrays.npz"))
    return out.getvalue()


def test_future_version_and_inconsistent_content_are_rejected():
    data = graph_to_bytes(_model().graph)
    with pytest.raises(ModelFileError, match="format version 99; this kanir reads versions up to 1"):
        graph_from_bytes(_rewrite(data, lambda d: d.update(version=99)))
    short = io.BytesIO()
    np.savez(short, grids=np.zeros(3), coefs=np.zeros(3))
    with pytest.raises(ModelFileError, match=r"field edges\[1\]\.act\.spline\.grid refers to values "
                                            r"0:11 but arrays.npz holds 3; the model file is "
                                            r"truncated"):
        graph_from_bytes(_rewrite(data, arrays=short.getvalue()))

    def break_wiring(doc):
        doc["edges"] = [e for e in doc["edges"] if not e["attrs"].get("wire")]

    with pytest.raises(ModelFileError, match="holds an invalid graph"):
        graph_from_bytes(_rewrite(data, break_wiring))


def test_loading_never_unpickles():
    data = graph_to_bytes(_model().graph)
    evil = io.BytesIO()
    np.save(evil, np.array([object()], dtype=object), allow_pickle=True)
    obj = io.BytesIO()
    with zipfile.ZipFile(obj, "w") as z:
        z.writestr("grids.npy", evil.getvalue())
    with pytest.raises(ModelFileError):
        graph_from_bytes(_rewrite(data, arrays=obj.getvalue()))
