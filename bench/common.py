"""Shared helpers for the kanir benchmarks (standard library only).

Every measurement runs in a fresh child process, in either the project's interpreter (kanir,
plain torch) or the separate pykan 0.2.8 environment (``bench/.venv-pykan``, see
``setup_pykan.sh``). The child imports a benchmark module *by file path*, calls one of its
functions with JSON arguments and prints a JSON result, so both interpreters run the same
task code and neither ever imports the other's packages.

Run as ``python common.py --child MODULE_FILE FUNCTION JSON_ARGS`` (done by :func:`run_task`).
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PYKAN_PYTHON = Path(os.environ.get("KANIR_BENCH_PYKAN_PYTHON",
                                   BENCH_DIR / ".venv-pykan" / "bin" / "python"))
RESULT_MARK = "@@KANIR_BENCH_RESULT@@"
GiB = 1024**3


# ---------------------------------------------------------------------- child processes
def pykan_python() -> Path | None:
    """The pykan environment's interpreter, or None when it is absent or lacks pykan."""
    if not PYKAN_PYTHON.exists():
        return None
    probe = subprocess.run([str(PYKAN_PYTHON), "-c", "import importlib.util as u; "
                            "raise SystemExit(u.find_spec('kan') is None)"],
                           capture_output=True, timeout=60)
    return PYKAN_PYTHON if probe.returncode == 0 else None


def child_env(threads: int = 1) -> dict:
    """The environment of a measured child process: ``threads`` BLAS/OpenMP threads, no .pyc."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_task(python, module_file, func: str, args: dict | None = None, threads: int = 1,
             timeout: float = 1800) -> dict:
    """Run ``func(**args)`` from ``module_file`` in a fresh ``python`` process.

    The child runs in an empty temporary directory (pykan writes ./model, ./figures), with
    ``threads`` intra-op threads. Returns the function's dict plus ``wall_s`` (the whole child
    process, imports included), or ``{"error": ...}`` when the child failed or timed out.
    """
    env = child_env(threads)
    cmd = [str(python), str(BENCH_DIR / "common.py"), "--child", str(module_file), func,
           json.dumps({"threads": threads, **(args or {})})]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kanir-bench-") as tmp:
        try:
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            out = json.loads(line[len(RESULT_MARK):])
            out["wall_s"] = wall
            return out
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
    return {"error": f"exit code {proc.returncode}: " + " | ".join(tail)}


def _child_main(module_file: str, func: str, args_json: str) -> None:
    """Entry point inside the child: set threads, import the module by path, run, print JSON."""
    args = json.loads(args_json)
    threads = int(args.pop("threads", 1))
    import torch  # both environments have torch; set threads before any work

    torch.set_num_threads(threads)
    spec = importlib.util.spec_from_file_location("kanir_bench_task", module_file)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH_DIR))
    spec.loader.exec_module(mod)
    result = getattr(mod, func)(**args)
    print(RESULT_MARK + json.dumps(result), flush=True)


# ---------------------------------------------------------------------- timing
def time_calls(fn, n: int, warmup: int = 1) -> dict:
    """Wall and CPU seconds of each of ``n`` calls of ``fn()`` after ``warmup`` untimed calls.

    CPU time (all threads of this process) is what the benchmarks compare: on a shared
    machine other processes inflate wall time but hardly the CPU time a call needs.
    Returns ``{"wall": [...], "cpu": [...]}``.
    """
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(n):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"wall": wall, "cpu": cpu}


def median(xs) -> float:
    return float(statistics.median(xs))


# ---------------------------------------------------------------------- memory (Linux)
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        m = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.MULTILINE)
    return int(m.group(1)) if m else 0


def rss_bytes() -> int:
    """Current resident set size of this process."""
    return _status_kib("VmRSS") * 1024


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (VmHWM) to its current RSS, where allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """This process's RSS high-water mark."""
    return _status_kib("VmHWM") * 1024


def measure_peak(fn) -> dict:
    """Extra peak RSS of ``fn()`` above the current baseline, in bytes.

    Call it after imports, model and data construction: the baseline is the RSS right then
    (the high-water mark is reset first where Linux allows; otherwise the baseline is the
    larger of RSS and the old high-water mark, so the figure can only be underestimated).
    """
    import gc

    gc.collect()
    exact = reset_peak_rss()
    base = rss_bytes() if exact else max(rss_bytes(), peak_rss_bytes())
    fn()
    return {"baseline_bytes": base, "extra_peak_bytes": peak_rss_bytes() - base,
            "hwm_reset": exact}


# ---------------------------------------------------------------------- machine
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(threads: int) -> dict:
    """A description of this machine and run, for the results header."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB
    except (ValueError, OSError):
        mem = float("nan")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {
        "cpu": cpu_model(), "cores": cores, "memory_gib": round(mem, 1),
        "python": platform.python_version(), "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "threads": threads, "load_1min": round(load, 2),
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
    }


def machine_line(m: dict) -> str:
    """One markdown line naming the machine."""
    return (f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; Python {m['python']}, "
            f"torch {m['torch']} (CUDA: {m['cuda']}); {m['threads']} torch thread(s) per run; "
            f"load average at start {m['load_1min']}; {m['date']}")


# ---------------------------------------------------------------------- formatting
def fmt(x, unit: str = "", digits: int = 3) -> str:
    """Compact number formatting; '—' for missing values."""
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if x == 0:
        return f"0{unit}"
    if abs(x) >= 1e5 or abs(x) < 1e-2:
        return f"{x:.{digits - 1}e}{unit}"
    if abs(x) >= 100:
        return f"{x:,.0f}{unit}"
    return f"{x:.{digits}g}{unit}"


def md_table(header: list[str], rows: list[list]) -> str:
    """A markdown table from a header and rows of already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child_main(*sys.argv[2:])
    else:
        print(__doc__)
