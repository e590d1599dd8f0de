"""The symbolic methods of kanir.KAN: suggest/fix/unfix/auto_symbolic and formula (kanir's
rich read-back); pykan's calling conventions are in test_pykan_symbolic.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
import torch

import kanir
from kanir.backends.sympy import SymbolicExportError
from kanir.errors import KanirError
from kanir.symbolic.report import SymbolicReport
from kanir.train.training import create_dataset

T = torch.float64


def trained(f, width, n_var, steps=20, seed=0, ranges=(-1, 1), **kw):
    ds = create_dataset(f, n_var=n_var, ranges=ranges, train_num=400, test_num=100, seed=seed,
                        dtype=T)
    m = kanir.KAN(width=width, grid=5, k=3, seed=seed, device="cpu", dtype=T, **kw)
    m.fit(ds, steps=steps, progress=False)
    return m, ds


@pytest.fixture(scope="module")
def sin_model():
    """[2, 1]: sin(2x) + y² (two spline edges), trained briefly."""
    m, ds = trained(lambda x: torch.sin(2 * x[:, [0]]) + x[:, [1]] ** 2, [2, 1], 2, steps=15)
    return m, ds


def test_suggest_prints_a_table_and_candidates_returns_rows(sin_model, capsys):
    m, _ = sin_model
    name, fun, r2, c = m.suggest_symbolic(0, 0, 0, lib=["x", "x^2", "sin", "tanh"], topk=3)
    out = capsys.readouterr().out
    assert name == "sin" and r2 > 0.999 and c == 2
    assert "function" in out and "sin" in out and "complexity" in out
    rows = m.symbolic_candidates(0, 0, 0, lib=["x", "x^2", "sin", "tanh"], topk=3)
    assert capsys.readouterr().out == ""
    assert len(rows) == 3 and rows[0].name == "sin" and rows[0].r2 == r2
    assert [r.score for r in rows] == sorted(r.score for r in rows)
    m.suggest_symbolic(0, 0, 0, lib=["x", "sin"], verbose=0)
    assert capsys.readouterr().out == ""


def test_fix_unfix_keep_the_model_and_return_self(sin_model, capsys):
    m = sin_model[0].copy()
    xs = m.cache_x
    before = m(xs).detach()
    r2 = m.fix_symbolic(0, 0, 0, "sin", verbose=0)
    assert r2 == m.last_fix.r2 and m.last_fix.r2 > 0.999 and m.graph.edge(0, 0, 0).kind == "symbolic"
    assert m.graph.edge(0, 0, 0).spline is not None  # kept for unfix
    assert torch.allclose(m(xs).detach(), before, atol=0.02)
    assert m.unfix_symbolic(0, 0, 0) is m
    assert torch.equal(m(xs).detach(), before)  # exactly the spline again
    assert m.fix_symbolic(0, 1, 0, "x^2", fit_params=False, verbose=1) is None
    assert "fixed: x^2" in capsys.readouterr().out
    assert m.graph.edge(0, 1, 0).symbolic.params == (1.0, 0.0, 1.0, 0.0)
    m.fix_symbolic(0, 0, 0, "sin", params=(2, 0, 1, 0), verbose=0)
    assert m.unfix() is m and all(a.kind == "spline" for *_, a in m.graph.act_edges())
    assert torch.equal(m(xs).detach(), before)


def test_auto_symbolic_report_and_trainable_affines(sin_model):
    m = sin_model[0].copy()
    ds = sin_model[1]
    rep = m.auto_symbolic(lib=["x", "x^2", "sin", "exp"], verbose=0)
    assert isinstance(rep, SymbolicReport) and m.symbolic_report is rep
    assert rep.as_dict() == {(0, 0, 0): "sin", (0, 1, 0): "x^2"}
    layer = m.net.layers[0]
    assert any(p is layer.sym_affine for p in m.parameters()) and layer.sym_affine.requires_grad
    p0 = layer.sym_affine.detach().clone()
    perturbed = p0.clone()
    perturbed[0, 0, 0] += 0.05  # spoil a: training must pull it back
    with torch.no_grad():
        layer.sym_affine.copy_(perturbed)
    hist = m.fit(ds, steps=10, progress=False, update_grid=False)
    assert hist["train_rmse"][-1] < 1e-6
    assert abs(float(layer.sym_affine[0, 0, 0].detach()) - 2.0) < 1e-6


def test_formula_names_vars_and_equals_model(sin_model):
    m = sin_model[0].copy()
    m.auto_symbolic(lib=["x", "x^2", "sin"], verbose=0)
    raw = m.formula(snap=False, floating_digit=None, simplify=False)
    assert [str(s) for s in raw.variables] == ["x_1", "x_2"]
    xs = m.cache_x[:50]
    f = sympy.lambdify(raw.variables, raw[0], "numpy")
    np.testing.assert_allclose(f(*xs.numpy().T), m(xs).detach().numpy()[:, 0], rtol=1e-12)
    ds = sin_model[1]
    named = m.formula(var=["a", "b"], x=ds["train_input"], y=ds["train_label"])
    a, b = sympy.symbols("a b")
    assert named[0] == sympy.sin(2 * a) + b**2
    assert named.fits[0].exact
    with pytest.raises(KanirError, match="one name per input"):
        m.formula(var=["a"])


def test_formula_with_spline_edges_names_them(sin_model):
    m = sin_model[0].copy()
    m.fix_symbolic(0, 0, 0, "sin", verbose=0)
    with pytest.raises(SymbolicExportError, match=r"\(0,1,0\)"):
        m.symbolic_formula()


def test_methods_need_data():
    m = kanir.KAN(width=[2, 1], seed=0, device="cpu")
    with pytest.raises(KanirError, match="needs data"):
        m.auto_symbolic(verbose=0)
    with pytest.raises(KanirError, match="needs data"):
        m.suggest_symbolic(0, 0, 0, verbose=0)
    m.fix_symbolic(0, 0, 0, "sin", fit_params=False, verbose=0)  # no data needed
    m.fix_symbolic(0, 1, 0, "x", params=(1, 0, 2, 0), verbose=0)
    (f,) = m.formula()  # no data: snap_round only
    x1, x2 = sympy.symbols("x_1 x_2")
    assert f == sympy.sin(x1) + 2 * x2


def test_x_times_y_is_exactly_x_times_y():
    """f = x·y with [2,[0,1],1]: the formula is x*y exactly (data-checked snapping)."""
    m, ds = trained(lambda x: x[:, [0]] * x[:, [1]], [2, [0, 1], 1], 2, steps=20)
    rep = m.auto_symbolic(verbose=0)
    assert not rep.kept
    m.fit(ds, steps=10, progress=False, update_grid=False)
    (f,) = m.formula(x=ds["train_input"], y=ds["train_label"])
    x1, x2 = sympy.symbols("x_1 x_2")
    assert f == x1 * x2


def test_cosine_edge_suggests_cos_first():
    """Fig. 11's pendulum: an edge trained to a cosine lists cos first."""
    m, _ = trained(lambda x: torch.cos(2 * x), [1, 1], 1, steps=15, ranges=(-2, 2))
    rows = m.symbolic_candidates(0, 0, 0)
    assert rows[0].name == "cos" and rows[0].r2 > 0.999
    assert rows[0].a == pytest.approx(2, abs=1e-2) and abs(rows[0].b) < 1e-2


