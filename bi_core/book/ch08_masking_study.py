"""Chapter 8, the masking study (step ``masking-study``; :mod:`bi_core.related.masking_study`)."""

from __future__ import annotations

from ..steps import Context, Step
from . import Chapter

# In-function imports: each step imports what it runs inside its function: a step's stamp records the bi_core sources
# its process loaded (bi_core/book/__init__.py), so an edit re-runs only the steps that ran that code.


def _masking_study(ctx: Context) -> None:
    from ..related.masking_study.config import study_preset
    from ..related.masking_study.study import run_study

    # the book's own study runs with the book preset's worker processes (results do not depend on them)
    own = {"jobs": ctx.preset.workers} if ctx.study_preset == ctx.preset.related else {}
    run_study(ctx.synth_dir, ctx.study_dir, study_preset(ctx.study_preset, first_seed=int(ctx.seed), **own),
              progress=not ctx.quiet)


CHAPTER = Chapter(
    "08_masking_study", part="Related methods",
    params=lambda c: {"study_dir": str(c.study_dir), "preset": c.preset.name, "seed": c.seed},
    reads=("masking-study",),
    steps=(Step("masking-study", _masking_study, lambda c: c.study_dir, deps=("synth",),
                settings=lambda c: {"study": c.study_preset, "seed": c.seed}, priority=3),))
