"""Random-walk mixture of experts → SSM block → read-out, and its fit/predict regressor."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ... import streams
from ...errors import ConfigError, InputError
from ...folds import subject_folds
from ...stats import standardized_ridge
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

    Training: ``n_seeds`` initializations, each trained as ``inner_folds`` extractors (one per
    inner fold of the training subjects, all from the same initial weights) with AdamW at
    ``lr`` on mini-batches of ``batch_size`` for up to ``max_epochs`` epochs, stopped early
    (``patience`` epochs) on the read-out's validation score (see
    :class:`RWMoESSMRegressor`).

    The optimization settings (``lr=1e-3``, ``max_epochs=100``, ``patience=20``,
    ``batch_size=16``, ``inner_folds=3``, ``n_seeds=3``) were chosen on the default
    ``lmae-age`` preset with **seed 1** (its own pretraining runs, folds and regressor
    seeds), which the book does not report (the book shows seed 0, which was not looked at
    for these choices). On seed 1, out-of-fold r for age / fluid: untrained 0.25 / 0.29
    (one initialization); lr 1e-3, 150 epochs, patience 30, one initialization 0.25 / 0.30;
    lr 3e-3 0.25 / 0.29; lr 1e-3, 100 epochs, patience 20, two initializations 0.29 / 0.30
    (weight decay 0.1 and dropout 0.3 instead: 0.29 / 0.30, so those stay); the same with
    three initializations 0.27 / 0.30 against 0.28 / 0.28 untrained (three
    initializations). The read-out's validation error was lowest within the first 50
    epochs in every fit. The architecture settings are unchanged from before.
    """

    hidden: int = 4
    n_experts: int = 8
    rw_steps: int = 3
    k_neighbors: int = 8
    ssm_state: int = 8
    dropout: float = 0.1
    lr: float = 1e-3
    weight_decay: float = 1e-2
    max_epochs: int = 100
    patience: int = 20
    batch_size: int = 16
    inner_folds: int = 3
    n_seeds: int = 3
    second_order: bool = True
    readout: str = "ridge"

    def __post_init__(self) -> None:
        if self.readout not in ("ridge", "trained"):
            raise ConfigError(f"regressor.readout={self.readout!r}; use 'ridge' (a cross-fitted ridge read-out on "
                              "the trained features) or 'trained' (the end-to-end heads).")
        for nm in ("hidden", "n_experts", "rw_steps", "k_neighbors", "ssm_state", "patience", "batch_size",
                   "n_seeds"):
            if int(getattr(self, nm)) < 1:
                raise ConfigError(f"regressor.{nm}={getattr(self, nm)} must be at least 1.")
        if self.inner_folds < 2:
            raise ConfigError(f"regressor.inner_folds={self.inner_folds} must be at least 2 (cross-fitting).")
        if self.max_epochs < 0:
            raise ConfigError(f"regressor.max_epochs={self.max_epochs} must be >= 0 (0: keep the initial weights).")
        if not 0 <= self.dropout < 1 or self.lr <= 0:
            raise ConfigError("regressor: dropout must be in [0, 1) and lr positive.")


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
        # features of very different scales; per-sample statistics (not BatchNorm's running
        # ones, which a few dozen small steps never settle), so training and evaluation agree
        self.feat_norm = nn.LayerNorm(C)
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
    """Fit/predict wrapper with a cross-fitted read-out: no read-out row comes from an extractor that saw it.

    Fitting on tokens ``X`` ``[n, R, T, d]`` and targets ``y`` ``[n]`` (standardized inside):

    1. The training subjects are split into ``cfg.inner_folds`` subject folds.
    2. For each of ``cfg.n_seeds`` initializations, one extractor (RWMOE → SSM → LayerNorm →
       linear head) per inner fold is trained end to end (MSE, AdamW, mini-batches) on the
       *other* folds' subjects; every extractor of a seed starts from the same weights, so
       their features start aligned.
    3. After every epoch (and before the first), each extractor gives the features of the
       fold it did not see; these out-of-fold features of all training subjects are the
       rows of the read-out: a standardized ridge (:func:`~bi_core.stats.standardized_ridge`,
       penalty by leave-one-out), whose leave-one-out error is the validation score
       (``readout="trained"``: the heads' out-of-fold error). Training stops after
       ``cfg.patience`` epochs without improvement and keeps the best epoch — possibly
       epoch 0, the initial weights.
    4. Prediction averages, over seeds and extractors, the read-out applied to each
       extractor's features of the new samples (which no extractor saw, like the read-out's rows).

    Refitting the ridge on features of the subjects the extractor was trained on (as an
    earlier version did) lets its penalty selection see features that already encode the
    target: on a pure-noise target, trained features gave training r up to 0.68-0.88 and a
    penalty 10²-10⁴ times smaller than untrained ones. The cross-fitted read-out keeps such
    noise out (tested: its validation error shows no skill at any epoch on a noise target,
    and a planted second-order target is captured by training and not by the initial weights).
    The head is normalized by LayerNorm (per-sample statistics): BatchNorm's running
    statistics, after a few dozen updates, made early stopping compare wrong numbers.

    Parameters
    ----------
    cfg
        Architecture and optimization settings.
    seed
        Seed of the inner folds, the initial weights, dropout and the mini-batch order
        (same seed → same numbers on CPU).

    Attributes
    ----------
    folds_ : list of (train, validation) index arrays
        The inner subject folds.
    members_ : list of (extractors, read-out)
        Per initialization: one extractor per inner fold (at the best epoch) and the fitted
        ridge pipeline (``None`` with ``readout="trained"``); the ridge keeps its rows as
        ``cross_fitted_features_`` ``[n, C]``.
    history_ : list of list of float
        Per initialization: the validation MSE (standardized target) after each epoch, epoch 0 first.
    best_epochs_, epochs_
        The best epoch per initialization, and their mean (rounded).
    best_val_ : float
        Mean over initializations of the best validation MSE.
    """

    def __init__(self, cfg: RegressorConfig | None = None, seed: int = 0) -> None:
        self.cfg = cfg or RegressorConfig()
        self.seed = int(seed)

    def fit(self, X: np.ndarray, y: np.ndarray, transition: np.ndarray,
            groups: np.ndarray | None = None) -> RWMoESSMRegressor:
        """Fit on tokens ``X`` ``[n, R, T, d]`` and targets ``y`` ``[n]`` with ROI graph ``transition`` ``[R, R]``.

        ``groups`` ``[n]``: the subject of each sample (inner folds never split a subject);
        default one subject per sample.
        """
        from threadpoolctl import threadpool_limits


        check_tokens(X, y)
        if np.asarray(transition).shape != (X.shape[1], X.shape[1]):
            raise InputError(f"transition matrix has shape {np.asarray(transition).shape} but the tokens have "
                             f"{X.shape[1]} ROIs.")
        n, cfg = len(y), self.cfg
        if n < max(5, 2 * cfg.inner_folds):
            raise InputError(f"{n} training samples are too few to fit the RWMOE+SSM regressor (need at least "
                             f"{max(5, 2 * cfg.inner_folds)} for {cfg.inner_folds} inner folds).")
        y = np.asarray(y, float)
        self.y_mean_, self.y_sd_ = float(y.mean()), float(y.std())
        groups = np.arange(n) if groups is None else np.asarray(groups)
        fold_seed = int(np.random.default_rng([self.seed, streams.REGRESSOR_VALIDATION]).integers(2**31))
        self.folds_ = subject_folds(groups, cfg.inner_folds, fold_seed, min_train=2)
        Xt = torch.tensor(X, dtype=torch.float32)
        yt = torch.tensor((y - self.y_mean_) / self.y_sd_, dtype=torch.float32)
        self.members_: list[tuple[list[RWMoESSM], Any]] = []
        self.history_: list[list[float]] = []
        self.best_epochs_: list[int] = []
        self.best_scores_: list[float] = []
        for s in range(cfg.n_seeds):
            # one BLAS thread: the read-out is refitted every epoch on a small matrix, where more
            # threads only add contention (the studies already run one fit per core)
            with threadpool_limits(1, user_api="blas"):
                models, readout, hist, epoch, score = self._fit_seed(Xt, yt, transition, s)
            self.members_.append((models, readout))
            self.history_.append(hist)
            self.best_epochs_.append(epoch)
            self.best_scores_.append(score)
        self.epochs_ = int(round(float(np.mean(self.best_epochs_))))   # mean best epoch over seeds
        self.best_val_ = float(np.mean(self.best_scores_))              # validation MSE, standardized target
        return self

    def _fit_seed(self, Xt: torch.Tensor, yt: torch.Tensor, transition: np.ndarray,
                  s: int) -> tuple[list[RWMoESSM], Any, list[float], int, float]:
        """One initialization: its extractors (one per inner fold), read-out, score history, best epoch and score."""
        cfg = self.cfg
        init_seed = int(np.random.SeedSequence([self.seed, streams.REGRESSOR_INIT, s]).generate_state(1)[0])
        batch_rng = np.random.default_rng([self.seed, streams.REGRESSOR_BATCHES, s])
        with torch.random.fork_rng(devices=[]):
            models = []
            for _ in self.folds_:
                torch.manual_seed(init_seed)  # the same initial weights for every fold
                models.append(RWMoESSM(Xt.shape[-1], transition, cfg))
            opts = [torch.optim.AdamW(m.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay) for m in models]
            best_score, best_readout = self._cross_fitted(models, Xt, yt)
            best_epoch, bad, hist = 0, 0, [best_score]
            best_states = [_state(m) for m in models]
            for epoch in range(1, cfg.max_epochs + 1):
                for m, opt, (tr, _) in zip(models, opts, self.folds_):
                    m.train()
                    order = tr[batch_rng.permutation(len(tr))]
                    for a in range(0, len(order), cfg.batch_size):
                        b = order[a:a + cfg.batch_size]
                        opt.zero_grad(set_to_none=True)
                        pred, _ = m(Xt[b])
                        F.mse_loss(pred, yt[b]).backward()
                        opt.step()
                score, readout = self._cross_fitted(models, Xt, yt)
                hist.append(score)
                if score < best_score - 1e-6:
                    best_score, best_readout, best_epoch, bad = score, readout, epoch, 0
                    best_states = [_state(m) for m in models]
                else:
                    bad += 1
                    if bad >= cfg.patience:
                        break
        for m, st in zip(models, best_states):
            m.load_state_dict(st)
            m.eval()
        return models, best_readout, hist, best_epoch, best_score

    def _cross_fitted(self, models: list[RWMoESSM], Xt: torch.Tensor, yt: torch.Tensor) -> tuple[float, Any]:
        """Validation MSE (standardized target) of the read-out on out-of-fold features, and that read-out."""
        n = len(yt)
        with torch.no_grad():
            if self.cfg.readout == "trained":
                pred = torch.zeros(n)
                for m, (_, va) in zip(models, self.folds_):
                    m.eval()
                    pred[va] = m(Xt[va])[0]
                return float(F.mse_loss(pred, yt)), None
            f = None
            for m, (_, va) in zip(models, self.folds_):
                m.eval()
                fv = m.features(Xt[va])[0].double().numpy()
                f = np.zeros((n, fv.shape[1])) if f is None else f
                f[va] = fv
        ridge = standardized_ridge().fit(f, yt.double().numpy())
        ridge.cross_fitted_features_ = f                                # the read-out's rows, for diagnostics
        return float(-ridge[-1].best_score_), ridge                     # RidgeCV: leave-one-out MSE

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions ``[n]`` in the target's units: the mean over seeds and inner-fold extractors."""
        check_tokens(X)
        out = np.zeros(len(X))
        with torch.no_grad():
            xt = torch.tensor(X, dtype=torch.float32)
            for models, readout in self.members_:
                for m in models:
                    if readout is not None:
                        out += readout.predict(m.features(xt)[0].double().numpy())
                    else:
                        out += m(xt)[0].double().numpy()
        out /= sum(len(models) for models, _ in self.members_)
        return out * self.y_sd_ + self.y_mean_

    def expert_weights(self, X: np.ndarray) -> np.ndarray:
        """Mean router weights per ROI ``[R, E]`` over the samples ``X`` and every extractor."""
        check_tokens(X)
        xt = torch.tensor(X, dtype=torch.float32)
        W = [m.expert_weights(xt) for models, _ in self.members_ for m in models]
        return np.mean(W, axis=0)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: t.detach().clone() for k, t in model.state_dict().items()}
