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

Statistics (:func:`score_predictions`, :func:`permutation_test`):

- **Point estimates** on the out-of-fold predictions pooled over the R CV repeats: each
  subject's decision value (and class probabilities) averaged over the repeats — every
  repeat scores every subject once, from a model that never saw it — then one AUC and
  one balanced accuracy (the class of the mean probabilities) over the subjects.
- **Intervals**: a percentile bootstrap over subjects (:data:`CVConfig.n_bootstrap`
  resamples, stratified by class), each resampled subject carrying its pooled score. The
  unit resampled is the subject, so the repeats that share a subject are never counted as
  independent (the former t interval over repeats was). The classifiers are not refitted
  per resample: the interval is conditional on the fitted CV, the usual shortcut. It
  describes the estimate's uncertainty and is no test against chance: on null cohorts
  (:mod:`bi_core.analysis.calibration`, 60 cohorts of 20 subjects per group, the book's
  CV) its lower end exceeded 0.5 in 8 % of them against a nominal 2.5 % (the former t
  interval: 10 %); the permutation p-value below held its level (5 %), and claim 5 needs both.
- **Paired differences**: every feature set against one named set (``paired_with``, by
  default the first: the BrainInterNet embedding in the suite) on the same folds and the
  same bootstrap resamples of subjects (:func:`paired_difference`).
- **Label-permutation p-values**: refitting the tuned logistic regression for every
  permutation would cost ≥ 1,000 × the whole CV. Instead the test statistic is the CV AUC
  (balanced accuracy) of a small, fast classifier — nearest class centroid on features
  standardized over all subjects (label-free), as inner products of one kernel matrix —
  on the **same** outer folds and repeats, pooled the same way; each permutation re-runs
  that whole CV with the subjects' labels permuted (their fold assignment moves with the
  label, so the folds stay stratified exactly as for the real labels). Observed and
  permuted statistics come from the same procedure, so the p-value is valid; it tests
  whether the features carry label information under cross-validation, and the
  centroid classifier's own score is reported beside it (``centroid_auc``). Tangent-space
  features for the test are fitted once on all subjects (label-free, the same for every
  permutation). Cost: one ``[n × n]`` kernel product per permutation and feature set
  (measured on 2 shared CPU cores: 3–4 s per task for 1,000 permutations of 100–150
  subjects and 8 feature sets; the bootstrap adds 1–3 s).
- **Chance**: AUC 0.5; balanced accuracy 1 / number of classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.covariance import LedoitWolf

from ..errors import ConfigError, InputError
from ..folds import class_counts, plan_folds, repeated_subject_folds, stratified_subject_splitter
from ..stats import auc_rows, balanced_accuracy_rows, percentile_interval, permutation_p, stratified_bootstrap
from .groupstats import Groups, baseline_rows, slug

