"""The reproducibility page: every step's timing and the environment (it runs last)."""

from __future__ import annotations

from . import Chapter


CHAPTER = Chapter(
    "reproducibility", part="Reproducibility and references",
    params=lambda c: {"timings_file": str(c.out / "timings.json"), "preset": c.preset.name, "seed": c.seed},
    reads=None)
