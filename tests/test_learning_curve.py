"""Learning curves: snapshots of a run scored on held-out subjects beside the linear references."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from bi_core.analysis.learning_curve import curve_summary, held_out_recordings, learning_curve
from bi_core.cohort import Cohort
from bi_core.errors import InputError
from bi_core.runs import load_model, preset, snapshot_epochs, snapshot_files

pytestmark = pytest.mark.usefixtures("one_thread")


def test_snapshot_epochs_are_even_and_kept(smoke_run):
    from dataclasses import replace

    assert snapshot_epochs(replace(preset("default"), snapshots=8)) == [8, 16, 24, 32, 40, 48, 56, 64]
    assert snapshot_epochs(replace(preset("default"), snapshots=0)) == []
    kept = snapshot_files(smoke_run)
    assert [e for e, _ in kept] == snapshot_epochs(preset("smoke")) == [2, 4]
    # the last snapshot is the final weights
    m4, _ = load_model(kept[-1][1])
    ck, _ = load_model(smoke_run / "checkpoint.pt")
    assert all((a == b).all() for a, b in zip(m4.state_dict().values(), ck.state_dict().values()))


def test_curve_scores_only_held_out_subjects(smoke_run, smoke_dir):
    cohort = Cohort.open(smoke_dir / "pretrain")
    summary = json.loads((smoke_run / "summary.json").read_text())
    curve = learning_curve(smoke_run, cohort)
    held = held_out_recordings(cohort, summary["train_subjects"])
    assert set(cohort.table.set_index("recording_id").loc[held, "subject"].astype(str)) == set(summary["val_subjects"])
    model = curve[curve["method"] == "model"]
    assert sorted(model["epoch"].unique()) == [2, 4]
    assert (model.groupby("epoch")["step"].first().diff().dropna() > 0).all()      # steps grow with epochs
    # the smoke model is the paper's decoder: no linear path, no parts to score apart
    assert set(curve["method"]) == {"model", "ridge", "lagged-ridge"}
    assert (curve["n_recordings"] == len(held)).all()
    s = curve_summary(curve)
    assert s["epochs"] == [2, 4] and s["ratio_to_ridge"] == pytest.approx(s["final_model_r2"] / s["ridge_r2"])
    assert set(s["references"]) == {"ridge", "lagged-ridge"} and s["parts"] == {} and np.isnan(s["decoder_adds"])
    # the references are fitted on the training subjects only: a strong linear map on this cohort
    assert s["ridge_r2"] > 0.1


def test_curve_scores_the_linear_path_ablation_part_by_part(smoke_linear_run, smoke_dir):
    """A model with the linear path (the ablation): its last snapshot is also scored part by part."""
    curve = learning_curve(smoke_linear_run, Cohort.open(smoke_dir / "pretrain"))
    assert set(curve["method"]) == {"model", "ridge", "lagged-ridge", "model: linear path", "model: decoder"}
    model = curve[curve["method"] == "model"]
    parts = curve[curve["method"].str.startswith("model: ")]
    assert set(parts["epoch"]) == {4} and set(parts["step"]) == {model["step"].max()}
    s = curve_summary(curve)
    assert set(s["parts"]) == {"linear path", "decoder"}
    assert s["parts"]["linear path"] == pytest.approx(parts.loc[parts["method"] == "model: linear path", "r2"].mean())
    assert s["decoder_adds"] == pytest.approx(s["final_model_r2"] - s["parts"]["linear path"])


def test_curve_needs_snapshots_and_held_out_subjects(smoke_run, smoke_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    shutil.rmtree(run / "snapshots")
    with pytest.raises(InputError, match="kept no weight snapshots"):
        learning_curve(run, Cohort.open(smoke_dir / "pretrain"))
    cohort = Cohort.open(smoke_dir / "pretrain")
    with pytest.raises(InputError, match="held-out subjects"):
        held_out_recordings(cohort, list(cohort.table["subject"].astype(str)))


def test_quality_bar_and_what_it_would_take():
    import pandas as pd

    from bi_core.analysis.learning_curve import QUALITY_BAR, bar_status, what_it_would_take

    assert bar_status(QUALITY_BAR) == "met" and bar_status(QUALITY_BAR - 0.01) == "not met"
    assert bar_status(float("nan")) == "not measured"
    t = pd.DataFrame({"cohort": ["a", "a", "a", "b"], "train_preset": ["x", "y", "z", "x"],
                      "steps": [3840, 960, 9000, 100], "ratio": [0.95, 0.7, 1.02, 0.99]})
    w = what_it_would_take(t, "a")
    assert list(w["rows"]["steps"]) == [960, 3840, 9000]
    assert w["first_meeting"]["train_preset"] == "x" and w["best"]["train_preset"] == "z"
    w = what_it_would_take(t.assign(ratio=[0.5, 0.4, 0.6, 0.99]), "a")
    assert w["first_meeting"] is None and w["best"]["train_preset"] == "z"
    # a table without a decoder column holds plain decoders; judging by decoder kind keeps the others shown
    w = what_it_would_take(t, "a", decoder="linear path")
    assert w["first_meeting"] is None and w["best"] is None and len(w["rows"]) == 3
    t2 = t.assign(decoder=["plain", "linear path", "plain", "plain"])
    w = what_it_would_take(t2, "a", decoder="linear path")
    assert w["first_meeting"] is None and w["best"]["train_preset"] == "y"
    assert what_it_would_take(t2, "a", decoder="plain")["first_meeting"]["train_preset"] == "x"


def test_bar_report_says_what_the_measured_presets_reach():
    import pandas as pd

    from bi_core.analysis.learning_curve import bar_report

    t = pd.DataFrame({"cohort": ["c", "c"], "train_preset": ["real", "real-full"], "steps": [960, 3840],
                      "model_r2": [0.5, 0.68], "ridge_r2": [0.71, 0.71], "ratio": [0.70, 0.96],
                      "train_s": [240.0, 960.0], "device": ["cpu", "cpu"], "machine": ["m", "m"],
                      "measured": ["2026-12-01"] * 2})
    r = bar_report(0.70, t, "c")
    assert r["status"] == "not met" and r["verdict"].endswith("read them beside their linear references")
    assert "real-full is the first to reach" in r["take"] and "3,840 steps" in r["take"]
    assert "shared" not in r["take"]
    noted = bar_report(0.70, t.assign(note=["", "machine shared"]), "c")["take"]
    assert noted.endswith("on cpu; machine shared)")
    assert r["gpu_preset"] == "real-full" and "--preset real-full" in r["gpu_command"]
    assert list(r["table"]["training (min)"]) == [4.0, 16.0]
    r = bar_report(0.95, t.assign(ratio=[0.5, 0.8]), "c")
    assert r["status"] == "met" and "none of the measured presets" in r["take"]
    assert "no training preset has been measured" in bar_report(0.5, None, "c")["take"]
    # only rows of the build's decoder kind say what it would take; the table shows them all
    r = bar_report(0.70, t.assign(decoder=["plain", "plain"]), "c", decoder="linear path")
    assert "no training preset with this decoder (linear path)" in r["take"] and len(r["table"]) == 2
    assert list(r["table"]["decoder"]) == ["plain", "plain"]


def test_rounded_has_no_negative_zero():
    from bi_core.analysis.learning_curve import rounded

    assert f"{rounded(-0.0004):.3f}" == "0.000" and f"{rounded(-0.0006):.3f}" == "-0.001"
    assert rounded(0.12345) == 0.123


def test_ablation_table_and_sentences():
    import pandas as pd

    from bi_core.analysis.learning_curve import PART_METHODS, ablation_sentences, ablation_table

    rows = []
    first, lin = "decoder as first built", "decoder as first built + linear path"
    for variant, seed, model_r2, parts in ((first, 0, 0.5, None), (first, 1, 0.4, None), ("book decoder", 7, 0.63, None),
                                           (lin, 0, 0.7, (0.65, 0.2)), (lin, 1, 0.6, (0.55, 0.1)),
                                           ("book decoder without the sink", 7, 0.56, None),
                                           ("book decoder without QK-norm", 7, 0.49, None)):
        run = [{"method": "model", "epoch": step // 10, "step": step, "network": "A", "r2": r2}
               for step, r2 in ((100, model_r2 / 2), (200, model_r2))]
        run += [{"method": "ridge", "network": "A", "r2": 0.7 if seed == 0 else 0.6},
                {"method": "lagged-ridge", "network": "A", "r2": 0.69}]
        if parts:
            run += [{"method": PART_METHODS[k], "epoch": 20, "step": 200, "network": "A", "r2": v}
                    for k, v in zip(("linear path", "decoder"), parts)]
        rows += [{**r, "cohort": "HCP", "variant": variant, "seed": seed, "train_s": 10.0} for r in run]
    t = ablation_table(pd.DataFrame(rows))
    assert len(t) == 7 and set(t["steps"]) == {200}
    lp = t[t["variant"] == lin].set_index("seed")
    assert lp.loc[0, "ratio"] == pytest.approx(1.0) and lp.loc[1, "linear_path_r2"] == pytest.approx(0.55)
    assert t[t["variant"] == first]["linear_path_r2"].isna().all()
    (text,) = ablation_sentences(t)
    assert "first built captures 0.67–0.71 of what the same-frame ridge captures (200 steps, seeds 0, 1)" in text
    assert "the book's decoder 1.05 (200 steps, seed 7)" in text and "linear-path ablation 1.00 (seeds 0, 1)" in text
    assert "linear path alone reaches R² 0.600" in text and "decoder alone 0.150" in text
    assert ("with one design choice turned off at a time, without the sink 0.93 (200 steps, seed 7), without QK-norm "
            "0.82 (200 steps, seed 7)") in text


def test_an_early_stopped_run_ends_its_curve_with_the_weights_the_analyses_load(smoke_run, smoke_dir, tmp_path):
    from bi_core.analysis.predictability import predictability

    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    (run / "snapshots" / "epoch-0004.pt").unlink()              # as if training had stopped before epoch 4
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "best_epoch": 3}))
    cohort = Cohort.open(smoke_dir / "pretrain")
    curve = learning_curve(run, cohort)
    model_rows = curve[curve["method"] == "model"]
    assert sorted(model_rows["epoch"].unique()) == [2, 3]
    m, info = load_model(run / "best.pt", cohort=cohort)
    ids = held_out_recordings(cohort, summary["train_subjects"])
    expected = predictability(m, info, cohort, recordings=ids).groupby("network")["r2"].mean()
    got = model_rows[model_rows["epoch"] == 3].set_index("network")["r2"]
    assert np.allclose(got.reindex(expected.index), expected)
    assert not curve["method"].str.startswith("model: ").any()       # the paper's decoder has no parts


def test_fold_curves_pool_into_one_mean_over_held_out_recordings():
    import pandas as pd

    from bi_core.analysis.learning_curve import pool_folds

    rows = []
    for fold, (n, steps, r2) in enumerate([(3, 2, 0.2), (1, 3, 0.6)]):   # folds of 3 and 1 held-out recordings
        for epoch in (1, 2):
            rows += [{"method": "model", "epoch": epoch, "step": epoch * steps, "network": net, "r2": r2 + epoch / 10,
                      "n_recordings": n, "fold": fold} for net in ("A", "B")]
        rows += [{"method": "ridge", "epoch": None, "step": None, "network": net, "r2": r2, "n_recordings": n,
                  "fold": fold} for net in ("A", "B")]
    pooled = pool_folds(pd.DataFrame(rows))
    assert len(pooled) == 6 and set(pooled["n_folds"]) == {2} and set(pooled["n_recordings"]) == {4}
    m = pooled[pooled["method"] == "model"].set_index(["epoch", "network"])
    # weighted by held-out recordings: (3 * 0.3 + 1 * 0.7) / 4 at epoch 1; steps averaged over folds
    assert m.loc[(1, "A"), "r2"] == pytest.approx(0.4) and m.loc[(2, "B"), "step"] == 5
    assert pooled.loc[pooled["method"] == "ridge", "r2"].tolist() == pytest.approx([0.3, 0.3])
    assert curve_summary(pooled)["steps"] == [2, 5]       # reads like a single run's curve
    assert pool_folds(pooled) is pooled                   # no fold column: as it is
