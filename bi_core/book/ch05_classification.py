"""Chapter 5, classification of the groups (the Alzheimer's spectrum in the book's cohorts): reads the synthetic analyses (chapter 3's step)."""

from __future__ import annotations

from . import Chapter
from .ch03_predictability import analysis_params


CHAPTER = Chapter("05_classification", part="Synthetic cohorts with a known truth", params=analysis_params,
                  reads=("analyses",))
