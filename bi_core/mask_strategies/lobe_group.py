"""``lobe_group``: 1 (or 2) whole lobe-like groups of ROIs from the atlas ``region`` column.

A "region" of the atlas ``region`` column is a coarse, lobe-like group of ROIs (about 6-7
per atlas: occipital, temporal, parietal, central, cingulo-insular, frontal,
subcortical on the synthetic atlas, whose groups are drawn from fixed shares per network
that the generator never uses; frontal, orbitofrontal, temporal... on the AAL2 → Yeo-7
atlas). Masking one of them is **not** seed 002's region-aware masking, which masks
individual anatomical atlas regions (AAL3): that is ``atlas_region``
(:mod:`~bi_core.mask_strategies.atlas_region`). This strategy was called ``region``
before; ``mask.strategy: region`` still loads as ``lobe_group``
(:data:`~bi_core.mask_strategies.base.DEPRECATED_NAMES`), with a warning.

ROIs without a group (``-1``) are never masked. In the masking study the share is matched
through ``p_two`` (the probability of two groups), since groups and networks differ in size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..mask_types import TokenLayout
from .base import STRATEGIES, MaskConfig, register
from .whole_units import UnitPlan, WholeUnitStrategy, check_unit_count, p_two_for_share, unit_shares



@register
class LobeGroupStrategy(WholeUnitStrategy):
    """Mask whole lobe-like ROI groups (the atlas ``region`` column); formerly ``region``."""

    name = "lobe_group"
    description = ("1 whole lobe-like ROI group (2 with probability mask.p_two) from the atlas 'region' column "
                   "(formerly 'region')")
    color = "#2a9d8f"

    def unit_ids(self, layout: TokenLayout) -> np.ndarray:
        if layout.roi_region is None:
            raise ConfigError("the lobe_group strategy needs an atlas with a 'region' column; this atlas has none "
                              "(drop 'lobe_group' from the strategies or add regions to the atlas table).")
        return np.asarray(layout.roi_region)

    def rois_of(self, layout: TokenLayout, units: Sequence[int] | np.ndarray) -> np.ndarray:
        return layout.rois_of_regions(units)

    def prepare(self, layout: TokenLayout, cfg: MaskConfig) -> UnitPlan:
        if layout.roi_region is None:
            raise ConfigError("lobe_group masking needs an atlas with an anatomical 'region' column, and this "
                              "atlas has none; add one to the atlas table or use another strategy "
                              f"({[s for s in STRATEGIES if s != self.name]}).")
        present = np.unique([r for r in layout.roi_region if r >= 0])
        if np.all(np.asarray(layout.roi_region) >= 0):
            check_unit_count(len(present), cfg.p_two, "lobe_group", "region groups")
        elif len(present) == 0:
            raise ConfigError("no ROI of this atlas has a region label; lobe_group masking is impossible.")
        return UnitPlan(layout, cfg, present)

    def matched_settings(self, layout: TokenLayout, target: float, p_two: float) -> dict[str, Any]:
        ids = self.unit_ids(layout)
        units = np.unique(ids[ids >= 0])
        p = p_two_for_share(unit_shares(ids, units), target)
        if len(units) <= 2 and np.all(ids >= 0):
            p = 0.0  # two groups: a pair would mask everything
        return {"p_two": round(p, 4)}
