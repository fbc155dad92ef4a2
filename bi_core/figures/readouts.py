"""Figures of the read-out study (chapter 4: which read-out recovers the altered couplings)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import contrast_order, network_matrix

#: Marker of each score in :func:`readout_scores`.
METRICS: dict[str, tuple[str, str]] = {"precision": ("o", "precision"), "recall": ("s", "recall"),
                                        "spearman_implied": ("D", "Spearman with implied change")}
#: Tick colour of each read-out family.
FAMILY_COLORS: dict[str, str] = {"attention": "#b2182b", "model": "#2166ac", "reference": "#4d4d4d"}


def readout_scores(scores: pd.DataFrame, order: Sequence[str], labels: Mapping[str, str] | None = None,
                   families: Mapping[str, str] | None = None) -> plt.Figure:
    """Precision, recall and Spearman with the implied change of each read-out, one panel per contrast.

    Parameters
    ----------
    scores
        ``readout, contrast, precision, recall, spearman_implied`` (several seeds are averaged).
    order
        The read-outs, top to bottom (e.g. best first).
    labels
        Read-out → readable name.
    families
        Read-out → family (``attention``, ``model``, ``reference``): colours the tick labels.
    """
    labels = labels or {}
    contrasts = contrast_order(scores)
    # one panel per contrast, stacked: side by side they would be shrunk below readable on the page
    fig, axes = plt.subplots(len(contrasts), 1, figsize=(7.2, (0.42 * len(order) + 1.4) * len(contrasts) + 0.4),
                             sharex=True, squeeze=False)
    axes = axes.T
    y = np.arange(len(order))
    for ax, c in zip(axes[0], contrasts):
        d = scores[scores["contrast"] == c].groupby("readout")[list(METRICS)].mean().reindex(list(order))
        for (m, (marker, name)), off in zip(METRICS.items(), (-0.22, 0.0, 0.22)):
            ax.scatter(d[m], y + off, marker=marker, s=30, label=name, zorder=3)
        ax.axvline(0, color="0.6", lw=0.8)
        ax.set_xlim(-1.05, 1.05)
        ax.set_title(c)
        ax.grid(axis="x", lw=0.4, alpha=0.5)
        ax.set_yticks(y, [labels.get(r, r) for r in order])
        ax.invert_yaxis()
        if families:
            for tick, r in zip(ax.get_yticklabels(), order):
                tick.set_color(FAMILY_COLORS.get(families.get(r, ""), "black"))
    axes[0][-1].set_xlabel("precision, recall (0–1); Spearman (−1–1)")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=len(METRICS), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / fig.get_figheight()))
    return fig


def agreement_heatmap(agree: pd.DataFrame, order: Sequence[str], labels: Mapping[str, str] | None = None,
                      ax: plt.Axes | None = None) -> plt.Axes:
    """Read-out × read-out Spearman agreement (``readout_a, readout_b, spearman``) as a heatmap."""
    labels = labels or {}
    M = agree.pivot(index="readout_a", columns="readout_b", values="spearman").reindex(index=list(order),
                                                                                      columns=list(order))
    if ax is None:
        _, ax = plt.subplots(figsize=(0.38 * len(order) + 3.6, 0.38 * len(order) + 3.2))   # <= 8 in up to 11
    return network_matrix(M.to_numpy(float), [labels.get(r, r) for r in order], ax=ax, vmin=-1, vmax=1,
                          annotate=True, cbar_label="Spearman across cells")
