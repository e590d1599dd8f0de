"""Foundation benchmarks: kanir vs pykan 0.2.8 vs a plain torch MLP of equal parameter count.

    .venv/bin/python bench/bench_foundation.py [--quick] [--out bench/results/foundation.md]

Measures, in one run and each in a fresh child process: (a) 100 Adam steps of
[4,100,100,100,1] on 1000 samples (bare loop over ``model(x)``; kanir also through ``fit()``),
(b) forward throughput of [100,100,100,1] at batch 10,000, (c) extra peak memory of one
training step (forward + backward) of [100,100,100,1] at batch 10,000, grid 5 and grid 50,
(d) the same for the MLP, (e) float64 grid refinement of a [1,1] KAN on sin(3x)+x^2.
Every framework gets identical data (seeded torch generator, same torch version). pykan runs in
bench/.venv-pykan (``bench/setup_pykan.sh``); without it its columns say "not installed".

The functions below the "child tasks" line run inside the child processes (in either
interpreter): they import torch, kanir or kan lazily.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

THIS = Path(__file__).resolve()
TRAIN_WIDTH = [4, 100, 100, 100, 1]
FWD_WIDTH = [100, 100, 100, 1]
GRID = 5
K = 3
LR = 1e-3

# pykan figures measured on this kind of machine (shared/pykan-notes.md), quoted for the modes
# too slow to rerun in a quick run.
NOTES = {"pykan_default_train_s": 900.0, "pykan_fit_speed_s": 102.0,
         "pykan_default_fwd_sps": 1083.0}


# ====================================================================== child tasks
def _data(n: int, n_in: int, seed: int = 0, dtype=None, f=None):
    """(x, y): x uniform in [-1, 1]^n_in from a seeded generator (identical in both envs)."""
    import torch

    dtype = dtype or torch.float32
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, n_in, generator=gen, dtype=torch.float64) * 2 - 1)
    if f is None:
        y = torch.sin(math.pi * x).mean(dim=1, keepdim=True) + x[:, :1] * x[:, -1:]
    else:
        y = f(x)
    return x.to(dtype), y.to(dtype)


def _mlp_hidden(n_params: int, n_in: int, n_hidden_layers: int) -> int:
    """Hidden width h so that an MLP [n_in, h x n_hidden_layers, 1] has about n_params."""
    a = n_hidden_layers - 1  # h*h weight blocks
    b = n_in + 1 + n_hidden_layers  # n_in*h + (hidden biases) + h*1
    if a == 0:
        return max(1, round((n_params - 1) / b))
    return max(1, round((-b + math.sqrt(b * b + 4 * a * (n_params - 1))) / (2 * a)))


def _pykan_workdir() -> None:
    """pykan logs to ./model/history.txt even with auto_save=False: give it the folder (the
    child runs in a temporary directory)."""
    import os

    os.makedirs("model", exist_ok=True)


def _build(framework: str, width: list, grid: int, n_params: int = 0):
    """A float32 model (a callable nn.Module) and its trainable parameter count.

    framework: "kanir", "pykan" (speed() mode), "pykan-default", or "mlp" (sized to
    ``n_params`` with the same depth as ``width``).
    """
    import torch

    if framework == "kanir":
        import kanir

        model = kanir.KAN(list(width), grid=grid, k=K, seed=0, device="cpu")
    elif framework.startswith("pykan"):
        from kan import KAN

        _pykan_workdir()
        torch.set_default_dtype(torch.float32)
        model = KAN(width=list(width), grid=grid, k=K, seed=0, auto_save=False, device="cpu")
        if framework == "pykan":
            model = model.speed()
    elif framework == "mlp":
        h = _mlp_hidden(n_params, width[0], len(width) - 2)
        dims = [width[0]] + [h] * (len(width) - 2) + [width[-1]]
        layers = []
        for i in range(len(dims) - 1):
            layers.append(torch.nn.Linear(dims[i], dims[i + 1]))
            if i < len(dims) - 2:
                layers.append(torch.nn.SiLU())
        torch.manual_seed(0)
        model = torch.nn.Sequential(*layers)
    else:
        raise ValueError(framework)
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model, count


def param_count(framework: str, width: list, grid: int) -> dict:
    """Trainable parameter count of a model (used to size the MLP)."""
    return {"params": _build(framework, width, grid)[1]}


def train(framework: str, width: list, grid: int, steps: int, n: int, warmup: int = 2,
          n_params: int = 0) -> dict:
    """Bare Adam loop (MSE on model(x)); per-step times for ``steps`` steps after warm-up."""
    import torch

    model, count = _build(framework, width, grid, n_params)
    x, y = _data(n, width[0])
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    losses = []

    def step():
        opt.zero_grad()
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()
        opt.step()
        losses.append(float(loss))

    t = common.time_calls(step, steps, warmup)
    return {"median_step_s": common.median(t["wall"]), "median_step_cpu_s": common.median(t["cpu"]),
            "total_s": sum(t["wall"]), "total_cpu_s": sum(t["cpu"]), "steps": steps,
            "params": count, "final_loss": losses[-1]}


def train_fit(framework: str, width: list, grid: int, steps: int, n: int) -> dict:
    """``fit(opt='Adam')`` with the library's defaults otherwise (grid updates, test eval)."""
    model, count = _build(framework, width, grid)
    x, y = _data(2 * n, width[0])
    ds = {"train_input": x[:n], "train_label": y[:n], "test_input": x[n:], "test_label": y[n:]}
    kw = {"progress": False} if framework == "kanir" else {}
    hist = {}

    def run():
        hist.update(model.fit(ds, opt="Adam", steps=steps, lr=LR, **kw))

    t = common.time_calls(run, 1, warmup=0)
    return {"total_s": t["wall"][0], "total_cpu_s": t["cpu"][0], "params": count,
            "final_test_loss": float(hist["test_loss"][-1])}


