"""Malformed cohorts and flag combinations, fed to ingest, pretrain and analyze (issue 23, "Done when").

Every case builds a small input as a user might get it wrong, runs the command in-process
(:func:`bi_core.cli.main` lets every exception but a bi_core error through: a traceback
fails the test) and checks the promises of issue 23:

- the exit status is 0 or 2; 2 comes with exactly one line ``bi-core: error: ...`` on stderr
  and no warning (a real process would print it on stderr too);
- the inputs are unchanged byte for byte (:func:`tree_digest` of everything the case built,
  of the shared smoke cohorts and of the shared run);
- a refusal writes nothing: ``--out`` is as it was (absent, or the same bytes), and nothing
  is left beside it, hidden or not;
- a success is complete (the marker and ``cohort.json`` / ``summary.json``) and leaves no
  staging sibling.

Each case also pins its outcome and a fragment of what it says (the error line, or the report
on stdout), so that a refusal that turns into a silent success, or the reverse, is noticed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bi_core._io import MARKER
from bi_core.atlas import NetworkAtlas
from bi_core.cli import main
from bi_core.cohort import Cohort, CohortWriter

from _util import pilot, tree_digest

pytestmark = pytest.mark.usefixtures("one_thread")

SUBJECTS = ("01", "02", "03", "04")
#: Options that keep analyze to seconds on a pilot cohort.
FAST = ("--repeats", "1", "--occlusion-windows", "1", "--no-fc", "--quiet", "--permutations", "19", "--bootstrap", "50")


@dataclass
class Env:
    """Where a case builds its inputs (``tmp``), and the shared inputs it may read."""

    tmp: Path
    atlas: NetworkAtlas
    smoke_dir: Path
    smoke_run: Path

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    # ------------------------------------------------------------------ an XCP-D tree
    @property
    def study(self) -> Path:
        return self.tmp / "study"

    @property
    def root(self) -> Path:
        return self.study / "derivatives" / "xcpd"

    def ts(self, sub: str) -> Path:
        return self.root / f"sub-{sub}" / "func" / f"sub-{sub}_task-rest_atlas-toy_timeseries.tsv"

    def sidecar(self, sub: str) -> Path:
        return self.ts(sub).with_suffix(".json")

    def xcpd(self) -> Path:
        """Four subjects (F/M, CN/AD alternating) of 80 frames at TR 2 s on the 8-ROI toy atlas."""
        self.atlas.to_tsv(self.root / "atlas-toy_dseg.tsv")
        for i, sub in enumerate(SUBJECTS):
            self.ts(sub).parent.mkdir(parents=True)
            x = np.random.default_rng(i).normal(size=(80, self.atlas.n_rois)) * 50 + 1000
            pd.DataFrame(x, columns=list(self.atlas.roi_names)).to_csv(self.ts(sub), sep="\t", index=False)
            self.set_tr(sub, 2.0)
        self.participants("participant_id\tage\tsex\tdiagnosis\n"
                          + "".join(f"sub-{s}\t{70 + i}\t{'FM'[i % 2]}\t{('CN', 'AD')[i % 2]}\n"
                                    for i, s in enumerate(SUBJECTS)))
        (self.study / "raw.txt").write_text("the raw study: never touched\n")
        return self.root

    def set_tr(self, sub: str, tr: object) -> None:
        self.sidecar(sub).write_text(json.dumps({"RepetitionTime": tr}))

    def participants(self, text: str, encoding: str = "utf-8") -> None:
        (self.root / "participants.tsv").write_bytes(text.encode(encoding))

    def edit(self, path: Path, old: str, new: str) -> None:
        path.write_text(path.read_text().replace(old, new))

    def edit_ts(self, sub: str, fn: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
        p = self.ts(sub)
        fn(pd.read_csv(p, sep="\t", dtype=object)).to_csv(p, sep="\t", index=False)

    def ingest(self, *extra: str, out: Path | None = None, atlas: str = "toy") -> list[str]:
        return ["ingest", "bids", str(self.root), "--atlas", atlas, "--out", str(out or self.out), "--quiet", *extra]

    # ------------------------------------------------------------------ what pretrain and analyze read
    def pilot(self, **per_group: int) -> Path:
        return pilot(self.smoke_dir, self.tmp / "cohort", **per_group)

    def mine(self, d: Path | None = None) -> Path:
        """A directory of the user's own (``mine/`` unless ``d``)."""
        d = d or self.tmp / "mine"
        d.mkdir()
        (d / "notes.txt").write_text("my notes\n")
        return d

    def config(self, text: str) -> Path:
        (self.tmp / "train.yaml").write_text(text)
        return self.tmp / "train.yaml"

    def toy_cohort(self) -> Path:
        """Two recordings on the 8-ROI toy atlas, not the smoke run's."""
        out = self.tmp / "toy-cohort"
        with CohortWriter(out, self.atlas) as w:
            for i in range(2):
                w.add(np.random.default_rng(i).normal(size=(150, self.atlas.n_rois)), recording_id=f"r{i}",
                      subject=f"s{i}", tr=1.5, diagnosis=("CN", "AD")[i])
        return out

    def pretrain(self, cohort: Path, *extra: str, out: Path | None = None) -> list[str]:
        return ["pretrain", "--cohort", str(cohort), "--out", str(out or self.out), "--quiet", *extra]

    def analyze(self, cohort: Path, *extra: str, run: Path | None = None, out: Path | None = None) -> list[str]:
        return ["analyze", "--run", str(run or self.smoke_run), "--cohort", str(cohort), "--out",
                str(out or self.out), *FAST, *extra]


