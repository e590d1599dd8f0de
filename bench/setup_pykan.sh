#!/usr/bin/env bash
# Create (idempotently) the separate pykan 0.2.8 environment used by the benchmarks.
# It lives at bench/.venv-pykan (git-ignored) and is never the project's .venv.
# TORCH_SPEC lets users choose another torch; the default matches these machines.
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv-pykan
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    "$VENV/bin/pip" install "$TORCH_SPEC"
fi
if ! "$VENV/bin/python" -c "import kan, sympy, pandas, sklearn, yaml, tqdm, matplotlib" 2>/dev/null
then
    "$VENV/bin/pip" install pykan==0.2.8 numpy matplotlib sympy pandas scikit-learn pyyaml tqdm
fi
"$VENV/bin/python" -c "import importlib.metadata as m; print('pykan', m.version('pykan'))"
