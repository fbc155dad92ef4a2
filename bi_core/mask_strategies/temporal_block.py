"""``temporal_block``: local temporal masking (seed 001, LMAE-style).

One contiguous block of ``mask.block_patches`` patches in each of ``n_blocks`` randomly
chosen ROIs, as many blocks as give ``mask.ratio`` (at most one block per ROI). Every
sample masks the same number of tokens, so batches need no padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..mask_types import Mask, TokenLayout, rows_to_mask
from .base import MaskConfig, MaskPlan, register
from .fixed_ratio import FixedRatioStrategy



@dataclass(frozen=True, eq=False)
class BlockPlan(MaskPlan):
    """Sampler state of ``temporal_block``: the share asked for, block length (patches) and blocks per sample."""

    ratio: float
    block: int
    n_blocks: int


@register
class TemporalBlockStrategy(FixedRatioStrategy[BlockPlan]):
    """Mask contiguous blocks of time patches in random ROIs (LMAE-style)."""

    name = "temporal_block"
    description = ("contiguous blocks of mask.block_patches patches (default: half the window) in random ROIs, "
                   "as many as give mask.ratio (LMAE-style)")
    color = "#e9c46a"

    def prepare(self, layout: TokenLayout, cfg: MaskConfig) -> BlockPlan:
        ratio = self.ratio(layout, cfg)
        L, n_p = layout.n_tokens, layout.n_patches
        block = min(n_p, int(cfg.block_patches) if cfg.block_patches else max(1, n_p // 2))
        if cfg.block_patches and int(cfg.block_patches) > n_p:
            raise ConfigError(f"mask.block_patches={cfg.block_patches} is longer than the window "
                              f"({n_p} patches).")
        n_blocks = max(1, int(round(ratio * L / block)))
        if n_blocks > layout.n_rois or (n_blocks == layout.n_rois and block == n_p):
            raise ConfigError(f"temporal_block masking at ratio {ratio:.3g} needs {n_blocks} blocks of "
                              f"{block} patches but there are {layout.n_rois} ROIs (one block each) and "
                              "the mask may not cover every token; lower mask.ratio or raise "
                              "mask.block_patches.")
        return BlockPlan(layout, cfg, ratio, block, n_blocks)

    def expected_share(self, layout: TokenLayout, cfg: MaskConfig) -> float:
        plan = self.prepare(layout, cfg)
        return plan.n_blocks * plan.block / layout.n_tokens

    def setting(self, plan: BlockPlan) -> str:
        return f"ratio={plan.ratio:.4g}, block={plan.block} patches"

    def sample(self, plan: BlockPlan, batch_size: int, rng: np.random.Generator) -> Mask:
        lay = plan.layout
        n_p = lay.n_patches
        rows, units = [], []
        for _ in range(int(batch_size)):
            rois = np.sort(rng.choice(lay.n_rois, size=plan.n_blocks, replace=False))
            start = rng.integers(0, n_p - plan.block + 1, size=plan.n_blocks)
            tok = (rois[:, None] * n_p + start[:, None] + np.arange(plan.block)[None, :]).ravel()
            rows.append(tok)
            units.append(rois.tolist())
        return rows_to_mask(rows, lay.n_tokens, units, self.name)
