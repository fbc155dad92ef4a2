"""Scores of held-out subjects and their summaries: per-subject correlations, canonical correlations,
mean ± CI tables (correlations in Fisher-z space) and the headline numbers of a study."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ...stats import mean_ci

#: Metrics that are correlations: summarised in Fisher-z space.
CORRELATION_METRICS = frozenset({"r", "r_dev", "cc_first", "cc_mean"})


def summarise(df: pd.DataFrame, by: list[str], metrics: list[str], level: float = 0.95) -> pd.DataFrame:
    """Tidy summary: one row per group × metric with ``n``, ``mean``, ``sd``, ``ci_low``, ``ci_high``.

    Correlation metrics (:data:`CORRELATION_METRICS`) are averaged via Fisher z; ``sd`` is
    always the plain SD of the values.
    """
    rows = []
    for key, g in df.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        for met in metrics:
            v = g[met].to_numpy(float)
            m, lo, hi = mean_ci(v, level, fisher=met in CORRELATION_METRICS)
            fin = v[np.isfinite(v)]
            rows.append({**dict(zip(by, key)), "metric": met, "n": len(fin), "mean": m,
                         "sd": float(fin.std(ddof=1)) if len(fin) > 1 else math.nan, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def row_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between matching rows of ``a`` and ``b`` ``[N, E]`` (NaN for a constant row)."""
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    den = np.sqrt((a ** 2).sum(1) * (b ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(1) / den
    return np.where(den > 1e-12, r, np.nan)


def canonical_correlations(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                           reg: float = 1e-3) -> np.ndarray:
    """Out-of-sample canonical correlations: CCA fitted on train, correlations on test.

    Parameters
    ----------
    x_train, x_test : ndarray, ``[N, p]``
    y_train, y_test : ndarray, ``[N, q]``
    reg
        Ridge added to each covariance, as a fraction of its mean variance (keeps a
        collapsed latent dimension from blowing up the whitening).

    Returns
    -------
    ndarray, ``[min(p, q)]``
        Test-set correlation of each canonical pair, in the training order (largest first).
    """
    def inv_sqrt(c: np.ndarray) -> np.ndarray:
        c = c + reg * max(float(np.trace(c)) / len(c), 1e-12) * np.eye(len(c))
        w, v = np.linalg.eigh(c)
        return (v / np.sqrt(w)) @ v.T

    mx, my = x_train.mean(0), y_train.mean(0)
    xc, yc = x_train - mx, y_train - my
    n = len(xc) - 1
    wx, wy = inv_sqrt(xc.T @ xc / n), inv_sqrt(yc.T @ yc / n)
    u, _, vt = np.linalg.svd(wx @ (xc.T @ yc / n) @ wy)
    k = min(x_train.shape[1], y_train.shape[1])
    a, b = wx @ u[:, :k], wy @ vt.T[:, :k]
    px, py = (x_test - mx) @ a, (y_test - my) @ b
    return row_corr(px.T, py.T)


def summarise_reconstruction(rec: pd.DataFrame) -> pd.DataFrame:
    """Mean ± CI over held-out subjects of ``r``, ``r_dev`` and ``r_gain`` (paired r − group-mean r)."""
    base = rec[rec["method"] == "group_mean"].set_index(["direction", "subject"])["r"]
    rec = rec.assign(r_gain=rec["r"].to_numpy() - base.reindex(
        pd.MultiIndex.from_frame(rec[["direction", "subject"]])).to_numpy())
    return summarise(rec, ["direction", "method"], ["r", "r_dev", "r_gain"])


def summarise_recovery(recov: pd.DataFrame) -> pd.DataFrame:
    """Per latent × truth: first canonical r and mean over components, mean ± CI over folds."""
    first = recov[recov["component"] == 1].groupby(["fold", "latent", "truth"], sort=False)["r"].mean()
    allc = recov.groupby(["fold", "latent", "truth"], sort=False)["r"].mean()
    per_fold = pd.DataFrame({"cc_first": first, "cc_mean": allc}).reset_index()
    return summarise(per_fold, ["latent", "truth"], ["cc_first", "cc_mean"])


def headline(tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Headline numbers for the JSON summary: mean [CI] per direction × method (and feature set)."""
    out: dict[str, Any] = {}
    s = tables["reconstruction_summary"]
    for (d, m), g in s.groupby(["direction", "method"], sort=False):
        out.setdefault("reconstruction", {}).setdefault(d, {})[m] = {
            row.metric: [row.mean, row.ci_low, row.ci_high] for row in g.itertuples()}
    if "behaviour_summary" in tables:
        b = tables["behaviour_summary"]
        for fs, g in b.groupby("feature_set", sort=False):
            out.setdefault("behaviour", {})[fs] = {row.metric: [row.mean, row.ci_low, row.ci_high]
                                                   for row in g.itertuples()}
    if "recovery_summary" in tables:
        r = tables["recovery_summary"]
        r = r[r["metric"] == "cc_mean"]
        out["recovery_cc_mean"] = {f"{row.latent}~{row.truth}": row.mean for row in r.itertuples()}
    return out
