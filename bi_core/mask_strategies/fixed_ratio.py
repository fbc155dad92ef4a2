"""Shared logic of the strategies that mask a fixed share ``mask.ratio`` of the tokens of every sample.

They draw per sample but mask the same number of tokens in every sample, so they never
need padding. ``mask.ratio: null`` masks the ``network`` strategy's expected share
(:func:`~bi_core.mask_strategies.network.matched_ratio`).
"""

from __future__ import annotations

from typing import Any

from ..mask_types import TokenLayout
from .base import MaskConfig, MaskStrategy, PlanT
from .network import matched_ratio



class FixedRatioStrategy(MaskStrategy[PlanT]):
    """Base of :mod:`~bi_core.mask_strategies.random_tokens` and :mod:`~bi_core.mask_strategies.temporal_block`."""

    @staticmethod
    def ratio(layout: TokenLayout, cfg: MaskConfig) -> float:
        """The share to mask: ``cfg.ratio``, or the ``network`` strategy's expected share."""
        return float(cfg.ratio) if cfg.ratio is not None else matched_ratio(layout, cfg.p_two)

    def matched_settings(self, layout: TokenLayout, target: float, p_two: float) -> dict[str, Any]:
        return {"ratio": target}
