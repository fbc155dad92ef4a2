"""The references: model-free network FC and the ridge's occlusion."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ...connectome import fc_from_bold
from .base import register


@register("fc_correlation", "network FC", "reference", "fc", needs=("BOLD",), suite=True)
def fc_correlation(signals: Sequence[np.ndarray], names: Sequence[str]) -> np.ndarray:
    """Fisher-z correlation of the target's and source's mean series (nilearn), ``[n_rec, K, K]``."""
    return fc_from_bold(signals, names=list(names), kind="correlation")


@register("linear_occlusion_delta_r2", "linear occlusion ΔR² (ridge)", "reference", "ridge",
          needs=("BOLD", "ridge fit"), suite=True)
def linear_occlusion_delta_r2() -> None:
    """The ridge's ΔR² when the source is hidden: computed by the suite (:mod:`bi_core.analysis.linear`), read
    from its interactions table."""


@register("fc_partial_correlation", "partial correlation", "reference", "fc", needs=("BOLD",))
def fc_partial_correlation(signals: Sequence[np.ndarray], names: Sequence[str]) -> np.ndarray:
    """Fisher z of the partial correlation of the two networks' mean series given every other network,
    ``[n_rec, K, K]``."""
    return fc_from_bold(signals, names=list(names), kind="partial correlation")
