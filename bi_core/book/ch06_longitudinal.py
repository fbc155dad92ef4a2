"""Chapter 6, the longitudinal marker and mixed-effects models: reads the synthetic analyses."""

from __future__ import annotations

from . import Chapter
from .ch03_predictability import analysis_params


CHAPTER = Chapter("06_longitudinal", part="Synthetic cohorts with a known truth", params=analysis_params,
                  reads=("analyses",))
