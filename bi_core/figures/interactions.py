"""Figures of the cross-network interactions chapter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..cohort import DIAGNOSIS_LEVELS
from . import color_limits, contrast_order, matrix_from_table, network_matrix, panel_grid


def group_matrices(mats: Mapping[str, np.ndarray], networks: Sequence[str], colors: Mapping[str, str],
                   label: str = "enrichment", vmin: float | None = None, vmax: float | None = None,
                   order: Sequence[str] = DIAGNOSIS_LEVELS) -> plt.Figure:
    """One target × source matrix per group (``mats``' levels, in ``order``), on a shared colour scale."""
    groups = [g for g in order if g in mats]
    allv = np.concatenate([m[np.isfinite(m)] for m in mats.values()])
    # an enrichment is 1 where attention is flat: centre its colours there, on a diverging map
    center = 1.0 if "enrichment" in label.lower() else None
    vmin, vmax, _ = color_limits(allv, center=center, vmin=vmin, vmax=vmax)
    fig, axes = panel_grid(len(groups), 5.4, 4.6)
    for ax, g in zip(axes, groups):
        network_matrix(mats[g], networks, ax=ax, title=g, cmap="RdBu_r" if center is not None else "viridis",
                       vmin=vmin, vmax=vmax, center=center, colors=colors,
                       cbar_label=label, xlabel="source (visible)", ylabel="target (masked)")
    fig.tight_layout()
    return fig


def difference_maps(diff: pd.DataFrame, networks: Sequence[str], colors: Mapping[str, str], measure: str,
                    value: str = "cohens_d") -> plt.Figure:
    """One difference map per contrast of the table (AD−CN, MCI−CN; adjusted Cohen's d), FDR-significant cells
    boxed with a star."""
    contrasts = contrast_order(diff)
    d = diff[diff["measure"] == measure] if "measure" in diff else diff
    vmin, vmax, _ = color_limits(d[value].to_numpy(float), center=0.0)     # shared, symmetric, outliers clipped
    fig, axes = panel_grid(len(contrasts), 5.4, 4.7)
    for ax, c in zip(axes, contrasts):
        dc = d[d["contrast"] == c]
        M = matrix_from_table(dc, "target", "source", value, networks)
        S = matrix_from_table(dc.assign(sig=dc["significant"].astype(float)), "target", "source", "sig", networks) > 0.5
        network_matrix(M, networks, ax=ax, title=f"{c}: {measure}", vmin=vmin, vmax=vmax, center=0.0, marks=S,
                       colors=colors, cbar_label="adjusted Cohen's d", xlabel="source (visible)",
                       ylabel="target (masked)")
    fig.tight_layout()
    return fig


def network_graph(diff: pd.DataFrame, networks: Sequence[str], colors: Mapping[str, str], measure: str,
                  contrast: str = "AD-CN", truth_pairs: Sequence[Sequence[str]] = (), ax: plt.Axes | None = None,
                  value: str = "cohens_d") -> plt.Axes:
    """Circular graph of significant changes: one edge per network pair with a significant cell.

    Edge width ∝ |effect| of the most significant direction; red = increase, blue = decrease;
    pairs altered in the generator's truth are drawn as dashed grey arcs underneath.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    K = len(networks)
    ang = np.pi / 2 - 2 * np.pi * np.arange(K) / K
    pos = {n: (np.cos(a), np.sin(a)) for n, a in zip(networks, ang)}
    for a, b in truth_pairs:
        if a in pos and b in pos:
            ax.plot(*zip(pos[a], pos[b]), color="0.75", lw=7, ls="-", alpha=0.45, zorder=1, solid_capstyle="round")
    d = diff[(diff["contrast"] == contrast) & diff["significant"].fillna(False).astype(bool)]
    if "measure" in d:
        d = d[d["measure"] == measure]
    seen = {}
    for _, r in d.sort_values("q").iterrows():
        key = frozenset((r["target"], r["source"]))
        if key not in seen:
            seen[key] = r
    for key, r in seen.items():
        a, b = tuple(key)
        col = "#c0392b" if r[value] > 0 else "#2471a3"
        ax.plot(*zip(pos[a], pos[b]), color=col, lw=1 + 2.5 * min(abs(r[value]), 2), zorder=2, solid_capstyle="round")
    for n, (x, y) in pos.items():
        ax.scatter([x], [y], s=900, color=colors.get(n, "0.5"), zorder=3, edgecolor="white", lw=2)
        ax.text(x, y, n, ha="center", va="center", color="white", fontsize=9, fontweight="bold", zorder=4)
    ax.plot([], [], color="#c0392b", lw=3, label="increase")
    ax.plot([], [], color="#2471a3", lw=3, label="decrease")
    if truth_pairs:
        ax.plot([], [], color="0.75", lw=7, alpha=0.45, label="altered in the truth")
    ax.legend(frameon=False, loc="lower center", bbox_to_anchor=(0.5, -0.12), ncols=3, fontsize=8)
    ax.set_xlim(-1.35, 1.35)
    ax.set_ylim(-1.35, 1.35)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"{contrast}: significant changes ({measure})")
    return ax


def attention_vs_occlusion(A: np.ndarray, O: np.ndarray, networks: Sequence[str], colors: Mapping[str, str],
                           ax: plt.Axes | None = None, xlabel: str = "attention enrichment") -> plt.Axes:
    """Scatter of group-mean attention against occlusion ΔR², one point per (target, source) cell."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    K = len(networks)
    for m in range(K):
        for n in range(K):
            if m != n and np.isfinite(A[m, n]) and np.isfinite(O[m, n]):
                ax.scatter(A[m, n], O[m, n], color=colors.get(networks[m], "0.5"), s=28, edgecolor="white", lw=0.5)
    for m, net in enumerate(networks):
        ax.scatter([], [], color=colors.get(net, "0.5"), label=net, s=28)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xlabel(f"{xlabel} (target ← source)")
    ax.set_ylabel("occlusion ΔR² (target | source hidden)")
    ax.legend(title="target", frameon=False, fontsize=7, ncols=2)
    return ax
