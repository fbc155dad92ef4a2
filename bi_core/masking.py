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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from .atlas import NetworkAtlas, canonical_network
from .errors import ConfigError
# the registry and its helpers are part of this module's API (``from bi_core.masking import STRATEGIES``)
from .mask_strategies import (DEFAULT_P_TWO, STRATEGIES, MaskPlan, MaskStrategy, current_name,  # noqa: F401
                              get_strategy, matched_ratio, register)


# ---------------------------------------------------------------------- layout
@dataclass(frozen=True)
class TokenLayout:
    """The token grid of a window: ROI × time patch, with network and region ids per ROI.

    Parameters
    ----------
    roi_network
        Network id of each ROI, ``[n_rois]`` (ids index ``network_names``).
    n_patches
        Time patches per window (``T / P``).
    roi_region
        Region-group id of each ROI (the lobe-like groups of the atlas ``region`` column; ``-1``:
        none), or ``None`` when the atlas has none.
    network_names, region_names
        Display names of the ids (optional).
    """

    roi_network: tuple[int, ...]
    n_patches: int
    roi_region: tuple[int, ...] | None = None
    network_names: tuple[str, ...] = ()
    region_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.roi_network) == 0:
            raise ConfigError("a token layout needs at least one ROI.")
        if self.n_patches <= 0:
            raise ConfigError(f"n_patches={self.n_patches} must be positive.")
        if self.roi_region is not None and len(self.roi_region) != len(self.roi_network):
            raise ConfigError(f"{len(self.roi_region)} region ids for {len(self.roi_network)} ROIs.")

    @classmethod
    def from_atlas(cls, atlas: NetworkAtlas, n_patches: int) -> "TokenLayout":
        """The layout of ``atlas`` with ``n_patches`` patches per window."""
        regions = None if atlas.roi_regions is None else tuple(int(i) for i in atlas.region_index)
        return cls(tuple(int(i) for i in atlas.network_index), int(n_patches), regions,
                   tuple(atlas.networks), tuple(atlas.regions))

    @property
    def n_rois(self) -> int:
        return len(self.roi_network)

    @property
    def n_tokens(self) -> int:
        return self.n_rois * self.n_patches

    @property
    def n_networks(self) -> int:
        return max(len(self.network_names), max(self.roi_network) + 1)

    @property
    def n_regions(self) -> int:
        if self.roi_region is None:
            return 0
        return max(len(self.region_names), max(self.roi_region) + 1)

    @property
    def token_roi(self) -> np.ndarray:
        """ROI of each token, ``[L]``."""
        return np.repeat(np.arange(self.n_rois), self.n_patches)

    @property
    def token_patch(self) -> np.ndarray:
        """Time patch of each token, ``[L]``."""
        return np.tile(np.arange(self.n_patches), self.n_rois)

    @property
    def token_network(self) -> np.ndarray:
        """Network id of each token, ``[L]``."""
        return np.asarray(self.roi_network)[self.token_roi]

    def tokens_of_rois(self, rois: Sequence[int] | np.ndarray) -> np.ndarray:
        """Sorted ids of every token of ``rois`` (all patches)."""
        rois = np.unique(np.asarray(rois, dtype=np.int64))
        return (rois[:, None] * self.n_patches + np.arange(self.n_patches)[None, :]).ravel()

    def rois_of_networks(self, networks: Sequence[int]) -> np.ndarray:
        return np.flatnonzero(np.isin(np.asarray(self.roi_network), np.asarray(networks)))

    def rois_of_regions(self, regions: Sequence[int]) -> np.ndarray:
        if self.roi_region is None:
            raise ConfigError("this atlas has no anatomical 'region' column; region masks need one "
                              "(add a 'region' column to the atlas table).")
        return np.flatnonzero(np.isin(np.asarray(self.roi_region), np.asarray(regions)))

    def network_id(self, network: int | str) -> int:
        """A network's id from its id or name (``"DMN"``, ``"Default"``...)."""
        return _unit_id(network, self.network_names, self.n_networks, "network", "this model's networks")

    def region_id(self, region: int | str) -> int:
        """A region's id from its id or name."""
        return _unit_id(region, self.region_names, self.n_regions, "region", "this atlas's regions")


