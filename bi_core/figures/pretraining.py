"""Figures of the pretraining chapter."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def loss_curves(metrics: pd.DataFrame, zero_loss: float | None = None, ax: plt.Axes | None = None,
                title: str = "") -> plt.Axes:
    """Training and held-out reconstruction loss per epoch, with the predict-zero baseline.

    Parameters
    ----------
    metrics
        ``metrics.jsonl`` of a run as a table (``epoch``, ``train_loss``, ``val_loss``
        and optionally ``val_zero_loss``).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot(metrics["epoch"], metrics["train_loss"], label="training", color="#457b9d", lw=1.8)
    if "val_loss" in metrics:
        ax.plot(metrics["epoch"], metrics["val_loss"], label="held-out subjects", color="#e76f51", lw=1.8)
    z = zero_loss if zero_loss is not None else (metrics["val_zero_loss"].dropna().iloc[-1]
                                                 if "val_zero_loss" in metrics and metrics["val_zero_loss"].notna().any()
                                                 else None)
    if z is not None:
        ax.axhline(z, ls="--", color="0.4", lw=1, label="predict zero (held-out)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("masked-token MSE (z-scored units)")
    ax.legend(frameon=False)
    ax.set_title(title)
    return ax


def reconstruction(true: np.ndarray, pred: np.ndarray, roi_names: list[str], tr: float, color: str = "#CD3E4E",
                   n_rois: int = 4, axes: np.ndarray | None = None, title: str = "") -> plt.Figure:
    """True vs reconstructed series of a masked network's ROIs (one panel per ROI).

    Parameters
    ----------
    true, pred
        ``[n_rois_in_network, T]`` z-scored values.
    tr
        Repetition time (s) of the window.
    """
    k = min(n_rois, true.shape[0])
    if axes is None:
        fig, axes = plt.subplots(k, 1, figsize=(7.5, 1.35 * k + 0.6), sharex=True, squeeze=False)
        axes = axes[:, 0]
    fig = axes[0].figure
    t = np.arange(true.shape[1]) * tr
    for i, ax in enumerate(axes[:k]):
        ax.plot(t, true[i], color="0.25", lw=1.2, label="true (masked)")
        ax.plot(t, pred[i], color=color, lw=1.6, label="reconstruction")
        r = np.corrcoef(true[i], pred[i])[0, 1]
        ax.set_ylabel(roi_names[i], rotation=0, ha="right", va="center", fontsize=8)
        ax.text(0.99, 0.9, f"r = {r:.2f}", transform=ax.transAxes, ha="right", va="top", fontsize=8)
        ax.set_yticks([])
    axes[0].legend(frameon=False, ncols=2, loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=8)
    axes[k - 1].set_xlabel("time within window (s)")
    if title:
        fig.suptitle(title, y=1.02)
    fig.tight_layout()
    return fig


def config_table(cfg: dict, prefix: str = "") -> pd.DataFrame:
    """Flatten a nested config dict into a two-column table (long lists summarized)."""
    rows = []
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows.extend(config_table(v, prefix=f"{key}.").itertuples(index=False, name=None))
        elif isinstance(v, (list, tuple)) and len(v) > 8:
            rows.append((key, f"[{len(v)} values]"))
        else:
            rows.append((key, str(v)))
    return pd.DataFrame(rows, columns=["setting", "value"])


def learning_curve(curve: pd.DataFrame, ax: plt.Axes | None = None, title: str = "") -> plt.Axes:
    """Held-out mean R² over networks of each weight snapshot against training steps, the linear
    references as horizontal lines.

    Parameters
    ----------
    curve
        The table of :func:`bi_core.analysis.learning_curve.learning_curve` (``method``,
        ``step``, ``network``, ``r2``).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.8))
    m = curve[curve["method"] == "model"].groupby("step")["r2"].mean()
    ax.plot(m.index.to_numpy(float), m.to_numpy(float), marker="o", color="#c0392b", lw=1.8, label="BrainInterNet")
    styles = {"ridge": ("0.25", "--"), "lagged-ridge": ("0.55", ":")}
    parts = {"model: linear path": ("#2471a3", "s", "its linear path alone"),
             "model: decoder": ("#7d3c98", "^", "its cross-attention decoder alone")}
    for method, r2 in curve[curve["method"] != "model"].groupby("method")["r2"].mean().items():
        if method in parts:  # the last snapshot's parts, as points at its step
            color, marker, label = parts[method]
            step = curve.loc[curve["method"] == method, "step"].astype(float).max()
            ax.plot([step], [float(r2)], marker=marker, color=color, ls="none", ms=7, label=label)
            continue
        color, ls = styles.get(method, ("0.4", "-."))
        ax.axhline(float(r2), color=color, ls=ls, lw=1.4, label=f"{method} (same recordings)")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out mean R² over networks")
    ax.legend(frameon=False, fontsize=8)
    ax.set_title(title)
    return ax