def forward(framework: str, width: list, grid: int, batch: int, reps: int,
            n_params: int = 0) -> dict:
    """Median time of a no-grad forward pass at ``batch``; samples/s."""
    import torch

    model, count = _build(framework, width, grid, n_params)
    x, _ = _data(batch, width[0])
    with torch.no_grad():
        t = common.time_calls(lambda: model(x), reps, warmup=1)
    wall, cpu = common.median(t["wall"]), common.median(t["cpu"])
    return {"median_s": wall, "median_cpu_s": cpu, "samples_per_s": batch / wall,
            "samples_per_cpu_s": batch / cpu, "params": count}


def memory(framework: str, width: list, grid: int, batch: int, n_params: int = 0) -> dict:
    """Extra peak RSS of one forward + backward at ``batch``, above the post-construction
    baseline (imports, model, data and one small warm-up step already done)."""
    import torch

    model, count = _build(framework, width, grid, n_params)
    x, y = _data(batch, width[0])

    def step(xb, yb):
        loss = torch.mean((model(xb) - yb) ** 2)
        loss.backward()

    step(x[:8], y[:8])  # allocate .grad buffers and lazy state outside the measurement
    out = common.measure_peak(lambda: step(x, y))
    out["params"] = count
    return out


def refine_curve(framework: str, grids: list, steps: int, n: int = 1000,
                 update_grid: bool = False) -> dict:
    """float64 [1,1] KAN on sin(3x)+x^2, fit with LBFGS at each grid, refined between grids."""
    import time

    import torch

    torch.set_default_dtype(torch.float64)  # pykan needs it for float64; harmless for kanir

    def f(x):
        return torch.sin(3 * x[:, :1]) + x[:, :1] ** 2

    x, y = _data(2 * n, 1, seed=1, dtype=torch.float64, f=f)
    ds = {"train_input": x[:n], "train_label": y[:n], "test_input": x[n:], "test_label": y[n:]}
    if framework == "kanir":
        import kanir

        model = kanir.KAN([1, 1], grid=grids[0], k=K, seed=0, dtype=torch.float64, device="cpu")
        kw = {"progress": False}
    else:
        from kan import KAN

        _pykan_workdir()
        model = KAN(width=[1, 1], grid=grids[0], k=K, seed=0, auto_save=False, device="cpu")
        kw = {}
    rows = []
    for i, G in enumerate(grids):
        t0 = time.process_time()
        if i:
            model = model.refine(G)  # both return the model (pykan: a new one)
        model.fit(ds, opt="LBFGS", steps=steps, update_grid=update_grid, **kw)
        secs = time.process_time() - t0
        with torch.no_grad():
            mse = float(torch.mean((model(ds["test_input"]) - ds["test_label"]) ** 2))
        rows.append({"grid": G, "test_mse": mse, "seconds": secs})
    return {"rows": rows}


