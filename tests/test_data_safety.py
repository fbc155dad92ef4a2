"""Never touch the user's data, never leave half a result (issue 23).

Inputs are checked byte for byte (:func:`tree_digest`) around every command that reads them;
outputs appear whole or not at all, also when the command is killed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bi_core._io import MARKER, atomic_paths, clean_stale, refuse_overlap, stale_siblings, user_cache_dir
from bi_core.cli import main
from bi_core.cohort import Cohort
from bi_core.errors import InputError

from _util import tree_digest

pytestmark = pytest.mark.usefixtures("one_thread")


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI in-process: exit 2 and one line on stderr, no traceback; returns the line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("bi-core: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bi_core", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while not predicate():
        assert proc.poll() is None, f"the command ended (rc {proc.returncode}) before it was killed: " \
                                    f"{proc.stderr.read()}"
        assert time.monotonic() - t0 < timeout, "the command never started writing"
        time.sleep(0.05)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    proc.stdout.close()
    proc.stderr.close()


def _siblings(d: Path) -> list[str]:
    """What lies beside ``d`` apart from ``d`` itself."""
    return sorted(p.name for p in d.parent.iterdir() if p != d)


@pytest.fixture()
def xcpd(tmp_path: Path, small_atlas) -> Path:
    """A tiny XCP-D-style tree as a pipeline (not bi_core) writes it: STUDY/derivatives/xcpd."""
    root = tmp_path / "study" / "derivatives" / "xcpd"
    small_atlas.to_tsv(root / "atlas-toy_dseg.tsv")
    for i, sub in enumerate(("01", "02", "03")):
        func = root / f"sub-{sub}" / "func"
        func.mkdir(parents=True)
        x = np.random.default_rng(i).normal(size=(80, small_atlas.n_rois))
        pd.DataFrame(x, columns=list(small_atlas.roi_names)).to_csv(
            func / f"sub-{sub}_task-rest_atlas-toy_timeseries.tsv", sep="\t", index=False)
        (func / f"sub-{sub}_task-rest_atlas-toy_timeseries.json").write_text('{"RepetitionTime": 2.0}')
    (root / "participants.tsv").write_text("participant_id\tage\tsex\tgroup\n"
                                           "sub-01\t70\tF\tCN\nsub-02\t71\tM\tAD\nsub-03\t72\tF\tCN\n")
    (tmp_path / "study" / "raw.txt").write_text("the raw study: never touched\n")
    return root


def _ingest(root: Path, out: Path, *extra: str) -> list[str]:
    return ["ingest", "bids", str(root), "--atlas", "toy", "--out", str(out), "--min-frames", "32", "--quiet", *extra]


# ---------------------------------------------------------------------- 1. inputs are read-only
def test_ingest_never_writes_into_or_over_its_input(xcpd, capsys):
    study = xcpd.parents[1]
    before = tree_digest(study)
    for out, rel in ((xcpd, "is"), (study, "contains"), (xcpd.parent, "contains"),
                     (xcpd / "sub-01" / "x", "lies inside")):
        err = _error(_ingest(xcpd, out, "--overwrite"), capsys)
        assert f"--out {out} {rel} the input ROOT {xcpd}" in err and "never writes into its inputs" in err
    # through a link that resolves into the input
    link = study.parent / "link"
    link.symlink_to(xcpd / "sub-02", target_is_directory=True)
    assert "lies inside the input ROOT" in _error(_ingest(xcpd, link / "out"), capsys)
    link.unlink()
    assert tree_digest(study) == before


def test_overwrite_replaces_only_a_directory_of_the_same_kind(xcpd, tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("my notes\n")
    mine = tree_digest(foreign)
    err = _error(_ingest(xcpd, foreign, "--overwrite"), capsys)
    assert f"refusing to replace {foreign}: it does not hold a cohort store written by bi_core (no {MARKER}" in err
    assert "already exists" not in _error(_ingest(xcpd, foreign), capsys)    # --overwrite would not help either
    assert tree_digest(foreign) == mine

    out = tmp_path / "cohort"
    assert main(_ingest(xcpd, out)) == 0
    assert json.loads((out / MARKER).read_text())["kind"] == "cohort"
    assert "already exists and holds a cohort store; pass --overwrite" in _error(_ingest(xcpd, out), capsys)
    # a cohort written before the marker existed is recognised by its cohort.json
    (out / MARKER).unlink()
    assert main(_ingest(xcpd, out, "--overwrite", "--dataset", "again")) == 0
    assert set(Cohort.open(out).table["dataset"]) == {"again"}
    # another kind of bi_core output is not a cohort either
    err = _error(["synth", "--out", str(out), "--overwrite", "--quiet"], capsys)
    assert "does not hold a synthetic cohort root written by bi_core (it holds a cohort store)" in err
    assert "run already holds" not in err and Cohort.open(out)


def test_refuse_overlap_and_the_user_cache():
    refuse_overlap("/a/b", {"--cohort": "/a/c", "--fit-cohort": None, "--x": ["/d", "/a/bc"]})   # siblings: fine
    for out, rel in (("/a/c", "is"), ("/a", "contains"), ("/a/c/d", "lies inside")):
        with pytest.raises(InputError, match=f"--out {out} {rel} the input --cohort /a/c"):
            refuse_overlap(out, {"--cohort": ["/a/c"]})
    assert user_cache_dir() == Path(os.environ["BI_CORE_CACHE_DIR"])          # conftest.py


def test_reproduce_refuses_a_foreign_artifact_directory(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine\n")
    err = _error(["reproduce", "--preset", "smoke", "--out", str(tmp_path), "--steps", "synth", "--quiet"], capsys)
    assert f"refusing to write the book's artifacts into {tmp_path}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# ---------------------------------------------------------------------- 2. whole or nothing
@pytest.fixture(scope="module")
def small(smoke_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight healthy subjects at two TRs (0.8, 0.72 s: resampled to the run's 1.5 s), no groups: a fast suite."""
    out = tmp_path_factory.mktemp("safety") / "small"
    Cohort.open(smoke_dir / "pretrain").write_copy(out, rows=range(0, 16, 2), name="small")
    return out


