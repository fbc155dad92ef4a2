"""Chapter 6, the longitudinal marker and mixed-effects models: reads the synthetic analyses."""

from __future__ import annotations

from . import Chapter
from .ch03_predictability import analysis_params


CHAPTER = Chapter("06_longitudinal", part="Synthetic cohorts with a known truth",
                  # the clinical association's null calibration (reproducibility chapter's step) says whether its
                  # p-values hold their level on this table
                  params=lambda c: {**analysis_params(c), "clinical_null_file": str(
                      c.out / "null-longitudinal" / "null_clinical_association.tsv")},
                  reads=("analyses", "null-longitudinal"))
