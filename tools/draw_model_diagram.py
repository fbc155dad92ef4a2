"""Draw the BrainInterNet schematic for the methods page (book/images/braininternet.svg).

    python tools/draw_model_diagram.py

Deterministic (fixed seed for the toy signals); the SVG is committed.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle  # noqa: E402

from bi_core.atlas import NETWORK_COLORS  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "book" / "images" / "braininternet.svg"


def box(ax, x, y, w, h, text, fc, ec="0.25", fs=9):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=fc, ec=ec, lw=1.2))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fs)


def arrow(ax, a, b):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12, lw=1.3, color="0.25"))


def main() -> None:
    plt.rcParams["svg.hashsalt"] = "bi_core"
    plt.rcParams["svg.fonttype"] = "none"
    fig, ax = plt.subplots(figsize=(11, 4.6))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 4.6)
    ax.axis("off")
    nets = ["VIS", "SMN", "DAN", "VAN", "LIM", "FPN", "DMN"]
    masked = "DMN"
    # token grid: rows = ROIs grouped by network, columns = time patches
    x0, y0, cw, ch = 0.2, 0.55, 0.32, 0.16
    rng = np.random.default_rng(1)
    row = 0
    for net in nets:
        for _ in range(3):
            for p in range(4):
                c = NETWORK_COLORS[net]
                is_m = net == masked
                ax.add_patch(Rectangle((x0 + p * cw, y0 + row * ch), cw * 0.92, ch * 0.85, fc="white" if is_m else c,
                                       ec=c, lw=1, hatch="////" if is_m else None, alpha=1 if is_m else 0.75))
            row += 1
        ax.text(x0 - 0.05, y0 + (row - 1.5) * ch, net, ha="right", va="center", fontsize=7, color=NETWORK_COLORS[net],
                fontweight="bold")
    ax.text(x0 + 2 * cw, y0 - 0.25, "tokens: ROI × patch of P frames", ha="center", fontsize=8)
    ax.text(x0 + 2 * cw, y0 + row * ch + 0.12, f"{masked} masked at every patch", ha="center", fontsize=8)
    # toy waveform of one patch
    t = np.linspace(0, 1, 30)
    ax.plot(1.75 + 0.5 * t, 3.95 + 0.08 * np.sin(6 * t) + 0.03 * rng.normal(size=30), color="0.3", lw=1)
    box(ax, 2.0, 2.3, 1.9, 0.8, "embed visible tokens\nLinear(P, d) + ROI +\nnetwork + time (sin-cos)", "#f1faee")
    box(ax, 4.3, 2.3, 1.9, 0.8, "encoder\npre-LN transformer\nvisible tokens only", "#a8dadc")
    box(ax, 2.0, 0.8, 1.9, 0.8, "queries: mask token +\nROI + network + time\n(one per masked token)", "#fde2e4")
    box(ax, 6.6, 1.45, 2.1, 1.0, "decoder\ncross-attention → MLP\n(no self-attention\namong queries)", "#ffd6a5")
    box(ax, 9.1, 1.55, 1.6, 0.8, "Linear(d, P)\nreconstruction\nMSE on masked", "#caffbf")
    arrow(ax, (1.6, 2.7), (2.0, 2.7))
    arrow(ax, (1.6, 1.2), (2.0, 1.2))
    arrow(ax, (3.9, 2.7), (4.3, 2.7))
    arrow(ax, (6.2, 2.7), (6.6, 2.2))
    arrow(ax, (3.9, 1.2), (6.6, 1.7))
    arrow(ax, (8.7, 1.95), (9.1, 1.95))
    ax.text(7.65, 3.05, "attention weights [layer, head, query, key]\n→ interaction maps (target ← source)",
            ha="center", fontsize=8, style="italic")
    ax.text(9.9, 1.0, "R² per network\n→ predictability", ha="center", fontsize=8, style="italic")
    ax.text(5.25, 3.35, "mean-pool → embedding\n(unmasked windows)", ha="center", fontsize=8, style="italic")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, bbox_inches="tight", metadata={"Date": None})
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
