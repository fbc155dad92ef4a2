"""Figure functions, one module per chapter; shared helpers here.

Every function takes tidy tables or arrays (never paths), draws on a given or new
matplotlib axes and returns the figure/axes, so notebooks stay one call per figure and
the logic is tested in ``tests/test_figures.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

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


#: Width (in) of the book's text column at 96 CSS px/in (672 px at a 1280 px window): a wider figure is shrunk to it.
PAGE_WIDTH_IN = 7.0
#: Widest figure (in, at the book's 110 dpi, before tight cropping) the book shows at >= 0.6 of its width with text >= 9 px.
MAX_FIG_WIDTH_IN = 8.0
#: Smallest tick label (pt) as the book shows it; cell annotations aim at this too, within their cell.
MIN_FONT_PT = 8.0


def page_scale(fig: plt.Figure) -> float:
    """How much the book scales a figure's text: wider than the page it shrinks, narrower it shows at dpi/96."""
    return min(fig.dpi / 96, PAGE_WIDTH_IN / fig.get_figwidth())


def sig2(v: float) -> str:
    """``v`` with two significant digits, trailing zeros kept (0.50, 1.0, 16, -0.0040)."""
    v = float(v)
    if not np.isfinite(v):
        return ""
    if v == 0:
        return "0"
    d = max(0, 1 - int(np.floor(np.log10(abs(float(f"{v:.2g}"))))))
    return f"{v:.{d}f}"


#: How far past the clip percentile a value must lie to count as an outlier (see :func:`color_limits`).
OUTLIER_FACTOR = 1.5


def cell_decimals(vmin: float, vmax: float, center: float | None = None) -> int:
    """Decimals that give a map's cell values two significant digits of its colour scale's half-range
    (around ``center``) or range: 1.0040 on an enrichment map of ±0.0093, 0.25 on a ±0.5 map, 1.2 on ±2."""
    scale = max(abs(vmax - center), abs(center - vmin)) if center is not None else abs(vmax - vmin)
    if not np.isfinite(scale) or scale <= 0:
        return 2
    return max(0, 1 - int(np.floor(np.log10(scale))))


def color_limits(M: np.ndarray, center: float | None = None, clip: tuple[float, float] = (2, 98),
                 vmin: float | None = None, vmax: float | None = None) -> tuple[float, float, str]:
    """Colour limits of a map and the colour bar's ``extend`` (which ends have values beyond the limits).

    With ``center`` (1 for an enrichment, 0 for a difference) the limits are symmetric around it, at the
    ``clip[1]`` percentile of ``|M - center|``; otherwise they are the ``clip`` percentiles of ``M``. So one
    outlier cell is clipped (and marked by a triangle on the colour bar) instead of washing out the map.
    A map is clipped only where it has outliers: beyond ``OUTLIER_FACTOR`` times the percentile's
    distance from the centre (or beyond half the percentiles' spread past them); else its full range is shown.
    Limits given as ``vmin``/``vmax`` are kept.
    """
    x = np.asarray(M, dtype=float)
    x = x[np.isfinite(x)]
    if vmin is None or vmax is None:
        if not x.size:
            lo, hi = (center - 1, center + 1) if center is not None else (0.0, 1.0)
        elif center is not None:
            dev = np.abs(x - center)
            full, robust = float(dev.max()), float(np.percentile(dev, clip[1]))
            lim = (robust if full > OUTLIER_FACTOR * robust else full) or 1.0
            lo, hi = center - lim, center + lim
        else:
            p_lo, p_hi = (float(v) for v in np.percentile(x, clip))
            spread = p_hi - p_lo
            lo = p_lo if p_lo - float(x.min()) > (OUTLIER_FACTOR - 1) * spread else float(x.min())
            hi = p_hi if float(x.max()) - p_hi > (OUTLIER_FACTOR - 1) * spread else float(x.max())
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
        vmin = lo if vmin is None else vmin
        vmax = hi if vmax is None else vmax
    below = bool(x.size and x.min() < vmin - 1e-12 * max(1.0, abs(vmin)))
    above = bool(x.size and x.max() > vmax + 1e-12 * max(1.0, abs(vmax)))
    extend = {(True, True): "both", (True, False): "min", (False, True): "max"}.get((below, above), "neither")
    return float(vmin), float(vmax), extend


def annotation_fontsize(ax: plt.Axes, ncols: int, chars: int, min_pt: float = MIN_FONT_PT) -> float | None:
    """The font size (pt) cell annotations of ``chars`` characters get in a ``ncols``-column map on ``ax``.

    ``None`` when they would not fit their cell at a size readable at page width (``min_pt`` as the
    book shows it): then the map carries no numbers rather than overlapping ones.
    """
    need = min_pt / page_scale(ax.figure)
    cell_pt = ax.get_position().width * ax.figure.get_figwidth() * 72 / max(ncols, 1)
    fit = 0.9 * cell_pt / (0.62 * max(chars, 1))        # a digit is about 0.6 em wide; keep a margin
    return min(fit, max(need, 9.0)) if fit >= need else None