def test_nan_and_zero_division_inputs_never_crash():
    """pykan #174/#286/#289/#480: NaN and division by zero in the symbolic pipeline."""
    m, ds = trained(lambda x: x[:, [0]] + 0.0 * x[:, [1]], [2, 1], 2, steps=5)
    bad = ds["train_input"].clone()
    bad[3, 0] = float("nan")
    with pytest.raises(KanirError, match="NaN"):
        m.auto_symbolic(x=bad, verbose=0)
    m.fix_symbolic(0, 0, 0, "1/x", params=(1, 0, 1, 0), verbose=0)
    m.fix_symbolic(0, 1, 0, "x", params=(1, 0, 0, 0), verbose=0)
    xs = torch.tensor([[0.0, 1.0], [0.5, 1.0], [1.0, 1.0]], dtype=T)  # a pole at a sample
    fits = m.formula(x=xs)
    x1 = sympy.Symbol("x_1")
    assert sympy.simplify(fits[0] - 1 / x1) == 0
    assert math.isnan(fits.fits[0].rmse) or fits.fits[0].rmse >= 0


def test_constant_input_column_end_to_end():
    """pykan #217/#287: a constant input column."""
    ds = create_dataset(lambda x: torch.sin(2 * x[:, [0]]), n_var=2, train_num=300, test_num=50,
                        dtype=T)
    for k in ("train_input", "test_input"):
        ds[k][:, 1] = 0.7
    m = kanir.KAN(width=[2, 1], grid=5, k=3, seed=0, device="cpu", dtype=T)
    m.fit(ds, steps=10, progress=False)
    rep = m.auto_symbolic(lib=["x", "sin", "0", "log", "1/x"], verbose=0)
    assert rep[(0, 0, 0)].fun == "sin" and not rep.kept
    (f,) = m.formula(x=ds["train_input"], y=ds["train_label"])
    assert sympy.Symbol("x_1") in f.free_symbols
    assert all(math.isfinite(float(v)) for v in f.atoms(sympy.Float))


