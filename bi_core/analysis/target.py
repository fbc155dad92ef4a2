"""Continuous phenotypes (age, a symptom score...): association with predictability and prediction.

Association: for every cell (network), an OLS model (statsmodels)
``value ~ target + covariates`` on baseline visits, the covariates being those among
age, sex and site that the cohort has (the target itself excluded); the target's
coefficient per unit, its 95 % interval, the standardized coefficient and
Benjamini–Hochberg q across cells.

Prediction: every feature set predicts the target with ridge regression (standardized
features, the penalty chosen by the efficient leave-one-out CV of ``RidgeCV`` within the
training subjects) on the **same** repeated subject-grouped K folds (``GroupKFold``
with shuffling, one seed per repeat; leave-one-subject-out when there are fewer subjects
than folds, :func:`bi_core.folds.plan_folds`); connectivity baselines are computed inside each
fold as in :mod:`bi_core.analysis.classify`. Pearson r and the mean absolute error are
computed per repeat on the pooled out-of-fold predictions; intervals are mean ± t·SD/√R
over the R repeats (the variability of the CV procedure, see classify), clipped to each
metric's range (r in [−1, 1], MAE ≥ 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..folds import plan_folds, repeated_subject_folds
from ..stats import standardized_ridge, t_interval
from .classify import ConnectivityFeatures, CVConfig, FeatureSet
from .groupstats import COVARIATES, available_covariates, covariate_terms, fdr, ols_effect

#: Range of each prediction metric: its interval is clipped to it.
RANGES: dict[str, tuple[float, float]] = {"r": (-1.0, 1.0), "mae": (0.0, np.inf)}
#: Fewest subjects with a value for a prediction of the target (its r is over their held-out predictions).
MIN_PREDICTION_SUBJECTS = 4


def check_target(table: pd.DataFrame, target: str, where: str = "the cohort", min_subjects: int = 4) -> pd.Series:
    """Validate a continuous target column and return it as floats.

    Raises
    ------
    InputError
        An unknown, non-numeric or constant column, or fewer than ``min_subjects`` subjects
        with a value.
    """
    numeric = [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c]) and table[c].notna().any()
               and c not in ("tr", "n_frames", "offset")]
    if target not in table:
        raise InputError(f"--target {target!r} is not a column of {where}; its numeric columns are {numeric}.")
    col = table[target]
    if not pd.api.types.is_numeric_dtype(col):
        levels = sorted(col.dropna().astype(str).unique())[:5]
        raise InputError(f"--target {target!r} is not numeric in {where} (values like {levels}); compare its levels "
                         f"with --group-column {target}, or choose a numeric column: {numeric}.")
    n = table.loc[col.notna(), "subject"].nunique()
    if n < min_subjects:
        raise InputError(f"--target {target!r} has values for {n} subject(s) in {where}; at least {min_subjects} "
                         "are needed.")
    if col.nunique() < 2:
        raise InputError(f"--target {target!r} is {col.dropna().iloc[0]:g} for every recording of {where}; an "
                         "association or a prediction needs a column that varies: choose another one.")
    return col.astype(float)


def target_association(df: pd.DataFrame, value: str, cells: Sequence[str], target: str,
                       covariates: Sequence[str] = COVARIATES, alpha: float = 0.05) -> pd.DataFrame:
    """OLS association of ``value`` with a continuous ``target`` per cell, with covariates and FDR.

    Parameters
    ----------
    df
        One row per (recording, cell) on baseline visits, with ``value``, ``target`` and
        the covariates.
    cells
        Columns identifying a cell (``["network"]``).
    covariates
        Adjustment variables; the target, missing and constant ones are dropped.

    Returns
    -------
    DataFrame
        One row per cell: ``target``, ``estimate`` (change of ``value`` per unit of the
        target), ``se``, ``t``, ``p``, ``ci_low``/``ci_high`` (95 %), ``std_beta``
        (estimate × SD(target) / SD(value)), ``n``, ``q`` (Benjamini–Hochberg; the
        family is this ``value`` across all cells), ``significant``, ``fdr_family``.
    """
    import patsy

    cov = [c for c in available_covariates(df.dropna(subset=[target]), covariates) if c != target]
    terms = covariate_terms(df.dropna(subset=[target]), cov)
    rows = []
    for key, g in df.groupby(list(cells), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        g = g.dropna(subset=[value, target]).assign(_x=lambda d: d[target].astype(float))
        base = dict(zip(cells, key), target=target, n=len(g))
        if len(g) < len(terms) + 3 or g["_x"].nunique() < 2:
            rows.append({**base, "estimate": np.nan, "p": np.nan})
            continue
        use = [t for t in terms if g[t[2:-1] if t.startswith("C(") else t].nunique() > 1]
        X = patsy.dmatrix("_x" + "".join(f" + {t}" for t in use), g, return_type="dataframe")
        fit = ols_effect(g[value], X, "_x")
        fit.pop("residual_sd")
        sd_y = float(g[value].std())
        rows.append({**base, **fit, "std_beta": fit["estimate"] * float(g["_x"].std()) / sd_y if sd_y else np.nan})
    what = " × ".join(cells) + (" cells" if len(cells) > 1 else "s")
    return fdr(pd.DataFrame(rows), None, alpha, family=f"{value} ~ {target}, across {{n}} {what}")


def predict_target(features: list[FeatureSet], y: np.ndarray, subjects: np.ndarray, cfg: CVConfig,
                   progress: bool = False) -> dict[str, Any]:
    """Out-of-fold ridge predictions of ``y`` from every feature set on the same subject-grouped folds.

    Parameters
    ----------
    features
        Feature sets over the samples (one per subject: baseline visits).
    y
        ``[n_samples]`` target values (no NaN).
    subjects
        ``[n_samples]`` subject ids (folds never split a subject).
    cfg
        ``n_splits`` folds, ``n_repeats`` repeats (seeds ``seed``, ``seed+1``...); with fewer
        subjects than folds, leave-one-subject-out (one repeat).

    Returns
    -------
    dict
        ``summary`` (per feature set: ``r``, ``mae`` with ``_ci_low``/``_ci_high``,
        ``n_repeats``, ``n``), ``predictions`` (feature_set, repeat, fold, sample,
        subject, y_true, y_pred, alpha) and ``cv_notes`` (how the folds differ from
        ``cfg``'s, empty when they do not).

    Raises
    ------
    InputError
        Fewer than :data:`MIN_PREDICTION_SUBJECTS` subjects.
    """
    from sklearn.base import clone


    y = np.asarray(y, float)
    n_subj = len(set(subjects))
    if n_subj < MIN_PREDICTION_SUBJECTS:
        raise InputError(f"predicting the target needs at least {MIN_PREDICTION_SUBJECTS} subjects with a value "
                         f"(a correlation over fewer held-out predictions says nothing); {n_subj} have one.")
    plan = plan_folds(cfg.n_splits, subjects, what="target prediction")
    splits = repeated_subject_folds(plan, subjects, None, cfg.n_repeats, cfg.seed)
    model = standardized_ridge()
    it = [(fs, *s) for fs in features for s in splits]
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="target prediction folds", unit="fold")
    rows = []
    for fs, r, f, tr, te in it:
        Xtr, Xte = fs.X[tr], fs.X[te]
        if fs.connectivity is not None:  # the (tangent) reference from the training subjects only
            fc = ConnectivityFeatures(kind=fs.connectivity).fit(Xtr)
            Xtr, Xte = fc.transform(Xtr), fc.transform(Xte)
        m = clone(model).fit(Xtr, y[tr])
        for i, p in zip(te, m.predict(Xte)):
            rows.append({"feature_set": fs.name, "repeat": r, "fold": f, "sample": int(i), "subject": subjects[i],
                         "y_true": float(y[i]), "y_pred": float(p), "alpha": float(m[-1].alpha_)})
    pred = pd.DataFrame(rows)
    summary = []
    for name, g in pred.groupby("feature_set", sort=False):
        per = g.groupby("repeat").apply(lambda d: pd.Series({
            "r": float(np.corrcoef(d["y_true"], d["y_pred"])[0, 1]) if d["y_pred"].std() > 0 else np.nan,
            "mae": float(np.abs(d["y_true"] - d["y_pred"]).mean())}), include_groups=False)
        row: dict[str, Any] = {"feature_set": name, "n_repeats": len(per), "n": len(y)}
        for metric in ("r", "mae"):
            mean, lo, hi = t_interval(per[metric].to_numpy(), clip=RANGES[metric])
            row.update({metric: mean, f"{metric}_ci_low": lo, f"{metric}_ci_high": hi})
        summary.append(row)
    return {"summary": pd.DataFrame(summary), "predictions": pred,
            "cv_notes": [plan.describe("folds")] if plan.adapted else []}


__all__ = ["check_target", "target_association", "predict_target"]
