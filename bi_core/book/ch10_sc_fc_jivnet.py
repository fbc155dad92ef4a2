"""Chapter 10, SC-FC coupling with JIVNet (step ``jivnet``; :mod:`bi_core.related.jivnet`)."""

from __future__ import annotations

from typing import Any

from ..steps import Context, Step
from . import Chapter

# In-function imports: each step imports what it runs inside its function: a step's stamp records the bi_core sources
# its process loaded (bi_core/book/__init__.py), so an edit re-runs only the steps that ran that code.


#: Training epochs of both JIVNet studies in the smoke book, which checks that they run (the presets' own: 30 and more)
SMOKE_EPOCHS = 10


def _jivnet_real_config(ctx: Context) -> Any:
    from ..related.jivnet.model import jivnet_preset

    # the smoke book uses the 5 gw subjects only (seconds); the default book all 12
    return jivnet_preset("real", epochs=SMOKE_EPOCHS) if ctx.preset.name == "smoke" else None


def _jivnet_synth_config(ctx: Context) -> Any:
    from ..related.jivnet.model import jivnet_preset

    return jivnet_preset("smoke", epochs=SMOKE_EPOCHS) if ctx.preset.name == "smoke" else None


def _jivnet(ctx: Context) -> None:
    from ..related.jivnet.study import real_study, synthetic_study

    from .._io import atomic_dir

    smoke = ctx.preset.name == "smoke"
    with atomic_dir(ctx.out / "jivnet", overwrite=True) as tmp:
        # the smoke book checks that the study runs: 3 folds instead of 5
        synthetic_study("smoke" if smoke else "default", seed=ctx.seed, cfg=_jivnet_synth_config(ctx),
                        n_folds=3 if smoke else 5, n_jobs=ctx.preset.workers).write(tmp / "synth")
        real_study(_jivnet_real_config(ctx), seed=ctx.seed, datasets=("gw",) if smoke else ("hcp", "gw"),
                   n_jobs=ctx.preset.workers).write(tmp / "real")


CHAPTER = Chapter(
    "10_sc_fc_jivnet", part="Related methods",
    params=lambda c: {"synth_dir": str(c.out / "jivnet" / "synth"), "real_dir": str(c.out / "jivnet" / "real"),
                      "preset": c.preset.name, "seed": c.seed},
    reads=("jivnet",),
    steps=(Step("jivnet", _jivnet, lambda c: c.out / "jivnet",
                settings=lambda c: {"book": c.preset.name, "seed": c.seed, "synth": repr(_jivnet_synth_config(c)),
                                    "real": repr(_jivnet_real_config(c))},
                priority=6),))
