"""The tasks of :func:`kanir.discover` and the engines that run them.

A task (a surrogate of y or log|y|, one candidate structure, one fallback width) is
:func:`run_task` applied to a :class:`TaskSpec`: a pure function of picklable inputs and the
seed (one torch thread, seeded RNG), so it gives the same result inline, in a joblib (loky)
worker process or on a Dask worker. Engines yield results in task order; discover merges them
in that order, so every engine gives the same formula.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from kanir.errors import ArgumentError

__all__ = ["TaskResult", "TaskSpec", "make_engine", "run_task"]


@dataclass
class TaskSpec:
    """Everything one task needs (all picklable): its id (tasks merge sorted by it), kind
    ("surrogate", "terms", "structure" or "width"), the dataset dict, names, seed, spline range, the
    wall-clock deadline, the tolerance and library, and the structure to try."""

    id: tuple[int, int]
    kind: str
    ds: dict
    names: tuple[str, ...]
    seed: int
    grid_range: tuple[float, float]
    deadline: float
    start: float
    tol: float
    lib: object = None
    log_sign: float | None = None
    tree: object = None
    width: list | None = None
    echo: bool = False  # print progress lines as the steps happen (inline runs)
    dtype: torch.dtype = field(default_factory=torch.get_default_dtype)

    @property
    def label(self) -> str:
        """A readable name, unique within a run: the task of each Step and Candidate."""
        space = "log|y|" if self.log_sign else "y"
        if self.kind == "surrogate":
            return f"surrogate {space}"
        if self.kind == "terms":
            return "terms"
        if self.kind == "structure":
            return f"{'log ' if self.log_sign else ''}tree {self.tree.compact()}"
        return f"KAN {self.width}"


@dataclass
class TaskResult:
    """What a task found: its steps, formulas (Candidates with their models), the trees a
    surrogate read (with its relative held-out error), the KAN after fit and after pruning,
    and whether the budget cut it."""

    id: tuple[int, int]
    label: str
    log_sign: float | None = None
    tree: object = None
    steps: list = field(default_factory=list)
    candidates: list = field(default_factory=list)
    trees: list = field(default_factory=list)
    rel: float = float("inf")
    fitted: object = None
    pruned: object = None
    cut: bool = False


def run_task(spec: TaskSpec) -> TaskResult:
    """Run one task of the discover pipeline (see the module docstring)."""
    threads, dtype = torch.get_num_threads(), torch.get_default_dtype()
    torch.set_num_threads(1)  # the same arithmetic in every process
    torch.set_default_dtype(spec.dtype)
    try:
        torch.manual_seed(spec.seed)
        return _run(spec)
    finally:
        torch.set_num_threads(threads)
        torch.set_default_dtype(dtype)


def _run(spec: TaskSpec) -> TaskResult:
    from kanir.model.kan import KAN
    from kanir.workflows.discover import (
        _Clock,
        _log_dataset,
        _Searcher,
        _surrogate,
        _term_candidates,
        _trees,
    )

    clock = _Clock(spec.deadline, spec.start, spec.echo, spec.label)
    res = TaskResult(spec.id, spec.label, spec.log_sign, spec.tree)
    if clock.left() <= 0:
        res.cut = True  # the budget was spent before this task started
        return res
    ds, names, seed = spec.ds, spec.names, spec.seed
    if spec.kind == "surrogate":
        what = "log|y|" if spec.log_sign else "y"
        ds_space = ds if spec.log_sign is None else _log_dataset(ds, spec.log_sign)
        t0 = time.perf_counter()
        sur, sur_err = _surrogate(ds_space, names, seed, spec.grid_range, clock)
        res.rel = sur_err / float(ds_space["test_label"].std())
        clock.record("surrogate", t0, f"of {what}: KAN {sur.width_spec}, held-out RMSE "
                     f"{res.rel:.3g} x std")
        t0 = time.perf_counter()
        res.trees = _trees(sur, ds["train_input"], names, seed)
        clock.record("tree", t0, f"of {what}: " + ("; ".join(t.compact() for t in res.trees)
                                                    or "no tree"))
    elif spec.kind == "terms":
        res.candidates = _term_candidates(ds, names, clock, ds["test_input"].numpy(),
                                          ds["test_label"][:, 0].numpy(), spec.tol)
    else:
        search = _Searcher(ds, ds["test_input"].numpy(), ds["test_label"][:, 0].numpy(), names,
                           seed, clock, spec.tol, spec.lib)
        if spec.kind == "structure":
            model = KAN.from_tree(spec.tree, device="cpu", grid_range=spec.grid_range, seed=seed)
            model.refine(5, x=ds["train_input"])  # the same lines on each input's own range
            search.run(model, spec.label, prune=False, log_sign=spec.log_sign)
        else:
            model = KAN(spec.width, grid=5, k=3, seed=seed, dtype=torch.float64, device="cpu",
                        input_names=list(names), grid_range=spec.grid_range)
            search.run(model, spec.label, prune=True)
        res.candidates, res.fitted, res.pruned = search.candidates, search.fitted, search.pruned
    res.steps, res.cut = clock.steps, clock.cut
    return res


# ----------------------------------------------------------------------------- engines


class _Inline:
    """n_jobs=1: each task runs here, only when the merge asks for it."""

    inline = True

    def run(self, specs) -> Iterator[TaskResult]:
        for spec in specs:
            yield run_task(spec)

    def close(self) -> None:
        pass


class _Joblib:
    """n_jobs > 1: joblib's loky worker processes (reused between runs)."""

    inline = False

    def __init__(self, n_jobs: int):
        from joblib import Parallel

        self.parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator")

    def run(self, specs) -> Iterator[TaskResult]:
        from joblib import delayed

        if not specs:
            return
        gen = self.parallel(delayed(run_task)(s) for s in specs)
        try:
            for res in gen:  # noqa: UP028 - ``yield from`` would close gen outside the filter
                yield res
        finally:
            with warnings.catch_warnings():  # joblib warns that it cancels the tasks not
                warnings.simplefilter("ignore")  # needed: that is the point here
                gen.close()

    def close(self) -> None:
        pass


