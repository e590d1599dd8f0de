"""Derivatives of a batched function at sample points: gradient, Hessian and third derivatives
for the modularity tests, and the public ``kanir.jacobian``/``kanir.hessian`` and pykan's
``batch_jacobian``/``batch_hessian``; by batched reverse-mode autograd, or per sample with
torch.func when the function mixes the rows of a batch."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import torch

from kanir.backends.torch import KANModule
from kanir.errors import DataError
from kanir.science.target import FunctionError


def _grad_of(out: torch.Tensor, x: torch.Tensor, create: bool) -> torch.Tensor:
    """d(sum out)/dx, zeros where out does not depend on x."""
    if not out.requires_grad:
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=create, retain_graph=True,
                               allow_unused=True)
    return torch.zeros_like(x) if g is None else g


def _derivs_graph(fn: Callable, x: torch.Tensor, order: int) -> list[torch.Tensor]:
    """Gradient .. order-th derivatives by batched reverse-mode autograd (works for any module).

    Relies on row i of the output depending only on row i of the input.
    """
    x = x.detach().clone().requires_grad_(True)
    n = x.shape[1]
    g = _grad_of(fn(x), x, order >= 2)
    out = [g.detach()]
    if order >= 2:
        rows = [_grad_of(g[:, i], x, order >= 3) for i in range(n)]
        out.append(torch.stack([r.detach() for r in rows], 1))
        if order >= 3:
            t = torch.zeros(x.shape[0], n, n, n, dtype=x.dtype)
            for i in range(n):
                for j in range(i, n):
                    t[:, i, j] = _grad_of(rows[i][:, j], x, False).detach()
                    t[:, j, i] = t[:, i, j]
            out.append(t)
    return out


def _derivs_func(fn: Callable, x: torch.Tensor, order: int) -> list[torch.Tensor]:
    """The same derivatives with torch.func, one sample at a time (vmap of nested jacobians)."""
    from torch.func import grad, jacfwd, vmap

    d1 = grad(lambda row: fn(row.unsqueeze(0)).reshape(()))
    fns = [d1, jacfwd(d1), jacfwd(jacfwd(d1))][:order]
    return [vmap(d, chunk_size=64)(x).detach() for d in fns]


def _rows_independent(fn: Callable, x: torch.Tensor) -> bool:
    """Does output row 0 depend on input row 0 only (no batch statistics, no mixing)?"""
    z = x[:3].detach().clone().requires_grad_(True)
    y = fn(z)
    if not y.requires_grad:
        return True
    (g,) = torch.autograd.grad(y[0].sum(), z, allow_unused=True)
    return g is None or bool((g[1:] == 0).all())


def _derivatives(fn: Callable, x: torch.Tensor, order: int) -> list[torch.Tensor]:
    """First ``order`` derivatives of fn at each row of x.

    Batched reverse-mode autograd over the whole sample (n backward passes for the Hessian,
    n(n+1)/2 more for third derivatives) is 3-30x faster than torch.func's per-sample vmap on
    formulas, MLPs and KANs alike, but it needs rows that do not interact; when they do
    (batch statistics), each sample is differentiated alone, as a batch of one, with torch.func.
    """
    with torch.enable_grad():
        if _rows_independent(fn, x):
            return _derivs_graph(fn, x, order)
        try:
            return _derivs_func(fn, x, order)
        except Exception as e:
            raise FunctionError(
                "f mixes the samples of a batch (output row 0 depends on other rows, as with "
                "BatchNorm in training mode) and cannot be differentiated one sample at a time "
                f"either ({type(e).__name__}: {e}); for a module, call module.eval()") from e


# ---------------------------------------------------------------------- public Jacobians/Hessians
# kanir.jacobian / kanir.hessian (per-sample derivatives of a batched function) and pykan's
# kan.utils.batch_jacobian / batch_hessian (derivatives of the batch sum, the same thing for
# functions whose rows do not interact).


@contextmanager
def _quiet(fn):
    """Keep a KAN from remembering the probe inputs as its last data (model.acts etc.)."""
    if not hasattr(fn, "_record_inputs"):
        yield
        return
    before = fn.__dict__.get("_record_inputs")
    fn._record_inputs = False
    try:
        yield
    finally:
        if before is None:
            del fn._record_inputs
        else:
            fn._record_inputs = before


def _check_input(x, who: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise DataError(f"{who}: x must be a torch tensor of shape (batch, inputs), got "
                        f"{type(x).__name__}")
    if x.dim() != 2 or not x.is_floating_point():
        raise DataError(f"{who}: x must be a floating-point tensor of shape (batch, inputs), got "
                        f"{x.dtype} of shape {tuple(x.shape)}")
    return x


def _probe_input(x: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """x as a tensor that requires grad; connected to x's own graph when create_graph asks."""
    if create_graph and x.requires_grad:
        return x.view_as(x)
    return x.detach().requires_grad_(True)


