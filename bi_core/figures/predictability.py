"""Figures of the network-predictability chapter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..cohort import DIAGNOSIS_LEVELS
from . import contrast_order, group_colors, seeded_jitter


def profile(df: pd.DataFrame, colors: Mapping[str, str], value: str = "r2", ax: plt.Axes | None = None,
            order: Sequence[str] | None = None, title: str = "") -> plt.Axes:
    """Per-network distribution of predictability over recordings, networks sorted by the mean.

    Parameters
    ----------
    df
        Predictability table (one row per recording × network).
    """
    import seaborn as sns

    if order is None:
        order = list(df.groupby("network")[value].mean().sort_values(ascending=False).index)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.8))
    sns.boxplot(data=df, x="network", y=value, order=order, hue="network", palette=dict(colors), legend=False,
                fliersize=0, width=0.6, ax=ax, boxprops={"alpha": 0.85})
    with seeded_jitter():
        sns.stripplot(data=df, x="network", y=value, order=order, color="0.15", size=2, alpha=0.35, ax=ax)
    ax.axhline(0, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("")
    ax.set_ylabel("R² of the masked network" if value == "r2" else value)
    ax.set_title(title)
    return ax


#: Legends below the axes (under the network names), never over the points.
LEGEND_BELOW = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.13), "borderaxespad": 0}


def by_group(df: pd.DataFrame, networks: Sequence[str], value: str = "r2", ax: plt.Axes | None = None,
             title: str = "", column: str = "diagnosis", order: Sequence[str] = DIAGNOSIS_LEVELS) -> plt.Axes:
    """Mean predictability per network and group (levels of ``column`` in ``order``) with 95 % bootstrap intervals."""
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.8))
    d = df[df[column].isin(order)]
    sns.pointplot(data=d, x="network", y=value, hue=column, order=list(networks), hue_order=list(order),
                  palette=group_colors(order), dodge=0.45, linestyle="none", errorbar=("ci", 95), seed=0, markers="o",
                  markersize=5, ax=ax)
    ax.set_xlabel("")
    ax.set_ylabel("R² of the masked network" if value == "r2" else value)
    ax.legend(title="", frameon=False, ncols=min(len(order), 4), **LEGEND_BELOW)
    ax.set_title(title)
    return ax


def effect_sizes(diff: pd.DataFrame, networks: Sequence[str], ax: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """Adjusted group differences (MCI−CN, AD−CN: each contrast of the table) per network with 95 % CIs;
    FDR-significant filled."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 3.6))
    contrasts = contrast_order(diff, reverse=True)
    colors = group_colors([c.split("-")[0] for c in contrasts[::-1]])
    offs = np.linspace(-0.15, 0.15, len(contrasts))
    for off, c in zip(offs, contrasts):
        d = diff[diff["contrast"] == c].set_index("network").reindex(list(networks))
        x = np.arange(len(networks)) + off
        col = colors[c.split("-")[0]]
        ax.errorbar(x, d["estimate"], yerr=[d["estimate"] - d["ci_low"], d["ci_high"] - d["estimate"]], fmt="none",
                    ecolor=col, lw=1.2)
        sig = d["significant"].fillna(False).to_numpy(bool)
        ax.scatter(x[sig], d["estimate"][sig], color=col, s=36, zorder=3, label=f"{c} (q < .05)")
        ax.scatter(x[~sig], d["estimate"][~sig], facecolor="white", edgecolor=col, s=36, zorder=3, label=f"{c} (n.s.)")
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_xticks(range(len(networks)), list(networks))
    ax.set_ylabel("adjusted difference in R²")
    ax.legend(frameon=False, fontsize=9, ncols=min(2 * len(contrasts), 4), **LEGEND_BELOW)
    ax.set_title(title)
    return ax


def versus_reference(table: pd.DataFrame, ax: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """Mean predictability per network of the model beside its references, one bar group per network.

    Parameters
    ----------
    table
        One row per network (index, in plotting order), one column per method (e.g. ``model``,
        ``ridge``, ``lagged ridge``, ``generator's expectation``): mean R² on the same recordings.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.6))
    methods = list(table.columns)
    width = 0.8 / max(len(methods), 1)
    x = np.arange(len(table))
    greys = plt.get_cmap("Greys")(np.linspace(0.35, 0.8, max(len(methods) - 1, 1)))
    for i, m in enumerate(methods):
        color = "#c0392b" if i == 0 else greys[i - 1]     # the model first, in colour; references in grey
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, table[m].to_numpy(float), width, label=m, color=color)
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_xticks(x, [str(n) for n in table.index])
    ax.set_ylabel("mean R² of the masked network")
    ax.legend(frameon=False, fontsize=9, ncols=min(len(methods), 4), **LEGEND_BELOW)
    ax.set_title(title)
    return ax
