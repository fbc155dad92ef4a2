"""Time-resolved connectivity: the model-free reference of the dynamic synthetic scenario.

Static FC (:func:`bi_core.analysis.classify.connectivity_features`) averages the coupling of
two networks over the whole recording. The ``dynamic`` scenario of :mod:`bi_core.synth`
leaves that average unchanged and lets disease change how the coupling *alternates*
between latent states, which a sliding-window correlation sees: its standard deviation
over windows rises with the alternation (:func:`dynamic_fc_features`). Correlations are
nilearn's ``ConnectivityMeasure`` with the empirical covariance (no shrinkage, so a
window's correlation is the plain Pearson r); the statistics are SciPy's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..atlas import NetworkAtlas
from ..descriptives import network_signals
from ..errors import InputError
from .verdicts import ratio_to_reference

#: Sliding-window length and step (s) of the dynamic-FC reference: well below the
#: scenario's mean dwell time (120 s), so most windows lie within one state, and 30 frames
#: at the analyses' TR (1.5 s), so a window's correlation is not mostly sampling noise.
WINDOW_S = 45.0
STEP_S = 7.5


def network_series(x: np.ndarray, atlas: NetworkAtlas) -> np.ndarray:
    """Mean signal of each network ``[n_frames, n_networks]`` of a recording ``x`` ``[n_frames, n_rois]``."""
    return network_signals(x, atlas.network_index, atlas.n_networks)


def _correlations(series: Sequence[np.ndarray]) -> np.ndarray:
    """Pearson r of every pair of columns of each ``[n_frames, n_signals]`` array, ``[n_arrays, n_pairs]``.

    nilearn's ``ConnectivityMeasure`` with the empirical covariance (no shrinkage), lower
    triangle vectorized without the diagonal (:func:`network_pairs` order).
    """
    from nilearn.connectome import ConnectivityMeasure
    from sklearn.covariance import EmpiricalCovariance

    cm = ConnectivityMeasure(cov_estimator=EmpiricalCovariance(), kind="correlation", vectorize=True,
                             discard_diagonal=True, standardize="zscore_sample")
    return cm.fit_transform(list(series))


def network_pairs(atlas: NetworkAtlas) -> list[tuple[str, str]]:
    """Network pairs in the order of the vectorized upper triangle (nilearn's ``vectorize``)."""
    nets = list(atlas.networks)
    # nilearn vectorizes the lower triangle row by row: (1, 0), (2, 0), (2, 1), ...
    return [(nets[j], nets[i]) for i in range(len(nets)) for j in range(i)]


def sliding_window_fc(series: np.ndarray, tr: float, window_s: float = WINDOW_S, step_s: float = STEP_S) -> np.ndarray:
    """Correlation of every pair of columns in sliding windows ``[n_windows, n_pairs]``.

    Parameters
    ----------
    series
        ``[n_frames, n_signals]`` at repetition time ``tr`` (s).
    window_s, step_s
        Window length and step (s), rounded to whole frames.
    """
    x = np.asarray(series, np.float64)
    w = max(3, int(round(window_s / tr)))
    step = max(1, int(round(step_s / tr)))
    if len(x) < w + step:
        raise InputError(f"a recording of {len(x)} frames at TR {tr:g} s is too short for {window_s:g}-s sliding "
                         f"windows (need at least {w + step} frames); use shorter windows.")
    return _correlations([x[s:s + w] for s in range(0, len(x) - w + 1, step)])


def dynamic_fc_features(series: Sequence[np.ndarray], tr: float, atlas: NetworkAtlas, window_s: float = WINDOW_S,
                        step_s: float = STEP_S) -> np.ndarray:
    """Standard deviation over sliding windows of each network pair's correlation ``[n_recordings, n_pairs]``.

    Network-mean signals (:func:`network_series`), pairs in :func:`network_pairs` order;
    every recording at the same ``tr`` (harmonize first).
    """
    return np.stack([sliding_window_fc(network_series(x, atlas), tr, window_s, step_s).std(0) for x in series])


def static_network_fc(series: Sequence[np.ndarray], atlas: NetworkAtlas) -> np.ndarray:
    """Whole-recording correlation of each network pair ``[n_recordings, n_pairs]`` (what static FC sees)."""
    return _correlations([network_series(x, atlas) for x in series])


def static_and_dynamic_effects(series: Sequence[np.ndarray], tr: float, groups: Sequence[str], atlas: NetworkAtlas,
                               contrast: tuple[str, str] = ("AD", "CN"),
                               pairs: Sequence[tuple[str, str]] | None = None, window_s: float = WINDOW_S,
                               step_s: float = STEP_S) -> pd.DataFrame:
    """Group difference of static FC and of sliding-window FC variability, per network pair.

    Parameters
    ----------
    series
        One ``[n_frames, n_rois]`` recording per subject (one per subject: baseline visits), at ``tr`` (s).
    groups
        The group of each recording.
    contrast
        ``(group, reference)``.
    pairs
        Network pairs to report (default: all).
    window_s, step_s
        Sliding windows of the dynamic measure (s).

    Returns
    -------
    DataFrame
        One row per (pair, measure ``static FC`` / ``dynamic FC SD``): group means, their
        difference, Cohen's d (pooled SD) and Welch's t-test p.
    """
    from scipy.stats import ttest_ind

    g = np.asarray(groups)
    a, b = (g == contrast[0]), (g == contrast[1])
    if a.sum() < 2 or b.sum() < 2:
        raise InputError(f"need at least two recordings of {contrast[0]} and of {contrast[1]} "
                         f"(have {int(a.sum())} and {int(b.sum())}).")
    all_pairs = network_pairs(atlas)
    idx = {frozenset(p): i for i, p in enumerate(all_pairs)}
    want = all_pairs if pairs is None else list(pairs)
    missing = [p for p in want if frozenset(p) not in idx]
    if missing:
        raise InputError(f"network pair(s) {missing} are not in the atlas (networks {list(atlas.networks)}).")
    rows: list[dict[str, Any]] = []
    for measure, X in (("static FC", static_network_fc(series, atlas)),
                       ("dynamic FC SD", dynamic_fc_features(series, tr, atlas, window_s, step_s))):
        for p in want:
            v = X[:, idx[frozenset(p)]]
            va, vb = v[a], v[b]
            sd = np.sqrt(((len(va) - 1) * va.var(ddof=1) + (len(vb) - 1) * vb.var(ddof=1)) / (len(va) + len(vb) - 2))
            rows.append({"pair": "–".join(p), "measure": measure, f"mean_{contrast[0]}": float(va.mean()),
                         f"mean_{contrast[1]}": float(vb.mean()), "difference": float(va.mean() - vb.mean()),
                         "cohens_d": float((va.mean() - vb.mean()) / sd) if sd > 0 else float("nan"),
                         "p": float(ttest_ind(va, vb, equal_var=False).pvalue)})
    return pd.DataFrame(rows)


def _read(suite_dir: str | Path, name: str) -> pd.DataFrame:
    f = Path(suite_dir) / name
    if not f.is_file():
        raise InputError(f"{f} not found: run `bi-core analyze --out {suite_dir}` (or `bi-core reproduce`) first.")
    return pd.read_csv(f, sep="\t")


def predictability_vs_ridge(suite_dir: str | Path) -> dict[str, float]:
    """Mean over networks of the model's and the same-frame ridge's mean R² in a suite directory, and their ratio."""
    pred = _read(suite_dir, "predictability.tsv")
    lin = _read(suite_dir, "predictability_linear.tsv")
    model = float(pred.groupby("network")["r2"].mean().mean())
    ridge = float(lin[lin["method"] == "ridge"].groupby("network")["r2"].mean().mean())
    return {"model_r2": model, "ridge_r2": ridge, "ratio": ratio_to_reference(model, ridge)}


#: Classification tasks compared across scenarios: file stem → label.
TASK_LABELS = {"ad_cn": "AD vs CN", "mci_cn": "MCI vs CN"}


def auc_by_scenario(suite_dirs: dict[str, str | Path], tasks: Sequence[str] = tuple(TASK_LABELS)) -> pd.DataFrame:
    """AUC of every feature set per (task, scenario), from each suite's ``classification_<task>_summary.tsv``.

    Returns a table indexed by feature set with one column ``"<task label> · <scenario>"``
    per task and scenario (NaN where a scenario did not score that feature set).
    """
    cols = {}
    for task in tasks:
        for scenario, d in suite_dirs.items():
            s = _read(d, f"classification_{task}_summary.tsv").set_index("feature_set")["auc"]
            cols[f"{TASK_LABELS.get(task, task)} · {scenario}"] = s
    out = pd.DataFrame(cols)
    order = list(dict.fromkeys(f for d in suite_dirs.values()
                               for f in _read(d, f"classification_{tasks[0]}_summary.tsv")["feature_set"]))
    out = out.reindex(order)
    out.index.name = "feature set"
    return out


def interaction_recovery(suite_dir: str | Path, measures: Sequence[str],
                         contrasts: Sequence[str] = ("AD-CN", "MCI-CN")) -> pd.DataFrame:
    """Precision and recall of each interaction measure's significant pairs against the suite's ground truth.

    Read from ``groundtruth.json`` (:func:`bi_core.analysis.groundtruth.score_interaction_changes`,
    written by the suite); one row per (measure, contrast).
    """
    import json

    f = Path(suite_dir) / "groundtruth.json"
    if not f.is_file():
        raise InputError(f"{f} not found: the suite scores interactions only on a synthetic cohort with a ground truth.")
    gts = json.loads(f.read_text())
    rows = []
    for m in measures:
        for c in contrasts:
            g = gts.get(f"interactions_{c}_{m}")
            if g is not None:
                rows.append({"measure": m, "contrast": c, "precision": g["precision"], "recall": g["recall"],
                             "found": ", ".join(g["found"]) or "none", "true_positives": g["n_true_positives"],
                             "true": g["n_true"]})
    return pd.DataFrame(rows)


__all__ = ["WINDOW_S", "STEP_S", "network_series", "network_pairs", "sliding_window_fc", "dynamic_fc_features",
           "static_network_fc", "static_and_dynamic_effects", "predictability_vs_ridge", "auc_by_scenario",
           "interaction_recovery", "TASK_LABELS"]
