"""Chapter 4, cross-network interactions: the read-out study on both synthetic scenarios and on
HCP (steps ``readouts``, ``readouts-real``) and the routing control (step ``routing``)."""

from __future__ import annotations

from typing import Any

from ..steps import Context, Step
from . import Chapter
from .ch03_predictability import analysis_params
from .ch07_real_data import _real_fold_runs

# In-function imports: each step imports what it runs inside its function: a step's stamp records the bi_core sources
# its process loaded (bi_core/book/__init__.py), so an edit re-runs only the steps that ran that code.


def _readout_kw(ctx: Context) -> dict[str, Any]:
    # the sizes live beside the study (bi_core.analysis.readouts.SIZES), so tuning them re-runs this step only
    from ..analysis.readouts import study_size

    return study_size(ctx.preset.name, ctx.seed)


def _readouts(ctx: Context) -> None:
    from ..analysis.readouts import readout_scenario, write_study

    kw = _readout_kw(ctx)
    # the book's one model on both synthetic scenarios: the static one, and the dynamic one (disease acts on
    # what time-averaged FC does not see; OUT/dynamic has the static layout one level down)
    from .._io import atomic_dir

    parts = [readout_scenario(ctx.runs / "pretrain", synth / "eval", synth / "ground_truth.json", name,
                              suite_dir=results, progress=not ctx.quiet, **kw)
             for name, synth, results in (("static", ctx.synth_dir, ctx.results),
                                          ("dynamic", ctx.dynamic / "synth", ctx.dynamic / "results"))]
    with atomic_dir(ctx.out / "readouts", overwrite=True) as out:
        write_study(out, parts)


def _readouts_real(ctx: Context) -> None:
    from .._io import atomic_dir
    from ..analysis.readouts import real_readouts

    # every HCP subject, each read by the fold run that held it out
    folds = [(run, held) for run, held, _ in _real_fold_runs(ctx)]
    kw = _readout_kw(ctx)
    with atomic_dir(ctx.out / "readouts-real", overwrite=True) as out:
        real_readouts(folds, ctx.real_dir, (), out, interactions=ctx.results_real / "interactions_hcp.tsv",
                      seed=kw["seeds"][0], windows=kw["windows"], gradient_windows=kw["gradient_windows"],
                      ig_steps=kw["ig_steps"], progress=not ctx.quiet)


#: The routing control per book preset: the cohort size (:data:`bi_core.routing.SIZES`) and its model's
#: training (the book's model size at the cohort's own TR; 4 mask draws per step; about 600 steps at ``book``).
ROUTING_BOOK: dict[str, dict[str, Any]] = {
    "smoke": {"size": "smoke", "model": "tiny", "epochs": 50},
    "default": {"size": "book", "model": "small", "epochs": 90},
    "full": {"size": "book", "model": "small", "epochs": 90},
}


def _routing_settings(c: Context) -> dict[str, Any]:
    return {**ROUTING_BOOK[c.preset.name], "seed": c.seed}


def routing_train_config(book_preset: str, seed: int) -> Any:
    """The :class:`~bi_core.runs.TrainConfig` of the routing control's model for a book preset (:data:`ROUTING_BOOK`)."""
    from ..model_config import SIZES
    from ..runs import TrainConfig

    s = ROUTING_BOOK[book_preset]
    return TrainConfig(model=SIZES[s["model"]](), target_tr=None, epochs=s["epochs"], batch_size=16, mask_groups=4,
                       val_fraction=0.25, patience=0, seed=seed)


def _routing(ctx: Context) -> None:
    """The routing control (chapter 4): a cohort with one planted source per network, a model trained on it,
    every read-out scored on the held-out subjects (:mod:`bi_core.routing`, :mod:`bi_core.analysis.routing`)."""
    from .._io import atomic_dir, write_json, write_tsv
    from ..analysis.routing import routing_control
    from ..published import bundle_path, install_or_train
    from ..routing import generate_routing

    s = ROUTING_BOOK[ctx.preset.name]
    with atomic_dir(ctx.out / "routing", overwrite=True) as home:
        generate_routing(home / "data", s["size"], seed=ctx.seed)
        # the published weights when valid for this code and data (as chapter 2's pretrain), else trained here
        summary = install_or_train(
            bundle_path(ctx.preset.name, "routing"), [home / "data" / "cohort"],
            routing_train_config(ctx.preset.name, ctx.seed), home / "run", name="routing", weights=ctx.weights,
            publish_as=(ctx.preset.name, f"bi-core reproduce --preset {ctx.preset.name} --seed {ctx.seed} "
                                         "--publish-weights --steps routing") if ctx.publish else None,
            progress=not ctx.quiet)
        res = routing_control(home / "run", home / "data", seed=ctx.seed, progress=not ctx.quiet)
        write_tsv(home / "routing_scores.tsv", res.scores)
        write_tsv(home / "routing_summary.tsv", res.summary)
        write_tsv(home / "routing_predictability.tsv", res.predictability)
        write_json(home / "routing.json", {**res.meta, "steps": summary["steps"], "train_s": summary["wall_time_s"]})


CHAPTER = Chapter(
    "04_interactions", part="Synthetic cohorts with a known truth",
    params=lambda c: {**analysis_params(c), "readouts_dir": str(c.out / "readouts"),
                      "readouts_real_dir": str(c.out / "readouts-real"), "routing_dir": str(c.out / "routing")},
    reads=("analyses", "readouts", "readouts-real", "routing"),
    steps=(
        # which read-out of the model recovers the altered couplings: after the dynamic scenario's steps
        Step("readouts", _readouts, lambda c: c.out / "readouts",
             deps=("pretrain", "synth", "analyses", "synth-dynamic", "analyses-dynamic"), settings=_readout_kw,
             priority=12),
        Step("readouts-real", _readouts_real, lambda c: c.out / "readouts-real",
             deps=("pretrain-real", "real", "analyses-real"), settings=_readout_kw, priority=13),
        # the positive control for the title claim: its own cohort and model
        Step("routing", _routing, lambda c: c.out / "routing", settings=_routing_settings, priority=14),
    ))
