"""A fit's history and progress: recording each step's losses and the user's metrics (reduced
over ranks), stopping on request or when nothing trains, and the progress bar.
"""

from __future__ import annotations

import math
import warnings

from kanir.errors import ArgumentError


def _record(hist, root, losses, state, use_reg, metrics, comm=None, rows: int = 0) -> None:
    """Append one step's history: losses [train, test, train mse, test mse] (already global),
    and the user's metrics, reduced over ranks (:func:`_metric_values`)."""
    hist["train_loss"].append(root(losses[0]))
    hist["test_loss"].append(root(losses[1]))
    if "train_rmse" in hist:
        hist["train_rmse"].append(math.sqrt(losses[2]) if losses[2] >= 0 else float("nan"))
        hist["test_rmse"].append(math.sqrt(losses[3]) if losses[3] >= 0 else float("nan"))
    hist["reg"].append(float(state["reg"]) if use_reg else 0.0)
    for m, v in zip(metrics, _metric_values(metrics, comm, rows)):
        hist[getattr(m, "__name__", str(m))].append(v)


def _metric_values(metrics, comm, rows: int) -> list[float]:
    """The user's metrics (called without arguments, as in pykan). A metric returns a number,
    or a ``(sum, count)`` pair recorded as sum / count. Across ranks (``comm``) pairs are summed
    over ranks before dividing (exact for any sum over rows), and a number becomes the mean over
    ranks weighted by each rank's ``rows`` of training data (exact for a mean over them)."""
    if not metrics:
        return []
    pairs = []
    for m in metrics:
        v = m()
        if isinstance(v, tuple | list) and len(v) == 2:
            pairs.append((_metric_number(v[0], m), _metric_number(v[1], m), True))
        else:
            pairs.append((_metric_number(v, m), 1.0, False))
    if comm is not None:
        flat = [x for s, c, pair in pairs for x in ((s, c) if pair else (s * rows, rows))]
        flat = comm.sum_float(*flat)
        pairs = [(flat[2 * i], flat[2 * i + 1], p) for i, (_, _, p) in enumerate(pairs)]
    return [s / c if c else float("nan") for s, c, _ in pairs]


def _metric_number(v, m) -> float:
    """A metric's value as a float, or an ArgumentError naming the metric."""
    try:
        return float(v)
    except (TypeError, ValueError):
        name = getattr(m, "__name__", repr(m))
        raise ArgumentError(f"metric {name} returned {type(v).__name__} {v!r:.60}; a metric "
                            "returns a number or a (sum, count) pair of numbers") from None


def _step_done(hist, state, bar, opts, step) -> bool:
    """After a step is recorded: True to end training (a frozen model, warned about, or the
    caller's ``stop()``); otherwise the progress bar shows the step."""
    if state.get("frozen"):
        _warn_frozen(hist, step)
        return True
    _show(bar, opts, hist, step)
    return _stop_asked(opts, hist, step)


def _stop_asked(opts, hist, step) -> bool:
    """The caller's ``stop()`` said True: record the step and end training."""
    if opts.get("stop") is None or not opts["stop"]():
        return False
    hist["stopped_early"], hist["stopped_by"] = step, "stop"
    return True


def _warn_frozen(hist, step) -> None:
    """Warn that nothing trainable reaches the outputs, and record the step as the last."""
    warnings.warn("fit: the loss does not depend on any trainable parameter (every "
                  "edge reaching the outputs is removed or fixed to a constant); "
                  "nothing to train", stacklevel=5)
    hist["stopped_early"] = step


def _show(bar, opts, hist, step) -> None:
    """Show the ``display_metrics`` in the progress bar every ``log`` steps."""
    if opts["progress"] and opts["log"] and step % opts["log"] == 0:
        shown = opts["display_metrics"] or ("train_loss", "test_loss", "reg")
        bar.set_description("|" + "".join(f" {k}: {hist[k][-1]:.2e} |" for k in shown))


class _Root:
    """pykan's history value sqrt(loss); a negative loss (a custom loss_fn) gives NaN with one
    warning saying so."""

    def __init__(self):
        self.warned = False

    def __call__(self, v: float) -> float:
        if v >= 0 or not math.isfinite(v):
            return math.sqrt(v) if v >= 0 else v
        if not self.warned:
            warnings.warn(f"loss_fn returned a negative value ({v:.3g}); history['train_loss'] / "
                          "['test_loss'] hold its square root as in pykan and are NaN for it; "
                          "history['train_rmse'] / ['test_rmse'] are unaffected", stacklevel=5)
            self.warned = True
        return float("nan")


def _progress(steps: int, show: bool):
    """The steps to iterate, with a tqdm progress bar when ``show``."""
    if not show:
        return _Silent(range(steps))
    from tqdm.auto import tqdm

    return tqdm(range(steps), ncols=100, disable=None)  # off when stderr is not a terminal


class _Silent:
    """The steps without a progress bar (what ``_progress`` gives when not shown)."""

    def __init__(self, it):
        self.it = it

    def __iter__(self):
        return iter(self.it)

    def set_description(self, _):
        pass
