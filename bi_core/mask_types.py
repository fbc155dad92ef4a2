"""The token grid and the masks drawn on it: :class:`TokenLayout` and :class:`Mask`.

The masking strategies (:mod:`bi_core.mask_strategies`) build their masks from these, and
:mod:`bi_core.masking` draws and re-exports them (``from bi_core.masking import Mask`` still
works). Token ids are ROI-major: token ``(r, p)`` (ROI ``r``, time patch ``p``) has id
``r * n_patches + p`` (see :mod:`bi_core.masking`).

Importing this module does not import torch: the CLI lists the strategies, which import it,
without loading torch; the tensors are made when a mask is built (:func:`_torch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .atlas import NetworkAtlas, canonical_network
from .errors import ConfigError

if TYPE_CHECKING:
    import torch


def _torch() -> Any:
    """The torch module, imported on first use (the CLI imports this module to list the strategies)."""
    import torch

    return torch


def _no_ids() -> torch.Tensor:
    """An empty id tensor ``[1, 0]`` (no units, no hidden tokens)."""
    return _torch().zeros(1, 0, dtype=_torch().long)


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
    units: torch.Tensor = field(default_factory=_no_ids)
    hidden: torch.Tensor = field(default_factory=_no_ids)
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
            sl = _torch().as_tensor(np.asarray(sl, dtype=np.int64))

        def pick(t: torch.Tensor | None) -> torch.Tensor | None:
            if t is None:
                return None
            return t[sl] if t.shape[0] == self.batch_size else t

        return replace(self, visible=pick(self.visible), masked=pick(self.masked), visible_pad=pick(self.visible_pad),
                       masked_pad=pick(self.masked_pad), units=pick(self.units), hidden=pick(self.hidden))

    def token_state(self, n_tokens: int) -> torch.Tensor:
        """Per-token state ``[B, n_tokens]`` int8: 0 visible, 1 masked, 2 hidden, ignoring pads."""
        torch = _torch()
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
    torch = _torch()
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
