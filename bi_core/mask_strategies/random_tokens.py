"""``random``: random tokens at ``mask.ratio`` — the BrainLM-style baseline.

Every sample gets its own tokens but the same number of them (``round(ratio * L)``), so
batches need no padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..mask_types import Mask, TokenLayout
from .base import MaskConfig, MaskPlan, register
from .fixed_ratio import FixedRatioStrategy



@dataclass(frozen=True, eq=False)
class RandomPlan(MaskPlan):
    """Sampler state of ``random``: the share asked for and the tokens masked per sample."""

    ratio: float
    n_mask: int


@register
class RandomStrategy(FixedRatioStrategy[RandomPlan]):
    """Mask random tokens (BrainLM-style)."""

    name = "random"
    description = "random tokens at mask.ratio (default: the network strategy's expected share), BrainLM-style"
    color = "#e76f51"

    def prepare(self, layout: TokenLayout, cfg: MaskConfig) -> RandomPlan:
        ratio = self.ratio(layout, cfg)
        L = layout.n_tokens
        n_mask = int(round(ratio * L))
        if not 1 <= n_mask <= L - 1:
            raise ConfigError(f"mask ratio {ratio:.3g} of {L} tokens masks {n_mask} tokens; "
                              "it must leave at least one token masked and one visible.")
        return RandomPlan(layout, cfg, ratio, n_mask)

    def expected_share(self, layout: TokenLayout, cfg: MaskConfig) -> float:
        return self.prepare(layout, cfg).n_mask / layout.n_tokens

    def setting(self, plan: RandomPlan) -> str:
        return f"ratio={plan.ratio:.4g}"

    def sample(self, plan: RandomPlan, batch_size: int, rng: np.random.Generator) -> Mask:
        import torch  # here, not at the top: the CLI imports this package to list the strategies

        B, L = int(batch_size), plan.layout.n_tokens
        order = np.argsort(rng.random((B, L)), axis=1)
        msk = np.sort(order[:, : plan.n_mask], axis=1)
        vis = np.sort(order[:, plan.n_mask:], axis=1)
        return Mask(torch.from_numpy(vis), torch.from_numpy(msk), units=torch.zeros(B, 0, dtype=torch.long),
                    hidden=torch.zeros(B, 0, dtype=torch.long), kind=self.name)
