"""The interface every masking strategy implements, the registry that lists them, and the settings
that choose one (:class:`MaskConfig`).

This module (like the whole :mod:`bi_core.mask_strategies` package) does not import torch, so
the CLI can offer the strategy names without loading it: the strategies build their masks with
:mod:`bi_core.mask_types`, which makes tensors only when a mask is built. It sits below
:mod:`bi_core.masking` (the sampler), which re-exports :class:`MaskConfig`.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from ..errors import ConfigError
from ..mask_types import Mask, TokenLayout

#: Default probability that a whole-unit strategy (``network``, ``lobe_group``) masks two units
#: instead of one (:attr:`bi_core.masking.MaskConfig.p_two`).
DEFAULT_P_TWO: float = 0.25


@dataclass(frozen=True, eq=False)
class MaskPlan:
    """What a :class:`~bi_core.masking.MaskSampler` keeps between draws.

    A strategy's :meth:`MaskStrategy.prepare` returns a subclass that adds the sizes it
    computed once (units present, tokens or blocks per sample...).

    Attributes
    ----------
    layout : TokenLayout
        The token grid masks are drawn on.
    cfg : MaskConfig
        The validated masking settings.
    """

    layout: TokenLayout
    cfg: MaskConfig


PlanT = TypeVar("PlanT", bound=MaskPlan)


class MaskStrategy(ABC, Generic[PlanT]):
    """One masking strategy: how it draws masks, its expected masked share, how to match a share.

    Subclasses set :attr:`name` and :attr:`description`, implement the abstract methods and
    are added to :data:`STRATEGIES` with the :func:`register` class decorator.
    Instances hold no state: the per-sampler state is the :class:`MaskPlan` of
    :meth:`prepare`.

    Attributes
    ----------
    name : str
        The value of ``mask.strategy`` (:class:`~bi_core.masking.MaskConfig`) and of the
        CLI's ``--strategy``; also :attr:`bi_core.masking.Mask.kind` of its masks.
    description : str
        One line for ``--help`` and the docs.
    color : str or None
        Display colour in the figures (``None``: the next colour of matplotlib's cycle).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    color: ClassVar[str | None] = None

    @abstractmethod
    def prepare(self, layout: TokenLayout, cfg: MaskConfig) -> PlanT:
        """Check ``cfg`` against ``layout`` and precompute what every draw needs.

        Raises
        ------
        ConfigError
            When this strategy cannot mask ``layout`` with ``cfg`` (e.g. the mask would
            cover every token), with the setting to change.
        """

    @abstractmethod
    def sample(self, plan: PlanT, batch_size: int, rng: np.random.Generator) -> Mask:
        """Draw the masks of one batch of ``batch_size`` windows (CPU tensors)."""

    @abstractmethod
    def expected_share(self, layout: TokenLayout, cfg: MaskConfig) -> float:
        """Expected share of the ``layout.n_tokens`` tokens masked per sample, in (0, 1)."""

    @abstractmethod
    def matched_settings(self, layout: TokenLayout, target: float, p_two: float) -> dict[str, Any]:
        """:class:`~bi_core.masking.MaskConfig` fields that make the expected share ``target``.

        ``target`` is the ``network`` strategy's expected share with ``p_two``
        (:func:`~bi_core.masking.matched_ratio`); the masking study trains every strategy
        at it (:func:`bi_core.related.masking_study.training.matched_mask_configs`).
        """

    @abstractmethod
    def setting(self, plan: PlanT) -> str:
        """The setting that sets the masked share, as text for tables (e.g. ``"p_two=0.25"``)."""


#: The masking strategies by name, in registration order (the order of the docs, the CLI,
#: the tables and the figures). Filled by :func:`register`.
STRATEGIES: dict[str, MaskStrategy[Any]] = {}

S = TypeVar("S", bound=type[MaskStrategy[Any]])


def register(cls: S) -> S:
    """Class decorator: add an instance of the strategy ``cls`` to :data:`STRATEGIES`.

    Raises
    ------
    ConfigError
        When ``cls`` has no ``name`` or another strategy already has its name.
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"masking strategy class {cls.__qualname__} needs a non-empty string attribute 'name'.")
    old = STRATEGIES.get(name)
    if old is not None and (type(old).__module__, type(old).__qualname__) != (cls.__module__, cls.__qualname__):
        raise ConfigError(f"masking strategy name {name!r} of {cls.__module__}.{cls.__qualname__} is already taken "
                          f"by {type(old).__module__}.{type(old).__qualname__}; choose another name.")
    STRATEGIES[name] = cls()
    return cls


#: Former strategy names that still load, old → current: configs and checkpoints store ``mask.strategy``.
#: ``region`` masked lobe-like ROI groups, not seed 002's atlas regions (``atlas_region``).
DEPRECATED_NAMES: dict[str, str] = {"region": "lobe_group"}


def current_name(name: str) -> str:
    """The current strategy name for ``name``: itself, or what a deprecated alias now is called.

    An alias (:data:`DEPRECATED_NAMES`) gives a ``FutureWarning`` that names the new strategy
    and the seed 002 strategy it is not.
    """
    new = DEPRECATED_NAMES.get(name)
    if new is None:
        return name
    warnings.warn(f"masking strategy {name!r} is now called {new!r} (whole lobe-like ROI groups from the atlas "
                  f"'region' column) and is loaded as {new!r}; write mask.strategy: {new} (seed 002's masking of "
                  "individual atlas regions is 'atlas_region').", FutureWarning, stacklevel=3)
    return new


def get_strategy(name: str) -> MaskStrategy[Any]:
    """The registered strategy called ``name``.

    Raises
    ------
    ConfigError
        When no strategy has that name (the message lists the known ones).
    """
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ConfigError(f"unknown masking strategy {name!r}; known strategies: {list(STRATEGIES)}.") from None


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
