"""Small things users expect: ``kanir --version``, ``python -m kanir``, progress bars that stay
off when stderr is not a terminal, and ``kanir.load_dataset``."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import kanir
from kanir.cli.commands import main
from kanir.errors import DataError


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"kanir {kanir.__version__}"


def test_python_dash_m_kanir():
    out = subprocess.run([sys.executable, "-m", "kanir", "--version"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == f"kanir {kanir.__version__}"


def test_progress_bar_off_when_stderr_is_not_a_terminal(capsys):
    data = kanir.create_dataset(lambda x: x[:, [0]] ** 2, n_var=1, train_num=20, test_num=20)
    model = kanir.KAN([1, 1], grid=3, seed=0, versions=False)
    model.fit(data, steps=3, progress=True)
    err = capsys.readouterr().err
    assert "it/s" not in err and "train_rmse" not in err and "%|" not in err


def _write_csv(path, text):
    path.write_text(text)
    return path


def test_load_dataset_csv(tmp_path):
    rows = "\n".join(f"{a},{b},{a * b}" for a, b in zip(range(10), range(10, 20)))
    path = _write_csv(tmp_path / "d.csv", "m, v ,y\n" + rows + "\n")
    d = kanir.load_dataset(path, target="y", test_fraction=0.3, dtype=torch.float64)
    assert d["input_names"] == ["m", "v"] and d["label_names"] == ["y"]
    assert d["train_input"].shape == (7, 2) and d["test_label"].shape == (3, 1)
    x = torch.cat([d["train_input"], d["test_input"]])
    y = torch.cat([d["train_label"], d["test_label"]])
    assert torch.equal(y[:, 0], x[:, 0] * x[:, 1])  # rows stay whole when shuffled
    assert sorted(x[:, 0].tolist()) == list(map(float, range(10)))
    again = kanir.load_dataset(path, target="y", test_fraction=0.3, dtype=torch.float64)
    assert torch.equal(again["train_input"], d["train_input"])  # same seed, same split
    model = kanir.KAN([2, 1], input_names=d["input_names"], versions=False)
    assert model.input_names == ["m", "v"]


def test_load_dataset_npz_and_inputs(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, a=np.arange(5.0), b=np.ones(5), c=np.arange(5.0) * 2)
    d = kanir.load_dataset(path, target=["c"], inputs=["a"], test_fraction=0)
    assert d["input_names"] == ["a"]
    assert torch.equal(d["train_label"][:, 0], 2 * d["train_input"][:, 0])
    assert torch.equal(d["test_input"], d["train_input"])


@pytest.mark.parametrize("text, kw, message", [
    ("a,b,z\n1,2,3\n", {}, "target column 'y' is not in .*; its columns are a, b, z"),
    ("a,b,yy\n1,2,3\n", {}, "did you mean 'yy'"),
    ("a,y\n1,2\nx,3\n", {}, "column 'a' of .* has a value that is not a number in data row 2: 'x'"),
    ("a,y\n1,2\n3\n", {}, "data row 2 of .* has 1 values for 2 columns"),
    ("a,y\n1,nan\n", {}, "column 'y' of .* has a NaN or infinite value"),
    ("a,a,y\n1,2,3\n", {}, "distinct, non-empty column names"),
    ("a,y\n", {}, "no data rows"),
    ("a,y\n1,2\n", {"inputs": ["q"]}, "input column 'q' is not in"),
    ("a,y\n1,2\n", {"inputs": ["a", "y"]}, "both inputs and target"),
])
def test_load_dataset_errors_name_the_problem(tmp_path, text, kw, message):
    path = _write_csv(tmp_path / "d.csv", text)
    with pytest.raises(DataError, match=message):
        kanir.load_dataset(path, target="y", **kw)


def test_load_dataset_missing_file_and_bad_npz(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        kanir.load_dataset(tmp_path / "nope.csv")
    path = tmp_path / "d.npz"
    np.savez(path, a=np.ones((3, 2)), y=np.ones(3))
    with pytest.raises(DataError, match="column 'a' of .* must be a 1-D numeric array"):
        kanir.load_dataset(path)