# ====================================================================== parent side
class Runner:
    """Runs child tasks for one framework or another and logs progress to stderr."""

    def __init__(self, threads: int, pykan: Path | None):
        self.threads, self.pykan = threads, pykan

    def __call__(self, framework: str, func: str, **args) -> dict | None:
        if framework.startswith("pykan"):
            if self.pykan is None:
                return None
            python = self.pykan
        else:
            python = sys.executable
        args = dict(args)
        if func != "refine_curve":
            args["framework"] = framework
        else:
            args["framework"] = "kanir" if framework == "kanir" else "pykan"
        print(f"[foundation] {framework:13s} {func} {_short(args)}", file=sys.stderr, flush=True)
        out = common.run_task(python, THIS, func, args, self.threads)
        if "error" in out:
            print(f"[foundation]   FAILED: {out['error']}", file=sys.stderr, flush=True)
        else:
            print(f"[foundation]   done in {out['wall_s']:.1f} s", file=sys.stderr, flush=True)
        return out


def _short(args: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in args.items() if k != "framework")


def _ok(r: dict | None) -> bool:
    return r is not None and "error" not in r


def measure(run: Runner, quick: bool) -> dict:
    """Every measurement, interleaving frameworks so machine-load drift hits all alike."""
    R: dict = {}
    R["kan_params_train"] = param_count("kanir", TRAIN_WIDTH, GRID)["params"]  # in-process
    R["kan_params_fwd"] = param_count("kanir", FWD_WIDTH, GRID)["params"]
    tr = {"width": TRAIN_WIDTH, "grid": GRID, "steps": 100, "n": 1000}
    R["train"] = {
        "kanir": run("kanir", "train", **tr),
        "pykan": run("pykan", "train", **tr, warmup=1),
        "mlp": run("mlp", "train", **tr, n_params=R["kan_params_train"]),
        # default mode costs ~9 s a step: time 2 steps and extrapolate to 100
        "pykan-default": run("pykan-default", "train", **{**tr, "steps": 2}, warmup=0),
    }
    R["fit"] = {"kanir": run("kanir", "train_fit", **{k: tr[k] for k in tr})}
    if not quick:
        R["fit"]["pykan"] = run("pykan", "train_fit", **{k: tr[k] for k in tr})
    fw = {"width": FWD_WIDTH, "grid": GRID, "batch": 10_000}
    reps = 3 if quick else 7
    R["forward"] = {
        "kanir": run("kanir", "forward", **fw, reps=reps),
        "pykan": run("pykan", "forward", **fw, reps=2 if quick else 5),
        "mlp": run("mlp", "forward", **fw, reps=reps, n_params=R["kan_params_fwd"]),
    }
    if not quick:
        R["forward"]["pykan-default"] = run("pykan-default", "forward", **fw, reps=1)
    R["memory"] = {}
    for g in (5, 50):
        mem = {"width": FWD_WIDTH, "grid": g, "batch": 10_000}
        R["memory"][g] = {"kanir": run("kanir", "memory", **mem),
                          "pykan": run("pykan", "memory", **mem)}
    R["memory"]["mlp"] = run("mlp", "memory", width=FWD_WIDTH, grid=GRID, batch=10_000,
                             n_params=R["kan_params_fwd"])
    grids = [10, 50, 100, 200, 500, 1000]
    steps = 50
    R["refine"] = {"steps": steps,
                   "kanir": run("kanir", "refine_curve", grids=grids, steps=steps),
                   "pykan": run("pykan", "refine_curve", grids=grids, steps=steps)}
    return R


# ---------------------------------------------------------------------- report
def _train_s(r: dict | None, steps: int = 100) -> float | None:
    """CPU time of ``steps`` training steps from the median step (robust to load spikes)."""
    return r["median_step_cpu_s"] * steps if _ok(r) else None


def _ratio(a, b):
    return a / b if a is not None and b is not None and b > 0 else None


def _gib(r):
    return r["extra_peak_bytes"] / common.GiB if _ok(r) else None


