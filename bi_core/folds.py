"""Subject-grouped cross-validation folds: no subject is ever on both sides of a split.

One helper for every study that splits subjects: :func:`subject_folds` (shuffled K-fold
over subjects; with one row per subject it equals scikit-learn's shuffled ``KFold`` with the
same seed), :func:`balanced_subject_folds` (unshuffled, balanced by rows: the linear
references' folds), :func:`loso_splits` (leave one subject out) and :func:`held_out_subjects` (one
random hold-out: pretraining's validation subjects, the masking study's evaluation subjects).
Each caller states how many subjects a test fold and a training set need (``min_test``,
``min_train``).

Classification uses :func:`stratified_subject_folds` (repeated, stratified by class,
grouped by subject; :func:`bi_core.analysis.classify.make_folds`).

Small cohorts: :func:`plan_folds` says how many folds a cohort allows (the requested number
when every class has that many subjects; else as many as the smallest class, or
leave-one-subject-out when there are fewer subjects than requested folds) and why, and
:func:`repeated_subject_folds` draws them. With enough subjects they are exactly the
requested folds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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


def balanced_subject_folds(subjects: Sequence[str] | np.ndarray, n_splits: int) -> Splits:
    """Unshuffled K-fold over subjects, folds balanced by rows (scikit-learn's ``GroupKFold``): no seed.

    The linear references' folds (:mod:`bi_core.analysis.linear`: their cross-fitting and their
    penalty's inner CV) depend on the subjects only, so a reference is the same whatever seed a
    study runs with. ``subjects``: ``[n_rows]``; returns ``K`` ``(train_idx, test_idx)`` pairs.
    """
    from sklearn.model_selection import GroupKFold

    subjects = np.asarray(subjects)
    return list(GroupKFold(n_splits=n_splits).split(np.zeros(len(subjects)), groups=subjects))


def stratified_subject_splitter(n_splits: int, seed: int = 0) -> Any:
    """The splitter behind :func:`stratified_subject_folds`, for an estimator that splits itself.

    Shuffled :class:`~sklearn.model_selection.StratifiedGroupKFold` with ``random_state =
    seed``: a ``cv=`` for scikit-learn's searches (the classifiers' inner CV that tunes ``C``,
    :func:`bi_core.analysis.classify.make_classifier`), fitted with ``groups=`` the subjects.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    return StratifiedGroupKFold(n_splits=int(n_splits), shuffle=True, random_state=int(seed))


def stratified_subject_folds(subjects: Sequence[str] | np.ndarray, y: np.ndarray, n_splits: int, n_repeats: int = 1,
                             seed: int = 0) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """Repeated stratified subject-grouped K-fold: class shares balanced across folds, no subject split.

    Repeat ``r`` shuffles with ``random_state = seed + r``
    (:class:`~sklearn.model_selection.StratifiedGroupKFold`).

    Returns
    -------
    list of ``(repeat, fold, train_idx, test_idx)``
    """
    subjects = np.asarray(subjects)
    out = []
    for r in range(int(n_repeats)):
        cv = stratified_subject_splitter(n_splits, int(seed) + r)
        for f, (tr, te) in enumerate(cv.split(np.zeros(len(y)), y, groups=subjects)):
            out.append((r, f, tr, te))
    return out


def held_out_subjects(subjects: Sequence[str] | np.ndarray, n_held: int, seed: int | Sequence[int]) -> set[str]:
    """``n_held`` of the distinct ``subjects`` drawn at random: a single subject-level hold-out.

    Parameters
    ----------
    subjects : ``[n_subjects]``
        Distinct subject ids, in the caller's order (the draw depends on it).
    n_held
        Subjects held out (``0 <= n_held <= n_subjects``; the caller decides how many a split needs).
    seed
        ``numpy.random.default_rng`` seed, e.g. ``[seed, streams.VALIDATION_SUBJECTS]``: the first
        ``n_held`` positions of a permutation of the subjects.
    """
    subjects = np.asarray(subjects, dtype=object)
    if not 0 <= n_held <= len(subjects):
        raise InputError(f"cannot hold out {n_held} of {len(subjects)} subjects.")
    rng = np.random.default_rng(seed)
    return {str(s) for s in subjects[rng.permutation(len(subjects))[:n_held]]}


def loso_splits(n_subjects: int, min_train: int = 1) -> Splits:
    """Leave-one-subject-out over ``n_subjects`` rows (one per subject), in row order."""
    if n_subjects < min_train + 1:
        raise InputError(f"leave-one-subject-out needs at least {min_train + 1} subjects, got {n_subjects}.")
    idx = np.arange(n_subjects)
    return [(np.delete(idx, i), idx[i:i + 1]) for i in range(n_subjects)]


