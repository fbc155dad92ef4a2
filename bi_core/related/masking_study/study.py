"""The masking study end to end: train or reuse every run, probe it, classify, write the tables."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..._io import write_json, write_tsv
from ...cohort import Cohort
from ...masking import TokenLayout
from ...windows import DEFAULT_TARGET_TR
from ..parallel import map_jobs
from .config import METRICS, StudyConfig, study_preset
from .data import study_data
from .probes import probe_run
from .report import conclusions, paired_differences, summarize
from .training import ensure_run, mask_fractions, matched_mask_configs, n_patches

# In-function imports: scikit-learn (...analysis.classify) loads only when the study runs.

def _task(job: dict[str, Any]) -> dict[str, Any]:
    """One (strategy, seed): pretrain unless current, then probe. Runs in a worker process."""
    import torch

    torch.set_num_threads(int(job["cfg"].threads))
    t0 = time.perf_counter()
    run, trained = ensure_run(job["pretrain_dir"], job["cfg"], job["strategy"], job["seed"], job["runs"])
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = probe_run(run, job["eval_dir"], job["recordings"], job["cfg"], job["truth"], job["labelled"])
    summary = json.loads((run / "summary.json").read_text())
    res["run"] = {"strategy": job["strategy"], "seed": job["seed"], "run_dir": str(run), "trained_now": trained,
                  "steps": summary["steps"], "epochs": summary["epochs_run"],
                  "final_train_loss": summary["final_train_loss"], "n_params": summary["n_params"],
                  "train_time_s": summary["train_time_s"], "wall_train_s": round(train_s, 2),
                  "wall_probe_s": round(time.perf_counter() - t0, 2),
                  "windows_per_epoch": summary["windows_per_epoch"]}
    return res


def run_study(cohorts: str | Path, out: str | Path, cfg: StudyConfig | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Train (or reuse) every (strategy, seed) run, probe them, and write the study tables.

    Parameters
    ----------
    cohorts
        With ``cfg.data == "synthetic"``: a synthetic root (``bi-core synth --out DIR``):
        ``DIR/pretrain``, ``DIR/eval`` and ``DIR/ground_truth.json`` (the latter optional:
        without it, no truth scores). With ``"cohort"``: one cohort store, split by subject
        (:mod:`.data`; the pretraining subjects are copied to ``OUT/data/pretrain``).
    out
        Output directory (tables at its top, runs under ``runs/``); finished runs with
        the same config are reused.
    cfg
        Study settings (default: the ``default`` preset).

    Returns
    -------
    dict
        The content of ``summary.json``.
    """
    from ...analysis import classify as C

    cfg = cfg or study_preset("default")
    t_start = time.perf_counter()
    out = Path(out)
    data = study_data(cohorts, out, cfg)
    pre, ev = Cohort.open(data.pretrain_dir), Cohort.open(data.eval_dir)
    layout = TokenLayout.from_atlas(pre.atlas, n_patches(cfg))
    configs = matched_mask_configs(layout, cfg.p_two, cfg.strategies)
    fractions = mask_fractions(layout, configs, cfg.fraction_draws, seed=cfg.first_seed)
    recordings = data.recordings
    out.mkdir(parents=True, exist_ok=True)
    # resample both cohorts once here, so worker processes only ever read the caches

    pre.harmonized(DEFAULT_TARGET_TR, progress=progress)
    evh = ev.harmonized(DEFAULT_TARGET_TR, progress=progress)

    jobs = [{"pretrain_dir": str(data.pretrain_dir), "eval_dir": str(data.eval_dir), "runs": str(out / "runs"),
             "cfg": cfg, "strategy": s, "seed": seed, "recordings": recordings, "truth": data.truth,
             "labelled": data.labelled} for seed in cfg.seeds for s in cfg.strategies]
    results = map_jobs(_task, jobs, cfg.jobs, progress, desc="masking study (train + probe)")
    t_models = time.perf_counter() - t_start

    # classification: every model's embedding (and FC) on the same folds, in one call per task
    # (labelled held-out data only: a single real cohort has no diagnosis groups to classify)
    t0 = time.perf_counter()
    table = ev.table.set_index("recording_id").loc[recordings].reset_index()
    feats = [C.FeatureSet(_fs_name(r["run"]["strategy"], r["run"]["seed"]), r["embedding"]) for r in results]
    if cfg.fc_reference and data.labelled:
        series = C.as_series_array([np.asarray(evh.series(evh.index_of(r))) for r in recordings])
        feats.append(C.FeatureSet("FC correlation", C.connectivity_features(series, "correlation")))
    cv = C.CVConfig(n_splits=cfg.cv_folds, n_repeats=cfg.cv_repeats, seed=cfg.first_seed,
                    inner_splits=cfg.cv_inner_splits, Cs=cfg.cv_Cs)
    cls_rows = []
    for task in C.TASKS if data.labelled else ():
        res = C.run_classification(feats, table, task, cv, progress=progress)
        for _, row in res["summary"].iterrows():
            strat, seed = _parse_fs(row["feature_set"])
            cls_rows.append({"seed": seed, "strategy": strat, "task": task, **{k: row[k] for k in row.index
                                                                               if k != "feature_set"}})
    cls = pd.DataFrame(cls_rows, columns=None if cls_rows else ["seed", "strategy", "task"])
    t_cls = time.perf_counter() - t0

    tables = _assemble(results, cls, fractions)
    for name, df in tables.items():
        write_tsv(out / f"{name}.tsv", df)
    summary = {"config": cfg.to_dict(), "data": data.info, "n_eval_recordings": len(recordings),
               "eval_groups": table["diagnosis"].value_counts().to_dict(),
               "mask_configs": {s: asdict(m) for s, m in configs.items()},
               "conclusions": conclusions(tables["summary"], tables["paired"], cfg),
               "timings": {"models_s": round(t_models, 2), "classification_s": round(t_cls, 2),
                           "total_s": round(time.perf_counter() - t_start, 2),
                           "per_run": [{k: r["run"][k] for k in ("strategy", "seed", "wall_train_s", "wall_probe_s")}
                                       | {"probe": r["seconds"]} for r in results]}}
    write_json(out / "summary.json", summary)
    return summary


