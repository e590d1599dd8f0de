"""Versions for hypothesis testing (Trick C): labels, rewind into a new round, storage only
where the user asks, and the paper's relativistic-mass example."""

import os

import pytest
import sympy
import torch

import kanir
from kanir.model.versions import VersionError, VersionStore, parse_label


@pytest.fixture(scope="module")
def data():
    return kanir.create_dataset(lambda x: torch.sin(2 * x[:, [0]]) + x[:, [1]] ** 2, 2,
                                train_num=64, test_num=64, dtype=torch.float64)


def _model():
    return kanir.KAN(width=[2, 3, 1], grid=3, seed=0, dtype=torch.float64, device="cpu")


def test_labels_rounds_and_rewind(data):
    m = _model()
    assert m.version == "0.0" and m.list_versions()[0].op == "init"
    m.fit(data, steps=2, progress=False, update_grid=False)
    assert m.version == "0.1"
    g01 = m.graph
    m.prune_edge(threshold=0.05)
    assert m.version == "0.2"
    assert m.rewind("0.1") is m
    assert m.version == "1.1" and m.graph.same(g01)
    m.expand_width(1, 1)
    assert m.version == "1.2"
    m.rewind("0.2")
    assert m.version == "2.2"
    info = {v.label: v for v in m.list_versions()}
    assert list(info) == ["0.0", "0.1", "0.2", "1.1", "1.2", "2.2"]
    assert info["1.1"].op == "rewind" and info["1.1"].parent == "0.1"
    assert info["1.2"].op == "expand_width" and info["1.2"].parent == "1.1"
    assert info["0.1"].loss is not None and info["1.1"].loss == info["0.1"].loss
    assert info["0.2"].loss is None


def test_step_eleven_is_not_step_one():
    """pykan's rewind('0.11') can fail (#452): labels are two integers here."""
    m = _model()
    for s in range(11):
        m.perturb(mag=0.01, mode="all", seed=s)
    assert m.version == "0.11"
    g11 = m.graph
    m.rewind("0.1")
    g1 = m.graph
    m.rewind("0.11")
    assert m.graph.same(g11) and not m.graph.same(g1)
    assert m.version == "2.11"
    assert parse_label("0.11") == (0, 11) and parse_label("0.1") == (0, 1)
    assert parse_label((3, 4)) == (3, 4)


@pytest.mark.parametrize("label,match", [
    (0.1, "as a string"),
    ("abc", "round.step"),
    ("0.9", "no version 0.9; recorded versions: 0.0"),
    ("1.0", "no version 1.0"),
])
def test_unknown_or_malformed_labels(label, match):
    m = _model()
    with pytest.raises(VersionError, match=match):
        m.rewind(label)


def test_listing_shows_op_and_loss(data):
    m = _model()
    m.fit(data, steps=2, progress=False, update_grid=False)
    loss = m.list_versions()[-1].loss
    table = m.versions.table()
    assert "fit" in table and f"{loss:.3e}" in table and "init" in table
    assert table.splitlines()[0].startswith("versions in memory")


def test_nothing_written_by_default_or_in_memory(tmp_path, monkeypatch, data):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    m = _model()
    m.fit(data, steps=1, progress=False, update_grid=False)
    m.prune_edge(threshold=0.01).rewind("0.1")
    assert os.listdir(cwd) == [] and os.listdir(tmp_path) == ["cwd"]


def test_versions_in_a_chosen_folder(tmp_path, monkeypatch, data):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    folder = tmp_path / "runs" / "a"
    m = _model()
    assert m.track_versions(folder) is m
    m.fit(data, steps=1, progress=False, update_grid=False)
    g01 = m.graph
    m.expand_depth()
    assert sorted(os.listdir(folder)) == ["0.0.kanir", "0.1.kanir", "0.2.kanir"]
    assert os.listdir(cwd) == []
    loaded = kanir.load(folder / "0.1.kanir", device="cpu")
    assert loaded.graph.same(g01)
    m.rewind("0.1")
    assert m.graph.same(g01) and (folder / "1.1.kanir").exists()
    c = m.copy()  # a copy keeps the history but never writes into this folder
    c.prune_edge(threshold=0.01)
    assert c.version == "1.2" and not (folder / "1.2.kanir").exists()
    assert c.versions.folder is None and c.rewind("0.2").width_spec == [2, 3, 1, 1]
    assert os.listdir(cwd) == []