@dataclass(frozen=True)
class FoldPlan:
    """How many subject-grouped folds a cohort allows, and why that differs from the request.

    ``n_splits`` folds (``loso``: one subject per test fold, a single repeat: repeats
    would draw the same folds); ``reason`` is empty when the request was kept.
    """

    requested: int
    n_splits: int
    loso: bool = False
    reason: str = ""

    @property
    def adapted(self) -> bool:
        """Whether the folds differ from the requested ones."""
        return self.n_splits != self.requested or self.loso

    def describe(self, what: str = "folds", repeated: bool = True) -> str:
        """One phrase for the log, e.g. ``3 outer folds instead of 5 (the smallest group, CN, has 3 subjects)``.

        ``repeated``: the folds were to be drawn several times (leave-one-subject-out is drawn once).
        """
        got = (f"leave-one-subject-out ({self.n_splits} folds{', 1 repeat' if repeated else ''})" if self.loso
               else f"{self.n_splits} {what}")
        return f"{got} instead of {self.requested} ({self.reason})"


def class_counts(subjects: Sequence[str] | np.ndarray, y: np.ndarray) -> dict[int, int]:
    """Subjects per class ``{class: count}`` (a subject counts in the class of its first row)."""
    first: dict[str, int] = {}
    for s, c in zip(np.asarray(subjects).tolist(), np.asarray(y).tolist()):
        first.setdefault(s, int(c))
    counts: dict[int, int] = {}
    for c in first.values():
        counts[c] = counts.get(c, 0) + 1
    return dict(sorted(counts.items()))


def plan_folds(requested: int, subjects: Sequence[str] | np.ndarray, y: np.ndarray | None = None,
               classes: Sequence[str] | None = None, what: str = "cross-validation") -> FoldPlan:
    """The folds a cohort allows for a requested ``K``.

    Without ``y``: ``K`` when there are at least ``K`` subjects, else leave-one-subject-out
    (at least 2 subjects). With class labels ``y`` (stratified): ``K`` when every class has
    at least ``K`` subjects; leave-one-subject-out when there are fewer subjects than ``K``;
    else as many folds as the smallest class has subjects. Every class needs 2 subjects
    (one to train on while the other is tested).

    Parameters
    ----------
    requested
        ``K`` (≥ 2).
    subjects : ``[n_rows]``
        Subject of each row.
    y : ``[n_rows]``
        Class index of each row (``classes`` names them in messages).
    what
        The analysis, for the message when the cohort is too small.

    Raises
    ------
    InputError
        Fewer than 2 folds requested, fewer than 2 subjects, or a class with fewer than 2.
    """
    if requested < 2:
        raise InputError(f"{what} needs at least 2 folds, got {requested}.")
    n_sub = len(np.unique(np.asarray(subjects)))
    if y is None:
        if n_sub < 2:
            raise InputError(f"{what} needs at least 2 subjects; the cohort has {n_sub}.")
        if n_sub >= requested:
            return FoldPlan(requested, requested)
        return FoldPlan(requested, n_sub, loso=True, reason=f"{n_sub} subjects")
    counts = class_counts(subjects, y)
    named = {(classes[k] if classes is not None else str(k)): v for k, v in counts.items()}
    smallest = min(named, key=lambda k: named[k])
    listing = ", ".join(f"{k} {v}" for k, v in named.items())
    if len(named) < 2 or named[smallest] < 2:
        raise InputError(f"{what} needs at least 2 subjects in each of {max(2, len(named))} groups; group "
                         f"{smallest} has {named[smallest]} ({listing})")
    if named[smallest] >= requested:
        return FoldPlan(requested, requested)
    if n_sub < requested:
        return FoldPlan(requested, n_sub, loso=True, reason=f"{n_sub} subjects: {listing}")
    return FoldPlan(requested, named[smallest],
                    reason=f"the smallest group, {smallest}, has {named[smallest]} subjects")


def repeated_subject_folds(plan: FoldPlan, subjects: Sequence[str] | np.ndarray, y: np.ndarray | None = None,
                           n_repeats: int = 1, seed: int = 0) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """The folds of ``plan``: ``(repeat, fold, train_idx, test_idx)``.

    Leave-one-subject-out: one repeat, subjects in sorted order. Otherwise repeat ``r``
    shuffles with ``seed + r``: :func:`stratified_subject_folds` with ``y``, else
    scikit-learn's shuffled ``GroupKFold``.
    """
    subjects = np.asarray(subjects)
    if plan.loso:
        from sklearn.model_selection import LeaveOneGroupOut

        return [(0, f, tr, te) for f, (tr, te) in
                enumerate(LeaveOneGroupOut().split(np.zeros(len(subjects)), groups=subjects))]
    if y is not None:
        return stratified_subject_folds(subjects, y, plan.n_splits, n_repeats, seed)
    from sklearn.model_selection import GroupKFold

    return [(r, f, tr, te) for r in range(int(n_repeats)) for f, (tr, te) in enumerate(
        GroupKFold(n_splits=plan.n_splits, shuffle=True, random_state=int(seed) + r)
        .split(np.zeros(len(subjects)), groups=subjects))]
