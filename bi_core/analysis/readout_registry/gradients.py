"""Gradient attributions of the target's explained energy to each source network's inputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import WindowPass, register

if TYPE_CHECKING:
    import torch


def explained_energy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, mask: Any) -> torch.Tensor:
    """``f(x) = Σ y² − Σ (y − ŷ(x))²`` per window ``[B]`` over the masked tokens; ``y`` ``[B, Nm, P]``
    fixed."""
    pred = model.reconstruct(x, mask)                                                   # decoder + linear path
    return (y.pow(2) - (y - pred).pow(2)).sum(dim=(1, 2))


def gradient_attributions(model: torch.nn.Module, x: torch.Tensor, mask_fn: Any, ig_steps: int
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Input × gradient and integrated gradients of :func:`explained_energy`, per input value.

    Parameters
    ----------
    model
        A :class:`bi_core.model.BrainInterNet` (eval mode).
    x
        Windows ``[B, n_rois, T]``.
    mask_fn
        ``mask_fn(batch_size)`` → the mask (e.g. ``lambda b: network_mask(layout, m, batch_size=b)``).
    ig_steps
        Intervals (even) of the straight path from the all-zero window to ``x``, integrated with
        composite Simpson's rule.

    Returns
    -------
    (ixg, ig, f_x, f_0)
        ``[B, n_rois, T]`` attributions (zero on the masked network's ROIs, which are not
        inputs) and ``f`` at ``x`` and at the zero window ``[B]``. Completeness:
        ``ig.sum((1, 2)) ≈ f_x − f_0`` (exact as ``ig_steps`` grows).
    """
    import torch

    B = x.shape[0]
    S = int(ig_steps)
    if S < 2 or S % 2:
        raise ValueError(f"ig_steps={ig_steps}: Simpson's rule needs an even number of intervals (2, 4, 8...).")
    y = model.forward_target(x, mask_fn(B)).detach()
    alphas = torch.linspace(0.0, 1.0, S + 1, dtype=x.dtype, device=x.device)
    xs = (alphas[:, None, None, None] * x[None]).reshape(-1, *x.shape[1:]).requires_grad_(True)
    f = explained_energy(model, xs, y.repeat(S + 1, 1, 1), mask_fn(xs.shape[0]))     # [(S+1) B]
    (g,) = torch.autograd.grad(f.sum(), xs)         # windows are independent: per-window gradients
    g = g.view(S + 1, *x.shape)
    f = f.detach().view(S + 1, B)
    # composite Simpson weights 1, 4, 2, 4, ..., 4, 1 (× 1/3S): exact for cubic paths, and the end points
    # it needs give input × gradient (α = 1) and f(0) (α = 0) for free
    w = torch.ones(S + 1, dtype=x.dtype, device=x.device)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    w = w / (3 * S)
    ig = x * torch.einsum("s,sbrt->brt", w, g)
    return x * g[-1], ig, f[-1], f[0]


@register("input_x_gradient", "input × gradient", "model", "window", needs=("gradients",))
def input_x_gradient(p: WindowPass) -> torch.Tensor:
    """Input × gradient of the target's explained energy, summed over each source's ROIs and frames, ``[Bg, K]``."""
    return p.gradients[0].sum(-1) @ p.roi_sources


@register("integrated_gradients", "integrated gradients", "model", "window", needs=("gradients",))
def integrated_gradients(p: WindowPass) -> torch.Tensor:
    """Integrated gradients (from the all-zero window) of the target's explained energy, per source, ``[Bg, K]``."""
    return p.gradients[1].sum(-1) @ p.roi_sources