def test_history_moves_into_the_folder_and_resumes(tmp_path, data):
    m = _model()
    m.fit(data, steps=1, progress=False, update_grid=False)
    folder = tmp_path / "v"
    m.track_versions(folder)
    assert sorted(os.listdir(folder)) == ["0.0.kanir", "0.1.kanir"]
    assert m.version == "0.1"
    m2 = _model()
    with pytest.raises(VersionError, match="already holds 2 version"):
        m2.track_versions(folder)
    m2.track_versions(folder, resume=True)
    assert m2.version == "0.2" and m2.list_versions()[-1].op == "resume"
    m2.rewind("0.1")
    assert m2.graph.same(m.graph) and m2.version == "1.1"
    store = VersionStore(folder, resume=True)
    assert [v.label for v in store.listing()] == ["0.0", "0.1", "0.2", "1.1"]


def test_switched_off(tmp_path, data):
    m = _model().track_versions(enabled=False)
    m.fit(data, steps=1, progress=False, update_grid=False)
    assert m.version is None and m.list_versions() == []
    with pytest.raises(VersionError, match="switched off"):
        m.rewind("0.0")
    m.track_versions()
    assert m.version == "0.0" and len(m.list_versions()) == 1


def test_folder_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(kanir.errors.ModelFileError, match="it is a file"):
        _model().track_versions(f)


@pytest.mark.slow
def test_trick_c_relativistic_mass_hypotheses():
    """From the trained version, try zeroing the gamma edges; rewind; try zeroing the beta
    edges; rewind; as a control, zero m0's. Either auxiliary variable carries what the other
    does (gamma is a function of beta), m0 cannot be done without."""
    m0, v, c = sympy.symbols("m0 v c")
    beta = v / c
    aux = {"beta": beta, "gamma": 1 / sympy.sqrt(1 - beta**2)}
    data = kanir.create_dataset(
        lambda x: x[:, [0]] / torch.sqrt(1 - x[:, [1]] ** 2 / x[:, [2]] ** 2), 3,
        ranges=[[0, 1], [0, 0.9], [1.1, 2]], train_num=200, test_num=200, dtype=torch.float64)
    m = kanir.KAN(width=[3, [0, 1], 1], grid=3, seed=0, dtype=torch.float64, device="cpu")
    d2 = m.augment_input([m0, v, c], aux, data)
    m.fit(d2, steps=20, progress=False)
    base = m.version
    assert base == "0.2"
    g_base = m.graph
    losses = {}
    for rnd, (name, i) in enumerate([("gamma", 1), ("beta", 0), ("m0", 2)]):  # aux inputs first
        if rnd:
            m.rewind(base)
            assert m.version == f"{rnd}.2" and m.graph.same(g_base)
        m.remove_edge(0, i, 0).remove_edge(0, i, 1)  # the variable's edges into both factors
        losses[name] = m.fit(d2, steps=20, progress=False)["train_loss"][-1]
    assert max(losses["gamma"], losses["beta"]) < 1e-2  # RMSE
    assert losses["m0"] > 10 * max(losses["gamma"], losses["beta"])
    fits = {v.label: v.loss for v in m.list_versions() if v.op == "fit"}
    assert fits["0.5"] == losses["gamma"] and fits["1.5"] == losses["beta"]
    assert fits["2.5"] == losses["m0"]
    ops = [(v.label, v.op) for v in m.list_versions()]
    assert ops[-4:] == [("2.2", "rewind"), ("2.3", "remove_edge"), ("2.4", "remove_edge"),
                        ("2.5", "fit")]
