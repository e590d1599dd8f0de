"""``make demo`` installs nothing behind the user's back (issue 10): without Graphviz it prints
the install command and runs the demo anyway."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs the make program")
def test_demo_without_dot_tells_the_command_and_installs_nothing(tmp_path):
    bin_dir = tmp_path / "bin"  # the only PATH: a root `id`, a recording `apt-get`, no `dot`
    bin_dir.mkdir()
    log = tmp_path / "apt-get.log"
    for name, body in (("id", "echo 0"), ("apt-get", f'echo "$@" >> {log}')):
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    make = [shutil.which("make"), "-s", "-o", "Makefile", "-C", str(ROOT), "demo",
            f"PY={shutil.which('echo')} RAN", "STAMP=Makefile"]  # the demo itself is not run
    r = subprocess.run(make, env={"PATH": str(bin_dir)}, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert not log.exists(), log.read_text()
    lines = r.stdout.splitlines()
    assert lines[0].startswith("note: Graphviz 'dot' is not installed; the demo does not need it")
    assert "Install it with 'sudo apt-get install graphviz' (Debian/Ubuntu)" in lines[0]
    assert lines[1] == "RAN examples/demo.py"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs the make program")
@pytest.mark.parametrize("target, selection", [
    ("test-all", "-m pytest -n 2 --dist loadgroup"),  # every test, heavy ones included
    ("test", '-m pytest -n 2 --dist loadgroup -m not heavy'),
    ("test-fast", '-m pytest -n 2 --dist loadgroup -m not slow'),
])
def test_test_recipes_exist_and_select_their_tests(target, selection):
    """`make test-all` (advertised in the README) has a recipe; what each test target runs."""
    make = [shutil.which("make"), "-s", "-o", "Makefile", "-C", str(ROOT), target,
            f"PY={shutil.which('echo')} RAN", "STAMP=Makefile", "PYTEST_ARGS=--extra"]
    r = subprocess.run(make, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"RAN {selection} --extra"]