#: The metrics of the summary tables.
METRICS = ("auc", "balanced_accuracy")
#: Level of the bootstrap intervals.
LEVEL = 0.95

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
    parallel. ``n_bootstrap`` subject resamples for the intervals, ``n_permutations``
    label permutations for the p-values (0: none); the summary table states both.
    """

    n_splits: int = 5
    n_repeats: int = 5
    seed: int = 0
    inner_splits: int = 3
    Cs: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)
    n_jobs: int | None = 1        # parallel folds (-1: all cores); results do not depend on it
    backend: str = "threading"    # joblib backend: "threading" or processes ("loky")
    n_bootstrap: int = 2000
    n_permutations: int = 1000

    def __post_init__(self) -> None:
        if not self.Cs or not all(np.isfinite(c) and c > 0 for c in self.Cs):
            raise ConfigError(f"the classifiers' penalties Cs must be positive numbers, got {list(self.Cs)}.")


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
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    inner = cfg.inner_splits if inner_splits is None else inner_splits
    # newton-cg: an order of magnitude faster than lbfgs when features outnumber subjects (FC edges)
    steps = [("scale", StandardScaler()), ("clf", LogisticRegression(solver="newton-cg", max_iter=5000))]
    if inner < 2:
        return Pipeline(steps).set_params(clf__C=untuned_c(cfg))
    scoring = roc_auc if n_classes == 2 else balanced_accuracy
    return GridSearchCV(Pipeline(steps), {"clf__C": list(cfg.Cs)},
                        scoring=scoring,
                        cv=stratified_subject_splitter(inner, cfg.seed),
                        n_jobs=None, error_score="raise")


def roc_auc(estimator: Any, X: np.ndarray, y: np.ndarray) -> float:
    """The inner CV's score of a fitted binary classifier: the area under the ROC curve of its decision values
    on ``X`` ``[n_samples, n_features]`` for the labels ``y`` ``[n_samples]``, positive class ``classes_[1]``.

    The value of scikit-learn's ``"roc_auc"`` scorer (the Mann–Whitney statistic, ties counting one half:
    :func:`bi_core.stats.auc_rows`) without its per-call input checks, which took 9 ms a call, as long as a
    fit on an inner fold. Raises ``ValueError`` when ``y`` holds one class, as that scorer does.
    """
    positive = np.asarray(y) == estimator.classes_[1]
    if positive.all() or not positive.any():
        raise ValueError("Only one class present in y_true. ROC AUC score is not defined in that case.")
    return float(auc_rows(estimator.decision_function(X), positive))


def balanced_accuracy(estimator: Any, X: np.ndarray, y: np.ndarray) -> float:
    """The inner CV's score of a fitted classifier of three or more classes: the mean recall of the classes
    present in ``y`` ``[n_samples]`` of its predictions for ``X`` ``[n_samples, n_features]``.

    The value of scikit-learn's ``"balanced_accuracy"`` scorer (the same recalls, averaged in the same
    order) without its per-call input checks.
    """
    y = np.asarray(y)
    pred = estimator.predict(X)
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


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
    from sklearn import config_context
    from threadpoolctl import threadpool_limits

    tasks = [(fs, r, f, tr, te) for fs in features for (r, f, tr, te) in folds.splits]
    for fs in features:
        if len(fs.X) != len(y):
            raise InputError(f"feature set {fs.name!r} has {len(fs.X)} samples but there are {len(y)} labels.")

    def one(fs: FeatureSet, r: int, f: int, tr: np.ndarray, te: np.ndarray) -> list[dict[str, Any]]:
        # one BLAS thread per worker: the workers already fill the cores. scikit-learn's check of the estimators'
        # parameters (this module's own: CVConfig checks its Cs) at every fit was a fifth of an inner fold's time
        with threadpool_limits(1), config_context(skip_parameter_validation=True):
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


def pooled_predictions(pred: pd.DataFrame, classes: tuple[str, ...]) -> pd.DataFrame:
    """Each subject's out-of-fold predictions averaged over the CV repeats, per feature set.

    Returns
    -------
    DataFrame
        One row per (feature set, subject): ``y_true``, ``score`` (mean decision value; NaN
        for more than two classes), ``p_<class>`` (mean probabilities), ``y_pred`` (the class
        of the largest mean probability) and ``n_predictions`` (one per repeat).
    """
    pcols = [f"p_{c}" for c in classes]
    g = pred.groupby(["feature_set", "subject"], sort=False)
    out = g[["score", *pcols]].mean()
    y = g["y_true"].agg(["first", "nunique"])
    if (y["nunique"] > 1).any():
        raise InputError("a subject has two labels in the predictions; classification needs one label per subject.")
    out.insert(0, "y_true", y["first"].astype(int))
    out["y_pred"] = np.argmax(out[pcols].to_numpy(), axis=1)
    out["n_predictions"] = g.size()
    return out.reset_index()


def _metric_rows(pooled: pd.DataFrame, classes: tuple[str, ...], idx: np.ndarray) -> dict[str, np.ndarray]:
    """AUC and balanced accuracy of the pooled predictions for every row of subject indices ``idx`` ``[B, n]``."""
    y = pooled["y_true"].to_numpy()
    k = len(classes)
    if k == 2:
        auc = auc_rows(pooled["score"].to_numpy()[idx], y[idx] == 1)
    else:   # macro one-vs-rest AUC (sklearn's "ovr"/"macro"), probabilities normalized per subject
        P = pooled[[f"p_{c}" for c in classes]].to_numpy()
        P = P / P.sum(1, keepdims=True)
        auc = np.mean([auc_rows(P[idx, c], y[idx] == c) for c in range(k)], axis=0)
    return {"auc": auc, "balanced_accuracy": balanced_accuracy_rows(pooled["y_pred"].to_numpy()[idx], y[idx], k)}


def _pooled_by_set(pred: pd.DataFrame, classes: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """:func:`pooled_predictions` per feature set, every set's subjects in the first set's order."""
    pooled = pooled_predictions(pred, classes)
    sets = {fs: g.set_index("subject") for fs, g in pooled.groupby("feature_set", sort=False)}
    order = next(iter(sets.values())).index
    for fs, g in sets.items():
        if set(g.index) != set(order):
            raise InputError(f"feature set {fs!r} was scored on other subjects than {next(iter(sets))!r}; paired "
                             "statistics need the same subjects.")
    return {fs: g.loc[order].reset_index() for fs, g in sets.items()}


def paired_difference(pred: pd.DataFrame, a: str, b: str, classes: tuple[str, ...], n_bootstrap: int = 2000,
                      seed: int = 0, level: float = LEVEL) -> dict[str, float]:
    """Metric of feature set ``a`` minus that of ``b`` on the same subjects, with a paired bootstrap interval.

    Both are scored on the same folds (:func:`cross_validate`); each bootstrap resample
    draws the same subjects for both (stratified by class), so the interval reflects the
    subjects both sets were scored on, not two independent samples.

    Returns
    -------
    dict
        ``<metric>_difference``, ``<metric>_difference_ci_low``, ``…_ci_high`` for ``auc``
        and ``balanced_accuracy``.
    """
    sets = _pooled_by_set(pred[pred["feature_set"].isin([a, b])], classes)
    for f in (a, b):
        if f not in sets:
            raise InputError(f"no predictions of feature set {f!r}; have {sorted(sets)}.")
    ident = np.arange(len(sets[a]))[None, :]
    idx = stratified_bootstrap(sets[a]["y_true"].to_numpy(), n_bootstrap, np.random.default_rng([seed, 2]))
    point = {m: float(_metric_rows(sets[a], classes, ident)[m][0] - _metric_rows(sets[b], classes, ident)[m][0])
             for m in METRICS}
    ma, mb = _metric_rows(sets[a], classes, idx), _metric_rows(sets[b], classes, idx)
    out: dict[str, float] = {}
    for m in METRICS:
        lo, hi = percentile_interval(ma[m] - mb[m], level)
        out.update({f"{m}_difference": point[m], f"{m}_difference_ci_low": lo, f"{m}_difference_ci_high": hi})
    return out


def score_predictions(pred: pd.DataFrame, classes: tuple[str, ...], n_bootstrap: int = 2000, seed: int = 0,
                      paired_with: str | None = None, level: float = LEVEL) -> pd.DataFrame:
    """Metrics of the pooled out-of-fold predictions with subject-bootstrap intervals, per feature set.

    Two classes: ``auc`` of the mean decision values; more: macro one-vs-rest ``auc`` of the
    mean probabilities. ``balanced_accuracy``: the class of the mean probabilities. Intervals
    (``<metric>_ci_low``, ``_ci_high``): percentile bootstrap over subjects, stratified by
    class, ``n_bootstrap`` resamples seeded by ``seed``, the same resamples for every feature
    set. ``<metric>_repeat_sd``: the SD of the metric over the CV repeats (how much one
    repeat's estimate moves; not an interval). ``<metric>_chance``: 0.5 for AUC, 1 / number
    of classes for balanced accuracy.

    ``paired_with`` (default: the first feature set): every other set gets
    ``<metric>_paired_difference`` = metric of ``paired_with`` − metric of this set, with its
    paired bootstrap interval (:func:`paired_difference`); NaN on ``paired_with``'s own row.

    Returns
    -------
    DataFrame
        One row per feature set: ``feature_set``, ``n_subjects``, ``n_repeats``, each metric
        with its interval, repeat SD and chance, ``paired_with``, the paired differences and
        ``n_bootstrap``.
    """
    sets = _pooled_by_set(pred, classes)
    names = list(sets)
    ref = names[0] if paired_with is None else paired_with
    if ref not in sets:
        raise InputError(f"paired_with={ref!r} is not a feature set of the predictions ({names}).")
    idx = stratified_bootstrap(sets[ref]["y_true"].to_numpy(), n_bootstrap, np.random.default_rng([seed, 2]))
    ident = np.arange(len(sets[ref]))[None, :]
    boot = {fs: _metric_rows(sets[fs], classes, idx) for fs in names}
    per_repeat = {(fs, r): _metric_rows(p, classes, np.arange(len(p))[None, :])
                  for (fs, r), g in pred.groupby(["feature_set", "repeat"], sort=False)
                  for p in [pooled_predictions(g, classes)]}
    chance = {"auc": 0.5, "balanced_accuracy": 1 / len(classes)}
    rows = []
    for fs in names:
        reps = [k for k in per_repeat if k[0] == fs]
        row: dict[str, Any] = {"feature_set": fs, "n_subjects": len(sets[fs]), "n_repeats": len(reps)}
        point = _metric_rows(sets[fs], classes, ident)
        for m in METRICS:
            lo, hi = percentile_interval(boot[fs][m], level)
            sd = np.std([per_repeat[k][m][0] for k in reps], ddof=1) if len(reps) > 1 else np.nan
            row.update({m: float(point[m][0]), f"{m}_ci_low": lo, f"{m}_ci_high": hi, f"{m}_repeat_sd": float(sd),
                        f"{m}_chance": chance[m]})
        row["paired_with"] = ref
        ref_point = _metric_rows(sets[ref], classes, ident)
        for m in METRICS:
            if fs == ref:
                d, lo, hi = np.nan, np.nan, np.nan
            else:
                d = float(ref_point[m][0] - point[m][0])
                lo, hi = percentile_interval(boot[ref][m] - boot[fs][m], level)
            row.update({f"{m}_paired_difference": d, f"{m}_paired_difference_ci_low": lo,
                        f"{m}_paired_difference_ci_high": hi})
        row["n_bootstrap"] = int(n_bootstrap)
        rows.append(row)
    return pd.DataFrame(rows)


def _standardized(X: np.ndarray) -> np.ndarray:
    """Columns z-scored over all samples (constant columns: zero); label-free."""
    X = np.asarray(X, dtype=float)
    sd = X.std(0)
    return (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)


def permutation_test(features: list[FeatureSet], y: np.ndarray, subjects: np.ndarray, folds: Folds,
                     classes: tuple[str, ...], n_permutations: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Label-permutation p-values of every feature set through the whole CV, with a nearest-centroid classifier.

    The statistic: on ``folds`` (every repeat), each test subject is scored by its distance
    to the class centroids of the fold's training subjects (features z-scored over all
    subjects, label-free); scores are averaged over the repeats as in
    :func:`pooled_predictions`; AUC (two classes: the last class's score minus the first's;
    more: macro one-vs-rest of the centred scores) and balanced accuracy (nearest centroid).
    A permutation gives the subjects' labels — and, with them, their fold assignment, so that
    every fold keeps its stratification — to other subjects and recomputes the statistic
    through the same CV. ``p = (1 + #{permuted ≥ observed}) / (1 + n_permutations)``.

    All centroid inner products come from one kernel ``K = Z Zᵀ`` ``[n_subjects,
    n_subjects]`` per feature set, so a permutation costs one ``[n × n] @ [n × folds ×
    repeats × classes]`` product.

    Parameters
    ----------
    features
        Feature sets over the samples (one per subject); connectivity sets are computed
        once over all subjects (label-free).
    y, subjects : ``[n_samples]``
        Labels (class indices) and subjects (one sample each).

    Returns
    -------
    DataFrame
        One row per feature set: ``centroid_auc``, ``centroid_balanced_accuracy`` (the observed
        statistics), ``auc_p_perm``, ``balanced_accuracy_p_perm`` and ``n_permutations``.
    """
    y = np.asarray(y)
    if len(np.unique(subjects)) != len(subjects):
        raise InputError("the permutation test permutes subjects: it needs one sample per subject.")
    n, k = len(y), len(classes)
    reps = sorted({r for r, _, _, _ in folds.splits})
    fold_of = np.full((len(reps), n), -1)
    for r, f, _, te in folds.splits:
        fold_of[reps.index(r), te] = f
    n_f = 1 + int(fold_of.max())
    rng = np.random.default_rng([seed, 1])
    perms = np.vstack([np.arange(n)] + [rng.permutation(n) for _ in range(int(n_permutations))])
    kernels = []
    for fs in features:
        X = fs.X
        if fs.connectivity is not None:
            X = ConnectivityFeatures(kind=fs.connectivity).fit(X).transform(X)
        Z = _standardized(X)
        kernels.append(Z @ Z.T / max(Z.shape[1], 1))
    stats: list[dict[str, list[np.ndarray]]] = [{m: [] for m in METRICS} for _ in features]
    R = len(reps)
    for chunk in np.array_split(perms, max(1, len(perms) // 100)):     # the identity first: the observed statistic
        B = len(chunk)
        yp, fp = y[chunk], fold_of[:, chunk].transpose(1, 0, 2)          # [B, n], [B, R, n]
        # M[i, b, r, f, c]: 1 / |class c ∩ training part of fold f| for such i, under permutation b
        M = ((fp[..., None] != np.arange(n_f))[..., None] & (yp[:, None, :, None, None] == np.arange(k)))
        M = M / np.maximum(M.sum(2, keepdims=True), 1)
        M = M.transpose(2, 0, 1, 3, 4)                                      # [n, B, R, F, K]
        own = (np.arange(n)[:, None, None], np.arange(B)[None, :, None], np.arange(R)[None, None, :],
               fp.transpose(2, 0, 1))
        for K, st in zip(kernels, stats):
            G = (K @ M.reshape(n, -1)).reshape(M.shape)                     # z_i·μ
            sq = np.einsum("ibrfc,ibrfc->brfc", M, G)                       # ||μ||²
            # z·μ − ||μ||²/2: the nearest centroid has the largest score; each subject read in its own test fold
            sc = (G[own] - sq[own[1], own[2], own[3]] / 2).mean(2)             # [n, B, K], pooled over repeats
            sc = sc.transpose(1, 0, 2)                                      # [B, n, K]
            if k == 2:
                st["auc"].append(auc_rows(sc[..., 1] - sc[..., 0], yp == 1))
            else:
                cen = sc - sc.mean(2, keepdims=True)
                st["auc"].append(np.mean([auc_rows(cen[..., c], yp == c) for c in range(k)], axis=0))
            st["balanced_accuracy"].append(balanced_accuracy_rows(sc.argmax(2), yp, k))
    rows = []
    for fs, st in zip(features, stats):
        row: dict[str, Any] = {"feature_set": fs.name}
        for m in METRICS:
            values = np.concatenate(st[m])
            row[f"centroid_{m}"] = float(values[0])
            row[f"{m}_p_perm"] = permutation_p(values[0], values[1:]) if n_permutations > 0 else np.nan
        row["n_permutations"] = int(n_permutations)
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
                       task: str | ClassificationTask, cfg: CVConfig, progress: bool = False,
                       paired_with: str | None = None) -> dict[str, Any]:
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
    paired_with
        The feature set every other one is compared with (default: the first).

    Returns
    -------
    dict
        ``summary`` (:func:`score_predictions`: pooled metrics, subject-bootstrap intervals,
        paired differences; and :func:`permutation_test`'s p-values), ``predictions``
        (out-of-fold), ``folds``, ``classes``.
    """
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
    summary = score_predictions(pred, classes, cfg.n_bootstrap, cfg.seed, paired_with=paired_with)
    if cfg.n_permutations > 0:
        perm = permutation_test(sel, y, subjects, folds, classes, cfg.n_permutations, cfg.seed)
        summary = summary.merge(perm, on="feature_set", how="left", validate="one_to_one")
    return {"summary": summary, "predictions": pred, "folds": folds, "classes": classes}
