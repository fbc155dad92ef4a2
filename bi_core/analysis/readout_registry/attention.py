"""Read-outs built on the attention weights: what the paper's claim is about."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .base import InteractionPass, WindowPass, register

if TYPE_CHECKING:
    import torch


@register("attention", "attention (mean of layers, heads)", "attention", "interactions",
          needs=("decoder attention",), suite=True)
def attention(s: InteractionPass, m: int, n: int) -> np.ndarray:
    """The share of the target's decoder attention on the source's tokens (mean of layers, heads, queries, windows)."""
    return s.attention[:, m, n]


@register("enrichment", "attention enrichment", "attention", "interactions", needs=("decoder attention",), suite=True)
def enrichment(s: InteractionPass, m: int, n: int) -> np.ndarray:
    """``attention`` divided by the source's share of the context tokens (1: as much as its size predicts)."""
    return s.attention[:, m, n] / s.context_share[m, n] if s.context_share[m, n] else s.nan()


def _head_columns(cell: np.ndarray) -> dict[str, np.ndarray]:
    """``[n_cells, L, H]`` → ``attention_l{l}_h{h}`` per head and ``attention_l{l}`` (mean of the layer's heads)."""
    cols = {}
    for lay in range(cell.shape[1]):
        for h in range(cell.shape[2]):
            cols[f"attention_l{lay + 1}_h{h + 1}"] = cell[:, lay, h]
        cols[f"attention_l{lay + 1}"] = cell[:, lay, :].mean(-1)
    return cols


@register("attention_heads", "attention, one layer/head", "attention", "window", needs=("decoder attention",),
          columns=_head_columns)
def attention_heads(p: WindowPass) -> torch.Tensor:
    """The share of the target's queries' attention on each source in every decoder layer and head, ``[B, L, H, K]``."""
    import torch

    a = torch.stack(p.decoder_attention).mean(dim=3)                                  # [L, B, H, Nv]
    return torch.einsum("lbhv,vk->blhk", a, p.token_sources)


@register("attention_selected", "attention, selected layer/head", "attention", "selection",
          needs=("decoder attention", "selection subjects"))
def attention_selected(column: str) -> str:
    """The layer/head (or layer mean) chosen on the selection subjects
    (:func:`~bi_core.analysis.readouts.readout_scenario` picks the column)."""
    return column


def value_norms(model: torch.nn.Module, latent: torch.Tensor) -> list[torch.Tensor]:
    """``‖W_O,h v_j‖`` of every context token per decoder layer and head, ``[B, H, Nv]`` each."""
    import torch

    ctx = model.decoder_embed(latent)                                                  # [B, Nv, dd]
    out = []
    for blk in model.decoder_blocks:
        a = blk.attn
        B, N, C = ctx.shape
        H = a.n_heads
        v = a.kv(blk.ln_kv(ctx))[..., C:].view(B, N, H, C // H)                        # [B, Nv, H, hd]
        w = a.proj.weight.view(C, H, C // H)                                           # [C_out, H, hd]
        out.append(torch.einsum("bnhd,chd->bhnc", v, w).norm(dim=-1))                  # [B, H, Nv]
    return out


@register("value_weighted", "value-norm-weighted attention", "attention", "window",
          needs=("decoder attention", "value vectors"))
def value_weighted(p: WindowPass) -> torch.Tensor:
    """Attention × the norm of the attended token's value after the output projection (Kobayashi et al. 2020),
    as shares per query, mean of layers, heads and queries, ``[B, K]``."""
    import torch

    vw = torch.stack([d * nv[:, :, None, :] for d, nv in zip(p.decoder_attention, value_norms(p.model, p.latent))])
    vw = vw / vw.sum(-1, keepdim=True)                                                 # [L, B, H, Nm, Nv] shares
    return vw.mean(dim=(0, 2, 3)) @ p.token_sources


def rollout_matrix(enc_att: list[torch.Tensor], dec_att: list[torch.Tensor]) -> torch.Tensor:
    """Decoder queries' attention traced to the input tokens, ``[B, Nm, Nv]`` (rows sum to one).

    ``enc_att`` ``[B, H, Nv, Nv]`` per encoder layer, ``dec_att`` ``[B, H, Nm, Nv]`` per decoder
    layer. Every decoder layer reads the same (final) encoder output, so the decoder's part
    is the mean of its layers and heads.
    """
    import torch

    roll = None
    for a in enc_att:
        a = a.mean(1)
        a = 0.5 * a + 0.5 * torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        a = a / a.sum(-1, keepdim=True)
        roll = a if roll is None else a @ roll                                         # last layer ... first layer
    dec = torch.stack(dec_att).mean(dim=(0, 2))                                        # [B, Nm, Nv]
    return dec if roll is None else dec @ roll


@register("rollout", "attention rollout (encoder + decoder)", "attention", "window",
          needs=("encoder attention", "decoder attention"))
def rollout(p: WindowPass) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020) through the encoder, then the decoder's cross-attention, ``[B, K]``."""
    return rollout_matrix(p.encoder_attention, p.decoder_attention).mean(1) @ p.token_sources
