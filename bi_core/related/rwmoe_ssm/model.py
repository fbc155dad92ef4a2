"""Random-walk mixture of experts → SSM block → read-out, and its fit/predict regressor."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ... import streams
from ...errors import ConfigError, InputError
from ..ridge import standardized_ridge
from .graph import PRIOR_LOGIT, random_walk_features, rw_clusters
from .ssm import DiagonalSSM

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


def check_tokens(X: np.ndarray, y: np.ndarray | None = None) -> None:
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
        check_tokens(X, y)
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
        check_tokens(X)
        with torch.no_grad():
            xt = torch.tensor(X, dtype=torch.float32)
            if self.ridge_ is not None:
                return self.ridge_.predict(self.model_.features(xt)[0].double().numpy())
            p, _ = self.model_(xt)
        return p.double().numpy() * self.y_sd_ + self.y_mean_

    def expert_weights(self, X: np.ndarray) -> np.ndarray:
        """Mean router weights per ROI ``[R, E]`` over the samples ``X``."""
        check_tokens(X)
        return self.model_.expert_weights(torch.tensor(X, dtype=torch.float32))
