"""Figures of the longitudinal chapter."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..cohort import DIAGNOSIS_LEVELS
from . import group_colors


def trajectories(df: pd.DataFrame, lines: pd.DataFrame, ax: plt.Axes | None = None, value: str = "marker",
                 title: str = "", baseline: str = "baseline_dx", order: Sequence[str] = DIAGNOSIS_LEVELS) -> plt.Axes:
    """Spaghetti plot of the marker by baseline group, with the mixed model's fitted lines and 95 % bands.

    ``baseline`` is the column of each subject's baseline group (``baseline_<column>`` for
    another group column than diagnosis); ``order`` its levels, the last being the one
    the marker scores.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.3))
    colors = group_colors(order)
    for (g, s), d in df.sort_values("years_from_baseline").groupby([baseline, "subject"]):
        ax.plot(d["years_from_baseline"], d[value], color=colors.get(g, "0.5"), alpha=0.18, lw=0.8)
    for g in order:
        L = lines[lines["group"] == g]
        if L.empty:
            continue
        ax.fill_between(L["years"], L["ci_low"], L["ci_high"], color=colors[g], alpha=0.25, lw=0)
        ax.plot(L["years"], L["fit"], color=colors[g], lw=2.5, label=f"{g} at baseline")
    ax.set_xlabel("years from baseline")
    ax.set_ylabel(f"summary marker (log-odds of {order[-1]})")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)   # beside the data
    ax.set_title(title)
    return ax


def marker_vs_score(df: pd.DataFrame, score: str, ax: plt.Axes | None = None, value: str = "marker",
                    column: str = "diagnosis", order: Sequence[str] = DIAGNOSIS_LEVELS) -> plt.Axes:
    """Marker against a clinical score over all visits, coloured by group (``column``) at the visit."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 4))
    colors = group_colors(order)
    for g in order:
        d = df[df[column] == g]
        ax.scatter(d[value], d[score], s=10, alpha=0.6, color=colors[g], label=g, edgecolor="none")
    ok = df[[value, score]].dropna()
    if len(ok) > 2:
        b = np.polyfit(ok[value], ok[score], 1)
        xs = np.linspace(ok[value].min(), ok[value].max(), 20)
        ax.plot(xs, np.polyval(b, xs), color="0.2", lw=1.2)
    ax.set_xlabel("summary marker")
    ax.set_ylabel({"cdr_sb": "CDR-SB", "mmse": "MMSE"}.get(score, score))
    ax.legend(frameon=False, fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    return ax


def slopes(slopes_df: pd.DataFrame, ax: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """Per-group marker slopes (per year) with 95 % CIs."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 3.2))
    s = slopes_df.reset_index(drop=True)
    mci = {"converting MCI": "#e76f51", "stable MCI": "#e9c46a"}  # converter_trajectories' groups
    palette = group_colors([str(g) for g in s["group"] if str(g) not in mci])
    cols = [mci.get(str(g)) or palette[str(g)] for g in s["group"]]
    y = np.arange(len(s))
    ax.errorbar(s["slope"], y, xerr=[s["slope"] - s["ci_low"], s["ci_high"] - s["slope"]], fmt="none", ecolor="0.3")
    ax.scatter(s["slope"], y, color=cols, s=50, zorder=3)
    ax.axvline(0, color="0.6", lw=0.8)
    ax.set_yticks(y, s["group"])
    ax.invert_yaxis()
    ax.set_xlabel("marker change per year")
    ax.set_title(title)
    return ax
