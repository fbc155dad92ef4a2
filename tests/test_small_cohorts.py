"""Small and unbalanced cohorts never crash: folds follow the subjects, presets fit the data, ingest checks (issue 23).

The pilots are baseline visits of the smoke synthetic cohort's first subjects of each
diagnosis (:func:`_pilot`); every command runs through ``bi_core.cli.main``, which lets
any exception other than a bi_core error through: a test that passes saw no traceback.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bi_core.analysis.classify import CVConfig, FeatureSet, as_series_array, make_folds, run_classification
from bi_core.cli import main
from bi_core.cohort import Cohort
from bi_core.errors import InputError

from _util import pilot as _pilot


def _analyze(smoke_run: Path, cohort: Path, out: Path, capsys, *extra: str) -> tuple[dict, str]:
    rc = main(["analyze", "--run", str(smoke_run), "--cohort", str(cohort), "--out", str(out), "--repeats", "1",
               "--occlusion-windows", "1", "--quiet", "--permutations", "19", "--bootstrap", "50", *extra])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "Traceback" not in captured.out + captured.err
    return json.loads((out / "summary.json").read_text()), captured.out


# ---------------------------------------------------------------------- analyze
def test_two_subjects_get_the_tables_that_need_no_comparison(smoke_dir, smoke_run, tmp_path, capsys, one_thread):
    cohort = _pilot(smoke_dir, tmp_path / "two", CN=1, AD=1)
    s, log = _analyze(smoke_run, cohort, tmp_path / "out", capsys)
    out = tmp_path / "out"
    assert (out / "predictability.tsv").is_file() and (out / "embeddings.tsv").is_file()
    skipped = s["skipped"]
    assert skipped["classification ad_cn (CN vs AD)"] == ("classification needs at least 2 subjects in each of 2 "
                                                          "groups; group CN has 1 (CN 1, AD 1)")
    assert "cross-fitting" in skipped["linear references"] and "--fit-cohort" in skipped["linear references"]
    assert "group CN has 1 subject" in skipped["group differences AD-CN"]
    # every reason is printed once, on its own line
    for what, why in skipped.items():
        assert log.count(f"skipped {what}: {why}\n") == 1
    assert not (out / "predictability_linear.tsv").exists() and not (out / "marker.tsv").exists()


def test_three_subjects_one_group_of_one(smoke_dir, smoke_run, tmp_path, capsys, one_thread):
    cohort = _pilot(smoke_dir, tmp_path / "three", CN=2, AD=1)
    s, log = _analyze(smoke_run, cohort, tmp_path / "out", capsys)     # --folds 5 by default
    assert "group AD has 1 (CN 2, AD 1)" in s["skipped"]["classification ad_cn (CN vs AD)"]
    assert s["skipped"]["group differences AD-CN"] == "group AD has 1 subject (need at least 2)"
    # the linear references are cross-fitted leaving one subject out
    assert s["adapted"]["linear references"] == "leave-one-subject-out (3 folds) instead of 5 (3 subjects)"
    assert s["linear"]["fit"]["folds"] == 3
    assert "adapted linear references to this cohort: leave-one-subject-out" in log


def test_six_subject_pilot_adapts_its_folds(smoke_dir, smoke_run, tmp_path, capsys, one_thread):
    """The pilot of issue 23: 3 CN and 3 AD, default --folds 5 and --inner-folds 3."""
    cohort = _pilot(smoke_dir, tmp_path / "six", CN=3, AD=3)
    s, log = _analyze(smoke_run, cohort, tmp_path / "out", capsys, "--group-column", "diagnosis")
    note = s["adapted"]["classification ad_cn (CN vs AD)"]
    assert note == ("3 outer folds instead of 5 (the smallest group, CN, has 3 subjects); 2 inner folds instead of 3 "
                    "(a training fold holds 2 subjects of CN)")
    assert f"adapted classification ad_cn (CN vs AD) to this cohort: {note}\n" in log
    assert "summary marker (AD vs CN)" in s["adapted"]
    pred = pd.read_csv(tmp_path / "out" / "classification_ad_cn_predictions.tsv", sep="\t")
    assert pred["fold"].nunique() == 3 and {"FC tangent", "FC correlation"} <= set(pred["feature_set"])
    assert (tmp_path / "out" / "groupdiff_predictability.tsv").is_file()
    assert set(s["classification"]["ad_cn"]) >= {"BrainInterNet embedding", "FC tangent"}
    assert not any(k.startswith(("classification", "group differences")) for k in s["skipped"])


def test_inner_folds_option_is_checked(smoke_dir, smoke_run, tmp_path, capsys):
    rc = main(["analyze", "--run", str(smoke_run), "--cohort", str(smoke_dir / "eval"), "--out", str(tmp_path / "o"),
               "--inner-folds", "1"])
    assert rc == 2 and "--inner-folds 1: cross-validation needs at least 2" in capsys.readouterr().err


# ---------------------------------------------------------------------- folds (no model)
def _table(sizes: dict[str, int], rng: np.random.Generator):
    rows, X, series = [], [], []
    for g, (dx, n) in enumerate(sizes.items()):
        for i in range(n):
            rows.append(dict(recording_id=f"{dx}{i}", subject=f"{dx}{i}", diagnosis=dx, years_from_baseline=0.0))
            X.append(rng.normal(size=4) + 2.0 * g)
            series.append(rng.normal(size=(60, 4)))
    return pd.DataFrame(rows), np.array(X), as_series_array(series)


def test_a_class_absent_from_every_test_fold(rng):
    """Leave-one-subject-out: each test fold holds one class only, and one subject for the tangent space."""
    table, X, series = _table({"CN": 2, "AD": 2}, rng)
    res = run_classification([FeatureSet("emb", X), FeatureSet("FC tangent", series, "tangent")], table, "ad_cn",
                             CVConfig(n_splits=5, n_repeats=5))
    folds = res["folds"]
    assert (folds.n_splits, folds.n_repeats, folds.inner_splits) == (4, 1, 0)
    assert folds.notes == ["leave-one-subject-out (4 folds, 1 repeat) instead of 5 (4 subjects: CN 2, AD 2)",
                           "C fixed at 0.1, not tuned (a training fold holds 1 subject of CN; tuning needs 2)"]
    pred = res["predictions"]
    assert pred.groupby(["feature_set", "fold"])["y_true"].nunique().eq(1).all()
    assert set(pred["C"]) == {0.1} and res["summary"]["auc"].notna().all()


@pytest.mark.parametrize("sizes, outer, inner", [({"CN": 3, "AD": 3}, 3, 2), ({"CN": 2, "AD": 3}, 2, 0),
                                                 ({"CN": 3, "MCI": 2, "AD": 9}, 2, 0)])
def test_fold_counts_follow_the_smallest_group(sizes, outer, inner, rng):
    table, X, _ = _table(sizes, rng)
    y = table["diagnosis"].map({k: i for i, k in enumerate(sizes)}).to_numpy()
    folds = make_folds(table["subject"].to_numpy(), y, CVConfig(), tuple(sizes))
    assert (folds.n_splits, folds.inner_splits, folds.n_repeats) == (outer, inner, 5)
    for _, _, tr, te in folds.splits:     # every class in every training fold
        assert set(y[tr]) == set(range(len(sizes)))


def test_enough_subjects_keep_the_requested_folds(rng):
    """Nothing changes on a cohort large enough for the request: the same folds as before, no note."""
    from bi_core.folds import stratified_subject_folds

    table, _, _ = _table({"CN": 6, "AD": 5}, rng)
    y = (table["diagnosis"] == "AD").to_numpy().astype(int)
    cfg = CVConfig(n_splits=5, n_repeats=2, seed=3)
    folds = make_folds(table["subject"].to_numpy(), y, cfg, ("CN", "AD"))
    ref = stratified_subject_folds(table["subject"].to_numpy(), y, 5, 2, 3)
    assert folds.notes == [] and folds.inner_splits == 3
    assert all((a == c).all() and (b == d).all() for (_, _, a, b), (_, _, c, d) in zip(folds.splits, ref))


def test_one_group_of_one_subject_is_left_out_of_the_comparisons(rng):
    from bi_core.analysis.groupstats import Groups, comparable_groups

    table, X, _ = _table({"CN": 3, "MCI": 1, "AD": 3}, rng)
    kept, why = comparable_groups(table, Groups())
    assert kept == Groups(order=("CN", "AD")) and why == {"MCI-CN": "group MCI has 1 subject (need at least 2)"}
    assert comparable_groups(table[table["diagnosis"] != "CN"], Groups())[0] is None     # no reference
    with pytest.raises(InputError, match="group MCI has 1"):
        run_classification({"emb": X}, table, "3class", CVConfig())


# ---------------------------------------------------------------------- presets
def test_smoke_preset_fits_a_six_subject_pilot(smoke_dir, tmp_path, capsys, one_thread):
    cohort = _pilot(smoke_dir, tmp_path / "six", CN=3, AD=3)
    rc = main(["pretrain", "--cohort", str(cohort), "--preset", "smoke", "--out", str(tmp_path / "run"), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    fitted = s["preset_fitted"]
    n = s["windows_per_epoch"]
    assert n < 8 and fitted["batch_size"] == [8, n] and s["steps_per_epoch"] == 1 and s["epochs_run"] == 4
    line = f"preset smoke fitted to this cohort: batch size 8 → {n} (only {n} training windows of 64 frames; " \
           "4 epochs of one step each)\n"
    assert out.count("preset smoke fitted") == 1 and line in out
    assert f"batch_size: {n}\n" in (tmp_path / "run" / "config.yaml").read_text()
    # an explicit --batch-size is the user's: refused as before
    rc = main(["pretrain", "--cohort", str(cohort), "--preset", "smoke", "--batch-size", "8",
               "--out", str(tmp_path / "run8"), "--quiet"])
    assert rc == 2 and "larger than an epoch" in capsys.readouterr().err


def test_a_preset_that_fits_is_unchanged():
    from bi_core.runs import fit_to_windows, preset

    real = preset("real")                     # 16 windows per batch in 4 mask draws
    assert fit_to_windows(real, 16, "real") == (real, None)
    fitted, how = fit_to_windows(real, 11, "real")
    assert (fitted.batch_size, fitted.mask_groups) == (8, 4) and how["batch_size"] == [16, 8]
    fitted, how = fit_to_windows(real, 3, "real")           # fewer windows than mask draws: one draw
    assert (fitted.batch_size, fitted.mask_groups) == (3, 1)
    assert "mask draws per batch 4 → 1" in how["message"]
    assert fit_to_windows(preset("smoke"), 6, "smoke", world=4)[0].batch_size == 4     # DDP: divisible by ranks


# ---------------------------------------------------------------------- ingest
@pytest.fixture()
def bids_pilot(smoke_dir, tmp_path) -> Path:
    """The six-subject pilot as a BIDS-derivatives tree (one run per subject, TR in each sidecar)."""
    from bi_core.ingest import export_bids

    return export_bids(Cohort.open(_pilot(smoke_dir, tmp_path / "six", CN=3, AD=3)), tmp_path / "bids")


def _runs(root: Path) -> list[Path]:
    return sorted(root.glob("sub-*/**/*_timeseries.tsv"))


def _set_tr(tsv: Path, tr: float) -> None:
    tsv.with_name(tsv.name.replace(".tsv", ".json")).write_text(json.dumps({"RepetitionTime": tr}))


def _ingest(root: Path, out: Path, *extra: str) -> list[str]:
    # one pilot recording is 61 frames at TR 3 s: shorter than the default window
    return ["ingest", "bids", str(root), "--atlas", Cohort.open(root.parent / "six").atlas.name, "--out", str(out),
            "--min-frames", "32", "--quiet", *extra]


def test_tr_in_milliseconds_is_refused(bids_pilot, tmp_path, capsys, small_atlas):
    from bi_core.cohort import CohortWriter

    run = _runs(bids_pilot)[0]
    _set_tr(run, 800)
    assert main(_ingest(bids_pilot, tmp_path / "c")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and run.name in err
    assert "RepetitionTime 800 in" in err and "it looks like milliseconds (800 ms = 0.8 s): give it in seconds" in err
    assert not (tmp_path / "c").exists()
    # whoever writes a cohort gets the same check
    with pytest.raises(InputError, match=r"TR 0.02 is outside the plausible 0.1–10 s; check its units"):
        with CohortWriter(tmp_path / "w", small_atlas) as w:
            w.add(np.random.default_rng(0).normal(size=(80, 8)), recording_id="r", subject="s", tr=0.02)


def test_participants_mismatch_is_one_summary_line(bids_pilot, tmp_path, capsys):
    p = bids_pilot / "participants.tsv"
    lines = p.read_text().splitlines()
    missing = lines[1].split("\t")[0]                        # a subject with data but no row
    p.write_text("\n".join([lines[0], *lines[2:], "sub-ghost\t" + "\t".join(lines[1].split("\t")[1:])]) + "\n")
    assert main(_ingest(bids_pilot, tmp_path / "c")) == 0
    out = capsys.readouterr().out
    line = (f"{p}: 1 subject(s) with data have no row ({missing}; their phenotypes are n/a); 1 row(s) have no data "
            "(sub-ghost)\n")
    assert out.count(str(p)) == 1 and line in out
    c = Cohort.open(tmp_path / "c")
    assert c.meta["ingest"]["participants"]["without_data"] == ["ghost"]
    assert c.table.loc[c.table["subject"] == missing[4:], "diagnosis"].isna().all()


def test_every_bad_recording_is_reported_and_skip_bad_writes_the_rest(bids_pilot, tmp_path, capsys):
    runs = _runs(bids_pilot)
    _set_tr(runs[1], 2000)                                              # found while planning
    df = pd.read_csv(runs[4], sep="\t")
    df.iloc[3, 2] = np.nan                                              # found while writing
    df.to_csv(runs[4], sep="\t", index=False, na_rep="n/a")
    assert main(_ingest(bids_pilot, tmp_path / "c")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2 of 6 recordings cannot be ingested: (1) " in err
    assert runs[1].name in err and "2000 ms = 2 s" in err and runs[4].name in err and "NaN/inf values" in err
    assert "pass --skip-bad to write the other 4" in err and not (tmp_path / "c").exists()

    assert main(_ingest(bids_pilot, tmp_path / "c", "--skip-bad")) == 0
    out = capsys.readouterr().out
    c = Cohort.open(tmp_path / "c")
    bad = c.meta["ingest"]["skipped_recordings"]
    assert len(c) == 4 and [b["source"] for b in bad] == [str(runs[1]), str(runs[4])]
    assert "milliseconds" in bad[0]["reason"] and "NaN/inf" in bad[1]["reason"]
    assert f"skipped 2 bad recording(s), listed with the reasons in {c.path / 'cohort.json'}: " \
           f"{bad[0]['recording_id']}, {bad[1]['recording_id']}" in out
    # their subjects' participants.tsv rows are not "rows without data": the subjects are listed as skipped
    assert "no data" not in out and "participants" not in c.meta["ingest"]
    # nothing good left: refused even with --skip-bad
    for r in runs:
        _set_tr(r, 800)
    assert main(_ingest(bids_pilot, tmp_path / "none", "--skip-bad")) == 2
    assert "none of the 6 recordings can be ingested" in capsys.readouterr().err
