"""Golden pass tests, FileCheck style: one ``.kir`` file holds the pipeline, optional data,
the input IR and the expected output (the IR after the pipeline, or an analysis result).

Layout of a file::

    # PIPELINE: prune{edge_th=0.2}
    # DATA: [[0.1, -0.5], ...]          (optional: samples for passes that need data)
    # INPUT
    <IR text>
    # OUTPUT
    <IR text, or "# RESULT: <json>" for a pipeline that ends in an analysis>

Numbers are compared with a relative tolerance of 1e-9 (passes measured on data depend on
summation order); everything else must match exactly.
"""

from __future__ import annotations

import json
import re

import numpy as np

from kanir.ir.text import parse_ir, to_text
from kanir.passes.manager import PassManager

NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|nan|inf")


def jsonable(v):
    """An analysis result as JSON-able values (arrays and tuples become lists)."""
    if isinstance(v, np.ndarray | np.generic):
        return jsonable(v.tolist())
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if hasattr(v, "_asdict"):
        return jsonable(v._asdict())
    if hasattr(v, "__dataclass_fields__"):
        return {k: jsonable(getattr(v, k)) for k in v.__dataclass_fields__}
    if hasattr(v, "tolist"):
        return jsonable(v.tolist())
    return v


def run_case(text: str) -> tuple[str, str]:
    """(expected output, actual output) of a golden file's text."""
    head, rest = text.split("# INPUT\n", 1)
    source, expected = rest.split("# OUTPUT\n", 1)
    pipeline = re.search(r"^# PIPELINE: (.*)$", head, re.M).group(1)
    data = re.search(r"^# DATA: (.*)$", head, re.M)
    x = None if data is None else np.array(json.loads(data.group(1)), dtype=np.float64)
    pm = PassManager(pipeline, x=x)
    out = pm.run(parse_ir(source))
    if pm.records and pm.records[-1].kind == "analysis":
        actual = "# RESULT: " + json.dumps(jsonable(pm.records[-1].result)) + "\n"
    else:
        actual = to_text(out)
    return expected, actual


def render_case(graph, pipeline: str, data) -> str:
    """A golden file's text for ``graph`` under ``pipeline`` (its output computed now)."""
    head = f"# PIPELINE: {pipeline}\n"
    if data is not None:
        head += f"# DATA: {json.dumps(data)}\n"
    text = head + "# INPUT\n" + to_text(graph) + "# OUTPUT\n"
    _, actual = run_case(text + "\n")
    return text + actual


def same_text(expected: str, actual: str, rtol: float = 1e-9, atol: float = 1e-12) -> str | None:
    """None when the texts agree (numbers to the tolerance), else the first difference."""
    e_lines, a_lines = expected.splitlines(), actual.splitlines()
    if len(e_lines) != len(a_lines):
        return f"{len(a_lines)} lines, expected {len(e_lines)}"
    for n, (e, a) in enumerate(zip(e_lines, a_lines), 1):
        if NUMBER.sub("#", e) != NUMBER.sub("#", a):
            return f"line {n}: {a!r}, expected {e!r}"
        for u, v in zip(NUMBER.findall(e), NUMBER.findall(a)):
            fu, fv = float(u), float(v)
            if not (fu == fv or (np.isnan(fu) and np.isnan(fv))
                    or abs(fu - fv) <= atol + rtol * abs(fu)):
                return f"line {n}: {v} differs from the expected {u}: {a!r}"
    return None
