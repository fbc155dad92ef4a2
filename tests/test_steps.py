"""Content-keyed steps: a step re-runs when the code it ran changes, and only then."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _reproduce(repo: Path, out: Path, *steps: str) -> dict[str, str]:
    """``bi-core reproduce --steps`` with the package copy in ``repo``; step → 'done' or 'skipped'."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.run([sys.executable, "-m", "bi_core", "reproduce", "--preset", "smoke", "--out", str(out),
                           "--quiet", "--steps", *steps], cwd=repo, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status = {}
    for name, what in re.findall(r"\] (\S+) (done|up to date, skipped) \(", proc.stdout):
        status[name] = "done" if what == "done" else "skipped"
    return status


@pytest.mark.slow
def test_edited_model_reruns_pretraining_and_downstream_unrelated_edit_does_not(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "bi_core", repo / "bi_core", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "art"
    first = _reproduce(repo, out, "analyses")
    assert first == {"synth": "done", "pretrain": "done", "analyses": "done"}
    pre_stamp = json.loads((out / "runs" / "pretrain" / "step-stamp.json").read_text())
    assert "model.py" in pre_stamp["code"] and "train.py" in pre_stamp["code"]
    # recorded automatically: pretraining never loaded the analysis or figure modules
    assert not any(k.startswith(("analysis/", "figures/")) for k in pre_stamp["code"])
    assert "analysis/suite.py" in json.loads((out / "results" / "step-stamp.json").read_text())["code"]
    summary = json.loads((out / "runs" / "pretrain" / "summary.json").read_text())
    assert summary["code"]["model.py"] == pre_stamp["code"]["model.py"]

    assert _reproduce(repo, out, "analyses") == {"synth": "skipped", "pretrain": "skipped", "analyses": "skipped"}

    # a figure module no step imports: nothing re-runs
    with open(repo / "bi_core" / "figures" / "jivnet.py", "a") as f:
        f.write("\n# an unrelated edit\n")
    assert _reproduce(repo, out, "analyses") == {"synth": "skipped", "pretrain": "skipped", "analyses": "skipped"}

    # the model changes (here only a comment, but the stamp cannot know): pretraining and
    # everything that reads it re-run; the synthetic cohorts do not
    mtime = (out / "runs" / "pretrain" / "best.pt").stat().st_mtime_ns
    with open(repo / "bi_core" / "model.py", "a") as f:
        f.write("\n# the loss changed here\n")
    assert _reproduce(repo, out, "analyses") == {"synth": "skipped", "pretrain": "done", "analyses": "done"}
    assert (out / "runs" / "pretrain" / "best.pt").stat().st_mtime_ns != mtime    # really retrained

    # the orchestrator changes: every step re-runs (each imported it), but the run records
    # only the code training can reach (provenance.import_closure), so nothing is retrained
    summary = json.loads((out / "runs" / "pretrain" / "summary.json").read_text())
    assert "steps.py" not in summary["code"] and "model.py" in summary["code"]
    mtime = (out / "runs" / "pretrain" / "best.pt").stat().st_mtime_ns
    with open(repo / "bi_core" / "steps.py", "a") as f:
        f.write("\n# an orchestrator edit\n")
    assert _reproduce(repo, out, "pretrain") == {"synth": "done", "pretrain": "done"}
    assert (out / "runs" / "pretrain" / "best.pt").stat().st_mtime_ns == mtime    # the run was kept


def test_stamp_keys_settings_inputs_and_code(tmp_path, monkeypatch):
    """In-process: a stamp is current only with the same settings, inputs and sources."""
    import bi_core.provenance as P
    from bi_core.steps import BOOK_PRESETS, STEPS, Context, stamp_is_current

    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(P, "PACKAGE_ROOT", pkg)
    ctx = Context(preset=BOOK_PRESETS["smoke"], out=tmp_path / "art", book_out=tmp_path, seed=0)
    step = STEPS["synth"]
    assert not stamp_is_current(step, ctx)                       # never ran
    step.home(ctx).mkdir(parents=True)
    step.stamp_file(ctx).write_text(json.dumps({"key": step.key(ctx), "code": {"a.py": P.file_digest(pkg / "a.py")}}))
    assert stamp_is_current(step, ctx)
    assert not stamp_is_current(step, Context(preset=BOOK_PRESETS["smoke"], out=ctx.out, book_out=tmp_path, seed=1))
    (pkg / "a.py").write_text("x = 2\n")
    assert not stamp_is_current(step, ctx)
    assert P.changed_sources({"a.py": "0"}) == ["a.py"]
    # a file edited while a step ran is recorded as it was when the step started: the next
    # build sees the edit
    (pkg / "data").mkdir()
    (pkg / "data" / "t.tsv").write_text("a\n")
    before = P.snapshot()
    (pkg / "data" / "t.tsv").write_text("b\n")
    rec = P.loaded_sources(before)
    assert rec["data/t.tsv"] == before["data/t.tsv"] and not P.sources_current(rec)
    # a reader of synth is keyed on synth's stamp: a re-run synth with other code changes it
    pre = STEPS["pretrain"]
    k1 = pre.key(ctx)
    step.stamp_file(ctx).write_text(json.dumps({"key": step.key(ctx), "code": {"a.py": "other"}}))
    assert pre.key(ctx) != k1


def test_no_hand_kept_code_lists():
    """No module lists the code a result depends on by hand (the stamps record it)."""
    for f in (ROOT / "bi_core").rglob("*.py"):
        text = f.read_text()
        assert "_code_digest" not in text and "ANALYSIS_CODE" not in text, f


def test_analyses_do_not_import_the_training_loop():
    code = ("import sys, bi_core.analysis.suite, bi_core.related.masking_study.study, bi_core.related.rwmoe_ssm.study, "
            "bi_core.related.jivnet.study, bi_core.cli, bi_core.runs; assert 'bi_core.train' not in sys.modules, 'train imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
