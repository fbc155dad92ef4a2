"""What the masking study trains: one mask config per strategy at the matched share, and the runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...cohort import Cohort
from ...masking import DEFAULT_P_TWO, STRATEGIES, MaskConfig, MaskSampler, TokenLayout, get_strategy, matched_ratio
from ...model_config import SIZES
from .config import REFERENCE, StudyConfig

# In-function imports: torch (the model, runs and the trainer) loads only when a run is checked or trained; the
# study's config and data helpers import this module.

# ---------------------------------------------------------------------- masks
def matched_mask_configs(layout: TokenLayout, p_two: float = DEFAULT_P_TWO,
                         strategies: Sequence[str] = STRATEGIES) -> dict[str, MaskConfig]:
    """One :class:`~bi_core.masking.MaskConfig` per strategy with the masked share matched to ``network``.

    The target share is the ``network`` strategy's expected share (``(1 + p_two)`` times the
    mean network share); each strategy picks its setting for it
    (:meth:`~bi_core.mask_strategies.MaskStrategy.matched_settings`). ``random``,
    ``temporal_block`` and ``atlas_region`` mask it exactly (up to rounding to whole tokens,
    blocks or ROIs); ``lobe_group`` masks 1 or 2 whole lobe-like ROI groups, with the
    probability of two chosen so that the expected share matches (clipped to [0, 1] when
    groups are too small or too large to match).

    Raises
    ------
    ConfigError
        An unknown strategy, or ``lobe_group`` requested on an atlas without a ``region`` column.
    """
    target = matched_ratio(layout, p_two)
    return {s: MaskConfig(s, **get_strategy(s).matched_settings(layout, target, p_two)) for s in strategies}


def mask_fractions(layout: TokenLayout, configs: dict[str, MaskConfig], n_draws: int = 2000,
                   seed: int = 0) -> pd.DataFrame:
    """Expected and realized share of masked tokens per strategy.

    Draws ``n_draws`` single-window masks from each strategy's training sampler.

    Returns
    -------
    DataFrame
        ``strategy, expected, realized_mean, realized_sd, realized_min, realized_max,
        target, n_draws, setting`` (``setting``: the strategy's ``p_two`` or ``ratio``).
    """
    target = matched_ratio(layout, configs[REFERENCE].p_two if REFERENCE in configs else DEFAULT_P_TWO)
    rows = []
    for k, (s, mc) in enumerate(configs.items()):
        sampler = MaskSampler(layout, mc)
        rng = np.random.default_rng([int(seed), k])
        share = np.array([sampler.sample(1, rng).n_masked_tokens() for _ in range(int(n_draws))]) / layout.n_tokens
        rows.append({"strategy": s, "expected": sampler.expected_ratio, "realized_mean": float(share.mean()),
                     "realized_sd": float(share.std(ddof=1)) if len(share) > 1 else 0.0,
                     "realized_min": float(share.min()), "realized_max": float(share.max()), "target": target,
                     "n_draws": int(n_draws), "setting": sampler.setting})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- training
def train_config(cfg: StudyConfig, strategy: str, seed: int, layout: TokenLayout) -> Any:
    """The :class:`~bi_core.runs.TrainConfig` of one study run (shared schedule, strategy's mask)."""
    from ...runs import TrainConfig

    mask = matched_mask_configs(layout, cfg.p_two, [strategy])[strategy]
    return TrainConfig(model=SIZES[cfg.model_size](), mask=mask, epochs=cfg.epochs, batch_size=cfg.batch_size,
                       lr=cfg.lr, warmup_frac=cfg.warmup_frac, mask_groups=cfg.mask_groups, val_fraction=0.0,
                       patience=0, seed=int(seed))


def run_name(strategy: str, seed: int) -> str:
    return f"{strategy}-s{int(seed)}"


def ensure_run(pretrain_dir: str | Path, cfg: StudyConfig, strategy: str, seed: int, runs: str | Path,
               progress: bool = False) -> tuple[Path, bool]:
    """Pretrain one study run unless ``runs/<strategy>-s<seed>`` already holds it (same config hash).

    Returns ``(run directory, trained now)``. Always on the CPU, so the numbers do not
    depend on whether a GPU is present.
    """
    from ...runs import run_is_current
    from ...train import pretrain

    c = Cohort.open(pretrain_dir)
    layout = TokenLayout.from_atlas(c.atlas, n_patches(cfg))
    tcfg = train_config(cfg, strategy, seed, layout)
    out = Path(runs) / run_name(strategy, seed)
    if run_is_current(out, [pretrain_dir], tcfg):
        return out, False
    pretrain([pretrain_dir], tcfg, out, overwrite=True, device="cpu", progress=progress)
    return out, True


def n_patches(cfg: StudyConfig) -> int:

    m = SIZES[cfg.model_size]()
    return m.n_patches
