"""The documentation site: mkdocs.yml's nav and docs/ agree, and the site builds without a warning.

The nav check parses the YAML nav by hand (PyYAML is not a kanir dependency), so it always runs;
the build runs only where the ``docs`` extra is installed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "mkdocs.yml"
NAV_ITEM = re.compile(r"^(?P<indent>\s*)-\s+(?:(?P<title>[^:]+):\s*)?(?P<page>[^\s:]+\.md)?\s*$")


def nav_entries(text: str) -> list[tuple[str, str]]:
    """(title, page) of every page in the ``nav:`` block of mkdocs.yml text, in order; a
    section (``- Title:`` followed by indented items) contributes its items."""
    lines = text.splitlines()
    try:
        start = lines.index("nav:")
    except ValueError:
        raise AssertionError("mkdocs.yml has no top-level 'nav:' block") from None
    entries = []
    for line in lines[start + 1:]:
        if line and not line[0].isspace():
            break  # the next top-level key
        if not line.strip() or line.strip().startswith("#"):
            continue
        m = NAV_ITEM.match(line)
        assert m, f"mkdocs.yml nav line not understood: {line!r}"
        if m["page"]:
            entries.append(((m["title"] or "").strip(), m["page"]))
    return entries


def docs_pages() -> set[str]:
    return {p.name for p in (ROOT / "docs").glob("*.md")}


def test_nav_parser_reads_pages_and_sections():
    text = "site_name: x\nnav:\n  - Home: index.md\n  - Files:\n      - A: a.md\n      - b.md\ntheme: m\n"
    assert nav_entries(text) == [("Home", "index.md"), ("A", "a.md"), ("", "b.md")]


def test_nav_lists_every_docs_page_once_and_only_existing_pages():
    pages = [page for _, page in nav_entries(CONFIG.read_text())]
    assert len(pages) == len(set(pages)), f"pages listed twice in the nav: {pages}"
    missing = sorted(docs_pages() - set(pages))
    assert not missing, f"docs pages not in mkdocs.yml's nav: {missing}"
    absent = sorted(set(pages) - docs_pages())
    assert not absent, f"nav entries without a page in docs/: {absent}"


def test_site_settings_are_the_documented_ones():
    text = CONFIG.read_text()
    for setting in ("site_name: kanir", "docs_dir: docs", "site_dir: build/site", "strict: true",
                    "name: material", "- search", "- mkdocstrings:"):
        assert re.search(rf"^\s*{re.escape(setting)}\s*$", text, re.M), f"mkdocs.yml lacks {setting!r}"


def _docs_extra_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None
               for m in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"))


@pytest.mark.slow
@pytest.mark.skipif(not _docs_extra_installed(), reason="mkdocs is not installed (pip install kanir[docs])")
def test_site_builds_strictly_with_a_page_per_docs_file(tmp_path):
    site = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                          str(CONFIG), "--site-dir", str(site)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stderr[-4000:]}"
    assert "WARNING" not in run.stderr, run.stderr[-4000:]
    for page in sorted(docs_pages()):
        html = site / "index.html" if page == "index.md" else site / page[:-3] / "index.html"
        assert html.is_file(), f"{page} was not built into {html.relative_to(site)}"
    api = (site / "api" / "index.html").read_text()
    for name in ("kanir.KAN.fit", "kanir.KAN.auto_symbolic", "PassManager", "edge_metric_scores",
                 "KANRegressor", "load_dataset"):
        assert name in api, f"the API reference lacks {name}"
