"""The read-out registry's parts: what a read-out is (:class:`Readout`), :func:`register`, what each kind of
read-out function is handed (:class:`WindowPass`, :class:`InteractionPass`) and the enumerations every table
and figure reads (:func:`study_order`, :func:`interaction_measures`, :func:`labels`, :func:`family`).

The registry's order is the order of registration (the import line of the package's ``__init__``) and is
the order of the suite's interactions measures; the read-out study lists them by family
(:func:`study_order`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from ...mask_types import Mask, TokenLayout
from ...masking import network_mask

if TYPE_CHECKING:  # torch loads when a model is read (the registry's names are read without it)
    import torch

# In-function imports: ..model (torch) loads inside a model pass; .gradients registers its read-outs through this
# module, so importing it at the top would be circular.

#: Where a read-out's values come from (:attr:`Readout.source`):
#: ``window``: computed by the read-out study on its drawn windows (:func:`bi_core.analysis.readouts.model_readouts`),
#: ``compute(p: WindowPass)`` → ``[B, ..., K]`` per window, source last;
#: ``interactions``: computed by the suite's pass
#: (:func:`bi_core.analysis.interactions.predictability_and_interactions`),
#: ``compute(s: InteractionPass, m, n)`` → ``[n_recordings]`` for target ``m`` and source ``n``;
#: ``ridge``: the suite's ridge (:mod:`bi_core.analysis.linear`), read from its interactions table;
#: ``fc``: model-free, from the recordings' network mean signals,
#: ``compute(signals, names)`` → ``[n_recordings, K, K]``;
#: ``selection``: a column chosen by the read-out study among others (the selected attention layer/head).
SOURCES = ("window", "interactions", "ridge", "fc", "selection")
#: The families, in the order the read-out study lists them: built on attention weights (what the paper's claim
#: is about), other model read-outs, model-free or linear references.
FAMILIES = ("attention", "model", "reference")


@dataclass(frozen=True)
class Readout:
    """One way of reading which source network a target network's reconstruction relies on.

    ``name`` is its column in every table and its ``measure``/``readout`` value; ``label`` the reader-facing
    name; ``family`` one of :data:`FAMILIES`; ``source`` one of :data:`SOURCES` (what ``compute`` is handed);
    ``needs`` what it reads, in words (``decoder attention``, ``gradients``, ``occlusion``, ``BOLD``...; a
    ``window`` read-out that needs ``gradients`` runs on the gradient windows only and is divided by the
    target's energy); ``suite``: one of the suite's interaction measures (compared between groups and scored
    against the truth on every recording, :func:`interaction_measures`); ``columns``: for a read-out with
    more than one column (per layer and head), its accumulated ``[n_cells, ...]`` values → columns.
    """

    name: str
    label: str
    family: str
    source: str
    needs: tuple[str, ...] = ()
    compute: Callable[..., Any] | None = None
    suite: bool = False
    columns: Callable[[np.ndarray], dict[str, np.ndarray]] | None = field(default=None, compare=False)
    description: str = ""

    @property
    def model_based(self) -> bool:
        """Read from the trained model (``False``: a model-free or linear reference)."""
        return self.family != "reference"


#: The registry: name → read-out, in registration order.
READOUTS: dict[str, Readout] = {}


def register(name: str, label: str, family: str, source: str, needs: Iterable[str] = (), suite: bool = False,
             columns: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None
             ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register the decorated function as read-out ``name`` (see :class:`Readout`); returns it unchanged.

    Raises
    ------
    ValueError
        A name registered twice, or an unknown family or source.
    """
    if family not in FAMILIES or source not in SOURCES:
        raise ValueError(f"read-out {name!r}: family must be one of {FAMILIES} and source one of {SOURCES} "
                         f"(got {family!r}, {source!r}).")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in READOUTS:
            raise ValueError(f"read-out {name!r} is registered twice ({READOUTS[name].compute} and {fn}).")
        doc = (fn.__doc__ or "").strip().split("\n")[0]
        READOUTS[name] = Readout(name, label, family, source, tuple(needs), fn, suite, columns, doc)
        return fn

    return deco


def registered(source: str | None = None) -> list[Readout]:
    """The read-outs (of one ``source``), in registration order."""
    return [r for r in READOUTS.values() if source is None or r.source == source]


def is_head_column(column: str) -> bool:
    """A per-layer (``attention_l{l}``) or per-head (``attention_l{l}_h{h}``) attention column."""
    return column.startswith("attention_l")


def family(readout: str) -> str:
    """The family of a read-out or column (:data:`FAMILIES`); a per-layer/head column is ``attention``, an
    unregistered name ``model``."""
    if readout in READOUTS:
        return READOUTS[readout].family
    return "attention" if is_head_column(readout) else "model"


def labels() -> dict[str, str]:
    """Read-out name → its reader-facing label (single-column read-outs)."""
    return {r.name: r.label for r in READOUTS.values() if r.columns is None}


class _Labels(Mapping[str, str]):
    """:func:`labels` as a live mapping: a read-out registered later is in it too."""

    def __getitem__(self, name: str) -> str:
        return labels()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(labels())

    def __len__(self) -> int:
        return len(labels())


#: Read-out name → reader-facing label, always the registry's current state.
LABELS: Mapping[str, str] = _Labels()


def suite_columns() -> list[str]:
    """The read-outs the suite's interactions table holds and the read-out study reads from it (model measures
    of the suite's pass, the ridge)."""
    return [r.name for r in READOUTS.values() if r.source in ("interactions", "ridge")]


def study_order(head_columns: Iterable[str] = ()) -> list[str]:
    """Every read-out's column in the read-out study's order: attention-based, other model read-outs, then the
    references (the ridge before the model-free FC), each in registration order. A multi-column read-out (per
    layer and head) stands for ``head_columns`` (none by default)."""
    ranked = sorted(READOUTS.values(), key=lambda r: (FAMILIES.index(r.family), r.source == "fc"))
    out: list[str] = []
    for r in ranked:
        out.extend(head_columns if r.columns is not None else [r.name])
    return out


def interaction_measures() -> tuple[str, ...]:
    """The suite's interaction measures (its ``interactions.tsv`` columns compared between groups and scored
    against the truth), in registration order."""
    return tuple(r.name for r in READOUTS.values() if r.suite)


def fc_kinds(suite_only: bool = False) -> tuple[str, ...]:
    """The model-free FC references' nilearn kinds (``correlation``, ``partial correlation``): their names
    without ``fc_``; ``suite_only``: those the suite adds to its interactions table."""
    return tuple(r.name.removeprefix("fc_").replace("_", " ") for r in registered("fc") if r.suite or not suite_only)


class WindowPass:
    """What a ``window`` read-out reads for one batch of windows with one target network masked.

    Everything is computed on first use and kept for the other read-outs of the same batch and target.

    Parameters
    ----------
    model
        A :class:`bi_core.model.BrainInterNet` in eval mode.
    layout
        Its token layout.
    x
        The windows ``[B, n_rois, T]`` on the model's device.
    m
        The masked (target) network's index.
    n_patches
        Patches per window.
    gradient_rows
        Positions in the batch of the windows that also get gradient attributions (``[Bg]``).
    ig_steps
        Simpson intervals of integrated gradients.
    """

    def __init__(self, model: torch.nn.Module, layout: TokenLayout, x: torch.Tensor, m: int, n_patches: int,
                 gradient_rows: np.ndarray, ig_steps: int) -> None:
        self.model, self.layout, self.x, self.m, self.n_patches = model, layout, x, m, n_patches
        self.gradient_rows, self.ig_steps = gradient_rows, ig_steps
        self.K = layout.n_networks

    def target_mask(self, batch_size: int) -> Mask:
        """The mask that hides the target network in ``batch_size`` windows (on the windows' device)."""
        return network_mask(self.layout, self.m, batch_size=batch_size).to(self.x.device)

    @cached_property
    def mask(self) -> Mask:
        return self.target_mask(self.x.shape[0])

    @cached_property
    def latent(self) -> torch.Tensor:
        """The encoder's output on the visible tokens ``[B, Nv, d]``."""
        return self.model.forward_encoder(self.x, self.mask)

    @cached_property
    def decoder_attention(self) -> list[torch.Tensor]:
        """Each decoder layer's cross-attention as shares of what each query reads, ``[B, H, Nm, Nv]`` per layer
        (a sink's mass left out, :func:`bi_core.model.context_shares`)."""
        from ...model import context_shares

        _, dec = self.model.forward_decoder(self.latent, self.mask, self.n_patches, return_attention=True)
        return context_shares(dec)

    @cached_property
    def encoder_attention(self) -> list[torch.Tensor]:
        """Each encoder layer's self-attention ``[B, H, Nv, Nv]``."""
        return self.model.encoder_attention(self.x, self.mask)

    @cached_property
    def token_sources(self) -> torch.Tensor:
        """One-hot network of each visible token ``[Nv, K]``: a token-level share ``@`` it gives a source's share."""
        import torch

        token_net = torch.as_tensor(self.layout.token_network)
        return torch.nn.functional.one_hot(token_net[self.mask.visible[0].cpu()], self.K).float()

    @cached_property
    def roi_sources(self) -> torch.Tensor:
        """One-hot network of each ROI ``[n_rois, K]``: an ROI-level attribution ``@`` it gives a source's sum."""
        import torch

        roi = torch.as_tensor(np.asarray(self.layout.roi_network), dtype=torch.long)
        return torch.nn.functional.one_hot(roi, self.K).float()

    @cached_property
    def gradients(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(ixg, ig, f_x, f_0)`` of the gradient windows (:func:`~.gradients.gradient_attributions`)."""
        import torch

        from .gradients import gradient_attributions

        xg = self.x[torch.as_tensor(self.gradient_rows)]
        return gradient_attributions(self.model, xg, self.target_mask, self.ig_steps)

    @cached_property
    def energy(self) -> torch.Tensor:
        """``Σ y²`` of the target's masked tokens in each gradient window ``[Bg]``: what gradient read-outs
        are shares of."""
        import torch

        xg = self.x[torch.as_tensor(self.gradient_rows)]
        return self.model.forward_target(xg, self.target_mask(len(self.gradient_rows))).pow(2).sum(dim=(1, 2))


@dataclass
class InteractionPass:
    """What an ``interactions`` read-out reads: the suite's pass over every window, summed per recording.

    ``attention`` ``[n_rec, K, K]``: mean share of the target's (row) decoder attention on each source's
    tokens; ``context_share`` ``[K, K]``: each source's share of the context tokens when the target is masked;
    ``r2_full[m]`` ``[n_rec]``: the target's R² with every source visible (occlusion windows);
    ``r2_without(m, n)`` / ``r_alone(m, n)`` ``[n_rec]``: its R² with ``n`` hidden, its Pearson r from ``n``
    alone; ``occlusion`` / ``source_only``: whether those passes ran (else the read-outs are NaN).
    """

    attention: np.ndarray
    context_share: np.ndarray
    r2_full: dict[int, np.ndarray]
    r2_without: Callable[[int, int], np.ndarray]
    r_alone: Callable[[int, int], np.ndarray]
    occlusion: bool
    source_only: bool
    n_recordings: int

    def nan(self) -> np.ndarray:
        return np.full(self.n_recordings, np.nan)

    def delta_r2(self, m: int, n: int) -> np.ndarray:
        """R² of ``m`` lost when ``n`` is hidden ``[n_rec]`` (NaN without the occlusion pass)."""
        return self.r2_full[m] - self.r2_without(m, n) if self.occlusion else self.nan()
