"""scikit-learn estimators around :class:`kanir.KAN`: ``KANRegressor`` and ``KANClassifier``.

They follow scikit-learn's contract (``__init__`` only stores its arguments; ``fit`` validates,
trains and sets attributes ending in ``_``), so they work in ``Pipeline``, ``GridSearchCV`` and
``cross_val_score``. After fitting, ``model_`` is the trained KAN; ``symbolify()`` prunes it,
fixes every edge to a library function and sets ``formula_`` (one sympy expression per output,
over ``feature_names_in_`` when X was a DataFrame with identifier column names).

scikit-learn is an optional extra (``pip install kanir[sklearn]``); ``import kanir`` never
imports this module.
"""

from __future__ import annotations

import numpy as np
import torch

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    from kanir.errors import KanirError

    raise KanirError("kanir.sklearn needs scikit-learn: pip install 'kanir[sklearn]' "
                     f"(import failed: {exc})") from None

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate
except ImportError:  # pragma: no cover - older scikit-learn
    def _sk_validate(est, *args, **kw):
        return est._validate_data(*args, **kw)

from kanir.errors import DataError, InputTypeError, KanirError

__all__ = ["KANRegressor", "KANClassifier", "EXPECTED_FAILED_CHECKS"]

# checks of sklearn.utils.estimator_checks these estimators are known to fail, with the reason
# (none today; pass this to parametrize_with_checks(expected_failed_checks=...) if one appears)
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


def _validate(est, X, y="no_validation", reset: bool = True, **kw):
    """scikit-learn's validation, with its errors re-raised as kanir errors (same message)."""
    try:
        return _sk_validate(est, X, y, reset=reset, dtype=np.float64, **kw)
    except TypeError as e:
        raise InputTypeError(str(e)) from None
    except ValueError as e:
        if isinstance(e, KanirError):
            raise
        raise DataError(str(e)) from None


def formulas(model) -> list:
    """The model's formulas (one sympy expression per output), whichever API the KAN offers:
    ``model.formula()`` (rich result) when present, else ``model.symbolic_formula()``, whose
    result may be pykan's pair ``(formulas, variables)``."""
    method = getattr(model, "formula", None)
    res = method() if callable(method) else model.symbolic_formula()
    if isinstance(res, tuple):
        res = res[0]
    return list(res)


