"""bench/gpu_check.py runs where there is no GPU: it says so, runs its CPU half and exits 0."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_without_cuda_runs_the_cpu_half(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--quick",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no CUDA" in out
    for line in ("forward f32 vs f64", "d(out)/dx f32 vs f64", "parameter gradients f32 vs f64"):
        assert any(line in row and "PASS" in row for row in out.splitlines()), out
    assert "FAIL" not in out and "ERROR" not in out
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert report["environment"]["results"]["cuda"] is False
    parity = report["CPU parity float32 vs float64"]
    assert parity["status"] == "ok"
    assert 0 < parity["results"]["forward f32 vs f64"]["rel"] <= 1e-5  # float32 differs, a little
    assert report["CPU timings"]["results"]["float64 train step ms"] > 0
    assert "## CPU timings" in (tmp_path / "out" / "gpu_check.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing else written
