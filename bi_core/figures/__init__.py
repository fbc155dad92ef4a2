"""Figure functions, one module per chapter; shared helpers here.

Every function takes tidy tables or arrays (never paths), draws on a given or new
matplotlib axes and returns the figure/axes, so notebooks stay one call per figure and
the logic is tested in ``tests/test_figures.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..cohort import DIAGNOSIS_LEVELS

DX_COLORS: dict[str, str] = dict(zip(DIAGNOSIS_LEVELS, ("#2a9d8f", "#e9c46a", "#e76f51")))
#: Colours of other group levels, in the order the levels come.
GROUP_PALETTE: tuple[str, ...] = ("#264653", "#e76f51", "#2a9d8f", "#e9c46a", "#8d5b9e", "#f4a261", "#6c757d",
                                  "#3a86ff")


def group_colors(levels: Sequence[str]) -> dict[str, str]:
    """A colour per group level: the book's CN/MCI/AD colours, else :data:`GROUP_PALETTE` in order."""
    out, k = {}, 0
    for g in levels:
        if g in DX_COLORS:
            out[g] = DX_COLORS[g]
        else:
            out[g] = GROUP_PALETTE[k % len(GROUP_PALETTE)]
            k += 1
    return out


#: Width (in) of the book's text column at 96 CSS px/in: a wider figure is shrunk to it.
PAGE_WIDTH_IN = 7.5
#: Smallest tick label (pt) as the book shows it; cell annotations aim at this too, within their cell.
MIN_FONT_PT = 8.0


def page_scale(fig: plt.Figure) -> float:
    """How much the book scales a figure's text: wider than the page it shrinks, narrower it shows at dpi/96."""
    return min(fig.dpi / 96, PAGE_WIDTH_IN / fig.get_figwidth())


def readable_heatmap(ax: plt.Axes, min_pt: float = MIN_FONT_PT) -> None:
    """Make a heatmap's text readable at page width.

    Tick labels of the map and of its colour bar are enlarged to show at ≥ ``min_pt``;
    cell annotations are enlarged alike but never beyond what fits their cell (a
    three-panel row of 8 × 8 maps has no room for more).
    """
    scale = page_scale(ax.figure)
    need = min_pt / scale
    bars = [m.colorbar for m in (*ax.images, *ax.collections) if getattr(m, "colorbar", None) is not None]
    for a in (ax, *(cb.ax for cb in bars)):
        sizes = [t.get_fontsize() for t in (*a.get_xticklabels(), *a.get_yticklabels())] or [plt.rcParams["font.size"]]
        a.tick_params(labelsize=max(max(sizes), need))
    cells = [t for t in ax.texts if t.get_text()]
    if cells:
        ncols = max(len(ax.get_xticks()), 1)
        cell_pt = ax.get_position().width * ax.figure.get_figwidth() * 72 / ncols
        chars = max(len(t.get_text()) for t in cells)
        fit = cell_pt / (0.62 * chars)           # a digit is about 0.6 em wide
        for t in cells:
            t.set_fontsize(max(t.get_fontsize(), min(need, fit)))


def contrast_order(diff: pd.DataFrame, reverse: bool = False) -> list[str]:
    """The contrasts of a group-difference table in its order (AD-CN, MCI-CN), or reversed."""
    found = list(dict.fromkeys(diff["contrast"]))
    return found[::-1] if reverse else found


def set_style() -> None:
    """The book's plotting style (seaborn ticks, readable fonts)."""
    import seaborn as sns

    sns.set_theme(style="ticks", context="notebook", rc={"figure.dpi": 110, "savefig.dpi": 150,
                                                         "axes.spines.top": False, "axes.spines.right": False})
    try:  # in a notebook kernel, figures must render as PNG so that glue can store them
        from IPython import get_ipython

        ip = get_ipython()
        if ip is not None and getattr(ip, "kernel", None) is not None:
            from matplotlib_inline.backend_inline import set_matplotlib_formats

            set_matplotlib_formats("png")
    except ImportError:  # pragma: no cover - IPython comes with the book extra
        pass


def network_matrix(M: np.ndarray, labels: Sequence[str], ax: plt.Axes | None = None, title: str = "",
                   cmap: str = "RdBu_r", vmin: float | None = None, vmax: float | None = None,
                   annotate: bool = True, fmt: str = ".2f", marks: np.ndarray | None = None,
                   colors: Mapping[str, str] | None = None, cbar_label: str = "",
                   xlabel: str = "", ylabel: str = "") -> plt.Axes:
    """Heatmap of a network × network matrix ``[K, K]``.

    Parameters
    ----------
    marks
        Boolean ``[K, K]``; marked cells get an asterisk (e.g. FDR-significant) and a box.
    colors
        Network → colour for the tick labels.
    vmin, vmax
        Colour limits; symmetric around 0 by default for diverging maps.
    """
    M = np.asarray(M, dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.55 * len(labels) + 2.2, 0.5 * len(labels) + 1.6))
    finite = M[np.isfinite(M)]
    if vmin is None and vmax is None and finite.size:
        if cmap in ("RdBu_r", "coolwarm", "vlag", "RdBu"):
            lim = float(np.abs(finite).max()) or 1.0
            vmin, vmax = -lim, lim
    im = ax.imshow(M, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    if colors:
        for tick in (*ax.get_xticklabels(), *ax.get_yticklabels()):
            tick.set_color(colors.get(tick.get_text(), "black"))
            tick.set_fontweight("bold")
    if annotate and len(labels) <= 10:
        for i in range(M.shape[0]):
            for j in range(M.shape[1]):
                if np.isfinite(M[i, j]):
                    star = "*" if marks is not None and marks[i, j] else ""
                    ax.text(j, i, f"{M[i, j]:{fmt}}{star}", ha="center", va="center", fontsize=7,
                            color="white" if vmax and abs(M[i, j]) > 0.6 * max(abs(vmin or 0), abs(vmax)) else "black")
    if marks is not None:
        for i, j in zip(*np.nonzero(marks)):
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.6, ec="black"))
    cb = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if cbar_label:
        cb.set_label(cbar_label)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    readable_heatmap(ax)
    return ax


def matrix_from_table(df: pd.DataFrame, row: str, col: str, value: str, order: Sequence[str]) -> np.ndarray:
    """Pivot a tidy table into a ``[K, K]`` matrix in ``order`` (missing cells are NaN)."""
    piv = df.pivot_table(index=row, columns=col, values=value, aggfunc="mean")
    return piv.reindex(index=list(order), columns=list(order)).to_numpy(float)
