"""Tests of kanir.symbolic.symfit: affine fits of library functions to edges, canonical forms, ranking."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import kanir.symbolic.symfit as symfit
from kanir.errors import DataError
from kanir.ir.library import DEFAULT_FIT_LIB, LIBRARY
from kanir.symbolic.symfit import AffineFitResult, eval_affine, fit_affine, fit_score, r2_score

T = torch.float64


def grid(lo, hi, n=400):
    return torch.linspace(lo, hi, n, dtype=T)


def noise(n, scale, seed=0):
    return scale * torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=T)


def fitted(result, name, edge=0):
    j = result.names.index(name)
    return result.params[edge, j].tolist(), float(result.r2[edge, j])


# --------------------------------------------------------------------------- recovery


def test_sin_recovery_exact_params():
    x = grid(-2, 2, 1000)
    y = 2.5 * torch.sin(1.7 * x - 0.3) + 0.2
    res = fit_affine(x, y)
    p, r2 = fitted(res, "sin")
    assert r2 > 0.9999
    assert p == pytest.approx([1.7, -0.3, 2.5, 0.2], abs=1e-7)
    assert res.best().name == "sin"


# (name, truth, x-range, canonical (a, b, c, d)) — canonical forms per the module docstring
RECOVERY = [
    ("exp", lambda x: 0.5 * torch.exp(1.3 * x + 0.4) - 1, (-2, 2),
     (1.3, 0.0, 0.5 * math.exp(0.4), -1.0)),
    ("x^2", lambda x: 3 * (x + 0.5) ** 2, (-2, 2), (1.0, 0.5, 3.0, 0.0)),
    ("x^2", lambda x: 3 * (-2 * x + 1) ** 2 - 1, (-2, 2), (1.0, -0.5, 12.0, -1.0)),
    ("1/x", lambda x: 3 / x + 1, (0.5, 2), (1.0, 0.0, 3.0, 1.0)),
    ("1/x", lambda x: 3 / (2 * x + 1) + 1, (0.5, 2), (1.0, 0.5, 1.5, 1.0)),
    ("log", lambda x: 2 * torch.log(3 * x + 1) - 1, (0.1, 3),
     (1.0, 1 / 3, 2.0, -1 + 2 * math.log(3))),
    ("log", lambda x: torch.log(-2 * x + 5), (-2, 2), (-1.0, 2.5, 1.0, math.log(2))),
    ("sqrt", lambda x: 1.5 * torch.sqrt(2 * x + 1), (0, 3), (1.0, 0.5, 1.5 * math.sqrt(2), 0.0)),
    ("tanh", lambda x: 2 * torch.tanh(-1.5 * x + 0.5), (-2, 2), (1.5, -0.5, -2.0, 0.0)),
    ("arctan", lambda x: -0.7 * torch.atan(2.2 * x - 1) + 3, (-2, 2), (2.2, -1.0, -0.7, 3.0)),
    ("x^3", lambda x: -2 * (0.5 * x - 0.3) ** 3, (-2, 2), (1.0, -0.6, -0.25, 0.0)),
    ("gaussian", lambda x: torch.exp(-((-1.3 * x + 0.4) ** 2)), (-2, 2), (1.3, -0.4, 1.0, 0.0)),
    ("cos", lambda x: 2 * torch.cos(-1.2 * x + 4.0), (-2, 2), (1.2, math.pi - 4.0, -2.0, 0.0)),
    ("arccos", lambda x: torch.acos(-0.4 * x + 0.1), (-2, 2), (0.4, -0.1, -1.0, math.pi)),
    ("sigmoid", lambda x: torch.sigmoid(-3 * x + 1), (-2, 2), (3.0, -1.0, -1.0, 1.0)),
]


@pytest.mark.parametrize("name,truth,rng,canon", RECOVERY, ids=[r[0] for r in RECOVERY])
def test_recovery_canonical_params(name, truth, rng, canon):
    x = grid(*rng)
    res = fit_affine(x, truth(x), lib=[name, "x", "sin"])
    p, r2 = fitted(res, name)
    assert r2 > 0.9999
    assert p == pytest.approx(canon, abs=1e-6)


def test_noisy_recovery_within_noise():
    x = grid(-2, 2, 800)
    y = 1.5 * torch.tanh(2 * x - 0.5) + 0.3 + noise(800, 0.01)
    p, r2 = fitted(fit_affine(x, y, lib=["tanh"]), "tanh")
    assert r2 > 0.999
    assert p == pytest.approx([2.0, -0.5, 1.5, 0.3], abs=0.03)


def test_batch_of_edges_each_picks_its_own_function():
    x = grid(-2, 2, 600).repeat(6, 1)
    truth = ["sin", "exp", "x^2", "tanh", "gaussian", "1/x"]
    y = torch.stack([
        1.3 * torch.sin(2.5 * x[0] + 0.4) - 0.5,
        0.7 * torch.exp(1.6 * x[1]) + 0.3,
        2 * (x[2] - 0.3) ** 2 - 1,
        3 * torch.tanh(4 * x[3] - 1),
        2 * torch.exp(-((2 * x[4] + 0.5) ** 2)) + 1,
        1 / (x[5] + 2.2),
    ])
    res = fit_affine(x, y)
    assert [res.best(e).name for e in range(6)] == truth
    assert res.params.shape == (6, len(DEFAULT_FIT_LIB), 4)
    assert res.r2.shape == (6, len(DEFAULT_FIT_LIB))


def test_reported_r2_matches_canonical_formula_for_every_function():
    """Canonicalization must not change the fitted curve: R² of c·f(a·x+b)+d is the one reported."""
    for lo, hi in [(0.5, 2.0), (-2.0, 2.0)]:
        x = grid(lo, hi)
        y = torch.sin(2 * x) + 0.3 * x**2 + noise(len(x), 0.01)
        res = fit_affine(x, y, lib=list(DEFAULT_FIT_LIB) + ["sinh", "arcsinh", "x^6", "x^1/3"])
        for j, name in enumerate(res.names):
            again = r2_score(y, eval_affine(name, res.params[0, j], x))
            assert float(again) == pytest.approx(float(res.r2[0, j]), abs=1e-9), name


def test_weights_ignore_zero_weight_outliers():
    x = grid(-1, 1, 300)
    y = 2 * torch.sin(3 * x + 0.2)
    w = torch.ones_like(x)
    y_bad = y.clone()
    y_bad[::10] += 50.0
    w[::10] = 0.0
    p, r2 = fitted(fit_affine(x, y_bad, lib=["sin"], weights=w), "sin")
    assert r2 > 0.9999
    assert p == pytest.approx([3.0, 0.2, 2.0, 0.0], abs=1e-6)


def test_refine_improves_on_grid_only():
    x = grid(-2, 2)
    y = 2.5 * torch.sin(1.7 * x - 0.3) + 0.2 + noise(len(x), 0.01)
    coarse = fit_affine(x, y, lib=["sin", "tanh"], refine=False, iteration=1)
    fine = fit_affine(x, y, lib=["sin", "tanh"])
    assert (fine.r2 >= coarse.r2 - 1e-12).all()
    assert float(fine.r2[0, 0]) > float(coarse.r2[0, 0])


# --------------------------------------------------------------------------- robustness

SINGULAR = ["1/x", "1/x^2", "1/x^5", "log", "sqrt", "1/sqrt(x)", "x^1.5", "arcsin", "arccos",
            "arctanh", "tan", "exp", "cosh", "sgn", "abs", "0", "x", "gaussian", "x^2", "sin"]


def assert_sane(res):
    assert not torch.isnan(res.r2).any()
    assert torch.isfinite(res.params).all()
    assert (res.r2 <= 1.0).all()
    fin = torch.isfinite(res.r2)
    assert (res.r2[~fin] == -math.inf).all()


def test_nan_free_on_hostile_inputs():
    n = 201
    x1 = grid(-1, 1, n)  # contains an exact 0
    xs = torch.stack([x1, x1, torch.zeros(n, dtype=T), torch.full((n,), 3.0, dtype=T), x1, x1,
                      1e3 * x1, x1, -x1.abs(), x1, 1e6 * x1])
    ys = torch.stack([1 / (x1.abs() + 1e-9), torch.full((n,), 2.5, dtype=T), x1, x1**2,
                      1e12 * torch.sin(x1), 1e-30 * x1**3, x1, 1e12 + torch.sin(x1),
                      torch.log1p(x1.abs()), noise(n, 1.0), 1e-300 * x1])
    res = fit_affine(xs, ys, lib=SINGULAR)
    assert_sane(res)
    for e in range(xs.shape[0]):
        assert len(res.ranking(e, topk=None)) == len(SINGULAR)
        assert math.isfinite(res.best(e).score)
    # huge y: the fit is scale-free
    j = res.names.index("sin")
    assert float(res.r2[4, j]) > 0.9999
    assert res.params[4, j].tolist() == pytest.approx([1.0, 0.0, 1e12, 0.0], rel=1e-6, abs=1e-3)


def test_constant_y_and_constant_x():
    n = 50
    x = torch.stack([grid(-1, 1, n), torch.full((n,), 0.5, dtype=T)])
    y = torch.stack([torch.full((n,), -3.0, dtype=T), grid(0, 1, n)])
    res = fit_affine(x, y, lib=SINGULAR)
    assert_sane(res)
    # constant y: every function fits with c = 0, d = y; R² = 1; '0' is simplest
    assert (res.r2[0] == 1.0).all()
    assert (res.params[0, :, 2] == 0).all()
    assert torch.allclose(res.params[0, :, 3], torch.tensor(-3.0, dtype=T))
    assert res.best(0).name == "0"
    # constant x, varying y: nothing explains y
    assert (res.r2[1] <= 1e-12).all()


def test_r2_score_batched_and_nan_free():
    y = torch.stack([grid(0, 1, 10), torch.ones(10, dtype=T), torch.ones(10, dtype=T)])
    yhat = torch.stack([grid(0, 1, 10), torch.ones(10, dtype=T), 2 * torch.ones(10, dtype=T)])
    assert r2_score(y, yhat).tolist() == [1.0, 1.0, 0.0]
    bad = yhat.clone()
    bad[0, 3] = float("nan")
    assert r2_score(y, bad)[0] == -math.inf
    assert float(r2_score(grid(0, 1, 10), torch.zeros(10, dtype=T))) < 0
    w = torch.zeros(10, dtype=T)
    w[:5] = 1
    partly = grid(0, 1, 10).clone()
    partly[5:] += 10
    assert float(r2_score(grid(0, 1, 10), partly, weights=w)) == pytest.approx(1.0)


def test_bad_input_raises():
    with pytest.raises(DataError):
        fit_affine(torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(DataError):
        fit_affine(torch.tensor([0.0, float("nan")]), torch.zeros(2))
    with pytest.raises(DataError):
        fit_affine(torch.zeros(4), torch.zeros(4), weights=-torch.ones(4))


def test_memory_chunks_give_identical_results(monkeypatch):
    x = grid(-2, 2, 300).repeat(3, 1) * torch.tensor([[1.0], [0.5], [1.5]], dtype=T)
    y = torch.sin(2 * x + 0.3) + x**2
    lib = ["sin", "x^2", "tanh", "exp"]
    whole = fit_affine(x, y, lib=lib)
    monkeypatch.setattr(symfit, "_CHUNK_ELEMS", 5000)
    monkeypatch.setattr(symfit, "_BLOCK_SAMPLES", 1000)
    chunked = fit_affine(x, y, lib=lib)
    assert torch.allclose(whole.r2, chunked.r2, rtol=0, atol=1e-10)  # up to summation order
    assert torch.allclose(whole.params, chunked.params, rtol=1e-7, atol=1e-7)


# --------------------------------------------------------------------------- canonical forms


def test_canonical_params_stable_across_grids_and_runs():
    x = grid(-2, 2)
    y = 3 * (x + 0.5) ** 2
    ref = fit_affine(x, y, lib=["x^2", "gaussian", "cos"])
    for kw in [dict(grid_number=51), dict(grid_number=151, iteration=2), dict(grid_samples=200),
               dict(a_range=(-5, 5), b_range=(-3, 3)), {}]:
        other = fit_affine(x, y, lib=["x^2", "gaussian", "cos"], **kw)
        assert torch.allclose(other.params[:, 0], ref.params[:, 0], atol=1e-9)
    assert ref.params[0, 0].tolist() == pytest.approx([1.0, 0.5, 3.0, 0.0], abs=1e-9)


@pytest.mark.parametrize("name", ["cos", "gaussian", "cosh", "abs", "x^2", "x^4"])
def test_even_functions_have_nonnegative_a(name):
    x = grid(-1, 1)
    fn = LIBRARY[name]
    y = 1.5 * fn.torch(-1.3 * x + 0.2) - 0.4
    p, r2 = fitted(fit_affine(x, y, lib=[name]), name)
    assert r2 > 0.9999 and p[0] > 0
    assert r2_score(y, eval_affine(name, p, x)) > 0.9999


@pytest.mark.parametrize("name", ["sin", "cos", "tan"])
def test_periodic_shift_is_folded(name):
    x = grid(-1, 1)
    y = LIBRARY[name].torch(0.8 * x + 2.9)
    p, r2 = fitted(fit_affine(x, y, lib=[name]), name)
    assert r2 > 0.9999
    assert -math.pi / 2 < p[1] <= math.pi / 2
    assert p[1] == pytest.approx(2.9 - math.pi, abs=1e-6)


def test_rules_of_the_default_library():
    kinds = {n: symfit._rule(LIBRARY[n], symfit.Y_TH) for n in DEFAULT_FIT_LIB}
    assert kinds["0"].kind == "const" and kinds["x"].kind == "linear"
    assert kinds["exp"].kind == "shift"
    for n in ["x^2", "x^3", "1/x", "1/x^5", "abs", "sgn"]:
        assert kinds[n].kind == "scale" and kinds[n].signs == (1.0,)
    for n in ["sqrt", "x^1.5", "1/sqrt(x)", "log"]:
        assert kinds[n].kind == "scale" and kinds[n].signs == (1.0, -1.0)
    general = [n for n, r in kinds.items() if r.kind == "general"]
    assert set(general) == {"sin", "cos", "tan", "tanh", "arcsin", "arccos", "arctan", "arctanh",
                            "gaussian", "cosh", "sigmoid"}
    for n in general:  # every general default is even, odd, or odd up to a constant
        assert kinds[n].sym is not None, n
    assert kinds["arccos"].sym == pytest.approx((math.pi, -1.0))
    assert kinds["sigmoid"].sym == pytest.approx((1.0, -1.0))
    assert kinds["sin"].period == (math.pi, -1.0) and kinds["tan"].period == (math.pi, 1.0)


# --------------------------------------------------------------------------- scoring and ranking


def test_score_definition():
    r2 = torch.tensor([1.0, 0.99, -5.0, -math.inf], dtype=T)
    cplx = torch.tensor([2.0, 1.0, 0.0, 0.0], dtype=T)
    s = fit_score(r2, cplx, 0.8)
    assert float(s[0]) == pytest.approx(0.8 * 2 + 0.2 * math.log2(1e-5))
    assert float(s[1]) == pytest.approx(0.8 * 1 + 0.2 * math.log2(0.01 + 1e-5))
    assert float(s[2]) == pytest.approx(0.2 * math.log2(1 + 1e-5))  # 1 - R² clipped to 1
    assert s[3] == math.inf
    # x² (complexity 2) at R² = 0.9999 still beats a perfect x⁴ (complexity 3) at w = 0.8 ...
    x2, x4 = fit_score(torch.tensor([0.9999, 1.0]), torch.tensor([2.0, 3.0]), 0.8)
    assert x2 < x4
    # ... and loses at w = 0 (pure R²)
    x2, x4 = fit_score(torch.tensor([0.9999, 1.0]), torch.tensor([2.0, 3.0]), 0.0)
    assert x4 < x2


def test_simple_beats_complex_when_fits_are_close():
    x = grid(0, 1, 300)
    y = (x + 3) ** 4  # x^4 fits exactly, x^2 to R² ≈ 0.99997
    res = fit_affine(x, y, lib=["x^4", "x^2"])
    r2 = dict(zip(res.names, res.r2[0].tolist()))
    assert r2["x^2"] > 0.9999 and r2["x^4"] > r2["x^2"]
    assert [r.name for r in res.ranking(0, weight_simple=0.8)] == ["x^2", "x^4"]
    assert [r.name for r in res.ranking(0, weight_simple=0.0)] == ["x^4", "x^2"]


def test_weight_zero_ranks_by_r2():
    x = grid(-2, 2)
    y = torch.sin(2 * x) + 0.5 * x + noise(len(x), 0.05)
    res = fit_affine(x, y)
    r2 = [r.r2 for r in res.ranking(0, topk=None, weight_simple=0.0)]
    assert all(hi >= lo - 1e-8 for hi, lo in zip(r2, r2[1:]))  # equal to rounding: ties
    assert r2[0] == max(r2)


def test_pendulum_cosine_edge_lists_cos_first():
    x = grid(-math.pi, math.pi, 500)
    y = -9.8 * torch.cos(x) + 9.8
    res = fit_affine(x, y)
    rows = res.ranking(0, topk=3)
    assert rows[0].name == "cos"
    assert [rows[0].a, rows[0].b, rows[0].c, rows[0].d] == pytest.approx([1, 0, -9.8, 9.8],
                                                                         abs=1e-6)
    assert rows[1].name == "sin" and rows[1].b == pytest.approx(math.pi / 2, abs=1e-6)


def test_tie_break_complexity_then_b_then_name():
    params = torch.tensor([[[1.0, 0.3, 1, 0], [1.0, -0.1, 1, 0], [1.0, 0.1, 1, 0],
                            [1.0, 0.0, 1, 0]]], dtype=T)
    res = AffineFitResult(params, torch.ones(1, 4, dtype=T), ["b", "c", "a", "d"],
                          torch.tensor([2.0, 2.0, 2.0, 1.0], dtype=T))
    assert [r.name for r in res.ranking(0, topk=None, weight_simple=0.0)] == ["d", "a", "c", "b"]
    assert res.best(0, weight_simple=0.0).name == "d"


# --------------------------------------------------------------------------- property


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(["sin", "tanh", "exp", "x^2", "gaussian", "x^3", "arctan"]),
    a=st.floats(0.5, 3.0), sa=st.sampled_from([-1.0, 1.0]),
    b=st.floats(-1.0, 1.0),
    c=st.floats(0.5, 3.0), sc=st.sampled_from([-1.0, 1.0]),
    d=st.floats(-1.0, 1.0),
)
def test_property_random_affine_params_are_recovered(name, a, sa, b, c, sc, d):
    x = grid(-2, 2, 200)
    y = sc * c * LIBRARY[name].torch(sa * a * x + b) + d
    res = fit_affine(x, y, lib=[name])
    assert float(res.r2[0, 0]) > 0.999
    assert torch.isfinite(res.params).all()


def test_zooms_and_refinement_stay_in_the_ranges():
    x = grid(0, 1, 200)
    res = fit_affine(x, x**2, lib=["sin", "tanh", "x^3", "exp"], a_range=(2, 5), b_range=(-1, 3))
    a, b = res.params[0, :, 0], res.params[0, :, 1]
    keep = torch.tensor([True, True, False, True])  # powers have a = ±1 whatever a_range
    assert ((a[keep] >= 2) & (a[keep] <= 5)).all()  # sin would like a → 0 (≈ a quadratic)
    assert float(a[2]) == 1.0
    assert float(a[0]) == pytest.approx(2.0)
    assert ((b[1:3] >= -1) & (b[1:3] <= 3)).all()  # tanh, x^3 (sin's b is folded mod π)
    assert res.best(weight_simple=0.0).name in {"sin", "x^3", "tanh", "exp"}
    default = fit_affine(x, torch.exp(-3 * x) * torch.sin(9 * x), lib=list(DEFAULT_FIT_LIB))
    rows = default.ranking(0, topk=None)
    assert all(-10 - 1e-9 <= r.a <= 10 + 1e-9 for r in rows)
    assert all(-10 - 1e-9 <= r.b <= 10 + 1e-9 for r in rows if r.name != "exp")
