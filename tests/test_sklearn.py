"""kanir.sklearn: scikit-learn's estimator checks, Pipeline/GridSearchCV/cross_val_score, and the
formula of a symbolified regressor."""

import inspect
import subprocess
import sys

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install kanir[sklearn])")

import sympy  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import kanir  # noqa: E402
from kanir.sklearn import EXPECTED_FAILED_CHECKS, KANClassifier, KANRegressor  # noqa: E402


def _expected_failures(_est):
    return EXPECTED_FAILED_CHECKS


# scikit-learn >= 1.6 takes the known failures (with reasons) as an argument; there are none
_XFAIL = ({"expected_failed_checks": _expected_failures}
          if "expected_failed_checks" in inspect.signature(parametrize_with_checks).parameters
          else {})


@parametrize_with_checks([KANRegressor(steps=5), KANClassifier(steps=5)], **_XFAIL)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_import_kanir_does_not_import_sklearn():
    code = "import sys, kanir; kanir.KAN; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 2))
    return X, X[:, 0] ** 2 + 0.5 * X[:, 1]


def test_pipeline_in_grid_search_over_lamb():
    X, y = _data()
    pipe = make_pipeline(StandardScaler(), KANRegressor(hidden=(3,), grid=3, steps=5))
    search = GridSearchCV(pipe, {"kanregressor__lamb": [0.0, 1e-3]}, cv=2).fit(X, y)
    assert search.best_params_["kanregressor__lamb"] in (0.0, 1e-3)
    assert search.predict(X).shape == (120,)
    assert search.best_estimator_.score(X, y) > 0.9


def test_cross_val_score_runs():
    X, y = _data()
    scores = cross_val_score(KANRegressor(hidden=(3,), grid=3, steps=10), X, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.9)


def test_multi_output_regression_and_params():
    X, y = _data()
    Y = np.stack([y, X[:, 0] - X[:, 1]], axis=1)
    reg = KANRegressor(hidden=(3,), grid=3, steps=10).fit(X, Y)
    assert reg.predict(X).shape == (120, 2)
    assert reg.n_features_in_ == 2 and reg.model_.width_spec == [2, 3, 2]
    assert reg.get_params()["hidden"] == (3,)
    assert sklearn.base.clone(reg.set_params(lamb=0.01)).lamb == 0.01


def test_dataframe_names_become_input_names():
    pd = pytest.importorskip("pandas", reason="pandas is not installed")
    X, y = _data()
    df = pd.DataFrame(X, columns=["mass", "speed"])
    reg = KANRegressor(hidden=(2,), grid=3, steps=3).fit(df, y)
    assert list(reg.feature_names_in_) == ["mass", "speed"]
    assert reg.model_.input_names == ["mass", "speed"]


def test_classifier_probabilities():
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (150, 2))
    y = np.where(X[:, 0] + X[:, 1] > 0, "up", "down")
    clf = KANClassifier(hidden=(2,), grid=3, steps=10).fit(X, y)
    p = clf.predict_proba(X)
    assert list(clf.classes_) == ["down", "up"]
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    assert clf.score(X, y) > 0.95


def test_bad_input_is_a_kanir_error():
    reg = KANRegressor(steps=1)
    X, y = _data()
    with pytest.raises(kanir.KanirError, match="NaN"):
        reg.fit(np.where(X > 0.9, np.nan, X), y)
    with pytest.raises(kanir.KanirError, match="does not fit the data"):
        KANRegressor(width=[3, 2, 1], steps=1).fit(X, y)
    with pytest.raises(kanir.KanirError, match="symbolify"):
        reg.sympy()
    with pytest.raises(kanir.KanirError, match="2 classes"):
        KANClassifier(steps=1).fit(X, np.zeros(120))


def test_symbolify_gives_the_exact_formula_of_a_linear_law():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (100, 2))
    reg = KANRegressor(width=[2, 1], grid=3, steps=20).fit(X, 2 * X[:, 0] + X[:, 1])
    x1, x2 = sympy.symbols("x_1 x_2")
    assert reg.symbolify(lib=["x"]).sympy() == 2 * x1 + x2
    assert reg.formula_ == [2 * x1 + x2]


@pytest.mark.slow
def test_symbolify_recovers_x_times_y_plus_sin_z():
    """One sum node for sin(z), one mult node for x*y; light sparsity, prune, symbolic fit,
    a short refit of the constants: the formula is exact."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (200, 3))
    y = X[:, 0] * X[:, 1] + np.sin(X[:, 2])
    reg = KANRegressor(hidden=([1, 1],), grid=5, steps=50, lamb=0.001, seed=2).fit(X, y)
    reg.symbolify(X, y, lib=["x", "sin"])
    x1, x2, x3 = sympy.symbols("x_1 x_2 x_3")
    assert sympy.simplify(reg.sympy() - (x1 * x2 + sympy.sin(x3))) == 0
    np.testing.assert_allclose(reg.predict(X), y, atol=1e-8)


def test_symbolify_needs_both_x_and_y():
    X, y = _data()
    reg = KANRegressor(width=[2, 1], grid=3, steps=2).fit(X, y)
    with pytest.raises(kanir.KanirError, match="give both X and y"):
        reg.symbolify(X)


def test_classifier_symbolify_refits_with_labels():
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (100, 2))
    y = np.where(X[:, 0] > 0, "right", "left")
    clf = KANClassifier(width=[2, 2], grid=3, steps=10).fit(X, y)
    clf.symbolify(X, y, lib=["x"], prune=False, refit_steps=5)
    assert len(clf.formula_) == 2 and clf.score(X, y) > 0.95
    with pytest.raises(kanir.KanirError, match="classes \\['up'\\] that fit did not see"):
        clf.symbolify(X, np.where(X[:, 0] > 0, "up", "left"))
