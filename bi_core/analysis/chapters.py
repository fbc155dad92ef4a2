"""The groups an analysis chapter shows: its ``group_column``/``reference``/``levels`` parameters
checked against what ``bi-core analyze`` compared.

Chapters 3–6 take the three parameters (defaults: the book's ``diagnosis``, CN, CN < MCI <
AD). :func:`chapter_groups` returns ``None`` — the chapter shows its group-free parts
only — when ``group_column`` is empty or when the analysis compared no groups (its
``summary.json`` says why); otherwise the groups, whose contrasts and classification
tasks name the tables the chapter reads (``groupdiff_*.tsv`` rows ``<level>-<reference>``,
``classification_<level>_<reference>_*.tsv``, ``classification_<k>class_*.tsv``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .groupstats import Groups, as_labels, slug
from .predictability import PHENOTYPES, with_phenotypes


@dataclass(frozen=True)
class ChapterGroups(Groups):
    """:class:`~bi_core.analysis.groupstats.Groups` with the names a chapter looks tables up by."""

    @property
    def main(self) -> str:
        """The main contrast: the last level against the reference (``AD-CN``)."""
        return f"{self.order[-1]}-{self.reference}"

    @property
    def main_label(self) -> str:
        """The main contrast as the text shows it, with a minus sign (``AD−CN``)."""
        return f"{self.order[-1]}\u2212{self.reference}"

    @property
    def contrast_names(self) -> list[str]:
        """Every contrast, the level furthest along the order first (``AD-CN``, ``MCI-CN``)."""
        return [f"{g}-{r}" for g, r in self.contrasts]

    @property
    def compared(self) -> tuple[str, ...]:
        """The levels compared with the reference, in order (``MCI``, ``AD``)."""
        return tuple(g for g in self.order if g != self.reference)

    def task(self, level: str | None = None) -> str:
        """The two-class task of ``level`` (default: the last) against the reference (``ad_cn``)."""
        return f"{slug(level or self.order[-1])}_{slug(self.reference)}"

    @property
    def multiclass_task(self) -> str | None:
        """The all-levels task (``3class``), ``None`` with two levels."""
        return f"{len(self.order)}class" if len(self.order) >= 3 else None


def _levels(levels: Any) -> list[str] | None:
    if levels is None or (isinstance(levels, str) and levels.strip().lower() in ("", "none", "null")):
        return None
    if isinstance(levels, str):
        levels = levels.split(",")
    return [str(v).strip() for v in levels]


def _empty(v: Any) -> bool:
    return v is None or str(v).strip().lower() in ("", "none", "null")


def chapter_groups(suite_dir: str | Path, group_column: str | None, reference: str | None,
                   levels: Sequence[str] | str | None) -> ChapterGroups | None:
    """The groups a chapter compares, as the analysis in ``suite_dir`` compared them.

    Parameters
    ----------
    suite_dir
        A ``bi-core analyze --out`` directory (its ``summary.json``: ``groups``).
    group_column
        The compared column; empty or ``None``: no groups (the group-free parts only).
    reference
        Its reference level; ``None``: the analysis's.
    levels
        The levels shown, in order (a list or ``"a,b,c"``); ``None``: every level the analysis
        compared. Levels the analysis did not compare are left out with a warning (the book's
        defaults on a cohort without MCI); the reference and one other must remain.

    Returns
    -------
    ChapterGroups or None
        ``None`` when ``group_column`` is empty or the analysis compared no groups.

    Raises
    ------
    InputError
        The parameters name another column, reference or levels than the analysis compared
        (the message says what it compared and how to pass it).
    """
    if _empty(group_column):
        return None
    f = Path(suite_dir) / "summary.json"
    try:
        done = json.loads(f.read_text(encoding="utf-8")).get("groups")
    except (OSError, ValueError) as exc:
        raise InputError(f"{f}: cannot read the analysis summary ({exc}); run `bi-core analyze --out "
                         f"{suite_dir}`.") from None
    if not done:
        return None
    have = (f"-p group_column {done['column']} -p reference {done['reference']} -p levels "
            f"'{json.dumps(done['order'])}'")
    if str(group_column) != done["column"]:
        raise InputError(f"parameter group_column={group_column!r}: the analysis in {suite_dir} compared the levels of "
                         f"{done['column']!r}; pass {have} (or re-run `bi-core analyze --group-column "
                         f"{group_column}`).")
    ref = done["reference"] if _empty(reference) else str(reference)
    if ref != done["reference"]:
        raise InputError(f"parameter reference={reference!r}: the analysis in {suite_dir} compared every level with "
                         f"{done['reference']!r}; pass {have}.")
    asked = _levels(levels) or list(done["order"])
    # a level the analysis did not compare (the book's MCI on a cohort without one) is left out, and said so
    order = [v for v in asked if v in done["order"]]
    if ref not in order or len(order) < 2:
        raise InputError(f"parameter levels={asked!r}: the analysis in {suite_dir} compared "
                         f"{', '.join(done['order'])} (reference {done['reference']}); give at least the reference "
                         f"and one other of them, e.g. {have}.")
    if len(order) < len(asked):
        warnings.warn(f"levels {[v for v in asked if v not in order]} were not compared by the analysis in {suite_dir} "
                      f"(it compared {', '.join(done['order'])}); showing {', '.join(order)}", stacklevel=2)
    return ChapterGroups(done["column"], tuple(order), ref)


#: What a chapter glues for a group label when it compares no groups (the group parts say so anyway).
NO_GROUPS = "no groups compared: group_column is None or the analysis had none"


def _join(items: Sequence[str], word: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {word} {items[-1]}"


def _article(label: str) -> str:
    """``a`` or ``an`` before ``label``: an acronym by its first letter's name (an AD, an MCI, a CN), a word by its
    first letter (a patient, an outpatient)."""
    w = label.strip()
    if len(w) > 1 and w[:2].isupper():
        return "an" if w[0] in "AEFHILMNORSX" else "a"
    return "an" if w[:1].lower() in ("a", "e", "i", "o", "u") else "a"


def group_texts(groups: ChapterGroups | None, absent: str = NO_GROUPS) -> dict[str, str]:
    """The group labels a chapter's prose cites, by glue name, so its text follows the parameters.

    With the book's defaults (CN < MCI < AD, reference CN) they read as the book always read:
    ``main_group`` AD, ``ref_group`` CN, ``main_label`` AD−CN (minus sign), ``main_vs_ref``
    AD-versus-CN, ``a_main`` an, ``mild_group`` MCI (the level nearest the reference),
    ``mild_label`` MCI−CN, ``levels_text`` "CN, MCI and AD", ``contrasts_text`` "AD−CN and
    MCI−CN", ``others_group`` MCI / ``an_others`` "an MCI" / ``others_noun`` MCI (the levels
    neither main nor reference, which the marker's classifier never trains on; with two levels
    "other", "any other", "other subjects"). Without groups every text is ``absent``.
    """
    keys = ("main_group", "ref_group", "main_label", "main_vs_ref", "a_main", "mild_group", "mild_label",
            "levels_text", "contrasts_text", "others_group", "an_others", "others_noun")
    if groups is None:
        return dict.fromkeys(keys, absent)
    main, ref = groups.order[-1], groups.reference
    mild = groups.compared[0]
    others = [g for g in groups.order if g not in (main, ref)]
    out = {"main_group": main, "ref_group": ref, "main_label": groups.main_label, "main_vs_ref": f"{main}-versus-{ref}",
           "a_main": _article(main), "mild_group": mild, "mild_label": f"{mild}\u2212{ref}",
           "levels_text": _join(groups.order), "contrasts_text": _join([f"{g}\u2212{r}" for g, r in groups.contrasts]),
           "others_group": _join(others, "or") if others else "other",
           "an_others": f"{_article(others[0])} {_join(others, 'or')}" if others else "any other",
           "others_noun": _join(others, "or") if others else "other subjects"}
    return out


def with_group_labels(table: Any, cohort: Any, groups: Groups | None) -> Any:
    """A per-recording table with the cohort's phenotypes and, with ``groups``, its group column as the labels
    ``bi-core analyze`` compared (:func:`~bi_core.analysis.groupstats.as_labels`: ``2.0`` reads as ``2``)."""
    if groups is None:
        return with_phenotypes(table, cohort)
    out = with_phenotypes(table, cohort, (*PHENOTYPES, groups.column))
    out[groups.column] = as_labels(out[groups.column])
    return out


def clinical_null_parts(path: str | Path) -> Any:
    """The clinical association's null calibration as chapter 6 and the reproducibility chapter read it.

    ``path``: the ``null-longitudinal`` step's ``null_clinical_association.tsv``
    (:func:`bi_core.analysis.calibration.clinical_association_null`). Returns its rows indexed
    by part (``within``, ``between``), or ``None`` when the file is absent or the calibration
    was skipped (the file then holds a ``skipped`` reason).
    """
    import pandas as pd

    p = Path(str(path))
    if not p.is_file():
        return None
    t = pd.read_csv(p, sep="\t")
    if "rate" not in t:
        return None
    return t.set_index(t["path"].str.extract(r"(within|between)-subject")[0].rename("part"))