def _unit_id(value: int | str, names: tuple[str, ...], n: int, what: str, where: str) -> int:
    if isinstance(value, str):
        if value not in names and what == "network" and canonical_network(value) in names:
            value = canonical_network(value)
        if value not in names:
            raise ConfigError(f"{what} {value!r} is not in {where} {list(names)}.")
        return names.index(value)
    if not 0 <= int(value) < n:
        raise ConfigError(f"{what} id {value} is out of range 0..{n - 1}.")
    return int(value)


# ---------------------------------------------------------------------- masks
@dataclass
class Mask:
    """Visible and masked token ids of a batch (see the module docstring for ids).

    Attributes
    ----------
    visible : LongTensor ``[B, n_visible]``
        Tokens the encoder sees, ascending in each row.
    masked : LongTensor ``[B, n_masked]``
        Tokens the decoder reconstructs, ascending in each row.
    visible_pad, masked_pad : BoolTensor of the same shapes, or None
        ``True`` marks padding slots (only for ``per_sample`` draws of different sizes;
        padded ids point at token 0 and must be ignored).
    units : LongTensor ``[B, k]``
        What was masked: network ids (``network``), region-group ids (``lobe_group``, and
        :func:`region_mask`), ROIs that got a block (``temporal_block``), masked ROIs
        (``atlas_region``), nothing (``random``: ``k = 0``); ``-1`` pads.
    hidden : LongTensor ``[B, n_hidden]``
        Tokens neither seen nor reconstructed (occlusion analyses); usually empty.
    kind : str
        The strategy (or ``"custom"``) that made the mask.
    """

    visible: torch.Tensor
    masked: torch.Tensor
    visible_pad: torch.Tensor | None = None
    masked_pad: torch.Tensor | None = None
    units: torch.Tensor = field(default_factory=lambda: torch.zeros(1, 0, dtype=torch.long))
    hidden: torch.Tensor = field(default_factory=lambda: torch.zeros(1, 0, dtype=torch.long))
    kind: str = "custom"

    @property
    def batch_size(self) -> int:
        return int(self.visible.shape[0])

    @property
    def padded(self) -> bool:
        return self.visible_pad is not None or self.masked_pad is not None

    def n_masked_tokens(self) -> int:
        """Real (non-padding) masked tokens in the whole batch."""
        if self.masked_pad is None:
            return int(self.masked.numel())
        return int((~self.masked_pad).sum())

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Mask":
        def mv(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=non_blocking)

        return replace(self, visible=mv(self.visible), masked=mv(self.masked), visible_pad=mv(self.visible_pad),
                       masked_pad=mv(self.masked_pad), units=mv(self.units), hidden=mv(self.hidden))

    def rows(self, sl: slice | Sequence[int] | np.ndarray) -> "Mask":
        """The mask of some samples (e.g. one DDP rank's shard of the global batch)."""
        if isinstance(sl, np.ndarray) or isinstance(sl, (list, tuple)):
            sl = torch.as_tensor(np.asarray(sl, dtype=np.int64))

        def pick(t: torch.Tensor | None) -> torch.Tensor | None:
            if t is None:
                return None
            return t[sl] if t.shape[0] == self.batch_size else t

        return replace(self, visible=pick(self.visible), masked=pick(self.masked), visible_pad=pick(self.visible_pad),
                       masked_pad=pick(self.masked_pad), units=pick(self.units), hidden=pick(self.hidden))

    def token_state(self, n_tokens: int) -> torch.Tensor:
        """Per-token state ``[B, n_tokens]`` int8: 0 visible, 1 masked, 2 hidden, ignoring pads."""
        B = self.batch_size
        state = torch.full((B, n_tokens), 2, dtype=torch.int8)
        vis = self.visible.cpu()
        vmask = torch.ones_like(vis, dtype=torch.bool) if self.visible_pad is None else ~self.visible_pad.cpu()
        msk = self.masked.cpu()
        mmask = torch.ones_like(msk, dtype=torch.bool) if self.masked_pad is None else ~self.masked_pad.cpu()
        for b in range(B):
            state[b, vis[b][vmask[b]]] = 0
            state[b, msk[b][mmask[b]]] = 1
        return state


