"""Figures of the related-systems chapters: the masking study (seed 002) and LMAE → RWMOE → SSM (seed 001).

Every function takes the tidy tables written by :mod:`bi_core.related` (never paths).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..mask_strategies import STRATEGIES
from . import panel_grid, readable_heatmap, sig2

REFERENCE_COLOR = "0.45"


def strategy_color(strategy: str, default: str | None = None) -> str | None:
    """A masking strategy's display colour (its ``color`` in :data:`~bi_core.masking.STRATEGIES`), else ``default``."""
    s = STRATEGIES.get(strategy)
    return (s.color if s is not None else None) or default


def _strategies(df: pd.DataFrame) -> list[str]:
    present = set(df["strategy"])
    return [s for s in STRATEGIES if s in present]


# ---------------------------------------------------------------------- masking study
def mask_fractions(fractions: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Realized masked share per strategy (mean ± SD over draws, range as a thin line) against the target."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.2))
    strat = _strategies(fractions)
    f = fractions.set_index("strategy").loc[strat]
    x = np.arange(len(strat))
    ax.vlines(x, f["realized_min"], f["realized_max"], color="0.6", lw=1)
    ax.errorbar(x, f["realized_mean"], yerr=f["realized_sd"], fmt="none", ecolor="black", capsize=4, lw=1.4)
    ax.scatter(x, f["realized_mean"], c=[strategy_color(s, "C0") for s in strat], s=60, zorder=3,
               label="realized (mean ± SD)")
    ax.scatter(x, f["expected"], marker="_", s=300, color="black", zorder=4, label="expected")
    ax.axhline(float(f["target"].iloc[0]), color="0.3", ls=":", lw=1, label="target (network share)")
    ax.set_xticks(x, [s.replace("_", "\n") for s in strat])
    ax.set_ylabel("share of tokens masked")
    ax.set_ylim(0, None)
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    return ax


def strategy_panels(metrics: pd.DataFrame, names: Sequence[str], labels: Mapping[str, str],
                    higher_is_better: Mapping[str, bool] | None = None, ncols: int = 2,
                    reference: Mapping[str, float] | None = None) -> plt.Figure:
    """One panel per metric: every seed as a dot and the mean ± SD over seeds per strategy.

    Parameters
    ----------
    metrics
        Tidy ``seed, strategy, metric, value`` (rows without a seed are references).
    names
        Metrics to draw, in order.
    labels
        Metric → panel title.
    higher_is_better
        Metric → direction (an arrow in the title).
    reference
        Metric → a value drawn as a dashed line (e.g. FC correlation).
    """
    names = [m for m in names if m in set(metrics["metric"])]
    nrows = max(1, -(-len(names) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.9 * nrows), squeeze=False)
    d = metrics[metrics["seed"].notna()]
    strat = _strategies(d)
    rng = np.random.default_rng(0)  # fixed jitter
    for ax, m in zip(axes.flat, names):
        g = d[d["metric"] == m]
        for i, s in enumerate(strat):
            v = g.loc[g["strategy"] == s, "value"].astype(float).to_numpy()
            v = v[np.isfinite(v)]
            col = strategy_color(s, f"C{i}")
            if len(v):
                ax.scatter(i + rng.uniform(-0.12, 0.12, len(v)), v, color=col, s=16, alpha=0.7, zorder=2)
                ax.errorbar(i + 0.25, v.mean(), yerr=v.std(ddof=1) if len(v) > 1 else 0, fmt="o", color=col,
                            ms=6, capsize=3, zorder=3)
        if reference and m in reference and np.isfinite(reference[m]):
            ax.axhline(reference[m], color=REFERENCE_COLOR, ls="--", lw=1)
            ax.text(len(strat) - 0.5, reference[m], "FC", va="bottom", ha="right", fontsize=8, color=REFERENCE_COLOR)
        arrow = "" if higher_is_better is None or m not in higher_is_better else (
            " (↑)" if higher_is_better[m] else " (↓)")
        ax.set_title(textwrap.fill(labels.get(m, m) + arrow, 40), fontsize=9)
        ax.set_xticks(range(len(strat)), [s.replace("_", "\n") for s in strat], fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def reconstruction_matrix(recon: pd.DataFrame) -> pd.DataFrame:
    """Mean held-out error over seeds, trained strategy (rows) × evaluation masking (columns)."""
    strat = _strategies(recon)
    cols = [s for s in STRATEGIES if s in set(recon["eval_mask"])]
    M = recon.pivot_table(index="strategy", columns="eval_mask", values="nmse", aggfunc="mean")
    return M.reindex(index=strat, columns=cols)


def reconstruction_heatmap(recon: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Heatmap of :func:`reconstruction_matrix` (error relative to predicting zero; lower is better)."""
    M = reconstruction_matrix(recon)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 4.2))
    im = ax.imshow(M.to_numpy(), cmap="viridis_r")
    ax.set_xticks(range(M.shape[1]), [c.replace("_", "\n") for c in M.columns], fontsize=8)
    ax.set_yticks(range(M.shape[0]), list(M.index), fontsize=8)
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            ax.text(j, i, f"{M.iat[i, j]:.3f}", ha="center", va="center", fontsize=8,
                    color="white" if M.iat[i, j] < np.nanmean(M.to_numpy()) else "black")
    ax.set_xlabel("evaluated under masking")
    ax.set_ylabel("pretrained with masking")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="MSE / predict-zero MSE")
    readable_heatmap(ax)
    return ax


# ---------------------------------------------------------------------- LMAE → RWMOE → SSM
def regression_results(results: pd.DataFrame, target: str, axes: Sequence[plt.Axes] | None = None,
                       reference_dataset: str | None = None) -> Sequence[plt.Axes]:
    """MAE and Pearson r with 95 % intervals per method for one target; the reference row (another
    dataset) is drawn grey, below a line, with no interval."""
    r = results[results["target"] == target].reset_index(drop=True)
    if r.empty:
        raise ValueError(f"no results for target {target!r}")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(7.8, 0.55 * len(r) + 1.4), sharey=True)
    is_ref = (r["dataset"] == reference_dataset).to_numpy() if reference_dataset else np.zeros(len(r), bool)
    order = np.r_[np.flatnonzero(~is_ref), np.flatnonzero(is_ref)]
    r, is_ref = r.iloc[order].reset_index(drop=True), is_ref[order]
    y = np.arange(len(r))[::-1].astype(float)
    for ax, m, lab in zip(axes, ("mae", "r"), ("mean absolute error", "Pearson r")):
        for i in range(len(r)):
            col = REFERENCE_COLOR if is_ref[i] else f"C{i}"
            v = r.loc[i, m]
            lo, hi = r.loc[i, f"{m}_ci_low"] if f"{m}_ci_low" in r else np.nan, \
                r.loc[i, f"{m}_ci_high"] if f"{m}_ci_high" in r else np.nan
            if np.isfinite(lo) and np.isfinite(hi):
                ax.hlines(y[i], lo, hi, color=col, lw=2)
            ax.scatter([v], [y[i]], color=col, marker="D" if is_ref[i] else "o", s=40, zorder=3)
        if is_ref.any():
            ax.axhline(y[is_ref].max() + 0.5, color="0.7", lw=0.8, ls="--")
        if m == "mae" and "mae_predict_mean" in r and r["mae_predict_mean"].notna().any():
            ax.axvline(float(r["mae_predict_mean"].dropna().iloc[0]), color="0.5", ls=":", lw=1)
        if m == "r":
            ax.axvline(0, color="0.5", ls=":", lw=1)
        ax.set_xlabel(lab)
    labels = [f"{meth}\n[{ds}]" if ref else meth for meth, ds, ref in zip(r["method"], r["dataset"], is_ref)]
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].set_title(f"{target}: error (dotted: predicting the training mean)", fontsize=9)
    axes[1].set_title(f"{target}: correlation", fontsize=9)
    return axes


def predicted_vs_true(predictions: pd.DataFrame, target: str, methods: Sequence[str],
                      axes: Sequence[plt.Axes] | None = None) -> Sequence[plt.Axes]:
    """Out-of-fold predictions against the truth, one panel per method (identity line dashed)."""
    if axes is None:
        _, axes = panel_grid(len(methods), 2.6, 2.7)
    p = predictions[predictions["target"] == target]
    lo, hi = p[["y_true", "y_pred"]].min().min(), p[["y_true", "y_pred"]].max().max()
    for i, (ax, m) in enumerate(zip(axes, methods)):
        g = p[p["method"] == m]
        ax.scatter(g["y_true"], g["y_pred"], s=10, alpha=0.6, color=f"C{i}")
        ax.plot([lo, hi], [lo, hi], color="0.5", ls="--", lw=0.8)
        ax.set_title(m, fontsize=8)
        ax.set_xlabel(f"true {target}")
    axes[0].set_ylabel(f"predicted {target}")
    return axes


def expert_network_matrix(weights: pd.DataFrame, target: str, networks: Sequence[str]) -> pd.DataFrame:
    """Mean router weight of each network's ROIs for each expert, ``[networks × experts]`` (rows sum to one)."""
    w = weights[weights["target"] == target]
    if w.empty:
        raise ValueError(f"no expert weights for target {target!r}")
    M = w.pivot_table(index="network", columns="expert", values="weight", aggfunc="mean")
    return M.reindex(index=[n for n in networks if n in M.index])


def expert_heatmap(weights: pd.DataFrame, target: str, networks: Sequence[str], ax: plt.Axes | None = None,
                   colors: Mapping[str, str] | None = None) -> plt.Axes:
    """Heatmap of :func:`expert_network_matrix` with the weights printed in the cells."""
    M = expert_network_matrix(weights, target, networks)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.8 * M.shape[1] + 2.2, 0.42 * M.shape[0] + 1.2))
    im = ax.imshow(M.to_numpy(), cmap="magma", vmin=0, vmax=max(0.5, float(np.nanmax(M.to_numpy()))))
    ax.set_xticks(range(M.shape[1]), [f"E{e}" for e in M.columns])
    ax.set_yticks(range(M.shape[0]), list(M.index))
    if colors:
        for t in ax.get_yticklabels():
            t.set_color(colors.get(t.get_text(), "black"))
            t.set_fontweight("bold")
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            ax.text(j, i, sig2(M.iat[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if M.iat[i, j] < 0.6 * np.nanmax(M.to_numpy()) else "black")
    ax.set_xlabel("expert")
    ax.set_title(f"{target}: mean router weight per network", fontsize=9)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    readable_heatmap(ax)
    return ax
