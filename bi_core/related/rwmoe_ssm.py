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
    :func:`encoder_tokens` → ``[n_recordings, n_rois, n_patches, d]``.
RWMOE (:class:`RandomWalkMoE`)
    A graph over ROIs from group functional connectivity (:func:`group_fc_graph`:
    positive correlations, k nearest neighbours, symmetrized) with random-walk transition
    matrix ``P`` (:func:`transition_matrix`). Tokens are diffused over the graph
    (``Σ_k w_k P^k h``, learned ``w`` on the simplex) and routed to ``E`` experts by a
    softmax router whose logits combine each ROI's k-step random-walk profile (rows of
    ``P, P², …``: :func:`random_walk_features`) and the token's content, so experts group
    ROIs that the walk connects and can change over time. Router weights sum to one per
    token and are exposed per ROI (:meth:`RWMoESSM.expert_weights`). Each expert transforms
    the router-weighted mean of the tokens (``[B, T, E·h]``), and the experts'
    co-activation per time patch (inner products of their router-weighted sums of
    ROI-centred tokens: within- and between-cluster connectivity) is appended — measured
    here: first-order pooled tokens carry no age or fluid signal in the synthetic cohort,
    whose phenotypes live in couplings.
SSM (:class:`DiagonalSSM`)
    A diagonal linear state-space layer over the patch sequence (S4D-style, real
    diagonal, zero-order-hold discretization): ``s_t = a ⊙ s_{t−1} + b̄ u_t``,
    ``y_t = Σ_n c_n s_t + D u_t``, computed as a causal convolution with the kernel
    ``K_t = Σ_n c_n b̄_n a_n^t`` (FFT), or by a parallel (Hillis–Steele) scan
    (:func:`parallel_scan`); both equal the step-by-step recurrence
    (:func:`ssm_recurrence`). Pre-LayerNorm residual block, mean over time, linear read-out.

Baselines on the same subject folds (:func:`run_lmae_age`): ridge on BrainInterNet
(network-masked) embeddings, ridge on the same model's predictability profile (one R² per
network, the paper's read-out), ridge on the LMAE's pooled embeddings, ridge on FC
(nilearn correlation). Metrics: MAE and Pearson r of out-of-fold predictions with
bootstrap 95 % intervals over subjects.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .. import streams
from .._io import write_json, write_tsv
from ..config import pick_preset
from ..errors import ConfigError, InputError
from ..folds import subject_folds
from .parallel import map_jobs
from .ridge import ridge_predictions, standardized_ridge

#: Seed 001's reported Cam-CAN results (another dataset; not re-run here).
SEED001_REPORTED: tuple[dict[str, Any], ...] = (
    {"target": "age", "mae": 5.343, "r": 0.928},
    {"target": "fluid", "mae": 2.940, "r": 0.887},
)
REFERENCE_METHOD = "LMAE→RWMOE→SSM, seed 001 (reported)"
REFERENCE_DATASET = "Cam-CAN (another dataset; reported, not re-run)"


# ---------------------------------------------------------------------- graph
def group_fc_graph(series: Sequence[np.ndarray], k_neighbors: int = 8) -> np.ndarray:
    """Group functional-connectivity graph over ROIs.

    Parameters
    ----------
    series
        Recordings ``[n_frames, n_rois]`` each (same ROIs).
    k_neighbors
        Edges kept per ROI: its ``k`` most positively correlated ROIs (symmetrized by
        keeping an edge chosen by either end).

    Returns
    -------
    ndarray ``[n_rois, n_rois]``
        Non-negative symmetric weights (mean Pearson correlation), zero diagonal.

    Raises
    ------
    InputError
        On no recordings, different ROI counts or non-finite values.
    """
    if len(series) == 0:
        raise InputError("group_fc_graph needs at least one recording.")
    R = np.asarray(series[0]).shape[1] if np.ndim(series[0]) == 2 else -1
    acc = None
    for i, x in enumerate(series):
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != R or x.shape[0] < 3:
            raise InputError(f"recording {i} has shape {x.shape}; expected [n_frames >= 3, {R}] like the first.")
        if not np.isfinite(x).all():
            raise InputError(f"recording {i} has non-finite values; clean or drop it before building the graph.")
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.nan_to_num(np.corrcoef(x.T))  # constant ROIs have no correlation
        acc = c if acc is None else acc + c
    C = acc / len(series)
    np.fill_diagonal(C, 0.0)
    C = np.clip(C, 0.0, None)
    k = int(min(max(1, k_neighbors), R - 1))
    keep = np.zeros_like(C, dtype=bool)
    idx = np.argsort(-C, axis=1, kind="stable")[:, :k]
    keep[np.arange(R)[:, None], idx] = True
    keep |= keep.T
    A = np.where(keep, C, 0.0)
    np.fill_diagonal(A, 0.0)
    return A