class _KANEstimator(BaseEstimator):
    """Parameters and training shared by the regressor and the classifier."""

    def __init__(self, hidden=(5,), width=None, grid: int = 5, k: int = 3, mult_arity=2,
                 steps: int = 50, opt: str = "LBFGS", lr: float = 1.0, lamb: float = 0.0,
                 lamb_entropy: float = 2.0, batch: int = -1, update_grid: bool = True,
                 base_fun: str = "silu", seed: int = 0, dtype: str = "float64",
                 device: str = "cpu"):
        self.hidden = hidden
        self.width = width
        self.grid = grid
        self.k = k
        self.mult_arity = mult_arity
        self.steps = steps
        self.opt = opt
        self.lr = lr
        self.lamb = lamb
        self.lamb_entropy = lamb_entropy
        self.batch = batch
        self.update_grid = update_grid
        self.base_fun = base_fun
        self.seed = seed
        self.dtype = dtype
        self.device = device

    # ------------------------------------------------------------------ building and training
    def _width(self, n_in: int, n_out: int) -> list:
        if self.width is not None:
            width = list(self.width)
            first = width[0] if not isinstance(width[0], list | tuple) else width[0][0]
            last = width[-1] if not isinstance(width[-1], list | tuple) else width[-1][0]
            if first != n_in or last != n_out:
                raise DataError(f"width {width} does not fit the data: X has {n_in} feature(s) "
                                f"and there are {n_out} output(s); give hidden=... instead, or "
                                f"a width that starts with {n_in} and ends with {n_out}")
            return width
        hidden = [self.hidden] if isinstance(self.hidden, int) else list(self.hidden)
        return [n_in, *hidden, n_out]

    def _torch_dtype(self) -> torch.dtype:
        names = {"float64": torch.float64, "float32": torch.float32}
        if isinstance(self.dtype, torch.dtype):
            return self.dtype
        if self.dtype not in names:
            raise KanirError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        return names[self.dtype]

    def _input_names(self) -> list[str] | None:
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return None
        names = [str(n) for n in names]
        ok = all(n.isidentifier() for n in names) and len(set(names)) == len(names)
        return names if ok else None

    def _train(self, X: np.ndarray, Y: np.ndarray, loss_fn=None) -> None:
        from kanir.model.kan import KAN

        dtype = self._torch_dtype()
        model = KAN(self._width(X.shape[1], Y.shape[1]), grid=self.grid, k=self.k,
                    mult_arity=self.mult_arity, seed=self.seed, base_fun=self.base_fun,
                    input_names=self._input_names(), device=self.device, dtype=dtype,
                    versions=False)
        x = torch.tensor(X, dtype=dtype, device=self.device)
        y = torch.tensor(Y, dtype=dtype, device=self.device)
        data = {"train_input": x, "train_label": y, "test_input": x, "test_label": y}
        self.history_ = model.fit(data, opt=self.opt, steps=self.steps, lr=self.lr,
                                  lamb=self.lamb, lamb_entropy=self.lamb_entropy,
                                  batch=self.batch, update_grid=self.update_grid,
                                  loss_fn=loss_fn, seed=self.seed, progress=False)
        self.model_ = model

    def _raw_predict(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = _validate(self, X, reset=False)
        m = self.model_
        with torch.no_grad():
            out = m(torch.tensor(X, dtype=m.dtype, device=m.device))
        return out.detach().to("cpu", torch.float64).numpy()

    # ------------------------------------------------------------------ formulas
    def symbolify(self, X=None, y=None, lib=None, prune: bool = True, node_th: float = 1e-2,
                  edge_th: float = 3e-2, refit_steps: int = 20, r2_threshold: float = 0.0,
                  weight_simple: float = 0.8):
        """Prune the fitted KAN (when ``prune``, with ``KAN.prune``'s thresholds), fix every
        edge to its best function of ``lib`` (default kanir's library), and, given the training
        data ``X, y``, refit the functions' constants for ``refit_steps`` steps (pykan's
        workflow: this is what makes constants exact); sets ``formula_`` and returns self."""
        check_is_fitted(self, "model_")
        if (X is None) != (y is None):
            raise KanirError("symbolify refits on the training data: give both X and y, or "
                             "neither")
        if prune:
            self.model_.prune(node_th=node_th, edge_th=edge_th)
        self.model_.auto_symbolic(lib=lib, r2_threshold=r2_threshold,
                                  weight_simple=weight_simple, verbose=0)
        if X is not None and refit_steps > 0:
            X, y = _validate(self, X, y, reset=False, **self._y_checks())
            Y, loss_fn = self._targets(y)
            m = self.model_
            x = torch.tensor(X, dtype=m.dtype, device=m.device)
            t = torch.tensor(Y, dtype=m.dtype, device=m.device)
            refit = {"train_input": x, "train_label": t, "test_input": x, "test_label": t}
            m.fit(refit, opt=self.opt, steps=refit_steps, lr=self.lr, update_grid=False,
                  loss_fn=loss_fn, seed=self.seed, progress=False)
        self.formula_ = formulas(self.model_)
        return self

    def sympy(self, index: int | None = None):
        """The formula of output ``index`` (all outputs as a list when None, or the only one)."""
        if not hasattr(self, "formula_"):
            raise KanirError(f"{type(self).__name__} has no formula yet: call fit(X, y) and "
                             f"then symbolify()")
        if index is None:
            return self.formula_[0] if len(self.formula_) == 1 else list(self.formula_)
        return self.formula_[index]


class KANRegressor(RegressorMixin, _KANEstimator):
    """A KAN regressor: MSE loss, one or several outputs.

    ``hidden`` is the hidden widths in pykan's spelling (``(5,)``, ``(4, 4)``, ``([2, 1],)`` for
    two sum and one mult node), or ``width`` the full width (first entry the number of features).
    ``steps``, ``opt``, ``lr``, ``lamb``, ``lamb_entropy``, ``batch``, ``update_grid`` go to
    ``KAN.fit``; ``seed`` fixes the initialisation and batches.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}

    def fit(self, X, y):
        """Train a fresh KAN on X (n_samples, n_features) and y (n_samples,) or (n_samples,
        n_outputs); returns self."""
        X, y = _validate(self, X, y, ensure_min_samples=2, **self._y_checks())
        self._y_1d = y.ndim == 1
        self._train(X, *self._targets(y))
        return self

    def _y_checks(self) -> dict:
        return {"multi_output": True, "y_numeric": True}

    def _targets(self, y: np.ndarray):
        """(labels as a 2-D array, loss function) for KAN.fit."""
        return (y.reshape(-1, 1) if y.ndim == 1 else y), None

    def predict(self, X) -> np.ndarray:
        """Predictions, (n_samples,) or (n_samples, n_outputs) as y was."""
        out = self._raw_predict(X)
        return out[:, 0] if self._y_1d else out


def _soft_cross_entropy(logits: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    return -(onehot * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


class KANClassifier(ClassifierMixin, _KANEstimator):
    """A KAN classifier: one output (logit) per class, cross-entropy loss; ``predict_proba`` is
    the softmax of the logits. Parameters as :class:`KANRegressor`."""

    def fit(self, X, y):
        """Train a fresh KAN on X (n_samples, n_features) and class labels y; returns self."""
        X, y = _validate(self, X, y, ensure_min_samples=2)
        try:
            check_classification_targets(y)
        except ValueError as e:
            raise DataError(str(e)) from None
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise DataError(f"KANClassifier needs samples of at least 2 classes, got 1 class "
                            f"({self.classes_[0]!r})")
        self._train(X, *self._targets(y))
        return self

    def _y_checks(self) -> dict:
        return {}

    def _targets(self, y: np.ndarray):
        """(one-hot labels in the order of ``classes_``, cross-entropy) for KAN.fit."""
        unknown = sorted(set(np.unique(y).tolist()) - set(self.classes_.tolist()), key=str)
        if unknown:
            raise DataError(f"y holds classes {unknown} that fit did not see; classes_ are "
                            f"{self.classes_.tolist()}")
        codes = np.searchsorted(self.classes_, y)
        return np.eye(len(self.classes_))[codes], _soft_cross_entropy

    def decision_function(self, X) -> np.ndarray:
        """The logits, (n_samples, n_classes); for two classes the log-odds of the second,
        (n_samples,), as scikit-learn expects."""
        z = self._raw_predict(X)
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, (n_samples, n_classes), in the order of ``classes_``."""
        z = self._raw_predict(X)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        """The most probable class of each sample."""
        z = self._raw_predict(X)
        return self.classes_[np.argmax(z, axis=1)]