def summarize(R: dict) -> dict:
    """The headline figures, ratios and target verdicts."""
    t = R["train"]
    S = {
        "train": {k: _train_s(v) for k, v in t.items()},
        "fit": {k: v["total_cpu_s"] if _ok(v) else None for k, v in R["fit"].items()},
        "fwd": {k: v["samples_per_cpu_s"] if _ok(v) else None for k, v in R["forward"].items()},
        "mem5": {k: _gib(v) for k, v in R["memory"][5].items()},
        "mem50": {k: _gib(v) for k, v in R["memory"][50].items()},
        "mem_mlp": _gib(R["memory"]["mlp"]),
    }
    S["mlp_params"] = {"train": t["mlp"]["params"] if _ok(t["mlp"]) else None,
                       "fwd": R["forward"]["mlp"]["params"] if _ok(R["forward"]["mlp"]) else None}
    tr, fwd, m50 = S["train"], S["fwd"], S["mem50"]
    S["targets"] = [
        ("training ≥ 10× faster than pykan speed()", _ratio(tr["pykan"], tr["kanir"]), 10.0,
         "≥"),
        ("training within 3× of the equal-parameter MLP", _ratio(tr["kanir"], tr["mlp"]), 3.0,
         "≤"),
        ("forward throughput within 3× of the MLP", _ratio(fwd["mlp"], fwd["kanir"]), 3.0, "≤"),
        ("peak memory at grid 50 ≤ 1/5 of pykan speed()'s", _ratio(m50["kanir"], m50["pykan"]),
         0.2, "≤"),
    ]
    return S


def _verdict(value, bound, op) -> str:
    if value is None:
        return "not measured"
    good = value >= bound if op == "≥" else value <= bound
    return "**pass**" if good else "**FAIL**"


def _x(r):
    return f"{common.fmt(r)}×" if r is not None else "—"


def _fit_ratio(fit: dict) -> str:
    if fit.get("pykan") is not None:
        return _x(_ratio(fit["pykan"], fit["kanir"]))
    r = _ratio(NOTES["pykan_fit_speed_s"], fit["kanir"])
    return f"(≈{_x(r)} vs notes)" if r is not None else "—"


def _note_cell(measured, note_key, unit):
    if measured is not None:
        return common.fmt(measured, unit)
    return f"({common.fmt(NOTES[note_key], unit)} notes)"


def render(R: dict, S: dict, machine: dict, pykan_ok: bool) -> str:
    """The markdown section for bench/results/foundation.md."""
    tr, fit, fwd = S["train"], S["fit"], S["fwd"]
    m5, m50, mm = S["mem5"], S["mem50"], S["mem_mlp"]
    L = ["## Foundation: kanir vs pykan 0.2.8 vs a plain torch MLP", "",
         f"Machine: {common.machine_line(machine)}.", ""]
    if not pykan_ok:
        L += ["pykan is **not installed** (run `bench/setup_pykan.sh`): its columns are empty "
              "and targets against it are not measured.", ""]
    L += [f"float32, k={K}, grid {GRID} unless noted; Adam lr {LR}; identical seeded data for "
          f"every framework; each figure from a fresh process. KAN parameters: "
          f"{R['kan_params_train']:,} for {TRAIN_WIDTH}, {R['kan_params_fwd']:,} for {FWD_WIDTH}"
          f"; the MLPs (SiLU, same depth) have {S['mlp_params']['train']:,} and "
          f"{S['mlp_params']['fwd']:,}. Times are CPU seconds of the measuring process (robust "
          f"on a shared machine; with one thread they equal wall time on an idle one): "
          f"training is 100 × the median step; memory "
          f"is the RSS high-water mark of one forward+backward above the baseline after "
          f"imports, model and data construction.", ""]
    hdr = ["measurement", "kanir", "pykan speed()", "pykan default", "MLP (equal params)",
           "pykan speed() / kanir", "kanir / MLP"]
    pd_train = tr.get("pykan-default")
    rows = [
        ["train [4,100,100,100,1], 100 Adam steps, 1000 samples, bare loop (s)",
         common.fmt(tr["kanir"]), common.fmt(tr["pykan"]),
         f"{common.fmt(pd_train)} (2 steps ×50)" if pd_train else "—",
         common.fmt(tr["mlp"]), _x(_ratio(tr["pykan"], tr["kanir"])),
         _x(_ratio(tr["kanir"], tr["mlp"]))],
        ["same through `fit()` (grid updates, test eval every step) (s)",
         common.fmt(fit["kanir"]), _note_cell(fit.get("pykan"), "pykan_fit_speed_s", ""), "—",
         "—", _fit_ratio(fit), "—"],
        ["forward [100,100,100,1], batch 10,000 (samples/s)", common.fmt(fwd["kanir"]),
         common.fmt(fwd["pykan"]),
         _note_cell(fwd.get("pykan-default"), "pykan_default_fwd_sps", ""),
         common.fmt(fwd["mlp"]), _x(_ratio(fwd["kanir"], fwd["pykan"])),
         _x(_ratio(fwd["mlp"], fwd["kanir"])) + " slower" if fwd["kanir"] else "—"],
        ["extra peak memory, train step [100,100,100,1], batch 10,000, grid 5 (GiB)",
         common.fmt(m5["kanir"]), common.fmt(m5["pykan"]), "—", common.fmt(mm),
         _x(_ratio(m5["pykan"], m5["kanir"])), _x(_ratio(m5["kanir"], mm))],
        ["same at grid 50 (GiB)", common.fmt(m50["kanir"]), common.fmt(m50["pykan"]), "—",
         common.fmt(mm), _x(_ratio(m50["pykan"], m50["kanir"])), _x(_ratio(m50["kanir"], mm))],
    ]
    L += [common.md_table(hdr, rows), ""]
    L += ["Values in parentheses are pykan-notes figures for this machine type (wall clock, "
          "default threads), not this run; the full run (without `--quick`) measures them. "
          "Ratio columns: how many times faster (or smaller) kanir is than pykan; how many "
          "times slower (or larger) kanir is than the MLP.", ""]
    L += ["### Targets (issue 2, item 8)", ""]
    trows = [[name, common.fmt(v) if v is not None else "—", f"{op} {common.fmt(b)}",
              _verdict(v, b, op)] for name, v, b, op in S["targets"]]
    L += [common.md_table(["target", "measured ratio", "required", "result"], trows), ""]
    L += _render_refine(R["refine"])
    return "\n".join(L) + "\n"