@dataclass(frozen=True)
class Case:
    """``build(env)`` writes the inputs and returns the command line; ``rc`` and ``says`` are what it must give;
    a success must have written ``done`` into ``--out``."""

    build: Callable[[Env], list[str]]
    rc: int
    says: str
    done: str = ""


#: A command-line value, or what gives it once the case's inputs exist (e.g. ``lambda e: e.mine()``).
Arg = str | Callable[[Env], object]


def _args(env: Env, *extra: Arg, **kw: Arg) -> tuple[list[str], dict[str, object]]:
    """``extra`` and ``kw`` with every callable replaced by what it gives for ``env``, in order."""
    def value(a: Arg) -> object:
        return a(env) if callable(a) else a
    return [str(value(a)) for a in extra], {k: value(a) for k, a in kw.items()}


def as_is(env: Env) -> None:
    """The XCP-D tree as :meth:`Env.xcpd` writes it."""


def ingest(mutate: Callable[[Env], object] = as_is, *extra: Arg, **kw: Arg) -> Callable[[Env], list[str]]:
    """A case on the XCP-D tree after ``mutate(env)``, ingested with the options ``extra`` (``out``, ``atlas``)."""
    def build(env: Env) -> list[str]:
        env.xcpd()
        mutate(env)
        args, options = _args(env, *extra, **kw)
        return env.ingest(*args, **options)
    return build


def cell(value: str, sub: str = "02", row: int = 5, col: str = "roi3") -> Callable[[Env], None]:
    def mutate(env: Env) -> None:
        env.edit_ts(sub, lambda df: df.assign(**{col: [value if i == row else v for i, v in enumerate(df[col])]}))
    return mutate


def text(body: str, sub: str = "02") -> Callable[[Env], None]:
    return lambda env: env.ts(sub).write_text(body)


def participants(body: str, encoding: str = "utf-8") -> Callable[[Env], None]:
    return lambda env: env.participants(body, encoding)


def edit_participants(old: str, new: str) -> Callable[[Env], None]:
    return lambda env: env.edit(env.root / "participants.tsv", old, new)


def edit_atlas(old: str, new: str) -> Callable[[Env], None]:
    return lambda env: env.edit(env.root / "atlas-toy_dseg.tsv", old, new)


def pretrain_pair(*extra: Arg, **kw: Arg) -> Callable[[Env], list[str]]:
    """pretrain on a pilot of one CN and one AD subject, with the options ``extra`` (and ``out``)."""
    def build(env: Env) -> list[str]:
        cohort = env.pilot(CN=1, AD=1)
        args, options = _args(env, *extra, **kw)
        return env.pretrain(cohort, *args, **options)
    return build


def analyze_pair(*extra: Arg, **kw: Arg) -> Callable[[Env], list[str]]:
    """analyze of the shared run on a pilot of one CN and one AD subject, with the options ``extra``
    (``run``, ``out``)."""
    def build(env: Env) -> list[str]:
        cohort = env.pilot(CN=1, AD=1)
        args, options = _args(env, *extra, **kw)
        return env.analyze(cohort, *args, **options)
    return build


def all_in_ms(env: Env) -> None:
    for s in SUBJECTS:
        env.set_tr(s, 800)


