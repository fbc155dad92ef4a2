import numpy as np
import pandas as pd
import pytest

from bi_core.analysis.classify import (CVConfig, FeatureSet, as_series_array, confusion, make_folds, roc_curves,
                                       run_classification, summary_marker, task_labels)
from bi_core.errors import InputError


def _cohort(rng, n_per=12, visits=2, signal=1.5):
    rows, X, series = [], [], []
    for g, dx in enumerate(("CN", "MCI", "AD")):
        for i in range(n_per):
            s = f"{dx}{i}"
            for v in range(visits):
                rows.append(dict(recording_id=f"{s}_v{v}", subject=s, diagnosis=dx, years_from_baseline=float(v)))
                X.append(rng.normal(size=6) + signal * g * np.array([1, 0, 0, 0, 0, 0]))
                z = rng.normal(size=(80, 4))
                z[:, 1] += (0.3 + 0.6 * (g == 2)) * z[:, 0]  # AD: stronger ROI 0–1 coupling
                series.append(z)
    return pd.DataFrame(rows), np.array(X), as_series_array(series)


def test_folds_are_subject_disjoint_and_shared(rng):
    table, X, series = _cohort(rng)
    cfg = CVConfig(n_splits=3, n_repeats=2, seed=1)
    res = run_classification([FeatureSet("emb", X), FeatureSet("fc_tangent", series, "tangent")], table, "ad_cn", cfg)
    folds = res["folds"]
    folds.check_disjoint()
    pred = res["predictions"]
    for (r, f), g in pred.groupby(["repeat", "fold"]):
        # identical test samples for every feature set
        sets = [set(gg["sample"]) for _, gg in g.groupby("feature_set")]
        assert all(s == sets[0] for s in sets)
    for r, f, tr, te in folds.splits:
        assert not set(folds.subjects[tr]) & set(folds.subjects[te])
    # only baseline visits are classified
    assert pred["recording_id"].str.endswith("_v0").all()
    s = res["summary"].set_index("feature_set")
    assert s.loc["emb", "auc"] > 0.8 and s.loc["fc_tangent", "auc"] > 0.7
    assert s.loc["emb", "auc_ci_low"] <= s.loc["emb", "auc"] <= s.loc["emb", "auc_ci_high"] <= 1.0
    # two repeats and an AUC near 1: the t interval is clipped at 1, not printed as 1.3
    assert s[["auc_ci_low", "auc_ci_high", "balanced_accuracy_ci_low", "balanced_accuracy_ci_high"]].stack().between(0, 1).all()


def test_tangent_reference_is_fit_on_training_subjects_only(rng, monkeypatch):
    """The tangent reference must never see a test subject's series."""
    from bi_core.analysis import classify as C

    table, X, series = _cohort(rng, n_per=9)
    seen: list[set] = []
    orig = C.ConnectivityFeatures.fit

    def spy(self, Xs, y=None):
        seen.append({id(x) for x in Xs})
        return orig(self, Xs, y)

    monkeypatch.setattr(C.ConnectivityFeatures, "fit", spy)
    cfg = CVConfig(n_splits=3, n_repeats=1, inner_splits=2, Cs=(1.0,))
    res = run_classification([FeatureSet("fc_tangent", series, "tangent")], table, "ad_cn", cfg)
    base_ids = {}
    for i, rid in enumerate(table["recording_id"]):
        base_ids[id(series[i])] = table["subject"].iloc[i]
    test_subjects = [set(res["folds"].subjects[te]) for _, _, _, te in res["folds"].splits]
    for fit_ids in seen:
        subjects = {base_ids[i] for i in fit_ids}
        # every fit happened inside one outer training set: it excludes that fold's test subjects
        assert any(not (subjects & ts) for ts in test_subjects)


def test_three_class_metrics_and_confusion(rng):
    table, X, _ = _cohort(rng, n_per=15, signal=3.0)
    res = run_classification({"emb": X}, table, "3class", CVConfig(n_splits=3, n_repeats=2))
    s = res["summary"].iloc[0]
    assert s["balanced_accuracy"] > 0.6 and s["auc"] > 0.8
    M = confusion(res["predictions"], res["classes"], "emb")
    assert M.shape == (3, 3) and np.allclose(M.to_numpy().sum(axis=1), 1)
    assert M.loc["AD", "AD"] > M.loc["AD", "CN"]


