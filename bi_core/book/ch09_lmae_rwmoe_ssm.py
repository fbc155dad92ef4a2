"""Chapter 9, LMAE -> RWMOE -> SSM (step ``lmae-age``; it reuses the masking study's runs)."""

from __future__ import annotations

from ..steps import Context, Step
from . import Chapter

# In-function imports: each step imports what it runs inside its function: a step's stamp records the bi_core sources
# its process loaded (bi_core/book/__init__.py), so an edit re-runs only the steps that ran that code.


def _lmae(ctx: Context) -> None:
    from ..related.rwmoe_ssm.study import lmae_preset, run_lmae_age

    # the same preset as the masking study, whose runs it reuses
    run_lmae_age(ctx.synth_dir, ctx.lmae_dir, lmae_preset(ctx.study_preset, seed=int(ctx.seed)),
                 study_dir=ctx.study_dir, progress=not ctx.quiet)


CHAPTER = Chapter(
    "09_lmae_rwmoe_ssm", part="Related methods",
    params=lambda c: {"lmae_dir": str(c.lmae_dir), "synth_dir": str(c.synth_dir), "preset": c.preset.name,
                      "seed": c.seed},
    reads=("synth", "lmae-age"),
    steps=(Step("lmae-age", _lmae, lambda c: c.lmae_dir, deps=("masking-study", "synth"),
                settings=lambda c: {"study": c.study_preset, "seed": c.seed}, priority=8),))
