"""kanir.discover: exact recovery (slow), bad input, reproducibility, parallel engines (joblib,
Dask), the budget, the report and the CLI."""

import sys

import numpy as np
import pytest
import sympy
import torch

import kanir
from kanir.cli.commands import main
from kanir.errors import ArgumentError, DataError
from kanir.workflows.discover import Candidate, pareto_front, prepare


def _data(expr: str, names: str, ranges, n: int = 1000, seed: int = 0):
    syms = sympy.symbols(names, seq=True)
    true = sympy.sympify(expr, locals={str(s): s for s in syms})
    f = sympy.lambdify(syms, true, "numpy")
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.uniform(lo, hi, n) for lo, hi in ranges])
    return x, np.broadcast_to(f(*x.T), (n,)).astype(float), [str(s) for s in syms], true


def _exact(found, true, ranges=()) -> bool:
    """sympy proves found == true, with the variables whose range is positive declared positive
    (as the benchmark's SRBench judge does: c*m0/sqrt(c**2 - v**2) is m0/sqrt(1 - v**2/c**2)
    only for c > 0, and the data cannot tell more)."""
    if found is None:
        return False
    names = sorted(true.free_symbols, key=str)
    pos = {s: sympy.Symbol(s.name, positive=True) for s, (lo, _) in zip(names, ranges)
           if lo > 0} if ranges else {}
    by_name = {s.name: s for s in names}
    found = found.xreplace({s: by_name.get(s.name, s) for s in found.free_symbols})
    return sympy.simplify((found - true).xreplace(pos)) == 0


# ----------------------------------------------------------------------------- recovery

# (formula, names, ranges, where it must be found: "kan" = with the sparse-terms step switched
# off, so that the KAN path itself is shown to recover it; "terms" = by the terms step)
RECOVERY = [
    ("x*y", "x y", [(-1, 1), (-1, 1)], "kan"),
    ("exp(sin(pi*x)+y**2)", "x y", [(-1, 1), (-1, 1)], "kan"),
    ("q*v*B/m", "q v B m", [(1, 5)] * 4, "kan"),
    ("m0/sqrt(1-v**2/c**2)", "m0 v c", [(1, 5), (1, 2), (3, 10)], "terms"),  # 1/y**2
    ("sqrt(x**2+y**2)", "x y", [(1, 3), (1, 3)], "kan"),
    ("1/sqrt(x)", "x", [(1, 5)], "kan"),
]


@pytest.mark.slow
@pytest.mark.parametrize("expr,names,ranges,path", RECOVERY, ids=[r[0] for r in RECOVERY])
def test_recovers_exactly(expr, names, ranges, path):
    x, y, names, true = _data(expr, names, ranges)
    found = kanir.discover(x, y, names, budget_s=120, seed=0, progress=False,
                           terms=path == "terms")
    assert found.origin.startswith("terms") == (path == "terms"), found.origin
    rng = dict(zip(names, ranges))
    ordered = [rng[str(s)] for s in sorted(true.free_symbols, key=str)]
    assert _exact(found.formula, true, ordered), (found.formula, found.front)
    assert found.error < 1e-6
    assert any(_exact(f, true, ordered) for _, _, f in found.front)
    assert [s.name for s in found.steps][:3] == ["data", "surrogate", "tree"]


@pytest.mark.slow
def test_noisy_labels_keep_the_truth_on_the_front():
    x, y, names, true = _data("x*y + sin(z)", "x y z", [(-1, 1)] * 3)
    y = y + 1e-2 * y.std() * np.random.default_rng(1).standard_normal(len(y))
    found = kanir.discover(x, y, names, budget_s=120, seed=0, noise=1e-2, progress=False)
    assert any(_exact(f, true) for _, _, f in found.front), found.front


# ----------------------------------------------------------------------------- bad input


def _xy(n=50, d=2):
    x = np.random.default_rng(0).uniform(1, 2, (n, d))
    return x, x.sum(1)


def test_nan_row_is_named():
    x, y = _xy()
    x[7, 1] = np.nan
    with pytest.raises(DataError, match=r"row 7 .*column 'b'"):
        prepare(x, y, ["a", "b"])


def test_constant_column_is_named():
    x, y = _xy()
    x[:, 0] = 3.0
    with pytest.raises(DataError, match="column 'a' is constant"):
        prepare(x, y, ["a", "b"])


def test_one_row_and_shapes():
    x, y = _xy()
    with pytest.raises(DataError, match="at least 10 rows, got 1"):
        prepare(x[:1], y[:1])
    with pytest.raises(DataError, match="X has 50 rows but y has 49"):
        prepare(x, y[:49])
    with pytest.raises(DataError, match="y must be one column"):
        prepare(x, np.stack([y, y], 1))
    with pytest.raises(DataError, match="3 names for 2 columns"):
        prepare(x, y, ["a", "b", "c"])


