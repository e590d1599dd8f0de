"""kanir's L-BFGS follows torch's (same two-loop recursion, same strong-Wolfe line search) when
given torch's tolerances, and goes further in float64 with its own curvature tolerance."""

import pytest
import torch

from kanir.optim import LBFGS


def rosenbrock(p: torch.Tensor) -> torch.Tensor:
    x = p.reshape(-1)
    return ((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2).sum()


def _run(opt_cls, steps: int, **kw):
    p = torch.nn.Parameter(torch.tensor([-1.2, 1.0, -0.5, 0.8, 1.3, -0.7], dtype=torch.float64))
    q = torch.nn.Parameter(torch.tensor([[0.3, -0.2]], dtype=torch.float64))  # a second tensor
    opt = opt_cls([p, q], **kw)

    def closure():
        opt.zero_grad()
        loss = rosenbrock(torch.cat([p, q.reshape(-1)]))
        loss.backward()
        return loss

    path, losses = [], []
    for _ in range(steps):
        loss = opt.step(closure)
        losses.append(float(loss.detach() if torch.is_tensor(loss) else loss))
        path.append(torch.cat([p.detach(), q.detach().reshape(-1)]))
    return path, losses


@pytest.mark.parametrize("history_size", [3, 10])
def test_matches_torch_lbfgs_with_torch_tolerances(history_size):
    kw = dict(lr=1.0, max_iter=20, history_size=history_size)
    ours, lo = _run(LBFGS, 4, tolerance_grad=1e-7, tolerance_change=1e-9, tolerance_ys=1e-10, **kw)
    ref, lr = _run(torch.optim.LBFGS, 4, tolerance_grad=1e-7, tolerance_change=1e-9,
                   line_search_fn="strong_wolfe", **kw)
    # the same iterates after every step, up to rounding (the dot products are summed in another
    # order, and 80 iterations on Rosenbrock amplify that to ~1e-9); a wrong recursion is off by
    # O(0.1). torch >= 2 also caps each line search at the step's remaining evaluations, kanir
    # (like pykan) at 25: with these settings the cap never binds.
    for a, b in zip(ours, ref):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-9)
    assert lo[-1] == pytest.approx(float(rosenbrock(ours[-1])), rel=1e-12)


def test_reaches_the_minimum_in_float64():
    path, losses = _run(LBFGS, 10)
    assert losses[-1] < 1e-25
    assert torch.allclose(path[-1], torch.ones_like(path[-1]), atol=1e-12)


def test_empty_parameter_list_is_an_error():
    with pytest.raises(ValueError, match="empty parameter list"):
        LBFGS([])
