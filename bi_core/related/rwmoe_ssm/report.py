"""Metrics and text of the lmae-age chapter: the methods' names, seed 001's reported numbers,
MAE and r with bootstrap intervals, the best method per target and one sentence per target."""

from __future__ import annotations

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


def result_sentences(results: pd.DataFrame) -> dict[str, str]:
    """One computed sentence per target: the best method by r, where RWMOE + SSM and its untrained
    ablation stand, and whether their 95 % intervals overlap (nothing about the outcome is hard-coded)."""
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
        if RWMOE_METHOD in g.index and best != RWMOE_METHOD:
            overlap = g.loc[RWMOE_METHOD, "r_ci_high"] >= g.loc[best, "r_ci_low"]
            txt += (f" {RWMOE_METHOD} reaches {desc(RWMOE_METHOD)}; its interval "
                    f"{'overlaps' if overlap else 'lies below'} that of the best.")
        if RWMOE_UNTRAINED in g.index:
            txt += (" The untrained ablation (same architecture, initial weights, ridge read-out): "
                    f"{desc(RWMOE_UNTRAINED)}.")
        out[str(t)] = txt
    return out
