"""Subject-grouped folds: one helper for every study (bi_core.folds)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold

from bi_core.errors import InputError
from bi_core.folds import held_out_subjects, loso_splits, subject_folds


@pytest.mark.parametrize("n, k, seed", [(10, 2, 0), (23, 5, 3), (48, 3, 1), (101, 5, 4)])
def test_one_row_per_subject_equals_shuffled_kfold(n, k, seed):
    """The CM-JIVNet splits were shuffled KFold over subjects: the same folds, bit for bit."""
    ours = subject_folds(np.arange(n), k, seed)
    ref = list(KFold(k, shuffle=True, random_state=seed).split(np.arange(n)))
    assert len(ours) == len(ref) == k
    for (a, b), (c, d) in zip(ours, ref):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_rows_of_a_subject_stay_together_and_seeds_differ():
    subjects = np.repeat([f"s{i}" for i in range(13)], 3)
    folds = subject_folds(subjects, 4, seed=2)
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(39))
    for tr, te in folds:
        assert not set(subjects[tr]) & set(subjects[te])
        assert sorted(np.r_[tr, te].tolist()) == list(range(39))
    assert [te.tolist() for _, te in folds] == [te.tolist() for _, te in subject_folds(subjects, 4, seed=2)]
    assert [te.tolist() for _, te in folds] != [te.tolist() for _, te in subject_folds(subjects, 4, seed=3)]


def test_minimum_subjects_per_fold_are_enforced():
    subjects = np.arange(8)
    assert len(subject_folds(subjects, 4)) == 4
    with pytest.raises(InputError, match="too few for 5-fold CV"):
        subject_folds(subjects, 5, min_test=2)
    with pytest.raises(InputError, match="≥ 6 in every training set"):
        subject_folds(subjects, 3, min_train=6)        # the largest test fold has 3 of 8 subjects
    with pytest.raises(InputError, match="folds"):
        subject_folds(subjects, 9)
    with pytest.raises(InputError, match="folds"):
        subject_folds(subjects, 1)


def test_one_hold_out_draw_for_validation_and_the_masking_study():
    """Pretraining's validation split and the masking study's evaluation subjects are the same draw."""
    from bi_core import streams
    from bi_core.related.masking_study.data import split_subjects

    ids = np.array([f"s{i:02d}" for i in range(12)])
    held = held_out_subjects(ids, 3, [4, streams.STUDY_HELD_OUT])
    assert len(held) == 3 and held <= set(ids)
    assert held == held_out_subjects(ids, 3, [4, streams.STUDY_HELD_OUT])          # seeded
    assert held != held_out_subjects(ids, 3, [5, streams.STUDY_HELD_OUT])
    table = pd.DataFrame({"subject": np.repeat(ids, 2)})
    train, ev = split_subjects(table, 0.25, seed=4)
    assert set(ev) == held and set(train) == set(ids) - held
    with pytest.raises(InputError, match="cannot hold out 13 of 12"):
        held_out_subjects(ids, 13, 0)


def test_leave_one_subject_out():
    splits = loso_splits(5, min_train=4)
    assert [te.tolist() for _, te in splits] == [[i] for i in range(5)]
    assert all(len(tr) == 4 and te[0] not in tr for tr, te in splits)
    with pytest.raises(InputError, match="at least 5 subjects"):
        loso_splits(4, min_train=4)


def test_stratified_subject_folds_keep_subjects_whole_and_classes_balanced():
    from sklearn.model_selection import StratifiedGroupKFold

    from bi_core.folds import stratified_subject_folds

    rng = np.random.default_rng(3)
    subjects = np.repeat(np.arange(40), 2)                 # two visits per subject
    y = np.repeat(rng.permutation(np.r_[np.zeros(20), np.ones(20)]).astype(int), 2)
    splits = stratified_subject_folds(subjects, y, n_splits=4, n_repeats=2, seed=7)
    assert [(r, f) for r, f, _, _ in splits] == [(r, f) for r in range(2) for f in range(4)]
    for r, f, tr, te in splits:
        assert not set(subjects[tr]) & set(subjects[te])
        assert y[te].mean() == pytest.approx(0.5, abs=0.15)
    # repeat r is scikit-learn's shuffled StratifiedGroupKFold with random_state = seed + r
    ref = list(StratifiedGroupKFold(4, shuffle=True, random_state=8).split(np.zeros(len(y)), y, groups=subjects))
    assert all((a == b).all() and (c == d).all() for (_, _, a, c), (b, d) in zip(splits[4:], ref))


def test_balanced_folds_keep_subjects_together_need_no_seed_and_balance_rows():
    """The linear references' folds: every subject's rows in one test fold, the same folds every call, and test
    folds within one subject's rows of each other in size (GroupKFold's balancing)."""
    from bi_core.folds import balanced_subject_folds

    subjects = np.repeat(["a", "b", "c", "d", "e", "f", "g"], [5, 1, 3, 3, 2, 4, 2])
    folds = balanced_subject_folds(subjects, 3)
    assert len(folds) == 3
    tests = [te for _, te in folds]
    assert sorted(np.concatenate(tests).tolist()) == list(range(len(subjects)))          # a partition of the rows
    for tr, te in folds:
        assert not set(subjects[tr]) & set(subjects[te])
    assert max(map(len, tests)) - min(map(len, tests)) <= 5
    again = balanced_subject_folds(subjects, 3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))


def test_the_classifiers_inner_cv_is_the_stratified_subject_splitter():
    """One splitter for the outer folds and the inner CV that tunes C (bi_core.analysis.classify.make_classifier)."""
    from bi_core.analysis.classify import CVConfig, make_classifier
    from bi_core.folds import stratified_subject_folds, stratified_subject_splitter

    subjects = np.repeat([f"s{i}" for i in range(12)], 2)
    y = np.repeat(np.arange(12) % 2, 2)
    cv = make_classifier(CVConfig(seed=3), 2, inner_splits=3).cv
    assert type(cv) is type(stratified_subject_splitter(3, 3)) and (cv.n_splits, cv.random_state) == (3, 3)
    inner = [te for _, te in cv.split(np.zeros(len(y)), y, groups=subjects)]
    outer = [te for r, _, _, te in stratified_subject_folds(subjects, y, 3, seed=3) if r == 0]
    assert all(np.array_equal(a, b) for a, b in zip(inner, outer, strict=True))
