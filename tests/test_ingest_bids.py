"""`bi-core ingest bids`: BIDS-derivatives parcellated time series → cohort (data written by the tests)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bi_core.cli import main
from bi_core.cohort import Cohort
from bi_core.errors import InputError
from bi_core.ingest import BidsName, ingest_bids
from bi_core.preprocess import PreprocSpec

FUNC1 = "sub-01/ses-1/func"
RUN1 = f"{FUNC1}/sub-01_ses-1_task-rest_run-1_space-MNI_atlas-toy_timeseries.tsv"
RUN2 = f"{FUNC1}/sub-01_ses-1_task-rest_run-2_space-MNI_atlas-toy_timeseries.tsv"
SES2 = "sub-01/ses-2/func/sub-01_ses-2_task-rest_space-MNI_atlas-toy_stat-mean_timeseries.tsv"
SUB2 = "sub-02/func/sub-02_task-rest_seg-toy_timeseries.tsv"  # XCP-D >= 0.7 spelling, TR inherited


def _series(seed: int, frames: int, names) -> pd.DataFrame:
    x = np.random.default_rng(seed).normal(size=(frames, len(names))) * 50 + 1000
    df = pd.DataFrame(x, columns=list(names))
    return df[list(names)[::-1]]  # columns deliberately not in atlas order


def _write_ts(root: Path, rel: str, df: pd.DataFrame, tr: float | None = None) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(p, sep="\t", index=False, na_rep="n/a")
    if tr is not None:
        p.with_name(p.name.replace(".tsv", ".json")).write_text(json.dumps({"RepetitionTime": tr}))
    return p


@pytest.fixture()
def bids(tmp_path, small_atlas):
    """A tiny XCP-D-style dataset: sub-01 (2 sessions, 2 runs in ses-1, TR 0.8), sub-02 (no session, TR 2.0)."""
    root = tmp_path / "toyds"
    root.mkdir()
    small_atlas.to_tsv(root / "atlas-toy_dseg.tsv")
    names = small_atlas.roi_names
    _write_ts(root, RUN1, _series(1, 160, names), tr=0.8)
    _write_ts(root, RUN2, _series(2, 160, names), tr=0.8)
    _write_ts(root, SES2, _series(3, 160, names), tr=0.8)
    _write_ts(root, SUB2, _series(4, 80, names))
    (root / "task-rest_timeseries.json").write_text(json.dumps({"RepetitionTime": 2.0}))  # inherited by sub-02
    (root / "participants.tsv").write_text("participant_id\tAge\tsex\tgroup\tsite\n"
                                           "sub-01\t70\tF\tMCI\tsiteA\nsub-02\t65\tmale\tHC\tsiteB\n")
    (root / "sub-01" / "sub-01_sessions.tsv").write_text(
        "session_id\tage\tdiagnosis\tacq_time\tMMSE\tcdr_sb\n"
        "ses-1\t70.2\tn/a\t2019-01-01T10:00:00\t27\t1.5\n"
        "ses-2\t71.2\tAD\t2020-01-01T10:00:00\t22\t4\n")
    return root


def _no_output(tmp_path: Path) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toyds"], "a failed ingest must write nothing"


# ---------------------------------------------------------------------- happy paths
def test_bids_name_parsing():
    bn = BidsName.parse("sub-01_ses-2_task-rest_run-1_space-MNI_atlas-toy_timeseries.tsv")
    assert bn.entities == {"sub": "01", "ses": "2", "task": "rest", "run": "1", "space": "MNI", "atlas": "toy"}
    assert (bn.suffix, bn.ext) == ("timeseries", ".tsv")
    assert BidsName.parse("participants.tsv") is None
    assert BidsName.parse("sub-01_task_rest_timeseries.tsv") is None


def test_sessions_runs_and_phenotypes(bids, tmp_path, small_atlas):
    c = ingest_bids(bids, "toy", tmp_path / "out", progress=False)
    t = c.table.set_index("recording_id")
    assert list(t.index) == ["sub-01_ses-1_run-1", "sub-01_ses-1_run-2", "sub-01_ses-2", "sub-02"]
    assert list(t["subject"]) == ["01", "01", "01", "02"]
    assert list(t["session"]) == ["1", "1", "2", ""] and list(t["run"]) == ["1", "2", "", ""]
    assert list(t["tr"]) == [0.8, 0.8, 0.8, 2.0]  # sub-02's TR comes from the root-level sidecar
    assert list(t["dataset"]) == ["toyds"] * 4
    assert list(t["site"]) == ["siteA"] * 3 + ["siteB"]
    # the user's columns and labels are kept: `group` stays `group` (HC stays HC), `diagnosis` is its own column
    assert list(t["group"]) == ["MCI", "MCI", "MCI", "HC"]
    assert list(t["diagnosis"].fillna("n/a")) == ["n/a", "n/a", "AD", "n/a"]
    assert list(t["age"]) == [70.2, 70.2, 71.2, 65.0]
    assert list(t["sex"]) == ["F", "F", "F", "M"]
    assert list(t["mmse"])[:3] == [27, 27, 22] and np.isnan(t.loc["sub-02", "mmse"])
    assert t.loc["sub-01_ses-1_run-1", "years_from_baseline"] == 0
    assert t.loc["sub-01_ses-2", "years_from_baseline"] == pytest.approx(1.0, abs=0.01)
    # columns reordered to atlas order, z-scored per ROI
    raw = pd.read_csv(bids / RUN1, sep="\t")[list(small_atlas.roi_names)].to_numpy()
    z = (raw - raw.mean(0)) / raw.std(0)
    np.testing.assert_allclose(c.series("sub-01_ses-1_run-1"), z, atol=1e-5)
    assert c.atlas == small_atlas
    assert c.preprocessing == PreprocSpec(zscore=True)
    meta = json.loads((c.path / "cohort.json").read_text())
    assert {k: meta["ingest"][k] for k in ("format", "task", "atlas")} == {
        "format": "bids-derivatives", "task": "rest", "atlas": "toy"}
    # the mappings the store needs are recorded: Age/MMSE read as age/mmse, 'male' as M
    assert meta["ingest"]["phenotype_mapping"]["renamed"] == {"age": "Age", "mmse": "MMSE"}
    assert meta["ingest"]["phenotype_mapping"]["recoded"] == {"sex": {"male": "M"}}


def test_tr_harmonization_changes_frames_and_is_recorded(bids, tmp_path):
    c = ingest_bids(bids, "toy", tmp_path / "out", PreprocSpec(target_tr=1.6), progress=False)
    assert list(c.table["n_frames"]) == [80, 80, 80, 100]  # 160 x 0.8 s and 80 x 2.0 s at 1.6 s
    assert c.table["tr"].eq(1.6).all()
    meta = json.loads((c.path / "cohort.json").read_text())
    assert meta["preprocessing"]["target_tr"] == 1.6 and meta["preprocessing"]["zscore"] is True
    np.testing.assert_allclose(np.asarray(c.series(3)).std(0), 1, atol=1e-4)


def test_min_frames_counts_after_harmonization(bids, tmp_path):
    # 160 frames at 0.8 s are 64 frames at 2.0 s: exactly one default window
    c = ingest_bids(bids, "toy", tmp_path / "ok", PreprocSpec(target_tr=2.0), progress=False)
    assert list(c.table["n_frames"]) == [64, 64, 64, 80]
    with pytest.raises(InputError, match=r"sub-01_ses-1_run-1 .*62 frames is shorter than one window \(64 frames "
                                         r"at TR 2.06 s\)"):
        ingest_bids(bids, "toy", tmp_path / "short", PreprocSpec(target_tr=2.06), progress=False)
    assert not (tmp_path / "short").exists()


def test_cli_happy_path_and_overwrite(bids, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["ingest", "bids", str(bids), "--atlas", "toy", "--out", str(out), "--target-tr", "1.6", "--detrend",
            "--high-pass", "0.01", "--quiet"]
    assert main(argv) == 0
    assert "4 recordings from 2 subjects" in capsys.readouterr().out
    prep = Cohort.open(out).preprocessing
    assert prep == PreprocSpec(target_tr=1.6, detrend=True, high_pass=0.01, zscore=True)
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--dataset", "ADNI"]) == 0
    assert set(Cohort.open(out).table["dataset"]) == {"ADNI"}


def test_cli_help_documents_conventions(capsys):
    with pytest.raises(SystemExit):
        main(["ingest", "bids", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for s in ("_timeseries.tsv", "RepetitionTime", "atlas-<NAME>_dseg.tsv", "participants.tsv", "--min-frames",
              "after TR harmonization", "--quiet"):
        assert s in out


# ---------------------------------------------------------------------- refusals
def _edit(fn, rel=RUN2):
    """A mutation that rewrites one time-series TSV through ``fn(DataFrame) -> DataFrame``."""
    def mutate(root):
        p = root / rel
        fn(pd.read_csv(p, sep="\t", dtype=object)).to_csv(p, sep="\t", index=False)
    return mutate


def _cell(value, row=5, col="roi3"):
    def fn(df):
        df.loc[row, col] = value
        return df
    return _edit(fn)


def _no_tr(root):
    (root / "task-rest_timeseries.json").unlink()


def _zero_tr(root):
    (root / "task-rest_timeseries.json").write_text('{"RepetitionTime": 0}')


def _duplicate(root):
    shutil.copy(root / RUN1, root / RUN1.replace("space-MNI", "space-T1w"))


def _clashing_column(root):
    p = root / "participants.tsv"
    p.write_text(p.read_text().replace("\tsite\n", "\tsession\n"))


def _corrupt_tsv(root):
    (root / RUN2).write_text("roi0\troi1\n1\t2\t3\t4\t5\n")


def _binary_tsv(root):
    (root / RUN2).write_bytes(b"\x1f\x8b\x08\x00\xff\xfe\xfa\x00" * 20)


def _bad_json(root):
    (root / RUN2.replace(".tsv", ".json")).write_text('{"RepetitionTime": 0.8,')


def _bad_participants(root):
    (root / "participants.tsv").write_text("participant_id\tage\nsub-01\t70\t1\t2\t3\n")


def _no_recordings(root):
    for p in root.glob("sub-*/**/*_timeseries.tsv"):
        p.rename(p.with_name(p.name.replace("task-rest", "task-nback")))


def _no_atlas_table(root):
    (root / "atlas-toy_dseg.tsv").unlink()


REFUSALS = {
    "nan": (_cell("n/a"), RUN2, r"sub-01_ses-1_run-2 .*1 NaN/inf values \(first at frame 5, ROI roi3\).*remove or interpolate"),
    "inf": (_cell("inf"), RUN2, r"NaN/inf values"),
    "constant_roi": (_edit(lambda df: df.assign(roi6="3.0")), RUN2, r"1 constant ROI\(s\) \['roi6'\].*pass --drop-empty-rois"),
    "columns": (_edit(lambda df: df.rename(columns={"roi3": "bogus"})), RUN2, r"ROI columns do not match atlas 'toy' .*missing \['roi3'\]; not in the atlas "
                                r"\['bogus'\].*re-export"),
    "extra_column": (_edit(lambda df: df.assign(roi99="1.0")), RUN2, r"not in the atlas \['roi99'\]"),
    "missing_tr": (_no_tr, SUB2, r"missing repetition time \(no JSON sidecar found\); add \{\"RepetitionTime\""),
    "zero_tr": (_zero_tr, SUB2, r"RepetitionTime=0 .* is not a positive number of seconds"),
    "too_short": (_edit(lambda df: df.iloc[:40]), RUN2, r"40 frames is shorter than one window \(64 frames at TR 0.8 s\); drop this recording"),
    "duplicate_id": (_duplicate, "space-T1w", r"both map to recording sub-01_ses-1_run-1 .*keep one file per recording"),
    "clashing_column": (_clashing_column, "participants.tsv", r"column 'session' has the name of a column the cohort "
                                                              r"sets itself .*rename it in participants.tsv"),
    "corrupt_tsv": (_corrupt_tsv, RUN2, r"could not be read as a tab-separated table \(a row has more fields than "
                                      r"the header\); expected a header row"),
    "binary_tsv": (_binary_tsv, RUN2, r"(could not be read as a tab-separated table|ROI columns do not match)"),
    "non_numeric": (_cell("abc"), RUN2, r"non-numeric values .*every cell must be a number"),
    "bad_json": (_bad_json, RUN2.replace(".tsv", ".json"), r"JSON sidecar .* could not be read .*fix or remove it"),
    "bad_participants": (_bad_participants, "participants.tsv", r"participants table .* could not be read"),
    "no_recordings": (_no_recordings, "toyds", r"no recordings found under .*task-rest.*Found \*_timeseries.tsv files "
                                               r"for atlas\(es\) \['toy'\] and task\(s\) \['nback'\]"),
    "no_atlas_table": (_no_atlas_table, "atlas-toy_dseg.tsv", r"atlas table for 'toy' not found .*write "
                                                              r"atlas-toy_dseg.tsv with columns index, name, network"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_bad_input_is_refused_and_nothing_written(bids, tmp_path, case):
    mutate, names, pattern = REFUSALS[case]
    mutate(bids)
    with pytest.raises(InputError, match=pattern) as err:
        ingest_bids(bids, "toy", tmp_path / "out", progress=False)
    msg = str(err.value)
    assert Path(names).name in msg, f"the message must name the offending file: {msg}"
    assert "\n" not in msg
    _no_output(tmp_path)


@pytest.mark.parametrize("case", ["nan", "duplicate_id", "missing_tr", "no_atlas_table"])
def test_cli_refusal_is_one_line_exit_2(bids, tmp_path, capsys, case):
    mutate, _, pattern = REFUSALS[case]
    mutate(bids)
    rc = main(["ingest", "bids", str(bids), "--atlas", "toy", "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("bi-core: error:") and err.count("\n") == 1 and "Traceback" not in err
    _no_output(tmp_path)
