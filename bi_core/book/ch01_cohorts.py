"""Chapter 1, the cohorts: the synthetic cohorts with their ground truth (step ``synth``)."""

from __future__ import annotations

from ..steps import Context, Step
from . import Chapter

# In-function imports: each step imports what it runs inside its function: a step's stamp records the bi_core sources
# its process loaded (bi_core/book/__init__.py), so an edit re-runs only the steps that ran that code.


def _synth(ctx: Context) -> None:
    from ..synth import generate

    generate(ctx.synth_dir, ctx.preset.synth, seed=ctx.seed, overwrite=True, progress=not ctx.quiet)


CHAPTER = Chapter(
    "01_cohorts", part="Synthetic cohorts with a known truth",
    params=lambda c: {"synth_dir": str(c.synth_dir), "real_cohort": str(c.real_dir),
                      "dynamic_dir": str(c.dynamic / "synth"), "preset": c.preset.name, "seed": c.seed},
    reads=("synth", "real", "synth-dynamic"),
    steps=(Step("synth", _synth, lambda c: c.synth_dir, settings=lambda c: {"synth": c.preset.synth, "seed": c.seed},
                priority=0),))
