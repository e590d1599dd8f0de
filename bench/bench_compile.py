"""Formula compiler benchmark: kanir.compile vs pykan 0.2.8's kanpiler.

    .venv/bin/python bench/bench_compile.py [--quick] [--out bench/results/compile.md]

On the 120 Feynman equations (kanir.datasets.feynman()): how many each compiles correctly (float64
model within 1e-9 relative error of the formula on 1000 random points inside the ranges, error
relative to max(|y|, 1e-6 max|y|)), total compile time, and edges / width / depth per equation.
On a seeded corpus of random formulas from the grammar (tests/formula_strategies.py, variables in
[0.5, 2]): the share each compiles exactly, and how pykan fails (crash or wrong values).

Each framework runs in a fresh child process (bench/common.py); pykan in bench/.venv-pykan
(``bench/setup_pykan.sh``, or KANIR_BENCH_PYKAN_PYTHON); without it its columns say so. The
functions under "child tasks" run inside those children and import sympy/kanir/kan lazily.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

THIS = Path(__file__).resolve()
N_POINTS = 1000
TOL = 1e-9


# ====================================================================== child tasks
def _points(ranges, n: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    lo = np.array([r[0] for r in ranges], dtype=np.float64)
    hi = np.array([r[1] for r in ranges], dtype=np.float64)
    return lo + (hi - lo) * rng.random((n, len(ranges)))


def _rel_error(got, ref) -> float:
    import numpy as np

    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if not np.all(np.isfinite(ref)):
        ok = np.isfinite(ref)
        got, ref = got[ok], ref[ok]
    if ref.size == 0:
        return float("nan")
    scale = np.maximum(np.abs(ref), 1e-6 * np.abs(ref).max())
    scale = np.where(scale > 0, scale, 1.0)
    with np.errstate(all="ignore"):
        err = np.abs(got - ref) / scale
    return float(np.max(np.where(np.isfinite(err), err, np.inf)))


def _parse(item):
    import sympy

    syms = [sympy.Symbol(v) for v in item["variables"]]
    expr = sympy.parse_expr(item["formula"], local_dict={s.name: s for s in syms})
    return syms, expr


def _reference(syms, expr, X):
    import numpy as np
    import sympy

    f = sympy.lambdify(syms, expr, modules="numpy")
    with np.errstate(all="ignore"):
        return np.asarray(f(*X.T), dtype=np.float64) * np.ones(X.shape[0])


def kanir_task(items: list, n_points: int = N_POINTS, seed: int = 0) -> dict:
    """Compile every item with kanir.compile; time, size and numeric check of each."""
    import time

    import torch

    import kanir
    from kanir.backends.torch import lower

    parsed = [_parse(it) for it in items]
    rows, total = [], 0.0
    kanir.compile("x")  # load the grammar once, as any session would
    for it, (syms, expr) in zip(items, parsed):
        row = {"name": it["name"]}
        t0 = time.perf_counter()
        try:
            g = kanir.compile(expr, syms)
        except Exception as e:  # a failure is a result here
            row.update(status="error", error=f"{type(e).__name__}: {e}"[:200])
            total += time.perf_counter() - t0
            rows.append(row)
            continue
        total += time.perf_counter() - t0
        X = _points(it["ranges"], n_points, seed)
        with torch.no_grad():
            got = lower(g)(torch.tensor(X)).numpy()[:, 0]
        err = _rel_error(got, _reference(syms, expr, X))
        row.update(status="ok" if err < TOL else "wrong", rel_error=err, width=g.width,
                   edges=sum(1 for _ in g.act_edges()), depth=g.depth,
                   nodes=sum(lw.n_nodes for lw in g.layer_widths()[1:-1]),
                   max_width=max(lw.n_nodes for lw in g.layer_widths()))
        rows.append(row)
    return {"rows": rows, "compile_s": total}


def pykan_task(items: list, n_points: int = N_POINTS, seed: int = 0) -> dict:
    """Compile every item with pykan's kanpiler (float64); time, size and numeric check."""
    import time

    import torch

    torch.set_default_dtype(torch.float64)
    from kan.compiler import kanpiler

    parsed = [_parse(it) for it in items]
    rows, total = [], 0.0
    for it, (syms, expr) in zip(items, parsed):
        row = {"name": it["name"]}
        t0 = time.perf_counter()
        try:
            model = kanpiler(syms, expr)
        except Exception as e:  # pykan raising is a result here
            total += time.perf_counter() - t0
            row.update(status="crash", error=f"{type(e).__name__}: {e}"[:200])
            rows.append(row)
            continue
        total += time.perf_counter() - t0
        X = _points(it["ranges"], n_points, seed)
        try:
            with torch.no_grad():
                got = model(torch.tensor(X)).numpy()[:, 0]
        except Exception as e:
            row.update(status="crash", error=f"forward: {type(e).__name__}: {e}"[:200])
            rows.append(row)
            continue
        err = _rel_error(got, _reference(syms, expr, X))
        width = [list(w) if isinstance(w, list | tuple) else [w, 0] for w in model.width]
        edges = 0
        for l in range(model.depth):
            names = model.symbolic_fun[l].funs_name
            edges += sum(1 for row_ in names for f in row_ if f != "0")
        hidden = sum(w[0] + w[1] for w in width[1:-1])
        row.update(status="ok" if err < TOL else "wrong", rel_error=err,
                   width=[w[0] if not w[1] else w for w in width], edges=edges,
                   depth=model.depth, nodes=hidden,
                   max_width=max(w[0] + w[1] for w in width))
        rows.append(row)
    return {"rows": rows, "compile_s": total}


