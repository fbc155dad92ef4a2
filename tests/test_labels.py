"""Your cohort, your labels: phenotypes as data, any group column, unlabelled cohorts, test–retest reliability."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.signal import lfilter

from bi_core.cli import main
from bi_core.cohort import Cohort
from bi_core.ingest import ingest_bids

N_PER_GROUP = 6
TR = 1.5
FRAMES = 140  # two 64-frame windows of the smoke model at its 1.5 s TR


def _write_bids(root: Path, atlas, seed: int = 0, labels: tuple[str, str] | None = ("control", "ADHD")) -> Path:
    """A BIDS-derivatives tree: 2 groups x N_PER_GROUP subjects, two sessions each (no diagnosis if ``labels`` is None).

    Each subject has a stable network profile (its 'trait') that both sessions share, so
    the sessions agree more with each other than with other subjects.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    atlas.to_tsv(root / f"atlas-{atlas.name}_dseg.tsv")
    (root / "task-rest_timeseries.json").write_text(json.dumps({"RepetitionTime": TR}))
    ni = atlas.network_index
    rows = []
    for i in range(2 * N_PER_GROUP):
        sub = f"{i + 1:02d}"
        group = f"{labels[i % 2]}\t" if labels else ""
        loading = rng.uniform(0.2, 1.2, atlas.n_networks)  # the subject's traits: network coherence
        glob = rng.uniform(0.0, 0.8)                        # and global-signal strength
        rows.append(f"sub-{sub}\t{group}{rng.uniform(8, 12):.1f}\t{'MF'[i % 3 % 2]}\t{rng.integers(1, 4)}\t"
                    f"{'right' if i % 4 else 'left'}")
        for ses in ("1", "2"):
            z = lfilter([0.6], [1, -0.8], rng.standard_normal((FRAMES, atlas.n_networks + 1)), axis=0)  # AR(1)
            x = z[:, ni] * loading[ni] + glob * z[:, -1:] + rng.standard_normal((FRAMES, atlas.n_rois))
            path = root / f"sub-{sub}" / f"ses-{ses}" / "func" / (
                f"sub-{sub}_ses-{ses}_task-rest_atlas-{atlas.name}_timeseries.tsv")
            path.parent.mkdir(parents=True)
            pd.DataFrame(x, columns=list(atlas.roi_names)).to_csv(path, sep="\t", index=False)
    (root / "participants.tsv").write_text(f"participant_id\t{'diagnosis' + chr(9) if labels else ''}age\tsex\t"
                                           "scanner_code\thandedness\n" + "\n".join(rows) + "\n")
    return root


def _ingest(tmp_path_factory, smoke_dir, name: str, **kw) -> Path:
    atlas = Cohort.open(smoke_dir / "eval").atlas  # the smoke synthetic atlas, so the smoke run reads the cohort
    root = _write_bids(tmp_path_factory.mktemp("bids") / name, atlas, **kw)
    out = root.parent / "cohort"
    ingest_bids(root, atlas.name, out, progress=False)
    return out


@pytest.fixture(scope="module")
def adhd_cohort(tmp_path_factory, smoke_dir) -> Path:
    """ADHD/control subjects, two sessions each."""
    return _ingest(tmp_path_factory, smoke_dir, "adhd")


@pytest.fixture(scope="module")
def unlabelled_cohort(tmp_path_factory, smoke_dir) -> Path:
    """The same design without a diagnosis column."""
    return _ingest(tmp_path_factory, smoke_dir, "unlabelled", labels=None)


def _analyze(run: Path, cohort: Path, out: Path, *extra: str) -> int:
    """``bi-core analyze`` at test size: 2 folds, 1 repeat, few resamples, occlusion on one window per recording.
    The end-to-end test writes the figures with the cohort's own levels; the others pass ``--no-figures``
    (test_derivatives and test_small_cohorts write them for other groups and pilots)."""
    return main(["analyze", "--run", str(run), "--cohort", str(cohort), "--out", str(out), "--folds", "2",
                 "--repeats", "1", "--quiet", "--permutations", "19", "--bootstrap", "50", "--occlusion-windows", "1",
                 *extra])