def _outputs_2d(y, x: torch.Tensor, who: str) -> torch.Tensor:
    if not isinstance(y, torch.Tensor) or y.dim() not in (1, 2) or y.shape[0] != x.shape[0]:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise FunctionError(f"{who}: the function must map (batch, inputs) to (batch, outputs) "
                            f"or (batch,), got {got} for input {tuple(x.shape)}")
    return y.unsqueeze(1) if y.dim() == 1 else y


def _jac_rows(y: torch.Tensor, x: torch.Tensor, outputs, create_graph: bool) -> torch.Tensor:
    """d(sum over the batch of y[:, o])/dx for o in outputs, stacked: (batch, len(outputs), n).

    All outputs in one vmapped backward pass (``is_grads_batched``, ~5x faster than a loop on
    KANs); one backward pass per output where the graph cannot be vmapped.
    """
    outputs = list(outputs)
    y = y[:, outputs]
    if not y.requires_grad:
        return x.new_zeros(x.shape[0], len(outputs), x.shape[1])
    seeds = torch.eye(len(outputs), dtype=y.dtype, device=y.device)[:, None, :]
    seeds = seeds.expand(len(outputs), *y.shape)
    try:
        (g,) = torch.autograd.grad(y, x, grad_outputs=seeds, is_grads_batched=True,
                                   create_graph=create_graph, retain_graph=True, allow_unused=True)
    except RuntimeError:
        return torch.stack([_grad_of(y[:, o], x, create_graph) for o in range(len(outputs))], 1)
    if g is None:
        return x.new_zeros(x.shape[0], len(outputs), x.shape[1])
    return g.transpose(0, 1)


def _batch_sum_jacobian(fn: Callable, x: torch.Tensor, create_graph: bool, who: str,
                        outputs=None) -> torch.Tensor:
    with torch.enable_grad(), _quiet(fn):
        xg = _probe_input(x, create_graph)
        y = _outputs_2d(fn(xg), x, who)
        outs = range(y.shape[1]) if outputs is None else outputs
        return _jac_rows(y, xg, outs, create_graph)


def _batch_sum_hessian(fn: Callable, x: torch.Tensor, outputs, create_graph: bool, who: str
                       ) -> torch.Tensor:
    with torch.enable_grad(), _quiet(fn):
        xg = _probe_input(x, create_graph)
        y = _outputs_2d(fn(xg), x, who)
        outs = range(y.shape[1]) if outputs is None else _output_ids(outputs, y.shape[1], who)
        blocks = []
        for o in outs:
            g = _grad_of(y[:, o], xg, True)
            blocks.append(_jac_rows(g, xg, range(x.shape[1]), create_graph))
        return torch.stack(blocks, dim=1)


def _output_ids(outputs, n_out: int, who: str) -> list[int]:
    ids = [outputs] if isinstance(outputs, int) else outputs
    try:
        ids = [int(o) for o in ids]
    except (TypeError, ValueError):
        raise DataError(f"{who}: outputs must be an output index or a list of them, got "
                        f"{outputs!r}") from None
    bad = [o for o in ids if not -n_out <= o < n_out]
    if bad or isinstance(outputs, bool):
        raise DataError(f"{who}: outputs must be indices in 0..{n_out - 1}, got {outputs!r}")
    return [o % n_out for o in ids]