def _slow_formula():
    """sympy.simplify ran for minutes on this 41-operation formula with floats (a Feynman run)."""
    x, y, z = sympy.symbols("x y z")
    return 412.7 - 422.5 * sympy.cos(0.003183 * x**2 * y + 0.001186 * x**2 - 0.002167 * x * y**2
                                     + 0.01102 * x * y * z + 0.005243 * x * y + 0.0125 * x * z
                                     + 0.003678 * x - 0.0009466 * y**2 * z + 0.003061 * y**2
                                     - 0.001329 * y * z**2 + 0.005055 * y * z - 0.004746 * y)


def _no_simplify(*args, **kwargs):
    raise AssertionError("sympy.simplify must not run outside the budget")


def test_auto_simplify_skips_formulas_over_the_operation_budget(monkeypatch):
    """No timer: simplify="auto" never starts sympy.simplify on a formula over its budget."""
    from kanir.symbolic import simplify as simp

    x = sympy.Symbol("x")
    huge = sum(sympy.Rational(k, 7) * sympy.sin(k * x) ** 2 for k in range(1, 400))
    slow = _slow_formula()
    assert sympy.count_ops(huge) > simp.MAX_OPS_EXACT and not simp.within_budget(huge)
    assert sympy.count_ops(slow) > simp.MAX_OPS_FLOAT and not simp.within_budget(slow)
    monkeypatch.setattr(simp.sympy, "simplify", _no_simplify)
    assert simp.simplify_keeping_exact(huge) is huge  # the cap path: returned untouched
    assert simp.simplify_keeping_exact(slow, "auto") is slow
    assert simp.simplify_keeping_exact(sympy.sin(x) ** 2, False) == sympy.sin(x) ** 2


def test_simplify_true_runs_whatever_the_size_and_false_never(monkeypatch):
    from kanir.symbolic import simplify as simp

    x = sympy.Symbol("x")
    calls = []
    monkeypatch.setattr(simp.sympy, "simplify", lambda e: calls.append(e) or e)
    huge = sum(sympy.Rational(k, 7) * sympy.sin(k * x) ** 2 for k in range(1, 400))
    simp.simplify_keeping_exact(huge, True)
    simp.simplify_keeping_exact(huge, False)
    assert calls == [huge]


def test_simplify_mode_is_checked():
    from kanir.errors import ArgumentError
    from kanir.symbolic.simplify import simplify_keeping_exact

    with pytest.raises(ArgumentError, match="simplify must be True, False or 'auto'.*got 'yes'"):
        simplify_keeping_exact(sympy.Symbol("x"), "yes")
    m = kanir.KAN(width=[1, 1], grid=3, k=3, seed=0)
    m.fix_symbolic(0, 0, 0, "x", fit_params_bool=False, verbose=False)
    with pytest.raises(ArgumentError, match="simplify must be"):
        m.formula(simplify=1)


def test_simplify_works_outside_the_main_thread():
    """The old SIGALRM timer only acted in the main thread; the budget holds in any thread."""
    import threading

    from kanir.symbolic.simplify import simplify_keeping_exact

    x = sympy.Symbol("x")
    e = 0.5 * sympy.sin(x) ** 2 + 0.5 * sympy.cos(x) ** 2 + sympy.Rational(1, 3) * x
    slow = _slow_formula()
    results = {}

    def work():
        results["small"] = simplify_keeping_exact(e)
        results["slow"] = simplify_keeping_exact(slow)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert results["small"] == simplify_keeping_exact(e) == x / 3 + sympy.Float(0.5)
    assert results["slow"] is slow