ROOT = "the input ROOT"
COHORT = "cohort.json"
SUMMARY = "summary.json"
CASES: dict[str, Case] = {
    # ------------------------------------------------------------------ ingest: the time series
    "nan-value": Case(ingest(cell("n/a")), 2, "1 NaN/inf values (first at frame 5, ROI roi3)"),
    "inf-value": Case(ingest(cell("inf")), 2, "NaN/inf values"),
    "non-numeric-cell": Case(ingest(cell("1,5")), 2, "non-numeric values (could not convert string to float: '1,5')"),
    "constant-roi": Case(ingest(lambda e: e.edit_ts("03", lambda df: df.assign(roi6="3.0"))), 2,
                         "1 constant ROI(s) ['roi6']"),
    "header-not-the-atlas": Case(ingest(lambda e: e.edit_ts("02", lambda df: df.rename(columns={"roi3": "ROI_3"}))),
                                 2, "ROI columns do not match atlas 'toy'"),
    "index-column-saved": Case(ingest(lambda e: e.edit_ts("01", lambda df: df.reset_index())), 2,
                               "not in the atlas ['index']"),
    "empty-tsv": Case(ingest(text("")), 2, "could not be read as a tab-separated table (No columns to parse"),
    "header-only-tsv": Case(ingest(lambda e: e.edit_ts("02", lambda df: df.iloc[:0])), 2, "0 frame(s)"),
    "one-frame-tsv": Case(ingest(lambda e: e.edit_ts("02", lambda df: df.iloc[:1])), 2, "1 frame(s)"),
    "ragged-rows": Case(ingest(text("roi0\troi1\n1\t2\t3\n")), 2, "a row has more fields than the header"),
    "windows-line-ends": Case(ingest(lambda e: e.ts("02").write_bytes(e.ts("02").read_bytes().replace(b"\n", b"\r\n"))),
                              0, "4 recordings from 4 subjects", COHORT),
    # ------------------------------------------------------------------ ingest: the atlas
    "missing-atlas-table": Case(ingest(lambda e: (e.root / "atlas-toy_dseg.tsv").unlink()), 2,
                                "atlas table for 'toy' not found"),
    "empty-atlas-table": Case(ingest(lambda e: (e.root / "atlas-toy_dseg.tsv").write_text("")), 2,
                              "could not be read as TSV"),
    "atlas-duplicate-roi": Case(ingest(edit_atlas("roi7", "roi6")), 2, "duplicate ROI names ['roi6']"),
    "atlas-name-not-in-files": Case(ingest(atlas="Schaefer100"), 2, "atlas table for 'Schaefer100' not found"),
    "task-not-in-files": Case(ingest(as_is, "--task", "nback"), 2, "and task(s) ['rest']; pass those with"),
    # ------------------------------------------------------------------ ingest: the repetition time
    "tr-missing": Case(ingest(lambda e: e.sidecar("03").unlink()), 2, "missing repetition time (no JSON sidecar"),
    "tr-null": Case(ingest(lambda e: e.set_tr("01", None)), 2, "missing repetition time (no RepetitionTime in"),
    "tr-800-ms": Case(ingest(lambda e: e.set_tr("01", 800)), 2, "it looks like milliseconds (800 ms = 0.8 s)"),
    "tr-0": Case(ingest(lambda e: e.set_tr("01", 0)), 2, "RepetitionTime=0 in"),
    "tr-negative": Case(ingest(lambda e: e.set_tr("01", -2)), 2, "RepetitionTime=-2 in"),
    "tr-text": Case(ingest(lambda e: e.set_tr("01", "2 s")), 2, "RepetitionTime='2 s' in"),
    "tr-true": Case(ingest(lambda e: e.set_tr("01", True)), 2, "RepetitionTime=True in"),
    "tr-number-as-text": Case(ingest(lambda e: e.set_tr("01", "2.0")), 0, "TR 2 s", COHORT),
    # ------------------------------------------------------------------ ingest: ids and phenotypes
    "duplicate-recording-id": Case(ingest(lambda e: shutil.copy(e.ts("01"), e.ts("01").with_name(
        "sub-01_task-rest_space-T1w_atlas-toy_timeseries.tsv"))), 2, "both map to recording sub-01"),
    "participants-latin1": Case(ingest(participants("participant_id\tsite\nsub-01\tMünchen\n", "latin-1")), 2,
                                "is not UTF-8 text (it has the byte 0xfc"),
    "participants-utf16": Case(ingest(participants("participant_id\tage\nsub-01\t70\n", "utf-16")), 2,
                               "is not UTF-8 text (it is UTF-16"),
    "participants-utf8-bom": Case(ingest(participants("\ufeffparticipant_id\tage\n"
                                                      + "".join(f"sub-{s}\t70\n" for s in SUBJECTS))),
                                  0, "4 recordings from 4 subjects", COHORT),
    "participants-without-participant-id": Case(ingest(edit_participants("participant_id", "subject")), 2,
                                                "has no 'participant_id' column"),
    "participants-row-without-data": Case(ingest(edit_participants("sub-04", "sub-99")), 0,
                                          "1 row(s) have no data (sub-99)", COHORT),
    "subject-without-participants-row": Case(ingest(edit_participants("sub-04\t73\tM\tAD\n", "")), 0,
                                             "1 subject(s) with data have no row (sub-04", COHORT),
    "participant-listed-twice": Case(ingest(edit_participants("sub-02", "sub-01")), 2, "sub-01 is listed twice"),
    "age-as-text": Case(ingest(edit_participants("\t70\t", "\tseventy\t")), 2, "age='seventy' is not a number"),
    "sex-coded-1-2": Case(ingest(lambda e: (e.edit(e.root / "participants.tsv", "\tM\t", "\t1\t"),
                                            e.edit(e.root / "participants.tsv", "\tF\t", "\t2\t"))),
                          0, "4 recordings from 4 subjects", COHORT),
    "sex-coded-0-1": Case(ingest(edit_participants("\tM\t", "\t0\t")), 2, "unknown sex value '0'"),
    "diagnosis-unknown-labels": Case(ingest(edit_participants("\tCN\n", "\tpatient\n")), 0,
                                     "4 recordings from 4 subjects", COHORT),
    # ------------------------------------------------------------------ ingest: flags
    "out-is-root": Case(ingest(out=lambda e: e.root), 2, f"is {ROOT}"),
    "out-inside-root": Case(ingest(out=lambda e: e.root / "cohort"), 2, f"lies inside {ROOT}"),
    "out-contains-root": Case(ingest(as_is, "--overwrite", out=lambda e: e.study), 2, f"contains {ROOT}"),
    "overwrite-foreign-dir": Case(ingest(lambda e: e.mine(e.out), "--overwrite"), 2,
                                  "it does not hold a cohort store written by bi_core"),
    "root-missing": Case(ingest(lambda e: shutil.rmtree(e.study)), 2, "is not a directory"),
    "min-frames-above-every-recording": Case(ingest(as_is, "--min-frames", "500"), 2,
                                             "none of the 4 recordings can be ingested: (1) recording sub-01"),
    "skip-bad-all-bad": Case(ingest(all_in_ms, "--skip-bad"), 2, "none of the 4 recordings can be ingested"),
    "skip-bad-some-bad": Case(ingest(lambda e: e.set_tr("02", 2000), "--skip-bad"), 0, "skipped 1 bad recording(s)",
                              COHORT),
    "target-tr-0": Case(ingest(as_is, "--target-tr", "0"), 2, "target_tr=0.0 s is outside"),
    "target-tr-in-ms": Case(ingest(as_is, "--target-tr", "800"), 2, "target_tr=800.0 s is outside"),
    "high-pass-above-nyquist": Case(ingest(as_is, "--high-pass", "0.5"), 2,
                                    "high-pass cut-off 0.5 Hz is at or above the Nyquist frequency 0.25 Hz"),
    "low-pass-above-nyquist": Case(ingest(as_is, "--low-pass", "0.4"), 2,
                                   "low-pass cut-off 0.4 Hz is at or above the Nyquist frequency 0.25 Hz"),
    "high-pass-above-low-pass": Case(ingest(as_is, "--high-pass", "0.1", "--low-pass", "0.05"), 2,
                                     "high_pass (0.1 Hz) must be below low_pass (0.05 Hz)"),
    # ------------------------------------------------------------------ pretrain
    "pretrain-two-subjects": Case(pretrain_pair("--preset", "smoke"), 0,
                                  "preset smoke fitted to this cohort: batch size 8 → 1", SUMMARY),
    "pretrain-batch-larger-than-data": Case(pretrain_pair("--preset", "smoke", "--batch-size", "64"), 2,
                                            "batch_size=64 is larger than an epoch (1 windows"),
    "pretrain-batch-size-0": Case(pretrain_pair("--preset", "smoke", "--batch-size", "0"), 2,
                                  "batch_size=0 must be at least 1"),
    "pretrain-seed-negative": Case(pretrain_pair("--preset", "smoke", "--seed", "-1"), 2,
                                   "seed=-1: a seed is a non-negative integer"),
    "pretrain-stop-after-0-epochs": Case(pretrain_pair("--preset", "smoke", "--stop-after-epochs", "0"), 2,
                                         "--stop-after-epochs 0: stop after at least 1 epoch"),
    "pretrain-out-inside-cohort": Case(pretrain_pair("--preset", "smoke", out=lambda e: e.tmp / "cohort" / "run"), 2,
                                       "lies inside the input --cohort"),
    "pretrain-resume-a-non-run": Case(pretrain_pair("--resume", out=lambda e: e.mine(e.out)), 2,
                                      "checkpoint.pt does not exist; start the run without --resume"),
    "pretrain-config-unknown-key": Case(pretrain_pair("--config", lambda e: e.config("epochs: 2\nbatch_sise: 4\n")),
                                        2, "unknown key(s) ['batch_sise'] for TrainConfig"),
    "pretrain-config-wrong-type": Case(pretrain_pair("--config", lambda e: e.config("epochs: many\n")), 2,
                                       "epochs='many' must be an integer"),
    "pretrain-cohort-not-a-cohort": Case(lambda e: e.pretrain(e.mine(), "--preset", "smoke"), 2,
                                         "is not a bi_core cohort (no cohort.json)"),
    "pretrain-cohorts-on-two-atlases": Case(pretrain_pair("--preset", "smoke", "--cohort", Env.toy_cohort), 2,
                                            "('synth24x7' vs 'toy': 26 vs 8 ROIs). Cohorts read together must share "
                                            "one atlas"),
    # ------------------------------------------------------------------ analyze
    "analyze-two-subjects": Case(lambda e: e.analyze(e.pilot(CN=1, AD=1)), 0,
                                 "skipped classification ad_cn (CN vs AD): classification needs at least 2", SUMMARY),
    "analyze-three-subjects": Case(lambda e: e.analyze(e.pilot(CN=2, AD=1)), 0,
                                   "adapted linear references to this cohort: leave-one-subject-out", SUMMARY),
    "analyze-group-column-absent": Case(analyze_pair("--group-column", "arm"), 2,
                                        "--group-column 'arm' is not a column of cohort"),
    "analyze-reference-absent": Case(analyze_pair("--reference", "HC"), 2,
                                     "--reference 'HC' is not a level of column 'diagnosis'"),
    "analyze-order-one-level": Case(analyze_pair("--order", "CN"), 2,
                                    "has only the level(s) ['CN']; group analyses need at least two"),
    "analyze-target-not-numeric": Case(analyze_pair("--target", "sex"), 2, "--target 'sex' is not numeric"),
    "analyze-target-constant": Case(analyze_pair("--target", "visit"), 2, "--target 'visit' is 0 for every recording"),
    "analyze-folds-1": Case(analyze_pair("--folds", "1"), 2, "--folds 1: cross-validation needs at least 2"),
    "analyze-inner-folds-1": Case(analyze_pair("--inner-folds", "1"), 2,
                                  "--inner-folds 1: cross-validation needs at least 2"),
    "analyze-batch-size-0": Case(analyze_pair("--batch-size", "0"), 2, "--batch-size 0: give at least 1"),
    "analyze-occlusion-windows-0": Case(analyze_pair("--occlusion-windows", "0"), 2,
                                        "--occlusion-windows 0: give at least 1"),
    "analyze-seed-negative": Case(analyze_pair("--seed", "-1"), 2, "--seed -1: give at least 0"),
    "analyze-device-gpu": Case(analyze_pair("--device", "gpu"), 2, "--device 'gpu' is not a torch device"),
    "analyze-run-on-another-atlas": Case(lambda e: e.analyze(e.toy_cohort()), 2,
                                         "use different atlases ('synth24x7' vs 'toy': 26 vs 8 ROIs)"),
    "analyze-run-not-a-run": Case(analyze_pair(run=Env.mine), 2, "holds no checkpoint (best.pt or checkpoint.pt)"),
    "analyze-cohort-missing": Case(lambda e: e.analyze(e.tmp / "nope"), 2, "is not a bi_core cohort"),
    "analyze-out-is-the-cohort": Case(analyze_pair(out=lambda e: e.tmp / "cohort"), 2, "is the input --cohort"),
    "analyze-out-over-my-files": Case(analyze_pair(out=Env.mine), 2,
                                      "does not hold a set of analysis tables written by bi_core"),
}

