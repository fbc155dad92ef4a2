"""Figures of the cohorts chapter."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..atlas import NetworkAtlas
from ..cohort import DIAGNOSIS_LEVELS
from ..descriptives import STAT_LABELS
from . import group_colors, panel_grid, seeded_jitter


def example_series(x: np.ndarray, atlas: NetworkAtlas, tr: float, per_network: int = 2, seconds: float | None = 300,
                   ax: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """Stacked traces of a few ROIs per network, coloured by network.

    Parameters
    ----------
    x
        ``[n_frames, n_rois]`` z-scored series.
    tr
        Repetition time (s), for the time axis.
    """
    x = np.asarray(x)
    n = x.shape[0] if seconds is None else min(x.shape[0], int(seconds / tr))
    t = np.arange(n) * tr
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.32 * per_network * atlas.n_networks + 1.2))
    k = 0
    ticks, labels = [], []
    for net in atlas.networks:
        for r in atlas.rois_of(net)[:per_network]:
            ax.plot(t, x[:n, r] * 0.35 - 1.2 * k, color=atlas.colors[net], lw=0.8)
            ticks.append(-1.2 * k)
            labels.append(f"{net} · {atlas.roi_names[r]}")
            k += 1
    ax.set_yticks(ticks, labels, fontsize=7)
    ax.set_xlabel("time (s)")
    ax.set_title(title)
    ax.spines["left"].set_visible(False)
    return ax


def visit_structure(table: pd.DataFrame, ax: plt.Axes | None = None, column: str = "diagnosis",
                    levels: Sequence[str] = DIAGNOSIS_LEVELS) -> plt.Axes:
    """Follow-up of the evaluation cohort: one line per subject, visits as dots coloured by group (``column``)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    t = table.copy()
    base = t.sort_values("years_from_baseline").groupby("subject").first()[column]
    order = t.groupby("subject")["years_from_baseline"].max().sort_values(kind="stable")
    rank = {g: i for i, g in enumerate(levels)}
    subjects = sorted(order.index, key=lambda s: (rank.get(base[s], len(rank)), order[s]))
    colors = group_colors(levels)
    ypos = {s: i for i, s in enumerate(subjects)}
    for s, g in t.groupby("subject"):
        y = ypos[s]
        ax.plot(g["years_from_baseline"], [y] * len(g), color="0.8", lw=0.6, zorder=1)
        ax.scatter(g["years_from_baseline"], [y] * len(g), c=[colors.get(d, "0.5") for d in g[column]], s=6,
                   zorder=2, linewidths=0)
    for d in levels:
        ax.scatter([], [], c=colors[d], s=20, label=d)
    ax.legend(title=f"{column} at visit", frameon=False, loc="lower right")
    ax.set_xlabel("years from baseline")
    ax.set_ylabel(f"subjects (sorted by baseline {column})")
    ax.set_yticks([])
    return ax


def summary_comparison(df: pd.DataFrame, stats: tuple[str, ...] = ("within_fc", "between_fc", "fc_contrast",
                                                                  "pc1_share", "lag1_autocorr", "lowfreq_power"),
                       hue: str = "source") -> plt.Figure:
    """Side-by-side distributions of per-recording summary statistics, one panel per statistic."""
    import seaborn as sns

    fig, axes = panel_grid(len(stats), 2.6, 3.2)
    for ax, s in zip(axes, stats):
        sns.boxplot(data=df, x=hue, y=s, ax=ax, hue=hue, legend=False, fliersize=0, width=0.6,
                    palette="Set2")
        with seeded_jitter():
            sns.stripplot(data=df, x=hue, y=s, ax=ax, color="0.2", size=2.5, alpha=0.6)
        ax.set_title(STAT_LABELS.get(s, s), fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", rotation=30, labelsize=9)
    fig.tight_layout()
    return fig


def atlas_purity(atlas, ax: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """ROIs per network, each ROI a dot at its purity (share of its vertices/voxels in its network)."""
    if atlas.purity is None:
        raise ValueError(f"atlas {atlas.name!r} has no purity column.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.2))
    rng = np.random.default_rng(0)
    for k, net in enumerate(atlas.networks):
        idx = atlas.rois_of(net)
        ax.scatter(np.full(len(idx), k) + rng.uniform(-0.18, 0.18, len(idx)), atlas.purity[idx], color=atlas.colors[net],
                   s=22, edgecolor="white", lw=0.4)
        ax.text(k, 1.04, str(len(idx)), ha="center", fontsize=8)
    ax.set_xticks(range(atlas.n_networks), atlas.networks)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("purity")
    ax.set_title(title)
    return ax
