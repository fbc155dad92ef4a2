"""Chapter 2, pretraining: the book's model (step ``pretrain``), trained here or installed from the
published weights (:mod:`bi_core.published`); :func:`_pretrain` also trains chapter 7's fold runs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..steps import Context, Step
from . import ABLATION_TABLE, PRESETS_TABLE, Chapter

# In-function imports: each step imports what it runs inside its function: a step's stamp records the bi_core sources
# its process loaded (bi_core/book/__init__.py), so an edit re-runs only the steps that ran that code.


def _pretrain(ctx: Context, cohorts: list[Path], preset_name: str, out: Path, **overrides: Any) -> None:
    from ..runs import preset, run_is_current

    cfg = replace(preset(preset_name), seed=ctx.seed, **overrides)
    name = out.relative_to(ctx.runs).as_posix()
    installed = _installed(out)
    # same config, data and training code: nothing to redo (a retrain never keeps an installed run)
    if run_is_current(out, cohorts, cfg) and not (installed and ctx.weights == "retrain"):
        return
    from ..published import bundle_path, install_or_train

    step = "pretrain-real" if name.startswith("real-hcp") else "pretrain"
    install_or_train(bundle_path(ctx.preset.name, name), cohorts, cfg, out, name=name, weights=ctx.weights,
                     publish_as=(ctx.preset.name, f"bi-core reproduce --preset {ctx.preset.name} --seed {ctx.seed} "
                                                  f"--publish-weights --steps {step}") if ctx.publish else None,
                     progress=not ctx.quiet)


def _installed(run: Path) -> bool:
    """Whether the run directory ``run`` was installed from published weights (not trained here)."""
    try:
        return "published" in json.loads((run / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False


CHAPTER = Chapter(
    "02_pretraining", part="Synthetic cohorts with a known truth",
    params=lambda c: {"run_dir": str(c.runs / "pretrain"), "eval_cohort": str(c.synth_dir / "eval"),
                      "curve_file": str(c.results / "learning_curve.tsv"), "presets_table": str(PRESETS_TABLE),
                      "ablation_file": str(ABLATION_TABLE), "preset": c.preset.name, "seed": c.seed},
    reads=("pretrain", "analyses"),
    steps=(Step("pretrain", lambda c: _pretrain(c, [c.synth_dir / "pretrain"], c.preset.pretrain, c.runs / "pretrain"),
                lambda c: c.runs / "pretrain", deps=("synth",),
                settings=lambda c: {"preset": c.preset.pretrain, "seed": c.seed, "weights": c.weights}, priority=2),))