# ---------------------------------------------------------------------- 1. phenotypes as data
def test_any_labels_and_every_column_are_kept(adhd_cohort, capsys):
    c = Cohort.open(adhd_cohort)
    t = c.table
    assert sorted(t["diagnosis"].unique()) == ["ADHD", "control"]  # 'control' is not renamed CN
    assert t["age"].dtype == float and t["sex"].isin(["M", "F"]).all()
    # extra columns are kept; numeric-looking codes are numbers, words are labels
    assert pd.api.types.is_numeric_dtype(t["scanner_code"]) and set(t["handedness"]) == {"left", "right"}
    assert main(["info", str(adhd_cohort), "--json"]) == 0
    cols = json.loads(capsys.readouterr().out)["phenotype_columns"]
    assert cols["diagnosis"] == {"type": "categorical", "n_missing": 0, "levels": {"ADHD": 6, "control": 6}}
    assert cols["handedness"]["type"] == "categorical" and cols["age"]["type"] == "numeric"
    assert cols["scanner_code"]["type"] == "numeric" and "levels" not in cols["age"]


def test_adni_spellings_are_normalised_only_when_all_are_adni(tmp_path, small_atlas):
    from bi_core.cohort import CohortWriter, normalize_diagnoses

    assert normalize_diagnoses(["HC", "emci", "Dementia", "n/a"])[:3] == ["CN", "MCI", "AD"]
    assert normalize_diagnoses(["control", "ADHD", None])[:2] == ["control", "ADHD"]
    x = np.random.default_rng(0).normal(size=(40, 8))
    with CohortWriter(tmp_path / "c", small_atlas, types={"code": "categorical"}) as w:
        for i, (dx, code) in enumerate([("control", "007"), ("SMC", "012"), ("control", "n/a")]):
            w.add(x, recording_id=f"r{i}", subject=str(i), tr=1.0, diagnosis=dx, code=code)
    c = Cohort.open(tmp_path / "c")
    assert list(c.table["diagnosis"]) == ["control", "SMC", "control"]
    assert list(c.table["code"].fillna("n/a")) == ["007", "012", "n/a"]  # a declared categorical keeps its codes
    assert c.phenotype_columns()["code"]["levels"] == {"007": 1, "012": 1}


