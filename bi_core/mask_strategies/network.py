"""``network`` [paper]: 1 whole functional network (2 with probability ``p_two``) at every time patch.

Its expected masked share (:func:`matched_ratio`) is the share every other strategy is
matched to by default (``mask.ratio: null``) and in the masking study.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..mask_types import TokenLayout
from .base import DEFAULT_P_TWO, MaskConfig, register
from .whole_units import UnitPlan, WholeUnitStrategy, check_unit_count



@register
class NetworkStrategy(WholeUnitStrategy):
    """Mask whole networks (the paper's strategy)."""

    name = "network"
    description = "1 whole network (2 with probability mask.p_two) at every time patch [paper]"
    color = "#264653"

    def unit_ids(self, layout: TokenLayout) -> np.ndarray:
        return np.asarray(layout.roi_network)

    def rois_of(self, layout: TokenLayout, units: Sequence[int] | np.ndarray) -> np.ndarray:
        return layout.rois_of_networks(units)

    def prepare(self, layout: TokenLayout, cfg: MaskConfig) -> UnitPlan:
        present = np.unique(layout.roi_network)
        check_unit_count(len(present), cfg.p_two, "network", "networks")
        return UnitPlan(layout, cfg, present)

    def matched_settings(self, layout: TokenLayout, target: float, p_two: float) -> dict[str, Any]:
        return {"p_two": p_two}


def matched_ratio(layout: TokenLayout, p_two: float = DEFAULT_P_TWO) -> float:
    """Expected share of tokens masked by the ``network`` strategy.

    With networks drawn uniformly: ``(1 - p_two) * mean_m s_m + p_two * mean_{m<n}(s_m + s_n)``
    where ``s_m`` is network ``m``'s share of ROIs (= ``(1 + p_two) / K`` for ``K`` networks).
    """
    return NetworkStrategy().share(layout, p_two)
