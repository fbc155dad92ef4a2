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

The run directory it writes, the training presets, the config hash and loading a trained
model live in :mod:`bi_core.runs` (what analyses import; they never import this loop).
Checkpoints are plain dicts of tensors and JSON-able values (``torch.load(weights_only=True)``)
carrying the format version, model and training configs, the atlas, the preprocessing
spec and its hash, the config hash, optimizer/scheduler state, epoch, step and RNG states.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import shutil
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__, streams
from ._io import (adopt_stale, check_replaceable, derived, publish, refuse_overlap, stale_siblings, staging_dir,
                  write_json, write_marker, write_text)
from .atlas import NetworkAtlas
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, seed_everything, set_rng_state
from .cohort import open_cohorts
from .config import config_from_dict, config_to_dict, dump_config
from .errors import ConfigError, InputError
from .masking import MaskSampler, TokenLayout
from .model import BrainInterNet, build_model
from .preprocess import PreprocSpec
from .provenance import import_closure, loaded_sources, snapshot
from .runs import (FORMAT, VERSION, TrainConfig, config_hash, fit_to_windows, legacy_train_dict, snapshot_epochs,
                   training_spec)
from .windows import RandomCrops, RecordingSet, fixed_windows

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
    spec = training_spec(originals, cfg.target_tr)
    # rank 0 writes the resampling cache; the others then open it
    if dist.main:
        cohorts = [c.harmonized(cfg.target_tr, cache_dir=cache_dir, progress=progress) for c in originals]
    dist.barrier()
    if not dist.main:
        cohorts = [c.harmonized(cfg.target_tr, cache_dir=cache_dir) for c in originals]
    T = cfg.model.window
    all_recordings = RecordingSet(cohorts)
    everything = all_recordings.at_least(T)
    train, val = everything.split_by_subject(cfg.val_fraction, cfg.seed, cfg.val_subjects)
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
        mask = sampler.sample(len(rows), np.random.default_rng([cfg.seed, streams.VALIDATION_MASKS, k]))
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


# ---------------------------------------------------------------------- the loop
def _interrupted(out: Path) -> Path | None:
    """The staging sibling of the latest fresh run into ``out`` that was killed after saving a checkpoint."""
    found = [p for p in stale_siblings(out) if p.suffix == ".tmp" and (p / "checkpoint.pt").is_file()]
    return max(found, key=lambda p: (p / "checkpoint.pt").stat().st_mtime_ns, default=None)


@contextlib.contextmanager
def _drop_unless_resumable(staged: list[Path]) -> Iterator[None]:
    """On an error, remove a fresh run's staging sibling unless it holds a checkpoint (``--resume`` continues it)."""
    try:
        yield
    except BaseException as exc:
        for d in staged:
            if not (d / "checkpoint.pt").is_file():
                shutil.rmtree(d, ignore_errors=True)
            elif isinstance(exc, KeyboardInterrupt):
                print(f"bi-core: the unfinished run is kept in {d}; continue it with --resume", file=sys.stderr)
        raise