# ---------------------------------------------------------------------- 2. any group column
def test_analyze_adhd_vs_control_end_to_end(adhd_cohort, smoke_run, tmp_path, capsys):
    """The whole suite on a lab's own labels. ``--folds 7`` with 6 subjects per group: the classification runs on 6
    folds and says so (issue 23), never skipped (one run checks both; two inner folds: what adapts here is the
    outer CV, the inner one's adaptation is test_small_cohorts')."""
    out = tmp_path / "suite"
    assert _analyze(smoke_run, adhd_cohort, out, "--group-column", "diagnosis", "--reference", "control",
                    "--folds", "7", "--inner-folds", "2") == 0
    printed = capsys.readouterr().out
    assert "groups: diagnosis, control < ADHD, reference control" in printed
    note = "6 outer folds instead of 7 (the smallest group, control, has 6 subjects)"
    assert f"adapted classification adhd_control (control vs ADHD) to this cohort: {note}\n" in printed, printed
    assert "skipped classification" not in printed
    adapted = json.loads((out / "summary.json").read_text())["adapted"]
    assert adapted["classification adhd_control (control vs ADHD)"] == note
    gp = pd.read_csv(out / "groupdiff_predictability.tsv", sep="\t")
    assert set(gp["contrast"]) == {"ADHD-control"} and gp["n_group"].eq(N_PER_GROUP).all()
    gi = pd.read_csv(out / "groupdiff_interactions.tsv", sep="\t")
    assert set(gi["contrast"]) == {"ADHD-control"}
    s = pd.read_csv(out / "classification_adhd_control_summary.tsv", sep="\t")
    assert {"BrainInterNet embedding", "FC correlation", "FC tangent"} <= set(s["feature_set"])
    pred = pd.read_csv(out / "classification_adhd_control_predictions.tsv", sep="\t")
    folds = pred.groupby("feature_set").apply(lambda g: tuple(g.sort_values("sample")["fold"]), include_groups=False)
    assert folds.nunique() == 1, "every feature set must use the same folds"
    assert pred["fold"].nunique() == 6
    assert {"p_control", "p_ADHD"} <= set(pred.columns)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["groups"] == {"column": "diagnosis", "reference": "control", "order": ["control", "ADHD"],
                                 "contrasts": ["ADHD-control"]}
    assert "longitudinal models" in summary["skipped"]  # two sessions on one day are no follow-up
    assert summary["linear"]["fit"]["mode"] == "cross-fit"   # analyze's default: no fit cohort given
    assert (out / "marker.tsv").is_file()
    # two sessions per subject: a reliability table, ICC(3,1) per network, interaction cell and FC edge
    rel = pd.read_csv(out / "reliability.tsv", sep="\t")
    assert rel["icc_type"].eq("ICC(3,1)").all() and rel["n_subjects"].max() == 2 * N_PER_GROUP
    n_rois = Cohort.open(adhd_cohort).atlas.n_rois
    assert (rel["family"] == "fc").sum() == n_rois * (n_rois - 1) // 2
    nets = rel[rel["family"] == "predictability"].set_index("target")
    # each network's ICC is that of its R² over the two sessions in predictability.tsv
    from bi_core.analysis.reliability import icc, retest_sets

    sets = retest_sets(Cohort.open(adhd_cohort).table)
    p = pd.read_csv(out / "predictability.tsv", sep="\t").drop(columns="subject").merge(sets, on="recording_id")
    Y = p.pivot_table(index="network", columns=["subject", "repeat"], values="r2").loc[nets.index].to_numpy()
    assert len(nets) == 8 and Y.shape == (8, 2 * 2 * N_PER_GROUP)
    # TSVs keep 6 significant digits of R²; the ICC's small between-subject variance amplifies the rounding
    np.testing.assert_allclose(nets["icc"], icc(Y.reshape(8, -1, 2))["icc"], atol=1e-4)
    # the planted subject traits make FC more alike within subjects than between them
    assert rel.loc[rel["family"] == "fc", "icc"].median() > 0.3
    assert summary["reliability"]["median"]["fc_edge_z"]["median"] > 0.3


def test_groups_resolve_from_the_cohort_levels():
    from bi_core.analysis.groupstats import Groups, resolve_groups

    t = pd.DataFrame({"subject": list("abcdef"), "diagnosis": ["AD", "CN", "MCI", "CN", "AD", np.nan],
                      "arm": ["drug", "placebo", "drug", "placebo", "x", "x"], "age": np.arange(6.0)})
    assert resolve_groups(t) == Groups()  # CN < MCI < AD, reference CN
    assert resolve_groups(t).contrasts == (("AD", "CN"), ("MCI", "CN"))
    g = resolve_groups(t, "arm", "placebo")
    assert g.order == ("placebo", "drug", "x") and g.contrasts == (("x", "placebo"), ("drug", "placebo"))
    assert resolve_groups(t, "arm", order=["placebo", "drug"]).reference == "placebo"
    assert resolve_groups(t.drop(columns="diagnosis")) is None


