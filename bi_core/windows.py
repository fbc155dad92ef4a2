"""Window datasets over cohort stores: random crops for training, tiles for analysis.

A *window* is ``T`` consecutive frames of one recording, returned ROI-major as the
tokenizer wants it: a batch is a float32 array/tensor ``[B, n_rois, T]``. Windows are
sliced straight out of the cohorts' memory maps (no per-step file parsing); the only
copy is the ``[T, n_rois] → [n_rois, T]`` transpose into the batch buffer.

Two views:

- :class:`RandomCrops` (training) — uniformly random crops, deterministic from
  ``(seed, epoch)`` so a resumed run reads exactly the batches an uninterrupted run would.
  **Epoch length** (a design choice of this companion): an epoch has as many crops as
  there are non-overlapping windows in the training recordings, ``Σ_i ⌊n_frames_i / T⌋``;
  recording ``i`` contributes exactly ``⌊n_frames_i / T⌋`` crops at random offsets,
  shuffled across recordings. So one epoch sees about as many frames as the data hold,
  and long recordings weigh in proportion to their length.
- :class:`TiledWindows` (analysis) — windows that tile every recording
  (:func:`bi_core.preprocess.tile_starts`: non-overlapping by default, the last one
  aligned to the end), with an index table that maps each window back to its recording.

Several cohorts (same atlas, checked) are addressed together through
:class:`RecordingSet`, after each is TR-harmonized
(:meth:`bi_core.cohort.Cohort.harmonized`; default target TR 1.5 s — between multiband
0.6–0.8 s and legacy 3 s acquisitions, a design choice; ``None`` keeps native TRs).
:meth:`RecordingSet.split_by_subject` makes the validation split by subject, so no
subject is ever on both sides.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import streams
from .atlas import NetworkAtlas
from .cohort import SAME_ATLAS_FIX, Cohort
from .errors import ConfigError, InputError
from .folds import held_out_subjects
from .preprocess import random_starts, tile_starts

if TYPE_CHECKING:  # torch is imported where batches are made, not at module import
    import torch

#: Default target repetition time (s) of TR harmonization (design choice, see module docstring).
DEFAULT_TARGET_TR = 1.5


class RecordingSet:
    """Recordings of one or several cohorts on one atlas, addressed by one flat index.

    Parameters
    ----------
    cohorts
        Open cohorts (already TR-harmonized if wanted), all on the same atlas.
    rows
        Optional ``(cohort position, row position)`` pairs to keep; default every recording.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per recording: ``cohort`` (position in ``cohorts``), ``cohort_name``,
        ``row`` (position in that cohort's table), ``recording_id``, ``subject``,
        ``tr`` (s), ``n_frames``, ``offset`` (first frame in the cohort's series file).
    """

    def __init__(self, cohorts: Sequence[Cohort], rows: Sequence[tuple[int, int]] | None = None) -> None:
        if not cohorts:
            raise ConfigError("a RecordingSet needs at least one cohort.")
        self.cohorts = tuple(cohorts)
        for c in self.cohorts[1:]:
            self.cohorts[0].atlas.check_same(c.atlas, what=f"cohorts {self.cohorts[0].path} and {c.path}",
                                             fix=SAME_ATLAS_FIX)
        if rows is None:
            rows = [(ci, ri) for ci, c in enumerate(self.cohorts) for ri in range(len(c))]
        parts = []
        for ci, c in enumerate(self.cohorts):
            ri = [r for cj, r in rows if cj == ci]
            t = c.table.iloc[ri][["recording_id", "subject", "tr", "n_frames", "offset"]].copy()
            t.insert(0, "row", ri)
            t.insert(0, "cohort_name", c.name)
            t.insert(0, "cohort", ci)
            parts.append(t)
        self.table = pd.concat(parts, ignore_index=True)
        self.table["n_frames"] = self.table["n_frames"].astype(np.int64)
        self.table["offset"] = self.table["offset"].astype(np.int64)
        # per-recording arrays used in the hot path (no pandas per step)
        self._cohort = self.table["cohort"].to_numpy(np.int64)
        self._offset = self.table["offset"].to_numpy(np.int64)
        self._data = [c.data for c in self.cohorts]

    # ------------------------------------------------------------------ views
    @property
    def atlas(self) -> NetworkAtlas:
        return self.cohorts[0].atlas

    @property
    def n_frames(self) -> np.ndarray:
        """Frames per recording, ``[n_recordings]``."""
        return self.table["n_frames"].to_numpy(np.int64)

    @property
    def subjects(self) -> np.ndarray:
        """Distinct subjects, sorted."""
        return np.unique(self.table["subject"].astype(str).to_numpy())

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return (f"RecordingSet({len(self)} recordings, {len(self.subjects)} subjects, "
                f"{len(self.cohorts)} cohort(s), atlas={self.atlas.name!r})")

    def subset(self, positions: Sequence[int] | np.ndarray) -> "RecordingSet":
        """The recordings at ``positions`` (a boolean mask or integer positions)."""
        pos = np.asarray(positions)
        if pos.dtype == bool:
            pos = np.flatnonzero(pos)
        t = self.table.iloc[pos]
        return RecordingSet(self.cohorts, list(zip(t["cohort"].tolist(), t["row"].tolist())))

    def at_least(self, window: int) -> "RecordingSet":
        """The recordings with at least ``window`` frames (shorter ones cannot give a window)."""
        keep = self.n_frames >= window
        if not keep.any():
            raise InputError(f"no recording in {[str(c.path) for c in self.cohorts]} has {window} frames "
                             f"(longest: {int(self.n_frames.max())} frames after TR harmonization); "
                             "use a shorter window.")
        return self if keep.all() else self.subset(keep)

    def split_by_subject(self, val_fraction: float, seed: int,
                         val_subjects: Sequence[str] = ()) -> tuple["RecordingSet", "RecordingSet | None"]:
        """Split into (train, validation) by subject, deterministically from ``seed``.

        Subjects are identified by their ``subject`` label across all cohorts (two cohorts
        using the same label are kept on the same side: never a leak). The validation
        side gets ``max(1, round(val_fraction * n_subjects))`` subjects.

        Parameters
        ----------
        val_subjects
            When given, exactly these subjects are held out (``val_fraction`` and ``seed``
            are then not used): the subject-level folds of the book's real-data runs.

        Returns
        -------
        (train, val)
            ``val`` is ``None`` when ``val_fraction == 0`` and no ``val_subjects`` are given.
        """
        if len(val_subjects):
            return self._split_named(val_subjects)
        if not 0 <= val_fraction < 1:
            raise ConfigError(f"val_fraction={val_fraction} must be in [0, 1).")
        if val_fraction == 0:
            return self, None
        subjects = self.subjects
        if len(subjects) < 2:
            raise ConfigError(f"a validation split by subject needs at least 2 subjects, found {len(subjects)}; "
                              "set val_fraction: 0 (no validation, no early stopping).")
        n_val = min(len(subjects) - 1, max(1, int(round(val_fraction * len(subjects)))))
        val_subjects = held_out_subjects(subjects, n_val, [int(seed), streams.VALIDATION_SUBJECTS])
        is_val = self.table["subject"].astype(str).isin(val_subjects).to_numpy()
        return self.subset(~is_val), self.subset(is_val)

    def _split_named(self, val_subjects: Sequence[str]) -> tuple["RecordingSet", "RecordingSet"]:
        named = {str(s) for s in val_subjects}
        have = {str(s) for s in self.subjects}
        missing = sorted(named - have)
        if missing:
            raise ConfigError(f"val_subjects {missing} have no recording (of at least one window) in "
                              f"{[str(c.path) for c in self.cohorts]}; name subjects of the training cohorts.")
        if not have - named:
            raise ConfigError(f"val_subjects {sorted(named)} are every subject of {[str(c.path) for c in self.cohorts]}: "
                              "nothing is left to train on; hold out fewer subjects.")
        is_val = self.table["subject"].astype(str).isin(named).to_numpy()
        return self.subset(~is_val), self.subset(is_val)

    # ------------------------------------------------------------------ reading
    def read(self, recordings: np.ndarray, starts: np.ndarray, window: int,
             out: np.ndarray | None = None) -> np.ndarray:
        """Windows ``starts[b] .. starts[b] + window`` of recordings ``recordings[b]``.

        Parameters
        ----------
        recordings, starts
            ``[B]`` integer positions in :attr:`table` and start frames.
        out
            Optional ``[B, n_rois, window]`` float32 buffer to fill (e.g. pinned memory).

        Returns
        -------
        ndarray, float32 ``[B, n_rois, window]`` (ROI-major).
        """
        recordings = np.asarray(recordings, dtype=np.int64)
        starts = np.asarray(starts, dtype=np.int64)
        B = len(recordings)
        if out is None:
            out = np.empty((B, self.atlas.n_rois, window), dtype=np.float32)
        for b in range(B):
            i = recordings[b]
            a = self._offset[i] + starts[b]
            out[b] = self._data[self._cohort[i]][a: a + window].T  # [T, R] memmap slice → [R, T]
        return out


class RandomCrops:
    """Training windows: random crops, deterministic from ``(seed, epoch)``.

    Parameters
    ----------
    recordings
        The training recordings (each at least ``window`` frames).
    window
        Crop length ``T`` in frames.
    seed
        Seed of the crop plan; epoch ``e`` uses ``np.random.default_rng([seed, e])``.
    """

    def __init__(self, recordings: RecordingSet, window: int, seed: int = 0) -> None:
        if window <= 0:
            raise ConfigError(f"window length must be positive, got {window}.")
        self.recordings = recordings.at_least(window)
        self.window = int(window)
        self.seed = int(seed)
        self._per_rec = self.recordings.n_frames // self.window

    @property
    def windows_per_epoch(self) -> int:
        """``Σ_i ⌊n_frames_i / T⌋``: the number of non-overlapping windows in the recordings."""
        return int(self._per_rec.sum())

    def steps_per_epoch(self, batch_size: int) -> int:
        """Full batches per epoch (the incomplete last batch is dropped)."""
        n = self.windows_per_epoch // int(batch_size)
        if n == 0:
            raise ConfigError(f"batch_size={batch_size} is larger than an epoch ({self.windows_per_epoch} windows "
                              f"of {self.window} frames); lower the batch size.")
        return n

    def plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """The epoch's crops in visiting order: ``(recording positions, start frames)``, each ``[N]``."""
        rng = np.random.default_rng([self.seed, int(epoch)])
        rec = np.repeat(np.arange(len(self.recordings), dtype=np.int64), self._per_rec)
        starts = random_starts(rng, self.recordings.n_frames[rec], self.window)
        order = rng.permutation(len(rec))
        return rec[order], starts[order]

    def batches(self, epoch: int, batch_size: int, start_step: int = 0) -> Iterator[np.ndarray]:
        """Yield the epoch's full batches, float32 ``[batch_size, n_rois, T]``, from ``start_step`` on."""
        rec, starts = self.plan(epoch)
        for s in range(int(start_step), self.steps_per_epoch(batch_size)):
            sl = slice(s * batch_size, (s + 1) * batch_size)
            yield self.recordings.read(rec[sl], starts[sl], self.window)


def fixed_windows(recordings: RecordingSet, window: int, max_windows: int | None = None,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic non-overlapping windows (e.g. the validation set).

    Every recording is tiled (:func:`tile_starts`); when there are more than
    ``max_windows`` tiles a subset is drawn with ``seed`` and kept in storage order.

    Returns
    -------
    (recording positions, start frames), each ``[N]``.
    """
    rec, starts = [], []
    for i, n in enumerate(recordings.n_frames):
        s = tile_starts(int(n), window)
        rec.append(np.full(len(s), i, dtype=np.int64))
        starts.append(s)
    r, s = np.concatenate(rec), np.concatenate(starts)
    if max_windows is not None and len(r) > max_windows:
        rng = np.random.default_rng([int(seed), streams.VALIDATION_WINDOWS])
        keep = np.sort(rng.choice(len(r), int(max_windows), replace=False))
        r, s = r[keep], s[keep]
    return r, s


def windows_of(info: Any, cohort: Cohort, recordings: Sequence[str] | None = None,
               tiles: "TiledWindows | None" = None, cache_dir: str | Path | None = None) -> "TiledWindows":
    """The windows an analysis of run ``info`` reads from ``cohort`` (``recordings``: ids, default all).

    ``tiles``: one :class:`TiledWindows` of the cohort shared by the analyses of a run
    (:func:`bi_core.analysis.suite.run_suite` tiles its cohort once); its subset is returned.
    Without it the cohort is tiled here, at the run's window and TR.
    """
    if tiles is None:
        return TiledWindows(cohort, info.window, target_tr=info.target_tr, recordings=recordings, cache_dir=cache_dir)
    tiles.check_reads(info, cohort)
    return tiles.subset(recordings)


class TiledWindows:
    """Analysis windows that tile each recording, mapped back to recording ids.

    Parameters
    ----------
    cohorts
        One cohort or several on the same atlas.
    window
        Window length ``T`` in frames (the model's ``window``).
    target_tr
        Repetition time (s) to resample to first — pass the checkpoint's
        (``info.target_tr`` from :func:`bi_core.runs.load_model`); ``None`` keeps native TRs.
    stride
        Step between window starts in frames (default ``window``: no overlap; the last
        window of a recording is aligned to its end so every frame is covered).
    recordings
        Optional recording ids to keep (default: all).
    cache_dir
        Where TR-harmonized copies are cached (default: the user cache, see
        :meth:`bi_core.cohort.Cohort.harmonized`; never inside a cohort).

    Attributes
    ----------
    index : pandas.DataFrame
        One row per window: ``recording_id``, ``cohort``, ``recording`` (position in
        :attr:`recordings_set`), ``window`` (0-based number within the recording),
        ``start`` (first frame, at ``target_tr``).
    skipped : list of str
        Recordings shorter than one window (they have no window).

    Examples
    --------
    >>> tiles = TiledWindows(cohort, info.window, target_tr=info.target_tr)  # doctest: +SKIP
    >>> for x, rows in tiles.batches(64):                                     # doctest: +SKIP
    ...     out = model(x, mask)          # x: [B, n_rois, T]; rows index tiles.index
    """

    def __init__(self, cohorts: Cohort | Sequence[Cohort], window: int, *, target_tr: float | None,
                 stride: int | None = None, recordings: Sequence[str] | None = None,
                 cache_dir: str | Path | None = None) -> None:
        cs = [cohorts] if isinstance(cohorts, Cohort) else list(cohorts)
        cs = [c.harmonized(target_tr, cache_dir=cache_dir) for c in cs]
        self._tile(RecordingSet(cs), window, target_tr, stride, recordings)

    def _tile(self, rs: RecordingSet, window: int, target_tr: float | None, stride: int | None,
              recordings: Sequence[str] | None) -> None:
        if recordings is not None:
            wanted = [str(r) for r in recordings]
            have = set(rs.table["recording_id"])
            missing = [r for r in wanted if r not in have]
            if missing:
                raise InputError(f"recording(s) {missing[:5]} are not in {[str(c.path) for c in rs.cohorts]}.")
            rs = rs.subset(rs.table["recording_id"].isin(wanted).to_numpy())
        self.recordings_set = rs
        self.window = int(window)
        self.target_tr = target_tr
        self.stride = stride
        rows = []
        self.skipped: list[str] = []
        for i, (rid, ci, n) in enumerate(zip(rs.table["recording_id"], rs.table["cohort"], rs.n_frames)):
            starts = tile_starts(int(n), self.window, stride)
            if len(starts) == 0:
                self.skipped.append(str(rid))
            rows.extend((rid, int(ci), i, k, int(s)) for k, s in enumerate(starts))
        self.index = pd.DataFrame(rows, columns=["recording_id", "cohort", "recording", "window", "start"])

    def subset(self, recordings: Sequence[str] | None) -> "TiledWindows":
        """The same windows restricted to ``recordings`` (ids; ``None``: all of them), without opening or resampling
        the cohorts again: the windows are those a new :class:`TiledWindows` with ``recordings`` would tile."""
        if recordings is None:
            return self
        sub = object.__new__(TiledWindows)
        sub._tile(self.recordings_set, self.window, self.target_tr, self.stride, recordings)
        return sub

    def check_reads(self, info: Any, cohort: Cohort) -> None:
        """Refuse shared windows that were not tiled for the run ``info`` (window, TR) from ``cohort``'s recordings."""
        if self.window != int(info.window) or self.target_tr != info.target_tr:
            raise InputError(f"the shared windows are {self.window} frames at TR {self.target_tr} s; the run "
                             f"{info.path} reads {info.window} frames at TR {info.target_tr} s.")
        extra = set(self.recordings_set.table["recording_id"]) - set(cohort.table["recording_id"])
        if extra:
            raise InputError(f"the shared windows hold recordings that cohort {cohort.path} does not have "
                             f"(e.g. {sorted(extra)[:3]}).")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> np.ndarray:
        """Window ``i`` of :attr:`index` as float32 ``[n_rois, T]``."""
        row = self.index.iloc[int(i)]
        return self.recordings_set.read(np.array([row["recording"]]), np.array([row["start"]]), self.window)[0]

    def batches(self, batch_size: int) -> Iterator[tuple["torch.Tensor", np.ndarray]]:
        """Yield ``(x, rows)``: float32 tensor ``[B, n_rois, T]`` and the ``[B]`` row positions in :attr:`index`."""
        import torch

        rec = self.index["recording"].to_numpy(np.int64)
        starts = self.index["start"].to_numpy(np.int64)
        for a in range(0, len(rec), int(batch_size)):
            rows = np.arange(a, min(a + int(batch_size), len(rec)))
            yield torch.from_numpy(self.recordings_set.read(rec[rows], starts[rows], self.window)), rows
