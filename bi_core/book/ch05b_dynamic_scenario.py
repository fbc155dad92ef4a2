"""Chapter 5b, the dynamic scenario: its cohorts (step ``synth-dynamic``) and the static book's
model applied to them (step ``analyses-dynamic``); no training is added."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..steps import Context, Step, analysis_settings
from . import Chapter

# In-function imports: each step imports what it runs inside its function: a step's stamp records the bi_core sources
# its process loaded (bi_core/book/__init__.py), so an edit re-runs only the steps that ran that code.


#: The dynamic scenario's cohorts per synthetic preset: the preset's atlas, sites and
#: recording lengths, a smaller evaluation cohort with baseline visits only, and a smaller
#: healthy cohort (the linear references learn from it). The book applies the static
#: scenario's pretrained model to them (chapter 5b says why), so no training is added.
DYNAMIC_SIZES: dict[str, dict[str, int]] = {
    "smoke": {"n_cn": 8, "n_mci": 8, "n_ad": 8, "pretrain_subjects": 2},
    "default": {"n_cn": 24, "n_mci": 24, "n_ad": 24, "pretrain_subjects": 10},
}


def dynamic_synth_config(synth_preset: str) -> Any:
    """The :class:`~bi_core.synth.SynthConfig` of the book's dynamic cohorts for a synthetic preset."""
    from ..errors import ConfigError
    from ..synth import PRESETS

    if synth_preset not in DYNAMIC_SIZES:
        raise ConfigError(f"no dynamic-scenario sizes for synthetic preset {synth_preset!r}; "
                          f"choose one of {sorted(DYNAMIC_SIZES)} (bi_core.steps.DYNAMIC_SIZES).")
    z = DYNAMIC_SIZES[synth_preset]
    base = PRESETS[synth_preset]
    return replace(base, name=f"{synth_preset}-dynamic", n_cn=z["n_cn"], n_mci=z["n_mci"], n_ad=z["n_ad"],
                   max_visits=1, pretrain=tuple(replace(d, n_subjects=z["pretrain_subjects"]) for d in base.pretrain))


def _synth_dynamic(ctx: Context) -> None:
    from ..synth import generate

    generate(ctx.dynamic / "synth", dynamic_synth_config(ctx.preset.synth), seed=ctx.seed, overwrite=True,
             progress=not ctx.quiet, scenario="dynamic")


def _analyses_dynamic(ctx: Context) -> None:
    from ..analysis.suite import run_suite

    p = ctx.preset
    synth = ctx.dynamic / "synth"
    # the static book's model on the dynamic cohort; the same folds, seeds and penalties as the static
    # analyses (one worker: this step runs beside others), plus the dynamic-FC reference
    run_suite(ctx.runs / "pretrain", synth / "eval", ctx.dynamic / "results",
              p.cv(ctx.seed, n_jobs=1),
              ground_truth=synth / "ground_truth.json", occlusion_windows=p.occlusion_windows,
              linear_fit_cohort=synth / "pretrain", progress=not ctx.quiet, dynamic_fc=True,
              # the two comparisons chapter 5b reports (the 3-class task would double the cost)
              tasks=DYNAMIC_TASKS)


#: The classification tasks of the dynamic scenario's analyses.
DYNAMIC_TASKS = ("ad_cn", "mci_cn")


def _synth_dynamic_settings(c: Context) -> dict[str, Any]:
    from ..synth import SCENARIOS

    return {"synth": dynamic_synth_config(c.preset.synth).to_dict(), "scenario": SCENARIOS["dynamic"].to_dict(),
            "seed": c.seed}


CHAPTER = Chapter(
    "05b_dynamic_scenario", part="Synthetic cohorts with a known truth",
    params=lambda c: {"suite_dir": str(c.dynamic / "results"), "static_suite_dir": str(c.results),
                      "synth_dir": str(c.dynamic / "synth"), "static_synth_dir": str(c.synth_dir),
                      "preset": c.preset.name, "seed": c.seed},
    reads=("analyses-dynamic", "analyses", "synth"),
    steps=(
        Step("synth-dynamic", _synth_dynamic, lambda c: c.dynamic / "synth", settings=_synth_dynamic_settings,
             priority=10),
        Step("analyses-dynamic", _analyses_dynamic, lambda c: c.dynamic / "results",
             deps=("pretrain", "synth-dynamic"),
             settings=lambda c: {**analysis_settings(c), "dynamic_fc": True, "tasks": list(DYNAMIC_TASKS)},
             priority=11),
    ))
