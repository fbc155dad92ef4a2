"""Masking-strategy study: matched fractions, identical held-out masks, summaries, conclusions, smoke run."""

import numpy as np
import pandas as pd
import pytest

from bi_core.errors import ConfigError, InputError
from bi_core.masking import STRATEGIES, TokenLayout, matched_ratio
from bi_core.related.masking_study.config import METRICS, StudyConfig, study_preset
from bi_core.related.masking_study.report import conclusions, paired_differences, summarize
from bi_core.related.masking_study.report import load_study
from bi_core.related.masking_study.training import mask_fractions, matched_mask_configs
from bi_core.synth import synthetic_atlas


@pytest.fixture(scope="module")
def layout():
    return TokenLayout.from_atlas(synthetic_atlas(50, 4), n_patches=4)  # the default cohort's atlas


def test_realized_fractions_match_the_network_share(layout):
    configs = matched_mask_configs(layout, p_two=0.25)
    assert list(configs) == list(STRATEGIES)
    fr = mask_fractions(layout, configs, n_draws=1500, seed=0).set_index("strategy")
    target = matched_ratio(layout, 0.25)
    assert np.allclose(fr["target"], target)
    # token and block strategies mask a fixed count: the target up to one token / one block
    assert fr.loc["random", "realized_sd"] == 0
    assert abs(fr.loc["random", "realized_mean"] - target) <= 0.5 / layout.n_tokens + 1e-12
    assert fr.loc["temporal_block", "realized_sd"] == 0
    assert abs(fr.loc["temporal_block", "realized_mean"] - target) <= 1.0 / layout.n_tokens + 1e-12
    # whole atlas ROIs: a fixed count, the target up to half an ROI
    assert fr.loc["atlas_region", "realized_sd"] == 0
    assert abs(fr.loc["atlas_region", "realized_mean"] - target) <= 0.5 / layout.n_rois + 1e-12
    # whole networks / lobe-like groups vary per draw but match in expectation (lobe_group via its p_two)
    for s in ("network", "lobe_group"):
        assert abs(fr.loc[s, "expected"] - target) < 0.005
        assert abs(fr.loc[s, "realized_mean"] - target) < 0.012
        assert fr.loc[s, "realized_sd"] > 0
    assert 0 <= configs["lobe_group"].p_two <= 1 and configs["lobe_group"].p_two != configs["network"].p_two


def test_lobe_group_needs_regions_atlas_region_does_not():
    lay = TokenLayout((0, 0, 1, 1, 2, 2), 4)
    with pytest.raises(ConfigError, match="region"):
        matched_mask_configs(lay, strategies=["network", "lobe_group"])
    assert set(matched_mask_configs(lay, strategies=["network", "random", "atlas_region"])) == {
        "network", "random", "atlas_region"}


def test_study_config_validation():
    with pytest.raises(ConfigError, match="network"):
        StudyConfig(strategies=("random", "lobe_group"))
    with pytest.warns(FutureWarning, match="now called 'lobe_group'"):
        assert StudyConfig(strategies=("network", "region")).strategies == ("network", "lobe_group")
    with pytest.raises(ConfigError, match="data="):
        StudyConfig(data="real")
    with pytest.raises(ConfigError, match="eval_fraction"):
        StudyConfig(eval_fraction=1.0)
    real = study_preset("real")
    assert real.data == "cohort" and real.strategies == ("network", "random", "atlas_region")
    with pytest.raises(ConfigError, match="unknown"):
        StudyConfig(strategies=("network", "bogus"))
    with pytest.raises(ConfigError, match="divide"):
        StudyConfig(batch_size=8, mask_groups=3)
    with pytest.raises(ConfigError, match="model_size"):
        StudyConfig(model_size="huge")
    with pytest.raises(ConfigError, match="preset"):
        study_preset("gigantic")
    cfg = study_preset("default", n_seeds=4, jobs=None)
    assert cfg.seeds == [0, 1, 2, 3] and cfg.jobs == 2 and cfg.n_seeds >= 3
    assert study_preset("full").model_size == "small" and study_preset("full").n_seeds >= 3


