"""Related systems from the project's other seed papers, run on the same data and folds.

One subpackage per seed system, each split by concern (settings and model code, the study
that runs it, the statistics and sentences of its chapter):

- :mod:`bi_core.related.masking_study` — seed 002 (region-aware masking: whole atlas
  regions) against the paper's network masking, random-token masking, lobe-like ROI groups
  and local temporal blocks: the same model size and compute per strategy, several seeds,
  compared on identical held-out data and folds, on the synthetic cohorts or on one real
  cohort split by subject (``bi-core related masking-study``). Modules ``config``, ``data``,
  ``training``, ``probes``, ``study``, ``report``.
- :mod:`bi_core.related.rwmoe_ssm` — seed 001: local-masking (LMAE-style) pretraining →
  random-walk mixture of experts (RWMOE) → diagonal state-space (SSM) predictor for age and
  fluid intelligence, against ridge on BrainInterNet embeddings and on FC
  (``bi-core related lmae-age``). Modules ``graph``, ``ssm``, ``model``, ``study``, ``report``.
- :mod:`bi_core.related.jivnet` — seed 003: CM-JIVNet, joint and individual variational
  components of paired SC and FC (``bi-core jivnet``). Modules ``model``, ``fit``,
  ``scores``, ``study``.

Shared by them: :mod:`bi_core.related.ridge` (the ridge penalty grids and one standardized
ridge) and :mod:`bi_core.related.parallel` (independent jobs in worker processes); folds,
intervals and random streams come from :mod:`bi_core.folds`, :mod:`bi_core.stats` and
:mod:`bi_core.streams`.

All are *design choices of this companion* where the seed papers give no detail; the
chapters say so. Importing this package (or a subpackage) imports none of the modules
(several define torch modules and import torch).
"""

from __future__ import annotations

__all__ = ["jivnet", "masking_study", "rwmoe_ssm"]
