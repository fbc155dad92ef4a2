"""The CM-JIVNet network: settings, presets, Gaussian helpers, attention fusion and the objective.

The design and its reasons are in the package docstring (:mod:`bi_core.related.jivnet`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...config import pick_preset
from ...connectome import n_edges_of
from ...errors import ConfigError, InputError

MODALITIES: tuple[str, str] = ("sc", "fc")


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