def readable_heatmap(ax: plt.Axes, min_pt: float = MIN_FONT_PT) -> None:
    """Make a heatmap's text readable at page width.

    Tick labels of the map and of its colour bar are enlarged to show at ≥ ``min_pt``; cell
    annotations are sized to their cell, and dropped (a marked cell keeps its star) where they would
    not fit at a readable size.
    """
    scale = page_scale(ax.figure)
    need = min_pt / scale
    bars = [m.colorbar for m in (*ax.images, *ax.collections) if getattr(m, "colorbar", None) is not None]
    for a in (ax, *(cb.ax for cb in bars)):
        sizes = [t.get_fontsize() for t in (*a.get_xticklabels(), *a.get_yticklabels())] or [plt.rcParams["font.size"]]
        a.tick_params(labelsize=max(max(sizes), need))
    for cb in bars:
        cb.ax.yaxis.label.set_fontsize(max(cb.ax.yaxis.label.get_fontsize(), need))
    for t in (ax.title, ax.xaxis.label, ax.yaxis.label):
        t.set_fontsize(max(t.get_fontsize(), need))
    cells = [t for t in ax.texts if t.get_text()]
    if cells:
        size = annotation_fontsize(ax, len(ax.get_xticks()), max(len(t.get_text()) for t in cells), min_pt)
        for t in cells:
            if size is not None:
                t.set_fontsize(size)
            elif t.get_text().endswith("*"):
                t.set_text("*")
                t.set_fontsize(need)
            else:
                t.remove()


def panel_grid(n: int, panel_w: float, panel_h: float, max_width: float = MAX_FIG_WIDTH_IN,
               **kwargs) -> tuple[plt.Figure, list[plt.Axes]]:
    """A figure of ``n`` panels of ``panel_w × panel_h`` in, as many per row as fit ``max_width`` (the
    page's width, so that the book does not shrink the text below readable); unused cells are hidden.

    Returns the figure and its ``n`` axes in reading order.
    """
    ncols = max(1, min(n, int(max_width // panel_w)))
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_w * ncols, panel_h * nrows), squeeze=False, **kwargs)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


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


@contextmanager
def seeded_jitter(seed: int = 0) -> Iterator[None]:
    """Seed NumPy's global generator inside the block and restore it after: seaborn's strip plots jitter
    their points with it (``np.random.uniform``), so without a seed a figure differed between two builds."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


DIVERGING_CMAPS = ("RdBu_r", "coolwarm", "vlag", "RdBu", "PuOr_r", "BrBG")


def network_matrix(M: np.ndarray, labels: Sequence[str], ax: plt.Axes | None = None, title: str = "",
                   cmap: str = "RdBu_r", vmin: float | None = None, vmax: float | None = None,
                   annotate: bool = True, fmt: str | None = None, marks: np.ndarray | None = None,
                   colors: Mapping[str, str] | None = None, cbar_label: str = "",
                   xlabel: str = "", ylabel: str = "", center: float | None = None,
                   clip: tuple[float, float] = (2, 98)) -> plt.Axes:
    """Heatmap of a network × network matrix ``[K, K]``.

    Parameters
    ----------
    marks
        Boolean ``[K, K]``; marked cells get an asterisk (e.g. FDR-significant) and a box.
    colors
        Network → colour for the tick labels.
    vmin, vmax
        Colour limits; by default (:func:`color_limits`) symmetric around ``center`` (0 for a diverging
        map, a difference) at the ``clip[1]`` percentile, else the ``clip`` percentiles. Values beyond
        the limits are clipped and marked by a triangle on the colour bar.
    center
        The quantity's natural centre (1 for an enrichment); the colour bar's label states the range.
    annotate, fmt
        Cell values (two significant digits of the colour scale, :func:`cell_decimals`, unless ``fmt``), only where they fit their cell at a readable
        size (:func:`annotation_fontsize`) and the map has at most 10 rows.
    """
    M = np.asarray(M, dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.55 * len(labels) + 2.2, 0.5 * len(labels) + 1.6))
    if center is None and cmap in DIVERGING_CMAPS and vmin is None and vmax is None:
        center = 0.0
    vmin, vmax, extend = color_limits(M, center=center, clip=clip, vmin=vmin, vmax=vmax)
    im = ax.imshow(M, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    if colors:
        for tick in (*ax.get_xticklabels(), *ax.get_yticklabels()):
            tick.set_color(colors.get(tick.get_text(), "black"))
            tick.set_fontweight("bold")
    if annotate and len(labels) <= 10:
        norm = im.norm
        decimals = cell_decimals(vmin, vmax, center)
        for i in range(M.shape[0]):
            for j in range(M.shape[1]):
                if np.isfinite(M[i, j]):
                    star = "*" if marks is not None and marks[i, j] else ""
                    text = f"{M[i, j]:.{decimals}f}" if fmt is None else f"{M[i, j]:{fmt}}"
                    text = text.lstrip("-") if float(text.rstrip("%")) == 0 else text      # no "-0.0"
                    shade = float(np.clip(norm(M[i, j]), 0, 1))
                    dark = abs(shade - 0.5) > 0.3 if cmap in DIVERGING_CMAPS else shade < 0.45
                    ax.text(j, i, f"{text}{star}", ha="center", va="center", fontsize=7,
                            color="white" if dark else "black")
    if marks is not None:
        for i, j in zip(*np.nonzero(marks)):
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.6, ec="black"))
    cb = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, extend=extend)
    label = cbar_label
    if center is not None:
        label += f"{chr(10) if label else ''}centred at {center:g}, ±{sig2(max(vmax - center, center - vmin))}"
    if extend != "neither":
        label += f"{chr(10) if label else ''}(clipped at the {clip[0]:g}/{clip[1]:g} percentiles: ▲)"
    if label:
        cb.set_label(label)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    readable_heatmap(ax)
    return ax


def matrix_from_table(df: pd.DataFrame, row: str, col: str, value: str, order: Sequence[str]) -> np.ndarray:
    """Pivot a tidy table into a ``[K, K]`` matrix in ``order`` (missing cells are NaN)."""
    piv = df.pivot_table(index=row, columns=col, values=value, aggfunc="mean")
    return piv.reindex(index=list(order), columns=list(order)).to_numpy(float)
