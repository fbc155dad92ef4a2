"""What the reconstruction needs: the suite's occlusion and source-only read-outs."""

from __future__ import annotations

import numpy as np

from .base import InteractionPass, register

#: Below this R² with every source visible, a target's occlusion share is NaN (a share of almost nothing).
MIN_FULL_R2 = 0.02


@register("occlusion_delta_r2", "occlusion ΔR²", "model", "interactions", needs=("occlusion",), suite=True)
def occlusion_delta_r2(s: InteractionPass, m: int, n: int) -> np.ndarray:
    """R² of the target with every source visible minus its R² with the source also hidden from the encoder."""
    return s.delta_r2(m, n)


@register("occlusion_share", "occlusion share", "model", "interactions", needs=("occlusion",), suite=True)
def occlusion_share(s: InteractionPass, m: int, n: int) -> np.ndarray:
    """``occlusion_delta_r2`` as a share of the target's R² with every source visible (NaN below
    :data:`MIN_FULL_R2`)."""
    dr2 = s.delta_r2(m, n)
    if not s.occlusion:
        return dr2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s.r2_full[m] >= MIN_FULL_R2, dr2 / s.r2_full[m], np.nan)


@register("source_only_r", "source-only r", "model", "interactions", needs=("source-only reconstruction",),
          suite=True)
def source_only_r(s: InteractionPass, m: int, n: int) -> np.ndarray:
    """Mean Pearson r (over the target's ROIs) between its series and its reconstruction from the source alone."""
    return s.r_alone(m, n) if s.source_only else s.nan()