def transition_matrix(A: np.ndarray) -> np.ndarray:
    """Random-walk transition matrix ``P = D⁻¹ A`` (rows sum to one; isolated ROIs stay put).

    Raises
    ------
    InputError
        On a non-square matrix or negative weights.
    """
    A = np.asarray(A, np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise InputError(f"adjacency must be square [n_rois, n_rois], got shape {A.shape}.")
    if (A < 0).any():
        raise InputError("adjacency weights must be non-negative (random-walk probabilities).")
    deg = A.sum(1)
    P = np.divide(A, deg[:, None], out=np.zeros_like(A), where=deg[:, None] > 0)
    iso = np.flatnonzero(deg == 0)
    P[iso, iso] = 1.0
    return P


#: Router logit of a ROI's own random-walk cluster at initialization (softmax weight ≈ 0.87 with 4 experts).
PRIOR_LOGIT = 3.0


def rw_clusters(features: np.ndarray, n_clusters: int, seed: int = 0) -> np.ndarray:
    """k-means labels ``[R]`` of the ROIs' random-walk profiles (deterministic for a seed)."""
    from sklearn.cluster import KMeans

    f = np.asarray(features, np.float64)
    k = int(min(n_clusters, len(np.unique(f.round(12), axis=0))))
    if k < 1:
        raise InputError("no ROI features to cluster.")
    return KMeans(n_clusters=k, n_init=4, random_state=int(seed)).fit_predict(f)


def random_walk_features(P: np.ndarray, steps: int = 3) -> np.ndarray:
    """k-step random-walk profile of each ROI: rows of ``P, P², …, P^steps`` side by side, ``[R, steps·R]``."""
    if steps < 1:
        raise ConfigError(f"rw_steps={steps} must be at least 1.")
    P = np.asarray(P, np.float64)
    out, Pk = [], np.eye(P.shape[0])
    for _ in range(int(steps)):
        Pk = Pk @ P
        out.append(Pk)
    return np.concatenate(out, axis=1)


# ---------------------------------------------------------------------- SSM
def parallel_scan(a: torch.Tensor, x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Inclusive scan of ``s_t = a_t ⊙ s_{t−1} + x_t`` (``s_{−1} = 0``) along ``dim`` in ⌈log₂ T⌉ steps.

    Hillis–Steele scan with the associative operator
    ``(a₁, x₁) ∘ (a₂, x₂) = (a₁a₂, a₂x₁ + x₂)``; ``a`` broadcasts against ``x``.
    """
    a, x = torch.broadcast_tensors(a, x)
    a, x = a.movedim(dim, 0), x.movedim(dim, 0)
    T = x.shape[0]
    shift = 1
    while shift < T:
        # combine each element with the one `shift` steps earlier (identity (1, 0) before the start)
        a_prev = torch.cat([torch.ones_like(a[:shift]), a[:-shift]], 0)
        x_prev = torch.cat([torch.zeros_like(x[:shift]), x[:-shift]], 0)
        x = a * x_prev + x
        a = a * a_prev
        shift *= 2
    return x.movedim(0, dim)


def ssm_recurrence(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor,
                   u: torch.Tensor) -> torch.Tensor:
    """The step-by-step reference: ``s_t = a ⊙ s_{t−1} + b u_t``, ``y_t = Σ_n c ⊙ s_t + d u_t``.

    Shapes: ``a, b, c`` ``[H, N]``, ``d`` ``[H]``, ``u`` ``[B, T, H]`` → ``y`` ``[B, T, H]``.
    """
    B_, T, H = u.shape
    s = torch.zeros(B_, H, a.shape[1], dtype=u.dtype)
    ys = []
    for t in range(T):
        s = a * s + b * u[:, t, :, None]
        ys.append((c * s).sum(-1) + d * u[:, t])
    return torch.stack(ys, 1)


class DiagonalSSM(nn.Module):
    """Diagonal linear state-space layer over a sequence (S4D-real style), ``[B, T, H] → [B, T, H]``.

    ``H`` independent channels with ``N`` real states each. Continuous ``A = −exp(A_log)``
    and step ``Δ = exp(log_dt)`` are discretized by zero-order hold: ``a = exp(ΔA)``,
    ``b̄ = (a − 1) / A · B`` (so ``0 < a < 1``: stable by construction).

    Parameters
    ----------
    channels, state
        ``H`` and ``N``.
    dt_min, dt_max
        Range of the initial steps (in patches), log-uniform across channels.
    """

    def __init__(self, channels: int, state: int = 8, dt_min: float = 0.1, dt_max: float = 1.0) -> None:
        super().__init__()
        if channels < 1 or state < 1:
            raise ConfigError(f"DiagonalSSM needs channels >= 1 and state >= 1, got {channels} and {state}.")
        H, N = int(channels), int(state)
        self.log_dt = nn.Parameter(torch.linspace(math.log(dt_min), math.log(dt_max), H))
        self.A_log = nn.Parameter(torch.log(torch.linspace(0.5, float(N), N)).repeat(H, 1))   # [H, N]
        self.B = nn.Parameter(torch.randn(H, N) / math.sqrt(N))
        self.C = nn.Parameter(torch.randn(H, N) / math.sqrt(N))
        self.D = nn.Parameter(torch.ones(H))

    def discretize(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a, b̄)``, each ``[H, N]``."""
        A = -torch.exp(self.A_log)
        dtA = torch.exp(self.log_dt)[:, None] * A
        a = torch.exp(dtA)
        return a, (a - 1.0) / A * self.B

    def kernel(self, T: int) -> torch.Tensor:
        """Convolution kernel ``K[h, t] = Σ_n C b̄ a^t`` for ``t = 0..T−1``, ``[H, T]``."""
        a, b = self.discretize()
        t = torch.arange(T, dtype=a.dtype)
        powers = torch.exp(torch.log(a)[..., None] * t)                                   # [H, N, T]
        return torch.einsum("hn,hnt->ht", self.C * b, powers)

    def forward(self, u: torch.Tensor, mode: str = "conv") -> torch.Tensor:
        """Apply the layer to ``u`` ``[B, T, H]``.

        ``mode``: ``"conv"`` (FFT causal convolution), ``"scan"`` (parallel scan over the
        states) or ``"recurrence"`` (step by step; the reference).
        """
        if u.ndim != 3 or u.shape[-1] != self.D.shape[0]:
            raise InputError(f"DiagonalSSM input must be [batch, time, {self.D.shape[0]}], got {tuple(u.shape)}.")
        T = u.shape[1]
        if mode == "conv":
            K = self.kernel(T).to(u.dtype)                                                # [H, T]
            n = 2 * T  # zero-padding: a linear (causal), not circular, convolution
            spec = torch.fft.rfft(u, n=n, dim=1) * torch.fft.rfft(K.T, n=n, dim=0)[None]
            y = torch.fft.irfft(spec, n=n, dim=1)[:, :T]
            return y + self.D * u
        a, b = self.discretize()
        if mode == "scan":
            s = parallel_scan(a[None, None].to(u.dtype), b.to(u.dtype) * u[..., None], dim=1)   # [B, T, H, N]
            return (self.C.to(u.dtype) * s).sum(-1) + self.D * u
        if mode == "recurrence":
            return ssm_recurrence(a.to(u.dtype), b.to(u.dtype), self.C.to(u.dtype), self.D.to(u.dtype), u)
        raise ConfigError(f"unknown SSM mode {mode!r}; use 'conv', 'scan' or 'recurrence'.")


# ---------------------------------------------------------------------- RWMOE
class RandomWalkMoE(nn.Module):
    """Random-walk mixture of experts over ROI tokens, ``[B, R, T, d_in] → [B, T, E·h (+ E(E+1)/2)]``.

    Parameters
    ----------
    d_in, hidden
        Token width in and expert width ``h``.
    n_experts
        ``E``.
    transition
        Random-walk transition matrix ``P`` ``[R, R]`` (:func:`transition_matrix`).
    rw_steps
        Walk lengths used for the diffusion (``0..rw_steps``) and the router's ROI profile.
    second_order
        Also return, per time patch, the inner products between the experts' router-weighted
        sums of ROI-centred tokens (within- and between-cluster co-activation): a sum of
        ROI-pair token similarities, i.e. connectivity, which first-order pooling cannot carry.
    """

    def __init__(self, d_in: int, hidden: int, n_experts: int, transition: np.ndarray, rw_steps: int = 3,
                 second_order: bool = True) -> None:
        super().__init__()
        P = np.asarray(transition, np.float64)
        if P.ndim != 2 or P.shape[0] != P.shape[1]:
            raise InputError(f"transition matrix must be [n_rois, n_rois], got shape {P.shape}.")
        if n_experts < 1 or hidden < 1:
            raise ConfigError(f"n_experts={n_experts} and hidden={hidden} must be at least 1.")
        R = P.shape[0]
        self.n_rois, self.n_experts, self.hidden, self.rw_steps = R, int(n_experts), int(hidden), int(rw_steps)
        self.second_order = bool(second_order)
        self.register_buffer("_pairs", torch.triu_indices(n_experts, n_experts), persistent=False)
        self.register_buffer("P", torch.tensor(P, dtype=torch.float32))
        feat = random_walk_features(P, rw_steps)
        self.register_buffer("rw_feat", torch.tensor(feat, dtype=torch.float32))
        # the router starts from a clustering of the ROIs' random-walk profiles (ROIs the walk
        # connects share an expert); learned terms on the profiles and the tokens start at zero
        self.register_buffer("rw_prior", torch.tensor(PRIOR_LOGIT * np.eye(n_experts)[rw_clusters(feat, n_experts)],
                                                      dtype=torch.float32))
        self.inp = nn.Linear(d_in, hidden)
        self.walk_logits = nn.Parameter(torch.tensor([2.0] + [0.0] * rw_steps))          # favour the token itself
        self.route_rw = nn.Linear(rw_steps * R, n_experts)
        self.route_tok = nn.Linear(hidden, n_experts)
        for lin in (self.route_rw, self.route_tok):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.w = nn.Parameter(torch.randn(n_experts, hidden, hidden) / math.sqrt(hidden))
        self.b = nn.Parameter(torch.zeros(n_experts, hidden))

    def gates(self, h: torch.Tensor) -> torch.Tensor:
        """Router weights ``[B, R, T, E]`` (softmax: they sum to one over experts) of diffused tokens ``h``."""
        logits = (self.rw_prior + self.route_rw(self.rw_feat))[None, :, None, :] + self.route_tok(h)  # [B, R, T, E]
        return logits.softmax(-1)

    def diffuse(self, x: torch.Tensor) -> torch.Tensor:
        """Project tokens and diffuse them over the graph: ``Σ_k w_k P^k h`` → ``[B, R, T, h]``."""
        if x.ndim != 4 or x.shape[1] != self.n_rois:
            raise InputError(f"RWMOE input must be [batch, {self.n_rois} ROIs, time, features], got {tuple(x.shape)}.")
        h = self.inp(x)
        w = self.walk_logits.softmax(0)
        out, hk = w[0] * h, h
        for k in range(1, self.rw_steps + 1):
            hk = torch.einsum("rs,bstc->brtc", self.P, hk)
            out = out + w[k] * hk
        return out

    @property
    def out_dim(self) -> int:
        E = self.n_experts
        return E * self.hidden + (E * (E + 1) // 2 if self.second_order else 0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the sequence ``[B, T, out_dim]`` and the gates ``[B, R, T, E]``.

        The sequence holds each expert's output on the router-weighted mean of the tokens
        (``E·h``) and, with ``second_order``, the upper triangle of the experts'
        co-activation matrix (``E(E+1)/2``).
        """
        h = self.diffuse(x)                                                                # [B, R, T, h]
        g = self.gates(h)                                                                  # [B, R, T, E]
        # each expert transforms the router-weighted mean of its tokens (the linear part commutes
        # with the pooling; applying the nonlinearity after it is R times cheaper than per token)
        pooled = torch.einsum("brte,brtc->btec", g, h) / self.n_rois                      # [B, T, E, h]
        z = F.gelu(torch.einsum("btec,ecd->bted", pooled, self.w) + self.b)               # [B, T, E, h]
        z = z.reshape(z.shape[0], z.shape[1], -1)
        if not self.second_order:
            return z, g
        xc = x - x.mean(1, keepdim=True)                   # ROI-centred tokens: drop what every ROI shares
        u = torch.einsum("brte,brtc->btec", g, xc) / math.sqrt(self.n_rois)               # [B, T, E, d_in]
        co = torch.einsum("btec,btfc->btef", u, u) / x.shape[-1]                          # [B, T, E, E]
        return torch.cat([z, co[:, :, self._pairs[0], self._pairs[1]]], -1), g


@dataclass(frozen=True)
class RegressorConfig:
    """RWMOE + SSM regressor settings (design choices of this companion; small because the cohorts are).

    ``max_epochs`` full-batch AdamW epochs with early stopping on an inner validation
    split (``val_fraction`` of the training subjects, ``patience`` epochs).
    """

    hidden: int = 4
    n_experts: int = 8
    rw_steps: int = 3
    k_neighbors: int = 8
    ssm_state: int = 8
    dropout: float = 0.1
    lr: float = 1e-2
    weight_decay: float = 1e-2
    max_epochs: int = 40
    patience: int = 10
    val_fraction: float = 0.2
    second_order: bool = True
    readout: str = "ridge"

    def __post_init__(self) -> None:
        if self.readout not in ("ridge", "trained"):
            raise ConfigError(f"regressor.readout={self.readout!r}; use 'ridge' (refit the linear read-out by ridge "
                              "on the trained features) or 'trained' (the end-to-end head).")
        for nm in ("hidden", "n_experts", "rw_steps", "k_neighbors", "ssm_state", "patience"):
            if int(getattr(self, nm)) < 1:
                raise ConfigError(f"regressor.{nm}={getattr(self, nm)} must be at least 1.")
        if self.max_epochs < 0:
            raise ConfigError(f"regressor.max_epochs={self.max_epochs} must be >= 0 (0: keep the initial weights).")
        if not 0 <= self.dropout < 1 or not 0 < self.val_fraction < 1 or self.lr <= 0:
            raise ConfigError("regressor: dropout must be in [0, 1), val_fraction in (0, 1) and lr positive.")


class RWMoESSM(nn.Module):
    """RWMOE → pre-LN residual DiagonalSSM block → mean over time → linear: ``[B, R, T, d] → [B]``."""

    def __init__(self, d_in: int, transition: np.ndarray, cfg: RegressorConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or RegressorConfig()
        self.cfg = cfg
        self.moe = RandomWalkMoE(d_in, cfg.hidden, cfg.n_experts, transition, cfg.rw_steps, cfg.second_order)
        C = self.moe.out_dim
        self.ssm = DiagonalSSM(C, cfg.ssm_state)
        self.norm = nn.LayerNorm(C)
        self.drop = nn.Dropout(cfg.dropout)
        self.feat_norm = nn.BatchNorm1d(C)  # features of very different scales, as ridge standardizes them
        self.head = nn.Linear(C, 1)

    def features(self, x: torch.Tensor, mode: str = "conv") -> tuple[torch.Tensor, torch.Tensor]:
        """The pooled sequence features ``[B, C]`` the read-out sees, and the gates."""
        z, g = self.moe(x)                                                                 # [B, T, C]
        z = z + F.gelu(self.ssm(self.norm(z), mode))                                       # pre-LN residual
        return z.mean(1), g

    def forward(self, x: torch.Tensor, mode: str = "conv") -> tuple[torch.Tensor, torch.Tensor]:
        f, g = self.features(x, mode)
        return self.head(self.drop(self.feat_norm(f))).squeeze(-1), g

    @torch.no_grad()
    def expert_weights(self, x: torch.Tensor) -> np.ndarray:
        """Mean router weight of every ROI for every expert over samples and time, ``[R, E]`` (rows sum to one)."""
        self.eval()
        return self.moe.gates(self.moe.diffuse(x)).mean(dim=(0, 2)).double().numpy()


def _check_xy(X: np.ndarray, y: np.ndarray | None = None) -> None:
    if not isinstance(X, np.ndarray) or X.ndim != 4:
        raise InputError(f"tokens must be an array [n_samples, n_rois, n_patches, d], got "
                         f"{getattr(X, 'shape', type(X).__name__)}.")
    if not np.isfinite(X).all():
        raise InputError("tokens contain non-finite values.")
    if y is not None:
        y = np.asarray(y, float)
        if y.shape != (X.shape[0],):
            raise InputError(f"target has shape {y.shape}; expected ({X.shape[0]},), one value per sample.")
        if not np.isfinite(y).all():
            raise InputError(f"target has {int((~np.isfinite(y)).sum())} missing or non-finite value(s); drop those "
                             "samples first.")
        if np.std(y) == 0:
            raise InputError("target is constant; there is nothing to predict.")


class RWMoESSMRegressor:
    """Fit/predict wrapper: standardized target, full-batch AdamW, early stopping on an inner split.

    Parameters
    ----------
    cfg
        Architecture and optimization settings.
    seed
        Seed of the initial weights, dropout and the inner split (same seed → same numbers on CPU).
    """

    def __init__(self, cfg: RegressorConfig | None = None, seed: int = 0) -> None:
        self.cfg = cfg or RegressorConfig()
        self.seed = int(seed)

    def fit(self, X: np.ndarray, y: np.ndarray, transition: np.ndarray) -> RWMoESSMRegressor:
        """Fit on tokens ``X`` ``[n, R, T, d]`` and targets ``y`` ``[n]`` with ROI graph ``transition`` ``[R, R]``."""
        _check_xy(X, y)
        if np.asarray(transition).shape != (X.shape[1], X.shape[1]):
            raise InputError(f"transition matrix has shape {np.asarray(transition).shape} but the tokens have "
                             f"{X.shape[1]} ROIs.")
        n = len(y)
        if n < 5:
            raise InputError(f"{n} training samples are too few to fit the RWMOE+SSM regressor (need at least 5).")
        cfg = self.cfg
        y = np.asarray(y, float)
        self.y_mean_, self.y_sd_ = float(y.mean()), float(y.std())
        rng = np.random.default_rng([self.seed, streams.REGRESSOR_VALIDATION])
        perm = rng.permutation(n)
        n_val = max(1, round(cfg.val_fraction * n))
        va, tr = perm[:n_val], perm[n_val:]
        Xt = torch.tensor(X, dtype=torch.float32)
        yt = torch.tensor((y - self.y_mean_) / self.y_sd_, dtype=torch.float32)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = RWMoESSM(X.shape[-1], transition, cfg)
            opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            best, bad, history = math.inf, 0, []
            best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}  # max_epochs=0: initial
            for epoch in range(cfg.max_epochs):
                model.train()
                opt.zero_grad(set_to_none=True)
                pred, _ = model(Xt[tr])
                loss = F.mse_loss(pred, yt[tr])
                loss.backward()
                opt.step()
                model.eval()
                with torch.no_grad():
                    v = float(F.mse_loss(model(Xt[va])[0], yt[va]))
                history.append((loss.item(), v))
                if v < best - 1e-6:
                    best, bad = v, 0
                    best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
                else:
                    bad += 1
                    if bad >= cfg.patience:
                        break
        model.load_state_dict(best_state)
        model.eval()
        self.model_, self.history_, self.best_val_ = model, history, best
        self.ridge_ = None
        if cfg.readout == "ridge":
            # the end-to-end head is fit on a few dozen subjects and stopped on fewer: refit the
            # linear read-out on every training subject with ridge (alpha by leave-one-out)
            with torch.no_grad():
                f = model.features(Xt)[0].double().numpy()
            self.ridge_ = standardized_ridge().fit(f, y)
        self.epochs_ = len(history)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions ``[n]`` in the target's units."""
        _check_xy(X)
        with torch.no_grad():
            xt = torch.tensor(X, dtype=torch.float32)
            if self.ridge_ is not None:
                return self.ridge_.predict(self.model_.features(xt)[0].double().numpy())
            p, _ = self.model_(xt)
        return p.double().numpy() * self.y_sd_ + self.y_mean_

    def expert_weights(self, X: np.ndarray) -> np.ndarray:
        """Mean router weights per ROI ``[R, E]`` over the samples ``X``."""
        _check_xy(X)
        return self.model_.expert_weights(torch.tensor(X, dtype=torch.float32))


# ---------------------------------------------------------------------- evaluation helpers
def regression_metrics(y: np.ndarray, y_pred: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """MAE and Pearson r with percentile bootstrap 95 % intervals over samples (subjects)."""
    y, p = np.asarray(y, float), np.asarray(y_pred, float)
    if y.shape != p.shape or y.ndim != 1 or len(y) < 3:
        raise InputError(f"need matching 1-D true and predicted values (>= 3), got {y.shape} and {p.shape}.")

    def r_of(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a, b)[0, 1]) if np.std(a) > 0 and np.std(b) > 0 else float("nan")

    rng = np.random.default_rng([int(seed), streams.BOOTSTRAP])
    idx = rng.integers(0, len(y), size=(int(n_boot), len(y)))
    maes = np.abs(y[idx] - p[idx]).mean(1)
    rs = np.array([r_of(y[i], p[i]) for i in idx])
    return {"n": len(y), "mae": float(np.abs(y - p).mean()), "mae_ci_low": float(np.percentile(maes, 2.5)),
            "mae_ci_high": float(np.percentile(maes, 97.5)), "r": r_of(y, p),
            "r_ci_low": float(np.nanpercentile(rs, 2.5)), "r_ci_high": float(np.nanpercentile(rs, 97.5))}


# ---------------------------------------------------------------------- LMAE tokens
def encoder_tokens(model: Any, info: Any, cohort: Any, recordings: Sequence[str], n_windows: int,
                   batch_size: int = 64) -> np.ndarray:
    """Encoder tokens of the first ``n_windows`` consecutive windows of each recording.

    Windows are cut at the checkpoint's TR and length (``info.target_tr``, ``info.window``)
    starting at frame 0 without overlap, encoded with every token visible, and their
    patches concatenated in time.

    Returns
    -------
    ndarray float32 ``[n_recordings, n_rois, n_windows * n_patches, d]``

    Raises
    ------
    InputError
        When a recording is shorter than ``n_windows`` windows.
    """
    from ..masking import Mask
    from ..windows import RecordingSet

    h = cohort.harmonized(info.target_tr)
    rs = RecordingSet([h])
    pos = {r: i for i, r in enumerate(rs.table["recording_id"])}
    missing = [r for r in recordings if r not in pos]
    if missing:
        raise InputError(f"recording(s) {missing[:3]} are not in cohort {cohort.path}.")
    T, n_p, R = info.window, info.model_config.n_patches, info.atlas.n_rois
    rec = np.array([pos[r] for r in recordings], np.int64)
    short = [recordings[i] for i, n in enumerate(rs.n_frames[rec]) if n < n_windows * T]
    if short:
        raise InputError(f"{len(short)} recording(s) (e.g. {short[0]}) are shorter than {n_windows} windows of {T} "
                         f"frames at TR {info.target_tr} s; lower n_windows.")
    rr = np.repeat(rec, n_windows)
    ss = np.tile(np.arange(n_windows) * T, len(rec))
    out = np.zeros((len(rec) * n_windows, R, n_p, info.model_config.d_model), np.float32)
    model.eval()
    with torch.inference_mode():
        for a in range(0, len(rr), batch_size):
            x = torch.from_numpy(rs.read(rr[a:a + batch_size], ss[a:a + batch_size], T))
            L = R * n_p
            allt = torch.arange(L).expand(len(x), -1)
            hid = model.forward_encoder(x, Mask(allt, allt[:, :0]))                      # [B, L, d]
            out[a:a + len(x)] = hid.reshape(len(x), R, n_p, -1).numpy()
    # [n_rec, n_windows, R, n_p, d] → [n_rec, R, n_windows * n_p, d]
    out = out.reshape(len(rec), n_windows, R, n_p, -1).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(out.reshape(len(rec), R, n_windows * n_p, -1))


# ---------------------------------------------------------------------- the pipeline
@dataclass(frozen=True)
class LMAEConfig:
    """Settings of ``bi-core related lmae-age``.

    Parameters
    ----------
    study
        Masking-study preset whose ``temporal_block`` (LMAE) and ``network`` runs are used
        (and trained if missing) — same model size and compute as the study.
    seed
        Seed of the pretraining runs, the folds, the regressors and the bootstrap.
    targets
        Phenotype columns of the pretraining cohort to predict.
    n_windows
        Consecutive windows per recording fed to the SSM (capped by the shortest recording).
    cv_folds, n_boot
        Outer subject folds; bootstrap resamples for the intervals.
    jobs
        RWMOE + SSM fits run in parallel processes (one torch thread each); results do not depend on it.
    regressor
        RWMOE + SSM settings.
    """

    study: str = "default"
    seed: int = 0
    targets: tuple[str, ...] = ("age", "fluid")
    n_windows: int = 3
    cv_folds: int = 5
    n_boot: int = 1000
    jobs: int = 2
    regressor: RegressorConfig = field(default_factory=RegressorConfig)

    def __post_init__(self) -> None:
        if isinstance(self.regressor, dict):
            object.__setattr__(self, "regressor", RegressorConfig(**self.regressor))
        object.__setattr__(self, "targets", tuple(self.targets))
        if not self.targets:
            raise ConfigError("give at least one target column.")
        if self.n_windows < 1 or self.cv_folds < 2 or self.n_boot < 10:
            raise ConfigError("n_windows must be >= 1, cv_folds >= 2 and n_boot >= 10.")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["targets"] = list(self.targets)
        return d


LMAE_PRESETS: dict[str, LMAEConfig] = {
    "smoke": LMAEConfig(study="smoke", cv_folds=3, n_boot=200, jobs=1,
                        regressor=RegressorConfig(max_epochs=15, patience=5)),
    "default": LMAEConfig(study="default"),
    "full": LMAEConfig(study="full", n_boot=2000, regressor=RegressorConfig(max_epochs=300, patience=40)),
}


def lmae_preset(name: str, **overrides: Any) -> LMAEConfig:
    """An ``lmae-age`` preset (:data:`LMAE_PRESETS`) with field overrides."""
    return pick_preset(LMAE_PRESETS, name, "lmae-age", **overrides)


RWMOE_METHOD = "LMAE tokens → RWMOE → SSM"
RWMOE_UNTRAINED = "LMAE tokens → RWMOE → SSM, untrained (ablation)"
EMBEDDING_METHOD = "BrainInterNet embedding (network masking) + ridge"
PROFILE_METHOD = "BrainInterNet predictability profile (network masking) + ridge"


def _fit_job(job: dict[str, Any]) -> dict[str, Any]:
    """One RWMOE + SSM fit (a worker process): predictions on ``test`` or, without it, expert weights."""
    torch.set_num_threads(int(job["threads"]))
    t0 = time.perf_counter()
    X = np.load(job["tokens"], mmap_mode="r")
    tr = job["train"]
    reg = RWMoESSMRegressor(job["cfg"], seed=job["seed"]).fit(np.ascontiguousarray(X[tr]), job["y"][tr], job["P"])
    out: dict[str, Any] = {"epochs": reg.epochs_, "best_val": reg.best_val_}
    if job["test"] is None:
        out["weights"] = reg.expert_weights(np.ascontiguousarray(X[tr]))
    else:
        out["pred"] = reg.predict(np.ascontiguousarray(X[job["test"]]))
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def run_lmae_age(synth_dir: str | Path, out: str | Path, cfg: LMAEConfig | None = None,
                 study_dir: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """LMAE → RWMOE → SSM against ridge baselines for ``cfg.targets`` on identical subject folds.

    Parameters
    ----------
    synth_dir
        Synthetic root (``DIR/pretrain`` with ``age`` and ``fluid``; ``DIR/ground_truth.json``).
    out
        Output directory: ``results.tsv``, ``predictions.tsv``, ``expert_weights.tsv``,
        ``training.tsv``, ``summary.json`` (written last).
    study_dir
        A masking-study directory whose runs to reuse (``STUDY/runs``); default ``out/runs``
        (runs are trained there when missing).

    Returns
    -------
    dict
        The content of ``summary.json``.
    """
    from ..analysis.classify import connectivity_features
    from ..analysis.embeddings import embed
    from ..analysis.predictability import predictability
    from ..analysis.suite import EMBEDDING_KIND
    from ..cohort import Cohort
    from ..runs import load_model
    from .masking_study.config import study_preset
    from .masking_study.training import ensure_run

    cfg = cfg or lmae_preset("default")
    t_start = time.perf_counter()
    synth_dir, out = Path(synth_dir), Path(out)
    pre_dir = synth_dir / "pretrain"
    if not (pre_dir / "cohort.json").is_file():
        raise InputError(f"{pre_dir} is not a cohort store; --synth must be a root made by `bi-core synth --out DIR`.")
    cohort = Cohort.open(pre_dir)
    tab = cohort.table
    missing = [t for t in cfg.targets if t not in tab or tab[t].notna().sum() == 0]
    if missing:
        raise InputError(f"cohort {pre_dir} has no values for target(s) {missing}; columns: {list(tab.columns)}. "
                         "The synthetic pretraining cohort (bi-core synth) has 'age' and 'fluid'.")
    keep = tab[list(cfg.targets)].notna().all(axis=1).to_numpy()
    tab = tab[keep].reset_index(drop=True)
    ids, subjects = tab["recording_id"].tolist(), tab["subject"].to_numpy()
    runs = Path(study_dir) / "runs" if study_dir is not None else out / "runs"
    scfg = study_preset(cfg.study)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    lmae_run, lmae_trained = ensure_run(pre_dir, scfg, "temporal_block", cfg.seed, runs, progress=progress)
    net_run, net_trained = ensure_run(pre_dir, scfg, "network", cfg.seed, runs, progress=progress)
    timings["pretraining_s"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    lmae, info = load_model(lmae_run, cohort=cohort)
    h = cohort.harmonized(info.target_tr)
    n_frames = h.table.set_index("recording_id").loc[ids, "n_frames"].to_numpy()
    n_windows = int(min(cfg.n_windows, n_frames.min() // info.window))
    if n_windows < 1:
        raise InputError(f"some recordings of {pre_dir} are shorter than one {info.window}-frame window at TR "
                         f"{info.target_tr} s.")
    tokens = encoder_tokens(lmae, info, cohort, ids, n_windows)
    feats: dict[str, np.ndarray] = {}
    for name, run in ((EMBEDDING_METHOD, net_run),
                      ("LMAE embedding (temporal-block masking) + ridge", lmae_run)):
        m, inf = load_model(run, cohort=cohort)
        e = embed(m, inf, cohort, recordings=ids)
        # the classification chapter's embedding (bi_core.analysis.suite.EMBEDDING_KIND)
        feats[name] = e.features(EMBEDDING_KIND)[pd.Index(e.table["recording_id"]).get_indexer(ids)]
        if run == net_run:
            # the paper's own read-out: one R² per network with that network masked
            pr = predictability(m, inf, cohort, recordings=ids)
            feats[PROFILE_METHOD] = pr.pivot(index="recording_id", columns="network", values="r2") \
                .reindex(index=ids, columns=list(cohort.atlas.networks)).to_numpy()
    series = [np.asarray(h.series(h.index_of(r))) for r in ids]
    feats["FC correlation + ridge"] = connectivity_features(series, "correlation")
    timings["features_s"] = round(time.perf_counter() - t0, 2)

    folds = subject_folds(subjects, cfg.cv_folds, cfg.seed)
    pred_rows, train_rows, weight_rows, res_rows = [], [], [], []
    t0 = time.perf_counter()
    import tempfile

    untrained = replace(cfg.regressor, max_epochs=0)
    with tempfile.TemporaryDirectory(prefix="bi_core-lmae-") as tmp:
        # workers memory-map the tokens instead of receiving a copy each
        tok_path = Path(tmp) / "tokens.npy"
        np.save(tok_path, tokens)
        # the ROI graph of each fold from its training subjects' FC only
        graphs = [transition_matrix(group_fc_graph([series[i] for i in tr], cfg.regressor.k_neighbors))
                  for tr, _ in folds]
        P_all = transition_matrix(group_fc_graph(series, cfg.regressor.k_neighbors))
        jobs = []
        for target in cfg.targets:
            y = tab[target].to_numpy(float)
            for k, (tr, te) in enumerate(folds):
                for name, rcfg in ((RWMOE_METHOD, cfg.regressor), (RWMOE_UNTRAINED, untrained)):
                    jobs.append({"tokens": str(tok_path), "y": y, "train": tr, "test": te, "P": graphs[k],
                                 "cfg": rcfg, "seed": cfg.seed * 1000 + k, "target": target, "method": name,
                                 "fold": k, "threads": 1})
            # interpretation model: every subject, to read the experts' ROI weights (no test score)
            jobs.append({"tokens": str(tok_path), "y": y, "train": np.arange(len(y)), "test": None, "P": P_all,
                         "cfg": cfg.regressor, "seed": cfg.seed, "target": target, "method": RWMOE_METHOD,
                         "fold": -1, "threads": 1})
        done = map_jobs(_fit_job, jobs, cfg.jobs, progress, desc="lmae-age (RWMOE+SSM fits)")
    preds: dict[tuple[str, str], np.ndarray] = {}
    for target in cfg.targets:
        for name in (RWMOE_METHOD, RWMOE_UNTRAINED):
            preds[(target, name)] = np.full(len(ids), np.nan)
    for j, d in zip(jobs, done):
        if j["fold"] < 0:
            W = d["weights"]
            for r in range(W.shape[0]):
                for e in range(W.shape[1]):
                    weight_rows.append({"target": j["target"], "roi": cohort.atlas.roi_names[r],
                                        "network": cohort.atlas.roi_networks[r],
                                        "region": cohort.atlas.roi_regions[r] if cohort.atlas.roi_regions else "",
                                        "expert": e, "weight": float(W[r, e])})
            continue
        preds[(j["target"], j["method"])][j["test"]] = d["pred"]
        train_rows.append({"target": j["target"], "method": j["method"], "fold": j["fold"], "epochs": d["epochs"],
                           "best_val_mse_std": d["best_val"], "n_train": len(j["train"]), "n_test": len(j["test"]),
                           "seconds": d["seconds"]})
    for target in cfg.targets:
        y = tab[target].to_numpy(float)
        for name, X in feats.items():
            preds[(target, name)] = ridge_predictions(X, y, folds)
    timings["regression_s"] = round(time.perf_counter() - t0, 2)

    for (target, name), p in preds.items():
        y = tab[target].to_numpy(float)
        met = regression_metrics(y, p, cfg.n_boot, cfg.seed)
        # the scale of the problem: error of predicting each training fold's mean
        base = np.full(len(y), np.nan)
        for tr, te in folds:
            base[te] = y[tr].mean()
        res_rows.append({"target": target, "method": name, "dataset": "synthetic pretraining cohort (this study)",
                         **met, "mae_predict_mean": float(np.abs(y - base).mean()), "target_sd": float(y.std())})
        for i in range(len(y)):
            pred_rows.append({"target": target, "method": name, "recording_id": ids[i], "subject": subjects[i],
                              "fold": next(k for k, (_, te) in enumerate(folds) if i in set(te)),
                              "y_true": y[i], "y_pred": p[i]})
    for ref in SEED001_REPORTED:
        if ref["target"] in cfg.targets:
            res_rows.append({"target": ref["target"], "method": REFERENCE_METHOD, "dataset": REFERENCE_DATASET,
                             "n": np.nan, "mae": ref["mae"], "r": ref["r"]})
    results = pd.DataFrame(res_rows)
    out.mkdir(parents=True, exist_ok=True)
    write_tsv(out / "results.tsv", results)
    write_tsv(out / "predictions.tsv", pd.DataFrame(pred_rows))
    write_tsv(out / "expert_weights.tsv", pd.DataFrame(weight_rows))
    write_tsv(out / "training.tsv", pd.DataFrame(train_rows))
    summary = {"config": cfg.to_dict(), "n_subjects": len(np.unique(subjects)), "n_recordings": len(ids),
               "n_windows": n_windows, "n_patches": int(tokens.shape[2]), "token_dim": int(tokens.shape[3]),
               "lmae_run": str(lmae_run), "network_run": str(net_run),
               "trained_now": {"lmae": lmae_trained, "network": net_trained},
               "best_method": _best_methods(results), "timings": {**timings,
                                                                   "total_s": round(time.perf_counter() - t_start, 2)}}
    write_json(out / "summary.json", summary)
    return summary


def _best_methods(results: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per target: the method with the highest r among this study's rows, and where RWMOE+SSM stands."""
    out = {}
    ours = results[results["dataset"] != REFERENCE_DATASET]
    for t, g in ours.groupby("target", sort=False):
        g = g.set_index("method")
        best = g["r"].idxmax()
        out[t] = {"best_by_r": best, "best_r": float(g.loc[best, "r"]), "best_mae": float(g.loc[best, "mae"]),
                  "rank_rwmoe_ssm_by_r": int((g["r"] > g.loc[RWMOE_METHOD, "r"]).sum() + 1)
                  if RWMOE_METHOD in g.index else None, "n_methods": len(g)}
    return out


def result_sentences(results: pd.DataFrame) -> dict[str, str]:
    """One computed sentence per target: the best method by r, where RWMOE + SSM and its untrained
    ablation stand, and whether their 95 % intervals overlap (nothing about the outcome is hard-coded)."""
    out = {}
    ours = results[results["dataset"] != REFERENCE_DATASET]
    for t, g in ours.groupby("target", sort=False):
        g = g.set_index("method")
        best = g["r"].idxmax()

        def desc(m: str, g: pd.DataFrame = g) -> str:
            r = g.loc[m]
            return f"r = {r['r']:.2f} (95 % CI {r['r_ci_low']:.2f} to {r['r_ci_high']:.2f}), MAE {r['mae']:.3g}"

        txt = (f"For {t}, the highest correlation is {best}'s: {desc(best)}; predicting the training mean gives "
               f"MAE {g['mae_predict_mean'].iloc[0]:.3g}.")
        if RWMOE_METHOD in g.index and best != RWMOE_METHOD:
            overlap = g.loc[RWMOE_METHOD, "r_ci_high"] >= g.loc[best, "r_ci_low"]
            txt += (f" {RWMOE_METHOD} reaches {desc(RWMOE_METHOD)}; its interval "
                    f"{'overlaps' if overlap else 'lies below'} that of the best.")
        if RWMOE_UNTRAINED in g.index:
            txt += (" The untrained ablation (same architecture, initial weights, ridge read-out): "
                    f"{desc(RWMOE_UNTRAINED)}.")
        out[str(t)] = txt
    return out


def load_lmae(out: str | Path) -> dict[str, Any]:
    """Read a finished ``lmae-age`` directory: tables and ``summary.json``."""
    out = Path(out)
    if not (out / "summary.json").is_file():
        raise InputError(f"{out} holds no finished lmae-age run (no summary.json); run "
                         "`bi-core related lmae-age --synth SYNTH --out DIR`.")
    res: dict[str, Any] = {"json": json.loads((out / "summary.json").read_text())}
    for name in ("results", "predictions", "expert_weights", "training"):
        p = out / f"{name}.tsv"
        if not p.is_file():
            raise InputError(f"{p} is missing; run lmae-age again.")
        res[name] = pd.read_csv(p, sep="\t", na_values=["n/a"])
    return res


__all__ = [
    "EMBEDDING_METHOD",
    "LMAE_PRESETS",
    "PROFILE_METHOD",
    "SEED001_REPORTED",
    "DiagonalSSM",
    "LMAEConfig",
    "RWMoESSM",
    "RWMoESSMRegressor",
    "RandomWalkMoE",
    "RegressorConfig",
    "encoder_tokens",
    "group_fc_graph",
    "lmae_preset",
    "load_lmae",
    "parallel_scan",
    "random_walk_features",
    "regression_metrics",
    "result_sentences",
    "run_lmae_age",
    "ssm_recurrence",
    "transition_matrix",
]