# ====================================================================== inputs
def feynman_items() -> list:
    """The 120 equations shipped with kanir (imported here: the pykan children never call this)."""
    from kanir.datasets import feynman

    return [{"name": e.name, "formula": e.formula, "variables": list(e.variables),
             "ranges": [list(r) for r in e.ranges]} for e in feynman()]


def corpus_items(n: int) -> list:
    """``n`` distinct random formulas from the grammar's strategy (deterministic), as sympy
    text over their free variables with ranges [0.5, 2]."""
    from hypothesis import HealthCheck, Phase, given, settings

    sys.path.insert(0, str(common.ROOT / "tests"))
    from formula_strategies import formulas

    from kanir.grammar.formula import parse_formula

    texts: list[str] = []

    @settings(max_examples=4 * n, derandomize=True, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), deadline=None)
    @given(formulas(max_depth=3))
    def collect(text):
        texts.append(text)

    collect()
    items, seen = [], set()
    for text in texts:
        try:
            f = parse_formula(text)
        except Exception:
            continue
        expr = f.expr
        if not f.variables or str(expr) in seen:
            continue
        seen.add(str(expr))
        items.append({"name": f"c{len(items)}", "text": text, "formula": str(expr),
                      "variables": [s.name for s in f.variables],
                      "ranges": [[0.5, 2.0]] * len(f.variables)})
        if len(items) == n:
            break
    return items


# ====================================================================== report
def _summary(res: dict | None, n: int) -> dict:
    if res is None or "rows" not in res:
        return {}
    rows = res["rows"]
    return {"ok": sum(r["status"] == "ok" for r in rows), "n": n,
            "crash": sum(r["status"] in ("crash", "error") for r in rows),
            "wrong": sum(r["status"] == "wrong" for r in rows),
            "time": res["compile_s"],
            "edges": sum(r.get("edges", 0) for r in rows if r["status"] == "ok")}


def _size_comparison(k_rows, p_rows) -> dict:
    """Among equations both compile correctly: how often kanir is no larger."""
    both = [(k, p) for k, p in zip(k_rows, p_rows) if k["status"] == p["status"] == "ok"]
    return {
        "both": len(both),
        "edges_le": sum(k["edges"] <= p["edges"] for k, p in both),
        "width_le": sum(k["max_width"] <= p["max_width"] for k, p in both),
        "depth_le": sum(k["depth"] <= p["depth"] for k, p in both),
        "nodes_le": sum(k["nodes"] <= p["nodes"] for k, p in both),
        "edges_k": sum(k["edges"] for k, _ in both), "edges_p": sum(p["edges"] for _, p in both),
        "larger": [k["name"] for k, p in both
                   if (k["edges"], k["max_width"], k["depth"]) > (p["edges"], p["max_width"],
                                                                 p["depth"])
                   and (k["edges"] > p["edges"] or k["max_width"] > p["max_width"])],
    }


