"""Metrics and text of the lmae-age chapter: the methods' names, seed 001's reported numbers,
MAE and r with bootstrap intervals, the best method per target and one sentence per target."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ... import streams
from ...errors import InputError

#: Seed 001's reported Cam-CAN results (another dataset; not re-run here).
SEED001_REPORTED: tuple[dict[str, Any], ...] = (
    {"target": "age", "mae": 5.343, "r": 0.928},
    {"target": "fluid", "mae": 2.940, "r": 0.887},
)
REFERENCE_METHOD = "LMAE→RWMOE→SSM, seed 001 (reported)"
REFERENCE_DATASET = "Cam-CAN (another dataset; reported, not re-run)"

#: Method names in the result tables (the notebook and the figures select rows by them).
RWMOE_METHOD = "LMAE tokens → RWMOE → SSM"
RWMOE_UNTRAINED = "LMAE tokens → RWMOE → SSM, untrained (ablation)"
EMBEDDING_METHOD = "BrainInterNet embedding (network masking) + ridge"
PROFILE_METHOD = "BrainInterNet predictability profile (network masking) + ridge"


def regression_metrics(y: np.ndarray, y_pred: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """MAE and Pearson r with percentile bootstrap 95 % intervals over samples (subjects)."""
    y, p = np.asarray(y, float), np.asarray(y_pred, float)
    if y.shape != p.shape or y.ndim != 1 or len(y) < 3:
        raise InputError(f"need matching 1-D true and predicted values (>= 3), got {y.shape} and {p.shape}.")

    def r_of(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a, b)[0, 1]) if np.std(a) > 0 and np.std(b) > 0 else float("nan")

    rng = np.random.default_rng([int(seed), streams.BOOTSTRAP])
    idx = rng.integers(0, len(y), size=(int(n_boot), len(y)))
    maes = np.abs(y[idx] - p[idx]).mean(1)
    rs = np.array([r_of(y[i], p[i]) for i in idx])
    return {"n": len(y), "mae": float(np.abs(y - p).mean()), "mae_ci_low": float(np.percentile(maes, 2.5)),
            "mae_ci_high": float(np.percentile(maes, 97.5)), "r": r_of(y, p),
            "r_ci_low": float(np.nanpercentile(rs, 2.5)), "r_ci_high": float(np.nanpercentile(rs, 97.5))}


def paired_difference(predictions: pd.DataFrame, target: str, a: str, b: str, n_boot: int = 2000,
                      seed: int = 0) -> dict[str, float]:
    """``a`` minus ``b`` in Pearson r and MAE on the same subjects, with a paired subject-bootstrap 95 % interval.

    Both methods' out-of-fold predictions of ``target`` (``predictions.tsv``: ``target, method,
    recording_id, subject, y_true, y_pred``) are matched by recording; every resample draws the
    same subjects for both, so the interval is that of the difference, not two intervals to
    compare by overlap (which is conservative for positively correlated errors and says
    nothing about significance).
    """
    g = predictions[predictions["target"] == target]
    wide = g.pivot_table(index=["subject", "recording_id"], columns="method", values="y_pred")
    if a not in wide or b not in wide:
        raise InputError(f"predictions of {target!r} lack method {a!r} or {b!r}.")
    y = g.drop_duplicates("recording_id").set_index("recording_id")["y_true"]
    wide = wide[[a, b]].dropna()
    yt = y.loc[wide.index.get_level_values("recording_id")].to_numpy(float)
    pa, pb = wide[a].to_numpy(float), wide[b].to_numpy(float)
    subj = wide.index.get_level_values("subject").to_numpy()
    _, inv = np.unique(subj, return_inverse=True)
    members = [np.flatnonzero(inv == k) for k in range(inv.max() + 1)]

    def stats(rows: np.ndarray) -> tuple[float, float]:
        r = np.corrcoef(yt[rows], pa[rows])[0, 1] - np.corrcoef(yt[rows], pb[rows])[0, 1]
        mae = np.abs(yt[rows] - pa[rows]).mean() - np.abs(yt[rows] - pb[rows]).mean()
        return float(r), float(mae)

    dr, dmae = stats(np.arange(len(yt)))
    rng = np.random.default_rng([int(seed), streams.BOOTSTRAP])
    boot = np.array([stats(np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))]))
                     for _ in range(int(n_boot))])
    return {"r_difference": dr, "r_difference_ci_low": float(np.nanpercentile(boot[:, 0], 2.5)),
            "r_difference_ci_high": float(np.nanpercentile(boot[:, 0], 97.5)), "mae_difference": dmae,
            "mae_difference_ci_low": float(np.percentile(boot[:, 1], 2.5)),
            "mae_difference_ci_high": float(np.percentile(boot[:, 1], 97.5)), "n_subjects": len(members)}


def best_methods(results: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per target: the method with the highest r among this study's rows, and where RWMOE+SSM stands."""
    out = {}
    ours = results[results["dataset"] != REFERENCE_DATASET]
    for t, g in ours.groupby("target", sort=False):
        g = g.set_index("method")
        best = g["r"].idxmax()
        out[t] = {"best_by_r": best, "best_r": float(g.loc[best, "r"]), "best_mae": float(g.loc[best, "mae"]),
                  "rank_rwmoe_ssm_by_r": int((g["r"] > g.loc[RWMOE_METHOD, "r"]).sum() + 1)
                  if RWMOE_METHOD in g.index else None, "n_methods": len(g)}
    return out


