"""kanir.datasets: the 120 Feynman equations shipped as package data, their lookup by AI Feynman
name / pykan name / pykan id, the sampled datasets, and pykan's get_feynman_dataset tuple."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import sympy
import torch

import kanir
from kanir.datasets import (
    DatasetError,
    FeynmanEquation,
    feynman,
    feynman_dataset,
    get_feynman_dataset,
)
from kanir.datasets import equations as equations_module
from kanir.errors import DataError, KanirError
from kanir.grammar.formula import parse_formula

EQUATIONS = feynman()
REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ the table


def test_120_equations_100_main_then_20_bonus_with_unique_names_and_ids():
    assert isinstance(EQUATIONS, tuple) and len(EQUATIONS) == 120
    assert all(isinstance(e, FeynmanEquation) for e in EQUATIONS)
    assert [e.subset for e in EQUATIONS] == ["main"] * 100 + ["bonus"] * 20
    assert len({e.name for e in EQUATIONS}) == 120
    assert sorted(e.pykan_id for e in EQUATIONS) == list(range(1, 121))
    assert [e.name for e in EQUATIONS[100:]] == [f"test_{i}" for i in range(1, 21)]
    assert all(e.title for e in EQUATIONS[100:]) and not any(e.title for e in EQUATIONS[:100])


def test_the_package_data_file_is_inside_the_package():
    data = resources.files("kanir.datasets").joinpath("feynman.json")
    assert data.is_file()
    assert Path(str(data)).resolve().parent == Path(equations_module.__file__).resolve().parent


@pytest.mark.parametrize("eq", EQUATIONS, ids=lambda e: e.name)
def test_formula_parses_with_kanirs_grammar_over_exactly_its_variables(eq):
    f = parse_formula(eq.formula, variables=list(eq.variables))
    assert f.variables == eq.symbols
    assert eq.expr == f.expr
    assert eq.expr.free_symbols == set(eq.symbols)
    assert len(set(eq.variables)) == eq.n_var >= 1


@pytest.mark.parametrize("eq", EQUATIONS, ids=lambda e: e.name)
def test_ranges_are_finite_increasing_and_one_per_variable(eq):
    assert len(eq.ranges) == eq.n_var
    for lo, hi in eq.ranges:
        assert isinstance(lo, float) and isinstance(hi, float)
        assert math.isfinite(lo) and math.isfinite(hi) and lo < hi


def test_known_equations_are_as_the_ai_feynman_csv_writes_them():
    rel = feynman("I.10.7")
    assert (rel.output, rel.formula, rel.variables) == ("m", "m_0/sqrt(1-v**2/c**2)",
                                                        ("m_0", "v", "c"))
    assert rel.ranges == ((1.0, 5.0), (1.0, 2.0), (3.0, 10.0))
    m0, v, c = rel.symbols
    assert sympy.simplify(rel.expr - m0 / sympy.sqrt(1 - v**2 / c**2)) == 0
    # 'I' is the current here, not the imaginary unit; 'gamma' and 'beta' are variables
    assert sympy.Symbol("I") in feynman("II.13.17").expr.free_symbols
    assert feynman("II.13.17").expr.is_real is not False
    assert sympy.Symbol("gamma") in feynman("I.39.11").expr.free_symbols
    assert feynman("I.26.2").formula == "asin(n*sin(theta2))"
    assert feynman("I.26.2").source_formula == "arcsin(n*sin(theta2))"
    assert feynman("test_20").title == "Klein-Nishina (13.132 Schwarz)"


# ------------------------------------------------------------------------------ lookup


@pytest.mark.parametrize("key, name", [
    ("I.6.2a", "I.6.2a"),
    ("I.6.20a", "I.6.2a"),       # pykan's name (the CSV drops the trailing 0)
    ("I.6.20", "I.6.2"),
    (1, "I.6.2a"),               # pykan's integer id
    (np.int64(3), "I.6.2b"),
    (22, "I.18.12"),
    (60, "II.10.9"),
    ("I.10.9", "II.10.9"),       # pykan's label for II.10.9
    ("I.18.4", "I.18.4"),        # pykan gives this label to ids 21 and 22; the AI Feynman name wins
    (101, "test_1"),
    ("Rutherforld scattering", "test_1"),  # pykan's bonus names (its spelling)
    ("Schwarz 13.132 (Klein-Nishina)", "test_20"),
    (" ii.11.27 ", "II.11.27"),  # surrounding blanks and case do not matter
    ("TEST_3", "test_3"),
])
def test_lookup_by_ai_feynman_name_pykan_name_or_pykan_id(key, name):
    assert feynman(key).name == name


def test_lookup_returns_the_same_object_as_the_table():
    assert feynman("III.4.33") is EQUATIONS[[e.name for e in EQUATIONS].index("III.4.33")]
    assert all(feynman(e.pykan_id) is e for e in EQUATIONS)


@pytest.mark.parametrize("bad, expected", [
    ("I.6.2c", "did you mean 'I.6.2"),
    ("II.11.2", "did you mean 'II.11.28' or 'II.11.27' or 'II.11.20'?"),
    ("test_21", "'test_2"),
    ("Rutherford scattering", "'Rutherforld scattering'"),
    ("banana", "names look like 'I.6.2a'"),
    ("", "names look like"),
    (0, "ids run from 1 to 120"),
    (121, "ids run from 1 to 120"),
    (-3, "ids run from 1 to 120"),
    (1.5, "got float 1.5"),
    (True, "got bool True"),
    (["I.6.2a"], "got list"),
])
def test_unknown_names_are_a_kanir_error_with_close_matches(bad, expected):
    with pytest.raises(DatasetError) as info:
        feynman(bad)
    assert expected in str(info.value)
    assert isinstance(info.value, KanirError) and isinstance(info.value, LookupError)
    assert str(info.value).count("\n") == 0


def test_a_damaged_or_missing_data_file_is_a_dataset_error(monkeypatch):
    monkeypatch.setattr(equations_module, "DATA_FILE", "no-such-file.json")
    equations_module._table.cache_clear()
    try:
        with pytest.raises(DatasetError, match="missing or damaged.*reinstall kanir"):
            equations_module._table()
    finally:
        monkeypatch.undo()
        equations_module._table.cache_clear()
    assert len(feynman()) == 120


def test_kanir_datasets_is_a_lazy_attribute_of_kanir():
    assert kanir.datasets.feynman is feynman
    code = ("import sys, kanir; print('kanir.datasets' in sys.modules); "
            "print(kanir.datasets.feynman('I.6.20a').name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "I.6.2a"]


# ------------------------------------------------------------------------------ torch functions


@pytest.mark.parametrize("eq", EQUATIONS, ids=lambda e: e.name)
def test_torch_function_equals_the_formula_in_float64(eq):
    rng = np.random.default_rng(3)
    lo, hi = np.array(eq.ranges).T
    X = lo + (hi - lo) * rng.random((64, eq.n_var))
    ref = np.asarray(sympy.lambdify(eq.symbols, eq.expr, "numpy")(*X.T), dtype=np.float64)
    got = eq.torch_function()(torch.tensor(X))
    assert got.shape == (64, 1) and got.dtype == torch.float64
    # the same formula by two float64 evaluators: a few ulps apart (0 crossings aside, see
    # test_compile_feynman for why the floor is relative to the sample's median)
    scale = np.maximum(np.abs(ref), 1e-2 * np.median(np.abs(ref)))
    assert np.max(np.abs(got.numpy()[:, 0] - ref) / scale) < 1e-12


def test_torch_function_keeps_the_input_dtype_but_computes_in_float64():
    f = feynman("I.6.2a").torch_function()
    x = torch.tensor([[1.25], [2.5]], dtype=torch.float32)
    y = f(x)
    assert y.dtype == torch.float32
    exact = torch.exp(-x.double() ** 2 / 2) / math.sqrt(2 * math.pi)
    assert torch.equal(y, exact.float())


# ------------------------------------------------------------------------------ datasets


def test_feynman_dataset_has_create_datasets_keys_shapes_and_dtype():
    eq = feynman("I.9.18")
    d = feynman_dataset("I.9.18", n_train=50, n_test=30, seed=1, dtype=torch.float64)
    assert sorted(d) == ["test_input", "test_label", "train_input", "train_label"]
    assert d["train_input"].shape == (50, 9) and d["train_label"].shape == (50, 1)
    assert d["test_input"].shape == (30, 9) and d["test_label"].shape == (30, 1)
    assert all(t.dtype == torch.float64 for t in d.values())
    for j, (lo, hi) in enumerate(eq.ranges):
        col = torch.cat([d["train_input"][:, j], d["test_input"][:, j]])
        assert lo <= col.min() and col.max() <= hi
    for split in ("train", "test"):
        x = d[f"{split}_input"].numpy()
        ref = sympy.lambdify(eq.symbols, eq.expr, "numpy")(*x.T)
        np.testing.assert_allclose(d[f"{split}_label"].numpy()[:, 0], ref, rtol=1e-13)


def test_feynman_dataset_is_create_dataset_with_the_equations_ranges():
    eq = feynman("II.11.27")
    d = feynman_dataset(eq.name, n_train=20, n_test=10, seed=4, dtype=torch.float64)
    ref = kanir.create_dataset(eq.torch_function(), n_var=eq.n_var, ranges=[list(r) for r in
                               eq.ranges], train_num=20, test_num=10, seed=4, dtype=torch.float64)
    assert all(torch.equal(d[k], ref[k]) for k in ref)


def test_feynman_dataset_default_dtype_is_create_datasets_float32():
    d = feynman_dataset("I.12.1", n_train=8, n_test=8)
    assert all(t.dtype == torch.float32 for t in d.values())
    x = d["train_input"].double()
    assert torch.equal(d["train_label"], (x[:, [0]] * x[:, [1]]).float())


def test_feynman_dataset_seeds_reproduce_and_differ():
    a = feynman_dataset("test_7", n_train=16, n_test=16, seed=7)
    b = feynman_dataset("test_7", n_train=16, n_test=16, seed=7)
    c = feynman_dataset("test_7", n_train=16, n_test=16, seed=8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["train_input"], c["train_input"])


@pytest.mark.parametrize("kwargs, message", [
    ({"n_train": 0}, "n_train must be a positive int, got 0"),
    ({"n_test": -5}, "n_test must be a positive int, got -5"),
    ({"n_train": 2.5}, "n_train must be a positive int, got 2.5"),
    ({"seed": "a"}, "seed must be an int, got 'a'"),
])
def test_feynman_dataset_bad_arguments_are_data_errors(kwargs, message):
    with pytest.raises(DataError, match=re.escape(message)):
        feynman_dataset("I.12.1", **kwargs)


def test_feynman_dataset_unknown_name_is_a_dataset_error():
    with pytest.raises(DatasetError, match="did you mean 'I.12.1'"):
        feynman_dataset("I.12.1x")


# ------------------------------------------------------------------------------ pykan's tuple


@pytest.mark.parametrize("eq", EQUATIONS, ids=lambda e: e.name)
def test_get_feynman_dataset_returns_pykans_four_tuple(eq):
    out = get_feynman_dataset(eq.pykan_id)
    assert isinstance(out, tuple) and len(out) == 4
    symbols, expr, f, ranges = out
    assert isinstance(symbols, tuple) and all(isinstance(s, sympy.Symbol) for s in symbols)
    assert [s.name for s in symbols] == list(eq.variables)
    assert isinstance(expr, sympy.Expr) and expr == eq.expr
    assert ranges == [[lo, hi] for lo, hi in eq.ranges]
    u = np.random.default_rng(eq.pykan_id).random(len(ranges))  # not the box's centre: III.9.52
    x = torch.tensor([[lo + (hi - lo) * t for (lo, hi), t in zip(ranges, u)]] * 3,  # is 0/0 there
                     dtype=torch.float64)
    y = f(x)
    assert y.shape == (3, 1)
    mid = float(expr.subs(dict(zip(symbols, x[0].tolist()))))
    assert y[0, 0].item() == pytest.approx(mid, rel=1e-13)


def test_get_feynman_dataset_feeds_create_dataset_as_in_pykans_tutorials():
    symbols, expr, f, ranges = get_feynman_dataset("I.6.20")
    d = kanir.create_dataset(f, n_var=len(symbols), ranges=ranges, train_num=10, test_num=5,
                             seed=0, dtype=torch.float64)
    assert d["train_input"].shape == (10, 2) and d["train_label"].shape == (10, 1)
    ref = sympy.lambdify(symbols, expr, "numpy")(*d["test_input"].numpy().T)
    np.testing.assert_allclose(d["test_label"].numpy()[:, 0], ref, rtol=1e-13)


def test_get_feynman_dataset_accepts_pykans_toy_test_equation():
    symbols, expr, f, ranges = get_feynman_dataset("test")
    x, y = symbols
    assert expr == (x + y) * sympy.sin(sympy.exp(2 * y))
    assert ranges == [[-1.0, 1.0], [-1.0, 1.0]]
    t = torch.tensor([[0.5, -0.25]], dtype=torch.float64)
    assert f(t).shape == (1, 1)
    assert f(t).item() == pytest.approx(0.25 * math.sin(math.exp(-0.5)), rel=1e-15)


def test_get_feynman_dataset_unknown_name_is_a_dataset_error():
    with pytest.raises(DatasetError, match="did you mean 'I.6.20'"):
        get_feynman_dataset("I.6.200")


# ------------------------------------------------------------------------------ no outside files


def test_no_test_or_benchmark_reads_the_shared_folder_outside_the_repository():
    pattern = re.compile(r"""/\s*["']shared["']|["']\.\./shared""")
    offenders = [str(p.relative_to(REPO)) for folder in ("tests", "bench")
                 for p in sorted((REPO / folder).glob("*.py")) if pattern.search(p.read_text())]
    assert offenders == []
