"""Diagonal linear state-space layer (S4D-real style): convolution, parallel scan and the reference recurrence."""

from __future__ import annotations

import math

import torch
from torch import nn

from ...errors import ConfigError, InputError

def parallel_scan(a: torch.Tensor, x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Inclusive scan of ``s_t = a_t ⊙ s_{t−1} + x_t`` (``s_{−1} = 0``) along ``dim`` in ⌈log₂ T⌉ steps.

    Hillis–Steele scan with the associative operator
    ``(a₁, x₁) ∘ (a₂, x₂) = (a₁a₂, a₂x₁ + x₂)``; ``a`` broadcasts against ``x``.
    """
    a, x = torch.broadcast_tensors(a, x)
    a, x = a.movedim(dim, 0), x.movedim(dim, 0)
    T = x.shape[0]
    shift = 1
    while shift < T:
        # combine each element with the one `shift` steps earlier (identity (1, 0) before the start)
        a_prev = torch.cat([torch.ones_like(a[:shift]), a[:-shift]], 0)
        x_prev = torch.cat([torch.zeros_like(x[:shift]), x[:-shift]], 0)
        x = a * x_prev + x
        a = a * a_prev
        shift *= 2
    return x.movedim(0, dim)


def ssm_recurrence(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor,
                   u: torch.Tensor) -> torch.Tensor:
    """The step-by-step reference: ``s_t = a ⊙ s_{t−1} + b u_t``, ``y_t = Σ_n c ⊙ s_t + d u_t``.

    Shapes: ``a, b, c`` ``[H, N]``, ``d`` ``[H]``, ``u`` ``[B, T, H]`` → ``y`` ``[B, T, H]``.
    """
    B_, T, H = u.shape
    s = torch.zeros(B_, H, a.shape[1], dtype=u.dtype)
    ys = []
    for t in range(T):
        s = a * s + b * u[:, t, :, None]
        ys.append((c * s).sum(-1) + d * u[:, t])
    return torch.stack(ys, 1)


class DiagonalSSM(nn.Module):
    """Diagonal linear state-space layer over a sequence (S4D-real style), ``[B, T, H] → [B, T, H]``.

    ``H`` independent channels with ``N`` real states each. Continuous ``A = −exp(A_log)``
    and step ``Δ = exp(log_dt)`` are discretized by zero-order hold: ``a = exp(ΔA)``,
    ``b̄ = (a − 1) / A · B`` (so ``0 < a < 1``: stable by construction).

    Parameters
    ----------
    channels, state
        ``H`` and ``N``.
    dt_min, dt_max
        Range of the initial steps (in patches), log-uniform across channels.
    """

    def __init__(self, channels: int, state: int = 8, dt_min: float = 0.1, dt_max: float = 1.0) -> None:
        super().__init__()
        if channels < 1 or state < 1:
            raise ConfigError(f"DiagonalSSM needs channels >= 1 and state >= 1, got {channels} and {state}.")
        H, N = int(channels), int(state)
        self.log_dt = nn.Parameter(torch.linspace(math.log(dt_min), math.log(dt_max), H))
        self.A_log = nn.Parameter(torch.log(torch.linspace(0.5, float(N), N)).repeat(H, 1))   # [H, N]
        self.B = nn.Parameter(torch.randn(H, N) / math.sqrt(N))
        self.C = nn.Parameter(torch.randn(H, N) / math.sqrt(N))
        self.D = nn.Parameter(torch.ones(H))

    def discretize(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a, b̄)``, each ``[H, N]``."""
        A = -torch.exp(self.A_log)
        dtA = torch.exp(self.log_dt)[:, None] * A
        a = torch.exp(dtA)
        return a, (a - 1.0) / A * self.B

    def kernel(self, T: int) -> torch.Tensor:
        """Convolution kernel ``K[h, t] = Σ_n C b̄ a^t`` for ``t = 0..T−1``, ``[H, T]``."""
        a, b = self.discretize()
        t = torch.arange(T, dtype=a.dtype)
        powers = torch.exp(torch.log(a)[..., None] * t)                                   # [H, N, T]
        return torch.einsum("hn,hnt->ht", self.C * b, powers)

    def forward(self, u: torch.Tensor, mode: str = "conv") -> torch.Tensor:
        """Apply the layer to ``u`` ``[B, T, H]``.

        ``mode``: ``"conv"`` (FFT causal convolution), ``"scan"`` (parallel scan over the
        states) or ``"recurrence"`` (step by step; the reference).
        """
        if u.ndim != 3 or u.shape[-1] != self.D.shape[0]:
            raise InputError(f"DiagonalSSM input must be [batch, time, {self.D.shape[0]}], got {tuple(u.shape)}.")
        T = u.shape[1]
        if mode == "conv":
            K = self.kernel(T).to(u.dtype)                                                # [H, T]
            n = 2 * T  # zero-padding: a linear (causal), not circular, convolution
            spec = torch.fft.rfft(u, n=n, dim=1) * torch.fft.rfft(K.T, n=n, dim=0)[None]
            y = torch.fft.irfft(spec, n=n, dim=1)[:, :T]
            return y + self.D * u
        a, b = self.discretize()
        if mode == "scan":
            s = parallel_scan(a[None, None].to(u.dtype), b.to(u.dtype) * u[..., None], dim=1)   # [B, T, H, N]
            return (self.C.to(u.dtype) * s).sum(-1) + self.D * u
        if mode == "recurrence":
            return ssm_recurrence(a.to(u.dtype), b.to(u.dtype), self.C.to(u.dtype), self.D.to(u.dtype), u)
        raise ConfigError(f"unknown SSM mode {mode!r}; use 'conv', 'scan' or 'recurrence'.")