def test_roc_curves_monotone(rng):
    table, X, _ = _cohort(rng)
    res = run_classification({"emb": X}, table, "ad_cn", CVConfig(n_splits=3, n_repeats=2))
    roc = roc_curves(res["predictions"])
    assert roc["tpr"].is_monotonic_increasing and roc["tpr"].iloc[-1] == pytest.approx(1.0)


def test_summary_marker_never_scores_itself(rng):
    table, X, _ = _cohort(rng, visits=3)
    mk = summary_marker(X, table, CVConfig(n_splits=3, n_repeats=2))
    assert len(mk) == len(table) and (mk["n_models"] > 0).all()
    merged = table.merge(mk, on=["recording_id", "subject"])
    means = merged.groupby("diagnosis")["marker"].mean()
    assert means["AD"] > means["MCI"] > means["CN"]
    # every visit averages one model per repeat, whatever its group (MCI is never trained on)
    assert merged["n_models"].eq(2).all()


def test_summary_marker_scores_other_subjects_with_one_balanced_fold_per_repeat(rng, monkeypatch):
    from bi_core.analysis import classify as C

    table, X, _ = _cohort(rng, n_per=9, visits=2)
    scored: list[tuple[int, set]] = []
    orig = C.make_classifier

    class Spy:
        def __init__(self, model):
            self.model = model

        def fit(self, *a, **k):
            self.model.fit(*a, **k)
            return self

        def decision_function(self, Xs):
            scored.append({tuple(x) for x in Xs})
            return self.model.decision_function(Xs)

    monkeypatch.setattr(C, "clone", lambda m: Spy(orig(CVConfig(n_splits=3, n_repeats=2), 2)))
    mk = summary_marker(X, table, CVConfig(n_splits=3, n_repeats=2))
    mci = table.index[table["diagnosis"] == "MCI"]
    per_model = [sum(tuple(X[i]) in rows for i in mci) // 2 for rows in scored]   # MCI subjects (2 visits each)
    assert per_model == [3] * 6                        # 9 MCI subjects over 3 folds, in each of 2 repeats
    assert mk["n_models"].eq(2).all()
    # the same settings give the same marker
    pd.testing.assert_frame_equal(mk, summary_marker(X, table, CVConfig(n_splits=3, n_repeats=2)))


def test_bad_input_errors(rng):
    table, X, _ = _cohort(rng, n_per=2)
    # fewer subjects than folds: leave-one-subject-out, said in the folds' notes (tests/test_small_cohorts.py)
    loso = run_classification({"emb": X}, table, "ad_cn", CVConfig(n_splits=5))["folds"]
    assert loso.n_splits == 4 and loso.notes[0].startswith("leave-one-subject-out")
    with pytest.raises(InputError, match="group AD has 1"):
        run_classification({"emb": X}, table[table["subject"] != "AD1"], "ad_cn", CVConfig(n_splits=5))
    with pytest.raises(InputError, match="needs diagnoses"):
        task_labels(table["diagnosis"].map(lambda _: np.nan), "ad_cn")
    with pytest.raises(InputError, match="at least two diagnosis groups"):
        task_labels(pd.Series(["CN", "CN", "MCI"]), "ad_cn")
    with pytest.raises(InputError, match="needs CN, MCI and AD"):
        task_labels(pd.Series(["CN", "AD", "AD"]), "3class")
    with pytest.raises(InputError, match="unknown task"):
        task_labels(table["diagnosis"], "adhd")
    with pytest.raises(InputError, match="needs at least 2 subjects in each of 2 groups"):
        make_folds(np.array(["a", "b", "c", "d"]), np.array([0, 0, 0, 1]), CVConfig(n_splits=3))


def test_parallel_folds_give_the_same_predictions(rng):
    """Folds fitted in two worker processes (the book's setting) equal the sequential fit."""
    table, X, series = _cohort(rng, n_per=8)
    sets = [FeatureSet("emb", X), FeatureSet("fc_tangent", series, "tangent")]
    a = run_classification(sets, table, "ad_cn", CVConfig(n_splits=3, n_repeats=1, Cs=(0.1, 1.0)))
    b = run_classification(sets, table, "ad_cn", CVConfig(n_splits=3, n_repeats=1, Cs=(0.1, 1.0), n_jobs=2,
                                                          backend="loky"))
    pd.testing.assert_frame_equal(a["predictions"], b["predictions"])
