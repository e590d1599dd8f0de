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
from kanir.ir.io import graph_from_bytes, graph_to_bytes


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
    with pytest.raises(ModelFileError, match=r"field graph\.edges\[1\]\.act\.spline\.grid refers to values "
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


def _corrupt_deflate(data: bytes, member: str = "graph.json") -> bytes:
    """The file with the first byte of ``member``'s deflate stream set to 0xFF: a final block of
    the reserved type 3, which zlib refuses ('invalid block type')."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(member)
    assert info.compress_type == zipfile.ZIP_DEFLATED
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    blob = bytearray(data)
    blob[start] = 0xFF
    return bytes(blob)


def test_corrupted_deflate_data_is_a_model_file_error(tmp_path):
    path = tmp_path / "m.kanir"
    path.write_bytes(_corrupt_deflate(graph_to_bytes(_model().graph)))
    with pytest.raises(ModelFileError, match=r"is damaged or not a kanir model file \(Error -3 "
                                             r"while decompressing data: invalid block type\)"):
        kanir.load(path)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_files_get_the_mode_the_umask_implies(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        kanir.KAN([2, 1], device="cpu").save(tmp_path / "m.kanir")
    finally:
        os.umask(old)
    assert (tmp_path / "m.kanir").stat().st_mode & 0o777 == mode


def test_saving_where_no_file_can_be_written_is_a_model_file_error(tmp_path):
    m = kanir.KAN([2, 1], device="cpu")
    (tmp_path / "file").write_text("")
    cases = [(tmp_path / "file" / "m.kanir", r"'.*/file' is a file, not a folder"),
             (tmp_path / "missing" / "m.kanir", r"folder '.*/missing' does not exist")]
    if os.path.isdir("/proc"):
        cases.append(("/proc/m.kanir", r"cannot save to '/proc/m.kanir': cannot create a file in "
                                       r"'/proc' \(.+\)"))
    for path, message in cases:
        with pytest.raises(ModelFileError, match=message):
            m.save(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the /proc and "
                                               "file-as-folder cases above cover it")
def test_saving_into_a_read_only_folder_is_a_model_file_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ModelFileError, match=r"cannot create a file in '.*/ro' \(Permission"):
            kanir.KAN([2, 1], device="cpu").save(folder / "m.kanir")
    finally:
        folder.chmod(0o700)


def test_versions_in_a_folder_that_cannot_be_created_is_a_model_file_error(tmp_path):
    (tmp_path / "file").write_text("")
    m = kanir.KAN([2, 1], device="cpu")
    with pytest.raises(ModelFileError, match=r"cannot keep versions in '.*/file/x': cannot create "
                                             r"or list that folder \(Not a directory\)"):
        m.track_versions(folder=tmp_path / "file" / "x")
    if os.path.isdir("/proc"):
        with pytest.raises(ModelFileError, match=r"cannot keep versions in '/proc/x'"):
            m.track_versions(folder="/proc/x")


def test_only_regular_files_of_bounded_size_are_read(tmp_path, monkeypatch):
    import kanir.ir.io as kio

    with pytest.raises(ModelFileError, match=r"cannot read '.*': it is a directory"):
        kanir.load(tmp_path)
    path = tmp_path / "m.kanir"
    _model().save(path)
    monkeypatch.setattr(kio, "MAX_FILE_BYTES", 100)
    with pytest.raises(ModelFileError, match=r"it has \d+ bytes, more than the 100 a model file "
                                             r"may have"):
        kanir.load(path)


def test_an_activation_without_parts_is_not_saved():
    g = _model().graph
    g.set_edge(0, 1, 0, kanir.Activation())
    with pytest.raises(ModelFileError, match=r"neither a symbolic nor a spline part; remove the "
                                             r"edge instead"):
        graph_to_bytes(g)
