"""Figures of test–retest reliability: estimated ICCs against a planted truth."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D

#: Marker of each measure family in :func:`icc_vs_truth`.
_MARKERS = ("o", "s", "^", "D")


def icc_vs_truth(table: pd.DataFrame, colors: Mapping[str, str], ax: plt.Axes | None = None,
                 title: str = "") -> plt.Axes:
    """Estimated ICC per network (with an interval) against the generator's planted stability.

    Parameters
    ----------
    table
        One row per (measure, network): ``measure`` (legend label), ``network``,
        ``truth`` (planted within-subject stability, the true ICC of the network's
        coherence), ``icc`` and the interval's ``ci_low``, ``ci_high``.
    colors
        Network → colour.

    Returns
    -------
    matplotlib.axes.Axes
        Points coloured by network with their intervals, one marker per measure (name the
        interval in the measure's label), the identity line dotted.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.2))
    measures = list(dict.fromkeys(table["measure"]))
    dodge = 0.012 * (len(measures) - 1)
    for i, (m, g) in enumerate(table.groupby("measure", sort=False)):
        x = g["truth"].to_numpy(float) + (2 * i / max(len(measures) - 1, 1) - 1) * dodge
        ax.errorbar(x, g["icc"], yerr=[g["icc"] - g["ci_low"], g["ci_high"] - g["icc"]], fmt="none", ecolor="0.6",
                    elinewidth=0.8, capsize=0)
        ax.scatter(x, g["icc"], c=[colors.get(n, "0.3") for n in g["network"]], marker=_MARKERS[i % len(_MARKERS)],
                   s=42, edgecolors="0.15", linewidths=0.6, zorder=3)
        if i == 0:
            for xi, yi, n in zip(x, g["icc"], g["network"]):
                # left of the first measure's marker, so the other measures (dodged right) stay clear
                ax.annotate(n, (xi, yi), xytext=(-6, -3), textcoords="offset points", fontsize=8, ha="right")
    ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1)
    ax.set_xlim(-0.05, 1.05)
    ax.set_xlabel("planted within-subject stability (true ICC of the network's coherence)")
    ax.set_ylabel("estimated ICC(3,1)")
    # the legend names the measures by marker (the colours are the networks)
    handles = [Line2D([], [], ls="none", marker=_MARKERS[i % len(_MARKERS)], mfc="white", mec="0.15", label=m)
               for i, m in enumerate(measures)]
    ax.legend(handles=handles, frameon=False, loc="upper left", fontsize=8)
    ax.set_title(title)
    return ax
