"""KAN 2.0 §5.3, a hidden symmetry: the Gullstrand–Painlevé time of the Schwarzschild metric.

In Schwarzschild coordinates (t, x, y, z) with 2M = 1 and r = |(x, y, z)|, the metric is
``-(1 - 1/r) dt² + δ_ij + n_i n_j / (r - 1)`` (n = x/r): its spatial block is not flat. The
coordinate change t' = t + Δt(r) (x, y, z unchanged) makes it flat when
``Δt'(r)² = r / (r - 1)²``; the smooth solution is Gullstrand–Painlevé's
``Δt(r) = 2√r + ln|(√r − 1)/(√r + 1)|`` (−Δt works too: time reversal). Nothing here tells
the networks that: they see only the metric objective (paper Eq. 19–20), the 3×3 spatial block
of ``g' = J^-T g J^-1`` against the identity, on r in [1.5, 5] (outside the horizon r = 1).

1. An MLP (torch, float64) trained on the objective finds a smooth Δt (the paper: ~1e-8).
2. A [1,1] KAN trained directly on it, over several seeds: the loss fixes only |Δt'|, and a
   spline can switch between +Δt' and −Δt' along r. Such a domain wall (a sign change of the
   learned Δt' against the smooth branch) costs loss where Δt' passes through zero; the
   detector reports each one's radius (the paper: stuck near 1e-3, about one seed in three
   smooth). Here, with the grid on r's range [1.5, 5] (grid 20, float64, kanir's L-BFGS),
   every seed tried came out smooth at ~3e-8: the walls did not appear.
3. The MLP as teacher: a float64 [1,1] KAN fitted to the MLP's Δt(r) (so on one branch), then
   trained on the objective and refined through grids up to 1000, reaches the objective's
   float64 floor and the true Δt(r) up to its constant offset.

The model's input is r (what grid updates and ``refine`` see); each sample's 4-D point
(t, x, y, z) rides in the dataset's labels, which an objective may use as it likes: the
objective differentiates through r = |(x, y, z)|, so ``fit(objective=...)`` needs no change.

Run: ``python examples/science/schwarzschild.py [--quick]``; the last line printed is
``RESULT: {json}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass

import torch

import kanir
from kanir.science.objectives import metric

R_MIN, R_MAX = 1.5, 5.0


@dataclass(frozen=True)
class Settings:
    """Samples, steps, seeds and grids; ``QUICK`` is what the slow test runs."""

    n: int = 2000
    mlp_steps: int = 300
    kan_seeds: tuple = (0, 1, 2, 3, 4, 5)
    kan_steps: int = 100
    grids: tuple = (10, 20, 50, 100, 200, 500, 1000)
    grid_steps: int = 50


FULL = Settings()
QUICK = Settings(n=1000, mlp_steps=150, kan_seeds=(0, 1, 2), kan_steps=50,
                 grids=(10, 50, 200, 1000), grid_steps=40)


def delta_t(r: torch.Tensor) -> torch.Tensor:
    """The Gullstrand–Painlevé Δt(r) for 2M = 1 (t' = t + Δt)."""
    s = torch.sqrt(r)
    return 2 * s + torch.log(torch.abs((s - 1) / (s + 1)))


def delta_t_prime(r: torch.Tensor) -> torch.Tensor:
    """dΔt/dr = √r / (r − 1), the smooth branch of |Δt'| = √r / |r − 1|."""
    return torch.sqrt(r) / (r - 1)


def schwarzschild(X: torch.Tensor) -> torch.Tensor:
    """The Schwarzschild metric (batch, 4, 4) at points (t, x, y, z), 2M = 1."""
    pos = X[:, 1:]
    r = pos.norm(dim=1)
    n = pos / r[:, None]
    g = torch.zeros(X.shape[0], 4, 4, dtype=X.dtype, device=X.device)
    g[:, 0, 0] = -(1 - 1 / r)
    g[:, 1:, 1:] = (torch.eye(3, dtype=X.dtype, device=X.device)
                    + n[:, :, None] * n[:, None, :] / (r - 1)[:, None, None])
    return g


def gp_transform(model, X: torch.Tensor) -> torch.Tensor:
    """(t, x, y, z) -> (t + Δt(r), x, y, z) with Δt = model(r) (a KAN or a torch module)."""
    r = X[:, 1:].norm(dim=1, keepdim=True)
    return torch.cat([X[:, :1] + model(r)[:, :1], X[:, 1:]], dim=1)


_METRIC = metric(schwarzschild, gp_transform, block=[1, 2, 3])


def objective(model, r: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """The metric objective on the 4-D points X (the labels); r = |X[:, 1:]| is the input."""
    return _METRIC(model, X)


def points(n: int, seed: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """n points (t, x, y, z) with r uniform in [R_MIN, R_MAX], random t and direction; and r."""
    gen = torch.Generator().manual_seed(seed)
    r = R_MIN + (R_MAX - R_MIN) * torch.rand(n, 1, generator=gen, dtype=dtype)
    d = torch.randn(n, 3, generator=gen, dtype=dtype)
    t = torch.rand(n, 1, generator=gen, dtype=dtype) * 2 - 1
    X = torch.cat([t, r * d / d.norm(dim=1, keepdim=True)], dim=1)
    return X[:, 1:].norm(dim=1, keepdim=True), X


def metric_dataset(n: int, seed: int) -> dict:
    """Inputs r, labels the 4-D points the objective differentiates through."""
    r, X = points(2 * n, seed)
    return {"train_input": r[:n], "train_label": X[:n],
            "test_input": r[n:], "test_label": X[n:]}


def domain_walls(r: torch.Tensor, d: torch.Tensor, rel: float = 1e-3) -> list[float]:
    """Radii where the learned Δt'(r) (d, sampled on increasing r) changes sign against the
    smooth branch √r/(r−1): each is a domain wall between the +Δt and −Δt solutions. Values
    below ``rel`` of the branch count as no sign, so noise around a true zero is one wall."""
    r, d = r.flatten(), d.flatten()
    ratio = d / delta_t_prime(r)
    walls, last = [], 0
    for i in range(len(r)):
        s = 0 if abs(float(ratio[i])) < rel else (1 if ratio[i] > 0 else -1)
        if s == 0:
            continue
        if last and s != last:
            j = i - 1
            while j > 0 and abs(float(ratio[j])) < rel:
                j -= 1
            a, b = float(ratio[j]), float(ratio[i])
            walls.append(float(r[j] + (r[i] - r[j]) * a / (a - b)))  # linear zero crossing
        last = s
    return walls


def learned_prime(model, r: torch.Tensor) -> torch.Tensor:
    """dΔt/dr of the model at r (batch, 1)."""
    rr = r.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(model(rr)[:, 0].sum(), rr)
    return g.detach()


def offset_mse(model, r: torch.Tensor) -> tuple[float, int]:
    """MSE of the model's Δt against ±(true Δt) up to a constant (the best sign and offset)."""
    with torch.no_grad():
        y = model(r)[:, :1]
    best = None
    for sign in (1, -1):
        e = y - sign * delta_t(r)
        mse = float(((e - e.mean()) ** 2).mean())
        if best is None or mse < best[0]:
            best = (mse, sign)
    return best


def loss_of(model, data: dict, split: str = "test") -> float:
    """The metric objective on one split."""
    return float(objective(model, data[f"{split}_input"], data[f"{split}_label"]).detach())


def train_mlp(data: dict, steps: int, seed: int = 0) -> torch.nn.Module:
    """An MLP r -> Δt trained on the objective with kanir's L-BFGS (a plain loop)."""
    from kanir.train.optim import LBFGS

    torch.manual_seed(seed)
    mlp = torch.nn.Sequential(torch.nn.Linear(1, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32),
                              torch.nn.Tanh(), torch.nn.Linear(32, 1)).double()
    opt = LBFGS(mlp.parameters(), history_size=50, max_iter=20)
    r, X = data["train_input"], data["train_label"]

    def closure():
        opt.zero_grad()
        loss = objective(mlp, r, X)
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
    return mlp


def run(s: Settings = FULL, log=print) -> dict:
    """The three steps; returns the RESULT dict."""
    t0 = time.perf_counter()
    data = metric_dataset(s.n, seed=0)
    r_test = data["test_input"]
    r_dense = torch.linspace(R_MIN, R_MAX, 2001, dtype=torch.float64)[:, None]
    zero = loss_of(lambda r: delta_t(r), data)
    log(f"objective at the exact Δt: {zero:.2e}")

    mlp = train_mlp(data, s.mlp_steps)
    mlp_loss = loss_of(mlp, data)
    mlp_walls = domain_walls(r_dense, learned_prime(mlp, r_dense))
    mlp_mse, mlp_sign = offset_mse(mlp, r_test)
    log(f"(a) MLP [1,32,32,1] tanh: loss {mlp_loss:.2e}, domain walls {len(mlp_walls)}, "
        f"MSE vs {'+' if mlp_sign > 0 else '-'}Δt (up to offset) {mlp_mse:.2e}")

    direct = []
    for seed in s.kan_seeds:
        kan = kanir.KAN([1, 1], grid=20, k=3, seed=seed, device="cpu", dtype=torch.float64,
                         grid_range=(R_MIN, R_MAX))
        kan.fit(data, opt="LBFGS", steps=s.kan_steps, objective=objective, update_grid=False,
                progress=False)
        walls = domain_walls(r_dense, learned_prime(kan, r_dense))
        direct.append({"seed": seed, "loss": loss_of(kan, data),
                       "walls": [round(w, 3) for w in walls]})
        log(f"(b) KAN [1,1] grid 20 seed {seed}: loss {direct[-1]['loss']:.2e}, domain walls at "
            f"r = {direct[-1]['walls']}")
    smooth = sum(not d["walls"] for d in direct)

    teacher = {"train_input": data["train_input"], "test_input": data["test_input"]}
    with torch.no_grad():
        teacher["train_label"] = mlp(data["train_input"])
        teacher["test_label"] = mlp(data["test_input"])
    kan = kanir.KAN([1, 1], grid=s.grids[0], k=3, seed=0, device="cpu", dtype=torch.float64,
                     grid_range=(R_MIN, R_MAX))
    kan.fit(teacher, opt="LBFGS", steps=s.grid_steps, update_grid=False, progress=False)
    log(f"(c) KAN [1,1] fitted to the MLP: loss {loss_of(kan, data):.2e}")
    curve = []
    for i, G in enumerate(s.grids):
        if i:
            kan.refine(G)
        kan.fit(data, opt="LBFGS", steps=s.grid_steps, objective=objective, update_grid=False,
                progress=False)
        mse, sign = offset_mse(kan, r_test)
        curve.append({"grid": G, "loss": loss_of(kan, data), "mse": mse})
        log(f"    grid {G:5d}: loss {curve[-1]['loss']:.2e}, MSE vs "
            f"{'+' if sign > 0 else '-'}Δt (up to offset) {mse:.2e}")
    walls = domain_walls(r_dense, learned_prime(kan, r_dense))
    return {"objective_at_exact": zero, "mlp_loss": mlp_loss, "mlp_walls": len(mlp_walls),
            "mlp_mse": mlp_mse, "direct": direct, "direct_smooth": smooth,
            "direct_seeds": len(direct), "teacher_curve": curve,
            "kan_loss": curve[-1]["loss"], "kan_mse": curve[-1]["mse"],
            "kan_walls": len(walls), "seconds": round(time.perf_counter() - t0, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer samples, seeds and grids")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    result = run(QUICK if a.quick else FULL)
    print("RESULT: " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