def _fs_name(strategy: str, seed: int) -> str:
    return f"{strategy}|{int(seed)}"


def _parse_fs(name: str) -> tuple[str, float]:
    if "|" in name:
        s, seed = name.rsplit("|", 1)
        return s, float(seed)
    return name, np.nan


def _assemble(results: list[dict[str, Any]], cls: pd.DataFrame, fractions: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The tidy study tables from the per-run results and the classification summary."""
    def stack(key: str) -> pd.DataFrame:
        parts = [r[key].assign(seed=r["run"]["seed"], strategy=r["run"]["strategy"]) for r in results
                 if len(r[key])]
        if not parts:  # e.g. no truth scores on a real cohort
            return pd.DataFrame(columns=["seed", "strategy"])
        df = pd.concat(parts, ignore_index=True)
        front = ["seed", "strategy"]
        return df[front + [c for c in df.columns if c not in front]]

    runs = pd.DataFrame([r["run"] for r in results])
    recon = stack("reconstruction")
    metrics = []
    for r in results:
        s, seed = r["run"]["strategy"], r["run"]["seed"]
        own = r["reconstruction"].set_index("eval_mask")["nmse"]
        vals = {**r["scores"], "nmse_own": float(own.get(s, np.nan))}
        metrics.extend({"seed": seed, "strategy": s, "metric": m, "value": vals.get(m, np.nan)} for m in METRICS
                       if m in vals)
    for _, row in cls.iterrows():
        m = {"ad_cn": ("auc_ad_cn", "auc"), "3class": ("bacc_3class", "balanced_accuracy")}[row["task"]]
        metrics.append({"seed": row["seed"], "strategy": row["strategy"], "metric": m[0], "value": row[m[1]]})
    metrics = pd.DataFrame(metrics)
    order = {m: i for i, m in enumerate(METRICS)}
    metrics = metrics.sort_values(["metric", "strategy", "seed"], key=lambda c: c.map(order) if c.name == "metric"
                                  else c, kind="stable").reset_index(drop=True)
    return {"mask_fractions": fractions, "runs": runs, "reconstruction": recon,
            "predictability": stack("predictability"), "interactions": stack("interactions"),
            "groundtruth": stack("groundtruth"), "classification": cls, "metrics": metrics,
            "summary": summarize(metrics), "paired": paired_differences(metrics)}


