"""docs/architecture.md's "Layout" picture matches the real import graph between kanir's parts.

Every module under kanir/, passes/, backends/ and grammar/ is parsed with ``ast`` (nothing is
imported). An edge A -> B means a module of part A imports a module of part B: at module level,
inside a function (lazy imports are dependencies too: they run), or through
``importlib.import_module("kanir....")`` and the package's lazy-name table. The graph is compared
with the table in the Layout section, parsed from the markdown, and checked for cycles.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
#: source folder -> the package it is installed as (pyproject's package-dir)
FOLDERS = {"kanir": "kanir", "passes": "kanir.passes", "backends": "kanir.backends",
           "grammar": "kanir.grammar"}
SUBPACKAGES = ("ir", "frontend", "symbolic", "train", "science", "model", "cli", "datasets", "workflows")
TOP_MODULES = ("errors", "arguments", "sklearn")
IR_THIRD_PARTY = {"numpy", "torch", "networkx", "sympy", "lark"}  # lark: the IR text


# ----------------------------------------------------------------------------- the real graph
def module_name(path: Path) -> tuple[str, bool]:
    """(dotted name of the installed module, whether it is a package __init__)."""
    rel = path.relative_to(ROOT)
    parts = FOLDERS[rel.parts[0]].split(".") + list(rel.parts[1:])
    parts[-1] = parts[-1].removesuffix(".py")
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def part_of(module: str) -> str | None:
    """The part (table row) a kanir module belongs to; None for anything outside kanir."""
    names = module.split(".")
    if names[0] != "kanir":
        return None
    if len(names) == 1:
        return "kanir"
    head = names[1]
    if head in ("passes", "backends", "grammar") or head in TOP_MODULES:
        return head
    if head in SUBPACKAGES:
        return f"kanir.{head}"
    if head == "__main__":  # `python -m kanir` is the command line
        return "kanir.cli"
    return "kanir"  # a public name of the package, e.g. kanir.__version__


def _is_module(dotted: str) -> bool:
    """Whether ``dotted`` names a module or package of the source tree."""
    names = dotted.split(".")
    if names[0] != "kanir":
        return False
    folder = ROOT / "kanir"
    if len(names) > 1 and names[1] in ("passes", "backends", "grammar"):
        folder, names = ROOT / names[1], names[2:]
    else:
        names = names[1:]
    target = folder.joinpath(*names) if names else folder
    return target.with_suffix(".py").is_file() or (target / "__init__.py").is_file()


def _imported_modules(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The kanir modules (or package attributes) one import statement or call refers to."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[:len(base) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        subs = [f"{source}.{a.name}" for a in node.names if _is_module(f"{source}.{a.name}")]
        others = [a for a in node.names if not _is_module(f"{source}.{a.name}")]
        if source == "kanir":  # `from kanir import errors, __version__`
            return subs + [f"kanir.{a.name}" for a in others]
        return subs + ([source] if others or not subs else [])
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module" and node.args
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return [node.args[0].value]
    return []


def _lazy_table(tree: ast.Module) -> list[str]:
    """Module names in the package's ``_LAZY = {name: (module, attribute)}`` table."""
    found = []
    for stmt in tree.body:
        if (isinstance(stmt, ast.Assign) and any(getattr(t, "id", "") == "_LAZY" for t in stmt.targets)
                and isinstance(stmt.value, ast.Dict)):
            for value in stmt.value.values:
                first = value.elts[0] if isinstance(value, ast.Tuple) else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.append(first.value)
    return found


def source_files() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def import_graph() -> tuple[dict[tuple[str, str], list[str]], dict[str, set[str]]]:
    """({(part, part): ["file:line", ...]}, {part: third-party top-level packages it imports})."""
    edges: dict[tuple[str, str], list[str]] = {}
    external: dict[str, set[str]] = {}
    for path in source_files():
        module, is_package = module_name(path)
        src = part_of(module)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets = [(node.lineno, t) for node in ast.walk(tree)
                   for t in _imported_modules(node, module, is_package)]
        if module == "kanir":
            targets += [(0, t) for t in _lazy_table(tree)]
        for line, target in targets:
            dst = part_of(target)
            if dst is None:
                top = target.split(".")[0]
                if top not in sys.stdlib_module_names and top != "__future__":
                    external.setdefault(src, set()).add(top)
            elif dst != src:
                edges.setdefault((src, dst), []).append(f"{path.relative_to(ROOT)}:{line}")
    return edges, external


