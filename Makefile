# kanir: `make demo` runs the main job, `make test` runs the tests. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
# torch==2.13.0 is a local CPU wheel on the project machines; set TORCH_SPEC to choose another.
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kanir-installed
DOCS_STAMP := $(VENV)/.kanir-docs
PYTEST_ARGS ?=

.PHONY: demo test test-fast test-all lint bench docs setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	@touch $(STAMP)

# The demo needs no Graphviz; without `dot` it says how to get SVG/PNG diagrams and installs nothing.
demo: $(STAMP)
	@command -v dot >/dev/null 2>&1 || echo "note: Graphviz 'dot' is not installed; the demo does not need it, but SVG/PNG diagrams (kanir compile --diagram kan.svg, model.plot('kan.svg')) do. Install it with 'sudo apt-get install graphviz' (Debian/Ubuntu) or 'brew install graphviz' (macOS); .dot diagrams work without it."
	$(PY) examples/demo.py

# The CI selection: every fast test plus the slow scientific checks that fit in the budget.
test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup -m "not heavy" $(PYTEST_ARGS)

test-all: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) bench/run_all.py

# The documentation site (mkdocs, material theme, mkdocstrings) from docs/ into build/site/.
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e ".[docs]"
	@touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir build/site

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