def test_pretrain_killed_keeps_the_previous_run_and_resume_finishes_it(smoke_dir, smoke_run, tmp_path, user_cache,
                                                                       capsys):
    cohort = smoke_dir / "pretrain"
    cohort_before = tree_digest(cohort)
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    before = tree_digest(run)
    for bad, rel in ((cohort / "run", "lies inside"), (smoke_dir, "contains")):
        err = _error(["pretrain", "--cohort", str(cohort), "--preset", "smoke", "--out", str(bad), "--quiet"], capsys)
        assert f"--out {bad} {rel} the input --cohort {cohort}" in err
    err = _error(["pretrain", "--cohort", str(cohort), "--preset", "smoke", "--out", str(tmp_path / "r"), "--cache-dir",
                  str(cohort / ".cache"), "--quiet"], capsys)
    assert "--cache-dir" in err and "lies inside the input --cohort" in err
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "config.yaml").write_text("mine: 1\n")
    err = _error(["pretrain", "--cohort", str(cohort), "--preset", "smoke", "--out", str(foreign), "--overwrite",
                  "--quiet"], capsys)
    assert "does not hold a pretraining run written by bi_core" in err
    shutil.rmtree(foreign)

    proc = _cli("pretrain", "--cohort", str(cohort), "--preset", "smoke", "--epochs", "6", "--out", str(run),
                "--overwrite", "--quiet")
    staged = f".run.bi_core-{proc.pid}-"
    _wait_for(lambda: any(p.name.startswith(staged) and (p / "checkpoint.pt").is_file() for p in tmp_path.iterdir()),
              proc)
    _kill(proc)
    assert tree_digest(run) == before                      # the previous run, byte for byte
    left = _siblings(run)
    assert len(left) == 1 and left[0].startswith(staged) and left[0].endswith(".tmp")
    assert stale_siblings(run) == [tmp_path / left[0]]

    # --resume continues the killed run from its sibling and renames it into place
    assert main(["pretrain", "--cohort", str(cohort), "--out", str(run), "--resume", "--quiet"]) == 0
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "finished" and s["epochs_run"] == 6 and s["checkpoint"] == str(run / "best.pt")
    assert _siblings(run) == [] and tree_digest(run) != before
    # the TR-resampling cache went to the user cache, never into the cohort
    assert tree_digest(cohort) == cohort_before
    assert list((user_cache / "harmonized").glob("tr-1.5-*"))