def test_dataframe_names_and_target_column():
    pd = pytest.importorskip("pandas")
    x, y = _xy()
    df = pd.DataFrame({"u": x[:, 0], "w": x[:, 1], "out": y})
    xs, ys, names = prepare(df, "out")
    assert names == ("u", "w") and xs.shape == (50, 2) and np.array_equal(ys, y)
    with pytest.raises(DataError, match="target column 'nope' is not in the data"):
        prepare(df, "nope")
    df["s"] = ["a"] * 50
    with pytest.raises(DataError, match="column 's' is not numeric"):
        prepare(df, "out")


def test_parallel_options_are_checked():
    x, y = _xy()
    with pytest.raises(ArgumentError, match="n_jobs must be an integer >= 1 .*got 0"):
        kanir.discover(x, y, n_jobs=0)
    with pytest.raises(ArgumentError, match="scheduler must be a Dask scheduler address"):
        kanir.discover(x, y, scheduler=3, progress=False)


def test_missing_dask_names_the_extra(monkeypatch):
    x, y = _xy()
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import fails as if absent
    with pytest.raises(ArgumentError, match=r"needs dask\[distributed\].*kanir\[parallel\]"):
        kanir.discover(x, y, scheduler="tcp://127.0.0.1:1", progress=False)


def test_fit_stop_ends_training_and_records_it():
    x = torch.linspace(-1, 1, 40, dtype=torch.float64)[:, None]
    ds = {"train_input": x, "train_label": x ** 2, "test_input": x, "test_label": x ** 2}
    model = kanir.KAN([1, 2, 1], seed=0, dtype=torch.float64)
    calls = []
    hist = model.fit(ds, steps=20, log=0, progress=False, stop=lambda: calls.append(1) or
                     len(calls) >= 3)
    assert hist["stopped_early"] == 2 and hist["stopped_by"] == "stop"
    assert len(hist["train_loss"]) == 3 and len(calls) == 3
    hist = model.fit(ds, steps=4, log=0, progress=False, stop=lambda: False)
    assert len(hist["train_loss"]) == 4 and "stopped_by" not in hist
    with pytest.raises(ArgumentError, match="stop must be a function"):
        model.fit(ds, steps=2, log=0, progress=False, stop=True)


