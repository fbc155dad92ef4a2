"""Related systems from the project's other seed papers, run on the same data and folds.

- :mod:`bi_core.related.masking_study` — seed 002 (region-aware masking) against the
  paper's network masking, random-token masking and local temporal blocks: the same model
  size and compute per strategy, several seeds, compared on identical held-out data and
  folds (``bi-core related masking-study``).
- :mod:`bi_core.related.rwmoe_ssm` — seed 001: local-masking (LMAE-style) pretraining →
  random-walk mixture of experts (RWMOE) → diagonal state-space (SSM) predictor for age and
  fluid intelligence, against ridge on BrainInterNet embeddings and on FC
  (``bi-core related lmae-age``).

Both are *design choices of this companion* where the seed papers give no detail; the
chapters say so. Importing this package imports neither module (``rwmoe_ssm`` defines
torch modules and imports torch).
"""

from __future__ import annotations

__all__ = ["masking_study", "rwmoe_ssm"]
