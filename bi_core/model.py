"""BrainInterNet: network-masked reconstruction with a cross-attention decoder.

One class, :class:`BrainInterNet`, whose methods are the stages of the method
(``DESIGN.md`` §3):

``patchify``        window ``[B, n_rois, T]`` → tokens ``[B, L, P]``, ``L = n_rois * n_patches``,
                    token id ``r * n_patches + p`` (see :mod:`bi_core.masking`)
``forward_encoder`` visible tokens only (MAE-style gather): ``Linear(P, d)`` + ROI + network +
                    sin-cos time embedding → pre-LN transformer (SDPA attention) → ``[B, Nv, d]``
``forward_decoder`` one query per masked token (mask token + ROI + network + time embedding);
                    layers of cross-attention to the projected encoder outputs + MLP, **no
                    self-attention among queries** → ``Linear(d_dec, P)`` → ``[B, Nm, P]``.
                    Three design choices inside the paper's decoder, on by default and
                    ablated in chapter 2: queries attend to their own time patch only
                    (``time_local``), normalised queries/keys with a learned temperature
                    (``qk_norm``) and one zero-valued learned key per head (``attn_sink``)
``forward_linear``  the linear-path **ablation** (``ModelConfig.linear_path``, off by default): a
                    same-frame ``[n_rois, n_rois]`` map from the visible ROIs, added to the
                    decoder's output
``forward_loss``    MSE on the masked tokens
``embed``           encoder on the unmasked window → mean-pooled ``[B, d]`` and per-network
                    pooled ``[B, n_networks, d]``

Because queries never attend to each other, each reconstruction depends on the context
only through its own attention weights — what the interaction analyses read (with the
linear-path ablation also through the visible ROIs at the same frames).
``forward(..., return_attention=True)`` computes those weights explicitly
(``[B, heads, n_query, n_key]`` per decoder layer, keys = ``mask.visible`` tokens); the
training path uses :func:`torch.nn.functional.scaled_dot_product_attention` and never
materializes them.

Sizes are presets (:data:`SIZES`, factories :func:`tiny`, :func:`small`, :func:`base`,
:func:`paper`); the atlas part of a :class:`ModelConfig` (ROI count, network of each
ROI) comes from :meth:`ModelConfig.bind`. Nothing here hard-codes a ROI count, patch
size, window length or network count.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .atlas import NetworkAtlas
from .errors import CompatibilityError, ConfigError
from .masking import Mask, TokenLayout
from .model_config import SIZES, ModelConfig, base, paper, small, tiny  # re-exported (__all__)


# ---------------------------------------------------------------------- layers
def sincos_1d(n_pos: int, dim: int) -> torch.Tensor:
    """Fixed sin-cos position embedding ``[n_pos, dim]`` (Vaswani et al.; MAE's 1D form)."""
    pos = torch.arange(n_pos, dtype=torch.float64)[:, None]
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / max(1, dim // 2))
    ang = pos * omega[None, :]                                            # [n_pos, dim/2]
    emb = torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros(n_pos, 1, dtype=torch.float64)], dim=1)
    return emb.float()


class MLP(nn.Module):
    def __init__(self, dim: int, ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = int(dim * ratio)
        self.fc = nn.Linear(dim, hidden)
        self.proj = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class SelfAttention(nn.Module):
    """Multi-head self-attention through SDPA; ``attn_mask`` ``[B, 1, 1, N]`` (True = attend) for padding."""

    def __init__(self, dim: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.n_heads, C // self.n_heads).permute(2, 0, 3, 1, 4)  # [B, H, N, hd]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.drop(self.proj(y.transpose(1, 2).reshape(B, N, C)))


class Block(nn.Module):
    """Pre-LN transformer encoder block (nanoGPT / ViT)."""

    def __init__(self, dim: int, n_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, n_heads, dropout)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio, dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), attn_mask)
        return x + self.mlp(self.ln2(x))