def test_figures_use_the_cohorts_own_levels():
    import matplotlib.pyplot as plt

    from bi_core.figures import group_colors
    from bi_core.figures import predictability as FP

    rng = np.random.default_rng(0)
    df = pd.DataFrame([{"network": n, "r2": rng.normal(), "group": g} for n in ("VIS", "DMN")
                       for g in ("control", "ADHD") for _ in range(4)])
    ax = FP.by_group(df, ["VIS", "DMN"], column="group", order=["control", "ADHD"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["control", "ADHD"]
    diff = pd.DataFrame([{"network": n, "contrast": "ADHD-control", "estimate": 0.1, "ci_low": 0.0, "ci_high": 0.2,
                          "significant": n == "DMN"} for n in ("VIS", "DMN")])
    ax = FP.effect_sizes(diff, ["VIS", "DMN"])
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"ADHD-control (q < .05)", "ADHD-control (n.s.)"}
    assert group_colors(["CN", "ADHD", "AD"])["CN"] == "#2a9d8f" and len(set(group_colors(list("abc")).values())) == 3
    plt.close("all")


# ---------------------------------------------------------------------- 3. unlabelled cohorts
def test_unlabelled_cohort_gets_the_tables_that_need_no_groups_and_its_target(unlabelled_cohort, smoke_run, tmp_path,
                                                                              capsys):
    """A cohort without groups gets every table that needs none, its target analysis among them (one run checks
    both: ``--target`` needs no groups)."""
    out = tmp_path / "suite"
    assert _analyze(smoke_run, unlabelled_cohort, out, "--target", "age", "--no-fc", "--no-figures") == 0
    printed = capsys.readouterr().out.strip().splitlines()
    skipped = [line for line in printed if line.startswith("skipped")]
    assert len(skipped) == 1 and "has no diagnoses" in skipped[0] and "--group-column" in skipped[0]
    for name in ("predictability.tsv", "interactions.tsv", "embeddings.tsv"):
        assert (out / name).is_file(), name
    assert not list(out.glob("groupdiff_*")) and not list(out.glob("classification_*"))
    # every session is reconstructed (for reliability), not only the baseline
    assert pd.read_csv(out / "predictability.tsv", sep="\t")["recording_id"].nunique() == 4 * N_PER_GROUP
    rel = pd.read_csv(out / "reliability.tsv", sep="\t")
    assert set(rel["family"]) == {"predictability", "interactions", "fc"} and rel["n_sessions"].eq(2).all()
    # the target: each network's R² ~ age (FDR over the networks) and its prediction from every feature set
    assoc = pd.read_csv(out / "target_age_association.tsv", sep="\t")
    assert len(assoc) == 8 and assoc["n"].eq(2 * N_PER_GROUP).all() and assoc["q"].notna().all()
    assert set(assoc["fdr_family"]) == {"r2 ~ age, across 8 networks"}
    pred = pd.read_csv(out / "target_age_prediction.tsv", sep="\t")
    # four model feature sets, the untrained-encoder control and the ridge predictability profile (no FC: --no-fc)
    assert {"r", "r_ci_low", "mae", "mae_ci_high"} <= set(pred.columns) and len(pred) == 6
    assert "embedding (untrained encoder)" in set(pred["feature_set"])
    oof = pd.read_csv(out / "target_age_predictions.tsv", sep="\t")
    folds = oof.groupby("feature_set").apply(lambda g: tuple(g.sort_values("sample")["fold"]), include_groups=False)
    assert folds.nunique() == 1 and oof.groupby("feature_set").size().eq(2 * N_PER_GROUP).all()


# ---------------------------------------------------------------------- 4. bad input
@pytest.mark.parametrize("extra, message", [
    (["--group-column", "dx"], r"--group-column 'dx' is not a column of cohort .*categorical columns are "
                               r"\[.*'diagnosis'.*'handedness'.*\]"),
    (["--reference", "CN"], r"--reference 'CN' is not a level of column 'diagnosis' .*levels are \['ADHD', 'control'\]"),
    ([], r"column 'diagnosis' of cohort .* has levels \['ADHD', 'control'\]; say which one is the reference with "
         r"--reference LEVEL"),
    (["--order", "control,ADHD,autism"], r"--order control,ADHD,autism: level\(s\) \['autism'\] not in column"),
    (["--reference", "control", "--target", "handedness"], r"--target 'handedness' is not numeric in cohort .*\(values "
                                                           r"like \['left', 'right'\]\); .*choose a numeric column: "
                                                           r"\[.*'age'.*\]"),
    (["--reference", "control", "--target", "iq"], r"--target 'iq' is not a column of cohort"),
    (["--group-column", "age"], r"--group-column 'age' is numeric with \d+ distinct values .*analyse it with --target"),
])
def test_bad_group_options_are_one_line_errors(adhd_cohort, smoke_run, tmp_path, capsys, extra, message):
    out = tmp_path / "suite"
    assert _analyze(smoke_run, adhd_cohort, out, *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("bi-core: error:") and err.count("\n") == 1, err
    assert re.search(message, err), err
    assert not out.exists(), "a refused analysis writes nothing"


# ---------------------------------------------------------------------- 5. test-retest reliability
def test_icc_matches_shrout_and_fleiss_1979():
    """The 6 targets x 4 judges example of Shrout & Fleiss (1979), Table 2 (values to their 2 decimals)."""
    from scipy import stats

    from bi_core.analysis.reliability import icc

    Y = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    # their ANOVA: BMS 11.24, WMS 6.26, JMS 32.49, EMS 1.02 (n = 6, k = 4)
    bms, wms, jms, ems, n, k = 11.24, 6.26, 32.49, 1.02, 6, 4
    r1, r2, r3 = (icc(Y, kind).iloc[0] for kind in ("1,1", "2,1", "3,1"))
    assert round(r1["icc"], 2) == 0.17 == round((bms - wms) / (bms + (k - 1) * wms), 2)
    assert round(r2["icc"], 2) == 0.29 == round((bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n), 2)
    assert round(r3["icc"], 2) == 0.71 == round((bms - ems) / (bms + (k - 1) * ems), 2)
    assert r3["f"] == pytest.approx(bms / ems, rel=0.01) and (r3["df1"], r3["df2"]) == (5, 15)
    # the interval of their case 3, by hand from the rounded mean squares
    f = bms / ems
    fl, fu = f / stats.f.ppf(0.975, 5, 15), f * stats.f.ppf(0.975, 15, 5)
    assert r3["ci_low"] == pytest.approx((fl - 1) / (fl + k - 1), abs=0.01)
    assert r3["ci_high"] == pytest.approx((fu - 1) / (fu + k - 1), abs=0.01)
    assert (round(r3["ci_low"], 2), round(r3["ci_high"], 2)) == (0.34, 0.95)
    # vectorized over cells: the same numbers per cell; a session shift leaves ICC(3,1) unchanged
    both = icc(np.stack([Y, Y + np.array([0, 5, 0, 0])]))
    assert both["icc"].to_numpy() == pytest.approx([r3["icc"]] * 2)


def test_retest_sets_take_the_first_time_point():
    from bi_core.analysis.reliability import retest_sets

    t = pd.DataFrame({"recording_id": [f"r{i}" for i in range(8)], "subject": list("aaabbbcd"),
                      "years_from_baseline": [0, 0.02, 1.0, 0, 0.01, 0.03, 0, np.nan]})
    s = retest_sets(t)
    # a: 2 repeats (the 1-year visit is follow-up); b: 3, cut to the common 2; c, d: one recording each
    assert list(s["recording_id"]) == ["r0", "r1", "r3", "r4"] and list(s["repeat"]) == [0, 1, 0, 1]
    assert retest_sets(t, max_years=2.0).groupby("subject").size().to_dict() == {"a": 3, "b": 3}
    assert retest_sets(t[t["subject"].isin(["c", "d"])]).empty


def test_icc_recovers_the_planted_retest_stability(tmp_path):
    """Synthetic test-retest runs: the ICC ordering of networks follows the generator's planted stability."""
    from scipy.stats import spearmanr

    from bi_core.analysis.reliability import icc, reliability, retest_sets
    from bi_core.connectome import fc_from_bold
    from bi_core.synth import RETEST_STABILITY, DatasetSpec, SiteSpec, SynthConfig, generate

    cfg = SynthConfig(name="retest", n_cortical=24, n_subcortical=2, pretrain=(DatasetSpec("P", 2, (20, 30), 1.5, 100),),
                      n_cn=40, n_mci=0, n_ad=0, sites=(SiteSpec("S", 1.5, (300, 300), 0.3, 1.0),), max_visits=1,
                      retest_sessions=2)
    out = generate(tmp_path / "synth", cfg, seed=0, progress=False)
    c = Cohort.open(out / "eval")
    sets = retest_sets(c.table)
    assert len(sets) == 80 and set(c.table["run"]) == {"1", "2"}
    truth = json.loads((out / "ground_truth.json").read_text())["retest"]
    nets = list(dict.fromkeys(c.atlas.roi_networks))
    planted = [truth["stability"][n] for n in nets]
    assert planted == [RETEST_STABILITY[n] for n in nets]
    # the true coherence scales of the runs have (about) the planted ICC
    scales = pd.read_csv(out / "ground_truth_recordings.tsv", sep="\t").set_index("recording_id")
    ids = sets.sort_values(["subject", "repeat"])["recording_id"]
    Y = scales.loc[ids, [f"coherence_scale_{n}" for n in nets]].to_numpy().reshape(40, 2, len(nets))
    assert spearmanr(icc(np.moveaxis(Y, 2, 0))["icc"], planted).statistic > 0.8
    # estimated from the data: the ICC of each network's within-network FC edges
    fc = fc_from_bold([np.asarray(c.series(r)) for r in sets["recording_id"]])
    rel = reliability(sets, fc=fc, roi_names=c.atlas.roi_names, roi_networks=c.atlas.roi_networks,
                      fc_ids=list(sets["recording_id"]))
    within = rel[rel["target_network"] == rel["source_network"]].groupby("target_network")["icc"].median()[nets]
    assert spearmanr(within, planted).statistic > 0.7, within.round(2).to_dict()
    order = sorted(nets, key=lambda n: -truth["stability"][n])
    assert within[order[:3]].mean() > within[order[-3:]].mean() + 0.3


# ---------------------------------------------------------------------- 6. continuous phenotypes
def test_target_association_recovers_a_planted_slope():
    from bi_core.analysis.target import target_association

    rng = np.random.default_rng(0)
    rows = []
    for i in range(40):
        age, sex = rng.uniform(20, 80), "MF"[i % 2]
        for net, slope in (("DMN", -0.004), ("VIS", 0.0)):
            rows.append({"recording_id": f"r{i}", "subject": f"s{i}", "network": net, "age": age, "sex": sex,
                         "r2": 0.5 + slope * age + 0.02 * (sex == "F") + rng.normal(0, 0.02)})
    out = target_association(pd.DataFrame(rows), "r2", ["network"], "age").set_index("network")
    assert out.loc["DMN", "ci_low"] < -0.004 < out.loc["DMN", "ci_high"] and out.loc["DMN", "significant"]
    assert not out.loc["VIS", "significant"] and out.loc["DMN", "std_beta"] < -0.5
    assert set(out["fdr_family"]) == {"r2 ~ age, across 2 networks"}


def test_ridge_prediction_uses_shared_subject_folds():
    from bi_core.analysis.classify import CVConfig, FeatureSet
    from bi_core.analysis.target import predict_target

    rng = np.random.default_rng(0)
    y = rng.uniform(20, 80, 30)
    signal = np.c_[y + rng.normal(0, 5, 30), rng.normal(size=(30, 5))]
    res = predict_target([FeatureSet("signal", signal), FeatureSet("noise", rng.normal(size=(30, 6)))], y,
                         np.array([f"s{i}" for i in range(30)]), CVConfig(n_splits=5, n_repeats=3))
    s = res["summary"].set_index("feature_set")
    assert s.loc["signal", "r"] > 0.9 and s.loc["signal", "mae"] < 8 and s.loc["noise", "r"] < 0.5
    assert s.loc["signal", "r_ci_low"] <= s.loc["signal", "r"] <= s.loc["signal", "r_ci_high"]
    p = res["predictions"]
    assert (p[p["feature_set"] == "signal"]["fold"].to_numpy() == p[p["feature_set"] == "noise"]["fold"].to_numpy()).all()
