"""The masking strategies: one module each, collected in the registry :data:`STRATEGIES`.

=================== ============================================================
``network`` [paper] :mod:`~bi_core.mask_strategies.network`
``random``          :mod:`~bi_core.mask_strategies.random_tokens`
``lobe_group``      :mod:`~bi_core.mask_strategies.lobe_group` (formerly ``region``)
``temporal_block``  :mod:`~bi_core.mask_strategies.temporal_block`
``atlas_region``    :mod:`~bi_core.mask_strategies.atlas_region` (seed 002)
=================== ============================================================

Each strategy is a :class:`MaskStrategy` subclass with a ``name``, a one-line
``description``, how it draws the masks of a batch, its expected masked share and the
setting that matches a target share; :func:`register` puts an instance into
:data:`STRATEGIES`, which :class:`~bi_core.masking.MaskConfig` validation,
:class:`~bi_core.masking.MaskSampler`, the CLI, the masking study and the figures read.
To add a strategy, add a module here and import it below (see ``CONTRIBUTING.md``,
"Adding a masking strategy"); append new strategies after the existing ones, since the
order seeds the masking study's held-out mask draws. Renamed strategies keep their old
name as an alias (:data:`DEPRECATED_NAMES`, resolved by :func:`current_name`).

Importing this package does not import torch (the CLI reads the names from it); the
strategies build their :class:`~bi_core.mask_types.Mask` tensors in ``sample``, with the
builders of :mod:`bi_core.mask_types`. :class:`MaskConfig` (the settings that choose a
strategy) lives here, beside the registry it validates against.
"""

from .base import (DEFAULT_P_TWO, DEPRECATED_NAMES, STRATEGIES, MaskConfig, MaskPlan, MaskStrategy, current_name,
                   get_strategy, register)
from .fixed_ratio import FixedRatioStrategy
from .network import matched_ratio
from .whole_units import WholeUnitStrategy

# the strategies register themselves on import, in this order
from . import network, random_tokens, lobe_group, temporal_block, atlas_region  # noqa: E402,F401  isort: skip

__all__ = [
    "DEFAULT_P_TWO",
    "DEPRECATED_NAMES",
    "STRATEGIES",
    "FixedRatioStrategy",
    "MaskConfig",
    "MaskPlan",
    "MaskStrategy",
    "WholeUnitStrategy",
    "current_name",
    "get_strategy",
    "matched_ratio",
    "register",
]