def _render_refine(ref: dict) -> list[str]:
    L = ["### float64 grid refinement: [1,1] KAN on sin(3x)+x² on [-1,1]", "",
         f"`fit(opt='LBFGS', steps={ref['steps']}, update_grid=False)` at each grid, "
         "`refine(G)` between grids (as kanir's test and the pykan-notes figures); 1000 "
         "train / 1000 test samples (the same for both); test MSE after each grid's fit.", ""]
    k, p = ref["kanir"], ref["pykan"]
    krows = {r["grid"]: r for r in k["rows"]} if _ok(k) else {}
    prows = {r["grid"]: r for r in p["rows"]} if _ok(p) else {}
    rows = []
    for g in sorted(set(krows) | set(prows)):
        kr, pr = krows.get(g), prows.get(g)
        rows.append([g, common.fmt(kr and kr["test_mse"]), common.fmt(pr and pr["test_mse"]),
                     common.fmt(kr and kr["seconds"]), common.fmt(pr and pr["seconds"])])
    L += [common.md_table(["grid", "kanir test MSE", "pykan test MSE", "kanir CPU s",
                           "pykan CPU s"], rows), ""]
    for name, r in (("kanir", k), ("pykan", p)):
        if r is not None and "error" in r:
            L += [f"{name} failed: `{r['error']}`", ""]
    if _ok(k):
        at200 = krows.get(200, {}).get("test_mse")
        verdict = "pass" if at200 is not None and at200 < 1e-16 else "FAIL"
        L += [f"kanir test MSE at grid 200 below 1e-16 (issue 2): **{verdict}**.", ""]
    return L


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer repetitions; quote pykan's slowest modes from pykan-notes")
    ap.add_argument("--out", type=Path, default=THIS.parent / "results" / "foundation.md")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads per child (default 1: on a shared 2-core machine more "
                         "threads than free cores makes small ops 100x slower)")
    a = ap.parse_args(argv)
    pykan = common.pykan_python()
    run = Runner(a.threads, pykan)
    machine = common.machine(a.threads)
    R = measure(run, a.quick)
    S = summarize(R)
    text = render(R, S, machine, pykan is not None)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    raw = a.out.with_suffix(".json")
    import json

    raw.write_text(json.dumps({"machine": machine, "raw": R}, indent=1, default=str))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
