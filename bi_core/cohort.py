"""The cohort store: recordings on one atlas, on disk, readable at memory speed.

Format (version 1)
------------------
A cohort is a directory::

    DIR/
      cohort.json       format name, version, atlas name, n_rois, dtype, preprocessing
      atlas.tsv         the atlas (index, name, network[, region, x, y, z, purity])
      recordings.tsv    one row per recording (see RECORDING_COLUMNS)
      timeseries.f32    every recording's [n_frames, n_rois] float32 array (little-endian,
                        C order), concatenated along frames; recording i occupies frames
                        offset_i .. offset_i + n_frames_i - 1

The series file is memory-mapped: opening a cohort reads only the two small tables,
and a training loop slices windows straight out of the page cache with no per-step
parsing. Writers build the directory in a temporary sibling and rename it into place,
so a failed ingest leaves nothing behind.

``recordings.tsv`` columns: ``recording_id, subject, session, run, dataset, site, tr,
n_frames, offset`` (required) and the phenotypes ``diagnosis``, ``age`` (years), ``sex``
(M/F), ``years_from_baseline``, ``mmse``, ``cdr_sb`` where known (``n/a`` otherwise);
any extra phenotype columns are kept. Every phenotype column is typed when the cohort is
written — ``numeric`` when every known value is a number, ``categorical`` otherwise,
``n/a`` when no value is known — and the types are stored in ``cohort.json``
(``phenotypes``) so that a categorical column of numeric-looking codes stays categorical.

Diagnoses are labels like any other: by default a ``diagnosis`` column whose every label
is an ADNI spelling (CN/NC/HC/control, MCI/EMCI/LMCI, AD/dementia...) is normalised to
:data:`DIAGNOSIS_LEVELS` and any other label set (``ADHD``/``control``) is kept as given;
ingest and cohort copies keep every label as given (``recode_diagnoses=False``).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from ._io import atomic_dir, not_utf8, read_text, user_cache_dir, write_json, write_tsv
from .atlas import NetworkAtlas
from .errors import InputError
from .preprocess import PreprocSpec, check_series, preprocess

FORMAT = "bi_core-cohort"
VERSION = 1
SERIES_FILE = "timeseries.f32"
#: The ADNI diagnosis levels in disease order — the one definition of the default group
#: column's levels: its reference (the first), contrasts, classes and figure legends.
DIAGNOSIS_LEVELS: tuple[str, ...] = ("CN", "MCI", "AD")
REQUIRED_COLUMNS = ("recording_id", "subject", "session", "run", "dataset", "site", "tr", "n_frames", "offset")
PHENOTYPE_COLUMNS = ("diagnosis", "age", "sex", "years_from_baseline", "mmse", "cdr_sb")
RECORDING_COLUMNS = REQUIRED_COLUMNS + PHENOTYPE_COLUMNS
#: Columns that describe a recording rather than its participant (never phenotypes).
BOOKKEEPING_COLUMNS = ("recording_id", "subject", "session", "run", "dataset", "tr", "n_frames", "offset")
#: Phenotype types stored in ``cohort.json``.
PHENOTYPE_TYPES = ("categorical", "numeric", "n/a")
_CATEGORICAL = ("diagnosis", "sex", "site")
_NUMERIC = ("age", "years_from_baseline", "mmse", "cdr_sb")

_DX_ALIASES = {
    "cn": "CN", "nc": "CN", "hc": "CN", "control": "CN", "controls": "CN", "healthy": "CN", "normal": "CN",
    "mci": "MCI", "emci": "MCI", "lmci": "MCI",
    "ad": "AD", "dementia": "AD", "alzheimer": "AD", "alzheimers": "AD",
}
#: series file (path, size, mtime, inode) → its digest (:meth:`Cohort.series_digest`)
_SERIES_DIGESTS: dict[tuple[str, int, int, int], str] = {}
_SEX_ALIASES = {"m": "M", "male": "M", "man": "M", "1": "M", "f": "F", "female": "F", "woman": "F", "2": "F"}


def _missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and np.isnan(v):
        return True
    return isinstance(v, str) and v.strip().lower() in ("", "n/a", "na", "nan", "none")


def _label(value: Any) -> str | float:
    """A categorical value as a stripped string (NaN when missing); ``2.0`` reads as ``2``."""
    if _missing(value):
        return np.nan
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def normalize_diagnoses(values: Sequence[Any]) -> list[str | float]:
    """ADNI spellings mapped to CN/MCI/AD when every known label is one; other label sets as given.

    Parameters
    ----------
    values
        The diagnosis column (NaN / ``n/a`` when unknown).

    Returns
    -------
    list
        One label per value (NaN when missing). ``["HC", "EMCI", "dementia"]`` becomes
        ``["CN", "MCI", "AD"]``; ``["ADHD", "control"]`` stays as it is, because ``ADHD``
        is not an ADNI label (so ``control`` is not renamed ``CN`` either).
    """
    labels = [_label(v) for v in values]
    keys = [None if _missing(v) else str(v).lower().replace("'", "").replace(" ", "") for v in labels]
    if all(k is None or k in _DX_ALIASES for k in keys):
        return [np.nan if k is None else _DX_ALIASES[k] for k in keys]
    return labels


def default_level_order(levels: Sequence[str]) -> list[str]:
    """Levels in :data:`DIAGNOSIS_LEVELS` order when they are ADNI diagnoses, else sorted."""
    present = sorted({str(v) for v in levels})
    if set(present) <= set(DIAGNOSIS_LEVELS):
        return [d for d in DIAGNOSIS_LEVELS if d in present]
    return present


def _typed(values: pd.Series, forced: str | None = None) -> tuple[pd.Series, str]:
    """A phenotype column as numbers or labels, and its type (see :data:`PHENOTYPE_TYPES`)."""
    known = values[~values.map(_missing)]
    if forced != "categorical" and known.empty:
        return pd.Series(np.nan, index=values.index, dtype=float), "n/a"
    if forced != "categorical":
        nums = pd.to_numeric(known, errors="coerce")
        if nums.notna().all() and not known.map(lambda v: isinstance(v, bool)).any():
            return pd.to_numeric(values.where(~values.map(_missing)), errors="coerce").astype(float), "numeric"
    return values.map(_label).astype(object), "categorical"


def normalize_sex(value: Any, where: str) -> str | float:
    """Map a sex spelling to M/F (NaN when missing); error on anything else."""
    if _missing(value):
        return np.nan
    key = str(value).strip().lower()
    if key.endswith(".0"):
        key = key[:-2]
    if key not in _SEX_ALIASES:
        raise InputError(f"{where}: unknown sex value {value!r}; expected M/F (male/female), or n/a.")
    return _SEX_ALIASES[key]


#: What to do about cohorts on different atlases read together (:meth:`NetworkAtlas.check_same`).
SAME_ATLAS_FIX = ("Cohorts read together must share one atlas: re-ingest one of them with the other's atlas, or train "
                  "on them separately.")
#: Plausible repetition times (s) of an fMRI recording; outside them a TR is refused (:func:`check_tr`).
TR_RANGE: tuple[float, float] = (0.1, 10.0)


def check_tr(tr: float, where: str, given: str | None = None) -> float:
    """Refuse a repetition time outside :data:`TR_RANGE` seconds, naming the likely cause.

    ``where`` names the recording or file; ``given`` says how the value was given (default
    ``TR <tr>``; e.g. ``RepetitionTime 800 in sub-01_bold.json``). The usual cause is
    milliseconds where seconds are expected (800 for 0.8 s): every duration would come out
    1000 times too long.
    """
    lo, hi = TR_RANGE
    if lo <= tr <= hi:
        return tr
    if lo <= tr / 1000 <= hi:
        why = f"it looks like milliseconds ({tr:g} ms = {tr / 1000:g} s): give it in seconds"
    else:
        why = "check its units: repetition times are given in seconds (e.g. 0.72 or 2)"
    raise InputError(f"{where}: {given or f'TR {tr:g}'} is outside the plausible {lo:g}–{hi:g} s; {why}.")


class CohortWriter:
    """Write a cohort store atomically, one recording at a time.

    Use as a context manager; the directory appears at ``out`` only if the block
    finishes without error.

    Parameters
    ----------
    out
        Output directory (must not exist or be empty unless ``overwrite``).
    atlas
        The atlas every recording is parcellated with.
    preprocessing
        What was already done to the series that are added (stored in ``cohort.json``;
        checkpoints compare it).
    min_frames
        Recordings shorter than this (after preprocessing) are refused — set it to the
        window length the model will use.
    name, description
        Free text stored in ``cohort.json``.
    overwrite
        Replace an existing cohort at ``out``.
    types
        Phenotype column → ``"categorical"`` / ``"numeric"`` to keep a known type (e.g. when
        copying a cohort); other columns are typed from their values.
    recode_diagnoses
        Map ADNI spellings of ``diagnosis`` to CN/MCI/AD (:func:`normalize_diagnoses`);
        ingest and copies keep the labels as given.

    Examples
    --------
    >>> with CohortWriter("cohort", atlas, PreprocSpec()) as w:  # doctest: +SKIP
    ...     w.add(x, recording_id="sub-01_ses-1", subject="01", tr=0.8, diagnosis="CN")
    """

    def __init__(self, out: str | Path, atlas: NetworkAtlas, preprocessing: PreprocSpec | None = None,
                 min_frames: int = 1, name: str | None = None, description: str = "", overwrite: bool = False,
                 extra_meta: dict[str, Any] | None = None, types: dict[str, str] | None = None,
                 recode_diagnoses: bool = True) -> None:
        self.out = Path(out)
        self.atlas = atlas
        self.preprocessing = preprocessing or PreprocSpec()
        self.min_frames = int(min_frames)
        self.name = name or self.out.name
        self.description = description
        self.overwrite = overwrite
        self.extra_meta = dict(extra_meta or {})
        self.types = dict(types or {})
        self.recode_diagnoses = recode_diagnoses
        self._rows: list[dict[str, Any]] = []
        self._ids: set[str] = set()
        self._offset = 0
        self._ctx: Any = None
        self._fh: Any = None
        self.tmp: Path | None = None

    def __enter__(self) -> "CohortWriter":
        self._ctx = atomic_dir(self.out, overwrite=self.overwrite, kind="cohort")
        self.tmp = self._ctx.__enter__()
        self._fh = open(self.tmp / SERIES_FILE, "wb")
        return self

    def add(self, series: np.ndarray, *, recording_id: str, subject: str, tr: float, session: str | None = None,
            run: str | None = None, dataset: str = "", site: str = "", source: str | None = None,
            spec: PreprocSpec | None = None, **phenotypes: Any) -> dict[str, Any]:
        """Validate, optionally preprocess, and append one recording.

        Parameters
        ----------
        series
            ``[n_frames, n_rois]`` signals in the atlas's ROI order.
        tr
            Repetition time of ``series`` in seconds.
        source
            File the recording came from (named in error messages).
        spec
            Preprocessing to apply before storing (e.g. TR harmonization at ingest);
            ``None`` stores ``series`` as given (it is still checked and cast to float32).
        phenotypes
            ``diagnosis`` (any labels), ``age``, ``sex``, ``years_from_baseline``, ``mmse``,
            ``cdr_sb`` and any extra columns (typed when the cohort is finished).

        Returns
        -------
        dict
            The row written to ``recordings.tsv``.
        """
        where = f"recording {recording_id}" + (f" ({source})" if source else "")
        rid = str(recording_id)
        if rid in self._ids:
            raise InputError(f"{where}: duplicate recording id {rid!r}; every recording needs a unique "
                             "subject/session/run combination.")
        if tr is None or not np.isfinite(float(tr)) or float(tr) <= 0:
            raise InputError(f"{where}: missing or invalid repetition time (TR={tr!r}); set RepetitionTime "
                             "in the JSON sidecar (seconds).")
        check_tr(float(tr), where)
        x = check_series(series, where, self.atlas.roi_names)
        if x.shape[1] != self.atlas.n_rois:
            raise InputError(f"{where}: {x.shape[1]} ROI columns but atlas {self.atlas.name!r} has "
                             f"{self.atlas.n_rois} ROIs.")
        if spec is not None:
            x, tr = preprocess(x, float(tr), spec, where)
        x = np.ascontiguousarray(x, dtype="<f4")
        if x.shape[0] < self.min_frames:
            raise InputError(f"{where}: {x.shape[0]} frames is shorter than one window ({self.min_frames} "
                             f"frames at TR {float(tr):g} s); drop this recording or use a shorter window.")
        ph = dict(phenotypes)
        clash = sorted(set(ph) & set(REQUIRED_COLUMNS))
        if clash:
            raise InputError(f"{where}: phenotype column(s) {clash} clash with the cohort's own columns; rename them "
                             "in participants.tsv / sessions.tsv.")
        ph["diagnosis"] = _label(ph.get("diagnosis"))
        ph["sex"] = normalize_sex(ph.get("sex"), where)
        for col in _NUMERIC:
            v = ph.get(col)
            if _missing(v):
                ph[col] = np.nan
            else:
                try:
                    ph[col] = float(v)
                except (TypeError, ValueError):
                    raise InputError(f"{where}: {col}={v!r} is not a number.") from None
        row = {"recording_id": rid, "subject": str(subject), "session": "" if session is None else str(session),
               "run": "" if run is None else str(run), "dataset": str(dataset), "site": str(site),
               "tr": float(tr), "n_frames": int(x.shape[0]), "offset": int(self._offset), **ph}
        self._fh.write(x.tobytes())
        self._offset += x.shape[0]
        self._ids.add(rid)
        self._rows.append(row)
        return row

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._fh.close()
        if exc_type is None:
            try:
                self._finalize()
            except BaseException as err:
                self._ctx.__exit__(type(err), err, err.__traceback__)
                raise
        self._ctx.__exit__(exc_type, exc, tb)

    def _finalize(self) -> None:
        if not self._rows:
            raise InputError(f"no recordings were written to {self.out}; nothing to store.")
        table = pd.DataFrame(self._rows)
        extra = [c for c in table.columns if c not in RECORDING_COLUMNS]
        table = table.reindex(columns=list(RECORDING_COLUMNS) + extra)
        if self.recode_diagnoses:
            table["diagnosis"] = normalize_diagnoses(table["diagnosis"].tolist())
        types: dict[str, str] = {}
        for c in table.columns:
            if c in BOOKKEEPING_COLUMNS:
                continue
            if c == "site":
                types[c] = "categorical"
                continue
            forced = self.types.get(c, "categorical" if c in _CATEGORICAL else None)
            table[c], types[c] = _typed(table[c], forced)
        assert self.tmp is not None
        with open(self.tmp / SERIES_FILE, "rb+") as fh:
            os.fsync(fh.fileno())
        write_tsv(self.tmp / "recordings.tsv", table, float_format="%.6g")
        self.atlas.to_tsv(self.tmp / "atlas.tsv")
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "description": self.description,
            "atlas": self.atlas.name,
            "atlas_fingerprint": self.atlas.fingerprint(),
            "n_rois": self.atlas.n_rois,
            "n_recordings": len(table),
            "total_frames": int(self._offset),
            "dtype": "float32-le",
            "series_file": SERIES_FILE,
            "preprocessing": self.preprocessing.to_dict(),
            "phenotypes": types,
            "bi_core_version": __version__,
            **self.extra_meta,
        }
        write_json(self.tmp / "cohort.json", meta)


class Cohort:
    """A cohort store opened for reading (see the module docstring for the format).

    Attributes
    ----------
    path : Path
    atlas : NetworkAtlas
    table : pandas.DataFrame
        ``recordings.tsv``, one row per recording, in storage order.
    meta : dict
        ``cohort.json``.
    """

    def __init__(self, path: Path, atlas: NetworkAtlas, table: pd.DataFrame, meta: dict[str, Any],
                 data: np.ndarray) -> None:
        self.path = path
        self.atlas = atlas
        self.table = table
        self.meta = meta
        self._data = data

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | Path) -> "Cohort":
        """Open a cohort directory; reads the tables and memory-maps the series."""
        path = Path(path)
        meta_file = path / "cohort.json"
        if not meta_file.is_file():
            raise InputError(f"{path} is not a bi_core cohort (no cohort.json); create one with "
                             "`bi-core synth` or `bi-core ingest`.")
        try:
            meta = json.loads(read_text(meta_file))
        except json.JSONDecodeError as exc:
            raise InputError(f"{meta_file} is not valid JSON ({exc}).") from exc
        if meta.get("format") != FORMAT:
            raise InputError(f"{meta_file}: format {meta.get('format')!r} is not {FORMAT!r}.")
        if int(meta.get("version", -1)) > VERSION:
            raise InputError(f"{path}: cohort format version {meta.get('version')} is newer than this bi_core "
                             f"understands ({VERSION}); upgrade bi_core.")
        atlas = NetworkAtlas.from_dseg(path / "atlas.tsv", name=meta.get("atlas"))
        labels = {c: str for c, t in meta.get("phenotypes", {}).items() if t == "categorical"}
        try:
            table = pd.read_csv(path / "recordings.tsv", sep="\t", na_values=["n/a"], keep_default_na=False,
                                dtype={**labels, "recording_id": str, "subject": str, "session": str, "run": str,
                                       "dataset": str, "site": str, "diagnosis": str, "sex": str})
        except UnicodeDecodeError as exc:       # edited by hand in a spreadsheet
            raise not_utf8(path / "recordings.tsv", exc) from None
        for c in ("session", "run", "dataset", "site"):
            table[c] = table[c].fillna("")
        series = path / meta.get("series_file", SERIES_FILE)
        total = int(meta["total_frames"])
        expected = total * atlas.n_rois * 4
        if not series.is_file() or series.stat().st_size != expected:
            size = series.stat().st_size if series.is_file() else "missing"
            raise InputError(f"{series}: expected {expected} bytes ({total} frames x {atlas.n_rois} ROIs float32), "
                             f"found {size}; the cohort is incomplete or corrupted — re-create it.")
        data = np.memmap(series, dtype="<f4", mode="r", shape=(total, atlas.n_rois))
        return cls(path, atlas, table, meta, data)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return f"Cohort({str(self.path)!r}, n_recordings={len(self)}, atlas={self.atlas.name!r})"

    @property
    def name(self) -> str:
        return str(self.meta.get("name", self.path.name))

    @property
    def preprocessing(self) -> PreprocSpec:
        return PreprocSpec(**self.meta.get("preprocessing", {}))

    @property
    def recording_ids(self) -> list[str]:
        return self.table["recording_id"].tolist()

    @property
    def data(self) -> np.ndarray:
        """The memory-mapped ``[total_frames, n_rois]`` array (read-only)."""
        return self._data

    def index_of(self, recording_id: str) -> int:
        hits = np.flatnonzero(self.table["recording_id"].to_numpy() == recording_id)
        if hits.size == 0:
            raise InputError(f"recording {recording_id!r} is not in cohort {self.path}.")
        return int(hits[0])

    def series(self, i: int | str) -> np.ndarray:
        """Recording ``i`` (position or id) as a read-only ``[n_frames, n_rois]`` view."""
        if isinstance(i, str):
            i = self.index_of(i)
        row = self.table.iloc[int(i)]
        off, n = int(row["offset"]), int(row["n_frames"])
        return self._data[off: off + n]

    def window(self, i: int, start: int, length: int) -> np.ndarray:
        """Frames ``start .. start+length`` of recording ``i``, ``[length, n_rois]``."""
        row = self.table.iloc[int(i)]
        off = int(row["offset"]) + int(start)
        return self._data[off: off + int(length)]

    def iter_series(self) -> Iterator[tuple[pd.Series, np.ndarray]]:
        """Yield ``(row, series)`` for every recording, one at a time."""
        for i in range(len(self)):
            yield self.table.iloc[i], self.series(i)

    def subset(self, rows: Sequence[int] | np.ndarray | pd.Series) -> "Cohort":
        """A view on some recordings (boolean mask or positions); shares the memory map."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        return Cohort(self.path, self.atlas, self.table.iloc[rows].reset_index(drop=True), self.meta, self._data)

    def content_digest(self) -> str:
        """Hash of the recordings table (ids, TRs, lengths) — identifies derived caches."""
        cols = ["recording_id", "tr", "n_frames", "offset"]
        blob = self.table[cols].to_csv(sep="\t", index=False).encode()
        return hashlib.sha256(blob + json.dumps(self.meta.get("preprocessing", {}), sort_keys=True).encode()).hexdigest()[:12]

    def series_digest(self) -> str:
        """Hash of the stored series file (read once per process and file version)."""
        f = self.path / self.meta.get("series_file", SERIES_FILE)
        st = f.stat()
        memo = (str(f.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
        if memo not in _SERIES_DIGESTS:
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 24), b""):
                    h.update(block)
            _SERIES_DIGESTS[memo] = h.hexdigest()[:16]
        return _SERIES_DIGESTS[memo]

    # ------------------------------------------------------------------ derived views
    def harmonized(self, target_tr: float | None, cache_dir: str | Path | None = None, progress: bool = False) -> "Cohort":
        """This cohort resampled to ``target_tr`` seconds (and re-z-scored).

        Returns ``self`` when ``target_tr`` is ``None`` or every recording already has it.
        Otherwise the resampled series are written once, recording by recording, to a
        cache cohort and memory-mapped from there on later calls. The cache is never written
        into the cohort (an input): it goes to ``cache_dir``, by default
        ``user_cache_dir()/harmonized`` (:func:`bi_core._io.user_cache_dir`: ``$BI_CORE_CACHE_DIR``,
        ``$XDG_CACHE_HOME/bi_core`` or ``~/.cache/bi_core``), with a temp-dir fallback when
        that is not writable. The cache is keyed on the recordings table, the preprocessing and
        the stored series, so cohorts at different paths share it only when their data are the same.
        """
        if target_tr is None or np.allclose(self.table["tr"].to_numpy(float), target_tr, rtol=1e-4):
            return self
        key = f"tr-{float(target_tr):g}-{self.content_digest()}-{self.series_digest()}"
        candidates = [Path(cache_dir)] if cache_dir else [user_cache_dir() / "harmonized",
                                                           Path(tempfile.gettempdir()) / "bi_core-cache"]
        for base in candidates:
            target = base / key
            if (target / "cohort.json").is_file():
                return self._open_cached(target)
        spec = PreprocSpec(target_tr=float(target_tr), zscore=True)
        last_err: Exception | None = None
        for base in candidates:
            target = base / key
            try:
                base.mkdir(parents=True, exist_ok=True)
                self.write_copy(target, spec=spec, name=f"{self.name}@{target_tr:g}s",
                                progress=f"resampling {self.name} to TR {target_tr:g} s" if progress else None)
                return self._open_cached(target)
            except PermissionError as exc:
                last_err = exc
                continue
            except OSError as exc:
                # another process (e.g. a DDP rank) finished the same cache first
                if (target / "cohort.json").is_file():
                    return self._open_cached(target)
                last_err = exc
        raise InputError(f"could not write a TR-harmonized cache for {self.path}: {last_err}")

    def write_copy(self, out: str | Path, rows: Sequence[int] | np.ndarray | None = None,
                   spec: PreprocSpec | None = None, name: str | None = None, overwrite: bool = False,
                   progress: str | None = None) -> "Cohort":
        """Write recordings of this cohort (all, or the positions ``rows``) to a new cohort store ``out``.

        Phenotypes and their types are kept; ``cohort.json`` records ``derived_from`` (this
        cohort's path). With ``spec`` every series is preprocessed again (e.g. resampled);
        without it the stored values are copied. ``progress``: a progress-bar label (none
        when ``None``). Atomic, like every :class:`CohortWriter`.
        """
        pre = self.preprocessing if spec is None else self.preprocessing.then(spec)
        with CohortWriter(out, self.atlas, pre, name=name or self.name, extra_meta={"derived_from": str(self.path)},
                          types=self.meta.get("phenotypes"), overwrite=overwrite, recode_diagnoses=False) as w:
            it: Any = range(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
            if progress:
                from tqdm.auto import tqdm

                it = tqdm(it, desc=progress, unit="rec")
            for i in it:
                row = self.table.iloc[int(i)].to_dict()
                x = np.asarray(self.series(int(i)), dtype=np.float64)
                base_cols = {k: row.pop(k) for k in ("recording_id", "subject", "session", "run", "dataset",
                                                      "site", "tr")}
                row.pop("n_frames"), row.pop("offset")
                w.add(x, spec=spec, **base_cols, **row)
        return Cohort.open(out)

    def _open_cached(self, target: Path) -> "Cohort":
        c = Cohort.open(target)
        # keep the original cohort's identity (path for messages, name) with the new data
        c.meta = {**c.meta, "name": self.name, "source_path": str(self.path)}
        return c

    # ------------------------------------------------------------------ summaries
    def info(self) -> dict[str, Any]:
        """A JSON-able summary (what ``bi-core info --json`` prints)."""
        t = self.table
        dx = t["diagnosis"].fillna("n/a") if "diagnosis" in t else pd.Series(["n/a"] * len(t))
        dx_counts = {k: int(v) for k, v in dx.value_counts().items()}
        dx_counts = {k: dx_counts[k] for k in (*default_level_order(dx[dx != "n/a"]), "n/a") if k in dx_counts}
        columns = self.phenotype_columns()
        dur_s = (t["tr"] * t["n_frames"]).astype(float)
        return {
            "path": str(self.path),
            "name": self.name,
            "format_version": int(self.meta.get("version", VERSION)),
            "atlas": self.atlas.name,
            "n_recordings": int(len(t)),
            "n_subjects": int(t["subject"].nunique()),
            "n_rois": int(self.atlas.n_rois),
            "networks": self.atlas.network_sizes(),
            "regions": len(self.atlas.regions),
            "tr": sorted({round(float(v), 6) for v in t["tr"]}),
            "datasets": {str(k): int(v) for k, v in t["dataset"].value_counts().sort_index().items()},
            "sites": {str(k): int(v) for k, v in t["site"].value_counts().sort_index().items()},
            "diagnosis_counts": dx_counts,
            "n_frames": {"min": int(t["n_frames"].min()), "median": float(t["n_frames"].median()),
                         "max": int(t["n_frames"].max()), "total": int(t["n_frames"].sum())},
            "hours": round(float(dur_s.sum()) / 3600, 3),
            "sessions_per_subject": round(float(len(t) / max(1, t["subject"].nunique())), 3),
            "phenotypes": [c for c, d in columns.items() if d["type"] != "n/a"],
            "phenotype_columns": columns,
            "preprocessing": self.meta.get("preprocessing", {}),
        }

    def phenotype_columns(self) -> dict[str, dict[str, Any]]:
        """Every phenotype column with its type, levels (categorical) or range (numeric).

        Returns
        -------
        dict
            Column → ``{"type": "categorical", "levels": {level: n_subjects}, "n_missing": ...}``,
            ``{"type": "numeric", "min": ..., "max": ..., "n_missing": ...}`` or
            ``{"type": "n/a", ...}`` (no value known); ``n_missing`` counts recordings.
            Levels are in :data:`DIAGNOSIS_LEVELS` order for ADNI diagnoses, else sorted.
        """
        t = self.table
        stored = self.meta.get("phenotypes", {})
        out: dict[str, dict[str, Any]] = {}
        for c in t.columns:
            if c in BOOKKEEPING_COLUMNS:
                continue
            col = t[c]
            kind = stored.get(c) or ("n/a" if col.isna().all() else "numeric"
                                     if pd.api.types.is_numeric_dtype(col) else "categorical")
            if c == "site" and col.fillna("").eq("").all():
                kind = "n/a"
            d: dict[str, Any] = {"type": kind, "n_missing": int(col.isna().sum())}
            if kind == "categorical":
                known = t.loc[col.notna() & col.astype(str).ne(""), ["subject", c]]
                n = known.groupby(c)["subject"].nunique()
                d["levels"] = {str(k): int(n[k]) for k in default_level_order(n.index)}
            elif kind == "numeric":
                d.update(min=float(col.min()), max=float(col.max()))
            out[str(c)] = d
        return out

    def summary(self) -> str:
        """A human-readable multi-line summary (what ``bi-core info`` prints)."""
        d = self.info()
        nets = ", ".join(f"{k} {v}" for k, v in d["networks"].items())
        dx = ", ".join(f"{k} {v}" for k, v in d["diagnosis_counts"].items()) or "none"
        lines = [
            f"cohort      {d['name']}  ({d['path']}, format v{d['format_version']})",
            f"recordings  {d['n_recordings']} from {d['n_subjects']} subjects "
            f"({d['sessions_per_subject']:.2f} per subject), {d['hours']:.2f} h of data",
            f"atlas       {d['atlas']}: {d['n_rois']} ROIs in {len(d['networks'])} networks ({nets})"
            + (f", {d['regions']} anatomical regions" if d["regions"] else ""),
            f"TR (s)      {', '.join(f'{v:g}' for v in d['tr'])}",
            f"frames      min {d['n_frames']['min']}, median {d['n_frames']['median']:g}, max {d['n_frames']['max']}",
            f"datasets    {', '.join(f'{k} {v}' for k, v in d['datasets'].items())}",
            f"sites       {', '.join(f'{k or chr(8212)} {v}' for k, v in d['sites'].items())}",
            f"diagnosis   {dx}",
            f"phenotypes  {', '.join(_describe(k, v) for k, v in d['phenotype_columns'].items()) or 'none'}",
            f"preproc     {', '.join(f'{k}={v}' for k, v in d['preprocessing'].items())}",
        ]
        return "\n".join(lines)


def _describe(name: str, col: dict[str, Any]) -> str:
    """``diagnosis (categorical: ADHD 3, control 3)`` / ``age (numeric 8-12)`` for the summary."""
    if col["type"] == "categorical":
        levels = list(col["levels"].items())
        shown = ", ".join(f"{k} {v}" for k, v in levels[:6]) + (f", +{len(levels) - 6} more" if len(levels) > 6 else "")
        return f"{name} (categorical: {shown})"
    if col["type"] == "numeric":
        return f"{name} (numeric {col['min']:g}–{col['max']:g})"
    return f"{name} (n/a)"


def open_cohorts(paths: Sequence[str | Path]) -> list[Cohort]:
    """Open several cohorts and check they share one atlas."""
    cohorts = [Cohort.open(p) for p in paths]
    for c in cohorts[1:]:
        cohorts[0].atlas.check_same(c.atlas, what=f"cohorts {cohorts[0].path} and {c.path}", fix=SAME_ATLAS_FIX)
    return cohorts
