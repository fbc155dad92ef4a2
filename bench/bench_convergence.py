"""What limits BrainInterNet's reconstructions: held-out R² against training compute, beside ridge.

For each training variant (a preset with some settings changed) and seed, pretrain on a
cohort with a subject-held-out validation split and, at several points of the schedule
(``--evals``, in epochs; the run is stopped and resumed there, which gives the same
weights as an uninterrupted run), score the **held-out subjects** with the model's
predictability (mean R² over networks) and with the same-frame ``ridge`` and
``lagged-ridge`` references fitted on the run's **training subjects**
(:mod:`bi_core.analysis.linear`): same recordings, windows, frames and R² definition.

Points inside the schedule are a learning curve of *one* cosine schedule (the learning
rate has not decayed yet there); the last point of each run is the number a preset of
that length would give.

Output: one TSV row per (variant, seed, epoch, network) and a printed summary (mean R²
over networks, the ratio model / ridge, steps, training seconds on this machine).

Usage::

    python bench/bench_convergence.py --cohort artifacts/default/real/hcp --preset real \\
        --variants base,epochs x2,lr x2 --seeds 0 --out bench/convergence_hcp.tsv
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

#: Training variants: name → changes to the preset (``model.`` prefixes a ModelConfig field;
#: ``epochs xN`` / ``lr xN`` scale the preset's value).
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
}


def variant_config(preset_name: str, variant: str, seed: int, val_fraction: float | None) -> Any:
    """The TrainConfig of one variant (no early stopping: every run spans its schedule)."""
    from bi_core.runs import preset

    cfg = replace(preset(preset_name), seed=seed, patience=0)
    if val_fraction is not None:
        cfg = replace(cfg, val_fraction=val_fraction)
    model_changes = {}
    for k, v in VARIANTS[variant].items():
        if k == "epochs x":
            cfg = replace(cfg, epochs=int(round(cfg.epochs * v)))
        elif k == "lr x":
            cfg = replace(cfg, lr=cfg.lr * v)
        elif k.startswith("model."):
            model_changes[k.removeprefix("model.")] = v
        else:
            cfg = replace(cfg, **{k: v})
    if model_changes:
        cfg = replace(cfg, model=replace(cfg.model, **model_changes))
    return cfg


def evaluate(ckpt: Path, cohort: Any, train_subjects: list[str], refs: dict[str, Any] | None) -> dict[str, Any]:
    """Held-out predictability of a checkpoint and (once per split) of the linear references."""
    from bi_core.analysis.linear import METHODS, linear_predictability
    from bi_core.analysis.predictability import predictability
    from bi_core.runs import load_model

    model, info = load_model(ckpt, cohort=cohort)
    held = [r for r, s in zip(cohort.table["recording_id"], cohort.table["subject"].astype(str))
            if s not in set(train_subjects)]
    pred = predictability(model, info, cohort, recordings=held)
    out = {"model": pred.groupby("network", sort=False)["r2"].mean()}
    if refs is None:
        refs = {}
        for m in METHODS:
            lin = linear_predictability(info, cohort, m, train_subjects=train_subjects)
            refs[m] = lin.groupby("network", sort=False)["r2"].mean()
    out.update(refs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort", required=True, help="cohort directory (e.g. artifacts/default/real/hcp)")
    ap.add_argument("--preset", default="real", help="training preset the variants change [default: real]")
    ap.add_argument("--variants", default="base", help=f"comma-separated, from: {', '.join(VARIANTS)}")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds (each: another subject split and init)")
    ap.add_argument("--evals", default="", help="comma-separated epochs at which to evaluate inside the "
                                                "schedule (the last epoch is always evaluated)")
    ap.add_argument("--val-fraction", type=float, default=None, help="override the preset's held-out share")
    ap.add_argument("--out", required=True, help="output TSV")
    args = ap.parse_args()

    import pandas as pd
    import torch

    from bi_core.cohort import Cohort
    from bi_core.train import pretrain

    torch.set_num_threads(1)
    cohort = Cohort.open(args.cohort)
    rows = []
    work = Path(tempfile.mkdtemp(prefix="bench-conv-"))
    for variant in args.variants.split(","):
        variant = variant.strip()
        for seed in (int(s) for s in args.seeds.split(",")):
            cfg = variant_config(args.preset, variant, seed, args.val_fraction)
            run = work / f"{variant.replace(' ', '_')}-s{seed}"
            evals = sorted({int(e) for e in args.evals.split(",") if e.strip() and int(e) < cfg.epochs} | {cfg.epochs})
            refs = None
            t_train = 0.0
            for e in evals:
                t0 = time.perf_counter()
                pretrain([cohort.path], cfg, run, resume=(run / "checkpoint.pt").is_file(), device="cpu",
                         progress=False, stop_after_epochs=None if e == cfg.epochs else e)
                t_train += time.perf_counter() - t0
                metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
                steps = metrics[-1]["step"]
                if e == cfg.epochs:
                    split = json.loads((run / "summary.json").read_text())
                    train_subjects = split["train_subjects"]
                else:
                    from bi_core.train import prepare_data

                    train_subjects = sorted(prepare_data([cohort.path], cfg).train.subjects)
                res = evaluate(run / "checkpoint.pt", cohort, train_subjects, refs)
                refs = {k: v for k, v in res.items() if k != "model"}
                for net in res["model"].index:
                    rows.append({"variant": variant, "seed": seed, "epoch": e, "steps": steps,
                                 "train_s": round(t_train, 1), "network": net,
                                 **{f"r2_{k}": float(v[net]) for k, v in res.items()}})
                m = pd.DataFrame(rows[-len(res["model"]):])
                print(f"{variant:>16s} seed {seed} epoch {e:4d} steps {steps:5d} train {t_train:7.1f} s  "
                      f"model {m.r2_model.mean():.3f}  ridge {m.r2_ridge.mean():.3f}  "
                      f"lagged {m['r2_lagged-ridge'].mean():.3f}  ratio {m.r2_model.mean() / m.r2_ridge.mean():.2f}",
                      flush=True)
    out = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, sep="\t", index=False, float_format="%.4f")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