class CrossAttention(nn.Module):
    """Queries attend to a context; explicit weights on request, SDPA otherwise.

    ``sink``: one learned key per head whose value is zero (see ``ModelConfig.attn_sink``);
    ``qk_norm``: per-head LayerNorm of queries and keys with a learned temperature per head.
    Returned attention weights cover the real context tokens only (with a sink they sum to
    one minus the sink's share).
    """

    def __init__(self, dim: int, n_heads: int, dropout: float, sink: bool = False, qk_norm: bool = False) -> None:
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        hd = dim // n_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)
        self.sink = nn.Parameter(torch.zeros(n_heads, hd)) if sink else None
        # log temperature per head, at the usual 1/sqrt(d_head) scale when normalised q·k ~ d_head
        self.log_scale = nn.Parameter(torch.full((n_heads,), -0.5 * math.log(hd))) if qk_norm else None  # 1-D: no decay

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, attn_mask: torch.Tensor | None = None,
                return_attention: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, Nq, C = x.shape
        Nk, H = ctx.shape[1], self.n_heads
        hd = C // H
        q = self.q(x).view(B, Nq, H, hd).transpose(1, 2)                                 # [B, H, Nq, hd]
        k, v = self.kv(ctx).view(B, Nk, 2, H, hd).permute(2, 0, 3, 1, 4)                 # [B, H, Nk, hd]
        scale = 1.0 / math.sqrt(hd)
        if self.log_scale is not None:
            q, k = F.layer_norm(q, (hd,)), F.layer_norm(k, (hd,))
            q = q * (self.log_scale.exp()[:, None, None] * math.sqrt(hd))                   # SDPA's 1/sqrt(hd) undone
        if self.sink is not None:
            k = torch.cat([self.sink.to(k.dtype)[None, :, None, :].expand(B, -1, -1, -1), k], dim=2)
            v = torch.cat([v.new_zeros(B, H, 1, hd), v], dim=2)
            if attn_mask is not None:
                attn_mask = torch.cat([attn_mask.new_ones(*attn_mask.shape[:-1], 1), attn_mask], dim=-1)
        att = None
        if return_attention:
            # analysis path: the same computation as SDPA, with the weights kept
            scores = (q @ k.transpose(-2, -1)) * scale                                   # [B, H, Nq, Nk(+1)]
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            full = scores.softmax(dim=-1)
            y = F.dropout(full, self.dropout, self.training) @ v
            att = full[..., 1:] if self.sink is not None else full
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                               dropout_p=self.dropout if self.training else 0.0)
        return self.drop(self.proj(y.transpose(1, 2).reshape(B, Nq, C))), att


class CrossBlock(nn.Module):
    """Decoder block: pre-LN cross-attention (queries → context) + MLP; no query self-attention."""

    def __init__(self, dim: int, n_heads: int, mlp_ratio: float, dropout: float, sink: bool = False,
                 qk_norm: bool = False) -> None:
        super().__init__()
        self.ln_q = nn.LayerNorm(dim)
        self.ln_kv = nn.LayerNorm(dim)
        self.attn = CrossAttention(dim, n_heads, dropout, sink, qk_norm)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio, dropout)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, attn_mask: torch.Tensor | None = None,
                return_attention: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        y, att = self.attn(self.ln_q(x), self.ln_kv(ctx), attn_mask, return_attention)
        x = x + y
        return x + self.mlp(self.ln2(x)), att


class Reconstruction(NamedTuple):
    """What :meth:`BrainInterNet.forward` returns.

    ``loss`` scalar MSE over real masked tokens; ``pred`` and ``target`` ``[B, Nm, P]``
    (in ``mask.masked`` order); ``attention`` one ``[B, heads, Nm, Nv]`` tensor per
    decoder layer when requested (keys in ``mask.visible`` order), else ``None``.
    """

    loss: torch.Tensor
    pred: torch.Tensor
    target: torch.Tensor
    attention: list[torch.Tensor] | None


class Embedding(NamedTuple):
    """What :meth:`BrainInterNet.embed` returns: ``pooled`` ``[B, d]``, ``per_network`` and
    ``temporal_sd`` ``[B, n_networks, d]``."""

    pooled: torch.Tensor
    per_network: torch.Tensor
    temporal_sd: torch.Tensor


#: What :meth:`BrainInterNet.reconstruct` can predict with: the whole model or one of its two parts.
PARTS = ("model", "linear path", "decoder")


