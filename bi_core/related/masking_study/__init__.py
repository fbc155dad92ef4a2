"""Masking-strategy study: does masking whole networks beat the alternatives? (seed 002 vs the paper)

The paper masks whole functional networks; seed 002 (region-aware masking) masks whole
anatomical regions and reports +4.23 % ADHD-vs-control accuracy over random masking; seed
001 masks local temporal blocks. Here the same model size is pretrained with each strategy
of :mod:`bi_core.masking` on the synthetic pretraining cohort and every model is scored on
the **same** held-out data and folds.

Design (choices of this companion)
----------------------------------
Matched compute
    Same model size, steps, batch, optimizer, learning-rate schedule and seeds for every
    strategy; every pretraining subject is used for training (``val_fraction=0``) and
    the final weights are scored (no early stopping, so no strategy trains longer).
Matched masked fraction
    ``network`` masks 1 network (2 with probability ``p_two``); every other strategy
    gets the setting that gives the ``network`` strategy's expected share
    (:func:`bi_core.masking.matched_ratio`): ``random`` and ``temporal_block`` a ratio,
    ``region`` the ``p_two`` for the atlas's region sizes (:func:`.training.matched_mask_configs`,
    which asks each strategy of :data:`bi_core.masking.STRATEGIES`).
    Realized fractions are measured on draws of the training samplers
    (:func:`.training.mask_fractions`) and reported.
Held-out data
    The baseline visits of the ADNI-like evaluation cohort, which no model sees in
    pretraining. Reconstruction error is scored under every strategy's masking with
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
``smoke`` (seconds, tests), ``default`` (the book: ``tiny`` model, 4 epochs of ~15 steps
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
:mod:`.config` (settings, presets, headline metrics), :mod:`.training` (matched masks and
the pretraining runs), :mod:`.probes` (every held-out measure of one model), :mod:`.study`
(:func:`~.study.run_study`, reading a finished study back), :mod:`.report` (summaries over
seeds, paired differences, the computed conclusions). Importing the package imports none
of them.
"""
