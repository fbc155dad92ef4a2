"""Seed 001: local masked autoencoder (LMAE) → random-walk mixture of experts (RWMOE) → SSM predictor.

Seed 001 (Wang et al., arXiv 2508.16597) pretrains a *local* masked autoencoder, clusters
features across space and time with a random-walk mixture of experts, and predicts age and
fluid intelligence with a state-space-model head (Cam-CAN: age MAE 5.343 years, r 0.928;
fluid intelligence MAE 2.940, r 0.887). Its architecture details are not public; this
module is **a design choice of this companion** that keeps the three named parts:

LMAE
    BrainInterNet pretrained with ``temporal_block`` masking (contiguous blocks of time
    patches in random ROIs; :mod:`bi_core.masking`) — the masking study's runs are reused.
    Its encoder, applied to unmasked windows, gives one token per (ROI, time patch):
    :func:`.study.encoder_tokens` → ``[n_recordings, n_rois, n_patches, d]``.
RWMOE (:class:`.model.RandomWalkMoE`)
    A graph over ROIs from group functional connectivity (:func:`.graph.group_fc_graph`:
    positive correlations, k nearest neighbours, symmetrized) with random-walk transition
    matrix ``P`` (:func:`.graph.transition_matrix`). Tokens are diffused over the graph
    (``Σ_k w_k P^k h``, learned ``w`` on the simplex) and routed to ``E`` experts by a
    softmax router whose logits combine each ROI's k-step random-walk profile (rows of
    ``P, P², …``: :func:`.graph.random_walk_features`) and the token's content, so experts group
    ROIs that the walk connects and can change over time. Router weights sum to one per
    token and are exposed per ROI (:meth:`.model.RWMoESSM.expert_weights`). Each expert transforms
    the router-weighted mean of the tokens (``[B, T, E·h]``), and the experts'
    co-activation per time patch (inner products of their router-weighted sums of
    ROI-centred tokens: within- and between-cluster connectivity) is appended — measured
    here: first-order pooled tokens carry no age or fluid signal in the synthetic cohort,
    whose phenotypes live in couplings.
SSM (:class:`.ssm.DiagonalSSM`)
    A diagonal linear state-space layer over the patch sequence (S4D-style, real
    diagonal, zero-order-hold discretization): ``s_t = a ⊙ s_{t−1} + b̄ u_t``,
    ``y_t = Σ_n c_n s_t + D u_t``, computed as a causal convolution with the kernel
    ``K_t = Σ_n c_n b̄_n a_n^t`` (FFT), or by a parallel (Hillis–Steele) scan
    (:func:`.ssm.parallel_scan`); both equal the step-by-step recurrence
    (:func:`.ssm.ssm_recurrence`). Pre-LayerNorm residual block, mean over time, linear read-out.
Read-out (:class:`.model.RWMoESSMRegressor`)
    Cross-fitted: extractors trained end to end on inner folds of the training subjects, a
    ridge fitted on the features each gives for the fold it did not see, early stopping on
    that ridge's leave-one-out error, several initializations averaged. The untrained
    ablation is the same pipeline at its initial weights.

Baselines on the same subject folds (:func:`.study.run_lmae_age`): ridge on BrainInterNet
(network-masked) embeddings, ridge on the same model's predictability profile (one R² per
network, the paper's read-out), ridge on the LMAE's pooled embeddings, ridge on FC
(nilearn correlation). Metrics: MAE and Pearson r of out-of-fold predictions with
bootstrap 95 % intervals over subjects.

Modules
-------
:mod:`.graph` (the ROI graph and random-walk features; numpy), :mod:`.ssm` (the diagonal
state-space layer), :mod:`.model` (RWMOE, the regressor), :mod:`.study` (tokens, settings,
:func:`~.study.run_lmae_age`, reading a finished run back), :mod:`.report` (metrics, the
reported reference, the chapter's sentences). Importing the package imports none of them
(``ssm`` and ``model`` import torch).
"""