def _finite_or_none(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _train_epoch(net: torch.nn.Module, raw: Any, opt: torch.optim.Optimizer, sched: Any, data: Any,
                 sampler: MaskSampler, cfg: TrainConfig, dist: Any, epoch: int, step: int, spe: int,
                 pbar: Any) -> tuple[torch.Tensor, int, int]:
    """One epoch of :func:`pretrain`'s optimisation: ``spe`` steps of ``cfg.batch_size`` windows.

    Each step's global batch is split over the ranks (this rank's ``shard``) and into the
    mask groups' micro-batches (:func:`micro_batches`), whose masks are drawn from
    ``(seed, TRAIN_MASKS, epoch, step, group)``; gradients are summed and normalised by the
    global number of masked values. Returns ``(summed squared error on this rank, its number
    of values, the global step after the epoch)``.
    """
    B, world = cfg.batch_size, dist.world
    b_local = B // world
    shard = slice(dist.rank * b_local, (dist.rank + 1) * b_local)
    micro = micro_batches(B, cfg.mask_groups, dist.rank, world)
    P = cfg.model.patch_size
    tokens_per_window = cfg.model.n_rois * cfg.model.n_patches
    cuda = dist.device.type == "cuda"
    rec, starts = data.crops.plan(epoch)
    t_epoch = time.perf_counter()
    sse_sum = torch.zeros((), dtype=torch.float64, device=dist.device)
    count = 0

    def batches() -> Iterator[Any]:
        for s in range(spe):
            g = slice(s * B, (s + 1) * B)
            masks = [sampler.sample(B // cfg.mask_groups,
                                    np.random.default_rng([cfg.seed, streams.TRAIN_MASKS, epoch, s, k]))
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
    return sse_sum, count, step


def pretrain(cohort_paths: Sequence[str | Path], cfg: TrainConfig | None, out: str | Path, *, resume: bool = False,
             overwrite: bool = False, device: str = "auto", progress: bool = True,
             cache_dir: str | Path | None = None, stop_after_epochs: int | None = None,
             preset: str | None = None) -> dict[str, Any]:
    """Pretrain a BrainInterNet and write the run directory ``out`` (see the module docstring).

    Parameters
    ----------
    cohort_paths
        Cohort directories (same atlas).
    cfg
        The training config; with ``resume`` it may be ``None`` (taken from the checkpoint).
    out
        Run directory. A fresh run is built in a hidden sibling (``.RUN.bi_core-...tmp``) and
        renamed into place when it finishes or stops (``stop_after_epochs``), so a killed run
        leaves the previous ``out`` as it was.
    resume
        Continue from ``out/checkpoint.pt`` in place (each file is replaced atomically), or
        from the sibling of a fresh run that was killed; the result equals an uninterrupted run.
    overwrite
        Start afresh even if ``out`` holds a run (only a run: any other non-empty directory
        is refused).
    device
        ``auto``, ``cpu`` or ``cuda``.
    stop_after_epochs
        Stop after this many completed epochs as if the run were killed (the schedule
        still spans ``cfg.epochs``; no summary is written). For tests and time-sliced jobs.
    preset
        The name of the preset ``cfg`` comes from: on a cohort with fewer training windows
        than one batch, its batch size is fitted to them (:func:`bi_core.runs.fit_to_windows`;
        one line says so, the summary records it as ``preset_fitted``) instead of refusing.

    Returns
    -------
    dict
        The summary (also written to ``out/summary.json`` when the run finishes).
    """
    t_start = time.perf_counter()
    sources = snapshot()     # the code as it is when training starts (recorded in summary.json)
    out = Path(out)
    refuse_overlap(out, {"--cohort": cohort_paths})
    if cache_dir is not None:
        refuse_overlap(cache_dir, {"--cohort": cohort_paths}, option="--cache-dir")
    cfg, ck, partial = _open_run(out, cfg, resume, overwrite, stop_after_epochs)

    staged: list[Path] = []
    with _distributed(device) as dist, _deterministic(dist.device), _drop_unless_resumable(staged):
        seed_everything(cfg.seed)
        data = prepare_data(cohort_paths, cfg, cache_dir=cache_dir, progress=progress and dist.main, dist=dist)
        cfg = replace(cfg, model=cfg.model.bind(data.atlas))
        fitted = None
        if preset is not None:
            cfg, fitted = fit_to_windows(cfg, data.crops.windows_per_epoch, preset, dist.world,
                                         cfg.model.window)
            if fitted is not None and dist.main:
                print(fitted["message"], flush=True)
        chash = config_hash(cfg, data.atlas, data.preprocessing, data.cohort_digests)
        if ck is not None and ck["config_hash"] != chash:
            raise ConfigError(f"{partial or out}/checkpoint.pt was trained with another config or data (config hash "
                              f"{ck['config_hash']} vs {chash}); --resume continues the same run only. Use the run's "
                              "config.yaml, or --stop-after-epochs to interrupt a run rather than a smaller --epochs.")
        if cfg.batch_size % dist.world:
            raise ConfigError(f"batch_size={cfg.batch_size} is not divisible by the {dist.world} processes; the global "
                              "batch is split evenly across ranks.")
        opt_ = _Optimisation.build(cfg, data, dist)
        state = _Progress()
        if ck is not None:
            state = opt_.restore(ck)
        meta = _meta(cfg, data, chash)
        work = partial or out          # where this process writes: a fresh run's staging sibling (main rank)
        if dist.main:
            work = _stage_run(out, ck, partial, cohort_paths, cfg)
            if work != out:
                staged.append(work)
        stop_at = cfg.epochs if stop_after_epochs is None else min(cfg.epochs, int(stop_after_epochs))
        snap_at = set(snapshot_epochs(cfg))
        saver = _Saver(work, meta)
        pbar = None
        if progress and dist.main:
            from tqdm.auto import tqdm

            pbar = tqdm(total=opt_.total_steps, initial=state.step, desc="pretrain", unit="step", dynamic_ncols=True)
        opt_.raw.train()
        while state.epoch < stop_at and not state.stopped_early(cfg):
            t_epoch = time.perf_counter()
            sse_sum, count, state.step = _train_epoch(opt_.net, opt_.raw, opt_.opt, opt_.sched, data, opt_.sampler,
                                                      cfg, dist, state.epoch, state.step, opt_.spe, pbar)
            epoch_time = time.perf_counter() - t_epoch
            tr_sse, tr_count = dist.all_sum([float(sse_sum), float(count)])
            val_loss, val_zero = evaluate(opt_.raw, data, opt_.val_sampler, cfg, dist)
            improved = state.end_epoch(data.val is not None, val_loss, epoch_time)
            rec_ = {"epoch": state.epoch, "step": state.step, "train_loss": tr_sse / max(tr_count, 1),
                    "val_loss": _finite_or_none(val_loss), "val_zero_loss": _finite_or_none(val_zero),
                    "lr": opt_.opt.param_groups[0]["lr"], "epoch_time_s": round(epoch_time, 4),
                    "tokens_per_s": round(opt_.spe * opt_.batch_tokens(cfg) / epoch_time, 1),
                    "windows_per_s": round(opt_.spe * cfg.batch_size / epoch_time, 2)}
            state.history.append(rec_)
            if dist.main:
                saver.epoch(opt_, state, rec_, improved, state.epoch in snap_at,
                            final=state.epoch >= stop_at or state.stopped_early(cfg))
                if pbar is not None:
                    pbar.write(f"epoch {state.epoch}/{cfg.epochs}: train {rec_['train_loss']:.4f}  val "
                               f"{val_loss:.4f}  (predict-zero {val_zero:.4f})")
            dist.barrier()
        if pbar is not None:
            pbar.close()

        finished = state.epoch >= cfg.epochs or state.stopped_early(cfg)
        summary = _summary(out, cfg, data, dist, opt_, state, chash, fitted, sources, finished,
                           wall_time=time.perf_counter() - t_start)
        if dist.main and finished:
            write_json(work / "summary.json", summary)
        if dist.main and work != out:
            publish(work, out)
        return summary


def _open_run(out: Path, cfg: TrainConfig | None, resume: bool, overwrite: bool, stop_after_epochs: int | None
              ) -> tuple[TrainConfig, dict[str, Any] | None, Path | None]:
    """:func:`pretrain`'s checks before any data is read: ``(config, checkpoint or None, killed run's sibling or None)``.

    With ``resume`` the checkpoint is ``out/checkpoint.pt``, or that of the staging sibling a
    killed fresh run left (returned as the third value), and ``cfg`` may be ``None`` (the
    checkpoint's config is used). Without it, ``out`` must not hold a run unless ``overwrite``.
    """
    # a fresh run that was killed left its checkpoints in a hidden sibling: --resume continues it there
    partial = _interrupted(out) if resume else None
    ckpt_path = (partial or out) / "checkpoint.pt"
    ck: dict[str, Any] | None = None
    if resume:
        if not ckpt_path.is_file():
            raise InputError(f"--resume: {ckpt_path} does not exist; start the run without --resume.")
        ck = load_checkpoint(ckpt_path)
        saved = config_from_dict(TrainConfig, legacy_train_dict(ck["train_config"]), where=f"{ckpt_path}: train_config")
        cfg = saved if cfg is None else cfg
    elif cfg is None:
        raise ConfigError("no training config: give a preset or a config file.")
    elif not overwrite and (ckpt_path.is_file() or (out / "summary.json").is_file()):
        raise InputError(f"{out} already holds a run; pass --resume to continue it, --overwrite to start again, "
                         "or choose another --out.")
    else:
        check_replaceable(out, "run", overwrite)
    assert cfg is not None
    if cfg.seed < 0:      # numpy's generators refuse it, after the staging directory exists
        raise ConfigError(f"seed={cfg.seed}: a seed is a non-negative integer (--seed or the config's seed).")
    if stop_after_epochs is not None and stop_after_epochs < 1:
        raise ConfigError(f"--stop-after-epochs {stop_after_epochs}: stop after at least 1 epoch.")
    return cfg, ck, partial


@dataclass
class _Progress:
    """Where a run stands: what a checkpoint saves and ``--resume`` restores."""

    epoch: int = 0
    step: int = 0
    best_val: float = math.inf
    best_epoch: int = 0
    bad: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    train_time: float = 0.0

    def stopped_early(self, cfg: TrainConfig) -> bool:
        """Early stopping: ``cfg.patience`` epochs without a better validation loss (never with patience 0)."""
        return self.bad >= cfg.patience > 0

    def end_epoch(self, has_val: bool, val_loss: float, epoch_time: float) -> bool:
        """Count the epoch just trained; whether its validation loss is the best so far (always, without one)."""
        self.epoch += 1
        self.train_time += epoch_time
        improved = not has_val or not math.isfinite(val_loss) or val_loss < self.best_val
        if improved:
            self.best_val, self.best_epoch, self.bad = (val_loss if math.isfinite(val_loss) else math.inf), self.epoch, 0
        else:
            self.bad += 1
        return improved

    def to_checkpoint(self) -> dict[str, Any]:
        return {"best_val": _finite_or_none(self.best_val), "best_epoch": self.best_epoch, "bad_epochs": self.bad,
                "history": self.history, "train_time_s": self.train_time}


@dataclass
class _Optimisation:
    """The model, its optimiser, schedule and mask samplers for one run (:meth:`build`)."""

    raw: BrainInterNet
    net: torch.nn.Module          # what the loop calls: ``raw``, compiled and/or wrapped in DDP
    opt: torch.optim.Optimizer
    sched: Any
    sampler: MaskSampler
    val_sampler: MaskSampler
    spe: int                      # steps per epoch
    total_steps: int

    @classmethod
    def build(cls, cfg: TrainConfig, data: RunData, dist: _Dist) -> "_Optimisation":
        layout = TokenLayout.from_atlas(data.atlas, cfg.model.n_patches)
        sampler, val_sampler = MaskSampler(layout, cfg.mask), MaskSampler(layout, replace(cfg.mask, per_sample=True))
        raw = build_model(cfg.model, seed=cfg.seed).to(dist.device)
        opt = configure_optimizer(raw, cfg, dist.device)
        spe = data.crops.steps_per_epoch(cfg.batch_size)
        total_steps = spe * cfg.epochs
        warmup = int(round(cfg.warmup_frac * total_steps))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total_steps, warmup, cfg.min_lr_ratio))
        net: torch.nn.Module = torch.compile(raw, dynamic=True) if cfg.compile else raw
        if dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            net = DDP(net, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)
        return cls(raw, net, opt, sched, sampler, val_sampler, spe, total_steps)

    def restore(self, ck: dict[str, Any]) -> _Progress:
        """Load a training checkpoint's weights, optimiser, schedule and RNG states; its progress."""
        self.raw.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        set_rng_state(ck["rng"])
        return _Progress(int(ck["epoch"]), int(ck["step"]),
                         math.inf if ck.get("best_val") is None else float(ck["best_val"]), int(ck["best_epoch"]),
                         int(ck["bad_epochs"]), list(ck["history"]), float(ck.get("train_time_s", 0.0)))

    @staticmethod
    def batch_tokens(cfg: TrainConfig) -> int:
        """Tokens in one global batch (windows × ROIs × time patches): the throughput the logs report."""
        return cfg.batch_size * cfg.model.n_rois * cfg.model.n_patches


