"""Group classification (AD vs CN by default) on identical subject-grouped folds.

A task (:class:`ClassificationTask`) names a group column and the classes it separates:
by default AD vs CN and CN/MCI/AD on ``diagnosis``; :func:`tasks_for` gives the
reference against each level and, with three or more levels, all levels, for any
group column (:class:`~bi_core.analysis.groupstats.Groups`).

Every feature set — BrainInterNet embeddings, predictability profiles, interaction
matrices, and the functional-connectivity baselines (correlation and tangent space,
nilearn's ``ConnectivityMeasure``) — is scored with the same pipeline
(standardize → logistic regression with ``C`` tuned by an inner subject-grouped CV) on
the **same** outer folds: ``StratifiedGroupKFold`` over subjects, repeated with several
seeds. Connectivity features are computed inside each outer fold, so the tangent-space
reference is fitted on that fold's training subjects only and never sees a test subject.
It is fitted once per outer fold and ``C`` is tuned on the resulting features: the inner
validation subjects then take part in the (label-free) reference while ``C`` is chosen —
the usual shortcut, four times cheaper than refitting the reference for every inner
split, and it cannot reach the outer test scores.

Metrics are computed per repeat on the pooled out-of-fold predictions; intervals are
mean ± t·SD/√R over the R repeats (:func:`bi_core.stats.t_interval`), clipped to the
metric's range [0, 1]. Repeats share data, so these intervals describe the
variability of the CV procedure, not a population confidence interval — with a real
cohort, prefer more repeats and report them as such.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.covariance import LedoitWolf

from ..errors import InputError
from ..stats import t_interval
from .groupstats import Groups, slug

#: Range of the classification metrics (AUC, balanced accuracy): their intervals are clipped to it.
METRIC_RANGE = (0.0, 1.0)

#: The default tasks on ``diagnosis`` (what :func:`tasks_for` names them).
TASKS = ("ad_cn", "3class")


@dataclass(frozen=True)
class ClassificationTask:
    """Classes of one group column to separate; ``y`` is each sample's index in ``classes``.

    Two classes: ``(reference, level)``, so ``y=1`` (the decision score's positive side)
    is the level. More classes: every level, in the group order.
    """

    name: str
    classes: tuple[str, ...]
    column: str = "diagnosis"


def tasks_for(groups: Groups) -> list[ClassificationTask]:
    """The reference against each level (``ad_cn``, ``mci_cn``) and, with ≥ 3 levels, all of them (``3class``)."""
    tasks = [ClassificationTask(f"{slug(g)}_{slug(ref)}", (ref, g), groups.column) for g, ref in groups.contrasts]
    if len(groups.order) >= 3:
        tasks.append(ClassificationTask(f"{len(groups.order)}class", tuple(groups.order), groups.column))
    return tasks


def _task(task: str | ClassificationTask) -> ClassificationTask:
    if isinstance(task, ClassificationTask):
        return task
    named = {t.name: t for t in tasks_for(Groups())}
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; choose one of {TASKS}.")
    return named[task]


@dataclass(frozen=True)
class CVConfig:
    """Outer/inner cross-validation settings.

    ``n_splits`` outer folds repeated ``n_repeats`` times (seeds ``seed``, ``seed+1``…);
    ``inner_splits`` folds to tune ``C`` over ``Cs``; ``n_jobs`` threads fit folds in
    parallel.
    """

    n_splits: int = 5
    n_repeats: int = 5
    seed: int = 0
    inner_splits: int = 3
    Cs: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)
    n_jobs: int | None = 1        # parallel folds (-1: all cores); results do not depend on it
    backend: str = "threading"    # joblib backend: "threading" or processes ("loky")


@dataclass
class Folds:
    """Outer folds over samples (one sample per subject), with their repeat index.

    ``inner_splits``: folds of the inner CV that tunes ``C`` (0: too few subjects in a
    training fold to tune it; ``C`` is fixed, :func:`make_classifier`); ``notes``: how
    the folds differ from the requested ones on a small cohort (empty when they do not).
    """

    subjects: np.ndarray
    splits: list[tuple[int, int, np.ndarray, np.ndarray]]
    inner_splits: int = 3
    notes: list[str] = field(default_factory=list)

    @property
    def n_splits(self) -> int:
        """Folds per repeat."""
        return 1 + max(f for _, f, _, _ in self.splits)

    @property
    def n_repeats(self) -> int:
        """Repeats drawn (1 for leave-one-subject-out)."""
        return 1 + max(r for r, _, _, _ in self.splits)

    def check_disjoint(self) -> None:
        """Raise if any subject appears in both the training and the test part of a fold."""
        for r, f, tr, te in self.splits:
            both = set(self.subjects[tr]) & set(self.subjects[te])
            if both:
                raise AssertionError(f"repeat {r} fold {f}: subjects in train and test: {sorted(both)[:5]}")


def task_labels(labels: pd.Series, task: str | ClassificationTask) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Select samples and encode labels for a task.

    Parameters
    ----------
    labels
        The task's group column (e.g. ``diagnosis``), one value per sample.
    task
        A :class:`ClassificationTask`, or a default task name (``"ad_cn"``, ``"3class"``).

    Returns
    -------
    tuple
        ``(mask, y, classes)``: a boolean mask over ``labels``, integer labels of the
        selected samples and the class names (AD vs CN: ``y=1`` is AD).
    """
    t = _task(task)
    dx = labels.astype(object)
    if dx.notna().sum() == 0:
        what = "diagnoses" if t.column == "diagnosis" else f"values in column {t.column!r}"
        raise InputError(f"classification needs {what}, but the cohort has none.")
    classes = t.classes
    mask = dx.isin(classes).to_numpy()
    present = sorted(set(dx[mask]))
    if len(present) < 2:
        raise InputError(f"task {t.name}: needs at least two {'diagnosis' if t.column == 'diagnosis' else t.column} "
                         f"groups among {classes}, found {present or 'none'}.")
    if len(classes) > 2 and len(present) < len(classes):
        raise InputError(f"task {t.name} needs {', '.join(classes[:-1])} and {classes[-1]}; found only {present}.")
    y = np.array([classes.index(d) for d in dx[mask]])
    return mask, y, classes


def make_folds(subjects: np.ndarray, y: np.ndarray, cfg: CVConfig, classes: tuple[str, ...] | None = None) -> Folds:
    """Repeated stratified subject-grouped K-fold (the same folds for every feature set).

    Folds follow the cohort (:func:`bi_core.folds.plan_folds`): ``cfg.n_splits`` when every
    class has that many subjects, else as many as the smallest class has, or
    leave-one-subject-out when there are fewer subjects than ``cfg.n_splits``. The inner CV
    gets ``cfg.inner_splits`` folds, or as many as the smallest class of a training fold has
    subjects; below 2, ``C`` is not tuned. What changed is said in ``Folds.notes``.
    ``classes`` (the names of ``y``'s values) make the messages readable.

    Raises
    ------
    InputError
        A class with fewer than 2 subjects.
    """
    from ..folds import class_counts, plan_folds, repeated_subject_folds

    subjects = np.asarray(subjects)
    plan = plan_folds(cfg.n_splits, subjects, y, classes, what="classification")
    folds = Folds(subjects, repeated_subject_folds(plan, subjects, y, cfg.n_repeats, cfg.seed))
    folds.check_disjoint()
    if plan.adapted:
        folds.notes.append(plan.describe("outer folds"))
    # the inner CV stratifies each training fold: it needs every class in each inner fold
    n_classes = int(np.max(y)) + 1
    train = [class_counts(subjects[tr], y[tr]) for _, _, tr, _ in folds.splits]
    low, k = min(((c.get(k, 0), k) for c in train for k in range(n_classes)))
    name = classes[k] if classes else str(k)
    folds.inner_splits = min(cfg.inner_splits, low)
    if folds.inner_splits < 2:
        folds.inner_splits = 0
        folds.notes.append(f"C fixed at {untuned_c(cfg):g}, not tuned (a training fold holds {low} subject"
                           f"{'' if low == 1 else 's'} of {name}; tuning needs 2)")
    elif folds.inner_splits < cfg.inner_splits:
        folds.notes.append(f"{folds.inner_splits} inner folds instead of {cfg.inner_splits} (a training fold holds "
                           f"{low} subjects of {name})")
    return folds


def untuned_c(cfg: CVConfig) -> float:
    """The ``C`` used when a training fold is too small to tune it: the middle of ``cfg.Cs``."""
    return float(sorted(cfg.Cs)[len(cfg.Cs) // 2])


_COV_CACHE: dict[bytes, tuple[np.ndarray, np.ndarray, float]] = {}
_COV_CACHE_MAX = 50_000


class CachedLedoitWolf(LedoitWolf):
    """``LedoitWolf`` whose estimates are memoized by the data's bytes.

    Covariance estimation dominates the cost of nilearn's ``ConnectivityMeasure``; across
    cross-validation folds the same subject's series is estimated again and again with
    identical results. Memoizing it keeps nilearn doing all the connectivity maths while
    estimating each subject once.
    """

    def fit(self, X: Any, y: Any = None) -> "CachedLedoitWolf":
        import hashlib

        X = np.ascontiguousarray(X, dtype=np.float64)
        key = hashlib.blake2b(X.tobytes(), digest_size=16).digest() + str(X.shape).encode()
        hit = _COV_CACHE.get(key)
        if hit is None:
            super().fit(X)
            if len(_COV_CACHE) < _COV_CACHE_MAX:
                _COV_CACHE[key] = (self.covariance_, self.location_, self.shrinkage_)
        else:
            self.covariance_, self.location_, self.shrinkage_ = hit
            self.precision_ = None
        return self


def _ledoit_wolf_cached() -> CachedLedoitWolf:
    return CachedLedoitWolf(store_precision=False)


def connectivity_features(series: Any, kind: str = "correlation") -> np.ndarray:
    """Vectorized connectivity (upper triangle) of each recording, computed independently.

    Only for kinds without a group-level fit (``correlation``, ``partial correlation``,
    ``covariance``), where computing them once outside cross-validation cannot leak.
    """
    from nilearn.connectome import ConnectivityMeasure

    if kind == "tangent":
        raise InputError("tangent-space features depend on a group reference: use FeatureSet(..., connectivity="
                         "'tangent') so that the reference is fitted inside each training fold.")
    cm = ConnectivityMeasure(cov_estimator=_ledoit_wolf_cached(), kind=kind, vectorize=True, discard_diagonal=True,
                             standardize="zscore_sample")
    return cm.fit_transform([np.asarray(x, np.float64) for x in series])


class ConnectivityFeatures(TransformerMixin, BaseEstimator):
    """nilearn ``ConnectivityMeasure`` as a pipeline step over a sequence of time series.

    ``X`` is a sequence (object array) of ``[n_frames, n_rois]`` arrays; the output is the
    vectorized upper triangle of each connectivity matrix. For ``kind="tangent"`` the
    group reference is estimated in :meth:`fit`, i.e. on training subjects only.
    """

    def __init__(self, kind: str = "correlation") -> None:
        self.kind = kind

    def fit(self, X: Any, y: Any = None) -> "ConnectivityFeatures":
        from nilearn.connectome import ConnectivityMeasure

        self.measure_ = ConnectivityMeasure(cov_estimator=_ledoit_wolf_cached(), kind=self.kind, vectorize=True,
                                            discard_diagonal=True, standardize="zscore_sample")
        self.measure_.fit([np.asarray(x, np.float64) for x in X])
        return self

    def transform(self, X: Any) -> np.ndarray:
        X = [np.asarray(x, np.float64) for x in X]
        if len(X) == 1:
            # nilearn refuses to transform one subject in tangent space ("deviations to the mean"), but the
            # mean was fitted on the training subjects and each subject is projected on its own: transform
            # the subject twice and keep one row (a leave-one-subject-out test fold holds one subject)
            return self.measure_.transform(X * 2)[:1]
        return self.measure_.transform(X)


def as_series_array(series: list[np.ndarray]) -> np.ndarray:
    """Pack time series of different lengths into an object array sklearn can index."""
    arr = np.empty(len(series), dtype=object)
    for i, s in enumerate(series):
        arr[i] = np.asarray(s)
    return arr


def make_classifier(cfg: CVConfig, n_classes: int = 2, inner_splits: int | None = None) -> Any:
    """Standardize → logistic regression, ``C`` tuned by an inner subject-grouped CV.

    ``inner_splits`` folds (default ``cfg.inner_splits``; :func:`make_folds` lowers it on a
    small cohort); below 2 the pipeline has ``C`` fixed at :func:`untuned_c`.
    Connectivity features are computed before it, inside each outer fold
    (:func:`cross_validate`). :func:`chosen_c` reads the ``C`` a fitted one used.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    inner = cfg.inner_splits if inner_splits is None else inner_splits
    # newton-cg: an order of magnitude faster than lbfgs when features outnumber subjects (FC edges)
    steps = [("scale", StandardScaler()), ("clf", LogisticRegression(solver="newton-cg", max_iter=5000))]
    if inner < 2:
        return Pipeline(steps).set_params(clf__C=untuned_c(cfg))
    scoring = "roc_auc" if n_classes == 2 else "balanced_accuracy"
    return GridSearchCV(Pipeline(steps), {"clf__C": list(cfg.Cs)},
                        scoring=scoring,
                        cv=StratifiedGroupKFold(n_splits=inner, shuffle=True, random_state=cfg.seed),
                        n_jobs=None, error_score="raise")


def _inner_groups(folds: Folds, subjects: np.ndarray) -> dict[str, np.ndarray]:
    """``fit`` keywords of :func:`make_classifier`: the inner CV's subject groups, none when ``C`` is fixed."""
    return {"groups": subjects} if folds.inner_splits >= 2 else {}


def chosen_c(model: Any) -> float:
    """The ``C`` of a fitted :func:`make_classifier` (tuned, or fixed when it could not be)."""
    params = getattr(model, "best_params_", None) or model.get_params()
    return float(params["clf__C"])


@dataclass
class FeatureSet:
    """A named feature set: a ``[n_samples, n_features]`` matrix, or time series for an FC baseline."""

    name: str
    X: np.ndarray
    connectivity: str | None = None  # "correlation" / "tangent" when X holds time series


def cross_validate(features: list[FeatureSet], y: np.ndarray, subjects: np.ndarray, folds: Folds, cfg: CVConfig,
                   classes: tuple[str, ...], progress: bool = False) -> pd.DataFrame:
    """Out-of-fold predictions of every feature set on the same folds.

    Returns
    -------
    DataFrame
        One row per (feature set, repeat, sample): ``sample`` (index), ``subject``,
        ``y_true``, ``y_pred``, ``score`` (decision value for 2 classes) and ``p_<class>``
        probabilities.
    """
    from joblib import Parallel, delayed
    from threadpoolctl import threadpool_limits

    tasks = [(fs, r, f, tr, te) for fs in features for (r, f, tr, te) in folds.splits]
    for fs in features:
        if len(fs.X) != len(y):
            raise InputError(f"feature set {fs.name!r} has {len(fs.X)} samples but there are {len(y)} labels.")

    def one(fs: FeatureSet, r: int, f: int, tr: np.ndarray, te: np.ndarray) -> list[dict[str, Any]]:
        with threadpool_limits(1):  # one BLAS thread per worker: the workers already fill the cores
            Xtr, Xte = fs.X[tr], fs.X[te]
            if fs.connectivity is not None:
                # connectivity (for tangent: the group reference) fitted on this fold's
                # training subjects, once; C is then tuned on those features
                fc = ConnectivityFeatures(kind=fs.connectivity).fit(Xtr)
                Xtr, Xte = fc.transform(Xtr), fc.transform(Xte)
            model = clone(make_classifier(cfg, len(classes), folds.inner_splits))
            model.fit(Xtr, y[tr], **_inner_groups(folds, subjects[tr]))
            proba = model.predict_proba(Xte)
            score = model.decision_function(Xte) if len(classes) == 2 else np.full(len(te), np.nan)
        pred = model.classes_[np.argmax(proba, 1)]
        out = []
        for k, i in enumerate(te):
            row = {"feature_set": fs.name, "repeat": r, "fold": f, "sample": int(i), "subject": subjects[i],
                   "y_true": int(y[i]), "y_pred": int(pred[k]), "score": float(np.ravel(score)[k]),
                   "C": chosen_c(model)}
            for c_i, c in enumerate(classes):
                row[f"p_{c}"] = float(proba[k, list(model.classes_).index(c_i)]) if c_i in model.classes_ else 0.0
            out.append(row)
        return out

    # nilearn's tangent space is Python-bound (threads do not help); every fit is independent
    # and seeded, so results do not depend on n_jobs or the backend
    it = Parallel(n_jobs=cfg.n_jobs, backend=cfg.backend, return_as="generator")(delayed(one)(*t) for t in tasks)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=len(tasks), desc="classification folds", unit="fold")
    rows = [row for part in it for row in part]
    return pd.DataFrame(rows)


def score_predictions(pred: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    """Per-repeat metrics and their mean and interval for each feature set.

    Two classes: ``auc`` (and balanced accuracy); three classes: ``balanced_accuracy`` and
    macro one-vs-rest ``auc``. Intervals: 95 % t over the repeats, clipped to [0, 1]
    (a t interval around a mean near 1 would otherwise reach past the possible values).
    """
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    per = []
    for (fs, r), g in pred.groupby(["feature_set", "repeat"], sort=False):
        if len(classes) == 2:
            auc = roc_auc_score(g["y_true"], g["score"])
        else:
            P = g[[f"p_{c}" for c in classes]].to_numpy()
            P = P / P.sum(1, keepdims=True)
            auc = roc_auc_score(g["y_true"], P, multi_class="ovr", average="macro", labels=list(range(len(classes))))
        per.append({"feature_set": fs, "repeat": r, "auc": auc,
                    "balanced_accuracy": balanced_accuracy_score(g["y_true"], g["y_pred"])})
    per = pd.DataFrame(per)
    rows = []
    for fs, g in per.groupby("feature_set", sort=False):
        row: dict[str, Any] = {"feature_set": fs, "n_repeats": len(g)}
        for m in ("auc", "balanced_accuracy"):
            mean, lo, hi = t_interval(g[m].to_numpy(), clip=METRIC_RANGE)
            row.update({m: mean, f"{m}_ci_low": lo, f"{m}_ci_high": hi})
        rows.append(row)
    return pd.DataFrame(rows)


def confusion(pred: pd.DataFrame, classes: tuple[str, ...], feature_set: str) -> pd.DataFrame:
    """Row-normalized confusion matrix (true × predicted), pooled over repeats."""
    from sklearn.metrics import confusion_matrix

    g = pred[pred["feature_set"] == feature_set]
    M = confusion_matrix(g["y_true"], g["y_pred"], labels=list(range(len(classes)))).astype(float)
    M /= M.sum(1, keepdims=True)
    return pd.DataFrame(M, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))


def roc_curves(pred: pd.DataFrame, grid: np.ndarray | None = None) -> pd.DataFrame:
    """Mean ROC curve per feature set (two-class predictions), interpolated on a common FPR grid."""
    from sklearn.metrics import roc_curve

    grid = np.linspace(0, 1, 101) if grid is None else grid
    rows = []
    for fs, g in pred.groupby("feature_set", sort=False):
        tprs = []
        for _, gr in g.groupby("repeat"):
            fpr, tpr, _ = roc_curve(gr["y_true"], gr["score"])
            tprs.append(np.interp(grid, fpr, tpr))
        T = np.vstack(tprs)
        for x, m, s in zip(grid, T.mean(0), T.std(0)):
            rows.append({"feature_set": fs, "fpr": x, "tpr": m, "tpr_sd": s})
    return pd.DataFrame(rows)


def summary_marker(X: np.ndarray, table: pd.DataFrame, cfg: CVConfig, progress: bool = False,
                   task: ClassificationTask | None = None) -> pd.DataFrame:
    """Out-of-fold AD-vs-CN decision score for every visit (the summary marker).

    A classifier (as in :func:`make_classifier`) is trained on the **baseline** visits of
    the training-fold AD and CN subjects and applied to **every** visit of the held-out
    subjects. MCI subjects are never trained on; in each repeat, each of them is assigned
    to one fold (balanced, seeded by the repeat) and scored by that fold's model only. So
    every visit's marker is the mean of exactly ``n_repeats`` models, each trained on the
    same share of the AD/CN subjects, whatever the subject's group: averaging more models
    for MCI (every fold's) would shrink their markers' noise and make the groups'
    variances, and the trajectories fitted on them, incomparable. No subject ever scores
    itself. Another two-class ``task`` (reference, level) gives the same marker for its
    level: subjects of the other levels are scored like MCI.

    Parameters
    ----------
    X
        ``[n_recordings, n_features]`` features of every recording (e.g. embeddings).
    table
        The cohort's recordings table (same order as ``X``), with ``subject``, the
        task's group column and ``years_from_baseline``.
    task
        Two classes ``(reference, level)`` of a group column (default AD vs CN).

    Returns
    -------
    DataFrame
        ``recording_id``, ``subject``, ``marker`` (log-odds of the level: AD), ``n_models``
        (``n_repeats`` for every visit; 1 with leave-one-subject-out); ``attrs["cv_notes"]``:
        how a small cohort changed the folds (:func:`make_folds`).
    """
    from .groupstats import baseline_rows

    task = _task("ad_cn") if task is None else task
    if len(task.classes) != 2:
        raise InputError(f"the summary marker separates two classes; task {task.name} has {len(task.classes)}.")
    if len(X) != len(table):
        raise InputError(f"{len(X)} feature rows for {len(table)} recordings.")
    base = baseline_rows(table)
    bt = table[base]
    mask, y, classes = task_labels(bt[task.column].reset_index(drop=True), task)
    train_pool = np.flatnonzero(base)[mask]          # row positions of baseline AD/CN visits
    subj_pool = table["subject"].to_numpy()[train_pool]
    folds = make_folds(subj_pool, y, cfg, classes)
    all_subj = table["subject"].to_numpy()
    pool_subjects = set(subj_pool)
    others = np.array(sorted(set(all_subj) - pool_subjects), dtype=object)
    # each repeat: every subject outside the training pool scored by one fold's model (balanced)
    assigned = {}
    for r in range(folds.n_repeats):
        order = np.random.default_rng([cfg.seed, r]).permutation(len(others))
        assigned[r] = {others[i]: k % folds.n_splits for k, i in enumerate(order)}
    sums = np.zeros(len(table))
    counts = np.zeros(len(table))
    it = folds.splits
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="summary marker folds", unit="fold")
    for r, f, tr, te in it:
        model = clone(make_classifier(cfg, 2, folds.inner_splits))
        model.fit(X[train_pool[tr]], y[tr], **_inner_groups(folds, subj_pool[tr]))
        held = set(subj_pool[te]) | {s for s, k in assigned[r].items() if k == f}
        score_rows = np.flatnonzero([s in held for s in all_subj])
        assert not (set(all_subj[score_rows]) & set(subj_pool[tr])), "a subject would score itself"
        sums[score_rows] += model.decision_function(X[score_rows])
        counts[score_rows] += 1
    marker = pd.DataFrame({"recording_id": table["recording_id"].to_numpy(), "subject": all_subj,
                           "marker": sums / np.maximum(counts, 1), "n_models": counts.astype(int)})
    marker.attrs["cv_notes"] = list(folds.notes)
    return marker


def run_classification(features: Mapping[str, np.ndarray] | list[FeatureSet], table: pd.DataFrame,
                       task: str | ClassificationTask, cfg: CVConfig, progress: bool = False) -> dict[str, Any]:
    """Score every feature set for ``task`` on identical folds (baseline visits only).

    Parameters
    ----------
    features
        Feature sets over **all** recordings of ``table`` (same order); baseline visits
        are selected here.
    table
        Recordings table with ``subject``, the task's group column, ``years_from_baseline``.
    task
        A :class:`ClassificationTask` (see :func:`tasks_for`), or ``"ad_cn"`` / ``"3class"``.

    Returns
    -------
    dict
        ``summary`` (metrics with intervals), ``predictions`` (out-of-fold), ``folds``,
        ``classes``.
    """
    from .groupstats import baseline_rows

    fsets = [FeatureSet(k, v) for k, v in features.items()] if isinstance(features, Mapping) else list(features)
    base = np.flatnonzero(baseline_rows(table))
    bt = table.iloc[base].reset_index(drop=True)
    task = _task(task)
    mask, y, classes = task_labels(bt[task.column], task)
    rows = base[mask]
    subjects = table["subject"].to_numpy()[rows]
    folds = make_folds(subjects, y, cfg, classes)
    sel = [FeatureSet(fs.name, fs.X[rows], fs.connectivity) for fs in fsets]
    pred = cross_validate(sel, y, subjects, folds, cfg, classes, progress=progress)
    pred["recording_id"] = table["recording_id"].to_numpy()[rows][pred["sample"].to_numpy()]
    return {"summary": score_predictions(pred, classes), "predictions": pred, "folds": folds, "classes": classes}
