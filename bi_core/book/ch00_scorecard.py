"""Chapter 0, the paper's claims: the scorecard reads every scenario's tables (it runs after them)."""

from __future__ import annotations

from . import Chapter


CHAPTER = Chapter(
    "00_scorecard", part="The paper's claims",
    params=lambda c: {"static_results": str(c.results), "static_cohort": str(c.synth_dir / "eval"),
                      "dynamic_results": str(c.dynamic / "results"), "dynamic_cohort": str(c.dynamic / "synth" / "eval"),
                      "readouts_dir": str(c.out / "readouts"), "routing_dir": str(c.out / "routing"),
                      "real_results": str(c.results_real), "preset": c.preset.name, "seed": c.seed},
    # every step whose tables the scorecard reads, the dynamic scenario's included
    reads=("synth", "analyses", "analyses-real", "readouts", "routing", "synth-dynamic", "analyses-dynamic"))