def report(feyn_k, feyn_p, corp_k, corp_p, n_corpus: int, pykan_note: str) -> str:
    m = common.machine(threads=1)
    lines = ["## Formula compiler: kanir.compile vs pykan kanpiler", "",
             f"Machine: {common.machine_line(m)}.", "",
             f"Correct = the float64 model is within {TOL:g} relative error of the formula "
             f"(error relative to max(|y|, 1e-6·max|y|)) on {N_POINTS} random points inside "
             "the ranges. Compile time: the compile calls only (after imports), all equations "
             f"together. {pykan_note}", ""]
    fk, fp = _summary(feyn_k, 120), _summary(feyn_p, 120)
    ck, cp = _summary(corp_k, n_corpus), _summary(corp_p, n_corpus)

    def cell(s, key, f=str):
        return f(s[key]) if s else "—"

    rows = [
        ["Feynman: correct", cell(fk, "ok", lambda v: f"{v}/120"),
         cell(fp, "ok", lambda v: f"{v}/120")],
        ["Feynman: crashed / wrong", f"{cell(fk, 'crash')} / {cell(fk, 'wrong')}",
         f"{cell(fp, 'crash')} / {cell(fp, 'wrong')}"],
        ["Feynman: compile time, all 120", cell(fk, "time", lambda v: f"{v:.3f} s"),
         cell(fp, "time", lambda v: f"{v:.3f} s")],
        [f"Random corpus ({n_corpus} formulas): exact",
         cell(ck, "ok", lambda v: f"{v}/{n_corpus} ({100 * v / max(n_corpus, 1):.1f}%)"),
         cell(cp, "ok", lambda v: f"{v}/{n_corpus} ({100 * v / max(n_corpus, 1):.1f}%)")],
        ["Random corpus: crashed / wrong", f"{cell(ck, 'crash')} / {cell(ck, 'wrong')}",
         f"{cell(cp, 'crash')} / {cell(cp, 'wrong')}"],
    ]
    lines += [common.md_table(["", "kanir", "pykan 0.2.8"], rows), ""]
    if feyn_p and "rows" in feyn_p:
        s = _size_comparison(feyn_k["rows"], feyn_p["rows"])
        lines += [f"Size on the {s['both']} equations both compile correctly: kanir has no more "
                  f"edges on {s['edges_le']}, no larger max width on {s['width_le']}, no more "
                  f"depth on {s['depth_le']}, no more hidden nodes on {s['nodes_le']}; edges in "
                  f"all: kanir {s['edges_k']}, pykan {s['edges_p']}."
                  + (f" Larger in kanir: {', '.join(s['larger'])}." if s["larger"] else ""), ""]
    if corp_p and "rows" in corp_p:
        s = _size_comparison(corp_k["rows"], corp_p["rows"])
        text = {it["name"]: it["formula"] for it in corp_k["items"]}
        larger = ", ".join(f"`{text[n]}`" for n in s["larger"])
        lines += [f"Corpus, on the {s['both']} formulas both compile correctly: edges in all "
                  f"kanir {s['edges_k']}, pykan {s['edges_p']}; kanir no larger in edges on "
                  f"{s['edges_le']}, in max width on {s['width_le']}."
                  + (f" Larger in kanir: {larger} (check whether pykan is right there only "
                     "because the inputs' range hides what it dropped)." if larger else ""), ""]
    lines += ["Per equation (width as pykan writes it; edges = non-zero activations):", ""]
    prow = {r["name"]: r for r in (feyn_p or {}).get("rows", [])}
    table = []
    for r in feyn_k["rows"]:
        p = prow.get(r["name"], {})
        table.append([r["name"], _status(r), str(r.get("width", "—")), r.get("edges", "—"),
                      _status(p) if p else "—", str(p.get("width", "—")),
                      p.get("edges", "—")])
    lines += [common.md_table(["equation", "kanir", "kanir width", "kanir edges", "pykan",
                               "pykan width", "pykan edges"], table), ""]
    if corp_p and "rows" in corp_p:
        bad = [(it, r) for it, r in zip(corp_k["items"], corp_p["rows"]) if r["status"] != "ok"]
        if bad:
            lines += ["Some corpus formulas pykan fails on (first 15):", ""]
            lines += [common.md_table(["formula", "pykan"], [[f"`{it['formula']}`", _status(r)]
                                                             for it, r in bad[:15]]), ""]
    return "\n".join(lines)


def _status(r: dict) -> str:
    if r.get("status") == "ok":
        return "ok"
    if r.get("status") == "wrong":
        return f"wrong ({r.get('rel_error', float('nan')):.1e})"
    return r.get("status", "—")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a corpus of 60 formulas, not 300")
    ap.add_argument("--out", type=Path, default=THIS.parent / "results" / "compile.md")
    ap.add_argument("--corpus", type=int, default=None, help="number of random formulas")
    args = ap.parse_args(argv)
    n_corpus = args.corpus or (60 if args.quick else 300)
    py = sys.executable
    pyk = common.pykan_python()
    feyn = feynman_items()
    corpus = corpus_items(n_corpus)
    print(f"[compile] kanir on {len(feyn)} equations", file=sys.stderr, flush=True)
    fk = common.run_task(py, THIS, "kanir_task", {"items": feyn})
    ck = common.run_task(py, THIS, "kanir_task", {"items": corpus})
    ck["items"] = corpus
    fp = cp = None
    if pyk is None:
        note = ("pykan columns: not installed (create bench/.venv-pykan with "
                "bench/setup_pykan.sh).")
    else:
        note = f"pykan ran in {pyk}."
        print("[compile] pykan", file=sys.stderr, flush=True)
        fp = common.run_task(pyk, THIS, "pykan_task", {"items": feyn})
        cp = common.run_task(pyk, THIS, "pykan_task", {"items": corpus})
        for res in (fp, cp):
            if "error" in res:
                note += f" pykan child failed: {res['error']}"
    for res in (fk, ck):
        if "error" in res:
            raise SystemExit(f"kanir child failed: {res['error']}")
    text = report(fk, fp, ck, cp, len(corpus), note)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