def test_budget_spent_before_any_formula(tmp_path, capsys):
    x, y, names, _ = _data("x*y", "x y", [(-1, 1), (-1, 1)], n=100)
    found = kanir.discover(x, y, names, budget_s=1e-3, seed=0, progress=False)
    assert not found.found and found.budget_spent and found.formula is None
    assert found.front == [] and found.decided_by == []
    # the surrogate task was skipped, or its fit stopped after one step; no structure started
    assert {s.name for s in found.steps} <= {"data", "surrogate", "tree", "choose"}
    report = found.report(tmp_path / "rep").read_text()
    assert "No formula found within the budget" in report
    path = tmp_path / "data.csv"
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header="x,y,z", comments="")
    capsys.readouterr()
    rc = main(["discover", str(path), "--target", "z", "--budget", "0.001", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 3 and out == "" and err == "no formula found within the budget\n"


def test_cli_jobs_flag_is_checked(tmp_path, capsys):
    path = tmp_path / "data.csv"
    path.write_text("x,y\n" + "".join(f"{i},{i * i}\n" for i in range(20)))
    assert main(["discover", str(path), "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err


def test_pareto_front_keeps_only_improvements():
    a, b = sympy.symbols("a b")
    cands = [Candidate(3, 0.5, a), Candidate(5, 0.6, a + b), Candidate(5, 0.1, a * b),
             Candidate(9, 0.1, a * b + 1), Candidate(11, 0.0, a * b + b)]
    front = pareto_front(cands)
    assert [(c.complexity, c.error) for c in front] == [(3, 0.5), (5, 0.1), (11, 0.0)]


# ----------------------------------------------------------------------------- runs


@pytest.mark.slow
def test_same_seed_same_formula_twice():
    x, y, names, true = _data("x*y", "x y", [(-1, 1), (-1, 1)], n=300)
    first = kanir.discover(x, y, names, budget_s=60, seed=3, progress=False)
    second = kanir.discover(x, y, names, budget_s=60, seed=3, progress=False)
    assert first.formula == second.formula == true
    assert [(c, e) for c, e, _ in first.front] == [(c, e) for c, e, _ in second.front]


@pytest.mark.slow
def test_cli_end_to_end(tmp_path, capsys):
    x, y, names, true = _data("x*y", "x y", [(-1, 1), (-1, 1)], n=300)
    path = tmp_path / "data.csv"
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header="x,y,z", comments="")
    rc = main(["discover", str(path), "--target", "z", "--budget", "60", "--no-terms",
               "--report", str(tmp_path / "rep")])
    out, err = capsys.readouterr()
    assert rc == 0
    assert sympy.sympify(out.strip().splitlines()[-1]) == true
    assert "[discover" in err and "surrogate" in err
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "Pareto front" in report and "x*y" in report
    assert "## How the result was decided" in report and "**tree**" in report
    files = {p.name for p in (tmp_path / "rep").iterdir()}
    assert {"report.md", "kan.png", "kan_fitted.png", "kan_pruned.png"} <= files
    assert "tree.svg" in files or "tree.gv" in files
    edges = sorted(f for f in files if f.startswith("edge_"))
    assert edges == ["edge_0_0_0.png", "edge_0_1_1.png"]  # mul(x, y): one edge per input
    for name in edges + ["kan_fitted.png"]:
        assert f"]({name})" in report


@pytest.mark.slow
def test_report_of_a_sparse_terms_formula(tmp_path):
    """A formula found by the terms step: the report names that step, and the KAN of the best
    formula is the formula compiled (kanpiler), evaluating exactly to the data."""
    x, y, names, true = _data("m0/sqrt(1-v**2/c**2)", "m0 v c", [(1, 5), (1, 2), (3, 10)], n=300)
    found = kanir.discover(x, y, names, budget_s=60, seed=0, progress=False)
    assert found.origin.startswith("terms 1/y**2")
    assert [s.name for s in found.decided_by] == ["terms", "choose"]
    pred = found.model(torch.tensor(x)).detach().numpy()[:, 0]
    assert np.allclose(pred, y, rtol=1e-9)
    report = found.report(tmp_path).read_text()
    assert "1. **terms**" in report and "(no model)" in report  # no fitted KAN for terms
    assert (tmp_path / "kan.png").exists()


def test_cli_bad_input_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("x,y\n1,2\n2,3\n")
    assert main(["discover", str(path), "--target", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    path.write_text("x,y\n1,a\n2,3\n")
    assert main(["discover", str(path), "--target", "y"]) == 2
    assert "error" in capsys.readouterr().err


# ----------------------------------------------------------------------------- parallel


def _runs(found):
    """Everything a run decided: each candidate's task, formula and held-out error."""
    return [(c.task, str(c.formula), c.error) for c in found.candidates]


@pytest.fixture(scope="module")
def positive_product():
    """x*y on [1, 3]: two surrogate tasks (y and log y) and several structures."""
    x, y, names, true = _data("x*y", "x y", [(1, 3), (1, 3)], n=300)
    local = kanir.discover(x, y, names, budget_s=600, seed=0, progress=False)
    return x, y, names, true, local


@pytest.mark.slow
def test_two_processes_equal_one(positive_product):
    x, y, names, true, local = positive_product
    assert local.formula == true and not local.budget_spent
    two = kanir.discover(x, y, names, budget_s=600, seed=0, progress=False, n_jobs=2)
    assert two.formula == local.formula
    assert two.front == local.front and _runs(two) == _runs(local)
    assert [(s.name, s.task, s.detail) for s in two.steps] == \
        [(s.name, s.task, s.detail) for s in local.steps]


@pytest.mark.slow
def test_dask_cluster_equals_local(positive_product):
    distributed = pytest.importorskip("dask.distributed")
    x, y, names, true, local = positive_product
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        on_client = kanir.discover(x, y, names, budget_s=600, seed=0, progress=False,
                                   scheduler=client)
        by_address = kanir.discover(x, y, names, budget_s=600, seed=0, progress=False,
                                    scheduler=cluster.scheduler_address)
    for found in (on_client, by_address):
        assert found.formula == local.formula == true
        assert found.front == local.front and _runs(found) == _runs(local)


def test_cli_passes_jobs_and_scheduler(tmp_path, capsys, monkeypatch):
    import kanir.workflows.discover as wd

    seen = {}

    def fake(x, y, names, **kw):
        seen.update(kw, names=names, rows=len(y))
        return wd.Discovery(sympy.Symbol("x") * 2, [], None, None, [], found=True)

    monkeypatch.setattr(wd, "discover", fake)
    path = tmp_path / "data.csv"
    path.write_text("x,y\n" + "".join(f"{i},{2 * i}\n" for i in range(20)))
    assert main(["discover", str(path), "--jobs", "3", "--scheduler", "tcp://h:8786",
                 "--quiet"]) == 0
    assert capsys.readouterr().out == "2*x\n"
    assert seen["n_jobs"] == 3 and seen["scheduler"] == "tcp://h:8786"
    assert seen["names"] == ["x"] and seen["rows"] == 20 and seen["progress"] is False