def context_shares(attention: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each query's attention weights as shares of what it reads from the context (rows sum to one).

    With ``attn_sink`` a query may put part of its mass on the zero-valued sink (reading
    nothing); the interaction read-outs compare sources by the share each gets of the mass
    that does read the context. Without a sink the weights are returned unchanged (up to
    rounding).
    """
    return [a / a.sum(-1, keepdim=True).clamp_min(1e-12) for a in attention]


def _gather_tokens(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``t[b, idx[b]]`` for ``t`` ``[B, L, C]`` and ``idx`` ``[B, N]`` → ``[B, N, C]``."""
    return torch.gather(t, 1, idx.unsqueeze(-1).expand(-1, -1, t.shape[-1]))


# ---------------------------------------------------------------------- model
class BrainInterNet(nn.Module):
    """Masked network reconstruction with a cross-attention decoder (see the module docstring).

    Parameters
    ----------
    cfg
        A bound :class:`ModelConfig` (``ModelConfig.from_atlas(atlas, "small")``).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if not cfg.bound:
            raise ConfigError("the model config has no atlas part (n_rois, roi_networks); build it with "
                              "ModelConfig.from_atlas(atlas, size) or cfg.bind(atlas).")
        self.cfg = cfg
        d, dd, P, R, K = cfg.d_model, cfg.dec_dim, cfg.patch_size, cfg.n_rois, cfg.n_networks
        self.layout = TokenLayout(cfg.roi_networks, cfg.n_patches, network_names=cfg.network_names)
        self.register_buffer("roi_network", torch.tensor(cfg.roi_networks, dtype=torch.long), persistent=False)
        # fixed sin-cos time embeddings of the patch index (encoder and decoder widths)
        self.register_buffer("time_embed", sincos_1d(cfg.n_patches, d), persistent=False)
        self.register_buffer("dec_time_embed", sincos_1d(cfg.n_patches, dd), persistent=False)
        # --- encoder
        self.patch_embed = nn.Linear(P, d)
        self.roi_embed = nn.Embedding(R, d)
        self.net_embed = nn.Embedding(K, d)
        self.blocks = nn.ModuleList(Block(d, cfg.n_heads, cfg.mlp_ratio, cfg.dropout) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d)
        # --- decoder
        self.decoder_embed = nn.Linear(d, dd)
        self.mask_token = nn.Parameter(torch.zeros(dd))
        self.dec_roi_embed = nn.Embedding(R, dd)
        self.dec_net_embed = nn.Embedding(K, dd)
        self.decoder_blocks = nn.ModuleList(CrossBlock(dd, cfg.dec_heads, cfg.mlp_ratio, cfg.dropout, cfg.attn_sink,
                                                       cfg.qk_norm) for _ in range(cfg.dec_depth))
        self.decoder_norm = nn.LayerNorm(dd)
        self.decoder_pred = nn.Linear(dd, P)
        # same-frame linear map visible ROIs → masked ROIs (design choice), zero at initialisation; a bare
        # parameter: building it draws no random numbers, so the rest initialises as in the plain model
        self.linear = nn.Parameter(torch.zeros(R, R)) if cfg.linear_path else None       # [R_out, R_in]
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """nanoGPT init (N(0, 0.02), residual projections scaled by 1/sqrt(2 * layers), zero biases),
        except the patch embedding (xavier, as MAE), the ROI/network embeddings (N(0, 0.5)) and, with
        ``xavier_values``, the decoder's value, output-projection and prediction matrices (xavier)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.mask_token, std=0.02)
        # MAE initializes the patch embedding like a linear layer (xavier): with N(0, 0.02) a
        # 16-frame patch would be ~10x smaller than the sin-cos time embedding it is added to
        nn.init.xavier_uniform_(self.patch_embed.weight)
        # ROI and network identities start at a scale comparable to the patch and sin-cos terms;
        # at N(0, 0.02) they are drowned by the time embedding and learning stalls (measured)
        for e in (self.roi_embed, self.net_embed, self.dec_roi_embed, self.dec_net_embed):
            nn.init.normal_(e.weight, std=0.5)
        for blocks in (self.blocks, self.decoder_blocks):
            for b in blocks:
                for proj in (b.attn.proj, b.mlp.proj):
                    nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * len(blocks)))
        if self.cfg.xavier_values:
            # drawn after everything else, so a model without the option initialises as before
            for b in self.decoder_blocks:
                dd = b.attn.kv.weight.shape[1]
                nn.init.xavier_uniform_(b.attn.kv.weight[dd:])                  # the value half of kv
                nn.init.xavier_uniform_(b.attn.proj.weight)
            nn.init.xavier_uniform_(self.decoder_pred.weight)

    # ------------------------------------------------------------------ tokens
    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, n_rois, T]`` → ``[B, n_rois * n_patches, P]`` (token id ``r * n_patches + p``)."""
        B, R, T = x.shape
        P = self.cfg.patch_size
        if R != self.cfg.n_rois:
            raise CompatibilityError(f"input has {R} ROIs but the model was built for {self.cfg.n_rois}.")
        if T % P:
            raise ConfigError(f"window of {T} frames is not a multiple of the patch size {P}.")
        return x.reshape(B, R, T // P, P).reshape(B, R * (T // P), P)

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, n_rois * n_patches, P]`` → ``[B, n_rois, T]``."""
        B, L, P = tokens.shape
        return tokens.reshape(B, self.cfg.n_rois, (L // self.cfg.n_rois) * P)

    def _pos(self, roi: nn.Embedding, net: nn.Embedding, time: torch.Tensor, n_patches: int) -> torch.Tensor:
        """ROI + network + sin-cos time embedding of every token, ``[L, dim]``."""
        dim = roi.weight.shape[1]
        if n_patches != time.shape[0]:  # a window of another length (e.g. embedding whole recordings)
            time = sincos_1d(n_patches, dim).to(roi.weight.device)
        e = roi.weight + net(self.roi_network)                                           # [R, dim]
        return (e[:, None, :] + time[None, :, :]).reshape(-1, dim)                       # [R * n_p, dim]

    # ------------------------------------------------------------------ stages
    def _embed_visible(self, x: torch.Tensor, mask: Mask) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encoder input of the visible tokens ``[B, Nv, d]`` and the key-padding mask ``[B, 1, 1, Nv]`` (or None)."""
        tokens = self.patchify(x)                                                        # [B, L, P]
        n_p = tokens.shape[1] // self.cfg.n_rois
        vis = _gather_tokens(tokens, mask.visible)                                       # [B, Nv, P]
        pos = self._pos(self.roi_embed, self.net_embed, self.time_embed, n_p)           # [L, d]
        attn_mask = None if mask.visible_pad is None else ~mask.visible_pad[:, None, None, :]    # [B, 1, 1, Nv]
        return self.patch_embed(vis) + pos[mask.visible], attn_mask

    def forward_encoder(self, x: torch.Tensor, mask: Mask) -> torch.Tensor:
        """Encode the visible tokens of ``x`` ``[B, n_rois, T]``; returns ``[B, Nv, d]``."""
        h, attn_mask = self._embed_visible(x, mask)
        for blk in self.blocks:
            h = blk(h, attn_mask)
        return self.norm(h)

    def encoder_attention(self, x: torch.Tensor, mask: Mask) -> list[torch.Tensor]:
        """Self-attention weights of every encoder layer, ``[B, heads, Nv, Nv]`` each (analysis mode).

        The encoder's own pass (:meth:`forward_encoder`, SDPA) never materializes them; this
        recomputes each layer's softmax(q kᵀ / √d_head) from the same inputs, for attention
        rollout through the encoder (:mod:`bi_core.analysis.readouts`).
        """
        h, attn_mask = self._embed_visible(x, mask)
        out = []
        for blk in self.blocks:
            a = blk.attn
            B, N, C = h.shape
            q, k, _ = a.qkv(blk.ln1(h)).view(B, N, 3, a.n_heads, C // a.n_heads).permute(2, 0, 3, 1, 4)
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // a.n_heads))     # [B, H, Nv, Nv]
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            out.append(scores.softmax(dim=-1))
            h = blk(h, attn_mask)
        return out

    def forward_decoder(self, latent: torch.Tensor, mask: Mask, n_patches: int | None = None,
                        return_attention: bool = False) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """Reconstruct the masked tokens from the encoded context.

        Returns ``pred`` ``[B, Nm, P]`` and, if requested, the attention weights of each
        layer ``[B, heads, Nm, Nv]``.
        """
        n_p = n_patches or self.cfg.n_patches
        ctx = self.decoder_embed(latent)                                                 # [B, Nv, dd]
        pos = self._pos(self.dec_roi_embed, self.dec_net_embed, self.dec_time_embed, n_p)  # [L, dd]
        q = self.mask_token + pos[mask.masked]                                           # [B, Nm, dd]
        attn_mask = None if mask.visible_pad is None else ~mask.visible_pad[:, None, None, :]    # [B, 1, 1, Nv]
        if self.cfg.time_local:
            same = (mask.masked % n_p)[:, :, None] == (mask.visible % n_p)[:, None, :]       # [B, Nm, Nv]
            attn_mask = same[:, None] if attn_mask is None else attn_mask & same[:, None]
        attn = [] if return_attention else None
        for blk in self.decoder_blocks:
            q, a = blk(q, ctx, attn_mask, return_attention)
            if attn is not None:
                attn.append(a)
        return self.decoder_pred(self.decoder_norm(q)), attn

    def forward_linear(self, x: torch.Tensor, mask: Mask) -> torch.Tensor:
        """The linear path's contribution to the masked tokens, ``[B, Nm, P]`` (zeros without one).

        Every masked token (ROI ``r``, patch ``p``) gets ``Σ_s W[r, s] x[s, t]`` frame by frame
        over the ROIs ``s`` whose token at patch ``p`` is visible — the same-frame ridge
        reference's form, learned with the rest of the model. Hidden and masked tokens
        contribute nothing, so occlusion removes a source from this path as well.
        """
        tokens = self.patchify(x)                                                        # [B, L, P]
        B, L, P = tokens.shape
        if self.linear is None:
            return tokens.new_zeros(B, mask.masked.shape[1], P)
        ones = torch.ones(mask.visible.shape, dtype=tokens.dtype, device=tokens.device)
        if mask.visible_pad is not None:
            ones = ones * (~mask.visible_pad)                                            # padding ids point at token 0
        seen = tokens.new_zeros(B, L).scatter_add_(1, mask.visible, ones).clamp_(max=1.0)   # [B, L]
        xv = (tokens * seen[..., None]).reshape(B, self.cfg.n_rois, L // self.cfg.n_rois, P)
        lin = torch.einsum("os,bspt->bopt", self.linear.to(xv.dtype), xv)          # [B, R, n_p, P]
        return _gather_tokens(lin.reshape(B, L, P), mask.masked)

    def reconstruct(self, x: torch.Tensor, mask: Mask, part: str = "model") -> torch.Tensor:
        """The masked tokens' reconstruction ``[B, Nm, P]`` by the whole model or one of its parts.

        ``part``: ``"model"`` (what :meth:`forward` predicts), ``"linear path"`` (the linear
        path alone, :meth:`forward_linear`) or ``"decoder"`` (encoder + cross-attention
        decoder alone) — the decomposition chapter 2 reports. Without a linear path the
        decoder is the model and the linear path predicts zeros.
        """
        if part not in PARTS:
            raise ConfigError(f"unknown model part {part!r}; choose one of {list(PARTS)}.")
        if part == "linear path":
            return self.forward_linear(x, mask)
        pred, _ = self.forward_decoder(self.forward_encoder(x, mask), mask, x.shape[-1] // self.cfg.patch_size)
        if part == "model" and self.linear is not None:
            pred = pred + self.forward_linear(x, mask).to(pred.dtype)
        return pred

    def forward_target(self, x: torch.Tensor, mask: Mask) -> torch.Tensor:
        """The true values of the masked tokens, ``[B, Nm, P]``."""
        return _gather_tokens(self.patchify(x), mask.masked)

    def forward_loss(self, x: torch.Tensor, pred: torch.Tensor, mask: Mask, reduction: str = "mean") -> torch.Tensor:
        """MSE over the real (non-padding) masked tokens; ``reduction="sum"`` gives the sum of squares."""
        err = (pred.float() - self.forward_target(x, mask).float()).pow(2)               # [B, Nm, P]
        if mask.masked_pad is not None:
            err = err * (~mask.masked_pad).unsqueeze(-1)
        if reduction == "sum":
            return err.sum()
        return err.sum() / (mask.n_masked_tokens() * pred.shape[-1])

    def forward(self, x: torch.Tensor, mask: Mask, return_attention: bool = False) -> Reconstruction:
        """Encode the visible tokens, reconstruct the masked ones, score them.

        Parameters
        ----------
        x
            Windows ``[B, n_rois, T]`` (float32; z-scored series).
        mask
            From :class:`bi_core.masking.MaskSampler` or :func:`bi_core.masking.network_mask`,
            on the same device as ``x``.
        return_attention
            Also return the decoder's cross-attention weights (analysis mode).
        """
        latent = self.forward_encoder(x, mask)
        pred, attn = self.forward_decoder(latent, mask, x.shape[-1] // self.cfg.patch_size, return_attention)
        if self.linear is not None:
            pred = pred + self.forward_linear(x, mask).to(pred.dtype)
        target = self.forward_target(x, mask)
        return Reconstruction(self.forward_loss(x, pred, mask), pred, target, attn)

    def embed(self, x: torch.Tensor) -> Embedding:
        """Encoder on the whole (unmasked) window ``[B, n_rois, T]``.

        Returns
        -------
        Embedding
            ``pooled`` mean over all tokens ``[B, d]``; ``per_network`` mean over each
            network's tokens ``[B, n_networks, d]``; ``temporal_sd`` the standard deviation
            over the window's time patches of each network's per-patch mean token
            ``[B, n_networks, d]`` (second-order pooling: z-scored inputs make mean pooling
            blind to how strongly ROIs and networks co-fluctuate).
        """
        B, L = x.shape[0], self.cfg.n_rois * (x.shape[-1] // self.cfg.patch_size)
        all_tokens = torch.arange(L, device=x.device).expand(B, -1)
        h = self.forward_encoder(x, Mask(all_tokens, all_tokens[:, :0]))                # [B, L, d]
        n_p = L // self.cfg.n_rois
        onehot = F.one_hot(self.roi_network, self.cfg.n_networks).to(h.dtype)           # [R, K]
        weights = onehot / onehot.sum(0, keepdim=True).clamp(min=1)
        g = torch.einsum("brpd,rk->bkpd", h.reshape(B, self.cfg.n_rois, n_p, -1), weights)  # [B, K, n_p, d]
        sd = g.std(dim=2) if n_p > 1 else torch.zeros_like(g[:, :, 0])
        return Embedding(h.mean(1), g.mean(2), sd)

    # ------------------------------------------------------------------ accounting
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_window(self, n_visible: int, n_masked: int) -> float:
        """Training FLOPs (forward + backward ≈ 3 × forward) for one window, counted analytically.

        Like nanoGPT's ``estimate_mfu``: 2 FLOPs per multiply-add of every matmul
        (weights and attention scores/values); embeddings, norms and softmax are ignored.
        """
        c = self.cfg
        d, dd, P, r = c.d_model, c.dec_dim, c.patch_size, c.mlp_ratio
        nv, nm = n_visible, n_masked
        enc = nv * P * d + c.depth * (nv * (4 + 2 * r) * d * d + 2 * nv * nv * d)
        dec = nv * d * dd + c.dec_depth * (nm * (2 + 2 * r) * dd * dd + nv * 2 * dd * dd + 2 * nm * nv * dd) + nm * dd * P
        return 3 * 2 * float(enc + dec)


def build_model(cfg: ModelConfig, seed: int | None = None) -> BrainInterNet:
    """A freshly initialized model; with ``seed`` the initial weights depend only on it."""
    if seed is None:
        return BrainInterNet(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return BrainInterNet(cfg)


def layout_of(cfg: ModelConfig, atlas: NetworkAtlas | None = None) -> TokenLayout:
    """The model's token layout, with region ids when ``atlas`` is given (for region masks)."""
    if atlas is None:
        return TokenLayout(cfg.roi_networks, cfg.n_patches, network_names=cfg.network_names)
    lay = TokenLayout.from_atlas(atlas, cfg.n_patches)
    if lay.roi_network != cfg.roi_networks:
        raise CompatibilityError(f"atlas {atlas.name!r} does not match the model's ROI/network assignment.")
    return lay


__all__ = ["ModelConfig", "BrainInterNet", "PARTS", "context_shares", "Reconstruction", "Embedding", "SIZES", "tiny", "small", "base", "paper",
           "build_model", "layout_of", "sincos_1d"]
