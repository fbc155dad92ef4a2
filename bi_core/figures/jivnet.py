"""Figures of the joint structural–functional connectivity (CM-JIVNet) chapter."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import readable_heatmap

METHOD_COLORS = {"jivnet": "#CD3E4E", "group_mean": "0.55", "pls": "#4682B4", "ridge": "#00760E",
                 "communicability": "#E69422"}
#: Readable names of the chapter's metrics, methods, directions and feature sets (axes and tables).
LABELS: dict[str, str] = {
    "r": "edge correlation r", "r_dev": "r of deviations from the training mean",
    "r_gain": "gain in r over the group mean", "jivnet": "CM-JIVNet", "group_mean": "group mean", "pls": "PLS",
    "sc_to_fc": "SC → FC", "fc_to_sc": "FC → SC", "joint_from_sc": "joint (from SC)", "joint_from_fc": "joint (from FC)",
    "sc_individual": "SC individual", "fc_individual": "FC individual", "raw_sc": "raw SC", "raw_fc": "raw FC",
}


def method_points(summary: pd.DataFrame, metric: str, directions: Sequence[str] = ("sc_to_fc", "fc_to_sc"),
                  ax: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """Mean and 95 % CI of a reconstruction metric per method, one row per (direction, method)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    d = summary[(summary["metric"] == metric) & summary["direction"].isin(directions)].copy()
    d = d.sort_values(["direction", "mean"], ascending=[True, False]).reset_index(drop=True)
    y = np.arange(len(d))
    for i, r in d.iterrows():
        col = METHOD_COLORS.get(r["method"], "0.3")
        ax.errorbar(r["mean"], i, xerr=[[r["mean"] - r["ci_low"]], [r["ci_high"] - r["mean"]]], fmt="o", color=col,
                    ecolor=col, ms=6)
    ax.set_yticks(y, [f"{r['direction'].replace('_to_', '→').upper()}  {r['method']}" for _, r in d.iterrows()])
    ax.invert_yaxis()
    if metric in ("r_gain", "r_dev"):
        ax.axvline(0, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel(LABELS.get(metric, metric))
    ax.set_title(title)
    return ax


def behaviour_points(summary: pd.DataFrame, ax: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """Behaviour prediction r (mean and CI over folds) per feature set."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.4))
    d = summary[summary["metric"] == "r"].sort_values("mean", ascending=False).reset_index(drop=True)
    for i, r in d.iterrows():
        col = "#CD3E4E" if r["feature_set"].startswith("joint") else "#4682B4" if "individual" in r["feature_set"] else "0.4"
        ax.errorbar(r["mean"], i, xerr=[[r["mean"] - r["ci_low"]], [r["ci_high"] - r["mean"]]], fmt="o", color=col,
                    ecolor=col)
    ax.set_yticks(range(len(d)), d["feature_set"])
    ax.invert_yaxis()
    ax.axvline(0, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("Pearson r (held-out folds)")
    ax.set_title(title)
    return ax


def recovery_matrix(summary: pd.DataFrame, metric: str = "cc_mean", ax: plt.Axes | None = None,
                    title: str = "") -> plt.Axes:
    """Canonical correlation of each learned latent (rows) with each true factor block (columns)."""
    import seaborn as sns

    d = summary[summary["metric"] == metric].pivot_table(index="latent", columns="truth", values="mean")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.6))
    sns.heatmap(d, annot=True, fmt=".2f", cmap="viridis", vmin=0, vmax=1, ax=ax, cbar_kws={"label": metric})
    ax.set_xlabel("true factors")
    ax.set_ylabel("learned latent")
    ax.set_title(title)
    readable_heatmap(ax)
    return ax
