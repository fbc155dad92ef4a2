"""Chapter 3, network predictability, and the analyses of the synthetic evaluation cohort that
chapters 2-6 read (step ``analyses``: :func:`bi_core.analysis.suite.run_suite` and the learning curve)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..steps import Context, Step, analysis_settings
from . import Chapter

# In-function imports: each step imports what it runs inside its function: a step's stamp records the bi_core sources
# its process loaded (bi_core/book/__init__.py), so an edit re-runs only the steps that ran that code.


#: Recordings of the evaluation cohort that the synthetic learning curve scores (a seeded subset keeps it cheap).
CURVE_RECORDINGS = 40


def _analyses(ctx: Context) -> None:
    from .._io import atomic_dir

    with atomic_dir(ctx.results, overwrite=True) as out:
        _analyses_into(ctx, out)


def _analyses_into(ctx: Context, out: Path) -> None:
    from .._io import write_tsv
    from ..analysis.learning_curve import learning_curve
    from ..analysis.suite import run_suite
    from ..cohort import Cohort

    p = ctx.preset
    run_suite(ctx.runs / "pretrain", ctx.synth_dir / "eval", out,
              # the analyses end the longest chain of steps and often run alone: worker processes
              # for the folds (results do not depend on it; tests/test_classify.py)
              p.cv(ctx.seed, n_jobs=p.workers, backend="loky"),
              ground_truth=ctx.synth_dir / "ground_truth.json", occlusion_windows=p.occlusion_windows,
              # the linear references learn from the pretraining cohort, as the model did
              linear_fit_cohort=ctx.synth_dir / "pretrain", progress=not ctx.quiet)
    # is the model trained long enough? its snapshots against the references, on recordings of the evaluation
    # cohort (nobody trained on them) with the references fitted on the pretraining cohort
    curve = learning_curve(ctx.runs / "pretrain", Cohort.open(ctx.synth_dir / "eval"),
                           fit_cohort=Cohort.open(ctx.synth_dir / "pretrain"), max_recordings=CURVE_RECORDINGS,
                           seed=ctx.seed, progress=not ctx.quiet)
    write_tsv(out / "learning_curve.tsv", curve)


def analysis_params(c: Context) -> dict[str, Any]:
    """The papermill parameters of the chapters that read the synthetic analyses (3, 5, 6)."""
    return {"suite_dir": str(c.results), "eval_cohort": str(c.synth_dir / "eval"),
            "ground_truth": str(c.synth_dir / "ground_truth.json"), "preset": c.preset.name, "seed": c.seed}


CHAPTER = Chapter(
    "03_predictability", part="Synthetic cohorts with a known truth", params=analysis_params, reads=("analyses",),
    # the analyses (inference only) end the longest chain and usually run alone: two threads
    steps=(Step("analyses", _analyses, lambda c: c.results, deps=("pretrain", "synth"), settings=analysis_settings,
                threads=2, priority=4),))
