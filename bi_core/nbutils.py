"""Helpers for the book's notebooks: parameter validation, glue and readable tables.

A notebook run by papermill with a wrong or missing artifact should stop at its first
cell with a message that names the parameter, the path and how to make it.

What a chapter shows is text, figures and tables, never a raw cell output:
:func:`glue` returns nothing (a glue on a cell's last line prints no ``2.0``), and
:func:`show_table` is the one way to show a table — readable headers (no column names
with underscores), about three significant digits, intervals merged into one column, no
meaningless index, headers that wrap to fit the page. Call it on a cell's last line::

    show_table(summary, index="feature_set", rename={"auc": "AUC"})
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any


from .cohort import Cohort
from .errors import InputError
from .numfmt import format_number

if TYPE_CHECKING:
    import pandas as pd
    from pandas.io.formats.style import Styler

#: Readable names of the columns the analysis tables share (anything else: ``_`` → space).
LABELS: dict[str, str] = {
    "auc": "AUC", "balanced_accuracy": "balanced accuracy", "n_repeats": "repeats", "feature_set": "feature set",
    "r2": "R²", "pearson_r": "Pearson r", "r": "r", "mae": "MAE", "se": "SE", "p": "p", "q": "q (FDR)",
    "cohens_d": "Cohen's d", "fdr_family": "FDR family", "n_subjects": "subjects", "n_visits": "visits",
    "n_group": "n (group)", "n_ref": "n (reference)", "mean_group": "mean (group)", "mean_ref": "mean (reference)",
    "ci_low": "95 % CI low", "ci_high": "95 % CI high", "cdr_sb": "CDR-SB", "mmse": "MMSE", "n": "n",
}


def glue(name: str, value: Any, display: bool = False) -> None:
    """``myst_nb.glue`` without display (a no-op outside a notebook kernel).

    Returns ``None`` on purpose: a glue on the last line of a cell would otherwise show
    its value as a bare cell output in the book.
    """
    try:
        from myst_nb import glue as _glue
    except ImportError:  # pragma: no cover - myst_nb comes with jupyter-book
        return
    _glue(name, value, display=display)


def glue_markdown(name: str, text: str) -> None:
    """Glue a generated sentence that carries Markdown (``code``, links); show it with ``{glue:md}`name```.

    ``{glue:text}`` prints such a sentence as it is, backticks and all.
    """
    try:
        from IPython.display import Markdown
    except ImportError:  # pragma: no cover - IPython comes with the notebook kernel
        return
    glue(name, Markdown(text))


def glue_absent(why: str, texts: tuple[str, ...] = (), numbers: tuple[str, ...] = (),
                figures: tuple[str, ...] = ()) -> None:
    """Glue what a chapter's text reads for a part this cohort cannot show (e.g. no groups).

    ``texts`` get ``why``, ``numbers`` NaN and ``figures`` a small figure that says ``why``,
    so the chapter's prose still finds every name it cites.
    """
    for k in texts:
        glue(k, why)
    for k in numbers:
        glue(k, float("nan"))
    if figures:
        import matplotlib.pyplot as plt

        for k in figures:
            fig, ax = plt.subplots(figsize=(4.5, 1.2))
            ax.text(0.5, 0.5, why, ha="center", va="center", wrap=True, fontsize=9)
            ax.axis("off")
            glue(k, fig)
            plt.close(fig)


def label(name: Any, rename: Mapping[str, str] | None = None) -> str:
    """A column name as a reader reads it: ``rename``, else :data:`LABELS`, else ``_`` → space."""
    name = str(name)
    if rename and name in rename:
        return rename[name]
    if name in LABELS:
        return LABELS[name]
    return name.replace("_", " ")


def _merge_intervals(df: "pd.DataFrame", rename: Mapping[str, str] | None, digits: int) -> "pd.DataFrame":
    """``X``, ``X_ci_low``, ``X_ci_high`` (or ``estimate``/``slope`` with ``ci_low``/``ci_high``) → one text column."""
    out = df.copy()
    stems = [c[: -len("_ci_low")] for c in df.columns if str(c).endswith("_ci_low")]
    pairs = [(s, f"{s}_ci_low", f"{s}_ci_high") for s in stems if s in df and f"{s}_ci_high" in df]
    if "ci_low" in df and "ci_high" in df:
        point = next((c for c in ("estimate", "slope", "fit", "mean", "icc") if c in df), None)
        if point is not None:
            pairs.append((point, "ci_low", "ci_high"))
    for point, lo, hi in pairs:
        out[point] = [f"{format_number(m, digits)} [{format_number(a, digits)}, {format_number(b, digits)}]"
                      for m, a, b in zip(df[point], df[lo], df[hi])]
        out = out.drop(columns=[lo, hi]).rename(columns={point: f"{label(point, rename)} [95 % interval]"})
    return out


#: The book's table style (``book/_static/bi_core.css`` has the rest): headers wrap between words only,
#: never inside one (a header read "deco der" under ``overflow-wrap: anywhere``); text left, numbers right.
TABLE_STYLES: list[dict[str, str]] = [
    {"selector": "", "props": "font-size: 0.85em; table-layout: auto; border-collapse: collapse;"},
    {"selector": "th", "props": "white-space: normal; overflow-wrap: normal; word-break: normal; hyphens: manual; "
                                "vertical-align: bottom; text-align: right; padding: 0.2em 0.5em;"},
    {"selector": "th.row_heading", "props": "text-align: left; vertical-align: top;"},
    {"selector": "td", "props": "text-align: right; padding: 0.2em 0.5em; vertical-align: top;"},
]


def show_table(df: "pd.DataFrame", rename: Mapping[str, str] | None = None, digits: int = 3,
               index: str | list[str] | None = None, intervals: bool = True, caption: str | None = None,
               classes: str = "") -> "Styler":
    """A table for the book: readable headers, ``digits`` significant digits, fitted to the page.

    Parameters
    ----------
    df
        A tidy table (the analyses' TSVs as read).
    rename
        Column, index and row-label name → header, for names :data:`LABELS` does not
        know; every other ``_`` becomes a space.
    digits
        Significant digits of the numbers (:func:`format_number`).
    index
        Column(s) that label the rows (shown as row headers); ``None`` shows no index
        (a default ``0, 1, 2…`` index is meaningless). A named index of ``df`` is kept.
    intervals
        Merge each ``X`` with ``X_ci_low``/``X_ci_high`` (and ``estimate``/``slope``
        with ``ci_low``/``ci_high``) into one ``X [95 % interval]`` column.
    caption
        Shown above the table.
    classes
        Extra CSS classes of the ``<table>`` besides ``bi-table`` (e.g. ``"bi-scorecard"``).

    Returns
    -------
    pandas.io.formats.style.Styler
        Renders as HTML in the notebook and the book (the last line of a cell).
    """
    import pandas as pd

    d = df.copy()
    if index is None and not isinstance(d.index, pd.RangeIndex) and any(n is not None for n in d.index.names):
        d = d.reset_index()
        index = [n for n in df.index.names]
    elif index is None:
        d = d.reset_index(drop=True)
    if intervals:
        d = _merge_intervals(d, rename, digits)
    idx = [index] if isinstance(index, str) else list(index or [])
    if idx:
        d = d.set_index(idx)
        d.index = d.index.set_names([label(n, rename) for n in d.index.names])
        # row labels are headers too: codes such as cdr_sb or sc_to_fc read as CDR-SB, SC → FC
        d = d.rename(index=lambda v: label(v, rename) if isinstance(v, str) else v)
    d.columns = [label(c, rename) for c in d.columns]
    styler = d.style.format(lambda v: format_number(v, digits))
    if not idx:
        styler = styler.hide(axis="index")
    # words read from the left, numbers line up on the right (by position: headers may repeat); a number or a
    # short code or date ("1.5e-27", "DMN–LIM", "2026-12-01") never wraps at its hyphen
    cols = []
    for i in range(d.shape[1]):
        col = d.iloc[:, i]
        number = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        token = number or all(len(str(v)) <= 16 and not any(ch.isspace() for ch in str(v)) for v in col)
        props = ("" if number else "text-align: left; ") + ("white-space: nowrap;" if token else "")
        if props:
            cols.append({"selector": f"td.col{i}", "props": props.strip()})
    styler = styler.set_table_styles(TABLE_STYLES + cols).set_table_attributes(
        f'class="{" ".join(["bi-table", *classes.split()])}"')
    if caption:
        styler = styler.set_caption(caption)
    return styler


#: Scorecard verdict → the CSS class of its badge (``book/_static/bi_core.css`` colours them).
BADGES: dict[str, str] = {"reproduced": "bi-badge-yes", "not reproduced": "bi-badge-no",
                          "not testable here": "bi-badge-untestable", "not run in this build": "bi-badge-not-run"}


def badge(verdict: str) -> str:
    """A verdict as a coloured badge (HTML, text escaped): ``<span class="bi-badge bi-badge-yes">reproduced</span>``."""
    from html import escape

    return f'<span class="bi-badge {BADGES.get(verdict, "bi-badge-other")}">{escape(verdict)}</span>'


def with_badge(cell: str, verdict: str) -> str:
    """A scorecard cell (HTML that opens with the verdict in bold) with the verdict as a :func:`badge`."""
    from html import escape

    bold = f"<b>{escape(verdict)}</b>"
    if not cell.startswith(bold):
        raise ValueError(f"the cell does not open with its verdict {verdict!r}: {cell[:60]!r}")
    return badge(verdict) + cell[len(bold):]


def source_commit(path: Path | None = None) -> str:
    """The git commit of the ``bi_core`` sources that ran (``"abc1234"``, ``+ uncommitted changes`` when dirty).

    ``"unknown (not a git checkout)"`` for an installed copy; never raises.
    """
    import subprocess

    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=where, capture_output=True,
                              text=True, timeout=20)
        if head.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (git is not available)"
    return head.stdout.strip() + (" + uncommitted changes" if dirty else "")


def require_path(value: Any, parameter: str, made_by: str, kind: str = "file") -> Path:
    """Check that a parameter points at an existing file or directory.

    Parameters
    ----------
    value
        The parameter's value.
    parameter
        Its name in the notebook's ``parameters`` cell.
    made_by
        The command that creates the artifact (shown in the error).
    kind
        ``"file"`` or ``"dir"``.
    """
    if value is None or str(value) == "":
        raise InputError(f"parameter {parameter!r} is empty; pass it with papermill (-p {parameter} PATH). "
                         f"It is made by `{made_by}`.")
    p = Path(str(value))
    ok = p.is_file() if kind == "file" else p.is_dir()
    if not ok:
        raise InputError(f"parameter {parameter}={str(p)!r}: no such {kind}. Create it with `{made_by}` "
                         f"(or run `bi-core reproduce`).")
    return p


def require_cohort(value: Any, parameter: str, made_by: str = "bi-core synth --out DIR",
                   need_diagnosis: bool = False):
    """Open a cohort store named by a parameter, with a clear error if it is not one."""
    p = require_path(value, parameter, made_by, kind="dir")
    if not (p / "cohort.json").is_file():
        raise InputError(f"parameter {parameter}={str(p)!r} is not a cohort store (no cohort.json); "
                         f"create it with `{made_by}`.")
    c = Cohort.open(p)
    if need_diagnosis and c.table["diagnosis"].notna().sum() == 0:
        raise InputError(f"parameter {parameter}={str(p)!r}: the cohort has no diagnoses; this chapter needs a "
                         "labelled (CN/MCI/AD) cohort.")
    return c


def optional_json(value: Any, parameter: str) -> dict | None:
    """Read a JSON file named by an optional parameter (``""``/``"none"``/``None`` → ``None``)."""
    if value is None or str(value).strip().lower() in ("", "none", "null"):
        return None
    p = Path(str(value))
    if not p.is_file():
        raise InputError(f"parameter {parameter}={str(p)!r}: no such file (pass 'none' when there is no ground truth).")
    return json.loads(p.read_text())


def weights_origin(run: str | Path, what: str = "These weights") -> str:
    """One sentence on where a run's weights come from: trained in this build, or installed from published weights.

    A run installed by :func:`bi_core.published.install` carries a ``published`` entry in its
    ``summary.json`` and the bundle's ``manifest.json``; the sentence names the bundle, the
    machine and commit that trained it, its training time, and the held-out loss the current
    code reproduced (chapters 2, 4 and 7 glue it, so no chapter calls published weights "trained
    on this machine"). The sentence is Markdown (paths and commands as code spans): glue it with
    ``{glue:md}``, not ``{glue:text}``, which prints the backticks.
    """
    run = Path(run)
    s = json.loads((run / "summary.json").read_text())
    pub = s.get("published")
    if not pub:
        return (f"{what} were trained in this build ({s.get('train_time_s', float('nan')) / 60:.1f} minutes "
                "of training on this machine)")
    m = json.loads((run / "manifest.json").read_text()) if (run / "manifest.json").is_file() else {}
    cut = pub["bundle"].rfind("/weights/")      # the repository-relative path of a shipped bundle
    where = pub["bundle"][cut + 1:] if cut >= 0 else pub["bundle"]
    commit = (pub.get("git_commit") or "unknown")[:7]
    minutes = (m.get("training_time_s") or float("nan")) / 60
    return (f"{what} are the ones published in the repository (`{where}`; "
            f"{minutes:.0f} minutes of training on {m.get('machine', {}).get('description', 'an unrecorded machine')}, "
            f"published at commit {commit}), installed because this build's code reproduced their held-out loss "
            f"({pub['verified_val_loss']:.6f} against the manifest's {pub['manifest_val_loss']:.6f}, tolerance 1e-5); "
            "`make book RETRAIN=1` trains them here instead")
