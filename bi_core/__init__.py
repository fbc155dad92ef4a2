"""bi_core — the BrainInterNet companion library.

Stages of the data flow, one module each: :mod:`bi_core.atlas` → :mod:`bi_core.cohort`
(+ :mod:`bi_core.preprocess`, :mod:`bi_core.ingest`, :mod:`bi_core.synth`) → windows →
model → result tables → figures.
"""

__version__ = "0.1.0"
