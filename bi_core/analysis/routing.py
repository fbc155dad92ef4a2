"""The routing control scored: does each read-out name the planted source of every network?

:mod:`bi_core.routing` writes a cohort in which every network is reconstructable from
exactly one partner network. A model trained on it is read with every registered read-out
(:mod:`bi_core.analysis.readout_registry`): the decoder's attention per layer and
head and averaged, enrichment, value-weighted attention, rollout, input × gradient and
integrated gradients, occlusion ΔR² and share, source-only r, and the model-free network
FC and partial correlation. :func:`routing_control` scores each on whether its strongest
source of each target is the planted partner (:func:`bi_core.routing.score_routing`), on
recordings of subjects the run did not train on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..cohort import Cohort
from ..routing import routing_summary, score_routing
from .interactions import predictability_and_interactions
from .learning_curve import held_out_recordings
from .readout_registry import study_order
from .readouts import head_columns, join_readouts, model_readouts

# In-function imports: ..runs (torch) loads only when the routing control scores a model.


@dataclass
class RoutingResult:
    """``values`` (one row per recording × target × source, a column per read-out), ``scores``
    (per read-out and target, :func:`bi_core.routing.score_routing`), ``summary`` (hits per
    read-out) and ``predictability`` (the model's R² per recording and network)."""

    values: pd.DataFrame
    scores: pd.DataFrame
    summary: pd.DataFrame
    predictability: pd.DataFrame
    meta: dict[str, Any]


def routing_control(run: str | Path, routing_dir: str | Path, recordings: Sequence[str] | None = None,
                    windows: int = 2, gradient_windows: int = 1, seed: int = 0, device: str = "cpu",
                    progress: bool = False) -> RoutingResult:
    """Every read-out of ``run`` on the routing cohort ``routing_dir`` (``cohort/`` + ``routing_truth.json``).

    ``recordings``: the recordings read (default: those of subjects outside the run's
    training split, ``train_subjects`` in ``RUN/summary.json``).
    """
    from ..runs import load_model

    routing_dir = Path(routing_dir)
    truth = json.loads((routing_dir / "routing_truth.json").read_text())
    cohort = Cohort.open(routing_dir / "cohort")
    model, info = load_model(run, cohort=cohort, device=device)
    if recordings is None:
        summary = Path(run) / "summary.json"
        train = json.loads(summary.read_text()).get("train_subjects", []) if summary.is_file() else []
        recordings = held_out_recordings(cohort, train)
    recordings = list(recordings)
    v = model_readouts(model, info, cohort, recordings, windows=windows, gradient_windows=gradient_windows, seed=seed,
                       device=device, progress=progress)
    pred, inter = predictability_and_interactions(model, info, cohort, recordings=recordings, device=device,
                                                  progress=progress)
    v = join_readouts(v, cohort, inter)
    # every registered read-out the table holds, the per-layer/head attention where the registry lists it
    scores = score_routing(v, truth["source"], [r for r in study_order(head_columns(v)) if r in v])
    meta = {"run": str(run), "routing_dir": str(routing_dir), "recordings": recordings, "windows": windows,
            "gradient_windows": gradient_windows, "seed": int(seed), "model_step": info.step,
            "pairs": truth["pairs"]}
    return RoutingResult(v, scores, routing_summary(scores), pred, meta)


__all__ = ["RoutingResult", "routing_control"]
