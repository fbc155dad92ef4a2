"""``region``: 1 (or 2) whole anatomical regions from the atlas ``region`` column (seed 002).

ROIs without a region (``-1``) are never masked. In the masking study the share is
matched through ``p_two`` (the probability of two regions), since regions and networks
differ in size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from .base import STRATEGIES, register
from .whole_units import UnitPlan, WholeUnitStrategy, check_unit_count, p_two_for_share, unit_shares

if TYPE_CHECKING:
    from ..masking import MaskConfig, TokenLayout


@register
class RegionStrategy(WholeUnitStrategy):
    """Mask whole anatomical regions (region-aware masking, seed 002)."""

    name = "region"
    description = "1 whole anatomical region (2 with probability mask.p_two) from the atlas 'region' column"
    color = "#2a9d8f"

    def unit_ids(self, layout: TokenLayout) -> np.ndarray:
        if layout.roi_region is None:
            raise ConfigError("the region strategy needs an atlas with a 'region' column; this atlas has none "
                              "(drop 'region' from the strategies or add regions to the atlas table).")
        return np.asarray(layout.roi_region)

    def rois_of(self, layout: TokenLayout, units: Sequence[int] | np.ndarray) -> np.ndarray:
        return layout.rois_of_regions(units)

    def prepare(self, layout: TokenLayout, cfg: MaskConfig) -> UnitPlan:
        if layout.roi_region is None:
            raise ConfigError("region masking needs an atlas with an anatomical 'region' column, and this "
                              "atlas has none; add one to the atlas table or use another strategy "
                              f"({[s for s in STRATEGIES if s != 'region']}).")
        present = np.unique([r for r in layout.roi_region if r >= 0])
        if np.all(np.asarray(layout.roi_region) >= 0):
            check_unit_count(len(present), cfg.p_two, "region", "regions")
        elif len(present) == 0:
            raise ConfigError("no ROI of this atlas has a region label; region masking is impossible.")
        return UnitPlan(layout, cfg, present)

    def matched_settings(self, layout: TokenLayout, target: float, p_two: float) -> dict[str, Any]:
        ids = self.unit_ids(layout)
        units = np.unique(ids[ids >= 0])
        p = p_two_for_share(unit_shares(ids, units), target)
        if len(units) <= 2 and np.all(ids >= 0):
            p = 0.0  # two regions: a pair would mask everything
        return {"p_two": round(p, 4)}
