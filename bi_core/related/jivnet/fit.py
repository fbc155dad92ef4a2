"""Training a CM-JIVNet, running it on numpy stacks, and its checkpoints."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ...checkpoint import load_checkpoint, save_checkpoint, seed_everything
from ...config import config_from_dict, config_to_dict
from ...connectome import check_connectomes
from ...errors import CompatibilityError, InputError
from .model import CMJIVNet, JIVNetConfig

CHECKPOINT_FORMAT = "bi_core.jivnet/1"
#: Fewest subjects a model is fitted on (every training set of a split holds at least as many).
MIN_TRAIN_SUBJECTS = 4


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
