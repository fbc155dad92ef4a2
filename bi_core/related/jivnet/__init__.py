"""CM-JIVNet: joint and individual variational components of paired SC and FC.

A companion implementation of the Cross-Modal Joint-Individual Variational Network (seed
paper 003). The paper's abstract fixes the ingredients — a variational autoencoder over
paired structural (SC) and functional (FC) connectivity, a **multi-head attention
fusion** module, a **joint** latent shared by both modalities and **individual**
(modality-specific) latents, cross-modal reconstruction and behaviour prediction. Every
architectural detail below is a *design choice of this companion*; the paper's own
architecture is not public.

Model (one class, :class:`.model.CMJIVNet`, one method per stage)
-----------------------------------------------------------------
- **Standardise.** Each modality is z-scored per edge with the training subjects' mean and
  SD (buffers saved with the weights), so the network models between-subject deviations;
  the training mean is the "group-mean" prediction that every baseline starts from.
- **Tokens** (:meth:`.model.CMJIVNet.tokens`). Each node's connectivity row ``[n_nodes]`` is a
  token: ``MLP(row) + node embedding + modality embedding`` → ``[B, n_nodes, d_model]``.
- **Attention fusion** (:meth:`.model.CMJIVNet.joint_posterior`). Cross-modal blocks
  (``nn.MultiheadAttention``, pre-LN, residual): every SC node token attends to all FC
  node tokens and every FC token to all SC tokens, then a token-wise MLP; a learned query
  pools the tokens of the modalities present → ``q(z_J | ·) = N(μ, diag σ²)``. With one
  modality there is nothing to attend to and only the MLP and pooling run, so the same
  weights give the fused posterior ``q(z_J | SC, FC)`` and the modality-specific joint
  posteriors ``q(z_J | SC)`` and ``q(z_J | FC)``. (Cross- rather than self-attention over
  all ``2 n_nodes`` tokens: about half the training time on CPU in our timing, and the
  fusion is between modalities by construction.)
- **Individual posteriors** (:meth:`.model.CMJIVNet.individual_posterior`). Attention pooling
  of one modality's own tokens (no fusion) → ``q(z_SC | SC)``, ``q(z_FC | FC)``.
- **Decoders** (:meth:`.model.CMJIVNet.decode`). ``[z_J, z_m] → [n_edges]`` upper triangle of
  modality ``m``: a linear map (loadings, as in factor analysis / JIVE) plus a nonlinear
  MLP correction. Pure MLP decoders overfitted the training subjects in our synthetic
  runs (held-out cross-modal r well below the linear baselines).

Objective (:meth:`.model.CMJIVNet.loss`, all terms per edge of one modality)
----------------------------------------------------------------------------
``ELBO``: Gaussian reconstruction with unit variance on standardised edges
(``½ mean (x − x̂)²`` per modality, with ``z`` drawn from the fused joint and the
individual posteriors) + ``β (KL(q_J) + KL(q_SC) + KL(q_FC)) / n_edges`` against N(0, I).
Auxiliary terms:

- **cross** (``λ_cross``): FC decoded from ``z_J ~ q(z_J | SC)`` with ``z_FC = 0`` (the
  prior mean) and SC from ``q(z_J | FC)``: trains the cross-modal path that
  :meth:`.model.CMJIVNet.predict_fc_from_sc` uses, and makes "joint" mean "predictable from the
  other modality".
- **align** (``λ_align``): ``(KL(q(z_J|SC,FC) ‖ q(z_J|SC)) + KL(q(z_J|SC,FC) ‖ q(z_J|FC)))
  / n_edges`` — the fused and the modality-specific joint posteriors are pulled together,
  so the joint code means the same thing whichever modality inferred it. Kept weak: at
  ``λ_align`` 10–50 the joint code collapsed towards the prior in our synthetic runs
  (agreeing is easiest when nothing is encoded).
- **separation** (``λ_sep``) — *the regulariser that keeps joint and individual apart*:
  the mean squared batch cross-correlation between the fused joint means and each
  modality's individual means, ``mean(corr(μ_J, μ_SC)²) + mean(corr(μ_J, μ_FC)²)``.
  Without it the individual latents can re-encode the joint factors (each modality sees
  them); with it they are pushed to linearly uncorrelated directions. It is linear: a
  nonlinear dependence between joint and individual codes is not penalised.

**Joint-first warm-up** (``joint_warmup``, default the first 30 % of epochs): only
``cross + λ_align align`` (+ the KL of the modality-specific joint posteriors) is trained,
with the individual codes unused. The joint code thus learns first what each modality
predicts of the other; afterwards the individual codes start from the residual. Without
it the individual encoders, each seeing its whole modality, win the race for the shared
factors early and the penalties only fight it afterwards (our synthetic runs: the joint
latent predicted the joint-driven trait worse, the individual latents better).

Cross-modal prediction never sees the target modality: :meth:`.model.CMJIVNet.predict_fc_from_sc`
takes only SC (and :meth:`.model.CMJIVNet.predict_sc_from_fc` only FC) and decodes the posterior mean of
the modality-specific joint code with the target's individual code at its prior mean.

Evaluation
----------
:func:`.study.evaluate_splits` runs one model per fold and returns tidy tables: cross-modal
reconstruction of held-out subjects against baselines on the same splits (group mean,
PLS, ridge on edges, communicability for SC→FC), behaviour prediction from latents vs
raw connectomes (ridge on standardised features, alpha by exact leave-one-out CV on the
training subjects — the same inner folds for every feature set — and the same outer folds),
and, for synthetic data, out-of-sample canonical correlations between latents and the true
factors. Correlations are averaged via Fisher z. Each fold is fitted with one torch/BLAS
thread (``JIVNetConfig.threads``); folds can run in parallel processes (``n_jobs``) with
identical results.
:func:`.study.synthetic_study` and :func:`.study.real_study` are what ``bi-core jivnet`` runs.

Modules
-------
:mod:`.model` (:class:`~.model.JIVNetConfig`, its presets and :class:`~.model.CMJIVNet`),
:mod:`.fit` (training, numpy helpers, checkpoints), :mod:`.scores` (per-subject and
canonical correlations, mean ± CI tables, headline numbers) and :mod:`.study` (baselines,
:func:`~.study.evaluate_splits`, :func:`~.study.synthetic_study`, :func:`~.study.real_study`).
Importing the package imports none of them (``model`` and ``fit`` import torch).
"""