def result_sentences(results: pd.DataFrame, predictions: pd.DataFrame | None = None) -> dict[str, str]:
    """One computed sentence per target: the best method by r, where RWMOE + SSM and its untrained
    ablation stand, and — with ``predictions`` — RWMOE + SSM's paired difference from the best method
    and from its ablation on the same subjects (:func:`paired_difference`); without them, whether the
    unpaired intervals overlap (nothing about the outcome is hard-coded)."""
    out = {}
    ours = results[results["dataset"] != REFERENCE_DATASET]
    for t, g in ours.groupby("target", sort=False):
        g = g.set_index("method")
        best = g["r"].idxmax()

        def desc(m: str, g: pd.DataFrame = g) -> str:
            r = g.loc[m]
            return f"r = {r['r']:.2f} (95 % CI {r['r_ci_low']:.2f} to {r['r_ci_high']:.2f}), MAE {r['mae']:.3g}"

        txt = (f"For {t}, the highest correlation is {best}'s: {desc(best)}; predicting the training mean gives "
               f"MAE {g['mae_predict_mean'].iloc[0]:.3g}.")
        def paired(other: str) -> str:
            d = paired_difference(predictions, str(t), RWMOE_METHOD, other)
            lo, hi = d["r_difference_ci_low"], d["r_difference_ci_high"]
            verdict = "lower" if hi < 0 else "higher" if lo > 0 else "not distinguishable"
            return (f"the paired difference in r on the same {d['n_subjects']} subjects is {d['r_difference']:+.2f} "
                    f"(95 % CI {lo:+.2f} to {hi:+.2f}: {verdict})")

        have_preds = predictions is not None and "method" in predictions
        if RWMOE_METHOD in g.index and best != RWMOE_METHOD:
            txt += f" {RWMOE_METHOD} reaches {desc(RWMOE_METHOD)}; "
            if have_preds:
                txt += f"against the best, {paired(best)}."
            else:
                overlap = g.loc[RWMOE_METHOD, "r_ci_high"] >= g.loc[best, "r_ci_low"]
                txt += f"its interval {'overlaps' if overlap else 'lies below'} that of the best."
        if RWMOE_UNTRAINED in g.index:
            txt += (" The untrained ablation (same architecture, initial weights, ridge read-out): "
                    f"{desc(RWMOE_UNTRAINED)}" + (f"; trained minus untrained, {paired(RWMOE_UNTRAINED)}."
                                                  if have_preds and RWMOE_METHOD in g.index else "."))
        out[str(t)] = txt
    return out


def load_lmae(out: str | Path) -> dict[str, Any]:
    """Read a finished ``lmae-age`` directory: tables and ``summary.json``."""
    out = Path(out)
    if not (out / "summary.json").is_file():
        raise InputError(f"{out} holds no finished lmae-age run (no summary.json); run "
                         "`bi-core related lmae-age --synth SYNTH --out DIR`.")
    res: dict[str, Any] = {"json": json.loads((out / "summary.json").read_text())}
    for name in ("results", "predictions", "expert_weights", "training"):
        p = out / f"{name}.tsv"
        if not p.is_file():
            raise InputError(f"{p} is missing; run lmae-age again.")
        res[name] = pd.read_csv(p, sep="\t", na_values=["n/a"])
    return res
