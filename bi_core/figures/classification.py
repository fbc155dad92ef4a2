"""Figures of the classification chapter."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from . import readable_heatmap

FEATURE_COLORS = {"BrainInterNet embedding": "#CD3E4E", "embedding (untrained encoder)": "#9E9E9E",
                  "embedding (mean-pooled)": "#F4A3A8", "predictability profile": "#E69422",
                  "interaction matrix": "#781286", "ridge predictability profile": "#8C6D31", "FC correlation": "#4682B4",
                  "FC tangent": "#00760E"}


def roc(roc_df: pd.DataFrame, summary: pd.DataFrame | None = None, ax: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """Mean ROC curve per feature set (± SD over CV repeats), AUC in the legend."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 5))
    aucs = summary.set_index("feature_set")["auc"] if summary is not None else {}
    for fs, g in roc_df.groupby("feature_set", sort=False):
        col = FEATURE_COLORS.get(fs)
        lab = f"{fs} (AUC {aucs[fs]:.2f})" if fs in aucs else fs
        ax.plot(g["fpr"], g["tpr"], color=col, lw=1.8, label=lab)
        ax.fill_between(g["fpr"], (g["tpr"] - g["tpr_sd"]).clip(0, 1), (g["tpr"] + g["tpr_sd"]).clip(0, 1), color=col,
                        alpha=0.12, lw=0)
    ax.plot([0, 1], [0, 1], ls=":", color="0.5")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    # below the axes, not over the curves (beside them it would squeeze a stacked panel's width)
    ax.legend(frameon=False, fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.17), borderaxespad=0)
    ax.set_title(title)
    return ax


def metric_bars(summary: pd.DataFrame, metric: str = "auc", ax: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """Feature sets side by side: the metric and its ``<metric>_ci_low``/``_ci_high`` interval.

    The classification tables hold the metric of the out-of-fold predictions pooled over CV
    repeats and its subject-bootstrap interval (:func:`bi_core.analysis.classify.score_predictions`).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    s = summary.reset_index(drop=True)
    y = range(len(s))
    ax.barh(list(y), s[metric], color=[FEATURE_COLORS.get(f, "0.5") for f in s["feature_set"]], alpha=0.85)
    ax.errorbar(s[metric], list(y), xerr=[s[metric] - s[f"{metric}_ci_low"], s[f"{metric}_ci_high"] - s[metric]],
                fmt="none", ecolor="0.2", lw=1)
    ax.set_yticks(list(y), s["feature_set"])
    ax.invert_yaxis()
    ax.set_xlabel(metric.replace("_", " "))
    ax.set_title(title)
    return ax


def confusion_matrix(M: pd.DataFrame, ax: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """Row-normalized confusion matrix (true × predicted)."""
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.6))
    sns.heatmap(M, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1, cbar=False, ax=ax, square=True)
    ax.set_title(title)
    readable_heatmap(ax)
    return ax
