"""The model's architecture settings: :class:`ModelConfig` and its size presets (:data:`SIZES`), without torch.

Apart from :mod:`bi_core.model` so that configs (a study's ``model_size``, a training
config read by the CLI, the chapters that list sizes) are read and checked without
importing torch; :mod:`bi_core.model` re-exports every name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from .atlas import NetworkAtlas
from .errors import CompatibilityError, ConfigError


@dataclass
class ModelConfig:
    """Architecture of a :class:`BrainInterNet` (the ``model:`` section of a training config).

    The atlas fields (``n_rois``, ``roi_networks``, ``network_names``) are empty in a size
    preset and filled from the training cohort's atlas by :meth:`bind`.

    Parameters
    ----------
    window
        Window length ``T`` in frames (at the training target TR); a multiple of ``patch_size``.
    patch_size
        Frames per token ``P`` (16 frames = 24 s at TR 1.5 s).
    d_model, depth, n_heads
        Encoder width, layers and attention heads.
    dec_dim, dec_depth, dec_heads
        Decoder width, cross-attention layers and heads.
    mlp_ratio
        MLP hidden width / model width.
    dropout
        Dropout in attention and residual branches (0 keeps DDP runs equal to single-process runs).
    linear_path
        **A named ablation, not the model** (``False`` by default): add a learned same-frame
        linear map from the visible ROIs to every masked token's reconstruction
        (``[n_rois, n_rois]``, zero at initialisation; see :meth:`BrainInterNet.forward_linear`).
        With it the linear map does the reconstruction and the decoder learns to stay silent
        (chapter 2), so nothing the attention shows describes the reconstruction.
    attn_sink
        Design choice inside the paper's decoder (on by default; selected on seed 7, which the
        book does not report; chapter 2 ablates it): every cross-attention head has one learned
        key whose value is zero (an "attention sink", PyTorch's ``add_zero_attn`` with a learned
        key), so a query can put attention mass on nothing — the weights on real context tokens
        need not sum to one and a head can scale what it reads. The sink adds nothing to the
        reconstruction; read-outs see the weights on real tokens.
    qk_norm
        Design choice (on by default): normalise the decoder's queries and keys per head
        (LayerNorm without affine, as ViT-22B) and learn each head's softmax temperature
        (initialised at 1/√d_head): routing can sharpen from the first steps instead of waiting
        for two small weight matrices to grow together.
    time_local
        Design choice (on by default): a masked token's query attends only to context tokens
        of its own time patch — the reconstruction of frame ``t`` reads the other networks at
        ``t``, and the attention map is a map over networks, not over networks × time.
    xavier_values
        Design choice (on by default): initialise the decoder's value, output-projection and
        prediction matrices with Xavier (as MAE's linear layers) instead of nanoGPT's N(0, 0.02).
        The value path from a context token to a reconstruction is a product of these matrices;
        started at 0.02 it is a deep linear chain near zero that learns slowly and plateaus
        below the same-frame linear map (measured in chapter 2's ablation).
        Checkpoints written before these four fields existed load with all four off.
    n_rois, roi_networks, network_names
        Atlas part: number of ROIs, network id of each ROI, network names.
    """

    window: int = 64
    patch_size: int = 16
    d_model: int = 64
    depth: int = 3
    n_heads: int = 4
    dec_dim: int = 64
    dec_depth: int = 2
    dec_heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    linear_path: bool = False
    attn_sink: bool = True
    qk_norm: bool = True
    time_local: bool = True
    xavier_values: bool = True
    n_rois: int = 0
    roi_networks: tuple[int, ...] = ()
    network_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.roi_networks = tuple(int(i) for i in self.roi_networks)
        self.network_names = tuple(str(n) for n in self.network_names)
        for nm in ("window", "patch_size", "d_model", "depth", "n_heads", "dec_dim", "dec_depth", "dec_heads"):
            if int(getattr(self, nm)) <= 0:
                raise ConfigError(f"model.{nm}={getattr(self, nm)} must be a positive integer.")
        if self.window % self.patch_size:
            raise ConfigError(f"model.window={self.window} frames is not a multiple of model.patch_size="
                              f"{self.patch_size}; use e.g. window={self.window // self.patch_size * self.patch_size or self.patch_size}.")
        if self.d_model % self.n_heads:
            raise ConfigError(f"model.d_model={self.d_model} is not divisible by model.n_heads={self.n_heads}.")
        if self.dec_dim % self.dec_heads:
            raise ConfigError(f"model.dec_dim={self.dec_dim} is not divisible by model.dec_heads={self.dec_heads}.")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout={self.dropout} must be in [0, 1).")
        if self.mlp_ratio <= 0:
            raise ConfigError(f"model.mlp_ratio={self.mlp_ratio} must be positive.")
        if self.roi_networks and len(self.roi_networks) != self.n_rois:
            raise ConfigError(f"model.roi_networks has {len(self.roi_networks)} entries for n_rois={self.n_rois}.")

    @property
    def n_patches(self) -> int:
        return self.window // self.patch_size

    @property
    def n_networks(self) -> int:
        return max(len(self.network_names), max(self.roi_networks, default=-1) + 1)

    @property
    def bound(self) -> bool:
        """Whether the atlas part is filled in."""
        return self.n_rois > 0 and len(self.roi_networks) == self.n_rois

    def bind(self, atlas: NetworkAtlas) -> "ModelConfig":
        """This config with the atlas part taken from ``atlas``.

        Raises
        ------
        CompatibilityError
            When the config is already bound to a different ROI/network assignment.
        """
        nets = tuple(int(i) for i in atlas.network_index)
        if self.bound and (self.roi_networks != nets or self.network_names != tuple(atlas.networks)):
            raise CompatibilityError(
                f"the model config was made for {self.n_rois} ROIs in networks {list(self.network_names)}, but atlas "
                f"{atlas.name!r} has {atlas.n_rois} ROIs in {list(atlas.networks)}; remove n_rois/roi_networks/"
                "network_names from the config to bind it to this atlas.")
        return replace(self, n_rois=atlas.n_rois, roi_networks=nets, network_names=tuple(atlas.networks))

    @classmethod
    def from_atlas(cls, atlas: NetworkAtlas, size: str = "small", **overrides: Any) -> "ModelConfig":
        """A size preset (:data:`SIZES`) bound to ``atlas``, with field overrides."""
        if size not in SIZES:
            raise ConfigError(f"unknown model size {size!r}; choose one of {sorted(SIZES)}.")
        return replace(SIZES[size](), **overrides).bind(atlas)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["roi_networks"] = list(self.roi_networks)
        d["network_names"] = list(self.network_names)
        return d


def tiny(**kw: Any) -> ModelConfig:
    """Tests and smoke runs: d=32, 2 encoder layers, 1 decoder layer (43 k parameters at 26 ROIs)."""
    return ModelConfig(**{**dict(window=64, patch_size=16, d_model=32, depth=2, n_heads=2, dec_dim=32, dec_depth=1,
                                 dec_heads=2), **kw})


def small(**kw: Any) -> ModelConfig:
    """The book's CPU model: d=64, 3 encoder layers, 2 decoder layers (0.26 M parameters at 54 ROIs),
    64-frame windows (96 s at TR 1.5 s)."""
    return ModelConfig(**{**dict(window=64, patch_size=16, d_model=64, depth=3, n_heads=4, dec_dim=64, dec_depth=2,
                                 dec_heads=4), **kw})


def base(**kw: Any) -> ModelConfig:
    """One GPU, real cohorts: d=256, 8 encoder layers, 4 decoder layers (9.8 M parameters at 432 ROIs)."""
    return ModelConfig(**{**dict(window=128, patch_size=16, d_model=256, depth=8, n_heads=8, dec_dim=256, dec_depth=4,
                                 dec_heads=8), **kw})


def paper(**kw: Any) -> ModelConfig:
    """ViT-B-like encoder for Schaefer-400 + subcortical (design choice): d=768, 12 layers, 12 heads;
    decoder d=512, 4 cross-attention layers, 16 heads (98.7 M parameters at 432 ROIs)."""
    return ModelConfig(**{**dict(window=128, patch_size=16, d_model=768, depth=12, n_heads=12, dec_dim=512,
                                 dec_depth=4, dec_heads=16), **kw})


#: Model size presets by name.
SIZES = {"tiny": tiny, "small": small, "base": base, "paper": paper}
