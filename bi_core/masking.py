"""Which tokens the model sees and which it must reconstruct: five strategies, one interface.

Token layout
------------
A window ``[n_rois, T]`` with ``T = n_patches * P`` is cut into ``L = n_rois * n_patches``
tokens; token ``(r, p)`` holds frames ``p*P .. (p+1)*P - 1`` of ROI ``r`` and has id
``r * n_patches + p`` (ROI-major: the ids of one ROI are contiguous, as
``x.reshape(B, n_rois, n_patches, P)`` lays them out). :class:`TokenLayout` holds this
mapping and the ROI → network / region-group assignment.

Strategies (:class:`MaskConfig` ``strategy``)
---------------------------------------------
The registry :data:`STRATEGIES` (name → strategy, one module each in
:mod:`bi_core.mask_strategies`): ``network`` [paper] masks 1 whole network (or 2, with
probability ``p_two``) at every time patch; ``random`` masks random tokens at ``ratio``
(default: matched to the ``network`` strategy's expected share, :func:`matched_ratio`),
the BrainLM-style baseline; ``lobe_group`` (formerly ``region``, still accepted) masks 1
(or 2) whole lobe-like ROI groups from the atlas ``region`` column; ``temporal_block``
masks contiguous blocks of ``block_patches`` patches in randomly chosen ROIs, as many
blocks as give ``ratio`` (seed 001, LMAE-style); ``atlas_region`` masks whole individual
atlas ROIs (each ROI one atlas region) at ``ratio`` (seed 002's region-aware masking).
:class:`MaskSampler` hands the draws to the strategy.

Batches without padding (design choice, measured in ``bench/README.md``)
-----------------------------------------------------------------------
Networks and region groups differ in size, so per-sample draws give samples with different
numbers of masked tokens, which must then be padded (with key-padding masks in
attention). By default a ``network``/``lobe_group`` draw is **shared by the whole batch**:
every sample masks the same network(s), all samples have the same token counts, no
padding and no attention mask are needed (flash kernels on CUDA), and over an epoch every
network is still masked equally often. Training can draw several masks per step without
padding by splitting the batch into groups (``TrainConfig.mask_groups`` in
:mod:`bi_core.train`). ``per_sample=True`` draws per sample and pads (slower per step
and per second than groups, see ``bench/README.md``; used for the validation pass so the
held-out loss covers every network). ``random``, ``temporal_block`` and ``atlas_region``
draw per sample but always mask the same number of tokens, so they never need padding.

Deterministic masks for the analyses: :func:`network_mask` ("mask network m", optionally
"and hide network n from the context" for occlusion), :func:`region_mask` and the
general :func:`rois_mask`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import ConfigError
# the registry, the settings and the mask types are part of this module's API (``from bi_core.masking import Mask``)
from .mask_strategies import (DEFAULT_P_TWO, STRATEGIES, MaskConfig, MaskPlan, MaskStrategy,  # noqa: F401
                              current_name, get_strategy, matched_ratio, register)
from .mask_types import Mask, TokenLayout, rows_to_mask, shared_mask  # noqa: F401


class MaskSampler:
    """Draws masks for training batches.

    Parameters
    ----------
    layout
        The token layout (:meth:`TokenLayout.from_atlas` or ``model.layout``).
    cfg
        The strategy and its settings.

    Attributes
    ----------
    strategy : MaskStrategy
        ``STRATEGIES[cfg.strategy]``, which checks the settings and draws the masks.
    plan : MaskPlan
        What the strategy computed once for ``layout`` and ``cfg`` (units, sizes).

    Raises
    ------
    ConfigError
        On an unknown strategy, a mask that would cover every token (e.g. ``network``
        masking with one network), a ratio or block size that cannot be met, or ``lobe_group``
        masking on an atlas without a ``region`` column.
    """

    def __init__(self, layout: TokenLayout, cfg: MaskConfig | None = None) -> None:
        self.layout = layout
        self.cfg = cfg = cfg or MaskConfig()
        self.strategy: MaskStrategy[Any] = get_strategy(cfg.strategy)
        self.plan: MaskPlan = self.strategy.prepare(layout, cfg)

    @property
    def expected_ratio(self) -> float:
        """Expected share of tokens masked per sample."""
        return self.strategy.expected_share(self.layout, self.cfg)

    @property
    def setting(self) -> str:
        """The setting that sets the masked share, as text (e.g. ``"p_two=0.25"``, ``"ratio=0.156"``)."""
        return self.strategy.setting(self.plan)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Mask:
        """Draw the masks of one batch (CPU tensors; move them with :meth:`Mask.to`)."""
        return self.strategy.sample(self.plan, int(batch_size), rng)


# ---------------------------------------------------------------------- deterministic masks
def rois_mask(layout: TokenLayout, masked_rois: Sequence[int] | np.ndarray, hidden_rois: Sequence[int] | np.ndarray = (),
              batch_size: int = 1, kind: str = "custom", units: Sequence[int] = ()) -> Mask:
    """Mask every patch of ``masked_rois`` and hide ``hidden_rois`` from the context.

    Hidden tokens are neither visible to the encoder nor reconstructed (occlusion).
    The same mask is repeated for ``batch_size`` samples (no padding).

    Raises
    ------
    ConfigError
        When nothing is masked, masked and hidden ROIs overlap, or no token is left visible.
    """
    m = np.unique(np.asarray(masked_rois, np.int64))
    h = np.unique(np.asarray(hidden_rois, np.int64))
    if m.size == 0:
        raise ConfigError("the mask is empty: give at least one ROI to reconstruct.")
    if ((m < 0) | (m >= layout.n_rois)).any() or ((h < 0) | (h >= layout.n_rois)).any():
        raise ConfigError(f"ROI ids must be in 0..{layout.n_rois - 1}.")
    if np.intersect1d(m, h).size:
        raise ConfigError(f"ROIs {np.intersect1d(m, h)[:5].tolist()} are both masked and hidden; a token is either "
                          "reconstructed or hidden.")
    if m.size + h.size >= layout.n_rois:
        raise ConfigError("this mask covers every token (masked + hidden = all ROIs); leave some context visible.")
    return shared_mask(layout.tokens_of_rois(m), layout.n_tokens, list(units), kind, batch_size,
                   layout.tokens_of_rois(h) if h.size else None)


def network_mask(layout: TokenLayout, masked: int | str | Sequence[int | str], hidden: Sequence[int | str] = (),
                 batch_size: int = 1) -> Mask:
    """Mask whole network(s) ``masked`` (ids or names) at every patch; hide ``hidden`` networks.

    Examples
    --------
    >>> m = network_mask(model.layout, "DMN", batch_size=32)                 # doctest: +SKIP
    >>> occl = network_mask(model.layout, "DMN", hidden=["LIM"], batch_size=32)  # doctest: +SKIP
    """
    ms = [masked] if isinstance(masked, (int, str, np.integer)) else list(masked)
    mi = sorted({layout.network_id(n) for n in ms})
    hi = sorted({layout.network_id(n) for n in hidden})
    return rois_mask(layout, layout.rois_of_networks(mi), layout.rois_of_networks(hi) if hi else [], batch_size,
                     kind="network", units=mi)


def region_mask(layout: TokenLayout, masked: int | str | Sequence[int | str], hidden: Sequence[int | str] = (),
                batch_size: int = 1) -> Mask:
    """Mask whole region group(s) of the atlas ``region`` column ``masked`` (ids or names); hide ``hidden`` ones.

    These are the lobe-like groups ``lobe_group`` masking draws from, not single atlas regions.
    """
    ms = [masked] if isinstance(masked, (int, str, np.integer)) else list(masked)
    mi = sorted({layout.region_id(r) for r in ms})
    hi = sorted({layout.region_id(r) for r in hidden})
    return rois_mask(layout, layout.rois_of_regions(mi), layout.rois_of_regions(hi) if hi else [], batch_size,
                     kind="region", units=mi)