#: Warnings a user's terminal does not show (Python's default filters ignore them).
HIDDEN = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def _run(argv: list[str]) -> tuple[int, list[str]]:
    """``main(argv)`` and the warnings a user would see on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = main(argv)
    return rc, [f"{w.category.__name__}: {w.message}" for w in caught if not issubclass(w.category, HIDDEN)]


@pytest.fixture()
def env(tmp_path, small_atlas, smoke_dir, smoke_run) -> Env:
    return Env(tmp_path, small_atlas, smoke_dir, smoke_run)


@pytest.mark.parametrize("name", list(CASES))
def test_a_malformed_input_is_refused_in_one_line_or_handled_whole(name, env, capsys):
    case = CASES[name]
    argv = case.build(env)
    out = Path(argv[argv.index("--out") + 1])
    shared = {p: tree_digest(p) for p in (env.smoke_dir, env.smoke_run)}
    before = tree_digest(env.tmp)
    rc, warned = _run(argv)
    cap = capsys.readouterr()
    assert "Traceback" not in cap.out + cap.err
    assert rc in (0, 2), cap.err
    assert {p: tree_digest(p) for p in shared} == shared
    if rc == 2:
        assert cap.err.startswith("bi-core: error: ") and cap.err.count("\n") == 1, cap.err
        assert warned == [], f"stderr would also show {warned}"
        # nothing written: --out as it was, nothing beside it (hidden or not), the inputs byte for byte
        assert tree_digest(env.tmp) == before
    else:
        rel = out.relative_to(env.tmp).as_posix()
        after = tree_digest(env.tmp)
        assert {k: v for k, v in after.items() if k != rel and not k.startswith(rel + "/")} == before
        assert (out / MARKER).is_file() and (out / case.done).is_file(), sorted(p.name for p in out.iterdir())
        if case.done == COHORT:
            assert len(Cohort.open(out)) > 0
    assert (rc, case.says in (cap.err if rc else cap.out)) == (case.rc, True), cap.err or cap.out
    if os.environ.get("BI_CORE_FUZZ_REPORT"):     # the closing note's list of every case and what it said
        said = cap.err.strip() if rc else next(ln for ln in cap.out.splitlines() if case.says in ln)
        with open(os.environ["BI_CORE_FUZZ_REPORT"], "a", encoding="utf-8") as fh:
            fh.write(f"{name}\t{rc}\t{said}\n")


def test_the_table_has_30_cases_or_more():
    per_command = {c: sum(n.startswith(c) for n in CASES) for c in ("pretrain", "analyze")}
    assert len(CASES) >= 30 and min(per_command.values()) >= 10 and len(CASES) - sum(per_command.values()) >= 30


@pytest.mark.parametrize("name", ["header-only-tsv", "high-pass-above-nyquist"])
def test_a_real_process_prints_the_refusal_alone(name, env):
    """Where numpy or nilearn used to warn before the refusal: a real process's stderr is the one line."""
    argv = CASES[name].build(env)
    before = tree_digest(env.tmp)
    proc = subprocess.run([sys.executable, "-m", "bi_core", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("bi-core: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert CASES[name].says in proc.stderr and tree_digest(env.tmp) == before


def test_a_config_file_value_of_the_wrong_type_names_its_key(tmp_path):
    """YAML reads 1e-3 (no dot) as text: taken as the number it spells; anything else names the key."""
    from bi_core.config import load_config
    from bi_core.errors import ConfigError
    from bi_core.runs import TrainConfig

    f = tmp_path / "c.yaml"
    f.write_text("lr: 1e-3\nepochs: '3'\ntarget_tr: 1\nmask: {ratio: null}\n")
    cfg = load_config(TrainConfig, f)
    assert (cfg.lr, cfg.epochs, cfg.target_tr, cfg.mask.ratio) == (0.001, 3, 1.0, None)
    for body, says in (("compile: 1\n", "compile=1 must be true or false"),
                       ("epochs: 2.5\n", "epochs=2.5 must be an integer"),
                       ("mask: {ratio: half}\n", "mask: ratio='half' must be a number or null"),
                       ("model: {depth: two}\n", "model: depth='two' must be an integer")):
        f.write_text(body)
        with pytest.raises(ConfigError, match=re.escape(says)):
            load_config(TrainConfig, f)