def _is_kan(fn) -> bool:
    return isinstance(fn, KANModule) or isinstance(getattr(fn, "net", None), KANModule)


def _mixes_rows(fn: Callable, x: torch.Tensor) -> bool:
    """Whether fn's output row b depends on input rows other than b. KAN networks (a KANModule,
    or a facade holding one as ``.net``) never mix rows, so the probe is skipped for them."""
    if _is_kan(fn) or x.shape[0] < 2:
        return False
    with torch.enable_grad(), _quiet(fn):
        return not _rows_independent(fn, x)


def _per_sample(fn: Callable, x: torch.Tensor, order: int, outputs=None) -> torch.Tensor:
    """Per-sample Jacobian (order 1) or Hessian (order 2) with torch.func, for functions whose
    rows interact (each sample is evaluated alone, as a batch of one)."""
    from torch.func import jacfwd, jacrev, vmap

    def one(row):
        y = fn(row.unsqueeze(0))
        y = y.reshape(-1)
        return y if outputs is None else y[outputs]

    d = jacrev(one) if order == 1 else jacfwd(jacrev(one))
    try:
        with _quiet(fn):
            return vmap(d)(x.detach())
    except Exception as e:
        raise FunctionError(f"the function mixes the samples of a batch and cannot be "
                            f"differentiated one sample at a time either ({type(e).__name__}: "
                            f"{e}); for a module, call module.eval()") from e


def jacobian(model: Callable, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """Per-sample Jacobian of a batched function (a KAN, any module or callable) at every row of
    ``x``: shape (batch, outputs, inputs).

    One batched reverse-mode pass per output (exact for functions whose rows do not interact,
    and much faster than per-sample torch.func); a function that mixes rows (batch statistics)
    is differentiated one sample at a time with torch.func instead. ``create_graph=True`` keeps
    the result differentiable (physics losses on derivatives).
    """
    x = _check_input(x, "jacobian")
    if _mixes_rows(model, x):
        return _per_sample(model, x, 1)
    return _batch_sum_jacobian(model, x, create_graph, "jacobian")


def hessian(model: Callable, x: torch.Tensor, outputs=None, create_graph: bool = False
            ) -> torch.Tensor:
    """Per-sample Hessians at every row of ``x``: shape (batch, outputs, inputs, inputs);
    ``outputs`` (an index or a list) selects outputs, default all. Computed as
    :func:`jacobian` is (batched reverse mode, per-sample torch.func for row-mixing functions).
    """
    x = _check_input(x, "hessian")
    if _mixes_rows(model, x):
        n_out = _outputs_2d(model(x[:1].detach()), x[:1], "hessian").shape[1]
        ids = None if outputs is None else _output_ids(outputs, n_out, "hessian")
        return _per_sample(model, x, 2, ids)
    return _batch_sum_hessian(model, x, outputs, create_graph, "hessian")


def batch_jacobian(func: Callable, x: torch.Tensor, create_graph: bool = False,
                   mode: str = "scalar") -> torch.Tensor:
    """pykan's ``kan.utils.batch_jacobian``: the derivatives of the batch sum of ``func(x)``
    with respect to x. ``mode='scalar'``: of output 0, shape (batch, inputs); ``'vector'``: of
    every output, (batch, outputs, inputs)."""
    x = _check_input(x, "batch_jacobian")
    if mode not in ("scalar", "vector"):
        raise DataError(f"batch_jacobian: mode must be 'scalar' or 'vector', got {mode!r}")
    if mode == "scalar":
        return _batch_sum_jacobian(func, x, create_graph, "batch_jacobian", [0])[:, 0]
    return _batch_sum_jacobian(func, x, create_graph, "batch_jacobian")


def batch_hessian(model: Callable, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """pykan's ``kan.utils.batch_hessian``: Hessian of output 0 (of the batch sum) with respect
    to x, shape (batch, inputs, inputs)."""
    x = _check_input(x, "batch_hessian")
    return _batch_sum_hessian(model, x, [0], create_graph, "batch_hessian")[:, 0]
