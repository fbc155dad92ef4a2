"""Shared logic of the strategies that mask whole units (networks, regions) at every time patch.

One unit is drawn uniformly (two, with probability ``p_two``) and all tokens of its ROIs
are masked. By default one draw is shared by the whole batch (no padding; see
:mod:`bi_core.masking`); ``per_sample=True`` draws per sample and pads.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..mask_types import Mask, TokenLayout, rows_to_mask, shared_mask
from .base import MaskConfig, MaskPlan, MaskStrategy



def unit_shares(ids: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Share of all ROIs in each unit: ``[len(units)]`` from the unit id of each ROI ``ids`` ``[n_rois]``."""
    return np.array([(ids == u).mean() for u in units])


def expected_unit_share(shares: np.ndarray, p_two: float) -> float:
    """Expected masked share when 1 unit (2 with probability ``p_two``) is drawn uniformly.

    ``(1 - p_two) * mean_m s_m + p_two * mean_{m<n}(s_m + s_n)`` = ``(1 + p_two) * mean_m s_m``
    for unit shares ``s_m`` (``shares``); with one unit, a pair is that unit.
    """
    single = shares.mean()
    pair = 2 * shares.mean() if len(shares) > 1 else single
    return float((1 - p_two) * single + p_two * pair)


def p_two_for_share(shares: np.ndarray, target: float) -> float:
    """The ``p_two`` in [0, 1] whose :func:`expected_unit_share` is ``target`` (clipped when none is)."""
    return float(np.clip(target / float(np.mean(shares)) - 1.0, 0.0, 1.0))


def check_unit_count(n_units: int, p_two: float, unit: str, units: str) -> None:
    """Refuse unit masks that would cover every token (one unit, or a pair of two).

    Raises
    ------
    ConfigError
        With fewer than 2 units, or 2 units and ``p_two > 0``.
    """
    if n_units < 2:
        raise ConfigError(f"{unit} masking with {n_units} {unit} would mask every token; the atlas needs at "
                          f"least 2 {units}.")
    if n_units == 2 and p_two > 0:
        raise ConfigError(f"with 2 {units}, masking a pair covers every token; set mask.p_two: 0.")


@dataclass(frozen=True, eq=False)
class UnitPlan(MaskPlan):
    """Sampler state of a whole-unit strategy: the unit ids that can be drawn, ``[n_units]``."""

    units: np.ndarray


class WholeUnitStrategy(MaskStrategy[UnitPlan]):
    """Base of :mod:`~bi_core.mask_strategies.network` and :mod:`~bi_core.mask_strategies.region`.

    Subclasses say which unit each ROI belongs to (:meth:`unit_ids`, :meth:`rois_of`) and
    which units can be drawn (:meth:`prepare`).
    """

    @abstractmethod
    def unit_ids(self, layout: TokenLayout) -> np.ndarray:
        """Unit id of each ROI, ``[n_rois]`` (``-1``: in no unit)."""

    @abstractmethod
    def rois_of(self, layout: TokenLayout, units: Sequence[int] | np.ndarray) -> np.ndarray:
        """ROIs of ``units``."""

    def share(self, layout: TokenLayout, p_two: float) -> float:
        """Expected masked share with probability ``p_two`` of two units (no validation)."""
        ids = self.unit_ids(layout)
        return expected_unit_share(unit_shares(ids, np.unique(ids[ids >= 0])), p_two)

    def expected_share(self, layout: TokenLayout, cfg: MaskConfig) -> float:
        return self.share(layout, cfg.p_two)

    def setting(self, plan: UnitPlan) -> str:
        return f"p_two={plan.cfg.p_two:g}"

    def _draw_units(self, plan: UnitPlan, rng: np.random.Generator) -> np.ndarray:
        k = 2 if rng.random() < plan.cfg.p_two else 1
        return np.sort(rng.choice(plan.units, size=k, replace=False))

    def sample(self, plan: UnitPlan, batch_size: int, rng: np.random.Generator) -> Mask:
        lay, cfg, B = plan.layout, plan.cfg, int(batch_size)
        L = lay.n_tokens
        if not cfg.per_sample:
            u = self._draw_units(plan, rng)
            return shared_mask(lay.tokens_of_rois(self.rois_of(lay, u)), L, u.tolist(), self.name, B)
        draws = [self._draw_units(plan, rng) for _ in range(B)]
        return rows_to_mask([lay.tokens_of_rois(self.rois_of(lay, u)) for u in draws], L,
                            [u.tolist() for u in draws], self.name)
