"""One-shot GPU check of kanir (issue 15): CUDA-vs-CPU parity in float64, training-step
throughput and peak memory against an equal-parameter MLP, torch.compile on/off, and host
synchronisations per step. Without CUDA it says "no CUDA" and runs the CPU half (float32 vs
float64 parity, short timings).

    python bench/gpu_check.py [--quick] [--out DIR] [--budget-s 420]

Every section runs in try/except (a failure is reported and the script goes on); a global time
budget skips the sections left when it runs out. ``--out`` receives gpu_check.md and
gpu_check.json; without it nothing is written.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import copy
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
PARITY_TOL = 1e-10


def say(*parts) -> None:
    print(*parts, flush=True)


# ---------------------------------------------------------------------- kanir without install
def import_kanir():
    """``import kanir``; from a plain checkout (not installed) through a temporary folder of
    links that rebuilds the package layout pyproject.toml declares (passes/, backends/ and
    grammar/ are subpackages of kanir)."""
    try:
        import kanir  # noqa: F401

        if Path(kanir.__file__).resolve().parent.parent == ROOT or "site-packages" in kanir.__file__:
            return kanir
    except ImportError as e:
        if "kanir" not in str(e):
            raise
    shim = Path(tempfile.mkdtemp(prefix="kanir-gpu-check-"))
    atexit.register(shutil.rmtree, shim, True)
    pkg = shim / "kanir"
    pkg.mkdir()
    for entry in (ROOT / "kanir").iterdir():
        (pkg / entry.name).symlink_to(entry)
    for sub in ("passes", "backends", "grammar"):
        (pkg / sub).symlink_to(ROOT / sub)
    for name in [m for m in sys.modules if m == "kanir" or m.startswith("kanir.")]:
        del sys.modules[name]
    sys.path.insert(0, str(shim))
    import kanir

    return kanir


# ---------------------------------------------------------------------- report and budget
class Check:
    """Sections with a shared deadline; results collected for the markdown/JSON summary."""

    def __init__(self, budget_s: float):
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + budget_s
        self.sections: dict[str, dict] = {}

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def run(self, name: str, fn, *args, need_s: float = 5.0, **kw) -> dict:
        rec = {"status": "ok", "results": {}}
        self.sections[name] = rec
        if self.left() < need_s:
            rec["status"] = "skipped"
            rec["note"] = f"time budget exhausted ({self.left():.0f} s left, needs ~{need_s:.0f} s)"
            say(f"\n## {name}: SKIPPED ({rec['note']})")
            return rec
        say(f"\n## {name}")
        t = time.perf_counter()
        try:
            fn(rec["results"], *args, **kw)
        except Exception as e:  # report and carry on: the run happens once
            rec["status"] = "error"
            rec["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:500]
            rec["traceback"] = traceback.format_exc(limit=6)
            say(f"  ERROR {rec['error']}")
            say("  " + rec["traceback"].replace("\n", "\n  "))
        finally:
            rec["seconds"] = round(time.perf_counter() - t, 2)
            if torch.cuda.is_available():
                with contextlib.suppress(Exception):
                    torch.cuda.synchronize()
                    torch.cuda.empty_cache()
        return rec


def parity(res: dict, name: str, a, b, tol: float = PARITY_TOL) -> float:
    """Record and print max|a-b| / max(1, max|b|) over tensors (or lists of tensors)."""
    a = a if isinstance(a, (list, tuple)) else [a]
    b = b if isinstance(b, (list, tuple)) else [b]
    diff, scale = 0.0, 1.0
    for u, v in zip(a, b, strict=True):
        u, v = u.detach().double().cpu(), v.detach().double().cpu()
        diff = max(diff, float((u - v).abs().max()) if u.numel() else 0.0)
        scale = max(scale, float(v.abs().max()) if v.numel() else 0.0)
    rel = diff / scale
    ok = rel <= tol
    res[name] = {"max_diff": diff, "rel": rel, "tol": tol, "pass": ok}
    say(f"  {name:<40} max|diff| {diff:.3e}  rel {rel:.3e}  {'PASS' if ok else 'FAIL'} (<= {tol:g})")
    return rel


def timed(fn, reps: int, warmup: int = 1, cuda: bool = False) -> float:
    """Median seconds of ``fn()`` over ``reps`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


# ---------------------------------------------------------------------- models
def target(x: torch.Tensor) -> torch.Tensor:
    return x[:, [0]] * x[:, [1]] + torch.sin(2 * x[:, [2]])


def mixed_model(kanir, dtype, device="cpu", seed: int = 0):
    """A trained-ish KAN with spline, symbolic and mult edges."""
    m = kanir.KAN(width=[3, [3, 1], 1], grid=5, k=3, seed=seed, device="cpu", dtype=dtype,
                  versions=False)
    with contextlib.redirect_stdout(open(os.devnull, "w")):
        m.fix_symbolic(0, 2, 0, "sin", fit_params=False)
    with torch.no_grad():
        m.net.layers[0].sym_affine[2, 0] = torch.tensor([2.0, 0.0, 1.0, 0.0], dtype=dtype)
    return m.to(device)


def dataset(kanir, n: int, dtype, device="cpu"):
    d = kanir.create_dataset(target, n_var=3, seed=0, train_num=n, test_num=max(n // 4, 10),
                             dtype=dtype)
    return {k: v.to(device) for k, v in d.items()}


def mlp(n_in: int, depth: int, n_params: int, device, dtype) -> torch.nn.Sequential:
    """An MLP [n_in, h, ..., h, 1] (``depth`` hidden layers, SiLU) with about n_params weights."""
    # n_in*h + h + (depth-1)*(h*h + h) + h + 1 = n_params
    a, b, c = depth - 1, n_in + 1 + (depth - 1) + 1, 1 - n_params
    h = max(1, round((-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)) if a else round(-c / b))
    layers, w = [], n_in
    for _ in range(depth):
        layers += [torch.nn.Linear(w, h), torch.nn.SiLU()]
        w = h
    layers.append(torch.nn.Linear(w, 1))
    return torch.nn.Sequential(*layers).to(device=device, dtype=dtype)


def n_trainable(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def train_step_fn(model, x, y):
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()

    return step


# ---------------------------------------------------------------------- sections
def section_env(res: dict, kanir_holder: dict) -> None:
    res["python"] = sys.version.split()[0]
    res["platform"] = platform.platform()
    res["torch"] = torch.__version__
    res["cuda"] = torch.cuda.is_available()
    if res["cuda"]:
        res["device_name"] = torch.cuda.get_device_name(0)
        res["cuda_version"] = torch.version.cuda
    for mod in ("lark", "graphviz", "sympy", "networkx"):
        try:
            __import__(mod)
            res[mod] = "ok"
        except Exception as e:
            res[mod] = f"missing ({type(e).__name__})"
    kanir = import_kanir()
    kanir_holder["kanir"] = kanir
    res["kanir"] = str(Path(kanir.__file__).resolve().parent)
    for k, v in res.items():
        say(f"  {k}: {v}")


def section_cpu_parity(res: dict, kanir, quick: bool) -> None:
    """float32 vs float64 on the CPU: forward, input gradient, parameter gradients."""
    m64 = mixed_model(kanir, torch.float64)
    m32 = copy.deepcopy(m64).to(torch.float32)
    x = dataset(kanir, 256 if quick else 2048, torch.float64)["train_input"]
    with torch.no_grad():
        parity(res, "forward f32 vs f64", m32(x.float()), m64(x), tol=1e-5)
    parity(res, "d(out)/dx f32 vs f64", _grad_of(m32, x.float()), _grad_of(m64, x), tol=1e-4)
    for m, xx in ((m64, x), (m32, x.float())):
        m.zero_grad()
        ((m(xx) - target(xx)) ** 2).mean().backward()
    g64 = [p.grad for p in m64.parameters() if p.grad is not None]
    g32 = [p.grad for p in m32.parameters() if p.grad is not None]
    parity(res, "parameter gradients f32 vs f64", g32, g64, tol=1e-4)


def _grad_of(model, x):
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(x).sum(), x)
    return g


def section_cpu_timings(res: dict, kanir, quick: bool) -> None:
    """Short CPU timings of forward and a training step (not a benchmark)."""
    width = [4, 32, 32, 1] if quick else [4, 64, 64, 1]
    batch = 500 if quick else 10000
    for dtype in (torch.float32, torch.float64):
        m = kanir.KAN(width=width, grid=5, seed=0, device="cpu", dtype=dtype, versions=False)
        x = torch.rand(batch, width[0], dtype=dtype) * 2 - 1
        y = x.sum(1, keepdim=True)
        with torch.no_grad():
            fwd = timed(lambda m=m, x=x: m(x), reps=2 if quick else 10)
        step = timed(train_step_fn(m, x, y), reps=2 if quick else 10)
        name = str(dtype).replace("torch.", "")
        res[f"{name} forward ms"] = round(1e3 * fwd, 3)
        res[f"{name} train step ms"] = round(1e3 * step, 3)
        say(f"  {width} batch {batch} {name}: forward {1e3 * fwd:.2f} ms, train step {1e3 * step:.2f} ms")


def section_cuda_parity(res: dict, kanir, quick: bool, dev: str) -> None:
    """float64 CUDA vs CPU: forward, backward, Hessians, fits, grid update, refine, prune,
    auto_symbolic, save on the GPU and load on the CPU."""
    dt = torch.float64
    cpu = mixed_model(kanir, dt, "cpu")
    gpu = copy.deepcopy(cpu).to(dev)
    data = dataset(kanir, 500 if quick else 2000, dt)
    data_gpu = {k: v.to(dev) for k, v in data.items()}
    x, xg = data["test_input"], data_gpu["test_input"]
    with torch.no_grad():
        parity(res, "forward", gpu(xg), cpu(x))
    for m, xx in ((cpu, x), (gpu, xg)):
        m.zero_grad()
        ((m(xx) - target(xx)) ** 2).mean().backward()
    parity(res, "backward (parameter gradients)",
           [p.grad for p in gpu.parameters() if p.grad is not None],
           [p.grad for p in cpu.parameters() if p.grad is not None])
    parity(res, "backward (input gradient)", _grad_of(gpu, xg), _grad_of(cpu, x))
    pts = x[:4]
    h_cpu = torch.autograd.functional.hessian(lambda z: cpu(z).sum(), pts)
    h_gpu = torch.autograd.functional.hessian(lambda z: gpu(z).sum(), pts.to(dev))
    parity(res, "Hessian d2out/dx2 (autograd.functional)", h_gpu, h_cpu)
    fh = torch.func.hessian(lambda z: cpu(z.unsqueeze(0)).sum())
    fhg = torch.func.hessian(lambda z: gpu(z.unsqueeze(0)).sum())
    parity(res, "Hessian at one point (torch.func)", fhg(pts[0].to(dev)), fh(pts[0]))

    steps = 3 if quick else 5
    for opt, kw in (("LBFGS", {}), ("Adam", {"lr": 1e-2})):
        a, b = copy.deepcopy(cpu), copy.deepcopy(gpu)
        ha = a.fit(data, opt=opt, steps=steps if opt == "LBFGS" else 4 * steps, progress=False,
                   update_grid=True, grid_update_num=2, stop_grid_update_step=steps, **kw)
        hb = b.fit(data_gpu, opt=opt, steps=steps if opt == "LBFGS" else 4 * steps, progress=False,
                   update_grid=True, grid_update_num=2, stop_grid_update_step=steps, **kw)
        parity(res, f"fit {opt} (parameters, grids)", list(b.parameters()) + list(b.buffers()),
               list(a.parameters()) + list(a.buffers()), tol=1e-8)
        parity(res, f"fit {opt} (train loss history)",
               torch.tensor(hb["train_loss"]), torch.tensor(ha["train_loss"]), tol=1e-8)
    trained_cpu, trained_gpu = a, b  # after Adam

    from kanir.train.grids import update_grid

    a, b = copy.deepcopy(cpu), copy.deepcopy(gpu)
    with torch.no_grad():
        update_grid(a.net, data["train_input"])
        update_grid(b.net, data_gpu["train_input"])
    parity(res, "grid update (grids, coefficients)", [l.grid for l in b.net.layers] +
           [l.coef for l in b.net.layers], [l.grid for l in a.net.layers] + [l.coef for l in a.net.layers])
    a.refine(10, x=data["train_input"])
    b.refine(10, x=data_gpu["train_input"])
    parity(res, "refine(10) (coefficients)", [l.coef for l in b.net.layers],
           [l.coef for l in a.net.layers])
    with torch.no_grad():
        parity(res, "refine(10) (outputs)", b(xg), a(x))

    a, b = copy.deepcopy(trained_cpu), copy.deepcopy(trained_gpu)
    a.prune(x=data["train_input"])
    b.prune(x=data_gpu["train_input"])
    res["prune widths"] = {"cpu": str(a.width), "cuda": str(b.width), "pass": a.width == b.width}
    say(f"  prune widths: cpu {a.width}  cuda {b.width}  {'PASS' if a.width == b.width else 'FAIL'}")
    if a.width == b.width:
        with torch.no_grad():
            parity(res, "prune (outputs)", b(xg), a(x))

    lib = ["x", "x^2", "sin", "exp", "tanh"]
    a, b = copy.deepcopy(trained_cpu), copy.deepcopy(trained_gpu)
    a.auto_symbolic(lib=lib, verbose=0, x=data["train_input"])
    b.auto_symbolic(lib=lib, verbose=0, x=data_gpu["train_input"])
    same = [r for r in a.net.layers[0].sym_funs] == [r for r in b.net.layers[0].sym_funs] and \
        [r for r in a.net.layers[1].sym_funs] == [r for r in b.net.layers[1].sym_funs]
    res["auto_symbolic functions"] = {"same": same}
    say(f"  auto_symbolic chose the same functions: {'PASS' if same else 'FAIL'}")
    parity(res, "auto_symbolic (symbolic parameters)", [l.sym_affine for l in b.net.layers],
           [l.sym_affine for l in a.net.layers], tol=1e-8)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gpu.kanir"
        trained_gpu.save(path)
        back = kanir.load(path, device="cpu")
    res["load on cpu device"] = str(back.device)
    with torch.no_grad():
        parity(res, "save on GPU -> load on CPU (outputs)", back(x), trained_gpu(xg))


def section_throughput(res: dict, kanir, quick: bool, check: Check, dev: str, smoke: bool) -> None:
    """Training step (forward, MSE, backward, Adam) of KANs vs equal-parameter MLPs, float32."""
    widths = [[4, 100, 100, 100, 1], [100, 100, 100, 1]]
    batches = [500] if smoke else [10_000] if quick else [10_000, 100_000]
    grids = [5] if quick else [5, 50, 200]
    say(f"  {'width':<22} {'batch':>7} {'G':>4} {'params':>9} {'KAN ms':>9} {'MLP ms':>8} "
        f"{'ratio':>6} {'KAN GiB':>8} {'MLP GiB':>8} {'KAN Msamp/s':>11}")
    for width in widths:
        for batch in batches:
            for G in grids:
                key = f"{width} batch={batch} G={G}"
                if check.left() < 20:
                    res[key] = {"skipped": "time budget"}
                    say(f"  {key}: skipped (time budget)")
                    continue
                row = {}
                res[key] = row
                try:
                    _throughput_row(row, kanir, width, batch, G, dev, quick)
                    say(f"  {str(width):<22} {batch:>7} {G:>4} {row['params']:>9} "
                        f"{row['kan_ms']:>9.2f} {row['mlp_ms']:>8.2f} {row['ratio']:>6.2f} "
                        f"{row['kan_peak_gib']:>8.2f} {row['mlp_peak_gib']:>8.2f} "
                        f"{batch / row['kan_ms'] / 1e3:>11.2f}")
                except Exception as e:
                    row["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:300]
                    say(f"  {key}: ERROR {row['error']}")
                finally:
                    if dev == "cuda":
                        torch.cuda.empty_cache()


def _throughput_row(row, kanir, width, batch, G, dev, quick):
    gen = torch.Generator(device=dev).manual_seed(0)
    x = torch.rand(batch, width[0], device=dev, generator=gen) * 2 - 1
    y = torch.sin(x[:, :1]) + x[:, 1:2] ** 2
    reps = 3 if quick else 5
    cuda = dev == "cuda"
    kan = kanir.KAN(width=width, grid=G, seed=0, device=dev, versions=False)
    n = n_trainable(kan)
    row["kan_peak_gib"], t_kan = _peak_and_time(train_step_fn(kan, x, y), reps, cuda)
    del kan
    net = mlp(width[0], len(width) - 2, n, dev, torch.float32)
    row["mlp_peak_gib"], t_mlp = _peak_and_time(train_step_fn(net, x, y), reps, cuda)
    row.update(params=n, mlp_params=n_trainable(net), kan_ms=1e3 * t_kan, mlp_ms=1e3 * t_mlp,
               ratio=t_kan / t_mlp)


def _peak_and_time(step, reps: int, cuda: bool):
    """(peak GiB allocated above the state before, median seconds) of a training step."""
    if not cuda:
        return 0.0, timed(step, reps=reps, warmup=2)
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    t = timed(step, reps=reps, warmup=2, cuda=True)
    return (torch.cuda.max_memory_allocated() - base) / 2**30, t


COMPILE_MARK = "@@GPU_CHECK_COMPILE@@"


def section_compile(res: dict, quick: bool, dev: str, smoke: bool, check: Check) -> None:
    """torch.compile of the KAN module: eager vs compiled training step (and compile time), in
    a child process killed when the time budget runs out (compilation time is unbounded)."""
    import subprocess

    limit = max(20.0, min(check.left() - 5, 300.0))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--compile-child", dev,
           "smoke" if smoke else "full"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired as e:
        res["error"] = f"torch.compile did not finish within {limit:.0f} s (budget)"
        say(f"  {res['error']}")
        tail = (e.stdout or b"")[-2000:]
        say("  " + (tail.decode(errors="replace") if isinstance(tail, bytes) else tail))
        return
    for line in proc.stdout.splitlines():
        if line.startswith(COMPILE_MARK):
            res.update(json.loads(line[len(COMPILE_MARK):]))
        else:
            say(line)
    if proc.returncode != 0:
        res["error"] = f"child exited {proc.returncode}: " + proc.stderr.strip()[-400:]
        say(f"  {res['error']}")
    breaks = [ln for ln in proc.stderr.splitlines() if "Graph break" in ln or "graph break" in ln]
    res["graph_break_lines"] = len(breaks)
    if breaks:
        say(f"  dynamo reported {len(breaks)} graph-break lines, first: {breaks[0][-200:]}")


def compile_child(dev: str, smoke: bool) -> None:
    kanir = import_kanir()
    cuda = dev == "cuda"
    res: dict = {}
    width, batch = [4, 100, 100, 100, 1], 500 if smoke else 10_000
    x = torch.rand(batch, width[0], device=dev) * 2 - 1
    y = torch.sin(x[:, :1])
    kan = kanir.KAN(width=width, grid=5, seed=0, device=dev, versions=False)
    eager = timed(train_step_fn(kan, x, y), reps=5, warmup=2, cuda=cuda)
    res["eager_ms"] = 1e3 * eager
    say(f"  eager training step {width} batch {batch}: {1e3 * eager:.2f} ms")
    kan2 = copy.deepcopy(kan)
    try:
        compiled = torch.compile(kan2)
        t = time.perf_counter()
        step = train_step_fn(compiled, x, y)
        step()
        if cuda:
            torch.cuda.synchronize()
        res["compile_s"] = time.perf_counter() - t
        ms = 1e3 * timed(step, reps=5, warmup=1, cuda=cuda)
        with torch.no_grad():
            res["max|compiled-eager|"] = float((compiled(x) - kan2(x)).abs().max())
        res.update(compiled_ms=ms, speedup=eager * 1e3 / ms)
        say(f"  torch.compile: first step {res['compile_s']:.1f} s, then {ms:.2f} ms "
            f"({res['speedup']:.2f}x eager); outputs differ by {res['max|compiled-eager|']:.2e}")
    except Exception as e:
        res["compile_error"] = f"{type(e).__name__}: {e}".splitlines()[0][:400]
        say(f"  torch.compile FAILED: {res['compile_error']}")
    print(COMPILE_MARK + json.dumps(res), flush=True)


def section_syncs(res: dict, kanir, quick: bool, dev: str) -> None:
    """Host synchronisations per step (CUDA sync debug mode, warnings counted)."""
    cuda = dev == "cuda"
    data = dataset(kanir, 2000, torch.float32, dev)
    kan = kanir.KAN(width=[3, [3, 1], 1], grid=5, seed=0, device=dev, versions=False)
    with contextlib.redirect_stdout(open(os.devnull, "w")):
        kan.fix_symbolic(0, 2, 0, "sin", fit_params=False)
    x = data["train_input"]
    kan(x)  # warm caches first
    cases = {
        "forward (no grad)": (lambda: kan(x).sum(), 5),
        "forward+backward": (lambda: kan(x).square().mean().backward(), 5),
        "fit Adam step (no grid update)": (lambda: kan.fit(data, opt="Adam", steps=5, lr=1e-3,
                                                           update_grid=False, progress=False), 5),
        "fit LBFGS step (no grid update)": (lambda: kan.fit(data, opt="LBFGS", steps=2,
                                                            update_grid=False, progress=False), 2),
        "fit LBFGS step with lamb>0": (lambda: kan.fit(data, opt="LBFGS", steps=2, lamb=1e-3,
                                                       update_grid=False, progress=False), 2),
    }
    for name, (fn, per) in cases.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if cuda:
                torch.cuda.set_sync_debug_mode("warn")
            try:
                if name.startswith("forward (no"):
                    with torch.no_grad():
                        for _ in range(per):
                            fn()
                elif name.startswith("forward+"):
                    for _ in range(per):
                        fn()
                else:
                    fn()
            finally:
                if cuda:
                    torch.cuda.set_sync_debug_mode(0)
        syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
        where: dict[str, int] = {}
        for w in syncs:
            loc = f"{Path(w.filename).name}:{w.lineno}"
            where[loc] = where.get(loc, 0) + 1
        top = sorted(where.items(), key=lambda kv: -kv[1])[:6]
        res[name] = {"syncs": len(syncs), "steps": per, "per_step": len(syncs) / per,
                     "where": dict(top)}
        say(f"  {name:<34} {len(syncs) / per:7.1f} syncs/step   at {dict(top)}")


# ---------------------------------------------------------------------- summary
def write_summary(check: Check, out: Path, quick: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(check.sections, indent=1, default=str))
    lines = ["# kanir GPU check", "", f"quick: {quick}; total {time.perf_counter() - check.t0:.0f} s", ""]
    for name, rec in check.sections.items():
        lines.append(f"## {name} ({rec['status']}, {rec.get('seconds', 0)} s)")
        lines.append("")
        if rec.get("note"):
            lines.append(f"*{rec['note']}*")
        if rec.get("error"):
            lines.append(f"**error:** `{rec['error']}`")
        for k, v in rec["results"].items():
            if isinstance(v, dict) and "max_diff" in v:
                v = (f"max diff {v['max_diff']:.3e}, rel {v['rel']:.3e} "
                     f"{'PASS' if v['pass'] else 'FAIL'} (tol {v['tol']:g})")
            elif isinstance(v, dict):
                v = ", ".join(f"{a}={b:.4g}" if isinstance(b, float) else f"{a}={b}"
                              for a, b in v.items())
            elif isinstance(v, float):
                v = f"{v:.4g}"
            lines.append(f"- {k}: {v}")
        lines.append("")
    (out / "gpu_check.md").write_text("\n".join(lines))
    say(f"\nwrote {out / 'gpu_check.md'} and {out / 'gpu_check.json'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    ap.add_argument("--out", type=Path, default=None, help="folder for gpu_check.md/.json")
    ap.add_argument("--budget-s", type=float, default=420.0, help="global time budget (s)")
    ap.add_argument("--smoke-cpu", action="store_true", help=argparse.SUPPRESS)  # GPU half on CPU
    ap.add_argument("--compile-child", nargs=2, help=argparse.SUPPRESS)  # DEVICE smoke|full
    args = ap.parse_args(argv)
    if args.compile_child:
        compile_child(args.compile_child[0], args.compile_child[1] == "smoke")
        return 0
    check = Check(args.budget_s)
    holder: dict = {}
    cuda = torch.cuda.is_available()
    say("kanir GPU check" + ("" if cuda else ": no CUDA (running the CPU half only)"))
    check.run("environment", section_env, holder, need_s=0)
    kanir = holder.get("kanir")
    if kanir is None:
        say("kanir could not be imported; nothing else to check")
    else:
        check.run("CPU parity float32 vs float64", section_cpu_parity, kanir, args.quick)
        check.run("CPU timings", section_cpu_timings, kanir, args.quick)
        if cuda or args.smoke_cpu:  # --smoke-cpu: the GPU sections on the CPU, to test this script
            dev, smoke = ("cuda", False) if cuda else ("cpu", True)
            quick = args.quick or smoke
            check.run("CUDA parity float64 vs CPU", section_cuda_parity, kanir, quick, dev,
                      need_s=20)
            check.run("host synchronisations", section_syncs, kanir, quick, dev, need_s=15)
            check.run("throughput and peak memory (float32)", section_throughput, kanir,
                      quick, check, dev, smoke, need_s=30)
            check.run("torch.compile", section_compile, quick, dev, smoke, check, need_s=30)
        else:
            say("\nno CUDA: CUDA parity, throughput, torch.compile and sync counts skipped")
    if args.out is not None:
        with contextlib.suppress(Exception):
            write_summary(check, args.out, args.quick)
    bad = [n for n, r in check.sections.items() if r["status"] == "error"]
    fails = [f"{n}: {k}" for n, r in check.sections.items() for k, v in r["results"].items()
             if isinstance(v, dict) and v.get("pass") is False]
    say(f"\ndone in {time.perf_counter() - check.t0:.0f} s; sections with errors: {bad or 'none'}; "
        f"parity failures: {fails or 'none'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