def test_analyze_replaces_its_output_whole_and_a_kill_keeps_the_previous_one(small, smoke_run, tmp_path, capsys):
    inputs = {d: tree_digest(d) for d in (small, smoke_run)}
    res = tmp_path / "res"
    args = ["analyze", "--run", str(smoke_run), "--cohort", str(small), "--out", str(res), "--folds", "2",
            "--repeats", "1", "--occlusion-windows", "1", "--no-fc", "--quiet", "--permutations", "19", "--bootstrap", "50"]
    assert main([*args, "--target", "age"]) == 0
    assert (res / "target_age_association.tsv").is_file() and "target" in json.loads((res / "summary.json").read_text())
    first = tree_digest(res)
    capsys.readouterr()

    # killed after it started writing: the previous results stay as they were
    proc = _cli(*args)
    staged = f".res.bi_core-{proc.pid}-"
    _wait_for(lambda: any(p.name.startswith(staged) and (p / "predictability.tsv").is_file()
                          for p in tmp_path.iterdir()), proc)
    _kill(proc)
    assert tree_digest(res) == first
    assert [n for n in _siblings(res) if not n.startswith(staged)] == []

    # a re-run without --target: no table of the first run outlives it, the killed run's sibling is gone
    assert main(args) == 0
    assert not list(res.glob("target_*")) and "target" not in json.loads((res / "summary.json").read_text())
    assert _siblings(res) == []
    assert {d: tree_digest(d) for d in inputs} == inputs

    # --out into an input, or over a directory that holds something else
    bad = [*args]
    bad[bad.index("--out") + 1] = str(small / "res")
    assert "lies inside the input --cohort" in _error(bad, capsys)
    bad[bad.index("--out") + 1] = str(smoke_run)
    assert f"is the input --run {smoke_run}" in _error(bad, capsys)
    bad[bad.index("--out") + 1] = str(tmp_path)
    assert "does not hold a set of analysis tables written by bi_core" in _error(bad, capsys)
    for table_cmd in ("predictability", "embed"):
        err = _error([table_cmd, "--run", str(smoke_run), "--cohort", str(small), "--out",
                      str(small / "recordings.tsv"), "--quiet"], capsys)
        assert f"--out {small / 'recordings.tsv'} lies inside the input --cohort {small}" in err
    assert {d: tree_digest(d) for d in inputs} == inputs


def test_files_that_belong_together_are_replaced_together_or_not_at_all(tmp_path):
    """``atomic_paths``: a failure inside the block keeps every previous file; success replaces them all."""
    a, b = tmp_path / "table.tsv", tmp_path / "table_agreement.json"
    a.write_text("old a")
    b.write_text("old b")
    with pytest.raises(RuntimeError):
        with atomic_paths(a, b) as (ta, tb):
            ta.write_text("new a")
            raise RuntimeError("killed between the two files")
    assert (a.read_text(), b.read_text()) == ("old a", "old b")
    with atomic_paths(a, b) as (ta, tb):
        ta.write_text("new a")
        tb.write_text("new b")
    assert (a.read_text(), b.read_text()) == ("new a", "new b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.tsv", "table_agreement.json"]   # no temporaries left


def test_stale_siblings_belong_to_dead_processes_only(tmp_path):
    from bi_core._io import _owner

    target = tmp_path / "out"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    host = _owner().rsplit("-", 1)[1]
    (tmp_path / f".out.bi_core-{dead}-{host}-abc.tmp").mkdir()
    (tmp_path / f".out.bi_core-{os.getpid()}-{host}-abc.tmp").mkdir()     # this process: alive
    (tmp_path / f".other.bi_core-{dead}-{host}-abc.tmp").mkdir()          # another output's
    assert [p.name for p in stale_siblings(target)] == [f".out.bi_core-{dead}-{host}-abc.tmp"]
    clean_stale(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f".out.bi_core-{os.getpid()}-{host}-abc.tmp",
                                                                 f".other.bi_core-{dead}-{host}-abc.tmp"])


# ---------------------------------------------------------------------- 6. errors stay one line
def test_info_into_a_closed_pipe_prints_no_traceback(small):
    proc = _cli("info", str(small))
    proc.stdout.close()                     # `bi-core info DIR | head -0`: the reader is gone before the output
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(60) == 141 and err == ""


def test_a_latin1_file_asks_for_utf8(xcpd, tmp_path, small, capsys):
    study = xcpd.parents[1]
    (xcpd / "participants.tsv").write_bytes("participant_id\tage\tsex\tgroup\tsite\n"
                                            "sub-01\t70\tF\tCN\tMünchen\n".encode("latin-1"))
    before = tree_digest(study)
    err = _error(_ingest(xcpd, tmp_path / "c"), capsys)
    assert f"participants table {xcpd / 'participants.tsv'} is not UTF-8 text (it has the byte 0xfc, 'ü' in " \
           "Latin-1); open it in an editor or spreadsheet and save it as UTF-8." in err
    assert tree_digest(study) == before and not (tmp_path / "c").exists()
    table = tmp_path / "table.tsv"
    table.write_bytes("recording_id\tnetwork\tr2\nsub-é\tDMN\t0.5\n".encode("latin-1"))
    err = _error(["groupdiff", "--table", str(table), "--cohort", str(small), "--out", str(tmp_path / "g.tsv")], capsys)
    assert f"{table} is not UTF-8 text" in err and "save it as UTF-8" in err
