"""Subject-grouped cross-validation folds: no subject is ever on both sides of a split.

One helper for every study that splits subjects: :func:`subject_folds` (shuffled K-fold
over subjects; with one row per subject it equals scikit-learn's shuffled ``KFold`` with the
same seed) and :func:`loso_splits` (leave one subject out). Each caller states how many
subjects a test fold and a training set need (``min_test``, ``min_train``).

Classification uses :func:`stratified_subject_folds` (repeated, stratified by class,
grouped by subject; :func:`bi_core.analysis.classify.make_folds`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .errors import InputError

#: A list of ``(train_idx, test_idx)`` integer index arrays.
Splits = list[tuple[np.ndarray, np.ndarray]]


def subject_folds(subjects: Sequence[str] | np.ndarray, n_splits: int, seed: int = 0, min_test: int = 1,
                  min_train: int = 1) -> Splits:
    """Shuffled K-fold over subjects: every row of a subject lands in the same fold.

    Parameters
    ----------
    subjects : ``[n_rows]``
        Subject of each row (recording); e.g. ``np.arange(n)`` for one row per subject.
    n_splits
        Folds ``K`` (≥ 2).
    seed
        Shuffles the subjects (``GroupKFold(shuffle=True, random_state=seed)``).
    min_test, min_train
        Subjects every test fold and every training set must hold; the split is refused
        with an :class:`~bi_core.errors.InputError` otherwise.

    Returns
    -------
    list of ``(train_idx, test_idx)``
        Sorted row positions, ``K`` pairs; the test folds partition the rows.
    """
    from sklearn.model_selection import GroupKFold

    subjects = np.asarray(subjects)
    n_sub = len(np.unique(subjects))
    # the smallest test fold has ⌊n/K⌋ subjects, the largest ⌈n/K⌉
    if n_splits < 2 or n_sub < min_test * n_splits or n_sub - math.ceil(n_sub / n_splits) < min_train:
        raise InputError(f"{n_sub} subjects are too few for {n_splits}-fold CV (need ≥ 2 folds, ≥ {min_test} "
                         f"subject(s) in every test fold and ≥ {min_train} in every training set); use fewer folds "
                         "or more subjects.")
    return [(tr, te) for tr, te in GroupKFold(n_splits=n_splits, shuffle=True, random_state=int(seed))
            .split(np.zeros(len(subjects)), groups=subjects)]


def stratified_subject_folds(subjects: Sequence[str] | np.ndarray, y: np.ndarray, n_splits: int, n_repeats: int = 1,
                             seed: int = 0) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """Repeated stratified subject-grouped K-fold: class shares balanced across folds, no subject split.

    Repeat ``r`` shuffles with ``random_state = seed + r``
    (:class:`~sklearn.model_selection.StratifiedGroupKFold`).

    Returns
    -------
    list of ``(repeat, fold, train_idx, test_idx)``
    """
    from sklearn.model_selection import StratifiedGroupKFold

    subjects = np.asarray(subjects)
    out = []
    for r in range(int(n_repeats)):
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=int(seed) + r)
        for f, (tr, te) in enumerate(cv.split(np.zeros(len(y)), y, groups=subjects)):
            out.append((r, f, tr, te))
    return out


def loso_splits(n_subjects: int, min_train: int = 1) -> Splits:
    """Leave-one-subject-out over ``n_subjects`` rows (one per subject), in row order."""
    if n_subjects < min_train + 1:
        raise InputError(f"leave-one-subject-out needs at least {min_train + 1} subjects, got {n_subjects}.")
    idx = np.arange(n_subjects)
    return [(np.delete(idx, i), idx[i:i + 1]) for i in range(n_subjects)]