def _stage_run(out: Path, ck: dict[str, Any] | None, partial: Path | None, cohort_paths: Sequence[str | Path],
               cfg: TrainConfig) -> Path:
    """The directory the main rank writes: a fresh run's staging sibling (renamed over ``out`` at the end), the
    adopted sibling of a killed run, or ``out`` itself for an in-place resume; with its marker and config."""
    if ck is None:
        work = staging_dir(out)    # whole or nothing
    elif partial is not None:
        work = adopt_stale(partial, out)
    else:
        work = out
    work.mkdir(parents=True, exist_ok=True)
    with derived(sources=cohort_paths):     # the run's SourceDatasets: its cohorts, however it was called
        write_marker(work, "run")
    dump_config(cfg, work / "config.yaml")
    return work


#: Seconds of training between two writes of the resumable checkpoint (with ``metrics.jsonl`` and ``best.pt``)
#: after the first epoch's: a small model trains an epoch in tens of milliseconds, and writing them after every
#: epoch took a third of a 150-epoch test run. The last epoch and every snapshot epoch are written too; a killed
#: run loses at most this much training and resumes to the same numbers (every random step is seeded).
CHECKPOINT_EVERY_S = 30.0


@dataclass
class _Saver:
    """Writes a run's files after its epochs (main rank): snapshots at their epochs; the best weights, the
    resumable checkpoint and the metrics together, when :data:`CHECKPOINT_EVERY_S` have passed (and after the
    first and the last epoch), so that the three always describe the same epoch."""

    work: Path
    meta: dict[str, Any]
    last: float = -math.inf                     # time.perf_counter() of the last write
    best: dict[str, Any] | None = None          # the best weights since then, not yet written

    def epoch(self, o: _Optimisation, state: _Progress, rec: dict[str, Any], improved: bool, snapshot_now: bool,
              final: bool) -> None:
        """After an epoch; ``final``: the run (or this call of it) ends here."""
        model_state = {**self.meta, "model": o.raw.state_dict(), "epoch": state.epoch, "step": state.step,
                       "val_loss": rec["val_loss"], "val_zero_loss": rec["val_zero_loss"], "kind": "model"}
        if improved:
            self.best = {**model_state, "model": {k: v.detach().clone() for k, v in model_state["model"].items()}}
        if snapshot_now:
            save_checkpoint(self.work / "snapshots" / f"epoch-{state.epoch:04d}.pt", model_state)
        if not (final or snapshot_now or time.perf_counter() - self.last >= CHECKPOINT_EVERY_S):
            return
        if self.best is not None:
            save_checkpoint(self.work / "best.pt", self.best)
            self.best = None
        save_checkpoint(self.work / "checkpoint.pt",
                        {**model_state, "kind": "training_state", "optimizer": o.opt.state_dict(),
                         "scheduler": o.sched.state_dict(), **state.to_checkpoint(), "rng": rng_state()})
        write_text(self.work / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in state.history))
        self.last = time.perf_counter()


