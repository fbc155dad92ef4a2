"""Analyses that turn a pretrained model and a cohort into tidy result tables.

- :mod:`.predictability` — per (recording, network) reconstruction R² and Pearson r;
- :mod:`.linear` — ridge and lagged-ridge references for it on the same windows, and linear occlusion;
- :mod:`.interactions` — per (recording, target, source) attention, enrichment and occlusion;
- :mod:`.embeddings` — one embedding per recording;
- :mod:`.groupstats` — the group column and its levels; each level − the reference (AD−CN / MCI−CN)
  per cell, covariates, BH-FDR;
- :mod:`.groundtruth` — scoring against the synthetic generator's truth;
- :mod:`.classify` — group classification (CN/MCI/AD by default) on identical subject-grouped folds,
  FC baselines, the summary marker;
- :mod:`.longitudinal` — mixed-effects models of the marker;
- :mod:`.reliability` — test–retest ICC(3,1) of every per-recording measure;
- :mod:`.readouts` — which read-out of the model (attention per head, value-weighted, rollout, gradient
  attributions, occlusion...) recovers the altered couplings, beside FC and partial correlation.
"""
