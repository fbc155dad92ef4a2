"""Chapter 11, adapting the analyses to a lab's cohort, run as a user runs it (step ``adapting``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..steps import BookPreset, Context, Step, analysis_settings
from . import Chapter

# In-function imports: each step imports what it runs inside its function: a step's stamp records the bi_core sources
# its process loaded (bi_core/book/__init__.py), so an edit re-runs only the steps that ran that code.


#: The adapting chapter's cohort per book preset: subjects per group and frames per session (TR 2.0 s). Two
#: sessions per subject; 144 frames are exactly three windows of the book's model (64 frames at 1.5 s), which
#: keeps the step under a minute on one core; the smoke size keeps 3 folds possible.
ADAPTING_SIZES: dict[str, tuple[int, int]] = {"smoke": (6, 96), "default": (20, 144), "full": (20, 144)}


#: The adapting chapter's design: group label → condition severity range (the generator's disease effects);
#: the reference group first. Ages ~ U(ADAPTING_AGES) in both groups.
ADAPTING_GROUPS: dict[str, tuple[float, float]] = {"TD": (0.0, 0.1), "ADHD": (0.5, 0.9)}


ADAPTING_AGES = (8.0, 60.0)


def adapting_config(preset: BookPreset) -> Any:
    """The adapting chapter's synthetic cohort: an ADHD-like two-group design on the book's synthetic atlas.

    ``group`` = TD / ADHD (:data:`ADAPTING_GROUPS`), an ``age``, one site at TR 2.0 s and two
    sessions per subject with the generator's planted test–retest stability
    (:class:`bi_core.synth.GroupSpec`, ``retest_sessions=2``); sizes from :data:`ADAPTING_SIZES`.
    Returns a :class:`bi_core.synth.SynthConfig`.
    """
    from ..synth import PRESETS, GroupSpec, SiteSpec, SynthConfig

    atlas = PRESETS[preset.synth]          # the same atlas as the book's pretrained model
    n, frames = ADAPTING_SIZES[preset.name]
    return SynthConfig(name="adhd-like", n_cortical=atlas.n_cortical, n_subcortical=atlas.n_subcortical, pretrain=(),
                       n_cn=0, n_mci=0, n_ad=0, sites=(SiteSpec("site-1", 2.0, (frames, frames), 0.3, 1.0),),
                       max_visits=1, retest_sessions=2, group_column="group",
                       groups=tuple(GroupSpec(g, n, sev, ADAPTING_AGES) for g, sev in ADAPTING_GROUPS.items()))


def _adapting(ctx: Context) -> None:
    """The adapting chapter as a user runs it: a BIDS dataset, ``bi-core ingest bids``, ``bi-core analyze``."""
    from .._io import atomic_dir

    with atomic_dir(ctx.out / "adapting", overwrite=True) as home:
        _adapting_into(ctx, home)


def _adapting_into(ctx: Context, home: Path) -> None:
    from ..analysis.suite import run_suite
    from ..cohort import Cohort
    from ..ingest import export_bids, ingest_bids
    from ..synth import generate

    p = ctx.preset
    generate(home / "synth", adapting_config(p), seed=ctx.seed, progress=False)
    synthetic = Cohort.open(home / "synth" / "eval")
    export_bids(synthetic, home / "bids", participants=("group", "age", "sex", "site"), sessions=("age",))
    ingest_bids(home / "bids", synthetic.atlas.name, home / "cohort", dataset="adhd-like", progress=False)
    # ingest keeps the user's column names: participants.tsv's `group` stays `group` (TD / ADHD)
    run_suite(ctx.runs / "pretrain", home / "cohort", home / "results",
              p.cv(ctx.seed),
              ground_truth=home / "synth" / "ground_truth.json", occlusion_windows=p.occlusion_windows,
              group_column="group", reference="TD", target="age",
              # the linear references learn from the model's pretraining cohort (`--fit-cohort`), as in chapter 3
              linear_fit_cohort=ctx.synth_dir / "pretrain", progress=not ctx.quiet)


CHAPTER = Chapter(
    "11_adapting", part="Real data and your data",
    params=lambda c: {"adapting_dir": str(c.out / "adapting"), "preset": c.preset.name, "seed": c.seed},
    reads=("adapting",),
    # its own small cohort, the book's synthetic model (same atlas), no training
    steps=(Step("adapting", _adapting, lambda c: c.out / "adapting", deps=("pretrain", "synth"),
                settings=lambda c: {**analysis_settings(c), "sizes": ADAPTING_SIZES[c.preset.name]}, priority=9),))
