"""Named random streams: the tag after the seed in ``np.random.default_rng([seed, TAG, ...])``.

One seed drives many random choices; a tag gives each its own independent stream, so
adding or changing one never shifts the numbers of another (and two uses of the same
seed never draw the same numbers). The values are part of the results: changing a tag
changes every number drawn from its stream. A new use of a seed gets a new tag here.

Untagged (kept so the numbers stay the same): the training crops draw from
``[seed, epoch]`` (:class:`bi_core.windows.RandomCrops`), and the masking study's mask draws
from ``[seed, strategy position]`` and ``[seed, strategy position, batch]``
(``bi_core.related.masking_study``). Those two share entropy when the seeds and the counters
are equal; they run in different places, so nothing correlates within one computation.
"""

from __future__ import annotations

# training (bi_core.windows, bi_core.train)
#: Which subjects form the validation split (``RecordingSet.split_by_subject``).
VALIDATION_SUBJECTS = 0x5A1D
#: Which validation windows are kept when there are more than ``val_max_windows`` (``fixed_windows``).
VALIDATION_WINDOWS = 0xFA1
#: Masks of the training batches: ``[seed, TRAIN_MASKS, epoch, step, mask group]``.
TRAIN_MASKS = 1
#: Masks of the validation batches: ``[seed, VALIDATION_MASKS, batch]``.
VALIDATION_MASKS = 2

# related studies (bi_core.related)
#: Held-out subjects kept per diagnosis group by the masking study (``eval_recordings``).
EVAL_SUBJECTS = 0xE7A1
#: Subjects the masking study holds out of pretraining on a single cohort (``split_subjects``).
STUDY_HELD_OUT = 0x4E1D
#: Inner subject folds of the RWMOE + SSM regressor (cross-fitted read-out and early stopping).
REGRESSOR_VALIDATION = 0x55A
#: Initial weights of the RWMOE + SSM regressor's extractors: ``[seed, REGRESSOR_INIT, initialization]``.
REGRESSOR_INIT = 0x1417
#: Mini-batch order of the RWMOE + SSM regressor: ``[seed, REGRESSOR_BATCHES, initialization]``.
REGRESSOR_BATCHES = 0xBA7C
#: Bootstrap resamples of the regression metrics' intervals.
BOOTSTRAP = 0xB007

# analyses (bi_core.analysis)
#: Windows of each recording that the read-out study scores: ``[seed, READOUT_WINDOWS, recording position]``.
READOUT_WINDOWS = 0x2EAD
