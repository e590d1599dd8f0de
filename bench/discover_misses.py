"""Which step of ``kanir.discover`` failed on a missed equation, from its result row.

The row holds what :class:`kanir.Discovery` reports (formula, Pareto front, origin, steps with
the trees read, held-out error); the truth is known. Checked in pipeline order, first hit wins:

- "no formula": nothing came out (crash, timeout, or no candidate at all);
- "exact formula on the front, not chosen": a front member is exact, the choice was not;
- "snapping": a formula (chosen or on the front) has the truth's structure with constants
  within 1e-3 relative, but was not snapped to them;
- "candidate missing from library": the truth uses a function the edge library lacks;
- "tree wrong": the truth splits into additive or multiplicative blocks that no tree read from
  the surrogate found (nor the structure the formula came from, e.g. a pair guess), or the
  chosen tree splits the variables differently from the truth;
- "fit not accurate enough": the chosen formula's held-out error or test R² says the fit
  itself was not close (relative RMSE > max(1e-3, 3 x noise), or R² <= 0.999);
- "symbolic fit": structure and fit were right; the edges got the wrong library functions.
"""

from __future__ import annotations

import re

import numpy as np
import srbench_judge as sj
import sympy

LOOSE = 1e-3
#: sympy functions kanir's default edge library can express (powers are always there)
LIBRARY_FUNCS = {sympy.sin, sympy.cos, sympy.tan, sympy.tanh, sympy.exp, sympy.log, sympy.Abs,
                 sympy.sign, sympy.asin, sympy.acos, sympy.atan, sympy.atanh, sympy.cosh}
_KINDS = {"add", "mul", "gsep", "sym"}


def missing_functions(truth: sympy.Expr) -> set[str]:
    """Names of the functions in ``truth`` the edge library has no entry for."""
    return {f.func.__name__ for f in truth.atoms(sympy.Function) if f.func not in LIBRARY_FUNCS}


def blocks(expr: sympy.Expr, kind: str) -> frozenset:
    """The variables of ``expr`` grouped into its top-level additive ("add") or multiplicative
    ("mul") blocks: terms / factors sharing a variable are merged; constants dropped."""
    expr = sympy.expand_power_base(sympy.powdenest(expr, force=True), force=True)
    if kind == "mul":  # powers of products split too: (a*b)**2 = a**2 * b**2
        parts = sympy.Mul.make_args(expr)
    else:
        parts = sympy.Add.make_args(expr)
    groups: list[set] = []
    for p in parts:
        s = {x.name for x in p.free_symbols}
        if not s:
            continue
        touching = [g for g in groups if g & s]
        for g in touching:
            groups.remove(g)
            s |= g
        groups.append(s)
    return frozenset(frozenset(g) for g in groups)


def tree_blocks(compact: str) -> tuple[str, frozenset] | None:
    """(kind, blocks) of a tree's top node from its compact form, e.g. ``add(x, mul(y, z))``
    -> ("add", {{x}, {y, z}}); None for a leaf or a node that splits nothing."""
    m = re.fullmatch(r"\s*(\w+)\((.*)\)\s*", compact)
    if not m or m.group(1) not in ("add", "mul"):
        return None
    children, depth, cur = [], 0, ""
    for ch in m.group(2):
        if ch == "," and depth == 0:
            children.append(cur)
            cur = ""
            continue
        depth += (ch == "(") - (ch == ")")
        cur += ch
    children.append(cur)
    names = [frozenset(n for n in re.findall(r"[A-Za-z_]\w*", c) if n not in _KINDS)
             for c in children]
    return m.group(1), frozenset(n for n in names if n)


def _space_blocks(space: str, compact: str):
    """A tree read in y ("y") or log|y| ("log") space as (kind of y's split, blocks)."""
    tb = tree_blocks(compact)
    if tb is None:
        return None
    kind, b = tb
    if space == "log":
        return ("mul", b) if kind == "add" else None
    return kind, b


def trees_found(steps) -> list[tuple[str, frozenset]]:
    """Every split read by the "tree" steps, as (kind of y's split, blocks)."""
    out = []
    for name, _sec, detail in steps or []:
        if name != "tree" or ":" not in detail:
            continue
        what, text = detail.split(":", 1)
        space = "log" if "log" in what else "y"
        for compact in text.split(";"):
            sb = _space_blocks(space, compact.strip())
            if sb:
                out.append(sb)
    return out


def _close(formula, truth, syms, names, X_test) -> bool:
    """The same formula as the truth up to constants within LOOSE relative."""
    try:
        f = sj.parse(formula, syms)
    except Exception:  # noqa: BLE001
        return False
    if not f.atoms(sympy.Float):
        return False
    if sj.same_structure(sj._numeric(f), sj._numeric(truth), rel=LOOSE):
        return True
    fs = sj.snap(f, rel=LOOSE)
    if fs.atoms(sympy.Float) or sympy.count_ops(fs) > sj.MAX_OPS:
        return False
    order = [syms[n] for n in names]  # sympy only where the snapped values already agree
    try:
        a, b = sj._values(fs, order, X_test), sj._values(truth, order, X_test)
    except Exception:  # noqa: BLE001
        return False
    return bool(np.all(np.abs(a - b) <= 1e-8 * (np.abs(b) + 1e-300))) and sj._equal(fs, truth)


def _first_tree(text: str) -> str:
    """The compact tree at the start of ``text`` (an origin such as
    ``mul(x, gsep(y, z)), edge (0, 1, 0) = log`` -> ``mul(x, gsep(y, z))``)."""
    depth = 0
    for k, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == ")" and depth == 0:
            return text[:k + 1]
        if depth == 0 and ch in ", ":
            return text[:k]
    return text


def classify(row: dict, names, X_test, ranges=None) -> str | None:
    """The failed step for a judged result row of kanir (None when the row is exact)."""
    if row.get("exact"):
        return None
    formula = row.get("formula")
    if not formula:
        return "no formula"
    syms = sj.symbols(names, ranges)
    truth = sj.parse(row["truth"], syms)
    front = [f for _c, _e, f in row.get("front") or []]
    for f in front:
        if f != formula and sj.judge(f, truth, names, X_test, ranges=ranges)["exact"]:
            return "exact formula on the front, not chosen"
    if any(_close(f, truth, syms, names, X_test) for f in [formula, *front]):
        return "snapping"
    if missing_functions(truth):
        return "candidate missing from library"
    found = trees_found(row.get("steps"))
    origin = row.get("origin") or ""
    m = re.match(r"(log )?tree (.*)", origin)
    sb = _space_blocks("log" if m.group(1) else "y", _first_tree(m.group(2))) if m else None
    if sb:  # the structure the formula came from (a pair guess, a relabelled tree) counts too
        found.append(sb)
    for kind in ("add", "mul"):
        want = blocks(truth, kind)
        if len(want) > 1 and (kind, want) not in found:
            return "tree wrong"
    if sb and blocks(truth, sb[0]) != sb[1]:
        return "tree wrong"
    err = row.get("held_out")  # relative to noisy labels when there is noise: allow for it
    limit = max(LOOSE, 3 * float(row.get("noise") or 0))
    if (err is not None and err == err and err > limit) or not row.get("r2", 0) > sj.R2_OK:
        return "fit not accurate enough"
    return "symbolic fit"