class _Dask:
    """A Dask distributed cluster: ``client.submit`` each task, gather them in task order."""

    inline = False

    def __init__(self, scheduler):
        try:
            from dask.distributed import Client
        except ImportError:
            raise ArgumentError("discover: scheduler= needs dask[distributed]; install the "
                                "'parallel' extra: pip install 'kanir[parallel]'") from None
        if isinstance(scheduler, Client):
            self.client, self.own = scheduler, False
        elif isinstance(scheduler, str):
            try:
                self.client, self.own = Client(scheduler, timeout="20s"), True
            except OSError as exc:
                raise ArgumentError(f"discover: cannot reach the Dask scheduler at "
                                    f"{scheduler!r} ({exc})") from None
        else:
            raise ArgumentError(f"discover: scheduler must be a Dask scheduler address or a "
                                f"dask.distributed.Client, got {scheduler!r}")

    def run(self, specs) -> Iterator[TaskResult]:
        futures = [self.client.submit(run_task, s, pure=False) for s in specs]
        try:
            for f in futures:
                yield f.result()
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        if self.own:
            self.client.close()


def make_engine(n_jobs: int, scheduler=None):
    """The engine for ``n_jobs`` / ``scheduler`` (see :func:`kanir.discover`)."""
    if scheduler is not None:
        return _Dask(scheduler)
    if n_jobs == 1:
        return _Inline()
    try:
        import joblib  # noqa: F401
    except ImportError:
        raise ArgumentError("discover: n_jobs > 1 needs joblib; install the 'parallel' extra: "
                            "pip install 'kanir[parallel]'") from None
    return _Joblib(n_jobs)
