"""The chapter modules (bi_core.book): the book's table of contents, notebooks and step graph come from them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from bi_core.book import REPO_ROOT, chapter_modules, chapters, step_modules
from bi_core.steps import STEPS


def test_toc_lists_every_chapter_under_its_part():
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    listed = {ch["file"].removeprefix("notebooks/"): part["caption"] for part in toc["parts"]
              for ch in part["chapters"] if ch["file"].startswith("notebooks/")}
    declared = {c.notebook: c.part for c in chapters()}
    assert listed == declared, "_toc.yml and the chapter modules (bi_core/book/) disagree"
    for c in chapters():
        assert (REPO_ROOT / "notebooks" / f"{c.notebook}.ipynb").is_file(), c.notebook


def test_notebook_parameters_are_the_chapters_params():
    from bi_core.steps import BOOK_PRESETS, Context

    ctx = Context(preset=BOOK_PRESETS["smoke"], out=Path("/x"), book_out=Path("/x"), seed=0)
    for c in chapters():
        nb = json.loads((REPO_ROOT / "notebooks" / f"{c.notebook}.ipynb").read_text())
        cell = next(x for x in nb["cells"] if "parameters" in x.get("metadata", {}).get("tags", []))
        names = {line.split("=")[0].strip() for line in "".join(cell["source"]).splitlines()
                 if "=" in line and not line.lstrip().startswith("#")}
        assert set(c.params(ctx)) <= names, f"{c.notebook}: parameters {set(c.params(ctx)) - names} not in its cell"


def test_step_graph_is_closed_and_each_step_has_one_owner():
    owners = step_modules()
    assert set(owners) == set(STEPS)
    for s in STEPS.values():
        assert set(s.deps) <= set(STEPS), (s.name, s.deps)
    for c in chapters():
        assert c.reads is None or set(c.reads) <= set(STEPS), (c.notebook, c.reads)
    assert chapter_modules()[-1] == "reproducibility" and chapters()[-1].reads is None


def test_a_step_process_imports_only_its_own_chapter():
    code = ("import sys, importlib; import bi_core.book.run_step; importlib.import_module(sys.argv[1]); "
            "print(sorted(m for m in sys.modules if m.startswith('bi_core.book.ch')))")
    for step in ("masking-study", "pretrain-real"):
        mod = step_modules()[step]
        out = subprocess.run([sys.executable, "-c", code, mod], capture_output=True, text=True, check=True).stdout
        loaded = eval(out)
        # pretrain-real trains with chapter 2's _pretrain: the one chapter it reads code from
        assert loaded == sorted({mod} | ({"bi_core.book.ch02_pretraining"} if step == "pretrain-real" else set()))
