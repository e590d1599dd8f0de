"""The benchmark's own judgement must be right too: what counts as an exact formula, and the
results file contract run_all relies on (``--out``)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_symbolic  # noqa: E402
import bench_symfit  # noqa: E402

NAMES, RANGES = ["mu", "Nn"], [[1, 5], [1, 5]]


@pytest.mark.parametrize("formula, exact", [
    ("Nn*mu", True),
    ("mu*Nn*1.0", True),  # an exactly decimal float is read as a rational
    ("Nn*mu/2*2", True),
    ("0.999959917381941*Nn*mu", False),  # a float left: not exact, however close
    ("Nn*mu + 1e-12", False),
    ("nan", False),
    ("zoo*Nn", False),
    ("Nn*(mu", False),  # unparsable
    ("", False),
    (None, False),
])
def test_judge_exact(formula, exact):
    assert bench_symbolic.judge(formula, "mu*Nn", NAMES, RANGES)["exact"] is exact


def test_judge_rounding_is_explicit_and_the_same_for_everyone():
    f = "0.999959917381941*Nn*mu"
    assert not bench_symbolic.judge(f, "mu*Nn", NAMES, RANGES)["exact"]
    assert bench_symbolic.judge(f, "mu*Nn", NAMES, RANGES, round_decimals=4)["exact"]
    assert not bench_symbolic.judge("0.98*Nn*mu", "mu*Nn", NAMES, RANGES, round_decimals=4)["exact"]


def test_judge_reports_r2_for_approximate_formulas():
    r = bench_symbolic.judge("1.01*Nn*mu", "mu*Nn", NAMES, RANGES)
    assert not r["exact"] and 0.99 < r["r2"] < 1.0 and "float" in r["how"]


def test_feynman_set_is_the_simplest_first_and_widths_put_the_product_last():
    eqs = bench_symbolic.feynman_set(20)
    assert len(eqs) == 20 and eqs[0]["name"] == "I.12.1"
    assert all(1 <= len(e["variables"]) <= 3 for e in eqs)
    assert bench_symbolic.width_for(1) == ([1, 1], 2)
    assert bench_symbolic.width_for(3) == ([3, [0, 1]], 3)


def test_symfit_bench_writes_its_section(tmp_path):
    out = tmp_path / "symfit.md"
    assert bench_symfit.main(["--repeat", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("## Batched affine fits")
    assert "| 9 edges × 4 functions" in text and "7/7" in text and "5/5" in text


# ---------------------------------------------------------------- the Feynman benchmark (issue 13)
import json  # noqa: E402

import bench_baselines  # noqa: E402
import discover_misses  # noqa: E402
import feynman_data  # noqa: E402
import feynman_runner  # noqa: E402
import numpy as np  # noqa: E402
import report_discover  # noqa: E402
import srbench_judge  # noqa: E402


def test_simplest_is_fewest_variables_with_the_package_order_breaking_ties():
    from kanir.datasets import feynman

    names = feynman_data.simplest(20)
    eqs = {e.name: (e.n_var, i) for i, e in enumerate(feynman())}
    keys = [eqs[n] for n in names]
    assert keys == sorted(keys) and len(set(names)) == 20
    assert names[:3] == ["I.6.2a", "I.6.2", "I.12.1"]
    assert max(k[0] for k in keys) <= min(e.n_var for n, e in
                                          ((e.name, e) for e in feynman()) if n not in names)


def test_sampler_is_seeded_per_equation_and_noise_touches_train_labels_only():
    a = feynman_data.sample("I.12.1")
    b = feynman_data.sample("I.12.1", noise=1e-3)
    assert a["X_train"].shape == (1000, 2) and a["X_test"].shape == (1000, 2)
    np.testing.assert_array_equal(a["X_train"], b["X_train"])
    np.testing.assert_array_equal(a["y_test"], b["y_test"])
    np.testing.assert_allclose(a["y_train"], a["X_train"][:, 0] * a["X_train"][:, 1],
                               rtol=1e-15)
    scale = np.std(b["y_train"] - a["y_train"]) / np.std(a["y_train"])
    assert 0.9e-3 < scale < 1.1e-3
    (lo1, hi1), (lo2, hi2) = a["ranges"]
    assert lo1 <= a["X_train"][:, 0].min() and a["X_train"][:, 0].max() <= hi1
    # another equation draws other points; the same call draws the same ones
    c = feynman_data.sample("I.12.5")
    assert not np.allclose(a["X_train"], c["X_train"])
    np.testing.assert_array_equal(a["X_train"], feynman_data.sample("I.12.1")["X_train"])
    with pytest.raises(ValueError, match="noise"):
        feynman_data.sample("I.12.1", noise=-1)


def test_data_files_round_trip(tmp_path):
    p = feynman_data.write(tmp_path, "I.14.4", 1e-3)
    assert p.name == "I.14.4_noise0.001_seed0.npz"
    d, s = feynman_data.read(p), feynman_data.sample("I.14.4", 1e-3)
    assert d["names"] == ["k_spring", "x"] and d["truth"] == s["truth"]
    np.testing.assert_array_equal(d["y_train"], s["y_train"])


X2 = np.random.default_rng(0).uniform(1, 5, (200, 2))


@pytest.mark.parametrize("formula, truth, exact", [
    ("x*y", "y*x", True),
    ("0.5*m*v**2", "m*v**2/2", True),
    ("3.1415927*m", "pi*m", True),           # within 1e-6 of pi
    ("3.1416*m", "pi*m", False),              # 2e-6 away: another constant
    ("0.15915494309*m/v", "m/(2*pi*v)", True),
    ("m + 1e-3", "m", False),
    ("m*v + 1e-12", "m*v", False),            # an extra term is another structure
    ("sqrt(m**2)", "m", True),                # positive range: the data cannot tell
    ("0.1234567891*m", "0.1234567*m", True),  # no nice constant: same tree, 1e-6 apart
    ("1.0000001*exp(0.4999999*m)", "exp(m/2)", True),
    ("sin(m)", "m", False),
    (None, "m", False),
    ("m*(v", "m", False),
])
def test_srbench_judge_known_pairs(formula, truth, exact):
    names = ["x", "y"] if "y" in truth else ["m", "v"]
    r = srbench_judge.judge(formula, truth, names, X2, ranges=[(1, 5), (1, 5)])
    assert r["exact"] is exact, r


def test_judge_r2_uses_the_given_test_labels_and_sqrt_needs_a_positive_range():
    r = srbench_judge.judge("1.05*m", "m", ["m"], X2[:, :1], ranges=[(1, 5)])
    assert not r["exact"] and 0.9 < r["r2"] < 0.999 and r["accurate"] is False
    noisy = X2[:, 0] + 0.1 * np.random.default_rng(2).standard_normal(200)
    r = srbench_judge.judge("m", "m", ["m"], X2[:, :1], noisy, ranges=[(1, 5)])
    assert r["exact"] and r["r2"] < 0.999
    x = np.linspace(-2, 2, 41)[:, None]
    assert not srbench_judge.judge("sqrt(m**2)", "m", ["m"], x, ranges=[(-2, 2)])["exact"]


def _miss(formula, truth="x*y", steps=(), front=(), held_out=1e-9, origin="", r2=1.0):
    row = {"exact": False, "formula": formula, "truth": truth, "steps": list(steps),
           "front": list(front), "held_out": held_out, "origin": origin, "r2": r2}
    names = ["x", "y", "z"]
    x = np.random.default_rng(1).uniform(1, 3, (100, 3))
    return discover_misses.classify(row, names, x, [(1, 3)] * 3)


def test_misses_classifier_names_the_failed_step():
    log_tree = [["tree", 0.1, "of log|y|: add(x, y)"]]
    assert _miss(None) == "no formula"
    assert _miss("x*y + 1e-9", front=[[3, 1e-9, "x*y"], [5, 1e-12, "x*y + 1e-9"]]) == \
        "exact formula on the front, not chosen"
    assert _miss("1.0004*x*y", steps=log_tree) == "snapping"
    assert _miss("x", truth="sinh(x)*y", steps=log_tree) == "candidate missing from library"
    assert _miss("x*y", truth="x*y + z", steps=[["tree", 0.1, "of y: sym(x, y, z)"]]) == \
        "tree wrong"
    assert _miss("x*y*z", truth="x*y + z", steps=[["tree", 0.1, "of y: add(mul(x, y), z)"]],
                 origin="log tree add(x, y, z)") == "tree wrong"
    assert _miss("x*y + 0.3*sin(x)", steps=log_tree, held_out=0.05, r2=0.99) == \
        "fit not accurate enough"
    # the surrogate read a flat tree; the pair guess the formula came from had the truth's split
    flat = [["tree", 0.1, "of y: mul(x, y, z)"]]
    assert _miss("x*exp(y - z)", truth="x/sqrt(1 - y**2/z**2)", steps=flat, held_out=5e-3,
                 r2=0.99997, origin="tree mul(x, gsep(y, z)), edge (0, 1, 0) = log") == \
        "fit not accurate enough"
    assert _miss("x*exp(y - z)", truth="x/sqrt(1 - y**2/z**2)", steps=flat, held_out=5e-3,
                 r2=0.99997, origin="tree mul(x, y, z)") == "tree wrong"
    assert _miss("x*y + 1e-5*sin(x)", steps=log_tree) == "symbolic fit"
    assert discover_misses.classify({"exact": True}, ["x"], X2[:, :1]) is None


def test_tree_blocks_and_truth_blocks():
    import sympy

    assert discover_misses.tree_blocks("add(x, mul(y, z))") == (
        "add", frozenset({frozenset({"x"}), frozenset({"y", "z"})}))
    assert discover_misses.tree_blocks("sym(x, y)") is None
    x, y, z = sympy.symbols("x y z", positive=True)
    assert discover_misses.blocks(x * y / (4 * sympy.pi * z**2), "mul") == frozenset(
        {frozenset({"x"}), frozenset({"y"}), frozenset({"z"})})
    assert discover_misses.blocks(1 + x * y / (1 - x * y / 3), "add") == frozenset(
        {frozenset({"x", "y"})})


@pytest.mark.parametrize("text, ok", [("0/1", (0, 1)), ("3/4", (3, 4)), (None, (0, 1)),
                                      ("4/4", None), ("-1/2", None), ("a/b", None), ("1", None)])
def test_shard_parsing(text, ok):
    import argparse

    if ok is None:
        with pytest.raises(argparse.ArgumentTypeError, match="shard"):
            feynman_runner.parse_shard(text)
    else:
        assert feynman_runner.parse_shard(text) == ok


def test_shards_partition_the_equations():
    names = [e.name for e in feynman_data.equations()]
    parts = [feynman_runner.select(names, (i, 3)) for i in range(3)]
    assert sorted(sum(parts, [])) == sorted(names) and len(parts[0]) == 40
    assert parts[1][0] == names[1]


def _fake_solve(task):
    return {"method": task["method"], "name": task["name"], "noise": task["noise"],
            "seed": task["seed"], "budget": task["budget"], "exact": task["name"] != "I.12.5",
            "r2": 1.0, "accurate": True, "wall_s": 1.0, "formula": "x", "truth": "x"}


@pytest.mark.parametrize("jobs", [1, 2])
def test_runner_resumes_and_skips_done_rows(tmp_path, monkeypatch, capsys, jobs):
    monkeypatch.setattr(feynman_runner, "solve", _fake_solve)
    out = tmp_path / "r.jsonl"
    args = ["--names", "I.12.1,I.12.5,I.14.4", "--noise", "0", "1e-3", "--out", str(out),
            "--jobs", str(jobs), "--shard", "0/1"]
    assert feynman_runner.main(args, "doc", ["kanir"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 and sum(r["exact"] for r in rows) == 4
    with out.open("a") as fh:
        fh.write('{"method": "kanir", "torn')  # a run killed mid-write
    assert feynman_runner.main(args, "doc", ["kanir"]) == 0
    assert "0 to run, 6 done already" in capsys.readouterr().out
    assert feynman_runner.done_keys(out) == {("kanir", n, nz, 0) for n in
                                             ("I.12.1", "I.12.5", "I.14.4") for nz in (0, 1e-3)}


@pytest.mark.slow
def test_runner_on_a_dask_cluster_gives_the_local_rows(tmp_path, monkeypatch):
    from dask.distributed import LocalCluster

    monkeypatch.setattr(feynman_runner, "solve", _fake_solve)
    tasks = [{"method": "kanir", "name": n, "noise": 0.0, "seed": 0, "budget": 1}
             for n in ("I.12.1", "I.12.5")]
    with LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster:
        rows = list(feynman_runner._run_tasks(tasks, 1, cluster.scheduler_address))
    key = lambda r: r["name"]  # noqa: E731
    assert sorted(rows, key=key) == sorted(map(_fake_solve, tasks), key=key)


def test_gplearn_programs_become_sympy_and_pykan_widths():
    import sympy

    e = bench_baselines.gplearn_to_sympy("add(mul(X0, X1), div(sqrt(X0), 2.0))", ["m", "v"])
    m, v = sympy.symbols("m v")
    assert sympy.simplify(e - (m * v + sympy.sqrt(sympy.Abs(m)) / 2)) == 0
    assert [bench_baselines.pykan_width(n) for n in (1, 2, 3)] == [[1, 5, 1], [2, 5, 1],
                                                                   [3, 7, 1]]


def test_report_writes_totals_and_the_table_into_its_section(tmp_path):
    rows = [{"method": "kanir", "name": "I.12.1", "noise": 0, "exact": True, "r2": 1.0,
             "accurate": True, "wall_s": 10.0, "budget": 60, "truth": "mu*Nn"},
            {"method": "kanir", "name": "I.6.2a", "noise": 0, "exact": False, "r2": 0.5,
             "accurate": False, "wall_s": 30.0, "budget": 60, "miss": "tree wrong",
             "truth": "t"},
            {"method": "gplearn", "name": "I.12.1", "noise": 0.001, "exact": False,
             "r2": 0.9995, "accurate": True, "wall_s": 61.0, "budget": 60, "truth": "mu*Nn"}]
    src = tmp_path / "f.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    res = tmp_path / "RESULTS.md"
    res.write_text("# results\n\nkept\n")
    assert report_discover.main([str(src), "--results", str(res)]) == 0
    assert report_discover.main([str(src), "--results", str(res)]) == 0  # replaces, no repeat
    text = res.read_text()
    assert text.startswith("# results\n\nkept\n") and text.count(report_discover.BEGIN) == 1
    assert "| kanir | 0 | 2 | 1/2 | 1/2 | 20 | 60 |" in text
    assert "| gplearn | 0.001 | 1 | 0/1 | 1/1 | 61 | 60 |" in text
    assert "misses by failed step: tree wrong 1" in text
    assert "| I.6.2a | `t` | no: tree wrong; R² 0.5000 (30 s) | – |" in text
    assert text.index("| I.6.2a |") < text.index("| I.12.1 |")  # package order


def test_judge_row_labels_kanir_rows_only(tmp_path):
    path = feynman_data.write(tmp_path, "I.12.1", 0.0)
    row = {"method": "kanir", "name": "I.12.1", "formula": "mu*Nn + 0.5", "truth": "mu*Nn",
           "steps": [["tree", 0.1, "of log|y|: add(mu, Nn)"]], "front": [], "held_out": 0.2}
    out = feynman_runner.judge_row(row, path)
    assert not out["exact"] and out["miss"] == "fit not accurate enough"
    out = feynman_runner.judge_row({**row, "method": "gplearn", "formula": "Nn*mu"}, path)
    assert out["exact"] and "miss" not in out


@pytest.mark.slow
def test_judge_child_runs_the_same_judgement_in_a_bounded_process(tmp_path):
    path = feynman_data.write(tmp_path, "I.12.1", 0.0)
    row = {"method": "gplearn", "name": "I.12.1", "formula": "1.0000000001*Nn*mu"}
    assert feynman_runner.judge_child(row, path, 300) == feynman_runner.judge_row(row, path)
    assert feynman_runner.judge_child(row, path, 0.01) is None  # timed out


def test_rows_say_which_commit_made_them():
    import re

    import feynman_runner

    assert re.fullmatch(r"([0-9a-f]{7,40}(\+changes)?)?", feynman_runner.commit())
