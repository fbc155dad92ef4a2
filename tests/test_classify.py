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
    # no permutation test: its label-free reference is fitted once on all subjects (classify's docstring)
    cfg = CVConfig(n_splits=3, n_repeats=1, inner_splits=2, Cs=(1.0,), n_permutations=0)
    res = run_classification([FeatureSet("fc_tangent", series, "tangent")], table, "ad_cn", cfg)
    assert "auc_p_perm" not in res["summary"]
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


def _pred(rng, n_per=20, repeats=1, shift=1.0, sets=("a",)):
    """Out-of-fold predictions of two-class subjects, every repeat a copy (what repeats share: the subjects)."""
    rows = []
    for fs in sets:
        y = np.repeat([0, 1], n_per)
        score = rng.normal(size=2 * n_per) + shift * y
        for r in range(repeats):
            for i, (yt, s) in enumerate(zip(y, score)):
                p1 = 1 / (1 + np.exp(-s))
                rows.append({"feature_set": fs, "repeat": r, "fold": 0, "sample": i, "subject": f"s{i}",
                             "y_true": int(yt), "y_pred": int(p1 > 0.5), "score": s, "p_CN": 1 - p1, "p_AD": p1})
    return pd.DataFrame(rows)


def test_pooled_metrics_are_sklearns_and_repeats_do_not_narrow_the_interval(rng):
    """The point estimate is sklearn's AUC of each subject's mean OOF score; copying a repeat adds no subject."""
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    from bi_core.analysis.classify import score_predictions

    one = _pred(np.random.default_rng(3), repeats=1)
    five = _pred(np.random.default_rng(3), repeats=5)
    a, b = score_predictions(one, ("CN", "AD")).iloc[0], score_predictions(five, ("CN", "AD")).iloc[0]
    assert a["auc"] == pytest.approx(roc_auc_score(one["y_true"], one["score"]))
    assert a["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(one["y_true"], one["y_pred"]))
    assert a["auc_ci_low"] < a["auc"] < a["auc_ci_high"] and a["n_subjects"] == 40 and a["n_bootstrap"] == 2000
    # the subject bootstrap resamples 40 subjects whatever the repeats; a t interval over 5 identical repeats was 0 wide
    assert (b["auc_ci_low"], b["auc_ci_high"]) == (a["auc_ci_low"], a["auc_ci_high"]) and b["auc_repeat_sd"] == 0
    assert a["auc_chance"] == 0.5 and a["balanced_accuracy_chance"] == 0.5


def test_paired_difference_is_paired_on_subjects(rng):
    from bi_core.analysis.classify import paired_difference, score_predictions

    pred = _pred(np.random.default_rng(4), n_per=25, sets=("a", "b"))
    same = pd.concat([pred[pred["feature_set"] == "a"], pred[pred["feature_set"] == "a"].assign(feature_set="c")])
    d = paired_difference(same, "a", "c", ("CN", "AD"))
    assert (d["auc_difference"], d["auc_difference_ci_low"], d["auc_difference_ci_high"]) == (0, 0, 0)
    s = score_predictions(pred, ("CN", "AD")).set_index("feature_set")
    assert s.loc["a", "paired_with"] == "a" and np.isnan(s.loc["a", "auc_paired_difference"])
    assert s.loc["b", "auc_paired_difference"] == pytest.approx(s.loc["a", "auc"] - s.loc["b", "auc"])
    d = paired_difference(pred, "a", "b", ("CN", "AD"))
    assert d["auc_difference"] == pytest.approx(s.loc["b", "auc_paired_difference"])
    assert d["auc_difference_ci_low"] == pytest.approx(s.loc["b", "auc_paired_difference_ci_low"])
    with pytest.raises(InputError, match="no predictions of feature set 'z'"):
        paired_difference(pred, "a", "z", ("CN", "AD"))


def test_permutation_test_is_nearest_centroid_through_the_same_folds(rng):
    """The vectorized statistic equals sklearn's NearestCentroid fold by fold; signal gets the smallest p, noise not."""
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.neighbors import NearestCentroid

    from bi_core.analysis.classify import _standardized, permutation_test

    table, _, _ = _cohort(rng, n_per=10, visits=1)
    mask, y, classes = task_labels(table["diagnosis"], "3class")
    X = rng.normal(size=(len(y), 6)) + 1.5 * y[:, None]          # every feature separates the classes
    subjects = table["subject"].to_numpy()
    folds = make_folds(subjects, y, CVConfig(n_splits=3, n_repeats=1))
    noise = np.random.default_rng(9).normal(size=X.shape)
    res = permutation_test([FeatureSet("emb", X), FeatureSet("noise", noise)], y, subjects, folds, classes, 199)
    Z = _standardized(X)
    pred = np.empty(len(y), int)
    for _, _, tr, te in folds.splits:
        pred[te] = NearestCentroid().fit(Z[tr], y[tr]).predict(Z[te])
    r = res.set_index("feature_set")
    assert r.loc["emb", "centroid_balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert r.loc["emb", "auc_p_perm"] == pytest.approx(1 / 200) and r.loc["emb", "n_permutations"] == 199
    assert r.loc["noise", "balanced_accuracy_p_perm"] > 0.05
    with pytest.raises(InputError, match="one sample per subject"):
        permutation_test([FeatureSet("emb", X)], y, np.zeros(len(y)), folds, classes, 9)


def test_permutation_p_values_are_uniform_under_the_null():
    """Pure noise through the whole CV: the p-values' false-positive rate at 0.1 stays within Monte-Carlo error."""
    from bi_core.analysis.classify import permutation_test

    rng = np.random.default_rng(11)
    y = np.repeat([0, 1], 12)
    subjects = np.array([f"s{i}" for i in range(len(y))])
    folds = make_folds(subjects, y, CVConfig(n_splits=3, n_repeats=2))
    sets = [FeatureSet(f"n{j}", rng.normal(size=(len(y), 20))) for j in range(200)]
    p = permutation_test(sets, y, subjects, folds, ("CN", "AD"), 99)["auc_p_perm"].to_numpy()
    # 200 null data sets: 20 expected at 0.1, the binomial's 99.9 % bound is 35
    assert (p <= 0.1).sum() <= 35 and 0.3 < p.mean() < 0.7


def test_the_inner_cv_auc_is_sklearns(rng):
    """classify.roc_auc, the inner CV's scorer, gives scikit-learn's "roc_auc" score, ties and labels included."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import get_scorer

    from bi_core.analysis.classify import roc_auc

    sk = get_scorer("roc_auc")
    for labels in ((0, 1), ("CN", "AD"), ("b", "a")):
        X = np.round(rng.normal(size=(40, 3)), 1)            # rounded: tied decision values
        y = np.array(labels)[(X[:, 0] + rng.normal(size=40) > 0).astype(int)]
        clf = LogisticRegression().fit(X, y)
        Xt = np.repeat(np.round(rng.normal(size=(15, 3)), 0), 2, axis=0)
        yt = np.array(labels)[rng.integers(0, 2, 30)]
        assert roc_auc(clf, Xt, yt) == pytest.approx(sk(clf, Xt, yt), abs=1e-12)
    with pytest.raises(ValueError, match="one class"):
        roc_auc(clf, Xt, np.full(30, labels[0]))


def test_the_inner_cv_balanced_accuracy_is_sklearns(rng):
    """classify.balanced_accuracy, the inner CV's scorer of three or more classes, gives scikit-learn's score,
    also when a class is missing from the labels or from the predictions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import get_scorer

    from bi_core.analysis.classify import balanced_accuracy

    sk = get_scorer("balanced_accuracy")
    X = rng.normal(size=(60, 3))
    y = np.array(["AD", "CN", "MCI"])[np.clip((X[:, 0] + rng.normal(size=60) > 0) + (X[:, 1] > 0.5), 0, 2)]
    clf = LogisticRegression().fit(X, y)
    for keep in (slice(None), y != "MCI"):
        Xt, yt = X[keep], y[keep]
        with np.errstate(all="ignore"):
            assert balanced_accuracy(clf, Xt, yt) == sk(clf, Xt, yt)


@pytest.mark.parametrize("Cs", [(), (0.0,), (1.0, -0.1), (float("nan"),)])
def test_penalties_must_be_positive(Cs):
    """The folds' fits skip scikit-learn's per-fit parameter checks (a fifth of their time): CVConfig checks its Cs."""
    from bi_core.errors import ConfigError

    with pytest.raises(ConfigError, match="penalties Cs must be positive"):
        CVConfig(Cs=Cs)
