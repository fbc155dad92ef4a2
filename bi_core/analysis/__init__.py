"""Analyses that turn a pretrained model and a cohort into tidy result tables.

- :mod:`.predictability` — per (recording, network) reconstruction R² and Pearson r;
- :mod:`.linear` — ridge and lagged-ridge references for it on the same windows, and linear occlusion;
- :mod:`.interactions` — per (recording, target, source) attention, enrichment and occlusion;
- :mod:`.embeddings` — one embedding per recording;
- :mod:`.groupstats` — AD−CN / MCI−CN differences per cell, covariates, BH-FDR;
- :mod:`.groundtruth` — scoring against the synthetic generator's truth;
- :mod:`.classify` — CN/MCI/AD classification on identical subject-grouped folds, FC baselines,
  the summary marker;
- :mod:`.longitudinal` — mixed-effects models of the marker.
"""