def rows_to_mask(masked_rows: list[np.ndarray], n_tokens: int, units: list[Sequence[int]], kind: str,
                 hidden_rows: list[np.ndarray] | None = None) -> Mask:
    """Build a :class:`Mask` from per-sample masked (and hidden) token ids, padding if sizes differ.

    ``masked_rows[b]`` and ``hidden_rows[b]`` are token ids of sample ``b``; every other
    token is visible. ``units[b]`` lists what was masked (:attr:`Mask.units`).
    """
    B = len(masked_rows)
    hidden_rows = hidden_rows or [np.zeros(0, np.int64)] * B
    visible_rows = []
    for m, h in zip(masked_rows, hidden_rows):
        keep = np.ones(n_tokens, bool)
        keep[m] = False
        keep[h] = False
        visible_rows.append(np.flatnonzero(keep))

    def stack(rows: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor | None]:
        n = max(len(r) for r in rows)
        if all(len(r) == n for r in rows):
            return torch.from_numpy(np.stack(rows).astype(np.int64)), None
        ids = np.zeros((B, n), np.int64)
        pad = np.ones((B, n), bool)
        for b, r in enumerate(rows):
            ids[b, : len(r)] = r
            pad[b, : len(r)] = False
        return torch.from_numpy(ids), torch.from_numpy(pad)

    vis, vpad = stack(visible_rows)
    msk, mpad = stack([np.sort(np.asarray(m, np.int64)) for m in masked_rows])
    hid, _ = stack([np.sort(np.asarray(h, np.int64)) for h in hidden_rows]) if any(len(h) for h in hidden_rows) \
        else (torch.zeros(B, 0, dtype=torch.long), None)
    k = max((len(u) for u in units), default=0)
    u = np.full((B, k), -1, np.int64)
    for b, uu in enumerate(units):
        u[b, : len(uu)] = np.asarray(uu, np.int64)
    return Mask(vis, msk, vpad, mpad, torch.from_numpy(u), hid, kind)


def shared_mask(mask_tokens: np.ndarray, n_tokens: int, units: Sequence[int], kind: str, batch_size: int,
                hidden_tokens: np.ndarray | None = None) -> Mask:
    """One mask (token ids ``mask_tokens``) repeated over the batch (expanded views: no per-sample copies)."""
    m = rows_to_mask([mask_tokens], n_tokens, [units], kind, None if hidden_tokens is None else [hidden_tokens])

    def ex(t: torch.Tensor) -> torch.Tensor:
        return t.expand(batch_size, -1)

    return Mask(ex(m.visible), ex(m.masked), None, None, ex(m.units), ex(m.hidden), kind)


# ---------------------------------------------------------------------- config
@dataclass
class MaskConfig:
    """Masking settings (the ``mask:`` section of a training config).

    Parameters
    ----------
    strategy
        A name in :data:`STRATEGIES`. A former name (``region``, now ``lobe_group``:
        :data:`~bi_core.mask_strategies.DEPRECATED_NAMES`) is replaced by the current one,
        with a ``FutureWarning``, so old configs and checkpoints still load.
    p_two
        ``network``/``lobe_group``: probability of masking two units instead of one.
    ratio
        ``random``/``temporal_block``: share of tokens masked; ``atlas_region``: share of
        ROIs masked; in (0, 1). ``None`` matches the ``network`` strategy's expected share
        (:func:`matched_ratio`).
    block_patches
        ``temporal_block``: block length in patches (``None``: half the window, at least 1).
    per_sample
        ``network``/``lobe_group``: draw per sample and pad instead of one draw per batch.
    """

    strategy: str = "network"
    p_two: float = DEFAULT_P_TWO
    ratio: float | None = None
    block_patches: int | None = None
    per_sample: bool = False

    def __post_init__(self) -> None:
        self.strategy = current_name(self.strategy)  # old names still load, with a warning
        get_strategy(self.strategy)  # ConfigError naming the known strategies
        if not 0 <= float(self.p_two) <= 1:
            raise ConfigError(f"mask.p_two={self.p_two} must be a probability in [0, 1].")
        if self.ratio is not None and not 0 < float(self.ratio) < 1:
            raise ConfigError(f"mask.ratio={self.ratio} must be in (0, 1) (a share of tokens), or null for the "
                              "ratio matched to network masking.")
        if self.block_patches is not None and int(self.block_patches) < 1:
            raise ConfigError(f"mask.block_patches={self.block_patches} must be at least 1.")


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
