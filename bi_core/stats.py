"""Confidence intervals, bootstrap and permutation helpers: one set for every study.

- :func:`t_interval` — mean ± ``t · SD / √n`` of the values as given (the interval over
  seeds, folds or CV repeats), optionally clipped to the values' range (an AUC interval
  never reaches past 1, a share past [0, 1]).
- :func:`mean_ci` — the same over the finite values only, optionally for correlations
  (averaged and bounded in Fisher-z space).
- :func:`wald_interval` — estimate ± ``z · SE`` (a model's fitted value or coefficient).
- :func:`stratified_bootstrap`, :func:`percentile_interval` — resampling units (subjects)
  with replacement within strata (classes), and the percentile interval of a statistic.
- :func:`auc_rows`, :func:`balanced_accuracy_rows` — AUC (Mann–Whitney) and balanced accuracy
  of many resamples or permutations at once.
- :func:`permutation_p` — the permutation p-value ``(1 + #{null ≥ observed}) / (1 + B)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def t_interval(x: np.ndarray, level: float = 0.95,
               clip: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """Mean and two-sided Student-t confidence interval of the mean of ``x`` ``[n]``.

    Parameters
    ----------
    clip
        ``(low, high)``: the range the values can take (``(0, 1)`` for an AUC or a share,
        ``(-1, 1)`` for a correlation); the bounds are clipped to it.

    Returns
    -------
    (mean, low, high)
        NaN bounds when ``n < 2`` (NaN mean too when ``n == 0``). Non-finite values are
        kept (a NaN makes the interval NaN); :func:`mean_ci` drops them.
    """
    from scipy import stats

    x = np.asarray(x, dtype=float)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if len(x) < 2:
        return m, math.nan, math.nan
    h = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    lo, hi = m - h, m + h
    if clip is not None:
        lo, hi = float(np.clip(lo, *clip)), float(np.clip(hi, *clip))
    return m, lo, hi


def mean_ci(x: np.ndarray, level: float = 0.95, fisher: bool = False,
            clip: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """Mean and t-based confidence interval of the finite values of ``x`` (NaNs when < 2).

    ``fisher``: ``x`` are correlations, averaged and bounded in Fisher-z space
    (``tanh(mean(arctanh x) ± t·SE)``), so the interval stays inside (-1, 1).
    ``clip``: the values' range, as in :func:`t_interval`.
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if fisher and len(x):
        m, lo, hi = t_interval(np.arctanh(np.clip(x, -0.999999, 0.999999)), level)
        return float(np.tanh(m)), float(np.tanh(lo)), float(np.tanh(hi))
    return t_interval(x, level, clip)


def wald_interval(estimate: float, se: float, level: float = 0.95) -> tuple[float, float]:
    """Two-sided Wald interval ``estimate ± z · se`` (z: the standard normal quantile of ``level``)."""
    from scipy import stats

    h = float(stats.norm.ppf(0.5 + level / 2)) * se
    return estimate - h, estimate + h


def stratified_bootstrap(strata: np.ndarray, n_boot: int, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Bootstrap resamples of units, drawn with replacement within each stratum.

    Parameters
    ----------
    strata : ``[n]``
        Stratum of each unit (e.g. a subject's class): every resample keeps each stratum's
        size, so a two-class AUC is defined in every resample.
    n_boot
        Resamples ``B``.

    Returns
    -------
    ``[B, n]`` int array
        Unit indices. Column ``j`` draws from the stratum of unit ``j`` (the class pattern is
        the same in every row, which lets :func:`auc_rows` rank all rows at once).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    strata = np.asarray(strata)
    out = np.empty((int(n_boot), len(strata)), dtype=np.intp)
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        out[:, members] = rng.choice(members, size=(int(n_boot), len(members)), replace=True)
    return out


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Two-sided percentile interval of the finite values of ``samples`` ``[B]`` (NaNs when none)."""
    x = np.asarray(samples, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan
    a = (1 - level) / 2
    lo, hi = np.quantile(x, [a, 1 - a])
    return float(lo), float(hi)


def auc_rows(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Area under the ROC curve of each row (Mann–Whitney U / (n₁ n₀), ties count one half).

    Parameters
    ----------
    scores : ``[m, n]`` (or ``[n]``)
        Decision values, higher for the positive class.
    positive : ``[m, n]`` or ``[n]`` bool
        Which units are positive (broadcast over the rows).

    Returns
    -------
    ``[m]`` (or a scalar array for 1-d input)
        NaN for a row with only one class.
    """
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=float)
    pos = np.broadcast_to(np.asarray(positive, dtype=bool), scores.shape)
    ranks = rankdata(scores, axis=-1)
    n1 = pos.sum(-1)
    n0 = pos.shape[-1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(pos, ranks, 0.0).sum(-1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def balanced_accuracy_rows(pred: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Balanced accuracy (mean recall over the classes present) of each row of ``pred`` ``[m, n]`` against ``y``.

    ``y`` is ``[m, n]`` or ``[n]`` (broadcast), classes ``0 … n_classes-1``; a class absent
    from a row does not count in that row's mean.
    """
    pred = np.asarray(pred)
    y = np.broadcast_to(np.asarray(y), pred.shape)
    recalls, present = [], []
    for c in range(int(n_classes)):
        is_c = y == c
        n_c = is_c.sum(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            recalls.append(np.where(n_c > 0, ((pred == c) & is_c).sum(-1) / np.maximum(n_c, 1), 0.0))
        present.append(n_c > 0)
    return np.sum(recalls, 0) / np.maximum(np.sum(present, 0), 1)


def permutation_p(observed: float, null: np.ndarray) -> float:
    """One-sided permutation p-value ``(1 + #{null ≥ observed}) / (1 + B)`` (never 0; Phipson & Smyth 2010)."""
    null = np.asarray(null, dtype=float)
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + len(null)))


#: The one ridge penalty grid (scikit-learn ``alpha``): 10⁻³ … 10⁶ in half-decades (19). Every ridge of the book
#: searches it: the reconstruction references (z-scored series, inner subject-grouped CV;
#: :mod:`bi_core.analysis.linear`), target and behaviour prediction and the related studies' baselines
#: (``RidgeCV``'s exact leave-one-out on the training rows). It holds each grid those used before (10⁰…10⁶,
#: 10⁻²…10⁶, 10⁻³…10⁵, 10⁻³…10⁴).
RIDGE_PENALTIES: tuple[float, ...] = tuple(np.logspace(-3, 6, 19).tolist())


def standardized_ridge(alphas: tuple[float, ...] = RIDGE_PENALTIES) -> Any:
    """An unfitted ``StandardScaler → RidgeCV(alphas)`` pipeline (features on any scale; the penalty by exact
    leave-one-out on the rows it is fitted on)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), RidgeCV(alphas=alphas))