# ----------------------------------------------------------------------------- the picture
def _layout_section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("\n## Layout\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _table_rows(section: str, header: str) -> list[list[str]]:
    """The cells of the markdown table whose header row starts with ``header``."""
    lines = section.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[first + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _names(cell: str) -> set[str]:
    return {n.strip().strip("`") for n in cell.split(",") if n.strip() and n.strip() != "—"}


def documented_graph() -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    """({part: parts it imports} from the layout table, {(from, to)} known exceptions)."""
    section = _layout_section()
    allowed = {row[0].strip("`"): _names(row[2]) for row in _table_rows(section, "| part |")}
    known = {(row[0].strip("`"), row[1].strip("`")) for row in _table_rows(section, "| from |")}
    return allowed, known


# ----------------------------------------------------------------------------- tests
def test_the_parser_resolves_relative_and_package_imports():
    mod, pkg = module_name(ROOT / "grammar" / "formula.py")
    assert (mod, pkg) == ("kanir.grammar.formula", False)
    assert module_name(ROOT / "passes" / "__init__.py") == ("kanir.passes", True)
    rel = ast.parse("from ..errors import FormulaError\nfrom ._common import zero_edge").body
    assert _imported_modules(rel[0], mod, pkg) == ["kanir.errors"]
    assert _imported_modules(rel[1], "kanir.passes.expand", False) == ["kanir.passes._common"]
    pkg_import = ast.parse("from kanir import errors, __version__").body[0]
    assert _imported_modules(pkg_import, "kanir.cli.commands", False) == [
        "kanir.errors", "kanir.__version__"]
    assert [part_of(m) for m in ("kanir.errors", "kanir.__version__", "kanir.ir.graph",
                                 "kanir.passes._eval", "kanir.__main__", "numpy")] == [
        "errors", "kanir", "kanir.ir", "passes", "kanir.cli", None]


def test_every_source_module_belongs_to_a_documented_part():
    allowed, _ = documented_graph()
    parts = {part_of(module_name(p)[0]) for p in source_files()}
    assert parts == set(allowed), "docs/architecture.md's layout table and the source tree " \
        "name different parts"


def test_the_layout_table_is_the_import_graph():
    edges, _ = import_graph()
    allowed, known = documented_graph()
    actual = set(edges)
    documented = {(a, b) for a, targets in allowed.items() for b in targets}
    assert not documented & known, "an import is both allowed and a known exception"
    missing = sorted(actual - documented - known)
    assert not missing, ("imports the layout table in docs/architecture.md does not show "
                         "(add them to the 'imports' column, or remove the import):\n"
                         + "\n".join(f"  {a} -> {b}: {edges[(a, b)][:3]}" for a, b in missing))
    unused = sorted(documented - actual)
    assert not unused, ("the layout table shows imports the code no longer has (remove them "
                        f"from docs/architecture.md): {unused}")
    fixed = sorted(known - actual)
    assert not fixed, f"known exceptions that are fixed: delete their rows in the table: {fixed}"


def test_no_import_cycles_between_parts_except_through_known_exceptions():
    edges, _ = import_graph()
    allowed, known = documented_graph()
    designed = nx.DiGraph([(a, b) for a, targets in allowed.items() for b in targets])
    assert nx.is_directed_acyclic_graph(designed), list(nx.simple_cycles(designed))
    real = nx.DiGraph([e for e in edges if e not in known])
    cycles = list(nx.simple_cycles(real))
    assert not cycles, f"import cycles between parts: {cycles}"
    # the known exceptions are listed because each of them closes a cycle of the real graph
    full = nx.DiGraph(list(edges))
    for a, b in known:
        assert nx.has_path(full, b, a), f"{a} -> {b} closes no cycle: allow it in the table"


def test_backends_never_import_the_frontend():
    edges, _ = import_graph()
    assert ("backends", "kanir.frontend") not in edges, edges.get(("backends", "kanir.frontend"))


def test_ir_imports_only_errors_grammar_and_its_third_party_packages():
    """The IR is the bottom of the stack: it may use the errors, the grammars, and numpy, torch,
    networkx, sympy and lark (for its own text form)."""
    edges, external = import_graph()
    _, known = documented_graph()
    ir_imports = {b for a, b in edges if a == "kanir.ir" and (a, b) not in known}
    assert ir_imports <= {"errors", "grammar"}, ir_imports
    assert external.get("kanir.ir", set()) <= IR_THIRD_PARTY, external["kanir.ir"]


def test_the_graph_sees_lazy_imports_and_flags_a_cycle(tmp_path, monkeypatch):
    """The checker itself: a function-level import that closes a cycle is found."""
    fake = tmp_path / "kanir"
    (fake / "ir").mkdir(parents=True)
    (fake / "model").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "ir" / "__init__.py").write_text("")
    (fake / "model" / "__init__.py").write_text("")
    (fake / "ir" / "graph.py").write_text("def f():\n    from kanir.model.kan import KAN\n")
    (fake / "model" / "kan.py").write_text("from kanir.ir.graph import f\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "FOLDERS", {"kanir": "kanir"})
    edges, _ = import_graph()
    assert set(edges) == {("kanir.ir", "kanir.model"), ("kanir.model", "kanir.ir")}
    assert list(nx.simple_cycles(nx.DiGraph(list(edges))))


# ----------------------------------------------------------------------------- errors in one place
def _exception_classes(path: Path) -> list[tuple[str, int]]:
    """Classes defined in ``path`` whose bases look like exceptions (…Error, …Exception)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = [ast.unparse(b) for b in node.bases]
            if any(re.search(r"(Error|Exception|Formula)$", b) for b in bases):
                found.append((node.name, node.lineno))
    return found


def test_every_public_error_class_is_defined_in_kanir_errors():
    outside = [f"{p.relative_to(ROOT)}:{line} {name}" for p in source_files()
               if p != ROOT / "kanir" / "errors.py"
               for name, line in _exception_classes(p) if not name.startswith("_")]
    assert not outside, f"error classes outside kanir/errors.py: {outside}"


@pytest.mark.parametrize("module, name", [
    ("kanir.model.versions", "VersionError"), ("kanir.science.target", "FunctionError"),
    ("kanir.science.target", "GroupError"), ("kanir.symbolic.formula_fit", "UnsupportedFormula"),
    ("kanir.sklearn", "InputTypeError"), ("kanir.datasets.equations", "DatasetError"),
    ("kanir.train.distributed", "DistributedError"), ("kanir.cli.export", "ExportUsageError"),
    ("kanir.cli.args", "UsageError"), ("kanir.backends.graphviz", "DiagramError"),
    ("kanir.backends.tree_dot", "GraphvizNotFoundError"), ("kanir.backends.codegen", "ExportError"),
    ("kanir.backends.sympy", "SymbolicExportError"),
    ("kanir.grammar.module_spec", "ModuleSpecError"),
    ("kanir.grammar.formula", "FormulaSyntaxError"), ("kanir.grammar.formula", "FormulaNameError"),
])
def test_old_import_paths_of_error_classes_still_work(module, name):
    import importlib

    from kanir import errors

    assert getattr(importlib.import_module(module), name) is getattr(errors, name)
    assert issubclass(getattr(errors, name), errors.KanirError)
    assert name in errors.__all__ and name in errors.__doc__


def test_one_class_means_dot_is_missing(tmp_path, monkeypatch):
    """Both renderers (KAN diagrams and function trees) raise GraphvizNotFoundError without dot;
    it is a DiagramError, so code catching either keeps working."""
    import shutil

    import kanir
    from kanir.backends import graphviz as gv
    from kanir.backends import tree_dot
    from kanir.errors import DiagramError, GraphvizNotFoundError

    assert issubclass(GraphvizNotFoundError, DiagramError)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
        gv.render(gv.to_dot(kanir.compile("x")), tmp_path / "kan.svg")
    tree = kanir.tree(lambda x: x[:, 0] * x[:, 1], (0.5, 2), variables=["a", "b"], n_samples=200)
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
        tree_dot.render_tree(tree, tmp_path / "tree.svg")