def _summary(out: Path, cfg: TrainConfig, data: RunData, dist: _Dist, o: _Optimisation, state: _Progress, chash: str,
             fitted: dict[str, Any] | None, sources: Any, finished: bool, wall_time: float) -> dict[str, Any]:
    """The run's ``summary.json``: status, the code it ran, its best epoch, speed, data and subject split."""
    history = state.history
    best = next((h for h in history if h["epoch"] == state.best_epoch), history[-1] if history else {})
    steps_done = len(history) * o.spe
    tokens = o.batch_tokens(cfg)
    return {
        "status": "finished" if finished else "interrupted",
        # the bi_core sources this run ran and training can reach (run_is_current checks
        # them): an edit to the orchestrator that started it (steps, CLI) keeps the run
        "code": loaded_sources(sources, within=import_closure(["bi_core.train"])),
        "config_hash": chash,
        "preprocessing_hash": data.preprocessing.digest(),
        "epochs_run": state.epoch, "max_epochs": cfg.epochs, "stopped_early": bool(state.stopped_early(cfg)),
        "best_epoch": state.best_epoch, "steps": state.step,
        "val_loss": best.get("val_loss"), "val_zero_loss": best.get("val_zero_loss"),
        "val_loss_ratio": (best["val_loss"] / best["val_zero_loss"]
                           if best.get("val_loss") is not None and best.get("val_zero_loss") else None),
        "final_train_loss": history[-1]["train_loss"] if history else None,
        "wall_time_s": round(wall_time, 2), "train_time_s": round(state.train_time, 2),
        "tokens_per_s": round(steps_done * tokens / state.train_time, 1) if state.train_time else None,
        "windows_per_s": round(steps_done * cfg.batch_size / state.train_time, 2) if state.train_time else None,
        "n_params": o.raw.n_params(), "device": str(dist.device), "world_size": dist.world,
        "windows_per_epoch": data.crops.windows_per_epoch, "steps_per_epoch": o.spe,
        "n_train_recordings": len(data.train), "n_train_subjects": len(data.train.subjects),
        "n_val_recordings": 0 if data.val is None else len(data.val),
        "n_val_subjects": 0 if data.val is None else len(data.val.subjects), "n_val_windows": len(data.val_rec),
        # the exact subject split (sorted ids): lets a reference be fitted on the training subjects only
        "train_subjects": [str(s) for s in data.train.subjects],
        "val_subjects": [] if data.val is None else [str(s) for s in data.val.subjects],
        "n_recordings_too_short": data.n_too_short,
        "mask": config_to_dict(cfg.mask), "checkpoint": str(out / "best.pt"),
        "preset_fitted": fitted,
    }