def _metrics(effects: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    rows = [{"seed": i, "strategy": s, "metric": m, "value": v}
            for m, d in effects.items() for s, vals in d.items() for i, v in enumerate(vals)]
    return pd.DataFrame(rows)


def test_summaries_and_computed_conclusions():
    m = _metrics({
        # network clearly best (higher is better) in every seed
        "auc_ad_cn": {"network": [0.90, 0.91, 0.92], "random": [0.70, 0.71, 0.72],
                      "atlas_region": [0.60, 0.62, 0.61]},
        # network clearly worst (lower is better)
        "nmse_own": {"network": [0.99, 0.98, 0.99], "random": [0.80, 0.81, 0.79],
                     "atlas_region": [0.95, 0.96, 0.95]},
        # noise
        "bacc_3class": {"network": [0.5, 0.3, 0.4], "random": [0.3, 0.5, 0.45], "atlas_region": [0.4, 0.4, 0.38]},
    })
    m = pd.concat([m, pd.DataFrame([{"seed": np.nan, "strategy": "FC correlation", "metric": "auc_ad_cn",
                                     "value": 0.99}])], ignore_index=True)
    s = summarize(m)
    row = s[(s["metric"] == "auc_ad_cn") & (s["strategy"] == "network")].iloc[0]
    assert row["mean"] == pytest.approx(0.91) and row["sd"] == pytest.approx(0.01) and row["n_seeds"] == 3
    assert s[(s["strategy"] == "FC correlation")]["n_seeds"].iloc[0] == 0
    p = paired_differences(m)
    pr = p[(p["metric"] == "auc_ad_cn") & (p["strategy"] == "random")].iloc[0]
    assert pr["mean_diff"] == pytest.approx(-0.2) and pr["reference_better"] == 3 and pr["ci_high"] < 0
    c = conclusions(s, p)
    assert c["network_better"] == ["auc_ad_cn"]
    assert c["network_worse"] == ["nmse_own"]
    assert c["undecided"] == ["bacc_3class"]
    assert "consistently better than atlas_region, random" in c["per_metric"]["auc_ad_cn"]
    assert "consistently worse than atlas_region, random" in c["per_metric"]["nmse_own"]
    assert "atlas-region masking 0.610 vs random 0.710" in c["region_vs_random"]
    assert "1 of 3" in c["verdict"]
    # a flipped direction flips the verdict: nothing about the outcome is hard-coded
    m2 = m.copy()
    auc = (m2["metric"] == "auc_ad_cn") & m2["seed"].notna()
    m2.loc[auc, "value"] = 1 - m2.loc[auc, "value"]
    c2 = conclusions(summarize(m2), paired_differences(m2))
    assert "auc_ad_cn" in c2["network_worse"]


def test_ties_and_missing_values_are_reported_not_ranked():
    m = _metrics({"gt_recall": {"network": [0, 0, 0], "random": [0, 0, 0]},
                  "gt_precision": {"network": [np.nan] * 3, "random": [np.nan] * 3}})
    c = conclusions(summarize(m), paired_differences(m))
    assert "every strategy gives 0 (mean over seeds)" in c["per_metric"]["gt_recall"]   # bi_core.numfmt.format_number
    assert "no finite values" in c["per_metric"]["gt_precision"]
    assert set(c["undecided"]) == {"gt_recall", "gt_precision"}


def test_study_smoke_identical_masks_and_tables(smoke_dir, tmp_path):
    from bi_core.related.masking_study.study import run_study

    # the smoke preset's classification grid (two penalties, two inner folds): the tables' shape is what is tested
    cfg = StudyConfig(name="smoke", strategies=("network", "random"), n_seeds=2, epochs=1, jobs=1, cv_folds=3,
                      cv_repeats=1, cv_inner_splits=2, cv_Cs=(0.01, 1.0), fc_reference=False, fraction_draws=50,
                      occlusion_windows=1)
    s = run_study(smoke_dir, tmp_path / "study", cfg, progress=False)
    res = load_study(tmp_path / "study")
    rec = res["reconstruction"]
    # identical mask draws for every model: the predict-zero error depends only on masks and data
    assert rec.groupby("eval_mask")["sse_zero"].nunique().eq(1).all()
    assert rec.groupby("eval_mask")["n_values"].nunique().eq(1).all()
    assert len(rec) == 2 * 2 * 2  # seeds x strategies x evaluation maskings (the study's strategies)
    runs = res["runs"]
    assert runs["steps"].nunique() == 1  # matched compute
    assert set(res["metrics"]["metric"]) <= set(METRICS) and {"auc_ad_cn", "nmse_own"} <= set(res["metrics"]["metric"])
    cls = res["classification"]
    assert set(cls["task"]) == {"ad_cn", "3class"} and cls.groupby("task").size().eq(4).all()
    assert s["conclusions"]["verdict"] and (tmp_path / "study" / "runs" / "random-s1" / "best.pt").is_file()
    # a second call reuses the finished runs
    s2 = run_study(smoke_dir, tmp_path / "study", cfg, progress=False)
    assert s2["conclusions"] == s["conclusions"]


def _real_like_cohort(path, n_subjects=6, n_frames=400, seed=0):
    """A tiny single cohort on the real AAL2 → Yeo-7 atlas (80 ROIs, 6 lobe-like groups), HCP's TR, no labels."""
    from bi_core.atlas import aal2_yeo7
    from bi_core.cohort import CohortWriter

    atlas = aal2_yeo7()
    rng = np.random.default_rng(seed)
    net = np.asarray(atlas.network_index)
    with CohortWriter(path, atlas, min_frames=64) as w:
        for i in range(n_subjects):
            latent = rng.standard_normal((n_frames, net.max() + 1))
            x = latent[:, net] + rng.standard_normal((n_frames, atlas.n_rois))
            w.add(x, recording_id=f"sub-{i:02d}", subject=f"{i:02d}", tr=0.72, dataset="hcp-like")
    return atlas


def test_held_out_subject_split():
    from bi_core.related.masking_study.data import split_subjects

    t = pd.DataFrame({"subject": np.repeat([f"s{i}" for i in range(10)], 2)})
    tr, ev = split_subjects(t, 0.3, seed=0)
    assert len(ev) == 3 and len(tr) == 7 and not set(tr) & set(ev) and set(tr) | set(ev) == set(t["subject"])
    assert split_subjects(t, 0.3, seed=0) == (tr, ev) and split_subjects(t, 0.3, seed=1) != (tr, ev)
    with pytest.raises(InputError, match="more subjects"):
        split_subjects(t.iloc[:4], 0.5)


def test_study_on_one_real_like_cohort(tmp_path):
    from bi_core.cohort import Cohort
    from bi_core.related.masking_study.study import run_study

    atlas = _real_like_cohort(tmp_path / "hcp")
    cfg = StudyConfig(name="real-test", data="cohort", eval_fraction=0.34,
                      strategies=("network", "random", "atlas_region"), n_seeds=1, epochs=1, jobs=1,
                      occlusion=False, fc_reference=False, fraction_draws=50)
    s = run_study(tmp_path / "hcp", tmp_path / "study", cfg, progress=False)
    res = load_study(tmp_path / "study")
    # subject-held-out: the pretraining copy holds the other subjects only, the held-out ones are scored
    held = set(s["data"]["eval_subjects"])
    pre = Cohort.open(tmp_path / "study" / "data" / "pretrain")
    assert len(held) == 2 and not held & set(pre.table["subject"]) and len(pre) == 4
    assert s["n_eval_recordings"] == 2 and s["data"]["mode"] == "cohort"
    # the real atlas: each ROI is an atlas region; atlas_region masks whole ROIs at the network share
    fr = res["mask_fractions"].set_index("strategy")
    k = round(fr.loc["network", "target"] * atlas.n_rois)
    assert fr.loc["atlas_region", "realized_mean"] == pytest.approx(k / atlas.n_rois) and k >= 10
    rec = res["reconstruction"]
    assert len(rec) == 9 and set(rec["eval_mask"]) == set(cfg.strategies)  # models x evaluation maskings
    assert rec.groupby("eval_mask")["sse_zero"].nunique().eq(1).all()
    # no labels on this cohort: reconstruction and predictability only
    assert res["classification"].empty and set(res["metrics"]["metric"]) == {"nmse_own", "nmse_network", "r2_network"}
    assert "not computed" in s["conclusions"]["region_vs_random"] and s["conclusions"]["verdict"]
    # a second call reuses the split copy and the runs
    mtime = (tmp_path / "study" / "data" / "pretrain" / "cohort.json").stat().st_mtime_ns
    assert run_study(tmp_path / "hcp", tmp_path / "study", cfg, progress=False)["conclusions"] == s["conclusions"]
    assert (tmp_path / "study" / "data" / "pretrain" / "cohort.json").stat().st_mtime_ns == mtime
    # the wrong data mode for the directory says which one fits
    with pytest.raises(InputError, match="data 'cohort'"):
        run_study(tmp_path / "hcp", tmp_path / "o2", StudyConfig(name="x", n_seeds=1), progress=False)


def test_study_errors(tmp_path):
    from bi_core.related.masking_study.study import run_study

    with pytest.raises(InputError, match="bi-core synth"):
        run_study(tmp_path, tmp_path / "out", study_preset("smoke"), progress=False)
    with pytest.raises(InputError, match="no finished masking study"):
        load_study(tmp_path)


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    from bi_core.cli import main

    assert main(["related", "masking-study", "--cohorts", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--preset", "smoke", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bi-core: error:") and len(err.strip().splitlines()) == 1


def test_study_figures():
    import matplotlib

    matplotlib.use("Agg")
    from bi_core.figures import related as F

    m = _metrics({"auc_ad_cn": {"network": [0.9, 0.8], "random": [0.7, 0.75]}})
    fig = F.strategy_panels(m, ["auc_ad_cn", "absent"], {"auc_ad_cn": "AUC"}, {"auc_ad_cn": True},
                            reference={"auc_ad_cn": 0.99})
    assert len([a for a in fig.axes if a.axison]) == 1 and fig.axes[0].get_title() == "AUC (↑)"
    rec = pd.DataFrame({"seed": [0, 0, 1, 1], "strategy": ["network", "random"] * 2,
                        "eval_mask": ["network"] * 4, "nmse": [0.9, 0.8, 0.92, 0.82]})
    M = F.reconstruction_matrix(rec)
    assert M.loc["network", "network"] == pytest.approx(0.91) and list(M.index) == ["network", "random"]
    ax = F.reconstruction_heatmap(rec)
    np.testing.assert_allclose(ax.get_images()[0].get_array(), M.to_numpy())
    assert [t.get_text() for t in ax.texts] == ["0.910", "0.810"]
    fr = pd.DataFrame({"strategy": ["network", "random"], "expected": [0.15, 0.15], "realized_mean": [0.16, 0.15],
                       "realized_sd": [0.08, 0.0], "realized_min": [0.04, 0.15], "realized_max": [0.4, 0.15],
                       "target": [0.15, 0.15]})
    assert F.mask_fractions(fr).get_ylabel() == "share of tokens masked"
